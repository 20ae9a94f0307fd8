"""Analysis: the match stage, the one point reader and filter, figures, statistics and comparisons.

Floor 2 of the stairs: imports config, etl and geo (never maps, flows or the CLI). Every figure is
computed by one function here and stored in the warehouse; publishing reads it back (`results`).

What engineers call:

- `analysis.matchstage.match_stage`: points matched once per month, stored (`match_month`: one
  month matched in memory, pure, no writes);
- `analysis.network.Network`, `district_network`: a district's roads, treated and comparison;
- `analysis.points.read_matched_points`, `read_points`, `passages`; `analysis.filters.PointFilter`;
- `analysis.figures.analyze_district`: per-road and per-group figures of named periods;
- `analysis.samples.period_samples`: a period's bootstrap samples, reduced month by month;
- `analysis.bootstrap.compare_periods`: the statistics: indicators, bootstrap intervals over vehicles, DiD;
- `analysis.comparison.compare_district` (`compare` for any network): a district's before/after
  comparison assembled from the warehouse with those statistics, stored;
- `analysis.monitoring`, `analysis.pretrend`, `analysis.placebo`, `analysis.equivalence`: is the
  effect lasting, was there a trend before, is the change unusual;
- `analysis.screening.screen_district`, `analysis.gates.evaluate_gates`, `analysis.behaviour`;
- `analysis.results.load_district_results`: stored results, read back for publishing;
- `analysis.distributed.aggregate_months`: one period's cube on a Dask cluster, as a library call;
- `analysis.stages.run_stage`: a stage of the monthly flow run only when its inputs changed.

Modules with a leading underscore (`_partitions`: a period reduced month by month, in this process
or on Dask; `_cube_files`: a period's cube written as the Parquet files behind link_hour_stats and
link_hour_histogram; `_background`: one job behind the caller in a second thread) serve this
package only: they are not API and may change without notice.
"""
