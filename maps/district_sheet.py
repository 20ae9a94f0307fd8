"""Printable A4 sheet per district (PDF and PNG, matplotlib, no browser), for meetings without a
screen: the headline, before / after / change maps with the traffic-calming devices, the key
figures with their change, the monthly trend after the after period (maps._trend, when the
district has monitoring months), notes and credits (publisher, date, 出典), in Japanese or English.

Layers, colours, wording, rounding and suppression are those of the HTML map (maps._layers,
maps._palette, maps.wording, maps.public): a road with fewer than the publication threshold of
distinct vehicles is grey dashed 「データ不足」 with no figure. Japanese text uses a CJK font found
through matplotlib's font manager (Debian's fonts-noto-cjk, or fonts-ipaexfont), else the bundled
IPAexGothic; without any the sheet is not drawn (RuntimeError), never with tofu boxes.
"""

from __future__ import annotations

import datetime as dt
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
from shapely.geometry import shape

import maps._layers as layers
import maps._palette as palette
import maps.wording as w
from analysis.results import DistrictResults
from config.districts import District
from config.settings import LONLAT_CRS, METRIC_CRS, PUBLIC_MIN_VEHICLES
from maps._layers import DEVICE_SHAPES
from maps._trend import (
    BEFORE_LEVEL_COLOUR,
    CONTROL_COLOUR,
    SUPPRESSED_FILL,
    TREATED_COLOUR,
    Trend,
    month_labels,
    runs,
    trend_data,
    tt,
)
from maps.headline import headline
from maps.public import PublicResults, public_results

# Preferred Japanese fonts, first found wins (family names as matplotlib's font manager reports them).
JAPANESE_FONTS = ("Noto Sans CJK JP", "IPAexGothic", "IPAGothic", "Noto Sans JP", "TakaoPGothic")
A4_INCHES = (8.27, 11.69)
PNG_DPI = 150


@dataclass(frozen=True)
class JapaneseFont:
    name: str  # family name
    path: Path  # font file (.ttf / .otf / .ttc)
    index: int  # face index inside a .ttc collection


@dataclass
class SheetResult:
    pdf: Path
    png: Path | None
    font: JapaneseFont
    texts: list[str] = field(default_factory=list)  # every string drawn on the sheet


def _bundled_font() -> JapaneseFont | None:
    """IPAexGothic shipped by the pinned PyPI package matplotlib-fontja (IPA Font License), registered
    with matplotlib: `make demo` draws Japanese on a machine without any system CJK font."""
    try:
        import matplotlib_fontja
    except ImportError:
        return None
    from matplotlib import font_manager

    path = Path(matplotlib_fontja.__file__).parent / "fonts" / "ipaexg.ttf"
    if not path.exists():
        return None
    font_manager.fontManager.addfont(str(path))
    return JapaneseFont(font_manager.FontProperties(fname=str(path)).get_name(), path, 0)


def japanese_font() -> JapaneseFont:
    """The first installed font of JAPANESE_FONTS (system packages), else the bundled IPAexGothic;
    RuntimeError naming the packages to install when neither exists."""
    from matplotlib import font_manager

    entries = {}
    for entry in font_manager.fontManager.ttflist:
        if entry.name in JAPANESE_FONTS and entry.style == "normal":
            # prefer the regular weight of each family
            best = entries.get(entry.name)
            if best is None or abs(_weight(entry.weight) - 400) < abs(_weight(best.weight) - 400):
                entries[entry.name] = entry
    for name in JAPANESE_FONTS:
        if name in entries:
            e = entries[name]
            return JapaneseFont(name, Path(e.fname), int(getattr(e, "index", 0) or 0))
    bundled = _bundled_font()
    if bundled is not None:
        return bundled
    raise RuntimeError(
        "no Japanese font found for the district sheet: install Debian's fonts-noto-cjk (or fonts-ipaexfont) "
        f"and remove matplotlib's font cache if it predates the install (looked for: {', '.join(JAPANESE_FONTS)})"
    )


def _cols(text: str) -> int:
    return sum(1 if ord(ch) < 0x2E80 else 2 for ch in text)


def _wrap(text: str, width: int, lang: str = "ja") -> list[str]:
    """Lines of at most `width` display columns (full-width characters count two). English breaks at
    spaces; Japanese anywhere, but not inside a Latin word or number ('km/h', '30') when a space
    within the last quarter of the line allows it."""
    if lang == "en":
        return textwrap.wrap(text, width) or [""]
    lines, line = [], ""
    for ch in text:
        if _cols(line + ch) > width:
            cut = line.rfind(" ")
            if ch.isascii() and ch != " " and cut > 0 and _cols(line[cut:]) <= width // 4 and line[-1:].isascii():
                lines.append(line[:cut])
                line = line[cut + 1 :]
            else:
                lines.append(line)
                line = ""
        line += ch
    return lines + [line] if line else lines


def _weight(w) -> int:
    if isinstance(w, int):
        return w
    return {"normal": 400, "regular": 400, "bold": 700}.get(str(w).lower(), 400)


# ---------------------------------------------------------------------------------------------


def _to_metric(features: list[dict]) -> list:
    if not features:
        return []
    geoms = gpd.GeoSeries([shape(f["geometry"]) for f in features], crs=LONLAT_CRS).to_crs(METRIC_CRS)
    return list(geoms)


def _lines(geom):
    return list(geom.geoms) if hasattr(geom, "geoms") else [geom]


def device_marker(kind: str):
    """The device symbol of the HTML map (maps.district_map.DEVICE_SHAPES) as a matplotlib marker path."""
    from matplotlib.path import Path as MPath

    verts, codes = [], []
    for poly in DEVICE_SHAPES[kind]:
        pts = [((x - 11) / 11, (11 - y) / 11) for x, y in poly]  # centred, y up
        verts += [*pts, pts[0]]
        codes += [MPath.MOVETO, *[MPath.LINETO] * (len(pts) - 1), MPath.CLOSEPOLY]
    return MPath(verts, codes)


@dataclass(frozen=True)
class MapPanel:
    """One road map of the sheet: a layer of maps._layers.road_layers with the shared labels, devices,
    area outline and bounds (metric coordinates), its title and subtitle, a scale bar or not."""

    fc: dict
    labels: list[dict]
    devices: list[dict]
    area: object
    bounds: tuple[float, float, float, float]
    title: str
    subtitle: str
    scalebar: bool = False


def _draw_map(ax, panel: MapPanel, texts: list[str]) -> None:
    """One road map on `ax`: roads styled like the HTML map, area outline, devices, role labels."""
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#888")
    fc, labels, devices, area, bounds = panel.fc, panel.labels, panel.devices, panel.area, panel.bounds
    title, subtitle, scalebar = panel.title, panel.subtitle, panel.scalebar
    feats = fc["features"]
    if area is not None:
        for poly in _lines(area):
            xs, ys = poly.exterior.xy
            ax.plot(xs, ys, color="#222", lw=1.0, ls=(0, (6, 4)), zorder=1)
    for f, g in zip(feats, _to_metric(feats), strict=True):
        p = f["properties"]
        style = p["style"]
        for line in _lines(g):
            xs, ys = line.xy
            if p["kind"] == "value":
                lw = 2.6 if style.get("weight", 5) > 5 else 2.0
                ax.plot(xs, ys, color=palette.CASING_COLOR, lw=lw + 1.4, solid_capstyle="round", zorder=3)
                ax.plot(xs, ys, color=style["color"], lw=lw, solid_capstyle="round", zorder=4)
            elif p["kind"] == "insufficient":
                ax.plot(xs, ys, color=palette.INSUFFICIENT_COLOR, lw=1.6, ls=(0, (3, 2.5)), zorder=2)
            else:
                ax.plot(xs, ys, color=palette.NO_DATA_COLOR, lw=0.7, zorder=2)
    for dev in devices:
        ax.plot(
            [dev["xy"][0]],
            [dev["xy"][1]],
            marker=device_marker(dev["kind"]),
            markersize=7.5,
            color=palette.DEVICE_COLOR,
            markeredgecolor="white",
            markeredgewidth=0.6,
            zorder=7,
            ls="none",
        )
    for lab in labels:
        x, y = lab["xy"]
        treated = lab["role"] == "treated"
        ax.annotate(
            lab["label"],
            (x, y),
            xytext=(0, 8),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=6.5,
            fontweight="bold",
            color="#0b4f8a" if treated else "#444",
            zorder=8,
            bbox=dict(
                boxstyle="round,pad=0.2",
                fc="white",
                ec="#0b4f8a" if treated else "#666",
                ls="-" if treated else "--",
                lw=0.8,
            ),
        )
        texts.append(lab["label"])
    minx, miny, maxx, maxy = bounds
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)
    ax.set_title(f"{title}\n", fontsize=10, fontweight="bold", loc="left", pad=2)
    ax.text(0, 1.01, subtitle, transform=ax.transAxes, fontsize=7, color="#333", va="bottom")
    texts += [title, subtitle]
    if scalebar:
        span = maxx - minx
        length = 10 ** math.floor(math.log10(span / 4))
        length *= 5 if span / 4 >= 5 * length else 2 if span / 4 >= 2 * length else 1
        x0, y0 = minx + 0.04 * span, miny + 0.04 * (maxy - miny)
        ax.plot([x0, x0 + length], [y0, y0], color="#222", lw=2, zorder=9)
        label = f"{length:.0f} m"
        ax.text(x0 + length / 2, y0 + 0.012 * (maxy - miny), label, ha="center", va="bottom", fontsize=6.5, zorder=9)
        texts.append(label)


def _legend_rows(
    ax,
    rows: list[tuple[str, str, str]],
    texts: list[str],
    title: str | None = None,
    fontsize: float = 7.0,
    top: float = 1.0,
    step: float = 0.075,
) -> float:
    """Vertical legend (kind, colour, text) on an axis without frame; returns the next free y."""
    y = top
    if title:
        ax.text(
            0, y, title, fontsize=fontsize + 0.5, fontweight="bold", va="top", transform=ax.transAxes, clip_on=False
        )
        texts.append(title)
        y -= step * 1.25
    for kind, color, text in rows:
        yy = y - step * 0.35
        if kind == "value":
            ax.plot(
                [0.0, 0.11],
                [yy, yy],
                color=palette.CASING_COLOR,
                lw=4.2,
                solid_capstyle="round",
                transform=ax.transAxes,
                clip_on=False,
            )
            ax.plot(
                [0.0, 0.11],
                [yy, yy],
                color=color,
                lw=2.8,
                solid_capstyle="round",
                transform=ax.transAxes,
                clip_on=False,
            )
        elif kind == "insufficient":
            ax.plot([0.0, 0.11], [yy, yy], color=color, lw=1.6, ls=(0, (3, 2.5)), transform=ax.transAxes, clip_on=False)
        elif kind == "area":
            ax.plot([0.0, 0.11], [yy, yy], color=color, lw=1.0, ls=(0, (6, 4)), transform=ax.transAxes, clip_on=False)
        elif kind in DEVICE_SHAPES:
            ax.plot(
                [0.055],
                [yy],
                marker=device_marker(kind),
                markersize=7.5,
                color=color,
                ls="none",
                markeredgecolor="white",
                markeredgewidth=0.6,
                transform=ax.transAxes,
                clip_on=False,
            )
        else:
            ax.plot([0.0, 0.11], [yy, yy], color=color, lw=0.7, transform=ax.transAxes, clip_on=False)
        ax.text(0.15, yy, text, fontsize=fontsize, va="center", transform=ax.transAxes, clip_on=False)
        texts.append(text)
        y -= step
    return y


def draw_trend(ax, tr: Trend, pub: PublicResults, lang: str, texts: list[str], title: bool = True) -> None:
    """The monthly trend (maps._trend) on `ax`: treated and comparison streets with 95 % bands, the treated
    street's before and after levels, months on the x axis, the legend to the right; public figures only."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    f = tr.factor
    xs = np.array([m.year * 12 + m.month - 1 for m in tr.months], dtype=float)
    for i, sup in enumerate(tr.suppressed["treated"]):
        if sup:
            ax.axvspan(xs[i] - 0.45, xs[i] + 0.45, color=SUPPRESSED_FILL, lw=0, zorder=0)
    for level, colour, dash in (
        (tr.before_level, BEFORE_LEVEL_COLOUR, (0, (5, 3))),
        (tr.after_level, TREATED_COLOUR, (0, (1, 2))),
    ):
        if not np.isnan(level):
            ax.axhline(f * level, color=colour, lw=1.0, ls=dash, zorder=1)
    for unit, colour in (("control", CONTROL_COLOUR), ("treated", TREATED_COLOUR)):
        val, lo, hi = tr.value[unit] * f, tr.low[unit] * f, tr.high[unit] * f
        for a, b in runs(val, tr.months):
            sl = slice(a, b)
            if b - a >= 2:
                ax.fill_between(xs[sl], lo[sl], hi[sl], color=colour, alpha=0.18, lw=0, zorder=2)
                ax.plot(xs[sl], val[sl], color=colour, lw=1.4, zorder=3)
            else:
                ax.plot([xs[a], xs[a]], [lo[a], hi[a]], color=colour, alpha=0.5, lw=3, zorder=2)
            ax.plot(xs[sl], val[sl], "o", color=colour, ms=2.8, zorder=4)
    ax.set_xlim(xs[0] - 0.6, xs[-1] + 0.6)
    ticks, labels, last = [], [], -1e9
    span = max(xs[-1] - xs[0] + 1.2, 1.0)
    for x, (mon, year) in zip(xs, month_labels(tr.months, lang), strict=True):
        if (x - last) / span >= 0.075:  # labels at least 7.5 % of the axis apart
            ticks.append(x)
            labels.append(f"{mon}\n{year}" if year else mon)
            last = x
    ax.set_xticks(ticks, labels, fontsize=6)
    ax.tick_params(axis="y", labelsize=6)
    ax.set_ylabel(w.unit(tr.indicator, lang), fontsize=6.5)
    ax.grid(axis="y", color="#e3e3e3", lw=0.5)
    ax.set_axisbelow(True)
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)
    label = w.indicator_label(
        tr.indicator,
        lang,
        {int(x) for x in pub.roads.loc[pub.roads["role"] == "treated", "limit_kmh"].dropna()},
        capital=True,
    )
    heading = tt("title", lang, label=label)
    if title:
        ax.set_title(heading, fontsize=7.5, loc="left", pad=3)
        texts.append(heading)
    handles = [
        Line2D([], [], color=TREATED_COLOUR, lw=1.4, marker="o", ms=2.8),
        Line2D([], [], color=CONTROL_COLOUR, lw=1.4, marker="o", ms=2.8),
        Patch(color=TREATED_COLOUR, alpha=0.18),
    ]
    names = [tt("treated", lang), tt("control", lang), tt("band", lang)]
    if not np.isnan(tr.before_level):
        handles.append(Line2D([], [], color=BEFORE_LEVEL_COLOUR, lw=1.0, ls=(0, (5, 3))))
        names.append(tt("before_level", lang))
    if not np.isnan(tr.after_level):
        handles.append(Line2D([], [], color=TREATED_COLOUR, lw=1.0, ls=(0, (1, 2))))
        names.append(tt("after_level", lang))
    if tr.suppressed["treated"].any():
        handles.append(Patch(color=SUPPRESSED_FILL))
        names.append(tt("suppressed_month", lang, k=tr.k))
    ax.legend(
        handles,
        names,
        loc="upper left",
        bbox_to_anchor=(1.03, 1.05),
        fontsize=6.3,
        frameon=False,
        handlelength=2.2,
        borderaxespad=0,
    )
    texts += [w.unit(tr.indicator, lang), *labels, *names]


TABLE_INDICATORS = ("mean", "p85", "passage_share")


def table_rows(pub: PublicResults, lang: str = "ja") -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the key figures: treated and comparison streets pooled, before / after /
    change, from comparison_results (the numbers of the headline and the report)."""
    inds = [i for i in TABLE_INDICATORS if i in pub.comparisons]
    if "passage_share" not in inds and "share" in pub.comparisons:
        inds.append("share")
    limits = {int(x) for x in pub.roads.loc[pub.roads["role"] == "treated", "limit_kmh"].dropna()}
    header = [
        w.t("sheet_street", lang),
        w.t("sheet_period", lang),
        w.t("sheet_vehicles", lang),
        *[f"{w.indicator_label(i, lang, limits, capital=True)} ({w.unit(i, lang)})" for i in inds],
    ]
    rows = []
    k = pub.public_min_vehicles
    for unit, key in (("treated", "sheet_treated"), ("control", "sheet_comparison")):
        tables = {i: pub.comparisons[i].set_index(pub.comparisons[i]["unit"].astype(str)) for i in inds}
        if not inds or unit not in tables[inds[0]].index:
            continue
        first = tables[inds[0]].loc[unit]
        name = w.t(key, lang)
        suppressed = first["flag"] == "suppressed"
        for period in ("before", "after"):
            if suppressed:
                rows.append(
                    [
                        name,
                        w.layer_name(period, lang, short=True),
                        w.t("under_k", lang, k=k),
                        *[w.too_few(k, lang, short=True)] * len(inds),
                    ]
                )
            else:
                n = first[f"n_vehicles_{period}"]
                rows.append(
                    [
                        name,
                        w.layer_name(period, lang, short=True),
                        w.fmt_count(n),
                        *[
                            (
                                "—"
                                if w.is_missing(tables[i].loc[unit, period])
                                else w.fmt_value(i, tables[i].loc[unit, period], lang)
                            )
                            for i in inds
                        ],
                    ]
                )
            name = ""
        rows.append(
            [
                "",
                w.layer_name("change", lang, short=True),
                "",
                *[
                    (
                        "—"
                        if suppressed or w.is_missing(tables[i].loc[unit, "change"])
                        else w.fmt_change(i, tables[i].loc[unit, "change"], lang)
                    )
                    for i in inds
                ],
            ]
        )
    return header, rows


@dataclass(frozen=True)
class SheetOptions:
    """How the sheet is drawn. lang: 'ja' or 'en'; indicator: the mapped indicator (default: the map's
    default); public_min_vehicles: the publication threshold; synthetic / created: as for the map
    (maps.district_map.MapOptions); png: also write the page as PNG beside the PDF."""

    lang: str = "ja"
    indicator: str | None = None
    public_min_vehicles: int = PUBLIC_MIN_VEHICLES
    synthetic: bool | None = None
    created: dt.date | None = None
    png: bool = True

    def __post_init__(self) -> None:
        w.check_lang(self.lang)


@dataclass
class Sheet:
    """What the sheet shows (from the suppressed results) and the figure it is drawn on."""

    district: District
    pub: PublicResults
    lang: str
    indicator: str
    label: str  # the indicator's name
    limits: set[int]
    fcs: dict  # maps._layers.road_layers: before / after / change
    labels: list[dict]  # role labels with metric xy
    devices: list[dict]
    area: object  # the district's outline in metric coordinates, or None
    road_bounds: tuple[float, float, float, float]  # metric
    head: object  # maps.headline.Headline
    trend: Trend | None
    synthetic: bool
    created: dt.date
    fig: object = None
    texts: list[str] = field(default_factory=list)

    @property
    def k(self) -> int:
        return self.pub.public_min_vehicles

    def text(self, x: float, y: float, s: str, **kw) -> None:
        self.fig.text(x, y, s, **kw)
        self.texts.append(s)

    def bounds_for(self, aspect: float) -> tuple[float, float, float, float]:
        """Road bounds plus padding, widened to the axes' width/height ratio so nothing is cut."""
        minx, miny, maxx, maxy = self.road_bounds
        pad = 0.06 * max(maxx - minx, maxy - miny)
        x0, y0, x1, y1 = minx - pad, miny - pad, maxx + pad, maxy + 2.2 * pad  # room for labels above the top street
        width, height = x1 - x0, y1 - y0
        if width / height < aspect:
            extra = (height * aspect - width) / 2
            x0, x1 = x0 - extra, x1 + extra
        else:
            extra = (width / aspect - height) / 2
            y0, y1 = y0 - extra, y1 + extra
        return x0, y0, x1, y1


def render_district_sheet(district: District, results: DistrictResults, out_pdf: str | Path, **options) -> SheetResult:
    """Write the A4 sheet of `district` to `out_pdf` (and the same page as PNG next to it).

    results: analysis.results.DistrictResults; suppression under the publication threshold is applied
    here. options: SheetOptions (lang, indicator, public_min_vehicles, synthetic, created, png).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib import rc_context

    opts = SheetOptions(**options)
    font = japanese_font()
    sheet = sheet_content(district, results, opts)
    # pdf.fonttype 3: glyph outlines (with ToUnicode), ~1 s; TrueType (42) subsetting of the CJK font takes ~5 s
    rc = {
        "font.family": [font.name, "DejaVu Sans"],
        "pdf.fonttype": 3,
        "axes.unicode_minus": True,
        "svg.fonttype": "none",
    }
    with rc_context(rc):
        sheet.fig = plt.figure(figsize=A4_INCHES)
        top = draw_header(sheet)
        map_h = draw_period_maps(sheet, top)
        top2 = top - map_h - 0.068
        ch_h = draw_change_map(sheet, top2)
        table_bottom = draw_key_figures(sheet, top2 - ch_h - 0.02)
        notes_top = draw_notes(sheet)
        if sheet.trend is not None:  # is the effect lasting? the monthly series, between the key figures and the notes
            draw_trend_block(sheet, table_bottom - 0.012, notes_top)
        pdf, png = save_sheet(sheet, Path(out_pdf), opts.png)
        plt.close(sheet.fig)
    return SheetResult(pdf=pdf, png=png, font=font, texts=sheet.texts)


def sheet_content(district: District, results: DistrictResults, opts: SheetOptions) -> Sheet:
    """What the sheet shows: layers, labels, devices and outline in metric coordinates, headline, trend."""
    pub = public_results(results, max(opts.public_min_vehicles, district.public_min_vehicles))
    indicator = w.indicator(opts.indicator).key if opts.indicator else layers.available_indicators(pub)[0]
    roads = layers.check_roads(pub.roads)
    limits = layers.limits_of(pub.road_stats)
    area_geojson = layers.outline(district.area_path, "district area")
    area = gpd.GeoSeries([shape(area_geojson)], crs=LONLAT_CRS).to_crs(METRIC_CRS).iloc[0] if area_geojson else None

    def to_xy(lon: float, lat: float) -> tuple[float, float]:
        pt = gpd.GeoSeries.from_xy([lon], [lat], crs=LONLAT_CRS).to_crs(METRIC_CRS).iloc[0]
        return pt.x, pt.y

    labels = [
        {**lab, "label": lab["text"][opts.lang], "xy": to_xy(lab["lon"], lab["lat"])}
        for lab in layers.label_points(district, roads)
    ]
    return Sheet(
        district=district,
        pub=pub,
        lang=opts.lang,
        indicator=indicator,
        label=w.indicator_label(indicator, opts.lang, limits, capital=True),
        limits=limits,
        fcs=layers.road_layers(pub, indicator),
        labels=labels,
        devices=[{"kind": d.kind, "xy": to_xy(d.lon, d.lat)} for d in district.devices],
        area=area,
        road_bounds=tuple(roads.to_crs(METRIC_CRS).total_bounds),
        head=headline(district, pub),
        trend=trend_data(district, pub),
        synthetic=district.synthetic_network if opts.synthetic is None else opts.synthetic,
        created=w.creation_date(district, opts.created),
    )


def draw_header(sheet: Sheet) -> float:
    """The banner (synthetic data), the title, the headline and the indicator compared; returns the
    top of the maps."""
    import matplotlib

    lang, head = sheet.lang, sheet.head
    y = 0.975
    if sheet.synthetic:
        banner = matplotlib.patches.Rectangle(
            (0, 0.962), 1, 0.038, transform=sheet.fig.transFigure, color="#c62828", zorder=0
        )
        sheet.fig.patches.append(banner)
        sheet.text(0.5, 0.981, w.banner(lang), ha="center", va="center", color="white", fontsize=12, fontweight="bold")
        y = 0.948
    sheet.text(0.05, y, w.map_title(sheet.district, lang), fontsize=16, fontweight="bold", va="top")
    # the headline: the answer first, then its figures
    y -= 0.032
    lead_color = "#0b4f8a" if head.verdict == "effect" else "#6d4c00"
    sheet.text(0.05, y, head.lead[lang], fontsize=11.5, fontweight="bold", va="top", color=lead_color)
    y -= 0.021
    detail = (" " if lang == "en" else "").join(head.details[lang])
    lines = _wrap(detail, 120 if lang == "ja" else 132, lang)
    sheet.fig.text(0.05, y, "\n".join(lines), fontsize=8.5, va="top", linespacing=1.45)
    sheet.texts.extend(head.details[lang])
    y -= 0.0135 * len(lines) + 0.008
    sheet.text(0.05, y, w.t("comparison_of", lang, label=sheet.label), fontsize=9.5, fontweight="bold", va="top")
    return y - 0.05


def _map_panel(sheet: Sheet, key: str, aspect: float, subtitle: str, scalebar: bool = False) -> MapPanel:
    title = w.layer_name(key, sheet.lang)
    return MapPanel(
        sheet.fcs[key], sheet.labels, sheet.devices, sheet.area, sheet.bounds_for(aspect), title, subtitle, scalebar
    )


def draw_period_maps(sheet: Sheet, top: float) -> float:
    """Row 1: before | after on the same class scale (the subtitles are the periods), their legend in
    one line under them; returns the maps' height."""
    lang, W, H = sheet.lang, *A4_INCHES
    map_h = 0.19 if sheet.trend is None else 0.145  # room for the trend chart under the key figures
    aspect = (0.435 * W) / (map_h * H)
    for i, key in enumerate(("before", "after")):
        ax = sheet.fig.add_axes((0.05 + i * 0.465, top - map_h, 0.435, map_h))
        _draw_map(ax, _map_panel(sheet, key, aspect, w.period_line(key, sheet.pub.periods[key], lang)), sheet.texts)
    seq = palette.sequential_scale(sheet.indicator).legend(lang)[::-1]
    lax = sheet.fig.add_axes((0.05, top - map_h - 0.04, 0.9, 0.03))
    lax.axis("off")
    lt = f"{sheet.label} ({w.unit(sheet.indicator, lang)})"
    lax.text(0, 0.5, "\n".join(_wrap(lt, 34, lang)), fontsize=7.2, fontweight="bold", va="center")
    sheet.texts.append(lt)
    step = 0.72 / max(len(seq), 1)
    for j, (color, t) in enumerate(seq):
        x = 0.27 + j * step
        lax.plot([x, x + 0.03], [0.5, 0.5], color=palette.CASING_COLOR, lw=4.2, solid_capstyle="round")
        lax.plot([x, x + 0.03], [0.5, 0.5], color=color, lw=2.8, solid_capstyle="round")
        lax.text(x + 0.038, 0.5, t, fontsize=7, va="center")
        sheet.texts.append(t)
    lax.set_xlim(0, 1)
    lax.set_ylim(0, 1)
    return map_h


def draw_change_map(sheet: Sheet, top2: float) -> float:
    """Row 2: the change map with its legend (classes, devices, suppressed, outline); returns its height."""
    lang, W, H = sheet.lang, *A4_INCHES
    ch_w, ch_h = 0.58, (0.215 if sheet.trend is None else 0.165)
    leg = 1.0 if sheet.trend is None else 1.1  # legend rows a little taller in the shorter axes (the trend layout)
    ax = sheet.fig.add_axes((0.05, top2 - ch_h, ch_w, ch_h))
    subtitle = w.t("legend_change", lang, label=sheet.label, unit=w.unit(sheet.indicator, lang, True))
    _draw_map(ax, _map_panel(sheet, "change", (ch_w * W) / (ch_h * H), subtitle, scalebar=True), sheet.texts)
    div = palette.change_scale(sheet.indicator)
    lax = sheet.fig.add_axes((0.66, top2 - ch_h, 0.31, ch_h))
    lax.axis("off")
    title = f"{w.layer_name('change', lang, short=True)} ({div.unit(lang)})"
    rows = [("value", c, t) for c, t in div.legend(lang)]
    yy = _legend_rows(lax, rows, sheet.texts, title=title, top=0.99, step=0.058 * leg, fontsize=6.8)
    down, up = div.words(lang)
    hint = w.t("change_hint", lang, down=down, up=up)
    hint_lines = _wrap(hint, 44, lang)
    lax.text(0, yy - 0.005, "\n".join(hint_lines), fontsize=6.3, color="#333", va="top", transform=lax.transAxes)
    sheet.texts.append(hint)
    common_top = yy - (0.008 + 0.0105 * len(hint_lines)) / ch_h
    _legend_rows(lax, _common_legend(sheet), sheet.texts, top=common_top, step=0.058 * leg, fontsize=6.3)
    return ch_h


def _common_legend(sheet: Sheet) -> list[tuple[str, str, str]]:
    lang, devices = sheet.lang, sheet.district.devices
    rows = []
    for kind in sorted({d.kind for d in devices}):
        illustrative = any(d.illustrative for d in devices if d.kind == kind)
        note = w.paren(w.t("illustrative", lang), lang) if illustrative else ""
        rows.append((kind, palette.DEVICE_COLOR, w.t(f"legend_{kind}", lang) + note))
    rows += [
        ("insufficient", palette.INSUFFICIENT_COLOR, w.t("legend_too_few", lang, k=sheet.k)),
        ("nodata", palette.NO_DATA_COLOR, w.t("legend_no_data", lang)),
    ]
    if sheet.area is not None:
        rows.append(("area", "#222", w.t("legend_area", lang)))
    return rows


def draw_key_figures(sheet: Sheet, top3: float) -> float:
    """The key figures: treated and comparison streets pooled, from the stored comparison; returns the
    table's bottom."""
    lang = sheet.lang
    header, rows = table_rows(sheet.pub, lang)
    sheet.text(0.05, top3, w.t("sheet_key_figures", lang), fontsize=10, fontweight="bold", va="top")
    row_h = 0.0155 if sheet.trend is None else 0.0145
    table_top = top3 - 0.02
    bottom = table_top - row_h * (len(rows) + 2)
    tax = sheet.fig.add_axes((0.05, bottom, 0.9, row_h * (len(rows) + 2)))
    tax.axis("off")
    if not rows:
        tax.text(0, 1, w.t("sheet_no_figures", lang), fontsize=8, va="top")
        sheet.texts.append(w.t("sheet_no_figures", lang))
        return bottom
    widths = [0.2, 0.08, 0.12, 0.18, 0.2, 0.22][: len(header)]
    shown = [
        "\n".join(_wrap(h, int(widths[i] * 118) if lang == "ja" else int(widths[i] * 140), lang)[:2])
        for i, h in enumerate(header)
    ]
    tab = tax.table(cellText=rows, colLabels=shown, cellLoc="center", colWidths=widths, bbox=(0, 0, 1, 1))
    tab.auto_set_font_size(False)
    tab.set_fontsize(7.0)
    change_word = w.layer_name("change", lang, short=True)
    for (r, _c), cell in tab.get_celld().items():
        cell.set_edgecolor("#999")
        cell.set_linewidth(0.5)
        if r == 0:
            cell.set_height(2 * cell.get_height())  # two-line header
            cell.set_facecolor("#e8eef5")
            cell.set_text_props(fontweight="bold")
        elif rows[r - 1][1] == change_word:
            cell.set_facecolor("#f2f2f2")
            cell.set_text_props(fontweight="bold")
    sheet.texts.extend(header + [c for row in rows for c in row])
    return bottom


def draw_notes(sheet: Sheet) -> float:
    """Notes and credits at the foot of the page; returns the notes' top."""
    lang = sheet.lang
    note = [
        w.t("data_line", lang) + (". " if lang == "en" else "。") + w.t("method_line", lang, k=sheet.k),
        w.t("sheet_change_note", lang),
    ]
    if sheet.district.synthetic_network:
        note.append(w.t("synthetic_network_note", lang))
    if sheet.synthetic:
        note.append(w.t("synthetic_note", lang))
    credit = w.credits(sheet.district, sheet.created, lang)
    body = "\n".join(line for n in note for line in _wrap(n, 150 if lang == "ja" else 165, lang))
    credit_lines = _wrap(credit, 140 if lang == "ja" else 160, lang)
    fig = sheet.fig
    fig.text(
        0.05,
        0.014,
        "\n".join(credit_lines),
        fontsize=7.2,
        va="bottom",
        color="#111",
        fontweight="bold",
        linespacing=1.4,
    )
    sheet.texts.append(credit)
    fig.text(0.05, 0.02 + 0.0115 * len(credit_lines), body, fontsize=6.8, va="bottom", color="#222", linespacing=1.45)
    sheet.texts.extend(note)
    return 0.02 + 0.0115 * len(credit_lines) + 0.0118 * (body.count("\n") + 1)


def draw_trend_block(sheet: Sheet, top4: float, notes_top: float) -> None:
    """The monthly series (maps._trend) with its heading, between the key figures and the notes."""
    label = w.indicator_label(sheet.trend.indicator, sheet.lang, sheet.limits, capital=sheet.lang == "en")
    sheet.text(0.05, top4, tt("sheet_heading", sheet.lang, label=label), fontsize=10, fontweight="bold", va="top")
    bottom = notes_top + 0.032  # room for the month labels
    ax = sheet.fig.add_axes((0.1, bottom, 0.5, max(top4 - 0.03 - bottom, 0.05)))
    draw_trend(ax, sheet.trend, sheet.pub, sheet.lang, sheet.texts, title=False)


def save_sheet(sheet: Sheet, out_pdf: Path, png: bool) -> tuple[Path, Path | None]:
    """The page as PDF (with its title, creator and author) and, when asked, as PNG beside it."""
    out_pdf.parent.mkdir(parents=True, exist_ok=True)
    title = w.map_title(sheet.district, sheet.lang)
    meta = {
        "Title": f"{title}｜{sheet.label}",
        "Creator": "etc2calm",
        "Author": sheet.district.publication.publisher(sheet.lang),
    }
    sheet.fig.savefig(out_pdf, format="pdf", metadata=meta)
    out_png = None
    if png:
        out_png = out_pdf.with_suffix(".png")
        sheet.fig.savefig(out_png, format="png", dpi=PNG_DPI)
    return out_pdf, out_png


__all__ = [
    "render_district_sheet",
    "SheetOptions",
    "japanese_font",
    "JapaneseFont",
    "SheetResult",
    "JAPANESE_FONTS",
    "table_rows",
]
