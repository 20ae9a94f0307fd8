"""`etc2calm district new | list | check`: declaring a district kept outside the package (docs/districts.md).

`new` writes a minimal, commented TOML file into the first districts folder (ETC2CALM_DISTRICTS,
never the package), with the road file copied (or linked) beside it and, on request, an outline
made from the roads (geo/outline.py); `list` shows every district and the folder it comes from,
warning about keys that an earlier folder shadows; `check` reports every problem of a district file
at once. With a warehouse, `new` and `check` say how many points each treated and comparison
street has in each period.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

from config.district_files import find_district, find_districts, new_district_folder
from config.districts import District, parse_date_range, read_district_file
from config.settings import LONLAT_CRS, SCREENING_MIN_VEHICLES

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class DistrictError(ValueError):
    """A district file or a `district new` request that cannot be used (one line, exit 2)."""


# --- parsers ------------------------------------------------------------------------------------------


def add_district_parser(sub) -> None:
    """`etc2calm district new | list | check`."""
    p = sub.add_parser(
        "district",
        help="declare, list and check districts kept outside the package (docs/districts.md)",
        description="Districts are TOML files in the folders of ETC2CALM_DISTRICTS (os.pathsep-separated), "
        "searched before the bundled ones; the first folder wins on a duplicate key.",
    )
    verbs = p.add_subparsers(dest="verb", required=True)
    _add_new_parser(verbs)
    q = verbs.add_parser("list", help="every district and the folder it comes from (warns about shadowed keys)")
    q.add_argument("--folder", action="append", metavar="DIR", help="search this folder instead of $ETC2CALM_DISTRICTS")
    q = verbs.add_parser("check", help="every problem of a district file, at once (exit 1 when there is one)")
    q.add_argument("district", metavar="KEY|FILE.toml")
    q.add_argument(
        "--warehouse",
        metavar="DIR",
        help="also count the points of each treated and comparison street in each period of this warehouse",
    )


def _add_new_parser(verbs) -> None:
    q = verbs.add_parser(
        "new",
        help="write a minimal, commented district file into the first districts folder",
        description="Writes KEY.toml into the first folder of ETC2CALM_DISTRICTS (or --folder), never into the "
        "package, with the road file copied (or linked) beside it. The treated and comparison ids must exist in the "
        "road file; dates are YYYY-MM-DD..YYYY-MM-DD, inclusive (JST).",
    )
    q.add_argument("key", metavar="KEY", help="the district's key: lower-case letters, digits, '-' or '_'")
    q.add_argument("--roads", required=True, metavar="FILE", help="road network (GeoJSON, GeoPackage, .osm/.pbf)")
    q.add_argument("--treated", required=True, metavar="ID,ID…", help="road ids of the treated street (required)")
    q.add_argument("--control", metavar="ID,ID…", help="road ids of the comparison streets (recommended)")
    q.add_argument("--before", required=True, metavar="A..B", help="the before period (required)")
    q.add_argument("--after", required=True, metavar="A..B", help="the after period (required)")
    q.add_argument("--trial", metavar="A..B", help="a trial (social experiment) period")
    q.add_argument("--name-ja", metavar="名前", help="the district's Japanese name (default: KEY)")
    q.add_argument("--name-en", metavar="NAME", help="its English name")
    q.add_argument(
        "--ward", metavar="区", help="its ward, e.g. 保土ケ谷区 (optional: maps draw its outline when known)"
    )
    g = q.add_mutually_exclusive_group()
    g.add_argument("--outline", metavar="FILE", help="the district's outline (polygon GeoJSON / GeoPackage), copied")
    g.add_argument(
        "--outline-from-roads",
        action="store_true",
        help="make the outline from the roads: the area their outer roads enclose, grown by 25 m (docs/districts.md)",
    )
    q.add_argument(
        "--min-vehicles", type=int, metavar="N", help=f"screening minimum (default {SCREENING_MIN_VEHICLES})"
    )
    q.add_argument("--link", action="store_true", help="link the road file instead of copying it")
    q.add_argument("--folder", metavar="DIR", help="write here instead of the first folder of $ETC2CALM_DISTRICTS")
    q.add_argument("--force", action="store_true", help="replace an existing district file of that key")
    q.add_argument("--warehouse", metavar="DIR", help="count the points of the given streets in this warehouse")


# --- commands -----------------------------------------------------------------------------------------


def cmd_district(args) -> int:
    return {"new": cmd_new, "list": cmd_list, "check": cmd_check}[args.verb](args)


def cmd_list(args) -> int:
    result = find_districts(args.folder)
    if not result.found:
        print("no district found (searched: " + ", ".join(str(f) for f, _ in result.folders) + ")")
    rows = [(s.key, s.name_ja or "?", "bundled" if s.bundled else "user", str(s.path)) for s in result.found]
    width = max([len(r[0]) for r in rows] + [3])
    for key, name, kind, path in rows:
        print(f"{key:<{width}}  {kind:<7}  {name}  {path}")
    for s in result.found:
        if s.problem:
            print(f"etc2calm: warning: {s.path}: {s.problem}", file=sys.stderr)
    for hidden, winner in result.shadowed:
        print(
            f"etc2calm: warning: {hidden.path} is not used: key {hidden.key!r} is already {winner.path} "
            "(the first folder wins)",
            file=sys.stderr,
        )
    return 0


def cmd_check(args) -> int:
    path = find_district(args.district)
    district, problems = read_district_file(path)
    if district is not None:
        problems += file_problems(district)
    for problem in problems:
        print(f"{path}: {problem}")
    if district is not None and not problems and args.warehouse:
        print_point_counts(args.warehouse, district)
    if problems:
        print(f"{len(problems)} problem(s) in {path}", file=sys.stderr)
        return 1
    print(f"{path}: ok ({district.key}: {district.name_ja})")
    return 0


def file_problems(district: District) -> list[str]:
    """Problems with the files a district names and the roads it picks: the network loads, the treated
    and comparison ids are in it (and not of an excluded class), the outline is a polygon."""
    from geo.network import load_area, load_roads

    problems = []
    try:
        roads = load_roads(district.network_path, exclude_highway=district.exclude_highway)
        everything = load_roads(district.network_path, exclude_highway=None)
    except (ValueError, FileNotFoundError) as exc:
        return [f"network: {exc}"]
    known, present = set(roads["road_id"]), set(everything["road_id"])
    for what, ids in (("treated", district.treated_roads), ("comparison", district.comparison_roads)):
        for rid in ids:
            if rid not in present:
                problems.append(f"[roads] {what}: road id {rid!r} is not in {district.network_path.name}")
            elif rid not in known:
                problems.append(
                    f"[roads] {what}: road {rid!r} is of an excluded class ({', '.join(district.exclude_highway)}); "
                    "set exclude_highway"
                )
    for rid in district.road_names:
        if rid not in present:
            problems.append(f"[roads.names]: road id {rid!r} is not in {district.network_path.name}")
    if district.area_path is not None:
        try:
            load_area(district.area_path)
        except (ValueError, FileNotFoundError) as exc:
            problems.append(f"area: {exc}")
    return problems


def point_counts(warehouse: str | Path, district: District) -> list[tuple[str, str, str, int, int]]:
    """(period, role, road id, points, distinct vehicles) of each treated and comparison street in each
    named period, from the warehouse (matching what is not matched yet), read one month at a time."""
    import numpy as np

    from analysis.filters import ALL_POINTS
    from analysis.matchstage import match_stage
    from analysis.network import district_network
    from analysis.points import matched_folders, points_expression, read_matched_points
    from etl.warehouse import connect
    from geo.calendar import months_between

    network = district_network(district)
    months = sorted({m for p in district.periods.values() for m in months_between(p.start, p.end)})
    match_stage(warehouse, network, months)
    ids = list(network.road_ids)
    wanted = [
        (role, rid)
        for role, r in (("treated", district.treated_roads), ("comparison", district.comparison_roads))
        for rid in r
    ]
    rows = []
    con = connect(warehouse, read_only=True)
    try:
        for name, p in district.periods.items():
            n_points, vehicles = dict.fromkeys(wanted, 0), {k: set() for k in wanted}
            expr = points_expression(ALL_POINTS, p.start, p.end)
            for folder in matched_folders(con, Path(warehouse), network.key, p.start, p.end):
                pts = read_matched_points([folder], network, ["road_idx", "vehicle_id"], expr)
                road = np.asarray(pts["road_idx"].to_numpy(zero_copy_only=False))
                vehicle = pts["vehicle_id"].to_numpy(zero_copy_only=False)
                for role, rid in wanted:
                    on = road == ids.index(rid)
                    n_points[role, rid] += int(on.sum())
                    vehicles[role, rid].update(np.unique(vehicle[on]).tolist())
            rows.extend((name, role, rid, n_points[role, rid], len(vehicles[role, rid])) for role, rid in wanted)
    finally:
        con.close()
    return rows


def print_point_counts(warehouse: str | Path, district: District) -> None:
    print(f"points in {warehouse} (period, street, points, distinct vehicles):")
    for period, role, rid, n_points, n_vehicles in point_counts(warehouse, district):
        warn = "  <- no point: check the id and the dates" if n_points == 0 else ""
        print(f"  {period:<8} {role:<10} {rid:<14} {n_points:>8,} points {n_vehicles:>6,} vehicles{warn}")


# --- district new ---------------------------------------------------------------------------------------


def cmd_new(args) -> int:
    if not KEY_PATTERN.match(args.key):
        raise DistrictError(f"bad district key {args.key!r}: use lower-case letters, digits, '-' or '_'")
    folder = _target_folder(args.folder)
    target = folder / f"{args.key}.toml"
    if target.exists() and not args.force:
        raise DistrictError(f"{target} exists: choose another key, or --force to replace it")
    periods = {name: getattr(args, name) for name in ("before", "after", "trial") if getattr(args, name)}
    for text in periods.values():
        parse_date_range(text)  # one-line ValueError on a bad range
    treated, control = _ids(args.treated), _ids(args.control)
    roads_file = Path(args.roads)
    _check_ids(roads_file, treated, control)
    folder.mkdir(parents=True, exist_ok=True)
    network = _place(roads_file, folder / f"{args.key}_roads{_suffix(roads_file)}", args.link)
    area = _outline(args, folder, network)
    target.write_text(district_toml(args, network.name, area, periods), encoding="utf-8")
    district, problems = read_district_file(target)
    if problems:  # never leave a file that cannot be read
        raise DistrictError(f"{target}: {'; '.join(problems)}")
    print(f"wrote {target}")
    outline = area or "none (gates and cut-through need one)"
    print(f"  roads: {network}{' (link)' if args.link else ''}; outline: {outline}")
    if args.warehouse:
        print_point_counts(args.warehouse, district)
    print(f"next: etc2calm district check {args.key}; etc2calm publish --district {args.key}")
    return 0


def _target_folder(folder: str | None) -> Path:
    from config.settings import districts_dir

    target = Path(folder).expanduser() if folder else new_district_folder()
    bundled = districts_dir().resolve()
    if target.resolve() == bundled or bundled in target.resolve().parents:
        raise DistrictError(f"{target} is the package's own districts folder: keep your districts in a folder of yours")
    return target


def _ids(text: str | None) -> tuple[str, ...]:
    return tuple(t.strip() for t in (text or "").split(",") if t.strip())


def _suffix(path: Path) -> str:
    return "".join(path.suffixes[-2:]) if path.name.endswith(".osm.pbf") else path.suffix


def _check_ids(roads_file: Path, treated: tuple[str, ...], control: tuple[str, ...]) -> None:
    """Every given id is in the road file (all missing ones named at once)."""
    from geo.network import load_roads

    roads = load_roads(roads_file, exclude_highway=None)
    known = set(roads["road_id"])
    if not treated:
        raise DistrictError("--treated needs at least one road id")
    missing = [r for r in (*treated, *control) if r not in known]
    if missing:
        raise DistrictError(f"road id(s) not in {roads_file}: {', '.join(missing)}")
    both = sorted(set(treated) & set(control))
    if both:
        raise DistrictError(f"road id(s) {', '.join(both)} given as treated and as control")


def _place(source: Path, target: Path, link: bool) -> Path:
    """The road (or outline) file beside the district file: copied, or a symbolic link to it."""
    if target.exists() or target.is_symlink():
        target.unlink()
    if link:
        target.symlink_to(source.resolve())
    else:
        shutil.copyfile(source, target)
    return target


def _outline(args, folder: Path, network: Path) -> str:
    """The outline file's name beside the district file ('' without one)."""
    if args.outline:
        return _place(Path(args.outline), folder / f"{args.key}_area{Path(args.outline).suffix}", False).name
    if not args.outline_from_roads:
        return ""
    import geopandas as gpd

    from geo.network import load_roads
    from geo.outline import outline_from_roads

    roads = load_roads(network)
    area = gpd.GeoSeries([outline_from_roads(roads.geometry.values)], crs=roads.crs).to_crs(LONLAT_CRS)
    out = folder / f"{args.key}_area.geojson"
    feature = {
        "type": "Feature",
        "properties": {"made_by": "etc2calm district new --outline-from-roads (geo/outline.py)"},
        "geometry": json.loads(area.to_json())["features"][0]["geometry"],
    }
    out.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8")
    return out.name


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a TOML basic string


def district_toml(args, network: str, area: str, periods: dict[str, str]) -> str:
    """The minimal, commented district file of `district new` (the schema: docs/districts.md)."""
    ids = lambda text: json.dumps(list(_ids(text)))  # noqa: E731
    optional = {
        "name_en": (_q(args.name_en) if args.name_en else "", "English name"),
        "ward_ja": (_q(args.ward) if args.ward else "", "the ward: maps draw its outline when known"),
        "area": (_q(area) if area else "", "the outline: gates, cut-through and the screening area need it"),
    }
    lines = [
        f"# District {args.key}: written by `etc2calm district new`. Every field: docs/districts.md.",
        "# Required: name_ja, network, [roads] treated, the before and after [[periods]]; the rest is optional.",
        "",
        f"key = {_q(args.key)}",
        f"name_ja = {_q(args.name_ja or args.key)}",
        f"network = {_q(network)}  # road centrelines, relative to this file",
    ]
    for key, (value, note) in optional.items():
        lines.append(f"{key} = {value}  # {note}" if value else f'# {key} = "…"  # {note}')
    lines += [
        '# exclude_highway = ["service"]  # OSM classes left out (the default)',
        "",
        "[roads]",
        f"treated = {ids(args.treated)}  # the treated street's road ids",
        f"comparison = {ids(args.control)}  # untreated streets compared with it (difference in differences)",
        "# [roads.names]  # names for unnamed ways on maps, reports and sheets",
        '# "123456" = { ja = "○○通り", en = "Maru Street" }',
        "",
        "[screening]",
        f"min_vehicles = {args.min_vehicles}" if args.min_vehicles else f"# min_vehicles = {SCREENING_MIN_VEHICLES}",
        "",
        "# [publication]  # credits; min_vehicles raises the publication threshold for this district",
        '# publisher_ja = "…"',
        "",
    ]
    for name, text in periods.items():
        start, end = parse_date_range(text)
        lines += ["[[periods]]", f"name = {_q(name)}", f"start = {start}", f"end = {end}", ""]
    return "\n".join(lines)
