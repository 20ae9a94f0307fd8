"""Reading and validating delivered CSV payloads, vectorised and spec-driven: every line is stored or quarantined.

`read_payload` splits a payload into text columns with Arrow's CSV reader (no quoting, a
handler collects lines with the wrong number of fields); `validate_rows` types and checks
every column with Arrow compute / numpy, one pass per column and none per row. The rules are
generated from the layout (`etl.spec`); `validation_rules(layout)` lists them:

| reason | columns | rule |
|---|---|---|
| `empty_line` | all | the line holds no values |
| `field_count` | all | the line does not hold exactly the layout's number of comma-separated fields |
| `missing_<column>` | required columns | the value is empty |
| `bad_<column>` | date / timestamp columns | not a valid `YYYYMMDD` date / `YYYYMMDDhhmmss` (or `YYYYMMDDhhmm`) time |
| `<column>_not_numeric` | numeric columns | not a number (integers: not a whole number) |
| `<column>_out_of_range` | numeric columns with a range | outside the spec's allowed range |

The first failing rule, in the layout's check order, is the row's reason. 様式1-2's reasons
include `bad_gps_time`, `bad_operation_date`, `missing_operation_id`, `lon_out_of_range`
(120–150), `lat_out_of_range` (20–50), `speed_kmh_out_of_range` (0–180 km/h).
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from etl.spec import STYLE_1_2, Column, Layout


def decode(data: bytes) -> str:
    """Text of a delivered CSV: cp932, then utf-8-sig, then utf-8 (as public readers do)."""
    for enc in ("cp932", "utf-8-sig", "utf-8"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("cp932", errors="replace")


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


def read_payload(data: bytes, layout: Layout = STYLE_1_2) -> tuple[pa.Table, np.ndarray, pa.Table, int]:
    """Split a CSV payload into text columns.

    Returns (rows, line_numbers, rejects, header_lines): `rows` one nullable string column per
    layout column (empty → NULL), `line_numbers` the 1-based line of each row, `rejects`
    (line_no, reason, raw_text) for lines without the layout's field count or with no value,
    `header_lines` 1 if the first line was a header row (not counted as a row read).
    """
    data = to_utf8(data)
    names = [c.name for c in layout.columns]
    first_nl = data.find(b"\n")
    first = data[: first_nl if first_nl >= 0 else len(data)].decode("utf-8", errors="replace")
    skip = 1 if layout.header_markers and has_header(first, layout) else 0
    bad: list[tuple[int, str]] = []

    def handler(row):
        bad.append((row.number, row.text))
        return "skip"

    if not data:
        rows = pa.table({n: pa.array([], pa.string()) for n in names})
    else:
        rows = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False, skip_rows=skip, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(quote_char=False, invalid_row_handler=handler, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=True, null_values=[""]
            ),
        )
    # A trailing newline does not open a line; Arrow reports no row for it either.
    n_lines = rows.num_rows + len(bad)
    bad_no = np.array([b[0] for b in bad], dtype=np.int64)
    all_no = np.arange(skip + 1, skip + n_lines + 1, dtype=np.int64)
    line_no = np.setdiff1d(all_no, bad_no, assume_unique=True) if len(bad) else all_no
    reasons = ["empty_line" if not t.strip() else "field_count" for _, t in bad]
    texts = [t for _, t in bad]
    # Lines with no value at all (empty, or only commas) come through as all-NULL rows.
    if rows.num_rows:
        all_null = None
        for col in rows.columns:
            m = pc.is_null(col)
            all_null = m if all_null is None else pc.and_(all_null, m)
        if pc.any(all_null).as_py():
            mask = np.asarray(all_null.to_numpy(zero_copy_only=False), dtype=bool)
            idx = np.flatnonzero(mask)
            for i in idx:
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


def parse_fields(data: bytes) -> tuple[pa.Table, np.ndarray, pa.Table]:
    """様式1-2 payload → (rows, line numbers, rejects); kept for callers of the first version."""
    rows, line_no, rejects, _ = read_payload(data, STYLE_1_2)
    return rows, line_no, rejects


NUMBER_PATTERN = r"^[-+]?(\d+\.?\d*|\.\d+)$"
INT_TYPES = {"int8": pa.int8(), "int32": pa.int32(), "int64": pa.int64()}


def _parse_number(text: pa.Array, col: Column) -> tuple[pa.Array, pa.Array]:
    """Text → (typed values, not-numeric mask). NULL text stays NULL and is not 'not numeric'."""
    target = INT_TYPES.get(col.type, pa.float64())
    try:  # fast path: the whole column parses
        values = pc.cast(text, target)
        return values, pa.array(np.zeros(len(text), dtype=bool))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    text = pc.utf8_trim_whitespace(text)
    ok = pc.match_substring_regex(text, NUMBER_PATTERN)
    f = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), pa.float64())
    if col.type != "float":
        info = np.iinfo({"int8": np.int8, "int32": np.int32, "int64": np.int64}[col.type])
        whole = pc.and_(pc.equal(pc.floor(f), f), pc.and_(pc.greater_equal(f, float(info.min)), pc.less_equal(f, float(info.max))))
        f = pc.if_else(whole, f, pa.scalar(None, pa.float64()))
    bad = pc.and_(pc.is_valid(text), pc.is_null(f))
    values = pc.cast(f, target) if col.type != "float" else f
    return values, bad


_EPOCH_MONTH = np.datetime64("1970-01", "M")


def _digits_to_seconds(v: np.ndarray, n_digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """YYYYMMDD[hhmm[ss]] integers → (seconds since epoch, valid mask), vectorised calendar check."""
    v = np.where(n_digits == 12, v * 100, v)
    v = np.where(n_digits == 8, v * 1_000_000, v)
    year, rest = np.divmod(v, 10**10)
    month, rest = np.divmod(rest, 10**8)
    day, rest = np.divmod(rest, 10**6)
    hh, rest = np.divmod(rest, 10**4)
    mm, ss = np.divmod(rest, 100)
    valid = (year >= 1900) & (year <= 2200) & (month >= 1) & (month <= 12) & (day >= 1) & (hh < 24) & (mm < 60) & (ss < 60)
    months = np.where(valid, (year - 1970) * 12 + month - 1, 0)
    start = (_EPOCH_MONTH + months).astype("datetime64[D]").astype(np.int64)
    next_start = (_EPOCH_MONTH + months + 1).astype("datetime64[D]").astype(np.int64)
    valid &= day <= (next_start - start)
    secs = (start + day - 1) * 86400 + hh * 3600 + mm * 60 + ss
    return secs, valid


def _parse_time(text: pa.Array, col: Column) -> tuple[pa.Array, pa.Array]:
    """Date / timestamp text → (typed, bad mask); NULL text stays NULL."""
    lengths = pc.utf8_length(text)
    allowed = (8,) if col.type == "date" else (12, 14)
    try:
        ints = pc.cast(text, pa.int64())
        shape_ok = pc.and_(pc.is_in(lengths, pa.array(allowed, pa.int32())), pc.greater_equal(ints, 0))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pattern = r"^\d{8}$" if col.type == "date" else r"^\d{12}(\d{2})?$"
        shape_ok = pc.match_substring_regex(text, pattern)
        ints = pc.cast(pc.if_else(shape_ok, text, pa.scalar(None, pa.string())), pa.int64())
    v = np.asarray(pc.fill_null(ints, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    nd = np.asarray(pc.fill_null(lengths, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    secs, valid = _digits_to_seconds(v, nd)
    present = np.asarray(pc.is_valid(text).to_numpy(zero_copy_only=False), dtype=bool)
    valid &= np.asarray(pc.fill_null(shape_ok, False).to_numpy(zero_copy_only=False), dtype=bool) & present
    bad = present & ~valid
    if col.type == "date":
        typed = pa.array((secs // 86400).astype(np.int32), pa.date32(), mask=~valid)
    else:
        typed = pa.array(secs, pa.timestamp("s"), mask=~valid)
    return typed, pa.array(bad)


def validation_rules(layout: Layout = STYLE_1_2) -> list[tuple[str, str, str]]:
    """(reason, columns, description) of every rule in evaluation order, generated from the layout."""
    n = layout.n_columns
    rules = [
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
            rules.append((f"{col.name}_not_numeric", where, "not a whole number" if col.type != "float" else "not a number"))
        elif kind == "out_of_range":
            lo = "-∞" if col.low is None else f"{col.low:g}"
            hi = "∞" if col.high is None else f"{col.high:g}"
            rules.append((f"{col.name}_out_of_range", where, f"outside {lo}–{hi}{unit}"))
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
    return plan


def validate_rows(rows: pa.Table, line_no: np.ndarray, layout: Layout = STYLE_1_2) -> tuple[pa.Table, pa.Table]:
    """Type and check every row, vectorised.

    `rows` holds the layout's text columns; the `id` column must already be pseudonymised by
    the caller (it is passed through as text). Returns (typed rows that pass, with line_no;
    failing rows as (line_no, reason, raw_text), raw_text rebuilt from the (pseudonymised) fields).
    """
    n = rows.num_rows
    typed: dict[str, pa.Array] = {}
    failures: dict[tuple[str, str], pa.Array] = {}
    for col in layout.columns:
        text = rows.column(col.name)
        if col.type in ("str", "id"):
            typed[col.name] = pc.utf8_trim_whitespace(text) if col.type == "str" else text
            if col.type == "str":
                t = typed[col.name]
                typed[col.name] = pc.if_else(pc.equal(t, ""), pa.scalar(None, pa.string()), t)
        elif col.type in ("date", "timestamp"):
            typed[col.name], failures[(col.name, "bad")] = _parse_time(text, col)
        else:
            typed[col.name], failures[(col.name, "not_numeric")] = _parse_number(text, col)
            if col.low is not None or col.high is not None:
                v = typed[col.name]
                out = None
                if col.low is not None:
                    out = pc.less(v, col.low)
                if col.high is not None:
                    hi = pc.greater(v, col.high)
                    out = hi if out is None else pc.or_(out, hi)
                failures[(col.name, "out_of_range")] = pc.fill_null(out, False)
        if col.required:
            v = typed[col.name]
            failures[(col.name, "missing")] = pc.is_null(v) if col.type == "str" else pc.is_null(text)
    reason_of = {
        "missing": lambda c: f"missing_{c}", "bad": lambda c: f"bad_{c}",
        "not_numeric": lambda c: f"{c}_not_numeric", "out_of_range": lambda c: f"{c}_out_of_range",
    }  # fmt: skip
    # The first failing rule names the reason: assign in reverse so earlier rules win.
    reason = pa.nulls(n, pa.string())
    any_bad = False
    for col, kind in reversed(_rule_plan(layout)):
        mask = failures.get((col.name, kind))
        if mask is None or not pc.any(mask).as_py():
            continue
        any_bad = True
        reason = pc.if_else(mask, pa.scalar(reason_of[kind](col.name)), reason)
    line_arr = pa.array(line_no, pa.int64())
    columns = {c.name: typed[c.name] for c in layout.columns}
    columns["line_no"] = line_arr
    passing = pa.table(columns)
    if not any_bad:
        empty = pa.table({"line_no": pa.array([], pa.int64()), "reason": pa.array([], pa.string()), "raw_text": pa.array([], pa.string())})
        return passing, empty
    bad = pc.is_valid(reason)
    passing = passing.filter(pc.invert(bad))
    raw = pc.binary_join_element_wise(
        *[pc.fill_null(pc.filter(rows.column(c.name), bad), "") for c in layout.columns], ","
    )
    failed = pa.table({"line_no": pc.filter(line_arr, bad), "reason": pc.filter(reason, bad), "raw_text": raw})
    return passing, failed
