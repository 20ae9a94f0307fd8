"""Sudden braking (急減速) and cut-through traffic (抜け道): pure, vectorised functions of matched points.

Sudden braking comes from 挙動履歴 (behaviour history) events where a delivery has them;
otherwise it is inferred from consecutive points of a trip as the mean deceleration between them
(the match stage stores it per point as ``decel_prev_g``). Points are about 200 m apart
(10–40 s), so an inferred deceleration is an average over that gap and understates a short, hard
brake: inferred events are a lower bound, and the threshold is a setting
(config.settings.DEFAULT_BRAKING_THRESHOLD_G, the order of ETC2.0's recording threshold for
急減速, which the public sources do not confirm).

A cut-through trip uses the district's residential streets (limit ≤ RESIDENTIAL_MAX_LIMIT_KMH,
inside its outline) with origin and destination outside the outline: 様式1-3 origin and
destination when delivered, else the first and last points of the whole trip.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from config.settings import DEFAULT_BRAKING_THRESHOLD_G, HOTSPOT_CELL_M, HOTSPOT_MIN_EVENTS


def inferred_braking(points: pd.DataFrame, threshold_g: float = DEFAULT_BRAKING_THRESHOLD_G) -> pd.DataFrame:
    """Points whose mean deceleration since the trip's previous point (decel_prev_g, G) reaches
    `threshold_g`: the inferred braking events (a lower bound, see the module docstring)."""
    if threshold_g <= 0:
        raise ValueError(f"threshold_g must be positive, got {threshold_g}")
    return points[points["decel_prev_g"].to_numpy(dtype=float, na_value=np.nan) >= threshold_g]


def braking_per_road(events: pd.DataFrame, passages: pd.DataFrame) -> pd.DataFrame:
    """Events per road and per 1,000 passages.

    events: columns road_id, vehicle_id; passages: columns road_id (one row per passage).
    Returns road_id, n_events, n_passages, events_per_1000_passages (NaN without passages),
    n_vehicles (distinct vehicles of the events).
    """
    n_pass = passages.groupby("road_id").size().rename("n_passages")
    n_ev = events.groupby("road_id").size().rename("n_events")
    n_veh = events.groupby("road_id")["vehicle_id"].nunique().rename("n_vehicles")
    out = pd.concat([n_ev, n_pass, n_veh], axis=1).fillna(0).astype("int64").reset_index(names="road_id")
    with np.errstate(invalid="ignore", divide="ignore"):
        out["events_per_1000_passages"] = np.where(
            out["n_passages"] > 0, 1000.0 * out["n_events"] / out["n_passages"], np.nan
        )
    return out[["road_id", "n_events", "n_passages", "events_per_1000_passages", "n_vehicles"]]


def braking_hotspots(
    events: pd.DataFrame, cell_m: float = HOTSPOT_CELL_M, min_events: int = HOTSPOT_MIN_EVENTS
) -> pd.DataFrame:
    """Clusters of braking events on a square grid (cell_m metres): cells with ≥ min_events.

    events: columns x_m, y_m (metres, projected), vehicle_id. Returns x_m, y_m (centroid of the
    cell's events), n_events, n_vehicles, sorted by n_events descending.
    """
    cols = ["x_m", "y_m", "n_events", "n_vehicles"]
    if events.empty:
        return pd.DataFrame({c: [] for c in cols})
    cx = np.floor(events["x_m"].to_numpy() / cell_m).astype(np.int64)
    cy = np.floor(events["y_m"].to_numpy() / cell_m).astype(np.int64)
    g = events.assign(_cx=cx, _cy=cy).groupby(["_cx", "_cy"])
    out = g.agg(
        x_m=("x_m", "mean"), y_m=("y_m", "mean"), n_events=("x_m", "size"), n_vehicles=("vehicle_id", "nunique")
    )
    out = out[out["n_events"] >= min_events].sort_values("n_events", ascending=False, kind="stable")
    return out.reset_index(drop=True)[cols]


def trips_in_area(on_residential: pd.DataFrame, district_area) -> pd.DataFrame:
    """trip_id, vehicle_id of the trips with a point of `on_residential` (matched points on residential
    streets: trip_id, vehicle_id, x_m, y_m) inside `district_area` (shapely polygon, same metric CRS),
    each once, in the order of their first such point. The union over months is the period's."""
    p = on_residential
    inside = shapely.contains_xy(district_area, p["x_m"].to_numpy(float), p["y_m"].to_numpy(float))
    return p.loc[inside, ["trip_id", "vehicle_id"]].drop_duplicates("trip_id").reset_index(drop=True)


def cut_through_trips(on_residential: pd.DataFrame, trips: pd.DataFrame, district_area) -> pd.DataFrame:
    """Classify the trips that use the district's residential streets.

    on_residential: matched points on residential streets (any columns incl. trip_id, vehicle_id,
    x_m, y_m); only points inside `district_area` (a shapely polygon, same metric CRS) count.
    trips: one row per trip_id with origin_x_m, origin_y_m, dest_x_m, dest_y_m (様式1-3 where
    delivered, else the first / last point of the whole trip).
    Returns one row per such trip: trip_id, vehicle_id, origin_inside, dest_inside, cut_through.
    """
    return classify_trips(trips_in_area(on_residential, district_area), trips, district_area)


def classify_trips(used: pd.DataFrame, trips: pd.DataFrame, district_area) -> pd.DataFrame:
    """`cut_through_trips` of the trips `used` (trips_in_area: trip_id, vehicle_id): cut-through when
    neither the origin nor the destination (`trips`' ends) lies inside `district_area`."""
    t = used.merge(trips[["trip_id", "origin_x_m", "origin_y_m", "dest_x_m", "dest_y_m"]], on="trip_id", how="left")
    if t[["origin_x_m", "dest_x_m"]].isna().any().any():
        raise ValueError("cut_through_trips: a trip of the points has no origin / destination")
    t["origin_inside"] = shapely.contains_xy(
        district_area, t["origin_x_m"].to_numpy(float), t["origin_y_m"].to_numpy(float)
    )
    t["dest_inside"] = shapely.contains_xy(district_area, t["dest_x_m"].to_numpy(float), t["dest_y_m"].to_numpy(float))
    t["cut_through"] = ~t["origin_inside"] & ~t["dest_inside"]
    return t[["trip_id", "vehicle_id", "origin_inside", "dest_inside", "cut_through"]]


def cut_through_streets(trips: pd.DataFrame, matched: pd.DataFrame) -> pd.DataFrame:
    """Which streets the classified trips use: road_id, n_trips, n_cut_through, n_vehicles_cut_through
    (distinct vehicles among those trips, for publication thresholds), share_cut_through."""
    m = (
        matched[["road_id", "trip_id"]]
        .drop_duplicates()
        .merge(trips[["trip_id", "vehicle_id", "cut_through"]], on="trip_id")
    )
    out = m.groupby("road_id").agg(n_trips=("cut_through", "size"), n_cut_through=("cut_through", "sum"))
    veh = m[m["cut_through"]].groupby("road_id")["vehicle_id"].nunique()
    out["n_vehicles_cut_through"] = veh.reindex(out.index).fillna(0).astype("int64")
    out["share_cut_through"] = out["n_cut_through"] / out["n_trips"]
    out["n_cut_through"] = out["n_cut_through"].astype("int64")
    return out.reset_index().sort_values("n_cut_through", ascending=False, kind="stable").reset_index(drop=True)
