"""Staging of one delivered file: a pure, idempotent function of (file, key, known content) → staged output.

`stage_file(path, out_dir, ctx)` hashes the file (SHA-256), skips content already in the warehouse,
refuses a changed file without --replace, detects its format, streams its payloads (ZIP members /
gzip / plain, 64 MB pieces cut at line ends) and for every piece: splits and types the 33 (18, …)
columns (`etl.validate`), replaces 運行ID by its HMAC pseudonym (one HMAC per distinct ID), quarantines
failing rows with file, member, line, reason and a privacy-safe raw text, and for 様式1-2 points adds
EPSG:6677 metres, the 2次メッシュ of the position and `point_key`, a 64-bit hash of the fields that
make a point an exact duplicate. Points are written once, as LZ4 Parquet files of the final schema,
one file per operation date (a delivered ZIP holds one day of one 2次メッシュ), in the delivery's row
order; the commit renames them into the store (rewriting only a file that turns out to hold
duplicates of other files' points).

Everything a call writes is under `out_dir/<file_id>_<path hash>/`, which it empties first: running
it twice gives the same output, so it can run on any worker (the ingest's process pool, or a Dask
worker: etl._ingest_workers.stage_on_worker, where a task whose worker died is simply run again).
Memory per call is bounded by the piece size and `BUFFER_ROWS`, whatever the file size.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyproj import Transformer

from config.settings import LONLAT_CRS, METRIC_CRS
from etl import sources, validate
from etl._kernels import to_epsg6677
from etl._testhooks import checkpoint
from etl.failures import WriteFailed, writing
from etl.pseudonymise import PseudonymMemo, pseudonymise_dict, pseudonymise_one, redact_misaligned_line
from etl.spec import STYLE_1_2, Layout, layouts

_TO_METRIC = Transformer.from_crs(LONLAT_CRS, METRIC_CRS, always_xy=True)
BUFFER_ROWS = 300_000  # staged point rows a call keeps in memory before writing row groups
ROW_GROUP_ROWS = 250_000
MAX_OPEN_WRITERS = 64
PARQUET_OPTIONS = dict(compression="zstd", compression_level=1, write_statistics=True, store_schema=False)

_DICT_STR = pa.dictionary(pa.int32(), pa.string())
_ARROW = {
    "str": _DICT_STR,
    "int8": pa.int8(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float": pa.float64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("s"),
}


def _spec_fields(layout: Layout) -> list[pa.Field]:
    return [pa.field(c.name, _ARROW[c.type]) for c in layout.columns if c.type != "id"]


# The one schema of every probe_points file (year / month are hive folders, not columns).
# vehicle_key, file_id and member are written from dictionary arrays; readers get plain strings
# (the Arrow schema is not stored), DuckDB VARCHAR.
POINT_SCHEMA = pa.schema(
    [pa.field("operation_date", pa.date32()), pa.field("vehicle_key", _DICT_STR), pa.field("vehicle_id", pa.int64())]
    + [f for f in _spec_fields(STYLE_1_2) if f.name != "operation_date"]
    + [
        pa.field("x_m", pa.float64()),
        pa.field("y_m", pa.float64()),
        pa.field("mesh2", pa.int32()),
        pa.field("point_key", pa.int64()),
        pa.field("file_id", _DICT_STR),
        pa.field("member", _DICT_STR),
        pa.field("line_no", pa.int64()),
    ]
)
# Columns whose values repeat: dictionary-encoded in Parquet; the others (positions, times, keys) are not.
DICT_COLUMNS = [
    "operation_date",
    "vehicle_key",
    "vehicle_id",
    "rsu_id",
    "vehicle_type",
    "vehicle_use",
    "trip_no",
    "trip_completeness",
    "trip_endpoint_flag",
    "tag_no",
    "recording_condition",
    "road_type_code",
    "speed_kmh",
    "altitude_m",
    "matching_flag",
    "drm_version",
    "mesh_code",
    "drm_entry_node",
    "drm_exit_node",
    "distance_from_entry_m",
    "confirmed_flag",
    "census_section_no",
    "direction_code",
    "administrator_code",
    "serial_no",
    "mesh2",
    "file_id",
    "member",
]
# Sequential or time-like integers: delta-encoded (cheaper to write than dictionary or plain pages).
DELTA_COLUMNS = {
    c: "DELTA_BINARY_PACKED" for c in ("line_no", "received_at", "gps_time", "trip_start", "trip_end", "updated_at")
}
# How every probe_points file is written (the ingest's writers, the duplicates' rewrite, bench data):
# LZ4, not zstd: the match stage reads these columns every month, and LZ4 decodes them about twice
# as fast for about 14 % more bytes (bench/match.py, "read").
POINT_FILE_OPTIONS = dict(
    compression="lz4",
    use_dictionary=DICT_COLUMNS,
    column_encoding=DELTA_COLUMNS,
    write_statistics=True,
    store_schema=False,
)
# What makes two points the same (an exact duplicate is stored once).
DUPLICATE_KEY = ("operation_date", "vehicle_key", "trip_no", "gps_time", "lon", "lat", "speed_kmh")
QUARANTINE_SCHEMA = pa.schema(
    [
        ("file_id", pa.string()),
        ("source_path", pa.string()),
        ("format", pa.string()),
        ("member", pa.string()),
        ("line_no", pa.int64()),
        ("reason", pa.string()),
        ("raw_text", pa.string()),
    ]
)


def write_parquet(table: pa.Table, path: Path, dictionary: list[str] | None = None) -> None:
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            table,
            path,
            use_dictionary=dictionary if dictionary is not None else True,
            row_group_size=ROW_GROUP_ROWS,
            **PARQUET_OPTIONS,
        )


# ---------------------------------------------------------------------------------------------
# Derived columns (vectorised)


def project_to_metric(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude/latitude in degrees to (x, y) in metres, EPSG:6677 (compiled; pyproj for another METRIC_CRS)."""
    if METRIC_CRS.upper() == "EPSG:6677" and LONLAT_CRS.upper() in ("EPSG:6668", "EPSG:4326"):
        return to_epsg6677(lon, lat)
    return _TO_METRIC.transform(lon, lat)


def mesh2_of(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """2次メッシュコード (JIS X 0410) of each position, int32; same arithmetic as etl.mesh.mesh2_code, unchecked."""
    y = lat * 1.5 + 1e-9
    x = lon - 100.0 + 1e-9
    p = np.floor(y)
    u = np.floor(x)
    return (p * 10000 + u * 100 + np.floor((y - p) * 8.0) * 10 + np.floor((x - u) * 8.0)).astype(np.int32)


_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, in place on a uint64 array (wraps modulo 2**64)."""
    x ^= x >> _S30
    x *= _M1
    x ^= x >> _S27
    x *= _M2
    x ^= x >> _S31
    return x


def point_keys(table: pa.Table) -> np.ndarray:
    """64-bit hash (int64) of DUPLICATE_KEY per row: equal points have equal keys; a key match is
    always confirmed on the fields themselves before a point is called a duplicate."""
    with np.errstate(over="ignore"):
        if "vehicle_id" in table.column_names:
            vid = table.column("vehicle_id").to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        else:  # files of early versions: the same first 8 bytes of the HMAC, from its hex form
            vid = vehicle_id_from_key(table.column("vehicle_key"))
        h = _mix(vid.view(np.uint64).copy())
        gps = table.column("gps_time")
        if gps.type != pa.timestamp("s"):
            gps = pc.cast(gps, pa.timestamp("s"), safe=False)
        parts = [
            pc.cast(table.column("operation_date"), pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64),
            table.column("trip_no").to_numpy(zero_copy_only=False).astype(np.int64),
            pc.cast(gps, pa.int64()).to_numpy(zero_copy_only=False),
            table.column("lon").to_numpy(zero_copy_only=False) + 0.0,
            table.column("lat").to_numpy(zero_copy_only=False) + 0.0,
            table.column("speed_kmh").to_numpy(zero_copy_only=False) + 0.0,  # -0.0 and 0.0 are the same speed
        ]
        for a in parts:
            h ^= np.ascontiguousarray(a).view(np.uint64)
            h = _mix(h)
    return h.view(np.int64)


def vehicle_id_from_key(keys) -> np.ndarray:
    """int64 of the first 16 hex characters (8 bytes, big-endian) of each pseudonym."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    raw = np.frombuffer(b"".join(k.encode()[:16] for k in keys.to_pylist()), dtype="S16")
    return np.array([int(k, 16) for k in raw.astype(str)], dtype=np.uint64).view(np.int64)


def key_tuples(table: pa.Table) -> list[tuple]:
    """The fields of DUPLICATE_KEY per row, as Python tuples (for confirming key matches)."""
    cols = [table.column(c).to_pylist() for c in DUPLICATE_KEY]
    if table.schema.field("gps_time").type != pa.timestamp("s"):
        cols[DUPLICATE_KEY.index("gps_time")] = pc.cast(
            table.column("gps_time"), pa.timestamp("s"), safe=False
        ).to_pylist()
    return [tuple(0.0 + v if isinstance(v, float) else v for v in t) for t in zip(*cols, strict=True)]


# ---------------------------------------------------------------------------------------------
# One payload (pure)


def _id_column(layout: Layout) -> str:
    return next(c.name for c in layout.columns if c.type == "id")


def process_payload(
    data: bytes,
    key: bytes,
    layout: Layout = STYLE_1_2,
    first_chunk: bool = True,
    memo: PseudonymMemo | None = None,
    file_mesh: int | None = None,
    ending: bytes = b"\r\n",
):
    """Read, pseudonymise, validate (and for positions project) one CSV payload (`memo`: the
    pseudonyms already computed for earlier pieces of the same file; `file_mesh`: the 2次メッシュ in
    the file's name, which its points must lie in, else each row's own 2次メッシュコード; `ending`: the
    line ending the file uses, where alone its records end: a record broken by another CR or LF, or by
    a NUL, is quarantined whole).

    Returns (rows, quarantine rows (line_no, reason, raw_text), lines read, header lines).
    Line numbers are relative to the payload. A line whose fields cannot be aligned with the
    layout keeps no raw field (every non-empty field pseudonymised); a rejected aligned line keeps
    its fields with the 運行ID replaced by its pseudonym. vehicle_key is a dictionary array.
    """
    layout_read = layout if first_chunk else dataclasses.replace(layout, header_markers=())
    id_name = _id_column(layout)
    id_index = layout.by_name(id_name).index
    data, record_no, broken = validate.split_records(data, ending)
    typed = validate.read_typed(data, layout_read)
    if typed is not None:
        rows, line_no, rejects, header = typed
    else:
        rows, line_no, rejects, header = validate.read_payload(data, layout_read)
    n_read = rows.num_rows + rejects.num_rows
    if rejects.num_rows:
        redacted = [redact_misaligned_line(t, key) for t in rejects.column("raw_text").to_pylist()]
        rejects = rejects.set_column(2, "raw_text", pa.array(redacted, pa.string()))
    idx = rows.schema.get_field_index(id_name)
    vkey, vid = pseudonymise_dict(rows.column(idx), key, memo)
    rows = rows.set_column(idx, id_name, vkey)  # the raw ID is gone from here on
    if typed is not None:
        good, bad_lines, reasons = validate.validate_typed(rows, line_no, layout, file_mesh)
        if reasons is not None:
            keep = np.ones(len(line_no), dtype=bool)
            keep[np.searchsorted(line_no, bad_lines)] = False
            vid = vid.filter(pa.array(keep))
            raw = []
            for text in validate.lines_of(data, bad_lines):
                fields = text.split(",")
                if id_index < len(fields) and fields[id_index].strip():
                    fields[id_index] = pseudonymise_one(fields[id_index], key)
                raw.append(",".join(fields))
            failed = pa.table(
                {"line_no": pa.array(bad_lines, pa.int64()), "reason": reasons, "raw_text": pa.array(raw, pa.string())}
            )
        else:
            failed = None
    else:
        text_rows = rows.set_column(idx, id_name, vkey.cast(pa.string()))
        good, failed = validate.validate_rows(text_rows, line_no, layout, file_mesh)
        if good.num_rows != rows.num_rows:
            vid = pc.filter(vid, pc.is_in(pa.array(line_no, pa.int64()), good.column("line_no")))
        good = good.set_column(
            good.schema.get_field_index(id_name), id_name, pc.dictionary_encode(good.column(id_name))
        )
    good = good.rename_columns(["vehicle_key" if n == id_name else n for n in good.column_names])
    good = good.append_column("vehicle_id", vid)
    if "lon" in good.column_names and "lat" in good.column_names:
        x, y = project_to_metric(
            good.column("lon").to_numpy(zero_copy_only=False), good.column("lat").to_numpy(zero_copy_only=False)
        )
        good = good.append_column("x_m", pa.array(x, pa.float64())).append_column("y_m", pa.array(y, pa.float64()))
    parts = [rejects] + (
        [failed.select(["line_no", "reason", "raw_text"])] if failed is not None and failed.num_rows else []
    )
    if record_no is not None:  # lines of the payload without its broken records → record numbers of the file
        good, parts = _renumber(good, record_no), [_renumber(t, record_no) for t in parts]
        parts.append(_broken_table(broken, layout, key))
        n_read += len(broken)
    quarantine = pa.concat_tables(parts) if len(parts) > 1 else rejects
    if len(parts) > 1:
        quarantine = quarantine.sort_by("line_no")
    return good, quarantine, n_read, header


def _renumber(table: pa.Table, record_no: np.ndarray) -> pa.Table:
    """`line_no` (lines of a payload without its broken records) → the records' numbers in the payload."""
    i = table.schema.get_field_index("line_no")
    lines = np.asarray(table.column(i).to_numpy(zero_copy_only=False), np.int64)
    return table.set_column(i, "line_no", pa.array(record_no[lines - 1] if len(lines) else lines, pa.int64()))


_SHOWN = str.maketrans({"\r": "\u240d", "\n": "\u240a", "\0": "\u2400"})  # ␍ ␊ ␀: visible in raw_text
_BREAKS = {",", "\u240d", "\u240a", "\u2400"}
_PIECES = re.compile("([,\u240d\u240a\u2400])")


def _broken_table(broken: list[tuple[int, str, bytes]], layout: Layout, key: bytes) -> pa.Table:
    """Quarantine rows of broken records: the record as delivered, its CR / LF / NUL shown as ␍ ␊ ␀. A
    stray line break may join pieces of two records, so every piece between commas and breaks is
    pseudonymised (any may be a 運行ID); a record broken by a NUL alone keeps its fields but the 運行ID
    when they align with the layout (else every field is pseudonymised, as for field_count)."""
    id_index = layout.by_name(_id_column(layout)).index
    texts = []
    for _, reason, raw in broken:
        text = validate.decode(raw).translate(_SHOWN)
        fields = text.split(",")
        if reason != "nul_in_record":
            texts.append(
                "".join(p if p in _BREAKS or not p.strip() else pseudonymise_one(p, key) for p in _PIECES.split(text))
            )
            continue
        if len(fields) != layout.n_columns:
            texts.append(redact_misaligned_line(text, key))
            continue
        if fields[id_index].strip():
            fields[id_index] = pseudonymise_one(fields[id_index], key)
        texts.append(",".join(fields))
    return pa.table(
        {
            "line_no": pa.array([b[0] for b in broken], pa.int64()),
            "reason": pa.array([b[1] for b in broken], pa.string()),
            "raw_text": pa.array(texts, pa.string()),
        }
    )


# ---------------------------------------------------------------------------------------------
# Format detection


def format_by_name(path: Path, override: str | None, all_layouts: dict[str, Layout]) -> str | None:
    """Format key given by `override` or by a marker in the file's name (OUT1-2, OUT1-3, 挙動 …), else None."""
    if override:
        return override
    name = str(path).upper()
    for k in ("1-2", "1-3"):
        if any(m.upper() in name for m in all_layouts[k].name_markers):
            return k
    if any(m.upper() in name for m in all_layouts["behavior"].name_markers):
        return "behavior"
    return None


def _head_lines(head: bytes) -> list[str]:
    lines = [validate.decode(x.strip(b"\r")) for x in head[:65536].split(b"\n")[:20]]
    return [x for x in lines if x.strip()]


def detect_format(path: Path, head: bytes, override: str | None, all_layouts: dict[str, Layout]) -> str:
    """Format key of a delivered file: override, else file name marker, else content.

    Content: a Japanese header row of 様式1-3 → 1-3; otherwise the field count of the first
    lines (up to 20): 33 → 様式1-2, 18 → 様式1-3. A short file (under 10 lines) that fits no layout
    is read as 様式1-2, the delivered default, so its lines end in quarantine with their reason;
    a longer one is rejected as not recognised.
    """
    by_name = format_by_name(path, override, all_layouts)
    if by_name:
        return by_name
    lines = _head_lines(head)
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


def member_judge(candidates):
    """`judge(head) -> reason | None` for etl.sources: a ZIP member is data when one of its first lines
    (up to 20) has the field count or the header of a candidate layout (`candidates()`: the file's
    layout once known, else every delivered layout)."""

    def judge(head: bytes) -> str | None:
        lines = _head_lines(head)
        layouts_now = candidates()
        for layout in layouts_now:
            widths = {layout.n_columns, *layout.extra_widths}
            if any(x.count(",") + 1 in widths or validate.has_header(x, layout) for x in lines):
                return None
        counts = sorted({x.count(",") + 1 for x in lines})
        wanted = ", ".join(f"{lay.name} {lay.n_columns}" for lay in layouts_now)
        return f"not delivered data: its first lines have {counts} field(s) ({wanted} expected)"

    return judge


# ---------------------------------------------------------------------------------------------
# Staged output of one file


@dataclass(frozen=True)
class StageContext:
    """What a staging call needs besides the file (picklable, the same for every file of a run)."""

    key: bytes
    known: frozenset = frozenset()  # sha256 of content already in the warehouse (status ok)
    by_path: dict = field(default_factory=dict)  # resolved source path → sha256s ingested from that path
    replace: bool = False
    override: str | None = None
    behavior_layout: str | None = None


class _PointWriter:
    """Rows of one delivered file routed to one Parquet file per operation date (parts when very many dates).

    A delivered ZIP holds one day of one 2次メッシュ, so this is usually one file, in the delivery's
    row order: its row-group statistics (x_m, y_m, gps_time …) are those of that mesh and day.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.buffers: dict[int, list[pa.Table]] = {}
        self.buffered: dict[int, int] = {}
        self.writers: dict[int, tuple[str, pq.ParquetWriter]] = {}
        self.parts: dict[int, int] = {}
        self.outputs: dict[str, dict] = {}
        self.total = 0

    def add(self, table: pa.Table, days: np.ndarray) -> None:
        first = days[0]
        if (days == first).all():
            self._buffer(int(first), table)
            return
        order = np.argsort(days, kind="stable")
        d = days[order]
        cuts = np.flatnonzero(np.diff(d)) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(d)], strict=True):
            idx = order[lo:hi]
            self._buffer(int(d[lo]), table.take(pa.array(idx)))

    def _buffer(self, day: int, table: pa.Table) -> None:
        self.buffers.setdefault(day, []).append(table)
        self.buffered[day] = self.buffered.get(day, 0) + table.num_rows
        self.total += table.num_rows
        if self.buffered[day] >= ROW_GROUP_ROWS:
            self._flush(day)
        while self.total >= BUFFER_ROWS:
            self._flush(max(self.buffered, key=self.buffered.get))

    def _flush(self, day: int) -> None:
        with writing(self.folder):
            self._write(day)

    def _write(self, day: int) -> None:
        tables = self.buffers.pop(day, [])
        n = self.buffered.pop(day, 0)
        self.total -= n
        if not n:
            return
        if day not in self.writers:
            if len(self.writers) >= MAX_OPEN_WRITERS:
                old = next(iter(self.writers))
                self.writers.pop(old)[1].close()
            part = self.parts.get(day, 0)
            self.parts[day] = part + 1
            date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
            name = f"{date.isoformat()}_{part}.parquet"
            self.folder.mkdir(parents=True, exist_ok=True)
            w = pq.ParquetWriter(
                self.folder / name,
                POINT_SCHEMA,
                **POINT_FILE_OPTIONS,
            )
            self.writers[day] = (name, w)
            self.outputs[name] = {
                "name": name,
                "day": date.isoformat(),
                "year": date.year,
                "month": date.month,
                "rows": 0,
            }
        name, w = self.writers[day]
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        w.write_table(table, row_group_size=ROW_GROUP_ROWS)
        with open(self.folder / (name + ".keys"), "ab") as fh:  # the point_keys again, raw, for the commit
            fh.write(
                np.ascontiguousarray(table.column("point_key").to_numpy(zero_copy_only=False), dtype=np.int64).tobytes()
            )
        self.outputs[name]["rows"] += n

    def close(self) -> list[dict]:
        for day in list(self.buffers):
            self._flush(day)
        for name, w in self.writers.values():
            with writing(self.folder / name):
                w.close()
        self.writers.clear()
        return sorted(self.outputs.values(), key=lambda o: o["name"])

    def abort(self) -> None:
        for _, w in self.writers.values():
            with contextlib.suppress(Exception):  # the folder is removed anyway
                w.close()
        self.writers.clear()


def _points_table(good: pa.Table, file_id: str, member: str, base: int) -> tuple[pa.Table, np.ndarray]:
    """The staged rows of one payload in POINT_SCHEMA, with their day numbers."""
    n = good.num_rows
    lon = good.column("lon").to_numpy(zero_copy_only=False)
    lat = good.column("lat").to_numpy(zero_copy_only=False)
    line = good.column("line_no")
    if base:
        line = pc.add(line, base)
    have = set(good.column_names)
    cols = {name: good.column(name) for name in POINT_SCHEMA.names if name in have}
    cols["line_no"] = line
    cols["mesh2"] = pa.array(mesh2_of(lon, lat), pa.int32())
    cols["point_key"] = pa.array(point_keys(good), pa.int64())
    zeros = pa.array(np.zeros(n, np.int32))
    cols["file_id"] = pa.DictionaryArray.from_arrays(zeros, pa.array([file_id], pa.string()))
    cols["member"] = pa.DictionaryArray.from_arrays(zeros, pa.array([member], pa.string()))
    table = pa.table([cols[f.name] for f in POINT_SCHEMA], names=POINT_SCHEMA.names)
    if table.schema != POINT_SCHEMA:  # the text path gives plain strings
        table = table.cast(POINT_SCHEMA)
    days = pc.cast(good.column("operation_date"), pa.int32()).to_numpy(zero_copy_only=False)
    return table, days


def _count(quarantine: pa.Table, reason: str, suffix: str = "") -> int:
    """Quarantined rows of one reason (or of every reason ending in `suffix`)."""
    r = quarantine.column("reason")
    hit = pc.ends_with(r, suffix) if suffix else pc.equal(r, reason)
    return int(pc.sum(hit).as_py() or 0)


def _new_result(path: Path, resolved: str) -> dict:
    """A file's result before anything is read: failed, no rows (see the module doc for the fields)."""
    return {
        "path": str(path),
        "source_path": resolved,
        "status": "failed",
        "rows_read": 0,
        "rows_staged": 0,
        "rows_quarantined": 0,
        "rows_outside_mesh": 0,
        "rows_outside_day": 0,
        "message": "",
        "format": "",
        "file_id": "",
        "sha256": "",
        "size_bytes": 0,
        "dir": "",
        "points": [],
        "quarantine": [],
        "trips": [],
        "events": [],
        "skipped_members": [],
    }


@dataclass
class _FileStage:
    """One delivered file being staged: its result, its outputs so far, and what its payloads carry over
    (the layout found in the first, line numbers per member, the pseudonyms of its IDs)."""

    path: Path
    resolved: str
    ctx: StageContext
    file_id: str
    res: dict
    writer: _PointWriter
    all_layouts: dict[str, Layout]
    chosen: list[Layout]  # the layout, once known (the member judge reads it)
    layout: Layout | None = None
    fmt: str | None = None
    line_base: dict[str, int] = field(default_factory=dict)
    n_field_count: int = 0
    memo: PseudonymMemo = field(default_factory=PseudonymMemo)  # this file's raw IDs → pseudonyms
    other: dict[str, list[pa.Table]] = field(default_factory=lambda: {"quarantine": [], "trips": [], "events": []})

    def payload(self, member: str, index: int, data: bytes, ending: bytes) -> None:
        """Validate one payload of a member: its points to the writer, the rest to quarantine, trips or events."""
        path, res = self.path, self.res
        if self.layout is None:
            self.fmt = detect_format(path, data[:65536], self.ctx.override, self.all_layouts)
            self.layout = self.all_layouts[self.fmt]
            self.chosen[:] = [self.layout]
            res["format"] = self.layout.name
        layout = self.layout
        if index == 0 and self.fmt == "behavior":
            _check_behavior_columns(path, member, data, layout)
        file_mesh = validate.mesh_code_of_name(path.name) or validate.mesh_code_of_name(member)
        good, quarantine, n, header = process_payload(
            data, self.ctx.key, layout, first_chunk=index == 0, memo=self.memo, file_mesh=file_mesh, ending=ending
        )
        base = self.line_base.get(member, 0)
        self.line_base[member] = base + n + header  # every line is a row, a reject or the header
        res["rows_read"] += n
        if quarantine.num_rows:
            self.n_field_count += _count(quarantine, "field_count")
            res["rows_outside_mesh"] += _count(quarantine, "outside_mesh")
            res["rows_outside_day"] += _count(quarantine, "", suffix="_outside_operation_day")
            self.other["quarantine"].append(self._quarantine_rows(quarantine, member, base))
            res["rows_quarantined"] += quarantine.num_rows
        res["rows_staged"] += good.num_rows
        if not good.num_rows:
            return
        if self.fmt == "1-2":
            table, days = _points_table(good, self.file_id, member, base)
            self.writer.add(table, days)
        else:
            self.other["trips" if self.fmt == "1-3" else "events"].append(
                _record_rows(good, member, self.file_id, base)
            )

    def _quarantine_rows(self, quarantine: pa.Table, member: str, base: int) -> pa.Table:
        nq = quarantine.num_rows
        return pa.table(
            [
                pa.array([self.file_id] * nq, pa.string()),
                pa.array([self.resolved] * nq, pa.string()),
                pa.array([self.layout.name] * nq, pa.string()),
                pa.array([member] * nq, pa.string()),
                pc.add(quarantine.column("line_no"), base),
                quarantine.column("reason"),
                quarantine.column("raw_text"),
            ],
            schema=QUARANTINE_SCHEMA,
        )

    def check_column_count(self) -> None:
        """A file of which most lines have another number of fields than its layout is the wrong file."""
        res, layout = self.res, self.layout
        if (
            layout is not None
            and res["rows_read"] >= 10
            and res["rows_staged"] == 0
            and self.n_field_count * 2 > res["rows_read"]
        ):
            raise sources.SourceError(
                f"{self.path}: wrong column count: {self.n_field_count} of {res['rows_read']} lines do not have the "
                f"{layout.n_columns} fields of {layout.name}"
            )


def _check_behavior_columns(path: Path, member: str, data: bytes, layout: Layout) -> None:
    """The first line of a 挙動履歴 member is a header or has the layout's number of columns."""
    first = validate.decode(data[: data.find(b"\n") if b"\n" in data else len(data)].strip(b"\r\n"))
    found = first.count(",") + 1
    if not validate.has_header(first, layout) and found != layout.n_columns:
        raise sources.SourceError(
            f"{path}: member {member!r} does not fit the 挙動履歴 layout: expected {layout.n_columns} "
            "columns, "
            f"found {found} (configure the layout with --behavior-layout / ETC2CALM_BEHAVIOR_LAYOUT)"
        )


def _record_rows(good: pa.Table, member: str, file_id: str, base: int) -> pa.Table:
    """Validated 様式1-3 or 挙動履歴 rows as stored: line numbers within the member, plain columns, member and file."""
    if base:
        good = good.set_column(good.schema.get_field_index("line_no"), "line_no", pc.add(good.column("line_no"), base))
    good = pa.table(
        [
            c.dictionary_decode() if pa.types.is_dictionary(c.type) else c
            for c in (good.column(i).combine_chunks() for i in range(good.num_columns))
        ],
        names=good.column_names,
    )
    good = good.append_column("member", pa.array([member] * good.num_rows, pa.string()))
    return good.append_column("file_id", pa.array([file_id] * good.num_rows, pa.string()))


def _failed_counts() -> dict:
    """What a file that failed while being read stages: nothing (its partial output is removed)."""
    return {
        "rows_read": 0,
        "rows_staged": 0,
        "rows_quarantined": 0,
        "rows_outside_mesh": 0,
        "rows_outside_day": 0,
        "dir": "",
        "points": [],
    }


def stage_file(path: Path, out_dir: Path, ctx: StageContext) -> dict:
    """Stage one delivered file into `out_dir/<file_id>_<path hash>/`; returns its result (see module doc)."""
    path = Path(path)
    resolved = str(path.resolve())
    res = _new_result(path, resolved)
    try:
        src = sources.describe(path)
    except OSError as exc:
        res["message"] = f"{path}: cannot read ({exc.strerror or type(exc).__name__})"
        return res
    res.update(file_id=src.file_id, sha256=src.sha256, size_bytes=src.size_bytes)
    if src.sha256 in ctx.known:
        res["status"] = "skipped"
        return res
    earlier = set(ctx.by_path.get(resolved, ())) - {src.sha256}
    if earlier and not ctx.replace:
        res["message"] = (
            f"{path}: changed since it was ingested (other content than before); its earlier rows are kept — "
            "re-run with --replace to replace them with this version"
        )
        return res
    folder = Path(out_dir) / f"{src.file_id}_{hashlib.sha256(resolved.encode()).hexdigest()[:8]}"
    shutil.rmtree(folder, ignore_errors=True)
    with writing(folder):
        folder.mkdir(parents=True)
    res["dir"] = folder.name
    all_layouts = layouts(ctx.behavior_layout)
    writer = _PointWriter(folder / "points")
    known = format_by_name(path, ctx.override, all_layouts)
    chosen: list[Layout] = [all_layouts[known]] if known else []
    judge = member_judge(lambda: chosen or list(all_layouts.values()))
    skipped: list[tuple[str, str]] = []
    st = _FileStage(path, resolved, ctx, src.file_id, res, writer, all_layouts, chosen)
    try:
        for member, index, data, ending in sources.iter_payloads(path, judge=judge, skipped=skipped):
            st.payload(member, index, data, ending)
        st.check_column_count()
        res["points"] = [dict(o, file=f"points/{o['name']}", keys=f"points/{o['name']}.keys") for o in writer.close()]
        res["skipped_members"] = skipped
    except WriteFailed:  # the staging disk, not the delivered file: the ingest stops, its warehouse unchanged
        writer.abort()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    except sources.SourceError as exc:
        writer.abort()
        shutil.rmtree(folder, ignore_errors=True)
        res.update(status="failed", message=str(exc), **_failed_counts())
        return res
    except Exception as exc:  # noqa: BLE001 - any other failure fails this file only; no raw value in the message
        writer.abort()
        shutil.rmtree(folder, ignore_errors=True)
        res.update(
            status="failed",
            **_failed_counts(),
            message=f"{path}: cannot be read ({type(exc).__name__} while reading {res['format'] or 'it'})",
        )
        return res
    _write_other_outputs(folder, st.other, res)
    if res["rows_read"] != res["rows_staged"] + res["rows_quarantined"]:
        raise AssertionError(f"{path}: row conservation violated while staging")
    res["status"] = "ok"
    checkpoint("stage")
    return res


def _write_other_outputs(folder: Path, other: dict[str, list[pa.Table]], res: dict) -> None:
    """A staged file's quarantine (one file) and its trips or events (one file per month), listed in `res`."""
    if other["quarantine"]:
        t = pa.concat_tables(other["quarantine"])
        write_parquet(t, folder / "quarantine.parquet")
        res["quarantine"] = [{"file": "quarantine.parquet", "rows": t.num_rows}]
    for kind in ("trips", "events"):
        if not other[kind]:
            continue
        t = pa.concat_tables(other[kind], promote_options="default")
        ym = pc.add(pc.multiply(pc.year(t.column("operation_date")), 100), pc.month(t.column("operation_date")))
        for v in sorted(set(ym.to_pylist())):
            part = t.filter(pc.equal(ym, v))
            name = f"{kind}_{v // 100}_{v % 100}.parquet"
            write_parquet(part, folder / name)
            res[kind].append({"file": name, "year": v // 100, "month": v % 100, "rows": part.num_rows})


__all__ = [
    "POINT_FILE_OPTIONS",
    "POINT_SCHEMA",
    "DUPLICATE_KEY",
    "StageContext",
    "stage_file",
    "process_payload",
    "detect_format",
    "project_to_metric",
    "point_keys",
    "key_tuples",
    "mesh2_of",
]
