"""Monitoring's equivalence verdict: "holding" only when the month's DiD interval lies
within ±margin; "rising"/"falling" only when beyond it two months running; "inconclusive" otherwise.
Simulated: a stable street with seasonal drift gives few false alarms over a year, a decay is detected."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analysis.bootstrap import compare_periods_all
from analysis.equivalence import equivalence_margin, equivalence_verdict, interval_side, month_state, series_states

MONTHS = [dt.date(2024, m, 1) for m in range(1, 13)]


def did_rows(intervals, months=MONTHS, indicator="p85"):
    """monthly_series rows: a did row and a treated row per month with the given DiD intervals."""
    rows = []
    for month, (lo, hi) in zip(months, intervals, strict=False):
        mid = (lo + hi) / 2
        rows.append(dict(month=month, indicator=indicator, unit="did", value=np.nan, change_vs_after=mid,
                         change_ci_low=lo, change_ci_high=hi, after_level=np.nan))  # fmt: skip
        rows.append(dict(month=month, indicator=indicator, unit="treated", value=25 + mid, change_vs_after=mid,
                         change_ci_low=lo - 0.5, change_ci_high=hi + 0.5, after_level=25.0))  # fmt: skip
    return pd.DataFrame(rows)


def test_margins_are_the_settings_in_stored_units():
    assert equivalence_margin("p85") == 1.0 and equivalence_margin("passage_mean") == 1.0
    assert equivalence_margin("passage_share") == pytest.approx(0.03)


@pytest.mark.parametrize(
    "low, high, side",
    [(-0.5, 0.6, "within"), (-1.2, 0.3, "across"), (1.1, 2.0, "above"), (-3.0, -1.01, "below"), (np.nan, 1, "none")],
)
def test_interval_side(low, high, side):
    assert interval_side(low, high, 1.0) == side


def test_states_of_a_series():
    # within; wide (thin month); above once; above again (rising); back within; below, gap, below (not consecutive)
    intervals = [(-0.4, 0.5), (-2.5, 2.0), (1.2, 2.4), (1.5, 2.9), (-0.2, 0.7), (-2.5, -1.3)]
    rows = did_rows(intervals)
    assert series_states(rows[rows["unit"] == "did"], 1.0) == [
        "holding",
        "inconclusive",  # a thin month does not hold by default
        "inconclusive",  # one month beyond the margin is not yet a rise
        "rising",
        "holding",
        "inconclusive",
    ]
    gap = did_rows([(-2.5, -1.3), (-2.6, -1.2)], months=[dt.date(2024, 1, 1), dt.date(2024, 3, 1)])
    assert series_states(gap[gap["unit"] == "did"], 1.0) == ["inconclusive", "inconclusive"]
    assert month_state("below", "below") == "falling" and month_state("none", "above") == "unknown"


def test_verdict_of_the_latest_month_uses_the_did_row():
    v = equivalence_verdict(did_rows([(-0.4, 0.5), (1.2, 2.4), (1.5, 2.9)]), "p85")
    assert v["state"] == "rising" and v["month"] == MONTHS[2] and v["previous_month"] == MONTHS[1]
    assert (v["did_ci_low"], v["did_ci_high"]) == (1.5, 2.9) and v["after_level"] == 25.0
    # the treated street's own interval excluding zero is not enough: the DiD decides
    assert equivalence_verdict(did_rows([(-0.3, 0.4)]), "p85")["state"] == "holding"
    no_did = did_rows([(-0.3, 0.4)])
    assert equivalence_verdict(no_did[no_did["unit"] == "treated"], "p85")["state"] == "unknown"
    assert equivalence_verdict(no_did.iloc[0:0], "p85") is None


# --- simulation ----------------------------------------------------------------------------------


def month_points(rng, level, *, n_vehicles, treated_shift, season):
    """One month's rounded point speeds of a fleet with persistent vehicle levels: a random 60 % of the
    vehicles drive, 1-4 points each on the treated road T (+treated_shift) and the comparison road C;
    `season` moves both roads alike (km/h)."""
    rows = []
    for v in np.flatnonzero(rng.random(n_vehicles) < 0.6):
        for unit, base in (("T", 24.0 + treated_shift), ("C", 27.0)):
            speeds = np.round(base + season + level[v] + rng.normal(0, 3, rng.integers(1, 5)))
            rows.extend((unit, f"v{v}", s, 30.0) for s in speeds)
    return pd.DataFrame(rows, columns=["unit", "vehicle", "speed_kmh", "limit_kmh"])


def simulate_series(seed, *, decay_from=None, decay_kmh=3.0, months=12, n_vehicles=1500, resamples=200):
    """Monthly DiD and treated-change intervals against a fixed after period, as analysis.monitoring
    computes them (compare_periods_all: the after period labelled 'before', the month 'after')."""
    rng = np.random.default_rng(seed)
    level = rng.normal(0, 4, n_vehicles)
    ref = month_points(rng, level, n_vehicles=n_vehicles, treated_shift=0.0, season=0.0).assign(period="before")
    rows = []
    for i in range(months):
        season = 1.5 * np.sin(2 * np.pi * i / 12)  # the same seasonal swing on every street
        shift = decay_kmh if decay_from is not None and i >= decay_from else 0.0
        cur = month_points(rng, level, n_vehicles=n_vehicles, treated_shift=shift, season=season)
        out = compare_periods_all(
            pd.concat([ref, cur.assign(period="after")], ignore_index=True),
            treated=["T"],
            control=["C"],
            indicators=("p85",),
            resamples=resamples,
            seed=seed * 100 + i,
        )["p85"].set_index("unit")
        for unit in ("treated", "did"):
            r = out.loc[unit]
            change = {"change_vs_after": r["change"], "change_ci_low": r["ci_low"], "change_ci_high": r["ci_high"]}
            rows.append(
                dict(month=MONTHS[i], indicator="p85", unit=unit, value=r["after"], after_level=r["before"], **change)
            )
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_stable_street_with_seasonal_drift_gives_few_false_alarms_and_a_decay_is_detected():
    """A stable treated street whose speeds follow the season like every street's: over 12 monthly looks
    the equivalence verdict says rising/falling in at most 5 % of simulated years, where the old rule
    (the treated street's own change interval excludes 0) alarms in most of them. A decay of +3 km/h on
    the treated street alone from month 7 is called rising by month 9 in at least 90 % of years."""
    runs, alarms, old_alarms, detected = 30, 0, 0, 0
    margin = equivalence_margin("p85")
    for seed in range(runs):
        s = simulate_series(1000 + seed)
        states = series_states(s[s["unit"] == "did"], margin)
        alarms += any(x in ("rising", "falling") for x in states)
        t = s[s["unit"] == "treated"]
        old_alarms += bool(((t["change_ci_low"] > 0) | (t["change_ci_high"] < 0)).any())
        d = simulate_series(5000 + seed, decay_from=6)
        detected += "rising" in series_states(d[d["unit"] == "did"], margin)[6:9]
    assert alarms / runs <= 0.05, alarms
    assert old_alarms / runs >= 0.5, old_alarms  # the simulation has teeth: the season fools the old rule
    assert detected / runs >= 0.9, detected
