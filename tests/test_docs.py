"""The engineers' docs: the schema page matches the code, and every example query runs and returns rows."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from analysis.comparison import compare_district
from analysis.figures import analyze_district
from config.districts import load_district
from etc2calm.docs import generate
from etl.ingest import ingest_paths
from etl.synthetic import generate_delivery

DOCS = Path(__file__).resolve().parents[1] / "docs"
QUERIES = DOCS / "queries.md"


def test_schema_page_is_generated_from_the_code():
    assert (DOCS / "warehouse.md").read_text(encoding="utf-8") == generate(), (
        "docs/warehouse.md is stale: run `make docs`"
    )


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs_wh")
    district = load_district("okurayama")
    generate_delivery(root / "delivery", districts=[district], scale=0.04, monitoring=False)
    ingest_paths([root / "delivery"], root / "wh")
    analyze_district(root / "wh", district, dict(district.periods))
    compare_district(root / "wh", district, resamples=50)
    return root / "wh"


def _blocks():
    return re.findall(r"```sql\n(.*?)```", QUERIES.read_text(encoding="utf-8"), flags=re.S)


def test_queries_page_has_the_examples():
    assert len(_blocks()) >= 8
    assert sum("FROM matched_points" in b for b in _blocks()) >= 2


@pytest.mark.parametrize("i", range(8))
def test_example_query_runs(built_warehouse, i):
    blocks = _blocks()
    if i >= len(blocks):
        pytest.fail(f"docs/queries.md has {len(blocks)} sql blocks, expected at least {i + 1}")
    con = duckdb.connect(str(built_warehouse / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(blocks[i]).fetchall()
    finally:
        con.close()
    assert rows, f"query {i + 1} returned no rows"


def test_custom_window_query_merges_histograms_exactly(built_warehouse):
    """Without the hour / day filter, the window query reproduces road_period_stats (exact figures)."""
    q = _blocks()[2].replace("AND hour IN (7, 8) AND day_type = 0", "")
    con = duckdb.connect(str(built_warehouse / "warehouse.duckdb"), read_only=True)
    try:
        via_hist = {r[0]: r for r in con.execute(q).fetchall()}
        stats = con.execute(
            """SELECT period, n_points, mean_kmh, p85_kmh, share_at_or_over_limit FROM road_period_stats
               WHERE district = 'okurayama' AND road_id = 'T1' AND n_points > 0"""
        ).fetchall()
    finally:
        con.close()
    assert stats
    for period, n, mean, p85, share in stats:
        h = via_hist[period]
        assert h[1] == n
        assert h[2] == pytest.approx(round(mean, 1), abs=0.051)
        assert h[3] == pytest.approx(round(p85, 1), abs=0.051)
        assert h[4] == pytest.approx(round(100 * share, 1), abs=0.051)


def test_matched_points_queries_equal_the_stored_figures(built_warehouse):
    """The matched_points point example reproduces road_period_stats for T1, before. The passage example
    computes the spot-speed passages it describes (the stored passage figures use the section
    travel speed, computed by the compiled kernel, not in SQL): checked against the same definition
    computed in pandas from the matched points, and its runs against the stored passage count."""
    point_q, passage_q = [b for b in _blocks() if "FROM matched_points" in b][:2]
    con = duckdb.connect(str(built_warehouse / "warehouse.duckdb"), read_only=True)
    try:
        _, n, nveh, mean, p85, share = con.execute(point_q).fetchone()
        _, n_pass, pshare, per = con.execute(passage_q).fetchone()
        stored = con.execute(
            """SELECT n_points, n_vehicles, mean_kmh, p85_kmh, share_at_or_over_limit, n_passages,
                      passage_share_at_or_over_limit FROM road_period_stats
               WHERE district = 'okurayama' AND road_id = 'T1' AND period = 'before'"""
        ).fetchone()
        pts = con.execute(
            """SELECT trip_id, seq, road_id, speed_kmh, limit_kmh, gps_time FROM matched_points
               WHERE district = 'okurayama' ORDER BY trip_id, seq"""
        ).df()
    finally:
        con.close()
    assert (n, nveh) == stored[:2] and n > 0
    assert mean == pytest.approx(stored[2], abs=5e-4) and p85 == pytest.approx(stored[3])
    assert share == pytest.approx(stored[4], abs=5e-5)
    # the spot-speed passages in pandas: a new run wherever the road changes within a trip
    road = pts["road_id"].astype(object).where(pts["road_id"].notna(), None)
    prev = road.groupby(pts["trip_id"]).shift(1)
    first_of_trip = pts["trip_id"].ne(pts["trip_id"].shift(1))
    new = first_of_trip | ~((road == prev) & road.notna() & prev.notna())
    pts["run"] = new.cumsum()
    runs = pts.groupby("run").agg(
        road_id=("road_id", "first"),
        first=("gps_time", "min"),
        limit=("limit_kmh", "first"),
        speed=("speed_kmh", "mean"),
        n=("speed_kmh", "size"),
    )
    t1 = runs[(runs["road_id"] == "T1") & (runs["first"] >= "2017-09-01") & (runs["first"] < "2017-10-01")]
    assert n_pass == len(t1) and per == pytest.approx(t1["n"].mean(), abs=5e-3)
    assert pshare == pytest.approx((t1["speed"].round(1) >= t1["limit"]).mean(), abs=5e-5)
    # every run on T1 is at least one stored passage; a stored passage has a travel speed or is left out
    assert 0.5 * n_pass < stored[5] <= 1.1 * n_pass and 0 < stored[6] < 1
