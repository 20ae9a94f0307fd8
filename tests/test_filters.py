"""The one point filter: hour bands, day types with Japanese public holidays, vehicle classes, direction."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from analysis.filters import PointFilter
from geo.calendar import day_type_of, hour_of

TIMES = [
    dt.datetime(2017, 9, 15, 7, 30),  # Friday, 7:30
    dt.datetime(2017, 9, 16, 8, 59),  # Saturday
    dt.datetime(2017, 9, 18, 7, 0),  # Monday, 敬老の日 (public holiday)
    dt.datetime(2017, 9, 19, 9, 0),  # Tuesday, 9:00 (outside 7-9)
    dt.datetime(2019, 5, 1, 8, 0),  # Wednesday, 即位の日 (2019 holiday)
    dt.datetime(2019, 5, 6, 8, 0),  # Monday, 振替休日
]
US = np.array([np.datetime64(t, "us").astype(np.int64) for t in TIMES])
TABLE = pa.table(
    {
        "gps_time": pa.array(TIMES, pa.timestamp("us")),
        "hour": hour_of(US),
        "day_type": day_type_of(US),
        "vehicle_type": pa.array([2, 1, 4, 2, 1, 2], pa.int32()),
        "vehicle_use": pa.array([1, 2, 1, 2, 1, 1], pa.int32()),
        "direction": pa.array([1, -1, 0, 1, -1, 1], pa.int8()),
        "i": pa.array(range(len(TIMES))),
    }
)


def kept(f: PointFilter, start=dt.date(2017, 1, 1), end=dt.date(2019, 12, 31)) -> list[int]:
    expr = f.expression(start, end)
    return ds.dataset(TABLE).to_table(filter=expr).column("i").to_pylist()


@pytest.mark.parametrize(
    "args, expected",
    [
        (("7-9", None, None, None), [0, 1, 2, 4, 5]),
        ((None, "weekday", None, None), [0, 3]),
        ((None, "holiday", None, None), [1, 2, 4, 5]),
        (("7-9", "weekday", None, None), [0]),
        ((None, None, "large", None), [1, 4]),
        ((None, None, "freight", None), [1, 3]),
        ((None, None, "kei", None), [2]),
        ((None, None, None, "forward"), [0, 3, 5]),
        ((None, None, None, "backward"), [1, 4]),
        ((None, None, None, None), [0, 1, 2, 3, 4, 5]),
    ],
)
def test_filter_expression(args, expected):
    assert kept(PointFilter.parse(*args)) == expected


def test_period_without_a_public_holiday():
    """No holiday in the period: every weekday point is kept (a holiday lookup that finds none drops nothing)."""
    f = PointFilter(days="weekday")
    assert kept(f, dt.date(2017, 9, 19), dt.date(2017, 9, 19)) == [3]
    assert kept(PointFilter(days="holiday"), dt.date(2017, 9, 19), dt.date(2017, 9, 19)) == []


def test_day_type_of_known_holidays_and_errors():
    assert day_type_of(US).tolist() == [0, 1, 1, 0, 1, 1]
    assert hour_of(US).tolist() == [7, 8, 7, 9, 8, 8]
    with pytest.raises(ValueError, match="hour band"):
        PointFilter.parse("9-7")
    with pytest.raises(ValueError, match="START-END"):
        PointFilter.parse("morning")
    with pytest.raises(ValueError, match="direction"):
        PointFilter(direction="north")
    assert not PointFilter().active and PointFilter(direction="forward").active
    assert PointFilter.parse("7-9", "weekday", "kei", "forward").describe_ja() == "7時〜9時・平日・軽自動車・順方向"
