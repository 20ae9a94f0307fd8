"""Stored results of a district, read back for publishing: maps, reports and sheets never recompute.

`load_district_results` returns exactly what the warehouse holds for a district and filter —
road_period_stats / group_period_stats of the compared periods, comparison_results (every
indicator, same resamples, seed and figures), comparison_histogram, braking, hot spots,
cut-through, the parameters of the run (evidence_runs), the gate classification and gate OD, and
the latest screening, the placebo streets (placebo_results) and the months before the before period
(pre_period_series) — with the district's roads.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import geopandas as gpd
import pandas as pd

from analysis.filters import ALL_POINTS_FILTER
from analysis.network import assign_roles, network_fingerprint
from config.districts import District, Period
from etl.schema import DERIVED_SCHEMA_VERSION, derived_schema_version
from etl.warehouse import connect
from geo.network import load_roads, with_road_names


class ResultsMissing(ValueError):
    """Nothing stored yet for the district (run the analysis first)."""


@dataclass
class DistrictResults:
    district_key: str
    filter: str  # the filter's Japanese description ('全日・全車種': all points)
    periods: dict[str, Period]  # 'before' / 'after', with the district's labels
    roads: gpd.GeoDataFrame  # metric CRS, roles set
    road_stats: pd.DataFrame  # road_period_stats rows of the two periods; period column is 'before' / 'after'
    group_stats: pd.DataFrame  # group_period_stats rows of the two periods
    comparisons: dict[str, pd.DataFrame]  # indicator -> comparison_results rows (units in stored order)
    distributions: pd.DataFrame  # comparison_histogram: unit, period, speed_bin_kmh, n_points
    braking: pd.DataFrame  # braking_per_road
    hotspots: pd.DataFrame  # braking_hotspots
    cut_through: pd.DataFrame  # cut_through_summary
    cut_through_streets: pd.DataFrame  # cut_through_streets
    resamples: int
    seed: int
    min_vehicles: int
    threshold_g: float
    braking_source: str
    radius_m: float
    computed_at: dt.datetime
    network_current: bool  # whether the network file still has the fingerprint the figures were computed with
    monthly: pd.DataFrame | None = None  # monthly_series rows of the filter (months after the last named period)
    # load_gates: {'gates': district_gates, 'summary': gate_class_summary, 'od': gate_od} of every named period
    # (match a compared period by period_start / period_end: gate rows carry the district's period names)
    gates: dict[str, pd.DataFrame] | None = None
    screening: pd.DataFrame | None = None  # screening_results of the district's latest screening, by rank
    placebo: pd.DataFrame | None = None  # placebo_results of the filter (analysis.placebo)
    pre_period: pd.DataFrame | None = None  # pre_period_series of the filter (months before the before period)


def _period(text: str, name: str, district: District | None) -> Period:
    start, end = (dt.date.fromisoformat(x) for x in text.split(".."))
    label = ""
    if district is not None:
        for p in district.periods.values():
            if (p.start, p.end) == (start, end):
                label = p.label_ja
    return Period(name, start, end, label)


def _require_current(con, warehouse) -> None:
    """ResultsMissing when the stored results were computed under an earlier DERIVED_SCHEMA_VERSION
    (an earlier definition of a figure): they are recomputed by the next analysis, never served."""
    found = derived_schema_version(con)
    if found is not None and found != DERIVED_SCHEMA_VERSION:
        raise ResultsMissing(
            f"the results stored in {warehouse} were computed by an earlier version of etc2calm (derived tables "
            f"v{found}, now v{DERIVED_SCHEMA_VERSION}): run the monthly flow, or 'etc2calm analyze' and 'etc2calm "
            "compare', again"
        )


def _current(con) -> bool:
    found = derived_schema_version(con)
    return found is None or found == DERIVED_SCHEMA_VERSION


def _latest_run(con, district: District, flt: str) -> pd.Series:
    """The district's latest comparison run (evidence_runs) of the filter; ResultsMissing when there is none."""
    try:
        run = con.execute(
            "SELECT * FROM evidence_runs WHERE district = ? AND filter = ? ORDER BY computed_at DESC LIMIT 1",
            [district.key, flt],
        ).df()
    except duckdb.CatalogException:  # a warehouse that was never analysed
        run = pd.DataFrame()
    if run.empty:
        raise ResultsMissing(
            f"no stored results for district {district.key!r} ({flt}): run 'etc2calm analyze' and 'etc2calm "
            "compare' "
            "(or the monthly flow) first"
        )
    return run.iloc[0]


def _require_road_stats(results: DistrictResults, district: District) -> None:
    """ResultsMissing when the per-road figures of a compared period are not stored."""
    periods = results.periods
    missing = [k for k in periods if not (results.road_stats["period"] == k).any()]
    if missing:
        raise ResultsMissing(
            f"district {district.key!r}: no per-road figures stored for the compared period(s) "
            f"{', '.join(f'{k} {periods[k].start}..{periods[k].end}' for k in missing)}: run 'etc2calm analyze' "
            "for them"
        )


def load_district_results(warehouse: str | Path, district: District, filter_text: str | None = None) -> DistrictResults:
    """The stored results of `district` for one filter (default: all points). ResultsMissing when none."""
    flt = filter_text or ALL_POINTS_FILTER
    con = connect(warehouse, read_only=True)
    try:
        _require_current(con, warehouse)
        r = _latest_run(con, district, flt)
        periods = {
            "before": _period(r["period_before"], "before", district),
            "after": _period(r["period_after"], "after", district),
        }

        def by_periods(table: str) -> pd.DataFrame:
            parts = []
            for key, p in periods.items():
                df = con.execute(
                    f"""SELECT * FROM {table} WHERE district = ? AND period_start = ? AND period_end = ?
                        QUALIFY computed_at = max(computed_at) OVER ()""",
                    [district.key, p.start, p.end],
                ).df()
                parts.append(df.assign(period=key))
            return pd.concat(parts, ignore_index=True)

        def of_filter(table: str) -> pd.DataFrame:
            return con.execute(f"SELECT * FROM {table} WHERE district = ? AND filter = ?", [district.key, flt]).df()

        comp = of_filter("comparison_results")
        monthly = of_filter("monthly_series").sort_values(["month", "indicator", "unit"]).reset_index(drop=True)
        pre = of_filter("pre_period_series").sort_values(["month", "indicator", "unit"]).reset_index(drop=True)
        comparisons = {ind: g.reset_index(drop=True) for ind, g in comp.groupby("indicator", sort=False)}
        results = DistrictResults(
            district_key=district.key,
            filter=flt,
            periods=periods,
            roads=None,
            road_stats=by_periods("road_period_stats"),
            group_stats=by_periods("group_period_stats"),
            comparisons=comparisons,
            distributions=of_filter("comparison_histogram"),
            braking=of_filter("braking_per_road"),
            hotspots=of_filter("braking_hotspots"),
            cut_through=of_filter("cut_through_summary"),
            cut_through_streets=of_filter("cut_through_streets"),
            resamples=int(r["resamples"]),
            seed=int(r["seed"]),
            min_vehicles=int(r["min_vehicles"]),
            threshold_g=float(r["threshold_g"]),
            braking_source=str(r["braking_source"]),
            radius_m=float(r["radius_m"]),
            computed_at=r["computed_at"].to_pydatetime(),
            network_current=True,
            monthly=monthly,
            placebo=of_filter("placebo_results"),
            pre_period=pre,
        )
        fingerprint = r["fingerprint"]
        _require_road_stats(results, district)
    finally:
        con.close()
    roads = assign_roles(
        load_roads(district.network_path, exclude_highway=district.exclude_highway),
        district.treated_roads,
        district.comparison_roads,
    )
    results.roads = with_road_names(roads, district.road_names)
    results.network_current = fingerprint == network_fingerprint(roads, results.radius_m)
    results.gates = load_gates(warehouse, district.key)
    results.screening = load_screening(warehouse, district.key)[1]
    return results


def load_group_stats(warehouse: str | Path, district_key: str) -> pd.DataFrame:
    """The stored group_period_stats (treated / comparison pooled) of every period of a district, in date order."""
    con = connect(warehouse, read_only=True)
    try:
        if not _current(con):
            return pd.DataFrame()
        return con.execute(
            "SELECT * FROM group_period_stats WHERE district = ? ORDER BY period_start, road_group", [district_key]
        ).df()
    except duckdb.CatalogException:
        return pd.DataFrame()
    finally:
        con.close()


def load_comparisons(
    warehouse: str | Path, district_key: str, filter_text: str | None = None
) -> dict[str, pd.DataFrame]:
    """The stored comparison_results of a district and filter (default: all points), per indicator."""
    con = connect(warehouse, read_only=True)
    try:
        if not _current(con):
            return {}
        df = con.execute(
            "SELECT * FROM comparison_results WHERE district = ? AND filter = ?",
            [district_key, filter_text or ALL_POINTS_FILTER],
        ).df()
    except duckdb.CatalogException:
        return {}
    finally:
        con.close()
    return {ind: g.reset_index(drop=True) for ind, g in df.groupby("indicator", sort=False)}


def load_placebo(warehouse: str | Path, district_key: str, filter_text: str | None = None) -> pd.DataFrame:
    """The stored placebo_results of a district and filter (default: all points); empty when none."""
    con = connect(warehouse, read_only=True)
    try:
        if not _current(con):
            return pd.DataFrame()
        return con.execute(
            "SELECT * FROM placebo_results WHERE district = ? AND filter = ? ORDER BY indicator, road_id",
            [district_key, filter_text or ALL_POINTS_FILTER],
        ).df()
    except duckdb.CatalogException:
        return pd.DataFrame()
    finally:
        con.close()


def load_road_period_stats(warehouse: str | Path, district_key: str) -> pd.DataFrame:
    """The latest stored road_period_stats of every period label of a district (or of an ad-hoc network,
    key 'roads:<file stem>'), in date order; empty when nothing is stored."""
    con = connect(warehouse, read_only=True)
    try:
        if not _current(con):
            return pd.DataFrame()
        return con.execute(
            """SELECT * FROM road_period_stats WHERE district = ?
               QUALIFY computed_at = max(computed_at) OVER (PARTITION BY period)
               ORDER BY period_start, period_end, period, road_id""",
            [district_key],
        ).df()
    except duckdb.CatalogException:
        return pd.DataFrame()
    finally:
        con.close()


def load_screening(
    warehouse: str | Path, district_key: str, area: str | None = None, period: tuple[dt.date, dt.date] | None = None
) -> tuple[pd.Series | None, pd.DataFrame]:
    """The latest stored screening of a network (district key or 'roads:<stem>'; of `area` and of
    the dates `period` = (start, end) when given): its screening_runs row and its screening_results
    rows in rank order. (None, empty) when none."""
    con = connect(warehouse, read_only=True)
    try:
        if not _current(con):
            return None, pd.DataFrame()
        where, params = "district = ?", [district_key]
        if area is not None:
            where, params = where + " AND area = ?", params + [area]
        if period is not None:
            where, params = where + " AND period_start = ? AND period_end = ?", params + list(period)
        run = con.execute(f"SELECT * FROM screening_runs WHERE {where} ORDER BY computed_at DESC LIMIT 1", params).df()
        if run.empty:
            return None, pd.DataFrame()
        r = run.iloc[0]
        rows = con.execute(
            "SELECT * FROM screening_results WHERE district = ? AND area = ? AND period_start = ? AND period_end = ? "
            "ORDER BY rank",
            [district_key, r["area"], r["period_start"], r["period_end"]],
        ).df()
        return r, rows
    except duckdb.CatalogException:
        return None, pd.DataFrame()
    finally:
        con.close()


def load_gates(warehouse: str | Path, district_key: str) -> dict[str, pd.DataFrame]:
    """The stored gates of a district and their results: {'gates': district_gates, 'summary':
    gate_class_summary, 'od': gate_od} (every period; empty frames when none)."""
    con = connect(warehouse, read_only=True)
    out = {}
    try:
        current = _current(con)
        for key, table, order in (
            ("gates", "district_gates", "gate_id"),
            ("summary", "gate_class_summary", "period_start, time_band, gate_class"),
            ("od", "gate_od", "period_start, time_band, n_trips DESC, entry_gate, exit_gate"),
        ):
            try:
                out[key] = con.execute(
                    f"SELECT * FROM {table} WHERE district = ? ORDER BY {order}", [district_key]
                ).df()
            except duckdb.CatalogException:
                out[key] = pd.DataFrame()
            if not current:  # computed under an earlier definition: not served
                out[key] = out[key].iloc[0:0]
    finally:
        con.close()
    return out
