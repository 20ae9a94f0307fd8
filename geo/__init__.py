"""Road networks, projection, matching and speed-exceedance aggregation: the performance-critical core.

Floor 1 of the stairs, beside etl: imports config only (never etl, analysis or above). Coordinates
are metres in the projected CRS (config.settings.METRIC_CRS) unless a name says otherwise.

What engineers call:

- `geo.network.load_roads`, `build_links`, `load_area`: road networks (GeoJSON, GeoPackage, OSM);
- `geo.outline.outline_from_roads`: a district's outline from its roads;
- `geo.matching.build_segment_index`, `match_points`: points to road links (compiled kernel);
- `geo.network.segment_arrays`: the straight segments of any lines, in the order links number them;
- `geo.aggregate.aggregate_points`, `merge_cubes`, `figures`, `grouped_quantile`: the mergeable cube;
  `distinct_vehicles` (exact distinct vehicles of any union of pieces), `write_cube` / `read_cube`
  (a cube kept as Parquet, to merge later);
- `geo.calendar.day_type_of`, `hour_of`, `holiday_table`: the day types of the filters and the cube.

`geo.kernels` and `geo.trip_kernels` hold the numba kernels behind them. They carry no underscore
although engineers rarely call them: analysis calls them directly (the match stage's trip order,
the section speeds), and a leading underscore means a module serves its own package only.
"""
