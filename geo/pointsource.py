"""Reading probe points from the warehouse's Parquet store, column-wise, partition by partition.

The one reader of the product's core (analysis and benchmark alike). It streams record batches
of the columns the kernels need, pruning hive partitions (``operation_date=…`` or
``year=…/month=…/…``) by date and row groups by statistics, so memory stays bounded by a batch.

Columns the ingest may not (yet) store are derived here:
- ``vehicle_id`` (int64): the first 8 bytes of the HMAC pseudonym ``vehicle_key`` (big-endian,
  two's complement), the same definition as ingest's;
- ``heading_deg``: direction of travel from the previous point of the same vehicle and trip,
  degrees clockwise from grid north (EPSG:6677), NaN for a trip's first point; derived within a
  partition after sorting by (vehicle, trip, time), which sees whole trips as long as partitions
  hold whole 運行日 (the ``operation_date=`` layout).
A heading whose previous point is more than ``max_heading_gap_s`` seconds earlier, or less than
``min_heading_step_m`` metres away, is treated as unknown (matching by distance only).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

MAX_HEADING_GAP_S = 120.0
MIN_HEADING_STEP_M = 5.0
BATCH_ROWS = 2_000_000
CORE_COLUMNS = ["x_m", "y_m", "speed_kmh", "gps_time", "vehicle_type"]


@dataclass
class PointBatch:
    partition: str  # partition folder relative to the points folder
    x_m: np.ndarray
    y_m: np.ndarray
    speed_kmh: np.ndarray
    heading_deg: np.ndarray  # NaN when unknown
    vehicle_id: np.ndarray  # int64
    gps_us: np.ndarray  # int64 microseconds since 1970-01-01 of the JST wall-clock time
    vehicle_type: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.x_m)


_HEX = np.full(256, 0, dtype=np.uint64)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i


def vehicle_id_from_key(keys) -> np.ndarray:
    """int64 of the first 16 hex characters (8 bytes, big-endian) of each pseudonym, vectorised."""
    arr = pc.utf8_slice_codeunits(pa.array(keys) if not isinstance(keys, (pa.Array, pa.ChunkedArray)) else keys, 0, 16)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    raw = np.asarray(arr.to_numpy(zero_copy_only=False).astype("S16"))
    digits = _HEX[raw.view(np.uint8).reshape(-1, 16)]
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    return np.bitwise_or.reduce(digits << shifts, axis=1).view(np.int64)


def derive_heading(vehicle_id, trip_no, gps_us, x, y, max_gap_s=MAX_HEADING_GAP_S, min_step_m=MIN_HEADING_STEP_M):
    """Heading (degrees clockwise from grid north) from the previous point of the same vehicle and trip."""
    order = np.lexsort((gps_us, trip_no, vehicle_id))
    v, t, g = vehicle_id[order], trip_no[order], gps_us[order]
    xs, ys = x[order], y[order]
    heading = np.full(len(order), np.nan)
    if len(order) > 1:
        same = (v[1:] == v[:-1]) & (t[1:] == t[:-1])
        dx, dy = np.diff(xs), np.diff(ys)
        gap = np.diff(g) / 1e6
        ok = same & (gap <= max_gap_s) & (np.hypot(dx, dy) >= min_step_m)
        h = np.degrees(np.arctan2(dx, dy)) % 360.0
        heading[1:] = np.where(ok, h, np.nan)
    out = np.empty_like(heading)
    out[order] = heading
    return out


def _partition_keys(rel: Path) -> dict[str, str]:
    return dict(m.groups() for part in rel.parts if (m := re.fullmatch(r"([^=]+)=(.*)", part)))


def _keep(keys: dict[str, str], lo: dt.date | None, hi: dt.date | None) -> bool:
    if lo is None or hi is None:
        return True
    try:
        if "operation_date" in keys:
            d = dt.date.fromisoformat(keys["operation_date"])
            return lo <= d <= hi
        if "year" in keys:
            y = int(keys["year"])
            m0, m1 = (int(keys["month"]),) * 2 if "month" in keys else (1, 12)
            return (y, m0) <= (hi.year, hi.month) and (y, m1) >= (lo.year, lo.month)
    except ValueError:
        return True
    return True


def partition_may_hold(rel: str | Path, start: dt.date | None, end: dt.date | None) -> bool:
    """Whether a hive partition folder (relative path) can hold GPS dates start..end (inclusive).

    operation_date may lag GPS time across midnight, so the dates are widened by a day.
    """
    lo = start - dt.timedelta(days=1) if start else None
    hi = end + dt.timedelta(days=1) if end else None
    return _keep(_partition_keys(Path(rel)), lo, hi)


def partitions(points_dir: str | Path, start: dt.date | None = None, end: dt.date | None = None) -> list[tuple[str, list[Path]]]:
    """Leaf folders holding Parquet files (sorted), pruned to those that can hold [start, end]."""
    points_dir = Path(points_dir)
    if not points_dir.exists():
        return []
    by_dir: dict[Path, list[Path]] = {}
    for f in sorted(points_dir.rglob("*.parquet")):
        by_dir.setdefault(f.parent, []).append(f)
    out = []
    for d, files in sorted(by_dir.items()):
        rel = d.relative_to(points_dir)
        if partition_may_hold(rel, start, end):
            out.append((rel.as_posix(), files))
    return out


def point_batches(
    points_dir: str | Path,
    start: dt.date | None = None,
    end: dt.date | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    *,
    batch_rows: int = BATCH_ROWS,
    max_heading_gap_s: float = MAX_HEADING_GAP_S,
    extra_filter=None,
) -> Iterator[PointBatch]:
    """Points with GPS時刻 on days start..end (inclusive, JST) inside bounds (metres, EPSG:6677).

    Yields one or more batches per partition, each at most `batch_rows` points. `extra_filter`
    (a pyarrow dataset expression, e.g. from analysis.filters.PointFilter) keeps only matching
    points; headings are those stored at ingest, so filtering never changes them.
    """
    for rel, files in partitions(points_dir, start, end):
        dataset = ds.dataset([str(f) for f in files], format="parquet")
        names = set(dataset.schema.names)
        filt = None
        if start is not None and end is not None:
            t0 = pa.scalar(dt.datetime.combine(start, dt.time()), pa.timestamp("us"))
            t1 = pa.scalar(dt.datetime.combine(end + dt.timedelta(days=1), dt.time()), pa.timestamp("us"))
            filt = (ds.field("gps_time") >= t0) & (ds.field("gps_time") < t1)
        box = None
        if bounds is not None:
            minx, miny, maxx, maxy = bounds
            box = (ds.field("x_m") >= minx) & (ds.field("x_m") <= maxx) & (ds.field("y_m") >= miny) & (ds.field("y_m") <= maxy)
        if extra_filter is not None:
            box = extra_filter if box is None else box & extra_filter
        if {"heading_deg", "vehicle_id"} <= names:
            cols = CORE_COLUMNS + ["heading_deg", "vehicle_id"] + [c for c in ("dt_prev_s", "dist_prev_m") if c in names]
            both = box if filt is None else (filt if box is None else filt & box)
            for rb in dataset.to_batches(columns=cols, filter=both, batch_size=batch_rows):
                if rb.num_rows:
                    yield _batch(rel, rb, max_heading_gap_s)
        else:
            extra_cols = [c for c in ("vehicle_use",) if c in names and extra_filter is not None]
            cols = CORE_COLUMNS + ["vehicle_key", "trip_no"] + extra_cols
            table = dataset.to_table(columns=cols, filter=filt)
            if table.num_rows == 0:
                continue
            vid = vehicle_id_from_key(table.column("vehicle_key"))
            x = table.column("x_m").to_numpy()
            y = table.column("y_m").to_numpy()
            g = _us(table.column("gps_time"))
            heading = derive_heading(vid, table.column("trip_no").to_numpy(zero_copy_only=False), g, x, y, max_heading_gap_s)
            table = table.drop_columns(["vehicle_key", "trip_no"])
            table = table.append_column("heading_deg", pa.array(heading)).append_column("vehicle_id", pa.array(vid))
            if box is not None:
                table = ds.dataset(table).to_table(filter=box).drop_columns(extra_cols)
            for rb in table.to_batches(max_chunksize=batch_rows):
                if rb.num_rows:
                    yield _batch(rel, rb, None)


def concat_batches(batches: list[PointBatch]) -> PointBatch | None:
    """One batch of all given batches (None when there are none)."""
    if not batches:
        return None
    if len(batches) == 1:
        return batches[0]
    fields = ["x_m", "y_m", "speed_kmh", "heading_deg", "vehicle_id", "gps_us", "vehicle_type"]
    return PointBatch("*", *(np.concatenate([getattr(b, f) for b in batches]) for f in fields))


def _us(col) -> np.ndarray:
    return pc.cast(col, pa.timestamp("us")).cast(pa.int64()).to_numpy(zero_copy_only=False)


def _batch(rel: str, rb: pa.RecordBatch, max_gap_s: float | None) -> PointBatch:
    heading = rb.column("heading_deg").to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    if max_gap_s is not None and "dt_prev_s" in rb.schema.names:
        gap = rb.column("dt_prev_s").to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        heading = np.where(gap <= max_gap_s, heading, np.nan)
    if max_gap_s is not None and "dist_prev_m" in rb.schema.names:
        step = rb.column("dist_prev_m").to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        heading = np.where(step >= MIN_HEADING_STEP_M, heading, np.nan)
    return PointBatch(
        rel,
        rb.column("x_m").to_numpy(zero_copy_only=False),
        rb.column("y_m").to_numpy(zero_copy_only=False),
        rb.column("speed_kmh").to_numpy(zero_copy_only=False).astype(np.float64, copy=False),
        heading,
        rb.column("vehicle_id").to_numpy(zero_copy_only=False).astype(np.int64, copy=False),
        _us(rb.column("gps_time")),
        rb.column("vehicle_type").to_numpy(zero_copy_only=False).astype(np.int32, copy=False),
    )
