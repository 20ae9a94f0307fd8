"""A period's figures reduced part by part (each month pass by pass), in this process or on Dask.

The match stage stores one folder per month (analysis.matchstage), written one row group per pass
of the match (whole operation dates: a trip never leaves its pass), and every input of a period's
point and passage figures adds up across parts:

- the cube (geo.aggregate) of the period's points: each part's points are grouped by piece
  (`period_groups`: cell key, speed, vehicle per point, in piece order) and kept; the cube is made
  range of pieces by range (whole roads, `range_edges`), from every part's rows in that range at
  once (`range_cube`), so every figure of the period is exact and the same bits as the cube of
  all its points at once, distinct vehicles of each road and of each cell included;
- the passages of each part, reduced to counts per road and passage speed (`passage_counts`);
- the number of points.

A period's grouped points are kept on disk part by part (`PeriodCube`) and read back range by
range, about SPILL_RANGES ranges per month of the period: point data are held one pass at a time
while parts are added, and a fraction of a month (one range) while the cube is made, so memory is
bounded by a month whatever the length of the period. `analyze` runs this fused with the match
stage: a pass matched now is reduced while it is in memory (`MonthReducer` as the match stage's
`on_month`), a month already matched is read back row group by row group (the columns the figures
need only).

With a `client` (a `distributed.Client`, etl.cluster.dask_client) each month is one task (its row
groups reduced, each part's rows cut into the ranges of pieces) and each range one task (the cube
of that range from every part): no merge funnels through one process. Both give the same bits:
the same points, grouped in the same order by the same functions.

Workers never open the warehouse's DuckDB file (the client may hold it): they get folder paths,
which must be the same on every worker (shared storage).
"""

from __future__ import annotations

import datetime as dt
import operator
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis.filters import ALL_POINTS, PointFilter
from analysis.matchstage import month_point_parts
from analysis.network import Network
from analysis.points import (
    RoadNodes,
    filter_rows,
    passage_arrays,
    passages,
    points_expression,
    read_matched_points,
    row_mask,
    with_derived,
)
from config.districts import Period
from config.settings import PASSAGE_SPEEDS
from geo.aggregate import (
    Cube,
    GroupedPoints,
    concat_shards,
    cube_of_groups,
    group_points,
    regroup,
    vehicles_by_road,
)
from geo.calendar import months_between

CUBE_COLUMNS = ["seg", "pos", "direction", "gps_time", "vehicle_type", "speed_kmh", "vehicle_id"]
PASSAGE_COLUMNS = ["trip_id", "seq", "vehicle_id", "road_idx", "speed_kmh", "gps_time", "road_pos_m", "x_m", "y_m"]
# What a month's reduction reads back from a stored month (the stored ones, see analysis.points).
# Ranges of pieces a period's cube is cut into (on disk month by month, on a cluster range by range).
SPILL_RANGES = 16
MONTH_COLUMNS = sorted(set(CUBE_COLUMNS) | {"trip_id", "seq", "vehicle_use", "x_m", "y_m"})


def period_ranges(n_months: int) -> int:
    """The ranges of pieces a period of `n_months` months is cut into: SPILL_RANGES per month, so a
    range holds a fraction of a month whatever the length of the period."""
    return SPILL_RANGES * max(1, n_months)


def period_groups(network: Network, pts: pa.Table, keep: np.ndarray | None = None) -> GroupedPoints:
    """Matched points (an Arrow table with at least CUBE_COLUMNS; keep: the rows that count, None:
    all) grouped by piece (`group_points`)."""
    col = lambda name: pts.column(name).to_numpy(zero_copy_only=False)  # noqa: E731
    return group_points(
        col("seg"),
        col("pos"),
        col("direction"),
        network.index,
        pts.column("gps_time").cast("int64").to_numpy(zero_copy_only=False),
        col("vehicle_type"),
        col("speed_kmh"),
        col("vehicle_id"),
        keep,
    )


def range_edges(network: Network, n_ranges: int) -> np.ndarray:
    """Piece ids cutting the network into about `n_ranges` ranges of whole roads (a road's links,
    hence its pieces, are consecutive: each range's distinct vehicles per road are exact); one
    range when roads are not consecutive."""
    links = network.index.links
    road = np.asarray(links.link_road)
    n_links = len(road)
    if n_links == 0 or np.any(road[1:] < road[:-1]):
        return np.array([0, int(links.n_pieces)], dtype=np.int64)
    starts = np.r_[np.flatnonzero(np.r_[True, road[1:] != road[:-1]]), n_links]
    cut = np.unique(starts[np.searchsorted(starts, link_edges(network, n_ranges))])
    return np.asarray(links.link_first_piece, dtype=np.int64)[cut]


def range_cube(network: Network, lo: int, hi: int, parts: list[tuple]) -> Cube:
    """The cube of pieces lo..hi-1 (whole roads, `range_edges`) from the rows of every part of a
    period in that range (`GroupedPoints.range_rows`), in order: the cube of all the period's points
    at once, with the distinct vehicles of each road (`vehicles_by_road`)."""
    if not parts:
        return Cube.empty()
    piece_road = network.piece_road  # made from the links at each call: once here
    road = piece_road[lo:hi]
    limit = np.asarray(network.limits_kmh[road], dtype=np.float64)
    if np.all(road[1:] >= road[:-1]):  # whole roads, each road's pieces consecutive (`range_edges`)
        return cube_of_groups(regroup(parts), limit, lo, piece_road=road)
    return vehicles_by_road(cube_of_groups(regroup(parts), limit, lo), piece_road)


# ---------------------------------------------------------------------------------------------
# Passages, reduced to counts per road and speed


def passage_counts(p: pd.DataFrame | dict, speed: str = PASSAGE_SPEEDS[0]) -> dict[str, np.ndarray]:
    """Passages (analysis.points.passages, or its arrays) → their count per road and passage `speed`
    ('section', 'mean' or 'max'; passages without that speed left out): road_idx, value (km/h), n, and
    spot_sum (the sum of those passages' mean spot speeds, mean_kmh, in integer 0.1 km/h so that sums
    are exact in any order: the sensitivity indicator passage_spot_mean over the same passages), sorted
    by road then value. What every passage figure of a set of roads needs, and it adds up across months."""
    road = np.asarray(p["road_idx"], dtype=np.int64)
    value = np.asarray(p[f"{speed}_kmh"], dtype=float)
    spot = np.round(np.asarray(p["mean_kmh"], dtype=float) * 10).astype(np.int64)  # 0.1 km/h
    ok = np.isfinite(value)
    return _grouped_counts(road[ok], value[ok], np.ones(int(ok.sum()), np.int64), spot[ok])


def _grouped_counts(road: np.ndarray, value: np.ndarray, n: np.ndarray, spot_sum: np.ndarray) -> dict[str, np.ndarray]:
    if len(road) == 0:
        return {
            "road_idx": np.zeros(0, np.int64),
            "value": np.zeros(0, float),
            "n": np.zeros(0, np.int64),
            "spot_sum": np.zeros(0, np.int64),
        }
    order = np.lexsort((value, road))
    road, value, n, spot_sum = road[order], value[order], n[order], spot_sum[order]
    new = np.r_[True, (road[1:] != road[:-1]) | (value[1:] != value[:-1])]
    starts = np.flatnonzero(new)
    return {
        "road_idx": road[starts],
        "value": value[starts],
        "n": np.add.reduceat(n, starts),
        "spot_sum": np.add.reduceat(spot_sum, starts),
    }


def merge_passage_counts(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Passage counts of several months added up (exact, in any order)."""
    parts = [p for p in parts if len(p["road_idx"])]
    if not parts:
        return _grouped_counts(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))
    cat = {k: np.concatenate([p[k] for p in parts]) for k in ("road_idx", "value", "n", "spot_sum")}
    return _grouped_counts(cat["road_idx"], cat["value"], cat["n"], cat["spot_sum"])


# ---------------------------------------------------------------------------------------------
# One month of a period


@dataclass
class MonthPart:
    """One month's share of a period: its points grouped by piece (`period_groups`), its passage
    counts, its number of points."""

    groups: GroupedPoints
    passages: dict[str, np.ndarray]
    n_points: int


def part_points(
    points: pa.Table, point_filter: PointFilter, start: dt.date, end: dt.date
) -> tuple[pa.Table, np.ndarray | None]:
    """A part of a month's stored points (a pass of the match or a row group; at least MONTH_COLUMNS)
    → the period's points of its trips, on the network or not (a passage's context points), and
    the mask of those the filter keeps on the network (the one filter expression; None: all)."""
    trips = filter_rows(points, points_expression(ALL_POINTS, start, end, on_network=False), MONTH_COLUMNS)
    return trips, row_mask(trips, points_expression(point_filter, start, end))


def kept_rows(trips: pa.Table, keep: np.ndarray | None) -> int:
    """The number of points a part's mask keeps (`part_points`)."""
    return trips.num_rows if keep is None else int(np.count_nonzero(keep))


def part_passages(trips: pa.Table, keep: np.ndarray | None, network: Network) -> dict[str, np.ndarray]:
    """The passage counts of a part (`part_points`)."""
    pas = passage_arrays(
        with_derived(trips, network, PASSAGE_COLUMNS),
        RoadNodes.of_network(network),
        keep=keep,
        ordered_by_trip_id=False,
    )
    return passage_counts(pas)


def reduce_part(
    points: pa.Table,
    network: Network,
    point_filter: PointFilter,
    start: dt.date,
    end: dt.date,
) -> MonthPart:
    """Reduce a part of a month's stored points (`part_points`) to its share of the period
    start..end kept by the filter: its kept points grouped by piece (read in place, not copied out)
    and its passage counts. The month task of a cluster is `_month_part`."""
    trips, keep = part_points(points, point_filter, start, end)
    n_points = kept_rows(trips, keep)
    groups = period_groups(network, trips, keep)
    if not n_points:
        return MonthPart(groups, merge_passage_counts([]), 0)
    return MonthPart(groups, part_passages(trips, keep, network), n_points)


class PeriodCube:
    """A period's points kept on disk part by part (the passes of the match, the row groups of a
    stored month), grouped by piece (`period_groups`), and its cube made range by range of pieces
    (`range_cube`: whole roads, `range_edges`), each range from every part's rows in that range at
    once: only one part is in memory while parts are added, and only one range of the period's
    points while the cube is read (`ranges`). Give about SPILL_RANGES ranges per month of the period
    so that a range holds a fraction of a month whatever the length of the period. The cluster's
    range tasks do the same: the same bits. Passage counts and the number of points are kept in
    memory (small)."""

    # Each part is one file: per range its rows' speed (float64) and vehicle id (int64), then its
    # rows per piece and cell keys (int32), padded to 8 bytes: one read per part and range.
    _RANGE_COLUMNS = ((2, np.float64), (3, np.int64), (0, np.int32), (1, np.int32))

    def __init__(self, network: Network, n_ranges: int = SPILL_RANGES):
        self.network = network
        self.edges = range_edges(network, n_ranges)
        self.folder = Path(tempfile.mkdtemp(prefix="etc2calm-period-"))
        self.segments: list[list[tuple[int, int, int]]] = []  # per part and range: (byte offset, pieces, rows)
        self.passage_parts: list[dict[str, np.ndarray]] = []
        self.n_points = 0

    @property
    def n_parts(self) -> int:
        return len(self.segments)

    @property
    def passages(self) -> dict[str, np.ndarray]:
        """The period's passage counts (every part's added up)."""
        if len(self.passage_parts) != 1:
            self.passage_parts = [merge_passage_counts(self.passage_parts)]
        return self.passage_parts[0]

    def add(self, part: MonthPart) -> None:
        """Add the next part (a pass or a stored row group; parts come in month and pass order)."""
        segments, at = [], 0
        with open(self.folder / f"{self.n_parts:06d}.bin", "wb") as f:
            for lo, hi in zip(self.edges[:-1].tolist(), self.edges[1:].tolist(), strict=True):
                rows = part.groups.range_rows(lo, hi)
                segments.append((at, hi - lo, len(rows[1])))
                for i, dtype in self._RANGE_COLUMNS:
                    at += f.write(np.ascontiguousarray(rows[i], dtype=dtype).data)
                at += f.write(b"\0" * (-at % 8))
        self.segments.append(segments)
        self.passage_parts.append(part.passages)
        self.n_points += part.n_points

    def _range_rows(self, part: int, r: int) -> tuple:
        start, n_pieces, n_rows = self.segments[part][r]
        sizes = [n_rows * 8, n_rows * 8, n_pieces * 4, n_rows * 4]
        with open(self.folder / f"{part:06d}.bin", "rb") as f:
            f.seek(start)
            buf = f.read(sum(sizes))
        cols, at = {}, 0
        for (i, dtype), size in zip(self._RANGE_COLUMNS, sizes, strict=True):
            cols[i] = np.frombuffer(buf, dtype=dtype, count=size // np.dtype(dtype).itemsize, offset=at)
            at += size
        return cols[0], cols[1], cols[2], cols[3]

    def ranges(self):
        """The period's cube range by range (disjoint, increasing piece ranges)."""
        for r, (lo, hi) in enumerate(zip(self.edges[:-1].tolist(), self.edges[1:].tolist(), strict=True)):
            yield range_cube(self.network, lo, hi, [self._range_rows(m, r) for m in range(self.n_parts)])

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __del__(self) -> None:
        self.close()


@dataclass
class RangedCube:
    """A period's cube already cut into piece ranges (the cluster's range cubes), read like a PeriodCube."""

    shards: list[Cube]
    passages: dict[str, np.ndarray]
    n_points: int

    def ranges(self):
        yield from self.shards

    def close(self) -> None:
        self.shards = []


class MonthReducer:
    """The match stage's `on_month` for `analyze`: each month's points reduced into the tally of every
    period it can hold (see the module docstring)."""

    def __init__(self, network: Network, periods: dict[str, Period], point_filter: PointFilter = ALL_POINTS):
        self.network, self.periods, self.point_filter = network, periods, point_filter
        self.months = {k: months_between(p.start, p.end) for k, p in periods.items()}
        self.tallies = {k: PeriodCube(network, period_ranges(len(self.months[k]))) for k in periods}

    def __call__(self, ym: tuple[int, int], points: pa.Table) -> None:
        """Reduce one part of month `ym` (a pass of the match, a row group of a stored month); parts
        come month after month, in pass order."""
        for label, p in self.periods.items():
            if ym in self.months[label]:
                self.tallies[label].add(reduce_part(points, self.network, self.point_filter, p.start, p.end))

    def results(self) -> dict[str, PeriodCube]:
        """Every period's reduction (PeriodCube: its cube range by range, passage counts, points)."""
        return self.tallies


def read_month(
    folder: str, network: Network, point_filter: PointFilter, start: dt.date, end: dt.date, columns: list[str]
) -> pa.Table:
    """One month folder's matched points kept by the filter (the one reader, as `read_points`)."""
    expr = points_expression(point_filter, start, end)
    return read_matched_points([Path(folder)], network, columns, expr)


def month_parts(folder: str, network: Network, point_filter: PointFilter, start: dt.date, end: dt.date):
    """One stored month's parts (its row groups: the passes the match reduced when it matched the
    month), each reduced (`reduce_part`), in order: the same bits as when the month was reduced fresh."""
    for part in month_point_parts(Path(folder), MONTH_COLUMNS):
        yield reduce_part(part, network, point_filter, start, end)


def period_tally(
    folders: list[Path], network: Network, point_filter: PointFilter, start: dt.date, end: dt.date
) -> PeriodCube:
    """A period's reduction (PeriodCube) from its stored months, part by part."""
    period = PeriodCube(network, period_ranges(len(folders)))
    for f in folders:
        for part in month_parts(str(f), network, point_filter, start, end):
            period.add(part)
    return period


def whole_cube(period) -> Cube:
    """A period's cube in one piece (its ranges concatenated): for tests and small periods only."""
    shards = list(period.ranges())
    return concat_shards(shards) if shards else Cube.empty()


def order_passages(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Passages of several months as `passages` gives them for all their points: ordered by trip
    (a trip lies in one month; within a trip the month's order is kept)."""
    parts = [p for p in parts if p is not None and len(p)]
    if not parts:
        return passages(pa.table({c: pa.array([], pa.float64()) for c in PASSAGE_COLUMNS}), None)
    cat = pd.concat(parts, ignore_index=True)
    order = np.argsort(cat["trip_id"].to_numpy(), kind="stable")
    return cat.iloc[order].reset_index(drop=True)


def month_points_and_passages(
    folder: str, network: Network, columns: list[str], point_filter: PointFilter, start: dt.date, end: dt.date
) -> tuple[pa.Table, pd.DataFrame]:
    """One month folder's matched points on the network kept by `point_filter` (`columns`) and their
    passages (analysis.samples reduces them month by month)."""
    # what the passages and the filter expression read, besides the columns asked for
    cols = list(dict.fromkeys([*columns, *PASSAGE_COLUMNS, "seg", "vehicle_type", "vehicle_use", "direction"]))
    expr = points_expression(ALL_POINTS, start, end, on_network=False)
    trips = read_matched_points([Path(folder)], network, cols, expr)  # with the passages' context points
    keep = row_mask(trips, points_expression(point_filter, start, end))
    pts = trips if keep is None else trips.filter(pa.array(keep))
    return pts.select(columns), passages(trips, RoadNodes.of_network(network), keep)


# ---------------------------------------------------------------------------------------------
# The same on a Dask cluster: months, then ranges of pieces


def link_edges(network: Network, n_shards: int) -> np.ndarray:
    """Edges of about `n_shards` ranges of link ids (each range's pieces are consecutive)."""
    n_links = len(network.index.links.link_first_piece) - 1
    k = max(1, min(int(n_shards), n_links))
    return np.unique(np.linspace(0, n_links, k + 1).round().astype(np.int64))


def _month_part(  # a cluster task (its name is the task's prefix on the scheduler)
    folder: str, network: Network, point_filter: PointFilter, start: dt.date, end: dt.date, edges: np.ndarray
) -> tuple[list[list[tuple]], dict[str, np.ndarray], int]:
    """A month task: the rows of each of its parts in each range of pieces of `edges`
    (`GroupedPoints.range_rows`), its passage counts, its points."""
    parts = list(month_parts(folder, network, point_filter, start, end))
    by_range = [[p.groups.range_rows(lo, hi) for p in parts] for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    return by_range, merge_passage_counts([p.passages for p in parts]), sum(p.n_points for p in parts)


def _range_of(month: tuple, s: int) -> list[tuple]:
    return month[0][s]


def _range_cube(network: Network, lo: int, hi: int, *months: list[tuple]) -> Cube:
    """A range task: the cube of one range of pieces from every part of every month, in order."""
    return range_cube(network, lo, hi, [part for month in months for part in month])


def submit_period_cube(
    client,
    net,
    network: Network,
    folders: list[Path],
    point_filter: PointFilter,
    start: dt.date,
    end: dt.date,
    *,
    n_shards: int | None = None,
) -> dict:
    """Submit one period's month tasks and range tasks; `net` is the network scattered to the workers.
    Returns the futures for `collect_period_cube`."""
    edges = range_edges(network, n_shards or period_ranges(len(folders)))
    months = [
        client.submit(_month_part, str(Path(f).absolute()), net, point_filter, start, end, edges, pure=False, retries=1)
        for f in folders
    ]
    ranges = []
    for s in range(len(edges) - 1):
        pieces = [client.submit(_range_of, m, s, pure=False) for m in months]
        lo, hi = int(edges[s]), int(edges[s + 1])
        ranges.append(client.submit(_range_cube, net, lo, hi, *pieces, pure=False, retries=1))
    rest = [client.submit(operator.itemgetter(1, 2), m, pure=False) for m in months]
    return {"ranges": ranges, "rest": rest, "n_months": len(folders)}


def collect_period_cube(client, submitted: dict) -> RangedCube:
    """The reduction of a period submitted by `submit_period_cube` (its range cubes, passage counts, points)."""
    rest = client.gather(submitted["rest"])
    if not submitted["n_months"]:
        return RangedCube([], merge_passage_counts([]), 0)
    shards = [Cube(c.cells, c.hist, c.vehicles) for c in client.gather(submitted["ranges"])]
    return RangedCube(shards, merge_passage_counts([r[0] for r in rest]), sum(r[1] for r in rest))


__all__ = [
    "ALL_POINTS",
    "CUBE_COLUMNS",
    "MONTH_COLUMNS",
    "MonthReducer",
    "PeriodCube",
    "collect_period_cube",
    "link_edges",
    "range_cube",
    "range_edges",
    "merge_passage_counts",
    "reduce_part",
    "part_points",
    "part_passages",
    "kept_rows",
    "period_ranges",
    "order_passages",
    "passage_counts",
    "month_points_and_passages",
    "period_groups",
    "period_tally",
    "read_month",
    "submit_period_cube",
    "whole_cube",
]
