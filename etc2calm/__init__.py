"""etc2calm: traffic-calming analysis of residential streets from ETC2.0 probe data.

The top of the stairs: the command line (`etc2calm.cli.main`, the `etc2calm` command, with the demo
as `etc2calm demo`) and the generated warehouse documentation (`etc2calm.docs`: `python -m
etc2calm.docs`, `make docs`); it may import every room below and is imported by none.

Modules with a leading underscore (`_demo`, `_district_cmd`, `_run_cmd`: commands of the CLI;
`_summary`: what the CLI and the demo print) serve the command line only.
"""

__version__ = "0.1.0"
