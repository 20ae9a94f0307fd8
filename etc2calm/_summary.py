"""The short before/after summary printed by the demo and the CLI: figures read from the warehouse."""

from __future__ import annotations

import pandas as pd

import maps.through as through
import maps.wording as w
from analysis.placebo import placebo_summary
from analysis.results import (
    ResultsMissing,
    load_comparisons,
    load_district_results,
    load_gates,
    load_group_stats,
    load_placebo,
    load_screening,
)
from config.districts import District
from config.settings import GATE_CLASSES, INDICATOR_COLUMNS, PLACEBO_MIN_STREETS
from geo.network import load_roads
from maps.headline import monitoring, monitoring_sentence
from maps.public import public_results

TABLE_INDICATORS = ("mean", "p85", "share", "passage_share")  # the columns of the treated street's table


def treated_table(warehouse, districts: list[District]) -> pd.DataFrame:
    """One row per district and period: the treated street's stored pooled figures (group_period_stats)."""
    rows = []
    for d in districts:
        g = load_group_stats(warehouse, d.key)
        for r in g[g["road_group"] == "treated"].itertuples() if len(g) else []:
            rows.append(
                {
                    "district": d.name_ja,
                    "period": r.period,
                    "dates": f"{r.period_start:%Y-%m-%d}..{r.period_end:%Y-%m-%d}",
                    "n_vehicles": r.n_vehicles,
                    "n_points": r.n_points,
                    **{INDICATOR_COLUMNS[i]: getattr(r, INDICATOR_COLUMNS[i]) for i in TABLE_INDICATORS},
                }
            )
    return pd.DataFrame(rows)


def _width(text: str) -> int:
    return sum(2 if ord(c) > 0x2E7F else 1 for c in text)


def format_summary(table: pd.DataFrame) -> str:
    """Fixed-width text of treated_table rows."""
    header = (
        f"{'district':<14} {'period':<8} {'dates':<22} {'vehicles':>8} {'points':>7} {'mean':>6} {'p85':>6} "
        f"{'>=limit':>8} {'passages>=':>10}"
    )
    lines = [header, "-" * len(header)]
    pct = lambda v: "" if pd.isna(v) else f"{100 * v:.1f}%"  # noqa: E731
    num = lambda v: "" if pd.isna(v) else f"{v:.1f}"  # noqa: E731
    for r in table.itertuples():
        name = r.district + " " * max(0, 14 - _width(r.district))  # full-width characters take two columns
        lines.append(
            f"{name} {r.period:<8} {r.dates:<22} {r.n_vehicles:>8} {r.n_points:>7} {num(r.mean_kmh):>6} "
            f"{num(r.p85_kmh):>6} {pct(r.share_at_or_over_limit):>8} {pct(r.passage_share_at_or_over_limit):>10}"
        )
    lines.append(
        "mean / p85 in km/h over points; >=limit: share of points at or over the speed limit; passages>=: share of "
        "passages (one vehicle's traversal of the street) whose travel speed (distance / time) is at or over it; "
        "vehicles: distinct 運行ID"
    )
    return "\n".join(lines)


def _speed_line(key: str, ind: str, rows: pd.DataFrame) -> str:
    t, c, did = rows.loc["treated"], rows.loc["control"], rows.loc["did"]
    flags = [u for u in ("treated", "control", "did") if w.is_true(rows.loc[u].get("degenerate"))]
    note = f" (degenerate interval: {', '.join(flags)})" if flags else ""
    return (
        f"  {key:<10} treated {ind} {t['before']:.2f} → {t['after']:.2f} km/h ({t['change']:+.2f} "
        f"[{t['ci_low']:+.2f}, {t['ci_high']:+.2f}]); comparison {c['change']:+.2f} [{c['ci_low']:+.2f}, "
        f"{c['ci_high']:+.2f}]; DiD {did['change']:+.2f} [{did['ci_low']:+.2f}, {did['ci_high']:+.2f}] km/h{note}"
    )


def _placebo_line(table: pd.DataFrame, placebo: pd.DataFrame, ind: str) -> str | None:
    s = placebo_summary(table, placebo, ind) if placebo is not None else None
    if s is None:
        return None
    if s.n == 0:
        return f"  {'':<10} placebo ({ind}): no untreated residential street with enough vehicles"
    rule = "in the headline's rule" if s.in_rule else f"fewer than {PLACEBO_MIN_STREETS}: not in the rule"
    spread = "wider" if s.wider_than_interval else "not wider"
    larger = ", ".join(f"{r} {x:+.2f}" for r, x in s.larger_changes) or "none"
    return (
        f"  {'':<10} placebo ({ind}): DiD rank {s.rank} of {s.n + 1} among {s.n} untreated residential streets, "
        f"p = {s.p:.3f} ({rule}); placebo spread [{s.spread_low:+.2f}, {s.spread_high:+.2f}] {spread} than the "
        f"DiD interval; untreated streets changing as much: {larger}"
    )


def format_headline(warehouse, districts: list[District]) -> str:
    """Mean-speed and 85th-percentile changes on treated and comparison streets and the DiD, with 95 %
    intervals, the placebo rank, and the shares, per district, from the stored comparison_results and
    placebo_results (changes computed before rounding)."""
    lines = ["before → after (default periods), 95 % cluster-bootstrap intervals over vehicles:"]
    for d in districts:
        comp = load_comparisons(warehouse, d.key)
        if "mean" not in comp:
            continue
        placebo = load_placebo(warehouse, d.key)
        for ind in ("mean", "p85"):
            if ind in comp:
                lines.append(_speed_line(d.key if ind == "mean" else "", ind, comp[ind].set_index("unit")))
        line = _placebo_line(comp["p85"], placebo, "p85") if "p85" in comp else None
        if line:
            lines.append(line)
        for ind, word in (("share", "share of points ≥ limit"), ("passage_share", "share of passages ≥ limit")):
            if ind in comp:
                s = comp[ind].set_index("unit")
                lines.append(
                    f"  {'':<10} treated {word} {100 * s.loc['treated', 'before']:.1f}% → "
                    f"{100 * s.loc['treated', 'after']:.1f}% "
                    f"(DiD {100 * s.loc['did', 'change']:+.1f} points [{100 * s.loc['did', 'ci_low']:+.1f}, "
                    f"{100 * s.loc['did', 'ci_high']:+.1f}])"
                )
    return "\n".join(lines)


SUMMARY_LANG = "en"  # the terminal summary's words (maps.wording's summary.*), beside Japanese district names


def _statistic(indicator: str) -> str:
    return w.t(f"summary.stat_{indicator}", SUMMARY_LANG)


def _value(indicator: str, v: float, kind: str) -> str:
    if pd.isna(v):
        return "—"
    if kind == "ratio":
        return f"×{v:.2f}"
    if "share" in indicator:
        return f"{100 * v:+.1f} points" if kind == "change" else f"{100 * v:.1f} %"
    return f"{v:+.1f} km/h" if kind == "change" else f"{v:.1f} km/h"


def published_vs_measured(warehouse, districts: list[District]) -> pd.DataFrame:
    """Each district's published figures ([[published]]) next to the treated street's stored figure of the
    same statistic and period (group_period_stats; changes and ratios of the stored, unrounded levels)."""
    rows = []
    for d in districts:
        g = load_group_stats(warehouse, d.key)
        t = g[g["road_group"] == "treated"].set_index("period") if len(g) else pd.DataFrame()
        for p in d.published:
            col = INDICATOR_COLUMNS[p.indicator]

            def level(name, t=t, col=col):
                return t.loc[name, col] if name in t.index else float("nan")

            if p.kind == "level":
                measured = level(p.period)
            elif p.kind == "change":
                measured = level(p.period) - level(p.reference)
            else:
                measured = level(p.period) / level(p.reference)
            inside = p.low - 1e-9 <= measured <= p.high + 1e-9 if p.low < p.high else None
            rows.append(
                {
                    "district": d.name_ja,
                    "statistic": _statistic(p.indicator),
                    "indicator": p.indicator,
                    "kind": p.kind,
                    "period": p.period if p.kind == "level" else f"{p.reference}→{p.period}",
                    "published": p.text,
                    "published_low": p.low,
                    "published_high": p.high,
                    "measured": measured,
                    "within": inside,
                }
            )
    return pd.DataFrame(rows)


def format_published(table: pd.DataFrame) -> str:
    """Fixed-width lines: statistic, period, the published figure (as published) and this run's."""
    lines = ["published (district file [[published]]) and measured by this run (the warehouse), treated street:"]
    for r in table.itertuples():
        pub = (
            _value(r.indicator, r.published_low, r.kind)
            if r.published_low == r.published_high
            else f"{_value(r.indicator, r.published_low, r.kind)}–{_value(r.indicator, r.published_high, r.kind)}"
        )
        mark = (
            ""
            if r.within is None
            else ("  (within the published range)" if r.within else "  (OUTSIDE the published range)")
        )
        name = r.district + " " * max(0, 14 - _width(r.district))
        lines.append(
            f"  {name} {r.statistic:<40} {r.period:<15} published {pub:<18} this run "
            f"{_value(r.indicator, r.measured, r.kind)}{mark}"
        )
        lines.append(f"  {'':<14} {'':<40} {'':<15} ({r.published})")
    return "\n".join(lines)


def format_screening(
    table: pd.DataFrame, top: int | None = None, legend: bool = True, labels: dict | None = None
) -> str:
    """Fixed-width lines of ranked candidates (screening_results rows or ScreeningResult.table), the first
    `top`; labels: maps.wording.road_labels of the network (an unnamed way by its class and number)."""
    labels = labels or {}
    rows = table if top is None else table.head(top)
    pct = lambda v: "" if pd.isna(v) else f"{100 * v:.1f}%"  # noqa: E731
    num = lambda v, d=1: "" if pd.isna(v) else f"{v:.{d}f}"  # noqa: E731
    header = (
        f"{'rank':>4} {'road':<6} {'score':>5} {'[95% CI]':<12} {'rank CI':<7} {'>=limit':>7} {'[95% CI]':<13} "
        f"{'>=+10':>6} {'p85':>5} {'brake':>5} {'cut-thr':>7} {'pass/d':>6} {'veh':>5}  name"
    )
    lines = [header, "-" * len(header)]
    for r in rows.itertuples():
        ci = f"[{num(r.score_ci_low, 0)}, {num(r.score_ci_high, 0)}]"
        rci = f"{int(r.rank_ci_low)}-{int(r.rank_ci_high)}" if pd.notna(r.rank_ci_low) else ""
        sci = f"[{pct(r.share_ci_low)}, {pct(r.share_ci_high)}]"
        lines.append(
            f"{int(r.rank):>4} {r.road_id:<6} {num(r.score):>5} {ci:<12} {rci:<7} {pct(r.share_at_or_over_limit):>7} "
            f"{sci:<13} {pct(r.share_at_or_over_limit_plus_10):>6} {num(r.p85_kmh):>5} "
            f"{num(r.braking_per_1000_passages):>5} {pct(r.cut_through_share):>7} {num(r.passages_per_day, 0):>6} "
            f"{int(r.n_vehicles):>5}  {labels.get(str(r.road_id), {}).get('ja') or r.road_name}"
        )
    if not legend:
        return "\n".join(lines)
    lines.append(
        "score 0-100 (docs/screening.md); shares of passages at or over the limit / limit + 10; p85 of passage "
        "speeds, km/h; brake: sudden braking per 1,000 passages; cut-thr: share of the road's trips with origin "
        "and destination outside the area; pass/d: passages per day; veh: distinct vehicles; CIs: 95 % cluster "
        "bootstrap over vehicles"
    )
    return "\n".join(lines)


_BASIS = {
    "pre_period": "ranked on the months before the before period (not on the baseline of the before/after comparison)",
    "before_period": "no month before the before period delivered: ranked on the before period itself, the "
    "comparison's baseline (regression to the mean may exaggerate an effect)",
}


def format_screening_summary(warehouse, districts: list[District], top: int = 5) -> str:
    """The stored screening of each district (its latest run), the first `top` candidates."""
    lines = [f"where to calm next: screening of each district's network (stored screening_results), top {top}:"]
    for d in districts:
        run, rows = load_screening(warehouse, d.key)
        if run is None:
            continue
        lines.append(
            f"  {d.name_ja} ({d.key}), {run['period']} {run['period_start']:%Y-%m-%d}..{run['period_end']:%Y-%m-%d}: "
            f"{run['n_candidates']} candidates ranked, {run['n_low_sample']} left out (fewer than "
            f"{run['min_vehicles']} vehicles)"
        )
        basis = _BASIS.get(str(run.get("basis") or ""))
        if basis:
            lines.append(f"    {basis}")
        lines += ["    " + line for line in format_screening(rows, top, legend=False).splitlines()]
    lines.append(
        "  score 0-100, relative to the district's candidates (docs/screening.md); shares of passages >= limit / "
        "limit + 10; p85 of passage speeds; brake: sudden braking per 1,000 passages; cut-thr: share of trips with "
        "origin and destination outside the outline; pass/d: passages a day; 95 % cluster-bootstrap intervals"
    )
    return "\n".join(lines)


def _class_word(gate_class: str) -> str:
    return w.t(f"summary.class_{gate_class}", SUMMARY_LANG)


def format_gate_summary(warehouse, districts: list[District]) -> str:
    """Whole-day share of each gate class per district and period, and the busiest gate-to-gate pair."""
    lines = ["through traffic by gates (stored gate_class_summary / gate_od), whole day, trips touching the network:"]
    for d in districts:
        g = load_gates(warehouse, d.key)
        s, od, gates = g["summary"], g["od"], g["gates"]
        if s.empty:
            continue
        labels = w.road_labels(load_roads(d.network_path, exclude_highway=d.exclude_highway))
        names = {str(g.gate_id): through.gate_name(g, labels) for g in gates.itertuples()}
        whole_day = s[s["time_band"] == "all"].assign(_o=lambda x: x["gate_class"].map(list(GATE_CLASSES).index))
        for period, rows in whole_day.sort_values(["period_start", "_o"], kind="stable").groupby("period", sort=False):
            shares = " · ".join(f"{_class_word(r.gate_class)} {100 * r.share_trips:.1f}%" for r in rows.itertuples())
            name = d.name_ja + " " * max(0, 14 - _width(d.name_ja))
            lines.append(f"  {name} {period + ':':<8} {shares} ({rows['n_trips'].sum():,} trips)")
            top = od[(od["period"] == period) & (od["time_band"] == "all") & (od["gate_class"] == "through")]
            if len(top):
                r = top.sort_values("n_trips", ascending=False, kind="stable").iloc[0]
                lines.append(
                    f"  {'':<14} {'':<8} busiest through pair {r['entry_gate']} → {r['exit_gate']}: {r['n_trips']:,} "
                    "trips "
                    f"({names.get(r['entry_gate'], '')} → {names.get(r['exit_gate'], '')})"
                )
    return "\n".join(lines)


def format_monitoring(warehouse, districts: list[District]) -> str:
    """Is the effect lasting? Per district, the number of monitoring months stored (monthly_series) and
    the sentence the map's headline says about the latest one (public figures only)."""
    lines = ["is it lasting? monthly series after the last named period (stored monthly_series), treated street:"]
    for d in districts:
        try:
            results = public_results(load_district_results(warehouse, d))
        except ResultsMissing:
            continue
        latest = monitoring(d, results)
        name = d.name_ja + " " * max(0, 14 - _width(d.name_ja))
        if latest is None:
            lines.append(f"  {name} no month after the last named period delivered yet")
            continue
        months = results.monthly.loc[results.monthly["flag"] != "nodata", "month"].nunique()
        lines.append(f"  {name} {months} month(s); {monitoring_sentence(latest, 'en')}")
    return "\n".join(lines)


def format_pre_period(warehouse, districts: list[District], indicator: str = "p85") -> str:
    """Before the before period (stored pre_period_series): per district and month, the treated and
    comparison streets' level and the difference in differences against the before period (public figures)."""
    lines = [f"before the before period (stored pre_period_series), {indicator}, DiD against the before period:"]
    for d in districts:
        try:
            pre = public_results(load_district_results(warehouse, d)).pre_period
        except ResultsMissing:
            continue
        name = d.name_ja + " " * max(0, 14 - _width(d.name_ja))
        s = pre[pre["indicator"] == indicator] if pre is not None and len(pre) else pd.DataFrame()
        if s.empty:
            lines.append(f"  {name} no month before the before period delivered")
            continue
        for month, g in s.groupby("month", sort=True):
            u = g.set_index("unit")
            t, c, did = (u.loc[x] if x in u.index else None for x in ("treated", "control", "did"))
            lines.append(
                f"  {name} {pd.Timestamp(month):%Y-%m}: treated {t['value']:.2f}, comparison {c['value']:.2f} km/h; "
                f"DiD {did['change_vs_before']:+.2f} [{did['change_ci_low']:+.2f}, {did['change_ci_high']:+.2f}]"
            )
    return "\n".join(lines)
