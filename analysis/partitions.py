"""Matched points of a period read and aggregated month by month, in this process or on a Dask cluster.

The match stage stores one folder per month (analysis.matchstage); a trip never leaves its month.
Every function here takes an optional `client` (a `distributed.Client`, etl.cluster.dask_client):

- without it, the period is read at once through the one reader and the one filter
  (analysis.points) and aggregated in this process: the path every analysis always took;
- with it, each month is one task on the cluster (read with the same reader and filter, passages
  computed there), and the cube is built **partition-parallel by piece ranges**: each month task
  cuts its points by ranges of links (a link's pieces are consecutive), and each range is
  aggregated over all months by one task (`geo.aggregate.aggregate_points` on that range's points,
  months in order). The client only concatenates the ranges: no merge funnels through one process.

Both give the same bits. The cube kernel reduces each piece on its own, over that piece's points
in input order (ties in a cell by that order), so the cube of a piece range equals the rows of the
whole period's cube for those pieces, per-cell distinct vehicles included; the months' points in
month order are the period's points in the order the one reader returns them. Passages belong to
one trip, hence to one month: the months' passages, stably ordered by trip, are the period's.

Workers never open the warehouse's DuckDB file (the client may hold it): they get folder paths,
which must be the same on every worker (shared storage).
"""

from __future__ import annotations

import datetime as dt
import operator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis.filters import ALL_POINTS, PointFilter
from analysis.matchstage import POINTS_SCHEMA, Network
from analysis.points import passages, points_expression, read_matched_files
from geo.aggregate import Cube, aggregate_points, concat_shards

CUBE_COLUMNS = ["seg", "pos", "direction", "gps_time", "vehicle_type", "speed_kmh", "vehicle_id"]


def period_cube(network: Network, pts) -> Cube:
    """The cube of one period's matched points (an Arrow table with at least CUBE_COLUMNS)."""
    if pts.num_rows == 0:
        return Cube.empty()
    col = lambda name: pts.column(name).to_numpy(zero_copy_only=False)  # noqa: E731
    gps_us = pts.column("gps_time").cast("int64").to_numpy(zero_copy_only=False)
    return _cube(
        network,
        col("seg"),
        col("pos"),
        col("direction"),
        gps_us,
        col("vehicle_type"),
        col("speed_kmh"),
        col("vehicle_id"),
    )


def _cube(network: Network, seg, pos, direction, gps_us, vehicle_type, speed, vehicle_id) -> Cube:
    piece_limit = network.limits_kmh[network.piece_road]
    return aggregate_points(seg, pos, direction, network.index, gps_us, vehicle_type, speed, vehicle_id, piece_limit)


def read_month(
    folder: str, columns: list[str], point_filter: PointFilter, start: dt.date, end: dt.date, on_network: bool = True
) -> pa.Table:
    """One month folder's matched points kept by the filter (the one reader, as `read_points`)."""
    return read_matched_files(
        [Path(folder)], "points", POINTS_SCHEMA, columns, points_expression(point_filter, start, end, on_network)
    )


def _month_samples(
    folder: str, columns: list[str], point_filter: PointFilter, start: dt.date, end: dt.date, with_passages: bool
) -> tuple[pa.Table, pd.DataFrame | None]:
    pts = read_month(folder, columns, point_filter, start, end)
    return pts, passages(pts) if with_passages else None


def order_passages(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Passages of several months as `passages` gives them for all their points: ordered by trip
    (a trip lies in one month; within a trip the month's order is kept)."""
    parts = [p for p in parts if p is not None and len(p)]
    if not parts:
        return passages(POINTS_SCHEMA.empty_table())
    cat = pd.concat(parts, ignore_index=True)
    order = np.argsort(cat["trip_id"].to_numpy(), kind="stable")
    return cat.iloc[order].reset_index(drop=True)


def points_and_passages(
    folders: list[Path],
    columns: list[str],
    point_filter: PointFilter,
    start: dt.date,
    end: dt.date,
    *,
    client=None,
    with_passages: bool = True,
) -> tuple[pa.Table, pd.DataFrame | None]:
    """The period's matched points on the network (columns as asked; must include trip_id, seq,
    vehicle_id, road_idx, speed_kmh, gps_time, road_pos_m for passages) and their passages."""
    if client is None:
        pts = read_matched_files(folders, "points", POINTS_SCHEMA, columns, points_expression(point_filter, start, end))
        return pts, passages(pts) if with_passages else None
    futures = [
        client.submit(
            _month_samples,
            str(Path(f).absolute()),
            columns,
            point_filter,
            start,
            end,
            with_passages,
            pure=False,
            retries=1,
        )
        for f in folders
    ]
    parts = client.gather(futures)
    if not parts:
        pts = read_matched_files([], "points", POINTS_SCHEMA, columns, None)
    else:
        pts = pa.concat_tables([p for p, _ in parts])
    return pts, order_passages([q for _, q in parts]) if with_passages else None


# ---------------------------------------------------------------------------------------------
# Period cubes, partition-parallel


def link_edges(network: Network, n_shards: int) -> np.ndarray:
    """Edges of about `n_shards` ranges of link ids (each range's pieces are consecutive)."""
    n_links = len(network.index.links.link_first_piece) - 1
    k = max(1, min(int(n_shards), n_links))
    return np.unique(np.linspace(0, n_links, k + 1).round().astype(np.int64))


def _month_part(
    folder: str,
    network: Network,
    point_filter: PointFilter,
    start: dt.date,
    end: dt.date,
    edges: np.ndarray,
    with_passages: bool,
) -> tuple[list[dict], pd.DataFrame | None, int]:
    """A month task: its points (CUBE_COLUMNS) cut into the link ranges, its passages, its point count."""
    columns = sorted(set(CUBE_COLUMNS) | ({"trip_id", "seq", "road_idx", "road_pos_m"} if with_passages else set()))
    pts = read_month(folder, columns, point_filter, start, end)
    pas = passages(pts) if with_passages else None
    seg = pts.column("seg").to_numpy(zero_copy_only=False)
    link = network.index.links.seg_link[seg] if len(seg) else np.zeros(0, np.int64)
    shard = np.searchsorted(edges, link, side="right") - 1
    arrays = {c: pts.column(c).to_numpy(zero_copy_only=False) for c in CUBE_COLUMNS if c != "gps_time"}
    arrays["gps_us"] = pts.column("gps_time").cast("int64").to_numpy(zero_copy_only=False)
    order = np.argsort(shard, kind="stable")  # rows of each range, in the month's order
    cuts = np.searchsorted(shard[order], np.arange(len(edges)))
    parts = []
    for s in range(len(edges) - 1):
        idx = order[cuts[s] : cuts[s + 1]]
        parts.append({k: v[idx] for k, v in arrays.items()})
    return parts, pas, pts.num_rows


def _range_of(month: tuple, s: int) -> dict:
    return month[0][s]


def _range_cube(network: Network, *parts: dict) -> Cube | None:
    """A range task: the cube of one range of links over every month (months in order)."""
    parts = [p for p in parts if len(p["seg"])]
    if not parts:
        return None
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return _cube(
        network,
        cat["seg"],
        cat["pos"],
        cat["direction"],
        cat["gps_us"],
        cat["vehicle_type"],
        cat["speed_kmh"],
        cat["vehicle_id"],
    )


def submit_period_cube(
    client,
    net,
    network: Network,
    folders: list[Path],
    point_filter: PointFilter,
    start: dt.date,
    end: dt.date,
    *,
    with_passages: bool = True,
    n_shards: int | None = None,
) -> dict:
    """Submit one period's month tasks and range tasks; `net` is the network scattered to the workers.
    Returns the futures for `collect_period_cube`."""
    from etl.cluster import n_threads

    edges = link_edges(network, n_shards or 4 * n_threads(client))
    months = [
        client.submit(
            _month_part,
            str(Path(f).absolute()),
            net,
            point_filter,
            start,
            end,
            edges,
            with_passages,
            pure=False,
            retries=1,
        )
        for f in folders
    ]
    ranges = []
    for s in range(len(edges) - 1):
        pieces = [client.submit(_range_of, m, s, pure=False) for m in months]
        ranges.append(client.submit(_range_cube, net, *pieces, pure=False, retries=1))
    rest = [client.submit(operator.itemgetter(1, 2), m, pure=False) for m in months]
    return {"ranges": ranges, "rest": rest, "with_passages": with_passages}


def collect_period_cube(client, submitted: dict) -> tuple[Cube, pd.DataFrame | None, int]:
    """(cube, passages, number of points) of a period submitted by `submit_period_cube`."""
    rest = client.gather(submitted["rest"])
    shards = [c for c in client.gather(submitted["ranges"]) if c is not None]
    n = sum(r[1] for r in rest)
    cube = concat_shards(shards) if shards and n else Cube.empty()
    return cube, order_passages([r[0] for r in rest]) if submitted["with_passages"] else None, n


def period_cube_and_passages(
    folders: list[Path],
    network: Network,
    point_filter: PointFilter,
    start: dt.date,
    end: dt.date,
    columns: list[str],
    *,
    client=None,
) -> tuple[Cube, pd.DataFrame, int]:
    """Cube, passages and number of points of one period (see the module docstring)."""
    if client is None:
        pts = read_matched_files(folders, "points", POINTS_SCHEMA, columns, points_expression(point_filter, start, end))
        return period_cube(network, pts), passages(pts), pts.num_rows
    (net,) = client.scatter([network], broadcast=True, hash=False)
    return collect_period_cube(client, submit_period_cube(client, net, network, folders, point_filter, start, end))


__all__ = [
    "ALL_POINTS",
    "CUBE_COLUMNS",
    "collect_period_cube",
    "link_edges",
    "order_passages",
    "period_cube",
    "period_cube_and_passages",
    "points_and_passages",
    "read_month",
    "submit_period_cube",
]
