"""Ingest at full fidelity: formats, every validation rule, duplicates, replace, kill-and-resume, bad files, busy,
privacy."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from config.settings import ENV_TEST_CRASH
from conftest import ETC2CALM, offset, q, style12_row, write_zip
from etl._testhooks import STALL
from etl.ingest import ingest_paths
from etl.spec import STYLE_1_2, STYLE_1_3
from etl.synthetic import generate_bench_delivery
from etl.validate import validation_rules
from etl.warehouse import WarehouseBusy, ingest_lock, point_files

RAW_ID = "000098765432"


def row(i, t=None, vid=RAW_ID, trip=1, speed=30):
    lon, lat = offset(i * 50, 0)
    return style12_row(vid, t or f"2017090508{i:02d}00", lon, lat, speed, trip_no=trip)


# --- every validation rule of 様式1-2, generated from the spec -----------------------------------


def _bad_value(col, kind):
    if kind == "missing":
        return ""
    if kind == "bad":
        return "20171345" if col.type == "date" else "20170905xx0000"
    if kind == "not_numeric":
        return "abc"
    return str((col.low - 1) if col.low is not None else (col.high + 1))


RULES = [r for r, _, _ in validation_rules(STYLE_1_2) if r not in ("empty_line", "field_count")]


def _with_fields(line: str, **fields) -> str:
    f = line.split(",")
    for name, value in fields.items():
        f[STYLE_1_2.by_name(name).index] = value
    return ",".join(f)


# Rules on a whole record (its bytes) or on several columns (place, time): a bad line for each.
WHOLE_LINE_RULES = {
    "nul_in_record": lambda line: line[:5] + "\0" + line[5:],
    "stray_cr": lambda line: line[:5] + "\r" + line[5:],
    "stray_lf": lambda line: line[:5] + "\n" + line[5:],
    "outside_mesh": lambda line: _with_fields(line, lon="121.0", lat="21.0"),  # in the spec's ranges
    "gps_time_outside_operation_day": lambda line: _with_fields(line, gps_time="20990905080000"),
}


@pytest.mark.parametrize("reason", RULES)
def test_each_validation_rule(tmp_path, reason):
    if reason in WHOLE_LINE_RULES:
        write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", [row(1), WHOLE_LINE_RULES[reason](row(0))])
        rep = ingest_paths([tmp_path / "d"], tmp_path / "wh")
        assert rep.total("rows_stored") == 1 and rep.total("rows_quarantined") == 1
        assert q(tmp_path / "wh", "SELECT line_no, reason FROM quarantine") == [(2, reason)]
        return
    for col in STYLE_1_2.columns:
        for kind in ("missing", "bad", "not_numeric", "out_of_range"):
            name = {
                "missing": f"missing_{col.name}",
                "bad": f"bad_{col.name}",
                "not_numeric": f"{col.name}_not_numeric",
                "out_of_range": f"{col.name}_out_of_range",
            }[kind]
            if name == reason:
                fields = row(0).split(",")
                fields[col.index] = _bad_value(col, kind)
                write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", [row(1), ",".join(fields)])
                rep = ingest_paths([tmp_path / "d"], tmp_path / "wh")
                assert rep.total("rows_stored") == 1 and rep.total("rows_quarantined") == 1
                assert q(tmp_path / "wh", "SELECT line_no, reason FROM quarantine") == [(2, reason)]
                return
    pytest.fail(f"no generator for {reason}")


def test_all_33_columns_typed_and_12_digit_time(tmp_path):
    write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", [row(0, t="201709050801")])
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    types = dict(
        q(tmp_path / "wh", "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'probe_points'")
    )
    for c in STYLE_1_2.columns:
        if c.type != "id":
            assert c.name in types
    assert types["gps_time"] == "TIMESTAMP" and types["matched_lon"] == "DOUBLE" and types["vehicle_id"] == "BIGINT"
    ((t, mlon, lon),) = q(
        tmp_path / "wh", "SELECT strftime(gps_time, '%Y%m%d%H%M%S'), matched_lon, lon FROM probe_points"
    )
    assert t == "20170905080100" and mlon == pytest.approx(lon)
    documented = {
        r[0]
        for r in q(
            tmp_path / "wh", "SELECT column_name FROM column_docs WHERE table_name = 'probe_points' AND doc <> ''"
        )
    }
    assert set(types) == documented and len(documented) >= 43  # every column of the view documented


# --- 様式1-3 and 挙動履歴 ---------------------------------------------------------------------------


def test_style_1_3_with_cp932_header_joins_points(tmp_path):
    write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", [row(i, trip=2) for i in range(3)])
    header = ",".join(c.name_ja for c in STYLE_1_3.columns)
    f = [""] * 18
    f[0], f[1], f[2], f[7] = "20170905", RAW_ID, "2", "2"
    f[11], f[12], f[13], f[14], f[15] = "139.62", "35.52", "139.63", "35.53", "1234"
    write_zip(tmp_path / "d" / "OUT1-3" / "OUT1-3_20170905.zip", [header, ",".join(f)], encoding="cp932")
    # and a headerless, UTF-8, LF one recognised by content
    g = list(f)
    g[7] = "3"
    write_zip(tmp_path / "d" / "trips_plain.zip", [",".join(g)], encoding="utf-8", newline="\n")
    rep = ingest_paths([tmp_path / "d"], tmp_path / "wh")
    assert not rep.failed and rep.total("rows_read") == 5
    fmts = dict(q(tmp_path / "wh", "SELECT source_path, format FROM manifest"))
    assert sorted(fmts.values()) == ["様式1-2", "様式1-3", "様式1-3"]
    joined = q(
        tmp_path / "wh",
        """SELECT count(*), any_value(t.trip_distance) FROM probe_points p JOIN trips t
                                  USING (operation_date, vehicle_key, trip_no)""",
    )
    assert joined == [(3, 1234.0)]
    assert q(tmp_path / "wh", "SELECT line_no FROM trips ORDER BY line_no") == [(1,), (2,)]


def test_behavior_default_layout_and_rejection(tmp_path):
    f = [""] * 18
    f[1], f[2], f[6], f[7], f[8], f[9], f[14], f[15] = (
        "20170905",
        RAW_ID,
        "20170905081500",
        "139.62",
        "35.52",
        "4",
        "22",
        "-0.35",
    )
    write_zip(tmp_path / "d" / "events.zip", [",".join(f)])
    write_zip(tmp_path / "e" / "other.zip", [",".join(f[:15])])
    rep = ingest_paths([tmp_path / "d"], tmp_path / "wh", fmt="behavior")
    assert not rep.failed
    assert q(tmp_path / "wh", "SELECT speed_kmh, accel_long FROM behavior_events") == [(22.0, -0.35)]
    rep = ingest_paths([tmp_path / "e"], tmp_path / "wh", fmt="behavior")
    assert len(rep.failed) == 1
    msg = rep.failed[0].message
    assert "other.zip" in msg and "expected 18 columns" in msg and "found 15" in msg


# --- duplicates, replace, heading ---------------------------------------------------------------


def test_exact_duplicates_stored_once_and_replace(tmp_path, monkeypatch):
    import etl._ingest_commit as commit

    wrote = []  # the point files the commit rewrites (etl._ingest_duplicates.write_points)
    real = commit.write_points
    monkeypatch.setattr(commit, "write_points", lambda t, path: (wrote.append(path), real(t, path)))
    a = write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", [row(i) for i in range(5)])
    write_zip(tmp_path / "d2" / "OUT1-2_533925_20170905_again.zip", [row(i) for i in range(7)])
    r1 = ingest_paths([tmp_path / "d"], tmp_path / "wh")
    r2 = ingest_paths([tmp_path / "d2"], tmp_path / "wh")
    assert (r1.total("rows_stored"), r2.total("rows_stored"), r2.total("rows_duplicate")) == (5, 2, 5)
    assert q(tmp_path / "wh", "SELECT count(*) FROM probe_points") == [(7,)]
    # The first file changes (3 rows with other speeds): --replace swaps exactly its own rows.
    write_zip(a, [row(i, speed=50) for i in range(3)])
    r3 = ingest_paths([a], tmp_path / "wh", replace=True)
    assert r3.total("rows_stored") == 3
    speeds = q(tmp_path / "wh", "SELECT speed_kmh, count(*) FROM probe_points GROUP BY ALL ORDER BY 1")
    # File 2's rows all remain: 5, 6 and also 0-4, skipped as duplicates while file 1 held them and
    # stored again now that file 1's old version is gone (not [(30.0, 2), ...]).
    assert speeds == [(30.0, 7), (50.0, 3)]
    assert q(tmp_path / "wh", "SELECT sum(rows_stored), sum(rows_duplicate) FROM manifest WHERE status = 'ok'") == [
        (10, 0)
    ]
    assert q(tmp_path / "wh", "SELECT status, count(*) FROM manifest GROUP BY ALL ORDER BY 1") == [
        ("ok", 2),
        ("replaced", 1),
    ]
    r4 = ingest_paths([a], tmp_path / "wh", replace=True)
    assert [f.status for f in r4.files] == ["skipped"]
    assert_point_files_as_promised(tmp_path / "wh", rewritten=wrote)


def assert_point_files_as_promised(warehouse: Path, rewritten: list) -> None:
    """Every probe_points file — those the commit rewrote (duplicates returned, --replace) as well
    as those the stage wrote — LZ4 (README, Warehouse), with dictionary pages only for the
    repeating columns and the times delta-encoded (etl.stage.POINT_FILE_OPTIONS)."""
    import pyarrow.parquet as pq

    assert rewritten, "the scenario must make the commit rewrite a point file"
    files = [f for fs in point_files(warehouse).values() for f in fs]
    assert files
    for f in files:
        md = pq.ParquetFile(f).metadata
        for g in range(md.num_row_groups):
            cols = {md.row_group(g).column(c).path_in_schema: md.row_group(g).column(c) for c in range(md.num_columns)}
            assert {c.compression for c in cols.values()} == {"LZ4"}, f
            assert "RLE_DICTIONARY" in cols["vehicle_id"].encodings, f
            assert "RLE_DICTIONARY" not in cols["x_m"].encodings, f
            assert "DELTA_BINARY_PACKED" in cols["gps_time"].encodings, f


@pytest.mark.parametrize("batch_bytes", [2**31, 1])
def test_trip_across_meshes_and_files_stored_whole(tmp_path, batch_bytes):
    # One trip driving east 50 m every 60 s, its points split over two mesh ZIPs, shuffled; with
    # batch_bytes=1 each ZIP is its own commit. Headings and time gaps are no longer stored: the
    # match stage sorts each month's trips and derives them (the heading expectations of this test
    # moved there); what the ingest owes it is every point of the trip, once, with its position.
    # The trip crosses the edge of 2次メッシュ 533925 and 533926 (139.75 E): each file holds its mesh's points.
    edge = (139.75 - offset(0, 0)[0]) / (offset(1, 0)[0] - offset(0, 0)[0])  # metres east of offset's origin
    pts = [style12_row(RAW_ID, f"2017090508{i:02d}00", *offset(edge - 125 + 50 * i, 0), 30) for i in range(6)]
    write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", [pts[2], pts[0], pts[1]])
    write_zip(tmp_path / "d" / "OUT1-2_533926_20170905.zip", [pts[5], pts[3], pts[4]])
    rep = ingest_paths([tmp_path / "d"], tmp_path / "wh", batch_bytes=batch_bytes)
    assert rep.total("rows_stored") == 6
    files = point_files(tmp_path / "wh")
    assert list(files) == [(2017, 9)] and len(files[(2017, 9)]) == 2  # one file per delivered file and day
    got = q(
        tmp_path / "wh", "SELECT epoch(gps_time), x_m, y_m, vehicle_id, trip_no FROM probe_points ORDER BY gps_time"
    )
    assert [g[0] - got[0][0] for g in got] == [60 * i for i in range(6)]
    for prev, cur in zip(got, got[1:], strict=False):
        assert cur[1] - prev[1] == pytest.approx(50, rel=0.01) and cur[2] == pytest.approx(prev[2], abs=0.5)
    assert len({(g[3], g[4]) for g in got}) == 1


# --- bad files, bombs, busy, privacy --------------------------------------------------------------


def test_bad_files_reported_others_ingested(tmp_path):
    good = write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", [row(i) for i in range(4)])
    data = good.read_bytes()
    (tmp_path / "d" / "truncated.zip").write_bytes(data[: len(data) // 2])
    (tmp_path / "d" / "zero.csv").write_bytes(b"")
    (tmp_path / "d" / "wrong.csv").write_bytes(("\n".join(["a,b,c,d"] * 20) + "\n").encode())
    with zipfile.ZipFile(tmp_path / "d" / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.csv", b"0" * (20 * 1024 * 1024))
    rep = ingest_paths([tmp_path / "d"], tmp_path / "wh")
    status = {f.path.name: f.status for f in rep.files}
    assert status == {
        "OUT1-2_533925_20170905.zip": "ok",
        "truncated.zip": "failed",
        "zero.csv": "failed",
        "wrong.csv": "failed",
        "bomb.zip": "failed",
    }
    msgs = {f.path.name: f.message for f in rep.failed}
    assert "bomb" in msgs["bomb.zip"] and "empty" in msgs["zero.csv"] and "33" in msgs["wrong.csv"]
    assert all(name in m for name, m in msgs.items())
    assert q(tmp_path / "wh", "SELECT count(*) FROM manifest WHERE status = 'failed'") == [(4,)]
    assert rep.total("rows_stored") == 4


def test_second_ingest_gets_busy(tmp_path):
    write_zip(tmp_path / "d" / "a.zip", [row(0)])
    with ingest_lock(tmp_path / "wh"):
        with pytest.raises(WarehouseBusy, match="busy"):
            ingest_paths([tmp_path / "d"], tmp_path / "wh")
        proc = subprocess.run(
            [ETC2CALM, "ingest", "--warehouse", str(tmp_path / "wh"), str(tmp_path / "d")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode != 0 and "is busy" in proc.stderr and "Traceback" not in proc.stderr
    assert ingest_paths([tmp_path / "d"], tmp_path / "wh").total("rows_stored") == 1


def test_raw_id_never_in_warehouse_or_output(tmp_path):
    lines = [row(i) for i in range(3)] + [row(9, speed=999), "x," + RAW_ID, ""]
    write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", lines)
    (tmp_path / "d" / "broken.zip").write_bytes(b"PK\x03\x04" + RAW_ID.encode())
    proc = subprocess.run(
        [ETC2CALM, "ingest", "--warehouse", str(tmp_path / "wh"), str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert RAW_ID not in proc.stdout + proc.stderr
    for root, _, files in os.walk(tmp_path / "wh"):
        for name in files:
            assert RAW_ID.encode() not in Path(root, name).read_bytes(), name


# --- row conservation with faults, and kill-and-resume ------------------------------------------


def _delivery_with_faults(d: Path) -> dict:
    gen = generate_bench_delivery(d, rows=60_000, rows_per_file=5_000, bad_rate=0.002, workers=1)
    files = sorted(d.rglob("*.zip"))
    (d / "dup").mkdir()
    data = zipfile.ZipFile(files[0]).read("data.csv")  # the same records again, in another ZIP (other bytes)
    with zipfile.ZipFile(d / "dup" / "OUT1-2_533925_20170901_redelivered.zip", "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("data.csv", data)
    (d / "dup" / "OUT1-2_533925_20170902_corrupt.zip").write_bytes(files[1].read_bytes()[:300])
    gen["first"] = files[0].name
    return gen


def test_row_conservation_on_generated_delivery_with_faults(tmp_path):
    gen = _delivery_with_faults(tmp_path / "d")
    rep = ingest_paths([tmp_path / "d"], tmp_path / "wh")
    assert rep.total("rows_read") == rep.total("rows_stored") + rep.total("rows_quarantined") + rep.total(
        "rows_duplicate"
    )
    by_name = {f.path.name: f for f in rep.files}
    first = by_name[gen["first"]]
    redelivered = by_name["OUT1-2_533925_20170901_redelivered.zip"]
    # The redelivered ZIP's bad lines are quarantined again; its valid points are all duplicates.
    assert rep.total("rows_quarantined") == gen["bad_rows"] + first.rows_quarantined
    assert redelivered.rows_duplicate == first.rows_stored and redelivered.rows_stored == 0
    assert rep.total("rows_duplicate") == first.rows_stored and len(rep.failed) == 1
    assert q(tmp_path / "wh", "SELECT count(*) FROM probe_points") == [(rep.total("rows_stored"),)]
    m = q(
        tmp_path / "wh",
        "SELECT sum(rows_read), sum(rows_stored), sum(rows_quarantined), sum(rows_duplicate) FROM manifest",
    )
    assert m == [
        (rep.total("rows_read"), rep.total("rows_stored"), rep.total("rows_quarantined"), rep.total("rows_duplicate"))
    ]


def _run_cli(wh, d, env=None, **kw):
    return subprocess.Popen(
        [ETC2CALM, "ingest", "--warehouse", str(wh), str(d)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
        **kw,
    )


@pytest.mark.slow
@pytest.mark.parametrize("when", ["stage", "journal", "apply", "signal"])
def test_kill_mid_ingest_then_rerun_loses_and_doubles_nothing(tmp_path, when):
    d = tmp_path / "d"
    generate_bench_delivery(d, rows=40_000, rows_per_file=4_000, workers=1)
    ref = ingest_paths([d], tmp_path / "ref")
    expected = ref.total("rows_stored")
    env = dict(os.environ)
    if when != "signal":
        env[ENV_TEST_CRASH] = when
        p = _run_cli(tmp_path / "wh", d, env)
        p.wait(timeout=300)
        assert p.returncode != 0
    else:
        # Workers stall after staging a file (fault injection), so the SIGKILL below lands mid-ingest
        # with staged files on disk and nothing committed, on a fast idle machine as on a loaded one.
        env[ENV_TEST_CRASH] = STALL
        p = _run_cli(tmp_path / "wh", d, env)
        deadline = time.time() + 120
        while time.time() < deadline and not any((tmp_path / "wh" / "_staging").rglob("*.parquet")):
            time.sleep(0.05)
        assert p.poll() is None, "the ingest finished before it could be killed: the test proves nothing"
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=60)
        assert p.returncode == -signal.SIGKILL  # killed, not finished
    again = _run_cli(tmp_path / "wh", d)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert q(tmp_path / "wh", "SELECT count(*), count(DISTINCT (file_id, line_no)) FROM probe_points") == [
        (expected, expected)
    ]
    assert q(tmp_path / "wh", "SELECT count(*) FROM manifest WHERE status = 'ok'") == [(10,)]
    assert not (tmp_path / "wh" / "_journal.json").exists() and not (tmp_path / "wh" / "_staging").exists()


def test_progress_silent_when_not_a_terminal_and_drawn_when_asked(tmp_path, capsys):
    write_zip(tmp_path / "d" / "a.zip", [row(0)])
    write_zip(tmp_path / "d" / "b.zip", [row(1)])
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    assert capsys.readouterr().err == ""
    write_zip(tmp_path / "d" / "c.zip", [row(2)])
    ingest_paths([tmp_path / "d"], tmp_path / "wh", progress=True)
    err = capsys.readouterr().err
    assert "files 3/3" in err and "rows" in err
