"""The period cube's rows as Parquet files (analysis._cube_files) behind the views link_hour_stats and
link_hour_histogram: what they hold against an independent SQL count over matched_points, and what
a re-run, a full disk, a killed run, odd names, a copy and an earlier layout do to them."""

from __future__ import annotations

import shutil

import duckdb
import pytest

import analysis._cube_files as cube_files
from analysis.figures import analyze
from conftest import AFTER, BEFORE, make_delivery, network
from etl.ingest import ingest_paths
from etl.warehouse import connect

PERIODS = {"before": BEFORE, "after": AFTER}


def rows(wh, sql, params=()):
    con = connect(wh, read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def folders(wh):
    root = wh / "figures"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def listed(wh):
    return sorted(f.split("/")[-1] for (f,) in rows(wh, "SELECT folder FROM figure_files"))


@pytest.fixture
def analysed(tmp_path, tiny_network):
    make_delivery(tmp_path / "delivery")
    wh = tmp_path / "wh"
    ingest_paths([tmp_path / "delivery"], wh)
    net = network(tiny_network, treated=("R1",), comparison=("A1",))
    analyze(wh, net, PERIODS)
    return wh, net


CELLS = """
SELECT road_id, link_id, direction, hour, day_type, vehicle_class, n_points, sum_speed_kmh,
       n_at_or_over_limit, n_at_or_over_limit_plus_10, n_vehicles
FROM link_hour_stats WHERE district = ? AND period = ? ORDER BY ALL"""
# The same cells counted by DuckDB from the matched points, as the docs define them.
CELLS_FROM_POINTS = """
SELECT road_id, link_id, direction, hour, day_type, vehicle_type, count(*), sum(speed_kmh),
       count(*) FILTER (speed_kmh >= limit_kmh), count(*) FILTER (speed_kmh >= limit_kmh + 10),
       count(DISTINCT vehicle_id)
FROM matched_points
WHERE district = ? AND CAST(gps_time AS DATE) BETWEEN ? AND ?
GROUP BY ALL ORDER BY ALL"""
HIST = """
SELECT road_id, link_id, direction, hour, day_type, vehicle_class, speed_kmh, n_points
FROM link_hour_histogram WHERE district = ? AND period = ? ORDER BY ALL"""
HIST_FROM_POINTS = """
SELECT road_id, link_id, direction, hour, day_type, vehicle_type, CAST(round(speed_kmh) AS SMALLINT), count(*)
FROM matched_points
WHERE district = ? AND CAST(gps_time AS DATE) BETWEEN ? AND ?
GROUP BY ALL ORDER BY ALL"""


def test_link_hour_views_hold_what_sql_counts_from_the_matched_points(analysed):
    wh, net = analysed
    for label, p in PERIODS.items():
        cells = rows(wh, CELLS, (net.key, label))
        assert len(cells) > 10
        assert cells == rows(wh, CELLS_FROM_POINTS, (net.key, p.start, p.end))
        hist = rows(wh, HIST, (net.key, label))
        assert hist == rows(wh, HIST_FROM_POINTS, (net.key, p.start, p.end))
        (n,) = rows(
            wh, "SELECT sum(n_points) FROM road_period_stats WHERE district = ? AND period = ?", (net.key, label)
        )
        assert sum(r[6] for r in cells) == sum(r[-1] for r in hist) == n[0]
    starts = rows(wh, "SELECT DISTINCT period, period_start, period_end FROM link_hour_histogram ORDER BY 1")
    assert starts == sorted((k, p.start, p.end) for k, p in PERIODS.items())


def test_a_rerun_replaces_the_folders_and_leaves_no_other(analysed):
    wh, net = analysed
    first = folders(wh)
    assert len(first) == 2 and first == listed(wh)
    before = rows(wh, "SELECT * FROM link_hour_histogram ORDER BY ALL")
    analyze(wh, net, PERIODS)
    assert len(folders(wh)) == 2 and folders(wh) == listed(wh) and not set(first) & set(folders(wh))
    assert rows(wh, "SELECT * FROM link_hour_histogram ORDER BY ALL") == before
    analyze(wh, net, {"before": BEFORE})  # one label again: the other period's folder stays
    assert len(folders(wh)) == 2 and folders(wh) == listed(wh)
    assert rows(wh, "SELECT * FROM link_hour_histogram ORDER BY ALL") == before


def test_a_full_disk_while_writing_leaves_the_earlier_figures_whole(analysed, monkeypatch):
    wh, net = analysed
    first, before = folders(wh), rows(wh, "SELECT * FROM link_hour_stats ORDER BY ALL")
    calls = []

    def full(self, cube):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(self, cube)

    real = cube_files.CubeFileWriter.add
    monkeypatch.setattr(cube_files.CubeFileWriter, "add", full)
    with pytest.raises(OSError, match="No space left"):
        analyze(wh, net, PERIODS)
    assert folders(wh) == first == listed(wh)
    assert rows(wh, "SELECT * FROM link_hour_stats ORDER BY ALL") == before


def test_a_killed_runs_leftovers_and_odd_entries_are_swept_without_following_links(analysed, tmp_path):
    wh, net = analysed
    first = folders(wh)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the warehouse's")
    (wh / "figures" / ("0" * 32)).mkdir()  # a killed run's half-written folder
    (wh / "figures" / ("0" * 32) / "link_hour_stats.parquet").write_bytes(b"PAR1 half")
    (wh / "figures" / "stray.txt").write_text("x")
    (wh / "figures" / "link").symlink_to(outside, target_is_directory=True)
    analyze(wh, net, {"after": AFTER})
    assert len(folders(wh)) == 2 and folders(wh) == listed(wh)
    assert len(set(first) & set(folders(wh))) == 1  # the "before" folder stays, "after" was replaced
    assert (outside / "keep.txt").read_text() == "not the warehouse's"


def test_odd_district_keys_and_period_labels_are_data_not_sql_or_paths(tmp_path, tiny_network):
    make_delivery(tmp_path / "delivery")
    wh = tmp_path / "wh"
    ingest_paths([tmp_path / "delivery"], wh)
    key = "roads:o'brien/../x"
    label = "bef'ore/../../etc; DROP TABLE figure_files; --"
    analyze(wh, network(tiny_network, key=key), {label: BEFORE})
    got = rows(wh, "SELECT DISTINCT district, period FROM link_hour_stats")
    assert got == [(key, label)]
    assert [p.parent for p in (wh / "figures").rglob("*.parquet")] == [wh / "figures" / folders(wh)[0]] * 2


def test_a_copy_reads_its_own_files_through_etc2calm_and_plain_duckdb_is_told_to_refresh(analysed, tmp_path):
    wh, _ = analysed
    before = rows(wh, "SELECT * FROM link_hour_histogram ORDER BY ALL")
    copy = tmp_path / "server2" / "wh"
    shutil.copytree(wh, copy)
    con = duckdb.connect(str(copy / "warehouse.duckdb"), read_only=True)
    try:  # the original is still there: plain DuckDB must not read its files for the copy
        with pytest.raises(duckdb.Error, match="views --refresh"):
            con.execute("SELECT count(*) FROM link_hour_stats").fetchall()
    finally:
        con.close()
    shutil.rmtree(wh)
    assert rows(copy, "SELECT * FROM link_hour_histogram ORDER BY ALL") == before


def test_a_warehouse_of_the_earlier_layout_gets_the_views_and_loses_its_tables(analysed):
    wh, net = analysed
    con = duckdb.connect(str(wh / "warehouse.duckdb"))
    for view in ("link_hour_stats", "link_hour_histogram"):  # as the tables were before (version 9)
        con.execute(f"DROP VIEW {view}")
        con.execute(f"CREATE TABLE {view} (district VARCHAR, n_points BIGINT)")
        con.execute(f"INSERT INTO {view} VALUES ('t', 7)")
    con.execute("DELETE FROM schema_version")
    con.execute("INSERT INTO schema_version VALUES (9)")
    con.close()
    con = connect(wh)
    try:
        kinds = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'link_hour%' "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE view_name LIKE 'link_hour%'"
        ).fetchall()
        assert sorted(kinds) == [("link_hour_histogram",), ("link_hour_stats",)]
        assert con.execute("SELECT count(*) FROM link_hour_stats").fetchone() == (0,)  # recomputed by analyze
    finally:
        con.close()
    analyze(wh, net, PERIODS)
    assert rows(wh, "SELECT count(*) > 0 FROM link_hour_stats") == [(True,)]
    assert len(folders(wh)) == 2 and folders(wh) == listed(wh)
