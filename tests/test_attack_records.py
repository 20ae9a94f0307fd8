"""A record ends only at the line ending its file uses.

A stray CR, a lone LF inside a CRLF file, or a NUL inside a record makes that record bad: it is
quarantined whole with its record number and reason, and no part of it is stored (no cut RSU-ID,
no fragment of a 運行ID as a fake vehicle). Tried in the first, middle and last record, at the edges
of the CSV reader's blocks (etl.validate.TYPED_BLOCK_BYTES) and of the pieces a member is read in
(etl.sources.CHUNK_BYTES), on the typed and the text path. The expected verdicts come from a plain
reference split of the bytes here (records between the file's line endings), not from the code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from conftest import offset, q, style12_row
from etl import sources, validate
from etl.ingest import ingest_paths

RAW_ID = "000077776666"
STRAY = {"stray_cr": b"\r", "stray_lf": b"\n", "nul_in_record": b"\0"}


def record(i: int, vid: str | None = None) -> str:
    lon, lat = offset(i * 20, 0)
    fields = style12_row(vid or f"{500 + i:012d}", f"20170905{8 + i // 60:02d}{i % 60:02d}00", lon, lat, 30).split(",")
    fields[0] = f"RSU{i:05d}"  # a distinct RSU-ID per record: a cut one would show
    return ",".join(fields)


def payload(n: int, ending: bytes = b"\r\n") -> bytes:
    return b"".join(record(i).encode() + ending for i in range(n))


def insert(data: bytes, at: int, byte: bytes) -> bytes:
    return data[:at] + byte + data[at:]


def field_offset(data: bytes, rec: int, ending: bytes = b"\r\n", within: int = 3) -> int:
    """Byte offset `within` characters into record `rec` (0-based)."""
    starts = [0]
    i = data.find(ending)
    while i >= 0:
        starts.append(i + len(ending))
        i = data.find(ending, i + 1)
    return starts[rec] + within


def reference(data: bytes, ending: bytes = b"\r\n") -> tuple[dict[int, bytes], dict[int, str]]:
    """(whole records by number, reasons of broken records by number): records are what lies between
    the file's line endings; one holding a NUL, a CR or an LF is broken (NUL first, then CR, then LF)."""
    recs = data.split(ending)
    if recs and recs[-1] == b"":
        recs.pop()
    whole, broken = {}, {}
    for n, r in enumerate(recs, 1):
        if b"\0" in r:
            broken[n] = "nul_in_record"
        elif b"\r" in r:
            broken[n] = "stray_cr"
        elif b"\n" in r:
            broken[n] = "stray_lf"
        else:
            whole[n] = r
    return whole, broken


def ingest_bytes(tmp_path: Path, data: bytes, name: str = "OUT1-2_533925_20170905.zip"):
    d = tmp_path / "d"
    d.mkdir(exist_ok=True)
    with zipfile.ZipFile(d / name, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.csv", data)
    wh = tmp_path / "wh"
    rep = ingest_paths([d], wh)
    return wh, rep


def check(wh, rep, data: bytes, ending: bytes = b"\r\n") -> None:
    whole, broken = reference(data, ending)
    stored = q(wh, "SELECT line_no, rsu_id, vehicle_key FROM probe_points ORDER BY line_no")
    assert [r[0] for r in stored] == sorted(whole)
    assert [r[1] for r in stored] == [whole[n].split(b",")[0].decode() for n in sorted(whole)]
    assert dict(q(wh, "SELECT line_no, reason FROM quarantine")) == broken
    n_vehicles = q(wh, "SELECT count(DISTINCT vehicle_key) FROM probe_points")[0][0]
    assert n_vehicles == len({whole[n].split(b",")[3] for n in whole})  # no fragment became a vehicle
    assert rep.total("rows_read") == len(whole) + len(broken)
    assert rep.total("rows_stored") == len(whole) and rep.total("rows_quarantined") == len(broken)


@pytest.mark.parametrize("where", [0, 4, 9], ids=["first", "middle", "last"])
@pytest.mark.parametrize("reason", list(STRAY))
@pytest.mark.parametrize("path", ["typed", "text"])
def test_stray_byte_breaks_its_record_only(tmp_path, where, reason, path):
    data = payload(10)
    if path == "text":  # an x anywhere sends the payload through the text path
        data = data.replace(b"RSU00002", b"RSUx0002")
    data = insert(data, field_offset(data, where), STRAY[reason])
    wh, rep = ingest_bytes(tmp_path, data)
    check(wh, rep, data)
    assert dict(q(wh, "SELECT line_no, reason FROM quarantine")) == {where + 1: reason}


def test_cr_inside_the_rsu_id_cuts_no_record_and_makes_no_vehicle(tmp_path):
    """A CR inside the RSU-ID: the part after it has 33 fields and must not be stored as a point."""
    lines = [record(i).encode() for i in range(5)]
    lines[2] = lines[2].replace(b"RSU00002", b"RSU\r00002")
    data = b"\r\n".join(lines) + b"\r\n"
    wh, rep = ingest_bytes(tmp_path, data)
    assert q(wh, "SELECT count(*) FROM probe_points WHERE rsu_id = '00002'") == [(0,)]
    assert q(wh, "SELECT line_no, reason FROM quarantine") == [(3, "stray_cr")]
    assert [r[0] for r in q(wh, "SELECT line_no FROM probe_points ORDER BY 1")] == [1, 2, 4, 5]
    raw = q(wh, "SELECT raw_text FROM quarantine")[0][0]
    # the break is shown, every piece pseudonymised (a break may join pieces of two records)
    assert raw.count(",") == 32 and raw.count("\u240d") == 1 and "000000000502" not in raw and "RSU" not in raw


@pytest.mark.parametrize("delta", [-1, 0, 1, 2])
@pytest.mark.parametrize("reason", list(STRAY))
def test_stray_byte_at_the_edge_of_a_read_block(tmp_path, monkeypatch, delta, reason):
    block = 4096
    monkeypatch.setattr(validate, "TYPED_BLOCK_BYTES", block)
    data = payload(120)
    data = insert(data, block + delta, STRAY[reason])
    wh, rep = ingest_bytes(tmp_path, data)
    check(wh, rep, data)


@pytest.mark.parametrize("delta", [-2, -1, 0, 1])
@pytest.mark.parametrize("reason", list(STRAY))
def test_stray_byte_at_the_edge_of_a_piece_of_the_member(tmp_path, monkeypatch, delta, reason):
    """Members are read in pieces cut at the file's line ending: records keep their numbers across pieces."""
    piece = 8192
    monkeypatch.setattr(sources, "CHUNK_BYTES", piece)
    data = payload(300)
    data = insert(data, piece + delta, STRAY[reason])
    data = insert(data, 3 * piece + delta, STRAY[reason])
    wh, rep = ingest_bytes(tmp_path, data)
    check(wh, rep, data)


def test_several_broken_records_and_empty_lines(tmp_path):
    data = payload(12)
    for rec, byte in ((1, b"\0"), (5, b"\r"), (6, b"\n"), (11, b"\r")):
        data = insert(data, field_offset(data, rec, within=40), byte)
    data = data + b"\r\n" + record(12).encode() + b"\r\n"  # an empty line, then one more record
    wh, rep = ingest_bytes(tmp_path, data)
    whole, broken = reference(data)
    assert dict(q(wh, "SELECT line_no, reason FROM quarantine")) == {**broken, 13: "empty_line"}
    assert [r[0] for r in q(wh, "SELECT line_no FROM probe_points ORDER BY 1")] == sorted(set(whole) - {13})


def test_lf_file_judges_by_lf(tmp_path):
    """A file whose lines end in LF: a CR anywhere in a record breaks it (a CRLF line too)."""
    data = payload(8, b"\n")
    data = insert(data, field_offset(data, 2, b"\n"), b"\r")
    lines = data.split(b"\n")
    lines[5] += b"\r"  # one line ending in CRLF
    data = b"\n".join(lines)
    wh, rep = ingest_bytes(tmp_path, data)
    check(wh, rep, data, b"\n")
    assert dict(q(wh, "SELECT line_no, reason FROM quarantine")) == {3: "stray_cr", 6: "stray_cr"}


def test_line_ending_is_that_of_most_lines(tmp_path):
    """A stray LF in the first record does not make a CRLF file an LF file."""
    data = payload(6)
    data = insert(data, 5, b"\n")
    wh, rep = ingest_bytes(tmp_path, data)
    check(wh, rep, data)
    assert dict(q(wh, "SELECT line_no, reason FROM quarantine")) == {1: "stray_lf"}


def test_no_raw_id_from_a_broken_record_anywhere(tmp_path):
    lines = [record(i).encode() for i in range(4)]
    lines[1] = record(1, vid=RAW_ID).encode().replace(RAW_ID.encode(), b"0000\r" + RAW_ID[4:].encode())
    lines[2] = insert(record(2, vid=RAW_ID).encode(), 3, b"\0")  # aligned: the ID field whole
    lines[3] = record(3, vid=RAW_ID).encode().replace(b",2017", b"\n2017", 1)  # misaligned pieces
    data = b"\r\n".join(lines) + b"\r\n"
    wh, rep = ingest_bytes(tmp_path, data)
    assert rep.total("rows_quarantined") == 3
    for part in (RAW_ID, RAW_ID[4:]):
        for root, _, files in __import__("os").walk(wh):
            for name in files:
                assert part.encode() not in (Path(root) / name).read_bytes(), (part, name)
