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

from etl.spec import BEHAVIOR_DEFAULT, STYLE_1_2, STYLE_1_3, Layout

DEFAULT_WAREHOUSE = Path("data/warehouse")
DB_NAME = "warehouse.duckdb"
LOCK_NAME = ".ingest.lock"


class WarehouseBusy(Exception):
    """Another process holds the warehouse for writing."""


class WarehouseMissing(Exception):
    """No warehouse at the given path."""


def _spec_doc(c) -> str:
    unit = f" [{c.unit}]" if c.unit else ""
    return f"{c.index}: {c.name_ja}{unit}: {c.meaning}"


# The columns every earlier consumer reads, with their types kept (the view casts to them).
LEGACY_TYPES = {"vehicle_type": "INTEGER", "vehicle_use": "INTEGER", "trip_no": "INTEGER"}


def _layout_columns(layout: Layout, first: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    cols = dict(first)
    for c in layout.columns:
        if c.type == "id" or c.name in cols:
            continue
        cols[c.name] = (LEGACY_TYPES.get(c.name, c.sql_type) if layout is STYLE_1_2 else c.sql_type, _spec_doc(c))
    return cols


ID_COLUMNS = {
    "vehicle_key": ("VARCHAR", "HMAC-SHA-256 pseudonym of 運行ID (first 128 bits, 32 hex chars); the raw ID is never stored"),
    "vehicle_id": ("BIGINT", "first 8 bytes of the same HMAC digest as a signed int64 (fast distinct counts)"),
}

# Column documentation of every view and table: name -> (type, unit/meaning). Also used by docs.
PROBE_POINTS_COLUMNS: dict[str, tuple[str, str]] = {
    "operation_date": ("DATE", "運行日"),
    **ID_COLUMNS,
    "vehicle_type": ("INTEGER", "自動車の種別: 0 軽二輪, 1 大型, 2 普通, 3 小型, 4 軽自動車"),
    "vehicle_use": ("INTEGER", "自動車の用途: 0 未使用, 1 乗用, 2 貨物, 3 特殊, 4 乗合"),
    "gps_time": ("TIMESTAMP", "GPS時刻, JST wall-clock time (no time zone stored); 12-digit times padded with :00"),
    "trip_no": ("INTEGER", "トリップ番号"),
    "lon": ("DOUBLE", "longitude as recorded, degrees, JGD2011"),
    "lat": ("DOUBLE", "latitude as recorded, degrees, JGD2011"),
    "x_m": ("DOUBLE", "easting in metres, EPSG:6677 (JGD2011 plane rectangular IX), from lon/lat"),
    "y_m": ("DOUBLE", "northing in metres, EPSG:6677"),
    "speed_kmh": ("DOUBLE", "速度, km/h"),
    "mesh_code": ("VARCHAR", "2次メッシュコード as delivered"),
    "file_id": ("VARCHAR", "source file (manifest.file_id)"),
    "line_no": ("BIGINT", "1-based line in the source CSV member"),
    "heading_deg": ("DOUBLE", "direction of travel from the previous point of the same vehicle and trip, degrees clockwise "
                    "from grid north of EPSG:6677 [0, 360); NULL for a trip's first point or when it did not move"),
    "dt_prev_s": ("DOUBLE", "seconds since the previous point of the same vehicle and trip (by GPS時刻); NULL for the first"),
    "dist_prev_m": ("DOUBLE", "straight-line metres (EPSG:6677) from the previous point of the same vehicle and trip; NULL for the first"),
    "member": ("VARCHAR", "ZIP member name ('' for plain files)"),
}  # fmt: skip
PROBE_POINTS_COLUMNS = _layout_columns(STYLE_1_2, PROBE_POINTS_COLUMNS)
PROBE_POINTS_COLUMNS.update(
    {
        "year": ("INTEGER", "partition: year of operation_date"),
        "month": ("INTEGER", "partition: month of operation_date"),
        "mesh2": ("INTEGER", "partition: 2次メッシュ (JIS X 0410) of the point's lon/lat"),
    }
)

TRIPS_COLUMNS = _layout_columns(
    STYLE_1_3,
    {"operation_date": ("DATE", "運行日 (join key with probe_points)"), **ID_COLUMNS, "trip_no": ("INTEGER", "トリップ番号 (join key)")},
)
TRIPS_COLUMNS.update(
    {
        "file_id": ("VARCHAR", "source file (manifest.file_id)"),
        "member": ("VARCHAR", "ZIP member name"),
        "line_no": ("BIGINT", "1-based line in the member (a header row counts as line 1)"),
        "year": ("INTEGER", "partition: year of operation_date"),
        "month": ("INTEGER", "partition: month of operation_date"),
    }
)


def behavior_columns(layout: Layout = BEHAVIOR_DEFAULT) -> dict[str, tuple[str, str]]:
    cols = _layout_columns(layout, {"operation_date": ("DATE", "運行日"), **ID_COLUMNS})
    cols.update(
        {
            "x_m": ("DOUBLE", "easting in metres, EPSG:6677"),
            "y_m": ("DOUBLE", "northing in metres, EPSG:6677"),
            "file_id": ("VARCHAR", "source file (manifest.file_id)"),
            "member": ("VARCHAR", "ZIP member name"),
            "line_no": ("BIGINT", "1-based line in the member"),
            "year": ("INTEGER", "partition: year of operation_date"),
            "month": ("INTEGER", "partition: month of operation_date"),
        }
    )
    return cols


QUARANTINE_COLUMNS: dict[str, tuple[str, str]] = {
    "file_id": ("VARCHAR", "source file (manifest.file_id)"),
    "source_path": ("VARCHAR", "path of the delivered file at ingest"),
    "format": ("VARCHAR", "様式1-2 | 様式1-3 | 挙動履歴"),
    "member": ("VARCHAR", "ZIP member name ('' for plain files)"),
    "line_no": ("BIGINT", "1-based line in the member"),
    "reason": ("VARCHAR", "validation rule that failed (etl/validate.py, python -m etl.spec)"),
    "raw_text": ("VARCHAR", "the line as delivered, with the 運行ID replaced by its pseudonym"),
}

MANIFEST_COLUMNS: dict[str, tuple[str, str]] = {
    "file_id": ("VARCHAR", "first 20 hex chars of sha256"),
    "source_path": ("VARCHAR", "path at ingest (absolute)"),
    "size_bytes": ("BIGINT", "bytes"),
    "sha256": ("VARCHAR", "SHA-256 of the delivered file's bytes"),
    "format": ("VARCHAR", "様式1-2 | 様式1-3 | 挙動履歴 ('' when unreadable)"),
    "rows_read": ("BIGINT", "data lines read (header rows excluded)"),
    "rows_stored": ("BIGINT", "lines stored"),
    "rows_quarantined": ("BIGINT", "lines in quarantine"),
    "status": ("VARCHAR", "ok | failed | replaced"),
    "message": ("VARCHAR", "reason when failed"),
    "ingested_at": ("TIMESTAMP", "local time of the commit"),
    "rows_duplicate": ("BIGINT", "exact duplicate points skipped (same vehicle, GPS時刻, lon, lat, speed already stored)"),
}

MANIFEST_DDL = """
CREATE TABLE IF NOT EXISTS manifest (
    file_id VARCHAR, source_path VARCHAR, size_bytes BIGINT, sha256 VARCHAR, format VARCHAR,
    rows_read BIGINT, rows_stored BIGINT, rows_quarantined BIGINT, status VARCHAR, message VARCHAR,
    ingested_at TIMESTAMP
);
ALTER TABLE manifest ADD COLUMN IF NOT EXISTS rows_duplicate BIGINT DEFAULT 0;
CREATE TABLE IF NOT EXISTS ingest_runs (
    started_at TIMESTAMP, finished_at TIMESTAMP, files_ok BIGINT, files_skipped BIGINT, files_failed BIGINT,
    rows_read BIGINT, rows_stored BIGINT, rows_quarantined BIGINT, rows_duplicate BIGINT, seconds DOUBLE
);
CREATE TABLE IF NOT EXISTS column_docs (table_name VARCHAR, column_name VARCHAR, type VARCHAR, doc VARCHAR);
"""


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
    con.execute("BEGIN")
    try:
        for name, (folder, depth, cols, hive) in views.items():
            _parquet_view(con, name, folder, depth, cols, hive)
        rows = [(v, c, t, d) for v, (_, _, cols, _) in views.items() for c, (t, d) in cols.items()]
        rows += [("manifest", c, t, d) for c, (t, d) in MANIFEST_COLUMNS.items()]
        if con.execute("SELECT count(*) FROM column_docs").fetchone()[0] != len(rows):
            con.execute("DELETE FROM column_docs")
            con.execute("INSERT INTO column_docs SELECT * FROM (SELECT unnest(?::VARCHAR[]) a, unnest(?::VARCHAR[]) b, unnest(?::VARCHAR[]) c, unnest(?::VARCHAR[]) d)",
                        [[r[i] for r in rows] for i in range(4)])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


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
        con.execute(MANIFEST_DDL)
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


def atomic_write_parquet(table, final_path: Path, compression: str = "zstd") -> None:
    """Write to a temporary name in the same folder, then rename: readers never see half a file."""
    import pyarrow.parquet as pq

    final_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = final_path.with_name(f".{final_path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression=compression)
    os.replace(tmp, final_path)
