"""Point filters: hour bands, day types with Japanese public holidays, vehicle classes — SQL and Arrow agree."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from analysis.filters import PointFilter, japanese_holidays

TIMES = [
    dt.datetime(2017, 9, 15, 7, 30),  # Friday, 7:30
    dt.datetime(2017, 9, 16, 8, 59),  # Saturday
    dt.datetime(2017, 9, 18, 7, 0),  # Monday, 敬老の日 (public holiday)
    dt.datetime(2017, 9, 19, 9, 0),  # Tuesday, 9:00 (outside 7-9)
    dt.datetime(2019, 5, 1, 8, 0),  # Wednesday, 即位の日 (2019 holiday)
]
TABLE = pa.table({
    "gps_time": pa.array(TIMES, pa.timestamp("us")),
    "vehicle_type": pa.array([2, 1, 4, 2, 1], pa.int32()),
    "vehicle_use": pa.array([1, 2, 1, 2, 1], pa.int32()),
})  # fmt: skip


def _arrow(f: PointFilter) -> list[int]:
    expr = f.arrow_expression(dt.date(2017, 1, 1), dt.date(2019, 12, 31))
    t = TABLE.append_column("i", pa.array(range(len(TIMES))))
    kept = ds.dataset(t).to_table(filter=expr) if expr is not None else t
    return kept.column("i").to_pylist()


def _sql(f: PointFilter) -> list[int]:
    con = duckdb.connect()
    con.register("p", TABLE.append_column("i", pa.array(range(len(TIMES)))))
    cond = f.sql(dt.date(2017, 1, 1), dt.date(2019, 12, 31))
    return [r[0] for r in con.execute(f"SELECT i FROM p WHERE {cond} ORDER BY i").fetchall()]


@pytest.mark.parametrize(
    "args, expected",
    [
        (("7-9", None, None), [0, 1, 2, 4]),
        ((None, "weekday", None), [0, 3]),
        ((None, "holiday", None), [1, 2, 4]),
        (("7-9", "weekday", None), [0]),
        ((None, None, "large"), [1, 4]),
        ((None, None, "freight"), [1, 3]),
        ((None, None, "kei"), [2]),
        ((None, None, None), [0, 1, 2, 3, 4]),
    ],
)
def test_filters_sql_and_arrow_agree(args, expected):
    f = PointFilter.parse(*args)
    assert _sql(f) == expected
    assert _arrow(f) == expected


def test_holidays_and_errors():
    assert dt.date(2017, 9, 18) in japanese_holidays(dt.date(2017, 9, 1), dt.date(2017, 9, 30))
    assert dt.date(2019, 5, 1) in japanese_holidays(dt.date(2019, 4, 1), dt.date(2019, 5, 31))
    for bad in ({"hours": "9-7"}, {"hours": "morning"}, {"days": "sunday"}, {"vehicle": "bus"}):
        with pytest.raises(ValueError):
            PointFilter.parse(**bad)
    assert PointFilter.parse("7-9", "weekday", "large").describe_ja() == "7時〜9時・平日・大型車"
