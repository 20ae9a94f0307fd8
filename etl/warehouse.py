"""The warehouse: Parquet files as the durable store, a DuckDB database with documented views over them.

Layout of a warehouse folder:

    probe_points/operation_date=YYYY-MM-DD/<file_id>.parquet   validated points (one file per source file and day)
    quarantine/<file_id>.parquet                                rows that failed validation, with reason
    warehouse.duckdb                                            manifest and analysis tables, views over the Parquet
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

DEFAULT_WAREHOUSE = Path("data/warehouse")
DB_NAME = "warehouse.duckdb"


class WarehouseBusy(Exception):
    """Another process holds the warehouse for writing."""


class WarehouseMissing(Exception):
    """No warehouse at the given path."""


# Column documentation of every view and table: name -> (type, unit/meaning). Also used by docs.
PROBE_POINTS_COLUMNS: dict[str, tuple[str, str]] = {
    "operation_date": ("DATE", "運行日 (hive partition key)"),
    "vehicle_key": ("VARCHAR", "HMAC-SHA-256 pseudonym of 運行ID (32 hex chars); the raw ID is never stored"),
    "vehicle_type": ("INTEGER", "自動車の種別: 0 軽二輪, 1 大型, 2 普通, 3 小型, 4 軽自動車"),
    "vehicle_use": ("INTEGER", "自動車の用途: 0 未使用, 1 乗用, 2 貨物, 3 特殊, 4 乗合"),
    "gps_time": ("TIMESTAMP", "GPS時刻, JST wall-clock time (no time zone stored)"),
    "trip_no": ("INTEGER", "トリップ番号"),
    "lon": ("DOUBLE", "longitude, degrees, JGD2011"),
    "lat": ("DOUBLE", "latitude, degrees, JGD2011"),
    "x_m": ("DOUBLE", "easting in metres, EPSG:6677 (JGD2011 plane rectangular IX)"),
    "y_m": ("DOUBLE", "northing in metres, EPSG:6677"),
    "speed_kmh": ("DOUBLE", "速度, km/h"),
    "mesh_code": ("VARCHAR", "2次メッシュコード"),
    "file_id": ("VARCHAR", "source file (manifest.file_id)"),
    "line_no": ("BIGINT", "1-based line in the source CSV member"),
}

QUARANTINE_COLUMNS: dict[str, tuple[str, str]] = {
    "file_id": ("VARCHAR", "source file (manifest.file_id)"),
    "source_path": ("VARCHAR", "path of the delivered file at ingest"),
    "member": ("VARCHAR", "ZIP member name ('' for plain files)"),
    "line_no": ("BIGINT", "1-based line in the member"),
    "reason": ("VARCHAR", "validation rule that failed (see etl/validate.py)"),
    "raw_text": ("VARCHAR", "the line as delivered, with the 運行ID replaced by its pseudonym"),
}

MANIFEST_DDL = """
CREATE TABLE IF NOT EXISTS manifest (
    file_id          VARCHAR,   -- first 20 hex chars of sha256
    source_path      VARCHAR,   -- path at ingest
    size_bytes       BIGINT,
    sha256           VARCHAR,
    format           VARCHAR,   -- 様式1-2
    rows_read        BIGINT,    -- lines in the file
    rows_stored      BIGINT,    -- lines stored in probe_points
    rows_quarantined BIGINT,    -- lines in quarantine
    status           VARCHAR,   -- ok | failed
    message          VARCHAR,   -- reason when failed
    ingested_at      TIMESTAMP
)
"""


def db_path(warehouse: Path) -> Path:
    return Path(warehouse) / DB_NAME


def _empty_select(columns: dict[str, tuple[str, str]]) -> str:
    cols = ", ".join(f"NULL::{typ} AS {name}" for name, (typ, _) in columns.items())
    return f"SELECT {cols} WHERE false"


def _has_files(pattern_dir: Path, suffix: str = ".parquet") -> bool:
    return pattern_dir.exists() and any(p.suffix == suffix for p in pattern_dir.rglob("*.parquet"))


def refresh_views(con: duckdb.DuckDBPyConnection, warehouse: Path) -> None:
    """(Re)create the views over the Parquet store; absolute paths so the DuckDB file works anywhere."""
    warehouse = Path(warehouse).resolve()
    points_dir = warehouse / "probe_points"
    if _has_files(points_dir):
        glob = (points_dir / "*" / "*.parquet").as_posix()
        cols = ", ".join(PROBE_POINTS_COLUMNS)
        con.execute(
            f"CREATE OR REPLACE VIEW probe_points AS SELECT {cols} FROM read_parquet('{glob}', "
            "hive_partitioning = true, hive_types = {'operation_date': DATE})"
        )
    else:
        con.execute(f"CREATE OR REPLACE VIEW probe_points AS {_empty_select(PROBE_POINTS_COLUMNS)}")
    q_dir = warehouse / "quarantine"
    if _has_files(q_dir):
        cols = ", ".join(QUARANTINE_COLUMNS)
        con.execute(
            f"CREATE OR REPLACE VIEW quarantine AS SELECT {cols} FROM read_parquet('{(q_dir / '*.parquet').as_posix()}')"
        )
    else:
        con.execute(f"CREATE OR REPLACE VIEW quarantine AS {_empty_select(QUARANTINE_COLUMNS)}")


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


def atomic_write_parquet(table, final_path: Path) -> None:
    """Write to a temporary name in the same folder, then rename: readers never see half a file."""
    import pyarrow.parquet as pq

    final_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = final_path.with_name(f".{final_path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, final_path)
