"""etc2calm: flows."""
