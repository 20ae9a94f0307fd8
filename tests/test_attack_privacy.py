"""Privacy promises under attack: no raw 運行ID in quarantine (6), no short keys (7), key changes detected
(8), `etc2calm sql` confined to the warehouse (10)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import cli, offset, q, style12_row, write_zip
from etl.ingest import ingest_paths


def row(i, vid, speed=30):
    lon, lat = offset(i * 50, 0)
    return style12_row(vid, f"2017090508{i:02d}00", lon, lat, speed)


def all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


# --- 6. no raw 運行ID in quarantine.raw_text, whatever the line's shape or the ID's ------------------

IDS = ["000012345678", "AB-12x", "veh_7", "ｶﾅ車両9", "4711", "X"]


@pytest.mark.parametrize("vid", IDS)
def test_no_raw_id_in_quarantine_for_misaligned_lines(tmp_path, vid):
    good = [row(i, vid) for i in range(3)]
    f = row(5, vid).split(",")
    quoted = f'"{f[0]},extra",' + ",".join(f[1:])  # a quoted comma: 34 fields, the ID one place right
    missing = ",".join(f[:5] + f[6:])  # a field missing before the ID's neighbours: 32 fields
    early = ",".join(f[1:])  # the first field missing: the ID one place left
    extra = ",".join(f + ["x"])  # 34 fields
    out_of_range = row(6, vid, speed=999)  # aligned: rejected by a rule
    lines = good + [quoted, missing, early, extra, out_of_range]
    write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", lines)
    rep = ingest_paths([tmp_path / "d"], tmp_path / "wh")
    assert rep.total("rows_quarantined") == 5
    texts = [r[0] for r in q(tmp_path / "wh", "SELECT raw_text FROM quarantine ORDER BY line_no")]
    assert len(texts) == 5
    if len(vid) >= 4:  # a 1-character ID is a substring of anything: only the field check below holds
        for t in texts:
            assert vid not in t, t
        assert vid.encode("utf-8") not in all_bytes(tmp_path / "wh")
    for t in texts:
        assert vid not in [x.strip().strip('"') for x in t.split(",")], t
    p = cli("sql", "--warehouse", tmp_path / "wh", "--csv", "SELECT * FROM quarantine")
    assert p.returncode == 0 and vid not in [x.strip('"') for line in p.stdout.splitlines() for x in line.split(",")]


# --- 7. short or blank keys are refused ----------------------------------------------------------


@pytest.mark.parametrize(
    "content", ["", *(pytest.param(c, marks=pytest.mark.slow) for c in ("   \n", "short-key")), "fifteen-bytes.."]
)
def test_short_or_blank_key_file_refused(tmp_path, monkeypatch, content):
    monkeypatch.delenv("ETC2CALM_ID_KEY")
    keyfile = tmp_path / "keys" / "id_key"
    keyfile.parent.mkdir()
    keyfile.write_text(content)
    keyfile.chmod(0o600)
    monkeypatch.setenv("ETC2CALM_ID_KEY_FILE", str(keyfile))
    write_zip(tmp_path / "d" / "a.zip", [row(0, "000012345678")])
    p = cli("ingest", "--warehouse", tmp_path / "wh", tmp_path / "d")
    assert p.returncode == 2, p.stdout + p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "key" in lines[0] and "16" in lines[0], p.stderr
    assert not (tmp_path / "wh" / "probe_points").exists()


@pytest.mark.parametrize("key", ["", pytest.param("  ", marks=pytest.mark.slow), "short"])
def test_short_or_blank_key_in_environment_refused(tmp_path, monkeypatch, key):
    monkeypatch.setenv("ETC2CALM_ID_KEY", key)
    write_zip(tmp_path / "d" / "a.zip", [row(0, "000012345678")])
    p = cli("ingest", "--warehouse", tmp_path / "wh", tmp_path / "d")
    assert p.returncode == 2 and "ETC2CALM_ID_KEY" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "wh" / "probe_points").exists()


# --- 8. a key change is detected; re-keying is explicit --------------------------------------------


@pytest.mark.slow
def test_key_change_refused_then_explicit_rekey(tmp_path, monkeypatch):
    wh = tmp_path / "wh"
    k1, k2 = "first-key-0123456789abcdef", "second-key-0123456789abcdef"
    write_zip(tmp_path / "d1" / "OUT1-2_533925_20170905.zip", [row(i, f"{i % 3:012d}") for i in range(6)])
    write_zip(
        tmp_path / "d2" / "OUT1-2_533925_20170906.zip",
        [style12_row(f"{i % 3:012d}", f"20170906080{i}00", *offset(i * 50, 0), 30) for i in range(6)],
    )
    monkeypatch.setenv("ETC2CALM_ID_KEY", k1)
    assert cli("ingest", "--warehouse", wh, tmp_path / "d1").returncode == 0
    monkeypatch.setenv("ETC2CALM_ID_KEY", k2)
    p = cli("ingest", "--warehouse", wh, tmp_path / "d2")
    assert p.returncode == 2, p.stdout + p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "key" in lines[0] and "--rekey" in lines[0], p.stderr
    assert q(wh, "SELECT count(*) FROM probe_points") == [(6,)]
    assert k1.encode() not in all_bytes(wh) and k2.encode() not in all_bytes(wh)
    p = cli("ingest", "--warehouse", wh, "--rekey", tmp_path / "d1", tmp_path / "d2")
    assert p.returncode == 0, p.stderr
    assert q(wh, "SELECT count(*), count(DISTINCT vehicle_key) FROM probe_points") == [(12, 3)]
    monkeypatch.setenv("ETC2CALM_ID_KEY", k1)
    assert cli("ingest", "--warehouse", wh, tmp_path / "d1").returncode == 2  # the old key is now the wrong one


# --- 10. `etc2calm sql` reads the warehouse and nothing else ---------------------------------------


@pytest.fixture
def small_wh(tmp_path):
    write_zip(tmp_path / "d" / "OUT1-2_533925_20170905.zip", [row(i, "000012345678") for i in range(4)])
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    return tmp_path / "wh"


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('/etc/passwd', sep=':')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM read_blob('/etc/hostname')",
        "SELECT count(*) FROM glob('/etc/*')",
        "SELECT * FROM read_text('{keyfile}')",
        "SELECT * FROM read_csv('{outside}')",
        "SELECT * FROM read_csv('{wh}/../outside.csv')",
        "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')",
        "WITH x AS (SELECT * FROM read_text('/etc/hostname')) SELECT * FROM x",
    ],
)
def test_sql_cannot_read_outside_the_warehouse(tmp_path, monkeypatch, small_wh, query):
    keyfile = tmp_path / "config" / "etc2calm" / "id_key"
    keyfile.parent.mkdir(parents=True, exist_ok=True)
    keyfile.write_text("k" * 64)
    (tmp_path / "outside.csv").write_text("a,b\n1,2\n")
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    p = cli(
        "sql",
        "--warehouse",
        small_wh,
        query.format(keyfile=keyfile, outside=tmp_path / "outside.csv", wh=small_wh),
        env=env,
    )
    assert p.returncode != 0, p.stdout
    assert "Traceback" not in p.stderr
    assert "k" * 64 not in p.stdout and "root:" not in p.stdout
    assert not (home / ".duckdb").exists()  # nothing installed


def test_sql_still_reads_the_warehouse_files(small_wh):
    p = cli("sql", "--warehouse", small_wh, "--csv", "SELECT count(*) AS n FROM probe_points")
    assert p.stdout.splitlines() == ["n", "4"], p.stderr
    glob = (small_wh / "probe_points").as_posix() + "/**/*.parquet"
    p = cli("sql", "--warehouse", small_wh, "--csv", f"SELECT count(*) AS n FROM read_parquet('{glob}')")
    assert p.stdout.splitlines() == ["n", "4"], p.stderr


def test_key_file_inside_the_warehouse_refused(tmp_path, monkeypatch):
    """`etc2calm sql` may read the warehouse folder: the key must never be there."""
    monkeypatch.delenv("ETC2CALM_ID_KEY")
    keyfile = tmp_path / "wh" / "keys" / "id_key"
    keyfile.parent.mkdir(parents=True)
    keyfile.write_text("k" * 64)
    monkeypatch.setenv("ETC2CALM_ID_KEY_FILE", str(keyfile))
    write_zip(tmp_path / "d" / "a.zip", [row(0, "000012345678")])
    p = cli("ingest", "--warehouse", tmp_path / "wh", tmp_path / "d")
    assert p.returncode == 2 and "inside the warehouse" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "wh" / "probe_points").exists()


def test_fingerprint_recorded_never_the_key(tmp_path):
    write_zip(tmp_path / "d" / "a.zip", [row(0, "000012345678")])
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    from etl.pseudonymise import key_fingerprint, load_id_key
    from etl.warehouse import read_snapshot

    fp = key_fingerprint(load_id_key())
    assert q(tmp_path / "wh", "SELECT value FROM warehouse_info WHERE name = 'key_fingerprint'") == [(fp,)]
    assert read_snapshot(tmp_path / "wh")["key_fingerprint"] == fp
    assert load_id_key() not in all_bytes(tmp_path / "wh")


def test_pseudonyms_are_the_hmac_of_the_trimmed_id_whatever_its_shape():
    """vehicle_key = first 32 hex chars of HMAC-SHA-256(key, trimmed ID), vehicle_id = its first 8
    bytes as a signed big-endian int64, for every distinct ID of a column at once; NULL, empty and
    blank IDs stay NULL; the same in both column helpers and the one-value helper."""
    import hmac

    import pyarrow as pa

    from etl.pseudonymise import pseudonymise_dict, pseudonymise_one, pseudonymise_with_ids

    key = b"a-test-key-of-thirty-two-bytes!!"
    raw = ["00123", None, "", "   ", " 00123 ", "ｱｲｳ日本", "x" * 300, "0", "\t7\t", "00123"]
    keys, ids = pseudonymise_dict(pa.array(raw, pa.string()), key)
    keys2, ids2 = pseudonymise_with_ids(pa.array(raw, pa.string()), key)
    assert keys.cast(pa.string()).to_pylist() == keys2.to_pylist() and ids.to_pylist() == ids2.to_pylist()
    for r, k, i in zip(raw, keys.cast(pa.string()).to_pylist(), ids.to_pylist(), strict=True):
        if r is None or not r.strip():
            assert k is None and i is None
            continue
        d = hmac.digest(key, r.strip().encode("utf-8"), "sha256")
        assert k == d.hex()[:32] == pseudonymise_one(r, key)
        assert i == int.from_bytes(d[:8], "big", signed=True)
    assert pseudonymise_dict(pa.array([], pa.string()), key)[1].to_pylist() == []


def test_pseudonym_memo_of_a_file_gives_the_pseudonyms_of_each_piece_alone():
    """Pieces of one file share a memo (one HMAC per distinct ID per file): every piece still gets
    exactly the pseudonyms it gets alone, whatever it shares with earlier pieces (NULL and blank too)."""
    import pyarrow as pa

    from etl.pseudonymise import PseudonymMemo, pseudonymise_dict

    key = b"a-test-key-of-thirty-two-bytes!!"
    memo = PseudonymMemo()
    pieces = [["7", "8", None, " ", "9", "7"], ["9", "10", None, "7", "  "], ["7", "8", "9", "10", " "], []]
    for raw in pieces:
        with_memo = pseudonymise_dict(pa.array(raw, pa.string()), key, memo)
        alone = pseudonymise_dict(pa.array(raw, pa.string()), key)
        assert with_memo[0].cast(pa.string()).to_pylist() == alone[0].cast(pa.string()).to_pylist()
        assert with_memo[1].to_pylist() == alone[1].to_pylist()
    assert sorted(v.strip() for v in memo.raw.to_pylist() if v.strip()) == ["10", "7", "8", "9"]  # each HMAC'd once
