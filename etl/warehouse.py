"""The warehouse: Parquet files as the durable store, a DuckDB database with documented views over them.

Layout of a warehouse folder:

    probe_points/year=YYYY/month=M/mesh2=NNNNNN/<operation date>_<commit>_<i>.parquet   様式1-2 points, zstd
    trips/year=YYYY/month=M/<commit>_<i>.parquet             様式1-3 trips
    behavior_events/year=YYYY/month=M/<commit>_<i>.parquet   挙動履歴 events
    quarantine/<commit>.parquet                               rows that failed validation, with reason
    warehouse.duckdb                                          manifest, ingest_runs, analysis tables, views
    .ingest.lock                                              held (flock) by the one ingest allowed at a time
    _journal.json, _staging/, _txn/                           transient: only present while (or after a kill during) an ingest

year / month are those of the operation date (運行日); mesh2 is the 2次メッシュ of the point's own
position (JIS X 0410, computed from lon/lat), so a spatial query reads only its meshes' folders.
Every column of every view is documented in `column_docs` (and as a DuckDB column comment).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

import duckdb

from etl.schema import (
    MANIFEST_COLUMNS,
    MATCHED_EVENTS_COLUMNS,
    MATCHED_POINTS_COLUMNS,
    MATCHED_TRIPS_COLUMNS,
    PROBE_POINTS_COLUMNS,
    QUARANTINE_COLUMNS,
    TRIPS_COLUMNS,
    behavior_columns,
    create_tables,
    transaction,
)
from etl.spec import BEHAVIOR_DEFAULT, Layout

DB_NAME = "warehouse.duckdb"
LOCK_NAME = ".ingest.lock"


class WarehouseBusy(Exception):
    """Another process holds the warehouse for writing."""


class WarehouseMissing(Exception):
    """No warehouse at the given path."""


def db_path(warehouse: Path) -> Path:
    return Path(warehouse) / DB_NAME


def _empty_select(columns: dict[str, tuple[str, str]]) -> str:
    cols = ", ".join(f"NULL::{typ} AS {name}" for name, (typ, _) in columns.items())
    return f"SELECT {cols} WHERE false"


def _has_files(d: Path) -> bool:
    return d.exists() and any(True for _ in d.rglob("*.parquet"))


def _parquet_view(con, name: str, folder: Path, depth: int, columns: dict[str, tuple[str, str]], hive: dict[str, str]) -> None:
    if _has_files(folder):
        glob = (folder / "/".join(["*"] * depth) / "*.parquet").as_posix() if depth else (folder / "*.parquet").as_posix()
        sel = ", ".join(f"CAST({n} AS {t}) AS {n}" for n, (t, _) in columns.items())
        opts = ", union_by_name = true"
        if hive:
            types = ", ".join(f"'{k}': {v}" for k, v in hive.items())
            opts += f", hive_partitioning = true, hive_types = {{{types}}}"
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT {sel} FROM read_parquet('{glob}'{opts})")
    else:
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {_empty_select(columns)}")
    for col, (_, doc) in columns.items():
        quoted = doc.replace("'", "''")
        con.execute(f"COMMENT ON COLUMN {name}.{col} IS '{quoted}'")


def refresh_views(con: duckdb.DuckDBPyConnection, warehouse: Path, behavior_layout: Layout = BEHAVIOR_DEFAULT) -> None:
    """(Re)create the views over the Parquet store; absolute paths so the DuckDB file works anywhere."""
    warehouse = Path(warehouse).resolve()
    part3 = {"year": "INTEGER", "month": "INTEGER", "mesh2": "INTEGER"}
    part2 = {"year": "INTEGER", "month": "INTEGER"}
    views = {
        "probe_points": (warehouse / "probe_points", 3, PROBE_POINTS_COLUMNS, part3),
        "trips": (warehouse / "trips", 2, TRIPS_COLUMNS, part2),
        "behavior_events": (warehouse / "behavior_events", 2, behavior_columns(behavior_layout), part2),
        "quarantine": (warehouse / "quarantine", 0, QUARANTINE_COLUMNS, {}),
    }
    matched = {"matched_points": MATCHED_POINTS_COLUMNS, "district_trip_points": MATCHED_POINTS_COLUMNS,
               "matched_trips": MATCHED_TRIPS_COLUMNS, "matched_events": MATCHED_EVENTS_COLUMNS}  # fmt: skip
    with transaction(con):
        for name, (folder, depth, cols, hive) in views.items():
            _parquet_view(con, name, folder, depth, cols, hive)
        _matched_views(con, warehouse)
        rows = [(v, c, t, d) for v, (_, _, cols, _) in views.items() for c, (t, d) in cols.items()]
        rows += [(v, c, t, d) for v, cols in matched.items() for c, (t, d) in cols.items()]
        rows += [("manifest", c, t, d) for c, (t, d) in MANIFEST_COLUMNS.items()]
        if con.execute("SELECT count(*) FROM column_docs").fetchone()[0] != len(rows):
            con.execute("DELETE FROM column_docs")
            con.execute("INSERT INTO column_docs SELECT * FROM (SELECT unnest(?::VARCHAR[]) a, unnest(?::VARCHAR[]) b, unnest(?::VARCHAR[]) c, unnest(?::VARCHAR[]) d)",
                        [[r[i] for r in rows] for i in range(4)])


def sql_literal(value) -> str:
    """A SQL string literal (quotes doubled): for DDL such as CREATE VIEW, which takes no parameters."""
    return "'" + str(value).replace("'", "''") + "'"


def _matched_views(con: duckdb.DuckDBPyConnection, warehouse: Path) -> None:
    """Views over the match stage's files listed in match_state (never stale or half-written folders)."""
    rows = con.execute("SELECT district, folder FROM match_state ORDER BY district, year, month").fetchall()
    specs = (("district_trip_points", "points", MATCHED_POINTS_COLUMNS, ""),
             ("matched_points", "points", MATCHED_POINTS_COLUMNS, " WHERE road_idx >= 0"),
             ("matched_trips", "trips", MATCHED_TRIPS_COLUMNS, ""),
             ("matched_events", "events", MATCHED_EVENTS_COLUMNS, ""))  # fmt: skip
    for view, name, cols, where in specs:
        by_district: dict[str, list[str]] = {}
        for district, folder in rows:
            by_district.setdefault(district, []).append((warehouse / folder / f"{name}.parquet").as_posix())
        sel = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, (t, _) in cols.items() if c != "district")
        parts = [f"SELECT {sql_literal(d)} AS district, {sel} FROM read_parquet([{', '.join(map(sql_literal, files))}]){where}"
                 for d, files in by_district.items()]  # fmt: skip
        con.execute(f"CREATE OR REPLACE VIEW {view} AS " + (" UNION ALL ".join(parts) if parts else _empty_select(cols)))
        for col, (_, doc) in cols.items():
            con.execute(f"COMMENT ON COLUMN {view}.{col} IS {sql_literal(doc)}")


def connect(warehouse: Path | str, *, read_only: bool = False, create: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the warehouse database (creating the folder if `create`), with views refreshed.

    Raises WarehouseBusy when another process is writing, WarehouseMissing when read-only
    and absent.
    """
    warehouse = Path(warehouse)
    path = db_path(warehouse)
    if not path.exists():
        if read_only or not create:
            raise WarehouseMissing(f"no warehouse at {warehouse} (run 'etc2calm ingest' first)")
        warehouse.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(f"warehouse {warehouse} is busy: another etc2calm process is using it") from None
        raise
    if not read_only:
        create_tables(con)
        refresh_views(con, warehouse)
    return con


@contextmanager
def ingest_lock(warehouse: Path):
    """Exclusive, non-blocking lock of the warehouse for one ingest; WarehouseBusy when held elsewhere.

    An OS lock (flock): released by the kernel when the holder dies, so a killed ingest never
    leaves a stale lock behind.
    """
    warehouse = Path(warehouse)
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


class WarehouseInconsistent(Exception):
    """A commit was interrupted and not yet finished: readers must not read the store now."""


def point_files(warehouse: Path | str, months: list[tuple[int, int]] | None = None) -> dict[tuple[int, int], list[Path]]:
    """The committed Parquet files of probe_points, per (year, month) of the operation date.

    The one way readers (the match stage) list the point store. Raises WarehouseInconsistent
    while an interrupted commit's journal is pending (the next ingest finishes it).
    """
    warehouse = Path(warehouse)
    if (warehouse / "_journal.json").exists():
        raise WarehouseInconsistent(
            f"warehouse {warehouse} has an unfinished commit (an ingest was interrupted): run 'etc2calm ingest' "
            "on it (with any file, or the same delivery) to finish it first"
        )
    root = warehouse / "probe_points"
    out: dict[tuple[int, int], list[Path]] = {}
    if not root.exists():
        return out
    for f in sorted(root.glob("year=*/month=*/**/*.parquet")):
        rel = f.relative_to(root).parts
        try:
            key = (int(rel[0].split("=", 1)[1]), int(rel[1].split("=", 1)[1]))
        except (IndexError, ValueError):
            continue
        if months is None or key in months:
            out.setdefault(key, []).append(f)
    return out


def table_files(warehouse: Path | str, table: str, months: list[tuple[int, int]] | None = None) -> dict[tuple[int, int], list[Path]]:
    """Committed Parquet files of trips or behavior_events (partitioned year / month), per (year, month)."""
    warehouse = Path(warehouse)
    if table not in ("trips", "behavior_events"):
        raise ValueError(f"table_files: unknown table {table!r}")
    root = warehouse / table
    out: dict[tuple[int, int], list[Path]] = {}
    if not root.exists():
        return out
    for f in sorted(root.glob("year=*/month=*/*.parquet")):
        rel = f.relative_to(root).parts
        try:
            key = (int(rel[0].split("=", 1)[1]), int(rel[1].split("=", 1)[1]))
        except (IndexError, ValueError):
            continue
        if months is None or key in months:
            out.setdefault(key, []).append(f)
    return out
