"""Ingest: rows conserved, bad rows quarantined with reasons, re-ingest adds nothing, IDs pseudonymised."""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from conftest import offset, q, style12_row, write_zip
from etl.ingest import ingest_paths
from etl.pseudonymise import load_id_key
from etl.spec import STYLE_1_2
from etl.validate import read_payload

RAW_ID = "000012345678"


def _good(i: int, speed=30, vid=RAW_ID, t="20170905080000"):
    lon, lat = offset(i * 10, 0)
    return style12_row(vid, t, lon, lat, speed)


def test_bad_rows_are_quarantined_and_rows_conserved(tmp_path):
    lon, lat = offset(0, 0)
    lines = [
        _good(0),  # 1 ok
        style12_row(RAW_ID, "201709050801", lon, lat, 25),  # 2 ok: 12-digit GPS time, padded with 00
        style12_row(RAW_ID, "20170905080200", lon, 0.0, 25),  # 3 latitude outside Japan
        style12_row(RAW_ID, "20170905080300", lon, lat, 255),  # 4 speed over 180
        style12_row(RAW_ID, "20170905080400", lon, lat, -1),  # 5 negative speed
        style12_row(RAW_ID, "2017090508xx00", lon, lat, 20),  # 6 malformed GPS time
        style12_row(RAW_ID, "20171305080000", lon, lat, 20),  # 7 month 13
        "RSU0001,x,20170905," + RAW_ID + ",2,1",  # 8 too few fields
        "",  # 9 empty line
        style12_row(RAW_ID, "20170905080500", lon, lat, "abc"),  # 10 speed not numeric
        style12_row("", "20170905080600", lon, lat, 20),  # 11 no operation ID
        _good(3, speed=40),  # 12 ok
    ]
    write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", lines)
    report = ingest_paths([tmp_path / "d"], tmp_path / "wh")
    assert report.total("rows_read") == 12
    assert report.total("rows_stored") == 3
    assert report.total("rows_quarantined") == 9
    wh = tmp_path / "wh"
    reasons = dict(q(wh, "SELECT line_no, reason FROM quarantine ORDER BY line_no"))
    assert reasons == {
        3: "lat_out_of_range",
        4: "speed_kmh_out_of_range",
        5: "speed_kmh_out_of_range",
        6: "bad_gps_time",
        7: "bad_gps_time",
        8: "field_count",
        9: "empty_line",
        10: "speed_kmh_not_numeric",
        11: "missing_operation_id",
    }
    stored = q(wh, "SELECT line_no, gps_time, speed_kmh FROM probe_points ORDER BY line_no")
    assert [(r[0], r[1].strftime("%Y%m%d%H%M%S"), r[2]) for r in stored] == [
        (1, "20170905080000", 30.0),
        (2, "20170905080100", 25.0),
        (12, "20170905080000", 40.0),
    ]
    manifest = q(wh, "SELECT rows_read, rows_stored, rows_quarantined, status FROM manifest")
    assert manifest == [(12, 3, 9, "ok")]


def test_reingest_adds_nothing_and_copies_are_recognised(tmp_path):
    z = write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", [_good(i) for i in range(5)])
    r1 = ingest_paths([z], tmp_path / "wh")
    assert r1.total("rows_stored") == 5
    r2 = ingest_paths([tmp_path / "d"], tmp_path / "wh")
    assert [f.status for f in r2.files] == ["skipped"] and r2.total("rows_stored") == 0
    # The same bytes under another name are the same delivery.
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "renamed.zip").write_bytes(z.read_bytes())
    r3 = ingest_paths([tmp_path / "copy"], tmp_path / "wh")
    assert [f.status for f in r3.files] == ["skipped"]
    assert q(tmp_path / "wh", "SELECT count(*) FROM probe_points") == [(5,)]
    assert q(tmp_path / "wh", "SELECT count(*) FROM manifest") == [(1,)]


def test_raw_operation_id_never_stored(tmp_path):
    lines = [_good(i) for i in range(3)] + [style12_row(RAW_ID, "20170905080000", 0.0, 0.0, 10), "x," + RAW_ID]
    write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", lines)
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    for root, _, files in os.walk(tmp_path / "wh"):
        for name in files:
            data = Path(root, name).read_bytes()
            assert RAW_ID.encode() not in data, f"raw 運行ID found in {name}"
    keys = q(tmp_path / "wh", "SELECT DISTINCT vehicle_key FROM probe_points")
    assert len(keys) == 1 and len(keys[0][0]) == 32
    raw = q(tmp_path / "wh", "SELECT raw_text FROM quarantine ORDER BY line_no")
    assert all(RAW_ID not in r[0] for r in raw)
    assert keys[0][0] in raw[0][0]  # the pseudonym takes the ID's place in the kept raw text


def test_pseudonym_depends_on_key(tmp_path, monkeypatch):
    write_zip(tmp_path / "d" / "a.zip", [_good(0)])
    ingest_paths([tmp_path / "d"], tmp_path / "wh1")
    monkeypatch.setenv("ETC2CALM_ID_KEY", "another-key-of-16-bytes-or-more")  # keys under 16 bytes are refused
    ingest_paths([tmp_path / "d"], tmp_path / "wh2")
    k1 = q(tmp_path / "wh1", "SELECT vehicle_key FROM probe_points")
    k2 = q(tmp_path / "wh2", "SELECT vehicle_key FROM probe_points")
    assert k1 != k2


def test_key_file_created_private(tmp_path, monkeypatch):
    monkeypatch.delenv("ETC2CALM_ID_KEY")
    key = load_id_key()
    path = tmp_path / "config" / "etc2calm" / "id_key"
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_id_key() == key and len(key) == 64


def test_unreadable_file_fails_but_others_ingested(tmp_path):
    write_zip(tmp_path / "d" / "good.zip", [_good(i) for i in range(4)])
    (tmp_path / "d" / "broken.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    (tmp_path / "d" / "empty.zip").write_bytes(b"")
    report = ingest_paths([tmp_path / "d"], tmp_path / "wh")
    status = {f.path.name: f.status for f in report.files}
    assert status == {"good.zip": "ok", "broken.zip": "failed", "empty.zip": "failed"}
    assert report.total("rows_stored") == 4
    assert all(f.path.name in f.message for f in report.failed)
    failed = q(tmp_path / "wh", "SELECT count(*) FROM manifest WHERE status = 'failed'")
    assert failed == [(2,)]


def test_plain_and_gzip_csv_utf8_lf(tmp_path):
    lines = [_good(i) for i in range(3)]
    d = tmp_path / "d" / "sub"
    d.mkdir(parents=True)
    (d / "a.csv").write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    with gzip.open(d / "b.csv.gz", "wb") as fh:
        fh.write(("\n".join(lines[:2])).encode("utf-8"))  # no final newline
    report = ingest_paths([tmp_path / "d"], tmp_path / "wh")
    # b.csv.gz repeats a.csv's first two records exactly: stored once, counted as duplicates.
    assert report.total("rows_read") == 5 and report.total("rows_quarantined") == 0
    assert report.total("rows_stored") == 3 and report.total("rows_duplicate") == 2


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        ingest_paths([tmp_path / "nope"], tmp_path / "wh")


def test_read_payload_line_numbers_with_bad_lines_between():
    good = [_good(i) for i in range(4)]
    data = "\r\n".join([good[0], "bad", good[1], "", good[2], "a,b", good[3]]).encode("cp932")
    rows, line_no, rejects, _ = read_payload(data, STYLE_1_2)
    assert rows.num_rows == 4 and list(line_no) == [1, 3, 5, 7]
    assert rejects.column("line_no").to_pylist() == [2, 4, 6]
    assert rejects.column("reason").to_pylist() == ["field_count", "empty_line", "field_count"]


def test_staging_tasks_cover_every_file_once_largest_first_and_fine_grained(tmp_path):
    """The pool's tasks: each file exactly once; largest files first (a batch ends on small tasks);
    equal files give at least TASKS_PER_WORKER tasks per worker; tiny files are grouped."""
    from etl._ingest_workers import TASKS_PER_WORKER, staging_tasks

    sizes = [5_000, 300, 90_000, 300, 12_000, 7] + [1_000] * 40
    files = []
    for i, s in enumerate(sizes):
        f = tmp_path / f"f{i:03d}.zip"
        f.write_bytes(b"x" * s)
        files.append(f)
    tasks = staging_tasks(files, 2)
    flat = [p for t in tasks for p in t]
    assert sorted(flat) == sorted(str(f) for f in files) and len(flat) == len(set(flat))
    order = [os.path.getsize(p) for p in flat]
    assert order == sorted(order, reverse=True)
    assert tasks[0] == [str(files[2])]  # the largest alone, first
    equal = files[6:]
    assert len(staging_tasks(equal, 1)) == len(equal)  # 40 ≤ 1 × TASKS_PER_WORKER: one file per task
    many = [tmp_path / f"g{i:04d}.csv" for i in range(4 * 2 * TASKS_PER_WORKER)]
    for f in many:
        f.write_bytes(b"y" * 100)
    grouped = staging_tasks(many, 2)
    assert 2 * TASKS_PER_WORKER <= len(grouped) < len(many)


@pytest.mark.parametrize("long_line", [False, True])
def test_payload_read_in_small_csv_blocks_equals_one_block(monkeypatch, long_line):
    """The fast path reads in small CSV blocks: rows, line numbers, verdicts and quarantine are those
    of a single-block read, with bad lines on and around block boundaries; a line longer than a
    block (the payload then takes the text path) changes nothing either."""
    import etl.validate as validate
    from etl.pseudonymise import PseudonymMemo
    from etl.stage import process_payload

    lines = [
        style12_row(
            f"{1000 + i % 97:012d}",
            f"20170905{8 + i // 3600 % 10:02d}{i // 60 % 60:02d}{i % 60:02d}",
            139.6 + i * 1e-6,
            35.5 + i * 1e-6,
            i % 70,
        )
        for i in range(3000)
    ]
    for i in range(0, 3000, 217):
        lines[i] = lines[i].rsplit(",", 1)[0]  # 32 fields
    for i in range(101, 3000, 331):
        f = lines[i].split(",")
        f[18] = "999"  # speed out of range
        lines[i] = ",".join(f)
    if long_line:
        lines[1500] = ",".join(["9" * 40_000] * 3)  # > one 32 KB block, wrong field count
    data = ("\r\n".join(lines) + "\r\n").encode("ascii")
    key = b"a-test-key-of-thirty-two-bytes!!"

    text_path = []
    read_payload = validate.read_payload
    monkeypatch.setattr(validate, "read_payload", lambda *a, **k: text_path.append(1) or read_payload(*a, **k))

    def run(block: int):
        monkeypatch.setattr(validate, "TYPED_BLOCK_BYTES", block)
        good, quarantine, n, header = process_payload(data, key, memo=PseudonymMemo())
        return good, quarantine, n, header

    small = run(1 << 15)
    assert len(text_path) == long_line  # a line longer than a block: the text path
    big = run(1 << 26)
    assert len(text_path) == long_line
    assert len(data) > 10 * (1 << 15)
    assert small[2:] == big[2:] == (3000, 0)
    assert small[0].num_rows == big[0].num_rows and small[0].num_rows + small[1].num_rows == 3000
    for name in big[0].column_names:
        a, b = small[0].column(name), big[0].column(name)
        if pa.types.is_dictionary(b.type):
            a, b = a.cast(b.type.value_type), b.cast(b.type.value_type)
        assert a.to_pylist() == b.to_pylist(), name
    assert small[1].select(["line_no", "reason"]).to_pylist() == big[1].select(["line_no", "reason"]).to_pylist()
    bad = sorted(set(range(1, 3001, 217)) | set(range(102, 3001, 331)) | ({1501} if long_line else set()))
    assert small[1].column("line_no").to_pylist() == bad


def test_commit_remakes_only_changed_views_and_every_view_keeps_its_docs(tmp_path, monkeypatch):
    """A commit re-creates the views whose files changed (and any view that went missing); every
    view of the warehouse still carries its column comments and reads exactly the committed files."""
    import etl.warehouse as warehouse

    remade: list[set] = []
    record = warehouse._ViewDefiner.record
    monkeypatch.setattr(warehouse._ViewDefiner, "record", lambda self: remade.append(set(self.made)) or record(self))
    wh = tmp_path / "wh"
    write_zip(tmp_path / "a" / "OUT1-2_533925_20170905.zip", [_good(i) for i in range(3)])
    ingest_paths([tmp_path / "a"], wh)

    def state():
        views = dict(q(wh, "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal AND NOT temporary"))
        undocumented = q(
            wh,
            "SELECT table_name, column_name FROM duckdb_columns() WHERE table_name IN "
            "(SELECT view_name FROM duckdb_views() WHERE NOT internal) AND (comment IS NULL OR comment = '')",
        )
        return views, undocumented

    before, undocumented = state()
    assert {"probe_points", "quarantine", "trips", "matched_points"} <= set(before) and undocumented == []
    write_zip(
        tmp_path / "b" / "OUT1-2_533925_20170906.zip", [_good(i, t="20170906080000") for i in range(4)] + ["RSU0001,x"]
    )
    con = duckdb.connect(str(wh / "warehouse.duckdb"))
    con.execute("DROP VIEW trips")  # a careless user; the next commit brings it back
    con.close()
    remade.clear()
    ingest_paths([tmp_path / "b"], wh)
    assert remade == [{"probe_points", "quarantine", "trips"}]  # the commit's; matched views and the rest kept
    after, undocumented = state()
    assert undocumented == [] and set(after) == set(before)
    assert after["probe_points"] != before["probe_points"] and after["quarantine"] != before["quarantine"]
    assert after["matched_points"] == before["matched_points"]  # untouched by an ingest
    assert q(wh, "SELECT count(*) FROM probe_points") == [(7,)]
    assert q(wh, "SELECT count(*) FROM quarantine") == [(1,)]
    assert q(wh, "SELECT count(*) FROM trips") == [(0,)]
