"""A full disk and every other I/O failure, in every command that writes.

ingest, match, analyze, compare, screen, export and publish on a small filesystem (a tmpfs, filled
up to a few levels of free space, so the failure lands at different writes): one line
`etc2calm: error: no space left on device while writing <path>; the warehouse is unchanged`, exit 1,
no traceback; the warehouse byte for byte as before (DuckDB's own file compared by its content); with
the space back, the same command stores everything exactly once. publish leaves no half-written
output and latest/ keeps the previous edition. Where a tmpfs cannot be mounted (not root), the fault
is injected at the write by the kernel instead: a file size limit (RLIMIT_FSIZE), which makes a
write fail with EFBIG ("file too large"). A read-only filesystem and a file size limit are tried
too (the cause is named, whatever it is).
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import duckdb
import pytest

from conftest import ETC2CALM

pytestmark = pytest.mark.slow

DISTRICT = "okurayama"
# Try the fallback (a file size limit instead of a tmpfs) on a machine where mounting is allowed too.
FORCE_FALLBACK = bool(os.environ.get("ETC2CALM_TEST_NO_TMPFS"))
LINE = re.compile(r"^etc2calm: error: (.+) while writing (\S.*); the warehouse is unchanged$")


# --- a small disk ---------------------------------------------------------------------------------


class SmallDisk:
    """A tmpfs mounted at `root` (or, where mounting is not allowed, a plain folder whose writes are made
    to fail by a file size limit on the command)."""

    def __init__(self, root: Path, size: str = "96m"):
        self.root = root
        root.mkdir(parents=True)
        self.mounted = (
            not FORCE_FALLBACK
            and (
                subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)], capture_output=True)
            ).returncode
            == 0
        )
        self.filler = root / ".filler"
        self.cause = "no space left on device" if self.mounted else "file too large"

    def fill(self, leave: int = 0) -> None:
        """Take all free space but `leave` bytes (tmpfs pages of 4 KiB)."""
        if not self.mounted:
            return
        with open(self.filler, "ab", buffering=0) as fh:
            for size in (1 << 20, 1 << 12):
                block = b"\0" * size
                try:
                    while True:
                        fh.write(block)
                except OSError:
                    pass
        if leave:
            os.truncate(self.filler, max(0, self.filler.stat().st_size - leave))

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def run(self, *args, **kw) -> subprocess.CompletedProcess:
        """The CLI; without a tmpfs, every write to a file fails (EFBIG), as the first write to a full disk."""
        preexec = None if self.mounted or not kw.pop("limited", True) else _file_size_limit(0)
        kw.pop("limited", None)
        return subprocess.run(
            [ETC2CALM, *map(str, args)], capture_output=True, text=True, timeout=600, preexec_fn=preexec, **kw
        )

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.root)], capture_output=True)


def _file_size_limit(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.fixture
def disk(tmp_path):
    d = SmallDisk(tmp_path / f"disk-{uuid.uuid4().hex[:6]}")
    yield d
    d.close()


def cli(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([ETC2CALM, *map(str, args)], capture_output=True, text=True, timeout=600, **kw)


# --- what "unchanged" means ---------------------------------------------------------------------------

DUCKDB_FILES = ("warehouse.duckdb", "warehouse.duckdb.wal", ".ingest.lock")


def state(wh: Path) -> dict:
    """Every file of the warehouse by its bytes (DuckDB's own files by their content: every table's rows
    and every view's definition)."""
    files = {}
    for f in sorted(wh.rglob("*")):
        rel = f.relative_to(wh).as_posix()
        if f.is_file() and rel not in DUCKDB_FILES:
            files[rel] = hashlib.sha256(f.read_bytes()).hexdigest()
        elif f.is_dir():
            files[rel + "/"] = ""
    con = duckdb.connect(str(wh / "warehouse.duckdb"), read_only=True)
    try:
        tables = {
            t: sorted(map(repr, con.execute(f'SELECT * FROM "{t}"').fetchall()))
            for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()
        }
        views = dict(con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall())
    finally:
        con.close()
    return {"files": files, "tables": tables, "views": views}


def assert_one_line(p: subprocess.CompletedProcess, disk: SmallDisk, under: Path) -> None:
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 1, p.stderr
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    m = LINE.match(lines[0])
    assert m, lines[0]
    assert m.group(1) == disk.cause
    assert Path(m.group(2)).resolve().is_relative_to(under.resolve()), lines[0]


# --- the warehouses the commands work on (built once) ------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A small synthetic delivery of 大倉山 ingested (`ingested`), then matched, analysed, compared and
    screened (`analysed`); a second delivery (`more`) to ingest on top."""
    root = tmp_path_factory.mktemp("io")
    env = {**os.environ, "ETC2CALM_ID_KEY": "test-key-not-secret"}
    for args in (
        ("generate", root / "delivery", "--district", DISTRICT, "--scale", "0.03"),
        ("generate", root / "more", "--district", DISTRICT, "--scale", "0.03", "--seed", "7"),
        ("ingest", "--warehouse", root / "ingested", root / "delivery"),
    ):
        p = cli(*args, env=env)
        assert p.returncode == 0, p.stderr
    shutil.copytree(root / "ingested", root / "analysed")
    for args in (
        ("analyze", "--warehouse", root / "analysed", "--district", DISTRICT),
        ("compare", "--warehouse", root / "analysed", "--district", DISTRICT, "--resamples", "20"),
        ("screen", "--warehouse", root / "analysed", "--district", DISTRICT, "--resamples", "20"),
    ):
        p = cli(*args, env=env)
        assert p.returncode == 0, p.stderr
    return root


def _place(built: Path, name: str, where: Path) -> Path:
    """A copy of a built warehouse at `where`, its views made for that place (plain DuckDB reads it)."""
    from etl.warehouse import connect

    shutil.copytree(built / name, where)
    connect(where).close()  # a read-write connection makes the views current
    return where


WAREHOUSE_COMMANDS = {
    "ingest": ("ingested", lambda wh, b: ("ingest", "--warehouse", wh, b / "more")),
    "match": ("ingested", lambda wh, b: ("match", "--warehouse", wh, "--district", DISTRICT)),
    "analyze": ("analysed", lambda wh, b: ("analyze", "--warehouse", wh, "--district", DISTRICT)),
    "compare": (
        "analysed",
        lambda wh, b: ("compare", "--warehouse", wh, "--district", DISTRICT, "--resamples", "20", "--seed", "3"),
    ),
    "screen": (
        "analysed",
        lambda wh, b: ("screen", "--warehouse", wh, "--district", DISTRICT, "--resamples", "20", "--seed", "3"),
    ),
}


def _size(wh: Path) -> int:
    return sum(f.stat().st_size for f in wh.rglob("*") if f.is_file())


@pytest.mark.parametrize("command", list(WAREHOUSE_COMMANDS))
def test_full_disk_under_the_warehouse_is_one_line_and_changes_nothing(built, tmp_path, disk, command):
    start, args = WAREHOUSE_COMMANDS[command]
    wh = _place(built, start, disk.root / "wh")
    reference = _place(built, start, tmp_path / "reference")  # the same command on an ordinary disk
    size = _size(reference)
    p = cli(*args(reference, built))
    assert p.returncode == 0, p.stderr
    written = _size(reference) - size
    levels = [0] + ([w for w in (written // 4, written // 2) if w >= 16 << 10] if disk.mounted else [])
    before = state(wh)
    failures = 0
    for leave in levels:
        disk.fill(leave)
        p = disk.run(*args(wh, built))
        disk.free()
        if p.returncode == 0 and leave:  # enough room after all: then it did everything
            break
        assert_one_line(p, disk, disk.root)
        assert state(wh) == before, f"{command} with {leave} bytes free changed the warehouse"
        failures += 1
    assert failures >= 1
    p = disk.run(*args(wh, built), limited=False)  # the space is back: the same command, once more
    assert p.returncode == 0, p.stderr
    assert _results(wh, command) == _results(reference, command)


def _results(wh: Path, command: str):
    """What the command stores, without its timestamps: equal to a run on an ordinary disk."""
    queries = {
        "ingest": "SELECT count(*), count(DISTINCT point_key), sum(speed_kmh) FROM probe_points",
        "match": "SELECT count(*), count(DISTINCT road_id), sum(speed_kmh) FROM matched_points",
        "analyze": "SELECT road_id, period, n_points, n_vehicles, mean_kmh FROM road_period_stats ORDER BY ALL",
        "compare": "SELECT unit, indicator, change, ci_low, ci_high FROM comparison_results ORDER BY ALL",
        "screen": "SELECT road_id, rank, score FROM screening_results ORDER BY ALL",
    }
    con = duckdb.connect(str(wh / "warehouse.duckdb"), read_only=True)
    try:
        out = [con.execute(queries[command]).fetchall()]
        if command == "ingest":
            out.append(con.execute("SELECT status, count(*), sum(rows_stored) FROM manifest GROUP BY ALL").fetchall())
        return out
    finally:
        con.close()


def test_full_disk_for_the_output_of_export(built, disk):
    wh = built / "analysed"
    before = state(wh)
    out = disk.root / "roads.gpkg"
    disk.fill(0)
    p = disk.run("export", "--warehouse", wh, "--district", DISTRICT, "--out", out)
    disk.free()
    assert_one_line(p, disk, disk.root)
    assert state(wh) == before
    assert sorted(x.name for x in disk.root.iterdir()) == []  # no half-written GeoPackage, no temporary file
    p = disk.run("export", "--warehouse", wh, "--district", DISTRICT, "--out", out, limited=False)
    assert p.returncode == 0, p.stderr and out.exists()


def test_full_disk_for_a_csv_of_compare(built, tmp_path, disk):
    wh = _place(built, "analysed", tmp_path / "wh")
    out = disk.root / "compare.csv"
    disk.fill(0)
    p = disk.run("compare", "--warehouse", wh, "--district", DISTRICT, "--resamples", "20", "--out", out)
    disk.free()
    assert_one_line(p, disk, disk.root)
    assert not out.exists() or out.stat().st_size == 0


def _tree(folder: Path) -> dict[str, str]:
    return {
        f.relative_to(folder).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.rglob("*"))
        if f.is_file()
    }


def test_full_disk_while_publishing_keeps_the_previous_files(built, disk):
    wh = built / "analysed"
    out = disk.root / "maps"
    p = disk.run("publish", "--warehouse", wh, "--district", DISTRICT, "--out", out, "--lang", "ja", limited=False)
    assert p.returncode == 0, p.stderr
    previous = _tree(out)
    assert f"{DISTRICT}.html" in previous and f"{DISTRICT}_sheet.pdf" in previous
    before = state(wh)
    levels = [0, 256 << 10, 1 << 20] if disk.mounted else [0]
    for leave in levels:
        disk.fill(leave)
        p = disk.run("publish", "--warehouse", wh, "--district", DISTRICT, "--out", out, "--lang", "ja", "--lang", "en")
        disk.free()
        assert_one_line(p, disk, disk.root)
        assert _tree(out) == previous, f"publish with {leave} bytes free left a half-written output"
        assert sorted(x.name for x in disk.root.iterdir() if x.name != ".filler") == ["maps"]  # no draft left
    assert state(wh) == before


def test_edition_and_latest_survive_a_full_disk(built, disk):
    """The flow's edition: written into a draft that appears whole or not at all; latest/ keeps the
    previous edition when the new one or its copy into latest/ fails."""
    if not disk.mounted:
        pytest.skip("needs a small filesystem in this process (tmpfs)")
    from config.districts import load_district
    from maps.publish import publish_district, staged_output, update_latest

    district = load_district(DISTRICT)
    wh = built / "analysed"
    root = disk.root / "maps"
    with staged_output(root / "2017-10") as draft:
        publish_district(wh, district, draft, langs=("ja",), export=False)
    update_latest(root, root / "2017-10")
    previous = {"latest": _tree(root / "latest"), "2017-10": _tree(root / "2017-10")}
    for leave in (0, 512 << 10):
        disk.fill(leave)
        with pytest.raises(OSError) as err, staged_output(root / "2017-11") as draft:
            publish_district(wh, district, draft, langs=("ja", "en"))
        disk.free()
        assert err.value.errno == 28 and str(disk.root) in err.value.filename
        assert not (root / "2017-11").exists()
        assert {k: _tree(root / k) for k in previous} == previous
        assert sorted(x.name for x in root.iterdir()) == ["2017-10", "latest"]
    with staged_output(root / "2017-11") as draft:  # a whole new edition, then latest/ cannot be copied
        publish_district(wh, district, draft, langs=("ja",), export=False)
    disk.fill(0)
    with pytest.raises(OSError) as err:
        update_latest(root, root / "2017-11")
    disk.free()
    assert err.value.errno == 28
    assert _tree(root / "latest") == previous["latest"]
    assert sorted(x.name for x in root.iterdir()) == ["2017-10", "2017-11", "latest"]


def test_read_only_filesystem_is_named(built, disk):
    if not disk.mounted:
        pytest.skip("needs a filesystem to remount read-only (tmpfs)")
    wh = _place(built, "ingested", disk.root / "wh")
    before = state(wh)
    subprocess.run(["mount", "-o", "remount,ro", str(disk.root)], check=True)
    try:
        for args in (
            ("ingest", "--warehouse", wh, built / "more"),
            ("match", "--warehouse", wh, "--district", DISTRICT),
        ):
            p = cli(*args)
            lines = [line for line in p.stderr.splitlines() if line.strip()]
            assert p.returncode == 1 and len(lines) == 1, p.stderr
            assert lines[0].startswith("etc2calm: error: read-only file system while ") and str(disk.root) in lines[0]
            assert lines[0].endswith("; the warehouse is unchanged")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(disk.root)], check=True)
    assert state(wh) == before


def test_file_size_limit_is_named(built, tmp_path):
    """An injected fault at the write that needs no privileges: a file size limit (EFBIG)."""
    wh = _place(built, "ingested", tmp_path / "wh")
    before = state(wh)
    p = subprocess.run(
        [ETC2CALM, "ingest", "--warehouse", str(wh), str(built / "more")],
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_file_size_limit(4096),
    )
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 1 and len(lines) == 1, p.stderr
    assert LINE.match(lines[0]) and lines[0].startswith("etc2calm: error: file too large while writing ")
    assert state(wh) == before
