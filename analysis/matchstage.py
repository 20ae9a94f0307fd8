"""The match stage: every point near a road network matched once per month and stored in the warehouse.

For one network (a district's, or an ad-hoc ``--roads`` file) and one month of the point store
(year / month of 運行日: a trip never crosses its operation date, so a month holds whole trips):

1. the month's points (every mesh) are read in passes of whole operation dates (`BUCKET_ROWS`);
   in each pass the trips that have a point inside the network's bounding box grown by
   `TRIP_CONTEXT_MARGIN_M` are kept with ALL their points, sorted by vehicle, operation date,
   trip and time;
2. per point, from the previous point of the same trip: time gap, heading (unknown after a gap
   over `MAX_HEADING_GAP_S` or a step under `MIN_HEADING_STEP_M`) and the mean deceleration since
   it (G); per trip: its first and last point (origin / destination when 様式1-3 is missing);
3. the points inside the grown box are matched by the compiled kernel (nearest segment within
   the radius whose bearing agrees with the heading) and stored with road, link, segment,
   direction, position and distance, plus hour and day type (weekday / weekend or 祝日);
   挙動履歴 events of the month are matched by distance.

Stored under ``matched/<district>/<YYYY-MM>-<token>/`` as points.parquet, trips.parquet and
events.parquet, recorded in the table ``match_state`` with the network's fingerprint (geometry,
ids, one-way, limits, radius and every matching parameter, and MATCH_VERSION) and the month's
source token (the committed point files). A month is matched again only when its token or the
fingerprint changed: a new delivery matches only its new months, a changed network or radius
re-matches everything. The views ``matched_points`` / ``district_trip_points`` read the files
listed in ``match_state``, which is replaced in one transaction after the files are written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import shapely

from config.settings import (
    DEFAULT_RADIUS_M,
    EXCLUDED_HIGHWAY_CLASSES,
    G_MS2,
    HEADING_TOLERANCE_DEG,
    MAX_HEADING_GAP_S,
    MIN_HEADING_STEP_M,
    TRIP_CONTEXT_MARGIN_M,
)
from etl.schema import transaction
from etl.warehouse import connect, point_files, refresh_views, table_files
from geo.aggregate import day_type_of, hour_of
from geo.matching import SegmentGridIndex, build_segment_index, match_points
from geo.network import load_roads, with_road_names

# Bump when the stored columns or the matching rules change: every month is matched again.
MATCH_VERSION = 1
MATCHED_DIR = "matched"
# Points read per pass, so memory stays bounded whatever the size of the month: a larger month is
# read in passes of whole operation dates (a trip never crosses its 運行日, and ingest writes one
# file per operation date and mesh, so every file is read by one pass only: linear in the month);
# a single day larger than this is read in hash buckets of its vehicles (one pass over that day's
# files per bucket). Passes of 1 M points also sort and gather faster than larger ones (cache):
# a 3 M-point month took 2.5 CPU-s in 1 M passes, 4.1 in one pass (bench/match.py data).
BUCKET_ROWS = 1_000_000
# Text columns read as Arrow dictionaries: decoded, sorted (by rank) and taken far cheaper than
# plain strings; written back as dictionaries (Parquet dictionary pages, no Arrow schema stored,
# so every reader sees plain strings).
_TEXT_COLUMNS = ["vehicle_key", "file_id", "member"]
_POINT_FORMAT = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=_TEXT_COLUMNS))
_POINT_COLUMNS = [
    "vehicle_id",
    "vehicle_key",
    "operation_date",
    "trip_no",
    "gps_time",
    "vehicle_type",
    "vehicle_use",
    "speed_kmh",
    "lon",
    "lat",
    "x_m",
    "y_m",
    "file_id",
    "member",
    "line_no",
]


@dataclass(frozen=True)
class Network:
    """A road network prepared for matching: roads (metres, EPSG:6677, roles set), its grid index,
    the radius (metres) and the fingerprint that keys its stored matches."""

    key: str  # district key, or 'roads:<file stem>' for an ad-hoc network
    roads: gpd.GeoDataFrame
    index: SegmentGridIndex
    radius_m: float
    fingerprint: str
    source_path: Path

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """The roads' bounding box grown by TRIP_CONTEXT_MARGIN_M (metres, EPSG:6677): points kept with their trip."""
        minx, miny, maxx, maxy = self.roads.total_bounds
        m = max(TRIP_CONTEXT_MARGIN_M, self.radius_m)
        return (minx - m, miny - m, maxx + m, maxy + m)

    @property
    def road_ids(self) -> np.ndarray:
        return self.roads["road_id"].to_numpy(dtype=object)

    @property
    def limits_kmh(self) -> np.ndarray:
        return self.roads["limit_kmh"].to_numpy(dtype=float)

    @property
    def piece_road(self) -> np.ndarray:
        return self.index.links.piece_road.astype(np.int64)


def assign_roles(roads: gpd.GeoDataFrame, treated: tuple[str, ...], comparison: tuple[str, ...]) -> gpd.GeoDataFrame:
    """Mark the given road ids as treated / comparison (other roles kept unless they claim either)."""
    roads = roads.copy()
    known = set(roads["road_id"])
    missing = [r for r in (*treated, *comparison) if r not in known]
    if missing:
        raise ValueError(f"road ids not in the network: {', '.join(missing)}")
    role = roads["role"].where(~roads["role"].isin(["treated", "comparison"]), "")
    role = np.where(roads["road_id"].isin(treated), "treated", role)
    role = np.where(roads["road_id"].isin(comparison), "comparison", role)
    roads["role"] = role
    return roads


def network_fingerprint(roads: gpd.GeoDataFrame, radius_m: float) -> str:
    """sha256 (hex, 16 chars) of what a match depends on: geometry, ids, one-way flags, limits,
    radius and the matching constants, and MATCH_VERSION."""
    h = hashlib.sha256()
    params = {
        "version": MATCH_VERSION,
        "radius_m": float(radius_m),
        "tolerance": HEADING_TOLERANCE_DEG,
        "gap_s": MAX_HEADING_GAP_S,
        "step_m": MIN_HEADING_STEP_M,
        "margin_m": TRIP_CONTEXT_MARGIN_M,
    }
    h.update(json.dumps(params, sort_keys=True).encode())
    h.update("\x1f".join(roads["road_id"]).encode())
    h.update(np.asarray(roads["oneway"], dtype=np.int8).tobytes())
    h.update(np.asarray(roads["limit_kmh"], dtype=np.float64).tobytes())
    geoms = roads.geometry.values
    h.update(np.round(shapely.get_coordinates(geoms), 3).tobytes())  # millimetres: robust to float noise
    h.update(shapely.get_num_coordinates(geoms).astype(np.int64).tobytes())
    h.update(shapely.get_num_geometries(geoms).astype(np.int64).tobytes())
    return h.hexdigest()[:16]


def prepare_network(
    roads_path: str | Path,
    key: str,
    *,
    radius_m: float = DEFAULT_RADIUS_M,
    treated: tuple[str, ...] = (),
    comparison: tuple[str, ...] = (),
    exclude_highway: tuple[str, ...] | None = EXCLUDED_HIGHWAY_CLASSES,
) -> Network:
    """Load a road network, assign roles, build its index (radius in metres) and fingerprint."""
    if not (np.isfinite(radius_m) and radius_m > 0):
        raise ValueError(f"matching radius must be a positive number of metres, got {radius_m!r}")
    roads = assign_roles(load_roads(roads_path, exclude_highway=exclude_highway), treated, comparison)
    index = build_segment_index(roads.geometry.values, radius_m=radius_m, oneway=roads["oneway"].to_numpy())
    return Network(key, roads, index, float(radius_m), network_fingerprint(roads, radius_m), Path(roads_path).resolve())


def district_network(
    district,
    radius_m: float = DEFAULT_RADIUS_M,
    *,
    treated: tuple[str, ...] | None = None,
    comparison: tuple[str, ...] | None = None,
) -> Network:
    """The network of a District (config.districts), with its treated and comparison roads (or those given)
    and the names its file gives ([roads.names]; names do not change the fingerprint)."""
    network = prepare_network(
        district.network_path,
        district.key,
        radius_m=radius_m,
        treated=district.treated_roads if treated is None else tuple(treated),
        comparison=district.comparison_roads if comparison is None else tuple(comparison),
        exclude_highway=district.exclude_highway,
    )
    names = getattr(district, "road_names", None)
    return dataclasses.replace(network, roads=with_road_names(network.roads, names)) if names else network


# ---------------------------------------------------------------------------------------------
# Per-trip features (vectorised over points sorted by trip and time)


def trip_ids(vehicle_id: np.ndarray, operation_date_days: np.ndarray, trip_no: np.ndarray) -> np.ndarray:
    """int64 identifier of (vehicle, 運行日, trip number): a 64-bit mix, so collisions among a few
    million trips have a probability of the order of 1e-6; it depends on the pseudonym key."""
    with np.errstate(over="ignore"):
        h = np.asarray(vehicle_id, dtype=np.int64).view(np.uint64).copy()
        h ^= np.asarray(operation_date_days, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        h ^= np.asarray(trip_no, dtype=np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xC4CEB9FE1A85EC53)
        h ^= h >> np.uint64(33)
    return h.view(np.int64)


def trip_features(trip: np.ndarray, gps_us: np.ndarray, x: np.ndarray, y: np.ndarray, speed_kmh: np.ndarray) -> dict:
    """From points sorted by trip then time: seq (0-based index in the trip), dt_prev_s, heading_deg
    (degrees clockwise from grid north; NaN for a trip's first point, after a gap over
    MAX_HEADING_GAP_S or a step under MIN_HEADING_STEP_M), decel_prev_g (mean deceleration since
    the previous point, G, positive when slowing; NaN for the first point) and first / last flags."""
    n = len(trip)
    new = np.ones(n, dtype=bool)
    new[1:] = trip[1:] != trip[:-1]
    start = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    seq = (np.arange(n) - start).astype(np.int32)
    dt_s = np.full(n, np.nan)
    heading = np.full(n, np.nan)
    decel = np.full(n, np.nan)
    if n > 1:
        same = ~new[1:]
        gap = (gps_us[1:] - gps_us[:-1]) / 1e6
        dx, dy = x[1:] - x[:-1], y[1:] - y[:-1]
        dt_s[1:] = np.where(same, gap, np.nan)
        ok = same & (gap <= MAX_HEADING_GAP_S) & (np.hypot(dx, dy) >= MIN_HEADING_STEP_M)
        heading[1:] = np.where(ok, np.degrees(np.arctan2(dx, dy)) % 360.0, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            d = (speed_kmh[:-1] - speed_kmh[1:]) / 3.6 / gap / G_MS2
        decel[1:] = np.where(same & (gap > 0), d, np.nan)
    last = np.ones(n, dtype=bool)
    last[:-1] = new[1:]
    return {"seq": seq, "dt_prev_s": dt_s, "heading_deg": heading, "decel_prev_g": decel, "first": new, "last": last}


# ---------------------------------------------------------------------------------------------
# One month


class StepClock:
    """Wall and CPU (process) seconds per named step, summed: `with clock("read"): ...`."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    @contextmanager
    def __call__(self, step: str):
        w, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            t = self.seconds.setdefault(step, [0.0, 0.0])
            t[0] += time.perf_counter() - w
            t[1] += time.process_time() - c


@dataclass
class MonthResult:
    points: pa.Table
    trips: pa.Table
    events: pa.Table
    n_points_read: int = 0  # points of the touching trips read (whole trips)
    # step -> [wall s, CPU s]: read (Parquet and the touching-trip filter), sort_features (sort and
    # per-trip features), match (the kernel), assemble (the stored tables), events
    timings: dict[str, list[float]] = field(default_factory=dict)


def _in_box(bounds) -> pc.Expression:
    minx, miny, maxx, maxy = bounds
    return (pc.field("x_m") >= minx) & (pc.field("x_m") <= maxx) & (pc.field("y_m") >= miny) & (pc.field("y_m") <= maxy)


def _us(col) -> np.ndarray:
    return pc.cast(col, pa.timestamp("us")).cast(pa.int64()).to_numpy(zero_copy_only=False)


def _days(col) -> np.ndarray:
    return pc.cast(col, pa.date32()).cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)


def _np(t: pa.Table, name: str, dtype=None) -> np.ndarray:
    a = t.column(name).to_numpy(zero_copy_only=False)
    return a if dtype is None else a.astype(dtype, copy=False)


def _read_plan(files: list[Path]) -> list[tuple[list[str], pc.Expression | None]]:
    """Passes over a month's point files: (files to read, filter), each pass at most BUCKET_ROWS
    points (but one whole operation date at least), every trip inside one pass."""
    paths = [str(f) for f in files]
    if not paths:
        return []
    if ds.dataset(paths, format="parquet").count_rows() <= BUCKET_ROWS:  # footers only
        return [(paths, None)]
    day_rows: dict[int, int] = {}
    file_days: list[set[int]] = []
    for p in paths:
        counts = pc.value_counts(
            pq.read_table(p, columns=["operation_date"]).column(0).cast(pa.int32()).combine_chunks().drop_null()
        )
        days = counts.field("values").to_pylist()
        for d, n in zip(days, counts.field("counts").to_pylist(), strict=True):
            day_rows[d] = day_rows.get(d, 0) + n
        file_days.append(set(days))
    date = pc.field("operation_date")
    as_date = lambda d: dt.date(1970, 1, 1) + dt.timedelta(days=d)  # noqa: E731
    plan: list[tuple[list[str], pc.Expression | None]] = []
    group: list[int] = []
    rows = 0

    def flush() -> None:
        if group:
            days = set(group)
            plan.append(
                (
                    [p for p, fd in zip(paths, file_days, strict=True) if fd & days],
                    (date >= as_date(group[0])) & (date <= as_date(group[-1])),
                )
            )

    for d in sorted(day_rows):
        n = day_rows[d]
        if group and rows + n > BUCKET_ROWS:
            flush()
            group, rows = [], 0
        if n <= BUCKET_ROWS:
            group.append(d)
            rows += n
            continue
        fs = [p for p, fd in zip(paths, file_days, strict=True) if d in fd]
        on_day = date == as_date(d)
        vehicles = (
            pc.unique(
                ds.dataset(fs, format="parquet")
                .to_table(columns=["vehicle_id"], filter=on_day)
                .column(0)
                .combine_chunks()
            )
            .to_numpy(zero_copy_only=False)
            .astype(np.int64)
        )
        k = -(-n // BUCKET_ROWS)
        bucket = vehicles.view(np.uint64) % np.uint64(k)
        for b in range(k):
            vset = vehicles[bucket == b]
            if len(vset):
                plan.append((fs, on_day & pc.is_in(pc.field("vehicle_id"), value_set=pa.array(vset, pa.int64()))))
    flush()
    return plan


def match_month(
    point_files_of_month: list[Path], network: Network, event_files: list[Path] | None = None
) -> MonthResult:
    """Match one month of the point store to `network` (see the module docstring); pure, no writes."""
    clock = StepClock()
    parts_points, parts_trips = [], []
    n_read = 0
    with clock("read"):
        plan = _read_plan(point_files_of_month)
    box = _in_box(network.bounds)
    for paths, flt in plan:
        with clock("read"):
            dataset = ds.dataset(paths, format=_POINT_FORMAT)
            # Nothing inside the box (another district's meshes or days): found from the Parquet
            # statistics and the x / y columns alone, without reading the pass.
            if dataset.head(1, columns=["x_m"], filter=box if flt is None else flt & box).num_rows == 0:
                continue
            t = dataset.to_table(columns=_POINT_COLUMNS, filter=flt)
            t, cols = _touching_trips(t, network.bounds)
        if t.num_rows == 0:
            continue
        pts, trips = _match_bucket(t, cols, network, clock)
        n_read += t.num_rows
        parts_points.append(pts)
        parts_trips.append(trips)
    with clock("assemble"):
        points = pa.concat_tables(parts_points) if parts_points else _empty(_POINTS_WRITE_SCHEMA)
        trips = pa.concat_tables(parts_trips) if parts_trips else _empty(TRIPS_SCHEMA)
    with clock("events"):
        events = _match_events(event_files or [], network)
    return MonthResult(points, trips, events, n_read, clock.seconds)


def _touching_trips(t: pa.Table, bounds) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """The rows of the trips with a point inside `bounds`, and their key columns as numpy arrays."""
    cols = {
        "vehicle_id": _np(t, "vehicle_id", np.int64),
        "days": _days(t.column("operation_date")),
        "trip_no": _np(t, "trip_no", np.int64),
        "x": _np(t, "x_m", np.float64),
        "y": _np(t, "y_m", np.float64),
    }
    cols["trip_id"] = trip_ids(cols["vehicle_id"], cols["days"], cols["trip_no"])
    minx, miny, maxx, maxy = bounds
    x, y = cols["x"], cols["y"]
    inside = (x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)
    if inside.all():
        return t, cols
    touching = pd.Index(pd.unique(cols["trip_id"][inside]))
    keep = touching.get_indexer(cols["trip_id"]) >= 0
    return t.filter(keep), {k: v[keep] for k, v in cols.items()}


def _text_rank(col: pa.ChunkedArray) -> np.ndarray:
    """Lexicographic rank of each value of a text column (dictionary or plain), nulls last."""
    chunks = [c.dictionary for c in col.chunks] if pa.types.is_dictionary(col.type) else col.chunks
    values = pc.unique(pa.concat_arrays(chunks).drop_null()) if chunks else pa.array([], pa.string())
    rank = np.empty(len(values) + 1, dtype=np.int64)
    rank[pc.sort_indices(values).to_numpy()] = np.arange(len(values))
    rank[len(values)] = len(values)  # null
    out = []
    for c in col.chunks:
        if pa.types.is_dictionary(col.type):
            code = pc.index_in(c.dictionary, value_set=values).to_numpy(zero_copy_only=False)
            idx = c.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
            r = rank[code[idx]] if len(code) else np.zeros(len(c), np.int64)
        else:
            r = rank[pc.index_in(c, value_set=values).fill_null(len(values)).to_numpy(zero_copy_only=False)]
        if c.null_count:
            r = np.where(c.is_valid().to_numpy(zero_copy_only=False), r, len(values))
        out.append(r)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


# Pass-through columns of the stored points, taken from the read table in matched order.
_CARRIED = ["vehicle_key", "vehicle_type", "vehicle_use", "lon", "lat", "file_id", "member", "line_no"]


def _match_bucket(
    t: pa.Table, cols: dict[str, np.ndarray], network: Network, clock: StepClock
) -> tuple[pa.Table, pa.Table]:
    with clock("sort_features"):
        # Sort by vehicle, 運行日, trip, time; ties in time by delivered position (file, member, line:
        # stable and key-independent within a vehicle).
        gps_us = _us(t.column("gps_time"))
        keys = pa.table(
            {
                "v": cols["vehicle_id"],
                "d": cols["days"],
                "n": cols["trip_no"],
                "g": gps_us,
                "f": _text_rank(t.column("file_id")),
                "m": _text_rank(t.column("member")),
                "l": _np(t, "line_no", np.int64),
            }
        )
        order = pc.sort_indices(keys, sort_keys=[(k, "ascending") for k in keys.column_names]).to_numpy()
        del keys
        tid, vid, days = cols["trip_id"][order], cols["vehicle_id"][order], cols["days"][order]
        trip_no, gps_us = cols["trip_no"][order].astype(np.int32), gps_us[order]
        x, y = cols["x"][order], cols["y"][order]
        speed = _np(t, "speed_kmh", np.float64)[order]
        f = trip_features(tid, gps_us, x, y, speed)
    with clock("assemble"):
        first, last = f["first"], f["last"]
        trips = pa.table(
            {
                "trip_id": tid[first],
                "vehicle_id": vid[first],
                "operation_date": _date32(days[first]),
                "trip_no": trip_no[first],
                "n_points": (np.flatnonzero(last) - np.flatnonzero(first) + 1).astype(np.int32),
                "first_time": pa.array(gps_us[first], pa.timestamp("us")),
                "last_time": pa.array(gps_us[last], pa.timestamp("us")),
                "first_x_m": x[first],
                "first_y_m": y[first],
                "last_x_m": x[last],
                "last_y_m": y[last],
            }
        )
        minx, miny, maxx, maxy = network.bounds
        sel = np.flatnonzero((x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy))
        hx, hy, hh = x[sel], y[sel], f["heading_deg"][sel]
    with clock("match"):
        m = match_points(hx, hy, network.index, hh)
    with clock("assemble"):
        links = network.index.links
        hit = m.seg >= 0
        link = np.where(hit, m.link, -1).astype(np.int32)
        road = np.where(hit, m.road, -1).astype(np.int32)
        safe_link = np.maximum(link, 0)
        road_pos = np.where(hit, links.link_offset_m[safe_link] + m.pos * links.link_length_m[safe_link], np.nan)
        limits = np.append(network.limits_kmh, np.nan)
        carried = t.select(_CARRIED).take(pa.array(order[sel]))
        g = gps_us[sel]
        points = pa.table(
            {
                "trip_id": tid[sel],
                "vehicle_id": vid[sel],
                "vehicle_key": carried.column("vehicle_key"),
                "operation_date": _date32(days[sel]),
                "trip_no": trip_no[sel],
                "seq": f["seq"][sel],
                "gps_time": pa.array(g, pa.timestamp("us")),
                "hour": hour_of(g),
                "day_type": day_type_of(g),
                "vehicle_type": carried.column("vehicle_type"),
                "vehicle_use": carried.column("vehicle_use"),
                "speed_kmh": speed[sel],
                "lon": carried.column("lon"),
                "lat": carried.column("lat"),
                "x_m": hx,
                "y_m": hy,
                "heading_deg": hh,
                "dt_prev_s": f["dt_prev_s"][sel],
                "decel_prev_g": f["decel_prev_g"][sel],
                "road_idx": road,
                "road_id": pa.DictionaryArray.from_arrays(pa.array(road, mask=~hit), _road_dictionary(network)),
                "limit_kmh": limits[np.where(hit, road, len(limits) - 1)],
                "link_id": link,
                "seg": np.where(hit, m.seg, -1).astype(np.int32),
                "pos": np.where(hit, m.pos, np.nan),
                "road_pos_m": road_pos,
                "dist_m": m.dist,
                "direction": m.direction.astype(np.int8),
                "file_id": carried.column("file_id"),
                "member": carried.column("member"),
                "line_no": carried.column("line_no"),
            }
        )
        out = points.cast(_POINTS_WRITE_SCHEMA), trips.cast(TRIPS_SCHEMA)
    return out


def _date32(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.int32()).cast(pa.date32())


def _road_dictionary(network: Network) -> pa.Array:
    return pa.array(list(network.road_ids), pa.string())


def _match_events(files: list[Path], network: Network) -> pa.Table:
    """挙動履歴 events inside the network's box, matched by distance (they carry no usable heading)."""
    if not files:
        return _empty(EVENTS_SCHEMA)
    dataset = ds.dataset([str(f) for f in files], format="parquet")
    names = set(dataset.schema.names)
    cols = [c for c in ("vehicle_id", "event_time", "x_m", "y_m", "speed_kmh", "accel_long") if c in names]
    t = dataset.to_table(columns=cols, filter=_in_box(network.bounds))
    if t.num_rows == 0:
        return _empty(EVENTS_SCHEMA)
    x, y = _np(t, "x_m", np.float64), _np(t, "y_m", np.float64)
    m = match_points(x, y, network.index)
    hit = m.seg >= 0
    road = np.where(hit, m.road, -1).astype(np.int32)
    road_ids = np.append(network.road_ids, None)
    g = _us(t.column("event_time"))
    accel = _np(t, "accel_long", np.float64) if "accel_long" in names else np.full(t.num_rows, np.nan)
    out = pa.table(
        {
            "vehicle_id": _np(t, "vehicle_id", np.int64),
            "gps_time": pc.cast(t.column("event_time"), pa.timestamp("us")),
            "hour": hour_of(g),
            "day_type": day_type_of(g),
            "x_m": x,
            "y_m": y,
            "speed_kmh": _np(t, "speed_kmh", np.float64) if "speed_kmh" in names else np.full(t.num_rows, np.nan),
            "accel_long": accel,
            # The history records threshold crossings: an event is a braking one when its longitudinal
            # acceleration is negative or not given.
            "is_braking": np.isnan(accel) | (accel < 0),
            "road_idx": road,
            "road_id": pa.array(road_ids[np.where(hit, road, len(road_ids) - 1)], pa.string()),
            "dist_m": m.dist,
        }
    )
    return out.cast(EVENTS_SCHEMA)


POINTS_SCHEMA = pa.schema(
    [
        ("trip_id", pa.int64()),
        ("vehicle_id", pa.int64()),
        ("vehicle_key", pa.string()),
        ("operation_date", pa.date32()),
        ("trip_no", pa.int32()),
        ("seq", pa.int32()),
        ("gps_time", pa.timestamp("us")),
        ("hour", pa.int8()),
        ("day_type", pa.int8()),
        ("vehicle_type", pa.int32()),
        ("vehicle_use", pa.int32()),
        ("speed_kmh", pa.float64()),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("x_m", pa.float64()),
        ("y_m", pa.float64()),
        ("heading_deg", pa.float64()),
        ("dt_prev_s", pa.float64()),
        ("decel_prev_g", pa.float64()),
        ("road_idx", pa.int32()),
        ("road_id", pa.string()),
        ("limit_kmh", pa.float64()),
        ("link_id", pa.int32()),
        ("seg", pa.int32()),
        ("pos", pa.float64()),
        ("road_pos_m", pa.float64()),
        ("dist_m", pa.float64()),
        ("direction", pa.int8()),
        ("file_id", pa.string()),
        ("member", pa.string()),
        ("line_no", pa.int64()),
    ]
)
TRIPS_SCHEMA = pa.schema(
    [
        ("trip_id", pa.int64()),
        ("vehicle_id", pa.int64()),
        ("operation_date", pa.date32()),
        ("trip_no", pa.int32()),
        ("n_points", pa.int32()),
        ("first_time", pa.timestamp("us")),
        ("last_time", pa.timestamp("us")),
        ("first_x_m", pa.float64()),
        ("first_y_m", pa.float64()),
        ("last_x_m", pa.float64()),
        ("last_y_m", pa.float64()),
    ]
)
EVENTS_SCHEMA = pa.schema(
    [
        ("vehicle_id", pa.int64()),
        ("gps_time", pa.timestamp("us")),
        ("hour", pa.int8()),
        ("day_type", pa.int8()),
        ("x_m", pa.float64()),
        ("y_m", pa.float64()),
        ("speed_kmh", pa.float64()),
        ("accel_long", pa.float64()),
        ("is_braking", pa.bool_()),
        ("road_idx", pa.int32()),
        ("road_id", pa.string()),
        ("dist_m", pa.float64()),
    ]
)


# The points as written: the same columns, text as dictionaries (see _TEXT_COLUMNS).
_POINTS_WRITE_SCHEMA = pa.schema(
    [pa.field(f.name, pa.dictionary(pa.int32(), pa.string())) if f.type == pa.string() else f for f in POINTS_SCHEMA]
)


def _empty(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()


# ---------------------------------------------------------------------------------------------
# The stage: which months to (re)match, writing, bookkeeping


@dataclass
class MatchReport:
    district: str
    fingerprint: str
    months_matched: list[tuple[int, int]] = field(default_factory=list)
    months_current: list[tuple[int, int]] = field(default_factory=list)  # already matched, unchanged
    n_points: int = 0  # stored points of the months matched now (inside the network's box)
    n_matched: int = 0  # of which matched to a road
    n_points_read: int = 0  # points of the touching trips read (whole trips) in the months matched now
    seconds: float = 0.0
    timings: dict[str, list[float]] = field(default_factory=dict)  # step -> [wall s, CPU s] (MonthResult's, and write)

    def summary(self) -> str:
        return (
            f"{self.district}: {len(self.months_matched)} months matched ({self.n_matched:,} of {self.n_points:,} "
            f"points on the network), {len(self.months_current)} already current"
        )


def source_token(files: list[Path]) -> str:
    """Identity of a month's committed point files (names and sizes; committed files are immutable)."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda p: p.as_posix()):
        h.update(f"{f.parent.name}/{f.name}:{f.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def _slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", key)


def months_between(start: dt.date, end: dt.date) -> list[tuple[int, int]]:
    """(year, month) of operation dates that can hold GPS時刻 on days start..end: from the day before
    start (a trip's operation date may precede its points across midnight) to end."""
    s = start - dt.timedelta(days=1)
    out, (y, m) = [], (s.year, s.month)
    while (y, m) <= (end.year, end.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _state(con, network: Network) -> tuple[dict, tuple | None]:
    """The district's match_state rows {(year, month): (fingerprint, token, folder)} and its matched_networks row."""
    state = {
        (r[0], r[1]): (r[2], r[3], r[4])
        for r in con.execute(
            "SELECT year, month, fingerprint, source_token, folder FROM match_state WHERE district = ?", [network.key]
        ).fetchall()
    }
    net = con.execute(
        "SELECT fingerprint, source_path, radius_m, n_roads FROM matched_networks WHERE district = ?", [network.key]
    ).fetchall()
    return state, (tuple(net[0]) if len(net) == 1 else None)


def _network_row(network: Network) -> tuple:
    return (network.fingerprint, str(network.source_path), network.radius_m, len(network.roads))


def _all_current(warehouse: Path, network: Network, tokens: dict) -> bool:
    """True when every wanted month is matched under this fingerprint and source token, nothing is
    stale and the network is recorded: read through a read-only connection (no write lock, no
    view refresh), so re-running is cheap."""
    con = connect(warehouse, read_only=True)
    try:
        state, net = _state(con, network)
    except duckdb.CatalogException:  # a warehouse older than the match stage: the write path creates its tables
        return False
    finally:
        con.close()
    current = all(
        (st := state.get(ym)) is not None and st[0] == network.fingerprint and st[1] == tok
        for ym, tok in tokens.items()
    )
    stale = any(fp != network.fingerprint and ym not in tokens for ym, (fp, _, _) in state.items())
    return current and not stale and net == _network_row(network)


def match_and_write(files: list[str], network: Network, event_files: list[str], folder: str) -> dict:
    """Match one month (`match_month`) and write its folder (`_write_month`); returns its counts and
    step timings.

    The unit of the match stage's work, run in this process or as a task on a Dask worker (which
    must reach the warehouse at the same path). Pure but for the folder it (re)writes whole."""
    t0 = time.perf_counter()
    res = match_month([Path(f) for f in files], network, [Path(f) for f in event_files])
    t_write = StepClock()
    with t_write("write"):
        _write_month(Path(folder), res)
    n_matched = int(pc.sum(pc.greater_equal(res.points.column("road_idx"), 0)).as_py() or 0)
    return {
        "n_points_read": res.n_points_read,
        "n_points": res.points.num_rows,
        "n_matched": n_matched,
        "n_trips": res.trips.num_rows,
        "n_events": res.events.num_rows,
        "seconds": time.perf_counter() - t0,
        "timings": {**res.timings, **t_write.seconds},
    }


def match_stage(
    warehouse: str | Path, network: Network, months: list[tuple[int, int]] | None = None, *, client=None
) -> MatchReport:
    """Match every month of the point store (or only `months`) whose match is missing or stale.

    Re-running is safe and cheap: current months are skipped (checked read-only when all are).
    Otherwise, holding the warehouse for writing: writes matched/<district>/…, replaces the
    district's rows of match_state in one transaction, removes superseded files, refreshes views.

    client: a `distributed.Client` (etl.cluster.dask_client): each month to match is one task on its
    workers (`match_and_write`, the same function as here; the network is sent once), which write
    the month's folder in the warehouse (the same path on every worker). The bookkeeping (match_state,
    views) stays in this process. The stored files are the same bytes either way.
    """
    t0 = time.perf_counter()
    warehouse = Path(warehouse)
    report = MatchReport(network.key, network.fingerprint)
    store = point_files(warehouse, months)
    events = table_files(warehouse, "behavior_events", months)
    wanted = sorted(store) if months is None else sorted(set(months) & set(store))
    tokens = {ym: source_token(store[ym] + events.get(ym, [])) for ym in wanted}
    if _all_current(warehouse, network, tokens):
        report.months_current = list(wanted)
        report.seconds = time.perf_counter() - t0
        return report
    con = connect(warehouse, create=False)
    committed, todo = False, []
    base = warehouse / MATCHED_DIR / _slug(network.key)
    try:
        state, _ = _state(con, network)
        rows, obsolete = [], []
        todo = []  # (year-month, token, folder, files, event files)
        for ym in wanted:
            files = store[ym]
            token = tokens[ym]
            old = state.get(ym)
            if old is not None and old[0] == network.fingerprint and old[1] == token:
                report.months_current.append(ym)
                continue
            folder = base / f"{ym[0]:04d}-{ym[1]:02d}-{network.fingerprint[:8]}{token[:8]}"
            todo.append(
                (ym, token, folder, [str(f.absolute()) for f in files], [str(f.absolute()) for f in events.get(ym, [])])
            )
        if client is not None and todo:
            (net,) = client.scatter([network], broadcast=True, hash=False)
            futures = [
                client.submit(match_and_write, files, net, ev, str(folder.absolute()), pure=False, retries=1)
                for _, _, folder, files, ev in todo
            ]
            counts = client.gather(futures)
            futures = net = None
        else:
            counts = [match_and_write(files, network, ev, str(folder)) for _, _, folder, files, ev in todo]
        for (ym, token, folder, _, _), n in zip(todo, counts, strict=True):
            old = state.get(ym)
            for step, (w, c) in n["timings"].items():
                acc = report.timings.setdefault(step, [0.0, 0.0])
                acc[0] += w
                acc[1] += c
            rows.append(
                (
                    network.key,
                    network.fingerprint,
                    ym[0],
                    ym[1],
                    token,
                    folder.relative_to(warehouse).as_posix(),
                    n["n_points_read"],
                    n["n_points"],
                    n["n_matched"],
                    n["n_trips"],
                    n["n_events"],
                    n["seconds"],
                    dt.datetime.now(),
                )
            )
            if old is not None and old[2] != folder.relative_to(warehouse).as_posix():
                obsolete.append(warehouse / old[2])
            report.months_matched.append(ym)
            report.n_points_read += n["n_points_read"]
            report.n_points += n["n_points"]
            report.n_matched += n["n_matched"]
        # Months matched under another fingerprint and not asked for now are stale: drop them so the
        # views never mix two matchings of one district.
        stale = [ym for ym, (fp, _, folder) in state.items() if fp != network.fingerprint and ym not in wanted]
        with transaction(con):
            con.execute("DELETE FROM matched_networks WHERE district = ?", [network.key])
            con.execute(
                "INSERT INTO matched_networks VALUES (?, ?, ?, ?, ?, ?)",
                [network.key, *_network_row(network), dt.datetime.now()],
            )
            for ym in stale:
                con.execute("DELETE FROM match_state WHERE district = ? AND year = ? AND month = ?", [network.key, *ym])
                obsolete.append(warehouse / state[ym][2])
            for r in rows:
                con.execute("DELETE FROM match_state WHERE district = ? AND year = ? AND month = ?", [r[0], r[2], r[3]])
                con.execute("INSERT INTO match_state VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", list(r))
            if rows or stale:
                refresh_views(con, warehouse, in_transaction=True)
        committed = True
    except BaseException:
        if not committed:  # a full disk: the months written for this run go, match_state never named them
            for _, _, folder, _, _ in todo:
                shutil.rmtree(folder, ignore_errors=True)
            for empty in (base, base.parent):  # and the folders made for them, when nothing else is there
                with contextlib.suppress(OSError):
                    empty.rmdir()
        raise
    finally:
        con.close()
    for folder in obsolete:
        shutil.rmtree(folder, ignore_errors=True)
    report.seconds = time.perf_counter() - t0
    return report


def _write_month(folder: Path, res: MonthResult) -> None:
    """Write the month's files into a fresh folder (temporary name, then renamed): never half a month."""
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_tables(tmp, res)
    except BaseException:  # a full disk: no half-written month stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def _write_tables(tmp: Path, res: MonthResult) -> None:
    tmp.mkdir(parents=True)
    for name, table in (("points", res.points), ("trips", res.trips), ("events", res.events)):
        # Dictionary pages for the text columns only (trying them on numbers costs time and gains nothing).
        text = [f.name for f in table.schema if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type)]
        pq.write_table(
            table,
            tmp / f"{name}.parquet",
            compression="zstd",
            compression_level=1,
            row_group_size=1_000_000,
            use_dictionary=text,
            store_schema=False,
        )
