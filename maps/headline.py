"""The headline: one short answer and two or three sentences, generated from the stored results.

It states the treated street's speed before and after with the change and its 95 % interval, what
the comparison streets did, the share of vehicles at or over the limit, and where the treated
street ranks among the district's untreated residential streets (placebo streets). It claims an
effect only when the evidence holds: the treated street's interval lies below zero, the difference
in differences (treated change − comparison change) lies below zero too, neither interval is
degenerate, both groups have at least the adequate number of vehicles (flag not 'low_sample'), and,
with at least PLACEBO_MIN_STREETS placebo streets, the placebo p (rank / (n + 1)) is at most
PLACEBO_MAX_P. With fewer placebo streets the rank is stated and left out of the rule. Otherwise it
says why it cannot. Every number is a stored number (comparison_results, placebo_results), rounded
once by maps.wording.

When the district has monitoring months (monthly_series, after its last named period), a last
sentence says whether the latest month (with data) is still at the after level: the equivalence
verdict on the month's difference in differences (analysis.equivalence via analysis.monitoring.
latest_month_verdict on the public series: holding within ±margin, rising / falling beyond it two
months running, inconclusive otherwise); a latest month under the publication threshold says so,
without a number. Without any month, nothing is said.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

import maps.wording as w
from analysis.monitoring import latest_month_verdict
from analysis.placebo import PlaceboSummary, placebo_summary
from config.districts import District
from config.settings import HEADLINE_SHARE_INDICATOR, NO_CHANGE_KMH, NO_CHANGE_POINTS, PLACEBO_MIN_STREETS
from maps.public import PublicResults

# The verdicts, from the clearest answer to no answer.
VERDICTS = ("effect", "increase", "unclear", "low_sample", "no_comparison", "suppressed", "no_data")


# Is the effect lasting? The latest monitoring month against the after level (None: no month).
MONITORING_STATES = ("holding", "rising", "falling", "inconclusive", "suppressed", "unknown")


@dataclass(frozen=True)
class Headline:
    verdict: str  # one of VERDICTS
    lead: dict[str, str]  # lang → the short answer
    details: dict[str, list[str]]  # lang → the sentences with the figures
    monitoring: str | None = None  # one of MONITORING_STATES, None without a monitoring month

    def text(self, lang: str = "ja") -> str:
        """The whole headline as one line of text (lead, then the details)."""
        sep = " " if lang == "en" else ""
        return sep.join([self.lead[lang], *self.details[lang]])


def _row(results: PublicResults, indicator: str, unit: str):
    t = results.comparisons.get(indicator)
    if t is None or unit not in set(t["unit"].astype(str)):
        return None
    return t.set_index(t["unit"].astype(str)).loc[unit]


def _crosses_zero(row) -> bool:
    return w.is_missing(row["ci_low"]) or row["ci_low"] <= 0 <= row["ci_high"]


def _limits(results: PublicResults) -> set[int]:
    roads = results.roads
    lim = roads.loc[roads["role"] == "treated", "limit_kmh"].dropna() if len(roads) else pd.Series(dtype=float)
    return {int(x) for x in lim}


def speed_indicator(district: District, results: PublicResults) -> str:
    """The district's headline speed indicator, when stored (else the first stored speed indicator)."""
    want = district.publication.headline_indicator
    if want in results.comparisons:
        return want
    for name in ("p85", "mean", "passage_p85", "passage_mean"):
        if name in results.comparisons:
            return name
    return want


def share_indicator(results: PublicResults, headline_indicator: str | None = None) -> str | None:
    """The share of vehicles (passages) at or over the limit, else the share of points, when stored;
    None when it is the headline's own indicator (headline_indicator = "passage_share": said once)."""
    for name in (HEADLINE_SHARE_INDICATOR, "share"):
        if name in results.comparisons:
            return None if name == headline_indicator else name
    return None


def headline(district: District, results: PublicResults) -> Headline:
    """The headline of `results` (already suppressed by maps.public.public_results) in both languages."""
    speed = speed_indicator(district, results)
    t, c, d = (_row(results, speed, u) for u in ("treated", "control", "did"))
    details: dict[str, list[str]] = {lang: [] for lang in w.LANGS}
    k = results.public_min_vehicles
    if t is None:
        return Headline("no_data", _lead("no_data"), details)
    if w.is_missing(t["before"]) or w.is_missing(t["after"]):
        for lang in w.LANGS:
            details[lang].append(w.t("headline.suppressed", lang, k=k))
        return Headline("suppressed", _lead("suppressed"), details)
    limits = _limits(results)
    for lang in w.LANGS:
        details[lang].append(_treated_sentence(speed, t, lang, limits))
        details[lang].append(_control_sentence(speed, c, lang))
        share = share_indicator(results, speed)
        st = _row(results, share, "treated") if share else None
        if st is not None and not w.is_missing(st["before"]) and not w.is_missing(st["after"]):
            details[lang].append(_share_sentence(share, st, lang, limits))
    placebo = placebo_of(results, speed)
    verdict = _verdict(t, c, d, placebo)
    if verdict in ("unclear", "low_sample", "no_comparison"):
        for lang in w.LANGS:
            details[lang].append(_caveat(verdict, speed, t, c, d, lang, placebo))
    if placebo is not None and verdict in ("effect", "unclear") and not w.is_missing(d["change"]):
        for lang in w.LANGS:
            details[lang].append(placebo_sentence(placebo, lang))
    latest = monitoring(district, results, speed)
    if latest is not None:
        for lang in w.LANGS:
            details[lang].append(monitoring_sentence(latest, lang, limits))
    return Headline(verdict, _lead(verdict), details, None if latest is None else latest["state"])


def placebo_of(results: PublicResults, indicator: str) -> PlaceboSummary | None:
    """The treated street among the public placebo streets (analysis.placebo.placebo_summary), or None
    when no placebo result or no DiD is stored."""
    table, placebo = results.comparisons.get(indicator), getattr(results, "placebo", None)
    if table is None or placebo is None or "indicator" not in placebo:
        return None
    return placebo_summary(table, placebo, indicator)


def placebo_sentence(s: PlaceboSummary, lang: str = "ja") -> str:
    """Where the treated street's DiD ranks among the placebo streets, and whether the rule uses it."""
    if s.n == 0:
        return w.t("headline.placebo_none", lang)
    text = w.t("headline.placebo_rank", lang, n=s.n, rank=s.rank, total=s.n + 1, p=f"{s.p:.2f}")
    if not s.in_rule:
        text += w.t("headline.placebo_few", lang, m=PLACEBO_MIN_STREETS)
    return text


def _degenerate(row) -> bool:
    return row is not None and "degenerate" in row.index and w.is_true(row["degenerate"])


def monitoring(district: District, results: PublicResults, indicator: str | None = None) -> dict | None:
    """The treated street's latest monitoring month against the after level, from the public
    monthly series: latest_month_verdict's answer (state holding / rising / falling / inconclusive /
    unknown: the equivalence verdict on the month's difference in differences) with
    state 'suppressed' for a month under the publication threshold, plus indicator, flag,
    n_vehicles and k. Months without any vehicle on the district ('nodata': not delivered) are not
    months of the series. None when the district has no monitoring month."""
    series = results.monthly
    indicator = indicator or speed_indicator(district, results)
    if series is None or series.empty:
        return None
    series = series[series["flag"] != "nodata"]  # months without a single vehicle on the district: not delivered
    v = latest_month_verdict(series, indicator)
    if v is None:
        return None
    t = series[(series["indicator"] == indicator) & (series["unit"] == "treated")].sort_values("month").iloc[-1]
    state = "suppressed" if t["flag"] == "suppressed" else v["state"]
    return {
        **v,
        "state": state,
        "indicator": indicator,
        "flag": t["flag"],
        "n_vehicles": t["n_vehicles"],
        "k": results.public_min_vehicles,
    }


def monitoring_sentence(latest: dict, lang: str = "ja", limits: set[int] | None = None) -> str:
    """One sentence: is the latest month still at the after level? (maps.headline.monitoring's answer:
    the equivalence verdict on the month's difference in differences, analysis.equivalence)"""
    ind, month = latest["indicator"], w.fmt_month(latest["month"], lang)
    if latest["state"] == "suppressed":
        return w.t("headline.monitor_suppressed", lang, month=month, k=latest["k"])
    label = w.indicator_label(ind, lang, limits)
    value = w.fmt_value(ind, latest["value"], lang)
    if w.is_missing(latest["after_level"]):
        return w.t("headline.monitor_no_after", lang, month=month, label=label, value=value)
    after = w.fmt_value(ind, latest["after_level"], lang)
    if latest["state"] == "unknown" or w.is_missing(latest.get("did_ci_low")):
        return w.t("headline.monitor_unknown", lang, month=month, label=label, value=value, after=after)
    figures = {
        "month": month,
        "label": label,
        "value": value,
        "after": after,
        "did": w.fmt_change(ind, latest["did"], lang),
        "ci": w.fmt_interval(ind, latest["did_ci_low"], latest["did_ci_high"], lang),
        "margin": f"{w.number(w.display(ind, latest['margin']))} {w.unit(ind, lang, change=True)}",
    }
    text = w.t(f"headline.monitor_{latest['state']}", lang, **figures)
    if latest["flag"] == "low_sample" and not w.is_missing(latest["n_vehicles"]):
        text += w.t("headline.monitor_few", lang, n=w.fmt_count(latest["n_vehicles"]))
    return text


def _lead(verdict: str) -> dict[str, str]:
    return w.both(f"headline.lead_{verdict}")


def _verdict(t, c, d, placebo: PlaceboSummary | None = None) -> str:
    if t["flag"] == "low_sample" or (c is not None and c["flag"] == "low_sample"):
        return "low_sample"
    if _crosses_zero(t):
        return "unclear"
    if t["ci_high"] > 0:  # the whole interval above zero
        return "increase"
    if c is None or w.is_missing(c["change"]) or d is None or w.is_missing(d["change"]):
        return "no_comparison"
    if _crosses_zero(d) or d["ci_high"] > 0:
        return "unclear"
    if _degenerate(t) or _degenerate(d):  # an interval on the data's grid says nothing about sampling
        return "unclear"
    if placebo is not None and placebo.in_rule and not placebo.passes:  # untreated streets changed as much
        return "unclear"
    return "effect"


def _treated_sentence(speed: str, t, lang: str, limits: set[int]) -> str:
    label = w.indicator_label(speed, lang, limits)
    b, a = (w.number(w.display(speed, t[x])) for x in ("before", "after"))
    change = w.fmt_change(speed, t["change"], lang)
    ci = ""
    if not w.is_missing(t["ci_low"]):
        ci = w.t("headline.treated_ci", lang, ci=w.fmt_interval(speed, t["ci_low"], t["ci_high"], lang))
    return w.t("headline.treated", lang, label=label, b=b, a=a, u=w.unit(speed, lang), change=change, ci=ci)


def _control_sentence(speed: str, c, lang: str) -> str:
    if c is None or w.is_missing(c["change"]):
        return w.t("headline.control_none", lang)
    change = w.fmt_change(speed, c["change"], lang)
    small = abs(w.display(speed, c["change"])) < (
        NO_CHANGE_KMH if w.indicator(speed).kind == "speed" else NO_CHANGE_POINTS
    )
    ci = w.fmt_interval(speed, c["ci_low"], c["ci_high"], lang) if not w.is_missing(c["ci_low"]) else None
    if _crosses_zero(c):
        return w.t("headline.control_hardly" if small else "headline.control_unclear", lang, change=change, ci=ci)
    return w.t("headline.control_changed", lang, change=change, ci=ci)


def _share_sentence(share: str, st, lang: str, limits: set[int]) -> str:
    b, a = (w.fmt_value(share, st[x], lang) for x in ("before", "after"))
    return w.t("headline.share", lang, label=w.indicator_label(share, lang, limits), b=b, a=a)


def _caveat(verdict: str, speed: str, t, c, d, lang: str, placebo: PlaceboSummary | None = None) -> str:
    if verdict == "low_sample":
        rows = [r for r in (t, c) if r is not None and r["flag"] == "low_sample"]
        nb = w.fmt_count(min(r["n_vehicles_before"] for r in rows))
        na = w.fmt_count(min(r["n_vehicles_after"] for r in rows))
        return w.t("headline.caveat_low_sample", lang, b=nb, a=na)
    if verdict == "no_comparison":
        return w.t("headline.caveat_no_comparison", lang)
    if _crosses_zero(t):
        return w.t("headline.caveat_margin", lang)
    interval = w.fmt_interval(speed, d["ci_low"], d["ci_high"], lang)
    did = w.fmt_change(speed, d["change"], lang)
    if not (_crosses_zero(d) or d["ci_high"] > 0):  # the intervals say yes: degenerate, or the placebo says no
        if _degenerate(t) or _degenerate(d):
            return w.t("headline.caveat_degenerate", lang)
        return w.t("headline.caveat_placebo", lang, rank=placebo.rank, total=placebo.n + 1, p=f"{placebo.p:.2f}")
    return w.t("headline.caveat_did", lang, did=did, ci=interval)
