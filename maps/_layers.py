"""Map layers shared by the HTML map and the printed sheet: roads styled per indicator and period,
role labels, outlines, traffic-calming devices, braking hot spots and cut-through routes.

Everything is built from maps.public.PublicResults (already suppressed): a road under the
publication threshold is 'insufficient' (grey, dashed, no figure) under every indicator. Geometries
are GeoJSON in EPSG:4326; texts come in both languages ({'ja': …, 'en': …}).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import LineString, MultiLineString, mapping, shape
from shapely.ops import linemerge, unary_union

import maps._palette as palette
import maps.wording as w
from config.districts import District
from config.settings import LONLAT_CRS, RESIDENTIAL_MAX_LIMIT_KMH
from geo.network import road_classes
from maps.public import PublicResults

LAYER_KEYS = ("before", "after", "change")
ROAD_COLUMNS = ("road_id", "name")
_DRAW_ORDER = {"nodata": 0, "insufficient": 1, "value": 2}
# Device symbols in a 22 × 22 box (y down), drawn alike on map and sheet: a hump is a bump
# (triangle), a narrowing two wedges pinching the road.
DEVICE_SHAPES = {
    "hump": [[(2, 18), (11, 3), (20, 18)]],
    "narrowing": [[(2, 4), (10, 11), (2, 18)], [(20, 4), (12, 11), (20, 18)]],
}


def check_roads(roads: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Validated copy of `roads` in EPSG:4326 with str road_id, name_en and role; ValueError on bad input."""
    if not isinstance(roads, gpd.GeoDataFrame):
        raise ValueError(f"roads must be a GeoDataFrame, got {type(roads).__name__}")
    missing = [c for c in ROAD_COLUMNS if c not in roads.columns]
    if missing:
        raise ValueError(f"roads is missing column(s) {missing} (has {list(roads.columns)})")
    if roads.empty:
        raise ValueError("roads is empty: nothing to map")
    roads = roads.copy()
    if roads.crs is None:
        minx, miny, maxx, maxy = roads.total_bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise ValueError("roads has no CRS and its coordinates are not longitude/latitude; expected EPSG:4326")
        roads = roads.set_crs(LONLAT_CRS)
    elif roads.crs.to_epsg() != 4326:
        roads = roads.to_crs(LONLAT_CRS)
    bad = roads[~roads.geom_type.isin(["LineString", "MultiLineString"])]
    if len(bad):
        raise ValueError(f"roads must be LineStrings; road_id {bad['road_id'].iloc[0]!r} is {bad.geom_type.iloc[0]}")
    roads["road_id"] = roads["road_id"].astype(str)
    for col, default in (("role", "residential"), ("name_en", "")):
        if col not in roads.columns:
            roads[col] = default
    roads["name"] = roads["name"].fillna("").astype(str)
    roads["name_en"] = roads["name_en"].fillna("").astype(str)
    if "label_ja" not in roads.columns:  # how every output names the road (maps.wording.road_labels)
        labels = w.road_labels(roads)
        roads["label_ja"] = [labels[r]["ja"] for r in roads["road_id"]]
        roads["label_en"] = [labels[r]["en"] for r in roads["road_id"]]
    return roads


def check_stats(stats: pd.DataFrame, column: str) -> pd.DataFrame:
    """Validated public stats (periods 'before' and 'after', one row per road and period); ValueError on bad input."""
    needed = ("road_id", "period", "n_vehicles", "limit_kmh", "public", column)
    missing = [c for c in needed if c not in stats.columns]
    if missing:
        raise ValueError(f"stats is missing column(s) {missing} (has {list(stats.columns)})")
    stats = stats.loc[stats["period"].astype(str).isin(["before", "after"])].copy()
    stats["road_id"] = stats["road_id"].astype(str)
    dup = stats.duplicated(["road_id", "period"])
    if dup.any():
        row = stats[dup].iloc[0]
        raise ValueError(f"stats has more than one row for road_id {row['road_id']!r}, period {row['period']!r}")
    if w.indicator(column).kind == "share":
        share = stats[column].dropna()
        if ((share < 0) | (share > 1)).any():
            raise ValueError(f"{column} must be a fraction 0..1 (is it in percent?)")
    return stats


def available_indicators(results: PublicResults) -> tuple[str, ...]:
    """The map's indicators (maps.wording.MAP_INDICATORS keys) with stored figures, in chooser order."""
    stats = results.road_stats
    out = []
    for key in w.MAP_INDICATORS:
        col = w.INDICATORS[key].column
        if col in stats.columns and (stats[col].notna().any() or not (stats["public"] == "ok").any()):
            out.append(key)
    return tuple(out) or ("share",)


def limits_of(stats: pd.DataFrame) -> set[int]:
    return {int(x) for x in stats["limit_kmh"].dropna()}


def _name(road, lang: str) -> str:
    """The road's name on every output: its name, else its class and a short number (check_roads)."""
    return road.label_en if lang == "en" else road.label_ja


def _tip(road, lines: dict[str, list[str]]) -> dict[str, str]:
    out = {}
    for lang in w.LANGS:
        head = f"<b>{html.escape(_name(road, lang))}</b>"
        role = w.role_label(road.role, lang)
        if role and role not in _name(road, lang):
            head += f" ({role})" if lang == "en" else f"（{role}）"
        elif road.role == "arterial" and w.road_class_word("arterial", lang) not in _name(road, lang):
            head += w.t("road_class_tip", lang, cls=w.road_class_word("arterial", lang))
        out[lang] = "<br>".join([head, *lines[lang]])
    return out


def _style(kind: str, color: str | None = None, emphasis: bool = False) -> dict:
    if kind == "value":
        return {"color": color, "weight": 7 if emphasis else 5, "opacity": 1.0, "lineCap": "round"}
    if kind == "arterial":  # a main road's figures are there (tooltip), but not in the 生活道路 palette
        return {"color": palette.ARTERIAL_COLOR, "weight": 5, "opacity": 1.0, "lineCap": "round"}
    if kind == "insufficient":
        return {"color": palette.INSUFFICIENT_COLOR, "weight": 4, "opacity": 0.95, "dashArray": "7 6"}
    return {"color": palette.NO_DATA_COLOR, "weight": 1.5, "opacity": 0.9}


def _value_style(road, color: str, emphasis: bool) -> dict:
    """A road with a figure: in the indicator's colour, or drawn as a main road (role 'arterial')."""
    return _style("arterial") if road.role == "arterial" else _style("value", color, emphasis)


@dataclass(frozen=True)
class _Ctx:
    indicator: str  # maps.wording indicator key
    column: str
    k: int
    periods: dict  # 'before' / 'after' → Period
    limits: set[int]


def _label(ctx: _Ctx, row, lang: str) -> str:
    """Indicator name for one road: a share names the road's own limit."""
    if row is not None and not pd.isna(row["limit_kmh"]):
        return w.indicator_label(ctx.indicator, lang, {int(row["limit_kmh"])}, capital=True)
    return w.indicator_label(ctx.indicator, lang, ctx.limits, capital=True)


def _sep(lang: str) -> str:
    return ": " if lang == "en" else "："


def _period_feature(road, row, key: str, ctx: _Ctx) -> dict:
    period = ctx.periods[key]
    lines = {lang: [html.escape(w.period_line(key, period, lang))] for lang in w.LANGS}
    emphasis = road.role in w.ROLES
    props: dict = {"road_id": road.road_id, "role": road.role}
    status = "nodata" if row is None else row["public"]
    if status == "suppressed":
        props.update(kind="insufficient", style=_style("insufficient"))
        for lang in w.LANGS:
            lines[lang].append(w.too_few(ctx.k, lang))
    elif status != "ok" or pd.isna(row[ctx.column]):
        props.update(kind="nodata", style=_style("nodata"))
        for lang in w.LANGS:
            lines[lang].append(w.t("no_data_period", lang))
    else:
        value = w.display(ctx.column, row[ctx.column])
        color = palette.sequential_color(value, ctx.column)
        props.update(kind="value", value=value, style=_value_style(road, color, emphasis))
        for lang in w.LANGS:
            lines[lang].append(
                f"{_label(ctx, row, lang)}{_sep(lang)}<b>{w.fmt_value(ctx.column, row[ctx.column], lang)}</b>"
            )
            lines[lang].append(w.t("vehicles_seen", lang, n=w.fmt_count(row["n_vehicles"])))
    props["tip"] = _tip(road, lines)
    return {"type": "Feature", "properties": props, "geometry": mapping(road.geometry)}


def _change_feature(road, before, after, ctx: _Ctx) -> dict:
    lines = {
        lang: [
            w.layer_name("change", lang),
            html.escape(w.period_line("before", ctx.periods["before"], lang)),
            html.escape(w.period_line("after", ctx.periods["after"], lang)),
        ]
        for lang in w.LANGS
    }
    emphasis = road.role in w.ROLES
    props: dict = {"road_id": road.road_id, "role": road.role}
    statuses = {"nodata" if r is None else r["public"] for r in (before, after)}
    if "suppressed" in statuses:
        props.update(kind="insufficient", style=_style("insufficient"))
        for lang in w.LANGS:
            lines[lang].append(w.t("too_few_either", lang, k=ctx.k))
    elif statuses != {"ok"} or pd.isna(before[ctx.column]) or pd.isna(after[ctx.column]):
        props.update(kind="nodata", style=_style("nodata"))
        for lang in w.LANGS:
            lines[lang].append(w.t("no_comparison", lang))
    else:
        raw = after[ctx.column] - before[ctx.column]  # the change of the stored figures, rounded once
        delta = w.display(ctx.column, raw)
        props.update(
            kind="value",
            value=delta,
            before=w.display(ctx.column, before[ctx.column]),
            after=w.display(ctx.column, after[ctx.column]),
            style=_value_style(road, palette.change_color(delta, ctx.column), emphasis),
        )
        for lang in w.LANGS:
            b = w.fmt_value(ctx.column, before[ctx.column], lang)
            a = w.fmt_value(ctx.column, after[ctx.column], lang)
            lines[lang].append(
                f"{_label(ctx, after, lang)}{_sep(lang)}{b} → {a} (<b>{w.fmt_change(ctx.column, raw, lang)}</b>)"
                if lang == "en"
                else f"{_label(ctx, after, lang)}：{b} → {a}（<b>{w.fmt_change(ctx.column, raw, lang)}</b>）"
            )
            lines[lang].append(
                w.t("vehicles_both", lang, b=w.fmt_count(before["n_vehicles"]), a=w.fmt_count(after["n_vehicles"]))
            )
    props["tip"] = _tip(road, lines)
    return {"type": "Feature", "properties": props, "geometry": mapping(road.geometry)}


def road_layers(results: PublicResults, indicator: str = "passage_share") -> dict[str, dict]:
    """GeoJSON FeatureCollections {'before', 'after', 'change'} of every road for one indicator.

    Feature properties: road_id, kind ('value' | 'insufficient' | 'nodata'), style (Leaflet path
    options), tip ({'ja', 'en'} tooltip HTML) and, for kind 'value' only, value (display units:
    percent or km/h; change: percentage points or km/h, after − before, rounded once from the stored
    values). Suppressed roads carry no figure at all.
    """
    if not isinstance(results, PublicResults):
        raise ValueError("road_layers needs maps.public.public_results(...) (suppressed results)")
    ind = w.indicator(indicator)
    roads = check_roads(results.roads)
    stats = check_stats(results.road_stats, ind.column)
    by_period = {key: stats[stats["period"] == key].set_index("road_id") for key in ("before", "after")}
    ctx = _Ctx(ind.key, ind.column, results.public_min_vehicles, results.periods, limits_of(stats))
    layers: dict[str, list] = {key: [] for key in LAYER_KEYS}
    for road in roads.itertuples(index=False):
        rows = {k: (by_period[k].loc[road.road_id] if road.road_id in by_period[k].index else None) for k in by_period}
        layers["before"].append(_period_feature(road, rows["before"], "before", ctx))
        layers["after"].append(_period_feature(road, rows["after"], "after", ctx))
        layers["change"].append(_change_feature(road, rows["before"], rows["after"], ctx))
    return {
        key: {
            "type": "FeatureCollection",
            "features": sorted(feats, key=lambda f: _DRAW_ORDER[f["properties"]["kind"]]),
        }
        for key, feats in layers.items()
    }


# Where a role label may sit along its street (fractions of its longest piece), in order of preference:
# the page (maps/assets/map.js) takes the first place where the label neither overlaps another label
# nor leaves the uncovered part of the map, above or below the street.
LABEL_PLACES = (0.5, 0.3, 0.7, 0.15, 0.85, 0.05, 0.95)


def label_points(district: District, roads: gpd.GeoDataFrame) -> list[dict]:
    """Permanent 対策道路 / 比較道路 labels: one per road, at the middle of its longest merged piece
    (lat, lon), with the other places it may take (candidates: [lat, lon] at LABEL_PLACES)."""
    roads = check_roads(roads)
    roles = dict(zip(roads["road_id"], roads["role"], strict=True))
    for rid in district.treated_roads:
        roles[str(rid)] = "treated"
    for rid in district.comparison_roads:
        roles.setdefault(str(rid), "comparison")
    labels = []
    for rid, group in roads.groupby("road_id", sort=False):
        role = roles.get(rid)
        if role not in w.ROLES:
            continue
        merged = unary_union(list(group.geometry))
        if isinstance(merged, MultiLineString):
            merged = linemerge(merged)
        pieces = list(merged.geoms) if hasattr(merged, "geoms") else [merged]
        longest = max((p for p in pieces if isinstance(p, LineString)), key=lambda p: p.length)
        point = longest.interpolate(0.5, normalized=True)
        places = [longest.interpolate(f, normalized=True) for f in LABEL_PLACES]
        labels.append(
            {
                "lat": point.y,
                "lon": point.x,
                "role": role,
                "road_id": rid,
                "text": {lang: w.role_label(role, lang) for lang in w.LANGS},
                "candidates": [[round(p.y, 7), round(p.x, 7)] for p in places],
            }
        )
    return labels


def outline(path: Path | None, what: str, ward: District | None = None) -> dict | None:
    """Outline GeoJSON geometry (EPSG:4326) from `path`, the ward file filtered to the district's ward.

    The ward is optional: without a ward in the district file, without a wards file, or when the
    wards file does not hold the district's ward (the bundled file holds 港北区 and 緑区 only), there is
    no ward outline (None) and the map, report and sheet do without it."""
    if path is None:
        return None
    path = Path(path)
    if ward is not None and (not (ward.ward_ja or ward.ward_code) or not path.exists()):
        return None
    if not path.exists():
        raise ValueError(f"{what} file {path} does not exist")
    gdf = gpd.read_file(path)
    if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(LONLAT_CRS)
    if ward is not None:
        mask = pd.Series(False, index=gdf.index)
        if "N03_004" in gdf.columns and ward.ward_ja:
            mask |= gdf["N03_004"].astype(str) == ward.ward_ja
        if "N03_007" in gdf.columns and ward.ward_code:
            mask |= gdf["N03_007"].astype(str).str.zfill(5) == str(ward.ward_code).zfill(5)
        gdf = gdf[mask]
        if gdf.empty:
            return None
    if gdf.empty:
        raise ValueError(f"{what} file {path} has no features")
    return mapping(unary_union(list(gdf.geometry)).simplify(0.00002, preserve_topology=True))


def device_layer(district: District) -> dict | None:
    """FeatureCollection of the district's traffic-calming devices (points), or None without any."""
    if not district.devices:
        return None
    features = []
    for dev in district.devices:
        tip = {}
        for lang in w.LANGS:
            lines = [f"<b>{w.t(dev.kind, lang)}</b>", w.t("installed", lang, date=w.fmt_date(dev.installed, lang))]
            if dev.illustrative:
                lines.append(f"({w.t('illustrative', lang)})" if lang == "en" else f"（{w.t('illustrative', lang)}）")
            note = dev.note_en if lang == "en" else dev.note_ja
            if note:
                lines.append(html.escape(note))
            tip[lang] = "<br>".join(lines)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [dev.lon, dev.lat]},
                "properties": {
                    "kind": dev.kind,
                    "installed": dev.installed.isoformat(),
                    "illustrative": dev.illustrative,
                    "tip": tip,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def braking_layer(results: PublicResults, period: str = "after") -> dict | None:
    """FeatureCollection of public sudden-braking hot spots of a period (circle size ~ sqrt(count)), or None."""
    hs = results.hotspots
    hs = hs[hs["period"] == period] if len(hs) else hs
    if not len(hs):
        return None
    top = max(float(hs["n_events"].max()), 1.0)
    p = results.periods[period]
    features = []
    for lon, lat, count in zip(hs["lon"], hs["lat"], hs["n_events"].astype(int), strict=True):
        tip = {
            lang: "<br>".join(
                [
                    f"<b>{w.t('braking_layer', lang)}</b>",
                    w.t("braking_tip", lang, n=count),
                    html.escape(w.t("period", lang, text=w.fmt_period(p, lang))),
                ]
            )
            for lang in w.LANGS
        }
        style = {
            "radius": round(5 + 11 * (count / top) ** 0.5, 1),
            "color": "#ffffff",
            "weight": 1.5,
            "fillColor": palette.BRAKING_COLOR,
            "fillOpacity": 0.75,
            "className": "e2c-braking",
        }
        features.append(
            {
                "type": "Feature",
                "properties": {"count": int(count), "tip": tip, "style": style},
                "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def cut_through_layer(results: PublicResults, period: str = "after") -> dict | None:
    """FeatureCollection of public cut-through streets of a period (line width ~ share), or None."""
    cs = results.cut_through_streets
    if not len(cs):
        return None
    roads = check_roads(results.roads)
    residential = roads[roads["limit_kmh"] <= RESIDENTIAL_MAX_LIMIT_KMH] if "limit_kmh" in roads else roads
    lines = residential.merge(cs.loc[cs["period"] == period, ["road_id", "share_cut_through"]], on="road_id")
    if not len(lines):
        return None
    top = max(float(lines["share_cut_through"].max()), 1e-9)
    features = []
    for road in lines.itertuples(index=False):
        value = float(road.share_cut_through)
        tip = {}
        for lang in w.LANGS:
            name = _name(road, lang)
            head = f"<b>{w.t('cut_layer', lang)}{_sep(lang)}{html.escape(name)}</b>"
            tip[lang] = f"{head}<br>{w.t('cut_share_tip', lang, v=w.fmt_value('share', value, lang))}"
        style = {
            "color": palette.CUT_THROUGH_COLOR,
            "weight": round(3 + 4 * value / top, 1),
            "opacity": 0.85,
            "dashArray": "1 8",
            "lineCap": "round",
            "className": "e2c-cut",
        }
        features.append(
            {
                "type": "Feature",
                "properties": {"share": value, "tip": tip, "style": style},
                "geometry": mapping(road.geometry),
            }
        )
    return {"type": "FeatureCollection", "features": features}


def limit_note(results: PublicResults, lang: str = "ja") -> str:
    """'制限速度：生活道路 30 km/h、幹線道路 40・50 km/h' when roads have different limits, else ''."""
    stats = results.road_stats
    roads = check_roads(results.roads)
    rows = stats[stats["period"].isin(["before", "after"])].dropna(subset=["limit_kmh"])
    classes = road_classes(
        roads["highway"] if "highway" in roads else [""] * len(roads),
        roads["limit_kmh"] if "limit_kmh" in roads else [float("nan")] * len(roads),
        roads["role"],
    )
    classes = np.where(roads["role"].isin(list(w.ROLES)), "residential", classes)
    class_of = dict(zip(roads["road_id"], classes, strict=True))
    groups: dict[str, set[int]] = {"residential": set(), "arterial": set(), "service": set(), "other": set()}
    for rid, limit in zip(rows["road_id"].astype(str), rows["limit_kmh"], strict=True):
        cls = class_of.get(rid, "residential" if limit <= RESIDENTIAL_MAX_LIMIT_KMH else "other")
        groups[cls].add(int(limit))
    if len(set().union(*groups.values())) <= 1:
        return ""
    sep = (", ", "/") if lang == "en" else ("、", "・")
    parts = [
        f"{w.t(f'limit_group.{k}', lang)} {sep[1].join(str(v) for v in sorted(vals))} km/h"
        for k, vals in groups.items()
        if vals
    ]
    return w.t("limits", lang, text=sep[0].join(parts))


# The map fits the whole network unless it reaches farther than this share of the district's size
# beyond its outline (a real OSM extract around a small district); then it fits the outline grown by
# FIT_AROUND_OUTLINE of its size on each side (and the treated and comparison streets).
FIT_ROADS_BEYOND_OUTLINE = 0.5
FIT_AROUND_OUTLINE = 0.25


def _as_bounds(minx, miny, maxx, maxy) -> list[list[float]]:
    return [[float(miny), float(minx)], [float(maxy), float(maxx)]]


def fit_bounds(roads: gpd.GeoDataFrame, area: dict | None = None) -> list[list[float]]:
    """[[south, west], [north, east]] (EPSG:4326) the map opens on: the roads, or the district's
    outline (GeoJSON geometry) and its surroundings when the roads reach far beyond it."""
    roads = check_roads(roads)
    minx, miny, maxx, maxy = roads.total_bounds
    if area is None:
        return _as_bounds(minx, miny, maxx, maxy)
    ax0, ay0, ax1, ay1 = shape(area).bounds
    dx, dy = ax1 - ax0, ay1 - ay0
    far = FIT_ROADS_BEYOND_OUTLINE
    if minx >= ax0 - far * dx and maxx <= ax1 + far * dx and miny >= ay0 - far * dy and maxy <= ay1 + far * dy:
        return _as_bounds(minx, miny, maxx, maxy)
    g = FIT_AROUND_OUTLINE
    box = [ax0 - g * dx, ay0 - g * dy, ax1 + g * dx, ay1 + g * dy]
    focus = focus_bounds(roads)
    if focus is not None:
        (s, west), (n, east) = focus
        box = [min(box[0], west), min(box[1], s), max(box[2], east), max(box[3], n)]
    return _as_bounds(*box)


def focus_bounds(roads: gpd.GeoDataFrame) -> list[list[float]] | None:
    """[[south, west], [north, east]] of the treated and comparison streets (None without any): what
    the phone's map keeps in view when its bottom sheet opens."""
    roads = check_roads(roads)
    mine = roads[roads["role"].isin(list(w.ROLES))]
    return _as_bounds(*mine.total_bounds) if len(mine) else None
