"""The mergeable cube: figures from merged histograms equal DuckDB on the raw matched points; merge laws."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo.aggregate import (
    Cube,
    aggregate_points,
    concat_shards,
    cube_of_groups,
    decode_cell,
    distinct_vehicles,
    figures,
    group_points,
    merge_cubes,
    regroup,
    split_by_piece,
    vehicles_by_road,
)
from geo.calendar import holiday_table
from geo.matching import build_segment_index, match_points

GEOMS = np.array(
    [
        shapely.LineString([(0, 0), (200, 0), (400, 0)]),
        shapely.LineString([(200, -200), (200, 0), (200, 200)]),
        shapely.LineString([(0, 300), (400, 300)]),
    ]
)
INDEX = build_segment_index(GEOMS, radius_m=20)
LIMITS = np.array([30.0, 30.0, 50.0])
PIECE_ROAD = INDEX.links.piece_road.astype(np.int64)
T0 = np.datetime64("2024-01-01T00:00", "us").astype(np.int64)


# The direct DuckDB computation on raw matched points: the independent reference the cube is tested against.
def speed_statistics(con: duckdb.DuckDBPyConnection, matched: pa.Table, group_by: list[str]) -> pa.Table:
    """Figures per group of matched points.

    `matched` needs columns vehicle_key, speed_kmh (km/h), limit_kmh (km/h) and the
    `group_by` columns. Returns those columns plus n_points, n_vehicles (distinct
    pseudonymised vehicles), mean_kmh, p85_kmh (grouped-data percentile of the speeds recorded
    to the nearest whole km/h, each standing for [v - 0.5, v + 0.5)), share_at_or_over_limit
    (fraction of points with speed ≥ limit, 0–1) and limit_kmh.
    """
    keys = ", ".join(group_by)
    on = " AND ".join(f"s.{k} = p.{k}" for k in group_by)
    con.register("_matched", matched)
    try:
        return con.sql(
            f"""
            WITH classes AS (  -- recorded speed (nearest whole km/h) and its count
                SELECT {keys}, floor(speed_kmh + 0.5) AS v, count(*) AS f FROM _matched GROUP BY ALL
            ), cum AS (
                SELECT *, sum(f) OVER (PARTITION BY {keys} ORDER BY v) AS upto,
                          sum(f) OVER (PARTITION BY {keys}) AS n
                FROM classes
            ), p AS (  -- grouped-data percentile: L + (0.85 N - F) / f in the class reaching 0.85 N
                SELECT {keys}, arg_min(v - 0.5 + (0.85 * n - (upto - f)) / f, v) AS p85_kmh
                FROM cum WHERE upto >= 0.85 * n GROUP BY ALL
            ), s AS (
                SELECT {keys},
                       count(*)                                   AS n_points,
                       count(DISTINCT vehicle_key)                AS n_vehicles,
                       avg(speed_kmh)                             AS mean_kmh,
                       avg(CASE WHEN speed_kmh >= limit_kmh THEN 1.0 ELSE 0.0 END) AS share_at_or_over_limit,
                       max(limit_kmh)                             AS limit_kmh
                FROM _matched
                GROUP BY {keys}
            )
            SELECT s.*, p.p85_kmh FROM s JOIN p ON {on}
            ORDER BY {", ".join(f"s.{k}" for k in group_by)}
            """
        ).to_arrow_table()
    finally:
        con.unregister("_matched")


def points(seed, n, integer_speeds=True):
    rng = np.random.default_rng(seed)
    road = rng.integers(0, 3, n)
    along = rng.uniform(0, 400, n)
    x = np.where(road == 1, 200.0, along) + rng.normal(0, 5, n)
    y = np.select([road == 0, road == 1, road == 2], [0.0, along - 200, 300.0]) + rng.normal(0, 5, n)
    speed = rng.gamma(9, 3.5, n)
    if integer_speeds:
        speed = np.round(speed)
    heading = np.where(road == 1, 0.0, 90.0) + rng.choice([0.0, 180.0], n)
    heading[rng.random(n) < 0.1] = np.nan
    return {
        "x": x,
        "y": y,
        "heading": heading,
        "speed": speed,
        "vid": rng.integers(0, max(2, n // 5), n).astype(np.int64),
        "gps_us": T0 + rng.integers(0, 40 * 86_400, n) * 1_000_000,
        "vtype": rng.integers(1, 5, n).astype(np.int32),
    }


def cube_of(p, sl=slice(None), cell_vehicles=False):
    m = match_points(p["x"][sl], p["y"][sl], INDEX, p["heading"][sl])
    cube = aggregate_points(
        m.seg,
        m.pos,
        m.direction,
        INDEX,
        p["gps_us"][sl],
        p["vtype"][sl],
        p["speed"][sl],
        p["vid"][sl],
        LIMITS[PIECE_ROAD],
        cell_vehicles=cell_vehicles,
    )
    return cube, m


@pytest.mark.parametrize("integer_speeds", [True, False])
def test_figures_from_cube_equal_duckdb_on_raw_points(integer_speeds):
    p = points(1, 20_000, integer_speeds)
    cube, m = cube_of(p)
    f = figures(cube, PIECE_ROAD, 3)
    hit = m.seg >= 0
    raw = pa.table(
        {
            "road": m.road[hit],
            "vehicle_key": p["vid"][hit],
            "speed_kmh": p["speed"][hit],
            "limit_kmh": LIMITS[m.road[hit]],
        }
    )
    con = duckdb.connect()
    ref = speed_statistics(con, raw, ["road"]).to_pandas().set_index("road")
    for r in range(3):
        assert f["n_points"][r] == ref.loc[r, "n_points"]
        assert f["n_vehicles"][r] == ref.loc[r, "n_vehicles"]
        assert f["mean_kmh"][r] == pytest.approx(ref.loc[r, "mean_kmh"], rel=1e-12)
        assert f["share_at_or_over_limit"][r] == pytest.approx(ref.loc[r, "share_at_or_over_limit"])
        # fractional speeds are recorded to the nearest whole km/h, by the cube and by the reference alike
        assert f["p85_kmh"][r] == pytest.approx(ref.loc[r, "p85_kmh"], abs=1e-9)
    # share over limit + 10, independently
    sp, lim = p["speed"][hit], LIMITS[m.road[hit]]
    for r in range(3):
        sel = m.road[hit] == r
        assert f["share_at_or_over_limit_plus_10"][r] == pytest.approx((sp[sel] >= lim[sel] + 10).mean())


def test_cells_hour_daytype_class_direction():
    # 2024-01-08 (Mon) is 成人の日, 2024-01-09 (Tue) a weekday, 2024-01-13 a Saturday.
    days = ["2024-01-08T07:30", "2024-01-09T07:30", "2024-01-13T23:59", "2024-01-09T00:00"]
    gps = np.array([np.datetime64(d, "us").astype(np.int64) for d in days])
    x, y = np.full(4, 100.0), np.full(4, 1.0)
    m = match_points(x, y, INDEX, np.array([90.0, 270.0, np.nan, 90.0]))
    cube = aggregate_points(
        m.seg,
        m.pos,
        m.direction,
        INDEX,
        gps,
        np.array([1, 2, 3, 2], np.int32),
        np.array([31.0, 29.0, 45.0, 40.0]),
        np.arange(4),
        LIMITS[PIECE_ROAD],
    )
    t = cube.cells_table().to_pandas().sort_values(["day_type", "hour", "direction"])
    got = sorted(
        zip(
            t["direction"],
            t["hour"],
            t["day_type"],
            t["vehicle_class"],
            t["n_points"],
            t["n_at_or_over_limit"],
            t["n_at_or_over_limit_plus_10"],
            strict=True,
        )
    )
    assert got == sorted([(1, 7, 1, 1, 1, 1, 0), (-1, 7, 0, 2, 1, 0, 0), (0, 23, 1, 3, 1, 1, 1), (1, 0, 0, 2, 1, 1, 1)])
    day0, hol = holiday_table()
    assert hol[(dt.date(2024, 1, 8) - dt.date(1970, 1, 1)).days - day0]


def test_decode_cell_roundtrip():
    from geo.kernels import N_CLASS, N_DAYTYPE, N_HOUR

    d, h, t, c = np.array([-1, 0, 1]), np.array([0, 13, 23]), np.array([0, 1, 1]), np.array([0, 4, 15])
    cell = (((d + 1) * N_HOUR + h) * N_DAYTYPE + t) * N_CLASS + c
    out = decode_cell(cell)
    assert out["direction"].tolist() == d.tolist() and out["hour"].tolist() == h.tolist()
    assert out["day_type"].tolist() == t.tolist() and out["vehicle_class"].tolist() == c.tolist()


def _canon(cube):
    c, h, v = cube.cells, cube.hist, cube.vehicles
    oc = np.lexsort((c["cell"], c["piece"]))
    oh = np.lexsort((h["speed_kmh"], h["cell"], h["piece"]))
    ov = np.lexsort((v["vehicle_id"], v["piece"]))
    cells = {k: c[k][oc] for k in ("piece", "cell", "n_points", "n_at_or_over_limit", "n_at_or_over_limit_plus_10")}
    return cells, c["sum_speed_kmh"][oc], {k: a[oh] for k, a in h.items()}, {k: a[ov] for k, a in v.items()}


@pytest.mark.parametrize("share", [0.0, 0.3, 0.97, 1.0])
def test_groups_of_kept_rows_equal_groups_of_rows_copied_out(share):
    """group_points(keep=mask) groups the kept rows where they lie: the same arrays as grouping the
    rows copied out by the mask (keys number each piece's points in the order of the kept rows)."""
    p = points(11, 3000, integer_speeds=False)
    m = match_points(p["x"], p["y"], INDEX, p["heading"])
    keep = np.random.default_rng(5).random(len(p["x"])) < share
    cols = (m.seg, m.pos, m.direction, INDEX, p["gps_us"], p["vtype"], p["speed"], p["vid"])
    a = group_points(*cols, keep=keep)
    b = group_points(*(c if c is INDEX else c[keep] for c in cols))
    assert len(b.key) == int(((m.seg >= 0) & keep).sum())
    for name in ("offsets", "key", "speed_kmh", "vehicle_id"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    with pytest.raises(ValueError, match="keep has"):
        group_points(*cols, keep=keep[:-1])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 3000),
    cuts=st.lists(st.floats(0, 1), max_size=4),
    integer_speeds=st.booleans(),
)
def test_merge_of_parts_equals_whole(seed, n, cuts, integer_speeds):
    p = points(seed, n, integer_speeds)
    bounds = [0, *sorted(int(c * n) for c in cuts), n]
    parts = [cube_of(p, slice(a, b))[0] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    whole = cube_of(p)[0]
    merged = merge_cubes(parts)
    wc, ws, wh, wv = _canon(merge_cubes([whole]))
    mc, ms, mh, mv = _canon(merged)
    for k in wc:
        np.testing.assert_array_equal(wc[k], mc[k])
    np.testing.assert_allclose(ws, ms, rtol=1e-12)
    for k in wh:
        np.testing.assert_array_equal(wh[k], mh[k])
    for k in wv:
        np.testing.assert_array_equal(wv[k], mv[k])
    fw, fm = figures(whole, PIECE_ROAD, 3), figures(merged, PIECE_ROAD, 3)
    for k in fw:
        np.testing.assert_allclose(fw[k], fm[k], rtol=1e-12, equal_nan=True)
    # merging is associative: merging merged parts again changes nothing, in every array
    ac, as_, ah, av = _canon(
        merge_cubes([merge_cubes(parts[:1]), merge_cubes(parts[1:])]) if len(parts) > 1 else merged
    )
    for k in mc:
        np.testing.assert_array_equal(ac[k], mc[k])
    np.testing.assert_allclose(as_, ms, rtol=1e-12)
    for k in mh:
        np.testing.assert_array_equal(ah[k], mh[k])
    for k in mv:
        np.testing.assert_array_equal(av[k], mv[k])
    # the scale-out reduction: every part cut into ranges of pieces, each range merged, concatenated
    edges = np.array([0, 1, 2, INDEX.links.n_pieces])
    shards = [merge_cubes([split_by_piece(c, edges)[s] for c in parts]) for s in range(len(edges) - 1)]
    sc, ss, sh, sv = _canon(concat_shards(shards))
    for k in mc:
        np.testing.assert_array_equal(sc[k], mc[k])
    np.testing.assert_allclose(ss, ms, rtol=1e-12)
    for k in mh:
        np.testing.assert_array_equal(sh[k], mh[k])
    for k in mv:
        np.testing.assert_array_equal(sv[k], mv[k])


def test_cells_equal_pandas_group_by_on_raw_points():
    """Every cell (link, direction, hour, day type, class): counts, sums and distinct vehicles."""
    import holidays
    import pandas as pd

    p = points(3, 5000)
    cube, m = cube_of(p)
    hit = m.seg >= 0
    ts = pd.to_datetime(p["gps_us"][hit], unit="us")
    jp = holidays.Japan(years=[2024])
    day_type = ((ts.day_of_week >= 5) | pd.Index(ts.date).map(lambda d: d in jp)).astype(int)
    raw = pd.DataFrame(
        {
            "piece": m.link[hit],
            "direction": m.direction[hit],
            "hour": ts.hour,
            "day_type": day_type,
            "vehicle_class": p["vtype"][hit],
            "speed": p["speed"][hit],
            "vid": p["vid"][hit],
        }
    )
    raw["ge"] = raw["speed"] >= LIMITS[PIECE_ROAD[raw["piece"]]]
    keys = ["piece", "direction", "hour", "day_type", "vehicle_class"]
    exp = (
        raw.groupby(keys)
        .agg(
            n_points=("speed", "size"),
            sum_speed_kmh=("speed", "sum"),
            n_at_or_over_limit=("ge", "sum"),
            n_vehicles=("vid", "nunique"),
        )
        .reset_index()
    )
    got = cube.cells_table().to_pandas()
    merged = exp.merge(got, on=keys, how="outer", suffixes=("_exp", ""), indicator=True)
    assert (merged["_merge"] == "both").all()
    for col in ("n_points", "n_at_or_over_limit", "n_vehicles"):
        assert (merged[col] == merged[col + "_exp"]).all(), col
    np.testing.assert_allclose(merged["sum_speed_kmh"], merged["sum_speed_kmh_exp"])


def test_distinct_vehicles_of_a_union_of_parts_equals_pandas_nunique_on_raw_points():
    """Distinct vehicles per group of pieces (roads; one road's pieces left out with group -1) from
    the merged cube of three parts: the same as counting distinct ids of the raw matched points."""
    import pandas as pd

    p = points(5, 6000)
    bounds = [0, 1500, 4000, 6000]
    merged = merge_cubes([cube_of(p, slice(a, b))[0] for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    group_of_piece = np.where(PIECE_ROAD == 2, -1, PIECE_ROAD)  # road 2 ignored
    got = distinct_vehicles(merged.vehicles["piece"], merged.vehicles["vehicle_id"], group_of_piece, 3)
    _, m = cube_of(p)
    hit = m.seg >= 0
    raw = pd.DataFrame({"road": PIECE_ROAD[m.link[hit]], "vid": p["vid"][hit]})
    exp = raw[raw["road"] != 2].groupby("road")["vid"].nunique()
    assert got.tolist() == [exp.get(0, 0), exp.get(1, 0), 0]
    assert got[0] > 0 and got[1] > 0


def test_write_cube_roundtrip_and_rows_ordered(tmp_path):
    from geo.aggregate import read_cube, write_cube

    cube, _ = cube_of(points(7, 4000, integer_speeds=False))
    for part in (cube.cells, cube.hist, cube.vehicles):  # compacted in order: piece first
        assert (np.diff(part["piece"]) >= 0).all()
    write_cube(cube, tmp_path / "part")
    back = read_cube(tmp_path / "part")
    for part in ("cells", "hist", "vehicles"):
        a, b = getattr(cube, part), getattr(back, part)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{part}.{k}")
            assert a[k].dtype == b[k].dtype, (part, k)


def groups_of(p, sl=slice(None)):
    m = match_points(p["x"][sl], p["y"][sl], INDEX, p["heading"][sl])
    return group_points(m.seg, m.pos, m.direction, INDEX, p["gps_us"][sl], p["vtype"][sl], p["speed"][sl], p["vid"][sl])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 3000),
    cuts=st.lists(st.floats(0, 1), max_size=4),
    inner=st.lists(st.integers(0, 5), max_size=3),
    n_vehicles=st.integers(1, 50),
    integer_speeds=st.booleans(),
)
def test_cube_of_consecutive_parts_by_range_is_the_whole_cube(seed, n, cuts, inner, n_vehicles, integer_speeds):
    """Month by month: the points of consecutive parts grouped apart, then each range of pieces made
    from every part's rows in that range (`regroup`, `cube_of_groups`) and the ranges concatenated,
    are the cube of all the points at once, every array bit for bit — speed sums too, whatever the
    speeds (the same additions in the same order) — per-cell distinct vehicles included."""
    p = points(seed, n, integer_speeds)
    p["vid"] = p["vid"] % n_vehicles  # vehicles that come back in several parts and cells
    bounds = [0, *sorted(int(c * n) for c in cuts), n]
    parts = [groups_of(p, slice(a, b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    whole, _ = cube_of(p, cell_vehicles=True)
    n_pieces = int(INDEX.links.n_pieces)
    edges = np.unique(np.r_[0, np.minimum(np.asarray(inner, dtype=np.int64), n_pieces), n_pieces])
    limits = LIMITS[PIECE_ROAD]
    ranges = [
        cube_of_groups(regroup([g.range_rows(lo, hi) for g in parts]), limits[lo:hi], lo, cell_vehicles=True)
        for lo, hi in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True)
    ]
    joined = concat_shards(ranges)
    for part in ("cells", "hist", "vehicles"):
        a, b = getattr(whole, part), getattr(joined, part)
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].dtype == b[k].dtype, (part, k)
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{part}.{k}")
    np.testing.assert_array_equal(whole.cell_vehicles, joined.cell_vehicles)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 3000),
    inner=st.lists(st.integers(0, 5), max_size=4),
    lo=st.integers(0, 1),
    hi=st.integers(4, 5),
    n_vehicles=st.integers(1, 50),
    by_road=st.booleans(),
)
def test_split_by_slices_of_sorted_rows_equals_split_by_masks(seed, n, inner, lo, hi, n_vehicles, by_road):
    """The cut of a cube whose rows are ordered by piece (binary search, slices) against the general
    one (a mask per shard), every array and each cell's vehicles; edges that leave pieces out at
    both ends and empty shards included."""
    from geo.aggregate import _ascending

    p = points(seed, n)
    p["vid"] = p["vid"] % n_vehicles
    cube, _ = cube_of(p, cell_vehicles=True)
    if by_road:
        cube = vehicles_by_road(cube, np.arange(INDEX.links.n_pieces) // 3)
    assert all(_ascending(getattr(cube, part)["piece"]) for part in ("cells", "hist", "vehicles"))
    assert INDEX.links.n_pieces == 5
    edges = np.unique(np.array([lo, *[k for k in inner if lo <= k <= hi], hi]))
    shuffled = Cube(cube.cells, cube.hist, {k: v[::-1] for k, v in cube.vehicles.items()}, cube.cell_vehicles)
    fast = split_by_piece(cube, edges)
    masked = split_by_piece(shuffled, edges)  # not ordered: the general path
    assert len(fast) == len(masked) == len(edges) - 1
    for a, b in zip(fast, masked, strict=True):
        for part in ("cells", "hist"):
            for k, v in getattr(a, part).items():
                np.testing.assert_array_equal(v, getattr(b, part)[k], err_msg=f"{part}.{k}")
        np.testing.assert_array_equal(a.vehicles["piece"], b.vehicles["piece"][::-1])
        np.testing.assert_array_equal(a.vehicles["vehicle_id"], b.vehicles["vehicle_id"][::-1])
        np.testing.assert_array_equal(a.cell_vehicles, b.cell_vehicles)
    kept = (cube.hist["piece"] >= edges[0]) & (cube.hist["piece"] < edges[-1])
    assert sum(len(c.hist["piece"]) for c in fast) == int(kept.sum())


@pytest.mark.parametrize("seed", range(3))
def test_compiled_sorts_equal_numpy_sort(seed):
    """The kernels' sorts: ids (any int64, negative ones first, as numpy orders them; small ids that
    share their high bits; the extremes of int64; half the ids in one bucket; the short slices a
    comparison sort takes) and cell keys (key << 32 |
    position, positions increasing: the same order as a full sort, stable in position)."""
    from geo.kernels import ID_COUNTERS, _sort_cell_keys, _sort_ids

    rng = np.random.default_rng(seed)
    tmp, c_ids, c1024 = np.empty(100_000, np.int64), np.empty(ID_COUNTERS, np.int64), np.empty(1024, np.int64)
    i64 = np.iinfo(np.int64)
    for n in (0, 1, 30, 255, 256, 700, 4000, 90_000):
        for ids in (
            rng.integers(i64.min, i64.max, n, dtype=np.int64),
            rng.integers(0, 40, n).astype(np.int64),
            -rng.integers(0, 1 << 40, n).astype(np.int64),
            rng.choice(np.array([i64.min, i64.max, -1, 0, 1], np.int64), n),  # the full width: min to max
            np.where(rng.random(n) < 0.5, rng.integers(0, 1 << 62, n), rng.integers(0, 3, n)).astype(np.int64),
        ):
            v = np.r_[np.int64(7), ids, np.int64(-7)]  # sorted in the middle of a longer array
            _sort_ids(v, 1, 1 + n, tmp, c_ids)
            np.testing.assert_array_equal(v[1 : 1 + n], np.sort(ids))
            assert v[0] == 7 and v[-1] == -7
        key = rng.integers(0, 589_824, n).astype(np.int64)
        if n:
            key[rng.random(n) < 0.3] = key[0]  # ties: kept in position order
        g = (key << 32) | np.arange(n, dtype=np.int64)
        want = np.sort(g)
        _sort_cell_keys(g, 0, n, tmp, c1024)
        np.testing.assert_array_equal(g, want)


def test_range_edges_cut_between_whole_roads():
    """The ranges of a period's cube hold whole roads (a road's distinct vehicles are made in one
    range), cover every piece once, and fall back to one range when roads are not consecutive."""
    from types import SimpleNamespace

    from analysis._partitions import range_edges

    links = SimpleNamespace(
        link_road=np.array([0, 0, 0, 1, 2, 2, 3, 3, 3, 3], np.int32),
        link_first_piece=np.array([0, 2, 3, 5, 6, 9, 10, 12, 13, 14, 16], np.int32),
        n_pieces=16,
    )
    net = SimpleNamespace(index=SimpleNamespace(links=links))
    piece_road = np.repeat(links.link_road, np.diff(links.link_first_piece))
    for n in (1, 2, 3, 5, 50):
        edges = range_edges(net, n)
        assert edges[0] == 0 and edges[-1] == 16 and (np.diff(edges) > 0).all()
        for e in edges[1:-1]:
            assert piece_road[e] != piece_road[e - 1]  # a cut between two roads
    assert len(range_edges(net, 50)) == 5  # at most one range per road
    links.link_road = np.array([0, 1, 0, 1, 2, 2, 3, 3, 3, 3], np.int32)  # road 0 comes back
    np.testing.assert_array_equal(range_edges(net, 4), [0, 16])


@pytest.mark.parametrize("seed", range(3))
def test_pairs_of_whole_roads_equal_vehicles_by_road(seed):
    """A range of whole roads made with piece_road: its vehicle pairs are those `vehicles_by_road`
    makes of the pieces' pairs (each road as its first piece, ids sorted), every other array the same;
    roads whose pieces are not consecutive are refused."""
    p = points(seed, 4000)
    p["vid"] = p["vid"] % 60
    limits = LIMITS[PIECE_ROAD]
    assert (np.diff(PIECE_ROAD) >= 0).all()
    by_piece = vehicles_by_road(cube_of_groups(groups_of(p), limits), PIECE_ROAD)
    by_road = cube_of_groups(groups_of(p), limits, piece_road=PIECE_ROAD)
    for part in ("cells", "hist", "vehicles"):
        a, b = getattr(by_piece, part), getattr(by_road, part)
        for k in a:
            assert a[k].dtype == b[k].dtype, (part, k)
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{part}.{k}")
    assert len(by_road.vehicles["piece"]) > 0
    with pytest.raises(ValueError, match="consecutive"):
        cube_of_groups(groups_of(p), limits, piece_road=PIECE_ROAD[::-1])


def test_period_kept_on_disk_by_pass_gives_the_cube_of_all_its_points(tmp_path):
    """`PeriodCube`: passes of grouped points kept on disk (one file each), read back range of whole
    roads by range: the ranges joined are the cube of all the points at once, pairs of whole roads
    included; its folder goes with it."""
    from types import SimpleNamespace

    from analysis._partitions import MonthPart, PeriodCube, merge_passage_counts

    p = points(11, 6000, integer_speeds=False)
    p["vid"] = p["vid"] % 80
    net = SimpleNamespace(
        index=INDEX, limits_kmh=LIMITS, piece_road=PIECE_ROAD.astype(np.int64), key="t", road_ids=np.arange(3)
    )
    period = PeriodCube(net, n_ranges=3)
    bounds = [0, 1000, 1001, 3500, 6000]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        period.add(MonthPart(groups_of(p, slice(a, b)), merge_passage_counts([]), b - a))
    assert len(list(period.folder.iterdir())) == 4 and len(period.edges) > 2
    joined = concat_shards(list(period.ranges()))
    whole = vehicles_by_road(cube_of_groups(groups_of(p), LIMITS[PIECE_ROAD]), PIECE_ROAD)
    for part in ("cells", "hist", "vehicles"):
        for k, v in getattr(whole, part).items():
            np.testing.assert_array_equal(v, getattr(joined, part)[k], err_msg=f"{part}.{k}")
    assert period.n_points == 6000
    folder = period.folder
    period.close()
    assert not folder.exists()
