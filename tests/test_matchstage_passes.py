"""The match stage reads a large month in passes of whole operation dates (linear), a huge day in
vehicle buckets, and stores exactly what one pass over the month gives."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pyproj import Transformer

import analysis.matchstage as ms
from etl.schema import POINTS_SCHEMA
from tests.conftest import network, offset

TO_M = Transformer.from_crs("EPSG:4326", "EPSG:6677", always_xy=True)


def _write_store(root, rng) -> list:
    """Point files as ingest commits them (one per operation date and mesh): trips along R1 (y≈0 m),
    some of them far outside the network's box at first, and trips never near it."""
    files = []
    day0 = dt.date(2017, 9, 1)
    for day, n_trips in ((0, 6), (1, 6), (2, 30), (3, 5), (5, 4)):  # day 2 is large
        rows = []
        for trip in range(n_trips):
            vid = int(rng.integers(1, 2**62))
            kind = trip % 3
            start = dt.datetime.combine(day0 + dt.timedelta(days=day), dt.time(8)) + dt.timedelta(minutes=7 * trip)
            for k in range(8):
                if kind == 0:  # along R1
                    east, north = -180 + 45 * k, rng.normal(0, 2)
                elif kind == 1:  # from 2 km north-east down onto R1: starts outside the box
                    east, north = 150, 2000 - 280 * k
                else:  # far away: never touches the box
                    east, north = 5000 + 40 * k, 5000
                lon, lat = offset(east, north)
                rows.append((vid, trip + 1, start + dt.timedelta(seconds=5 * k), lon, lat, float(25 + k)))
        # Two points of one trip with the same GPS time: ties broken by delivered position.
        rows.append((rows[0][0], rows[0][1], rows[0][2] + dt.timedelta(seconds=5), *rows[1][3:]))
        vid, trip_no, gps, lon, lat, speed = map(list, zip(*rows, strict=True))
        x, y = TO_M.transform(np.array(lon), np.array(lat))
        n = len(rows)
        date = day0 + dt.timedelta(days=day)
        t = pa.table(
            {
                "vehicle_key": [f"{v:032x}" for v in vid],
                "vehicle_id": pa.array(vid, pa.int64()),
                "operation_date": pa.array([date] * n, pa.date32()),
                "vehicle_type": pa.array([2] * n, pa.int8()),
                "vehicle_use": pa.array([1] * n, pa.int8()),
                "gps_time": pa.array(gps, pa.timestamp("us")),
                "trip_no": pa.array(trip_no, pa.int32()),
                "lon": lon,
                "lat": lat,
                "speed_kmh": speed,
                "x_m": x,
                "y_m": y,
                "member": ["data.csv"] * n,
                "file_id": [f"f{day}"] * n,
                "line_no": pa.array(np.arange(n, 0, -1), pa.int64()),
            }
        )
        folder = root / "probe_points" / "year=2017" / "month=9" / "mesh2=533925"
        folder.mkdir(parents=True, exist_ok=True)
        f = folder / f"{date}_c_0.parquet"
        pq.write_table(t, f)
        files.append(f)
    return files


def _same(a: pa.Table, b: pa.Table) -> bool:
    """Equal tables, NaN equal to NaN (Table.equals says NaN != NaN)."""
    if a.schema != b.schema or a.num_rows != b.num_rows:
        return False
    for x, y in zip(a.columns, b.columns, strict=True):
        if pa.types.is_floating(x.type):
            if not np.array_equal(x.to_numpy(), y.to_numpy(), equal_nan=True):
                return False
        elif not x.equals(y):
            return False
    return True


def _sorted(t: pa.Table, keys) -> pa.Table:
    t = t.cast(pa.schema([pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f for f in t.schema]))
    return t.take(pc.sort_indices(t, sort_keys=[(k, "ascending") for k in keys]))


def test_passes_by_day_and_vehicle_bucket_store_the_same(tmp_path, tiny_network, monkeypatch):
    files = _write_store(tmp_path, np.random.default_rng(3))
    net = network(tiny_network)
    whole = ms.match_month(files, net)
    assert whole.n_points_read > 0 and whole.points.num_rows < whole.n_points_read  # trip context outside the box
    assert pc.sum(pc.greater_equal(whole.points.column("seg"), 0)).as_py() > 0

    monkeypatch.setattr(ms, "BUCKET_ROWS", 100)  # days of 49, 49, 241, 41 and 33 points
    plan = ms._read_plan(files)
    big = str(files[2])
    # Every file in exactly one pass, but the large day's, which is read once per vehicle bucket.
    passes_per_file = {str(f): sum(str(f) in p for p, _ in plan) for f in files}
    assert passes_per_file[big] == 3
    assert all(n == 1 for f, n in passes_per_file.items() if f != big)
    assert all(p == [big] for p, _ in plan if big in p)
    parts = ms.match_month(files, net)
    assert parts.n_points_read == whole.n_points_read
    pk, tk = ["trip_id", "seq"], ["trip_id"]
    assert _same(_sorted(parts.points, pk), _sorted(whole.points, pk))
    assert _same(_sorted(parts.trips, tk), _sorted(whole.trips, tk))
    # Ties in time are ordered by delivered position (file, member, line), whatever the pass.
    tie = _sorted(whole.points, pk).to_pandas()
    assert tie.groupby("trip_id")["gps_time"].is_monotonic_increasing.all()


def test_stored_points_are_lean_and_refer_to_the_stored_point(tmp_path, tiny_network):
    """The stored match holds POINTS_SCHEMA only; point_key is the key of the delivered point it came
    from (computed as ingest computes it for a store written without it); the reader derives the
    road columns from the segment."""
    from analysis.points import with_derived
    from etl.stage import point_keys

    files = _write_store(tmp_path, np.random.default_rng(4))
    net = network(tiny_network)
    res = ms.match_month(files, net)
    folder = tmp_path / "out" / "m"
    ms._write_month(folder, res)
    back = pq.read_table(folder / "points.parquet")
    assert back.schema.equals(POINTS_SCHEMA)
    source = pa.concat_tables([pq.read_table(f) for f in files])
    keys = pd.Series(np.arange(source.num_rows), index=point_keys(source))
    keys = keys[~keys.index.duplicated()]  # the store's one exact duplicate (the tie below) has one key
    rows = keys.loc[back.column("point_key").to_numpy()].to_numpy()
    for col in ("vehicle_id", "speed_kmh", "x_m", "y_m", "gps_time"):
        assert back.column(col).equals(source.column(col).take(pa.array(rows)).cast(back.schema.field(col).type))
    road = with_derived(back, net, ["road_idx", "road_id", "limit_kmh"])
    assert road.column("road_id").null_count == pc.sum(pc.less(back.column("seg"), 0)).as_py()
    assert set(road.column("road_id").drop_null().to_pylist()) <= {"R1", "A1"}
    ids = np.array(net.road_ids)[road.column("road_idx").to_numpy()[back.column("seg").to_numpy() >= 0]]
    assert ids.tolist() == road.column("road_id").drop_null().to_pylist()


@pytest.mark.parametrize("values", [["b", "a", None, "c", "a"], []])
def test_text_rank_orders_like_strings(values):
    plain = pa.chunked_array([pa.array(values, pa.string())])
    dic = pa.chunked_array([pa.array(values, pa.string()).dictionary_encode()])
    expected = sorted(range(len(values)), key=lambda i: (values[i] is None, values[i] or ""))
    for col in (plain, dic):
        r = ms._text_rank(col)
        assert len(r) == len(values)
        if values:
            np.testing.assert_array_equal(np.argsort(r, kind="stable"), np.asarray(expected))


def test_rerun_with_nothing_new_only_reads(tmp_path, tiny_network):
    from conftest import make_delivery
    from etl.ingest import ingest_paths

    make_delivery(tmp_path / "delivery")
    wh = tmp_path / "wh"
    ingest_paths([tmp_path / "delivery"], wh)
    net = network(tiny_network)
    first = ms.match_stage(wh, net)
    assert first.months_matched and not first.months_current
    assert set(first.timings) >= {"read", "sort_features", "match", "assemble", "write"}

    def recorded():
        con = duckdb.connect(str(wh / "warehouse.duckdb"), read_only=True)
        try:
            return (
                con.execute("SELECT * FROM matched_networks").fetchall(),
                con.execute("SELECT * FROM match_state ORDER BY year, month").fetchall(),
            )
        finally:
            con.close()

    before = recorded()
    second = ms.match_stage(wh, net)
    assert second.months_matched == [] and second.months_current == first.months_matched
    assert recorded() == before  # nothing rewritten, not even the network's row
    # Another radius is another fingerprint: everything is matched again and the old files go.
    third = ms.match_stage(wh, network(tiny_network, radius_m=15.0))
    assert third.months_matched == first.months_matched
    assert recorded()[1] != before[1]
    assert not any((wh / row[5]).exists() for row in before[1])


def _features_reference(trip, gps_us, x, y, speed):
    """Trip features written with numpy array operations (the match stage's earlier implementation)."""
    from config.settings import G_MS2, MAX_HEADING_GAP_S, MIN_HEADING_STEP_M

    n = len(trip)
    new = np.ones(n, dtype=bool)
    new[1:] = trip[1:] != trip[:-1]
    start = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    heading, decel, dt_s = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    same = ~new[1:]
    gap = (gps_us[1:] - gps_us[:-1]) / 1e6
    dx, dy = x[1:] - x[:-1], y[1:] - y[:-1]
    dt_s[1:] = np.where(same, gap, np.nan)
    ok = same & (gap <= MAX_HEADING_GAP_S) & (np.hypot(dx, dy) >= MIN_HEADING_STEP_M)
    heading[1:] = np.where(ok, np.degrees(np.arctan2(dx, dy)) % 360.0, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = (speed[:-1] - speed[1:]) / 3.6 / gap / G_MS2
    decel[1:] = np.where(same & (gap > 0), d, np.nan)
    last = np.ones(n, dtype=bool)
    last[:-1] = new[1:]
    return {
        "seq": np.arange(n) - start,
        "dt_prev_s": dt_s,
        "heading_deg": heading,
        "decel_prev_g": decel,
        "first": new,
        "last": last,
    }


def test_trip_features_equal_a_numpy_reference():
    rng = np.random.default_rng(5)
    n = 20_000
    trip = np.sort(rng.integers(0, 900, n))
    gps = np.cumsum(rng.choice([0, 1, 5, 30, 200], n) * 1_000_000) + 10**15
    x, y = np.cumsum(rng.normal(0, 20, n)), np.cumsum(rng.normal(0, 20, n))
    still = np.flatnonzero(rng.random(n) < 0.05)[1:]  # steps under the minimum: heading unknown
    x[still], y[still] = x[still - 1] + 1.0, y[still - 1]
    speed = rng.integers(0, 80, n).astype(float)
    got = ms.trip_features(trip, gps, x, y, speed)
    want = _features_reference(trip, gps, x, y, speed)
    for k, v in want.items():
        if k == "heading_deg":
            # the kernel calls libm's atan2, numpy its own SIMD arctan2 on some CPUs (AMD EPYC here):
            # the two may differ in the last bit, never more; NaN where the other is NaN
            np.testing.assert_allclose(got[k], v, rtol=1e-14, atol=1e-12, err_msg=k)
        else:
            np.testing.assert_array_equal(got[k], v, err_msg=k)
    # the same points shuffled and given with the order that sorts them back: the same features,
    # and the columns (vehicle ids too) gathered in that order
    perm = rng.permutation(n)
    order = np.argsort(perm)  # rows of the shuffled arrays in trip-then-time order
    vid = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64)
    shuffled = ms.trip_features(trip[perm], gps[perm], x[perm], y[perm], speed[perm], order, vid[perm])
    for k, v in got.items():
        np.testing.assert_array_equal(shuffled[k], v, err_msg=k)
    for k, v in {"trip": trip, "gps_us": gps, "x": x, "y": y, "speed_kmh": speed, "vehicle_id": vid}.items():
        np.testing.assert_array_equal(shuffled[k], v, err_msg=k)
    for bad in (order + 1, order - 1, np.r_[order, 0]):  # a row past either end, more rows than the columns
        with pytest.raises(ValueError, match="order must hold rows"):
            ms.trip_features(trip, gps, x, y, speed, bad)
    with pytest.raises(ValueError, match="vehicle_id has"):
        ms.trip_features(trip, gps, x, y, speed, order, vid[:-1])


@pytest.mark.parametrize("where", ["points", "trips"])
def test_a_month_whose_disk_fills_while_finishing_leaves_no_temporary_folder(
    tmp_path, tiny_network, monkeypatch, where
):
    """The disk fills when the points file is closed (its last pages flushed) or when the trips are
    written after it: the error reaches the caller, and neither the month folder nor its temporary
    folder is left (a later match must not find half a month, and the disk gets its space back)."""
    files = _write_store(tmp_path, np.random.default_rng(4))
    res = ms.match_month(files, network(tiny_network))
    assert res.points.num_rows > 0

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    if where == "points":  # the first close fails; a second one (the clean-up's) closes the file
        close, failed = pq.ParquetWriter.close, []

        def close_once(self):
            if not failed:
                failed.append(self)
                full()
            return close(self)

        monkeypatch.setattr(pq.ParquetWriter, "close", close_once)
    else:
        monkeypatch.setattr(ms, "_write_small", full)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        ms._write_month(out / "2024-01-x", res)
    assert sorted(p.name for p in out.iterdir()) == []


def test_trip_features_at_the_edges_of_the_minimum_step_and_of_north():
    """Steps within a few ulps of MIN_HEADING_STEP_M (the kernel compares a squared step first and
    calls hypot only near the minimum) and headings at north (the kernel folds negative angles
    without a float modulo; a zero of either sign gives +0.0, as `%` does): the same as the numpy
    reference, bit for bit."""
    from config.settings import MIN_HEADING_STEP_M

    step = np.array([np.nextafter(MIN_HEADING_STEP_M, 0), MIN_HEADING_STEP_M, np.nextafter(MIN_HEADING_STEP_M, 1)])
    steps = np.r_[step, step * (1 + 1e-10), step * (1 - 1e-10), 5.0, 5.0, 5.0]
    angles = np.r_[np.zeros(9), np.pi, -1e-300, 1e-300]  # along +y, +x direction; south; just off north
    dx, dy = steps * np.sin(angles), steps * np.cos(angles)
    dx[1] = -0.0  # a step due north (of the minimum length) whose dx is a negative zero
    n = len(steps)
    trip = np.repeat(np.arange(n), 2)
    x = np.zeros(2 * n)
    y = np.zeros(2 * n)
    x[1::2], y[1::2] = dx, dy
    gps = np.arange(2 * n) * 1_000_000
    speed = np.full(2 * n, 20.0)
    got = ms.trip_features(trip, gps, x, y, speed)
    want = _features_reference(trip, gps, x, y, speed)
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)
    h = got["heading_deg"][1::2]
    assert not np.signbit(h[np.isfinite(h)]).any()  # never -0.0


@pytest.mark.parametrize("seed", range(4))
def test_factorize_of_runs_equals_pandas(seed):
    """The trip codes of a pass, hashing only the first row of each run of a trip: pandas' codes and
    uniques, whatever the runs (single rows, long runs, a trip coming back after others)."""
    rng = np.random.default_rng(seed)
    for n in (0, 1, 2, 7, 1000):
        values = np.repeat(rng.integers(-5, 30, n), rng.integers(1, 5, n)).astype(np.int64)
        codes, uniques = ms._factorize_runs(values)
        want_codes, want_uniques = pd.factorize(values)
        np.testing.assert_array_equal(codes, want_codes)
        np.testing.assert_array_equal(uniques, want_uniques)
        assert codes.dtype == want_codes.dtype


def test_a_pass_reads_whole_files_without_a_filter_and_cuts_the_others(tmp_path, tiny_network, monkeypatch):
    """Files wholly inside a pass's dates (one per date, as ingest writes them) are read without a
    date filter; a file holding two dates that fall in two passes keeps the filter in each, so that
    no row is read twice or lost: the same points and trips as one pass over the month."""
    files = _write_store(tmp_path, np.random.default_rng(8))
    both = pa.concat_tables([pq.read_table(files[3]), pq.read_table(files[4])])  # days 3 and 5 in one file
    files[4].unlink()
    pq.write_table(both, files[3])
    files = files[:4]
    net = network(tiny_network)
    whole = ms.match_month(files, net)
    monkeypatch.setattr(ms, "BUCKET_ROWS", 60)  # days 0 | 1 | 2 by vehicle | 3 | 5: days 3 and 5 apart
    plan = ms._read_plan(files)
    two_days = [flt for paths, flt in plan if str(files[3]) in paths]
    assert len(two_days) == 2 and all(flt is not None for flt in two_days)
    assert [flt for paths, flt in plan if paths == [str(files[0])]] == [None]
    parts = ms.match_month(files, net)
    assert parts.n_points_read == whole.n_points_read
    pk, tk = ["trip_id", "seq"], ["trip_id"]
    assert _same(_sorted(parts.points, pk), _sorted(whole.points, pk))
    assert _same(_sorted(parts.trips, tk), _sorted(whole.trips, tk))
