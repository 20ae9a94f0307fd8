"""Point filters shared by analyses: time-of-day band, day type (with Japanese public holidays), vehicle class."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import holidays

DAY_TYPES = ("all", "weekday", "holiday")
# Vehicle classes from 自動車の種別 (type) and 自動車の用途 (use) codes of 様式1-2.
VEHICLE_CLASSES = {
    "all": None,
    "large": "vehicle_type = 1",  # 大型
    "small": "vehicle_type IN (0, 2, 3, 4)",  # 軽二輪, 普通, 小型, 軽自動車
    "kei": "vehicle_type = 4",  # 軽自動車
    "passenger": "vehicle_use = 1",  # 乗用
    "freight": "vehicle_use = 2",  # 貨物
}


# The same classes as (column, codes), for the Parquet reader.
VEHICLE_CODES = {
    "large": ("vehicle_type", [1]),
    "small": ("vehicle_type", [0, 2, 3, 4]),
    "kei": ("vehicle_type", [4]),
    "passenger": ("vehicle_use", [1]),
    "freight": ("vehicle_use", [2]),
}


def japanese_holidays(start: dt.date, end: dt.date) -> list[dt.date]:
    """Public holidays of Japan (国民の祝日, 振替休日, 国民の休日) between start and end, inclusive."""
    days = holidays.country_holidays("JP", years=range(start.year, end.year + 1))
    return sorted(d for d in days if start <= d <= end)


def day_type(dates, holiday_dates: set[dt.date]) -> list[str]:
    """'weekday' or 'holiday' (Saturday, Sunday or public holiday) per date."""
    return ["holiday" if d.weekday() >= 5 or d in holiday_dates else "weekday" for d in dates]


@dataclass(frozen=True)
class PointFilter:
    """Which points an analysis keeps. hours: [start, end) local hours, e.g. (7, 9) = 7:00–8:59."""

    hours: tuple[int, int] | None = None
    days: str = "all"
    vehicle: str = "all"

    def __post_init__(self) -> None:
        if self.days not in DAY_TYPES:
            raise ValueError(f"unknown day type {self.days!r} (choose one of {', '.join(DAY_TYPES)})")
        if self.vehicle not in VEHICLE_CLASSES:
            raise ValueError(f"unknown vehicle class {self.vehicle!r} (choose one of {', '.join(VEHICLE_CLASSES)})")
        if self.hours is not None:
            a, b = self.hours
            if not (0 <= a < b <= 24):
                raise ValueError(f"bad hour band {a}-{b}: expected 0 <= start < end <= 24")

    @classmethod
    def parse(cls, hours: str | None = None, days: str | None = None, vehicle: str | None = None) -> "PointFilter":
        """From CLI text: hours '7-9' (7:00–8:59), days all|weekday|holiday, vehicle class name."""
        band = None
        if hours:
            try:
                a, b = (int(x) for x in hours.split("-"))
            except ValueError:
                raise ValueError(f"bad hour band {hours!r}: expected START-END, e.g. 7-9") from None
            band = (a, b)
        return cls(band, days or "all", vehicle or "all")

    def sql(self, start: dt.date, end: dt.date) -> str:
        """SQL condition over probe_points columns (gps_time, vehicle_type, vehicle_use); 'true' if none."""
        conds = []
        if self.hours is not None:
            conds.append(f"hour(gps_time) >= {self.hours[0]} AND hour(gps_time) < {self.hours[1]}")
        if self.days != "all":
            hol = ", ".join(f"DATE '{d.isoformat()}'" for d in japanese_holidays(start, end)) or "NULL"
            is_holiday = f"(isodow(gps_time) >= 6 OR gps_time::DATE IN ({hol}))"
            conds.append(is_holiday if self.days == "holiday" else f"NOT {is_holiday}")
        if VEHICLE_CLASSES[self.vehicle]:
            conds.append(VEHICLE_CLASSES[self.vehicle])
        return " AND ".join(f"({c})" for c in conds) or "true"

    @property
    def active(self) -> bool:
        return self.hours is not None or self.days != "all" or self.vehicle != "all"

    def arrow_expression(self, start: dt.date, end: dt.date):
        """The same condition as a pyarrow dataset expression (for the Parquet reader), or None."""
        import pyarrow as pa
        import pyarrow.compute as pc

        expr = None

        def both(a, b):
            return b if a is None else a & b

        t = pc.field("gps_time")
        if self.hours is not None:
            expr = both(expr, (pc.hour(t) >= self.hours[0]) & (pc.hour(t) < self.hours[1]))
        if self.days != "all":
            hol = pa.array(japanese_holidays(start, end), pa.date32())
            is_holiday = (pc.day_of_week(t) >= 5) | pc.is_in(t.cast(pa.date32()), value_set=hol)
            expr = both(expr, is_holiday if self.days == "holiday" else ~is_holiday)
        codes = VEHICLE_CODES.get(self.vehicle)
        if codes is not None:
            column, values = codes
            expr = both(expr, pc.is_in(pc.field(column), value_set=pa.array(values, pa.int32())))
        return expr

    def describe_ja(self) -> str:
        parts = []
        if self.hours:
            parts.append(f"{self.hours[0]}時〜{self.hours[1]}時")
        parts.append({"all": "全日", "weekday": "平日", "holiday": "土休日"}[self.days])
        parts.append({"all": "全車種", "large": "大型車", "small": "小型車等", "kei": "軽自動車",
                      "passenger": "乗用車", "freight": "貨物車"}[self.vehicle])  # fmt: skip
        return "・".join(parts)
