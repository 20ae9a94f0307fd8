"""Ingest of ETC2.0 deliveries (様式1-2, 様式1-3, 挙動履歴) into the warehouse: nothing lost, nothing doubled.

Design (two phases, streaming, rerun-safe):

1. **Stage** (process pool over files, both cores). Each worker hashes a file (SHA-256), skips
   it if the manifest already holds that content, detects its format (file name `OUT1-2_…` /
   `OUT1-3_…`, else content: 33 fields → 様式1-2, a Japanese header or 18 fields → 様式1-3;
   挙動履歴 by name or `--format behavior`), streams its payloads (ZIP members / gzip / plain,
   64 MB pieces cut at line ends), reads and validates them against the layout in
   `etl.spec` (`etl.validate`), replaces 運行ID by its HMAC pseudonym (one HMAC per distinct
   ID), projects lon/lat to EPSG:6677 and appends the rows to an in-memory buffer that is
   written, when large or at the end of the task, to `_staging/<run>/…` (Parquet, one file per
   operation date and flush, many delivered files per write). Memory per worker is bounded by
   the buffer size, not by the delivery.
2. **Commit** (main process, DuckDB, memory-limited and spilling to disk). For every
   operation date touched, the staged rows of that date and the already stored points of that
   date (all meshes) are read; exact duplicates (same vehicle_key, GPS時刻, lon, lat, speed) are
   dropped, keeping the copy already stored (else the one of the file listed first), and counted against the file that delivered them
   again; LAG over (vehicle_key, trip_no ORDER BY gps_time, serial_no, file_id, member, line_no)
   gives heading_deg, dt_prev_s and dist_prev_m (a trip never crosses its operation date, while
   it does cross meshes and ZIPs, so a day is the unit of recomputation); the day is written
   again as zstd (level 1) Parquet partitioned year / month / mesh2 into `_txn/<commit>/`. Quarantine,
   trips and behaviour events are written there too. Then a journal (`_journal.json`: files to
   rename into place, files to delete, manifest rows) is written atomically and applied.

Files are staged and committed in batches of about 2 GB of deliveries (`batch_bytes`, files
ordered by the date in their names so a batch holds whole days): staging disk stays bounded and a
kill costs at most the current batch. A day touched by a later batch is simply recomputed.

Kill safety: before the journal exists nothing in the store has changed (the next ingest
deletes `_staging`/`_txn` and redoes those files, which are not in the manifest); once it
exists, the next ingest (or this one) applies it to the end — every step is idempotent. So a
kill at any moment leaves the warehouse either as before or as after the commit, never half.
One ingest at a time: an OS lock (`.ingest.lock`) refuses a second one with "warehouse is busy".

Per file, rows_read = rows_stored + rows_quarantined + rows_duplicate, checked before commit.
`--replace`: a file whose path is in the manifest with other content replaces exactly the
rows of the older content (its points, trips, events and quarantine rows), in the same commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import glob
import json
import logging
import multiprocessing as mp
import os
import re
import shutil
import signal
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyproj import Transformer

from config.settings import LONLAT_CRS, METRIC_CRS
from etl import sources, validate
from etl.pseudonymise import load_id_key, pseudonymise_one, pseudonymise_with_ids
from etl.spec import FORMAT_1_2, STYLE_1_2, Layout, column_index, layouts
from etl.warehouse import connect, ingest_lock, refresh_views

log = logging.getLogger(__name__)

_TO_METRIC = Transformer.from_crs(LONLAT_CRS, METRIC_CRS, always_xy=True)
FORMAT_KEYS = ("1-2", "1-3", "behavior")
BATCH_BYTES = 2 * 1024**3  # delivered bytes staged before a commit (bounds staging disk and redo after a kill)
BUFFER_ROWS = 1_000_000  # staged rows a worker keeps in memory before writing them
COMMIT_MEMORY = "1GB"  # DuckDB memory limit of the commit step (it spills beyond)
CRASH_ENV = "ETC2CALM_TEST_CRASH"  # fault injection for the kill tests: stage | journal | apply


@dataclass
class FileResult:
    path: Path
    status: str  # ok | skipped | failed
    rows_read: int = 0
    rows_stored: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    message: str = ""
    format: str = ""
    file_id: str = ""
    sha256: str = ""
    size_bytes: int = 0


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: float = 0.0  # reading, validating, staging (workers, wall clock)
    commit_seconds: float = 0.0  # dedup, headings, final Parquet, journal (wall clock)

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    def summary(self) -> str:
        n = {s: sum(f.status == s for f in self.files) for s in ("ok", "skipped", "failed")}
        return (
            f"files: {n['ok']} ingested, {n['skipped']} already in warehouse, {n['failed']} failed; "
            f"rows read {self.total('rows_read')} = stored {self.total('rows_stored')} "
            f"+ quarantined {self.total('rows_quarantined')} + duplicates skipped {self.total('rows_duplicate')}"
        )


# ---------------------------------------------------------------------------------------------
# Row processing (pure functions, used by the workers)

_ID_LIKE = re.compile(r"\s*\d{10,}\s*")


def _redact_raw_line(text: str, key: bytes, id_index: int) -> str:
    """Replace the 運行ID of a malformed line by its pseudonym (rejects only, which are rare).

    In a line with the wrong number of fields the ID's position is uncertain, so every
    long number that could be an ID is replaced too: privacy before completeness.
    """
    fields = text.split(",")
    for i, f in enumerate(fields):
        if (i == id_index and f.strip()) or _ID_LIKE.fullmatch(f):
            fields[i] = pseudonymise_one(f, key)
    return ",".join(fields)


def project_to_metric(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude/latitude in degrees to (x, y) in metres, EPSG:6677."""
    return _TO_METRIC.transform(lon, lat)


def _id_column(layout: Layout) -> str:
    return next(c.name for c in layout.columns if c.type == "id")


def process_payload(data: bytes, key: bytes, layout: Layout = STYLE_1_2, first_chunk: bool = True):
    """Read, pseudonymise, validate (and for positions project) one CSV payload.

    Returns (rows, quarantine rows (line_no, reason, raw_text), lines read, header lines).
    Line numbers are relative to the payload.
    """
    layout_read = layout if first_chunk else dataclasses.replace(layout, header_markers=())
    rows, line_no, rejects, header = validate.read_payload(data, layout_read)
    n_read = rows.num_rows + rejects.num_rows
    id_name = _id_column(layout)
    id_index = layout.by_name(id_name).index
    if rejects.num_rows:
        redacted = [_redact_raw_line(t, key, id_index) for t in rejects.column("raw_text").to_pylist()]
        rejects = rejects.set_column(2, "raw_text", pa.array(redacted, pa.string()))
    idx = rows.schema.get_field_index(id_name)
    vkey, vid = pseudonymise_with_ids(rows.column(idx), key)
    rows = rows.set_column(idx, id_name, vkey)  # the raw ID is gone from here on
    good, failed = validate.validate_rows(rows, line_no, layout)
    if good.num_rows != rows.num_rows:
        keep = pc.is_in(pa.array(line_no, pa.int64()), good.column("line_no"))
        vid = pc.filter(vid, keep)
    good = good.rename_columns(["vehicle_key" if n == id_name else n for n in good.column_names])
    good = good.append_column("vehicle_id", vid)
    if "lon" in good.column_names and "lat" in good.column_names:
        x, y = project_to_metric(
            good.column("lon").to_numpy(zero_copy_only=False), good.column("lat").to_numpy(zero_copy_only=False)
        )
        good = good.append_column("x_m", pa.array(x, pa.float64())).append_column("y_m", pa.array(y, pa.float64()))
    quarantine = pa.concat_tables([rejects, failed.select(["line_no", "reason", "raw_text"])])
    return good, quarantine, n_read, header


# ---------------------------------------------------------------------------------------------
# Format detection

def detect_format(path: Path, head: bytes, override: str | None, all_layouts: dict[str, Layout]) -> str:
    """Format key of a delivered file: override, else file name marker, else content.

    Content: a Japanese header row of 様式1-3 → 1-3; otherwise the field count of the first
    lines (up to 20): 33 → 様式1-2, 18 → 様式1-3. A short file (under 10 lines) that fits no layout
    is read as 様式1-2, the delivered default, so its lines end in quarantine with their reason;
    a longer one is rejected as not recognised.
    """
    if override:
        return override
    name = str(path).upper()
    for k in ("1-2", "1-3"):
        if any(m.upper() in name for m in all_layouts[k].name_markers):
            return k
    if any(m.upper() in name for m in all_layouts["behavior"].name_markers):
        return "behavior"
    lines = [validate.decode(x.strip(b"\r")) for x in head.split(b"\n")[:20]]
    lines = [x for x in lines if x.strip()]
    if lines and validate.has_header(lines[0], all_layouts["1-3"]):
        return "1-3"
    counts = [x.count(",") + 1 for x in lines]
    for k in ("1-2", "1-3"):
        if all_layouts[k].n_columns in counts:
            return k
    if len(head.split(b"\n")) < 10:
        return "1-2"
    raise sources.SourceError(
        f"{path}: format not recognised (lines have {sorted(set(counts))} fields; 様式1-2 has 33, 様式1-3 18; "
        "name the format with --format)"
    )


# ---------------------------------------------------------------------------------------------
# Stage phase (workers)

_W: dict = {}


def _init_worker(key: bytes, known: set[str], override: str | None, behavior_layout: str | None, lock_fd: int = -1) -> None:
    if lock_fd >= 0 and os.getpid() != _W.get("main_pid"):
        # A forked worker: drop the inherited lock descriptor (the lock belongs to the ingest process,
        # and must go when it dies) and die with it rather than linger as an orphan.
        os.close(lock_fd)
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    _W.update(key=key, known=known, override=override, layouts=layouts(behavior_layout))


def _write_ipc(table: pa.Table, out: Path) -> None:
    """Staged rows as an Arrow IPC file (lz4): an order of magnitude cheaper to write than Parquet."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_file(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as w:
        w.write_table(table, max_chunksize=256_000)


def _register_staged(con: duckdb.DuckDBPyConnection, name: str, files: list[str]) -> str:
    """Expose staged IPC files to DuckDB as a streamed Arrow dataset (nothing loaded whole)."""
    schemas = [ds.dataset(f, format="ipc").schema for f in files]
    con.register(name, ds.dataset(files, format="ipc", schema=pa.unify_schemas(schemas, promote_options="permissive")))
    return name


class _Stager:
    """Per-worker buffers of staged rows, written as Parquet when large (many files per write)."""

    def __init__(self, staging: Path, tag: str):
        self.staging = staging
        self.tag = tag
        self.parts: dict[str, list[pa.Table]] = {}
        self.rows = 0
        self.k = 0

    def add(self, kind: str, table: pa.Table) -> None:
        if table.num_rows:
            self.parts.setdefault(kind, []).append(table)
            self.rows += table.num_rows
            if self.rows >= BUFFER_ROWS:
                self.flush()

    def flush(self) -> None:
        for kind, tables in self.parts.items():
            t = pa.concat_tables(tables, promote_options="default")
            if kind == "points":
                dates = t.column("operation_date")
                for day in pc.unique(dates).to_pylist():
                    part = t.filter(pc.equal(dates, pa.scalar(day, pa.date32())))
                    out = self.staging / "points" / f"operation_date={day.isoformat()}" / f"{self.tag}-{self.k}.arrow"
                    _write_ipc(part, out)
            else:
                out = self.staging / kind / f"{self.tag}-{self.k}.arrow"
                _write_ipc(t, out)
            self.k += 1
        self.parts, self.rows = {}, 0


def _stage_file(path: Path, stager: _Stager) -> dict:
    W = _W
    res = {"path": str(path), "status": "failed", "rows_read": 0, "rows_staged": 0, "rows_quarantined": 0, "message": "",
           "format": "", "file_id": "", "sha256": "", "size_bytes": 0}  # fmt: skip
    try:
        src = sources.describe(path)
    except OSError as exc:
        res["message"] = f"{path}: cannot read ({exc})"
        return res
    res.update(file_id=src.file_id, sha256=src.sha256, size_bytes=src.size_bytes)
    if src.sha256 in W["known"]:
        res["status"] = "skipped"
        return res
    key = W["key"]
    tables: list[tuple[str, pa.Table]] = []
    try:
        fmt = None
        layout = None
        line_base: dict[str, int] = {}
        for member, index, data in sources.iter_payloads(path):
            if layout is None:
                fmt = detect_format(path, data[:65536], W["override"], W["layouts"])
                layout = W["layouts"][fmt]
                res["format"] = layout.name
            if index == 0 and fmt == "behavior":
                first = validate.decode(data[: data.find(b"\n") if b"\n" in data else len(data)].strip(b"\r\n"))
                found = first.count(",") + 1
                if not validate.has_header(first, layout) and found != layout.n_columns:
                    raise sources.SourceError(
                        f"{path}: member {member!r} does not fit the 挙動履歴 layout: expected {layout.n_columns} columns, "
                        f"found {found} (configure the layout with --behavior-layout / ETC2CALM_BEHAVIOR_LAYOUT)"
                    )
            good, quarantine, n, header = process_payload(data, key, layout, first_chunk=index == 0)
            base = line_base.get(member, 0)
            line_base[member] = base + data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
            res["rows_read"] += n
            if base:
                good = good.set_column(good.schema.get_field_index("line_no"), "line_no", pc.add(good.column("line_no"), base))
                quarantine = quarantine.set_column(0, "line_no", pc.add(quarantine.column("line_no"), base))
            m = pa.array([member] * good.num_rows, pa.string()) if good.num_rows else pa.array([], pa.string())
            good = good.append_column("member", m).append_column("file_id", pa.array([src.file_id] * good.num_rows, pa.string()))
            tables.append((fmt, good))
            if quarantine.num_rows:
                nq = quarantine.num_rows
                q = pa.table(
                    {
                        "file_id": pa.array([src.file_id] * nq, pa.string()),
                        "source_path": pa.array([str(path.resolve())] * nq, pa.string()),
                        "format": pa.array([layout.name] * nq, pa.string()),
                        "member": pa.array([member] * nq, pa.string()),
                        "line_no": quarantine.column("line_no"),
                        "reason": quarantine.column("reason"),
                        "raw_text": quarantine.column("raw_text"),
                    }
                )
                tables.append(("quarantine", q))
            res["rows_quarantined"] += quarantine.num_rows
            res["rows_staged"] += good.num_rows
        if layout is not None and res["rows_read"] >= 10 and res["rows_staged"] == 0:
            fc = sum(int(pc.sum(pc.equal(t.column("reason"), "field_count")).as_py() or 0) for k, t in tables if k == "quarantine")
            if fc * 2 > res["rows_read"]:
                raise sources.SourceError(
                    f"{path}: wrong column count: {fc} of {res['rows_read']} lines do not have the {layout.n_columns} "
                    f"fields of {layout.name}"
                )
    except sources.SourceError as exc:
        res.update(status="failed", message=str(exc), rows_read=0, rows_staged=0, rows_quarantined=0)
        return res
    for kind, t in tables:
        stager.add({"1-2": "points", "1-3": "trips", "behavior": "events"}.get(kind, kind), t)
    if res["rows_read"] != res["rows_staged"] + res["rows_quarantined"]:
        raise AssertionError(f"{path}: row conservation violated while staging")
    res["status"] = "ok"
    if os.environ.get(CRASH_ENV) == "stage":
        stager.flush()
        os._exit(137)
    return res


def _stage_task(task: tuple[str, list[str]]) -> list[dict]:
    staging, paths = task
    stager = _Stager(Path(staging), f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
    out = [_stage_file(Path(p), stager) for p in paths]
    stager.flush()
    return out


# ---------------------------------------------------------------------------------------------
# Commit phase (main process)

JOURNAL = "_journal.json"


def _write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, ensure_ascii=False, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _apply_journal(warehouse: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Roll a written journal forward (idempotent: safe to repeat after a kill at any point)."""
    jpath = warehouse / JOURNAL
    if not jpath.exists():
        return
    j = json.loads(jpath.read_text(encoding="utf-8"))
    for i, (src, dst) in enumerate(j["renames"]):
        src, dst = warehouse / src, warehouse / dst
        if src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        if i == len(j["renames"]) // 2 and os.environ.get(CRASH_ENV) == "apply":
            os._exit(137)
    for rel in j["deletes"]:
        p = warehouse / rel
        if p.exists():
            p.unlink()
    con.execute("BEGIN")
    ids = [m["file_id"] for m in j["manifest"]]
    if ids:
        con.execute("DELETE FROM manifest WHERE file_id IN (SELECT unnest(?::VARCHAR[]))", [ids])
    shas = [m["sha256"] for m in j["manifest"] if m["status"] == "ok"]
    if shas:
        con.execute("DELETE FROM manifest WHERE status = 'failed' AND sha256 IN (SELECT unnest(?::VARCHAR[]))", [shas])
    if j["replaced"]:
        con.execute("UPDATE manifest SET status = 'replaced' WHERE file_id IN (SELECT unnest(?::VARCHAR[]))", [j["replaced"]])
    cols = ["file_id", "source_path", "size_bytes", "sha256", "format", "rows_read", "rows_stored", "rows_quarantined",
            "status", "message", "ingested_at", "rows_duplicate"]  # fmt: skip
    if j["manifest"]:
        con.executemany(
            f"INSERT INTO manifest ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [[m[c] for c in cols] for m in j["manifest"]],
        )
    con.execute("COMMIT")
    jpath.unlink()
    shutil.rmtree(warehouse / "_txn" / j["commit"], ignore_errors=True)


def recover(warehouse: Path, con: duckdb.DuckDBPyConnection) -> None:
    """After a kill: finish a written journal, then drop staging and uncommitted output."""
    _apply_journal(warehouse, con)
    for d in ("_staging", "_txn"):
        shutil.rmtree(warehouse / d, ignore_errors=True)
    for tmp in list(warehouse.glob("*.tmp")):
        tmp.unlink(missing_ok=True)


def _rel(warehouse: Path, p: Path | str) -> str:
    return str(Path(p).resolve().relative_to(warehouse.resolve()))


def _sql_list(values) -> str:
    return "[" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + "]"


MESH2_SQL = (
    "CAST(floor(lat * 1.5 + 1e-9) * 10000 + (floor(lon - 100 + 1e-9)) * 100"
    " + floor((lat * 1.5 + 1e-9 - floor(lat * 1.5 + 1e-9)) * 8) * 10"
    " + floor((lon - 100 + 1e-9 - floor(lon - 100 + 1e-9)) * 8) AS INTEGER)"
)


def _point_base_columns() -> list[str]:
    cols = [c.name for c in STYLE_1_2.columns if c.type != "id"]
    return ["vehicle_key", "vehicle_id", *cols, "x_m", "y_m", "member", "file_id", "line_no"]


def _commit(warehouse: Path, staging: Path, accepted: dict[str, dict], replaced: list[str], failed: list[dict], wcon) -> dict[str, int]:
    """Write the staged rows of `accepted` files (file_id → result) into the store; returns duplicates per file_id."""
    commit = dt.datetime.now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    txn = warehouse / "_txn" / commit
    txn.mkdir(parents=True, exist_ok=True)
    renames: list[tuple[str, str]] = []
    deletes: list[str] = []
    dups: dict[str, int] = {}
    acc = _sql_list(accepted) if accepted else "[]"
    rep = _sql_list(replaced) if replaced else "[]"
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{COMMIT_MEMORY}'")
    con.execute(f"SET temp_directory = '{(txn / 'spill').as_posix()}'")
    con.execute("SET preserve_insertion_order = false")
    try:
        pp = warehouse / "probe_points"
        dates = set()
        for d in (staging / "points").glob("operation_date=*"):
            dates.add(d.name.split("=", 1)[1])
        if replaced and pp.exists() and any(pp.rglob("*.parquet")):
            rows = con.execute(
                f"SELECT DISTINCT operation_date::VARCHAR FROM read_parquet('{pp.as_posix()}/*/*/*/*.parquet', hive_partitioning=false, union_by_name=true) "
                f"WHERE file_id IN (SELECT unnest({rep}))"
            ).fetchall()
            dates.update(r[0] for r in rows)
        base = ", ".join(_point_base_columns())
        for day in sorted(dates):
            existing = sorted(glob.glob(f"{pp.as_posix()}/year=*/month=*/mesh2=*/{day}_*.parquet"))
            staged = sorted(glob.glob(f"{(staging / 'points' / f'operation_date={day}').as_posix()}/*.arrow"))
            parts = []
            if existing:
                parts.append(
                    f"SELECT {base}, 0 AS _new, 0 AS _ord FROM read_parquet({_sql_list(existing)}, hive_partitioning=false, union_by_name=true) "
                    f"WHERE file_id NOT IN (SELECT unnest({rep}))"
                )
            if staged:
                parts.append(
                    f"SELECT {base}, 1 AS _new, list_position({acc}, file_id) AS _ord FROM {_register_staged(con, 'staged_day', staged)} "
                    f"WHERE file_id IN (SELECT unnest({acc}))"
                )
            if not parts:
                continue
            out = txn / "probe_points" / day
            out.parent.mkdir(parents=True, exist_ok=True)
            # One window pass: ordered by (time, position, speed, stored-first), an exact duplicate directly
            # follows the copy it repeats and is dropped; the LAG of the next point is unaffected (same x, y, time).
            con.execute(
                f"""
                COPY (
                  SELECT * EXCLUDE (_new, _ord, px, py, pt, plon, plat, psp),
                    CASE WHEN px IS NULL OR (x_m = px AND y_m = py) THEN NULL
                         ELSE (degrees(atan2(x_m - px, y_m - py)) + 360) % 360 END AS heading_deg,
                    CASE WHEN pt IS NULL THEN NULL ELSE epoch(gps_time) - epoch(pt) END AS dt_prev_s,
                    CASE WHEN px IS NULL THEN NULL ELSE sqrt((x_m - px) ^ 2 + (y_m - py) ^ 2) END AS dist_prev_m,
                    year(operation_date) AS year, month(operation_date) AS month, {MESH2_SQL} AS mesh2
                  FROM (
                    SELECT *, lag(x_m) OVER w AS px, lag(y_m) OVER w AS py, lag(gps_time) OVER w AS pt,
                              lag(lon) OVER w AS plon, lag(lat) OVER w AS plat, lag(speed_kmh) OVER w AS psp
                    FROM ({' UNION ALL BY NAME '.join(parts)})
                    WINDOW w AS (PARTITION BY vehicle_id, vehicle_key, trip_no
                                 ORDER BY gps_time, lon, lat, speed_kmh, _new, _ord, member, line_no)
                  )
                  WHERE pt IS NULL OR NOT (pt = gps_time AND plon = lon AND plat = lat AND psp = speed_kmh)
                ) TO '{out.as_posix()}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, PARTITION_BY (year, month, mesh2),
                                        FILENAME_PATTERN '{day}_{commit}_{{i}}', ROW_GROUP_SIZE 500000)
                """
            )
            for f in out.rglob("*.parquet"):
                renames.append((_rel(warehouse, f), _rel(warehouse, pp / f.relative_to(out))))
            deletes.extend(_rel(warehouse, e) for e in existing)
        # Duplicates per file: staged rows that did not reach the output (stored rows are never dropped).
        written = [(txn / "probe_points").as_posix() + "/*/*/*/*/*.parquet"]
        if accepted and glob.glob(written[0]):
            out_counts = dict(con.execute(
                f"SELECT file_id, count(*) FROM read_parquet('{written[0]}', hive_partitioning=false) "
                f"WHERE file_id IN (SELECT unnest({acc})) GROUP BY file_id").fetchall())
        else:
            out_counts = {}
        for fid, r in accepted.items():
            if r["format"] == FORMAT_1_2 and r["rows_staged"] != out_counts.get(fid, 0):
                dups[fid] = r["rows_staged"] - out_counts.get(fid, 0)
        # Trips and behaviour events: appended per commit, partitioned year / month.
        for kind, folder in (("trips", "trips"), ("events", "behavior_events")):
            staged = sorted(glob.glob(f"{(staging / kind).as_posix()}/*.arrow"))
            if staged:
                rel = _register_staged(con, f"staged_{kind}", staged)
                out = txn / folder
                txn.mkdir(parents=True, exist_ok=True)
                n = con.execute(
                    f"SELECT count(*) FROM {rel} WHERE file_id IN (SELECT unnest({acc}))"
                ).fetchone()[0]
                if n:
                    con.execute(
                        f"COPY (SELECT *, year(operation_date) AS year, month(operation_date) AS month "
                        f"FROM {rel} WHERE file_id IN (SELECT unnest({acc}))) "
                        f"TO '{out.as_posix()}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (year, month), FILENAME_PATTERN '{commit}_{{i}}')"
                    )
                    for f in out.rglob("*.parquet"):
                        renames.append((_rel(warehouse, f), _rel(warehouse, warehouse / folder / f.relative_to(out))))
            _drop_replaced(con, warehouse, warehouse / folder, replaced, txn, commit, renames, deletes)
        staged = sorted(glob.glob(f"{(staging / 'quarantine').as_posix()}/*.arrow"))
        if staged:
            rel = _register_staged(con, "staged_quarantine", staged)
            n = con.execute(
                f"SELECT count(*) FROM {rel} WHERE file_id IN (SELECT unnest({acc}))"
            ).fetchone()[0]
            if n:
                out = txn / "quarantine" / f"{commit}.parquet"
                out.parent.mkdir(parents=True, exist_ok=True)
                con.execute(
                    f"COPY (SELECT * FROM {rel} WHERE file_id IN (SELECT unnest({acc})) "
                    f"ORDER BY file_id, member, line_no) TO '{out.as_posix()}' (FORMAT parquet, COMPRESSION zstd)"
                )
                renames.append((_rel(warehouse, out), _rel(warehouse, warehouse / "quarantine" / out.name)))
        _drop_replaced(con, warehouse, warehouse / "quarantine", replaced, txn, commit, renames, deletes)
    finally:
        con.close()
    now = dt.datetime.now()
    manifest = []
    for fid, r in accepted.items():
        d = dups.get(fid, 0)
        stored = r["rows_staged"] - d
        if r["rows_read"] != stored + r["rows_quarantined"] + d:
            raise AssertionError(f"{r['path']}: row conservation violated")
        manifest.append(_manifest_row(r, "ok", stored, d, now))
    for r in failed:
        manifest.append(_manifest_row(r, "failed", 0, 0, now))
    if os.environ.get(CRASH_ENV) == "journal":
        os._exit(137)
    _write_json_atomic(
        warehouse / JOURNAL, {"commit": commit, "renames": renames, "deletes": deletes, "manifest": manifest, "replaced": replaced}
    )
    _apply_journal(warehouse, wcon)
    return dups


def _drop_replaced(con, warehouse, folder: Path, replaced, txn, commit, renames, deletes) -> None:
    """Rewrite the files of `folder` that hold rows of replaced file_ids, without those rows."""
    if not replaced or not folder.exists():
        return
    files = [p.as_posix() for p in folder.rglob("*.parquet")]
    if not files:
        return
    rep = _sql_list(replaced)
    hit = con.execute(
        f"SELECT DISTINCT filename FROM read_parquet({_sql_list(files)}, filename=true, hive_partitioning=false, union_by_name=true) "
        f"WHERE file_id IN (SELECT unnest({rep}))"
    ).fetchall()
    for (fname,) in hit:
        src = Path(fname)
        keep = con.execute(f"SELECT count(*) FROM read_parquet('{src.as_posix()}') WHERE file_id NOT IN (SELECT unnest({rep}))").fetchone()[0]
        if keep:
            out = txn / "rewrite" / src.relative_to(warehouse).parent / f"{src.stem}_r{commit}.parquet"
            out.parent.mkdir(parents=True, exist_ok=True)
            con.execute(
                f"COPY (SELECT * FROM read_parquet('{src.as_posix()}') WHERE file_id NOT IN (SELECT unnest({rep}))) "
                f"TO '{out.as_posix()}' (FORMAT parquet, COMPRESSION zstd)"
            )
            renames.append((_rel(warehouse, out), _rel(warehouse, src.parent / out.name)))
        deletes.append(_rel(warehouse, src))


def _manifest_row(r: dict, status: str, stored: int, dup: int, now) -> dict:
    return {
        "file_id": r["file_id"] or ("failed-" + uuid.uuid4().hex[:12]), "source_path": str(Path(r["path"]).resolve()),
        "size_bytes": r["size_bytes"], "sha256": r["sha256"], "format": r["format"],
        "rows_read": r["rows_read"] if status == "ok" else 0, "rows_stored": stored,
        "rows_quarantined": r["rows_quarantined"] if status == "ok" else 0, "status": status,
        "message": r["message"], "ingested_at": now.isoformat(sep=" "), "rows_duplicate": dup,
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Driver


class _Progress:
    """One status line on stderr (files and rows), only when stderr is a terminal."""

    def __init__(self, n_files: int, enabled: bool | None = None):
        self.n = n_files
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.done = 0
        self.rows = 0
        self.t0 = time.perf_counter()

    def update(self, results: list[dict]) -> None:
        self.done += len(results)
        self.rows += sum(r["rows_read"] for r in results)
        if self.enabled:
            rate = self.rows / max(time.perf_counter() - self.t0, 1e-9)
            width = 30
            fill = int(width * self.done / max(self.n, 1))
            sys.stderr.write(
                f"\ringest [{'#' * fill}{'.' * (width - fill)}] files {self.done}/{self.n}, rows {self.rows:,} ({rate:,.0f}/s)"
            )
            sys.stderr.flush()

    def close(self, msg: str = "") -> None:
        if self.enabled:
            sys.stderr.write(f"\r{msg:<100}\r" if msg else "\n")
            sys.stderr.flush()


_DATE_IN_NAME = re.compile(r"(\d{8})(?!.*\d{8})")


def _batches(files: list[Path], batch_bytes: int) -> list[list[Path]]:
    """Files in commit batches of about `batch_bytes`, ordered by the date in their name so that a
    batch holds whole days (a day touched by two batches is rewritten by the second)."""
    def date_key(f: Path) -> tuple[str, str]:
        m = _DATE_IN_NAME.search(f.name)
        return (m.group(1) if m else "", str(f))

    batches, cur, size = [], [], 0
    for f in sorted(files, key=date_key):
        s = f.stat().st_size if f.exists() else 0
        if cur and size + s > batch_bytes:
            batches.append(cur)
            cur, size = [], 0
        cur.append(f)
        size += s
    if cur:
        batches.append(cur)
    return batches


def _tasks(files: list[Path], n_workers: int) -> list[list[str]]:
    """Group files into tasks of about 32 MB (small files batched; big files alone), balanced over workers."""
    sizes = [f.stat().st_size if f.exists() else 0 for f in files]
    total = sum(sizes)
    target = max(1, min(32 * 1024 * 1024, total // max(1, n_workers * 4) + 1))
    tasks, cur, cur_size = [], [], 0
    for f, s in zip(files, sizes):
        cur.append(str(f))
        cur_size += s
        if cur_size >= target or len(cur) >= 256:
            tasks.append(cur)
            cur, cur_size = [], 0
    if cur:
        tasks.append(cur)
    return tasks


def ingest_paths(
    paths: list[str | Path],
    warehouse: str | Path,
    *,
    replace: bool = False,
    fmt: str | None = None,
    behavior_layout: str | Path | None = None,
    workers: int | None = None,
    progress: bool | None = None,
    batch_bytes: int = BATCH_BYTES,
) -> IngestReport:
    """Ingest files and folders (recursively) into `warehouse`; returns per-file results.

    Raises FileNotFoundError for a path that does not exist (before anything is written),
    WarehouseBusy when another ingest holds the warehouse, ValueError for an unknown format.
    """
    t0 = time.perf_counter()
    started = dt.datetime.now()
    if fmt is not None and fmt not in FORMAT_KEYS:
        raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(FORMAT_KEYS)})")
    all_layouts = layouts(behavior_layout)  # fails early on a bad layout file
    files = sources.find_delivery_files(paths)
    warehouse = Path(warehouse)
    key = load_id_key()
    report = IngestReport()
    with ingest_lock(warehouse) as lock_fd:
        _W["main_pid"] = os.getpid()
        con = connect(warehouse)
        try:
            recover(warehouse, con)
            known = {r[0] for r in con.execute("SELECT sha256 FROM manifest WHERE status = 'ok'").fetchall()}
            by_path: dict[str, list[tuple[str, str]]] = {}
            for fid, sp, sha in con.execute("SELECT file_id, source_path, sha256 FROM manifest WHERE status = 'ok'").fetchall():
                by_path.setdefault(sp, []).append((fid, sha))
            run = uuid.uuid4().hex[:10]
            n_workers = max(1, min(workers or os.cpu_count() or 1, len(files)))
            bar = _Progress(len(files), progress)
            init = (key, known, fmt, str(behavior_layout) if behavior_layout else None, lock_fd)
            seen: set[str] = set()
            out: dict[str, FileResult] = {}
            pool = None
            if n_workers > 1 and len(files) > 1:
                # A worker that dies (killed, out of memory) breaks the pool: the ingest then fails
                # (BrokenProcessPool) before that batch's commit, instead of waiting forever for its task.
                pool = ProcessPoolExecutor(n_workers, mp_context=mp.get_context("fork"), initializer=_init_worker, initargs=init)
            else:
                _init_worker(*init)
            try:
                for bi, batch in enumerate(_batches(files, batch_bytes)):
                    staging = warehouse / "_staging" / f"{run}-{bi}"
                    staging.mkdir(parents=True, exist_ok=True)
                    tasks = [(str(staging), t) for t in _tasks(batch, n_workers)]
                    t_stage = time.perf_counter()
                    results: list[dict] = []
                    if pool is None:
                        for t in tasks:
                            r = _stage_task(t)
                            bar.update(r)
                            results.extend(r)
                    else:
                        for fut in as_completed([pool.submit(_stage_task, t) for t in tasks]):
                            r = fut.result()
                            bar.update(r)
                            results.extend(r)
                    order = {str(f): i for i, f in enumerate(batch)}
                    results.sort(key=lambda r: order[r["path"]])
                    accepted: dict[str, dict] = {}
                    failed: list[dict] = []
                    replaced: list[str] = []
                    for r in results:
                        if r["status"] == "ok" and r["file_id"] in seen:
                            r["status"] = "skipped"  # the same content twice in one run
                        if r["status"] == "ok":
                            accepted[r["file_id"]] = r
                            seen.add(r["file_id"])
                            if replace:
                                for fid, sha in by_path.get(str(Path(r["path"]).resolve()), []):
                                    if sha != r["sha256"]:
                                        replaced.append(fid)
                        elif r["status"] == "failed":
                            failed.append(r)
                            log.warning("failed: %s", r["message"])
                    dups = {}
                    t_commit = time.perf_counter()
                    report.stage_seconds += t_commit - t_stage
                    if accepted or failed or replaced:
                        dups = _commit(warehouse, staging, accepted, replaced, failed, con)
                    shutil.rmtree(staging, ignore_errors=True)
                    shutil.rmtree(warehouse / "_txn", ignore_errors=True)
                    report.commit_seconds += time.perf_counter() - t_commit
                    for r in results:
                        ok = r["status"] == "ok"
                        d = dups.get(r["file_id"], 0) if ok else 0
                        out[r["path"]] = FileResult(
                            Path(r["path"]), r["status"], r["rows_read"] if ok else 0, r["rows_staged"] - d if ok else 0,
                            r["rows_quarantined"] if ok else 0, d, r["message"], r["format"], r["file_id"], r["sha256"],
                            r["size_bytes"],
                        )  # fmt: skip
            finally:
                if pool is not None:
                    pool.shutdown(cancel_futures=True)
                bar.close()
            shutil.rmtree(warehouse / "_staging", ignore_errors=True)
            report.files = [out[str(f)] for f in files]
            refresh_views(con, warehouse, all_layouts["behavior"])
            report.seconds = time.perf_counter() - t0
            n = {s: sum(f.status == s for f in report.files) for s in ("ok", "skipped", "failed")}
            con.execute(
                "INSERT INTO ingest_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [started, dt.datetime.now(), n["ok"], n["skipped"], n["failed"], report.total("rows_read"),
                 report.total("rows_stored"), report.total("rows_quarantined"), report.total("rows_duplicate"), report.seconds],
            )  # fmt: skip
        finally:
            con.close()
    return report


__all__ = ["FileResult", "IngestReport", "ingest_paths", "process_payload", "project_to_metric", "FORMAT_1_2", "column_index"]
