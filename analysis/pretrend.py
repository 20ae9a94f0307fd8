"""Before the before period: the selection's months and the pre-period trend of treated and comparison streets.

A street is chosen because it was fast. If it is chosen on the same data that later serves as the
before level, part of its fall afterwards is regression to the mean, and the comparison streets —
not chosen for being fast — do not remove it (docs/statistics.md). Two remedies the evaluation
literature names are built here:

- Select on other months: `screening_period` gives screening the complete calendar months right
  before the district's before period when the store holds them (at most PRE_PERIOD_MAX_MONTHS,
  contiguous), else the before period itself, saying which ('pre_period' / 'before_period').
- Show the pre-period trend: `pre_period_series` computes, for each of those months, the treated and
  comparison streets' levels and their change against the before period, with the difference in
  differences (unit 'did') and 95 % cluster-bootstrap intervals — the monthly series of
  analysis.monitoring, run backwards. Parallel trends before the treatment (a DiD near zero) support
  the comparison; a treated street that was unusually fast just before its baseline warns of
  regression to the mean. Stored in ``pre_period_series``.
"""

from __future__ import annotations

import calendar
import datetime as dt
from pathlib import Path

import pandas as pd

from analysis.filters import ALL_POINTS, PointFilter
from analysis.matchstage import match_stage
from analysis.monitoring import MonthComparison, month_rows
from analysis.network import Network, district_network
from analysis.points import matched_folders
from analysis.samples import period_samples
from config.districts import District, Period
from config.settings import ADEQUATE_MIN_VEHICLES, DEFAULT_RESAMPLES, DEFAULT_SEED, PRE_PERIOD_MAX_MONTHS
from etl.schema import transaction
from etl.warehouse import connect, point_files
from geo.calendar import months_between

SERIES_COLUMNS = [
    "month",
    "indicator",
    "unit",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "n_vehicles",
    "before_level",
    "change_vs_before",
    "change_ci_low",
    "change_ci_high",
    "flag",
    "degenerate",
]
BASES = ("pre_period", "before_period", "given")


def _month(y: int, m: int) -> Period:
    first = dt.date(y, m, 1)
    return Period(f"{y:04d}-{m:02d}", first, dt.date(y, m, calendar.monthrange(y, m)[1]), f"{y}年{m}月")


def pre_period_months(
    warehouse: str | Path, district: District, max_months: int = PRE_PERIOD_MAX_MONTHS
) -> list[Period]:
    """The store's complete calendar months right before the district's default before period: the
    month that ends before it starts, and the ones before that while the store holds them (no gap),
    at most `max_months`, in date order."""
    store = set(point_files(warehouse))
    start = district.period(district.default_before).start
    y, m = start.year, start.month  # the month holding the start overlaps the before period: not before it
    out = []
    while len(out) < max_months:
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        if (y, m) not in store:
            break
        out.append(_month(y, m))
    return out[::-1]


def screening_period(warehouse: str | Path, district: District) -> tuple[Period, str]:
    """The period screening uses by default and its basis: the pre-period months when the store holds
    them ('pre_period'), else the district's before period ('before_period')."""
    months = pre_period_months(warehouse, district)
    if months:
        first, last = months[0], months[-1]
        label = first.label_ja if first is last else f"{first.label_ja}〜{last.label_ja}"
        return Period("pre", first.start, last.end, f"対策前期間より前（{label}）", "before the before period"), (
            "pre_period"
        )
    return district.period(district.default_before), "before_period"


def pre_period_series(
    warehouse: str | Path,
    district: District,
    *,
    network: Network | None = None,
    point_filter: PointFilter = ALL_POINTS,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    min_vehicles: int = ADEQUATE_MIN_VEHICLES,
    store: bool = True,
) -> pd.DataFrame:
    """Each pre-period month against the district's default before period (see the module docstring):
    one row per month, indicator and unit (treated, control, did) with SERIES_COLUMNS. Stored in
    pre_period_series (replacing the district's rows of the filter) unless store=False; empty when the
    store holds no month before the before period."""
    warehouse = Path(warehouse)
    network = network or district_network(district)
    before = district.period(district.default_before)
    months = pre_period_months(warehouse, district)
    rows = []
    if months:
        needed = sorted({m for p in (before, *months) for m in months_between(p.start, p.end)})
        match_stage(warehouse, network, needed)
        roles = network.roads.set_index("road_id")["role"]
        treated, control = list(roles.index[roles == "treated"]), list(roles.index[roles == "comparison"])
        con = connect(warehouse, create=False)
        try:
            ref = period_samples(con, warehouse, network, "before", before, point_filter)
            folders = [matched_folders(con, warehouse, network.key, m.start, m.end) for m in months]
        finally:
            con.close()
        spec = MonthComparison(treated, control, point_filter, resamples, seed, min_vehicles)
        rows = [r for f, m in zip(folders, months, strict=True) for r in month_rows(ref, f, network, m, spec)]
    series = pd.DataFrame(rows).rename(columns={"after_level": "before_level", "change_vs_after": "change_vs_before"})
    series = series.reindex(columns=SERIES_COLUMNS)
    if store:
        _store(warehouse, district.key, point_filter, series, resamples, seed)
    return series


def _store(
    warehouse: Path, key: str, point_filter: PointFilter, series: pd.DataFrame, resamples: int, seed: int
) -> None:
    flt = point_filter.describe_ja()
    con = connect(warehouse, create=False)
    try:
        with transaction(con):
            con.execute("DELETE FROM pre_period_series WHERE district = ? AND filter = ?", [key, flt])
            if len(series):
                con.register(
                    "_s",
                    series.assign(
                        district=key, filter=flt, resamples=resamples, seed=seed, computed_at=dt.datetime.now()
                    ),
                )
                con.execute(f"""INSERT INTO pre_period_series SELECT district, filter, {", ".join(SERIES_COLUMNS)},
                                resamples, seed, computed_at FROM _s""")
    finally:
        con.close()
