"""Partition-parallel aggregation on Dask: one task per Parquet partition, cubes merged exactly.

When deliveries outgrow one machine, `aggregate_partitions` spreads the core path over a Dask
cluster (a `LocalCluster` it starts, or an existing scheduler given by address, or a `Client`):

- the partitions of the point store (hive folders such as ``year=/month=/mesh=`` or
  ``operation_date=``) are listed once on the client and pruned to the dates asked for;
- each partition is one task: the worker reads it with the product's reader
  (`geo.pointsource.point_batches`), matches (`geo.matching.match_points`) and aggregates
  (`geo.aggregate.aggregate_points`) batch by batch into one mergeable `Cube`;
- the cubes are merged with `geo.aggregate.merge_cubes`, either as a tree on the workers
  (``reduce="tree"``, fan-in 8, partition order kept) or gathered and merged once on the client
  (``reduce="gather"``).

Exactness: point counts, histograms, counts over the limit and the distinct (piece, vehicle_id)
pairs are integers, so every merge order gives the same arrays as the single-process path
(`aggregate_partitions_serial`), and figures (`geo.aggregate.figures`: n_points, exact distinct
vehicles, mean, p85, shares) are identical. `sum_speed_kmh` is a float sum: identical for whole
km/h speeds (ETC2.0 delivers whole km/h; sums stay far below 2**53), and for any speeds with
``reduce="gather"`` (same partition order, one merge, as the serial path); a tree merge of
fractional speeds may differ in the last bits (rounding order).

The point store may be a local folder or an fsspec URL. Local folders and ``file://`` URLs are
read in place (every worker must see the same path: shared storage such as NFS when the cluster
spans machines). Other protocols (``s3://``, ``gs://``, ``abfs://``, ``simplecache::…``; they
need the matching fsspec package, e.g. s3fs, which is not a dependency) are listed through
fsspec and each partition's files are copied to the worker's scratch folder before the same
reader runs on them; that path is tested with fsspec's ``memory://`` filesystem in one process.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from geo.aggregate import Cube, aggregate_points, merge_cubes
from geo.matching import SegmentGridIndex, match_points
from geo.pointsource import partitions as local_partitions
from geo.pointsource import point_batches

BATCH_ROWS = 1_000_000
FAN_IN = 8


@dataclass
class PartitionResult:
    """One partition's cube and counts (what a task returns)."""

    partition: str
    cube: Cube
    n_points: int  # points read (inside bounds and dates)
    n_matched: int
    seconds: float


@dataclass
class ScaleOutResult:
    cube: Cube  # merged over all partitions
    partitions: list[str]
    n_points: int
    n_matched: int
    seconds: float  # wall clock from listing to merged cube
    n_workers: int  # 0: single process
    partition_seconds: dict[str, float] = field(default_factory=dict)


# --- the point store: local folder or fsspec URL -------------------------------------------------


def _fs_and_root(store: str | Path):
    """(fsspec filesystem, root path in it, local Path or None)."""
    import fsspec

    if isinstance(store, Path) or "://" not in str(store):
        return None, str(store), Path(store)
    from fsspec.implementations.local import LocalFileSystem

    fs, root = fsspec.core.url_to_fs(str(store))
    if isinstance(fs, LocalFileSystem):
        return fs, root, Path(root)
    return fs, root.rstrip("/"), None


def _hive_keys(rel: str) -> dict[str, str]:
    return dict(m.groups() for part in PurePosixPath(rel).parts if (m := re.fullmatch(r"([^=]+)=(.*)", part)))


def _may_hold(rel: str, start: dt.date | None, end: dt.date | None) -> bool:
    """Whether a hive partition can hold GPS dates start..end (operation_date widened by a day,
    as geo.pointsource.partitions does: 運行日 may lag GPS時刻 across midnight)."""
    if start is None or end is None:
        return True
    lo, hi = start - dt.timedelta(days=1), end + dt.timedelta(days=1)
    keys = _hive_keys(rel)
    try:
        if "operation_date" in keys:
            return lo <= dt.date.fromisoformat(keys["operation_date"]) <= hi
        if "year" in keys:
            y = int(keys["year"])
            m0, m1 = (int(keys["month"]),) * 2 if "month" in keys else (1, 12)
            return (y, m0) <= (hi.year, hi.month) and (y, m1) >= (lo.year, lo.month)
    except ValueError:
        return True
    return True


def list_partitions(store: str | Path, start: dt.date | None = None, end: dt.date | None = None) -> list[tuple[str, list[str]]]:
    """(partition folder relative to the store, its Parquet files) sorted, pruned to start..end.

    Local folders and file:// URLs: exactly `geo.pointsource.partitions`. Other fsspec URLs:
    the same leaf folders found by listing the store (files as full URLs of that filesystem).
    """
    fs, root, local = _fs_and_root(store)
    if local is not None:
        return [(rel, [str(f) for f in files]) for rel, files in local_partitions(local, start, end)]
    by_dir: dict[str, list[str]] = {}
    for f in sorted(fs.find(root)):
        if f.endswith(".parquet"):
            by_dir.setdefault(f.rsplit("/", 1)[0], []).append(f)
    out = []
    for d, files in sorted(by_dir.items()):
        rel = d[len(root):].strip("/") or "."
        if _may_hold(rel, start, end):
            out.append((rel, [fs.unstrip_protocol(f) for f in files]))
    return out


# --- one partition: read → match → aggregate (runs on a worker) -----------------------------------


def partition_cube(
    store: str | Path,
    rel: str,
    files: Sequence[str],
    index: SegmentGridIndex,
    piece_limit_kmh: np.ndarray,
    start: dt.date | None = None,
    end: dt.date | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    batch_rows: int = BATCH_ROWS,
    numba_threads: int | None = None,
) -> PartitionResult:
    """Cube of one partition with the product's reader, matcher and aggregator.

    numba_threads: threads of the compiled kernels in this task (None: numba's default, all
    cores). On a cluster give 1 per single-threaded worker process so workers do not oversubscribe.
    """
    t0 = time.perf_counter()
    if numba_threads:
        import numba

        numba.set_num_threads(max(1, min(int(numba_threads), numba.config.NUMBA_NUM_THREADS)))
    fs, _root, local = _fs_and_root(store)
    if local is not None:
        cube, n, n_matched = _aggregate_folder(local / rel, index, piece_limit_kmh, start, end, bounds, batch_rows)
    else:
        with tempfile.TemporaryDirectory(prefix="etc2calm-part-") as tmp:
            for i, f in enumerate(files):  # stage the partition's files on the worker's scratch disk
                fs.get(f, str(Path(tmp) / f"{i:05d}.parquet"))
            cube, n, n_matched = _aggregate_folder(Path(tmp), index, piece_limit_kmh, start, end, bounds, batch_rows)
    return PartitionResult(rel, cube, n, n_matched, time.perf_counter() - t0)


def _aggregate_folder(folder, index, piece_limit_kmh, start, end, bounds, batch_rows) -> tuple[Cube, int, int]:
    cubes, n, n_matched = [], 0, 0
    for b in point_batches(folder, start, end, bounds, batch_rows=batch_rows):
        m = match_points(b.x_m, b.y_m, index, b.heading_deg)
        cubes.append(aggregate_points(m.seg, m.pos, m.direction, index, b.gps_us, b.vehicle_type, b.speed_kmh,
                                      b.vehicle_id, piece_limit_kmh))  # fmt: skip
        n += len(b)
        n_matched += int((m.seg >= 0).sum())
    # Always through merge_cubes (sorted by piece, cell), so a partition's cube has one form
    # whether it came in one batch or several.
    return merge_cubes(cubes if cubes else [Cube.empty()]), n, n_matched


def _merge_results(*parts: PartitionResult) -> PartitionResult:
    return PartitionResult("+".join(p.partition for p in parts), merge_cubes([p.cube for p in parts]),
                           sum(p.n_points for p in parts), sum(p.n_matched for p in parts),
                           sum(p.seconds for p in parts))  # fmt: skip


# --- single process and Dask ------------------------------------------------------------------------


def aggregate_partitions_serial(
    store: str | Path,
    index: SegmentGridIndex,
    piece_limit_kmh: np.ndarray,
    start: dt.date | None = None,
    end: dt.date | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    *,
    batch_rows: int = BATCH_ROWS,
    numba_threads: int | None = None,
) -> ScaleOutResult:
    """The single-process path: the same per-partition work in a loop, cubes merged in partition order."""
    t0 = time.perf_counter()
    parts = list_partitions(store, start, end)
    results = [partition_cube(store, rel, files, index, piece_limit_kmh, start, end, bounds, batch_rows, numba_threads)
               for rel, files in parts]  # fmt: skip
    cube = merge_cubes([r.cube for r in results]) if results else merge_cubes([Cube.empty()])
    return ScaleOutResult(cube, [r for r, _ in parts], sum(r.n_points for r in results), sum(r.n_matched for r in results),
                          time.perf_counter() - t0, 0, {r.partition: r.seconds for r in results})  # fmt: skip


def aggregate_partitions(
    store: str | Path,
    index: SegmentGridIndex,
    piece_limit_kmh: np.ndarray,
    start: dt.date | None = None,
    end: dt.date | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    *,
    client=None,
    scheduler_address: str | None = None,
    n_workers: int = 2,
    numba_threads: int | None = 1,
    reduce: str = "tree",
    fan_in: int = FAN_IN,
    batch_rows: int = BATCH_ROWS,
) -> ScaleOutResult:
    """Partition-parallel aggregation on Dask; the merged cube equals `aggregate_partitions_serial`'s.

    Cluster: `client` (a dask.distributed Client) if given; else `scheduler_address`
    (e.g. "tcp://10.0.0.5:8786", an existing cluster: its workers need this package installed
    and the store reachable); else a LocalCluster of `n_workers` single-threaded processes,
    started and closed here. The index (road network) is sent to every worker once.
    reduce: "tree" merges on the workers (fan-in `fan_in`), "gather" merges once on the client.
    """
    if reduce not in ("tree", "gather"):
        raise ValueError(f"reduce must be 'tree' or 'gather', got {reduce!r}")
    from distributed import Client, LocalCluster

    own_cluster = own_client = None
    if client is None:
        if scheduler_address:
            client = own_client = Client(scheduler_address)
        else:
            own_cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
            client = own_client = Client(own_cluster)
    try:
        t0 = time.perf_counter()
        parts = list_partitions(store, start, end)
        store_arg = str(store)
        workers = len(client.scheduler_info(n_workers=-1)["workers"])
        if not parts:
            return ScaleOutResult(merge_cubes([Cube.empty()]), [], 0, 0, time.perf_counter() - t0, workers)
        idx, limits = client.scatter([index, np.asarray(piece_limit_kmh, dtype=np.float64)], broadcast=True)
        futures = [
            client.submit(partition_cube, store_arg, rel, files, idx, limits, start, end, bounds, batch_rows,
                          numba_threads, key=f"partition-cube-{i}-{rel}", pure=False)  # fmt: skip
            for i, (rel, files) in enumerate(parts)
        ]
        per_partition: dict[str, float] = {}
        if reduce == "gather":
            results = client.gather(futures)
            per_partition = {r.partition: r.seconds for r in results}
            total = PartitionResult("*", merge_cubes([r.cube for r in results]), sum(r.n_points for r in results),
                                    sum(r.n_matched for r in results), 0.0)  # fmt: skip
        else:
            level, futures = futures, None  # drop our references: merged partition cubes are freed
            while len(level) > 1:
                level = [client.submit(_merge_results, *level[i:i + fan_in], pure=False) if len(level[i:i + fan_in]) > 1
                         else level[i] for i in range(0, len(level), fan_in)]  # fmt: skip
            total = level[0].result()
        return ScaleOutResult(total.cube, [r for r, _ in parts], total.n_points, total.n_matched,
                              time.perf_counter() - t0, workers, per_partition)  # fmt: skip
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()


def warm_up(numba_threads: int | None = 1) -> float:
    """Compile or load the kernels in this process (run on every worker with `client.run(warm_up)`
    so that JIT / cache loading is not timed as work). Returns seconds taken."""
    import shapely

    from geo.matching import build_segment_index

    t0 = time.perf_counter()
    if numba_threads:
        import numba

        numba.set_num_threads(max(1, min(int(numba_threads), numba.config.NUMBA_NUM_THREADS)))
    index = build_segment_index(np.array([shapely.LineString([(0, 0), (100, 0)])]), radius_m=20)
    m = match_points(np.array([10.0, 50.0]), np.array([1.0, -2.0]), index, np.array([90.0, np.nan]))
    aggregate_points(m.seg, m.pos, m.direction, index, np.zeros(2, np.int64), np.ones(2, np.int32),
                     np.array([30.0, 31.0]), np.arange(2, dtype=np.int64), np.full(index.links.n_pieces, 30.0))  # fmt: skip
    return time.perf_counter() - t0
