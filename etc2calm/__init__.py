"""etc2calm: traffic-calming analysis of residential streets from ETC2.0 probe data."""

__version__ = "0.1.0"
