"""Matching points to road links (geo.matching): equal to a brute-force nearest-road computation on random
and real OSM networks, without and with headings; one-way links, positions along links, unmatched points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely

from geo.matching import build_segment_index, match_points
from geo.network import build_links, load_roads

DATA = Path(__file__).parent / "data"


def brute_force(geoms, x, y, radius_m):
    """Nearest road by shapely distance to every road; ties to the smaller road index."""
    pts = shapely.points(x, y)
    d = np.stack([shapely.distance(pts, g) for g in geoms], axis=1)
    best = np.argmin(d, axis=1)  # argmin returns the first (smallest index) minimum
    best_d = d[np.arange(len(best)), best]
    return np.where(best_d <= radius_m, best, -1), best_d, d


def _assert_same(geoms, x, y, radius):
    index = build_segment_index(geoms, radius_m=radius)
    r = match_points(x, y, index)
    road, dist = r.road, r.dist
    exp, exp_d, all_d = brute_force(geoms, x, y, radius)
    differ = road != exp
    # Only exact ties (within float noise) or points on the radius boundary may differ.
    for i in np.flatnonzero(differ):
        if road[i] >= 0 and exp[i] >= 0:
            assert abs(all_d[i, road[i]] - exp_d[i]) < 1e-6
        else:
            assert abs(exp_d[i] - radius) < 1e-6
    assert differ.mean() < 1e-3
    m = road >= 0
    np.testing.assert_allclose(dist[m], exp_d[m], atol=1e-6)
    return road


def test_matches_brute_force_on_real_osm_network():
    roads = load_roads(DATA / "hodogaya_osm_roads.geojson")
    minx, miny, maxx, maxy = roads.total_bounds
    rng = np.random.default_rng(7)
    x = rng.uniform(minx - 50, maxx + 50, 30_000)
    y = rng.uniform(miny - 50, maxy + 50, 30_000)
    road = _assert_same(roads.geometry.values, x, y, 20.0)
    assert 0.1 < (road >= 0).mean() < 0.9  # the test exercises both matched and unmatched points


def test_matches_brute_force_near_real_vertices():
    """Points a few metres off the real vertices (intersections are where ties and errors happen)."""
    roads = load_roads(DATA / "hodogaya_osm_roads.geojson")
    coords = shapely.get_coordinates(roads.geometry.values)
    rng = np.random.default_rng(3)
    pick = coords[rng.integers(0, len(coords), 20_000)]
    x = pick[:, 0] + rng.normal(0, 5, len(pick))
    y = pick[:, 1] + rng.normal(0, 5, len(pick))
    road = _assert_same(roads.geometry.values, x, y, 20.0)
    assert (road >= 0).mean() > 0.95


@pytest.mark.parametrize("seed", [0, *(pytest.param(s, marks=pytest.mark.slow) for s in (1, 2))])
def test_matches_brute_force_on_random_networks(seed):
    rng = np.random.default_rng(seed)
    n = 300
    starts = rng.uniform(0, 2000, (n, 2))
    ends = starts + rng.normal(0, 150, (n, 2))
    geoms = shapely.linestrings(np.stack([starts, ends], axis=1))
    radius = float(rng.uniform(5, 40))
    x, y = rng.uniform(-50, 2050, 20_000), rng.uniform(-50, 2050, 20_000)
    _assert_same(geoms, x, y, radius)


def test_exact_tie_goes_to_smaller_road_index():
    geoms = shapely.linestrings([[(0, 10), (100, 10)], [(0, -10), (100, -10)]])
    index = build_segment_index(geoms, radius_m=20)
    r = match_points(np.array([50.0]), np.array([0.0]), index)
    road, dist = r.road, r.dist
    assert road[0] == 0 and dist[0] == pytest.approx(10.0)


def test_radius_is_respected_and_far_points_unmatched():
    geoms = shapely.linestrings([[(0, 0), (100, 0)]])
    index = build_segment_index(geoms, radius_m=20)
    r = match_points(np.array([50, 50, 50, 1e6, np.nan]), np.array([19.9, 20.1, -5, 0, 0]), index)
    road, dist = r.road, r.dist
    assert road.tolist() == [0, -1, 0, -1, -1]
    assert dist[0] == pytest.approx(19.9) and np.isnan(dist[1])


def test_bad_radius():
    with pytest.raises(ValueError, match="radius_m"):
        build_segment_index(shapely.linestrings([[(0, 0), (1, 0)]]), radius_m=0)


# --- with headings: the bearing check, one-way links, positions along links ---------------------------


def brute_force_heading(geoms, x, y, heading, radius, tol=45.0, oneway=None):
    """All points × all segments in numpy: nearest heading-consistent segment (ties: smaller id);
    nearest of any bearing when none agrees or the heading is unknown."""
    L = build_links(geoms, oneway=oneway)
    x0, y0, x1, y1 = L.x0[None], L.y0[None], L.x1[None], L.y1[None]
    px, py = x[:, None], y[:, None]
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((px - x0) * dx + (py - y0) * dy) / (dx * dx + dy * dy), 0, 1)
    d = np.hypot(x0 + t * dx - px, y0 + t * dy - py)
    bearing = np.degrees(np.arctan2(dx, dy)) % 360
    diff = np.abs((heading[:, None] - bearing + 180) % 360 - 180)
    ow = L.link_oneway[L.seg_link][None]
    agree = ((ow >= 0) & (diff <= tol)) | ((ow <= 0) & (diff >= 180 - tol))
    near = d <= radius
    d_any = np.where(near, d, np.inf)
    d_ok = np.where(near & (agree | np.isnan(heading)[:, None]), d, np.inf)
    best_ok, best_any = np.argmin(d_ok, axis=1), np.argmin(d_any, axis=1)  # first minimum = smaller id
    rows = np.arange(len(x))
    seg = np.where(
        np.isfinite(d_ok[rows, best_ok]), best_ok, np.where(np.isfinite(d_any[rows, best_any]), best_any, -1)
    )
    return seg, d


def _compare(geoms, x, y, heading, radius, oneway=None):
    index = build_segment_index(geoms, radius_m=radius, oneway=oneway)
    got = match_points(x, y, index, heading)
    exp, d = brute_force_heading(geoms, x, y, heading, radius, oneway=oneway)
    differ = np.flatnonzero(got.seg != exp)
    for i in differ:  # only exact ties (float noise) or points on the radius may differ
        if got.seg[i] >= 0 and exp[i] >= 0:
            assert abs(d[i, got.seg[i]] - d[i, exp[i]]) < 1e-6
        else:
            assert abs(np.nanmin(np.where(d[i] <= radius + 1e-6, d[i], np.nan)) - radius) < 1e-6
    assert len(differ) <= max(1, len(x) // 1000)
    return got, index


@pytest.mark.parametrize("seed", [0, 1])
def test_heading_matching_equals_brute_force_on_random_networks(seed):
    rng = np.random.default_rng(seed)
    n = 200
    starts = rng.uniform(0, 1500, (n, 2))
    mids = starts + rng.normal(0, 80, (n, 2))
    ends = mids + rng.normal(0, 80, (n, 2))
    geoms = shapely.linestrings(np.stack([starts, mids, ends], axis=1))
    oneway = rng.choice([0, 0, 1, -1], n).astype(np.int8)
    x, y = rng.uniform(-30, 1530, 8000), rng.uniform(-30, 1530, 8000)
    heading = rng.uniform(0, 360, 8000)
    heading[rng.random(8000) < 0.2] = np.nan
    got, _ = _compare(geoms, x, y, heading, float(rng.uniform(10, 30)), oneway)
    assert (got.seg >= 0).mean() > 0.2


def test_heading_matching_equals_brute_force_on_real_osm_network():
    roads = load_roads(DATA / "hodogaya_osm_roads.geojson")
    coords = shapely.get_coordinates(roads.geometry.values)
    rng = np.random.default_rng(5)
    pick = coords[rng.integers(0, len(coords), 6000)]  # near vertices: intersections and bends
    x = pick[:, 0] + rng.normal(0, 6, len(pick))
    y = pick[:, 1] + rng.normal(0, 6, len(pick))
    heading = rng.uniform(0, 360, len(pick))
    got, _ = _compare(roads.geometry.values, x, y, heading, 20.0)
    assert (got.seg >= 0).mean() > 0.95


def test_heading_keeps_point_at_intersection_on_street_driven():
    # A: east-west along y=0; B: north-south along x=0. Point 2 m from A, 3 m from B.
    geoms = shapely.linestrings([[(-100, 0), (100, 0)], [(0, -100), (0, 100)]])
    index = build_segment_index(geoms, radius_m=20)
    x, y = np.array([3.0, 3.0, 3.0]), np.array([2.0, 2.0, 2.0])
    m = match_points(x, y, index, np.array([0.0, 180.0, np.nan]))  # northbound, southbound, unknown
    assert m.road.tolist() == [1, 1, 0]
    assert m.direction.tolist() == [1, -1, 0]
    assert m.dist[:2] == pytest.approx([3.0, 3.0])


def test_one_way_only_in_its_direction():
    # Two parallel roads; road 0 one-way eastbound, road 1 two-way 10 m north.
    geoms = shapely.linestrings([[(0, 0), (100, 0)], [(0, 10), (100, 10)]])
    index = build_segment_index(geoms, radius_m=20, oneway=np.array([1, 0]))
    m = match_points(np.array([50.0, 50.0]), np.array([3.0, 3.0]), index, np.array([90.0, 270.0]))
    assert m.road.tolist() == [0, 1]  # westbound cannot be on the eastbound one-way road
    assert m.direction.tolist() == [1, -1]
    index_rev = build_segment_index(geoms, radius_m=20, oneway=np.array([-1, 0]))
    m = match_points(np.array([50.0]), np.array([3.0]), index_rev, np.array([270.0]))
    assert m.road.tolist() == [0] and m.direction.tolist() == [-1]


def test_no_agreeing_candidate_falls_back_to_nearest():
    geoms = shapely.linestrings([[(0, 0), (100, 0)]])
    index = build_segment_index(geoms, radius_m=20)
    m = match_points(np.array([50.0]), np.array([5.0]), index, np.array([0.0]))  # heading across the road
    assert m.road.tolist() == [0] and m.direction.tolist() == [0]


def test_position_along_link_and_links():
    # Road 0 crosses road 1 at (100, 0): two links of 100 m and 50 m.
    geoms = shapely.linestrings([[(0, 0), (100, 0), (150, 0)], [(100, -50), (100, 0), (100, 50)]])
    index = build_segment_index(geoms, radius_m=10)
    m = match_points(np.array([25.0, 125.0, 101.0]), np.array([1.0, -1.0, 40.0]), index)
    assert m.link.tolist() == [0, 1, 3]
    assert m.road.tolist() == [0, 0, 1]
    np.testing.assert_allclose(m.pos, [0.25, 0.5, 0.8])
    np.testing.assert_allclose(m.dist, [1.0, 1.0, 1.0])


def test_far_and_nan_points_unmatched():
    geoms = shapely.linestrings([[(0, 0), (100, 0)]])
    index = build_segment_index(geoms, radius_m=20)
    m = match_points(np.array([50, 1e7, np.nan, 50]), np.array([20.5, 0, 0, 20.0]), index, np.full(4, 90.0))
    assert m.seg.tolist() == [-1, -1, -1, 0]
    assert np.isnan(m.dist[:3]).all() and np.isnan(m.pos[:3]).all()
