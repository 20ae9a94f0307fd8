"""The match stage: every point near a road network matched once per month and stored in the warehouse.

For one network (a district's, or an ad-hoc ``--roads`` file) and one month of the point store
(year / month of 運行日: a trip never crosses its operation date, so a month holds whole trips):

1. the month's points (every mesh) are read in passes of whole operation dates (`BUCKET_ROWS`),
   only the columns the match needs; in each pass the trips that have a point inside the
   network's bounding box grown by `TRIP_CONTEXT_MARGIN_M` are kept with ALL their points,
   ordered by vehicle, operation date, trip and time (`trip_order`: linear, only the trips are
   sorted);
2. per point, from the previous point of the same trip: time gap, heading (unknown after a gap
   over `MAX_HEADING_GAP_S` or a step under `MIN_HEADING_STEP_M`) and the mean deceleration since
   it (G); per trip: its first and last point (origin / destination when 様式1-3 is missing);
3. the points inside the grown box are matched by the compiled kernel (nearest segment within
   the radius whose bearing agrees with the heading) and stored lean (POINTS_SCHEMA): segment,
   position along its link, distance and direction, the stored point's key, and what the figures
   read (trip, order in the trip, vehicle, time, class, use, speed, position, deceleration);
   挙動履歴 events of the month are matched by distance.

Every point of a touching trip inside the box is stored, matched or not, with its position in
the whole trip (seq): a later stage can read, per trip, the points just before and after a run
of points on one road.

Stored under ``matched/<district>/<YYYY-MM>-<token>/`` as points.parquet, trips.parquet and
events.parquet, recorded in the table ``match_state`` with the network's fingerprint (geometry,
ids, one-way, limits, radius and every matching parameter, and MATCH_VERSION) and the month's
source token (the committed point files); the network's segment table (link, road, limit per
segment) beside them, named in ``matched_networks``. A month is matched again only when its token
or the fingerprint changed: a new delivery matches only its new months, a changed network or
radius re-matches everything. The views ``matched_points`` / ``district_trip_points`` read the
files listed in ``match_state`` (with the segment table and the delivered columns of
probe_points joined back), which is replaced in one transaction after the files are written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from analysis._background import OneBehind, overlap_enabled
from analysis.network import Network
from config.settings import (
    G_MS2,
    MAX_HEADING_GAP_S,
    MIN_HEADING_STEP_M,
)
from etl.memory import reuse_freed_memory, trim_freed_memory
from etl.schema import EVENTS_SCHEMA, MATCHED_CALENDAR, POINTS_SCHEMA, TRIPS_SCHEMA, transaction
from etl.stage import point_keys
from etl.warehouse import connect, point_files, refresh_views, table_files
from geo.aggregate import day_type_of, holiday_table, hour_of
from geo.kernels import US_PER_DAY
from geo.matching import match_points
from geo.trip_kernels import TRIP_ORDER_OK, order_by_trip, trip_features_kernel

MATCHED_DIR = "matched"
# Points read per pass, so memory stays bounded whatever the size of the month: a larger month is
# read in passes of whole operation dates (a trip never crosses its 運行日, and ingest writes one
# file per operation date and mesh, so every file is read by one pass only: linear in the month);
# a single day larger than this is read in hash buckets of its vehicles (one pass over that day's
# files per bucket). Passes of 1 M points also sort and gather faster than larger ones (cache):
# a 3 M-point month took 2.5 CPU-s in 1 M passes, 4.1 in one pass (bench/match.py data).
BUCKET_ROWS = 1_000_000
# The columns the match reads from the point store: keys, time, class and use, speed, position and
# the stored point's key (a store written before point keys gives lon / lat to compute it).
_POINT_COLUMNS = [
    "vehicle_id",
    "operation_date",
    "trip_no",
    "gps_time",
    "vehicle_type",
    "vehicle_use",
    "speed_kmh",
    "x_m",
    "y_m",
    "point_key",
]
_LEGACY_POINT_COLUMNS = [c for c in _POINT_COLUMNS if c != "point_key"] + ["lon", "lat"]
# Text columns (read only to break ties in time) as Arrow dictionaries: ranked far cheaper than strings.
_POINT_FORMAT = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=["file_id", "member"]))
# Stored points: LZ4 without dictionary pages (the floats are incompressible; LZ4 encodes 1.7x
# faster than zstd and decodes 2x faster), statistics for the time (period filters) only.
_POINTS_PARQUET = {
    "compression": "lz4",
    "use_dictionary": False,
    "write_statistics": ["gps_time", "seg"],
    "row_group_size": 1_000_000,
    "store_schema": False,
}


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


def trip_features(  # noqa: PLR0913 - one array per column
    trip: np.ndarray,
    gps_us: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    speed_kmh: np.ndarray,
    order: np.ndarray | None = None,
    vehicle_id: np.ndarray | None = None,
) -> dict:
    """From points sorted by trip then time (the rows `order` of the arrays, `trip_order`; None: the
    arrays as they are): seq (0-based index in the trip), dt_prev_s, heading_deg (degrees clockwise
    from grid north; NaN for a trip's first point, after a gap over MAX_HEADING_GAP_S or a step
    under MIN_HEADING_STEP_M), decel_prev_g (mean deceleration since the previous point, G,
    positive when slowing; NaN for the first point), first / last flags, and the columns in that
    order (trip, gps_us, x, y, speed_kmh, vehicle_id when given), gathered in the same pass."""
    n = len(trip)
    order = None if order is None else np.ascontiguousarray(order, dtype=np.int64)
    if order is not None and len(order) and (len(order) > n or order.min() < 0 or order.max() >= n):
        raise ValueError(f"order must hold rows 0..{n - 1} of the columns (at most {n} of them)")
    if vehicle_id is not None and len(vehicle_id) != n:
        raise ValueError(f"vehicle_id has {len(vehicle_id)} rows for {n} points")
    trip, gps_us, x, y, speed_kmh, vid, seq, dt_s, heading, decel, first, last = trip_features_kernel(
        np.arange(n, dtype=np.int64) if order is None else order,
        np.ascontiguousarray(trip, dtype=np.int64),
        np.ascontiguousarray(gps_us, dtype=np.int64),
        np.ascontiguousarray(x, dtype=np.float64),
        np.ascontiguousarray(y, dtype=np.float64),
        np.ascontiguousarray(speed_kmh, dtype=np.float64),
        np.zeros(0, np.int64) if vehicle_id is None else np.ascontiguousarray(vehicle_id, dtype=np.int64),
        float(MAX_HEADING_GAP_S),
        float(MIN_HEADING_STEP_M),
        float(G_MS2),
    )
    out = {"seq": seq, "dt_prev_s": dt_s, "heading_deg": heading, "decel_prev_g": decel, "first": first, "last": last}
    out |= {"trip": trip, "gps_us": gps_us, "x": x, "y": y, "speed_kmh": speed_kmh}
    return out | ({} if vehicle_id is None else {"vehicle_id": vid})


# ---------------------------------------------------------------------------------------------
# One month


class StepClock:
    """Wall and CPU (process) seconds per named step, summed: `with clock("read"): ...`.

    Steps may run in two threads at once (`analysis._background.OneBehind`): each step's CPU is then the process's
    CPU while it ran, the other thread's included, so the steps' CPU seconds add up to more than
    the process spent."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, step: str):
        w, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            wall, cpu = time.perf_counter() - w, time.process_time() - c
            with self._lock:
                t = self.seconds.setdefault(step, [0.0, 0.0])
                t[0] += wall
                t[1] += cpu


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


def _rows_per_day(path: str) -> tuple[dict[int, int], int]:
    """Rows of a point file per operation date (days since 1970; rows without one left out) and all
    its rows: from the footer when the file holds one date (ingest writes one file per date), else
    from the column."""
    meta = pq.ParquetFile(path).metadata
    col = meta.schema.to_arrow_schema().get_field_index("operation_date")
    stats = [meta.row_group(i).column(col).statistics for i in range(meta.num_row_groups)] if col >= 0 else []
    if stats and all(st is not None and st.has_min_max and st.null_count == 0 for st in stats):
        days = {st.min for st in stats} | {st.max for st in stats}
        if len(days) == 1:
            return {(days.pop() - dt.date(1970, 1, 1)).days: meta.num_rows}, meta.num_rows
    counts = pc.value_counts(
        pq.read_table(path, columns=["operation_date"]).column(0).cast(pa.int32()).combine_chunks().drop_null()
    )
    days = dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True))
    return days, meta.num_rows


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
    whole_files = True  # every row of every file has an operation date (none null)
    for p in paths:
        counts, n_rows = _rows_per_day(p)
        for d, n in counts.items():
            day_rows[d] = day_rows.get(d, 0) + n
        file_days.append(set(counts))
        whole_files = whole_files and sum(counts.values()) == n_rows
    date = pc.field("operation_date")
    as_date = lambda d: dt.date(1970, 1, 1) + dt.timedelta(days=d)  # noqa: E731
    plan: list[tuple[list[str], pc.Expression | None]] = []
    group: list[int] = []
    rows = 0

    def flush() -> None:
        if group:
            days = set(group)
            chosen = [(p, fd) for p, fd in zip(paths, file_days, strict=True) if fd & days]
            # files wholly inside the pass's dates (ingest writes one per date): read without a
            # filter, which Arrow would evaluate and apply (a copy of every column) for nothing
            inside = whole_files and all(fd <= days for _, fd in chosen)
            plan.append(
                (
                    [p for p, _ in chosen],
                    None if inside else (date >= as_date(group[0])) & (date <= as_date(group[-1])),
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


def match_passes(point_files_of_month: list[Path], network: Network, clock: StepClock):
    """Match one month pass by pass (`_read_plan`): yields (points, trips, points read) of each pass
    with a point inside the box. Memory is bounded by a pass, whatever the size of the month."""
    with clock("read"):
        plan = _read_plan(point_files_of_month)
    for paths, flt in plan:
        with clock("read"):
            one = _read_pass(paths, flt, network)
        if one is not None:
            pts, trips = _match_pass(one, network, clock)
            n_read = one.table.num_rows
            del one  # not held while the next pass is read
            yield pts, trips, n_read
            del pts, trips


def match_month(
    point_files_of_month: list[Path], network: Network, event_files: list[Path] | None = None
) -> MonthResult:
    """Match one month of the point store to `network` (see the module docstring); pure, no writes."""
    clock = StepClock()
    parts = list(match_passes(point_files_of_month, network, clock))
    with clock("assemble"):
        points = pa.concat_tables([p for p, _, _ in parts]) if parts else _empty(POINTS_SCHEMA)
        trips = pa.concat_tables([t for _, t, _ in parts]) if parts else _empty(TRIPS_SCHEMA)
    with clock("events"):
        events = _match_events(event_files or [], network)
    return MonthResult(points, trips, events, sum(n for _, _, n in parts), clock.seconds)


@dataclass
class _Pass:
    """One pass of a month's points: the rows of the trips touching the network's box (only the
    columns the match needs), their key columns as numpy arrays, and how to read more columns of
    the same rows (the tie-break of points at the same time)."""

    table: pa.Table
    cols: dict[str, np.ndarray]
    dataset: ds.Dataset
    filter: pc.Expression | None
    keep: np.ndarray | None  # rows of the read kept (touching trips); None: all

    def read_more(self, columns: list[str]) -> pa.Table:
        t = self.dataset.to_table(columns=columns, filter=self.filter)
        return t if self.keep is None else t.filter(self.keep)


def _read_pass(paths: list[str], flt: pc.Expression | None, network: Network) -> _Pass | None:
    """Read a pass (files and filter of `_read_plan`); None when no point lies inside the box."""
    dataset = ds.dataset(paths, format=_POINT_FORMAT)
    # Nothing inside the box (another district's meshes or days): found from the Parquet
    # statistics and the x / y columns alone, without reading the pass.
    box = _in_box(network.bounds)
    if dataset.head(1, columns=["x_m"], filter=box if flt is None else flt & box).num_rows == 0:
        return None
    has_key = "point_key" in dataset.schema.names
    t = dataset.to_table(columns=_POINT_COLUMNS if has_key else _LEGACY_POINT_COLUMNS, filter=flt)
    if not has_key:  # a store written before point keys: computed as ingest computes them
        t = t.append_column("point_key", pa.array(point_keys(t), pa.int64())).select(_POINT_COLUMNS)
    t, cols, keep = _touching_trips(t, network.bounds)
    return None if t.num_rows == 0 else _Pass(t, cols, dataset, flt, keep)


def _touching_trips(t: pa.Table, bounds) -> tuple[pa.Table, dict[str, np.ndarray], np.ndarray | None]:
    """The rows of the trips with a point inside `bounds`, their key columns as numpy arrays, and the
    mask of the kept rows (None when all are kept)."""
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
        return t, cols, None
    touching = pd.Index(pd.unique(cols["trip_id"][inside]))
    keep = touching.get_indexer(cols["trip_id"]) >= 0
    return t.filter(keep), {k: v[keep] for k, v in cols.items()}, keep


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


def _factorize_runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`pd.factorize` of values that come in runs (a trip's points follow each other in a delivered
    file): only the first value of each run is hashed, the same codes in the same order."""
    if len(values) == 0:
        return np.zeros(0, np.intp), values[:0]
    heads = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    codes, uniques = pd.factorize(values[heads])
    return np.repeat(codes, np.diff(np.r_[heads, len(values)])), uniques


def trip_order(one: _Pass, gps_us: np.ndarray) -> np.ndarray:
    """Order of a pass's rows: by vehicle, 運行日, trip number and time; ties in time by delivered
    position (file, member, line: stable and key-independent within a vehicle).

    Linear in the pass (geo.trip_kernels.order_by_trip): only the distinct trips are sorted. The
    delivered position is read only when a trip has two points at the same time."""
    cols = one.cols
    codes, uniques = _factorize_runs(cols["trip_id"])
    first = np.empty(len(uniques), dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    v, d, n = cols["vehicle_id"][first], cols["days"][first], cols["trip_no"][first]
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[np.lexsort((n, d, v))] = np.arange(len(uniques))
    order, status = order_by_trip(
        codes.astype(np.int64), rank, cols["vehicle_id"], cols["days"], cols["trip_no"], gps_us
    )
    if status == TRIP_ORDER_OK:
        return order
    where = one.read_more(["file_id", "member", "line_no"])
    keys = pa.table(
        {
            "v": cols["vehicle_id"],
            "d": cols["days"],
            "n": cols["trip_no"],
            "g": gps_us,
            "f": _text_rank(where.column("file_id")),
            "m": _text_rank(where.column("member")),
            "l": _np(where, "line_no", np.int64),
        }
    )
    return pc.sort_indices(keys, sort_keys=[(k, "ascending") for k in keys.column_names]).to_numpy()


def _trips_table(tid, vid, first_days, first_trip_no, gps_us, x, y, f: dict) -> pa.Table:
    """The trips of a pass: per point tid, vid, gps_us, x, y (trip order), per trip its 運行日 and trip number."""
    first, last = f["first"], f["last"]
    return pa.table(
        {
            "trip_id": tid[first],
            "vehicle_id": vid[first],
            "operation_date": _date32(first_days),
            "trip_no": first_trip_no,
            "n_points": (np.flatnonzero(last) - np.flatnonzero(first) + 1).astype(np.int32),
            "first_time": pa.array(gps_us[first], pa.timestamp("us")),
            "last_time": pa.array(gps_us[last], pa.timestamp("us")),
            "first_x_m": x[first],
            "first_y_m": y[first],
            "last_x_m": x[last],
            "last_y_m": y[last],
        }
    ).cast(TRIPS_SCHEMA)


def _match_pass(one: _Pass, network: Network, clock: StepClock) -> tuple[pa.Table, pa.Table]:
    """Sort a pass into trips, derive the trip features, match the points inside the box and
    assemble the lean stored points (POINTS_SCHEMA) and the trips (TRIPS_SCHEMA)."""
    t, cols = one.table, one.cols
    with clock("sort_features"):
        gps_us = _us(t.column("gps_time"))
        order = trip_order(one, gps_us)
        f = trip_features(cols["trip_id"], gps_us, cols["x"], cols["y"], _np(t, "speed_kmh"), order, cols["vehicle_id"])
        tid, vid, gps_us, x, y, speed = (f[k] for k in ("trip", "vehicle_id", "gps_us", "x", "y", "speed_kmh"))
    with clock("assemble"):
        first_rows = order[f["first"]]  # each trip's first row: its 運行日 and trip number
        trips = _trips_table(
            tid, vid, cols["days"][first_rows], cols["trip_no"][first_rows].astype(np.int32), gps_us, x, y, f
        )
        minx, miny, maxx, maxy = network.bounds
        inside = (x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy)
        # every point of the pass inside the box (a network that covers the delivery): no copies
        sel = slice(None) if inside.all() else np.flatnonzero(inside)
    with clock("match"):
        m = match_points(x[sel], y[sel], network.index, f["heading_deg"][sel])
    with clock("assemble"):
        rows = order[sel]
        points = pa.table(
            {
                "point_key": _np(t, "point_key", np.int64)[rows],
                "trip_id": tid[sel],
                "seq": f["seq"][sel],
                "vehicle_id": vid[sel],
                "gps_time": pa.array(gps_us[sel], pa.timestamp("us")),
                "vehicle_type": _np(t, "vehicle_type", np.int8)[rows],
                "vehicle_use": _np(t, "vehicle_use", np.int8)[rows],
                "speed_kmh": speed[sel],
                "x_m": x[sel],
                "y_m": y[sel],
                "decel_prev_g": f["decel_prev_g"][sel],
                "seg": m.seg,
                "pos": m.pos,
                "dist_m": m.dist,
                "direction": m.direction.astype(np.int8),
            },
            schema=POINTS_SCHEMA,
        )
    return points, trips


def _date32(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.int32()).cast(pa.date32())


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


# The lean stored match (one row per stored point: the points of the touching trips inside the
# network's grown box), in the narrowest types that hold each value exactly. What the match made
# (segment, position along its link, distance, direction), a reference to the stored point
# (point_key, probe_points.point_key) and what the figures read: trip and order, vehicle, time,
# class and use, speed, position and the deceleration since the previous point of the trip. Road,
# link, road position, limit, hour and day type follow from the network and the time
# (analysis.points.with_derived); the delivered columns are in probe_points (the view
# matched_points joins them back on point_key).
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


def _state(con, network: Network) -> tuple[dict, tuple | None]:
    """The district's match_state rows {(year, month): (fingerprint, token, folder)} and its matched_networks row."""
    state = {
        (r[0], r[1]): (r[2], r[3], r[4])
        for r in con.execute(
            "SELECT year, month, fingerprint, source_token, folder FROM match_state WHERE district = ?", [network.key]
        ).fetchall()
    }
    net = con.execute(
        "SELECT fingerprint, source_path, radius_m, n_roads, segments_file FROM matched_networks WHERE district = ?",
        [network.key],
    ).fetchall()
    return state, (tuple(net[0]) if len(net) == 1 else None)


def segments_file(network: Network) -> str:
    """The network's segment table, relative to the warehouse (see `write_segments`)."""
    return f"{MATCHED_DIR}/{_slug(network.key)}/segments-{network.fingerprint}.parquet"


def segments_table(network: Network) -> pa.Table:
    """Per segment of the network: its link, road (index, id, limit) and the link's offset along the
    road and length (metres) — what turns a stored (seg, pos) into road figures, in SQL too."""
    links = network.index.links
    link = links.seg_link.astype(np.int32)
    road = links.link_road[link].astype(np.int32)
    return pa.table(
        {
            "seg": np.arange(len(link), dtype=np.int32),
            "link_id": link,
            "road_idx": road,
            "road_id": pa.array(network.road_ids[road].tolist(), pa.string()),
            "limit_kmh": network.limits_kmh[road],
            "link_offset_m": links.link_offset_m[link],
            "link_length_m": links.link_length_m[link],
        }
    )


def calendar_table() -> pa.Table:
    """Day type (geo.aggregate.day_type_of) of every day of the holiday table: what the views join."""
    day0, flags = holiday_table()
    days = np.arange(day0, day0 + len(flags), dtype=np.int64)
    return pa.table({"day": _date32(days), "day_type": day_type_of(days * US_PER_DAY)})


def _write_once(path: Path, table: pa.Table) -> list[Path]:
    """Write `path` unless it exists; returns [path] when written now, else []."""
    if path.exists():
        return []
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        pq.write_table(table, tmp, compression="zstd", store_schema=False)
    except BaseException:  # a full disk: no temporary file stays behind
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return [path]


def write_segments(warehouse: Path, network: Network) -> list[Path]:
    """Write the network's segment table (once per fingerprint) and the calendar (once): the views
    join them to the stored points. Returns the files written now (a failed run removes them)."""
    written = _write_once(Path(warehouse) / segments_file(network), segments_table(network))
    try:
        return written + _write_once(Path(warehouse) / MATCHED_CALENDAR, calendar_table())
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def _network_row(network: Network) -> tuple:
    return (network.fingerprint, str(network.source_path), network.radius_m, len(network.roads), segments_file(network))


def _current_state(warehouse: Path, network: Network, tokens: dict) -> dict | None:
    """The district's match_state rows when every wanted month is matched under this fingerprint and
    source token, nothing is stale and the network is recorded (else None): read through a
    read-only connection (no write lock, no view refresh), so re-running is cheap."""
    con = connect(warehouse, read_only=True)
    try:
        state, net = _state(con, network)
    except duckdb.CatalogException:  # a warehouse older than the match stage: the write path creates its tables
        return None
    finally:
        con.close()
    current = all(
        (st := state.get(ym)) is not None and st[0] == network.fingerprint and st[1] == tok
        for ym, tok in tokens.items()
    )
    stale = any(fp != network.fingerprint and ym not in tokens for ym, (fp, _, _) in state.items())
    ok = current and not stale and net == _network_row(network)
    written = (Path(warehouse) / segments_file(network)).exists() and (Path(warehouse) / MATCHED_CALENDAR).exists()
    return state if ok and written else None


def count_matched(points: pa.Table) -> int:
    """Stored points matched to a road."""
    return int(pc.sum(pc.greater_equal(points.column("seg"), 0)).as_py() or 0)


def _match_month_and_write(
    files: list[str], network: Network, event_files: list[str], folder: str, on_points=None
) -> dict:
    """`match_and_write`; `on_points(points)` (when given) sees each pass's stored points while they
    are in memory, in the order they are written (one row group per pass). With `overlap_enabled()`
    (`analysis._background.OneBehind`), each pass is written in one background thread and reduced
    (`on_points`) in another while the next pass is read and matched; both finish with a pass
    before they are given the next, so at most two passes are in memory."""
    t0 = time.perf_counter()
    reuse_freed_memory()
    clock = StepClock()
    counts = {"n_points_read": 0, "n_points": 0, "n_matched": 0, "n_trips": 0}
    overlap = overlap_enabled()
    with (
        _MonthWriter(Path(folder), clock) as out,
        OneBehind(overlap) as writer,
        OneBehind(overlap and on_points is not None) as reducer,
    ):
        for pts, trips, n_read in match_passes([Path(f) for f in files], network, clock):
            counts["n_points_read"] += n_read
            counts["n_points"] += pts.num_rows
            counts["n_matched"] += count_matched(pts)
            counts["n_trips"] += trips.num_rows
            writer.submit(out.write, pts, trips)
            if on_points is not None:
                reducer.submit(on_points, pts)
            del pts, trips  # the background jobs hold the pass now: freed when they are done
        writer.wait()
        reducer.wait()
        with clock("events"):
            events = _match_events([Path(f) for f in event_files], network)
        out.finish(events)
    return {**counts, "n_events": events.num_rows, "seconds": time.perf_counter() - t0, "timings": clock.seconds}


def match_and_write(files: list[str], network: Network, event_files: list[str], folder: str) -> dict:
    """Match one month (`match_month`) and write its folder (`_write_month`); returns its counts and
    step timings.

    The unit of the match stage's work, run in this process or as a task on a Dask worker (which
    must reach the warehouse at the same path). Pure but for the folder it (re)writes whole."""
    return _match_month_and_write(files, network, event_files, folder)


def month_point_parts(folder: Path, columns: list[str] | None = None):
    """The stored points of one month folder (all columns, or `columns`) part by part: the row groups
    as written, one per pass of the match (what `on_month` saw when the month was matched)."""
    f = pq.ParquetFile(Path(folder) / "points.parquet")
    for i in range(f.metadata.num_row_groups):
        yield f.read_row_group(i, columns=columns)


@dataclass
class _Todo:
    ym: tuple[int, int]
    token: str
    folder: Path
    files: list[str]
    events: list[str]


def _months_to_match(warehouse: Path, network: Network, wanted, tokens, state, store, events, report) -> list[_Todo]:
    """The wanted months whose match is missing or stale (the others are recorded as current)."""
    base = warehouse / MATCHED_DIR / _slug(network.key)
    todo = []
    for ym in wanted:
        old = state.get(ym)
        if old is not None and old[0] == network.fingerprint and old[1] == tokens[ym]:
            report.months_current.append(ym)
            continue
        folder = base / f"{ym[0]:04d}-{ym[1]:02d}-{network.fingerprint[:8]}{tokens[ym][:8]}"
        files = [str(f.absolute()) for f in store[ym]]
        todo.append(_Todo(ym, tokens[ym], folder, files, [str(f.absolute()) for f in events.get(ym, [])]))
    return todo


def _match_on_cluster(client, network: Network, todo: list[_Todo]) -> list[dict]:
    (net,) = client.scatter([network], broadcast=True, hash=False)
    futures = [
        client.submit(match_and_write, t.files, net, t.events, str(t.folder.absolute()), pure=False, retries=1)
        for t in todo
    ]
    return client.gather(futures)


def _match_here(warehouse: Path, network: Network, wanted, todo: list[_Todo], state: dict, on_month) -> list[dict]:
    """Match the months of `todo` in this process, in month order; `on_month(ym, points)` (when
    given) sees every wanted month's points: a month matched now from memory, one already
    current read from its folder."""
    by_month = {t.ym: t for t in todo}
    counts = []
    for ym in wanted:
        t = by_month.get(ym)
        if t is not None:
            feed = None if on_month is None else (lambda pts, ym=ym: on_month(ym, pts))
            counts.append(_match_month_and_write(t.files, network, t.events, str(t.folder), feed))
        elif on_month is not None:
            for pts in month_point_parts(warehouse / state[ym][2]):
                on_month(ym, pts)
                del pts
        trim_freed_memory()  # the month's points are gone: their memory goes back to the system
    return counts


def _state_row(network: Network, t: _Todo, n: dict, warehouse: Path) -> tuple:
    return (
        network.key,
        network.fingerprint,
        t.ym[0],
        t.ym[1],
        t.token,
        t.folder.relative_to(warehouse).as_posix(),
        n["n_points_read"],
        n["n_points"],
        n["n_matched"],
        n["n_trips"],
        n["n_events"],
        n["seconds"],
        dt.datetime.now(),
    )


def _record(con, warehouse: Path, network: Network, rows: list[tuple], stale: list, state: dict) -> list[Path]:
    """Replace the district's rows of matched_networks and match_state in one transaction; returns
    the folders of the stale months dropped."""
    obsolete = []
    with transaction(con):
        con.execute("DELETE FROM matched_networks WHERE district = ?", [network.key])
        con.execute(
            "INSERT INTO matched_networks VALUES (?, ?, ?, ?, ?, ?, ?)",
            [network.key, *_network_row(network)[:4], dt.datetime.now(), _network_row(network)[4]],
        )
        for ym in stale:
            con.execute("DELETE FROM match_state WHERE district = ? AND year = ? AND month = ?", [network.key, *ym])
            obsolete.append(warehouse / state[ym][2])
        for r in rows:
            con.execute("DELETE FROM match_state WHERE district = ? AND year = ? AND month = ?", [r[0], r[2], r[3]])
            con.execute("INSERT INTO match_state VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", list(r))
        refresh_views(con, warehouse, in_transaction=True)
    return obsolete


def _add_counts(report: MatchReport, t: _Todo, n: dict) -> None:
    for step, (w, c) in n["timings"].items():
        acc = report.timings.setdefault(step, [0.0, 0.0])
        acc[0] += w
        acc[1] += c
    report.months_matched.append(t.ym)
    report.n_points_read += n["n_points_read"]
    report.n_points += n["n_points"]
    report.n_matched += n["n_matched"]


def match_stage(
    warehouse: str | Path,
    network: Network,
    months: list[tuple[int, int]] | None = None,
    *,
    client=None,
    on_month=None,
) -> MatchReport:
    """Match every month of the point store (or only `months`) whose match is missing or stale.

    Re-running is safe and cheap: current months are skipped (checked read-only when all are).
    Otherwise, holding the warehouse for writing: writes matched/<district>/…, replaces the
    district's rows of match_state in one transaction, removes superseded files, refreshes views.

    on_month(ym, points): called for every wanted month in month order with its stored points
    (POINTS_SCHEMA): a month matched now while it is still in memory (the fused path of
    `analyze`: its cube is made without reading the month back), a current one read from its
    folder. Not with `client`.

    client: a `distributed.Client` (etl.cluster.dask_client): each month to match is one task on its
    workers (`match_and_write`, the same function as here; the network is sent once), which write
    the month's folder in the warehouse (the same path on every worker). The bookkeeping (match_state,
    views) stays in this process. The stored files are the same bytes either way.
    """
    t0 = time.perf_counter()
    warehouse = Path(warehouse)
    if client is not None and on_month is not None:
        raise ValueError("match_stage: on_month runs in this process only (not with a client)")
    report = MatchReport(network.key, network.fingerprint)
    store = point_files(warehouse, months)
    events = table_files(warehouse, "behavior_events", months)
    wanted = sorted(store) if months is None else sorted(set(months) & set(store))
    tokens = {ym: source_token(store[ym] + events.get(ym, [])) for ym in wanted}
    state = _current_state(warehouse, network, tokens)
    if state is not None:
        report.months_current = list(wanted)
        _match_here(warehouse, network, wanted, [], state, on_month)
        report.seconds = time.perf_counter() - t0
        return report
    con = connect(warehouse, create=False)
    committed, todo, written = False, [], []
    base = warehouse / MATCHED_DIR / _slug(network.key)
    try:
        state, _ = _state(con, network)
        written = write_segments(warehouse, network)
        todo = _months_to_match(warehouse, network, wanted, tokens, state, store, events, report)
        if client is not None and todo:
            counts = _match_on_cluster(client, network, todo)
        else:
            counts = _match_here(warehouse, network, wanted, todo, state, on_month)
        for t, n in zip(todo, counts, strict=True):
            _add_counts(report, t, n)
        rows = [_state_row(network, t, n, warehouse) for t, n in zip(todo, counts, strict=True)]
        obsolete = [
            warehouse / state[t.ym][2]
            for t, r in zip(todo, rows, strict=True)
            if t.ym in state and state[t.ym][2] != r[5]
        ]
        # Months matched under another fingerprint and not asked for now are stale: drop them so the
        # views never mix two matchings of one district.
        stale = [ym for ym, (fp, _, _) in state.items() if fp != network.fingerprint and ym not in wanted]
        obsolete += _record(con, warehouse, network, rows, stale, state)
        committed = True
    except BaseException:
        if not committed:  # a full disk: the months written for this run go, match_state never named them
            for t in todo:
                shutil.rmtree(t.folder, ignore_errors=True)
            for path in written:  # the segment table and calendar first written by this run
                path.unlink(missing_ok=True)
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


class _MonthWriter:
    """A month folder written pass by pass into a temporary folder, renamed into place when finished
    (never half a month): points one row group per pass, trips and events at the end."""

    def __init__(self, folder: Path, clock: StepClock):
        self.folder, self.clock = folder, clock
        self.tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        self.trips: list[pa.Table] = []
        self.writer = None

    def __enter__(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        opts = {k: v for k, v in _POINTS_PARQUET.items() if k != "row_group_size"}
        self.writer = pq.ParquetWriter(self.tmp / "points.parquet", POINTS_SCHEMA, **opts)
        return self

    def write(self, points: pa.Table, trips: pa.Table) -> None:
        with self.clock("write"):
            self.writer.write_table(points, row_group_size=max(1, points.num_rows))
        self.trips.append(trips)

    def finish(self, events: pa.Table) -> None:
        with self.clock("write"):
            self.writer.close()
            self.writer = None
            trips = pa.concat_tables(self.trips) if self.trips else _empty(TRIPS_SCHEMA)
            for name, table in (("trips", trips), ("events", events)):
                _write_small(table, self.tmp / f"{name}.parquet")
            shutil.rmtree(self.folder, ignore_errors=True)
            os.replace(self.tmp, self.folder)

    def __exit__(self, exc_type, *exc) -> None:
        # Failed before the rename (a full disk while writing a pass, closing the points file, or writing
        # the trips and events in `finish`), or left unfinished: nothing of the month is left behind.
        if exc_type is None and self.writer is None:
            return
        if self.writer is not None:
            with contextlib.suppress(OSError):  # closing flushes the last pages: on a full disk it fails too
                self.writer.close()
            self.writer = None
        shutil.rmtree(self.tmp, ignore_errors=True)


def _write_small(table: pa.Table, path: Path) -> None:
    # Dictionary pages for the text columns only (trying them on numbers costs time and gains nothing).
    text = [f.name for f in table.schema if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type)]
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=1,
        row_group_size=1_000_000,
        use_dictionary=text,
        store_schema=False,
    )


def _write_month(folder: Path, res: MonthResult) -> None:
    """Write a matched month (`match_month`) into its folder, as the match stage does."""
    with _MonthWriter(folder, StepClock()) as out:
        if res.points.num_rows:
            out.write(res.points, res.trips)
        out.finish(res.events)
