"""Placebo streets: the treated street's difference in differences ranked among the
same DiD on every untreated residential street. Rank and p by hand; calibrated under the null in a
simulation (p <= 0.1 about one time in ten); an effect ranks first; the report and compare say it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.bootstrap import compare_periods_all
from analysis.placebo import placebo_candidates, placebo_dids, placebo_rank, placebo_rows, placebo_summary
from conftest import grouped_percentile


def test_rank_and_p_by_hand():
    # treated -2.0 among -1, 0.5, -3 and a tie at -2.0: at or below it are -3 and -2.0 -> rank 3 of 5
    assert placebo_rank(-2.0, [-1.0, 0.5, -3.0, -2.0]) == (3, 3 / 5)
    assert placebo_rank(-9.0, [-1.0, 0.5, -3.0]) == (1, 0.25)
    assert placebo_rank(-9.0, []) == (1, 1.0)
    assert placebo_rank(0.0, [np.nan, -1.0]) == (2, 2 / 2)  # NaN placebo DiDs are not streets


def district_points(rng, *, n_streets=11, n_vehicles=60, effect=0.0, street_sd=1.7):
    """Rounded point speeds of vehicles on treated T, comparison C1, C2 and untreated residential
    streets R0..; every street has its own period-to-period change (sd `street_sd`, km/h): the
    variation the bootstrap over vehicles does not hold. T also changes by `effect`."""
    streets = ["T", "C1", "C2", *(f"R{i}" for i in range(n_streets - 3))]
    change = dict(zip(streets, rng.normal(0, street_sd, len(streets)), strict=True))
    change["T"] += effect
    base = dict(zip(streets, rng.normal(28, 2, len(streets)), strict=True))
    level = rng.normal(0, 3, n_vehicles)
    rows = []
    for period in ("before", "after"):
        for street in streets:
            shift = change[street] if period == "after" else 0.0
            for v in range(n_vehicles):
                speeds = np.round(base[street] + shift + level[v] + rng.normal(0, 3, rng.integers(1, 3)))
                rows.extend((street, period, f"v{v}", s, 30.0) for s in speeds)
    pts = pd.DataFrame(rows, columns=["unit", "period", "vehicle", "speed_kmh", "limit_kmh"])
    roads = pd.DataFrame(
        {
            "road_id": streets,
            "role": ["treated", "comparison", "comparison", *(["other"] * (n_streets - 3))],
            "limit_kmh": 30.0,
        }
    )
    return pts, roads


def placebo_of(pts, roads, indicator="p85"):
    comp = compare_periods_all(pts, treated=["T"], control=["C1", "C2"], indicators=(indicator,), resamples=10)
    placebo = placebo_dids(pts, None, placebo_candidates(roads, pts, 50), comp)
    return comp, placebo


def test_placebo_did_is_the_same_did_on_each_untreated_street():
    """Each placebo DiD equals the street's own grouped-percentile change minus the pooled comparison
    change, computed here from the raw speeds; comparison streets are not placebo streets."""
    pts, roads = district_points(np.random.default_rng(1), n_streets=6)
    comp, placebo = placebo_of(pts, roads)
    assert sorted(placebo["road_id"]) == ["R0", "R1", "R2"]
    sp = lambda u, p: pts[(pts["unit"].isin(u)) & (pts["period"] == p)]["speed_kmh"]  # noqa: E731
    control = grouped_percentile(sp(["C1", "C2"], "after")) - grouped_percentile(sp(["C1", "C2"], "before"))
    for r in placebo.itertuples():
        own = grouped_percentile(sp([r.road_id], "after")) - grouped_percentile(sp([r.road_id], "before"))
        assert r.did == pytest.approx(own - control)
        assert r.n_vehicles == 60 and r.before == pytest.approx(grouped_percentile(sp([r.road_id], "before")))
    # too few vehicles: no placebo street
    assert placebo_candidates(roads, pts, 61) == []


@pytest.mark.slow
def test_placebo_p_is_calibrated_under_the_null_and_small_with_an_effect():
    """Streets exchangeable, no effect: p <= 0.1 (the treated street ranks first among 10 with 9 placebo
    streets) in about 10 % of simulated districts; with an effect of -8 km/h the treated street ranks
    first (p = 0.1) in nearly all — though its bootstrap interval alone would already exclude zero
    in many null districts (the street-to-street variation it leaves out)."""
    runs, small_p, excluded, first = 200, 0, 0, 0
    for i in range(runs):
        pts, roads = district_points(np.random.default_rng(100 + i), n_streets=12, n_vehicles=60)
        comp = compare_periods_all(pts, treated=["T"], control=["C1", "C2"], indicators=("p85",), resamples=200)
        placebo = placebo_dids(pts, None, placebo_candidates(roads, pts, 50), comp)
        s = placebo_summary(comp["p85"], placebo, "p85")
        assert s.n == 9 and s.in_rule
        small_p += s.p <= 0.1
        d = comp["p85"].set_index("unit").loc["did"]
        excluded += d["ci_high"] < 0 or d["ci_low"] > 0
        if i < 50:
            pts_e, roads_e = district_points(np.random.default_rng(100 + i), n_streets=12, effect=-8.0)
            comp_e, placebo_e = placebo_of(pts_e, roads_e)
            first += placebo_summary(comp_e["p85"], placebo_e, "p85").rank == 1
    assert 0.05 <= small_p / runs <= 0.16, small_p
    assert excluded / runs >= 0.3, excluded  # the bootstrap alone is fooled by street-to-street variation
    assert first >= 45, first


def test_summary_spread_spill_over_and_compare_rows():
    comp = pd.DataFrame(
        {
            "unit": ["T", "C", "treated", "control", "did"],
            "indicator": "p85",
            "change": [-7.0, 0.5, -7.0, 0.5, -7.5],
            "ci_low": [-7.5, -0.2, -7.5, -0.2, -8.3],
            "ci_high": [-6.5, 1.1, -6.5, 1.1, -6.6],
            "flag": "",
        }
    )
    dids = [-8.0, -1.2, 0.3, 2.5, -0.4, 1.1, -2.2, 0.9, 3.9, -3.1]
    placebo = pd.DataFrame({"indicator": "p85", "road_id": [f"R{i}" for i in range(10)], "did": dids})
    s = placebo_summary(comp, placebo, "p85")
    assert (s.n, s.rank, s.p) == (10, 2, 2 / 11) and s.in_rule and not s.passes
    assert (s.spread_low, s.spread_high) == pytest.approx(np.quantile(dids, [0.025, 0.975]))
    assert s.wider_than_interval  # about 10 km/h against the DiD interval's 1.7
    assert s.larger_changes == (("R0", -8.0),)  # |DiD| at least the treated street's 7.5: maybe spill-over
    rows = placebo_rows(comp, placebo, "p85").set_index("unit")
    assert rows.loc["placebo_rank", "change"] == 2 and rows.loc["placebo_p", "change"] == pytest.approx(2 / 11)
    assert list(rows.reset_index().columns) == list(comp.columns)
    few = placebo_summary(comp, placebo.head(5), "p85")
    assert (
        not few.in_rule
        and not few.passes
        and placebo_rows(comp, placebo.head(5), "p85")["flag"].eq("few_placebo").all()
    )
