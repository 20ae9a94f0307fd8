"""The district report: one HTML page (no external resources) that starts with the answer.

1. the headline (maps.headline: did it work, with the interval and the comparison streets);
2. before / after bar charts of the treated and comparison streets with interval whiskers;
3. the detail tables: every indicator with its interval, the difference in differences, speed
   distributions, per-road figures, sudden braking, cut-through traffic, samples and method.

Every figure comes from maps.public.public_results (nothing from fewer than the publication
threshold of vehicles: no number, no bar, no curve, no count) and is worded and rounded by
maps.wording, in Japanese or English. Sections without data say so.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import numpy as np
import pandas as pd

import maps._embed as embed
import maps.through as through
import maps.wording as w
from analysis.filters import ALL_POINTS_FILTER
from analysis.results import DistrictResults
from config.districts import District
from config.settings import GATE_CLASSES, PUBLIC_MIN_VEHICLES, RESIDENTIAL_MAX_LIMIT_KMH
from maps._trend import trend_data, trend_svg, trend_table, tt
from maps.headline import headline, placebo_of, placebo_sentence, share_indicator, speed_indicator
from maps.public import PublicResults, public_comparison, public_results

__all__ = ["render_report", "public_comparison", "before_after_svg", "distribution_svg"]

BEFORE_COLOUR = "#d6604d"  # ColorBrewer RdBu ends: distinguishable for colour-blind readers
AFTER_COLOUR = "#2166ac"
# Indicators of the summary table, in this order (those stored).
SUMMARY_INDICATORS = ("passage_share", "p85", "mean", "share", "share_plus10", "passage_p85", "passage_mean")


def rt(key: str, lang: str = "ja", **kw) -> str:
    """The report's text `key` (maps.wording's report.<key>) in `lang`."""
    return w.t(f"report.{key}", lang, **kw)


def _colon(lang: str) -> str:
    return ": " if lang == "en" else "："


def _e(text: str) -> str:
    return html.escape(text)


def _table(header: list[str], rows: list[str], left: int = 1) -> str:
    head = "".join(f"<th{' class=l' if i < left else ''}>{_e(h)}</th>" for i, h in enumerate(header))
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _td(text: str, left: bool = False, bold: bool = False) -> str:
    inner = f"<b>{_e(text)}</b>" if bold else _e(text)
    return f"<td{' class=l' if left else ''}>{inner}</td>"


def _value(ind: str, v, lang: str, k: int) -> str:
    return w.too_few(k, lang, short=True) if w.is_missing(v) else w.fmt_value(ind, v, lang)


def _change(ind: str, v, lang: str, k: int) -> str:
    return w.too_few(k, lang, short=True) if w.is_missing(v) else w.fmt_change(ind, v, lang)


def _ci(ind: str, row, lang: str) -> str:
    return "—" if w.is_missing(row["ci_low"]) else w.fmt_interval(ind, row["ci_low"], row["ci_high"], lang)


def _n(v) -> str:
    return "—" if w.is_missing(v) else w.fmt_count(v)


def _flag(flag: str, pub: PublicResults, lang: str, degenerate=False) -> str:
    if flag == "suppressed":
        return rt("suppressed", lang)
    words = [rt("low_sample", lang, n=pub.min_vehicles)] if flag == "low_sample" else []
    if w.is_true(degenerate):  # a stored interval on the data's grid (comparison_results.degenerate)
        words.append(rt("degenerate_note", lang))
    return ("; " if lang == "en" else "、").join(words)


def _unit_label(unit: str, pub: PublicResults, lang: str) -> str:
    if unit == "treated":
        return rt("treated_all", lang)
    if unit == "control":
        return rt("control_all", lang)
    if unit == "did":
        return rt("did", lang)
    labels = w.road_labels(pub.roads) if len(pub.roads) else {}
    name = labels[unit][lang] if unit in labels else ""
    return f"{name} [{unit}]" if name else unit


def _limits(pub: PublicResults) -> set[int]:
    return {int(x) for x in pub.roads.loc[pub.roads["role"] == "treated", "limit_kmh"].dropna()}


# ---------------------------------------------------------------------------------------------
# charts


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** np.floor(np.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return float(m * exp)
    return float(10 * exp)


LEVEL_INTERVALS = {"before": ("before_ci_low", "before_ci_high"), "after": ("after_ci_low", "after_ci_high")}


def _level_interval(r, period: str) -> tuple[float, float] | None:
    """The stored 95 % interval of a level (comparison_results before_ci_* / after_ci_*), or None."""
    lo, hi = LEVEL_INTERVALS[period]
    if lo not in r.index or w.is_missing(r[lo]) or w.is_missing(r[hi]):
        return None
    return float(r[lo]), float(r[hi])


def before_after_svg(pub: PublicResults, ind: str, lang: str = "ja") -> str:
    """Bar chart: treated and comparison streets (pooled), before and after, each bar with the stored
    95 % interval of its level (comparison_results before_ci_* / after_ci_*) as a whisker; y axis
    labelled with the unit. '' when not stored."""
    table = pub.comparisons.get(ind)
    if table is None:
        return ""
    rows = table.set_index(table["unit"].astype(str))
    k = pub.public_min_vehicles
    label = w.indicator_label(ind, lang, _limits(pub), capital=True)
    groups = [("treated", rt("treated", lang)), ("control", rt("comparison", lang))]
    factor = 100.0 if w.indicator(ind).kind == "share" else 1.0
    tops = []
    for unit, _ in groups:
        if unit in rows.index and not w.is_missing(rows.at[unit, "before"]):
            r = rows.loc[unit]
            tops += [r["before"], r["after"], *(iv[1] for p in ("before", "after") if (iv := _level_interval(r, p)))]
    if not tops:  # neither group may be published: no empty axes
        return ""
    ymax = _nice_max(max(factor * t for t in tops if not w.is_missing(t)) * 1.12)
    W, H, L, R, T, B = 440, 290, 50, 10, 34, 52
    pw, ph = W - L - R, H - T - B
    y = lambda v: T + ph - v / ymax * ph  # noqa: E731
    unit_text = w.unit(ind, lang)
    title = rt("chart_title", lang, label=label)
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" '
        f'aria-label="{_e(title)}">',
        f'<text x="{L}" y="18" font-size="14" font-weight="bold">{_e(title)}</text>',
    ]
    ticks = np.linspace(0, ymax, 6)
    for v in ticks:
        parts.append(f'<line x1="{L}" x2="{W - R}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e3e3e3"/>')
        parts.append(f'<text x="{L - 6}" y="{y(v) + 4:.1f}" font-size="12" text-anchor="end">{v:g}</text>')
    parts.append(f'<line x1="{L}" x2="{L}" y1="{T}" y2="{T + ph}" stroke="#666"/>')
    parts.append(f'<line x1="{L}" x2="{W - R}" y1="{T + ph}" y2="{T + ph}" stroke="#666"/>')
    parts.append(
        f'<text transform="translate(18 {T + ph / 2:.1f}) rotate(-90)" font-size="12" text-anchor="middle">'
        f"{_e(unit_text)}</text>"
    )  # the indicator is in the title; the axis carries its unit
    gw = pw / len(groups)
    bw = min(60.0, gw / 3)
    for gi, (unit, name) in enumerate(groups):
        cx = L + gw * (gi + 0.5)
        parts.append(f'<text x="{cx:.1f}" y="{T + ph + 20}" font-size="13" text-anchor="middle">{_e(name)}</text>')
        if unit not in rows.index or w.is_missing(rows.at[unit, "before"]) or w.is_missing(rows.at[unit, "after"]):
            parts.append(
                f'<text x="{cx:.1f}" y="{T + ph / 2:.1f}" font-size="12" text-anchor="middle" fill="#555">'
                f"{_e(w.too_few(k, lang, short=True))}</text>"
            )
            continue
        parts += _before_after_bars(rows.loc[unit], ind, factor, cx, bw, T + ph, y)
    parts += _before_after_legend(L, H, lang)
    parts.append("</svg>")
    return "".join(parts)


def _before_after_bars(r: pd.Series, ind: str, factor: float, cx: float, bw: float, base: float, y) -> list[str]:
    """One street group's two bars (before, after) about `cx`, each with its level's 95 % interval as a
    whisker and its value above; `base` is the x axis's y (px), `y` maps a displayed value to px."""
    parts = []
    for j, (period, colour) in enumerate((("before", BEFORE_COLOUR), ("after", AFTER_COLOUR))):
        x0 = cx - bw - 3 if j == 0 else cx + 3
        v = factor * r[period]
        parts.append(f'<rect x="{x0:.1f}" y="{y(v):.1f}" width="{bw:.1f}" height="{base - y(v):.1f}" fill="{colour}"/>')
        interval = _level_interval(r, period)
        top = v
        if interval is not None:  # the whisker: the level's own 95 % interval, centred on its bar
            lo, hi = factor * interval[0], factor * interval[1]
            top = max(v, hi)
            xm = x0 + bw / 2
            parts.append(
                f'<g stroke="#111" stroke-width="1.5"><line x1="{xm:.1f}" x2="{xm:.1f}" y1="{y(lo):.1f}" '
                f'y2="{y(hi):.1f}"/><line x1="{xm - 5:.1f}" x2="{xm + 5:.1f}" y1="{y(lo):.1f}" y2="{y(lo):.1f}"/>'
                f'<line x1="{xm - 5:.1f}" x2="{xm + 5:.1f}" y1="{y(hi):.1f}" y2="{y(hi):.1f}"/></g>'
            )
        parts.append(
            f'<text x="{x0 + bw / 2:.1f}" y="{y(top) - 5:.1f}" font-size="12" text-anchor="middle">'
            f"{_e(w.number(w.display(ind, r[period])))}</text>"
        )
    return parts


def _before_after_legend(left: int, height: int, lang: str) -> list[str]:
    """The legend along the chart's foot: before, after, and the whisker (95 % interval)."""
    parts, lx = [], left
    for period, colour in (("before", BEFORE_COLOUR), ("after", AFTER_COLOUR)):
        parts.append(
            f'<rect x="{lx}" y="{height - 16}" width="12" height="10" fill="{colour}"/>'
            f'<text x="{lx + 16}" y="{height - 7}" font-size="12">{_e(rt(period, lang))}</text>'
        )
        lx += 84
    parts.append(
        f'<line x1="{lx + 6}" x2="{lx + 6}" y1="{height - 18}" y2="{height - 4}" stroke="#111" stroke-width="1.5"/>'
        f'<text x="{lx + 14}" y="{height - 7}" font-size="12">{_e(rt("ci", lang))}</text>'
    )
    return parts


def distribution_svg(dist: pd.DataFrame, unit: str, title: str, limit_kmh: float | None, lang: str = "ja") -> str:
    """Speed histogram (share of records per km/h, left axis) and cumulative curve (right axis) before
    and after, with labelled axes; the caller passes public distributions only."""
    d = dist[dist["unit"].astype(str) == unit]
    if d.empty:
        return f'<p class="empty">{_e(title)}{_colon(lang)}{_e(rt("no_data", lang))}</p>'
    lo = int(max(0, np.floor(d["speed_bin_kmh"].min())))
    hi = int(np.ceil(d["speed_bin_kmh"].max())) + 1
    bins = np.arange(lo, hi + 1)
    series = {}
    for period in ("before", "after"):
        p = d[d["period"] == period]
        counts = np.zeros(len(bins) - 1)
        if not p.empty:
            idx = np.clip(np.floor(p["speed_bin_kmh"].to_numpy()).astype(int) - lo, 0, len(counts) - 1)
            np.add.at(counts, idx, p["n_points"].to_numpy())
        total = counts.sum()
        series[period] = counts / total if total else counts
    ymax = _nice_max(100 * max(s.max() for s in series.values()) * 1.1)
    W, H, L, R, T, B = 560, 270, 52, 52, 30, 50
    pw, ph = W - L - R, H - T - B
    x = lambda v: L + (v - lo) / (hi - lo) * pw  # noqa: E731
    yl = lambda v: T + ph - v / ymax * ph  # noqa: E731  (percent per km/h)
    yr = lambda v: T + ph - v / 100 * ph  # noqa: E731  (cumulative percent)
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" '
        f'aria-label="{_e(title)}">',
        f'<text x="{L}" y="18" font-size="14" font-weight="bold">{_e(title)}</text>',
    ]
    for v in np.linspace(0, ymax, 5):
        parts.append(
            f'<line x1="{L}" x2="{L + pw}" y1="{yl(v):.1f}" y2="{yl(v):.1f}" stroke="#eee"/>'
            f'<text x="{L - 6}" y="{yl(v) + 4:.1f}" font-size="11" text-anchor="end">{v:g}</text>'
        )
    for v in (0, 25, 50, 75, 100):
        parts.append(f'<text x="{L + pw + 6}" y="{yr(v) + 4:.1f}" font-size="11">{v}</text>')
    bw = pw / (hi - lo)
    for period, colour, off in (("before", BEFORE_COLOUR, 0.0), ("after", AFTER_COLOUR, 0.5)):
        s = series[period]
        for i, v in enumerate(s):
            if v > 0:
                parts.append(
                    f'<rect x="{x(lo + i) + off * bw:.1f}" y="{yl(100 * v):.1f}" width="{bw / 2:.1f}" '
                    f'height="{T + ph - yl(100 * v):.1f}" fill="{colour}" opacity="0.75"/>'
                )
        cum = np.cumsum(s) * 100
        pts = " ".join(f"{x(lo + i + 1):.1f},{yr(c):.1f}" for i, c in enumerate(cum))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
    if limit_kmh is not None and lo <= limit_kmh <= hi:
        parts.append(
            f'<line x1="{x(limit_kmh):.1f}" x2="{x(limit_kmh):.1f}" y1="{T}" y2="{T + ph}" stroke="#333" '
            f'stroke-dasharray="4,3"/><text x="{x(limit_kmh) + 3:.1f}" y="{T + 12}" font-size="11">'
            f"{_e(rt('limit', lang, v=f'{limit_kmh:g}'))}</text>"
        )
    first = lo - lo % 10 + 10 if lo % 10 else lo
    for v in range(first, hi + 1, 10):
        parts.append(
            f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{T + ph}" y2="{T + ph + 4}" stroke="#666"/>'
            f'<text x="{x(v):.1f}" y="{T + ph + 16}" font-size="11" text-anchor="middle">{v}</text>'
        )
    parts.append(
        f'<line x1="{L}" x2="{L + pw}" y1="{T + ph}" y2="{T + ph}" stroke="#666"/>'
        f'<line x1="{L}" x2="{L}" y1="{T}" y2="{T + ph}" stroke="#666"/>'
        f'<line x1="{L + pw}" x2="{L + pw}" y1="{T}" y2="{T + ph}" stroke="#999"/>'
    )
    parts.append(
        f'<text x="{L + pw / 2:.1f}" y="{H - 8}" font-size="12" '
        f'text-anchor="middle">{_e(rt("speed_axis", lang))}</text>'
    )
    parts.append(
        f'<text transform="translate(14 {T + ph / 2:.1f}) rotate(-90)" font-size="12" text-anchor="middle">'
        f"{_e(rt('share_axis', lang))}</text>"
    )
    parts.append(
        f'<text transform="translate({W - 10} {T + ph / 2:.1f}) rotate(90)" font-size="12" text-anchor="middle">'
        f"{_e(rt('cum_axis', lang))}</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# sections


def _summary_table(pub: PublicResults, lang: str) -> str:
    k = pub.public_min_vehicles
    limits = _limits(pub)
    rows = []
    for ind in [i for i in SUMMARY_INDICATORS if i in pub.comparisons]:
        table = pub.comparisons[ind].set_index(pub.comparisons[ind]["unit"].astype(str))
        for unit in ("treated", "control", "did"):
            if unit not in table.index:
                continue
            r = table.loc[unit]
            did = unit == "did"
            rows.append(
                "<tr>"
                + _td(w.indicator_label(ind, lang, limits, capital=True), left=True)
                + _td(_unit_label(unit, pub, lang), left=True)
                + _td("" if did else _value(ind, r["before"], lang, k))
                + _td("" if did else _value(ind, r["after"], lang, k))
                + _td(_change(ind, r["change"], lang, k), bold=True)
                + _td(_ci(ind, r, lang))
                + _td(f"{_n(r['n_vehicles_before'])} / {_n(r['n_vehicles_after'])}")
                + _td(_flag(r["flag"], pub, lang, r.get("degenerate")), left=True)
                + "</tr>"
            )
    if not rows:
        return f'<p class="empty">{_e(rt("no_data", lang))}</p>'
    header = [rt(x, lang) for x in ("indicator", "unit", "before", "after", "change", "ci", "vehicles", "flag")]
    return _table(header, rows, left=2)


def _did_sentence(pub: PublicResults, ind: str, lang: str) -> str:
    table = pub.comparisons.get(ind)
    if table is None or "did" not in set(table["unit"].astype(str)):
        return ""
    d = table.set_index(table["unit"].astype(str)).loc["did"]
    if d["flag"] == "suppressed" or w.is_missing(d["change"]):
        return f"<p>{_e(rt('did_suppressed', lang, k=pub.public_min_vehicles))}</p>"
    if w.is_missing(d["ci_low"]):
        return ""
    label = w.indicator_label(ind, lang, _limits(pub))
    key = "did_effect" if d["ci_high"] < 0 else "did_unclear"
    text = rt(
        key,
        lang,
        label=label,
        did=w.fmt_change(ind, d["change"], lang),
        ci=w.fmt_interval(ind, d["ci_low"], d["ci_high"], lang),
    )
    return f"<p><b>{_e(text)}</b></p>"


def _placebo_block(pub: PublicResults, ind: str, lang: str) -> str:
    """The placebo streets (analysis.placebo): the treated street's rank and p beside the bootstrap
    interval, whether street-to-street variation exceeds it, and untreated streets that changed as much."""
    head = f'<h3 id="placebo">{_e(rt("placebo_title", lang))}</h3>'
    s = placebo_of(pub, ind)
    if s is None:
        return ""
    parts = [head, f"<p>{_e(placebo_sentence(s, lang))}</p>"]
    d = pub.comparisons[ind].set_index(pub.comparisons[ind]["unit"].astype(str)).loc["did"]
    if s.n and not w.is_missing(d["ci_low"]):
        spread = w.fmt_interval(ind, s.spread_low, s.spread_high, lang)
        key = "placebo_wider" if s.wider_than_interval else "placebo_narrower"
        ci = w.fmt_interval(ind, d["ci_low"], d["ci_high"], lang)
        parts.append(f"<p>{_e(rt(key, lang, spread=spread, ci=ci))}</p>")
    if s.larger_changes:
        sep = ", " if lang == "en" else "、"
        names = sep.join(f"{_unit_label(r, pub, lang)} ({w.fmt_change(ind, x, lang)})" for r, x in s.larger_changes)
        parts.append(f'<p class="warn">{_e(rt("placebo_spill", lang, names=names))}</p>')
    return "".join(parts)


def _pre_period_block(pub: PublicResults, ind: str, lang: str) -> str:
    """The months before the before period (pre_period_series): treated and comparison levels and the
    difference in differences against the before period, month by month (the parallel-trend check)."""
    head = f'<h3 id="pretrend">{_e(rt("pretrend_title", lang))}</h3>'
    pre = getattr(pub, "pre_period", None)
    s = pre[pre["indicator"] == ind] if pre is not None and len(pre) else None
    if s is None or s.empty:
        return head + f'<p class="empty">{_e(rt("pretrend_none", lang))}</p>'
    k = pub.public_min_vehicles
    rows = []
    for month, g in s.groupby("month", sort=True):
        u = g.set_index("unit")
        cells = [_td(w.fmt_month(month, lang), left=True)]
        for unit in ("treated", "control"):
            r = u.loc[unit] if unit in u.index else None
            cells.append(_td("—" if r is None else _value(ind, r["value"], lang, k)))
        r = u.loc["did"] if "did" in u.index else None
        did = "—" if r is None else _change(ind, r["change_vs_before"], lang, k)
        ci = "" if r is None or w.is_missing(r["change_ci_low"]) else w.fmt_interval(ind, *r[list(_CI)], lang)
        cells.append(_td(f"{did} {ci}".strip()))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = [rt(x, lang) for x in ("pretrend_month", "pretrend_treated", "pretrend_control", "pretrend_did")]
    intro = f"<p>{_e(rt('pretrend_intro', lang, before=w.period_line('before', pub.periods['before'], lang)))}</p>"
    return head + intro + _table(header, rows)


_CI = ("change_ci_low", "change_ci_high")


def _roads_table(pub: PublicResults, lang: str) -> str:
    k = pub.public_min_vehicles
    inds = [i for i in ("mean", "passage_share") if i in pub.comparisons] or [
        i for i in ("mean", "share") if i in pub.comparisons
    ]
    if not inds:
        return f'<p class="empty">{_e(rt("no_data", lang))}</p>'
    tables = {i: pub.comparisons[i].set_index(pub.comparisons[i]["unit"].astype(str)) for i in inds}
    limits = _limits(pub)
    treated = set(pub.roads.loc[pub.roads["role"] == "treated", "road_id"].astype(str))
    rows = []
    for unit in [u for u in tables[inds[0]].index if u not in ("treated", "control", "did")]:
        cells = [
            _td(_unit_label(unit, pub, lang), left=True),
            _td(rt("treated" if unit in treated else "comparison", lang), left=True),
        ]
        for i in inds:
            r = tables[i].loc[unit]
            cells += [
                _td(_value(i, r["before"], lang, k)),
                _td(_value(i, r["after"], lang, k)),
                _td(
                    f"{_change(i, r['change'], lang, k)} {'' if w.is_missing(r['change']) else _ci(i, r, lang)}".strip()
                ),
            ]
        r = tables[inds[0]].loc[unit]
        cells += [
            _td(f"{_n(r['n_vehicles_before'])} / {_n(r['n_vehicles_after'])}"),
            _td(_flag(r["flag"], pub, lang, r.get("degenerate")), left=True),
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = [rt("road", lang), rt("role", lang)]
    for i in inds:
        label = w.indicator_label(i, lang, limits, capital=True)
        header += [
            f"{label} {rt('before', lang)}",
            f"{label} {rt('after', lang)}",
            f"{rt('change', lang)} [{rt('ci', lang)}]",
        ]
    header += [rt("vehicles", lang), rt("flag", lang)]
    return _table(header, rows, left=2)


def _braking_block(pub: PublicResults, lang: str) -> str:
    k = pub.public_min_vehicles
    intro = (
        f'<p class="warn">{_e(rt("braking_inferred", lang, g=f"{pub.threshold_g:g}"))}</p>'
        if pub.braking_source != "behavior_events"
        else f"<p>{_e(rt('braking_events', lang))}</p>"
    )
    b = pub.braking
    focus = pub.roads.loc[pub.roads["role"].isin(["treated", "comparison"]), "road_id"].astype(str).tolist()
    if b.empty or not (b["public"] != "nodata").any():
        return intro + f'<p class="empty">{_e(rt("braking_none", lang))}</p>'
    rows = []
    for road in focus:
        cells = [_td(_unit_label(road, pub, lang), left=True)]
        for p in ("before", "after"):
            x = b[(b["road_id"].astype(str) == road) & (b["period"] == p)]
            status = x["public"].iloc[0] if len(x) else "nodata"
            if status == "ok":
                cells += [
                    _td(w.fmt_count(x["n_events"].iloc[0])),
                    _td(w.number(round(float(x["events_per_1000_passages"].iloc[0]), 1))),
                ]
            elif status == "few_events":
                cells += [_td(rt("few_events", lang, k=k)), _td("—")]
            elif status == "suppressed":
                cells += [_td(w.too_few(k, lang, short=True)), _td("—")]
            else:
                cells += [_td(rt("no_data", lang)), _td("—")]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = [
        rt("road", lang),
        rt("events", lang, p=rt("before", lang)),
        rt("per_1000", lang, p=rt("before", lang)),
        rt("events", lang, p=rt("after", lang)),
        rt("per_1000", lang, p=rt("after", lang)),
    ]
    hs = pub.hotspots  # public hot spots only
    n = {p: int((hs["period"] == p).sum()) if len(hs) else 0 for p in ("before", "after")}
    note = f"<p>{_e(rt('hotspots', lang, k=k, b=n['before'], a=n['after']))}</p>"
    return intro + _table(header, rows) + note


def _cut_through_block(pub: PublicResults, lang: str) -> str:
    c = pub.cut_through
    k = pub.public_min_vehicles
    if c.empty:
        return f'<p class="empty">{_e(rt("cut_no_area", lang))}</p>'
    rows = []
    for r in c.itertuples():
        if r.public == "suppressed":
            cells = [w.too_few(k, lang, short=True)] * 3
        elif r.public == "few_cut_through":
            cells = [w.fmt_count(r.n_trips), rt("few_events", lang, k=k), "—"]
        else:
            cells = [
                w.fmt_count(r.n_trips),
                w.fmt_count(r.n_cut_through),
                w.fmt_value("share", r.share_cut_through, lang),
            ]
        rows.append("<tr>" + _td(rt(r.period, lang), left=True) + "".join(_td(x) for x in cells) + "</tr>")
    table = _table(
        [rt("cut_period", lang), rt("cut_trips", lang), rt("cut_through", lang), rt("cut_share", lang)], rows
    )
    s = pub.cut_through_streets  # public streets only
    residential = set(pub.roads.loc[pub.roads["limit_kmh"] <= RESIDENTIAL_MAX_LIMIT_KMH, "road_id"].astype(str))
    top = s[(s["period"] == "after") & s["road_id"].astype(str).isin(residential)].head(5) if len(s) else s
    sep = ", " if lang == "en" else "、"
    streets = sep.join(
        f"{_unit_label(str(r.road_id), pub, lang)} ({w.fmt_count(r.n_cut_through)})" for r in top.itertuples()
    )
    return table + (f"<p>{_e(rt('cut_streets', lang, s=streets))}</p>" if streets else "")


def _trend_block(district: District, pub: PublicResults, lang: str) -> str:
    tr = trend_data(district, pub)
    head = f'<h2 id="trend">{_e(tt("section", lang))}</h2>'
    if tr is None:
        return head + f'<p class="empty">{_e(tt("none", lang))}</p>'
    header, rows = trend_table(tr, lang)
    body = ["<tr>" + "".join(_td(c, left=(i == 0)) for i, c in enumerate(row)) + "</tr>" for row in rows]
    caption = tt("caption", lang, after=w.period_line("after", pub.periods["after"], lang))
    return (
        head + f'<figure class="trend">{trend_svg(tr, district, pub, lang)}</figure>'
        f'<p class="caption">{_e(caption)}</p>' + _table(header, body)
    )


def _gates_block(pub: PublicResults, lang: str) -> str:
    """Through traffic by gates: class shares before and after with trips, shares by time band, and the
    through-traffic pairs of gates (public cells only: maps.public.public_gates)."""
    head = f'<h2 id="gates">{_e(through.tt("section", lang))}</h2>'
    if not through.has_gates(pub):
        return head + f'<p class="empty">{_e(through.tt("none", lang))}</p>'
    k = pub.public_min_vehicles
    periods = {key: pub.periods[key] for key in ("before", "after")}
    blocks = [
        head,
        f"<p>{_e(through.tt('intro', lang))}</p>",
        f"<h3>{_e(through.tt('classes', lang))}</h3>",
        _gates_classes_table(pub, periods, lang),
        f"<h3>{_e(through.tt('bands', lang))}</h3>",
        _gates_bands_table(pub, periods, lang),
        f"<h3>{_e(through.tt('od', lang))}</h3>",
        _gates_pairs_table(pub, periods, lang),
        f'<p class="caption">{_e(through.tt("note", lang, k=k))}</p>',
    ]
    return "".join(blocks)


def _gates_classes_table(pub: PublicResults, periods: dict, lang: str) -> str:
    """Trips and share of each class (through, into, out of, internal, perimeter) per period, and the total."""
    k = pub.public_min_vehicles
    cells = {key: through.class_cells(pub, p) for key, p in periods.items()}
    rows = []
    for cls in GATE_CLASSES:
        row = _td(through.class_label(cls, lang), left=True, bold=cls == "through") + _td(
            through.class_meaning(cls, lang), left=True
        )
        for key in periods:
            c = cells[key][0][cls]
            row += _td(through.cell_text(c, "trips", lang, k)) + _td(
                through.cell_text(c, "share", lang, k), bold=cls == "through"
            )
        rows.append(f"<tr>{row}</tr>")
    total = _td(through.tt("total", lang), left=True) + _td("", left=True)
    for key in periods:
        n = cells[key][1]
        total += _td(w.no_data(lang) if w.is_missing(n) else w.fmt_count(n)) + _td("")
    rows.append(f"<tr>{total}</tr>")
    header = [through.tt("class", lang), through.tt("meaning", lang)]
    for key in periods:
        header += [through.tt("trips", lang, p=rt(key, lang)), through.tt("share", lang, p=rt(key, lang))]
    return _table(header, rows, left=2)


def _gates_bands_table(pub: PublicResults, periods: dict, lang: str) -> str:
    """The share of each class by time band, per period."""
    k = pub.public_min_vehicles
    band_rows = []
    for key, p in periods.items():
        for band, _, _ in through.GATE_TIME_BANDS:
            c, _ = through.class_cells(pub, p, band)
            band_rows.append(
                "<tr>"
                + _td(rt(key, lang), left=True)
                + _td(through.band_label(band, lang), left=True)
                + "".join(_td(through.cell_text(c[cls], "share", lang, k)) for cls in GATE_CLASSES)
                + "</tr>"
            )
    return _table(
        [
            through.tt("period", lang),
            through.tt("band", lang),
            *(through.class_label(c, lang) for c in GATE_CLASSES),
        ],
        band_rows,
        left=2,
    )


def _gates_pairs_table(pub: PublicResults, periods: dict, lang: str) -> str:
    """Through trips by pair of gates (entry, exit) per period, or a line saying there are none."""
    k = pub.public_min_vehicles
    names = through.gate_names(pub, lang)
    pairs = through.through_pairs(pub, periods)
    if pairs:
        od_rows = []
        for a, b, c in pairs:
            row = _td(through.gate_label(a, names, lang), left=True) + _td(
                through.gate_label(b, names, lang), left=True
            )
            row += "".join(
                _td(through.cell_text(c.get(key, through.Cell("nodata")), "trips", lang, k)) for key in periods
            )
            od_rows.append(f"<tr>{row}</tr>")
        return _table(
            [
                through.tt("entry", lang),
                through.tt("exit", lang),
                *(through.tt("trips", lang, p=rt(key, lang)) for key in periods),
            ],
            od_rows,
            left=2,
        )
    return f'<p class="empty">{_e(through.tt("od_none", lang))}</p>'


def render_report(
    district: District,
    results: DistrictResults,
    out: str | Path,
    *,
    lang: str = "ja",
    public_min_vehicles: int = PUBLIC_MIN_VEHICLES,
    synthetic: bool | None = None,
    created: dt.date | None = None,
) -> Path:
    """Write the district report (UTF-8 HTML, no external resources) and return its path.

    results: analysis.results.DistrictResults; suppression under `public_min_vehicles` distinct
    vehicles is applied here. lang: 'ja' or 'en'. synthetic / created: as for the map.
    """
    w.check_lang(lang)
    pub = public_results(results, max(public_min_vehicles, district.public_min_vehicles))
    synthetic = district.synthetic_network if synthetic is None else synthetic
    created = w.creation_date(district, created)
    head = headline(district, pub)
    speed = speed_indicator(district, pub)
    share = share_indicator(pub, speed)
    treated_limit = pub.roads.loc[pub.roads["role"] == "treated", "limit_kmh"].dropna()
    limit = float(treated_limit.iloc[0]) if len(treated_limit) else None
    pb, pa = pub.periods["before"], pub.periods["after"]
    flt = rt("all_points", lang) if pub.filter in (ALL_POINTS_FILTER, "") else pub.filter
    blocks = []
    if synthetic:
        blocks.append(f'<div class="banner" role="alert">{_e(w.banner(lang))}</div>')
    blocks.append(f"<h1>{_e(w.report_title(district, lang))}</h1>")
    period_text = rt("periods", lang, b=w.period_line("before", pb, lang), a=w.period_line("after", pa, lang), f=flt)
    blocks.append(f'<div class="meta"><p>{_e(period_text)}</p></div>')
    # 1-2: the answer, then the charts
    blocks.append(_answer_section(pub, head, (speed, share), lang))
    # is the effect lasting? the monthly series after the last named period
    blocks.append(_trend_block(district, pub, lang))
    # 3: details
    blocks.append(f"<h2>{_e(rt('summary', lang))}</h2>")
    blocks.append(_summary_table(pub, lang))
    blocks.append(_did_sentence(pub, speed, lang))
    blocks.append(_placebo_block(pub, speed, lang))
    blocks.append(_pre_period_block(pub, speed, lang))
    blocks += _distributions_block(pub, limit, lang)
    blocks.append(f"<h2>{_e(rt('roads', lang))}</h2>")
    blocks.append(_roads_table(pub, lang))
    blocks.append(f"<h2>{_e(rt('braking', lang))}</h2>")
    blocks.append(_braking_block(pub, lang))
    blocks.append(f"<h2>{_e(rt('cut', lang))}</h2>")
    blocks.append(_cut_through_block(pub, lang))
    blocks.append(_gates_block(pub, lang))
    blocks.append(f"<h2>{_e(rt('method', lang))}</h2>")
    blocks.append(_method_note(district, pub, lang))
    blocks.append(f'<footer class="meta credits"><p>{_e(w.credits(district, created, lang))}</p></footer>')
    body = "\n".join(b for b in blocks if b)
    page = (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(w.report_title(district, lang))}</title>\n{embed.style('report.css')}\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def _answer_section(pub: PublicResults, head, indicators: tuple, lang: str) -> str:
    """The answer first (the headline and its details), then the before/after charts of the speed and
    share indicators."""
    sep = " " if lang == "en" else ""
    answer = (
        f'<div id="headline" data-verdict="{head.verdict}" '
        f'data-monitoring="{head.monitoring or "none"}"><strong>{_e(head.lead[lang])}</strong>{sep}'
        f"{_e(sep.join(head.details[lang]))}</div>"
    )
    charts = "".join(
        f"<figure>{svg}</figure>" for svg in (before_after_svg(pub, i, lang) for i in indicators if i) if svg
    )
    caption = f'<p class="caption">{_e(rt("chart_caption", lang))}</p>' if charts else ""
    return (
        f'<section id="answer" class="{"" if head.verdict == "effect" else "weak"}">{answer}'
        f'<div class="charts">{charts}</div>{caption}</section>'
    )


def _distributions_block(pub: PublicResults, limit: float | None, lang: str) -> list[str]:
    """The speed distributions of the treated and comparison streets (public ones only), with their legend."""
    k = pub.public_min_vehicles
    blocks = [f"<h2>{_e(rt('distributions', lang))}</h2>"]
    blocks.append(
        f'<p class="legend"><span style="background:{BEFORE_COLOUR}"></span>{_e(rt("before", lang))}'
        f'<span style="background:{AFTER_COLOUR}"></span>{_e(rt("after", lang))}　{_e(rt("dist_legend", lang))}</p>'
    )
    public_units = set(pub.distributions["unit"].astype(str)) if len(pub.distributions) else set()
    for unit, key in (("treated", "treated_all"), ("control", "control_all")):
        title = rt(key, lang)
        if unit in public_units:
            blocks.append(f"<figure>{distribution_svg(pub.distributions, unit, title, limit, lang)}</figure>")
        elif unit in {
            u for t in pub.comparisons.values() for u in t.loc[t["flag"] == "suppressed", "unit"].astype(str)
        }:
            blocks.append(f'<p class="empty">{_e(rt("too_few_chart", lang, title=title, k=k))}</p>')
        else:
            blocks.append(f'<p class="empty">{_e(title)}{_colon(lang)}{_e(rt("no_data", lang))}</p>')
    return blocks


def _method_note(district: District, pub: PublicResults, lang: str) -> str:
    """How the figures were made: data and radius, passages, intervals, DiD, sample sizes, braking, cut-through."""
    k = pub.public_min_vehicles
    method = [
        rt("m_data", lang, r=f"{pub.radius_m:g}"),
        rt("m_passage", lang),
        rt("m_ci", lang, n=w.fmt_count(pub.resamples), s=pub.seed),
        rt("m_did", lang),
        rt("m_sample", lang, n=pub.min_vehicles, k=k),
        (
            rt("braking_events", lang)
            if pub.braking_source == "behavior_events"
            else rt("braking_inferred", lang, g=f"{pub.threshold_g:g}")
        ),
        rt("m_cut", lang, v=RESIDENTIAL_MAX_LIMIT_KMH),
    ]
    if district.synthetic_network:
        method.append(w.t("synthetic_network_note", lang))
    return '<div class="note">' + "".join(f"<p>{_e(m)}</p>" for m in method) + "</div>"
