"""Parsing and validating 様式1-2 rows, vectorised: every row is either stored or quarantined with a reason.

Validation rules (reason codes written to the `quarantine` table):

| reason | rule |
|---|---|
| `empty_line` | the line holds no characters |
| `field_count` | the line does not hold exactly 33 comma-separated fields |
| `bad_gps_time` | GPS時刻 is not a valid `YYYYMMDDhhmmss` (or 12-digit `YYYYMMDDhhmm`) time |
| `bad_operation_date` | 運行日 is not a valid `YYYYMMDD` date |
| `missing_operation_id` | 運行ID is empty |
| `<column>_not_numeric` | a numeric column (spec type int/float) does not parse |
| `<column>_out_of_range` | a numeric column lies outside the spec's allowed range (e.g. lon 120–150, lat 20–50, speed 0–180 km/h) |

The first failing rule, in this order, is the row's reason. `validation_rules()` lists them\nas generated from the spec.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from etl.spec import STYLE_1_2_COLUMNS, STYLE_1_2_N_COLUMNS, Column

NEWLINE = 10
CARRIAGE_RETURN = 13
COMMA = 44


def line_table(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start, end (exclusive, without CR) and comma count of every line, from byte positions.

    cp932 and UTF-8 never use the bytes of ',' or LF inside a multi-byte character,
    so counting bytes is exact for both encodings.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == NEWLINE)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(buf)]))
    if len(buf) and buf[-1] == NEWLINE:  # the final newline ends the last line, it opens no new one
        starts, ends = starts[:-1], ends[:-1]
    nonempty = ends > starts
    has_cr = np.zeros(len(ends), dtype=bool)
    has_cr[nonempty] = buf[ends[nonempty] - 1] == CARRIAGE_RETURN
    ends = ends - has_cr
    commas_cum = np.concatenate(([0], np.cumsum(buf == COMMA, dtype=np.int64)))
    n_commas = commas_cum[ends] - commas_cum[starts]
    return starts, ends, n_commas


def decode(data: bytes) -> str:
    """Text of a delivered CSV: cp932, then utf-8-sig, then utf-8 (as public readers do)."""
    for enc in ("cp932", "utf-8-sig", "utf-8"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("cp932", errors="replace")


def _as_utf8(data: bytes) -> bytes:
    """UTF-8 bytes for the parser: ASCII (the usual 様式1-2 content) passes unchanged."""
    if not (np.frombuffer(data, dtype=np.uint8) >= 0x80).any():
        return data
    return decode(data).encode("utf-8")


def parse_fields(data: bytes) -> tuple[pa.Table, np.ndarray, pa.Table]:
    """Split a 様式1-2 CSV payload into well-formed rows (33 text columns) and structural rejects.

    Returns (rows, line_numbers, rejects): `rows` has one text column per spec column,
    `line_numbers` the 1-based line of each row, `rejects` (line_no, reason, raw_text) the
    lines without exactly 33 fields.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    starts, ends, n_commas = line_table(data)
    line_no = np.arange(1, len(starts) + 1, dtype=np.int64)
    empty = ends == starts
    good = (n_commas == STYLE_1_2_N_COLUMNS - 1) & ~empty
    bad_idx = np.flatnonzero(~good)
    # Only the (rare) rejected lines are touched one by one, to keep their raw text.
    rejects = pa.table(
        {
            "line_no": pa.array(line_no[bad_idx], pa.int64()),
            "reason": pa.array(["empty_line" if empty[i] else "field_count" for i in bad_idx], pa.string()),
            "raw_text": pa.array([decode(data[starts[i] : ends[i]]) for i in bad_idx], pa.string()),
        }
    )
    names = [c.name for c in STYLE_1_2_COLUMNS]
    if not good.any():
        rows = pa.table({n: pa.array([], pa.string()) for n in names})
        return rows, line_no[good], rejects
    if len(bad_idx):
        # Hand the parser only the well-formed lines, so row i is line line_no[good][i].
        keep_starts, keep_ends = starts[good], ends[good]
        data = b"\n".join(data[s:e] for s, e in zip(keep_starts.tolist(), keep_ends.tolist()))
    rows = pacsv.read_csv(
        io.BytesIO(_as_utf8(data)),
        read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(quote_char=False, newlines_in_values=False),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )
    if rows.num_rows != int(good.sum()):
        raise ValueError(f"parser found {rows.num_rows} rows where {int(good.sum())} well-formed lines were counted")
    return rows, line_no[good], rejects


NUMBER_PATTERN = r"^[-+]?(\d+\.?\d*|\.\d+)$"
GPS_TIME_PATTERN = r"^\d{12}(\d{2})?$"


def _parse_number(text: pa.Array, col: Column) -> pa.Array:
    """Text → float64 (null where not a number); integers also must have no fractional part."""
    ok = pc.match_substring_regex(text, NUMBER_PATTERN)
    values = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), pa.float64())
    if col.type == "int":
        values = pc.if_else(pc.equal(pc.floor(values), values), values, pa.scalar(None, pa.float64()))
    return values


def _parse_gps_time(text: pa.Array) -> pa.Array:
    """'YYYYMMDDhhmmss' or 'YYYYMMDDhhmm' (seconds padded with 00) → timestamp[s], null if invalid."""
    ok = pc.match_substring_regex(text, GPS_TIME_PATTERN)
    padded = pc.if_else(pc.equal(pc.utf8_length(text), 12), pc.binary_join_element_wise(text, "00", ""), text)
    padded = pc.if_else(ok, padded, pa.scalar(None, pa.string()))
    return pc.strptime(padded, format="%Y%m%d%H%M%S", unit="s", error_is_null=True)


def _parse_date(text: pa.Array) -> pa.Array:
    ok = pc.match_substring_regex(text, r"^\d{8}$")
    text = pc.if_else(ok, text, pa.scalar(None, pa.string()))
    return pc.cast(pc.strptime(text, format="%Y%m%d", unit="s", error_is_null=True), pa.date32())


def validation_rules() -> list[tuple[str, str]]:
    """(reason, description) of every rule in evaluation order, generated from the spec."""
    rules = [
        ("bad_gps_time", "GPS時刻 is not a valid YYYYMMDDhhmmss (or YYYYMMDDhhmm) time"),
        ("bad_operation_date", "運行日 is not a valid YYYYMMDD date"),
        ("missing_operation_id", "運行ID is empty"),
    ]
    for col in STYLE_1_2_COLUMNS:
        if col.type in ("int", "float"):
            rules.append((f"{col.name}_not_numeric", f"{col.name_ja} ({col.name}) is not a number"))
            if col.low is not None and col.high is not None:
                unit = f" {col.unit}" if col.unit else ""
                rules.append(
                    (f"{col.name}_out_of_range", f"{col.name_ja} ({col.name}) outside {col.low:g}–{col.high:g}{unit}")
                )
    return rules


def validate_rows(rows: pa.Table, line_no: np.ndarray) -> tuple[pa.Table, pa.Table]:
    """Type and check every row, vectorised (pyarrow compute: one pass per column, none per row).

    `rows` holds the 33 text columns with operation_id already pseudonymised. Returns
    (typed rows that pass, with vehicle_key and line_no; failing rows as (line_no, reason,
    raw_text) where raw_text is the line with the pseudonym in place of the ID).
    """
    n = rows.num_rows
    text = {c.name: pc.utf8_trim_whitespace(rows.column(c.name)) for c in STYLE_1_2_COLUMNS}
    typed: dict[str, pa.Array] = {}
    failures: list[tuple[str, pa.Array]] = []  # (reason, mask of failing rows), in rule order
    typed["gps_time"] = _parse_gps_time(text["gps_time"])
    failures.append(("bad_gps_time", pc.is_null(typed["gps_time"])))
    typed["operation_date"] = _parse_date(text["operation_date"])
    failures.append(("bad_operation_date", pc.is_null(typed["operation_date"])))
    failures.append(("missing_operation_id", pc.equal(text["operation_id"], "")))
    for col in STYLE_1_2_COLUMNS:
        if col.type not in ("int", "float"):
            continue
        values = _parse_number(text[col.name], col)
        failures.append((f"{col.name}_not_numeric", pc.is_null(values)))
        if col.low is not None and col.high is not None:
            outside = pc.or_(pc.less(values, col.low), pc.greater(values, col.high))
            failures.append((f"{col.name}_out_of_range", pc.fill_null(outside, False)))
        typed[col.name] = pc.cast(values, pa.int32()) if col.type == "int" else values
    # The first failing rule names the reason: assign in reverse so earlier rules win.
    reason = pa.nulls(n, pa.string())
    for name, mask in reversed(failures):
        reason = pc.if_else(mask, pa.scalar(name), reason)
    bad = pc.is_valid(reason)
    good = pc.invert(bad)
    line_arr = pa.array(line_no, pa.int64())
    columns = {}
    for col in STYLE_1_2_COLUMNS:
        if col.name == "operation_id":
            # Already pseudonymised by the caller: the raw 運行ID never reaches storage.
            columns["vehicle_key"] = pc.filter(text["operation_id"], good)
        elif col.name in typed:
            columns[col.name] = pc.filter(typed[col.name], good)
        else:
            columns[col.name] = pc.filter(text[col.name], good)
    columns["line_no"] = pc.filter(line_arr, good)
    passing = pa.table(columns)
    if pc.any(bad).as_py():
        raw = pc.binary_join_element_wise(*[pc.filter(rows.column(c.name), bad) for c in STYLE_1_2_COLUMNS], ",")
        failed = pa.table({"line_no": pc.filter(line_arr, bad), "reason": pc.filter(reason, bad), "raw_text": raw})
    else:
        failed = pa.table(
            {"line_no": pa.array([], pa.int64()), "reason": pa.array([], pa.string()), "raw_text": pa.array([], pa.string())}
        )
    return passing, failed
