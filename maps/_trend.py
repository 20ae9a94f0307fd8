"""Monitoring in the publications: is the effect lasting? The trend chart of the monthly series.

The chart shows, for the district's headline indicator, the treated and the comparison streets
(pooled) in every monitoring month (monthly_series: the complete months after the last named
period) with their 95 % intervals as bands, and the treated street's before and after levels
(comparison_results of the compared periods) as reference lines. Months on the x axis.

Everything comes from maps.public.PublicResults: a month under the publication threshold has no
value, no interval and no count; the chart leaves a gap there (and greys the month when it is the
treated street's), the table says 「データ不足」. The report draws it as SVG (`trend_svg`), the
sheet with matplotlib (maps.district_sheet) from the same `trend_data`.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import numpy as np

import maps.wording as w
from config.districts import District
from maps.headline import speed_indicator
from maps.public import PublicResults

TREATED_COLOUR = "#2166ac"  # as the report's "after" bars
CONTROL_COLOUR = "#6b6b6b"
BEFORE_LEVEL_COLOUR = "#d6604d"  # as the report's "before" bars
SUPPRESSED_FILL = "#e4e4e4"


def tt(key: str, lang: str = "ja", **kw) -> str:
    """The trend chart's text `key` (maps.wording's trend.<key>) in `lang`."""
    return w.t(f"trend.{key}", lang, **kw)


@dataclass
class Trend:
    """The chart's content, public figures only (NaN where suppressed)."""

    indicator: str
    months: list  # first day of each month (date / Timestamp), in order
    value: dict[str, np.ndarray]  # unit ('treated', 'control') → stored level per month
    low: dict[str, np.ndarray]
    high: dict[str, np.ndarray]
    suppressed: dict[str, np.ndarray]  # unit → month under the publication threshold
    rows: dict[str, list]  # unit → the public monthly_series row per month (or None)
    before_level: float  # treated street, stored before figure (NaN when suppressed)
    after_level: float  # treated street, stored after figure
    k: int

    @property
    def factor(self) -> float:
        return 100.0 if w.indicator(self.indicator).kind == "share" else 1.0


def trend_data(district: District, pub: PublicResults, indicator: str | None = None) -> Trend | None:
    """The trend of the district's headline indicator (or `indicator`), None without a monitoring month."""
    series = pub.monthly
    indicator = indicator or speed_indicator(district, pub)
    if series is None or series.empty:
        return None
    s = series[series["indicator"] == indicator]
    s = s[s["month"].isin(set(s.loc[s["flag"] != "nodata", "month"]))]  # a month without any vehicle was not delivered
    if s.empty:
        return None
    months = sorted(set(s["month"]))
    value, low, high, suppressed, rows = {}, {}, {}, {}, {}
    for unit in ("treated", "control"):
        u = s[s["unit"] == unit].set_index("month")
        rows[unit] = [u.loc[m] if m in u.index else None for m in months]
        value[unit] = np.array([np.nan if r is None else float(r["value"]) for r in rows[unit]])
        low[unit] = np.array([np.nan if r is None else float(r["ci_low"]) for r in rows[unit]])
        high[unit] = np.array([np.nan if r is None else float(r["ci_high"]) for r in rows[unit]])
        suppressed[unit] = np.array([r is not None and r["flag"] == "suppressed" for r in rows[unit]])
    levels = {"before": math.nan, "after": math.nan}
    table = pub.comparisons.get(indicator)
    if table is not None and "treated" in set(table["unit"].astype(str)):
        t = table.set_index(table["unit"].astype(str)).loc["treated"]
        levels = {p: (math.nan if w.is_missing(t[p]) else float(t[p])) for p in levels}
    return Trend(
        indicator,
        months,
        value,
        low,
        high,
        suppressed,
        rows,
        levels["before"],
        levels["after"],
        pub.public_min_vehicles,
    )


def runs(values: np.ndarray, months: list | None = None) -> list[tuple[int, int]]:
    """[start, end) index ranges of consecutive non-NaN values: a gap at every suppressed month, and
    (with `months`) between months that are not consecutive calendar months."""
    out, start = [], None
    for i, v in enumerate(values):
        if start is not None and (
            np.isnan(v) or (months is not None and _ordinal(months[i]) != _ordinal(months[i - 1]) + 1)
        ):
            out.append((start, i))
            start = None
        if not np.isnan(v) and start is None:
            start = i
    if start is not None:
        out.append((start, len(values)))
    return out


def nice_range(lo: float, hi: float, n: int = 5) -> tuple[float, float, float]:
    """(bottom, top, step) of round ticks around [lo, hi]."""
    if not np.isfinite(lo) or not np.isfinite(hi):
        lo, hi = 0.0, 1.0
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


def y_extent(tr: Trend) -> tuple[float, float]:
    vals = [
        x
        for u in ("treated", "control")
        for arr in (tr.low[u], tr.high[u], tr.value[u])
        for x in arr
        if not np.isnan(x)
    ]
    vals += [x for x in (tr.before_level, tr.after_level) if not np.isnan(x)]
    if not vals:
        return 0.0, 1.0
    lo, hi = tr.factor * min(vals), tr.factor * max(vals)
    pad = 0.08 * (hi - lo or 1.0)
    lo = lo - pad
    if tr.factor == 100.0 or lo < 0:
        lo = max(lo, 0.0)
    return lo, hi + pad


def _ordinal(m) -> int:
    return m.year * 12 + m.month - 1


def month_positions(months: list) -> list[float]:
    """x of each month in 0..1, proportional to time (a gap of undelivered months stays a gap)."""
    first, last = _ordinal(months[0]), _ordinal(months[-1])
    span = last - first + 1
    return [(_ordinal(m) - first + 0.5) / span for m in months]


def month_width(months: list) -> float:
    """Width of one month on the 0..1 axis."""
    return 1.0 / (_ordinal(months[-1]) - _ordinal(months[0]) + 1)


def month_labels(months: list, lang: str) -> list[tuple[str, str]]:
    """(month, year) tick label lines: the year under the first month and under every January."""
    out = []
    for i, m in enumerate(months):
        first = w.fmt_month(m, lang)
        if lang == "en":
            mon, year = first.split(" ")
        else:
            year, mon = first.split("年")
            year += "年"
        out.append((mon, year if i == 0 or m.month == 1 else ""))
    return out


def _e(text: str) -> str:
    return html.escape(text)


@dataclass(frozen=True)
class _Frame:
    """The chart's plotting area (px, SVG user units) and its scales: month index → x, value → y."""

    pos: list  # each month's position along the axis, 0–1 (month_positions)
    bottom: float  # the y axis: nice_range of the values, in the indicator's display unit
    top: float
    step: float
    W: int = 560
    H: int = 340
    L: int = 56
    R: int = 16
    T: int = 34
    B: int = 118

    @property
    def pw(self) -> int:
        return self.W - self.L - self.R

    @property
    def ph(self) -> int:
        return self.H - self.T - self.B

    def x(self, i: int) -> float:
        return self.L + self.pw * self.pos[i]

    def y(self, v: float) -> float:
        return self.T + self.ph - (v - self.bottom) / (self.top - self.bottom) * self.ph


def trend_svg(tr: Trend, district: District, pub: PublicResults, lang: str = "ja") -> str:
    """The trend chart as SVG (labelled axes, one tick per month, legend)."""
    label = w.indicator_label(tr.indicator, lang, _limits(pub), capital=True)
    title = tt("title", lang, label=label)
    fr = _Frame(month_positions(tr.months), *nice_range(*y_extent(tr)))
    parts = [
        f'<svg class="chart trend" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {fr.W} {fr.H}" role="img" '
        f'aria-label="{_e(title)}" data-months="{len(tr.months)}">',
        f'<text x="{fr.L}" y="18" font-size="14" font-weight="bold">{_e(title)}</text>',
    ]
    parts += _suppressed_months(tr, fr)
    parts += _axes(tr, fr, lang)
    parts += _levels(tr, fr)
    parts += _series(tr, fr)
    parts += _legend(tr, fr, lang)
    parts.append("</svg>")
    return "".join(parts)


def _suppressed_months(tr: Trend, fr: _Frame) -> list[str]:
    """The treated street's suppressed months: greyed columns, no value."""
    parts: list[str] = []
    T, pw, ph = fr.T, fr.pw, fr.ph
    x = fr.x
    col = pw * month_width(tr.months)
    for i in range(len(tr.months)):  # the treated street's suppressed months: greyed, no value
        if tr.suppressed["treated"][i]:
            parts.append(
                f'<rect class="suppressed-month" x="{x(i) - col * 0.45:.1f}" y="{T}" width="{col * 0.9:.1f}" '
                f'height="{ph}" fill="{SUPPRESSED_FILL}"/>'
            )
    return parts


def _axes(tr: Trend, fr: _Frame, lang: str) -> list[str]:
    """Grid lines and value labels, the axes, the unit, one tick per month (labels at least 34 px apart)."""
    parts: list[str] = []
    W, L, R, T, pw, ph = fr.W, fr.L, fr.R, fr.T, fr.pw, fr.ph
    x, y = fr.x, fr.y
    v = fr.bottom
    while v <= fr.top + fr.step / 1000:
        parts.append(
            f'<line x1="{L}" x2="{W - R}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e3e3e3"/>'
            f'<text x="{L - 6}" y="{y(v) + 4:.1f}" font-size="12" text-anchor="end">{v:g}</text>'
        )
        v += fr.step
    parts.append(
        f'<line x1="{L}" x2="{L}" y1="{T}" y2="{T + ph}" stroke="#666"/>'
        f'<line x1="{L}" x2="{W - R}" y1="{T + ph}" y2="{T + ph}" stroke="#666"/>'
    )
    parts.append(
        f'<text transform="translate(16 {T + ph / 2:.1f}) rotate(-90)" font-size="12" text-anchor="middle">'
        f"{_e(w.unit(tr.indicator, lang))}</text>"
    )
    ticks, last = ['<g class="months">'], -1e9
    for i, (mon, year) in enumerate(month_labels(tr.months, lang)):
        ticks.append(f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{T + ph}" y2="{T + ph + 4}" stroke="#666"/>')
        if x(i) - last >= 34:  # labels at least 34 px apart
            last = x(i)
            ticks.append(f'<text x="{x(i):.1f}" y="{T + ph + 17}" font-size="11" text-anchor="middle">{_e(mon)}</text>')
            if year:
                ticks.append(
                    f'<text x="{x(i):.1f}" y="{T + ph + 30}" font-size="11" text-anchor="middle">{_e(year)}</text>'
                )
    parts += ticks + ["</g>"]
    parts.append(
        f'<text x="{L + pw / 2:.1f}" y="{T + ph + 46}" font-size="12" '
        f'text-anchor="middle">{_e(tt("month_axis", lang))}</text>'
    )
    return parts


def _levels(tr: Trend, fr: _Frame) -> list[str]:
    """The before level (dashed) and the after level (dotted), where known."""
    parts: list[str] = []
    W, L, R = fr.W, fr.L, fr.R
    y = fr.y
    f = tr.factor
    for level, colour, dash in ((tr.before_level, BEFORE_LEVEL_COLOUR, "7,4"), (tr.after_level, TREATED_COLOUR, "2,3")):
        if not np.isnan(level):
            parts.append(
                f'<line class="level" x1="{L}" x2="{W - R}" y1="{y(f * level):.1f}" y2="{y(f * level):.1f}" '
                f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}"/>'
            )
    return parts


def _series(tr: Trend, fr: _Frame) -> list[str]:
    """Per street (comparison, then treated): interval bands or whiskers, the line and the monthly points."""
    parts: list[str] = []
    x, y = fr.x, fr.y
    f = tr.factor
    for unit, colour in (("control", CONTROL_COLOUR), ("treated", TREATED_COLOUR)):
        val, lo, hi = tr.value[unit] * f, tr.low[unit] * f, tr.high[unit] * f
        for a, b in runs(val, tr.months):
            idx = [i for i in range(a, b) if not np.isnan(lo[i]) and not np.isnan(hi[i])]
            if len(idx) >= 2 and idx == list(range(a, b)):
                pts = [f"{x(i):.1f},{y(hi[i]):.1f}" for i in idx] + [
                    f"{x(i):.1f},{y(lo[i]):.1f}" for i in reversed(idx)
                ]
                parts.append(
                    f'<polygon class="band" points="{" ".join(pts)}" fill="{colour}" fill-opacity="0.18" '
                    'stroke="none"/>'
                )
            else:  # a lone month: its interval as a whisker
                for i in idx:
                    parts.append(
                        f'<line class="band" x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{y(lo[i]):.1f}" y2="{y(hi[i]):.1f}" '
                        f'stroke="{colour}" stroke-opacity="0.5" stroke-width="6"/>'
                    )
            if b - a >= 2:
                pts = " ".join(f"{x(i):.1f},{y(val[i]):.1f}" for i in range(a, b))
                parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2.2"/>')
            for i in range(a, b):
                parts.append(f'<circle class="m-{unit}" cx="{x(i):.1f}" cy="{y(val[i]):.1f}" r="3.5" fill="{colour}"/>')
    return parts


def _legend(tr: Trend, fr: _Frame, lang: str) -> list[str]:
    """The legend: rows under the axis title (lines and band; levels; suppressed months)."""
    parts: list[str] = []
    L, T, ph = fr.L, fr.T, fr.ph
    ly = T + ph + 64
    items = [
        ("line", TREATED_COLOUR, tt("treated", lang)),
        ("line", CONTROL_COLOUR, tt("control", lang)),
        ("band", TREATED_COLOUR, tt("band", lang)),
    ]
    items2 = []
    if not np.isnan(tr.before_level):
        items2.append(("dash", BEFORE_LEVEL_COLOUR, tt("before_level", lang)))
    if not np.isnan(tr.after_level):
        items2.append(("dot", TREATED_COLOUR, tt("after_level", lang)))
    rows = [items, items2]
    if tr.suppressed["treated"].any():
        rows.append([("grey", SUPPRESSED_FILL, tt("suppressed_month", lang, k=tr.k))])
    for r, row in enumerate(r for r in rows if r):
        lx, yy = L - 40, ly + 17 * r
        for kind, colour, text in row:
            if kind == "band":
                parts.append(
                    f'<rect x="{lx}" y="{yy - 9}" width="22" height="10" fill="{colour}" fill-opacity="0.18"/>'
                )
            elif kind == "grey":
                parts.append(f'<rect x="{lx}" y="{yy - 9}" width="22" height="10" fill="{colour}"/>')
            else:
                dash = {"dash": ' stroke-dasharray="7,4"', "dot": ' stroke-dasharray="2,3"'}.get(kind, "")
                parts.append(
                    f'<line x1="{lx}" x2="{lx + 22}" y1="{yy - 4}" y2="{yy - 4}" stroke="{colour}" '
                    f'stroke-width="2"{dash}/>'
                )
            parts.append(f'<text x="{lx + 27}" y="{yy}" font-size="11.5">{_e(text)}</text>')
            lx += 37 + 7.2 * w_cols(text)
    return parts


def w_cols(text: str) -> int:
    """Display columns of a label (full-width characters count two)."""
    return sum(1 if ord(ch) < 0x2E80 else 2 for ch in text)


def _limits(pub: PublicResults) -> set[int]:
    return {int(x) for x in pub.roads.loc[pub.roads["role"] == "treated", "limit_kmh"].dropna()}


def trend_table(tr: Trend, lang: str = "ja") -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the monthly figures: treated value, interval, difference from the after level
    with its interval, vehicles, comparison value; 「データ不足」 for a suppressed month."""
    ind, k = tr.indicator, tr.k
    header = [tt(x, lang) for x in ("month", "value", "ci", "vs_after", "vehicles", "comparison")]
    rows = []
    for i, m in enumerate(tr.months):
        t, c = tr.rows["treated"][i], tr.rows["control"][i]
        cells = [w.fmt_month(m, lang)]
        if t is None or w.is_missing(t["value"]):
            cells += [
                w.too_few(k, lang, short=True) if t is not None and t["flag"] == "suppressed" else w.no_data(lang),
                "—",
                "—",
                "—",
            ]
        else:
            ci = (
                "—"
                if w.is_missing(t["ci_low"])
                else f"{w.number(w.display(ind, t['ci_low']))}〜{w.number(w.display(ind, t['ci_high']))}"
            )
            if lang == "en" and ci != "—":
                ci = ci.replace("〜", " to ")
            vs = "—" if w.is_missing(t["change_vs_after"]) else w.fmt_change(ind, t["change_vs_after"], lang)
            if vs != "—" and not w.is_missing(t["change_ci_low"]):
                vs += f" [{w.fmt_interval(ind, t['change_ci_low'], t['change_ci_high'], lang)}]"
            cells += [w.fmt_value(ind, t["value"], lang), ci, vs, w.fmt_count(t["n_vehicles"])]
        if c is None or w.is_missing(c["value"]):
            cells.append(
                w.too_few(k, lang, short=True) if c is not None and c["flag"] == "suppressed" else w.no_data(lang)
            )
        else:
            cells.append(w.fmt_value(ind, c["value"], lang))
        rows.append(cells)
    return header, rows


__all__ = [
    "Trend",
    "trend_data",
    "trend_svg",
    "trend_table",
    "tt",
    "runs",
    "nice_range",
    "y_extent",
    "month_labels",
    "month_positions",
    "month_width",
]
