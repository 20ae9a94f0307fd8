"""Sudden braking and cut-through on hand-made trips with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from analysis.behaviour import (
    braking_hotspots,
    braking_per_road,
    cut_through_streets,
    cut_through_trips,
    inferred_braking,
)
from analysis.matchstage import trip_features

T0 = np.datetime64("2017-09-05T08:00:00", "us").astype(np.int64)


def features(trips: list[tuple[int, list[tuple[float, float, float, float]]]]) -> pd.DataFrame:
    """trips: (trip id, [(seconds from T0, speed km/h, x m, y m)]) in time order → trip_features per point."""
    rows = [(t, T0 + int(s * 1e6), v, x, y) for t, steps in trips for s, v, x, y in steps]
    trip, us, v, x, y = (np.array(c) for c in zip(*rows, strict=True))
    f = trip_features(trip, us, x.astype(float), y.astype(float), v.astype(float))
    return pd.DataFrame({"trip_id": trip, "vehicle_id": trip, **f})


def test_deceleration_heading_and_gaps_from_consecutive_points_of_a_trip():
    f = features(
        [
            (1, [(0, 40, 0, 0), (5, 10, 30, 0), (10, 10, 45, 0)]),  # 30 km/h lost in 5 s: 0.17 G
            (2, [(0, 50, 0, 0), (4, 14, 0, 30)]),  # 36 km/h = 10 m/s in 4 s: 0.255 G, heading north
            (3, [(0, 60, 0, 0)]),
            (4, [(3, 0, 0, 0)]),  # a new trip: no braking across trips
            (5, [(0, 30, 0, 0), (200, 30, 100, 0), (210, 30, 102, 0)]),  # a 200 s gap; then a 2 m step
        ]
    )
    assert f["seq"].tolist() == [0, 1, 2, 0, 1, 0, 0, 0, 1, 2]
    assert np.isnan(f["decel_prev_g"].iloc[[0, 3, 5, 6, 7]]).all()
    assert f["decel_prev_g"].iloc[4] == pytest.approx(10 / 4 / 9.80665)
    assert f["heading_deg"].iloc[1] == pytest.approx(90.0) and f["heading_deg"].iloc[4] == pytest.approx(0.0)
    assert np.isnan(f["heading_deg"].iloc[8])  # previous point 200 s earlier: heading unknown
    assert np.isnan(f["heading_deg"].iloc[9])  # 2 m since the previous point: heading unknown
    assert f["dt_prev_s"].iloc[8] == 200
    assert f["first"].tolist() == [True, False, False, True, False, True, True, True, False, False]
    assert f["last"].tolist() == [False, False, True, False, True, True, True, False, False, True]
    assert inferred_braking(f, 0.25)["trip_id"].tolist() == [2]
    assert sorted(inferred_braking(f, 0.15)["trip_id"]) == [1, 2]
    with pytest.raises(ValueError):
        inferred_braking(f, 0)


def test_braking_per_road_and_hotspots():
    events = pd.DataFrame(
        {"road_id": ["R1", "R1", "R2"], "vehicle_id": [1, 2, 1], "x_m": [10.0, 12.0, 500.0], "y_m": [5.0, 6.0, 500.0]}
    )
    passages = pd.DataFrame({"road_id": ["R1"] * 4 + ["R2", "R3"]})
    per = braking_per_road(events, passages).set_index("road_id")
    assert per.loc["R1", "n_passages"] == 4 and per.loc["R1", "n_vehicles"] == 2
    assert per.loc["R1", "events_per_1000_passages"] == pytest.approx(500.0)
    assert per.loc["R3", "n_events"] == 0
    hot = braking_hotspots(events, cell_m=25, min_events=2)
    assert len(hot) == 1 and hot["n_events"].item() == 2 and hot["n_vehicles"].item() == 2
    assert hot["x_m"].item() == pytest.approx(11.0)


def test_cut_through_classification():
    area = shapely.box(0, 0, 100, 100)
    pts = pd.DataFrame(
        [  # points on residential streets: (trip, vehicle, x, y, road)
            (1, 1, 50, 50, "T1"),
            (2, 2, 50, 50, "T1"),
            (3, 3, 50, 60, "C1"),
            (4, 4, 150, -50, "A1"),
            (5, 5, 50, 50, "T1"),
        ],
        columns=["trip_id", "vehicle_id", "x_m", "y_m", "road_id"],
    )
    ends = pd.DataFrame(
        [  # origin and destination of each trip
            (1, -50, 50, 150, 50),  # through: outside → outside
            (2, -50, 50, 50, 50),  # to home
            (3, 50, 60, 150, 60),  # from home
            (4, -50, -50, 150, -50),  # never inside (its point lies outside the area)
            (5, 20, 20, 300, 50),  # 様式1-3 origin inside the area
        ],
        columns=["trip_id", "origin_x_m", "origin_y_m", "dest_x_m", "dest_y_m"],
    )
    trips = cut_through_trips(pts, ends, area).set_index("trip_id")
    assert set(trips.index) == {1, 2, 3, 5}
    assert trips["cut_through"].to_dict() == {1: True, 2: False, 3: False, 5: False}
    streets = cut_through_streets(trips.reset_index(), pts).set_index("road_id")
    assert streets.loc["T1", "n_cut_through"] == 1 and streets.loc["T1", "n_trips"] == 3
    assert streets.loc["C1", "share_cut_through"] == 0
    with pytest.raises(ValueError, match="no origin"):
        cut_through_trips(pts, ends[ends["trip_id"] != 1], area)
