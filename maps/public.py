"""What may be published: stored results with every figure from too few vehicles removed.

Every public output (map, report, sheet, export, map layers) starts from `public_results`, so one
rule applies to every number and every chart: a figure, a count, a histogram or a curve resting on
fewer than k = config.settings.PUBLIC_MIN_VEHICLES distinct vehicles is not published. The
engineers' tables in the warehouse keep those figures, flagged.

The rule cell by cell:
- road_period_stats / group_period_stats: a road (group) and period under k vehicles loses every
  figure and count (n_points, n_vehicles, n_passages, speeds, shares); column `public` says
  'ok', 'suppressed' or 'nodata' (no vehicle at all).
- comparison_results: a unit with fewer than k vehicles in either period loses before, after,
  change, the intervals (of the change and of both levels) and counts (flag 'suppressed'); the difference in
  differences goes with the treated or the comparison group.
- comparison_histogram (distributions): only units whose comparison is public.
- braking_per_road: nothing for a road and period under k vehicles; event counts and rates only
  when the events come from at least k vehicles (zero events on a public road is published).
- braking_hotspots: only cells whose events come from at least k vehicles.
- cut_through_summary: nothing when the trips come from fewer than k vehicles; the cut-through
  count and share only when the cut-through trips come from at least k vehicles.
- cut_through_streets: only streets whose cut-through trips come from at least k vehicles.
- gate_class_summary / gate_od (maps.public.public_gates): a class of a period and time band, or a
  gate pair of a class, under k vehicles has no figure; when a row (the classes of a band, the pairs
  of a class) holds one, its smallest public cell is withheld too, so no hidden cell can be had by
  subtraction from the total or the shares.
- screening_results (maps.public.public_screening, for the screening map): candidates under k
  vehicles are left out; braking and cut-through figures only from at least k vehicles; scores and
  points (relative to the best candidate) only when nothing is held back.
- monthly_series: a month under k vehicles loses its level, interval, counts and change (flag
  'suppressed'; 'nodata' without any vehicle); a unit whose after period has fewer than k vehicles loses the
  after level and the changes against it in every month.
- pre_period_series: the same rule, against the before period.
- placebo_results: only streets with at least k vehicles in both periods (placebo streets have at
  least the adequacy minimum anyway).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.results import DistrictResults
from config.settings import PUBLIC_MIN_VEHICLES

STATS_FIGURES = (
    "n_points",
    "n_vehicles",
    "n_passages",
    "mean_kmh",
    "p85_kmh",
    "share_at_or_over_limit",
    "share_at_or_over_limit_plus_10",
    "passage_mean_kmh",
    "passage_p85_kmh",
    "passage_share_at_or_over_limit",
    "passage_spot_mean_kmh",
)
COMPARISON_FIGURES = (
    "before",
    "after",
    "change",
    "ci_low",
    "ci_high",
    "n_before",
    "n_after",
    "n_vehicles_before",
    "n_vehicles_after",
    "before_ci_low",
    "before_ci_high",
    "after_ci_low",
    "after_ci_high",
)


@dataclass
class PublicResults(DistrictResults):
    """DistrictResults after `public_results`: safe to publish as they are."""

    public_min_vehicles: int = PUBLIC_MIN_VEHICLES


def _count(v) -> float:
    return 0.0 if v is None or pd.isna(v) else float(v)


def public_stats(stats: pd.DataFrame, k: int = PUBLIC_MIN_VEHICLES) -> pd.DataFrame:
    """road_period_stats / group_period_stats rows with figures under k vehicles blanked and a `public` column."""
    out = stats.copy()
    n = pd.to_numeric(out["n_vehicles"], errors="coerce").fillna(0) if len(out) else pd.Series(dtype=float)
    status = np.where(n <= 0, "nodata", np.where(n < k, "suppressed", "ok"))
    out["public"] = status if len(out) else pd.Series(dtype=object)
    for col in STATS_FIGURES:
        if col in out.columns:
            out[col] = out[col].astype(float).where(out["public"] == "ok")
    return out


def public_comparison(table: pd.DataFrame, k: int = PUBLIC_MIN_VEHICLES) -> pd.DataFrame:
    """Comparison rows fit for public outputs: a unit under k vehicles in either period keeps its unit
    and the flag 'suppressed', no figure."""
    out = table.copy()
    small = out[["n_vehicles_before", "n_vehicles_after"]].astype(float).fillna(0).min(axis=1) < k
    for col in COMPARISON_FIGURES:
        if col in out.columns:
            out[col] = out[col].astype(float).where(~small)
    out.loc[small, "flag"] = "suppressed"
    return out


def _vehicles_of(stats: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(period, road_id) → distinct vehicles on the road (stored, before suppression)."""
    return {
        (p, str(r)): _count(n) for p, r, n in zip(stats["period"], stats["road_id"], stats["n_vehicles"], strict=True)
    }


def public_braking(braking: pd.DataFrame, road_stats: pd.DataFrame, k: int = PUBLIC_MIN_VEHICLES) -> pd.DataFrame:
    """braking_per_road with a `public` column: 'ok', 'few_events' (events from 1..k−1 vehicles:
    no count, no rate), 'suppressed' (road under k vehicles: nothing) or 'nodata' (no passage)."""
    out = braking.copy()
    if out.empty:
        out["public"] = pd.Series(dtype=object)
        return out
    on_road = _vehicles_of(road_stats)
    status = []
    for period, road, passages, ev_vehicles, events in zip(
        out["period"], out["road_id"], out["n_passages"], out["n_vehicles"], out["n_events"], strict=True
    ):
        road_vehicles = on_road.get((period, str(road)), 0.0)
        if _count(passages) == 0 and road_vehicles == 0:
            status.append("nodata")
        elif road_vehicles < k:
            status.append("suppressed")
        elif _count(events) > 0 and _count(ev_vehicles) < k:
            status.append("few_events")
        else:
            status.append("ok")
    out["public"] = status
    ok = out["public"] == "ok"
    for col in ("n_events", "events_per_1000_passages", "n_vehicles"):
        out[col] = out[col].astype(float).where(ok)
    out["n_passages"] = out["n_passages"].astype(float).where(out["public"].isin(["ok", "few_events"]))
    return out


def public_cut_through(summary: pd.DataFrame, k: int = PUBLIC_MIN_VEHICLES) -> pd.DataFrame:
    """cut_through_summary with a `public` column: 'ok', 'few_cut_through' (trips public, cut-through
    count and share not) or 'suppressed' (trips from fewer than k vehicles: nothing)."""
    out = summary.copy()
    if out.empty:
        out["public"] = pd.Series(dtype=object)
        return out
    trips_ok = out["n_vehicles"].astype(float).fillna(0) >= k
    cut = out["n_vehicles_cut_through"].astype(float).fillna(0)
    cut_ok = trips_ok & ((cut >= k) | (out["n_cut_through"].astype(float).fillna(0) == 0))
    out["public"] = np.where(~trips_ok, "suppressed", np.where(cut_ok, "ok", "few_cut_through"))
    for col in ("n_trips", "n_vehicles"):
        out[col] = out[col].astype(float).where(trips_ok)
    for col in ("n_cut_through", "share_cut_through", "n_vehicles_cut_through"):
        out[col] = out[col].astype(float).where(cut_ok)
    return out


MONTHLY_FIGURES = (
    "value",
    "ci_low",
    "ci_high",
    "n",
    "n_vehicles",
    "change_vs_after",
    "change_ci_low",
    "change_ci_high",
)


AFTER_FIGURES = ("after_level", "change_vs_after", "change_ci_low", "change_ci_high")


def public_monthly(
    monthly: pd.DataFrame | None,
    k: int = PUBLIC_MIN_VEHICLES,
    small_after: set[tuple[str, str]] | frozenset = frozenset(),
) -> pd.DataFrame | None:
    """monthly_series rows with the months under k vehicles blanked (flag 'suppressed', or 'nodata' when the
    month has no vehicle at all), and the after
    level and the changes against it blanked for the (indicator, unit) pairs in `small_after` (their
    after period has fewer than k vehicles)."""
    if monthly is None or monthly.empty:
        return monthly
    out = monthly.copy()
    n = out["n_vehicles"].astype(float).fillna(0)
    small = n < k
    for col in MONTHLY_FIGURES:
        if col in out.columns:
            out[col] = out[col].astype(float).where(~small)
    out.loc[small, "flag"] = "suppressed"
    out.loc[n <= 0, "flag"] = "nodata"  # no vehicle at all: the month holds no point of the district (not delivered)
    if small_after:
        pairs = pd.Series(
            list(zip(out["indicator"].astype(str), out["unit"].astype(str), strict=True)), index=out.index
        )
        no_after = pairs.isin(set(small_after))
        for col in AFTER_FIGURES:
            if col in out.columns:
                out[col] = out[col].astype(float).where(~no_after)
    return out


def public_placebo(placebo: pd.DataFrame | None, k: int = PUBLIC_MIN_VEHICLES) -> pd.DataFrame | None:
    """placebo_results rows of streets with at least k distinct vehicles (in both periods)."""
    if placebo is None or placebo.empty:
        return placebo
    return placebo[placebo["n_vehicles"].astype(float).fillna(0) >= k].reset_index(drop=True)


def public_pre_period(
    pre: pd.DataFrame | None, k: int = PUBLIC_MIN_VEHICLES, comparisons: dict | None = None
) -> pd.DataFrame | None:
    """pre_period_series under the monthly rule (`public_monthly`), the before period in the after's place:
    a month under k vehicles is blanked, and the before level and changes of a unit whose before period
    has fewer than k vehicles."""
    if pre is None or pre.empty:
        return pre
    swap = {"before_level": "after_level", "change_vs_before": "change_vs_after"}
    small = {
        (ind, str(u))
        for ind, t in (comparisons or {}).items()
        for u, n in zip(t["unit"], t["n_vehicles_before"].astype(float).fillna(0), strict=True)
        if n < k
    }
    out = public_monthly(pre.rename(columns=swap), k, small)
    return out.rename(columns={v: key for key, v in swap.items()})


def complementary(n_trips, n_vehicles, k: int = PUBLIC_MIN_VEHICLES) -> np.ndarray:
    """Status of the cells of one table row whose total is known (or whose shares add up to 100 %):
    'ok', 'suppressed' (1..k−1 distinct vehicles) or 'withheld'. When a row holds a suppressed cell,
    its smallest public cell (by trips, ≥ k vehicles) is withheld too, so that the total minus the
    shown cells — the hidden cells together — always rests on at least k vehicles (a public cell's
    vehicles are among them). A cell without trips is published (0), unless no cell of the row is
    public: then the whole row is suppressed (its zeros would give the rest away)."""
    trips = np.asarray(n_trips, dtype=float)
    veh = np.nan_to_num(np.asarray(n_vehicles, dtype=float))
    status = np.where((veh > 0) & (veh < k), "suppressed", "ok").astype(object)
    if (status == "suppressed").any():
        public = np.flatnonzero((status == "ok") & (trips > 0))
        if len(public):
            status[public[np.argmin(trips[public])]] = "withheld"
        else:
            status[:] = "suppressed"
    return status


GATE_GROUPS = {
    "summary": ["district", "period_start", "period_end", "time_band"],
    "od": ["district", "period_start", "period_end", "time_band", "gate_class"],
}


def public_gates(gates: dict[str, pd.DataFrame] | None, k: int = PUBLIC_MIN_VEHICLES) -> dict[str, pd.DataFrame] | None:
    """The gate classification fit for publishing: {'gates': as stored (positions and names only),
    'summary': gate_class_summary, 'od': gate_od} with a `public` column per cell. Cells are rows of a
    group — the classes of one period and time band (their trips add up to the band's trips, their
    shares to 100 %), the gate pairs of one period, band and class (their trips add up to the class's
    trips) — and follow `complementary`: suppressed and withheld cells lose n_trips, share_trips and
    n_vehicles. The pairs of a class whose count is not published are withheld. Summary column
    `group_trips`: the band's trips, published only when a class of the band has at least k vehicles
    (NaN otherwise)."""
    if gates is None:
        return None
    out = {"gates": gates.get("gates", pd.DataFrame())}
    for key, by in GATE_GROUPS.items():
        t = gates.get(key, pd.DataFrame()).copy()
        if t.empty:
            t["public"] = pd.Series(dtype=object)
            out[key] = t
            continue
        t["public"] = "ok"
        if key == "summary":
            t["group_trips"] = np.nan
        for _, idx in t.groupby(by, sort=False, dropna=False).groups.items():
            t.loc[idx, "public"] = complementary(t.loc[idx, "n_trips"], t.loc[idx, "n_vehicles"], k)
            if key == "summary" and (t.loc[idx, "n_vehicles"].astype(float).fillna(0) >= k).any():
                t.loc[idx, "group_trips"] = float(t.loc[idx, "n_trips"].astype(float).sum())
        if key == "od" and not out["summary"].empty:
            # the pairs of a class whose own count is hidden are withheld: all of them shown would add up to it
            hidden = out["summary"].loc[out["summary"]["public"] != "ok", GATE_GROUPS["od"]]
            keys = set(map(tuple, hidden.astype(str).to_numpy()))
            inside = t[GATE_GROUPS["od"]].astype(str).apply(tuple, axis=1).isin(keys)
            t.loc[inside & (t["public"] == "ok"), "public"] = "withheld"
        for col in ("n_trips", "share_trips", "n_vehicles"):
            if col in t.columns:
                t[col] = t[col].astype(float).where(t["public"] == "ok")
        out[key] = t
    return out


SCREENING_SCORE_COLUMNS = (
    "score",
    "score_ci_low",
    "score_ci_high",
    "points_share",
    "points_share_plus_10",
    "points_p85",
    "points_braking",
    "points_cut_through",
    "points_volume",
)


def public_screening(rows: pd.DataFrame, k: int = PUBLIC_MIN_VEHICLES) -> tuple[pd.DataFrame, dict]:
    """Screening candidates (screening_results rows, by rank) fit for publishing, and what was held back.

    - A candidate with fewer than k distinct vehicles (possible when `screen --min-vehicles` went
      below k) is not published at all: no row, no geometry highlighted.
    - Braking events and their rate only when the events come from at least k vehicles (none is
      published as 0); the cut-through count and share only when the cut-through trips come from at
      least k vehicles (none: 0), with the trips they are a share of.
    - Scores, their intervals and the points of each component are relative to the best candidate
      and add up: they are published only when nothing of any candidate is held back; otherwise
      every candidate keeps its rank (the ordering) and its public components, no score.

    Returns (rows with `braking_public` and `cut_through_public` flags, {'n_hidden': candidates not
    published, 'scores_public': bool, 'k': k})."""
    if rows is None or rows.empty:
        return pd.DataFrame(columns=getattr(rows, "columns", [])), {"n_hidden": 0, "scores_public": False, "k": k}
    veh = rows["n_vehicles"].astype(float).fillna(0)
    out = rows[veh >= k].copy()
    n_hidden = int((veh < k).sum())

    def ok(events: str, vehicles: str) -> pd.Series:
        e = out[events].astype(float).fillna(0)
        if vehicles not in out:  # a run stored before the vehicles were: only zeros are safe
            return e == 0
        return (e == 0) | (out[vehicles].astype(float).fillna(0) >= k)

    out["braking_public"] = ok("n_braking_events", "n_braking_vehicles")
    out["cut_through_public"] = ok("n_cut_through", "n_cut_through_vehicles")
    for col in ("n_braking_events", "braking_per_1000_passages", "n_braking_vehicles"):
        if col in out:
            out[col] = out[col].astype(float).where(out["braking_public"])
    for col in ("n_cut_through", "cut_through_share", "n_trips", "n_cut_through_vehicles"):
        if col in out:
            out[col] = out[col].astype(float).where(out["cut_through_public"])
    scores_public = n_hidden == 0 and bool(out["braking_public"].all() and out["cut_through_public"].all())
    if not scores_public:
        for col in SCREENING_SCORE_COLUMNS:
            if col in out:
                out[col] = np.nan
    return out.reset_index(drop=True), {"n_hidden": n_hidden, "scores_public": scores_public, "k": k}


def public_results(results: DistrictResults, k: int = PUBLIC_MIN_VEHICLES) -> PublicResults:
    """A copy of `results` holding only what may be published (see the module docstring)."""
    if isinstance(results, PublicResults) and results.public_min_vehicles == k:
        return results
    if k < 1:
        raise ValueError(f"the publication threshold must be at least 1 vehicle, got {k}")
    comparisons = {ind: public_comparison(t, k) for ind, t in results.comparisons.items()}
    public_units = set()
    for t in comparisons.values():
        public_units |= set(t.loc[t["flag"] != "suppressed", "unit"].astype(str))
    for t in comparisons.values():  # a unit is public only if it is public under every indicator
        public_units -= set(t.loc[t["flag"] == "suppressed", "unit"].astype(str))
    dist = results.distributions
    hs = results.hotspots
    cs = results.cut_through_streets
    fields = {f.name: getattr(results, f.name) for f in dataclasses.fields(DistrictResults)}
    fields.update(
        road_stats=public_stats(results.road_stats, k),
        group_stats=public_stats(results.group_stats, k),
        comparisons=comparisons,
        distributions=dist[dist["unit"].astype(str).isin(public_units)].reset_index(drop=True) if len(dist) else dist,
        braking=public_braking(results.braking, results.road_stats, k),
        hotspots=hs[hs["n_vehicles"].astype(float) >= k].reset_index(drop=True) if len(hs) else hs,
        cut_through=public_cut_through(results.cut_through, k),
        cut_through_streets=cs[cs["n_vehicles_cut_through"].astype(float) >= k].reset_index(drop=True)
        if len(cs)
        else cs,
        gates=public_gates(getattr(results, "gates", None), k),
        placebo=public_placebo(getattr(results, "placebo", None), k),
        pre_period=public_pre_period(getattr(results, "pre_period", None), k, results.comparisons),
        monthly=public_monthly(
            getattr(results, "monthly", None),
            k,
            {
                (ind, str(u))
                for ind, t in results.comparisons.items()
                for u, n in zip(t["unit"], t["n_vehicles_after"].astype(float).fillna(0), strict=True)
                if n < k
            },
        ),
    )
    return PublicResults(**fields, public_min_vehicles=k)
