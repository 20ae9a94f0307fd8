"""A passage's speed is its section travel speed, on hand-made trajectories.

Each trajectory is built here from distances and times chosen by hand; the expected speed is computed
in the test from those distances and times (metres along the street over the seconds the trip spent
on it), never read from the code. The street S (road 0) runs along the x axis from x = 0 (road
position 0) to x = L; road 1 is another street the trip comes from or goes to, road -1 off the
network. Points are ~200 m apart as ETC2.0 records them.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analysis.points import RoadNodes, passages
from config.settings import SECTION_MAX_GAP_S, SECTION_MIN_COVERED_M

T0 = dt.datetime(2017, 9, 5, 8, 0, 0)


def road_nodes(nodes: list[list[tuple[float, float, float]]]) -> RoadNodes:
    """RoadNodes of a hand-built network: each road's nodes as (position along the road, x, y), metres."""
    flat = [n for road in nodes for n in road]
    first = np.r_[0, np.cumsum([len(road) for road in nodes])].astype(np.int64)
    a = np.array(flat, dtype=float).reshape(-1, 3)
    return RoadNodes(first, a[:, 0].copy(), a[:, 1].copy(), a[:, 2].copy())


def street(length_m: float, junctions=()) -> RoadNodes:
    """Road 0: the street from (0, 0) to (length, 0), with nodes at its ends and at the x of `junctions`;
    road 1: a cross street from (0, -400) to (0, 0)."""
    xs = sorted({0.0, float(length_m), *map(float, junctions)})
    return road_nodes([[(x, x, 0.0) for x in xs], [(0.0, 0.0, -400.0), (400.0, 0.0, 0.0)]])


def trajectory(xs, ts, length_m: float, ys=None, spot_kmh=36.0, trip: int = 1) -> pd.DataFrame:
    """Points of one trip at (x, y) metres and t seconds: on the street (road 0, road_pos = x) when
    y == 0 and 0 <= x <= length, on the cross street (road 1) when x == 0 and y < 0, else off the network."""
    xs = np.asarray(xs, float)
    ys = np.zeros_like(xs) if ys is None else np.asarray(ys, float)
    on = (ys == 0) & (xs >= 0) & (xs <= length_m)
    cross = (xs == 0) & (ys < 0)  # road 1 (a trajectory off the axis elsewhere is off the network)
    road = np.where(on, 0, np.where(cross, 1, -1))
    pos = np.where(on, xs, np.where(cross, ys + 400.0, np.nan))
    return pd.DataFrame(
        {
            "trip_id": trip,
            "seq": np.arange(len(xs)),
            "vehicle_id": 7,
            "road_idx": road,
            "speed_kmh": np.broadcast_to(np.asarray(spot_kmh, float), xs.shape),
            "gps_time": [T0 + dt.timedelta(seconds=float(t)) for t in ts],
            "road_pos_m": pos,
            "x_m": xs,
            "y_m": ys,
        }
    )


def on_street(p: pd.DataFrame) -> pd.DataFrame:
    return p[p["road_idx"] == 0].reset_index(drop=True)


def test_constant_36_kmh_is_36_from_the_context_points():
    """10 m/s along the axis: points at -130, 70, 270 and 470 m, the street 0..300 m. Two points lie on
    it; the points before and after give the entry at 0 m (t = 13 s) and the exit at 300 m (t = 43 s)."""
    xs = np.array([-130.0, 70.0, 270.0, 470.0])
    ts = (xs + 130.0) / 10.0  # 10 m/s
    p = on_street(passages(trajectory(xs, ts, 300.0, spot_kmh=[39, 39, 33, 33]), street(300.0)))
    assert len(p) == 1 and p.loc[0, "n_points"] == 2
    expected = 300.0 / ((300.0 + 130.0) / 10.0 - 130.0 / 10.0) * 3.6  # 300 m in 30 s
    assert expected == pytest.approx(36.0)
    assert p.loc[0, "section_kmh"] == pytest.approx(expected, abs=0.05)
    assert p.loc[0, "section_m"] == pytest.approx(300.0)
    assert p.loc[0, "mean_kmh"] == pytest.approx((39 + 33) / 2)  # the spot speeds, kept beside it


def test_constant_36_kmh_the_other_way_and_round_a_corner():
    """Coming down the cross street (x = 0, y from -150 m) and turning into the street, then leaving it
    beyond its far end: 150 m + 70 m to the first point on the street, at 10 m/s throughout. The
    same trip driven in the other direction (positions decreasing along the road) gives the same."""
    xs = np.array([0.0, 70.0, 270.0, 470.0])
    ys = np.array([-150.0, 0.0, 0.0, 0.0])
    route = np.array([0.0, 220.0, 420.0, 620.0])  # metres travelled along the route
    p = on_street(passages(trajectory(xs, route / 10.0, 300.0, ys=ys), street(300.0)))
    assert len(p) == 1 and p.loc[0, "section_kmh"] == pytest.approx(36.0, abs=0.05)
    back_ts = (route[-1] - route[::-1]) / 10.0  # the route driven from its other end
    back = on_street(passages(trajectory(xs[::-1], back_ts, 300.0, ys=ys[::-1]), street(300.0)))
    assert len(back) == 1 and back.loc[0, "section_kmh"] == pytest.approx(36.0, abs=0.05)


def test_a_20_s_stop_counts_in_the_time():
    """36 km/h, but the trip stands 20 s at x = 150 m, between its points at 70 and 270 m (ETC2.0
    records by distance travelled: no point while standing). Entry at 0 m at t = 13 s, exit at 300 m
    at t = 13 + 30 + 20 s: the speed is the street's length over the whole time, stop included."""
    xs = np.array([-130.0, 70.0, 270.0, 470.0])
    ts = np.array([0.0, 20.0, 20.0 + 20.0 + 20.0, 80.0])
    p = on_street(passages(trajectory(xs, ts, 300.0), street(300.0)))
    t_entry = 130.0 / 10.0
    t_exit = 60.0 + 30.0 / 10.0
    assert len(p) == 1
    assert p.loc[0, "section_kmh"] == pytest.approx(300.0 / (t_exit - t_entry) * 3.6, abs=0.05)  # 21.6
    assert p.loc[0, "section_kmh"] == pytest.approx(21.6, abs=0.05)


def test_a_700_s_gap_splits_the_passage_and_the_gap_pair_is_dropped():
    """On a 600 m street: 36 km/h to the point at 270 m, then 700 s with no point (parked), then
    18 km/h from the point at 470 m. The pair across the gap (Δt = 720 s > 600 s) is dropped and splits
    the run: two passages, each timed on its own side of the gap only."""
    assert SECTION_MAX_GAP_S == 600.0
    xs = np.array([-130.0, 70.0, 270.0, 470.0, 670.0])
    ts = np.array([0.0, 20.0, 40.0, 760.0, 800.0])
    p = on_street(passages(trajectory(xs, ts, 600.0), street(600.0)))
    assert list(p["n_points"]) == [2, 1]
    first = 270.0 / (40.0 - 13.0) * 3.6  # entry at 0 m (t = 13 s) to the point at 270 m
    second = 130.0 / (130.0 / 200.0 * 40.0) * 3.6  # 470 m to the exit at 600 m, at the pair's 5 m/s
    assert (first, second) == (pytest.approx(36.0), pytest.approx(18.0))
    assert p.loc[0, "section_kmh"] == pytest.approx(first, abs=0.05)
    assert p.loc[1, "section_kmh"] == pytest.approx(second, abs=0.05)
    # without the gap (the same points 20 s apart) it is one passage at 36 km/h
    q = on_street(passages(trajectory(xs, (xs + 130.0) / 10.0, 600.0), street(600.0)))
    assert list(q["n_points"]) == [3] and q.loc[0, "section_kmh"] == pytest.approx(36.0, abs=0.05)


def test_a_u_turn_splits_the_passage_at_the_reversal():
    """On a 600 m street at 10 m/s: points at 70, 270, 450 m, a U-turn at 550 m, then points at 500
    (15 s after 450: 100 m out, 50 m back), 300 and 100 m, and off the street at -100 m. The
    direction along the street reverses between 500 and 300 m: two passages. The first runs from the
    entry (0 m, t = 13 s) to 500 m (t = 73 s); the second from 500 m back to the exit at 0 m."""
    xs = np.array([-130.0, 70.0, 270.0, 450.0, 500.0, 300.0, 100.0, -100.0])
    ts = np.array([0.0, 20.0, 40.0, 58.0, 73.0, 93.0, 113.0, 133.0])
    p = on_street(passages(trajectory(xs, ts, 600.0), street(600.0)))
    assert list(p["n_points"]) == [4, 2]
    out = 500.0 / (73.0 - 13.0) * 3.6  # 500 m along the street in 60 s (the turn's 100 m are not along it)
    back = 500.0 / (123.0 - 73.0) * 3.6  # 500 m back to 0 m, reached at t = 113 + 10 s
    assert p.loc[0, "section_kmh"] == pytest.approx(out, abs=0.05)  # 30 km/h
    assert p.loc[1, "section_kmh"] == pytest.approx(back, abs=0.05)  # 36 km/h


def test_a_street_shorter_than_the_point_spacing():
    """A 50 m street. One point on it (at 25 m): the entry from the point before (155 m at 10 m/s)
    and the exit from the point after (145 m at 5 m/s), interpolated: 25 m in 2.5 s plus 25 m in 5 s.
    No point on it: no passage (nothing says the trip was there). A point within 20 m of an end
    (SECTION_END_ZONE_M, the matching radius) is a passage without a speed: the trip may only have
    crossed the junction there."""
    xs = np.array([-130.0, 25.0, 170.0])
    ts = np.array([0.0, 15.5, 44.5])
    p = on_street(passages(trajectory(xs, ts, 50.0, spot_kmh=40.0), street(50.0)))
    assert len(p) == 1 and p.loc[0, "n_points"] == 1
    expected = 50.0 / (25.0 / 10.0 + 25.0 / 5.0) * 3.6  # 24 km/h
    assert p.loc[0, "section_kmh"] == pytest.approx(expected, abs=0.05)
    assert p.loc[0, "mean_kmh"] == 40.0  # the one spot speed: not the passage's speed
    none = on_street(passages(trajectory(np.array([-130.0, 70.0]), np.array([0.0, 20.0]), 50.0), street(50.0)))
    assert len(none) == 0
    at_end = on_street(passages(trajectory(xs + 6.0, ts, 50.0, spot_kmh=40.0), street(50.0)))  # the point at 31 m
    assert len(at_end) == 1 and np.isnan(at_end.loc[0, "section_kmh"])


def test_pairs_dropped_as_roadlabo_drops_them():
    """Pairs with Δt <= 0, |Δs| < 1 m, |Δs| > 350 m or over 180 km/h count neither metres nor seconds;
    a passage whose pairs are all dropped has no speed (NaN)."""
    L = 300.0
    # the point before is 400 m back (|Δs| > 350 m): the passage starts at its first point (70 m)
    xs = np.array([-330.0, 70.0, 270.0, 470.0])
    ts = np.array([0.0, 40.0, 60.0, 80.0])
    p = on_street(passages(trajectory(xs, ts, L), street(L)))
    assert p.loc[0, "section_kmh"] == pytest.approx((300.0 - 70.0) / (60.0 + 3.0 - 40.0) * 3.6, abs=0.05)
    # 200 m in 3 s (240 km/h) after the street: the exit pair is dropped
    xs = np.array([-130.0, 150.0, 350.0])
    ts = np.array([0.0, 28.0, 31.0])
    p = on_street(passages(trajectory(xs, ts, L), street(L)))
    assert p.loc[0, "section_kmh"] == pytest.approx(150.0 / (28.0 - 13.0) * 3.6, abs=0.05)
    # a repeat of the same spot at the same time (Δt = 0), then 0.4 m in 30 s (|Δs| < 1 m), no context
    xs = np.array([150.0, 150.0, 150.4])
    ts = np.array([0.0, 0.0, 30.0])
    p = on_street(passages(trajectory(xs, ts, L), street(L)))
    assert len(p) == 1 and np.isnan(p.loc[0, "section_kmh"])


def test_a_gps_stray_beside_the_street_does_not_extend_it():
    """The point before lies 25 m beside the middle of the street (matched to nothing): it is not
    reached through an end, so the passage is timed from its first point on the street."""
    xs = np.array([140.0, 150.0, 250.0, 470.0])
    ys = np.array([25.0, 0.0, 0.0, 0.0])
    ts = np.array([0.0, 10.0, 20.0, 42.0])
    p = on_street(passages(trajectory(xs, ts, 300.0, ys=ys), street(300.0)))
    assert p.loc[0, "section_kmh"] == pytest.approx(150.0 / (20.0 + 5.0 - 10.0) * 3.6, abs=0.05)


def test_trips_do_not_lend_each_other_context():
    """Two trips: the second starts on the street. Its first point gets no entry from the first trip's
    last point; its speed comes from its own pairs only."""
    a = trajectory(np.array([-130.0, 170.0]), np.array([0.0, 30.0]), 300.0, trip=1)
    b = trajectory(np.array([100.0, 200.0, 400.0]), np.array([21.0, 31.0, 51.0]), 300.0, trip=2)
    p = on_street(passages(pd.concat([a, b], ignore_index=True), street(300.0)))
    assert list(p["trip_id"]) == [1, 2]
    assert p.loc[0, "section_kmh"] == pytest.approx(36.0, abs=0.05)  # 170 m in 17 s, no exit
    assert p.loc[1, "section_kmh"] == pytest.approx(200.0 / 20.0 * 3.6, abs=0.05)  # 100..300 m in 20 s


def test_entering_at_a_junction_in_the_middle_of_the_street():
    """The street has a junction at 150 m; the trip comes up a side street there (x = 150, from y = -130)
    and turns towards 300 m, at 10 m/s. It drives 150 m of the street: from 150 m (t = 13 s) to the
    end at 300 m (t = 28 s) — not 300 m from the street's start."""
    xs = np.array([150.0, 270.0, 470.0])
    ys = np.array([-130.0, 0.0, 0.0])
    ts = np.array([0.0, 25.0, 45.0])  # 130 + 120 m, then 200 m
    p = on_street(passages(trajectory(xs, ts, 300.0, ys=ys), street(300.0, junctions=[150.0])))
    assert len(p) == 1
    assert p.loc[0, "section_m"] == pytest.approx(150.0)
    assert p.loc[0, "section_kmh"] == pytest.approx(150.0 / (28.0 - 13.0) * 3.6, abs=0.05)  # 36 km/h
    # a trip crossing the street along the side street: its one point on the street lies 5 m from the
    # junction (within SECTION_END_ZONE_M, the matching radius): a passage, but no speed (its entry pair
    # covers the 5 m from the junction; its exit pair would go back through it: a reversal, dropped)
    cross = trajectory(np.array([150.0, 145.0, 150.0]), np.array([0.0, 13.0, 26.0]), 300.0, ys=[-130.0, 0.0, 130.0])
    p = on_street(passages(cross, street(300.0, junctions=[150.0])))
    assert len(p) == 1 and np.isnan(p.loc[0, "section_kmh"]) and p.loc[0, "section_m"] == pytest.approx(5.0)


def test_a_trip_that_ends_a_few_metres_into_the_street_is_no_traversal():
    """Arriving from the arterial at 15 m/s and ending 40 m into a 300 m street: its only pair times
    the arterial, and 40 m < SECTION_MIN_COVERED_M (100 m): a passage without a speed. Ending 160 m
    in, it has one (160 m at the pair's 15 m/s)."""
    assert SECTION_MIN_COVERED_M == 100.0
    p = on_street(passages(trajectory(np.array([-160.0, 40.0]), np.array([0.0, 200.0 / 15.0]), 300.0), street(300.0)))
    assert len(p) == 1 and p.loc[0, "section_m"] == pytest.approx(40.0) and np.isnan(p.loc[0, "section_kmh"])
    p = on_street(passages(trajectory(np.array([-40.0, 160.0]), np.array([0.0, 200.0 / 15.0]), 300.0), street(300.0)))
    assert p.loc[0, "section_kmh"] == pytest.approx(54.0, abs=0.05)


def test_a_context_pair_across_a_junction_is_shared_by_the_recorded_speeds():
    """An arterial continues the street's axis at both ends. The trip drives the arterial at 54 km/h
    (15 m/s, recorded 54), the 300 m street at 18 km/h (5 m/s, recorded 18): x = -150 at 0 s, the street
    at 10 s, x = 100 at 30 s, 250 at 60 s, the street's end at 70 s, x = 450 at 80 s. The street takes
    60 s: 18 km/h. Each context pair's time is shared between its street part and its arterial part by
    the speeds recorded on either side (100 m at 18 and 150 m at 54 km/h: 20 s of the pair's 30 s), not
    at the pair's mean speed (which would give 300 m in 47 s, 23 km/h)."""
    xs = np.array([-150.0, 100.0, 250.0, 450.0])
    ts = np.array([0.0, 30.0, 60.0, 80.0])
    p = on_street(passages(trajectory(xs, ts, 300.0, spot_kmh=[54, 18, 18, 54]), street(300.0)))
    assert len(p) == 1
    assert p.loc[0, "section_kmh"] == pytest.approx(300.0 / (70.0 - 10.0) * 3.6, abs=0.05)  # 18 km/h


def test_a_context_point_reached_only_by_a_detour_is_not_used():
    """The trip comes down a side street meeting the street's start (x = 0) but its point before lies
    beside the street's middle, 130 m off it (x = 150, y = -130): through the start node the route to
    the first point (x = 200) would be 199 + 200 m against a straight 139 m (over SECTION_MAX_DETOUR
    1.5): the pair is not used, and the passage is timed from its first point on (200 m in 20 s)."""
    xs = np.array([150.0, 200.0, 400.0, 600.0])
    ys = np.array([-130.0, 0.0, 0.0, 0.0])
    ts = np.array([0.0, 14.0, 34.0, 54.0])
    p = on_street(passages(trajectory(xs, ts, 500.0, ys=ys), street(500.0)))
    assert p.loc[0, "section_m"] == pytest.approx(300.0)  # 200..400 m, then 100 m of the exit pair
    assert p.loc[0, "section_kmh"] == pytest.approx(300.0 / 30.0 * 3.6, abs=0.05)


def _junction_by_scan(q, r, road, x, y, first, nx, ny):
    """The node of road r shared with q's road (within 0.5 m) nearest to q, by scanning every pair of
    nodes of the two roads: the definition the kernel's search by x must reproduce."""
    best, best_d = -1, np.inf
    rq = road[q]
    for j in range(first[r], first[r + 1]):
        shared = any(abs(nx[j] - nx[k]) < 0.5 and abs(ny[j] - ny[k]) < 0.5 for k in range(first[rq], first[rq + 1]))
        d = float(np.hypot(x[q] - nx[j], y[q] - ny[j]))
        if shared and d < best_d:
            best, best_d = j, d
    return best


def test_junction_search_on_long_roads_equals_a_scan_of_every_node_pair():
    """Long roads of many links meeting at several junctions (crossings, near-vertical roads whose nodes
    share one x, nodes 0.3-0.7 m apart): the context pair uses the junction a scan of all node pairs finds."""
    from geo.trip_kernels import _context_pair

    rng = np.random.default_rng(5)
    roads = []
    for _ in range(12):
        n = int(rng.integers(2, 60))
        if rng.random() < 0.5:  # near-vertical: every node at almost the same x
            xs = np.full(n, float(rng.integers(0, 6)) * 50.0) + rng.choice([0.0, 0.3, 0.7], n)
            ys = np.sort(rng.choice(np.arange(0.0, 3000.0, 50.0), n, replace=False))
        else:
            xs = np.sort(rng.choice(np.arange(0.0, 300.0, 50.0), n))
            ys = np.full(n, float(rng.integers(0, 60)) * 50.0) + rng.choice([0.0, 0.4, 0.6], n)
        s = np.r_[0.0, np.cumsum(np.hypot(np.diff(xs), np.diff(ys)))]
        order = rng.permutation(n)  # a road's nodes in no particular order
        roads.append([(s[i], xs[i], ys[i]) for i in order])
    nodes = road_nodes(roads)
    arrays = nodes.kernel_arrays()
    first, nx, ny = nodes.first, nodes.x_m, nodes.y_m
    checked = 0
    for _ in range(400):
        r, rq = rng.choice(len(roads), 2, replace=False)
        j = int(rng.integers(first[r], first[r + 1]))
        x = np.array([nx[j] + rng.normal(0, 30), nx[j] + 5.0])
        y = np.array([ny[j] + rng.normal(0, 30), ny[j] + 5.0])
        road = np.array([rq, r], dtype=np.int64)
        pos = np.array([np.nan, nodes.s_m[j]])
        expected = _junction_by_scan(0, r, road, x, y, first, nx, ny)
        on, total, _ = _context_pair(0, 1, road, pos, x, y, r, arrays, 1e9, 1e9)
        if expected < 0:
            continue
        checked += 1
        hop = np.hypot(x[0] - nx[expected], y[0] - ny[expected])
        assert on == pytest.approx(abs(pos[1] - nodes.s_m[expected]))
        assert total == pytest.approx(hop + on)
    assert checked > 50
