"""Matching equals a brute-force nearest-road computation, on random and on real OSM networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely

from geo.matching import build_segment_index, match_points
from geo.network import load_roads, segment_arrays

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


def test_segment_arrays_multilinestring():
    g = shapely.from_wkt(["MULTILINESTRING ((0 0, 1 0, 2 0), (5 5, 6 6))", "LINESTRING (0 1, 0 2)"])
    x0, y0, x1, y1, idx = segment_arrays(g)
    assert idx.tolist() == [0, 0, 0, 1]
    assert x1.tolist() == [1, 2, 6, 0]


def test_bad_radius():
    with pytest.raises(ValueError, match="radius_m"):
        build_segment_index(shapely.linestrings([[(0, 0), (1, 0)]]), radius_m=0)
