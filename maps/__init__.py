"""etc2calm: maps."""
