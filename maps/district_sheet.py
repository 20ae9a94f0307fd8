"""Printable A4 sheet per district (PDF and PNG, matplotlib, no browser): before / after / change maps,
the headline table and the data note, for meetings without a screen.

Colours, classes, wording and suppression are those of the HTML map (maps.district_map.build_layers):
a road with fewer than `min_vehicles` distinct vehicles is grey dashed 「データ不足」 with no figure.
Japanese text uses a CJK font found through matplotlib's font manager (Debian's fonts-noto-cjk, or
fonts-ipaexfont); without one the sheet is not drawn (RuntimeError), never with tofu boxes.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
from shapely.geometry import shape

from config.districts import District
from config.settings import METRIC_CRS
from maps import palette
from maps.district_map import (
    LAYER_NAMES,
    _check_roads,
    _label_points,
    _outline,
    _period_line,
    build_layers,
    display_value,
    format_change,
    format_period,
    format_value,
    indicator_label,
    indicator_spec,
)

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


def _wrap(text: str, width: int) -> list[str]:
    """Lines of at most `width` display columns (full-width characters count two); Japanese has no spaces."""
    lines, line, cols = [], "", 0
    for ch in text:
        w = 1 if ord(ch) < 0x2E80 else 2
        if cols + w > width:
            lines.append(line)
            line, cols = "", 0
        line += ch
        cols += w
    return lines + [line] if line else lines


def _weight(w) -> int:
    if isinstance(w, int):
        return w
    return {"normal": 400, "regular": 400, "bold": 700}.get(str(w).lower(), 400)


# ---------------------------------------------------------------------------------------------


def _to_metric(features: list[dict]) -> list:
    geoms = gpd.GeoSeries([shape(f["geometry"]) for f in features], crs="EPSG:4326").to_crs(METRIC_CRS)
    return list(geoms)


def _lines(geom):
    return list(geom.geoms) if hasattr(geom, "geoms") else [geom]


def _draw_map(ax, fc: dict, labels: list[dict], area, bounds, title: str, subtitle: str, texts: list[str],
              scalebar: bool = False) -> None:
    """One road map on `ax`: roads styled like the HTML map, area outline, role labels."""
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#888")
    feats = fc["features"]
    geoms = _to_metric(feats)
    if area is not None:
        for poly in _lines(area):
            xs, ys = poly.exterior.xy
            ax.plot(xs, ys, color="#222", lw=1.0, ls=(0, (6, 4)), zorder=1)
    for f, g in zip(feats, geoms):
        p = f["properties"]
        style = p["style"]
        for line in _lines(g):
            xs, ys = line.xy
            if p["kind"] == "value":
                w = 2.6 if style.get("weight", 5) > 5 else 2.0
                ax.plot(xs, ys, color=palette.CASING_COLOR, lw=w + 1.4, solid_capstyle="round", zorder=3)
                ax.plot(xs, ys, color=style["color"], lw=w, solid_capstyle="round", zorder=4)
            elif p["kind"] == "insufficient":
                ax.plot(xs, ys, color=palette.INSUFFICIENT_COLOR, lw=1.6, ls=(0, (3, 2.5)), zorder=2)
            else:
                ax.plot(xs, ys, color=palette.NO_DATA_COLOR, lw=0.7, zorder=2)
    for lab in labels:
        x, y = lab["xy"]
        treated = lab["role"] == "treated"
        ax.annotate(lab["text"], (x, y), xytext=(0, 7), textcoords="offset points", ha="center", va="bottom",
                    fontsize=6.5, fontweight="bold", color="#0b4f8a" if treated else "#444", zorder=6,
                    bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="#0b4f8a" if treated else "#666",
                              ls="-" if treated else "--", lw=0.8))
        texts.append(lab["text"])
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
        ax.plot([x0, x0 + length], [y0, y0], color="#222", lw=2, zorder=7)
        label = f"{length:.0f} m"
        ax.text(x0 + length / 2, y0 + 0.012 * (maxy - miny), label, ha="center", va="bottom", fontsize=6.5,
                zorder=7)
        texts.append(label)


def _legend_rows(ax, rows: list[tuple[str, str, str]], texts: list[str], title: str | None = None,
                 fontsize: float = 7.0, top: float = 1.0, step: float = 0.075) -> float:
    """Vertical legend (kind, colour, text) on an axis without frame; returns the next free y."""
    y = top
    if title:
        ax.text(0, y, title, fontsize=fontsize + 0.5, fontweight="bold", va="top", transform=ax.transAxes)
        texts.append(title)
        y -= step * 1.25
    for kind, color, text in rows:
        yy = y - step * 0.35
        if kind == "value":
            ax.plot([0.0, 0.11], [yy, yy], color=palette.CASING_COLOR, lw=4.2, solid_capstyle="round",
                    transform=ax.transAxes)
            ax.plot([0.0, 0.11], [yy, yy], color=color, lw=2.8, solid_capstyle="round", transform=ax.transAxes)
        elif kind == "insufficient":
            ax.plot([0.0, 0.11], [yy, yy], color=color, lw=1.6, ls=(0, (3, 2.5)), transform=ax.transAxes)
        elif kind == "area":
            ax.plot([0.0, 0.11], [yy, yy], color=color, lw=1.0, ls=(0, (6, 4)), transform=ax.transAxes)
        else:
            ax.plot([0.0, 0.11], [yy, yy], color=color, lw=0.7, transform=ax.transAxes)
        ax.text(0.15, yy, text, fontsize=fontsize, va="center", transform=ax.transAxes)
        texts.append(text)
        y -= step
    return y


def _headline_rows(indicator_names: dict[str, str], headline: pd.DataFrame | None, stats: pd.DataFrame,
                   roads: gpd.GeoDataFrame, before: str, after: str, min_vehicles: int) -> list[list[str]]:
    """Table rows: per group (treated / comparison; pooled from `headline`, else per road) before, after, change."""
    groups: list[tuple[str, pd.DataFrame]] = []
    if headline is not None and len(headline):
        for key, name in (("treated", "対策道路（まとめ）"), ("comparison", "比較道路（まとめ）")):
            rows = headline[headline["road_group"] == key]
            if len(rows):
                groups.append((name, rows))
    else:
        names = dict(zip(roads["road_id"], roads["name"]))
        roles = dict(zip(roads["road_id"], roads["role"]))
        for role, word in (("treated", "対策道路"), ("comparison", "比較道路")):
            for rid in [r for r, ro in roles.items() if ro == role]:
                rows = stats[stats["road_id"].astype(str) == rid]
                if len(rows):
                    groups.append((f"{word}：{names.get(rid) or rid}", rows))
    table = []
    for name, rows in groups:
        by = {p: rows[rows["period"] == p].iloc[0] if (rows["period"] == p).any() else None for p in (before, after)}
        ok = {p: r is not None and not pd.isna(r["n_vehicles"]) and int(r["n_vehicles"]) >= min_vehicles
              for p, r in by.items()}
        for p, word in ((before, LAYER_NAMES["before"]), (after, LAYER_NAMES["after"])):
            r = by[p]
            if r is None or pd.isna(r["n_vehicles"]) or int(r["n_vehicles"]) == 0:
                table.append([name, word, "0", *["データなし"] * len(indicator_names)])
            elif not ok[p]:
                table.append([name, word, f"{min_vehicles} 未満", *["データ不足"] * len(indicator_names)])
            else:
                table.append([name, word, f"{int(r['n_vehicles']):,}",
                              *[format_value(i, display_value(i, r[i])) if not pd.isna(r[i]) else "—"
                                for i in indicator_names]])
            name = ""
        if ok[before] and ok[after]:
            cells = []
            for i in indicator_names:
                b, a = by[before][i], by[after][i]
                if pd.isna(b) or pd.isna(a):
                    cells.append("—")
                else:
                    cells.append(format_change(i, display_value(i, a - b)))  # the change of stored figures, rounded once
            table.append(["", "変化", "", *cells])
        else:
            table.append(["", "変化", "", *["—"] * len(indicator_names)])
    return table


def render_district_sheet(
    district: District,
    roads: gpd.GeoDataFrame,
    stats: pd.DataFrame,
    out_pdf: Path,
    *,
    before: str,
    after: str,
    headline: pd.DataFrame | None = None,
    area_path: Path | None = None,
    indicator: str = "share_at_or_over_limit",
    min_vehicles: int = 10,
    synthetic: bool = True,
    png: bool = True,
) -> SheetResult:
    """Write the A4 sheet of `district` to `out_pdf` (and the same page as PNG next to it).

    roads / stats / before / after / indicator / min_vehicles: as for maps.district_map.render_district_map.
    headline: optional pooled figures, one row per road_group ("treated" | "comparison") and period,
      with n_vehicles, mean_kmh, p85_kmh, share_at_or_over_limit (as the warehouse's group_period_stats);
      without it the table lists the treated and comparison roads one by one.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib import rc_context

    font = japanese_font()
    roads = _check_roads(roads)
    layers = build_layers(district, roads, stats, before=before, after=after, indicator=indicator,
                          min_vehicles=min_vehicles)
    periods = {"before": district.period(before), "after": district.period(after)}
    limits = {int(x) for x in stats.loc[stats["period"].astype(str).isin([before, after]), "limit_kmh"].dropna()}
    label = indicator_label(indicator, limits)
    spec = indicator_spec(indicator)
    area_geojson = _outline(area_path, "district area")
    area = (gpd.GeoSeries([shape(area_geojson)], crs="EPSG:4326").to_crs(METRIC_CRS).iloc[0]
            if area_geojson else None)
    labels = []
    for lab in _label_points(district, roads):
        pt = gpd.GeoSeries.from_xy([lab["lon"]], [lab["lat"]], crs="EPSG:4326").to_crs(METRIC_CRS).iloc[0]
        labels.append({**lab, "xy": (pt.x, pt.y)})
    minx, miny, maxx, maxy = roads.to_crs(METRIC_CRS).total_bounds
    pad = 0.06 * max(maxx - minx, maxy - miny)

    def bounds_for(aspect: float) -> tuple[float, float, float, float]:
        """Road bounds plus padding, widened to the axes' width/height ratio so nothing is cut."""
        x0, y0, x1, y1 = minx - pad, miny - pad, maxx + pad, maxy + pad
        w, h = x1 - x0, y1 - y0
        if w / h < aspect:
            extra = (h * aspect - w) / 2
            x0, x1 = x0 - extra, x1 + extra
        else:
            extra = (w / aspect - h) / 2
            y0, y1 = y0 - extra, y1 + extra
        return x0, y0, x1, y1

    texts: list[str] = []
    W, H = A4_INCHES
    # pdf.fonttype 3: glyph outlines (with ToUnicode), ~1 s; TrueType (42) subsetting of the CJK font takes ~5 s
    with rc_context({"font.family": [font.name, "DejaVu Sans"], "pdf.fonttype": 3, "axes.unicode_minus": True,
                     "svg.fonttype": "none"}):
        fig = plt.figure(figsize=A4_INCHES)

        def text(x, y, s, **kw):
            fig.text(x, y, s, **kw)
            texts.append(s)

        y = 0.975
        if synthetic:
            fig.patches.append(matplotlib.patches.Rectangle((0, 0.962), 1, 0.038, transform=fig.transFigure,
                                                            color="#c62828", zorder=0))
            text(0.5, 0.981, "合成データ（デモ用）— 実際の観測値ではありません", ha="center", va="center",
                 color="white", fontsize=12, fontweight="bold")
            y = 0.948
        title = (f"{district.name_ja}（{district.ward_ja}）生活道路の速度" if district.ward_ja
                 else f"{district.name_ja} 生活道路の速度")
        text(0.05, y, title, fontsize=17, fontweight="bold", va="top")
        text(0.05, y - 0.033, f"{label}：対策前と対策後の比較", fontsize=11.5, fontweight="bold", va="top")
        for i, key in enumerate(("before", "after")):
            line = html.unescape(_period_line(key, periods[key]))
            text(0.05, y - 0.058 - 0.017 * i, line, fontsize=8.5, va="top")

        # row 1: before | after, same sequential scale
        top = y - 0.125
        map_h = 0.215
        aspect_small = (0.435 * W) / (map_h * H)
        for i, key in enumerate(("before", "after")):
            ax = fig.add_axes((0.05 + i * 0.465, top - map_h, 0.435, map_h))
            _draw_map(ax, layers[key], labels, area, bounds_for(aspect_small), LAYER_NAMES[key],
                      format_period(periods[key]), texts)
        seq = palette.sequential_scale(indicator).legend()[::-1]
        lax = fig.add_axes((0.05, top - map_h - 0.045, 0.9, 0.03))
        lax.axis("off")
        lt = f"{label} ({spec.legend_unit})"
        lax.text(0, 0.5, lt, fontsize=7.5, fontweight="bold", va="center")
        texts.append(lt)
        for j, (color, t) in enumerate(seq):
            x = 0.25 + j * 0.125
            lax.plot([x, x + 0.03], [0.5, 0.5], color=palette.CASING_COLOR, lw=4.2, solid_capstyle="round")
            lax.plot([x, x + 0.03], [0.5, 0.5], color=color, lw=2.8, solid_capstyle="round")
            lax.text(x + 0.038, 0.5, t, fontsize=7, va="center")
            texts.append(t)
        lax.set_xlim(0, 1)
        lax.set_ylim(0, 1)

        # row 2: change map and its legend
        top2 = top - map_h - 0.075
        ch_w, ch_h = 0.58, 0.23
        ax = fig.add_axes((0.05, top2 - ch_h, ch_w, ch_h))
        _draw_map(ax, layers["change"], labels, area, bounds_for((ch_w * W) / (ch_h * H)),
                  "変化（対策後 − 対策前）", f"{label}の増減 ({spec.change_legend_unit})", texts, scalebar=True)
        lax = fig.add_axes((0.66, top2 - ch_h, 0.31, ch_h))
        lax.axis("off")
        div = [("value", c, t) for c, t in palette.change_scale(indicator).legend()]
        yy = _legend_rows(lax, div, texts, title=f"変化 ({spec.change_legend_unit})", top=0.98, step=0.062)
        hint = f"青＝{spec.down_word}（改善）、赤＝{spec.up_word}"
        lax.text(0, yy - 0.01, hint, fontsize=6.8, color="#333", va="top", transform=lax.transAxes)
        texts.append(hint)
        common = [("insufficient", palette.INSUFFICIENT_COLOR, f"データ不足（観測車両 {min_vehicles} 台未満、数値は非表示）"),
                  ("nodata", palette.NO_DATA_COLOR, "データなし")]
        if area is not None:
            common.append(("area", "#222", "対象地区"))
        _legend_rows(lax, common, texts, top=yy - 0.08, step=0.062, fontsize=6.5)

        # headline table
        inds = {k: indicator_label(k, limits) for k in ("mean_kmh", "p85_kmh", "share_at_or_over_limit")
                if k in stats.columns or (headline is not None and k in headline.columns)}
        rows = _headline_rows(inds, headline, stats, roads, before, after, min_vehicles)
        max_rows = 9
        more = ""
        if len(rows) > max_rows:  # per-road fallback with many roads: the first groups only
            more = f"（ほか {sum(1 for r in rows[max_rows:] if r[0])} 本は地図を参照）"
            rows = rows[:max_rows]
        top3 = top2 - ch_h - 0.022
        tt = "主な数値" + more
        text(0.05, top3, tt, fontsize=10, fontweight="bold", va="top")
        units = {"mean_kmh": "km/h", "p85_kmh": "km/h", "share_at_or_over_limit": "%"}
        header = ["道路", "期間", "観測車両（台）", *[f"{v}（{units[k]}）" for k, v in inds.items()]]
        row_h = 0.0155
        table_top = top3 - 0.022
        tax = fig.add_axes((0.05, table_top - row_h * (len(rows) + 1), 0.9, row_h * (len(rows) + 1)))
        tax.axis("off")
        if rows:
            widths = [0.25, 0.08, 0.13, 0.15, 0.2, 0.19][: len(header)]
            tab = tax.table(cellText=rows, colLabels=header, cellLoc="center", colWidths=widths,
                            bbox=(0, 0, 1, 1))
            tab.auto_set_font_size(False)
            tab.set_fontsize(7.5)
            for (r, c), cell in tab.get_celld().items():
                cell.set_edgecolor("#999")
                cell.set_linewidth(0.5)
                if r == 0:
                    cell.set_facecolor("#e8eef5")
                    cell.set_text_props(fontweight="bold")
                elif rows[r - 1][1] == "変化":
                    cell.set_facecolor("#f2f2f2")
                    cell.set_text_props(fontweight="bold")
            texts += header + [c for row in rows for c in row]
        else:
            tax.text(0, 1, "対策道路・比較道路の数値なし", fontsize=8, va="top")
            texts.append("対策道路・比較道路の数値なし")

        # note
        note = [
            "データ：ETC2.0 プローブデータ。方法：速度は各地点の瞬間速度で、道路ごとに集計しました。"
            f"観測車両が {min_vehicles} 台未満の道路・期間は数値を表示しません（灰色の破線「データ不足」）。",
            "変化 ＝ 対策後 − 対策前（丸める前の数値の差）。平均速度・85パーセンタイル速度は km/h、"
            "割合は制限速度以上で走った地点の割合（%）、その変化はポイント。",
        ]
        if district.synthetic_network:
            note.append("道路網は架空のものです（デモ用）。")
        if synthetic:
            note.append("この資料は合成データ（デモ用）です。実際の観測値ではありません。")
        body = "\n".join(line for n in note for line in _wrap(n, 150))
        text(0.05, 0.018, body, fontsize=7, va="bottom", color="#222", linespacing=1.5)
        texts.extend(note)

        out_pdf = Path(out_pdf)
        out_pdf.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out_pdf, format="pdf", metadata={"Title": f"{title}｜{label}", "Creator": "etc2calm"})
        out_png = None
        if png:
            out_png = out_pdf.with_suffix(".png")
            fig.savefig(out_png, format="png", dpi=PNG_DPI)
        plt.close(fig)
    return SheetResult(pdf=out_pdf, png=out_png, font=font, texts=texts)


__all__ = ["render_district_sheet", "japanese_font", "JapaneseFont", "SheetResult", "JAPANESE_FONTS"]
