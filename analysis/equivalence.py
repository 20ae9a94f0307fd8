"""Is the effect lasting? An equivalence verdict on the monthly difference in differences.

"Still at the after level" is a claim of no change, and an interval that contains zero is only an
absence of evidence (a thin month would hold by default). The verdict is an equivalence test
(two one-sided tests, Schuirmann 1987) on the month's difference in differences against the after
period — the treated street's change minus the comparison streets' change, so that a season or a
city-wide drift common to both cancels (docs/statistics.md):

    holding       the month's 95 % DiD interval lies within (-margin, +margin)
    rising        the interval lies above +margin in this month and in the month before
    falling       the interval lies below -margin in this month and in the month before
    inconclusive  otherwise (a thin month, a wide interval, a first month beyond the margin)
    unknown       no interval stored for the month

The 95 % interval within the margin is the two one-sided tests at the 2.5 % level each (stricter
than the usual 5 %). Requiring two consecutive calendar months beyond the margin keeps the false
alarms of a stable street over a year of monthly looks low. Margins: EQUIVALENCE_MARGIN_KMH (1 km/h)
for speeds, EQUIVALENCE_MARGIN_POINTS (3 percentage points) for shares.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from config.settings import EQUIVALENCE_MARGIN_KMH, EQUIVALENCE_MARGIN_POINTS

STATES = ("holding", "rising", "falling", "inconclusive", "unknown")


def equivalence_margin(indicator: str) -> float:
    """The margin in the indicator's stored unit: km/h for speeds, a fraction (0-1) for shares."""
    return EQUIVALENCE_MARGIN_POINTS / 100.0 if "share" in indicator else EQUIVALENCE_MARGIN_KMH


def interval_side(low: float, high: float, margin: float) -> str:
    """Where an interval lies against ±margin: 'within', 'above', 'below', 'across' or 'none' (NaN)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "none"
    if -margin < low and high < margin:
        return "within"
    if low > margin:
        return "above"
    if high < -margin:
        return "below"
    return "across"


def _consecutive(a, b) -> bool:
    """Whether month b is the calendar month right after month a (dates or timestamps of any day)."""
    return (b.year * 12 + b.month) - (a.year * 12 + a.month) == 1


def month_state(side: str, previous_side: str | None) -> str:
    """The verdict of a month from where its DiD interval lies and where the previous calendar month's
    did (None when that month is not in the series)."""
    if side == "none":
        return "unknown"
    if side == "within":
        return "holding"
    if side in ("above", "below") and previous_side == side:
        return "rising" if side == "above" else "falling"
    return "inconclusive"


def series_states(did: pd.DataFrame, margin: float) -> list[str]:
    """The verdict of every month of one indicator's DiD rows (month, change_ci_low, change_ci_high), in
    month order: what the headline would have said when each month arrived."""
    did = did.sort_values("month")
    sides = [interval_side(lo, hi, margin) for lo, hi in zip(did["change_ci_low"], did["change_ci_high"], strict=True)]
    months = list(did["month"])
    states = []
    for i, side in enumerate(sides):
        previous = sides[i - 1] if i and _consecutive(months[i - 1], months[i]) else None
        states.append(month_state(side, previous))
    return states


def equivalence_verdict(series: pd.DataFrame, indicator: str = "p85") -> dict | None:
    """The latest month's verdict (see the module docstring) from monthly_series rows of `indicator`:
    its did row decides; its treated row gives the level and change shown beside it. None without a month.

    Returns month, state, margin, did, did_ci_low, did_ci_high, previous_month (or None), and the
    treated street's value, after_level, change, ci_low, ci_high (its own change and interval)."""
    s = series[series["indicator"] == indicator]
    treated = s[s["unit"] == "treated"].sort_values("month")
    if treated.empty:
        return None
    t = treated.iloc[-1]
    did = s[s["unit"] == "did"].sort_values("month")
    did = did[did["month"] <= t["month"]]
    margin = equivalence_margin(indicator)
    if did.empty or did.iloc[-1]["month"] != t["month"]:
        state, d, previous = "unknown", None, None
    else:
        state, d = series_states(did, margin)[-1], did.iloc[-1]
        previous = did.iloc[-2]["month"] if len(did) > 1 and _consecutive(did.iloc[-2]["month"], t["month"]) else None
    nan = float("nan")
    return {
        "month": t["month"],
        "state": state,
        "margin": margin,
        "did": nan if d is None else d["change_vs_after"],
        "did_ci_low": nan if d is None else d["change_ci_low"],
        "did_ci_high": nan if d is None else d["change_ci_high"],
        "previous_month": previous,
        "value": t["value"],
        "after_level": t["after_level"],
        "change": t["change_vs_after"],
        "ci_low": t["change_ci_low"],
        "ci_high": t["change_ci_high"],
    }
