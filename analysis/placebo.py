"""Placebo streets: is the treated street's change unusual among the district's untreated streets?

The bootstrap intervals of `analysis.bootstrap` hold vehicle sampling only; streets also vary from
period to period on their own. The placebo (permutation) check runs the same difference in
differences — the street's change minus the comparison streets' pooled change, the same comparison
streets — on every untreated residential street of the district with enough vehicles, and ranks the
treated street among them (in-space placebos: Abadie, Diamond & Hainmueller 2010; inference with
few treated units: Conley & Taber 2011; docs/statistics.md).

Placebo streets
    Every road of the network with a limit <= RESIDENTIAL_MAX_LIMIT_KMH that is neither treated nor
    a comparison street (a comparison street against a pool holding itself would be biased towards
    zero), with at least `min_vehicles` distinct vehicles in both periods.

Rank and p
    rank = 1 + the number of placebo DiDs at or below the treated DiD (1 = the largest fall; ties
    count against the treated street), p = rank / (n + 1) with n placebo streets: the share of all
    n + 1 streets whose DiD is at least as low, the one-sided permutation p-value. With n >= 9 the
    smallest possible p is 0.1, hence PLACEBO_MIN_STREETS = 9 and PLACEBO_MAX_P = 0.1.

Spread
    The placebo DiDs' central 95 % range (np.quantile, linear) against the width of the treated
    DiD's bootstrap interval: wider means street-to-street variation exceeds vehicle sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.bootstrap import SAMPLE_COUNT, point_indicators
from config.settings import (
    CONFIDENCE,
    PASSAGE_INDICATORS,
    PLACEBO_MAX_P,
    PLACEBO_MIN_STREETS,
    RESIDENTIAL_MAX_LIMIT_KMH,
)
from geo.aggregate import speed_bin_kmh

PLACEBO_COLUMNS = ["indicator", "road_id", "did", "n_vehicles", "before", "after"]


def placebo_candidates(roads, points: pd.DataFrame, min_vehicles: int) -> list[str]:
    """Untreated residential roads (not treated, not comparison) with at least `min_vehicles`
    distinct vehicles among their points in both periods; points: unit, period, vehicle."""
    residential = roads["limit_kmh"].to_numpy(float) <= RESIDENTIAL_MAX_LIMIT_KMH
    untreated = ~roads["role"].isin(["treated", "comparison"]).to_numpy()
    ids = set(roads.loc[residential & untreated, "road_id"].astype(str))
    on = points[points["unit"].astype(str).isin(ids)]
    n = on.groupby(["unit", "period"])["vehicle"].nunique().unstack("period")
    if n.empty or not {"before", "after"} <= set(n.columns):
        return []
    enough = (n["before"].fillna(0) >= min_vehicles) & (n["after"].fillna(0) >= min_vehicles)
    return sorted(str(u) for u in n.index[enough])


def _street_levels(samples: pd.DataFrame, candidates: list[str], grouped: bool) -> dict:
    """{(road, period): (point_indicators of its samples, distinct vehicles)} for the candidate roads;
    grouped: points (the grouped-data p85 of the recorded whole km/h), else passages."""
    s = samples[samples["unit"].astype(str).isin(candidates)]
    out = {}
    for (unit, period), g in s.groupby([s["unit"].astype(str), "period"], sort=False):
        speed = g["speed_kmh"].to_numpy(float)
        bins = speed_bin_kmh(speed) if grouped else None
        n = g[SAMPLE_COUNT].to_numpy(float) if SAMPLE_COUNT in g.columns else None
        out[unit, period] = (point_indicators(speed, g["limit_kmh"].to_numpy(float), bins, n), g["vehicle"].nunique())
    return out


def placebo_dids(
    points: pd.DataFrame,
    passages: pd.DataFrame | None,
    candidates: list[str],
    comparisons: dict[str, pd.DataFrame],
) -> pd.DataFrame:
    """Each candidate street's difference in differences for every indicator of `comparisons`
    (compare_periods_all's tables: their `control` row gives the comparison streets' change).

    points / passages: bootstrap samples of both periods (unit, period, vehicle, speed_kmh,
    limit_kmh; points may stand for n_points identical points each, SAMPLE_COUNT).
    Returns PLACEBO_COLUMNS: did = (after - before on the street) - control change;
    n_vehicles the smaller of the street's two periods' distinct vehicles.
    """
    levels = {False: _street_levels(points, candidates, grouped=True)}
    if passages is not None:
        levels[True] = _street_levels(passages, candidates, grouped=False)
    empty = ({}, 0)
    rows = []
    for ind, table in comparisons.items():
        control = table.set_index(table["unit"].astype(str))
        passage = ind in PASSAGE_INDICATORS
        if passage not in levels or "control" not in control.index:
            continue
        c_change, key = control.at["control", "change"], ind.removeprefix("passage_")
        for road in candidates:
            (b, nb), (a, na) = (levels[passage].get((road, p), empty) for p in ("before", "after"))
            if key in b and key in a and np.isfinite(c_change):
                rows.append((ind, road, a[key] - b[key] - c_change, min(nb, na), b[key], a[key]))
    return pd.DataFrame(rows, columns=PLACEBO_COLUMNS)


@dataclass(frozen=True)
class PlaceboSummary:
    """The treated street among the placebo streets, for one indicator (`placebo_summary`)."""

    n: int  # placebo streets
    rank: int  # 1 = the treated street's DiD is the largest fall
    p: float  # rank / (n + 1)
    in_rule: bool  # n >= PLACEBO_MIN_STREETS: the headline's rule uses p
    passes: bool  # in the rule and p <= PLACEBO_MAX_P (False when not in the rule)
    spread_low: float  # central 95 % range of the placebo DiDs (NaN without placebo streets)
    spread_high: float
    wider_than_interval: bool  # that range is wider than the treated DiD's bootstrap interval
    larger_changes: tuple[tuple[str, float], ...]  # (road_id, did) of untreated streets with |did| >= the treated's


def placebo_rank(treated_did: float, dids) -> tuple[int, float]:
    """(rank, p) of the treated DiD among placebo DiDs: rank = 1 + #(placebo <= treated), p = rank / (n + 1)."""
    dids = np.asarray(dids, dtype=float)
    dids = dids[np.isfinite(dids)]
    rank = 1 + int((dids <= treated_did).sum())
    return rank, rank / (len(dids) + 1)


def placebo_summary(comparison: pd.DataFrame, placebo: pd.DataFrame, indicator: str) -> PlaceboSummary | None:
    """The treated street's rank among the placebo streets of `indicator`, from a comparison table
    (its `did` row) and placebo_results rows; None without a DiD."""
    t = comparison.set_index(comparison["unit"].astype(str))
    if "did" not in t.index or not np.isfinite(t.at["did", "change"]):
        return None
    d = t.loc["did"]
    rows = placebo[placebo["indicator"] == indicator] if len(placebo) else placebo
    dids = rows["did"].to_numpy(float) if len(rows) else np.zeros(0)
    ok = np.isfinite(dids)
    rank, p = placebo_rank(float(d["change"]), dids[ok])
    n = int(ok.sum())
    alpha = (1 - CONFIDENCE) / 2
    low, high = (float(np.quantile(dids[ok], x)) for x in (alpha, 1 - alpha)) if n else (np.nan, np.nan)
    wider = bool(n and np.isfinite(d["ci_low"]) and high - low > d["ci_high"] - d["ci_low"])
    larger = rows[ok & (np.abs(dids) >= abs(float(d["change"])))] if n else rows
    in_rule = n >= PLACEBO_MIN_STREETS
    return PlaceboSummary(
        n=n,
        rank=rank,
        p=p,
        in_rule=in_rule,
        passes=in_rule and p <= PLACEBO_MAX_P,
        spread_low=low,
        spread_high=high,
        wider_than_interval=wider,
        larger_changes=tuple(
            sorted(
                ((str(r), float(x)) for r, x in zip(larger["road_id"], larger["did"], strict=True)), key=lambda z: z[1]
            )
        ),
    )


def placebo_rows(comparison: pd.DataFrame, placebo: pd.DataFrame, indicator: str) -> pd.DataFrame:
    """The two rows `compare` adds to its table: unit placebo_rank (change = the rank, 1 = the largest
    fall) and placebo_p (change = rank / (n + 1)); flag few_placebo below PLACEBO_MIN_STREETS."""
    s = placebo_summary(comparison, placebo, indicator)
    if s is None:
        return pd.DataFrame(columns=comparison.columns)
    flag = "" if s.in_rule else "few_placebo"
    return pd.DataFrame(
        [
            {"unit": "placebo_rank", "indicator": indicator, "change": float(s.rank), "flag": flag},
            {"unit": "placebo_p", "indicator": indicator, "change": s.p, "flag": flag},
        ]
    ).reindex(columns=comparison.columns)
