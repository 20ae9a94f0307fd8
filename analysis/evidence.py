"""Evidence for a district: before/after comparisons with intervals, DiD, braking and cut-through, stored."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from analysis.figures import assign_roles
from analysis.behaviour import (
    DEFAULT_BRAKING_THRESHOLD_G,
    braking_from_points,
    braking_hotspots,
    braking_per_road,
    cut_through_streets,
    cut_through_trips,
)
from config.districts import District, Period
from analysis.evaluation import (
    DEFAULT_MIN_VEHICLES,
    DEFAULT_PUBLIC_MIN_VEHICLES,
    DEFAULT_RESAMPLES,
    INDICATORS,
    compare_periods_all,
)
from analysis.filters import PointFilter
from etl.schema import transaction
from etl.warehouse import connect
from geo.matching import DEFAULT_RADIUS_M, build_segment_index, match_points
from geo.pointsource import MAX_HEADING_GAP_S, MIN_HEADING_STEP_M
from geo.network import METRIC_CRS, load_roads



@dataclass
class DistrictEvidence:
    district_key: str
    periods: dict[str, Period]
    filter: PointFilter
    roads: gpd.GeoDataFrame  # metric CRS, roles set
    comparisons: dict[str, pd.DataFrame]  # indicator -> compare_periods table
    distributions: pd.DataFrame  # unit ('treated', 'control', road ids), period, speed_kmh, n_points
    braking: pd.DataFrame  # period, road_id, n_events, n_passages, events_per_1000_passages
    hotspots: pd.DataFrame  # period, x_m, y_m, n_events, n_vehicles
    cut_through: pd.DataFrame  # period, n_trips, n_cut_through, share_cut_through
    cut_through_streets: pd.DataFrame  # period, road_id, n_trips, n_cut_through, share_cut_through
    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    threshold_g: float = DEFAULT_BRAKING_THRESHOLD_G
    braking_source: str = "points"  # 'behavior_events' (挙動履歴) or 'points' (inferred from consecutive points)
    notes: list[str] = field(default_factory=list)


def load_trip_points(con, period: Period, bounds, point_filter: PointFilter) -> pd.DataFrame:
    """All points of the trips that have a point inside `bounds` (metres, EPSG:6677) during the period.

    Whole trips are kept (also their points outside the bounds) so that cut-through and braking
    see each trip's first and last points. trip_id identifies (vehicle, operation date, trip number).
    """
    minx, miny, maxx, maxy = bounds
    start = dt.datetime.combine(period.start, dt.time())
    end = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time())
    cond = point_filter.sql(period.start, period.end)
    cols = {r[0] for r in con.execute("DESCRIBE probe_points").fetchall()}
    # The heading the analysis matches with: stored at ingest by earlier versions, else derived here
    # from the previous point of the same trip (the match stage will own this); unknown after a long
    # gap or a tiny step.
    if {"heading_deg", "dt_prev_s", "dist_prev_m"} <= cols:
        heading = (
            f"CASE WHEN p.dt_prev_s <= {MAX_HEADING_GAP_S} AND p.dist_prev_m >= {MIN_HEADING_STEP_M} "
            "THEN p.heading_deg END AS heading_deg"
        )
        prev = ""
    else:
        heading = (
            f"CASE WHEN p._pt IS NOT NULL AND epoch(p.gps_time) - epoch(p._pt) <= {MAX_HEADING_GAP_S} "
            f"AND sqrt((p.x_m - p._px) ^ 2 + (p.y_m - p._py) ^ 2) >= {MIN_HEADING_STEP_M} "
            "THEN (degrees(atan2(p.x_m - p._px, p.y_m - p._py)) + 360) % 360 END AS heading_deg"
        )
        prev = (", lag(x_m) OVER w AS _px, lag(y_m) OVER w AS _py, lag(gps_time) OVER w AS _pt")
    window = " WINDOW w AS (PARTITION BY vehicle_key, operation_date, trip_no ORDER BY gps_time, file_id, line_no)" if prev else ""
    return con.sql(
        f"""
        WITH in_period AS (
            SELECT * FROM probe_points
            WHERE operation_date BETWEEN ?::DATE - 1 AND ?::DATE + 1
              AND gps_time >= ?::TIMESTAMP AND gps_time < ?::TIMESTAMP
        ),
        touching AS (
            SELECT DISTINCT vehicle_key, operation_date, trip_no FROM in_period
            WHERE x_m BETWEEN ? AND ? AND y_m BETWEEN ? AND ?
        ),
        trip_points AS (
            SELECT *{prev} FROM in_period JOIN touching USING (vehicle_key, operation_date, trip_no){window}
        )
        SELECT p.vehicle_key AS vehicle,
               hash(p.vehicle_key, p.operation_date, p.trip_no) AS trip_id,
               p.gps_time, p.x_m, p.y_m, p.speed_kmh, {heading},
               ({cond}) AS kept
        FROM trip_points p
        """,
        params=[period.start, period.end, start, end, minx, maxx, miny, maxy],
    ).df()


def load_braking_events(con, period: Period, bounds, point_filter: PointFilter) -> pd.DataFrame | None:
    """Sudden-deceleration events of 挙動履歴 inside bounds during the period, or None if none delivered.

    An event counts as braking when its longitudinal acceleration is negative (or not given:
    the history only records threshold crossings).
    """
    has_view = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'behavior_events'"
    ).fetchall()[0][0]
    if not has_view:
        return None
    minx, miny, maxx, maxy = bounds
    start = dt.datetime.combine(period.start, dt.time())
    end = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time())
    cond = point_filter.sql(period.start, period.end).replace("gps_time", "event_time")
    if "vehicle_type" in cond or "vehicle_use" in cond:
        cond = "true"  # 挙動履歴 carries no vehicle class: the class filter applies to points only
    df = con.sql(
        f"""
        SELECT vehicle_key AS vehicle, event_time AS gps_time, x_m, y_m, speed_kmh
        FROM behavior_events
        WHERE event_time >= ?::TIMESTAMP AND event_time < ?::TIMESTAMP
          AND x_m BETWEEN ? AND ? AND y_m BETWEEN ? AND ?
          AND coalesce(accel_long, -1) < 0 AND ({cond})
        """,
        params=[start, end, minx, maxx, miny, maxy],
    ).df()
    return df


def load_trip_origins(con, period: Period) -> pd.DataFrame | None:
    """様式1-3 origins and destinations (metres, EPSG:6677) of the period's trips, or None if none delivered."""
    has_view = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'trips'").fetchall()[0][0]
    if not has_view:
        return None
    df = con.sql(
        """
        SELECT vehicle_key AS vehicle, hash(vehicle_key, operation_date, trip_no) AS trip_id,
               origin_lon, origin_lat, dest_lon, dest_lat
        FROM trips
        WHERE operation_date BETWEEN ?::DATE - 1 AND ?::DATE + 1
          AND origin_lon IS NOT NULL AND dest_lon IS NOT NULL
        """,
        params=[period.start, period.end],
    ).df()
    if df.empty:
        return None
    from pyproj import Transformer

    to_m = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    df["origin_x_m"], df["origin_y_m"] = to_m.transform(df["origin_lon"].to_numpy(), df["origin_lat"].to_numpy())
    df["dest_x_m"], df["dest_y_m"] = to_m.transform(df["dest_lon"].to_numpy(), df["dest_lat"].to_numpy())
    return df.drop_duplicates(["vehicle", "trip_id"])


def _match(points: pd.DataFrame, roads: gpd.GeoDataFrame, radius_m: float, with_direction: bool = False):
    """road_id per point ('' when no road within radius_m), with the analysis's heading-aware matcher;
    with_direction: also the direction of travel relative to the road's digitisation (+1 / -1, 0 unknown)."""
    index = build_segment_index(roads.geometry.values, radius_m=radius_m, oneway=roads["oneway"].to_numpy())
    heading = points["heading_deg"].to_numpy(dtype=float, na_value=np.nan) if "heading_deg" in points else None
    m = match_points(points["x_m"].to_numpy(dtype=float), points["y_m"].to_numpy(dtype=float), index, heading)
    ids = np.append(roads["road_id"].to_numpy(dtype=object), "")
    road_ids = ids[np.where(m.road >= 0, m.road, len(roads))]
    return (road_ids, m.direction.astype(np.int8)) if with_direction else road_ids


def district_area(district: District) -> object | None:
    """The district outline (shapely geometry, metres, EPSG:6677), if the district file names one."""
    area = district.raw.get("area")
    if not area:
        return None
    gdf = gpd.read_file((district.source_path.parent / area).resolve()).to_crs(METRIC_CRS)
    return gdf.geometry.union_all()


def evaluate(
    warehouse: str | Path,
    roads_path: str | Path,
    periods: dict[str, Period],
    *,
    district_key: str,
    treated: tuple[str, ...],
    control: tuple[str, ...],
    area=None,
    point_filter: PointFilter | None = None,
    direction: int = 0,
    indicators: tuple[str, ...] = INDICATORS,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    min_vehicles: int = DEFAULT_MIN_VEHICLES,
    threshold_g: float = DEFAULT_BRAKING_THRESHOLD_G,
    radius_m: float = DEFAULT_RADIUS_M,
    store: bool = True,
) -> DistrictEvidence:
    """Compare `before` and `after` (keys of `periods`) on treated and control roads, with evidence.

    Speeds are compared on the points kept by `point_filter` (and, with direction +1 / -1, only
    on points travelling along / against the road's digitised direction); braking and
    cut-through use the time / day / vehicle filter on whole trips. Results are stored in the warehouse (comparison_results,
    braking_per_road, cut_through_summary, cut_through_streets), replacing earlier rows of the
    same district and filter.
    """
    if set(periods) != {"before", "after"}:
        raise ValueError(f"evaluate needs exactly the periods 'before' and 'after', got {', '.join(periods)}")
    if not treated:
        raise ValueError("no treated roads given")
    point_filter = point_filter or PointFilter()
    roads = assign_roles(load_roads(roads_path), treated, control)
    minx, miny, maxx, maxy = roads.total_bounds
    bounds = (minx - radius_m, miny - radius_m, maxx + radius_m, maxy + radius_m)
    limits = dict(zip(roads["road_id"], roads["limit_kmh"]))
    con = connect(warehouse, create=False)
    parts, braking, hotspots, cut, cut_streets = [], [], [], [], []
    braking_source = "points"
    try:
        for label, period in periods.items():
            pts = load_trip_points(con, period, bounds, point_filter)
            if len(pts):
                pts["road_id"], pts["direction"] = _match(pts, roads, radius_m, with_direction=True)
            else:
                pts["road_id"], pts["direction"] = np.array([], dtype=object), np.array([], dtype=np.int8)
            pts["period"] = label
            kept = pts[pts["kept"]]
            on_road = kept[kept["road_id"] != ""]
            # Direction filter: speeds of one direction of travel only (unknown directions excluded).
            parts.append(on_road[on_road["direction"] == direction] if direction else on_road)
            events = load_braking_events(con, period, bounds, point_filter)
            if events is not None and len(events):
                braking_source = "behavior_events"
                events["road_id"] = _match(events, roads, radius_m)
                ev = events
            else:
                ev = braking_from_points(kept, threshold_g=threshold_g)
            ev = ev[ev["road_id"] != ""]
            braking.append(braking_per_road(ev, on_road).assign(period=label))
            hotspots.append(braking_hotspots(ev).assign(period=label))
            if area is not None and len(kept):
                # In the district = inside its outline on a street with a limit of 30 km/h or less
                # (生活道路), not on the arterials that bound it.
                kept = kept.assign(on_residential=kept["road_id"].map(limits).fillna(np.inf).to_numpy() <= 30)
                origins = load_trip_origins(con, period)
                trips = cut_through_trips(kept, area, origins=origins, crossing_column="on_residential")
                n = len(trips)
                k = int(trips["cut_through"].sum())
                cut.append(pd.DataFrame([{"period": label, "n_trips": n, "n_cut_through": k,
                                          "share_cut_through": k / n if n else np.nan}]))  # fmt: skip
                cut_streets.append(cut_through_streets(trips, on_road).assign(period=label))
        matched = pd.concat(parts, ignore_index=True)
        matched["unit"] = matched["road_id"]
        matched["limit_kmh"] = matched["road_id"].map(limits).astype(float)
        comparisons = compare_periods_all(
            matched, treated=list(treated), control=list(control), indicators=tuple(indicators),
            resamples=resamples, seed=seed, min_vehicles=min_vehicles,
        )  # fmt: skip
        evidence = DistrictEvidence(
            district_key=district_key,
            periods=periods,
            filter=point_filter,
            roads=roads,
            comparisons=comparisons,
            distributions=_distributions(matched, treated, control),
            braking=pd.concat(braking, ignore_index=True),
            hotspots=pd.concat(hotspots, ignore_index=True),
            cut_through=pd.concat(cut, ignore_index=True) if cut else pd.DataFrame(),
            cut_through_streets=pd.concat(cut_streets, ignore_index=True) if cut_streets else pd.DataFrame(),
            resamples=resamples,
            seed=seed,
            threshold_g=threshold_g,
            braking_source=braking_source,
        )
        if store:
            _store(con, evidence)
    finally:
        con.close()
    return evidence


def evaluate_district(
    warehouse: str | Path, district: District, periods: dict[str, Period] | None = None, **kwargs
) -> DistrictEvidence:
    """`evaluate` with the district's network, roads, outline and default before/after periods."""
    if periods is None:
        periods = {"before": district.period(district.default_before), "after": district.period(district.default_after)}
    return evaluate(
        warehouse, district.network_path, periods, district_key=district.key, treated=district.treated_roads,
        control=district.comparison_roads, area=district_area(district), **kwargs,
    )  # fmt: skip


def _distributions(matched: pd.DataFrame, treated, control) -> pd.DataFrame:
    """Point counts per unit, period and speed (km/h): treated and control pooled, and each road."""
    m = matched[["road_id", "period", "speed_kmh"]]
    frames = [m.assign(unit=m["road_id"])]
    frames.append(m[m["road_id"].isin(treated)].assign(unit="treated"))
    frames.append(m[m["road_id"].isin(control)].assign(unit="control"))
    allm = pd.concat(frames, ignore_index=True)
    return allm.groupby(["unit", "period", "speed_kmh"]).size().rename("n_points").reset_index()


def _store(con, ev: DistrictEvidence) -> None:
    now = dt.datetime.now()
    flt = ev.filter.describe_ja()
    with transaction(con):
        for table in ("comparison_results", "braking_per_road", "cut_through_summary", "cut_through_streets"):
            con.execute(f"DELETE FROM {table} WHERE district = ? AND filter = ?", [ev.district_key, flt])
        pb, pa_ = ev.periods["before"], ev.periods["after"]
        comp = pd.concat(ev.comparisons.values(), ignore_index=True)
        comp = comp.assign(district=ev.district_key, filter=flt, resamples=ev.resamples, seed=ev.seed,
                           period_before=f"{pb.start}..{pb.end}", period_after=f"{pa_.start}..{pa_.end}", computed_at=now)  # fmt: skip
        con.register("_c", comp)
        con.execute(
            """INSERT INTO comparison_results SELECT district, filter, indicator, unit, before, after, change, ci_low,
               ci_high, n_vehicles_before, n_vehicles_after, flag, resamples, seed, period_before, period_after,
               computed_at FROM _c"""
        )
        con.register("_b", ev.braking.assign(district=ev.district_key, filter=flt, threshold_g=ev.threshold_g, computed_at=now))
        con.execute(
            """INSERT INTO braking_per_road SELECT district, filter, period, road_id, n_events, n_passages,
               events_per_1000_passages, threshold_g, computed_at FROM _b"""
        )
        if not ev.cut_through.empty:
            con.register("_s", ev.cut_through.assign(district=ev.district_key, filter=flt, computed_at=now))
            con.execute(
                """INSERT INTO cut_through_summary SELECT district, filter, period, n_trips, n_cut_through,
                   share_cut_through, computed_at FROM _s"""
            )
            con.register("_t", ev.cut_through_streets.assign(district=ev.district_key, filter=flt, computed_at=now))
            con.execute(
                """INSERT INTO cut_through_streets SELECT district, filter, period, road_id, n_trips, n_cut_through,
                   n_vehicles_cut_through, share_cut_through, computed_at FROM _t"""
            )


def public_comparison(table: pd.DataFrame, public_min_vehicles: int = DEFAULT_PUBLIC_MIN_VEHICLES) -> pd.DataFrame:
    """The comparison rows fit for public outputs: figures from fewer than k distinct vehicles blanked.

    A blanked row keeps its unit and flag ('suppressed') but no figures, so a public table shows
    「データ不足」 where an engineer's table shows the number with its flag.
    """
    out = table.copy()
    small = out[["n_vehicles_before", "n_vehicles_after"]].min(axis=1) < public_min_vehicles
    for col in ("before", "after", "change", "ci_low", "ci_high", "n_vehicles_before", "n_vehicles_after"):
        out[col] = out[col].astype(float).where(~small)
    out.loc[small, "flag"] = "suppressed"
    return out
