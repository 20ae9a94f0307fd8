"""etc2calm: geo."""
