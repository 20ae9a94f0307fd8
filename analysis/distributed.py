"""Month-parallel aggregation on Dask: one task per stored month of matched points, cubes merged exactly.

When the point store outgrows one machine, `aggregate_months` runs the analysis core over a Dask
cluster (a LocalCluster it starts, an existing scheduler given by address, or a Client):

- the match stage's folders of a district (one per month, listed in match_state) that can hold
  the period are listed once on the client;
- each month is one task: the worker reads it with the one reader and the one filter
  (analysis.points, analysis.filters) and aggregates it into a mergeable cube
  (analysis.figures.period_cube);
- the cubes are merged without funnelling through one process: each month's cube is cut into
  ranges of piece ids and each range is merged across all months on a worker (``reduce="shard"``,
  a shuffle by piece); the client only concatenates the merged ranges. ``reduce="gather"``
  merges every month's cube once on the client instead.

Exactness: both reductions give exactly the arrays `geo.aggregate.merge_cubes` gives on the month
cubes in month order, i.e. `aggregate_months_serial`: counts, histograms and distinct
(piece, vehicle) pairs are integers, and speed sums are added in the same order. So every figure
(geo.aggregate.figures: points, exact distinct vehicles of any union of pieces, mean, p85,
shares) equals the single-process analysis of the same period and filter.

The warehouse must be reachable at the same path from every worker (shared storage when the
cluster spans machines).
"""

from __future__ import annotations

import logging
import operator
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from analysis.figures import READ_COLUMNS, period_cube
from analysis.filters import ALL_POINTS, PointFilter
from analysis.matchstage import POINTS_SCHEMA, Network
from analysis.points import matched_folders, read_matched_files
from config.districts import Period
from etl.warehouse import connect
from geo.aggregate import Cube, concat_shards, merge_cubes, split_by_piece


@dataclass
class MonthResult:
    """One month's cube and counts (what a task returns)."""

    folder: str
    cube: Cube
    n_points: int
    seconds: float


@dataclass
class ScaleOutResult:
    cube: Cube  # merged over all months
    folders: list[str]
    n_points: int
    seconds: float  # wall clock from listing to merged cube
    n_workers: int  # 0: single process
    month_seconds: dict[str, float] = field(default_factory=dict)


def month_cube(folder: str, network: Network, period: Period, point_filter: PointFilter = ALL_POINTS,
               numba_threads: int | None = None) -> MonthResult:  # fmt: skip
    """Cube of one month of matched points (runs on a worker).

    numba_threads: threads of the compiled kernels in this task (None: numba's default, all cores);
    give 1 per single-threaded worker process so workers do not oversubscribe the cores.
    """
    t0 = time.perf_counter()
    if numba_threads:
        import numba

        numba.set_num_threads(max(1, min(int(numba_threads), numba.config.NUMBA_NUM_THREADS)))
    expr = point_filter.expression(period.start, period.end)
    on_network = pc.field("road_idx") >= 0
    pts = read_matched_files([Path(folder)], "points", POINTS_SCHEMA, READ_COLUMNS, on_network if expr is None else expr & on_network)
    return MonthResult(folder, period_cube(network, pts), pts.num_rows, time.perf_counter() - t0)


def _folders(warehouse: str | Path, network: Network, period: Period) -> list[str]:
    con = connect(warehouse, read_only=True)
    try:
        return [str(f) for f in matched_folders(con, Path(warehouse), network.key, period.start, period.end)]
    finally:
        con.close()


def aggregate_months_serial(warehouse: str | Path, network: Network, period: Period,
                            point_filter: PointFilter = ALL_POINTS) -> ScaleOutResult:  # fmt: skip
    """The single-process path: the same per-month work in a loop, cubes merged in month order."""
    t0 = time.perf_counter()
    folders = _folders(warehouse, network, period)
    results = [month_cube(f, network, period, point_filter) for f in folders]
    cube = merge_cubes([r.cube for r in results] or [Cube.empty()])
    return ScaleOutResult(cube, folders, sum(r.n_points for r in results), time.perf_counter() - t0, 0,
                          {r.folder: r.seconds for r in results})  # fmt: skip


def _split(result: MonthResult, edges: np.ndarray) -> tuple[Cube, ...]:
    return tuple(split_by_piece(result.cube, edges))


def _counts(result: MonthResult) -> tuple[str, int, float]:
    return result.folder, result.n_points, result.seconds


def _merge_shard(*shards: Cube) -> Cube:
    return merge_cubes(list(shards))


def aggregate_months(
    warehouse: str | Path, network: Network, period: Period, point_filter: PointFilter = ALL_POINTS, *,
    client=None, scheduler_address: str | None = None, n_workers: int = 2, numba_threads: int | None = 1,
    reduce: str = "shard", n_shards: int | None = None,
) -> ScaleOutResult:  # fmt: skip
    """Month-parallel aggregation on Dask; the merged cube equals `aggregate_months_serial`'s.

    Cluster: `client` (a dask.distributed Client) if given; else `scheduler_address` (e.g.
    "tcp://10.0.0.5:8786": an existing cluster whose workers have this package installed and reach
    the warehouse); else a LocalCluster of `n_workers` single-threaded processes, started and
    closed here. The network (its index) is sent to every worker once.
    """
    if reduce not in ("shard", "gather"):
        raise ValueError(f"reduce must be 'shard' or 'gather', got {reduce!r}")
    from distributed import Client, LocalCluster

    own_cluster = own_client = None
    if client is None:
        if scheduler_address:
            client = own_client = Client(scheduler_address)
        else:
            own_cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR)  # fmt: skip
            client = own_client = Client(own_cluster)
    try:
        t0 = time.perf_counter()
        folders = _folders(warehouse, network, period)
        workers = len(client.nthreads())
        if not folders:
            return ScaleOutResult(merge_cubes([Cube.empty()]), [], 0, time.perf_counter() - t0, workers)
        run = uuid.uuid4().hex[:12]  # keys unique per call: a client may run several calls in a row
        # hash=False: fresh keys, so releasing an earlier call's copy never drops this one's.
        (net,) = client.scatter([network], broadcast=True, hash=False)
        futures = [client.submit(month_cube, f, net, period, point_filter, numba_threads, key=f"month-cube-{run}-{i}",
                                 pure=False) for i, f in enumerate(folders)]  # fmt: skip
        counts_f = [client.submit(_counts, f, pure=False) for f in futures]
        if reduce == "gather":
            cube = merge_cubes([r.cube for r in client.gather(futures)])
        else:
            n_pieces = int(network.index.links.n_pieces)
            want = n_shards or 4 * max(workers, 1)
            edges = np.unique(np.linspace(0, n_pieces, min(want, n_pieces) + 1).round().astype(np.int64))
            split = [client.submit(_split, f, edges, pure=False) for f in futures]
            futures = None  # drop our references: each month's cube is freed once split
            merged = [client.submit(_merge_shard, *[client.submit(operator.getitem, sp, s, pure=False) for sp in split],
                                    key=f"merge-shard-{run}-{s}", pure=False)
                      for s in range(len(edges) - 1)]  # fmt: skip
            split = None
            cube = concat_shards(client.gather(merged))
        counts = client.gather(counts_f)
        return ScaleOutResult(cube, folders, sum(c[1] for c in counts), time.perf_counter() - t0, workers,
                              {c[0]: c[2] for c in counts})  # fmt: skip
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()


def warm_up(numba_threads: int | None = 1) -> float:
    """Compile or load the kernels in this process (run on every worker with `client.run(warm_up)` so
    that JIT / cache loading is not timed as work). Returns seconds taken."""
    import shapely

    from geo.aggregate import aggregate_points
    from geo.matching import build_segment_index, match_points

    t0 = time.perf_counter()
    if numba_threads:
        import numba

        numba.set_num_threads(max(1, min(int(numba_threads), numba.config.NUMBA_NUM_THREADS)))
    index = build_segment_index(np.array([shapely.LineString([(0, 0), (100, 0)])]), radius_m=20)
    m = match_points(np.array([10.0, 50.0]), np.array([1.0, -2.0]), index, np.array([90.0, np.nan]))
    aggregate_points(m.seg, m.pos, m.direction, index, np.zeros(2, np.int64), np.ones(2, np.int32),
                     np.array([30.0, 31.0]), np.arange(2, dtype=np.int64), np.full(index.links.n_pieces, 30.0))  # fmt: skip
    return time.perf_counter() - t0


__all__ = ["aggregate_months", "aggregate_months_serial", "month_cube", "warm_up", "ScaleOutResult"]
