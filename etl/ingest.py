"""Ingest of ETC2.0 deliveries (様式1-2, 様式1-3, 挙動履歴) into the warehouse: nothing lost, nothing doubled.

Design (one pass: every point is written once; streaming, rerun-safe):

1. **Stage** (process pool over files, both cores; or tasks on a Dask cluster, `client`):
   `etl.stage.stage_file`, a pure function of
   one file → its staged output: validated, pseudonymised, projected points as final Parquet files
   (one per operation date), its quarantine, trips or events. A file whose content is
   already in the manifest is skipped; a file whose path was ingested with other content is
   refused unless `--replace` (so a changed delivery is never silently added beside its old
   version).
2. **Commit** (main process, per batch of about 2 GB of deliveries): for every operation date touched,
   the `point_key`s (64-bit hash of operation date, vehicle, trip, GPS時刻, lon, lat, speed) of
   the stored files of that date and of the staged files are
   compared; a match is confirmed on the fields themselves, and an exact duplicate is moved from
   its staged file to `point_duplicates` (the stored copy, else the one of the file listed first,
   stays). Only a staged file holding duplicates is rewritten; the others are renamed into the
   store as they are. Nothing else of the store is read: the work grows with the days a delivery
   touches, not with the warehouse.
   `--replace` (a file at a known path with new content): the old version's files go (points,
   duplicates, quarantine, trips, events: every file holds the rows of one delivered file), and
   an exact duplicate another file delivered whose stored copy was in them comes back from
   `point_duplicates` into `probe_points` (that file's counts follow). `--rekey` does that for
   every file of the warehouse (new pseudonyms under a new key: the old ones cannot be converted).
3. **Journal**: the renames, deletions, manifest rows and the new snapshot are written to
   `_journal.json` (atomically), then applied: new files renamed into place → one DuckDB
   transaction (manifest, store_files, views, key fingerprint) → `_snapshot.json` replaced → old
   files deleted → journal removed. Every step is idempotent, so a kill at any moment leaves the
   warehouse as before the commit (no journal yet: the next ingest drops `_staging`) or as after
   it (the next ingest, or any later one, rolls the journal forward); readers see one or the
   other (see etl.warehouse).

Per file, rows_read = rows_stored + rows_quarantined + rows_duplicate, checked before commit.
One ingest at a time: an OS lock (`.ingest.lock`) refuses a second one with "warehouse is busy".
The ID key's fingerprint is recorded; another key is refused (`KeyMismatch`) unless `rekey`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
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
import pyarrow.parquet as pq

from etl import sources
from etl.failures import is_io_failure, writing
from etl.kernels import repeated_keys
from etl.pseudonymise import IdKeyError, KeyMismatch, key_file, key_fingerprint, load_id_key
from etl.schema import DUPLICATES_TABLE, MANIFEST_COLUMNS
from etl.spec import FORMAT_1_2, column_index, layouts
from etl.stage import (
    CRASH_ENV,
    DELTA_COLUMNS,
    DICT_COLUMNS,
    DUPLICATE_KEY,
    PARQUET_OPTIONS,
    POINT_SCHEMA,
    ROW_GROUP_ROWS,
    StageContext,
    detect_format,
    key_tuples,
    point_keys,
    process_payload,
    project_to_metric,
    stage_file,
)
from etl.warehouse import (
    JOURNAL,
    SNAPSHOT,
    WarehouseOutdated,
    connect,
    empty_snapshot,
    ingest_lock,
    is_outdated,
    read_snapshot,
    refresh_views,
    replace_durably,
    transaction,
    update_store_files,
    write_json_atomic,
)

log = logging.getLogger(__name__)

FORMAT_KEYS = ("1-2", "1-3", "behavior")
BATCH_BYTES = 2 * 1024**3  # delivered bytes staged before a commit (bounds staging disk and redo after a kill)
TASK_BYTES = 32 * 1024**2  # small files are staged several to a task, up to this many bytes
TASKS_PER_WORKER = 32  # fine-grained enough that the end of a batch is balanced (one 50k-row ZIP ≈ 0.12 s)


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


# ---------------------------------------------------------------------------------------------
# Stage phase (workers)

_W: dict = {}


def _init_worker(ctx: StageContext, lock_fd: int = -1) -> None:
    if lock_fd >= 0 and os.getpid() != _W.get("main_pid"):
        # A forked worker: drop the inherited lock descriptor (the lock belongs to the ingest process,
        # and must go when it dies) and die with it rather than linger as an orphan.
        os.close(lock_fd)
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    _W["ctx"] = ctx


def _stage_task(task: tuple[str, list[str]]) -> list[dict]:
    staging, paths = task
    return [stage_file(Path(p), Path(staging), _W["ctx"]) for p in paths]


_WORKER_KEY: dict[str, bytes] = {}


def _worker_key(fingerprint: str) -> bytes:
    """The ID key of this (Dask worker) process, from its own environment or key file, checked against
    the ingest's fingerprint: the key itself never travels as a task argument."""
    key = _WORKER_KEY.get(fingerprint)
    if key is None:
        key = load_id_key()
        if key_fingerprint(key) != fingerprint:
            raise KeyMismatch(
                f"the ID key of Dask worker process {os.getpid()} (fingerprint {key_fingerprint(key)}) is not the "
                f"ingest's (fingerprint {fingerprint}): give every worker the same key (ETC2CALM_ID_KEY or the key "
                "file)"
            )
        _WORKER_KEY[fingerprint] = key
    return key


def stage_on_worker(staging: str, paths: list[tuple[str, str]], ctx: StageContext, fingerprint: str) -> list[dict]:
    """A staging task on a Dask worker: `stage_file` of each (path as given, absolute path).

    `ctx` carries no key (its key is empty): the worker loads its own and checks its fingerprint.
    The file is read at its absolute path (the worker's working directory may differ); the result
    names it as given, as the local path does, so manifests and messages are the same.
    """
    ctx = dataclasses.replace(ctx, key=_worker_key(fingerprint))
    out = []
    for given, absolute in paths:
        r = stage_file(Path(absolute), Path(staging), ctx)
        if given != absolute:
            r["path"] = given
            r["message"] = r["message"].replace(absolute, given)
        out.append(r)
    return out


# ---------------------------------------------------------------------------------------------
# Commit: duplicates by key, replaced files, journal


def _read(path: Path, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(path, columns=columns, use_threads=False)


def _key_columns(path: Path) -> pa.Table:
    """The duplicate-key fields (and point_key, vehicle_id where stored) of a point file."""
    names = set(pq.read_schema(path).names)
    return _read(path, [c for c in (*DUPLICATE_KEY, "vehicle_id", "point_key") if c in names])


def _file_keys(path: Path) -> np.ndarray:
    """point_key of every row of a stored point file (computed for files written before the column existed)."""
    if "point_key" in pq.read_schema(path).names:
        return (
            _read(path, ["point_key"]).column("point_key").to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        )
    return point_keys(_key_columns(path))


def _tuples_with_keys(path: Path, keys: np.ndarray) -> list[tuple]:
    """The duplicate-key fields of the rows of `path` whose point_key is in `keys`."""
    t = _key_columns(path)
    k = t.column("point_key").to_numpy(zero_copy_only=False) if "point_key" in t.column_names else point_keys(t)
    mask = np.isin(k, keys)
    if not mask.any():
        return []
    return key_tuples(t.filter(pa.array(mask)))


def _repeats(keys: np.ndarray) -> np.ndarray:
    """True where a key occurred earlier in the array (a compiled hash set: linear time)."""
    return repeated_keys(np.ascontiguousarray(keys, dtype=np.int64))


BUCKET_KEYS = 20_000_000  # keys held at once by the duplicate check of one operation date (~0.8 GB with its hash set)


class _Group:
    """The kept points of one operation date during a commit: where their keys and fields are.

    Keys are read when needed (and a very large day is checked in buckets of key % K), so memory
    does not grow with the size of a day."""

    def __init__(self):
        # (file, table, keys held or None, raw keys file or None, rows)
        self.sources: list[tuple[Path | None, pa.Table | None, np.ndarray | None, Path | None, int]] = []

    def add(
        self,
        n: int,
        path: Path | None = None,
        table: pa.Table | None = None,
        keys: np.ndarray | None = None,
        keys_file: Path | None = None,
    ) -> None:
        if n:
            self.sources.append((path, table, keys, keys_file, n))

    @staticmethod
    def load(source) -> np.ndarray:
        path, _, keys, keys_file, _ = source
        if keys is not None:
            return keys
        if keys_file is not None:
            return np.fromfile(keys_file, dtype=np.int64)
        return _file_keys(path)

    def tuples(self, keys: np.ndarray) -> set[tuple]:
        out: set[tuple] = set()
        for src in self.sources:
            path, table, _, _, _ = src
            mask = np.isin(self.load(src), keys)
            if not mask.any():
                continue
            if table is not None:
                out.update(key_tuples(table.filter(pa.array(mask))))
            else:
                out.update(_tuples_with_keys(path, keys))
        return out


def _repeat_masks(loaders: list, sizes: list[int]) -> list[np.ndarray]:
    """Per source (in order), True where its key occurred earlier in this or an earlier source."""
    total = sum(sizes)
    k = max(1, -(-total // BUCKET_KEYS))
    if k == 1:
        rep = _repeats(np.concatenate([load() for load in loaders]) if loaders else np.zeros(0, np.int64))
        return np.split(rep, np.cumsum(sizes)[:-1]) if sizes else []
    masks = [np.zeros(n, dtype=bool) for n in sizes]
    for b in range(k):  # equal keys fall in one bucket: each bucket is checked on its own
        parts, picks = [], []
        for load in loaders:
            keys = load()
            pick = np.flatnonzero(keys.view(np.uint64) % np.uint64(k) == np.uint64(b))
            parts.append(keys[pick])
            picks.append(pick)
        rep = _repeats(np.concatenate(parts))
        for m, pick, r in zip(masks, picks, np.split(rep, np.cumsum([len(p) for p in parts])[:-1]), strict=True):
            m[pick] = r
    return masks


def _split_duplicates(table: pa.Table, keys: np.ndarray, cand: np.ndarray, group: _Group) -> np.ndarray:
    """Mask of the rows of `table` (in order) that exactly repeat a kept point of the group or an earlier
    row; `cand` marks the rows whose key occurred before (only those can)."""
    dup = np.zeros(len(keys), dtype=bool)
    cand_keys = np.unique(keys[cand])
    seen = group.tuples(cand_keys)
    rows = np.flatnonzero(np.isin(keys, cand_keys))
    tuples = key_tuples(table.take(pa.array(rows)))
    for i, t in zip(rows, tuples, strict=True):
        if t in seen:
            dup[i] = True
        else:
            seen.add(t)
    return dup


def _write_points(table: pa.Table, path: Path) -> None:
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            table.cast(POINT_SCHEMA) if table.schema != POINT_SCHEMA else table,
            path,
            use_dictionary=DICT_COLUMNS,
            column_encoding=DELTA_COLUMNS,
            row_group_size=ROW_GROUP_ROWS,
            **PARQUET_OPTIONS,
        )


def _rel(warehouse: Path, p: Path) -> str:
    return Path(p).relative_to(warehouse).as_posix()


def _point_dir(table: str, year: int, month: int) -> str:
    return f"{table}/year={year}/month={month}"


@dataclass
class _Commit:
    warehouse: Path
    staging: Path
    commit: str
    snap: dict
    renames: list = field(default_factory=list)
    deletes: list = field(default_factory=list)
    new_entries: dict = field(default_factory=lambda: {t: [] for t in empty_snapshot()["files"]})
    manifest_set: dict = field(default_factory=dict)  # file_id -> (rows_stored, rows_duplicate) of files already stored
    restored: int = 0

    def place(self, src: Path, table: str, dst_rel: str, entry: dict) -> None:
        self.renames.append((_rel(self.warehouse, src), dst_rel))
        self.new_entries[table].append(dict(entry, path=dst_rel))


def _commit_batch(
    warehouse: Path,
    con,
    snap: dict,
    staging: Path,
    accepted: list[dict],
    failed: list[dict],
    replaced: set[str],
    fingerprint: str,
) -> tuple[dict, dict[str, int], _Commit]:
    """Plan and apply one commit; returns (new snapshot, duplicates per file_id, the commit)."""
    commit_id = dt.datetime.now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    c = _Commit(warehouse, staging, commit_id, snap)
    work = staging / "_commit"
    files = snap["files"]
    # Old versions of replaced files: every file holding their rows goes.
    removed_points: dict[str, list[dict]] = {}
    for table, entries in files.items():
        for e in entries:
            if e.get("file_id") in replaced:
                c.deletes.append(e["path"])
                if table == "probe_points":
                    removed_points.setdefault(e["day"], []).append(e)
    deleted = set(c.deletes)
    by_group: dict[str, list[dict]] = {}
    dups_by_group: dict[str, list[dict]] = {}
    for e in files["probe_points"]:
        if e["path"] not in deleted:
            by_group.setdefault(e["day"], []).append(e)
    for e in files[DUPLICATES_TABLE]:
        if e["path"] not in deleted:
            dups_by_group.setdefault(e["day"], []).append(e)
    staged_by_group: dict[str, list[tuple[dict, dict]]] = {}
    for r in accepted:
        for o in r["points"]:
            staged_by_group.setdefault(o["day"], []).append((r, o))
    order = {fid: i for i, fid in enumerate(_ingest_order(con))}
    counts = {
        fid: (stored, dup)
        for fid, stored, dup in con.execute(
            "SELECT file_id, rows_stored, rows_duplicate FROM manifest WHERE status = 'ok'"
        ).fetchall()
    }
    dups: dict[str, int] = {}
    for day in sorted(set(staged_by_group) | set(removed_points)):
        gkey = day
        group = _Group()
        for e in by_group.get(gkey, []):
            group.add(
                int(e.get("rows") or pq.ParquetFile(warehouse / e["path"]).metadata.num_rows),
                path=warehouse / e["path"],
            )
        if gkey in removed_points:
            _restore_duplicates(c, work, gkey, removed_points[gkey], dups_by_group.get(gkey, []), group, order, counts)
        staged = staged_by_group.get(gkey, [])
        sidecars = [staging / r["dir"] / o["keys"] for r, o in staged]
        loaders = [lambda src=src: _Group.load(src) for src in group.sources]
        loaders += [lambda f=f: np.fromfile(f, dtype=np.int64) for f in sidecars]
        masks = _repeat_masks(loaders, [src[4] for src in group.sources] + [o["rows"] for _, o in staged])
        for (r, o), sidecar, cand in zip(staged, sidecars, masks[len(group.sources) :], strict=True):
            keys = None
            src = staging / r["dir"] / o["file"]
            year, month = o["year"], o["month"]
            name = f"{day}_{r['file_id']}_{commit_id}_{o['name'].rsplit('_', 1)[1]}"
            dst = f"{_point_dir('probe_points', year, month)}/{name}"
            entry = {"file_id": r["file_id"], "day": day, "year": year, "month": month}
            if not cand.any():
                group.add(o["rows"], path=src, keys_file=sidecar)
                c.place(src, "probe_points", dst, dict(entry, rows=o["rows"]))
                continue
            keys = np.fromfile(sidecar, dtype=np.int64)
            table = _read(src)
            dup = _split_duplicates(table, keys, cand, group)
            if not dup.any():
                group.add(len(keys), path=src, keys_file=sidecar)
                c.place(src, "probe_points", dst, dict(entry, rows=len(keys)))
                continue
            kept = table.filter(pa.array(~dup))
            twins = table.filter(pa.array(dup))
            group.add(kept.num_rows, table=kept, keys=keys[~dup])
            dups[r["file_id"]] = dups.get(r["file_id"], 0) + int(dup.sum())
            if kept.num_rows:
                out = work / "probe_points" / name
                _write_points(kept, out)
                c.place(out, "probe_points", dst, dict(entry, rows=kept.num_rows))
            out = work / DUPLICATES_TABLE / name
            _write_points(twins, out)
            c.place(
                out,
                DUPLICATES_TABLE,
                f"{_point_dir(DUPLICATES_TABLE, year, month)}/{name}",
                dict(entry, rows=twins.num_rows),
            )
    for r in accepted:
        d = staging / r["dir"]
        for q in r["quarantine"]:
            c.place(
                d / q["file"],
                "quarantine",
                f"quarantine/{r['file_id']}_{commit_id}.parquet",
                {"file_id": r["file_id"], "rows": q["rows"]},
            )
        for kind, table in (("trips", "trips"), ("events", "behavior_events")):
            for t in r[kind]:
                c.place(
                    d / t["file"],
                    table,
                    f"{table}/year={t['year']}/month={t['month']}/{r['file_id']}_{commit_id}.parquet",
                    {"file_id": r["file_id"], "year": t["year"], "month": t["month"], "rows": t["rows"]},
                )
    # The new snapshot and the manifest.
    new = {
        "format": snap.get("format", "etc2calm-snapshot"),
        "version": 1,
        "generation": int(snap.get("generation", 0)) + 1,
        "commit": commit_id,
        "key_fingerprint": fingerprint,
        "files": {},
    }
    gone = set(c.deletes)
    for table, entries in files.items():
        new["files"][table] = [e for e in entries if e["path"] not in gone] + c.new_entries[table]
    now = dt.datetime.now()
    manifest = []
    for r in accepted:
        d = dups.get(r["file_id"], 0)
        stored = r["rows_staged"] - d
        if r["rows_read"] != stored + r["rows_quarantined"] + d:
            raise AssertionError(f"{r['path']}: row conservation violated")
        manifest.append(_manifest_row(r, "ok", stored, d, now))
    for r in failed:
        manifest.append(_manifest_row(r, "failed", 0, 0, now))
    if os.environ.get(CRASH_ENV) == "journal":
        os._exit(137)
    added = [dict(e, tbl=t) for t, entries in c.new_entries.items() for e in entries]
    skipped = [[r["file_id"], r["source_path"], m, why] for r in accepted for m, why in r.get("skipped_members", [])]
    journal = {
        "commit": commit_id,
        "generation": new["generation"],
        "renames": c.renames,
        "deletes": c.deletes,
        "added": added,
        "manifest": manifest,
        "skipped_members": skipped,
        "replaced": sorted(replaced),
        "manifest_set": [[k, *v] for k, v in c.manifest_set.items()],
        "snapshot": new,
    }
    write_json_atomic(warehouse / JOURNAL, journal)
    _apply_journal(warehouse, con, undo_on_io_failure=True)
    return new, dups, c


def _ingest_order(con) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT file_id FROM manifest WHERE status = 'ok' ORDER BY ingested_at, file_id"
        ).fetchall()
    ]


def _restore_duplicates(
    c: _Commit,
    work: Path,
    gkey,
    removed: list[dict],
    dup_entries: list[dict],
    group: _Group,
    order: dict[str, int],
    counts: dict[str, tuple[int, int]],
) -> None:
    """Points other files delivered as exact duplicates of removed rows come back into probe_points."""
    if not dup_entries:
        return
    removed_keys = (
        np.concatenate([_file_keys(c.warehouse / e["path"]) for e in removed]) if removed else np.zeros(0, np.int64)
    )
    day = gkey
    for e in sorted(dup_entries, key=lambda e: (order.get(e["file_id"], 1 << 30), e["file_id"], e["path"])):
        path = c.warehouse / e["path"]
        keys = _file_keys(path)
        cand = np.isin(keys, removed_keys)
        if not cand.any():
            continue
        table = _read(path)
        cand_keys = np.unique(keys[cand])
        seen = group.tuples(cand_keys)
        back = np.zeros(len(keys), dtype=bool)
        rows = np.flatnonzero(cand)
        for i, t in zip(rows, key_tuples(table.take(pa.array(rows))), strict=True):
            if t not in seen:  # its stored copy was in a removed file: this copy is stored now
                seen.add(t)
                back[i] = True
        if not back.any():
            continue
        fid = e["file_id"]
        year, month = e["year"], e["month"]
        returned = table.filter(pa.array(back))
        name = f"{day}_{fid}_{c.commit}_r{len(c.renames)}.parquet"
        out = work / "probe_points" / name
        _write_points(returned, out)
        entry = {"file_id": fid, "day": day, "year": year, "month": month}
        c.place(
            out,
            "probe_points",
            f"{_point_dir('probe_points', year, month)}/{name}",
            dict(entry, rows=returned.num_rows),
        )
        group.add(returned.num_rows, table=returned, keys=keys[back])
        c.deletes.append(e["path"])
        rest = table.filter(pa.array(~back))
        if rest.num_rows:
            out = work / DUPLICATES_TABLE / name
            _write_points(rest, out)
            c.place(
                out,
                DUPLICATES_TABLE,
                f"{_point_dir(DUPLICATES_TABLE, year, month)}/{name}",
                dict(entry, rows=rest.num_rows),
            )
        n = int(back.sum())
        stored, dup = c.manifest_set.get(fid, counts.get(fid, (0, 0)))
        c.manifest_set[fid] = (stored + n, dup - n)
        c.restored += n


def _manifest_row(r: dict, status: str, stored: int, dup: int, now) -> dict:
    fid = r["file_id"] or ("failed-" + hashlib.sha256(str(r.get("source_path") or r["path"]).encode()).hexdigest()[:12])
    return {
        "file_id": fid,
        "source_path": r.get("source_path") or str(Path(r["path"]).resolve()),
        "size_bytes": r["size_bytes"],
        "sha256": r["sha256"],
        "format": r["format"],
        "rows_read": r["rows_read"] if status == "ok" else 0,
        "rows_stored": stored,
        "rows_quarantined": r["rows_quarantined"] if status == "ok" else 0,
        "status": status,
        "message": r["message"],
        "ingested_at": now.isoformat(sep=" "),
        "rows_duplicate": dup,
    }


MANIFEST_ORDER = [
    "file_id",
    "source_path",
    "size_bytes",
    "sha256",
    "format",
    "rows_read",
    "rows_stored",
    "rows_quarantined",
    "status",
    "message",
    "ingested_at",
    "rows_duplicate",
]


def _crash(point: str) -> None:
    if os.environ.get(CRASH_ENV) == point:
        os._exit(137)


NEXT_SNAPSHOT = SNAPSHOT + ".next"  # the commit's snapshot, written before anything is renamed


def _apply_journal(warehouse: Path, con: duckdb.DuckDBPyConnection, undo_on_io_failure: bool = False) -> None:
    """Roll a written journal forward (idempotent: safe to repeat after a kill at any point).

    Everything that needs free space (the new snapshot, DuckDB's transaction) is written before the
    database commits, and after it only renames and deletions follow. With `undo_on_io_failure` (a
    commit of this run), an I/O failure before the database committed (a full disk) moves the renamed
    files back and drops the journal: the warehouse is as before, byte for byte but DuckDB's own files.
    """
    import json

    jpath = warehouse / JOURNAL
    if not jpath.exists():
        return
    j = json.loads(jpath.read_text(encoding="utf-8"))
    committed = False
    try:
        write_json_atomic(warehouse / NEXT_SNAPSHOT, j["snapshot"])
        _apply_renames(warehouse, j)
        committed = _commit_to_database(warehouse, con, j)
    except Exception as exc:
        if undo_on_io_failure and not committed and is_io_failure(exc):
            _undo_journal(warehouse, j)
        raise
    _crash("db")
    replace_durably(warehouse / NEXT_SNAPSHOT, warehouse / SNAPSHOT)
    _crash("snapshot")
    for i, rel in enumerate(j["deletes"]):
        (warehouse / rel).unlink(missing_ok=True)
        if i == len(j["deletes"]) // 2:
            _crash("deletes")
    jpath.unlink()


def _apply_renames(warehouse: Path, j: dict) -> None:
    for i, (src, dst) in enumerate(j["renames"]):
        s, d = warehouse / src, warehouse / dst
        if s.exists():
            d.parent.mkdir(parents=True, exist_ok=True)
            os.replace(s, d)
        elif not d.exists():
            raise RuntimeError(f"warehouse {warehouse}: journal of commit {j['commit']} names {src}, which is gone")
        if i == len(j["renames"]) // 2:
            _crash("apply")
    _crash("renamed")


def _undo_journal(warehouse: Path, j: dict) -> None:
    """Move a journal's renamed files back to staging, drop the folders it made, the journal and the next
    snapshot (before its database transaction committed)."""
    for src, dst in reversed(j["renames"]):
        s, d = warehouse / src, warehouse / dst
        if d.exists() and not s.exists():
            s.parent.mkdir(parents=True, exist_ok=True)
            os.replace(d, s)
            for parent in d.parents:  # the partition folders it made, when empty now
                if parent == warehouse:
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break
    (warehouse / NEXT_SNAPSHOT).unlink(missing_ok=True)
    (warehouse / JOURNAL).unlink(missing_ok=True)


def _commit_to_database(warehouse: Path, con: duckdb.DuckDBPyConnection, j: dict) -> bool:
    """The journal's manifest, store files, views and generation in one DuckDB transaction (once)."""
    done = con.execute("SELECT value FROM warehouse_info WHERE name = 'generation'").fetchone()
    if done is not None and int(done[0]) >= int(j["generation"]):
        return True
    with transaction(con):
        ids = [m["file_id"] for m in j["manifest"]]
        if ids:
            con.execute("DELETE FROM manifest WHERE file_id IN (SELECT unnest(?::VARCHAR[]))", [ids])
        shas = [m["sha256"] for m in j["manifest"] if m["status"] == "ok"]
        if shas:
            con.execute(
                "DELETE FROM manifest WHERE status = 'failed' AND sha256 IN (SELECT unnest(?::VARCHAR[]))", [shas]
            )
        if j["replaced"]:
            con.execute(
                "UPDATE manifest SET status = 'replaced' WHERE status = 'ok' AND file_id IN (SELECT "
                "unnest(?::VARCHAR[]))",
                [j["replaced"]],
            )
        for fid, stored, dup in j.get("manifest_set", []):
            con.execute(
                "UPDATE manifest SET rows_stored = ?, rows_duplicate = ? WHERE status = 'ok' AND file_id = ?",
                [stored, dup, fid],
            )
        if j["manifest"]:  # one statement, a list per column (executemany costs ~0.5 ms a row)
            con.execute(
                f"INSERT INTO manifest ({', '.join(MANIFEST_ORDER)}) SELECT "
                + ", ".join(f"unnest(?::{MANIFEST_COLUMNS[k][0]}[])" for k in MANIFEST_ORDER),
                [[m[k] for m in j["manifest"]] for k in MANIFEST_ORDER],
            )
        _record_skipped_members(con, j)
        update_store_files(con, j["deletes"], j["added"])
        con.execute("DELETE FROM warehouse_info WHERE name IN ('generation', 'commit', 'key_fingerprint')")
        con.execute(
            "INSERT INTO warehouse_info VALUES ('generation', ?), ('commit', ?), ('key_fingerprint', ?)",
            [str(j["generation"]), j["commit"], j["snapshot"].get("key_fingerprint") or ""],
        )
        refresh_views(con, warehouse, in_transaction=True)
    return True


def _record_skipped_members(con: duckdb.DuckDBPyConnection, j: dict) -> None:
    """The ZIP members a commit's files skipped (inside the journal's transaction): one row each, once."""
    ok = [m["file_id"] for m in j["manifest"] if m["status"] == "ok"]
    if ok:
        con.execute("DELETE FROM skipped_members WHERE file_id IN (SELECT unnest(?::VARCHAR[]))", [ok])
    rows = j.get("skipped_members", [])
    if rows:
        when = next(m["ingested_at"] for m in j["manifest"])
        con.execute(
            "INSERT INTO skipped_members SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
            "unnest(?::VARCHAR[]), ?::TIMESTAMP",
            [[r[i] for r in rows] for i in range(4)] + [when],
        )


def recover(warehouse: Path, con: duckdb.DuckDBPyConnection) -> None:
    """After a kill: finish a written journal, then drop staging and uncommitted output."""
    _apply_journal(warehouse, con)
    for d in ("_staging", "_txn"):
        shutil.rmtree(warehouse / d, ignore_errors=True)
    for tmp in [*warehouse.glob("*.tmp"), warehouse / NEXT_SNAPSHOT]:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Driver


class _Progress:
    """Progress on stderr (files, rows, rows/s, ETA by bytes) with rich, only when stderr is a terminal."""

    def __init__(self, n_files: int, n_bytes: int, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.n, self.done, self.rows = n_files, 0, 0
        self.t0 = time.perf_counter()
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("ingest"),
            BarColumn(),
            TextColumn("{task.fields[files]}"),
            TextColumn("{task.fields[rows]}"),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr, force_terminal=True),
            transient=False,
        )
        self.task = self.progress.add_task("ingest", total=max(n_bytes, 1), files=self._files(), rows="rows 0")
        self.progress.start()

    def _files(self) -> str:
        return f"files {self.done}/{self.n}"

    def update(self, results: list[dict]) -> None:
        self.done += len(results)
        self.rows += sum(r["rows_read"] for r in results)
        if self.enabled:
            rate = self.rows / max(time.perf_counter() - self.t0, 1e-9)
            self.progress.update(
                self.task,
                advance=sum(r["size_bytes"] for r in results),
                files=self._files(),
                rows=f"rows {self.rows:,} ({rate:,.0f}/s)",
            )

    def close(self) -> None:
        if self.enabled:
            self.progress.refresh()
            self.progress.stop()


_DATE_IN_NAME = re.compile(r"(\d{8})(?!.*\d{8})")


def _batches(files: list[Path], batch_bytes: int) -> list[list[Path]]:
    """Files in commit batches of about `batch_bytes`, ordered by the date in their name."""

    def date_key(f: Path) -> tuple[str, str]:
        m = _DATE_IN_NAME.search(f.name)
        return (m.group(1) if m else "", str(f))

    batches, cur, size = [], [], 0
    for f in sorted(files, key=date_key):
        s = _size(f)
        if cur and size + s > batch_bytes:
            batches.append(cur)
            cur, size = [], 0
        cur.append(f)
        size += s
    if cur:
        batches.append(cur)
    return batches


def _size(f: Path) -> int:
    try:
        return f.stat().st_size
    except OSError:
        return 0


def _tasks(files: list[Path], n_workers: int) -> list[list[str]]:
    """Group files into staging tasks, largest first: at least TASKS_PER_WORKER tasks per worker
    (small files batched up to total / (workers × TASKS_PER_WORKER), at most TASK_BYTES), so a batch
    ends on small tasks and no worker idles long waiting for another's last one."""
    sized = sorted(((_size(f), str(f)) for f in files), key=lambda t: -t[0])  # stable: equal sizes keep their order
    total = sum(s for s, _ in sized)
    target = max(1, min(TASK_BYTES, total // max(1, n_workers * TASKS_PER_WORKER)))
    tasks, cur, cur_size = [], [], 0
    for s, f in sized:
        if cur and (cur_size + s > target or len(cur) >= 256):
            tasks.append(cur)
            cur, cur_size = [], 0
        cur.append(f)
        cur_size += s
    if cur:
        tasks.append(cur)
    return tasks


def _check_key_location(warehouse: Path) -> None:
    kf = key_file()
    if kf is None:
        return
    root, k = warehouse.resolve(), kf.resolve()
    if k == root or root in k.parents:
        raise IdKeyError(
            f"the ID key file {kf} lies inside the warehouse {warehouse}: keep it outside (ETC2CALM_ID_KEY_FILE)"
        )


def ingest_paths(
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
        _W["main_pid"] = os.getpid()
        con = connect(warehouse)
        try:
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
            ok_rows = con.execute("SELECT file_id, source_path, sha256 FROM manifest WHERE status = 'ok'").fetchall()
            to_replace_all = {fid for fid, _, _ in ok_rows} if rekey else set()
            known = frozenset() if rekey else frozenset(sha for _, _, sha in ok_rows)
            by_path: dict[str, list[str]] = {}
            ids_by_path: dict[str, list[tuple[str, str]]] = {}
            if not rekey:
                for fid, sp, sha in ok_rows:
                    by_path.setdefault(sp, []).append(sha)
                    ids_by_path.setdefault(sp, []).append((fid, sha))
            ctx = StageContext(
                key=key,
                known=known,
                by_path=by_path,
                replace=replace,
                override=fmt,
                behavior_layout=str(behavior_layout) if behavior_layout else None,
            )
            run = uuid.uuid4().hex[:10]
            if client is not None:
                from etl.cluster import n_threads

                n_workers = max(1, min(n_threads(client), len(files)))
                # Sent once to every worker, without the key: it can be large (every known SHA-256).
                remote_ctx = client.scatter(dataclasses.replace(ctx, key=b""), broadcast=True, hash=False)
            else:
                n_workers = max(1, min(workers or os.cpu_count() or 1, len(files)))
            bar = _Progress(len(files), sum(_size(f) for f in files), progress)
            seen: set[str] = set()
            out: dict[str, FileResult] = {}
            pending_failed = [_problem_result(p, msg) for p, msg in problems]
            for r in pending_failed:
                out[r["path"]] = _file_result(r, {})
            pool = None
            if files and client is None:
                from etl.kernels import warm_up

                warm_up()  # compiled (or loaded from numba's cache) once, before the workers fork
            if client is None and n_workers > 1 and len(files) > 1:
                # A worker that dies (killed, out of memory) breaks the pool: the ingest then fails
                # (BrokenProcessPool) before that batch's commit, instead of waiting forever for its task.
                pool = ProcessPoolExecutor(
                    n_workers, mp_context=mp.get_context("fork"), initializer=_init_worker, initargs=(ctx, lock_fd)
                )
            else:
                _init_worker(ctx, lock_fd)
            commits = 0
            try:
                batches = _batches(files, batch_bytes) or ([[]] if pending_failed or to_replace_all else [])
                for bi, batch in enumerate(batches):
                    staging = warehouse / "_staging" / f"{run}-{bi}"
                    staging.mkdir(parents=True, exist_ok=True)
                    tasks = [(str(staging), t) for t in _tasks(batch, n_workers)]
                    t_stage = time.perf_counter()
                    results: list[dict] = []
                    if client is not None:
                        from distributed import as_completed as dask_completed

                        futures = [
                            client.submit(
                                stage_on_worker,
                                str(staging.absolute()),
                                [(p, str(Path(p).absolute())) for p in t],
                                remote_ctx,
                                fingerprint,
                                key=f"stage-{run}-{bi}-{i}",
                                pure=False,
                                retries=2,
                            )
                            for i, (_, t) in enumerate(tasks)
                        ]
                        for fut in dask_completed(futures):  # results fetched here, one at a time
                            r = fut.result()
                            bar.update(r)
                            results.extend(r)
                        futures = None
                    elif pool is None:
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
                    accepted, failed, replaced = [], list(pending_failed), set(to_replace_all)
                    pending_failed, to_replace_all = [], set()
                    for r in results:
                        if r["status"] == "ok" and r["file_id"] in seen:
                            r["status"] = "skipped"  # the same content twice in one run
                        if r["status"] in ("ok", "skipped") and replace:
                            for fid, sha in ids_by_path.get(r["source_path"], []):
                                if sha != r["sha256"]:
                                    replaced.add(fid)
                        if r["status"] == "ok":
                            accepted.append(r)
                            seen.add(r["file_id"])
                        elif r["status"] == "failed":
                            failed.append(r)
                    t_commit = time.perf_counter()
                    report.stage_seconds += t_commit - t_stage
                    dups: dict[str, int] = {}
                    if accepted or failed or replaced:
                        snap, dups, c = _commit_batch(
                            warehouse, con, snap, staging, accepted, failed, replaced, fingerprint
                        )
                        report.replaced += len(replaced)
                        report.restored += c.restored
                        commits += 1
                    shutil.rmtree(staging, ignore_errors=True)
                    report.commit_seconds += time.perf_counter() - t_commit
                    for r in results:
                        out[r["path"]] = _file_result(r, dups)
            except Exception as exc:
                _note_committed(exc, commits, "part of the delivery")
                raise
            finally:
                if pool is not None:
                    pool.shutdown(cancel_futures=True)
                bar.close()
                if not (warehouse / JOURNAL).exists():  # staged files a pending journal names stay for it
                    shutil.rmtree(warehouse / "_staging", ignore_errors=True)
            report.files = [out[str(f)] for f in files] + [out[str(p)] for p, _ in problems]
            report.seconds = time.perf_counter() - t0
            try:
                _record_run(con, report, started)
            except Exception as exc:
                _note_committed(exc, commits, "the whole delivery but its row in ingest_runs")
                raise
        finally:
            con.close()
    return report


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
    "process_payload",
    "project_to_metric",
    "detect_format",
    "FORMAT_1_2",
    "column_index",
    "recover",
]
