"""Sudden braking and cut-through on hand-made trips with known answers."""

from __future__ import annotations

import pandas as pd
import pytest
import shapely

from analysis.behaviour import (
    braking_from_points,
    braking_hotspots,
    braking_per_road,
    cut_through_streets,
    cut_through_trips,
)

T0 = pd.Timestamp("2017-09-05 08:00:00")


def trip(vehicle, trip_id, steps, road="R1"):
    """steps: (seconds from T0, speed km/h, x m, y m)."""
    return pd.DataFrame(
        [{"vehicle": vehicle, "trip_id": trip_id, "gps_time": T0 + pd.Timedelta(seconds=s), "speed_kmh": v,
          "x_m": x, "y_m": y, "road_id": road} for s, v, x, y in steps]
    )  # fmt: skip


def test_braking_inferred_from_consecutive_points():
    a = trip("a", 1, [(0, 40, 0, 0), (5, 10, 30, 0), (10, 10, 45, 0)])  # 30 km/h lost in 5 s: 0.17 G
    b = trip("b", 1, [(0, 50, 0, 0), (4, 14, 30, 0)])  # 36 km/h = 10 m/s in 4 s: 0.255 G
    c = trip("c", 1, [(0, 60, 0, 0)])
    c2 = trip("c", 2, [(3, 0, 0, 0)])  # a new trip: no braking across trips
    pts = pd.concat([a, b, c, c2])
    ev = braking_from_points(pts, threshold_g=0.25)
    assert ev["vehicle"].tolist() == ["b"]
    assert ev["decel_g"].item() == pytest.approx(10 / 4 / 9.80665)
    ev2 = braking_from_points(pts, threshold_g=0.15)
    assert sorted(ev2["vehicle"]) == ["a", "b"]
    with pytest.raises(ValueError):
        braking_from_points(pts, threshold_g=0)


def test_braking_per_road_and_hotspots():
    events = pd.DataFrame({"road_id": ["R1", "R1", "R2"], "vehicle": ["a", "b", "a"],
                           "x_m": [10.0, 12.0, 500.0], "y_m": [5.0, 6.0, 500.0]})  # fmt: skip
    passages = pd.DataFrame({"road_id": ["R1"] * 5 + ["R2", "R3"], "vehicle": list("abcdd") + ["a", "z"],
                             "trip_id": [1, 1, 1, 1, 1, 1, 1]})  # fmt: skip
    per = braking_per_road(events, passages).set_index("road_id")
    assert per.loc["R1", "n_passages"] == 4  # d's two points are one passage
    assert per.loc["R1", "events_per_1000_passages"] == pytest.approx(500.0)
    assert per.loc["R3", "n_events"] == 0
    hot = braking_hotspots(events, cell_m=25, min_events=2)
    assert len(hot) == 1 and hot["n_events"].item() == 2 and hot["n_vehicles"].item() == 2
    assert hot["x_m"].item() == pytest.approx(11.0)


def test_cut_through_classification():
    area = shapely.box(0, 0, 100, 100)
    through = trip("a", 1, [(0, 30, -50, 50), (10, 30, 50, 50), (20, 30, 150, 50)], road="T1")
    to_home = trip("b", 1, [(0, 30, -50, 50), (10, 30, 50, 50)], road="T1")
    from_home = trip("c", 1, [(0, 30, 50, 60), (10, 30, 150, 60)], road="C1")
    outside = trip("d", 1, [(0, 30, -50, -50), (10, 30, 150, -50)], road="A1")
    # Through the district, but 様式1-3 says it started inside: not a cut-through.
    od_inside = trip("e", 1, [(0, 30, -50, 50), (10, 30, 50, 50), (20, 30, 150, 50)], road="T1")
    pts = pd.concat([through, to_home, from_home, outside, od_inside])
    origins = pd.DataFrame({"vehicle": ["e"], "trip_id": [1], "origin_x_m": [20.0], "origin_y_m": [20.0],
                            "dest_x_m": [300.0], "dest_y_m": [50.0]})  # fmt: skip
    trips = cut_through_trips(pts, area, origins=origins).set_index("vehicle")
    assert set(trips.index) == {"a", "b", "c", "e"}  # d never enters
    assert trips["cut_through"].to_dict() == {"a": True, "b": False, "c": False, "e": False}
    streets = cut_through_streets(trips.reset_index(), pts).set_index("road_id")
    assert streets.loc["T1", "n_cut_through"] == 1 and streets.loc["T1", "n_trips"] == 3
    assert streets.loc["C1", "share_cut_through"] == 0
