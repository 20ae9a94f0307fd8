"""The one reader of matched points (and their trips, events and passages), with the one filter.

Everything that computes a figure — the cube and per-road figures, before/after with the
bootstrap and DiD, braking, cut-through, the monthly series, screening — reads the match stage's
stored output through `read_points` / `read_matched_points` (with
`analysis.filters.PointFilter.expression`), so two analyses with the same period and filter see
exactly the same points. The stored match is lean (etl.schema.POINTS_SCHEMA): road,
link, limit, road position, hour and day type are derived here (`with_derived`), the same way
for every reader.

A passage is one vehicle's traversal of one road: a maximal run of consecutive matched points of
one trip on the same road (points matched to no road are skipped, so GPS noise off the road does
not split a traversal), split at a time gap over SECTION_MAX_GAP_S, a step over SECTION_MAX_STEP_M
and a reversal of direction along the road (a U-turn). Its speed is the section travel speed
(`geo.trip_kernels.section_speed_kernel`, docs/statistics.md): distance along the street over the
time taken, from consecutive point pairs — the trip's stored point just before the run and just
after it included, interpolated to where the trip entered and left the street — with the pairs
roadlabo/ETC's route performance drops left out; so a passage of one point still gets a speed. A
passage timed over less than SECTION_MIN_COVERED_M of its street (or all of a shorter one) has none:
it begins, ends or only clips the street, and its pairs time mostly the neighbouring road; nor has one
whose points all lie within SECTION_END_ZONE_M of one node of the street (an end or a junction the
trip may only have crossed on the other road). The
mean and the maximum of its points' instantaneous speeds are kept beside it (mean_kmh: the
sensitivity indicator passage_spot_mean).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from analysis.filters import ALL_POINTS, PointFilter
from analysis.network import Network
from config.settings import (
    JUNCTION_TOLERANCE_M,
    PASSAGE_SPEED_DECIMALS,
    PASSAGE_SPEEDS,
    SECTION_CONTEXT_TOLERANCE_M,
    SECTION_END_ZONE_M,
    SECTION_MAX_DETOUR,
    SECTION_MAX_GAP_S,
    SECTION_MAX_KMH,
    SECTION_MAX_STEP_M,
    SECTION_MIN_COVERED_M,
    SECTION_MIN_STEP_M,
)
from etl.schema import EVENTS_SCHEMA, POINTS_SCHEMA, TRIPS_SCHEMA
from geo.aggregate import day_type_of, hour_of
from geo.calendar import months_between
from geo.trip_kernels import section_speed_kernel, shared_nodes


def matched_folders(
    con: duckdb.DuckDBPyConnection, warehouse: Path, district: str, start: dt.date, end: dt.date
) -> list[Path]:
    """The match stage's folders of `district` for the months that can hold days start..end."""
    months = months_between(start, end)
    rows = con.execute(
        "SELECT year, month, folder FROM match_state WHERE district = ? ORDER BY year, month", [district]
    ).fetchall()
    return [Path(warehouse) / f for y, m, f in rows if (y, m) in months]


def read_matched_files(folders: list[Path], name: str, schema: pa.Schema, columns: list[str] | None, expr) -> pa.Table:
    """Read `name`.parquet (points, trips or events) of match-stage folders with a filter expression."""
    files = [str(f / f"{name}.parquet") for f in folders if (f / f"{name}.parquet").exists()]
    cols = columns or schema.names
    if not files:
        return schema.empty_table().select(cols)
    return ds.dataset(files, format="parquet", schema=schema).to_table(columns=cols, filter=expr)


# Columns of the matched points that follow from the stored ones and the network (or the time).
DERIVED_COLUMNS = ("road_idx", "road_id", "limit_kmh", "link_id", "road_pos_m", "hour", "day_type")
POINT_COLUMNS = [*POINTS_SCHEMA.names, *DERIVED_COLUMNS]
_NEEDS = {
    "road_idx": ("seg",),
    "road_id": ("seg",),
    "limit_kmh": ("seg",),
    "link_id": ("seg",),
    "road_pos_m": ("seg", "pos"),
    "hour": ("gps_time",),
    "day_type": ("gps_time",),
}


def stored_columns(columns: list[str]) -> list[str]:
    """The stored columns (POINTS_SCHEMA) that give `columns` (stored or derived)."""
    want = set()
    for c in columns:
        if c not in POINT_COLUMNS:
            raise KeyError(f"matched points have no column {c!r}")
        want.update(_NEEDS.get(c, (c,)))
    return [c for c in POINTS_SCHEMA.names if c in want]


def with_derived(t: pa.Table, network: Network, columns: list[str]) -> pa.Table:
    """Stored points (at least `stored_columns(columns)`) with `columns`, in that order: road_idx,
    link_id (-1 off the network), road_id (null off it), limit_kmh (NaN off it) and road_pos_m
    (metres along the road, NaN off it) from the segment and the network; hour and day_type
    (geo.aggregate) from GPS時刻."""
    out = {}
    links = network.index.links
    if any(c in columns for c in ("road_idx", "road_id", "limit_kmh", "link_id", "road_pos_m")):
        seg = t.column("seg").to_numpy(zero_copy_only=False)
        hit = seg >= 0
        link = np.where(hit, links.seg_link[np.maximum(seg, 0)], -1).astype(np.int32)
        road = np.where(hit, links.link_road[np.maximum(link, 0)], -1).astype(np.int32)
        safe = np.maximum(link, 0)
        out["link_id"], out["road_idx"] = link, road
        if "road_id" in columns:
            names = pa.array(list(network.road_ids), pa.string())
            out["road_id"] = pa.DictionaryArray.from_arrays(pa.array(road, mask=~hit), names).cast(pa.string())
        out["limit_kmh"] = np.append(network.limits_kmh, np.nan)[np.where(hit, road, len(network.limits_kmh))]
        if "road_pos_m" in columns:
            pos = t.column("pos").to_numpy(zero_copy_only=False)
            out["road_pos_m"] = np.where(hit, links.link_offset_m[safe] + pos * links.link_length_m[safe], np.nan)
    if "hour" in columns or "day_type" in columns:
        g = t.column("gps_time").cast(pa.int64()).to_numpy(zero_copy_only=False)
        out["hour"], out["day_type"] = hour_of(g), day_type_of(g)
    return pa.table({c: out[c] if c in out else t.column(c) for c in columns})


def points_expression(point_filter: PointFilter, start: dt.date, end: dt.date, on_network: bool = True):
    """The filter expression of `read_points` (period, filter, and on the network)."""
    expr = point_filter.expression(start, end)
    if on_network:
        net = pc.field("seg") >= 0
        expr = net if expr is None else expr & net
    return expr


def filter_rows(t: pa.Table, expr: pc.Expression | None, columns: list[str] | None = None) -> pa.Table:
    """The rows of an in-memory table (its `columns`) kept by a filter expression (`points_expression`):
    the expression evaluated to a mask first, so that rows are copied only when some are dropped."""
    t = t if columns is None else t.select(columns)
    if expr is None or t.num_rows == 0:
        return t
    keep = ds.dataset(t).to_table(columns={"keep": expr}).column("keep")
    if keep.null_count == 0 and pc.all(keep).as_py():
        return t
    return t.filter(keep)


def row_mask(t: pa.Table, expr: pc.Expression | None) -> np.ndarray | None:
    """Per row of an in-memory table, whether the filter expression keeps it (None: every row)."""
    if expr is None or t.num_rows == 0:
        return None
    keep = ds.dataset(t).to_table(columns={"keep": expr}).column("keep")
    mask = keep.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
    return None if mask.all() else mask


def read_matched_points(folders: list[Path], network: Network, columns: list[str] | None, expr) -> pa.Table:
    """The stored points of match-stage folders kept by `expr`, with `columns` (stored or derived;
    None: all of POINT_COLUMNS)."""
    columns = list(columns or POINT_COLUMNS)
    t = read_matched_files(folders, "points", POINTS_SCHEMA, stored_columns(columns), expr)
    return with_derived(t, network, columns)


def read_points(
    con: duckdb.DuckDBPyConnection,
    warehouse: Path,
    network: Network,
    start: dt.date,
    end: dt.date,
    point_filter: PointFilter = ALL_POINTS,
    columns: list[str] | None = None,
    on_network: bool = True,
) -> pa.Table:
    """Matched points of `network` (its district key) with GPS時刻 on days start..end (inclusive) kept
    by the filter.

    on_network: only points matched to a road (else also the trip points off the network inside
    the network's grown box). Columns as documented for the view matched_points (stored or derived).
    """
    expr = points_expression(point_filter, start, end, on_network)
    return read_matched_points(matched_folders(con, warehouse, network.key, start, end), network, columns, expr)


def read_trips(
    con: duckdb.DuckDBPyConnection, warehouse: Path, district: str, start: dt.date, end: dt.date
) -> pa.Table:
    """Trips touching the network in the months of start..end: first / last point of the whole trip."""
    return read_matched_files(matched_folders(con, warehouse, district, start, end), "trips", TRIPS_SCHEMA, None, None)


def read_events(
    con: duckdb.DuckDBPyConnection,
    warehouse: Path,
    district: str,
    start: dt.date,
    end: dt.date,
    point_filter: PointFilter = ALL_POINTS,
) -> pa.Table:
    """挙動履歴 braking events on the network in start..end; the filter's time band and day type apply
    (events carry no vehicle class or road direction)."""
    expr = point_filter.without_vehicle_and_direction().expression(start, end)
    base = (pc.field("road_idx") >= 0) & pc.field("is_braking")
    expr = base if expr is None else expr & base
    return read_matched_files(
        matched_folders(con, warehouse, district, start, end), "events", EVENTS_SCHEMA, None, expr
    )


def _values(points: pa.Table | pd.DataFrame, name: str) -> np.ndarray:
    if isinstance(points, pa.Table):
        return points.column(name).to_numpy(zero_copy_only=False)
    return points[name].to_numpy()


def grouped_by_trip(trip: np.ndarray, seq: np.ndarray) -> bool:
    """Whether rows are already grouped by trip (each trip one run) in increasing seq: how the match
    stage stores them."""
    if len(trip) == 0:
        return True
    same = trip[1:] == trip[:-1]
    if not np.all(seq[1:][same] > seq[:-1][same]):
        return False
    return int(np.count_nonzero(~same)) + 1 == len(pd.unique(trip))


# The passages' column of the speed behind the passage indicators and screening (the section travel speed).
PASSAGE_SPEED_COLUMN = f"{PASSAGE_SPEEDS[0]}_kmh"


# RoadNodes.of_network's nodes by id of the network index (with the index, so that a reused id never hits).
_NODES_OF_INDEX: dict[int, tuple[object, RoadNodes]] = {}


@dataclass(frozen=True)
class RoadNodes:
    """The nodes of every road, where the trip can enter or leave it: the ends of its links (junctions
    and the road's two ends). Road r's nodes are first[r]..first[r + 1] - 1 (CSR), each with its
    position along the road (s_m, metres, as road_pos_m) and coordinates (x_m, y_m: metres, EPSG:6677)."""

    first: np.ndarray
    s_m: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray

    @classmethod
    def of_network(cls, network: Network) -> RoadNodes:
        """Both ends of every link of the network's roads (a node shared by two links appears twice).
        Made once per network index: every pass and month of a run shares them (and `kernel_arrays`)."""
        hit = _NODES_OF_INDEX.get(id(network.index))
        if hit is not None and hit[0] is network.index:
            return hit[1]
        nodes = cls._of_links(network)
        while len(_NODES_OF_INDEX) >= 4:  # the last few networks only
            _NODES_OF_INDEX.pop(next(iter(_NODES_OF_INDEX)))
        _NODES_OF_INDEX[id(network.index)] = (network.index, nodes)
        return nodes

    @classmethod
    def _of_links(cls, network: Network) -> RoadNodes:
        links = network.index.links
        n_links = len(links.link_road)
        seg_first = np.searchsorted(links.seg_link, np.arange(n_links), side="left")
        seg_last = np.searchsorted(links.seg_link, np.arange(n_links), side="right") - 1
        off = links.link_offset_m
        s = np.column_stack([off, off + links.link_length_m]).ravel()
        x = np.column_stack([links.x0[seg_first], links.x1[seg_last]]).ravel()
        y = np.column_stack([links.y0[seg_first], links.y1[seg_last]]).ravel()
        first = 2 * np.searchsorted(links.link_road, np.arange(len(network.roads) + 1), side="left")
        return cls(first.astype(np.int64), s.astype(float), x.astype(float), y.astype(float))

    @property
    def length_m(self) -> np.ndarray:
        """Per road: its length (the largest position of its nodes), metres; NaN for a road without nodes."""
        n = len(self.first) - 1
        out = np.full(n, np.nan)
        has = self.first[1:] > self.first[:-1]
        if has.any():
            out[has] = np.maximum.reduceat(self.s_m, self.first[:-1][has])
        return out

    def within(self, road: np.ndarray, low_m: np.ndarray, high_m: np.ndarray) -> np.ndarray:
        """Per element: whether road `road` has a node at a position in [low_m, high_m] (metres)."""
        road = np.asarray(road, dtype=np.int64)
        if len(road) == 0 or len(self.s_m) == 0:
            return np.zeros(len(road), dtype=bool)
        span = float(np.nanmax(self.s_m)) + 1e6  # positions of different roads never overlap
        node_road = np.repeat(np.arange(len(self.first) - 1), np.diff(self.first))
        key = node_road * span + self.s_m  # sorted: nodes by road, then along it
        at = np.searchsorted(key, road * span + np.asarray(low_m, dtype=float), side="left")
        hit = at < len(key)
        hit[hit] = key[at[hit]] <= road[hit] * span + np.asarray(high_m, dtype=float)[hit]
        return hit

    def kernel_arrays(self) -> tuple[np.ndarray, ...]:
        """(first, s_m, x_m, y_m, pair_key, pair_node) for geo.trip_kernels.section_speed_kernel: the nodes,
        and the nodes each pair of roads shares (`geo.trip_kernels.shared_nodes`, within
        JUNCTION_TOLERANCE_M). Computed once per RoadNodes."""
        return self._kernel_arrays

    @cached_property
    def _kernel_arrays(self) -> tuple[np.ndarray, ...]:
        pair_key, pair_node = shared_nodes(self.first, self.x_m, self.y_m, JUNCTION_TOLERANCE_M)
        return self.first, self.s_m, self.x_m, self.y_m, pair_key, pair_node


def passage_arrays(
    points: pa.Table | pd.DataFrame,
    nodes: RoadNodes,
    *,
    keep: np.ndarray | None = None,
    ordered_by_trip_id: bool = True,
) -> dict[str, np.ndarray]:
    """`passages` as numpy arrays. ordered_by_trip_id=False: rows already grouped by trip in seq
    order (`grouped_by_trip`) are not sorted, and the passages come in the rows' trip order.

    points: every stored point of the trips (trip_id, seq, vehicle_id, road_idx, speed_kmh, gps_time,
    road_pos_m, x_m, y_m), so that the points just before and after a run on a road are there; keep
    (per row, in the rows' order): the points a passage is made of (default: those on a road)."""
    trip, seq = _values(points, "trip_id"), _values(points, "seq")
    if ordered_by_trip_id or not grouped_by_trip(trip, seq):
        order = np.lexsort((seq, trip))
        take = lambda name: _values(points, name)[order]  # noqa: E731
        keep = None if keep is None else np.asarray(keep, dtype=bool)[order]
    else:
        take = lambda name: _values(points, name)  # noqa: E731
    trip, road = take("trip_id").astype(np.int64, copy=False), take("road_idx").astype(np.int32, copy=False)
    keep = road >= 0 if keep is None else np.asarray(keep, dtype=bool) & (road >= 0)
    gps = take("gps_time")
    t_s = gps.astype("datetime64[us]").astype(np.int64) / 1e6
    pos = take("road_pos_m").astype(np.float64, copy=False)
    spot = take("speed_kmh").astype(np.float64, copy=False)
    pid, first, _, n, dist, time = section_speed_kernel(
        trip,
        t_s,
        take("x_m").astype(np.float64, copy=False),
        take("y_m").astype(np.float64, copy=False),
        road,
        pos,
        spot,
        keep,
        nodes.kernel_arrays(),
        SECTION_MIN_STEP_M,
        SECTION_MAX_STEP_M,
        SECTION_MAX_GAP_S,
        SECTION_MAX_KMH,
        SECTION_CONTEXT_TOLERANCE_M,
        SECTION_MAX_DETOUR,
    )
    rows = np.flatnonzero(keep)  # the passages' points, passage after passage
    speed = spot[rows]
    p = pid[rows]
    starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]]) if len(rows) else np.zeros(0, np.int64)
    # timed over enough of the street (SECTION_MIN_COVERED_M, or all of a shorter street), and not only
    # from points at one of its nodes (an end or a junction the trip may have crossed on the other road)
    length = nodes.length_m[road[first]]
    covered = dist >= np.minimum(SECTION_MIN_COVERED_M, length) - SECTION_MIN_STEP_M
    p_pos = pos[rows]
    lo = np.minimum.reduceat(p_pos, starts) if len(starts) else np.zeros(0)
    hi = np.maximum.reduceat(p_pos, starts) if len(starts) else np.zeros(0)
    at_a_node = nodes.within(road[first], hi - SECTION_END_ZONE_M, lo + SECTION_END_ZONE_M)
    with np.errstate(invalid="ignore", divide="ignore"):
        section = np.where((time > 0) & covered & ~at_a_node, dist / time * 3.6, np.nan)
        mean = np.bincount(p, weights=speed, minlength=len(n)) / n
    return {
        "road_idx": road[first],
        "vehicle_id": take("vehicle_id")[first],
        "trip_id": trip[first],
        "n_points": n,
        "mean_kmh": np.round(mean, PASSAGE_SPEED_DECIMALS),
        "max_kmh": np.round(np.maximum.reduceat(speed, starts), PASSAGE_SPEED_DECIMALS) if len(starts) else np.zeros(0),
        "section_kmh": np.round(section, PASSAGE_SPEED_DECIMALS),
        "section_m": dist,
        "first_time": gps[first],
    }


def passages(points: pa.Table | pd.DataFrame, nodes: RoadNodes, keep: np.ndarray | None = None) -> pd.DataFrame:
    """One row per passage (module docstring) of the trips' points (columns trip_id, seq, vehicle_id,
    road_idx, speed_kmh, gps_time, road_pos_m, x_m, y_m; any order; `keep`: the rows a passage is made of,
    default those on a road), ordered by trip id: road_idx, vehicle_id, trip_id, n_points, mean_kmh (mean
    of its points' instantaneous speeds), max_kmh, section_kmh (section travel speed; NaN when its usable
    pairs cover less than SECTION_MIN_COVERED_M of the street, or all of a shorter street), section_m
    (metres of the street its usable pairs cover), first_time.
    Speeds in km/h rounded to PASSAGE_SPEED_DECIMALS (0.1 km/h).
    """
    cols = [
        "road_idx",
        "vehicle_id",
        "trip_id",
        "n_points",
        "mean_kmh",
        "max_kmh",
        "section_kmh",
        "section_m",
        "first_time",
    ]
    if len(points) == 0:
        return pd.DataFrame({c: [] for c in cols})
    return pd.DataFrame(passage_arrays(points, nodes, keep=keep))
