"""Partition-parallel aggregation of one period on Dask, as a library call (the CLI's `--dask-local` /
`--scheduler` reach the same code through analysis.figures.analyze).

`aggregate_months(warehouse, network, period, …)` runs the analysis core over a Dask cluster (a
LocalCluster it starts, an existing scheduler given by address, or a Client):

- the match stage's folders of the district (one per month, listed in match_state) that can hold
  the period are listed once on the client;
- each month is one task: the worker reads it with the one reader and the one filter
  (analysis.points, analysis.filters), makes the month's cube and cuts it by ranges of links;
- each range of links (hence of pieces) is one task: it merges that range's cubes of every
  month in month order (analysis._partitions). The client only concatenates the ranges' cubes,
  which cover disjoint, increasing piece ranges: the merge does not funnel through one process.

Exactness: the result is the same arrays as `aggregate_months_serial` (the period reduced month by
month in one process, as `analyze` does without a cluster): counts, 1 km/h histograms, speed sums
(the months' sums added in month order), per-cell distinct vehicles and the distinct
(piece, vehicle) pairs, so every figure equals the single-process analysis bit for bit.

The warehouse must be reachable at the same path from every worker (shared storage when the
cluster spans machines).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis._partitions import collect_period_cube, period_tally, submit_period_cube, whole_cube
from analysis.filters import ALL_POINTS, PointFilter
from analysis.network import Network
from analysis.points import matched_folders
from config.districts import Period
from etl.warehouse import connect
from geo.aggregate import Cube


@dataclass
class ScaleOutResult:
    cube: Cube  # the period's cube (every piece)
    folders: list[str]
    n_points: int
    seconds: float  # wall clock from listing to cube
    n_workers: int  # 0: single process


def _folders(warehouse: str | Path, network: Network, period: Period) -> list[Path]:
    con = connect(warehouse, read_only=True)
    try:
        return matched_folders(con, Path(warehouse), network.key, period.start, period.end)
    finally:
        con.close()


def aggregate_months_serial(
    warehouse: str | Path, network: Network, period: Period, point_filter: PointFilter = ALL_POINTS
) -> ScaleOutResult:
    """The single-process path: the period reduced month by month here (what `analyze` does)."""
    t0 = time.perf_counter()
    folders = _folders(warehouse, network, period)
    period_cube = period_tally(folders, network, point_filter, period.start, period.end)
    cube, n = whole_cube(period_cube), period_cube.n_points
    period_cube.close()
    return ScaleOutResult(cube, [str(f) for f in folders], n, time.perf_counter() - t0, 0)


def aggregate_months(
    warehouse: str | Path,
    network: Network,
    period: Period,
    point_filter: PointFilter = ALL_POINTS,
    *,
    client=None,
    scheduler_address: str | None = None,
    n_workers: int = 2,
    n_shards: int | None = None,
) -> ScaleOutResult:
    """Partition-parallel aggregation on Dask; the cube equals `aggregate_months_serial`'s bit for bit.

    Cluster: `client` (a dask.distributed Client) if given; else `scheduler_address` (e.g.
    "tcp://10.0.0.5:8786": an existing cluster whose workers have this package installed and reach
    the warehouse); else a LocalCluster of `n_workers` single-threaded processes, started and
    closed here. The network (its index) is sent to every worker once. n_shards: ranges of links
    (default 4 per worker thread).
    """
    from distributed import Client, LocalCluster

    own_cluster = own_client = None
    if client is None:
        if scheduler_address:
            client = own_client = Client(scheduler_address)
        else:
            own_cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
                env={"NUMBA_NUM_THREADS": "1"},
            )
            client = own_client = Client(own_cluster)
    try:
        t0 = time.perf_counter()
        folders = _folders(warehouse, network, period)
        workers = len(client.nthreads())
        (net,) = client.scatter([network], broadcast=True, hash=False)
        submitted = submit_period_cube(
            client,
            net,
            network,
            folders,
            point_filter,
            period.start,
            period.end,
            n_shards=n_shards,
        )
        ranged = collect_period_cube(client, submitted)
        cube, n = whole_cube(ranged), ranged.n_points
        return ScaleOutResult(cube, [str(f) for f in folders], n, time.perf_counter() - t0, workers)
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
    aggregate_points(
        m.seg,
        m.pos,
        m.direction,
        index,
        np.zeros(2, np.int64),
        np.ones(2, np.int32),
        np.array([30.0, 31.0]),
        np.arange(2, dtype=np.int64),
        np.full(index.links.n_pieces, 30.0),
    )
    return time.perf_counter() - t0


__all__ = ["aggregate_months", "aggregate_months_serial", "warm_up", "ScaleOutResult"]
