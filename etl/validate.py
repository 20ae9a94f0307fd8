"""Reading and validating delivered CSV payloads, vectorised and spec-driven: every line is stored or quarantined.

Two ways through a payload, with the same verdict for every value whatever else the payload holds:

* `read_typed` (the fast path): Arrow's CSV reader types the columns directly (numbers as
  numbers, dates and times as integers), for a payload without an `x`/`X` (Arrow would read
  `0x…` as hex) whose every value converts; `validate_typed` then checks ranges, finiteness,
  calendar dates and required fields on the typed columns.
* `read_payload` + `validate_rows` (the slow path, any payload): text columns, each value judged
  by the grammar below (a column that casts whole takes Arrow's cast, which accepts a subset of
  the grammar plus NaN / infinities, rejected afterwards).

Lines with the wrong number of fields are collected by a handler (no quoting). The rules are
generated from the layout (`etl.spec`); `validation_rules(layout)` lists them:

| reason | columns | rule |
|---|---|---|
| `nul_in_record`, `stray_cr`, `stray_lf` | all | a NUL, or a CR or LF that is not the file's line ending |
| `empty_line` | all | the line holds no values |
| `field_count` | all | the line does not hold exactly the layout's number of comma-separated fields |
| `missing_<column>` | required columns | the value is empty |
| `bad_<column>` | date / timestamp | not a valid `YYYYMMDD` date / `YYYYMMDDhhmmss` (`YYYYMMDDhhmm`) time, 1900–2200 |
| `<column>_not_numeric` | numeric columns | not a finite decimal number (sign, point, exponent; NaN and |
| | | infinities are not numbers); integers: not a whole number within the column's type |
| `<column>_out_of_range` | numeric columns with a range | outside the spec's allowed range |
| `outside_mesh` | position (様式1-2: lon, lat) | more than `MESH_MARGIN_M` (1 km) outside the file's 2次メッシュ |
| `<time>_outside_operation_day` | time, date (様式1-2: gps_time, operation_date) | not on the date or the day after |

The plausibility rules come last: a file holds one 2次メッシュ and day, so its points lie in that mesh
(judged by the mesh in the file name, `OUT1-2_<mesh>_<date>`; for a file without one, by the row's
2次メッシュコード) and their GPS時刻 on the operation date or the day after (trips past midnight).
Distances to a mesh are spherical (earth radius 6,371 km, local scale at the point): within 0.5 %.

The first failing rule, in the layout's check order, is the row's reason. 様式1-2's reasons
include `bad_gps_time`, `bad_operation_date`, `missing_operation_id`, `lon_out_of_range`
(120–150), `lat_out_of_range` (20–50), `speed_kmh_out_of_range` (0–180 km/h).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from config.settings import GPS_DAYS_AFTER_OPERATION, MESH_MARGIN_M
from etl.spec import STYLE_1_2, Column, Layout


def decode(data: bytes) -> str:
    """Text of a delivered CSV: cp932, then utf-8-sig, then utf-8 (as public readers do)."""
    for enc in ("cp932", "utf-8-sig", "utf-8"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("cp932", errors="replace")


def split_records(
    data: bytes, ending: bytes = b"\r\n"
) -> tuple[bytes, np.ndarray | None, list[tuple[int, str, bytes]]]:
    """A payload's records, a record ending only at the file's line `ending` (CRLF or LF).

    Returns (the payload without its broken records, the 1-based record number of each of its lines or
    None when nothing was broken, [(record number, reason, bytes) of each broken record]). A record is
    broken by a NUL (`nul_in_record`), a CR that is not part of a CRLF ending (`stray_cr`: in an LF
    file every CR) or an LF inside a CRLF record (`stray_lf`): it is quarantined whole, no part of it read.
    One compiled pass over the bytes decides the usual clean payload (etl._kernels.stray_bytes).
    """
    from etl._kernels import BROKEN_REASONS, join_records, records, stray_bytes

    a = np.frombuffer(data, np.uint8)
    crlf = ending == b"\r\n"
    if not stray_bytes(a, crlf) and b"\0" not in data:
        return data, None, []
    start, end, code = records(a, crlf)
    keep = code == 0
    clean = join_records(a, start, end, keep, crlf).tobytes()
    broken = [(int(r) + 1, BROKEN_REASONS[code[r]], data[start[r] : end[r]]) for r in np.flatnonzero(~keep)]
    return clean, np.flatnonzero(keep) + 1, broken


def _is_ascii(data: bytes) -> bool:
    return data.isascii()


def to_utf8(data: bytes) -> bytes:
    """UTF-8 bytes for the parser: ASCII (the usual 様式1-2 content) passes unchanged; BOM dropped."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if _is_ascii(data):
        return data
    try:
        data.decode("utf-8")
        return data
    except UnicodeDecodeError:
        return decode(data).encode("utf-8")


def has_header(first_line: str, layout: Layout) -> bool:
    return any(m in first_line for m in layout.header_markers)


def _header_lines(data: bytes, layout: Layout) -> int:
    """1 when the payload's first line is a header row of `layout`, else 0."""
    first_nl = data.find(b"\n")
    first = data[: first_nl if first_nl >= 0 else len(data)].decode("utf-8", errors="replace")
    return 1 if layout.header_markers and has_header(first, layout) else 0


def _split_lines(
    data: bytes, layout: Layout, convert_options: pacsv.ConvertOptions, block_size: int
) -> tuple[pa.Table, np.ndarray, pa.Table, int]:
    """Arrow's CSV reader over a UTF-8 payload with `convert_options`, every line accounted for: rows
    with their 1-based line numbers, and rejects (line_no, reason, raw_text) for lines without the
    layout's field count or with no value at all; the header lines skipped. Raises what read_csv raises."""
    names = [c.name for c in layout.columns]
    skip = _header_lines(data, layout)
    bad: list[tuple[int, str]] = []

    def handler(row):
        bad.append((row.number, row.text))
        return "skip"

    if not data:
        rows = pa.table({n: pa.array([], pa.string()) for n in names})
    else:
        rows = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(
                column_names=names, use_threads=False, skip_rows=skip, block_size=block_size
            ),
            parse_options=pacsv.ParseOptions(quote_char=False, invalid_row_handler=handler, ignore_empty_lines=False),
            convert_options=convert_options,
        )
    # A trailing newline does not open a line; Arrow reports no row for it either.
    n_lines = rows.num_rows + len(bad)
    bad_no = np.array([b[0] for b in bad], dtype=np.int64)
    all_no = np.arange(skip + 1, skip + n_lines + 1, dtype=np.int64)
    line_no = np.setdiff1d(all_no, bad_no, assume_unique=True) if len(bad) else all_no
    reasons = ["empty_line" if not t.strip() else "field_count" for _, t in bad]
    texts = [t for _, t in bad]
    # Lines with no value at all (empty, or only commas) come through as all-NULL rows.
    if rows.num_rows and min(col.null_count for col in rows.columns):
        all_null = None
        for col in rows.columns:
            m = pc.is_null(col)
            all_null = m if all_null is None else pc.and_(all_null, m)
        mask = np.asarray(all_null.to_numpy(zero_copy_only=False), dtype=bool)
        if mask.any():
            for i in np.flatnonzero(mask):
                bad_no = np.append(bad_no, line_no[i])
                reasons.append("empty_line")
                texts.append("")
            rows = rows.filter(pa.array(~mask))
            line_no = line_no[~mask]
    order = np.argsort(bad_no, kind="stable")
    rejects = pa.table(
        {
            "line_no": pa.array(bad_no[order], pa.int64()),
            "reason": pa.array([reasons[i] for i in order], pa.string()),
            "raw_text": pa.array([texts[i] for i in order], pa.string()),
        }
    )
    return rows, line_no, rejects, skip


def read_payload(data: bytes, layout: Layout = STYLE_1_2) -> tuple[pa.Table, np.ndarray, pa.Table, int]:
    """Split a CSV payload into text columns.

    Returns (rows, line_numbers, rejects, header_lines): `rows` one nullable string column per
    layout column (empty → NULL), `line_numbers` the 1-based line of each row, `rejects`
    (line_no, reason, raw_text) for lines without the layout's field count or with no value,
    `header_lines` 1 if the first line was a header row (not counted as a row read).
    """
    convert = pacsv.ConvertOptions(
        column_types={c.name: pa.string() for c in layout.columns}, strings_can_be_null=True, null_values=[""]
    )
    return _split_lines(to_utf8(data), layout, convert, block_size=1 << 24)


# The one grammar of a number, whatever else a chunk holds: optional sign, digits with an optional
# decimal point (or a leading one), optional exponent; surrounding white space ignored. NaN and
# infinities are not numbers here; an integer column takes a whole value within its type's range.
NUMBER_PATTERN = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
INTEGER_PATTERN = r"^[-+]?\d+$"
INT_TYPES = {"int8": pa.int8(), "int32": pa.int32(), "int64": pa.int64()}
_NULL_STR = pa.scalar(None, pa.string())


def _has_hex_marker(text: pa.Array | pa.ChunkedArray) -> bool:
    """Arrow's integer cast also reads 0x… hex, which the grammar does not: such a column takes the slow path.

    Looks for x / X in the column's character data (a byte scan, no per-value work)."""
    chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
    for ch in chunks:
        buf = ch.buffers()[2] if len(ch.buffers()) > 2 else None
        if buf is not None and buf.size and ((np.frombuffer(buf, dtype=np.uint8) | 0x20) == 0x78).any():
            return True
    return False


def _parse_number(text: pa.Array, col: Column) -> tuple[pa.Array, pa.Array]:
    """Text → (typed values, not-numeric mask). NULL text stays NULL and is not 'not numeric'.

    Each value is judged on its own by NUMBER_PATTERN: the fast path (one Arrow cast of the whole
    column) is taken only when it cannot judge a value differently from the slow path (the cast
    accepts a subset of the grammar, plus NaN / infinities, which are rejected afterwards).
    """
    if col.type == "float":
        try:
            values = pc.cast(text, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            t = pc.utf8_trim_whitespace(text)
            values = pc.cast(pc.if_else(pc.match_substring_regex(t, NUMBER_PATTERN), t, _NULL_STR), pa.float64())
        finite = pc.fill_null(pc.is_finite(values), False)
        bad = pc.and_(pc.is_valid(text), pc.invert(finite))
        if pc.any(bad).as_py():
            values = pc.if_else(finite, values, pa.scalar(None, pa.float64()))
        return values, bad
    target = INT_TYPES[col.type]
    if not _has_hex_marker(text):
        try:  # fast path: plain -?digits within the type's range
            return pc.cast(text, target), pa.array(np.zeros(len(text), dtype=bool))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    info = np.iinfo({"int8": np.int8, "int32": np.int32, "int64": np.int64}[col.type])
    t = pc.utf8_trim_whitespace(text)
    plain = pc.fill_null(pc.match_substring_regex(t, INTEGER_PATTERN), False)
    number = pc.fill_null(pc.match_substring_regex(t, NUMBER_PATTERN), False)
    out: list = [None] * len(text)
    plain_np = np.asarray(plain.to_numpy(zero_copy_only=False), dtype=bool)
    number_np = np.asarray(number.to_numpy(zero_copy_only=False), dtype=bool)
    texts = t.to_pylist()
    for i in np.flatnonzero(number_np):  # the slow path: rare (a column holding a bad value)
        v = texts[i]
        if plain_np[i]:
            x = int(v)  # exact, whatever the number of digits
        else:
            f = float(v)
            if not np.isfinite(f) or f != np.floor(f) or abs(f) > 2**53:
                continue
            x = int(f)
        if info.min <= x <= info.max:
            out[i] = x
    values = pa.array(out, target)
    bad = pc.and_(pc.is_valid(text), pc.is_null(values))
    return values, bad


def _time_from_ints(ints: pa.Array, col: Column, present: np.ndarray) -> tuple[pa.Array, pa.Array | None]:
    """Integers (NULL where absent or not digits) → (typed date / timestamp, bad mask or None when none is bad)."""
    from etl._kernels import digits_to_seconds

    if isinstance(ints, pa.ChunkedArray):
        ints = ints.combine_chunks()
    v = (
        np.asarray(pc.fill_null(ints, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
        if ints.null_count
        else np.asarray(ints.to_numpy(zero_copy_only=False), dtype=np.int64)
    )
    given = (
        np.asarray(pc.is_valid(ints).to_numpy(zero_copy_only=False), dtype=bool)
        if ints.null_count
        else np.ones(len(v), bool)
    )
    secs, valid = digits_to_seconds(v, given, col.type == "date")
    bad = present & ~valid
    all_valid = bool(valid.all())
    if col.type == "date":
        typed = pa.array((secs // 86400).astype(np.int32), pa.date32(), mask=None if all_valid else ~valid)
    else:
        typed = pa.array(secs, pa.timestamp("s"), mask=None if all_valid else ~valid)
    return typed, (pa.array(bad) if bad.any() else None)


def _parse_time(text: pa.Array, col: Column) -> tuple[pa.Array, pa.Array]:
    """Date / timestamp text → (typed, bad mask); NULL text stays NULL. A value is a run of ASCII
    digits (leading zeros and surrounding white space allowed) forming a valid date / time: judged
    by its value, as the fast path does."""
    present = np.asarray(pc.is_valid(text).to_numpy(zero_copy_only=False), dtype=bool)
    try:
        if _has_hex_marker(text):  # 0x… would be read as hex by the cast: judged by the pattern instead
            raise pa.ArrowInvalid("hex")
        ints = pc.cast(text, pa.int64())  # -?digits: a negative value is no date
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        t = pc.utf8_trim_whitespace(text)
        digits = pc.utf8_ltrim(t, "0")
        ok = pc.and_(pc.match_substring_regex(t, r"^\d+$"), pc.less_equal(pc.utf8_length(digits), 18))
        ints = pc.cast(
            pc.if_else(pc.fill_null(ok, False), pc.if_else(pc.equal(digits, ""), "0", digits), _NULL_STR), pa.int64()
        )
    typed, bad = _time_from_ints(ints, col, present)
    return typed, bad if bad is not None else pa.array(np.zeros(len(text), dtype=bool))


def validation_rules(layout: Layout = STYLE_1_2) -> list[tuple[str, str, str]]:
    """(reason, columns, description) of every rule in evaluation order, generated from the layout."""
    n = layout.n_columns
    rules = [
        ("nul_in_record", "all", "the record holds a NUL byte (it is quarantined whole, no part of it read)"),
        (
            "stray_cr",
            "all",
            "the record holds a carriage return that is not part of the file's line ending (CRLF; in an LF "
            "file every CR): a record ends only at the line ending the file uses",
        ),
        ("stray_lf", "all", "a CRLF file's record holds a line feed that is not part of a CRLF"),
        ("empty_line", "all", "the line holds no values"),
        ("field_count", "all", f"the line does not hold exactly {n} comma-separated fields"),
    ]
    for col, kind in _rule_plan(layout):
        where = f"{col.index}: {col.name_ja} (`{col.name}`)"
        unit = f" {col.unit}" if col.unit else ""
        if kind == "missing":
            rules.append((f"missing_{col.name}", where, "empty"))
        elif kind == "bad":
            fmt = "YYYYMMDD" if col.type == "date" else "YYYYMMDDhhmmss or YYYYMMDDhhmm"
            rules.append((f"bad_{col.name}", where, f"not a valid {fmt}"))
        elif kind == "not_numeric":
            rules.append(
                (f"{col.name}_not_numeric", where, "not a whole number" if col.type != "float" else "not a number")
            )
        elif kind == "out_of_range":
            lo = "-∞" if col.low is None else f"{col.low:g}"
            hi = "∞" if col.high is None else f"{col.high:g}"
            rules.append((f"{col.name}_out_of_range", where, f"outside {lo}–{hi}{unit}"))
        elif kind == "outside_mesh":
            lon, lat = (layout.by_name(n) for n in layout.position)
            mesh = layout.by_name(layout.mesh_column)
            rules.append(
                (
                    "outside_mesh",
                    f"{lon.index}, {lat.index}: {lon.name_ja}, {lat.name_ja}",
                    f"more than {MESH_MARGIN_M:g} m outside the 2次メッシュ of its file (the mesh in the file name, "
                    f"e.g. OUT1-2_533924_…; for a file without one, the row's {mesh.name_ja} (`{mesh.name}`), where "
                    "an empty or invalid code counts as outside)",
                )
            )
        elif kind == "outside_day":
            date = layout.by_name(layout.time_on_date[1])
            rules.append(
                (
                    f"{col.name}_outside_operation_day",
                    f"{col.index}, {date.index}: {col.name_ja}, {date.name_ja}",
                    f"not on the {date.name_ja} or the {GPS_DAYS_AFTER_OPERATION} day(s) after it "
                    "(trips past midnight)",
                )
            )
    return rules


def _rule_plan(layout: Layout) -> list[tuple[Column, str]]:
    plan = []
    for col in layout.check_order():
        if col.type in ("date", "timestamp"):
            plan.append((col, "bad"))
        if col.required:
            plan.append((col, "missing"))
        if col.numeric:
            plan.append((col, "not_numeric"))
            if col.low is not None or col.high is not None:
                plan.append((col, "out_of_range"))
    if layout.position and layout.mesh_column:
        plan.append((layout.by_name(layout.position[1]), "outside_mesh"))
    if layout.time_on_date:
        plan.append((layout.by_name(layout.time_on_date[0]), "outside_day"))
    return plan


def _range_failure(v: pa.Array, col: Column) -> pa.Array | None:
    """Mask of values outside the column's range (NULL passes), or None when none is: one min/max
    pass decides the common case without building a mask."""
    if not len(v) or v.null_count == len(v):
        return None
    mm = pc.min_max(v)
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    if (col.low is None or lo >= col.low) and (col.high is None or hi <= col.high):
        return None
    out = None
    if col.low is not None:
        out = pc.less(v, col.low)
    if col.high is not None:
        high = pc.greater(v, col.high)
        out = high if out is None else pc.or_(out, high)
    return pc.fill_null(out, False)


def _str_column(text: pa.Array, col: Column) -> pa.Array:
    """Text trimmed, empty → NULL (a dictionary array: done on its dictionary)."""
    if col.type != "str":
        return text
    if pa.types.is_dictionary(text.type):
        values = pc.utf8_trim_whitespace(text.dictionary)
        indices = text.indices
        empty = pc.equal(values, "")
        if pc.any(empty).as_py():
            indices = pc.if_else(empty.take(indices), pa.scalar(None, indices.type), indices)
        return pa.DictionaryArray.from_arrays(indices, values)
    t = pc.utf8_trim_whitespace(text)
    return pc.if_else(pc.equal(t, ""), pa.scalar(None, pa.string()), t)


_REASON = {
    "missing": "missing_{}",
    "bad": "bad_{}",
    "not_numeric": "{}_not_numeric",
    "out_of_range": "{}_out_of_range",
    "outside_mesh": "outside_mesh",
    "outside_day": "{}_outside_operation_day",
}


def _reasons(failures: dict[tuple[str, str], pa.Array], n: int, layout: Layout) -> pa.Array | None:
    """The first failing rule of each row (NULL when it passes), or None when every row passes."""
    reason = None
    for col, kind in reversed(_rule_plan(layout)):  # assign in reverse so earlier rules win
        mask = failures.get((col.name, kind))
        if mask is None or not pc.any(mask).as_py():
            continue
        reason = pc.if_else(
            mask, pa.scalar(_REASON[kind].format(col.name)), pa.nulls(n, pa.string()) if reason is None else reason
        )
    return reason


# ---------------------------------------------------------------------------------------------
# Plausibility: the file's 2次メッシュ, the operation date

_M_PER_DEG = 6_371_000.0 * np.pi / 180.0  # metres per degree of latitude on the sphere


def mesh_code_of_name(name: str) -> int | None:
    """The 2次メッシュ code in a delivered file's name (`OUT1-2_533924_20180101.zip` → 533924), or None:
    the first group of exactly six digits that is a 2次メッシュ over Japan (pp 30-69, uu 22-53, q and v 0-7)."""
    for m in re.finditer(r"(?<!\d)(\d{6})(?!\d)", name):
        code = int(m.group(1))
        if _valid_mesh(np.array([code]))[0]:
            return code
    return None


def _valid_mesh(codes: np.ndarray) -> np.ndarray:
    p, u, q, v = codes // 10000, codes // 100 % 100, codes // 10 % 10, codes % 10
    return (p >= 30) & (p <= 69) & (u >= 22) & (u <= 53) & (q <= 7) & (v <= 7)


def _mesh_boxes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(south, west, north, east) degrees of 2次メッシュ codes (etl.mesh.mesh2_bounds, vectorised; an int works too)."""
    south = codes // 10000 / 1.5 + codes // 10 % 10 / 12.0
    west = 100.0 + codes // 100 % 100 + codes % 10 / 8.0
    return south, west, south + 1 / 12.0, west + 1 / 8.0


def mesh_distance_m(lon, lat, codes) -> np.ndarray:
    """Distance in metres from each point (degrees) to the cell of its 2次メッシュ code: 0 inside or on
    an edge; on the sphere, with the local scale of longitude at the point (within 0.5 % at 1 km)."""
    lon, lat, codes = np.asarray(lon, float), np.asarray(lat, float), np.asarray(codes, np.int64)
    south, west, north, east = _mesh_boxes(codes)
    dy = np.maximum(np.maximum(south - lat, lat - north), 0.0) * _M_PER_DEG
    dx = np.maximum(np.maximum(west - lon, lon - east), 0.0) * _M_PER_DEG * np.cos(np.radians(lat))
    return np.hypot(dx, dy)


def _inside_box(mm_lon: dict, mm_lat: dict, code: int, margin_m: float) -> bool:
    """Whether the points' bounding box (min/max of lon and lat) lies within margin / √2 of the mesh cell
    on each axis, which puts every point within the margin: decides the usual file by two min/max."""
    south, west, north, east = _mesh_boxes(int(code))
    m = margin_m / math.sqrt(2) / _M_PER_DEG
    m_lon = m / math.cos(math.radians(max(south - m, 0.0)))  # a degree of longitude is longest at the lowest latitude
    return bool(mm_lat["min"] >= south - m and mm_lat["max"] <= north + m and mm_lon["min"] >= west - m_lon) and bool(
        mm_lon["max"] <= east + m_lon
    )


def _mesh_column_codes(text: pa.Array) -> np.ndarray:
    """int64 2次メッシュ codes of a text column (dictionary or plain), -1 where empty or not a code."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if not pa.types.is_dictionary(text.type):
        text = pc.dictionary_encode(text)
    values = text.dictionary.to_pylist()
    codes = np.array([int(v) if v and v.strip().isdigit() and len(v.strip()) == 6 else -1 for v in values], np.int64)
    codes = np.where(_valid_mesh(codes), codes, -1)
    idx = text.indices
    if idx.null_count:
        idx = pc.fill_null(idx, len(values))
        codes = np.append(codes, -1)
    return (
        codes[np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.int64)] if len(codes) else np.full(len(text), -1)
    )


def _min_max(v: pa.Array) -> dict:
    """{'min', 'max'} of a float64 array (numpy on its buffer when it has no NULL: a fifth of Arrow's time)."""
    if isinstance(v, pa.ChunkedArray):
        v = v.combine_chunks()
    if v.null_count or v.type != pa.float64():
        return pc.min_max(v).as_py()
    values = np.frombuffer(v.buffers()[1], dtype=np.float64, count=len(v) + v.offset)[v.offset :]
    return {"min": float(values.min()), "max": float(values.max())}


def _floats(v: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(values with NaN for NULL, valid mask) of a float64 array."""
    if isinstance(v, pa.ChunkedArray):
        v = v.combine_chunks()
    valid = np.ones(len(v), bool) if not v.null_count else np.asarray(pc.is_valid(v).to_numpy(zero_copy_only=False))
    return np.asarray(pc.fill_null(v, np.nan).to_numpy(zero_copy_only=False), float), valid


def outside_mesh(typed: dict, layout: Layout, file_mesh: int | None, margin_m: float = MESH_MARGIN_M):
    """Mask of the rows whose position lies more than `margin_m` outside the file's 2次メッシュ (else the
    row's 2次メッシュコード; a row without a valid code fails), or None when no row does."""
    lon_a, lat_a = typed[layout.position[0]], typed[layout.position[1]]
    n = len(lon_a)
    if not n or lon_a.null_count == n:
        return None
    codes = None if file_mesh is not None else _mesh_column_codes(typed[layout.mesh_column])
    single = file_mesh
    if codes is not None and codes.size and (codes == codes[0]).all() and codes[0] >= 0:
        single = int(codes[0])
    if single is not None and _inside_box(_min_max(lon_a), _min_max(lat_a), single, margin_m):
        return None
    lon, ok_lon = _floats(lon_a)
    lat, ok_lat = _floats(lat_a)
    if codes is None:
        codes = np.full(n, file_mesh, np.int64)
    known = codes >= 0
    dist = mesh_distance_m(lon, lat, np.where(known, codes, 533900))
    bad = ok_lon & ok_lat & (~known | (dist > margin_m))
    return pa.array(bad) if bad.any() else None


def outside_operation_day(typed: dict, layout: Layout):
    """Mask of the rows whose time (GPS時刻) is not on their date (運行日) or the GPS_DAYS_AFTER_OPERATION
    day(s) after it, or None when no row's is."""
    t, d = typed[layout.time_on_date[0]], typed[layout.time_on_date[1]]
    if isinstance(t, pa.ChunkedArray):
        t = t.combine_chunks()
    if isinstance(d, pa.ChunkedArray):
        d = d.combine_chunks()
    if not len(t):
        return None
    secs = pc.cast(t, pa.int64())
    days = pc.cast(d, pa.int32())
    span = 86400 * (1 + GPS_DAYS_AFTER_OPERATION)
    mm_d, mm_t = pc.min_max(days).as_py(), pc.min_max(secs).as_py()
    if mm_d["min"] is None or mm_t["min"] is None:
        return None
    if mm_d["min"] == mm_d["max"] and mm_t["min"] >= mm_d["min"] * 86400 and mm_t["max"] < mm_d["min"] * 86400 + span:
        return None  # one operation date, every time within its window: decided by two min/max
    s = np.asarray(pc.fill_null(secs, 0).to_numpy(zero_copy_only=False), np.int64)
    dd = np.asarray(pc.fill_null(days, 0).to_numpy(zero_copy_only=False), np.int64)
    both = np.asarray(pc.and_(pc.is_valid(secs), pc.is_valid(days)).to_numpy(zero_copy_only=False), bool)
    off = s - dd * 86400
    bad = both & ((off < 0) | (off >= span))
    return pa.array(bad) if bad.any() else None


def _plausibility(typed: dict, layout: Layout, failures: dict, file_mesh: int | None) -> None:
    """Add the layout's plausibility failures (place and time) to `failures`."""
    if layout.position and layout.mesh_column:
        failures[(layout.position[1], "outside_mesh")] = outside_mesh(typed, layout, file_mesh)
    if layout.time_on_date:
        failures[(layout.time_on_date[0], "outside_day")] = outside_operation_day(typed, layout)


_NO_FAILURES = pa.schema([("line_no", pa.int64()), ("reason", pa.string()), ("raw_text", pa.string())])


def validate_rows(
    rows: pa.Table, line_no: np.ndarray, layout: Layout = STYLE_1_2, file_mesh: int | None = None
) -> tuple[pa.Table, pa.Table]:
    """Type and check every row of text columns, vectorised (the slow path).

    `rows` holds the layout's text columns; the `id` column must already be pseudonymised by
    the caller (it is passed through as text). `file_mesh`: the 2次メッシュ in the file's name (None: judged
    by the row's mesh column). Returns (typed rows that pass, with line_no; failing rows as (line_no,
    reason, raw_text), raw_text rebuilt from the (pseudonymised) fields).
    """
    n = rows.num_rows
    typed: dict[str, pa.Array] = {}
    failures: dict[tuple[str, str], pa.Array] = {}
    for col in layout.columns:
        text = rows.column(col.name)
        if col.type in ("str", "id"):
            typed[col.name] = _str_column(text, col)
        elif col.type in ("date", "timestamp"):
            typed[col.name], failures[(col.name, "bad")] = _parse_time(text, col)
        else:
            typed[col.name], failures[(col.name, "not_numeric")] = _parse_number(text, col)
            if col.low is not None or col.high is not None:
                failures[(col.name, "out_of_range")] = _range_failure(typed[col.name], col)
        if col.required:
            failures[(col.name, "missing")] = pc.is_null(typed[col.name]) if col.type == "str" else pc.is_null(text)
    _plausibility(typed, layout, failures, file_mesh)
    reason = _reasons(failures, n, layout)
    line_arr = pa.array(line_no, pa.int64())
    columns = {c.name: typed[c.name] for c in layout.columns}
    columns["line_no"] = line_arr
    passing = pa.table(columns)
    if reason is None:
        return passing, _NO_FAILURES.empty_table()
    bad = pc.is_valid(reason)
    passing = passing.filter(pc.invert(bad))
    raw = pc.binary_join_element_wise(
        *[pc.fill_null(pc.filter(rows.column(c.name), bad), "") for c in layout.columns], ","
    )
    failed = pa.table({"line_no": pc.filter(line_arr, bad), "reason": pc.filter(reason, bad), "raw_text": raw})
    return passing, failed


# ---------------------------------------------------------------------------------------------
# The fast path: typed columns straight from the CSV reader

_DICT_STR = pa.dictionary(pa.int32(), pa.string())
# Arrow CSV blocks of the fast path. Small blocks stay in the CPU cache: a 10 MB payload parses
# ~20 % faster in 2 MB blocks than in one block, a 32 MB piece 2x faster. A line longer than a
# block makes Arrow refuse the payload, which then takes the text path (16 MB blocks).
TYPED_BLOCK_BYTES = 1 << 21
_TYPED = {
    "str": _DICT_STR,
    "id": _DICT_STR,
    "int8": pa.int8(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float": pa.float64(),
    "date": pa.int64(),
    "timestamp": pa.int64(),
}


def read_typed(data: bytes, layout: Layout = STYLE_1_2) -> tuple[pa.Table, np.ndarray, pa.Table, int] | None:
    """Like `read_payload`, with numbers typed and dates / times as integers by the CSV reader itself;
    None when the payload needs the slow path (an x / X anywhere, or a value that does not convert)."""
    data = to_utf8(data)
    if not data or b"x" in data or b"X" in data:
        return None
    convert = pacsv.ConvertOptions(
        column_types={c.name: _TYPED[c.type] for c in layout.columns},
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=False,
    )
    try:
        return _split_lines(data, layout, convert, block_size=TYPED_BLOCK_BYTES)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _all_finite(v: pa.Array) -> bool:
    """No NaN or ±inf among the values of a float64 array (NULLs pass)."""
    values = np.frombuffer(v.buffers()[1], dtype=np.float64, count=len(v) + v.offset)[v.offset :]
    if v.null_count:
        values = values[np.asarray(pc.is_valid(v).to_numpy(zero_copy_only=False), dtype=bool)]
    return bool(np.isfinite(values).all())


def validate_typed(
    rows: pa.Table, line_no: np.ndarray, layout: Layout = STYLE_1_2, file_mesh: int | None = None
) -> tuple[pa.Table, np.ndarray, pa.Array | None]:
    """Check the typed columns of `read_typed` with the same rules (and verdicts) as `validate_rows`.

    Returns (typed rows that pass, with line_no; line numbers of failing rows; their reasons). The
    caller takes a failing row's raw text from the payload itself.
    """
    n = rows.num_rows
    typed: dict[str, pa.Array] = {}
    failures: dict[tuple[str, str], pa.Array] = {}
    for col in layout.columns:
        v = rows.column(col.name)
        if isinstance(v, pa.ChunkedArray):
            v = v.combine_chunks()
        if col.type in ("str", "id"):
            typed[col.name] = _str_column(v, col)
        elif col.type in ("date", "timestamp"):
            present = (
                np.asarray(pc.is_valid(v).to_numpy(zero_copy_only=False), dtype=bool)
                if v.null_count
                else np.ones(n, bool)
            )
            typed[col.name], failures[(col.name, "bad")] = _time_from_ints(v, col, present)
        else:
            if col.type == "float" and (v.null_count < len(v)) and not _all_finite(v):
                finite = pc.fill_null(pc.is_finite(v), True)
                failures[(col.name, "not_numeric")] = pc.invert(finite)
                v = pc.if_else(finite, v, pa.scalar(None, pa.float64()))
            typed[col.name] = v
            if col.low is not None or col.high is not None:
                failures[(col.name, "out_of_range")] = _range_failure(v, col)
        if col.required:
            given = typed[col.name] if col.type == "str" else rows.column(col.name)
            failures[(col.name, "missing")] = pc.is_null(given) if given.null_count else None
    _plausibility(typed, layout, failures, file_mesh)
    reason = _reasons(failures, n, layout)
    columns = {c.name: typed[c.name] for c in layout.columns}
    columns["line_no"] = pa.array(line_no, pa.int64())
    passing = pa.table(columns)
    if reason is None:
        return passing, np.zeros(0, np.int64), None
    bad = pc.is_valid(reason)
    return (
        passing.filter(pc.invert(bad)),
        line_no[np.asarray(bad.to_numpy(zero_copy_only=False), dtype=bool)],
        pc.filter(reason, bad),
    )


def lines_of(data: bytes, line_numbers: np.ndarray, skip: int = 0) -> list[str]:
    """The text of the given 1-based lines of a payload (CR LF or LF), decoded as the readers do."""
    data = to_utf8(data)
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    starts = np.r_[0, ends + 1]
    out = []
    for ln in line_numbers:
        i = int(ln) - 1
        a = starts[i]
        b = ends[i] if i < len(ends) else len(data)
        out.append(data[a:b].rstrip(b"\r").decode("utf-8", errors="replace"))
    return out
