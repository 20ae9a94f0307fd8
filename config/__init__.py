"""Configuration, the bottom of the stairs: settings (constants, paths) and district definitions."""
