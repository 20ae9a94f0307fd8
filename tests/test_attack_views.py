"""A warehouse opened with plain DuckDB after a move or a copy.

The views hold absolute paths (DuckDB resolves relative ones against the working directory, not the
database file). `etc2calm views --refresh` rewrites them for the folder the warehouse is in now, and
every writing command does it first; then the plain `duckdb` module reads the warehouse's own files.
"""

from __future__ import annotations

import shutil

import duckdb

from conftest import cli, offset, style12_row, write_zip
from etl.ingest import ingest_paths


def row(i, day="20170905"):
    lon, lat = offset(i * 50, 0)
    return style12_row(f"{900 + i:012d}", f"{day}08{i:02d}00", lon, lat, 30)


def plain(wh, query):
    """The plain duckdb module, no etc2calm in between."""
    con = duckdb.connect(str(wh / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def small_warehouse(tmp_path, name="wh"):
    wh = tmp_path / name
    write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", [row(i) for i in range(6)] + ["bad,line"])
    ingest_paths([tmp_path / "d"], wh)
    return wh


def test_moved_warehouse_refresh_then_plain_duckdb(tmp_path):
    wh = small_warehouse(tmp_path)
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(str(wh), str(moved))
    p = cli("views", "--warehouse", moved)
    assert p.returncode == 0 and "etc2calm views --refresh" in p.stdout and str(wh) in p.stdout
    p = cli("views", "--refresh", "--warehouse", moved)
    assert p.returncode == 0, p.stderr
    assert f"the views read the files under {moved}" in p.stdout
    assert plain(moved, "SELECT count(*) FROM probe_points") == [(6,)]
    assert plain(moved, "SELECT count(*) FROM quarantine") == [(1,)]
    assert plain(moved, "SELECT count(*) FROM manifest") == [(1,)]
    paths = plain(moved, "SELECT sql FROM duckdb_views() WHERE view_name = 'probe_points'")[0][0]
    assert str(moved) in paths and f"'{wh}/" not in paths


def test_copied_warehouse_refreshed_reads_its_own_files_not_the_original(tmp_path):
    wh = small_warehouse(tmp_path)
    copy = tmp_path / "server2" / "wh"
    shutil.copytree(wh, copy)
    assert cli("views", "--refresh", "--warehouse", copy).returncode == 0
    write_zip(tmp_path / "more" / "OUT1-2_533925_20170906.zip", [row(i, "20170906") for i in range(4)])
    ingest_paths([tmp_path / "more"], wh)  # the original changes
    assert plain(wh, "SELECT count(*) FROM probe_points") == [(10,)]
    assert plain(copy, "SELECT count(*) FROM probe_points") == [(6,)]
    shutil.rmtree(wh)  # and goes away
    assert plain(copy, "SELECT count(*) FROM probe_points") == [(6,)]


def test_every_writing_command_refreshes_the_views(tmp_path, tiny_network):
    wh = small_warehouse(tmp_path)
    for i, (command, extra) in enumerate(
        (
            ("ingest", [tmp_path / "d"]),  # nothing new to ingest: the views follow all the same
            (
                "analyze",
                ["--roads", tiny_network, "--before", "2017-09-01..2017-09-30", "--after", "2017-10-01..2017-10-31"],
            ),
        )
    ):
        moved = tmp_path / f"moved{i}"
        shutil.move(str(wh), str(moved))
        p = cli(command, "--warehouse", moved, *extra)
        assert p.returncode == 0, p.stderr
        assert plain(moved, "SELECT count(*) FROM probe_points") == [(6,)], command
        wh = moved
    assert plain(wh, "SELECT count(DISTINCT road_id) FROM road_period_stats")[0][0] >= 1


def test_a_copy_not_refreshed_stops_plain_duckdb_with_the_command_to_run(tmp_path):
    wh = small_warehouse(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(wh, copy)
    try:
        plain(copy, "SELECT count(*) FROM probe_points")
        raised = None
    except duckdb.Error as exc:
        raised = str(exc)
    assert raised is not None and "etc2calm views --refresh" in raised
