"""Before/after analysis of a road network against the warehouse: match, aggregate, store, return figures."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etc2calm.district import District, Period
from etl.warehouse import connect
from geo.aggregate import speed_histogram, speed_statistics
from geo.matching import DEFAULT_RADIUS_M, build_segment_index, match_points_to_roads
from geo.network import load_roads

RESULT_TABLES_DDL = """
CREATE TABLE IF NOT EXISTS road_period_stats (
    district               VARCHAR,   -- district key, or 'roads:<file stem>' for an ad-hoc network
    road_id                VARCHAR,   -- the input feature's id as text
    road_name              VARCHAR,
    role                   VARCHAR,   -- treated | comparison | other
    period                 VARCHAR,   -- label of the period in this analysis (before, after, trial ...)
    period_start           DATE,      -- inclusive, JST calendar day of GPS時刻
    period_end             DATE,      -- inclusive
    n_points               BIGINT,    -- matched points
    n_vehicles             BIGINT,    -- distinct pseudonymised vehicles (運行ID)
    mean_kmh               DOUBLE,    -- km/h
    p85_kmh                DOUBLE,    -- km/h, 85th percentile, linear interpolation
    share_at_or_over_limit DOUBLE,    -- fraction (0-1) of points with speed >= limit
    limit_kmh              DOUBLE,    -- km/h
    computed_at            TIMESTAMP
);
CREATE TABLE IF NOT EXISTS group_period_stats (
    district               VARCHAR,
    road_group             VARCHAR,   -- treated | comparison: all points of those roads pooled
    period                 VARCHAR,
    period_start           DATE,
    period_end             DATE,
    n_points               BIGINT,
    n_vehicles             BIGINT,
    mean_kmh               DOUBLE,
    p85_kmh                DOUBLE,
    share_at_or_over_limit DOUBLE,
    limit_kmh              DOUBLE,
    computed_at            TIMESTAMP
);
CREATE TABLE IF NOT EXISTS road_speed_histogram (
    district      VARCHAR,
    road_id       VARCHAR,
    period        VARCHAR,
    period_start  DATE,
    period_end    DATE,
    speed_bin_kmh DOUBLE,   -- lower edge of a 1 km/h bin
    n_points      BIGINT    -- mergeable: add counts over roads, periods or partitions
);
"""


@dataclass
class AnalysisResult:
    district_key: str
    roads: gpd.GeoDataFrame  # metric CRS, with role filled in
    periods: dict[str, Period]
    road_stats: pd.DataFrame  # one row per road and period label
    group_stats: pd.DataFrame  # one row per road group (treated, comparison) and period label
    n_points_in_area: dict[str, int]  # points read per period inside the network's bounding box
    n_points_matched: dict[str, int]


def parse_date_range(text: str) -> tuple[dt.date, dt.date]:
    """'YYYY-MM-DD..YYYY-MM-DD' (inclusive) → (start, end); ValueError with a one-line reason."""
    parts = text.split("..")
    if len(parts) != 2:
        raise ValueError(f"bad date range {text!r}: expected YYYY-MM-DD..YYYY-MM-DD")
    try:
        start, end = (dt.date.fromisoformat(p.strip()) for p in parts)
    except ValueError:
        raise ValueError(f"bad date range {text!r}: expected YYYY-MM-DD..YYYY-MM-DD") from None
    if end < start:
        raise ValueError(f"bad date range {text!r}: end is before start")
    return start, end


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


def load_points(con: duckdb.DuckDBPyConnection, period: Period, bounds: tuple[float, float, float, float]) -> pa.Table:
    """Points with GPS時刻 inside the period (inclusive days, JST) and inside bounds (metres, EPSG:6677)."""
    minx, miny, maxx, maxy = bounds
    # operation_date may lag GPS time across midnight: widen the partition filter by a day.
    return con.sql(
        """
        SELECT vehicle_key, speed_kmh, x_m, y_m
        FROM probe_points
        WHERE operation_date BETWEEN ?::DATE - 1 AND ?::DATE + 1
          AND gps_time >= ?::TIMESTAMP AND gps_time < ?::TIMESTAMP
          AND x_m BETWEEN ? AND ? AND y_m BETWEEN ? AND ?
        """,
        params=[period.start, period.end, dt.datetime.combine(period.start, dt.time()),
                dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time()), minx, maxx, miny, maxy],
    ).to_arrow_table()  # fmt: skip


def analyze(
    warehouse: str | Path,
    roads_path: str | Path,
    periods: dict[str, Period],
    *,
    district_key: str,
    treated: tuple[str, ...] = (),
    comparison: tuple[str, ...] = (),
    radius_m: float = DEFAULT_RADIUS_M,
) -> AnalysisResult:
    """Match the warehouse's points of each period to the roads and compute per-road figures.

    Stores road_period_stats, group_period_stats and road_speed_histogram in the warehouse
    (replacing earlier rows of the same district and period label: re-running is safe).
    """
    roads = assign_roles(load_roads(roads_path), treated, comparison)
    index = build_segment_index(roads.geometry.values, radius_m=radius_m)
    minx, miny, maxx, maxy = roads.total_bounds
    bounds = (minx - radius_m, miny - radius_m, maxx + radius_m, maxy + radius_m)
    limits = roads["limit_kmh"].to_numpy()
    road_ids = roads["road_id"].to_numpy(dtype=object)
    roles = roads["role"].to_numpy(dtype=object)
    now = dt.datetime.now()
    con = connect(warehouse, create=False)
    road_parts, group_parts, hist_parts = [], [], []
    n_in_area, n_matched = {}, {}
    try:
        con.execute(RESULT_TABLES_DDL)
        for label, period in periods.items():
            pts = load_points(con, period, bounds)
            road_idx, _ = match_points_to_roads(pts.column("x_m").to_numpy(), pts.column("y_m").to_numpy(), index)
            hit = road_idx >= 0
            n_in_area[label], n_matched[label] = pts.num_rows, int(hit.sum())
            ridx = road_idx[hit]
            matched = pa.table(
                {
                    "road_id": pa.array(road_ids[ridx], pa.string()),
                    "road_group": pa.array(roles[ridx], pa.string()),
                    "period": pa.array(np.full(len(ridx), label, dtype=object), pa.string()),
                    "vehicle_key": pts.column("vehicle_key").filter(pa.array(hit)),
                    "speed_kmh": pts.column("speed_kmh").filter(pa.array(hit)),
                    "limit_kmh": pa.array(limits[ridx], pa.float64()),
                }
            )
            extra = {"district": district_key, "period_start": period.start, "period_end": period.end}
            road_parts.append(_with(speed_statistics(con, matched, ["road_id", "period"]).to_pandas(), extra))
            in_group = matched.filter(pc.is_in(matched.column("road_group"), pa.array(["treated", "comparison"])))
            group_parts.append(_with(speed_statistics(con, in_group, ["road_group", "period"]).to_pandas(), extra))
            hist_parts.append(_with(speed_histogram(con, matched, ["road_id", "period"]).to_pandas(), extra))
        # One row per road and period, also where no point matched (n_points 0, figures empty).
        full = pd.MultiIndex.from_product([roads["road_id"], list(periods)], names=["road_id", "period"]).to_frame(index=False)
        road_stats = _complete(full, pd.concat(road_parts, ignore_index=True), periods, district_key, roads)
        groups = sorted({"treated", "comparison"} & set(roads["role"]))
        full_groups = pd.MultiIndex.from_product([groups, list(periods)], names=["road_group", "period"]).to_frame(index=False)
        group_stats = _complete(full_groups, pd.concat(group_parts, ignore_index=True), periods, district_key, roads)
        names = dict(zip(roads["road_id"], roads["name"]))
        road_stats["road_name"] = road_stats["road_id"].map(names)
        road_stats["role"] = road_stats["road_id"].map(dict(zip(roads["road_id"], roads["role"])))
        hist = pd.concat(hist_parts, ignore_index=True)
        _store(con, district_key, list(periods), road_stats, group_stats, hist, now)
    finally:
        con.close()
    order = {label: i for i, label in enumerate(periods)}
    road_stats = road_stats.sort_values(["road_id", "period"], key=lambda s: s.map(order) if s.name == "period" else s)
    return AnalysisResult(
        district_key, roads, periods, road_stats.reset_index(drop=True), group_stats, n_in_area, n_matched
    )


def _complete(full: pd.DataFrame, stats: pd.DataFrame, periods, district_key, roads) -> pd.DataFrame:
    keys = list(full.columns)
    out = full.merge(stats.drop(columns=["district", "period_start", "period_end"], errors="ignore"), on=keys, how="left")
    out["n_points"] = out["n_points"].fillna(0).astype("int64")
    out["n_vehicles"] = out["n_vehicles"].fillna(0).astype("int64")
    if "road_id" in keys:
        limits = dict(zip(roads["road_id"], roads["limit_kmh"]))
        out["limit_kmh"] = out["road_id"].map(limits).astype(float)
    out["district"] = district_key
    out["period_start"] = out["period"].map({k: p.start for k, p in periods.items()})
    out["period_end"] = out["period"].map({k: p.end for k, p in periods.items()})
    return out


def _with(df: pd.DataFrame, extra: dict) -> pd.DataFrame:
    for k, v in extra.items():
        df[k] = v
    return df


def _store(con, district_key, labels, road_stats, group_stats, hist, now) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        for table in ("road_period_stats", "group_period_stats", "road_speed_histogram"):
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
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


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
