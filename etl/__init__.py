"""etc2calm: etl."""
