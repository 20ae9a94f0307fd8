"""A period's bootstrap samples are read month by month (analysis.samples): never more than a month of
points at a time, and the same figures as one pass over every point of the period.

The independent computation here is the pre-reduction form: every matched point of the period read
at once (analysis.points.read_points, one row per point), handed to the same public functions."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import shapely

import analysis.samples as samples_module
from analysis.behaviour import classify_trips, cut_through_streets, cut_through_trips, inferred_braking
from analysis.bootstrap import SAMPLE_COUNT, compare_periods_all
from analysis.comparison import trip_ends
from analysis.matchstage import match_stage
from analysis.points import read_points
from analysis.samples import SAMPLE_COLUMNS, period_samples
from config.districts import Period
from conftest import network, offset, style12_row, write_zip
from etl.ingest import ingest_paths
from etl.warehouse import connect
from geo.calendar import months_between

# Three months with points in each; the same vehicles come back every month.
BEFORE = Period("before", dt.date(2017, 9, 25), dt.date(2017, 11, 3))
AFTER = Period("after", dt.date(2018, 1, 29), dt.date(2018, 2, 2))
THRESHOLD_G = 0.05  # low enough that the synthetic decelerations give inferred braking events


def _days(period: Period):
    day = period.start
    while day <= period.end:
        yield day
        day += dt.timedelta(days=3)


@pytest.fixture
def store(tmp_path):
    """Trips on R1 (residential, treated), A1 (arterial, comparison) and R2 (untreated residential)."""
    roads = [("R1", "residential", None, 0.0), ("A1", "secondary", "50", 100.0), ("R2", "residential", None, -100.0)]
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"road_id": rid, "name": rid, "highway": hw, **({"maxspeed": ms} if ms else {})},
                "geometry": {
                    "type": "LineString",
                    "coordinates": [list(offset(-200, north)), list(offset(200, north))],
                },
            }
            for rid, hw, ms, north in roads
        ],
    }
    net_path = tmp_path / "roads.geojson"
    net_path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    rng = np.random.default_rng(11)
    lines = []
    for period, mean in ((BEFORE, 34), (AFTER, 27)):
        for day in _days(period):
            for v in range(18):
                north = (0.5, 100.5, -99.5)[v % 3]
                east = v % 2 == 0
                xs = (-150, -100, -50, 0, 50, 100, 150)
                xs = xs if east else xs[::-1]
                speed = rng.normal(mean if north < 50 else 45, 5)
                for k, x in enumerate(xs):
                    lon, lat = offset(x, north)
                    lines.append(
                        style12_row(
                            f"{800000 + v + 100 * (day.day % 3):012d}",
                            f"{day:%Y%m%d}{7 + v % 4:02d}{v:02d}{k * 6:02d}",
                            lon,
                            lat,
                            max(3, int(round(speed - 2 * k * (v % 2) + rng.normal(0, 3)))),
                            vehicle_type=(1, 2, 4)[(v // 2) % 3],
                        )
                    )
    write_zip(tmp_path / "d" / "points.zip", lines)
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    net = network(net_path, treated=("R1",), comparison=("A1",))
    months = sorted({m for p in (BEFORE, AFTER) for m in months_between(p.start, p.end)})
    match_stage(tmp_path / "wh", net, months)
    return tmp_path / "wh", net


def _whole_period(wh, net, period: Period) -> pd.DataFrame:
    """Every matched point of the period in one frame: the form the reduction replaces."""
    con = connect(wh, read_only=True)
    try:
        pts = read_points(con, wh, net, period.start, period.end, columns=SAMPLE_COLUMNS).to_pandas()
    finally:
        con.close()
    pts["road_id"] = net.road_ids[pts["road_idx"].to_numpy()]
    return pts


def _point_rows(pts: pd.DataFrame, net, label: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unit": pts["road_id"],
            "period": label,
            "vehicle": pts["vehicle_id"],
            "speed_kmh": pts["speed_kmh"],
            "limit_kmh": net.limits_kmh[pts["road_idx"].to_numpy()],
            "gps_us": pts["gps_time"].to_numpy().astype("datetime64[us]").astype(np.int64),
            "x_m": pts["x_m"],
            "y_m": pts["y_m"],
        }
    )


def _read(wh, net, period, label, area=None):
    con = connect(wh, read_only=True)
    try:
        return period_samples(con, wh, net, label, period, threshold_g=THRESHOLD_G, area=area)
    finally:
        con.close()


def test_the_reduction_holds_every_point_of_the_period(store):
    wh, net = store
    pts = _whole_period(wh, net, BEFORE)
    assert pts["gps_time"].dt.month.nunique() == 3, "the period must span three months with points"
    ps = _read(wh, net, BEFORE, "before")
    s = ps.point_samples
    assert int(s[SAMPLE_COUNT].sum()) == len(pts)
    want = pts.groupby(["road_id", "vehicle_id", "speed_kmh"]).size()
    got = s.set_index(["unit", "vehicle", "speed_kmh"])[SAMPLE_COUNT]
    got.index.names = want.index.names
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index(), check_names=False)
    # the same (road, vehicle, speed) recurs across months: the reduction really merged months
    per_month = pts.groupby([pts["gps_time"].dt.month, "road_id", "vehicle_id", "speed_kmh"]).size()
    assert len(per_month) > len(want)
    # each vehicle's first point on each road, as a sort of all the points gives it
    key = ["gps_us", "x_m", "y_m", "speed_kmh"]
    rows = _point_rows(pts, net, "before")
    first = rows.sort_values(key, kind="stable").drop_duplicates(["unit", "vehicle"])
    cols = ["unit", "vehicle", *key]
    pd.testing.assert_frame_equal(
        ps.first_points[cols].sort_values(["unit", "vehicle"]).reset_index(drop=True),
        first[cols].sort_values(["unit", "vehicle"]).reset_index(drop=True),
        check_dtype=False,
    )
    # inferred braking: the same points, in the same order
    brk = inferred_braking(pts, THRESHOLD_G)
    assert len(brk) > 0
    np.testing.assert_array_equal(ps.braking_points["seq"].to_numpy(), brk["seq"].to_numpy())
    np.testing.assert_array_equal(ps.braking_points["trip_id"].to_numpy(), brk["trip_id"].to_numpy())
    assert list(ps.braking_points["road_id"]) == list(brk["road_id"])
    # distinct (road, trip) pairs
    want_rt = pts[["road_id", "trip_id"]].drop_duplicates().sort_values(["road_id", "trip_id"])
    got_rt = ps.road_trips[["road_id", "trip_id"]].sort_values(["road_id", "trip_id"])
    pd.testing.assert_frame_equal(got_rt.reset_index(drop=True), want_rt.reset_index(drop=True), check_dtype=False)


def test_the_comparison_of_reduced_samples_is_that_of_every_point(store):
    """compare_periods_all on one row per point (the independent form) and on the month-by-month
    reduction with first points: the same tables, bit for bit (whole-km/h speeds sum exactly)."""
    wh, net = store
    before, after = _read(wh, net, BEFORE, "before"), _read(wh, net, AFTER, "after")
    raw = pd.concat(
        [_point_rows(_whole_period(wh, net, p), net, label) for p, label in ((BEFORE, "before"), (AFTER, "after"))],
        ignore_index=True,
    )
    passages = pd.concat([before.passage_samples, after.passage_samples], ignore_index=True)
    kw = dict(treated=["R1"], control=["A1"], passages=passages, resamples=50, seed=5, min_vehicles=1)
    want = compare_periods_all(raw, **kw)
    got = compare_periods_all(
        pd.concat([before.point_samples, after.point_samples], ignore_index=True),
        first_points=pd.concat([before.first_points, after.first_points], ignore_index=True),
        **kw,
    )
    assert set(got) == set(want)
    for ind in want:
        pd.testing.assert_frame_equal(got[ind], want[ind], check_exact=True, obj=ind)
    assert want["mean"].set_index("unit").at["R1", "n_before"] == len(
        raw[(raw.unit == "R1") & (raw.period == "before")]
    )


def test_cut_through_from_months_is_that_of_every_point(store):
    wh, net = store
    # metres around the roads' centre (R1 at 0, A1 at +100, R2 at -100 m north): the middle of R1 and R2
    cx, cy = shapely.get_coordinates(net.roads.geometry.union_all().centroid)[0]
    area = shapely.box(cx - 120, cy - 150, cx + 120, cy + 50)
    ps = _read(wh, net, BEFORE, "before", area=area)
    pts = _whole_period(wh, net, BEFORE)
    residential = net.limits_kmh <= 30
    con = connect(wh, read_only=True)
    try:
        ends = trip_ends(con, wh, net, BEFORE)
    finally:
        con.close()
    want = cut_through_trips(pts[residential[pts["road_idx"].to_numpy()]], ends, area)
    assert len(want) > 0
    got = classify_trips(ps.area_trips, ends, area)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)
    pd.testing.assert_frame_equal(
        cut_through_streets(got, ps.road_trips), cut_through_streets(want, pts), check_dtype=False
    )


def test_no_more_than_a_month_of_points_is_read_at_once(store, monkeypatch):
    wh, net = store
    calls = []
    real = samples_module.month_points_and_passages

    def spy(folder, *args, **kwargs):
        table, pas = real(folder, *args, **kwargs)
        calls.append((folder, table.num_rows))
        return table, pas

    monkeypatch.setattr(samples_module, "month_points_and_passages", spy)
    ps = _read(wh, net, BEFORE, "before")
    assert len(calls) == 3, calls  # one read per month folder
    assert len({f for f, _ in calls}) == 3
    total = int(ps.point_samples[SAMPLE_COUNT].sum())
    assert max(n for _, n in calls) < total  # no read held the period
    assert sum(n for _, n in calls) == total


@pytest.mark.parametrize("seed", range(6))
def test_first_rows_are_those_of_a_full_sort(seed):
    """The vectorised first row per (road, vehicle) against pandas' four-key stable sort, on rows
    with many ties in time and in the whole key (ties go to the earlier row)."""
    from analysis.samples import FIRST_POINT_KEY, _first_rows

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    ids = rng.integers(-(2**62), 2**62, max(n // 10, 1))
    rows = pd.DataFrame(
        {
            "road_idx": rng.integers(0, 12, n),
            "vehicle_id": ids[rng.integers(0, len(ids), n)],
            "gps_us": rng.integers(0, max(n // 4, 2), n),
            "x_m": rng.integers(0, 3, n).astype(float),
            "y_m": rng.integers(0, 2, n).astype(float),
            "speed_kmh": rng.integers(0, 3, n).astype(float),
        }
    )
    want = rows.sort_values(FIRST_POINT_KEY, kind="stable").drop_duplicates(["road_idx", "vehicle_id"])
    pd.testing.assert_frame_equal(_first_rows(rows), want.sort_index().reset_index(drop=True))


def test_gate_trips_from_months_are_those_of_every_point(store):
    """Gates classify each trip from one month's points (a trip lies in one month): the same trips,
    classes, gates and times as a classification of every point of the period read at once."""
    from analysis.gates import POINT_COLUMNS, classify_trips, evaluate_gates
    from conftest import make_test_district

    wh, net = store
    ring = [list(offset(x, y)) for x, y in ((-120, -150), (120, -150), (120, 50), (-120, 50), (-120, -150))]
    area_path = wh.parent / "area.geojson"
    area_path.write_text(
        json.dumps({"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}),
        encoding="utf-8",
    )
    district = make_test_district(
        wh.parent / "roads.geojson", area_path=area_path, periods={"before": BEFORE, "after": AFTER}
    )
    res = evaluate_gates(wh, district, {"before": BEFORE}, network=net, store=False)
    got = res.trips["before"]
    from geo.network import load_area

    con = connect(wh, read_only=True)
    try:
        pts = read_points(con, wh, net, BEFORE.start, BEFORE.end, columns=POINT_COLUMNS, on_network=False)
        want = classify_trips(
            pts.to_pandas(), trip_ends(con, wh, net, BEFORE), load_area(area_path), res.gates, net.road_ids
        )
    finally:
        con.close()
    assert len(want) > 100 and want["gate_class"].nunique() > 1
    assert pd.to_datetime(want["first_time"]).dt.month.nunique() == 3  # trips of three months
    pd.testing.assert_frame_equal(got, want)


def test_district_point_counts_from_months_are_those_of_every_point(store):
    """`etc2calm district check/new --warehouse` counts points and distinct vehicles of each street a
    month at a time: the counts of every point of the period read at once."""
    from analysis.network import district_network
    from conftest import make_test_district
    from etc2calm._district_cmd import point_counts

    wh, _ = store
    district = make_test_district(wh.parent / "roads.geojson", periods={"before": BEFORE, "after": AFTER})
    got = point_counts(wh, district)
    net = district_network(district)
    con = connect(wh, read_only=True)
    try:
        want = []
        for name, p in district.periods.items():
            pts = read_points(con, wh, net, p.start, p.end, columns=["road_idx", "vehicle_id"]).to_pandas()
            pts["road_id"] = net.road_ids[pts["road_idx"].to_numpy()]
            for role, rid in (("treated", "R1"), ("comparison", "A1")):
                on = pts[pts["road_id"] == rid]
                want.append((name, role, rid, len(on), on["vehicle_id"].nunique()))
    finally:
        con.close()
    assert got == want
    assert all(n > 0 for *_, n, _v in want)
