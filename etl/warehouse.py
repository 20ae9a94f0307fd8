"""The warehouse: Parquet files as the durable store, a DuckDB database with documented views over them.

Layout of a warehouse folder (the snapshot and `store_files` hold paths relative to it; the DuckDB
views hold absolute ones, see "Opening the warehouse with plain DuckDB"):

    probe_points/year=YYYY/month=M/<operation date>_<file_id>_<commit>_<part>.parquet
                                                      様式1-2 points, LZ4; one file per delivered file and
                                                      operation date, written once, never changed
    point_duplicates/year=YYYY/month=M/…              exact duplicates of stored points (kept so that
                                                      they come back when the file holding the stored
                                                      copy is replaced)
    trips/year=YYYY/month=M/<file_id>_<commit>.parquet            様式1-3 trips
    behavior_events/year=YYYY/month=M/<file_id>_<commit>.parquet  挙動履歴 events
    quarantine/<file_id>_<commit>.parquet             rows that failed validation, with reason
    matched/<district>/<YYYY-MM>-<tokens>/            the stored match (analysis.matchstage), listed in match_state
    figures/<run>/link_hour_stats.parquet, link_hour_histogram.parquet
                                                      a period's cube (analysis._cube_files), listed in figure_files
    _snapshot.json                                    the committed files (written atomically by each commit)
    warehouse.duckdb                                  manifest, ingest_runs, store_files, analysis tables, views
    .ingest.lock                                      held (flock) by the one ingest allowed at a time
    _journal.json, _snapshot.json.next, _staging/, _txn/
                                                      transient: only present while (or after a kill during) an ingest
    skipped_members (table)                           ZIP members that were not data (README, __MACOSX/, empty)

year / month are those of the operation date (運行日). A delivered ZIP holds one day of one 2次メッシュ,
so a point file usually covers one mesh and its row-group statistics (x_m, y_m, lon, lat, mesh2 —
the 2次メッシュ of the point's own position, a column) let a spatial filter skip the others.

Readers see a commit whole or not at all:
- `point_files` / `table_files` list the files of `_snapshot.json`, which a commit replaces
  atomically after every new file is in place and before any old file is deleted;
- the DuckDB views read exactly the files of the table `store_files`, replaced in the same DuckDB
  transaction as the manifest, so `etc2calm sql` never counts a half-applied commit.
A file a reader was given can disappear only when a later commit replaces it (`--replace`,
`--rekey`); point files are otherwise never rewritten or removed.

The views hold absolute paths (DuckDB resolves a relative path against the working directory, not
the database file, so no view can follow the file by itself). etc2calm follows the warehouse: every
connection made through `connect` points the views at the folder the warehouse is actually in (a
read-only connection with temporary views), and every writing command (`ingest`, `match`, `analyze`,
`compare`, `screen`) and `etc2calm views --refresh` rewrite the persistent views for it
(`follow_location`). Until then a plain DuckDB connection to a copied or moved warehouse stops with
an error naming the command instead of reading the original's files. Read-only connections
(`etc2calm sql`) can read nothing outside the warehouse folder and load no extension. Every column of
every view is documented in `column_docs`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from etl.failures import writing
from etl.schema import (
    DUPLICATES_TABLE,
    FIGURE_FOLDER_COLUMNS,
    FIGURE_VIEWS,
    MANIFEST_COLUMNS,
    MATCHED_CALENDAR,
    MATCHED_DELIVERED,
    MATCHED_EVENTS_COLUMNS,
    MATCHED_POINTS_COLUMNS,
    MATCHED_POINTS_SQL,
    MATCHED_TRIPS_COLUMNS,
    PROBE_POINTS_COLUMNS,
    QUARANTINE_COLUMNS,
    SKIPPED_MEMBERS_COLUMNS,
    TRIPS_COLUMNS,
    behavior_columns,
    create_tables,
    transaction,
)
from etl.spec import BEHAVIOR_DEFAULT, Layout

DB_NAME = "warehouse.duckdb"
LOCK_NAME = ".ingest.lock"
SNAPSHOT = "_snapshot.json"
JOURNAL = "_journal.json"
# Tables of the store: folder, hive partition columns (name → SQL type).
TABLES = {
    "probe_points": {"year": "INTEGER", "month": "INTEGER"},
    DUPLICATES_TABLE: {"year": "INTEGER", "month": "INTEGER"},
    "trips": {"year": "INTEGER", "month": "INTEGER"},
    "behavior_events": {"year": "INTEGER", "month": "INTEGER"},
    "quarantine": {},
}


class WarehouseBusy(Exception):
    """Another process holds the warehouse for writing."""


class WarehouseMissing(Exception):
    """No warehouse at the given path (or the path is not a folder)."""


class WarehouseInconsistent(Exception):
    """A commit was interrupted and not yet finished: readers must not read the store now."""


class WarehouseOutdated(ValueError):
    """A warehouse written by an ingest before snapshots (other layout): rebuild it to ingest into it."""


def db_path(warehouse: Path) -> Path:
    return Path(warehouse) / DB_NAME


def sql_literal(value) -> str:
    """A SQL string literal (quotes doubled): for DDL such as CREATE VIEW, which takes no parameters."""
    return "'" + str(value).replace("'", "''") + "'"


def _check_folder(warehouse: Path) -> None:
    if warehouse.exists() and not warehouse.is_dir():
        raise WarehouseMissing(f"{warehouse} is a file, not a warehouse folder")


# ---------------------------------------------------------------------------------------------
# The committed snapshot


def empty_snapshot() -> dict:
    return {
        "format": "etc2calm-snapshot",
        "version": 1,
        "generation": 0,
        "commit": "",
        "key_fingerprint": None,
        "files": {t: [] for t in TABLES},
    }


def read_snapshot(warehouse: Path | str) -> dict | None:
    """The committed snapshot of `_snapshot.json`, or None for a warehouse written before snapshots."""
    p = Path(warehouse) / SNAPSHOT
    try:
        snap = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    for t in TABLES:
        snap["files"].setdefault(t, [])
    return snap


def write_json_atomic(path: Path, obj) -> None:
    """Write, fsync, rename into place, fsync the folder: readers see the old or the new file, whole.
    A write that fails (a full disk) leaves no temporary file and the old file as it was (WriteFailed)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with writing(path), open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, ensure_ascii=False, default=str, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    replace_durably(tmp, path)


def replace_durably(src: Path, dst: Path) -> None:
    """os.replace, then fsync the folder: the rename survives a power cut (renames need no free space)."""
    os.replace(src, dst)
    dfd = os.open(dst.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def legacy_snapshot(warehouse: Path) -> dict:
    """The files on disk of a warehouse written before snapshots (probe_points/year=/month=/mesh2=/…),
    for readers of such a warehouse; an ingest refuses it (WarehouseOutdated)."""
    snap = empty_snapshot()
    for table in ("probe_points", "trips", "behavior_events", "quarantine"):
        root = warehouse / table
        if not root.exists():
            continue
        for f in sorted(root.rglob("*.parquet")):
            rel = f.relative_to(warehouse)
            entry = {"path": rel.as_posix(), "file_id": "", "rows": None, "legacy": True}
            for part in rel.parts[1:-1]:
                k, _, v = part.partition("=")
                if k in ("year", "month", "mesh2"):
                    with suppress(ValueError):
                        entry[k] = int(v)
            snap["files"][table].append(entry)
    return snap


def is_outdated(warehouse: Path) -> bool:
    """Point files of an ingest before snapshots, and no snapshot."""
    return not (Path(warehouse) / SNAPSHOT).exists() and any((Path(warehouse) / "probe_points").rglob("*.parquet"))


def point_files(
    warehouse: Path | str, months: list[tuple[int, int]] | None = None
) -> dict[tuple[int, int], list[Path]]:
    """The committed Parquet files of probe_points, per (year, month) of the operation date.

    The one way readers (the match stage) list the point store: exactly the files of the last
    commit (`_snapshot.json`, replaced atomically), before or after a commit that runs meanwhile,
    never a mix. Files are immutable; a file disappears only when a later commit replaces its
    rows (--replace, --rekey). A warehouse written before snapshots is listed from its folders
    (and refused with WarehouseInconsistent while an interrupted commit's journal is pending).
    """
    return table_files(warehouse, "probe_points", months)


def point_days(warehouse: Path | str) -> set[dt.date] | None:
    """The operation dates with points in the committed store, from the snapshot (ingest writes one
    file per operation date and records it): no file is read. None when the snapshot does not say
    (no snapshot, or a file of a store written before per-day files): then ask probe_points."""
    snap = read_snapshot(warehouse)
    if snap is None:
        return None
    days = set()
    for e in snap["files"]["probe_points"]:
        if e.get("legacy") or not e.get("day"):
            return None
        if e.get("rows") is None or e["rows"] > 0:
            days.add(dt.date.fromisoformat(e["day"]))
    return days


def table_files(
    warehouse: Path | str, table: str, months: list[tuple[int, int]] | None = None
) -> dict[tuple[int, int], list[Path]]:
    """Committed Parquet files of probe_points, trips or behavior_events, per (year, month)."""
    warehouse = Path(warehouse)
    if table not in ("probe_points", "trips", "behavior_events", DUPLICATES_TABLE):
        raise ValueError(f"table_files: unknown table {table!r}")
    snap = read_snapshot(warehouse)
    if snap is None:
        if (warehouse / JOURNAL).exists():
            raise WarehouseInconsistent(
                f"warehouse {warehouse} has an unfinished commit (an ingest was interrupted): run 'etc2calm ingest' "
                "on it (with any file, or the same delivery) to finish it first"
            )
        snap = legacy_snapshot(warehouse)
    wanted = None if months is None else {(int(y), int(m)) for y, m in months}
    out: dict[tuple[int, int], list[Path]] = {}
    for f in snap["files"][table]:
        key = (f.get("year"), f.get("month"))
        if key[0] is None or key[1] is None:
            continue
        if wanted is None or key in wanted:
            out.setdefault(key, []).append(warehouse / f["path"])
    return {k: sorted(v) for k, v in sorted(out.items())}


# ---------------------------------------------------------------------------------------------
# Views


def _empty_select(columns: dict[str, tuple[str, str]]) -> str:
    cols = ", ".join(f"NULL::{typ} AS {name}" for name, (typ, _) in columns.items())
    return f"SELECT {cols} WHERE false"


def _view_sql(
    files: list[str], columns: dict[str, tuple[str, str]], hive: dict[str, str], legacy: bool, guard: str
) -> str:
    if not files:
        return _empty_select(columns)
    sel = ", ".join(f"CAST({n} AS {t}) AS {n}" for n, (t, _) in columns.items())
    opts = ", union_by_name = true" if legacy else ""
    if hive:
        types = ", ".join(f"{sql_literal(k)}: {v}" for k, v in hive.items())
        opts += f", hive_partitioning = true, hive_types = {{{types}}}"
    else:
        opts += ", hive_partitioning = false"
    listed = ", ".join(sql_literal(f) for f in files)
    return f"SELECT {sel} FROM read_parquet([{listed}]{opts}){guard}"


def _view_columns(behavior_layout: Layout) -> dict[str, dict[str, tuple[str, str]]]:
    return {
        "probe_points": PROBE_POINTS_COLUMNS,
        DUPLICATES_TABLE: PROBE_POINTS_COLUMNS,
        "trips": TRIPS_COLUMNS,
        "behavior_events": behavior_columns(behavior_layout),
        "quarantine": QUARANTINE_COLUMNS,
    }


def _own_paths(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The path(s) of the database this connection opened, as DuckDB reports it and resolved."""
    (p,) = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return sorted({p, os.path.realpath(p)}) if p else []


def _store_files(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, bool]]]:
    out: dict[str, list[tuple[str, bool]]] = {t: [] for t in TABLES}
    for tbl, path, legacy in con.execute("SELECT tbl, path, legacy FROM store_files ORDER BY tbl, path").fetchall():
        if tbl in out:
            out[tbl].append((path, bool(legacy)))
    return out


def refresh_views(
    con: duckdb.DuckDBPyConnection,
    warehouse: Path,
    behavior_layout: Layout = BEHAVIOR_DEFAULT,
    *,
    temp: bool = False,
    in_transaction: bool = False,
) -> None:
    """(Re)create the views over the committed files (table store_files) of the warehouse at `warehouse`.

    Persistent views (temp=False) hold absolute paths and a guard: a plain DuckDB connection to a
    copy or a moved warehouse gets an error rather than the original's rows. temp=True makes
    temporary views (read-only connections at another location than the views were made for).
    in_transaction: the caller holds a transaction (the journal apply) that these views join.
    """
    root = Path(warehouse).resolve()
    files = _store_files(con)
    own = _own_paths(con)
    guard = ""
    if not temp and own:
        where = ", ".join(sql_literal(p) for p in own)
        msg = (
            f"this warehouse was made at {root}: it has been copied or moved; run 'etc2calm views --refresh "
            "--warehouse <its folder>' once to open it with plain DuckDB, or open it with etc2calm (etc2calm sql, "
            "etl.warehouse.connect), which reads the files where the warehouse is now"
        )
        guard = (
            f" WHERE CASE WHEN (SELECT count(*) FROM duckdb_databases() WHERE path IN ({where})) > 0 "
            f"THEN true ELSE error({sql_literal(msg)}) END"
        )
    cols_of = _view_columns(behavior_layout)
    define = _ViewDefiner(con, temp)

    def build():
        for name, hive in TABLES.items():
            listed = [(root / p).as_posix() for p, _ in files[name]]
            legacy = any(lg for _, lg in files[name])
            define(name, _view_sql(listed, cols_of[name], hive, legacy, guard), cols_of[name])
        _matched_views(con, root, define, files, guard)
        _figure_views(con, root, define, guard)
        define.record()

    if temp:
        build()
        return
    if in_transaction:
        _build_persistent(con, build, root, own, cols_of)
        return
    with transaction(con):
        _build_persistent(con, build, root, own, cols_of)


MATCHED_VIEWS = {
    "matched_points": MATCHED_POINTS_COLUMNS,
    "district_trip_points": MATCHED_POINTS_COLUMNS,
    "matched_trips": MATCHED_TRIPS_COLUMNS,
    "matched_events": MATCHED_EVENTS_COLUMNS,
}


class _ViewDefiner:
    """CREATE OR REPLACE a view and (persistent views) comment its columns, skipping a persistent view
    whose SQL and column docs are those it already has: a commit then re-creates only the views
    whose files changed (COMMENT ON COLUMN costs ~0.5 ms a column). What each persistent view was
    made from is kept in warehouse_info as `view:<name>` = a digest of its SQL and docs."""

    def __init__(self, con: duckdb.DuckDBPyConnection, temp: bool):
        self.con, self.temp = con, temp
        self.made: dict[str, str] = {}
        self.current: dict[str, str] = {}
        if not temp:
            existing = {
                v
                for (v,) in con.execute(
                    "SELECT view_name FROM duckdb_views() WHERE database_name = current_database() AND NOT temporary"
                ).fetchall()
            }
            self.current = {
                n[5:]: v
                for n, v in con.execute("SELECT name, value FROM warehouse_info WHERE name LIKE 'view:%'").fetchall()
                if n[5:] in existing
            }

    def __call__(self, name: str, sql: str, columns: dict[str, tuple[str, str]]) -> None:
        if self.temp:
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
            return
        comments = ";\n".join(
            f"COMMENT ON COLUMN {name}.{col} IS {sql_literal(doc)}" for col, (_, doc) in columns.items()
        )
        digest = hashlib.sha256(f"{sql}\n{comments}".encode()).hexdigest()[:32]
        if self.current.get(name) == digest:
            return
        self.con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
        self.con.execute(comments)
        self.made[name] = digest

    def record(self) -> None:
        if self.made:
            names = [f"view:{n}" for n in self.made]
            self.con.execute("DELETE FROM warehouse_info WHERE name IN (SELECT unnest(?::VARCHAR[]))", [names])
            self.con.execute(
                "INSERT INTO warehouse_info SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
                [names, list(self.made.values())],
            )


def _month_point_files(files: dict, year: int, month: int) -> tuple[list[str], bool]:
    """The committed probe_points files of one month of 運行日 (relative paths) and whether any is legacy."""
    listed = files["probe_points"]
    part = f"year={year}/month={month}/"
    mine = [(p, lg) for p, lg in listed if part in p] or listed  # a legacy layout: every file
    return [p for p, _ in mine], any(lg for _, lg in mine)


def _delivered_sql(root: Path, files: list[str], legacy: bool) -> str:
    """probe_points' delivered columns of the given files, keyed by point_key (typed NULLs without files)."""
    cols = {c: PROBE_POINTS_COLUMNS[c][0] for c in ("point_key", *MATCHED_DELIVERED)}
    if not files:
        return "(" + _empty_select({c: (t, "") for c, t in cols.items()}) + ")"
    listed = ", ".join(sql_literal((root / f).as_posix()) for f in files)
    opts = ", union_by_name = true" if legacy else ""
    sel = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in cols.items())
    return f"(SELECT {sel} FROM read_parquet([{listed}]{opts}, hive_partitioning = false))"


def _matched_points_sql(root: Path, district: str, folder: str, segments: str, delivered: str, cond: str) -> str:
    """One district-month of matched_points / district_trip_points: the stored match with the
    segment table, the calendar and the delivered columns joined back (see etl.schema)."""
    cols = [(c, t) for c, (t, _) in MATCHED_POINTS_COLUMNS.items() if c != "district"]
    sel = ", ".join(f"CAST({MATCHED_POINTS_SQL[c]} AS {t}) AS {c}" for c, t in cols)
    return (
        f"SELECT {sql_literal(district)} AS district, {sel} "
        f"FROM read_parquet({sql_literal((root / folder / 'points.parquet').as_posix())}) m "
        f"LEFT JOIN read_parquet({sql_literal((root / segments).as_posix())}) s ON s.seg = m.seg "
        f"LEFT JOIN read_parquet({sql_literal((root / MATCHED_CALENDAR).as_posix())}) c "
        f"ON c.day = CAST(m.gps_time AS DATE) "
        f"LEFT JOIN {delivered} p ON p.point_key = m.point_key{cond}"
    )


def _matched_views(
    con: duckdb.DuckDBPyConnection, root: Path, define: _ViewDefiner, files: dict, guard: str = ""
) -> None:
    """Views over the match stage's files listed in match_state (never stale or half-written folders)."""
    rows = con.execute(
        "SELECT district, folder, year, month FROM match_state ORDER BY district, year, month"
    ).fetchall()
    segments = dict(con.execute("SELECT district, segments_file FROM matched_networks").fetchall())
    specs = (
        ("district_trip_points", "points", MATCHED_POINTS_COLUMNS, ""),
        ("matched_points", "points", MATCHED_POINTS_COLUMNS, " WHERE m.seg >= 0"),
        ("matched_trips", "trips", MATCHED_TRIPS_COLUMNS, ""),
        ("matched_events", "events", MATCHED_EVENTS_COLUMNS, ""),
    )
    for view, name, cols, where in specs:
        cond = where
        if guard:
            cond = (where + " AND " if where else " WHERE ") + guard.removeprefix(" WHERE ")
        if name == "points":
            delivered = {(y, m): _delivered_sql(root, *_month_point_files(files, y, m)) for _, _, y, m in rows}
            parts = [
                _matched_points_sql(root, d, f, segments[d], delivered[(y, m)], cond)
                for d, f, y, m in rows
                if segments.get(d)
            ]
            define(view, " UNION ALL ".join(parts) if parts else _empty_select(cols), cols)
            continue
        by_district: dict[str, list[str]] = {}
        for district, folder, _, _ in rows:
            by_district.setdefault(district, []).append((root / folder / f"{name}.parquet").as_posix())
        sel = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, (t, _) in cols.items() if c != "district")
        parts = [
            f"SELECT {sql_literal(d)} AS district, {sel} FROM read_parquet([{', '.join(map(sql_literal, fs))}]){cond}"
            for d, fs in by_district.items()
        ]
        define(view, " UNION ALL ".join(parts) if parts else _empty_select(cols), cols)


def _figure_views(con: duckdb.DuckDBPyConnection, root: Path, define: _ViewDefiner, guard: str = "") -> None:
    """link_hour_stats / link_hour_histogram: the period cubes' Parquet files listed in figure_files
    (analysis._cube_files), the district and period as constants of each file's part."""
    if not _has_table(con, "figure_files"):  # a database of an earlier layout: its own tables stay
        return
    rows = con.execute(
        "SELECT district, period, period_start, period_end, folder FROM figure_files ORDER BY district, period"
    ).fetchall()
    for view, cols in FIGURE_VIEWS.items():
        parts = []
        for district, period, start, end, folder in rows:
            given = dict(zip(FIGURE_FOLDER_COLUMNS, (district, period, start, end), strict=True))
            sel = ", ".join(
                f"CAST({sql_literal(str(given[c])) if c in given else c} AS {t}) AS {c}" for c, (t, _) in cols.items()
            )
            path = (root / folder / f"{view}.parquet").as_posix()
            parts.append(f"SELECT {sel} FROM read_parquet({sql_literal(path)}){guard}")
        define(view, " UNION ALL ".join(parts) if parts else _empty_select(cols), cols)


def _build_persistent(con, build, root: Path, own: list[str], cols_of) -> None:
    build()
    con.execute("DELETE FROM warehouse_info WHERE name IN ('location', 'database_path')")
    con.execute("INSERT INTO warehouse_info VALUES ('location', ?), ('database_path', ?)", [str(root), json.dumps(own)])
    rows = [(v, c, t, d) for v, cols in cols_of.items() for c, (t, d) in cols.items()]
    rows += [(v, c, t, d) for v, cols in MATCHED_VIEWS.items() for c, (t, d) in cols.items()]
    rows += [(v, c, t, d) for v, cols in FIGURE_VIEWS.items() for c, (t, d) in cols.items()]
    rows += [("manifest", c, t, d) for c, (t, d) in MANIFEST_COLUMNS.items()]
    rows += [("skipped_members", c, t, d) for c, (t, d) in SKIPPED_MEMBERS_COLUMNS.items()]
    if con.execute("SELECT count(*) FROM column_docs").fetchone()[0] != len(rows):
        con.execute("DELETE FROM column_docs")
        con.execute(
            "INSERT INTO column_docs SELECT * FROM (SELECT unnest(?::VARCHAR[]) a, unnest(?::VARCHAR[]) b, "
            "unnest(?::VARCHAR[]) c, unnest(?::VARCHAR[]) d)",
            [[r[i] for r in rows] for i in range(4)],
        )


def views_current(con: duckdb.DuckDBPyConnection, warehouse: Path) -> bool:
    """Whether the persistent views were made for this warehouse folder and this database path."""
    try:
        got = dict(
            con.execute("SELECT name, value FROM warehouse_info WHERE name IN ('location', 'database_path')").fetchall()
        )
    except duckdb.CatalogException:
        return False
    try:
        own = json.loads(got.get("database_path") or "[]")
    except ValueError:
        return False
    return got.get("location") == str(Path(warehouse).resolve()) and bool(set(own) & set(_own_paths(con)))


# ---------------------------------------------------------------------------------------------
# Connections

READ_ONLY_CONFIG = {"autoload_known_extensions": False, "autoinstall_known_extensions": False}


def connect(warehouse: Path | str, *, read_only: bool = False, create: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the warehouse database (creating the folder if `create`), with views over the committed files.

    Read-write: tables created, views refreshed for the folder the warehouse is in. Read-only (the
    `etc2calm sql` connection): confined to the warehouse folder — no file outside it can be
    read, no extension loaded or installed, and the configuration is locked — with temporary
    views when the warehouse was copied or moved since its views were made.

    Raises WarehouseBusy when another process is writing, WarehouseMissing when read-only
    and absent (or when the path is a file).
    """
    warehouse = Path(warehouse)
    _check_folder(warehouse)
    path = db_path(warehouse)
    if not path.exists():
        if read_only or not create:
            raise WarehouseMissing(f"no warehouse at {warehouse} (run 'etc2calm ingest' first)")
        warehouse.mkdir(parents=True, exist_ok=True)
    try:
        if read_only:
            con = duckdb.connect(str(path), read_only=True, config=dict(READ_ONLY_CONFIG))
        else:
            con = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(f"warehouse {warehouse} is busy: another etc2calm process is using it") from None
        raise
    if read_only:
        try:
            _confine(con, warehouse)
        except BaseException:
            con.close()
            raise
        return con
    create_tables(con)
    # an outdated warehouse keeps its views; a new layout of the derived tables may need new views
    if not is_outdated(warehouse) and not (views_current(con, warehouse) and _has_views(con, FIGURE_VIEWS)):
        refresh_views(con, warehouse)
    return con


def follow_location(warehouse: Path | str, *, force: bool = False) -> bool:
    """Rewrite the persistent views for the folder the warehouse is in now when they were made for
    another (it was moved or copied), so that plain DuckDB reads its own files; `force`: rewrite them
    whatever they say (`etc2calm views --refresh`). Run first by every writing command. Returns whether
    they were rewritten; nothing happens without a warehouse (or for one written before snapshots)."""
    warehouse = Path(warehouse)
    _check_folder(warehouse)
    if not db_path(warehouse).exists() or is_outdated(warehouse):
        return False
    if not force:
        try:
            ro = duckdb.connect(str(db_path(warehouse)), read_only=True)
        except duckdb.IOException:
            return False  # another process is writing: the command itself will say so
        try:
            if views_current(ro, warehouse):
                return False
        finally:
            ro.close()
    con = connect(warehouse)  # a read-write connection makes the views current
    try:
        if force:
            refresh_views(con, warehouse)
    finally:
        con.close()
    return True


def view_locations(warehouse: Path | str) -> tuple[list[tuple[str, int]], str]:
    """([(view, committed files it reads)], the folder the persistent views were made for)."""
    warehouse = Path(warehouse)
    if not db_path(warehouse).exists():
        raise WarehouseMissing(f"no warehouse at {warehouse} (run 'etc2calm ingest' first)")
    con = duckdb.connect(str(db_path(warehouse)), read_only=True)
    try:
        files = dict(con.execute("SELECT tbl, count(*) FROM store_files GROUP BY ALL").fetchall())
        matched = con.execute("SELECT count(*) FROM match_state").fetchone()[0] if _has_table(con, "match_state") else 0
        has_figures = _has_table(con, "figure_files")
        figures = con.execute("SELECT count(*) FROM figure_files").fetchone()[0] if has_figures else 0
        (made_for,) = con.execute("SELECT value FROM warehouse_info WHERE name = 'location'").fetchone() or ("",)
    finally:
        con.close()
    rows = [(t, int(files.get(t, 0))) for t in TABLES] + [(v, int(matched)) for v in MATCHED_VIEWS]
    rows += [(v, int(figures)) for v in FIGURE_VIEWS]  # one file per district and period
    return rows, made_for


def _has_views(con: duckdb.DuckDBPyConnection, names) -> bool:
    made = {v for (v,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT temporary").fetchall()}
    return set(names) <= made


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchone()[0])


def _confine(con: duckdb.DuckDBPyConnection, warehouse: Path) -> None:
    root = Path(warehouse).resolve().as_posix().rstrip("/") + "/"
    con.execute("SET allowed_directories = ?", [[root]])
    con.execute("SET enable_external_access = false")
    if not views_current(con, warehouse) and not is_outdated(warehouse):
        with contextlib.suppress(duckdb.CatalogException):  # a database without store_files: its own views stay
            refresh_views(con, warehouse, temp=True)
    con.execute("SET lock_configuration = true")


def set_store_files(con: duckdb.DuckDBPyConnection, snap: dict) -> None:
    """Replace the table store_files by the files of a snapshot (inside the caller's transaction)."""
    rows = [
        (
            t,
            f["path"],
            f.get("file_id") or "",
            f.get("day"),
            f.get("year"),
            f.get("month"),
            f.get("rows"),
            bool(f.get("legacy", False)),
        )
        for t, fs in snap["files"].items()
        for f in fs
    ]
    con.execute("DELETE FROM store_files")
    if rows:
        cols = list(zip(*rows, strict=True))
        con.execute(
            "INSERT INTO store_files SELECT * FROM (SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
            "unnest(?::VARCHAR[]), "
            "unnest(?::DATE[]), unnest(?::INTEGER[]), unnest(?::INTEGER[]), unnest(?::BIGINT[]), unnest(?::BOOLEAN[]))",
            [list(c) for c in cols],
        )


def update_store_files(con: duckdb.DuckDBPyConnection, deleted: list[str], added: list[dict]) -> None:
    """store_files minus the deleted paths plus the added entries (inside the caller's transaction): a
    commit's cost here grows with what it changes, not with the store."""
    if deleted:
        con.execute("DELETE FROM store_files WHERE path IN (SELECT unnest(?::VARCHAR[]))", [deleted])
    if added:
        con.execute("DELETE FROM store_files WHERE path IN (SELECT unnest(?::VARCHAR[]))", [[e["path"] for e in added]])
        rows = [
            (
                e["tbl"],
                e["path"],
                e.get("file_id") or "",
                e.get("day"),
                e.get("year"),
                e.get("month"),
                e.get("rows"),
                bool(e.get("legacy", False)),
            )
            for e in added
        ]
        cols = list(zip(*rows, strict=True))
        con.execute(
            "INSERT INTO store_files SELECT * FROM (SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
            "unnest(?::VARCHAR[]), "
            "unnest(?::DATE[]), unnest(?::INTEGER[]), unnest(?::INTEGER[]), unnest(?::BIGINT[]), unnest(?::BOOLEAN[]))",
            [list(c) for c in cols],
        )


@contextmanager
def ingest_lock(warehouse: Path):
    """Exclusive, non-blocking lock of the warehouse for one ingest; WarehouseBusy when held elsewhere.

    An OS lock (flock): released by the kernel when the holder dies, so a killed ingest never
    leaves a stale lock behind.
    """
    warehouse = Path(warehouse)
    _check_folder(warehouse)
    warehouse.mkdir(parents=True, exist_ok=True)
    fd = os.open(warehouse / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WarehouseBusy(
                f"warehouse {warehouse} is busy: another ingest is writing to it (try again when it has finished)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield fd  # forked workers close their copy, so only this process holds the lock
    finally:
        os.close(fd)


__all__ = [
    "DB_NAME",
    "JOURNAL",
    "SNAPSHOT",
    "TABLES",
    "WarehouseBusy",
    "WarehouseInconsistent",
    "WarehouseMissing",
    "WarehouseOutdated",
    "is_outdated",
    "legacy_snapshot",
    "connect",
    "db_path",
    "follow_location",
    "view_locations",
    "empty_snapshot",
    "ingest_lock",
    "point_days",
    "point_files",
    "read_snapshot",
    "refresh_views",
    "set_store_files",
    "update_store_files",
    "sql_literal",
    "table_files",
    "transaction",
    "write_json_atomic",
    "replace_durably",
]
