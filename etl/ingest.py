"""Ingest of ETC2.0 deliveries (様式1-2, 様式1-3, 挙動履歴) into the warehouse: nothing lost, nothing doubled.

Design (one pass: every point is written once; streaming, rerun-safe):

1. **Stage** (etl._ingest_workers: a process pool over files, both cores; or tasks on a Dask
   cluster, `client`): `etl.stage.stage_file`, a pure function of one file → its staged output:
   validated, pseudonymised, projected points as final Parquet files (one per operation date), its
   quarantine, trips or events. A file whose content is already in the manifest is skipped; a file
   whose path was ingested with other content is refused unless `--replace` (so a changed delivery
   is never silently added beside its old version).
2. **Commit** (etl._ingest_commit with etl._ingest_duplicates; main process, per batch of about
   2 GB of deliveries): for every operation date touched, the `point_key`s (64-bit hash of
   operation date, vehicle, trip, GPS時刻, lon, lat, speed) of the stored files of that date and of
   the staged files are compared; a match is confirmed on the fields themselves, and an exact
   duplicate is moved from its staged file to `point_duplicates` (the stored copy, else the one of
   the file listed first, stays). Only a staged file holding duplicates is rewritten; the others
   are renamed into the store as they are. Nothing else of the store is read: the work grows with
   the days a delivery touches, not with the warehouse.
   `--replace` (a file at a known path with new content): the old version's files go (points,
   duplicates, quarantine, trips, events: every file holds the rows of one delivered file), and
   an exact duplicate another file delivered whose stored copy was in them comes back from
   `point_duplicates` into `probe_points` (that file's counts follow). `--rekey` does that for
   every file of the warehouse (new pseudonyms under a new key: the old ones cannot be converted).
3. **Journal** (etl._ingest_commit): the renames, deletions, manifest rows and the new snapshot are written to
   `_journal.json` (atomically), then applied: new files renamed into place → one DuckDB
   transaction (manifest, store_files, views, key fingerprint) → `_snapshot.json` replaced → old
   files deleted → journal removed. Every step is idempotent, so a kill at any moment leaves the
   warehouse as before the commit (no journal yet: the next ingest drops `_staging`) or as after
   it (the next ingest, or any later one, rolls the journal forward); readers see one or the
   other (see etl.warehouse).

Per file, rows_read = rows_stored + rows_quarantined + rows_duplicate, checked before commit.
One ingest at a time: an OS lock (`.ingest.lock`) refuses a second one with "warehouse is busy".
The ID key's fingerprint is recorded; another key is refused (`KeyMismatch`) unless `rekey`.

The modules with a leading underscore (`_ingest_workers`, `_ingest_duplicates`, `_ingest_commit`,
`_ingest_progress`) serve this one: `ingest_paths` and `recover` are the entry points.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from etl import sources
from etl._ingest_commit import commit_batch, recover
from etl._ingest_progress import Progress
from etl._ingest_workers import commit_batches, file_size, stage_batch, stage_on_worker, staging_tasks, start_workers
from etl.failures import is_io_failure
from etl.pseudonymise import IdKeyError, KeyMismatch, key_file, key_fingerprint, load_id_key
from etl.spec import FORMAT_1_2, column_index, layouts
from etl.stage import StageContext, detect_format, process_payload, project_to_metric
from etl.warehouse import JOURNAL, WarehouseOutdated, connect, empty_snapshot, ingest_lock, is_outdated, read_snapshot

FORMAT_KEYS = ("1-2", "1-3", "behavior")
BATCH_BYTES = 2 * 1024**3  # delivered bytes staged before a commit (bounds staging disk and redo after a kill)


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
    rows_outside_mesh: int = 0  # of rows_quarantined: points outside their file's 2次メッシュ
    rows_outside_day: int = 0  # of rows_quarantined: GPS時刻 not on the operation date or the day after
    skipped_members: list = field(default_factory=list)  # (member, reason) of ZIP members not read as data


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: float = 0.0  # reading, validating, writing the staged Parquet (workers, wall clock)
    commit_seconds: float = 0.0  # duplicate check, journal, renames (wall clock)
    replaced: int = 0  # earlier versions of files replaced (--replace, --rekey)
    restored: int = 0  # duplicates that came back into probe_points when the file holding their copy was replaced

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    def summary(self) -> str:
        n = {s: sum(f.status == s for f in self.files) for s in ("ok", "skipped", "failed")}
        members = sum(len(f.skipped_members) for f in self.files)
        skipped = f", {members} ZIP member(s) not data, skipped" if members else ""
        extra = f"; {self.replaced} earlier versions replaced" if self.replaced else ""
        extra += f", {self.restored} duplicates restored" if self.restored else ""
        return (
            f"files: {n['ok']} ingested, {n['skipped']} already in warehouse, {n['failed']} failed{skipped}; "
            f"rows read {self.total('rows_read')} = stored {self.total('rows_stored')} "
            f"+ quarantined {self.total('rows_quarantined')} + duplicates skipped {self.total('rows_duplicate')}{extra}"
            f"; of the quarantined: {self.total('rows_outside_mesh')} outside their 2次メッシュ, "
            f"{self.total('rows_outside_day')} with GPS時刻 off the operation day"
        )


def _check_key_location(warehouse: Path) -> None:
    kf = key_file()
    if kf is None:
        return
    root, k = warehouse.resolve(), kf.resolve()
    if k == root or root in k.parents:
        raise IdKeyError(
            f"the ID key file {kf} lies inside the warehouse {warehouse}: keep it outside (ETC2CALM_ID_KEY_FILE)"
        )


def ingest_paths(  # noqa: PLR0913 - the public entry point: paths, warehouse, then keyword-only options
    paths: list[str | Path],
    warehouse: str | Path,
    *,
    replace: bool = False,
    rekey: bool = False,
    fmt: str | None = None,
    behavior_layout: str | Path | None = None,
    workers: int | None = None,
    progress: bool | None = None,
    batch_bytes: int = BATCH_BYTES,
    client=None,
) -> IngestReport:
    """Ingest files and folders (recursively) into `warehouse`; returns per-file results.

    Raises FileNotFoundError for a path that does not exist (before anything is written),
    WarehouseBusy when another ingest holds the warehouse, ValueError for an unknown format,
    IdKeyError for a short key or a key file inside the warehouse, KeyMismatch when the key is
    not the warehouse's (unless `rekey`: every stored row is dropped and `paths` are ingested
    under the current key).

    client: a `distributed.Client` (etl.cluster.dask_client): files are staged by tasks on its
    workers (per group of files; a task whose worker dies is run again elsewhere, and staging is
    idempotent), which must reach the deliveries and the warehouse at the same paths and hold the
    same ID key in their own environment or key file (checked by fingerprint; the key is never a
    task argument). The commit stays here, the single writer, exactly as without a client.
    """
    t0 = time.perf_counter()
    started = dt.datetime.now()
    if fmt is not None and fmt not in FORMAT_KEYS:
        raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(FORMAT_KEYS)})")
    layouts(behavior_layout)  # fails early on a bad layout file
    files, problems = sources.scan_delivery_paths(paths)
    warehouse = Path(warehouse)
    key = load_id_key()
    _check_key_location(warehouse)
    fingerprint = key_fingerprint(key)
    report = IngestReport()
    with ingest_lock(warehouse) as lock_fd:
        con = connect(warehouse)
        try:
            snap = _open_for_commit(warehouse, con, fingerprint, rekey)
            stored = _StoredFiles.read(con, rekey)
            ctx = StageContext(
                key=key,
                known=stored.known,
                by_path=stored.by_path,
                replace=replace,
                override=fmt,
                behavior_layout=str(behavior_layout) if behavior_layout else None,
            )
            run = _Run(warehouse, con, snap, fingerprint, replace, stored, report)
            run.failed_before = [_problem_result(p, msg) for p, msg in problems]
            for r in run.failed_before:
                run.out[r["path"]] = _file_result(r, {})
            _stage_and_commit(run, files, ctx, lock_fd, workers, client, progress, batch_bytes)
            report.files = [run.out[str(f)] for f in files] + [run.out[str(p)] for p, _ in problems]
            report.seconds = time.perf_counter() - t0
            try:
                _record_run(con, report, started)
            except Exception as exc:
                _note_committed(exc, run.commits, "the whole delivery but its row in ingest_runs")
                raise
        finally:
            con.close()
    return report


def _open_for_commit(warehouse: Path, con, fingerprint: str, rekey: bool) -> dict:
    """The warehouse's snapshot after recovery from a kill; refuses an outdated warehouse and, unless
    `rekey`, another ID key than the one it was built with."""
    recover(warehouse, con)
    if is_outdated(warehouse):
        raise WarehouseOutdated(
            f"warehouse {warehouse} was written by an earlier etc2calm (point files without a snapshot, "
            "with headings): move it away and ingest the deliveries into a new warehouse"
        )
    snap = read_snapshot(warehouse) or _base_snapshot(con)
    recorded = snap.get("key_fingerprint") or _info(con, "key_fingerprint")
    if recorded and recorded != fingerprint and not rekey:
        raise KeyMismatch(
            f"the ID key (fingerprint {fingerprint}) is not the key warehouse {warehouse} was built with "
            f"(fingerprint {recorded}): its pseudonyms would not match the stored ones. Use that key "
            "(ETC2CALM_ID_KEY or the key file), or re-key: etc2calm ingest --rekey PATH... drops every stored "
            "row and ingests PATH... under this key (give every delivery again)"
        )
    return snap


@dataclass
class _StoredFiles:
    """What the manifest holds before this run: the content already stored and where it came from."""

    to_replace_all: set[str]  # file_ids every stored file (--rekey), else empty
    known: frozenset  # SHA-256 of the stored files (skipped when delivered again)
    by_path: dict[str, list[str]]  # source path → SHA-256 of its stored versions
    ids_by_path: dict[str, list[tuple[str, str]]]  # source path → (file_id, SHA-256) of its stored versions

    @classmethod
    def read(cls, con, rekey: bool) -> _StoredFiles:
        ok_rows = con.execute("SELECT file_id, source_path, sha256 FROM manifest WHERE status = 'ok'").fetchall()
        if rekey:
            return cls({fid for fid, _, _ in ok_rows}, frozenset(), {}, {})
        by_path: dict[str, list[str]] = {}
        ids_by_path: dict[str, list[tuple[str, str]]] = {}
        for fid, sp, sha in ok_rows:
            by_path.setdefault(sp, []).append(sha)
            ids_by_path.setdefault(sp, []).append((fid, sha))
        return cls(set(), frozenset(sha for _, _, sha in ok_rows), by_path, ids_by_path)


@dataclass
class _Run:
    """The state of one ingest across its batches (commits in order, one writer)."""

    warehouse: Path
    con: object
    snap: dict
    fingerprint: str
    replace: bool
    stored: _StoredFiles
    report: IngestReport
    out: dict[str, FileResult] = field(default_factory=dict)  # result per path as given
    seen: set[str] = field(default_factory=set)  # file_ids accepted in this run
    failed_before: list[dict] = field(default_factory=list)  # unreadable paths: recorded with the first commit
    commits: int = 0


def _stage_and_commit(
    run: _Run, files: list[Path], ctx: StageContext, lock_fd: int, workers, client, progress, batch_bytes: int
) -> None:
    """Stage the files batch by batch (pool, this process or a Dask cluster) and commit each batch."""
    bar = Progress(len(files), sum(file_size(f) for f in files), progress)
    stager = start_workers(ctx, lock_fd, files, workers, client)
    batches = commit_batches(files, batch_bytes) or ([[]] if run.failed_before or run.stored.to_replace_all else [])
    key = uuid.uuid4().hex[:10]
    try:
        for bi, batch in enumerate(batches):
            staging = run.warehouse / "_staging" / f"{key}-{bi}"
            staging.mkdir(parents=True, exist_ok=True)
            t_stage = time.perf_counter()
            tasks = staging_tasks(batch, stager.n_workers)
            results = stage_batch(stager, staging, tasks, f"stage-{key}-{bi}", run.fingerprint, bar.update)
            t_commit = time.perf_counter()
            run.report.stage_seconds += t_commit - t_stage
            _commit_results(run, staging, batch, results)
            shutil.rmtree(staging, ignore_errors=True)
            run.report.commit_seconds += time.perf_counter() - t_commit
    except Exception as exc:
        _note_committed(exc, run.commits, "part of the delivery")
        raise
    finally:
        stager.close()
        bar.close()
        if not (run.warehouse / JOURNAL).exists():  # staged files a pending journal names stay for it
            shutil.rmtree(run.warehouse / "_staging", ignore_errors=True)


def _commit_results(run: _Run, staging: Path, batch: list[Path], results: list[dict]) -> None:
    """Sort a batch's staged results into accepted, failed and replaced files, and commit them."""
    order = {str(f): i for i, f in enumerate(batch)}
    results.sort(key=lambda r: order[r["path"]])
    accepted, failed, replaced = [], list(run.failed_before), set(run.stored.to_replace_all)
    run.failed_before, run.stored.to_replace_all = [], set()
    for r in results:
        if r["status"] == "ok" and r["file_id"] in run.seen:
            r["status"] = "skipped"  # the same content twice in one run
        if r["status"] in ("ok", "skipped") and run.replace:
            for fid, sha in run.stored.ids_by_path.get(r["source_path"], []):
                if sha != r["sha256"]:
                    replaced.add(fid)
        if r["status"] == "ok":
            accepted.append(r)
            run.seen.add(r["file_id"])
        elif r["status"] == "failed":
            failed.append(r)
    dups: dict[str, int] = {}
    if accepted or failed or replaced:
        run.snap, dups, c = commit_batch(
            run.warehouse, run.con, run.snap, staging, accepted, failed, replaced, run.fingerprint
        )
        run.report.replaced += len(replaced)
        run.report.restored += c.restored
        run.commits += 1
    for r in results:
        run.out[r["path"]] = _file_result(r, dups)


def _record_run(con, report: IngestReport, started: dt.datetime) -> None:
    n = {s: sum(f.status == s for f in report.files) for s in ("ok", "skipped", "failed")}
    con.execute(
        "INSERT INTO ingest_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            started,
            dt.datetime.now(),
            n["ok"],
            n["skipped"],
            n["failed"],
            report.total("rows_read"),
            report.total("rows_stored"),
            report.total("rows_quarantined"),
            report.total("rows_duplicate"),
            report.seconds,
        ],
    )


def _note_committed(exc: BaseException, commits: int, what: str) -> None:
    """An I/O failure after this run committed: say what is stored (etc2calm.cli prints it instead of
    "the warehouse is unchanged")."""
    if commits and is_io_failure(exc):
        with contextlib.suppress(AttributeError, TypeError):
            exc.warehouse_state = (
                f"{what} is stored ({commits} commit(s) before the failure); run the same command again "
                "when there is space: it adds the rest, nothing twice"
            )


def _info(con, name: str) -> str | None:
    row = con.execute("SELECT value FROM warehouse_info WHERE name = ?", [name]).fetchone()
    return row[0] if row and row[0] else None


def _base_snapshot(con) -> dict:
    """The snapshot of a new warehouse (no `_snapshot.json` yet)."""
    snap = empty_snapshot()
    snap["key_fingerprint"] = _info(con, "key_fingerprint")
    gen = _info(con, "generation")
    snap["generation"] = int(gen) if gen else 0
    return snap


def _problem_result(path: Path, message: str) -> dict:
    return {
        "path": str(path),
        "source_path": str(Path(path).absolute()),
        "status": "failed",
        "rows_read": 0,
        "rows_staged": 0,
        "rows_quarantined": 0,
        "message": message,
        "format": "",
        "file_id": "",
        "sha256": "",
        "size_bytes": 0,
    }


def _file_result(r: dict, dups: dict[str, int]) -> FileResult:
    ok = r["status"] == "ok"
    d = dups.get(r["file_id"], 0) if ok else 0
    return FileResult(
        Path(r["path"]),
        r["status"],
        r["rows_read"] if ok else 0,
        r["rows_staged"] - d if ok else 0,
        r["rows_quarantined"] if ok else 0,
        d,
        r["message"],
        r["format"],
        r["file_id"],
        r["sha256"],
        r["size_bytes"],
        r.get("rows_outside_mesh", 0) if ok else 0,
        r.get("rows_outside_day", 0) if ok else 0,
        [tuple(m) for m in r.get("skipped_members", [])] if ok else [],
    )


__all__ = [
    "FileResult",
    "IngestReport",
    "ingest_paths",
    "recover",
    "stage_on_worker",
    "process_payload",
    "project_to_metric",
    "detect_format",
    "FORMAT_1_2",
    "column_index",
]
