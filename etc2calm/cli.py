"""Command-line interface: `etc2calm ingest | match | analyze | compare | screen | map | publish | export | views |
sql | generate | demo | district | gates | run-monthly`."""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import logging
import sys
from pathlib import Path

from analysis.filters import DIRECTIONS, VEHICLE_CLASSES
from config.settings import DEFAULT_RADIUS_M, INDICATORS, SCREENING_MIN_VEHICLES, SCREENING_TOP_N, default_warehouse
from etc2calm import __version__
from etc2calm._district_cmd import add_district_parser, cmd_district
from etc2calm._run_cmd import add_gates_parser, add_run_monthly_parser, cmd_gates, cmd_run_monthly, complete_results
from etl.failures import writing

DEFAULT_WAREHOUSE = str(default_warehouse())


class UserError(Exception):
    """A mistake in the command line or its inputs: printed as one line, exit status 2."""


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hours", metavar="H-H", help="time-of-day band, e.g. 7-9 (7:00-8:59, GPS時刻 JST)")
    p.add_argument(
        "--days",
        choices=["all", "weekday", "holiday"],
        default="all",
        help="weekday, or weekend and Japanese public holidays",
    )
    p.add_argument(
        "--vehicle", choices=list(VEHICLE_CLASSES), default="all", help="vehicle class from 自動車の種別/用途"
    )
    p.add_argument(
        "--direction",
        choices=list(DIRECTIONS),
        default="all",
        help="one direction of travel only: along (forward) or against (backward) the road's digitised direction",
    )


def _add_district_or_roads(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--district", metavar="NAME")
    g.add_argument("--roads", metavar="FILE", help="road network (GeoJSON, GeoPackage, .osm/.pbf)")
    p.add_argument(
        "--radius",
        type=float,
        default=DEFAULT_RADIUS_M,
        metavar="M",
        help=f"matching radius in metres (default {DEFAULT_RADIUS_M:g})",
    )
    p.add_argument(
        "--exclude-highway",
        metavar="CLASS,CLASS",
        default=None,
        help="OSM highway classes left out of the network (default: service; '' keeps every road)",
    )


def _add_lang(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--lang", choices=["ja", "en"], default="ja", help=f"{what}: ja (default) or en")


def _add_dask(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run partition-parallel on the Dask cluster of this scheduler, e.g. tcp://10.0.0.5:8786 "
        "(default $ETC2CALM_DASK_SCHEDULER; without either, everything runs in this process)",
    )
    g.add_argument(
        "--dask-local",
        type=int,
        metavar="N",
        help="run partition-parallel on a Dask LocalCluster of N worker processes on this machine",
    )


@contextlib.contextmanager
def _cluster(args):
    """The Dask client asked for by --scheduler / --dask-local / $ETC2CALM_DASK_SCHEDULER, else None."""
    from etl.cluster import dask_client

    with dask_client(args.scheduler, args.dask_local) as client:
        yield client


def _add_warehouse(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--warehouse", default=DEFAULT_WAREHOUSE, metavar="DIR", help=f"warehouse folder (default {DEFAULT_WAREHOUSE})"
    )


def add_ingest_parser(sub: argparse._SubParsersAction) -> None:
    """`etc2calm ingest`: delivered files into the warehouse."""
    p = sub.add_parser(
        "ingest",
        help="ingest delivered 様式1-2 / 様式1-3 / 挙動履歴 files (ZIP, CSV, gzip, folders) into the warehouse",
    )
    _add_warehouse(p)
    p.add_argument(
        "--replace",
        action="store_true",
        help=(
            "a file whose path is already ingested with other content replaces its old rows "
            "(without it, such a file is refused)"
        ),
    )
    p.add_argument(
        "--rekey",
        action="store_true",
        help=(
            "the ID key changed: drop every stored row and ingest PATH... under the current key "
            "(give every delivery again)"
        ),
    )
    p.add_argument(
        "--format", choices=["1-2", "1-3", "behavior"], help="force the format (default: by file name, then by content)"
    )
    p.add_argument(
        "--behavior-layout",
        metavar="FILE.toml",
        help="column layout of 挙動履歴 files (default: documented assumption, see etl/spec.py)",
    )
    p.add_argument("--workers", type=int, metavar="N", help="worker processes without Dask (default: one per core)")
    _add_dask(p)
    p.add_argument("paths", nargs="+", metavar="PATH")


def add_match_parser(sub: argparse._SubParsersAction) -> None:
    """`etc2calm match`: points near a district's roads, stored once."""
    p = sub.add_parser(
        "match", help="match the points of every month near a district's roads (stored once, re-run only when stale)"
    )
    _add_warehouse(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--district", metavar="NAME", action="append", help="a district (repeatable)")
    g.add_argument("--all", action="store_true", help="every district (the districts folders and the bundled ones)")
    p.add_argument(
        "--radius",
        type=float,
        default=DEFAULT_RADIUS_M,
        metavar="M",
        help=f"matching radius in metres (default {DEFAULT_RADIUS_M:g})",
    )
    _add_dask(p)


def add_analyze_parser(sub: argparse._SubParsersAction) -> None:
    """`etc2calm analyze`: per-road figures of named periods."""
    p = sub.add_parser("analyze", help="per-road before/after figures")
    _add_warehouse(p)
    _add_district_or_roads(p)
    p.add_argument("--before", metavar="A..B", help="YYYY-MM-DD..YYYY-MM-DD, inclusive, by GPS時刻 (JST)")
    p.add_argument("--after", metavar="A..B")
    p.add_argument(
        "--period",
        action="append",
        default=[],
        metavar="NAME=A..B",
        help="any named period (repeatable), e.g. trial=2017-10-05..2017-11-01; NAME=<district period> also works",
    )
    _add_filters(p)
    p.add_argument("--out", metavar="FILE.csv")
    _add_dask(p)


def add_compare_parser(sub: argparse._SubParsersAction) -> None:
    """`etc2calm compare`: before/after change with intervals, comparison roads and DiD."""
    p = sub.add_parser(
        "compare",
        help="before/after change with 95%% intervals, comparison roads and DiD",
        description="With --district everything defaults from the district file. With --roads: --treated is "
        "required, --control gives the comparison streets (without them there is no difference in differences), "
        "and the periods are required: --before A..B --after A..B (or --period before=A..B --period after=A..B). "
        "--report writes the report (with --district or --roads).",
    )
    _add_warehouse(p)
    _add_district_or_roads(p)
    p.add_argument("--treated", metavar="ID,ID…", help="treated road ids (required with --roads)")
    p.add_argument("--control", metavar="ID,ID…", help="comparison road ids (with --roads)")
    p.add_argument(
        "--before", metavar="A..B", help="YYYY-MM-DD..YYYY-MM-DD, inclusive (JST); or a district period name"
    )
    p.add_argument("--after", metavar="A..B", help="YYYY-MM-DD..YYYY-MM-DD, inclusive (JST); or a district period name")
    p.add_argument(
        "--period",
        action="append",
        default=[],
        metavar="NAME=A..B",
        help="before=YYYY-MM-DD..YYYY-MM-DD and after=…; a name from the district file also works (before=trial)",
    )
    p.add_argument("--indicator", default="mean", choices=list(INDICATORS))
    p.add_argument("--resamples", type=int, default=1000, metavar="N", help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument(
        "--min-vehicles", type=int, default=50, metavar="N", help="flag figures below N distinct vehicles (default 50)"
    )
    _add_filters(p)
    p.add_argument("--out", metavar="FILE.csv")
    p.add_argument(
        "--report", metavar="FILE.html", help="also write the report (HTML) of the comparison (--district or --roads)"
    )
    _add_lang(p, "the report's language")
    _add_dask(p)


def add_screen_parser(sub: argparse._SubParsersAction) -> None:
    """`etc2calm screen`: rank a network's residential roads (where to calm next)."""
    p = sub.add_parser(
        "screen", help="rank the residential roads of a network or area: where to calm next (docs/screening.md)"
    )
    _add_warehouse(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--district", metavar="NAME", help="the district's network; its outline is the area (candidates, cut-through)"
    )
    g.add_argument("--roads", metavar="FILE", help="road network (GeoJSON, GeoPackage, .osm/.pbf)")
    p.add_argument(
        "--area",
        metavar="POLYGON_FILE",
        help="screen the roads of the network (--roads or --district) lying inside this polygon (GeoJSON, GeoPackage); "
        "it is also the area of cut-through",
    )
    p.add_argument(
        "--radius",
        type=float,
        default=DEFAULT_RADIUS_M,
        metavar="M",
        help=f"matching radius in metres (default {DEFAULT_RADIUS_M:g})",
    )
    p.add_argument(
        "--exclude-highway",
        metavar="CLASS,CLASS",
        default=None,
        help="OSM highway classes left out of the network (default: service; '' keeps every road)",
    )
    p.add_argument(
        "--period",
        metavar="A..B",
        help="YYYY-MM-DD..YYYY-MM-DD, or a period name of the district (default: the district's before period)",
    )
    p.add_argument(
        "--top",
        type=int,
        default=SCREENING_TOP_N,
        metavar="N",
        help=f"candidates printed (default {SCREENING_TOP_N}; the CSV has all)",
    )
    p.add_argument(
        "--min-vehicles",
        type=int,
        default=None,
        metavar="N",
        help="candidates need at least N distinct vehicles (default: the district file's [screening] min_vehicles, "
        f"else {SCREENING_MIN_VEHICLES})",
    )
    p.add_argument("--resamples", type=int, default=1000, metavar="N", help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument("--out", metavar="FILE.csv", help="every candidate, one row each, sorted by rank (UTF-8, header)")
    p.add_argument(
        "--map",
        nargs="?",
        const="",
        default=None,
        metavar="FILE.html",
        help="compute nothing: write the map of the stored screening (latest; of --area and --period when "
        "given) with the top N (--top) candidates (default file: <output folder>/<network>_screening.html)",
    )
    _add_lang(p, "with --map: the language the map opens in (a button switches in the page)")
    _add_dask(p)


def add_map_parser(sub: argparse._SubParsersAction) -> None:
    """`etc2calm map`: a district's before/after map."""
    p = sub.add_parser("map", help="write the before/after map of a district (self-contained HTML)")
    _add_warehouse(p)
    p.add_argument("--district", required=True, metavar="NAME")
    p.add_argument("--out", metavar="FILE.html")
    _add_lang(p, "the language the map opens in (a button switches in the page)")


def add_publish_parser(sub: argparse._SubParsersAction) -> None:
    """`etc2calm publish`: a district's map, report, sheet and GeoPackage from the stored results."""
    p = sub.add_parser(
        "publish",
        help="write a district's map, report, A4 sheet and GeoPackage from the stored results",
        description="Publishes from the stored results; what the warehouse lacks for the district (per-road "
        "figures of its before and after periods, the before/after comparison, the gates when it has an outline, the "
        "screening of its before period) is computed first, as the monthly flow computes it.",
    )
    _add_warehouse(p)
    p.add_argument("--district", required=True, metavar="NAME")
    p.add_argument("--out", metavar="DIR", help="output folder (default $ETC2CALM_OUTPUT, else build/maps)")
    p.add_argument(
        "--lang",
        action="append",
        choices=["ja", "en"],
        metavar="ja|en",
        help="report and sheet language (repeatable; default: both, Japanese under the plain file names)",
    )


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    """`etc2calm export`: road geometries with every stored figure (GeoPackage or GeoParquet)."""
    p = sub.add_parser(
        "export", help="road geometries with every stored figure per period and the change (GeoPackage or GeoParquet)"
    )
    _add_warehouse(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--district", metavar="NAME")
    g.add_argument("--roads", metavar="FILE", help="the network given to `analyze --roads`")
    p.add_argument(
        "--out", required=True, metavar="FILE.gpkg|FILE.parquet", help="GeoPackage (.gpkg) or GeoParquet (.parquet)"
    )
    p.add_argument(
        "--before", metavar="NAME", help="period label of the change's start (default: the district's, else 'before')"
    )
    p.add_argument(
        "--after", metavar="NAME", help="period label of the change's end (default: the district's, else 'after')"
    )
    p.add_argument(
        "--exclude-highway",
        metavar="CLASS,CLASS",
        default=None,
        help="with --roads: the classes left out when it was analysed (default: service)",
    )


def add_views_parser(sub: argparse._SubParsersAction) -> None:
    """`etc2calm views`: list or refresh the warehouse's views."""
    p = sub.add_parser(
        "views",
        help="list the warehouse's views and where they read; --refresh rewrites them for the folder the warehouse "
        "is in now (after a move or copy, for plain DuckDB; every writing command does it too)",
    )
    _add_warehouse(p)
    p.add_argument("--refresh", action="store_true", help="rewrite the views for the warehouse's current location")


def add_sql_parser(sub: argparse._SubParsersAction) -> None:
    """`etc2calm sql`: a read-only SELECT against the warehouse."""
    p = sub.add_parser("sql", help="run a read-only SELECT against the warehouse")
    _add_warehouse(p)
    p.add_argument("--csv", action="store_true", help="print CSV with a header row")
    p.add_argument("query")


def add_generate_parser(sub: argparse._SubParsersAction) -> None:
    """`etc2calm generate`: a synthetic ETC2.0 delivery."""
    p = sub.add_parser(
        "generate",
        help="write a synthetic ETC2.0 delivery (合成データ) for the bundled districts, or for a district with "
        "generator parameters ([synthetic] table or file)",
    )
    p.add_argument("out_dir", metavar="DIR")
    p.add_argument("--seed", type=int, default=20171005)
    p.add_argument("--scale", type=float, default=1.0, help="traffic volume factor (default 1.0)")
    p.add_argument(
        "--district",
        action="append",
        metavar="KEY|FILE.toml",
        help="only this district (repeatable; default: the bundled ones)",
    )


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    """`etc2calm demo`: generate, ingest, analyse and map the bundled districts."""
    p = sub.add_parser("demo", help="generate, ingest, analyse and map the bundled districts")
    _add_warehouse(p)
    p.add_argument("--delivery", default="build/demo/delivery", metavar="DIR")
    p.add_argument("--maps", default="build/maps", metavar="DIR")
    p.add_argument("--seed", type=int, default=20171005)
    p.add_argument(
        "--scale", type=float, default=1.0, help="traffic volume factor of the synthetic delivery (default 1.0)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="etc2calm", description="Traffic-calming analysis of residential streets from ETC2.0 probe data."
    )
    parser.add_argument("--version", action="version", version=f"etc2calm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_ingest_parser(sub)
    add_match_parser(sub)
    add_analyze_parser(sub)
    add_compare_parser(sub)
    add_screen_parser(sub)
    add_map_parser(sub)
    add_publish_parser(sub)
    add_export_parser(sub)
    add_views_parser(sub)
    add_sql_parser(sub)
    add_generate_parser(sub)
    add_district_parser(sub)
    add_gates_parser(sub)
    add_run_monthly_parser(sub)
    add_demo_parser(sub)
    return parser


def _period_overrides(args, district):
    """--before/--after (default: the district's), plus any --period NAME=A..B, in that order."""
    from config.districts import Period, parse_date_range

    named = _named_periods(args.period, district)
    periods = {}
    for label in ("before", "after"):
        text = getattr(args, label)
        if text:
            start, end = parse_date_range(text)
            periods[label] = Period(label, start, end)
        elif label in named:
            periods[label] = named.pop(label)
        elif district is not None:
            periods[label] = district.period(getattr(district, f"default_{label}"))
        elif not named:
            raise UserError(f"--{label} is required with --roads (or give --period NAME=A..B)")
    periods.update(named)
    return periods


STATS_CSV_COLUMNS = [
    "road_id",
    "road_name",
    "name",
    "highway",
    "role",
    "period",
    "period_start",
    "period_end",
    "n_points",
    "n_vehicles",
    "mean_kmh",
    "p85_kmh",
    "share_at_or_over_limit",
    "share_at_or_over_limit_plus_10",
    "n_passages",
    "passage_mean_kmh",
    "passage_p85_kmh",
    "passage_share_at_or_over_limit",
    "passage_spot_mean_kmh",
    "limit_kmh",
]
COMPARE_CSV_COLUMNS = [
    "unit",
    "indicator",
    "before",
    "after",
    "change",
    "ci_low",
    "ci_high",
    "n_vehicles_before",
    "n_vehicles_after",
    "flag",
    "degenerate",
]


def _output_file(path: str | None) -> Path | None:
    """--out / --report target: its folder is created; a folder given as the file is a one-line error."""
    if path is None:
        return None
    out = Path(path)
    if out.is_dir():
        raise UserError(f"{path} is a folder: give a file name (e.g. {out / 'result.csv'})")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _exclude(args, district) -> tuple[str, ...]:
    """--exclude-highway, else the district's classes, else the default (service)."""
    from config.settings import EXCLUDED_HIGHWAY_CLASSES

    if args.exclude_highway is not None:
        return _ids(args.exclude_highway)
    return district.exclude_highway if district is not None else EXCLUDED_HIGHWAY_CLASSES


def _network(args, district):
    """The analysed network: the district's, or --roads FILE (with --treated / --control when given)."""
    from analysis.network import district_network, prepare_network

    treated, control = _ids(getattr(args, "treated", None)), _ids(getattr(args, "control", None))
    exclude = _exclude(args, district)
    if district is not None:
        network = district_network(district, args.radius, treated=treated or None, comparison=control or None)
        if args.exclude_highway is not None:
            network = prepare_network(
                district.network_path,
                district.key,
                radius_m=args.radius,
                treated=treated or district.treated_roads,
                comparison=control or district.comparison_roads,
                exclude_highway=exclude,
            )
        return network
    return prepare_network(
        args.roads,
        f"roads:{Path(args.roads).stem}",
        radius_m=args.radius,
        treated=treated,
        comparison=control,
        exclude_highway=exclude,
    )


def cmd_ingest(args) -> int:
    from etl.ingest import ingest_paths

    with _cluster(args) as client:
        report = ingest_paths(
            args.paths,
            args.warehouse,
            replace=args.replace,
            rekey=args.rekey,
            fmt=args.format,
            behavior_layout=args.behavior_layout,
            workers=args.workers,
            client=client,
        )
    for f in report.failed:
        print(f"etc2calm: failed: {f.message}", file=sys.stderr)
    for f in report.files:
        for member, reason in f.skipped_members:
            print(f"skipped: {f.path}: member {member!r} ({reason})")
    print(report.summary())
    return 1 if report.failed else 0


def cmd_match(args) -> int:
    from analysis.matchstage import match_stage
    from analysis.network import district_network
    from config.districts import list_districts, load_district

    districts = list_districts() if args.all else [load_district(d) for d in args.district]
    with _cluster(args) as client:
        for district in districts:
            print(match_stage(args.warehouse, district_network(district, args.radius), client=client).summary())
    return 0


def cmd_analyze(args) -> int:
    from analysis.figures import analyze, empty_periods
    from analysis.filters import PointFilter
    from config.districts import load_district

    district = load_district(args.district) if args.district else None
    periods = _period_overrides(args, district)
    point_filter = PointFilter.parse(args.hours, args.days, args.vehicle, args.direction)
    out = _output_file(args.out)
    network = _network(args, district)
    with _cluster(args) as client:
        result = analyze(args.warehouse, network, periods, point_filter=point_filter, client=client)
    for label in empty_periods(result):
        p = periods[label]
        print(
            f"etc2calm: warning: 0 points matched in period {label} ({p.start}..{p.end}): its figures are empty",
            file=sys.stderr,
        )
    df = analyze_table(result.road_stats, network.roads, list(periods))
    df["filter"] = point_filter.describe_ja()
    if out:
        with writing(out):
            df.to_csv(out, index=False, encoding="utf-8")
        print(f"wrote {len(df)} rows to {out}")
    else:
        print(df.to_string(index=False))
    if point_filter.active:
        print("filtered figures: printed, not stored (the warehouse keeps the figures of all points)", file=sys.stderr)
    return 0


def analyze_table(road_stats, roads, period_order: list[str]):
    """The rows of `analyze`'s CSV: STATS_CSV_COLUMNS, with the road's OSM class (highway) and its name as
    the maps print it (name: an unnamed way by its class and number, 「生活道路 #3（名称なし）」); the
    treated roads first, then the comparison roads, then the others, each by distinct vehicles (most
    first, over the periods), a road's periods together in the order given."""
    from maps.wording import road_labels

    labels = road_labels(roads)
    df = road_stats.copy()
    df["road_id"] = df["road_id"].astype(str)
    df["highway"] = df["road_id"].map(dict(zip(roads["road_id"], roads["highway"], strict=True))).fillna("")
    df["name"] = df["road_id"].map(lambda r: labels.get(r, {}).get("ja", ""))
    role_rank = df["role"].map({"treated": 0, "comparison": 1}).fillna(2)
    vehicles = df.groupby("road_id")["n_vehicles"].transform("max").fillna(0)
    period_rank = df["period"].map({p: i for i, p in enumerate(period_order)}).fillna(len(period_order))
    df = df.assign(_r=role_rank, _v=-vehicles, _p=period_rank)
    df = df.sort_values(["_r", "_v", "road_id", "_p"], kind="stable")
    return df[STATS_CSV_COLUMNS].reset_index(drop=True)


def _named_periods(texts: list[str], district) -> dict:
    """--period NAME=A..B (or NAME=district period name) → {NAME: Period}; a name given twice is an error."""
    from config.districts import Period, parse_date_range

    periods = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise UserError(f"bad --period {text!r}: expected NAME=YYYY-MM-DD..YYYY-MM-DD")
        if name in periods:
            raise UserError(f"--period {name} is given twice")
        if ".." in value:
            start, end = parse_date_range(value)
            periods[name] = Period(name, start, end)
        elif district is not None:
            periods[name] = district.period(value)
        else:
            raise UserError(f"bad --period {text!r}: expected NAME=YYYY-MM-DD..YYYY-MM-DD")
    return periods


def _ids(text: str | None) -> tuple[str, ...]:
    return tuple(t.strip() for t in (text or "").split(",") if t.strip())


def cmd_compare(args) -> int:
    import pandas as pd

    from analysis.comparison import compare
    from analysis.filters import PointFilter
    from analysis.placebo import placebo_rows
    from config.districts import load_district
    from geo.network import load_area

    point_filter = PointFilter.parse(args.hours, args.days, args.vehicle, args.direction)
    district = load_district(args.district) if args.district else None
    periods = _compare_periods(args, district)
    if district is None and not _ids(args.treated):
        raise UserError("--roads needs --treated ID,ID…")
    out, report = _output_file(args.out), _output_file(args.report)
    area = load_area(district.area_path) if district is not None and district.area_path else None
    network = _network(args, district)
    with _cluster(args) as client:
        ev = compare(
            args.warehouse,
            network,
            periods,
            area=area,
            point_filter=point_filter,
            resamples=args.resamples,
            seed=args.seed,
            min_vehicles=args.min_vehicles,
            client=client,
        )
    table = ev.comparisons[args.indicator]
    table = pd.concat([table, placebo_rows(table, ev.placebo, args.indicator)], ignore_index=True)
    table = table.astype({"n_vehicles_before": "Int64", "n_vehicles_after": "Int64"})  # counts, empty on placebo rows
    if out:
        with writing(out):
            table[COMPARE_CSV_COLUMNS].to_csv(out, index=False, encoding="utf-8")
        print(f"wrote {len(table)} rows to {out}")
    else:
        print(table[COMPARE_CSV_COLUMNS].to_string(index=False))
    if report:
        from analysis.figures import analyze
        from maps.publish import write_district_report

        if district is None:  # the report's per-road figures of the network, as `analyze --roads` stores them
            analyze(args.warehouse, network, periods)
        subject = district if district is not None else roads_district(args, network, periods)
        with writing(report):
            path = write_district_report(
                args.warehouse, subject, report, filter_text=point_filter.describe_ja(), lang=args.lang
            )
        print(path)
    return 0


def _compare_periods(args, district) -> dict:
    """before and after: --before/--after, else --period before=… after=…, else the district's defaults.
    A value is a date range, or with --district a period name of the district file."""
    periods = _named_periods(args.period, district)
    unknown = set(periods) - {"before", "after"}
    if unknown:
        raise UserError(f"compare takes the periods 'before' and 'after' only, not {', '.join(sorted(unknown))}")
    for label in ("before", "after"):
        text = getattr(args, label)
        if text and label in periods:
            raise UserError(f"--{label} and --period {label}=… are both given")
        if text:
            periods.update(_named_periods([f"{label}={text}"], district))
    if district is not None:
        return {
            "before": periods.get("before") or district.period(district.default_before),
            "after": periods.get("after") or district.period(district.default_after),
        }
    if set(periods) != {"before", "after"}:
        raise UserError("--roads needs --before A..B and --after A..B (or --period before=A..B --period after=A..B)")
    return periods


def roads_district(args, network, periods: dict):
    """A District standing for an ad-hoc network (`compare --roads … --report`): its key is the network's
    ('roads:<file stem>', under which the comparison is stored), its name the file's stem."""
    from config.districts import District

    return District(
        key=network.key,
        name_ja=Path(args.roads).stem,
        name_en=Path(args.roads).stem,
        ward_ja="",
        ward_code="",
        center_lat=float("nan"),
        center_lon=float("nan"),
        network_path=Path(args.roads).resolve(),
        synthetic_network=False,
        periods=periods,
        default_before="before",
        default_after="after",
        treated_roads=tuple(network.roads.loc[network.roads["role"] == "treated", "road_id"]),
        comparison_roads=tuple(network.roads.loc[network.roads["role"] == "comparison", "road_id"]),
        source_path=Path(args.roads).resolve(),
        exclude_highway=_exclude(args, None),
    )


def cmd_screen(args) -> int:
    from analysis.screening import RESULT_COLUMNS, screen
    from config.districts import Period, load_district, parse_date_range
    from etc2calm._summary import format_screening
    from geo.network import load_area
    from maps.wording import road_labels

    if args.district is None and args.roads is None:
        if args.area:
            raise UserError(
                "--area needs a road network: add --roads FILE (or --district NAME); the roads of that network "
                "inside the polygon are screened"
            )
        raise UserError("give --district NAME, --roads FILE, or --area POLYGON_FILE with one of them")
    if args.top < 1:
        raise UserError(f"--top must be at least 1, got {args.top}")
    district = load_district(args.district) if args.district else None
    if args.map is not None:
        return _screening_map(args, district)
    basis = "given"
    if args.period and ".." in args.period:
        start, end = parse_date_range(args.period)
        period = Period("screen", start, end)
    elif args.period:
        if district is None:
            raise UserError(f"bad --period {args.period!r}: expected YYYY-MM-DD..YYYY-MM-DD")
        period = district.period(args.period)
    elif district is not None:  # the months before the before period when delivered, else the before period
        from analysis.pretrend import screening_period

        period, basis = screening_period(args.warehouse, district)
    else:
        raise UserError("--roads needs --period YYYY-MM-DD..YYYY-MM-DD")
    if args.area:
        area, area_label, area_path = load_area(args.area), f"area:{Path(args.area).stem}", args.area
    elif district is not None and district.area_path is not None:
        area, area_label, area_path = load_area(district.area_path), "outline", district.area_path
    else:
        area, area_label, area_path = None, "", None
    out = _output_file(args.out)
    args.treated = args.control = None
    network = _network(args, district)
    with _cluster(args) as client:
        res = screen(
            args.warehouse,
            network,
            period,
            area=area,
            area_label=area_label,
            area_path=area_path,
            min_vehicles=_screening_min(args, district),
            resamples=args.resamples,
            seed=args.seed,
            client=client,
            basis=basis,
        )
    where = f" inside {area_label}" if area_label else ""
    print(
        f"screening {res.network_key}{where}, {period.name} {period.start}..{period.end}: {res.n_residential} "
        "residential "
        f"roads, {len(res.table)} ranked, {len(res.low_sample)} left out (fewer than {res.min_vehicles} vehicles)"
    )
    print(format_screening(res.table, args.top, labels=road_labels(network.roads)))
    for note in res.notes:
        print(f"note: {note}")
    if len(res.low_sample):
        print("left out: " + ", ".join(f"{r.road_id} ({r.n_vehicles} vehicles)" for r in res.low_sample.itertuples()))
    if out:
        with writing(out):
            res.table[RESULT_COLUMNS].to_csv(out, index=False, encoding="utf-8")
        print(f"wrote {len(res.table)} rows to {out}")
    return 0


def _screening_min(args, district) -> int:
    """--min-vehicles, else the district's [screening] min_vehicles, else SCREENING_MIN_VEHICLES."""
    if args.min_vehicles is not None:
        return args.min_vehicles
    return district.screening_min_vehicles if district is not None else SCREENING_MIN_VEHICLES


def _screening_map(args, district) -> int:
    """`screen --map`: the map of a stored screening, read back from the warehouse (nothing computed)."""
    from config.districts import parse_date_range
    from config.settings import default_output_dir
    from maps.screening_map import default_area, write_screening_map

    if args.out:
        raise UserError("--map computes nothing and writes no CSV: run 'etc2calm screen --out FILE.csv' without --map")
    if district is not None:
        key, stem = district.key, district.key
    else:
        key, stem = f"roads:{Path(args.roads).stem}", Path(args.roads).stem
    if args.area:
        area = f"area:{Path(args.area).stem}"
        stem += f"_{Path(args.area).stem}"
    else:
        area = default_area(district) if district is not None else ""
    if args.period and ".." in args.period:
        period = parse_date_range(args.period)
    elif args.period:
        if district is None:
            raise UserError(f"bad --period {args.period!r}: expected YYYY-MM-DD..YYYY-MM-DD")
        p = district.period(args.period)
        period = (p.start, p.end)
    else:
        period = None  # the latest stored
    out = _output_file(args.map or None) or default_output_dir() / f"{stem}_screening.html"
    with writing(out):
        path = write_screening_map(
            args.warehouse, key, out, area=area, period=period, district=district, top=args.top, lang=args.lang
        )
    print(path)
    return 0


def cmd_map(args) -> int:
    from config.districts import load_district
    from config.settings import default_output_dir
    from maps.publish import write_district_map

    district = load_district(args.district)
    out = _output_file(args.out) or default_output_dir() / f"{district.key}.html"
    with writing(out):
        print(write_district_map(args.warehouse, district, out, lang=args.lang))
    return 0


def cmd_publish(args) -> int:
    from config.districts import load_district
    from config.settings import PUBLIC_LANGUAGES, default_output_dir
    from maps.publish import publish_district

    district = load_district(args.district)
    out = Path(args.out) if args.out else default_output_dir()
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file: give a folder")
    langs = tuple(dict.fromkeys(args.lang)) if args.lang else PUBLIC_LANGUAGES
    computed = complete_results(args.warehouse, district)
    if computed:
        print(f"computed first (missing from the warehouse): {', '.join(computed)}")
    for key, path in publish_district(args.warehouse, district, out, langs=langs).items():
        print(f"{key}: {path}")
    return 0


def cmd_export(args) -> int:
    from config.districts import load_district
    from maps.export import export_district, export_network

    out = _output_file(args.out)
    if args.district:
        district = load_district(args.district)
        if args.before or args.after:
            from dataclasses import replace

            district = replace(
                district,
                default_before=args.before or district.default_before,
                default_after=args.after or district.default_after,
            )
        with writing(out):
            result = export_district(args.warehouse, district, out)
    else:
        exclude = None if args.exclude_highway is None else _ids(args.exclude_highway)
        with writing(out):
            result = export_network(
                args.warehouse,
                args.roads,
                out,
                before=args.before or "before",
                after=args.after or "after",
                exclude_highway=exclude,
            )
    layers = ", ".join(f"{name} ({n} rows)" for name, n in result.layers.items())
    change = f"; change {result.change[0]} → {result.change[1]}" if result.change else "; no change columns"
    print(f"wrote {result.format} {result.path}: {layers}; periods {', '.join(result.periods)}{change}")
    return 0


def cmd_views(args) -> int:
    from etl.warehouse import view_locations

    if args.refresh:
        from etl.warehouse import follow_location

        follow_location(args.warehouse, force=True)
    rows, made_for = view_locations(args.warehouse)
    here = Path(args.warehouse).resolve()
    for name, n_files in rows:
        print(f"{name:24s} {n_files:6d} file(s)")
    if made_for == str(here):
        print(f"the views read the files under {here}: plain DuckDB can open {here / 'warehouse.duckdb'}")
    else:
        print(
            f"the views were made for {made_for}, not {here} (moved or copied): etc2calm reads the files here; for "
            "plain DuckDB run: etc2calm views --refresh"
        )
    return 0


def cmd_sql(args) -> int:
    import duckdb

    from etl.warehouse import connect

    try:
        statements = duckdb.extract_statements(args.query)
    except duckdb.Error as exc:
        raise UserError(f"SQL error: {str(exc).splitlines()[0]}") from None
    if not statements or any(s.type != duckdb.StatementType.SELECT for s in statements):
        raise UserError("etc2calm sql is read-only: give SELECT statements only")
    con = connect(args.warehouse, read_only=True)
    try:
        if args.csv:
            cur = con.execute(args.query)
            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow([d[0] for d in cur.description])
            while batch := cur.fetchmany(10_000):
                writer.writerows(batch)
        else:
            con.sql(args.query).show(max_rows=200, max_width=200)
    except duckdb.Error as exc:
        raise UserError(f"SQL error: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    return 0


def cmd_generate(args) -> int:
    from config.districts import load_district
    from etl.synthetic import generate_delivery

    districts = [load_district(d) for d in args.district] if args.district else None
    summary = generate_delivery(Path(args.out_dir), districts=districts, seed=args.seed, scale=args.scale)
    print(summary)
    return 0


def cmd_demo(args) -> int:
    from etc2calm._demo import run_demo

    run_demo(
        warehouse=Path(args.warehouse),
        delivery=Path(args.delivery),
        maps_dir=Path(args.maps),
        seed=args.seed,
        scale=args.scale,
    )
    return 0


COMMANDS = {
    "ingest": cmd_ingest,
    "match": cmd_match,
    "analyze": cmd_analyze,
    "compare": cmd_compare,
    "screen": cmd_screen,
    "map": cmd_map,
    "publish": cmd_publish,
    "export": cmd_export,
    "views": cmd_views,
    "sql": cmd_sql,
    "generate": cmd_generate,
    "demo": cmd_demo,
    "district": cmd_district,
    "gates": cmd_gates,
    "run-monthly": cmd_run_monthly,
}


# Commands that write the warehouse: they first make its views follow it when it was moved or copied.
WRITING_COMMANDS = ("ingest", "match", "analyze", "compare", "screen")


def _write_target(args) -> str | None:
    """What a command writes, named by an I/O failure that names no path of its own."""
    if args.command in ("export", "map"):
        return args.out
    if args.command == "publish":
        return args.out or str(_default_output())
    if args.command == "generate":
        return args.out_dir
    return getattr(args, "warehouse", None)


def _default_output() -> Path:
    from config.settings import default_output_dir

    return default_output_dir()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from etl.failures import io_failure_message
    from etl.sources import SourceError
    from etl.warehouse import WarehouseBusy, WarehouseInconsistent, WarehouseMissing, follow_location

    try:
        if args.command in WRITING_COMMANDS:
            follow_location(args.warehouse)
        return COMMANDS[args.command](args)
    except (
        UserError,
        ValueError,
        FileNotFoundError,
        SourceError,
        WarehouseBusy,
        WarehouseMissing,
        WarehouseInconsistent,
    ) as exc:
        print(f"etc2calm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("etc2calm: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # An I/O failure (a full disk, a read-only folder, a quota, a vanished file): one line naming the
        # path and the cause. Every writer commits at once or not at all, so the warehouse is as before.
        message = io_failure_message(exc, _write_target(args))
        if message is None:
            raise
        state = getattr(exc, "warehouse_state", "the warehouse is unchanged")
        print(f"etc2calm: error: {message}; {state}", file=sys.stderr)
        return 1
    finally:
        if argv is None:  # the process's command (not a call from Python): it ends now
            # what is still alive is left to the end of the process: the interpreter's last
            # collection would walk every object of the imports again (0.3-0.5 s after analyze)
            gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
