"""Per-road before/after figures on a hand-made delivery, checked against an independent computation."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pytest

from conftest import offset, style12_row, write_zip
from analysis.figures import analyze
from config.districts import parse_date_range
from config.districts import Period
from etl.ingest import ingest_paths

BEFORE = Period("before", dt.date(2017, 9, 1), dt.date(2017, 9, 30))
AFTER = Period("after", dt.date(2017, 11, 1), dt.date(2017, 11, 30))


def make_delivery(root, seed=11):
    """Points on R1 (y≈0 m), on A1 (y≈100 m), far from both, and outside both periods.

    Returns the expected truth, computed here from the generated values only.
    """
    rng = np.random.default_rng(seed)
    truth = {}
    files = {}
    for label, day, mean in (("before", "20170905", 33.0), ("after", "20171110", 24.0)):
        lines = []
        r1_speed, r1_vid, a1_speed, a1_vid = [], [], [], []
        for i in range(240):
            vid = f"{rng.integers(1, 40):012d}"
            east = rng.uniform(-190, 190)
            t = f"{day}{7 + i // 60:02d}{i % 60:02d}{rng.integers(0, 60):02d}"
            kind = i % 4
            if kind in (0, 1):  # on R1, a few metres of GPS noise
                speed = int(np.clip(round(rng.normal(mean, 5)), 0, 180))
                lon, lat = offset(east, rng.normal(0, 3))
                r1_speed.append(speed), r1_vid.append(vid)
            elif kind == 2:  # on A1
                speed = int(round(rng.normal(45, 6)))
                lon, lat = offset(east, 100 + rng.normal(0, 3))
                a1_speed.append(speed), a1_vid.append(vid)
            else:  # 50 m from both roads: matched to neither (radius 20 m)
                speed = 50
                lon, lat = offset(east, 50 + rng.uniform(-5, 5))
            lines.append(style12_row(vid, t, lon, lat, speed))
        # Inside the area but a day outside the period: must not count.
        lon, lat = offset(0, 0)
        outside = "20171001120000" if label == "before" else "20171201120000"
        lines.append(style12_row("000000009999", outside, lon, lat, 99))
        files[label] = write_zip(root / f"OUT1-2_533925_{day}.zip", lines)
        truth[label] = {"R1": (np.array(r1_speed), set(r1_vid)), "A1": (np.array(a1_speed), set(a1_vid))}
    return truth


def expected(speeds, vids, limit):
    return {
        "n_points": len(speeds),
        "n_vehicles": len(vids),
        "mean_kmh": speeds.mean(),
        "p85_kmh": np.percentile(speeds, 85),  # numpy's default: linear interpolation
        "share_at_or_over_limit": (speeds >= limit).mean(),
    }


def test_per_road_figures_match_independent_computation(tmp_path, tiny_network):
    truth = make_delivery(tmp_path / "delivery")
    ingest_paths([tmp_path / "delivery"], tmp_path / "wh")
    result = analyze(tmp_path / "wh", tiny_network, {"before": BEFORE, "after": AFTER}, district_key="t", treated=("R1",))
    stats = result.road_stats.set_index(["road_id", "period"])
    for label in ("before", "after"):
        for road, limit in (("R1", 30), ("A1", 50)):
            speeds, vids = truth[label][road]
            exp = expected(speeds, vids, limit)
            row = stats.loc[(road, label)]
            assert row["n_points"] == exp["n_points"]
            assert row["n_vehicles"] == exp["n_vehicles"]
            assert row["mean_kmh"] == pytest.approx(exp["mean_kmh"])
            assert row["p85_kmh"] == pytest.approx(exp["p85_kmh"])
            assert row["share_at_or_over_limit"] == pytest.approx(exp["share_at_or_over_limit"])
            assert row["limit_kmh"] == limit
    # The treated group is R1 alone here.
    g = result.group_stats.set_index(["road_group", "period"])
    assert g.loc[("treated", "after"), "n_points"] == len(truth["after"]["R1"][0])
    assert stats.loc[("R1", "before"), "mean_kmh"] > stats.loc[("R1", "after"), "mean_kmh"] + 5


def test_results_stored_and_rerun_safe(tmp_path, tiny_network):
    make_delivery(tmp_path / "delivery")
    ingest_paths([tmp_path / "delivery"], tmp_path / "wh")
    for _ in range(2):
        analyze(tmp_path / "wh", tiny_network, {"before": BEFORE, "after": AFTER}, district_key="t")
    con = duckdb.connect(str(tmp_path / "wh" / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM road_period_stats WHERE district = 't'").fetchone()[0] == 4
        # Histogram counts add back up to the points of each road and period.
        rows = con.execute(
            """SELECT h.road_id, h.period, sum(h.n_points), any_value(s.n_points)
               FROM road_speed_histogram h JOIN road_period_stats s USING (district, road_id, period)
               GROUP BY ALL"""
        ).fetchall()
    finally:
        con.close()
    assert len(rows) == 4 and all(r[2] == r[3] for r in rows)


def test_parse_date_range():
    assert parse_date_range("2017-09-01..2017-09-30") == (dt.date(2017, 9, 1), dt.date(2017, 9, 30))
    for bad in ("2017-09-01", "2017-09-30..2017-09-01", "2017-13-01..2017-12-01", "a..b"):
        with pytest.raises(ValueError, match="bad date range"):
            parse_date_range(bad)
