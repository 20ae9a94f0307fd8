"""The one point filter: period, time-of-day band, day type, vehicle class and direction of travel.

Every analysis (figures, the cube, before/after with its bootstrap, braking, cut-through, the
monthly series and screening) reads matched points through `analysis.points`, and that reader
applies the filter as ONE pyarrow expression built here (`PointFilter.expression`). There is no
second implementation (no SQL text to keep in step): the hour and the day type are taken from
GPS時刻 in the expression itself, with the holiday table the cube uses (`geo.aggregate`), so they
agree with the cube's cells; the view `matched_points` shows them too (from the match stage's
calendar, made from the same table).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geo.calendar import holiday_table

DAY_TYPES = ("all", "weekday", "holiday")
DIRECTIONS = {"all": 0, "forward": 1, "backward": -1}
# Vehicle classes as (column, codes) of 様式1-2: 自動車の種別 (vehicle_type) and 自動車の用途 (vehicle_use).
VEHICLE_CLASSES: dict[str, tuple[str, tuple[int, ...]] | None] = {
    "all": None,
    "large": ("vehicle_type", (1,)),  # 大型
    "small": ("vehicle_type", (0, 2, 3, 4)),  # 軽二輪, 普通, 小型, 軽自動車
    "kei": ("vehicle_type", (4,)),  # 軽自動車
    "passenger": ("vehicle_use", (1,)),  # 乗用
    "freight": ("vehicle_use", (2,)),  # 貨物
}
_DAYS_JA = {"all": "全日", "weekday": "平日", "holiday": "土休日"}
_VEHICLE_JA = {
    "all": "全車種",
    "large": "大型車",
    "small": "小型車等",
    "kei": "軽自動車",
    "passenger": "乗用車",
    "freight": "貨物車",
}
_DIRECTION_JA = {"all": "", "forward": "順方向", "backward": "逆方向"}


@lru_cache(maxsize=1)
def _holiday_dates() -> pa.Array:
    day0, flags = holiday_table()
    return pa.array((day0 + np.flatnonzero(flags)).astype(np.int32), pa.int32()).cast(pa.date32())


def holiday_expression() -> pc.Expression:
    """GPS時刻 on a Saturday, Sunday or Japanese public holiday (the cube's day type 1, `day_type_of`)."""
    t = pc.field("gps_time")
    return (pc.day_of_week(t) >= 5) | pc.is_in(t.cast(pa.date32()), value_set=_holiday_dates())


@dataclass(frozen=True)
class PointFilter:
    """Which points an analysis keeps.

    hours: [start, end) local hours of GPS時刻 (JST), e.g. (7, 9) = 7:00–8:59; days: all | weekday |
    holiday (Saturday, Sunday or Japanese public holiday); vehicle: a key of VEHICLE_CLASSES;
    direction: all | forward (along the road's digitised direction) | backward (against it) —
    points whose direction is unknown are kept only with ``all``.
    """

    hours: tuple[int, int] | None = None
    days: str = "all"
    vehicle: str = "all"
    direction: str = "all"

    def __post_init__(self) -> None:
        if self.days not in DAY_TYPES:
            raise ValueError(f"unknown day type {self.days!r} (choose one of {', '.join(DAY_TYPES)})")
        if self.vehicle not in VEHICLE_CLASSES:
            raise ValueError(f"unknown vehicle class {self.vehicle!r} (choose one of {', '.join(VEHICLE_CLASSES)})")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {self.direction!r} (choose one of {', '.join(DIRECTIONS)})")
        if self.hours is not None:
            a, b = self.hours
            if not (0 <= a < b <= 24):
                raise ValueError(f"bad hour band {a}-{b}: expected 0 <= start < end <= 24")

    @classmethod
    def parse(
        cls, hours: str | None = None, days: str | None = None, vehicle: str | None = None, direction: str | None = None
    ) -> PointFilter:
        """From CLI text: hours '7-9' (7:00–8:59), days all|weekday|holiday, vehicle class, direction."""
        band = None
        if hours:
            try:
                a, b = (int(x) for x in hours.split("-"))
            except ValueError:
                raise ValueError(f"bad hour band {hours!r}: expected START-END, e.g. 7-9") from None
            band = (a, b)
        return cls(band, days or "all", vehicle or "all", direction or "all")

    @property
    def active(self) -> bool:
        """Whether the filter drops anything (the published figures are those of the inactive filter)."""
        return self != PointFilter()

    def expression(self, start: dt.date | None = None, end: dt.date | None = None) -> pc.Expression | None:
        """The condition over matched-point columns (gps_time, vehicle_type, vehicle_use, direction) as
        one pyarrow expression: days start..end inclusive (JST), and the filter; None
        when nothing is filtered."""
        conds = []
        if start is not None and end is not None:
            t0 = pa.scalar(dt.datetime.combine(start, dt.time()), pa.timestamp("us"))
            t1 = pa.scalar(dt.datetime.combine(end + dt.timedelta(days=1), dt.time()), pa.timestamp("us"))
            conds.append((pc.field("gps_time") >= t0) & (pc.field("gps_time") < t1))
        if self.hours is not None:
            hour = pc.hour(pc.field("gps_time"))
            conds.append((hour >= self.hours[0]) & (hour < self.hours[1]))
        if self.days != "all":
            conds.append(holiday_expression() if self.days == "holiday" else ~holiday_expression())
        codes = VEHICLE_CLASSES[self.vehicle]
        if codes is not None:
            column, values = codes
            conds.append(pc.is_in(pc.field(column), value_set=pa.array(values, pa.int32())))
        if self.direction != "all":
            conds.append(pc.field("direction") == DIRECTIONS[self.direction])
        if not conds:
            return None
        expr = conds[0]
        for c in conds[1:]:
            expr = expr & c
        return expr

    def without_vehicle_and_direction(self) -> PointFilter:
        """The part of the filter that applies to 挙動履歴 events (they carry no vehicle class or road direction)."""
        return PointFilter(self.hours, self.days)

    def describe_ja(self) -> str:
        """Japanese description, stored with every filtered result (e.g. '7時〜9時・平日・全車種')."""
        parts = []
        if self.hours:
            parts.append(f"{self.hours[0]}時〜{self.hours[1]}時")
        parts.append(_DAYS_JA[self.days])
        parts.append(_VEHICLE_JA[self.vehicle])
        if self.direction != "all":
            parts.append(_DIRECTION_JA[self.direction])
        return "・".join(parts)


ALL_POINTS = PointFilter()
# The stored filter key of unfiltered results ('全日・全車種'): every reader compares with this name.
ALL_POINTS_FILTER = ALL_POINTS.describe_ja()
