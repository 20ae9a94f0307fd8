"""Monitoring: is the effect lasting? A monthly series per district, extended by every delivery.

For every complete calendar month of the point store after the district's last named period,
the treated and comparison streets' level of every indicator (points and passages) with its 95 %
cluster-bootstrap interval, its change against the district's default `after` period with the
interval of that change (the vehicles of both resampled jointly), and the difference in differences
(unit 'did': treated change − comparison change) with its interval, on which the verdict is an
equivalence test (analysis.equivalence). Stored in ``monthly_series``; nobody edits a file when a
new month arrives.

A month is complete when the store holds points of its last day (or of a later day).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from analysis.bootstrap import compare_periods_all
from analysis.equivalence import equivalence_verdict
from analysis.filters import ALL_POINTS, PointFilter
from analysis.matchstage import match_stage
from analysis.network import Network, district_network
from analysis.points import matched_folders
from analysis.samples import period_samples, samples_of_folders
from analysis.stages import forget_stage
from config.districts import District, Period
from config.settings import ADEQUATE_MIN_VEHICLES, DEFAULT_RESAMPLES, DEFAULT_SEED, INDICATORS
from etl.schema import transaction
from etl.warehouse import connect, point_files
from geo.calendar import months_between


def last_day_in_store(files: list[Path]) -> dt.date | None:
    """The latest operation date of point files, from their Parquet statistics (no data read)."""
    latest = None
    for f in files:
        meta = pq.ParquetFile(f).metadata
        col = meta.schema.to_arrow_schema().get_field_index("operation_date")
        if col < 0:
            continue
        for rg in range(meta.num_row_groups):
            st = meta.row_group(rg).column(col).statistics
            if st is not None and st.has_min_max:
                latest = st.max if latest is None or st.max > latest else latest
    return latest


def monitoring_months(warehouse: str | Path, district: District) -> list[Period]:
    """Complete calendar months of the store after the district's last named period, in order."""
    store = point_files(warehouse)
    if not store:
        return []
    last_period_end = max(p.end for p in district.periods.values())
    latest = max((d for d in (last_day_in_store(store[k]) for k in sorted(store)[-2:]) if d is not None), default=None)
    out = []
    for y, m in sorted(store):
        first = dt.date(y, m, 1)
        last = dt.date(y, m, calendar.monthrange(y, m)[1])
        if first > last_period_end and latest is not None and latest >= last:
            out.append(Period(f"{y:04d}-{m:02d}", first, last, f"{y}年{m}月"))
    return out


def monthly_series(  # noqa: PLR0913 -- public API: its keywords are the documented options of the monitor flow
    warehouse: str | Path,
    district: District,
    *,
    network: Network | None = None,
    point_filter: PointFilter = ALL_POINTS,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    min_vehicles: int = ADEQUATE_MIN_VEHICLES,
    store: bool = True,
    client=None,
) -> pd.DataFrame:
    """The district's monthly series (see the module docstring); stored in monthly_series unless store=False.

    Returns one row per month, indicator and unit (treated, control, did) with value, ci_low, ci_high,
    n, n_vehicles, after_level, change_vs_after, change_ci_low, change_ci_high, flag and degenerate
    (did: value, its interval and after_level NaN; change_vs_after the DiD).

    client: a `distributed.Client`: the match stage runs month by month on its workers, and each
    month of the series (its reading and its bootstrap against the reference) is one task; the
    rows are the same bits as without it.
    """
    warehouse = Path(warehouse)
    network = network or district_network(district)
    after = district.period(district.default_after)
    months = monitoring_months(warehouse, district)
    rows = []
    if months:
        needed = sorted({m for p in (after, *months) for m in months_between(p.start, p.end)})
        match_stage(warehouse, network, needed, client=client)
        treated = network.roads.loc[network.roads["role"] == "treated", "road_id"].tolist()
        control = network.roads.loc[network.roads["role"] == "comparison", "road_id"].tolist()
        con = connect(warehouse, create=False)
        try:
            ref = period_samples(con, warehouse, network, "before", after, point_filter, client=client)
            folders = [matched_folders(con, warehouse, network.key, m.start, m.end) for m in months]
        finally:
            con.close()
        spec = MonthComparison(treated, control, point_filter, resamples, seed, min_vehicles)
        if client is None:
            parts = [month_rows(ref, f, network, m, spec) for f, m in zip(folders, months, strict=True)]
        else:
            ref_f, net = client.scatter([ref, network], broadcast=True, hash=False)
            parts = client.gather(
                [
                    client.submit(
                        month_rows, ref_f, [str(Path(x).absolute()) for x in f], net, m, spec, pure=False, retries=1
                    )
                    for f, m in zip(folders, months, strict=True)
                ]
            )
        rows = [r for part in parts for r in part]
    cols = [
        "month",
        "indicator",
        "unit",
        "value",
        "ci_low",
        "ci_high",
        "n",
        "n_vehicles",
        "after_level",
        "change_vs_after",
        "change_ci_low",
        "change_ci_high",
        "flag",
        "degenerate",
    ]
    series = pd.DataFrame(rows, columns=cols)
    if store:
        _store(warehouse, district.key, point_filter, series, resamples, seed)
    return series


@dataclass(frozen=True)
class MonthComparison:
    """How a month is compared against its reference period: the treated and comparison roads, the
    points kept, and the bootstrap's resamples, seed and minimum of distinct vehicles."""

    treated: list[str]
    control: list[str]
    point_filter: PointFilter
    resamples: int
    seed: int
    min_vehicles: int


def month_rows(ref, folders: list, network: Network, month: Period, spec: MonthComparison) -> list[dict]:
    """The series' rows of one month against the reference samples `ref` (runs here or on a worker)."""
    cur = samples_of_folders([Path(f) for f in folders], network, "after", month, spec.point_filter)
    comp = compare_periods_all(
        pd.concat([ref.point_samples, cur.point_samples], ignore_index=True),
        treated=spec.treated,
        control=spec.control,
        indicators=INDICATORS,
        passages=pd.concat([ref.passage_samples, cur.passage_samples], ignore_index=True),
        resamples=spec.resamples,
        seed=spec.seed,
        min_vehicles=spec.min_vehicles,
        first_points=pd.concat([ref.first_points, cur.first_points], ignore_index=True),
    )
    rows = []
    for ind, table in comp.items():
        for r in table[table["unit"].isin(["treated", "control", "did"])].itertuples():
            rows.append(
                {
                    "month": month.start,
                    "indicator": ind,
                    "unit": r.unit,
                    "value": r.after,
                    "ci_low": r.after_ci_low,
                    "ci_high": r.after_ci_high,
                    "n": r.n_after,
                    "n_vehicles": r.n_vehicles_after,
                    "after_level": r.before,
                    "change_vs_after": r.change,
                    "change_ci_low": r.ci_low,
                    "change_ci_high": r.ci_high,
                    "flag": r.flag,
                    "degenerate": bool(r.degenerate),
                }
            )
    return rows


def _store(
    warehouse: Path, key: str, point_filter: PointFilter, series: pd.DataFrame, resamples: int, seed: int
) -> None:
    flt = point_filter.describe_ja()
    con = connect(warehouse, create=False)
    try:
        with transaction(con):
            forget_stage(con, key, "monitor")
            con.execute("DELETE FROM monthly_series WHERE district = ? AND filter = ?", [key, flt])
            if len(series):
                con.register(
                    "_m",
                    series.assign(
                        district=key, filter=flt, resamples=resamples, seed=seed, computed_at=dt.datetime.now()
                    ),
                )
                con.execute("""INSERT INTO monthly_series SELECT district, filter, month, indicator, unit, value,
                               ci_low, ci_high, n, n_vehicles, after_level, change_vs_after, change_ci_low,
                               change_ci_high, flag, resamples, seed, computed_at, degenerate FROM _m""")
    finally:
        con.close()


def latest_month_verdict(series: pd.DataFrame, indicator: str = "p85") -> dict | None:
    """Whether the latest month is still at the after level: the equivalence verdict on its difference in
    differences (analysis.equivalence.equivalence_verdict: holding / rising / falling / inconclusive /
    unknown). None when there is no month."""
    return equivalence_verdict(series, indicator)
