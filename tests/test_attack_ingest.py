"""Ingest and warehouse promises under attack (regression tests).

Items: 1 (--replace never loses another file's rows), 2 (nan / inf / 1e2 / hex judged alone, nan
coordinates quarantined), 3 (readers see a commit whole or not at all), 4 (a changed file needs
--replace), 5 (a copied or moved warehouse reads its own files), 11 (encrypted / unsupported ZIPs
fail like corrupt ones), 13 (quotes in paths), 14 (unreadable folders are named and counted),
and "each failed file is printed once".
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from config.settings import ENV_TEST_CRASH
from conftest import cli, offset, q, style12_row, write_zip
from etl.ingest import ingest_paths
from etl.synthetic import generate_bench_delivery
from etl.warehouse import WarehouseInconsistent, point_files

RAW_ID = "000055554444"


def sql(wh, query):
    """`etc2calm sql --csv` → rows as lists of strings (header dropped)."""
    p = cli("sql", "--warehouse", wh, "--csv", query)
    assert p.returncode == 0, p.stderr
    return [line.split(",") for line in p.stdout.splitlines()[1:]]


def row(i, speed=30, vid=RAW_ID, t=None, **kw):
    lon, lat = offset(i * 50, 0)
    return style12_row(vid, t or f"201709050{8 + i // 60}{i % 60:02d}00", lon, lat, speed, **kw)


def stored_rows(wh) -> list[tuple]:
    """The stored points as (gps_time, speed) in order: identifies which delivered rows are there."""
    return q(wh, "SELECT strftime(gps_time, '%H%M'), speed_kmh FROM probe_points ORDER BY 1, 2")


def expected_rows(indices, speed=30.0):
    return sorted((f"{8 + i // 60:02d}{i % 60:02d}", speed) for i in indices)


def manifest_counts(wh) -> dict[str, tuple]:
    rows = q(wh, "SELECT source_path, status, rows_read, rows_stored, rows_quarantined, rows_duplicate FROM manifest")
    return {(Path(r[0]).name, r[1]): r[2:] for r in rows}


def assert_conserved(wh):
    """The manifest's stored rows are exactly the rows the views show."""
    ((n,),) = q(wh, "SELECT count(*) FROM probe_points")
    ((m,),) = q(wh, "SELECT coalesce(sum(rows_stored), 0) FROM manifest WHERE status = 'ok'")
    assert n == m, f"probe_points holds {n} rows, manifest says {m} stored"


# --- 1. --replace must not lose another file's rows ----------------------------------------------


def test_replace_brings_back_duplicates_the_replaced_file_held(tmp_path):
    wh = tmp_path / "wh"
    a = write_zip(tmp_path / "d" / "a.zip", [row(i) for i in range(0, 15)])
    b = write_zip(tmp_path / "e" / "b.zip", [row(i) for i in range(10, 20)])
    ingest_paths([a], wh)
    rb = ingest_paths([b], wh)
    assert (rb.total("rows_stored"), rb.total("rows_duplicate")) == (5, 5)
    write_zip(a, [row(i) for i in range(0, 10)])
    r = ingest_paths([a], wh, replace=True)
    assert r.total("rows_stored") == 10
    assert stored_rows(wh) == expected_rows(range(20))  # B's rows 10-14 are back
    m = manifest_counts(wh)
    assert m[("b.zip", "ok")] == (10, 10, 0, 0)  # B now stores all its rows
    assert m[("a.zip", "replaced")][0] == 15 and m[("a.zip", "ok")] == (10, 10, 0, 0)
    assert_conserved(wh)
    assert [f.status for f in ingest_paths([b], wh).files] == ["skipped"]
    assert stored_rows(wh) == expected_rows(range(20))


def test_replace_chain_over_three_files_loses_nothing(tmp_path):
    wh = tmp_path / "wh"
    sets = {"a": range(0, 15), "b": range(10, 20), "c": range(12, 23)}
    paths = {k: write_zip(tmp_path / k / f"{k}.zip", [row(i) for i in v]) for k, v in sets.items()}
    for k in "abc":
        ingest_paths([paths[k]], wh)
    assert stored_rows(wh) == expected_rows(range(23))
    sets["a"] = range(0, 5)
    write_zip(paths["a"], [row(i) for i in sets["a"]])
    ingest_paths([paths["a"]], wh, replace=True)
    assert stored_rows(wh) == expected_rows(set().union(*sets.values()))
    sets["b"] = range(40, 42)
    write_zip(paths["b"], [row(i) for i in sets["b"]])
    ingest_paths([paths["b"]], wh, replace=True)
    assert stored_rows(wh) == expected_rows(set().union(*sets.values()))
    assert_conserved(wh)
    for k in "abc":
        assert manifest_counts(wh)[(f"{k}.zip", "ok")][1] + manifest_counts(wh)[(f"{k}.zip", "ok")][3] == len(sets[k])


def test_replace_with_content_identical_to_another_file(tmp_path):
    wh = tmp_path / "wh"
    a = write_zip(tmp_path / "d" / "a.zip", [row(i, speed=40) for i in range(0, 5)])
    c = write_zip(tmp_path / "e" / "c.zip", [row(i) for i in range(10, 15)])
    ingest_paths([a, c], wh)
    a.write_bytes(c.read_bytes())  # a.zip now holds exactly c.zip's bytes
    ingest_paths([a], wh, replace=True)
    assert stored_rows(wh) == expected_rows(range(10, 15))  # a's old rows are gone, c's stay once
    statuses = dict(q(wh, "SELECT status, count(*) FROM manifest GROUP BY ALL"))
    assert statuses.get("replaced") == 1
    assert_conserved(wh)


# --- 2. nan / inf / 1e2 / hex: judged the same whatever the rest of the chunk holds -----------------

TOKENS = [
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "Infinity",
    "1e400",
    "1e1",
    "1E1",
    "3e+1",
    ".5e2",
    "0x1e",
    "+30",
    "30.",
    " 30",
    "30 ",
    "3_0",
    "30.0",
]


def _verdict(tmp_path, name, lines, line_no):
    wh = tmp_path / name
    write_zip(tmp_path / f"d_{name}" / "OUT1-2_533925_20170905.zip", lines)
    ingest_paths([tmp_path / f"d_{name}"], wh)
    stored = q(wh, f"SELECT speed_kmh FROM probe_points WHERE line_no = {line_no}")
    reason = q(wh, f"SELECT reason FROM quarantine WHERE line_no = {line_no}")
    return stored, reason


@pytest.mark.parametrize("token", TOKENS)
def test_number_judged_alone_whatever_the_chunk_holds(tmp_path, token):
    good = [row(i) for i in range(4)]
    alone = _verdict(tmp_path, "alone", good + [row(5, speed=token)], 5)
    mixed = _verdict(tmp_path, "mixed", good + [row(5, speed=token), row(6, speed="abc")], 5)
    assert alone == mixed, f"{token!r}: {alone} with numeric neighbours, {mixed} beside a bad value"
    if alone[0]:
        v = alone[0][0][0]
        assert v == v and abs(v) != float("inf")  # never NaN or infinite


@pytest.mark.parametrize(
    "column, token",
    [
        ("vehicle_type", "0x2"),
        ("trip_no", "0x1"),
        ("gps_time", "hex"),
        ("operation_date", "hexdate"),
        ("vehicle_type", "2.0"),
        ("trip_no", "+1"),
    ],
)
def test_integer_and_time_columns_judged_alone(tmp_path, column, token):
    idx = {"vehicle_type": 4, "trip_no": 8, "gps_time": 6, "operation_date": 2}[column]
    if token == "hex":  # 14 characters, like a GPS時刻, and the hex value of a valid one
        token = hex(20170905080500)
        assert len(token) == 14
    if token == "hexdate":
        token = hex(2017)  # fewer characters: not a date either way
    fields = row(5).split(",")
    fields[idx] = token
    bad = ",".join(fields)
    good = [row(i) for i in range(4)]
    other = row(6).split(",")
    other[idx] = "zz"
    alone = _verdict(tmp_path, "alone", good + [bad], 5)
    mixed = _verdict(tmp_path, "mixed", good + [bad, ",".join(other)], 5)
    assert alone == mixed, f"{column}={token!r}: {alone} alone, {mixed} beside a bad value"


def test_nan_coordinates_quarantined_and_the_batch_survives(tmp_path):
    write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", [row(i) for i in range(5)])
    lines = [row(i) for i in range(10, 13)]
    for col, tok in ((14, "nan"), (15, "NaN"), (14, "inf")):
        f = row(20 + col).split(",")
        f[col] = tok
        lines.append(",".join(f))
    write_zip(tmp_path / "d" / "OUT1-2_533925_20170906.zip", lines)
    p = cli("ingest", "--warehouse", tmp_path / "wh", tmp_path / "d")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert q(tmp_path / "wh", "SELECT count(*) FROM probe_points") == [(8,)]
    reasons = sorted(r[0] for r in q(tmp_path / "wh", "SELECT reason FROM quarantine"))
    assert reasons == ["lat_not_numeric", "lon_not_numeric", "lon_not_numeric"]


# --- 3. readers never see a half-applied commit -------------------------------------------------


def _two_parts(tmp_path):
    d = tmp_path / "d"
    generate_bench_delivery(d, rows=24_000, rows_per_file=2_000, workers=1)
    files = sorted(d.rglob("*.zip"))
    first, second = tmp_path / "p1", tmp_path / "p2"
    for i, f in enumerate(files):
        dest = (first if i < 4 else second) / f.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest)
    return first, second


def _point_rows(wh) -> int | None:
    try:
        files = point_files(wh)
    except WarehouseInconsistent:
        return None
    return sum(pq.ParquetFile(f).metadata.num_rows for fs in files.values() for f in fs)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["apply"])
def test_reader_sees_before_or_after_a_killed_commit(tmp_path, when):
    first, second = _two_parts(tmp_path)
    ref = tmp_path / "ref"
    before = ingest_paths([first], ref).total("rows_stored")
    after = before + ingest_paths([second], ref).total("rows_stored")
    wh = tmp_path / "wh"
    ingest_paths([first], wh)
    p = cli("ingest", "--warehouse", wh, second, env={**os.environ, ENV_TEST_CRASH: when})
    assert p.returncode != 0
    ((n,),) = [tuple(map(int, r)) for r in sql(wh, "SELECT count(*) FROM probe_points")]
    assert n in (before, after), f"sql sees {n} points: neither {before} (before) nor {after} (after)"
    ((m,),) = [tuple(map(int, r)) for r in sql(wh, "SELECT sum(rows_stored) FROM manifest WHERE status = 'ok'")]
    assert m == n, f"manifest says {m} stored while the views show {n}"
    assert _point_rows(wh) in (None, before, after)
    p = cli("ingest", "--warehouse", wh, second)
    assert p.returncode == 0, p.stderr
    assert sql(wh, "SELECT count(*) FROM probe_points") == [[str(after)]]
    assert _point_rows(wh) == after


@pytest.mark.slow
def test_killed_right_after_a_commit_manifest_matches_the_views(tmp_path):
    """The first ingest dies just after its commit (before anything else runs): what the manifest
    says is stored is what the views show."""
    first, _ = _two_parts(tmp_path)
    wh = tmp_path / "wh"
    script = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        import etl._ingest_commit as C
        import etl.ingest as I
        wh = Path({str(wh)!r})
        orig = C._apply_journal
        def apply_then_die(*a, **k):
            pending = (wh / "_journal.json").exists()
            orig(*a, **k)
            if pending:
                os._exit(137)
        C._apply_journal = apply_then_die
        I.ingest_paths([{str(first)!r}], wh, workers=1)
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert p.returncode == 137, p.stderr
    ((n,),) = [tuple(map(int, r)) for r in sql(wh, "SELECT count(*) FROM probe_points")]
    ((m,),) = [tuple(map(int, r)) for r in sql(wh, "SELECT sum(rows_stored) FROM manifest WHERE status = 'ok'")]
    assert n == m and n > 0, f"manifest says {m} stored, probe_points shows {n}"


# --- 4. a changed file without --replace ----------------------------------------------------------


@pytest.mark.slow
def test_changed_file_without_replace_is_refused_and_named(tmp_path):
    wh = tmp_path / "wh"
    a = write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", [row(i) for i in range(5)] + [row(9, speed=999)])
    assert cli("ingest", "--warehouse", wh, a).returncode == 0
    write_zip(a, [row(i) for i in range(5)] + [row(9, speed=999), row(6), row(7)])
    p = cli("ingest", "--warehouse", wh, a)
    assert p.returncode == 1
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and a.name in lines[0] and "--replace" in lines[0], p.stderr
    assert "1 failed" in p.stdout
    assert q(wh, "SELECT count(*) FROM probe_points") == [(5,)]
    assert q(wh, "SELECT count(*) FROM quarantine") == [(1,)]
    assert cli("ingest", "--warehouse", wh, "--replace", a).returncode == 0
    assert q(wh, "SELECT count(*) FROM probe_points") == [(7,)]
    assert q(wh, "SELECT count(*) FROM quarantine") == [(1,)]


# --- 5. a copied or moved warehouse is self-contained ------------------------------------------------


def _small_warehouse(tmp_path, name="wh"):
    wh = tmp_path / name
    write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", [row(i) for i in range(6)] + ["bad,line"])
    ingest_paths([tmp_path / "d"], wh)
    return wh


def test_copied_warehouse_reads_its_own_files_when_the_original_is_deleted(tmp_path):
    wh = _small_warehouse(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(wh, copy)
    shutil.rmtree(wh)
    assert sql(copy, "SELECT count(*) FROM probe_points") == [["6"]]
    assert sql(copy, "SELECT count(*) FROM quarantine") == [["1"]]
    assert all(str(f).startswith(str(copy)) for fs in point_files(copy).values() for f in fs)
    assert _point_rows(copy) == 6


@pytest.mark.slow
def test_copied_warehouse_ignores_changes_to_the_original(tmp_path):
    wh = _small_warehouse(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(wh, copy)
    write_zip(tmp_path / "more" / "OUT1-2_533925_20170906.zip", [row(i, t=f"20170906{i:02d}0000") for i in range(4)])
    ingest_paths([tmp_path / "more"], wh)
    assert sql(wh, "SELECT count(*) FROM probe_points") == [["10"]]
    assert sql(copy, "SELECT count(*) FROM probe_points") == [["6"]]
    # A plain DuckDB connection to the copy never silently reads the original's files.
    try:
        n = q(copy, "SELECT count(*) FROM probe_points")
    except duckdb.Error:
        n = None
    assert n in (None, [(6,)])
    # Ingesting into the copy works on the copy's own files.
    ingest_paths([tmp_path / "more"], copy)
    assert sql(copy, "SELECT count(*) FROM probe_points") == [["10"]]
    assert q(copy, "SELECT count(*) FROM probe_points") == [(10,)]


def test_moved_warehouse_works(tmp_path):
    wh = _small_warehouse(tmp_path)
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(str(wh), str(moved))
    assert sql(moved, "SELECT count(*) FROM probe_points") == [["6"]]
    assert _point_rows(moved) == 6


# --- 11. encrypted ZIP, unsupported compression: failed files like corrupt ones ----------------------


def _patch_zip(path: Path, *, flag: int | None = None, method: int | None = None) -> None:
    """Set the general-purpose flag bits / compression method in the local and central headers."""
    data = bytearray(path.read_bytes())
    for sig, flag_off, method_off in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        i = data.find(sig)
        while i >= 0:
            if flag is not None:
                data[i + flag_off : i + flag_off + 2] = struct.pack("<H", flag)
            if method is not None:
                data[i + method_off : i + method_off + 2] = struct.pack("<H", method)
            i = data.find(sig, i + 4)
    path.write_bytes(bytes(data))


@pytest.mark.slow
def test_encrypted_and_unsupported_zips_fail_others_ingested(tmp_path):
    d = tmp_path / "d"
    write_zip(d / "OUT1-2_533925_20170905.zip", [row(i) for i in range(4)])
    enc = write_zip(d / "OUT1-2_533925_20170906_encrypted.zip", [row(i) for i in range(3)])
    _patch_zip(enc, flag=0x1)
    odd = write_zip(d / "OUT1-2_533925_20170907_method.zip", [row(i) for i in range(3)])
    _patch_zip(odd, method=97)
    # what Python's zipfile does with them
    with pytest.raises((RuntimeError, NotImplementedError)), zipfile.ZipFile(enc) as zf:
        zf.read("data.csv")
    p = cli("ingest", "--warehouse", tmp_path / "wh", d)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    assert enc.name in p.stderr and odd.name in p.stderr
    assert "1 ingested" in p.stdout and "2 failed" in p.stdout
    assert q(tmp_path / "wh", "SELECT count(*) FROM probe_points") == [(4,)]


# --- 13. quotes in paths ---------------------------------------------------------------------------


@pytest.mark.slow
def test_quotes_in_warehouse_and_delivery_paths(tmp_path):
    wh = tmp_path / 'it\'s a "warehouse"'
    d = tmp_path / 'deliv\'ery "x"'
    a = write_zip(d / "OUT1-2_533925_20170905.zip", [row(i) for i in range(5)] + ["bad"])
    p = cli("ingest", "--warehouse", wh, d)
    assert p.returncode == 0, p.stderr
    assert sql(wh, "SELECT count(*) FROM probe_points") == [["5"]]
    write_zip(a, [row(i) for i in range(3)])
    p = cli("ingest", "--warehouse", wh, "--replace", d)
    assert p.returncode == 0, p.stderr
    assert sql(wh, "SELECT count(*) FROM probe_points") == [["3"]]
    assert sql(wh, "SELECT count(*) FROM quarantine") == [["0"]]
    assert _point_rows(wh) == 3


# --- 14. unreadable folders are named and counted; each failure printed once ---------------------


def test_unreadable_subfolder_is_named_and_counted_failed(tmp_path, monkeypatch, capsys):
    from etc2calm.cli import main

    d = tmp_path / "d"
    write_zip(d / "ok" / "OUT1-2_533925_20170905.zip", [row(i) for i in range(3)])
    write_zip(d / "locked" / "OUT1-2_533925_20170906.zip", [row(i) for i in range(3)])
    locked = str(d / "locked")
    real_scandir = os.scandir

    def scandir(path="."):
        if not isinstance(path, int) and os.fspath(path).rstrip("/") == locked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    rc = main(["ingest", "--warehouse", str(tmp_path / "wh"), "--workers", "1", str(d)])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "locked" in err and "1 failed" in out and "1 ingested" in out


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their mode")
def test_unreadable_subfolder_cli(tmp_path):
    d = tmp_path / "d"
    write_zip(d / "ok" / "a.zip", [row(i) for i in range(3)])
    write_zip(d / "locked" / "b.zip", [row(i) for i in range(3)])
    os.chmod(d / "locked", 0)
    try:
        p = cli("ingest", "--warehouse", tmp_path / "wh", d)
    finally:
        os.chmod(d / "locked", 0o755)
    assert p.returncode == 1 and "locked" in p.stderr and "1 failed" in p.stdout


@pytest.mark.slow
def test_each_failed_file_is_printed_once(tmp_path):
    d = tmp_path / "d"
    write_zip(d / "OUT1-2_533925_20170905.zip", [row(i) for i in range(3)])
    (d / "broken_one.zip").write_bytes(b"PK\x03\x04 not a zip at all")
    p = cli("ingest", "--warehouse", tmp_path / "wh", d)
    assert p.returncode == 1
    assert p.stderr.count("broken_one.zip") == 1, p.stderr


# --- 3, the class: a kill at every step of a commit, adding or replacing --------------------------

CRASH_POINTS = ["journal", "apply", "renamed", "db", "snapshot", "deletes"]


def _state(wh) -> tuple[int, int, int | None]:
    """(points the views show, rows the manifest says are stored, rows in the files point_files lists)."""
    ((n,),) = [tuple(map(int, r)) for r in sql(wh, "SELECT count(*) FROM probe_points")]
    ((m,),) = [
        tuple(map(int, r or ["0"]))
        for r in sql(wh, "SELECT coalesce(sum(rows_stored), 0) FROM manifest WHERE status = 'ok'")
    ]
    return n, m, _point_rows(wh)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["add", "replace"])
@pytest.mark.parametrize("when", CRASH_POINTS)
def test_kill_at_every_step_of_a_commit(tmp_path, scenario, when):
    wh = tmp_path / "wh"
    a = write_zip(tmp_path / "a" / "OUT1-2_533925_20170905.zip", [row(i) for i in range(0, 15)])
    b = write_zip(tmp_path / "b" / "OUT1-2_533925_20170905_b.zip", [row(i) for i in range(10, 20)])
    ingest_paths([a], wh)
    ingest_paths([b], wh)
    before = 20
    if scenario == "add":
        c = write_zip(
            tmp_path / "c" / "OUT1-2_533925_20170906.zip", [row(i, t=f"20170906{i:02d}0000") for i in range(6)]
        )
        args, after = [c], 26
    else:
        write_zip(a, [row(i) for i in range(0, 5)] + [row(i) for i in range(30, 33)])
        args, after = ["--replace", a], 18  # a: 0-4, 30-32; b: 10-19, its 10-14 back from point_duplicates
    p = cli("ingest", "--warehouse", wh, *args, env={**os.environ, ENV_TEST_CRASH: when})
    n, m, files = _state(wh)
    assert n in (before, after) and m == n, f"kill at {when}: views {n}, manifest {m} (before {before}, after {after})"
    assert files in (before, after), f"kill at {when}: point_files lists {files} rows"
    if p.returncode == 0:  # this step does not occur in this commit (no files to delete)
        assert n == after
    p = cli("ingest", "--warehouse", wh, *args)
    assert p.returncode == 0, p.stderr
    assert _state(wh) == (after, after, after)
    assert not (wh / "_journal.json").exists() and not (wh / "_staging").exists()
    leftovers = {f.relative_to(wh).as_posix() for f in wh.rglob("*.parquet")}
    listed = {r[0] for r in sql(wh, "SELECT path FROM store_files")}
    assert leftovers == listed  # no orphan file, none missing


# --- 5, the class: views of a copy are the copy's, also for other readers and for the matched views ----


def test_point_files_and_views_agree_after_a_move_and_a_new_commit(tmp_path):
    wh = _small_warehouse(tmp_path)
    moved = tmp_path / "moved"
    shutil.move(str(wh), str(moved))
    write_zip(tmp_path / "more" / "OUT1-2_533925_20170906.zip", [row(i, t=f"20170906{i:02d}0000") for i in range(4)])
    ingest_paths([tmp_path / "more"], moved)
    assert _point_rows(moved) == 10
    assert q(moved, "SELECT count(*) FROM probe_points") == [(10,)]
    assert all(str(f).startswith(str(moved)) for fs in point_files(moved).values() for f in fs)


# --- 11/14, the class: nothing under the given paths is skipped or crashes the run ----------------


@pytest.mark.slow
def test_broken_link_and_unreadable_member_named_and_counted(tmp_path):
    d = tmp_path / "d"
    write_zip(d / "OUT1-2_533925_20170905.zip", [row(i) for i in range(3)])
    (d / "OUT1-2_533925_20170906.zip").symlink_to(tmp_path / "nowhere.zip")
    gz = d / "OUT1-2_533925_20170907.csv.gz"
    import gzip

    gz.write_bytes(gzip.compress(("\r\n".join(row(i) for i in range(3)) + "\r\n").encode())[:-8] + b"\0" * 8)  # bad CRC
    p = cli("ingest", "--warehouse", tmp_path / "wh", d)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "20170906" in p.stderr and "20170907" in p.stderr
    assert "1 ingested" in p.stdout and "2 failed" in p.stdout


def test_warehouse_path_that_is_a_file_is_one_line(tmp_path):
    f = tmp_path / "not_a_folder"
    f.write_text("x")
    write_zip(tmp_path / "d" / "a.zip", [row(0)])
    for args in (["ingest", "--warehouse", f, tmp_path / "d"], ["sql", "--warehouse", f, "SELECT 1"]):
        p = cli(*args)
        lines = [line for line in p.stderr.splitlines() if line.strip()]
        assert p.returncode == 2 and len(lines) == 1 and "not a warehouse folder" in lines[0], p.stderr


def test_duplicate_check_in_buckets_for_very_large_days(tmp_path, monkeypatch):
    """A day larger than the keys held at once is checked bucket by bucket: same result."""
    import etl._ingest_duplicates as D

    monkeypatch.setattr(D, "BUCKET_KEYS", 7)
    a = write_zip(tmp_path / "a" / "OUT1-2_533925_20170905.zip", [row(i) for i in range(0, 15)] + [row(3)])
    b = write_zip(tmp_path / "b" / "OUT1-2_533925_20170905_b.zip", [row(i) for i in range(10, 20)])
    r = ingest_paths([a, b], tmp_path / "wh")
    assert (r.total("rows_stored"), r.total("rows_duplicate")) == (20, 6)
    write_zip(a, [row(i) for i in range(0, 5)])
    ingest_paths([a], tmp_path / "wh", replace=True)
    assert stored_rows(tmp_path / "wh") == expected_rows([*range(5), *range(10, 20)])  # b's 10-14 back
    assert_conserved(tmp_path / "wh")
