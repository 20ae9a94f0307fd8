"""Ingest of 様式1-2 deliveries into the warehouse: validate, pseudonymise, project, store; nothing lost."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyproj import Transformer

from etl import sources, validate
from etl.pseudonymise import load_id_key, pseudonymise_ids, pseudonymise_one
from etl.spec import FORMAT_1_2, column_index
from etl.warehouse import atomic_write_parquet, connect, refresh_views

log = logging.getLogger(__name__)

# JGD2011 plane rectangular zone IX (Kanto): metric coordinates for every later stage.
METRIC_CRS = "EPSG:6677"
_TO_METRIC = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)


@dataclass
class FileResult:
    path: Path
    status: str  # ok | skipped | failed
    rows_read: int = 0
    rows_stored: int = 0
    rows_quarantined: int = 0
    message: str = ""


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)

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
            f"+ quarantined {self.total('rows_quarantined')}"
        )


_ID_LIKE = re.compile(r"\s*\d{10,}\s*")


def _redact_raw_line(text: str, key: bytes) -> str:
    """Replace the 運行ID of a malformed line by its pseudonym (rejects only, which are rare).

    In a line with the wrong number of fields the ID's position is uncertain, so every
    long number that could be an ID is replaced too: privacy before completeness.
    """
    fields = text.split(",")
    idx = column_index("operation_id")
    for i, f in enumerate(fields):
        if (i == idx and f.strip()) or _ID_LIKE.fullmatch(f):
            fields[i] = pseudonymise_one(f, key)
    return ",".join(fields)


def project_to_metric(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude/latitude in degrees to (x, y) in metres, EPSG:6677."""
    return _TO_METRIC.transform(lon, lat)


def process_payload(data: bytes, key: bytes) -> tuple[pa.Table, pa.Table, int]:
    """Parse, pseudonymise, validate and project one CSV payload.

    Returns (points, quarantine rows (line_no, reason, raw_text), lines read).
    """
    rows, line_no, rejects = validate.parse_fields(data)
    n_read = rows.num_rows + rejects.num_rows
    if rejects.num_rows:
        redacted = [_redact_raw_line(t, key) for t in rejects.column("raw_text").to_pylist()]
        rejects = rejects.set_column(2, "raw_text", pa.array(redacted, pa.string()))
    idx = rows.schema.get_field_index("operation_id")
    ids = rows.column(idx)
    empty = pc.equal(pc.utf8_trim_whitespace(ids), "")
    hashed = pseudonymise_ids(ids, key)
    rows = rows.set_column(idx, "operation_id", pc.if_else(empty, "", hashed))
    points, failed = validate.validate_rows(rows, line_no)
    x, y = project_to_metric(
        points.column("lon").to_numpy(zero_copy_only=False), points.column("lat").to_numpy(zero_copy_only=False)
    )
    points = points.append_column("x_m", pa.array(x, pa.float64())).append_column("y_m", pa.array(y, pa.float64()))
    quarantine = pa.concat_tables([rejects, failed.select(["line_no", "reason", "raw_text"])])
    return points, quarantine, n_read


def _write_points(points: pa.Table, warehouse: Path, file_id: str) -> None:
    """One Parquet file per operation date, under hive partition folders."""
    dates = points.column("operation_date")
    for day in pc.unique(dates).to_pylist():
        part = points.filter(pc.equal(dates, pa.scalar(day, pa.date32()))).drop_columns(["operation_date"])
        atomic_write_parquet(part, warehouse / "probe_points" / f"operation_date={day.isoformat()}" / f"{file_id}.parquet")


POINT_COLUMNS = [
    "operation_date", "vehicle_key", "vehicle_type", "vehicle_use", "gps_time", "trip_no", "lon", "lat",
    "x_m", "y_m", "speed_kmh", "mesh_code", "line_no",
]  # fmt: skip


def ingest_file(con: duckdb.DuckDBPyConnection, warehouse: Path, path: Path, key: bytes) -> FileResult:
    """Ingest one delivered file; a file whose content is already in the manifest adds nothing."""
    try:
        src = sources.describe(path)
    except OSError as exc:
        return FileResult(path, "failed", message=f"{path}: cannot read ({exc})")
    done = con.execute(
        "SELECT count(*) FROM manifest WHERE sha256 = ? AND status = 'ok'", [src.sha256]
    ).fetchone()[0]
    if done:
        return FileResult(path, "skipped")
    now = dt.datetime.now()
    try:
        members = sources.read_members(path)
    except sources.SourceError as exc:
        _record(con, src, "failed", 0, 0, 0, str(exc), now)
        return FileResult(path, "failed", message=str(exc))
    point_parts, quarantine_parts = [], []
    n_read = 0
    for member, data in members:
        points, quarantine, n = process_payload(data, key)
        n_read += n
        point_parts.append(points.append_column("member", pa.array([member] * points.num_rows, pa.string())))
        quarantine_parts.append(
            quarantine.append_column("member", pa.array([member] * quarantine.num_rows, pa.string()))
        )
    points = pa.concat_tables(point_parts)
    quarantine = pa.concat_tables(quarantine_parts)
    if points.num_rows:
        points = points.select(POINT_COLUMNS).append_column(
            "file_id", pa.array([src.file_id] * points.num_rows, pa.string())
        )
        _write_points(points, warehouse, src.file_id)
    if quarantine.num_rows:
        q = pa.table(
            {
                "file_id": pa.array([src.file_id] * quarantine.num_rows, pa.string()),
                "source_path": pa.array([str(path)] * quarantine.num_rows, pa.string()),
                "member": quarantine.column("member"),
                "line_no": quarantine.column("line_no"),
                "reason": quarantine.column("reason"),
                "raw_text": quarantine.column("raw_text"),
            }
        )
        atomic_write_parquet(q, warehouse / "quarantine" / f"{src.file_id}.parquet")
    assert n_read == points.num_rows + quarantine.num_rows, "row conservation violated"
    _record(con, src, "ok", n_read, points.num_rows, quarantine.num_rows, "", now)
    return FileResult(path, "ok", n_read, points.num_rows, quarantine.num_rows)


def _record(con, src: sources.SourceFile, status, n_read, n_stored, n_quarantined, message, when) -> None:
    con.execute("DELETE FROM manifest WHERE sha256 = ? AND status = 'failed'", [src.sha256])
    con.execute(
        "INSERT INTO manifest VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [src.file_id, str(src.path), src.size_bytes, src.sha256, FORMAT_1_2, n_read, n_stored, n_quarantined,
         status, message, when],
    )  # fmt: skip


def ingest_paths(paths: list[str | Path], warehouse: str | Path) -> IngestReport:
    """Ingest files and folders (recursively) into `warehouse`; returns per-file results.

    Raises FileNotFoundError for a path that does not exist (before anything is written).
    """
    files = sources.find_delivery_files(paths)
    warehouse = Path(warehouse)
    key = load_id_key()
    report = IngestReport()
    con = connect(warehouse)
    try:
        for path in files:
            result = ingest_file(con, warehouse, path, key)
            if result.status == "failed":
                log.warning("failed: %s", result.message)
            report.files.append(result)
        refresh_views(con, warehouse)
    finally:
        con.close()
    return report
