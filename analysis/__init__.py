"""Analysis: the match stage, the one point reader and filter, figures, statistics and evidence.

Floor 2 of the stairs: imports config, etl and geo (never maps, flows or the CLI). Every figure is
computed by one function here and stored in the warehouse; publishing reads it back (`results`).

What engineers call:

- `analysis.matchstage.match_stage`, `district_network`: points matched once per month, stored;
- `analysis.points.read_matched_points`, `read_points`, `passages`; `analysis.filters.PointFilter`;
- `analysis.figures.analyze_district`: per-road and per-group figures of named periods;
- `analysis.evaluation.compare_periods`: indicators, bootstrap intervals over vehicles, DiD;
- `analysis.evidence.evaluate_district`: a district's before/after evidence, stored;
- `analysis.monitoring`, `analysis.pretrend`, `analysis.placebo`, `analysis.equivalence`: is the
  effect lasting, was there a trend before, is the change unusual;
- `analysis.screening.screen_district`, `analysis.gates.evaluate_gates`, `analysis.behaviour`;
- `analysis.results.load_district_results`: stored results, read back for publishing.
"""
