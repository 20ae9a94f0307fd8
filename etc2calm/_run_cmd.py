"""`etc2calm gates` and `etc2calm run-monthly`: a district's gates, and the monthly run without Prefect.

`gates --district KEY` classifies the trips of every named period by the gates where they cross the
district's outline (analysis/gates.py) and stores them, as the flow's `gates` task does.

`run-monthly` runs the stages of the Prefect flow `monthly-pipeline` (flows/pipeline.py:
`analysis_steps`, `publish_edition`) as plain functions in this process: no Prefect API, server or
database is started, so nothing of Prefect's is printed. Districts are found as everywhere else
(ETC2CALM_DISTRICTS, then the bundled ones; a TOML path works too).
"""

from __future__ import annotations

import sys
from pathlib import Path

from config.settings import DEFAULT_RESAMPLES, DEFAULT_SEED, default_output_dir, default_warehouse

DEFAULT_WAREHOUSE = str(default_warehouse())


def add_gates_parser(sub) -> None:
    p = sub.add_parser(
        "gates",
        help="classify a district's trips by the gates where they cross its outline (through / into / out of …)",
        description="Needs the district's outline (area = … in its file; `etc2calm district new --outline-from-roads` "
        "makes one). Stores district_gates, gate_trips, gate_od and gate_class_summary for every named period.",
    )
    p.add_argument(
        "--warehouse", default=DEFAULT_WAREHOUSE, metavar="DIR", help=f"warehouse folder (default {DEFAULT_WAREHOUSE})"
    )
    p.add_argument("--district", required=True, metavar="KEY|FILE.toml")


def add_run_monthly_parser(sub) -> None:
    p = sub.add_parser(
        "run-monthly",
        help="the monthly flow's stages without Prefect: ingest what is new, analyse and publish districts",
        description="Runs what the Prefect flow monthly-pipeline runs (ingest of new files in --landing, match, "
        "figures, comparison, gates, screening, monthly series, publication into <out>/<YYYY-MM>/ and <out>/latest/) "
        "as plain functions in this process: no Prefect server, API or database.",
    )
    p.add_argument(
        "--warehouse", default=DEFAULT_WAREHOUSE, metavar="DIR", help=f"warehouse folder (default {DEFAULT_WAREHOUSE})"
    )
    p.add_argument(
        "--district",
        action="append",
        metavar="KEY|FILE.toml",
        help="a district (repeatable; default: every district of the districts folders and the bundled ones)",
    )
    p.add_argument("--landing", metavar="DIR", help="ingest the files of this folder not yet in the warehouse first")
    p.add_argument("--out", metavar="DIR", help="output root (default $ETC2CALM_OUTPUT, else build/maps)")
    p.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, metavar="N", help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="S")


def cmd_gates(args) -> int:
    from analysis.gates import evaluate_gates
    from config.districts import load_district
    from etc2calm._summary import format_gate_summary

    district = load_district(args.district)
    if district.area_path is None:
        raise ValueError(
            f"district {district.key!r} has no outline: add area = FILE to {district.source_path} (or make one: "
            f"etc2calm district new {district.key} … --outline-from-roads)"
        )
    res = evaluate_gates(args.warehouse, district)
    gates = ", ".join(res.gates["gate_id"])
    print(f"{district.key}: {len(res.gates)} gates ({gates}); stored for {', '.join(res.periods)}")
    print(format_gate_summary(args.warehouse, [district]))
    return 0


def cmd_run_monthly(args) -> int:
    from config.district_files import find_districts
    from flows.pipeline import call_plain, edition_name, publish_edition, resolve_districts, run_districts

    warehouse = args.warehouse
    failed_files = _ingest(args.landing, warehouse) if args.landing else []
    files, broken = resolve_districts(args.district or [s.key for s in find_districts().found])
    root = Path(args.out) if args.out else default_output_dir()
    edition = root / edition_name(warehouse)
    results, failed = run_districts(call_plain, warehouse, files, args.resamples, args.seed)
    broken.update(failed)
    for key, steps in results.items():
        print(f"{key}: {steps['match']}; screening: {len(steps['screening'])} shown of the top 5")
    published = publish_edition(call_plain, warehouse, {k: files[k] for k in results}, root, edition)
    print(f"edition {edition}; stable copy {published['latest']}")
    for key, paths in published["districts"].items():
        print(f"  {key}: {', '.join(sorted(Path(p).name for p in paths['latest'].values()))}")
    for key, why in broken.items():
        print(f"etc2calm: error: district {key} not analysed: {why}", file=sys.stderr)
    return 1 if broken or failed_files else 0


def _ingest(landing: str, warehouse: str) -> list[str]:
    """Ingest what is new in `landing`; returns the messages of the files that failed."""
    from flows.pipeline import call_plain, find_new_files_task, ingest_task

    new, known = call_plain(find_new_files_task, landing, warehouse)
    report = call_plain(ingest_task, new, warehouse, known)
    print(f"ingest: {report['summary']}")
    for message in report["failed"]:
        print(f"etc2calm: failed: {message}", file=sys.stderr)
    return report["failed"]


def missing_stages(warehouse: str | Path, district) -> list[str]:
    """The stages `publish` needs whose results the warehouse does not hold for `district`: 'figures'
    (per-road figures of the default before and after periods), 'comparison' (the before/after
    comparison of all points), 'gates' (with an outline) and 'screening' (of its default period: the
    months before the before period when the warehouse holds them, else the before period)."""
    from analysis.filters import ALL_POINTS_FILTER
    from analysis.pretrend import screening_period
    from etl.warehouse import connect
    from maps.screening_map import default_area

    before, after = district.period(district.default_before), district.period(district.default_after)
    screened, _ = screening_period(warehouse, district)  # the months before the before period, when delivered
    checks = {
        "figures": (
            "SELECT count(DISTINCT period_start) FROM road_period_stats WHERE district = ? AND "
            "((period_start = ? AND period_end = ?) OR (period_start = ? AND period_end = ?))",
            [district.key, before.start, before.end, after.start, after.end],
            2,
        ),
        "comparison": (
            "SELECT count(*) FROM evidence_runs WHERE district = ? AND filter = ? AND period_before = ? AND "
            "period_after = ?",
            [district.key, ALL_POINTS_FILTER, f"{before.start}..{before.end}", f"{after.start}..{after.end}"],
            1,
        ),
        "gates": ("SELECT count(*) FROM district_gates WHERE district = ?", [district.key], 1),
        "screening": (
            "SELECT count(*) FROM screening_runs WHERE district = ? AND area = ? AND period_start = ? AND "
            "period_end = ?",
            [district.key, default_area(district), screened.start, screened.end],
            1,
        ),
    }
    if district.area_path is None:
        del checks["gates"]
    con = connect(warehouse, read_only=True)
    try:
        return [name for name, (sql, params, need) in checks.items() if _count(con, sql, params) < need]
    finally:
        con.close()


def _count(con, sql: str, params: list) -> int:
    import duckdb

    try:
        return int(con.execute(sql, params).fetchone()[0])
    except duckdb.CatalogException:  # a table a warehouse that was never analysed does not have yet
        return 0


def complete_results(warehouse: str | Path, district) -> list[str]:
    """Compute what `publish` needs and the warehouse lacks (missing_stages), with the same functions
    as the flow's tasks; returns the stages computed."""
    from analysis.comparison import compare_district
    from analysis.figures import analyze_district
    from analysis.gates import evaluate_gates
    from analysis.screening import screen_district

    run = {
        "figures": lambda: analyze_district(warehouse, district),
        "comparison": lambda: compare_district(warehouse, district),
        "gates": lambda: evaluate_gates(warehouse, district),
        "screening": lambda: screen_district(warehouse, district, min_vehicles=district.screening_min_vehicles),
    }
    missing = missing_stages(warehouse, district)
    for stage in missing:
        run[stage]()
    return missing
