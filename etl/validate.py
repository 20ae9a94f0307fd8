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

The first failing rule, in this order, is the row's reason.
"""

from __future__ import annotations

import io

import duckdb
import numpy as np
import pyarrow as pa
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


def _encoding_of(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("cp932")
        return "cp932"
    except UnicodeDecodeError:
        return "utf-8"


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
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=names, encoding=_encoding_of(data), block_size=1 << 24),
        parse_options=pacsv.ParseOptions(quote_char=False, newlines_in_values=False),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )
    if rows.num_rows != int(good.sum()):
        raise ValueError(f"parser found {rows.num_rows} rows where {int(good.sum())} well-formed lines were counted")
    return rows, line_no[good], rejects


def _numeric_rules(col: Column) -> list[tuple[str, str]]:
    sql_type = "BIGINT" if col.type == "int" else "DOUBLE"
    parsed = f"TRY_CAST(trim({col.name}) AS {sql_type})"
    rules = [(f"{col.name}_not_numeric", f"{parsed} IS NULL")]
    if col.low is not None and col.high is not None:
        rules.append((f"{col.name}_out_of_range", f"{parsed} NOT BETWEEN {col.low} AND {col.high}"))
    return rules


GPS_TIME_SQL = (
    "TRY_STRPTIME(CASE WHEN length(trim(gps_time)) = 12 THEN trim(gps_time) || '00' "
    "ELSE trim(gps_time) END, '%Y%m%d%H%M%S')"
)
OPERATION_DATE_SQL = "TRY_STRPTIME(trim(operation_date), '%Y%m%d')::DATE"


def validation_rules() -> list[tuple[str, str]]:
    """(reason, SQL condition that is true when the row fails), in evaluation order, from the spec."""
    rules = [
        ("bad_gps_time", f"NOT regexp_full_match(trim(gps_time), '[0-9]{{12}}([0-9]{{2}})?') OR {GPS_TIME_SQL} IS NULL"),
        ("bad_operation_date", f"{OPERATION_DATE_SQL} IS NULL"),
        ("missing_operation_id", "trim(operation_id) = ''"),
    ]
    for col in STYLE_1_2_COLUMNS:
        if col.type in ("int", "float"):
            rules.extend(_numeric_rules(col))
    return rules


def reason_sql() -> str:
    whens = "\n".join(f"    WHEN {cond} THEN '{reason}'" for reason, cond in validation_rules())
    return f"CASE\n{whens}\n    ELSE NULL END"


def typed_select_sql(source: str) -> str:
    """SELECT turning the text columns of `source` into warehouse types (for rows that passed)."""
    exprs = []
    for col in STYLE_1_2_COLUMNS:
        if col.name == "operation_id":
            # Already pseudonymised by the caller: the raw 運行ID never reaches storage.
            exprs.append("trim(operation_id) AS vehicle_key")
        elif col.name == "gps_time":
            exprs.append(f"{GPS_TIME_SQL} AS gps_time")
        elif col.name == "operation_date":
            exprs.append(f"{OPERATION_DATE_SQL} AS operation_date")
        elif col.type == "int":
            exprs.append(f"CAST(trim({col.name}) AS INTEGER) AS {col.name}")
        elif col.type == "float":
            exprs.append(f"CAST(trim({col.name}) AS DOUBLE) AS {col.name}")
        else:
            exprs.append(f"trim({col.name}) AS {col.name}")
    return f"SELECT {', '.join(exprs)}, line_no FROM {source}"


def validate_rows(rows: pa.Table, line_no: np.ndarray) -> tuple[pa.Table, pa.Table]:
    """Apply the validation rules in DuckDB to rows whose operation_id is already pseudonymised.

    Returns (typed rows that pass, with `vehicle_key` and `line_no`; failing rows as
    (line_no, reason, raw_text) where raw_text is the line with the pseudonym in place of the ID).
    """
    con = duckdb.connect()
    try:
        tbl = rows.append_column("line_no", pa.array(line_no, pa.int64()))
        con.register("raw_rows", tbl)
        con.execute(f"CREATE TEMP TABLE checked AS SELECT *, {reason_sql()} AS reason FROM raw_rows")
        raw_cols = ", ".join(c.name for c in STYLE_1_2_COLUMNS)
        failed = con.sql(
            f"SELECT line_no, reason, concat_ws(',', {raw_cols}) AS raw_text "
            "FROM checked WHERE reason IS NOT NULL ORDER BY line_no"
        ).to_arrow_table()
        passing = con.sql(
            typed_select_sql("(SELECT * FROM checked WHERE reason IS NULL ORDER BY line_no)")
        ).to_arrow_table()
    finally:
        con.close()
    return passing, failed
