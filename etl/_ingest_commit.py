"""The commit of an ingest batch and its journal: planned, written, then applied step by idempotent step.

Serves etl.ingest only. `commit_batch` plans the renames of staged files into the store (after the
duplicate check, etl._ingest_duplicates), the deletions of replaced files, the manifest rows and the
new snapshot; writes them to `_journal.json` (atomically) and applies it: new files renamed into place
→ one DuckDB transaction → `_snapshot.json` replaced → old files deleted → journal removed. A kill at
any moment leaves the warehouse as before or as after the commit; `recover` rolls a written journal
forward. The kill tests stop the process between these steps (etl._testhooks.checkpoint).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from etl._ingest_duplicates import DayGroup, file_keys, read_table, repeat_masks, split_duplicates, write_points
from etl._testhooks import checkpoint
from etl.failures import is_io_failure
from etl.schema import DUPLICATES_TABLE, MANIFEST_COLUMNS
from etl.stage import key_tuples
from etl.warehouse import (
    JOURNAL,
    SNAPSHOT,
    empty_snapshot,
    refresh_views,
    replace_durably,
    transaction,
    update_store_files,
    write_json_atomic,
)

MANIFEST_ORDER = list(MANIFEST_COLUMNS)  # the manifest's columns, in the table's order


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


def commit_batch(
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
    files = snap["files"]
    # Old versions of replaced files: every file holding their rows goes.
    removed_points: dict[str, list[dict]] = {}
    for table, entries in files.items():
        for e in entries:
            if e.get("file_id") in replaced:
                c.deletes.append(e["path"])
                if table == "probe_points":
                    removed_points.setdefault(e["day"], []).append(e)
    dups = _place_points(c, con, accepted, removed_points)
    _place_other_outputs(c, accepted)
    new = _next_snapshot(c, fingerprint)
    manifest = _manifest_rows(accepted, failed, dups)
    checkpoint("journal")
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


def _place_points(c: _Commit, con, accepted: list[dict], removed_points: dict[str, list[dict]]) -> dict[str, int]:
    """Per operation date touched: restore the duplicates whose stored copy is removed, then place the
    staged point files (split where they repeat kept points). Returns duplicates per file_id."""
    warehouse, work, files = c.warehouse, c.staging / "_commit", c.snap["files"]
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
        group = DayGroup()
        for e in by_group.get(day, []):
            group.add(
                int(e.get("rows") or pq.ParquetFile(warehouse / e["path"]).metadata.num_rows),
                path=warehouse / e["path"],
            )
        if day in removed_points:
            _restore_duplicates(c, work, day, removed_points[day], dups_by_group.get(day, []), group, order, counts)
        _place_points_of_day(c, day, group, staged_by_group.get(day, []), dups)
    return dups


def _place_points_of_day(c: _Commit, day: str, group: DayGroup, staged: list[tuple[dict, dict]], dups: dict) -> None:
    """The staged point files of one operation date: renamed as they are when they repeat nothing, else
    rewritten without their exact duplicates, which go to point_duplicates (counted in `dups`)."""
    staging, work, commit_id = c.staging, c.staging / "_commit", c.commit
    sidecars = [staging / r["dir"] / o["keys"] for r, o in staged]
    loaders = [lambda src=src: DayGroup.load(src) for src in group.sources]
    loaders += [lambda f=f: np.fromfile(f, dtype=np.int64) for f in sidecars]
    masks = repeat_masks(loaders, [src[4] for src in group.sources] + [o["rows"] for _, o in staged])
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
        table = read_table(src)
        dup = split_duplicates(table, keys, cand, group)
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
            write_points(kept, out)
            c.place(out, "probe_points", dst, dict(entry, rows=kept.num_rows))
        out = work / DUPLICATES_TABLE / name
        write_points(twins, out)
        c.place(
            out,
            DUPLICATES_TABLE,
            f"{_point_dir(DUPLICATES_TABLE, year, month)}/{name}",
            dict(entry, rows=twins.num_rows),
        )


def _place_other_outputs(c: _Commit, accepted: list[dict]) -> None:
    """Each accepted file's quarantine, trips and events: renamed into the store as staged."""
    for r in accepted:
        d = c.staging / r["dir"]
        for q in r["quarantine"]:
            c.place(
                d / q["file"],
                "quarantine",
                f"quarantine/{r['file_id']}_{c.commit}.parquet",
                {"file_id": r["file_id"], "rows": q["rows"]},
            )
        for kind, table in (("trips", "trips"), ("events", "behavior_events")):
            for t in r[kind]:
                c.place(
                    d / t["file"],
                    table,
                    f"{table}/year={t['year']}/month={t['month']}/{r['file_id']}_{c.commit}.parquet",
                    {"file_id": r["file_id"], "year": t["year"], "month": t["month"], "rows": t["rows"]},
                )


def _next_snapshot(c: _Commit, fingerprint: str) -> dict:
    """The snapshot after the commit: the previous one's files but the deleted, plus the placed ones."""
    snap = c.snap
    new = {
        "format": snap.get("format", "etc2calm-snapshot"),
        "version": 1,
        "generation": int(snap.get("generation", 0)) + 1,
        "commit": c.commit,
        "key_fingerprint": fingerprint,
        "files": {},
    }
    gone = set(c.deletes)
    for table, entries in snap["files"].items():
        new["files"][table] = [e for e in entries if e["path"] not in gone] + c.new_entries[table]
    return new


def _manifest_rows(accepted: list[dict], failed: list[dict], dups: dict[str, int]) -> list[dict]:
    """The manifest rows of the commit's files; raises AssertionError if a file's rows do not add up."""
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
    return manifest


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
    group: DayGroup,
    order: dict[str, int],
    counts: dict[str, tuple[int, int]],
) -> None:
    """Points other files delivered as exact duplicates of removed rows come back into probe_points."""
    if not dup_entries:
        return
    removed_keys = (
        np.concatenate([file_keys(c.warehouse / e["path"]) for e in removed]) if removed else np.zeros(0, np.int64)
    )
    day = gkey
    for e in sorted(dup_entries, key=lambda e: (order.get(e["file_id"], 1 << 30), e["file_id"], e["path"])):
        path = c.warehouse / e["path"]
        keys = file_keys(path)
        cand = np.isin(keys, removed_keys)
        if not cand.any():
            continue
        table = read_table(path)
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
        write_points(returned, out)
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
            write_points(rest, out)
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
    checkpoint("db")
    replace_durably(warehouse / NEXT_SNAPSHOT, warehouse / SNAPSHOT)
    checkpoint("snapshot")
    for i, rel in enumerate(j["deletes"]):
        (warehouse / rel).unlink(missing_ok=True)
        if i == len(j["deletes"]) // 2:
            checkpoint("deletes")
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
            checkpoint("apply")
    checkpoint("renamed")


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
