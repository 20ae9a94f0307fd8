"""Configuration, the bottom of the stairs: settings (constants, paths) and district definitions.

Floor 0: imports nothing of the project but itself (the standard library, and the bundled data).

What engineers call:

- `config.settings`: every constant (CRS, radius, thresholds, indicators) and every environment
  variable name (`ENV_*`); `default_warehouse`, `default_output_dir`, `data_dir`;
- `config.districts.load_district`, `list_districts`, `parse_date_range`: district files;
- `config.district_files.find_district`, `find_districts`: where district files are found.
"""
