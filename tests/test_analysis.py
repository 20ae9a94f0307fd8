"""Per-road before/after figures on a hand-made delivery, checked against an independent computation."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pytest

from analysis.figures import NothingMatched, analyze
from config.districts import parse_date_range
from conftest import AFTER, BEFORE, expected, make_delivery, network, offset, style12_row, write_zip
from etl.ingest import ingest_paths


def test_per_road_figures_match_independent_computation(tmp_path, tiny_network):
    truth = make_delivery(tmp_path / "delivery")
    ingest_paths([tmp_path / "delivery"], tmp_path / "wh")
    result = analyze(tmp_path / "wh", network(tiny_network, treated=("R1",)), {"before": BEFORE, "after": AFTER})
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
            assert row["share_at_or_over_limit_plus_10"] == pytest.approx((speeds >= limit + 10).mean())
            assert row["limit_kmh"] == limit
    # The treated group is R1 alone here.
    g = result.group_stats.set_index(["road_group", "period"])
    assert g.loc[("treated", "after"), "n_points"] == len(truth["after"]["R1"][0])
    assert stats.loc[("R1", "before"), "mean_kmh"] > stats.loc[("R1", "after"), "mean_kmh"] + 5


def test_results_stored_and_rerun_safe(tmp_path, tiny_network):
    make_delivery(tmp_path / "delivery")
    ingest_paths([tmp_path / "delivery"], tmp_path / "wh")
    for _ in range(2):
        analyze(tmp_path / "wh", network(tiny_network), {"before": BEFORE, "after": AFTER})
    con = duckdb.connect(str(tmp_path / "wh" / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM road_period_stats WHERE district = 't'").fetchone()[0] == 4
        # Histogram counts add back up to the points of each road and period.
        rows = con.execute(
            """SELECT h.road_id, h.period, sum(h.n_points), any_value(s.n_points)
               FROM road_speed_histogram h JOIN road_period_stats s USING (district, road_id, period)
               GROUP BY ALL"""
        ).fetchall()
        runs = con.execute("SELECT DISTINCT radius_m, fingerprint FROM analysis_runs WHERE district = 't'").fetchall()
    finally:
        con.close()
    assert len(rows) == 4 and all(r[2] == r[3] for r in rows)
    assert len(runs) == 1 and runs[0][0] == 20.0


def test_passages_are_traversals_not_points(tmp_path, tiny_network):
    """Three vehicles: one crosses R1 (400 m long) with 4 points at 40 km/h, two cross it with 1 point
    each, recorded at 20 km/h but driving 18 km/h (5 m/s: their points 300 m apart, 60 s apart, the
    ones before and after R1 matched to no road).

    Per point, 4 of 6 points are at or over 30 km/h (67 %); per passage, 1 of 3 vehicles (33 %). A
    passage's speed is its section travel speed: 40 km/h for the first (300 m between its
    first and last point in 27 s) and, for the others, R1's 400 m over the 80 s between where they
    entered and left it (interpolated from the points 100 m beyond its ends): 18 km/h. The mean of
    their spot speeds, the sensitivity indicator, is 20 km/h.
    """
    lines = []
    trips = (
        (40, (-150, -50, 50, 150), (0, 9, 18, 27)),
        (20, (-300, 0, 300), (0, 60, 120)),
        (20, (-290, 10, 310), (0, 60, 120)),
    )
    for v, (speed, xs, ts) in enumerate(trips):
        for x, t in zip(xs, ts, strict=True):
            lon, lat = offset(x, 0.5)
            stamp = f"20170905{8 + v:02d}{t // 60:02d}{t % 60:02d}"
            lines.append(style12_row(f"{400000 + v:012d}", stamp, lon, lat, speed))
    write_zip(tmp_path / "d" / "p.zip", lines)
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    r = analyze(tmp_path / "wh", network(tiny_network), {"before": BEFORE}).road_stats.set_index("road_id").loc["R1"]
    assert r["n_points"] == 6 and r["n_passages"] == 3 and r["n_vehicles"] == 3
    assert r["share_at_or_over_limit"] == pytest.approx(4 / 6)
    assert r["passage_share_at_or_over_limit"] == pytest.approx(1 / 3)
    section = np.array([300 / 27 * 3.6, 400 / 80 * 3.6, 400 / 80 * 3.6])  # 40, 18, 18 km/h
    assert r["passage_mean_kmh"] == pytest.approx(section.mean(), abs=0.1)
    assert r["passage_p85_kmh"] == pytest.approx(np.percentile(section, 85), abs=0.1)
    assert r["passage_spot_mean_kmh"] == pytest.approx((40 + 20 + 20) / 3)


def test_nothing_matched_stores_nothing(tmp_path, tiny_network):
    """Points far from every road: a clear error naming the network, and no rows of NaN stored."""
    lon, lat = offset(5000, 5000)
    write_zip(tmp_path / "d" / "far.zip", [style12_row("000000000001", "20170905080000", lon, lat, 30)])
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    with pytest.raises(NothingMatched, match="0 points matched to the 2 roads of tiny_roads.geojson"):
        analyze(tmp_path / "wh", network(tiny_network), {"before": BEFORE, "after": AFTER})
    con = duckdb.connect(str(tmp_path / "wh" / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM road_period_stats").fetchone()[0] == 0
    finally:
        con.close()


def test_parse_date_range():
    assert parse_date_range("2017-09-01..2017-09-30") == (dt.date(2017, 9, 1), dt.date(2017, 9, 30))
    for bad in ("2017-09-01", "2017-09-30..2017-09-01", "2017-13-01..2017-12-01", "a..b"):
        with pytest.raises(ValueError, match="bad date range"):
            parse_date_range(bad)
