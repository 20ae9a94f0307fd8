"""A ZIP member that is not data is never read as rows.

Only members that look like a delivered format are read, judged by name (`data.csv`, the delivered
name, is data whatever its lines hold; __MACOSX/, ._ files and anything but .csv / .txt are not) and
otherwise by their first lines (field count, header). Every other member (a README, macOS metadata,
an empty member) is named once in the output and recorded in `skipped_members` with its file, name
and reason; it never becomes quarantined rows. Two data members of one ZIP are both read, each with
its own line numbers.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from conftest import cli, offset, q, style12_row

README = "合成データ (synthetic data)\r\nこのファイルは説明です。This file explains the delivery.\r\n"


def rec(i: int, day: str = "20170905") -> str:
    lon, lat = offset(i * 20, 0)
    return style12_row(f"{700 + i:012d}", f"{day}08{i:02d}00", lon, lat, 30)


def csv_bytes(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("cp932")


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            if name.endswith("/"):
                zf.mkdir(name)
            else:
                zf.writestr(name, data)
    return path


def skipped(wh) -> list[tuple[str, str]]:
    return q(wh, "SELECT member, reason FROM skipped_members ORDER BY member")


def test_readme_member_is_skipped_named_once_and_recorded(tmp_path):
    """The reported case: data.csv and a README.txt whose two lines were quarantined as bad rows."""
    z = make_zip(
        tmp_path / "d" / "OUT1-2_533925_20170905.zip",
        {"data.csv": csv_bytes([rec(i) for i in range(4)]), "README.txt": README.encode("cp932")},
    )
    wh = tmp_path / "wh"
    p = cli("ingest", "--warehouse", wh, tmp_path / "d")
    assert p.returncode == 0, p.stderr
    out = p.stdout + p.stderr
    assert out.count("README.txt") == 1 and z.name in out
    assert "rows read 4 = stored 4 + quarantined 0" in p.stdout
    assert "1 ZIP member(s) not data, skipped" in p.stdout
    assert q(wh, "SELECT count(*) FROM quarantine") == [(0,)]
    ((fid, src, member, reason),) = q(wh, "SELECT file_id, source_path, member, reason FROM skipped_members")
    assert (member, src) == ("README.txt", str(z.resolve())) and "not delivered data" in reason
    assert q(wh, "SELECT file_id, rows_read FROM manifest") == [(fid, 4)]
    again = cli("ingest", "--warehouse", wh, tmp_path / "d")  # already ingested: not named again
    assert again.returncode == 0 and "README.txt" not in again.stdout + again.stderr
    assert q(wh, "SELECT count(*) FROM skipped_members") == [(1,)]


def test_macosx_entries_are_skipped(tmp_path):
    appledouble = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02" + b"\x00" * 40
    make_zip(
        tmp_path / "d" / "OUT1-2_533925_20170905.zip",
        {
            "data.csv": csv_bytes([rec(i) for i in range(3)]),
            "__MACOSX/": b"",
            "__MACOSX/._data.csv": appledouble,
            "._data.csv": appledouble,
        },
    )
    wh = tmp_path / "wh"
    p = cli("ingest", "--warehouse", wh, tmp_path / "d")
    assert p.returncode == 0, p.stderr
    assert q(wh, "SELECT count(*) FROM probe_points") == [(3,)] and q(wh, "SELECT count(*) FROM quarantine") == [(0,)]
    got = skipped(wh)
    assert [m for m, _ in got] == ["._data.csv", "__MACOSX/._data.csv"]
    assert all("macOS metadata" in r for _, r in got)


def test_empty_member_is_skipped_and_a_zip_of_no_data_fails(tmp_path):
    make_zip(
        tmp_path / "d" / "OUT1-2_533925_20170905.zip",
        {"data.csv": csv_bytes([rec(i) for i in range(3)]), "extra.csv": b"", "blank.csv": b"\r\n"},
    )
    only_empty = make_zip(tmp_path / "e" / "OUT1-2_533925_20170906.zip", {"data.csv": b""})
    wh = tmp_path / "wh"
    p = cli("ingest", "--warehouse", wh, tmp_path / "d", tmp_path / "e")
    assert p.returncode == 1  # the ZIP holding nothing but an empty member fails, named
    assert skipped(wh) == [("blank.csv", "empty (no rows)"), ("extra.csv", "empty (no rows)")]
    assert q(wh, "SELECT count(*) FROM probe_points") == [(3,)] and q(wh, "SELECT count(*) FROM quarantine") == [(0,)]
    failed = [line for line in p.stderr.splitlines() if "failed" in line]
    assert len(failed) == 1 and only_empty.name in failed[0] and "'data.csv': empty (no rows)" in failed[0]
    assert q(wh, "SELECT status FROM manifest WHERE source_path LIKE '%20170906%'") == [("failed",)]


def test_two_data_members_are_both_read_with_their_own_lines(tmp_path):
    a = [rec(i) for i in range(3)]
    b = [rec(10 + i, "20170906") for i in range(4)]
    b[2] = b[2].rsplit(",", 1)[0]  # 32 fields
    make_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", {"a.csv": csv_bytes(a), "sub/b.csv": csv_bytes(b)})
    wh = tmp_path / "wh"
    assert cli("ingest", "--warehouse", wh, tmp_path / "d").returncode == 0
    assert q(wh, "SELECT member, line_no FROM probe_points ORDER BY member, line_no") == [
        ("a.csv", 1),
        ("a.csv", 2),
        ("a.csv", 3),
        ("sub/b.csv", 1),
        ("sub/b.csv", 2),
        ("sub/b.csv", 4),
    ]
    assert q(wh, "SELECT member, line_no, reason FROM quarantine") == [("sub/b.csv", 3, "field_count")]
    assert skipped(wh) == []


def test_member_judged_by_its_first_lines(tmp_path):
    """A member whose first line is damaged is still data when one of its first lines has the layout
    (that line is quarantined), and data.csv, the delivered name, always is; a CSV of another shape, an
    image and a note are not read."""
    first_bad = [rec(i) for i in range(5)]
    first_bad[0] = first_bad[0][:40]
    other = [rec(10 + i) for i in range(3)]
    other[0] = other[0][:30]
    make_zip(
        tmp_path / "d" / "OUT1-2_533925_20170905.zip",
        {
            "data.csv": csv_bytes(first_bad),
            "part2.csv": csv_bytes(other),
            "data2.csv": csv_bytes(["a,b", "c,d"]),
            "codes.csv": csv_bytes(["code,name,kind", "1,大型,truck", "2,普通,car"]),
            "map.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 20,
            "notes.txt": "納品物の説明\r\n".encode("cp932"),
        },
    )
    wh = tmp_path / "wh"
    p = cli("ingest", "--warehouse", wh, tmp_path / "d")
    assert p.returncode == 0, p.stderr
    assert q(wh, "SELECT member, line_no, reason FROM quarantine ORDER BY 1") == [
        ("data.csv", 1, "field_count"),
        ("part2.csv", 1, "field_count"),
    ]
    assert q(wh, "SELECT count(*) FROM probe_points") == [(6,)]
    got = dict(skipped(wh))
    assert set(got) == {"codes.csv", "data2.csv", "map.png", "notes.txt"}
    assert "[3] field(s)" in got["codes.csv"] and "様式1-2 33" in got["codes.csv"]
    assert got["map.png"] == "not a .csv or .txt member"
    for member in got:
        assert (p.stdout + p.stderr).count(member) == 1


def test_style_1_3_member_with_a_header_is_data(tmp_path):
    header = "運行日,運行ID,トリップ数" + ",x" * 15
    row = "20170905,000000000777,1,,,,,1,20170905080000,20170905090000,,139.62,35.52,139.63,35.53,1200,,"
    make_zip(
        tmp_path / "d" / "OUT1-3_20170905.zip",
        {"data.csv": csv_bytes([header, row]), "README.txt": README.encode("cp932")},
    )
    wh = tmp_path / "wh"
    assert cli("ingest", "--warehouse", wh, tmp_path / "d").returncode == 0
    assert q(wh, "SELECT count(*) FROM trips") == [(1,)]
    assert [m for m, _ in skipped(wh)] == ["README.txt"]
