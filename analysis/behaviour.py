"""Sudden braking (急減速) and cut-through traffic (抜け道) from trips' points, vectorised.

Sudden braking comes from behaviour-history events where a delivery has them; otherwise it is
inferred from consecutive points of a trip as the mean deceleration between them. Points are
about 200 m apart (10–40 s), so an inferred deceleration is an average over that gap and
understates a short, hard brake: inferred events are a lower bound, and the threshold is a
setting (default 0.25 G, the order of ETC2.0's recording threshold for 急減速, which the public
sources do not confirm).

A cut-through trip enters and leaves the district through its boundary with origin and
destination outside it: its first and last points (or 様式1-3 origin and destination when
given) lie outside the district polygon and at least one point lies inside.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

G_MS2 = 9.80665
DEFAULT_BRAKING_THRESHOLD_G = 0.25
DEFAULT_HOTSPOT_CELL_M = 25.0
TRIP_KEYS = ["vehicle", "trip_id"]


def _sorted_trips(points: pd.DataFrame) -> pd.DataFrame:
    missing = {"vehicle", "trip_id", "gps_time"} - set(points.columns)
    if missing:
        raise ValueError(f"points lack columns: {', '.join(sorted(missing))}")
    return points.sort_values([*TRIP_KEYS, "gps_time"], kind="stable").reset_index(drop=True)


def braking_from_points(points: pd.DataFrame, threshold_g: float = DEFAULT_BRAKING_THRESHOLD_G) -> pd.DataFrame:
    """Points where the mean deceleration since the trip's previous point reaches `threshold_g`.

    points: columns vehicle, trip_id (unique per vehicle), gps_time (datetime64), speed_kmh,
    x_m, y_m (metres, projected), and optionally road_id. Returns those rows with
    decel_g (deceleration in G, positive when slowing) and dt_s (seconds since the previous point).
    """
    if threshold_g <= 0:
        raise ValueError(f"threshold_g must be positive, got {threshold_g}")
    p = _sorted_trips(points)
    same_trip = np.zeros(len(p), dtype=bool)
    if len(p) > 1:
        same_trip[1:] = (p["vehicle"].to_numpy()[1:] == p["vehicle"].to_numpy()[:-1]) & (
            p["trip_id"].to_numpy()[1:] == p["trip_id"].to_numpy()[:-1]
        )
    t = p["gps_time"].to_numpy().astype("datetime64[ms]").astype(np.int64) / 1000.0
    v = p["speed_kmh"].to_numpy(dtype=float) / 3.6
    dt = np.full(len(p), np.nan)
    dv = np.full(len(p), np.nan)
    dt[1:] = t[1:] - t[:-1]
    dv[1:] = v[:-1] - v[1:]
    valid = same_trip & (dt > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        decel_g = np.where(valid, dv / dt / G_MS2, np.nan)
    hit = valid & (decel_g >= threshold_g)
    out = p[hit].copy()
    out["decel_g"] = decel_g[hit]
    out["dt_s"] = dt[hit]
    return out.reset_index(drop=True)


def braking_per_road(events: pd.DataFrame, passages: pd.DataFrame) -> pd.DataFrame:
    """Events per road and per 1,000 passages.

    events: braking events with road_id; passages: matched points with road_id, vehicle,
    trip_id (a passage is one trip's presence on a road). Returns road_id, n_events,
    n_passages, events_per_1000_passages.
    """
    n_pass = passages.drop_duplicates(["road_id", *TRIP_KEYS]).groupby("road_id").size().rename("n_passages")
    n_ev = events.groupby("road_id").size().rename("n_events")
    out = pd.concat([n_ev, n_pass], axis=1).fillna(0).astype("int64").reset_index(names="road_id")
    out["events_per_1000_passages"] = np.where(
        out["n_passages"] > 0, 1000.0 * out["n_events"] / out["n_passages"].where(out["n_passages"] > 0, 1), np.nan
    )
    return out


def braking_hotspots(events: pd.DataFrame, cell_m: float = DEFAULT_HOTSPOT_CELL_M, min_events: int = 2) -> pd.DataFrame:
    """Clusters of braking events on a square grid (cell_m metres): cells with ≥ min_events.

    Returns x_m, y_m (centroid of the cell's events, metres), n_events, n_vehicles, sorted by
    n_events descending.
    """
    if events.empty:
        return pd.DataFrame(columns=["x_m", "y_m", "n_events", "n_vehicles"])
    cx = np.floor(events["x_m"].to_numpy() / cell_m).astype(np.int64)
    cy = np.floor(events["y_m"].to_numpy() / cell_m).astype(np.int64)
    g = events.assign(_cx=cx, _cy=cy).groupby(["_cx", "_cy"])
    out = g.agg(x_m=("x_m", "mean"), y_m=("y_m", "mean"), n_events=("x_m", "size"), n_vehicles=("vehicle", "nunique"))
    out = out[out["n_events"] >= min_events].sort_values("n_events", ascending=False, kind="stable")
    return out.reset_index(drop=True)


def cut_through_trips(
    points: pd.DataFrame, district_area, origins: pd.DataFrame | None = None, crossing_column: str | None = None
) -> pd.DataFrame:
    """Classify every trip that has a point inside the district.

    points: columns vehicle, trip_id, gps_time, x_m, y_m (metres, same CRS as district_area, a
    shapely Polygon). crossing_column (optional): name of a boolean column of points that may
    count as being in the district (e.g. points on its residential streets, so that traffic on
    the boundary arterials is not taken for traffic through the district). origins (optional, from 様式1-3): vehicle, trip_id, origin_x_m,
    origin_y_m, dest_x_m, dest_y_m, used instead of the first/last points when present.
    Returns one row per such trip: vehicle, trip_id, origin_inside, dest_inside, cut_through (bool).
    """
    p = _sorted_trips(points)
    inside = shapely.contains_xy(district_area, p["x_m"].to_numpy(), p["y_m"].to_numpy())
    crossing = inside & p[crossing_column].to_numpy(dtype=bool) if crossing_column else inside
    p = p.assign(_inside=inside, _crossing=crossing)
    g = p.groupby(TRIP_KEYS, sort=False)
    trips = g.agg(any_inside=("_crossing", "any"), origin_inside=("_inside", "first"), dest_inside=("_inside", "last"))
    trips = trips[trips["any_inside"]].reset_index()
    if origins is not None and not origins.empty:
        o = origins.set_index(TRIP_KEYS)
        key = pd.MultiIndex.from_frame(trips[TRIP_KEYS])
        have = key.isin(o.index)
        sel = o.reindex(key[have])
        trips.loc[have, "origin_inside"] = shapely.contains_xy(
            district_area, sel["origin_x_m"].to_numpy(float), sel["origin_y_m"].to_numpy(float)
        )
        trips.loc[have, "dest_inside"] = shapely.contains_xy(
            district_area, sel["dest_x_m"].to_numpy(float), sel["dest_y_m"].to_numpy(float)
        )
    trips["cut_through"] = ~trips["origin_inside"].astype(bool) & ~trips["dest_inside"].astype(bool)
    return trips.drop(columns=["any_inside"])


def cut_through_streets(trips: pd.DataFrame, matched: pd.DataFrame) -> pd.DataFrame:
    """Which streets cut-through trips use: road_id, n_trips, n_cut_through, n_vehicles_cut_through
    (distinct vehicles among those trips, for publication thresholds), share_cut_through."""
    m = matched.drop_duplicates(["road_id", *TRIP_KEYS]).merge(trips[[*TRIP_KEYS, "cut_through"]], on=TRIP_KEYS)
    out = m.groupby("road_id").agg(n_trips=("cut_through", "size"), n_cut_through=("cut_through", "sum"))
    veh = m[m["cut_through"]].groupby("road_id")["vehicle"].nunique()
    out["n_vehicles_cut_through"] = veh.reindex(out.index).fillna(0).astype("int64")
    out["share_cut_through"] = out["n_cut_through"] / out["n_trips"]
    return out.reset_index().sort_values("n_cut_through", ascending=False, kind="stable").reset_index(drop=True)
