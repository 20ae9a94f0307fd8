"""Partition-parallel aggregation on Dask: one task per Parquet partition, cubes merged exactly.

When deliveries outgrow one machine, `aggregate_partitions` spreads the core path over a Dask
cluster (a `LocalCluster` it starts, or an existing scheduler given by address, or a `Client`):

- the partitions of the point store (hive folders such as ``year=/month=/mesh=`` or
  ``operation_date=``) are listed once on the client and pruned to the dates asked for;
- each partition is one task: the worker reads it with the product's reader
  (`geo.pointsource.point_batches`), matches (`geo.matching.match_points`) and aggregates
  (`geo.aggregate.aggregate_points`) batch by batch into one mergeable `Cube`;
- the cubes are merged with `geo.aggregate.merge_cubes` without funnelling through one process:
  each partition's cube is cut into ranges of piece ids, and each range is merged across all
  partitions on a worker (``reduce="shard"``, a shuffle by piece); the client concatenates the
  merged ranges. ``reduce="gather"`` merges every partition's cube once on the client instead.

Exactness: both reductions give exactly the arrays `merge_cubes` gives on the partition cubes
in partition order, i.e. the single-process path (`aggregate_partitions_serial`): counts,
histograms and the distinct (piece, vehicle_id) pairs are integers; `sum_speed_kmh` is added in
the same order (rows of one (piece, cell) keep partition order within their range). So figures
(`geo.aggregate.figures`: n_points, exact distinct vehicles of any union of pieces, mean, p85,
shares) are identical.

The point store may be a local folder or an fsspec URL. Local folders and ``file://`` URLs are
read in place (every worker must see the same path: shared storage such as NFS when the cluster
spans machines). Other protocols (``s3://``, ``gs://``, ``abfs://``, ``simplecache::…``; they
need the matching fsspec package, e.g. s3fs, which is not a dependency) are listed through
fsspec and each partition's files are copied to the worker's scratch folder before the same
reader runs on them; that path is tested with fsspec's ``memory://`` filesystem in one process.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geo.aggregate import Cube, aggregate_points, merge_cubes
from geo.matching import SegmentGridIndex, match_points
from geo.pointsource import partition_may_hold
from geo.pointsource import partitions as local_partitions
from geo.pointsource import point_batches

BATCH_ROWS = 1_000_000


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
        if partition_may_hold(rel, start, end):
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
    if not cubes:
        return Cube.empty(), 0, 0
    return (cubes[0] if len(cubes) == 1 else merge_cubes(cubes)), n, n_matched


def split_by_piece(cube: Cube, edges: np.ndarray) -> list[Cube]:
    """The cube cut into shards of piece ids [edges[s], edges[s+1]), rows kept in their order."""
    out = []
    parts = {name: getattr(cube, name) for name in ("cells", "hist", "vehicles")}
    shard = {name: np.searchsorted(edges, d["piece"], side="right") - 1 for name, d in parts.items()}
    for s in range(len(edges) - 1):
        sel = {name: shard[name] == s for name in parts}
        out.append(Cube(*({k: v[sel[name]] for k, v in parts[name].items()} for name in ("cells", "hist", "vehicles"))))  # fmt: skip
    return out


def _split_result(result: PartitionResult, edges: np.ndarray) -> tuple[Cube, ...]:
    return tuple(split_by_piece(result.cube, edges))


def _counts(result: PartitionResult) -> tuple[str, int, int, float]:
    return result.partition, result.n_points, result.n_matched, result.seconds


def _merge_shard(*shards: Cube) -> Cube:
    return merge_cubes(list(shards))


def concat_shards(shards: Sequence[Cube]) -> Cube:
    """Merged shards of disjoint, increasing piece ranges → one cube (what merge_cubes of all gives)."""
    cat = lambda part: {k: np.concatenate([getattr(c, part)[k] for c in shards]) for k in getattr(shards[0], part)}  # noqa: E731
    return Cube(cat("cells"), cat("hist"), cat("vehicles"))


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
    reduce: str = "shard",
    n_shards: int | None = None,
    batch_rows: int = BATCH_ROWS,
) -> ScaleOutResult:
    """Partition-parallel aggregation on Dask; the merged cube equals `aggregate_partitions_serial`'s.

    Cluster: `client` (a dask.distributed Client) if given; else `scheduler_address`
    (e.g. "tcp://10.0.0.5:8786", an existing cluster: its workers need this package installed
    and the store reachable); else a LocalCluster of `n_workers` single-threaded processes,
    started and closed here. The index (road network) is sent to every worker once.

    reduce: "shard" (default) cuts every partition's cube into `n_shards` ranges of piece ids
    (default 4 per worker) and merges each range across all partitions on a worker, in
    partition order; the client only concatenates the merged ranges. "gather" sends every
    partition's cube to the client and merges them there (one machine's memory holds them all).
    Both give the arrays merge_cubes gives on the partition cubes in partition order.
    """
    if reduce not in ("shard", "gather"):
        raise ValueError(f"reduce must be 'shard' or 'gather', got {reduce!r}")
    import operator

    from distributed import Client, LocalCluster

    own_cluster = own_client = None
    if client is None:
        if scheduler_address:
            client = own_client = Client(scheduler_address)
        else:
            own_cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR)
            client = own_client = Client(own_cluster)
    try:
        t0 = time.perf_counter()
        parts = list_partitions(store, start, end)
        workers = len(client.nthreads())
        if not parts:
            return ScaleOutResult(merge_cubes([Cube.empty()]), [], 0, 0, time.perf_counter() - t0, workers)
        run = uuid.uuid4().hex[:12]  # keys unique per call: a client may run several calls in a row
        # hash=False: fresh keys, so releasing an earlier call's copy never drops this one's.
        idx, limits = client.scatter([index, np.asarray(piece_limit_kmh, dtype=np.float64)], broadcast=True,
                                     hash=False)  # fmt: skip
        futures = [
            client.submit(partition_cube, str(store), rel, files, idx, limits, start, end, bounds, batch_rows,
                          numba_threads, key=f"partition-cube-{run}-{i}-{rel}", pure=False)  # fmt: skip
            for i, (rel, files) in enumerate(parts)
        ]
        counts_f = [client.submit(_counts, f, pure=False) for f in futures]
        if reduce == "gather":
            cube = merge_cubes([r.cube for r in client.gather(futures)])
        else:
            n_pieces = int(index.links.n_pieces)
            want = n_shards or 4 * max(workers, 1)
            edges = np.unique(np.linspace(0, n_pieces, min(want, n_pieces) + 1).round().astype(np.int64))
            split = [client.submit(_split_result, f, edges, pure=False) for f in futures]
            futures = None  # drop our references: each partition's cube is freed once split
            merged = [client.submit(_merge_shard, *[client.submit(operator.getitem, sp, s, pure=False) for sp in split],
                                    key=f"merge-shard-{run}-{s}", pure=False)
                      for s in range(len(edges) - 1)]  # fmt: skip
            split = None
            cube = concat_shards(client.gather(merged))
        counts = client.gather(counts_f)
        return ScaleOutResult(cube, [r for r, _ in parts], sum(c[1] for c in counts), sum(c[2] for c in counts),
                              time.perf_counter() - t0, workers, {c[0]: c[3] for c in counts})  # fmt: skip
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
