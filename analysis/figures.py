"""Before/after analysis of a road network against the warehouse: match, aggregate, store, return figures."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from config.districts import District, Period
from etl.schema import transaction
from etl.warehouse import connect
from geo.aggregate import Cube, aggregate_points, figures
from geo.matching import DEFAULT_RADIUS_M, build_segment_index, match_points
from geo.network import load_roads
from geo.pointsource import concat_batches, point_batches



@dataclass
class AnalysisResult:
    district_key: str
    roads: gpd.GeoDataFrame  # metric CRS, with role filled in
    periods: dict[str, Period]
    road_stats: pd.DataFrame  # one row per road and period label (+ share_at_or_over_limit_plus_10)
    group_stats: pd.DataFrame  # one row per road group (treated, comparison) and period label
    n_points_in_area: dict[str, int]  # points read per period inside the network's bounding box
    n_points_matched: dict[str, int]



def assign_roles(roads: gpd.GeoDataFrame, treated: tuple[str, ...], comparison: tuple[str, ...]) -> gpd.GeoDataFrame:
    """Mark the given road ids as treated / comparison (other roles kept unless they claim either)."""
    roads = roads.copy()
    missing = [r for r in (*treated, *comparison) if r not in set(roads["road_id"])]
    if missing:
        raise ValueError(f"road ids not in the network: {', '.join(missing)}")
    role = roads["role"].where(~roads["role"].isin(["treated", "comparison"]), "")
    role = np.where(roads["road_id"].isin(treated), "treated", role)
    role = np.where(roads["road_id"].isin(comparison), "comparison", role)
    roads["role"] = role
    return roads


def analyze(
    warehouse: str | Path,
    roads_path: str | Path,
    periods: dict[str, Period],
    *,
    district_key: str,
    treated: tuple[str, ...] = (),
    comparison: tuple[str, ...] = (),
    radius_m: float = DEFAULT_RADIUS_M,
    point_filter=None,
    store: bool = True,
) -> AnalysisResult:
    """Match the warehouse's points of each period to the roads and compute per-road figures.

    point_filter (analysis.filters.PointFilter): keep only points of a time band, day type or
    vehicle class. Filtered figures are returned but not stored (the stored tables hold the
    unfiltered figures that maps and reports publish); filtered comparisons are stored by
    `etc2calm compare` in comparison_results with their filter.

    The core path: points read column-wise from the Parquet store (geo/pointsource.py), matched
    by the compiled kernel with the heading check, aggregated into a mergeable cube
    (geo/aggregate.py); every figure is derived from the cube's merged histograms, sums and
    exact distinct (link, vehicle) pairs. Also stores the cube (link_hour_stats, link_hour_histogram).

    Stores road_period_stats, group_period_stats and road_speed_histogram in the warehouse
    (replacing earlier rows of the same district and period label: re-running is safe).
    """
    roads = assign_roles(load_roads(roads_path), treated, comparison)
    index = build_segment_index(roads.geometry.values, radius_m=radius_m, oneway=roads["oneway"].to_numpy())
    links = index.links
    minx, miny, maxx, maxy = roads.total_bounds
    bounds = (minx - radius_m, miny - radius_m, maxx + radius_m, maxy + radius_m)
    limits = roads["limit_kmh"].to_numpy(dtype=float)
    road_ids = roads["road_id"].to_numpy(dtype=object)
    n_roads = len(roads)
    piece_road = links.piece_road.astype(np.int64)
    piece_limit = limits[piece_road]
    groups = sorted({"treated", "comparison"} & set(roads["role"]))
    road_group = np.array([groups.index(r) if r in groups else -1 for r in roads["role"]], dtype=np.int64)
    now = dt.datetime.now()
    points_dir = Path(warehouse) / "probe_points"
    con = connect(warehouse, create=False)
    road_parts, group_parts, hist_parts, cell_parts, link_hist_parts = [], [], [], [], []
    n_in_area, n_matched = {}, {}
    try:
        for label, period in periods.items():
            # A district's points of one period are few (bounding box): one cube per period keeps the
            # per-cell distinct vehicles exact.
            expr = point_filter.arrow_expression(period.start, period.end) if point_filter is not None else None
            b = concat_batches(list(point_batches(points_dir, period.start, period.end, bounds, extra_filter=expr)))
            n_in_area[label] = 0 if b is None else len(b)
            if b is None:
                cube, n_matched[label] = Cube.empty(), 0
            else:
                m = match_points(b.x_m, b.y_m, index, b.heading_deg)
                n_matched[label] = int((m.seg >= 0).sum())
                cube = aggregate_points(m.seg, m.pos, m.direction, index, b.gps_us, b.vehicle_type, b.speed_kmh,
                                        b.vehicle_id, piece_limit)  # fmt: skip
            extra = {"district": district_key, "period": label, "period_start": period.start, "period_end": period.end}
            f = figures(cube, piece_road, n_roads)
            road_parts.append(_with(pd.DataFrame({"road_id": road_ids, **f}), extra))
            g = figures(cube, road_group[piece_road], len(groups))
            group_parts.append(_with(pd.DataFrame({"road_group": groups, **g}), extra))
            hist_parts.append(_with(_road_histogram(cube, piece_road, road_ids), extra))
            cells = cube.cells_table().to_pandas()
            cells["link_id"] = links.piece_link[cells["piece"].to_numpy()] if len(cells) else []
            cells["road_id"] = road_ids[piece_road[cells["piece"].to_numpy()]] if len(cells) else []
            cell_parts.append(_with(cells, extra))
            lh = cube.hist_table().to_pandas()
            lh["link_id"] = links.piece_link[lh["piece"].to_numpy()] if len(lh) else []
            lh["road_id"] = road_ids[piece_road[lh["piece"].to_numpy()]] if len(lh) else []
            link_hist_parts.append(_with(lh, extra))
        road_stats = pd.concat(road_parts, ignore_index=True)
        road_stats["limit_kmh"] = limits[np.tile(np.arange(n_roads), len(periods))]
        road_stats = _blank_empty(road_stats)
        group_stats = pd.concat(group_parts, ignore_index=True) if groups else _empty_group_stats()
        if groups:
            group_stats["limit_kmh"] = [float(limits[road_group == gi].max()) for gi in range(len(groups))] * len(periods)
            group_stats = _blank_empty(group_stats)
        names = dict(zip(roads["road_id"], roads["name"]))
        road_stats["road_name"] = road_stats["road_id"].map(names)
        road_stats["role"] = road_stats["road_id"].map(dict(zip(roads["road_id"], roads["role"])))
        hist = pd.concat(hist_parts, ignore_index=True)
        if store and not (point_filter is not None and point_filter.active):
            _store(con, district_key, list(periods), road_stats, group_stats, hist, now,
                   pd.concat(cell_parts, ignore_index=True), pd.concat(link_hist_parts, ignore_index=True))  # fmt: skip
    finally:
        con.close()
    order = {label: i for i, label in enumerate(periods)}
    road_stats = road_stats.sort_values(["road_id", "period"], key=lambda s: s.map(order) if s.name == "period" else s)
    return AnalysisResult(
        district_key, roads, periods, road_stats.reset_index(drop=True), group_stats, n_in_area, n_matched
    )


def _road_histogram(cube: Cube, piece_road: np.ndarray, road_ids: np.ndarray) -> pd.DataFrame:
    h = cube.hist
    road = piece_road[h["piece"]]
    key = road * 1024 + h["speed_kmh"].astype(np.int64)
    uniq, inv = np.unique(key, return_inverse=True)
    n = np.bincount(inv, weights=h["n_points"]).astype(np.int64) if len(key) else np.zeros(0, np.int64)
    return pd.DataFrame({"road_id": road_ids[uniq // 1024] if len(uniq) else np.array([], dtype=object),
                         "speed_bin_kmh": (uniq % 1024).astype(float), "n_points": n})  # fmt: skip


def _blank_empty(df: pd.DataFrame) -> pd.DataFrame:
    """Roads or groups without matched points: n 0, figures empty (NaN)."""
    empty = df["n_points"] == 0
    for col in ("mean_kmh", "p85_kmh", "share_at_or_over_limit", "share_at_or_over_limit_plus_10"):
        df.loc[empty, col] = np.nan
    return df


def _empty_group_stats() -> pd.DataFrame:
    cols = ["road_group", "n_points", "n_vehicles", "mean_kmh", "p85_kmh", "share_at_or_over_limit",
            "share_at_or_over_limit_plus_10", "limit_kmh", "district", "period", "period_start", "period_end"]  # fmt: skip
    return pd.DataFrame({c: [] for c in cols})


def _with(df: pd.DataFrame, extra: dict) -> pd.DataFrame:
    for k, v in extra.items():
        df[k] = v
    return df


def _store(con, district_key, labels, road_stats, group_stats, hist, now, cells, link_hist) -> None:
    with transaction(con):
        for table in ("road_period_stats", "group_period_stats", "road_speed_histogram", "link_hour_stats",
                      "link_hour_histogram"):  # fmt: skip
            con.execute(
                f"DELETE FROM {table} WHERE district = ? AND period IN (SELECT unnest(?::VARCHAR[]))",
                [district_key, labels],
            )
        con.register("_rs", road_stats)
        con.execute(
            """INSERT INTO road_period_stats SELECT district, road_id, road_name, role, period, period_start,
               period_end, n_points, n_vehicles, mean_kmh, p85_kmh, share_at_or_over_limit, limit_kmh, ?::TIMESTAMP
               FROM _rs""",
            [now],
        )
        con.register("_gs", group_stats)
        con.execute(
            """INSERT INTO group_period_stats SELECT district, road_group, period, period_start, period_end,
               n_points, n_vehicles, mean_kmh, p85_kmh, share_at_or_over_limit, limit_kmh, ?::TIMESTAMP FROM _gs""",
            [now],
        )
        con.register("_h", hist)
        con.execute(
            """INSERT INTO road_speed_histogram SELECT district, road_id, period, period_start, period_end,
               speed_bin_kmh, n_points FROM _h"""
        )
        if len(cells):
            con.register("_c", cells)
            con.execute(
                """INSERT INTO link_hour_stats SELECT district, road_id, link_id, period, period_start, period_end,
                   direction, hour, day_type, vehicle_class, n_points, sum_speed_kmh, n_at_or_over_limit,
                   n_at_or_over_limit_plus_10, n_vehicles FROM _c"""
            )
        if len(link_hist):
            con.register("_lh", link_hist)
            con.execute(
                """INSERT INTO link_hour_histogram SELECT district, road_id, link_id, period, period_start, period_end,
                   direction, hour, day_type, vehicle_class, speed_kmh, n_points FROM _lh"""
            )


def analyze_district(
    warehouse: str | Path, district: District, periods: dict[str, Period] | None = None, radius_m: float = DEFAULT_RADIUS_M
) -> AnalysisResult:
    """`analyze` with the district's network, roads and (by default) its before/after periods."""
    if periods is None:
        periods = {"before": district.period(district.default_before), "after": district.period(district.default_after)}
    return analyze(
        warehouse,
        district.network_path,
        periods,
        district_key=district.key,
        treated=district.treated_roads,
        comparison=district.comparison_roads,
        radius_m=radius_m,
    )
