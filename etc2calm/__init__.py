"""etc2calm: traffic-calming analysis of residential streets from ETC2.0 probe data.

The top of the stairs: the command line (`etc2calm.cli.main`, the `etc2calm` command), the demo and
the generated warehouse documentation; it may import every room below and is imported by none.
"""

__version__ = "0.1.0"
