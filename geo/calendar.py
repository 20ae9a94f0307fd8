"""The calendar of the day types: weekday, or Saturday / Sunday / Japanese public holiday (JST).

Timestamps are JST wall-clock times as int64 microseconds since 1970-01-01 (the warehouse's
GPS時刻). Japanese public holidays, 振替休日 included, come from the `holidays` package for
2010–2035; the compiled kernels (geo.kernels) take the same table, so the match stage, the filters,
the cube and the bootstrap classify every day alike.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np

from geo.kernels import US_PER_DAY, US_PER_HOUR


@lru_cache(maxsize=8)
def holiday_table(first_year: int = 2010, last_year: int = 2035) -> tuple[int, np.ndarray]:
    """(day number of 1 January first_year, bool per day: Japanese public holiday incl. 振替休日)."""
    import holidays

    jp = holidays.Japan(years=range(first_year, last_year + 1))
    day0 = dt.date(first_year, 1, 1)
    flags = np.zeros((dt.date(last_year, 12, 31) - day0).days + 1, dtype=np.bool_)
    for d in jp:
        flags[(d - day0).days] = True
    return (day0 - dt.date(1970, 1, 1)).days, flags


def day_type_of(gps_us) -> np.ndarray:
    """0 weekday, 1 Saturday, Sunday or Japanese public holiday (incl. 振替休日), per JST timestamp
    (int64 microseconds since 1970-01-01 of the wall-clock time) — the kernel's rule, vectorised."""
    day0, hol = holiday_table()
    day = np.asarray(gps_us, dtype=np.int64) // US_PER_DAY
    weekend = (day + 3) % 7 >= 5  # 1970-01-01 was a Thursday
    k = day - day0
    inside = (k >= 0) & (k < len(hol))
    holiday = np.zeros(len(day), dtype=bool)
    holiday[inside] = hol[k[inside]]
    return (weekend | holiday).astype(np.int8)


def hour_of(gps_us) -> np.ndarray:
    """Hour of day 0-23 of each JST timestamp (int64 microseconds)."""
    return ((np.asarray(gps_us, dtype=np.int64) % US_PER_DAY) // US_PER_HOUR).astype(np.int8)


__all__ = ["holiday_table", "day_type_of", "hour_of"]


def months_between(start: dt.date, end: dt.date) -> list[tuple[int, int]]:
    """(year, month) of operation dates that can hold GPS時刻 on days start..end: from the day before
    start (a trip's operation date may precede its points across midnight) to end."""
    s = start - dt.timedelta(days=1)
    out, (y, m) = [], (s.year, s.month)
    while (y, m) <= (end.year, end.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out
