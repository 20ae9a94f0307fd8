"""Before/after/change map of one district's residential streets as one self-contained folium HTML file."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

import folium
import geopandas as gpd
import pandas as pd
from branca.element import Element, MacroElement
from jinja2 import Template
from shapely.geometry import LineString, MultiLineString, mapping
from shapely.ops import linemerge, unary_union

from config.districts import District, Period
from maps import palette
from maps.assets import LEAFLET_VERSION, inline_head

GSI_PALE_URL = "https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png"
GSI_ATTRIBUTION = '<a href="https://maps.gsi.go.jp/development/ichiran.html">地理院タイル</a>'
OSM_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'

LAYER_KEYS = ("before", "after", "change")
LAYER_NAMES = {"before": "対策前", "after": "対策後", "change": "変化"}
ROLE_LABELS = {"treated": "対策道路", "comparison": "比較道路"}

ROAD_COLUMNS = ("road_id", "name")
STATS_BASE_COLUMNS = ("road_id", "period", "n_vehicles", "limit_kmh")
MINUS = "\u2212"  # typographic minus for signed figures
# Indicator chooser: the order of the choices (the first is the default).
INDICATOR_ORDER = ("share_at_or_over_limit", "p85_kmh", "mean_kmh")
# Optional overlays: purple/black stay distinct from YlOrRd, RdBu and grey for colour-blind readers.
BRAKING_COLOR = "#6a1b9a"
CUT_THROUGH_COLOR = "#111111"


@dataclass(frozen=True)
class IndicatorSpec:
    """How one stats column is shown: scaling to display units, decimals and Japanese wording."""

    key: str
    factor: float  # raw value × factor = display value
    decimals: int  # display rounding
    unit: str  # appended to period values: "%" or " km/h"
    change_unit: str  # appended to changes: " ポイント" or " km/h"
    legend_unit: str  # in legend titles: "%" / "km/h"
    change_legend_unit: str  # "ポイント" / "km/h"
    down_word: str
    up_word: str


INDICATORS: dict[str, IndicatorSpec] = {
    "share_at_or_over_limit": IndicatorSpec(
        "share_at_or_over_limit", 100.0, 0, "%", " ポイント", "%", "ポイント", "減少", "増加"
    ),
    "mean_kmh": IndicatorSpec("mean_kmh", 1.0, 1, " km/h", " km/h", "km/h", "km/h", "低下", "上昇"),
    "p85_kmh": IndicatorSpec("p85_kmh", 1.0, 1, " km/h", " km/h", "km/h", "km/h", "低下", "上昇"),
}


def indicator_spec(indicator: str) -> IndicatorSpec:
    """The IndicatorSpec for a stats column name; ValueError for an unknown indicator."""
    try:
        return INDICATORS[indicator]
    except KeyError:
        raise ValueError(f"unknown indicator {indicator!r} (known: {', '.join(INDICATORS)})") from None


def indicator_label(indicator: str, limits: set[int] | None = None) -> str:
    """Japanese name of an indicator; for the share, '30 km/h 以上の割合' when all roads share one limit (km/h)."""
    indicator_spec(indicator)
    if indicator == "share_at_or_over_limit":
        if limits and len(limits) == 1:
            return f"{next(iter(limits))} km/h 以上の割合"
        return "制限速度以上の割合"
    return {"mean_kmh": "平均速度", "p85_kmh": "85パーセンタイル速度"}[indicator]


def display_value(indicator: str, raw: float) -> float:
    """Raw stats value → rounded display value (share fraction 0..1 → whole percent; km/h → 0.1 km/h)."""
    spec = indicator_spec(indicator)
    value = round(float(raw) * spec.factor, spec.decimals)
    return value + 0.0  # normalise -0.0


def format_value(indicator: str, value: float) -> str:
    """Display value → text with unit, e.g. '42%' or '27.3 km/h'."""
    spec = indicator_spec(indicator)
    return f"{value:.{spec.decimals}f}{spec.unit}"


def format_change(indicator: str, delta: float) -> str:
    """Change (display units) → signed text, e.g. '−24 ポイント', '+1.5 km/h', '±0 ポイント'."""
    spec = indicator_spec(indicator)
    text = f"{abs(delta):.{spec.decimals}f}"
    if float(text) == 0:
        sign = "±"
    else:
        sign = MINUS if delta < 0 else "+"
    return f"{sign}{text}{spec.change_unit}"


def format_date(day: dt.date) -> str:
    """Date in Japanese style, e.g. '2023年4月1日'."""
    return f"{day.year}年{day.month}月{day.day}日"


def format_period(period: Period) -> str:
    """Inclusive date range, e.g. '2023年4月1日〜2023年6月30日'."""
    return f"{format_date(period.start)}〜{format_date(period.end)}"


# ---------------------------------------------------------------------------------------------
# input checks


def _check_roads(roads: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Validated copy of `roads` in EPSG:4326 with str road_id; ValueError on bad input."""
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
        roads = roads.set_crs(4326)
    elif roads.crs.to_epsg() != 4326:
        roads = roads.to_crs(4326)
    bad = roads[~roads.geom_type.isin(["LineString", "MultiLineString"])]
    if len(bad):
        raise ValueError(
            f"roads must be LineStrings; road_id {bad['road_id'].iloc[0]!r} is {bad.geom_type.iloc[0]}"
        )
    roads["road_id"] = roads["road_id"].astype(str)
    if "role" not in roads.columns:
        roads["role"] = "residential"
    return roads


def _check_stats(stats: pd.DataFrame, indicator: str, periods: tuple[str, str]) -> pd.DataFrame:
    """Validated copy of `stats` restricted to `periods`; ValueError on bad input."""
    if not isinstance(stats, pd.DataFrame):
        raise ValueError(f"stats must be a DataFrame, got {type(stats).__name__}")
    needed = (*STATS_BASE_COLUMNS, indicator)
    missing = [c for c in needed if c not in stats.columns]
    if missing:
        raise ValueError(f"stats is missing column(s) {missing} (has {list(stats.columns)})")
    stats = stats.loc[stats["period"].astype(str).isin(periods), list(dict.fromkeys(needed))].copy()
    stats["road_id"] = stats["road_id"].astype(str)
    stats["period"] = stats["period"].astype(str)
    for name in periods:
        if not (stats["period"] == name).any():
            raise ValueError(f"stats has no rows for period {name!r}")
    dup = stats.duplicated(["road_id", "period"])
    if dup.any():
        row = stats[dup].iloc[0]
        raise ValueError(f"stats has more than one row for road_id {row['road_id']!r}, period {row['period']!r}")
    if indicator == "share_at_or_over_limit":
        share = stats[indicator].dropna()
        if ((share < 0) | (share > 1)).any():
            raise ValueError("share_at_or_over_limit must be a fraction 0..1 (is it in percent?)")
    return stats


# ---------------------------------------------------------------------------------------------
# features


@dataclass(frozen=True)
class _Ctx:
    indicator: str
    label: str  # indicator_label(...)
    min_vehicles: int
    periods: dict[str, Period]  # "before"/"after" → Period


def _style(kind: str, color: str | None = None, emphasis: bool = False) -> dict:
    if kind == "value":
        return {"color": color, "weight": 7 if emphasis else 5, "opacity": 1.0, "lineCap": "round"}
    if kind == "insufficient":
        return {"color": palette.INSUFFICIENT_COLOR, "weight": 4, "opacity": 0.95, "dashArray": "7 6"}
    return {"color": palette.NO_DATA_COLOR, "weight": 1.5, "opacity": 0.9}


def _tip(name: str, role: str, lines: list[str]) -> str:
    role_text = ROLE_LABELS.get(role)
    head = f"<b>{html.escape(name or '（名称なし）')}</b>"
    if role_text and role_text not in (name or ""):
        head += f"（{role_text}）"
    return "<br>".join([head, *lines])


def _period_line(key: str, period: Period) -> str:
    label = LAYER_NAMES[key]
    if period.label and period.label not in (label, period.name):
        # a label that already says 対策前/対策後 replaces the layer name instead of repeating it
        label = html.escape(period.label) if label in period.label else f"{label}（{html.escape(period.label)}）"
    return f"{label}：{format_period(period)}"


def _road_label(ctx: _Ctx, row) -> str:
    """Indicator name for one road's tooltip: the share names the road's own limit (km/h)."""
    if ctx.indicator == "share_at_or_over_limit" and not pd.isna(row["limit_kmh"]):
        return indicator_label(ctx.indicator, {int(row["limit_kmh"])})
    return ctx.label


def _period_feature(road, row, key: str, ctx: _Ctx) -> dict:
    """One road in the before/after layer; figures only when n_vehicles ≥ min_vehicles."""
    period = ctx.periods[key]
    lines = [_period_line(key, period)]
    emphasis = road.role in ROLE_LABELS
    props: dict = {"road_id": road.road_id}
    if row is None or pd.isna(row["n_vehicles"]):
        props.update(kind="nodata", style=_style("nodata"))
        lines.append("この期間のデータなし")
    elif int(row["n_vehicles"]) < ctx.min_vehicles:
        props.update(kind="insufficient", style=_style("insufficient"))
        lines.append(f"データ不足（観測車両 {ctx.min_vehicles} 台未満のため数値は非表示）")
    elif pd.isna(row[ctx.indicator]):
        props.update(kind="nodata", style=_style("nodata"))
        lines.append("この期間のデータなし")
    else:
        value = display_value(ctx.indicator, row[ctx.indicator])
        color = palette.sequential_color(value, ctx.indicator)
        props.update(kind="value", value=value, style=_style("value", color, emphasis))
        lines.append(f"{_road_label(ctx, row)}：<b>{format_value(ctx.indicator, value)}</b>")
        lines.append(f"観測車両 {int(row['n_vehicles'])} 台")
    props["tip"] = _tip(road.name, road.role, lines)
    return {"type": "Feature", "properties": props, "geometry": mapping(road.geometry)}


def _change_feature(road, before, after, ctx: _Ctx) -> dict:
    """One road in the change layer (after − before); suppressed if either period is below the minimum."""
    lines = ["変化（対策後 − 対策前）", _period_line("before", ctx.periods["before"]),
             _period_line("after", ctx.periods["after"])]
    emphasis = road.role in ROLE_LABELS
    props: dict = {"road_id": road.road_id}

    def usable(row) -> bool:
        return row is not None and not pd.isna(row["n_vehicles"]) and not pd.isna(row[ctx.indicator])

    if not (usable(before) and usable(after)):
        props.update(kind="nodata", style=_style("nodata"))
        lines.append("比較できるデータなし")
    elif min(int(before["n_vehicles"]), int(after["n_vehicles"])) < ctx.min_vehicles:
        props.update(kind="insufficient", style=_style("insufficient"))
        lines.append(f"データ不足（どちらかの期間で観測車両 {ctx.min_vehicles} 台未満のため数値は非表示）")
    else:
        b = display_value(ctx.indicator, before[ctx.indicator])
        a = display_value(ctx.indicator, after[ctx.indicator])
        # the change of the stored figures, rounded once (as every other output rounds it)
        delta = display_value(ctx.indicator, after[ctx.indicator] - before[ctx.indicator])
        color = palette.change_color(delta, ctx.indicator)
        props.update(kind="value", value=delta, before=b, after=a, style=_style("value", color, emphasis))
        lines.append(
            f"{_road_label(ctx, after)}：{format_value(ctx.indicator, b)} → {format_value(ctx.indicator, a)}"
            f"（<b>{format_change(ctx.indicator, delta)}</b>）"
        )
        lines.append(f"観測車両 対策前 {int(before['n_vehicles'])} 台／対策後 {int(after['n_vehicles'])} 台")
    props["tip"] = _tip(road.name, road.role, lines)
    return {"type": "Feature", "properties": props, "geometry": mapping(road.geometry)}


_DRAW_ORDER = {"nodata": 0, "insufficient": 1, "value": 2}


def build_layers(
    district: District,
    roads: gpd.GeoDataFrame,
    stats: pd.DataFrame,
    *,
    before: str,
    after: str,
    indicator: str = "share_at_or_over_limit",
    min_vehicles: int = 10,
) -> dict[str, dict]:
    """GeoJSON FeatureCollections {"before", "after", "change"} with per-road style and Japanese tooltip.

    Feature properties: road_id, kind ("value" | "insufficient" | "nodata"), style (Leaflet path
    options), tip (tooltip HTML) and, for kind "value" only, value (display units: percent or km/h;
    change: percentage points or km/h, after − before). Suppressed roads carry no figures at all.
    """
    indicator_spec(indicator)
    if min_vehicles < 1:
        raise ValueError(f"min_vehicles must be ≥ 1, got {min_vehicles}")
    if before == after:
        raise ValueError(f"before and after are the same period {before!r}")
    periods = {"before": district.period(before), "after": district.period(after)}
    roads = _check_roads(roads)
    stats = _check_stats(stats, indicator, (before, after))
    by_period = {key: stats[stats["period"] == periods[key].name].set_index("road_id") for key in periods}
    limits = {int(x) for x in stats["limit_kmh"].dropna()}
    ctx = _Ctx(indicator, indicator_label(indicator, limits), min_vehicles, periods)

    layers: dict[str, list] = {key: [] for key in LAYER_KEYS}
    for road in roads.itertuples(index=False):
        rows = {k: (by_period[k].loc[road.road_id] if road.road_id in by_period[k].index else None) for k in periods}
        layers["before"].append(_period_feature(road, rows["before"], "before", ctx))
        layers["after"].append(_period_feature(road, rows["after"], "after", ctx))
        layers["change"].append(_change_feature(road, rows["before"], rows["after"], ctx))
    return {
        key: {"type": "FeatureCollection", "features": sorted(feats, key=lambda f: _DRAW_ORDER[f["properties"]["kind"]])}
        for key, feats in layers.items()
    }


def _label_points(district: District, roads: gpd.GeoDataFrame) -> list[dict]:
    """Permanent 対策道路/比較道路 labels: one per road_id, at the middle of its longest merged piece."""
    roads = _check_roads(roads)
    roles = dict(zip(roads["road_id"], roads["role"]))
    for rid in district.treated_roads:
        roles[str(rid)] = "treated"
    for rid in district.comparison_roads:
        roles.setdefault(str(rid), "comparison")
    labels = []
    for rid, group in roads.groupby("road_id", sort=False):
        role = roles.get(rid)
        if role not in ROLE_LABELS:
            continue
        merged = unary_union(list(group.geometry))
        if isinstance(merged, MultiLineString):
            merged = linemerge(merged)
        pieces = list(merged.geoms) if hasattr(merged, "geoms") else [merged]
        longest = max((p for p in pieces if isinstance(p, LineString)), key=lambda p: p.length)
        point = longest.interpolate(0.5, normalized=True)
        labels.append({"lat": point.y, "lon": point.x, "text": ROLE_LABELS[role], "role": role})
    return labels


def _outline(path: Path | None, what: str, ward: District | None = None) -> dict | None:
    """Outline GeoJSON geometry from `path` (ward file filtered to the district's ward)."""
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{what} file {path} does not exist")
    gdf = gpd.read_file(path)
    if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(4326)
    if ward is not None:
        mask = pd.Series(False, index=gdf.index)
        if "N03_004" in gdf.columns and ward.ward_ja:
            mask |= gdf["N03_004"].astype(str) == ward.ward_ja
        if "N03_007" in gdf.columns and ward.ward_code:
            mask |= gdf["N03_007"].astype(str).str.zfill(5) == str(ward.ward_code).zfill(5)
        gdf = gdf[mask]
        if gdf.empty:
            raise ValueError(
                f"{path}: no feature with N03_004 == {ward.ward_ja!r} or N03_007 == {ward.ward_code!r}"
            )
    if gdf.empty:
        raise ValueError(f"{what} file {path} has no features")
    geom = unary_union(list(gdf.geometry)).simplify(0.00002, preserve_topology=True)
    return mapping(geom)


# ---------------------------------------------------------------------------------------------
# HTML


class _OfflineMap(folium.Map):
    """folium.Map that pulls no CDN assets; Leaflet is inlined by render_district_map."""

    default_js: list = []
    default_css: list = []


_CSS = """
<style>
  html, body { font-family: "Hiragino Kaku Gothic ProN", "Hiragino Sans", "BIZ UDPGothic", Meiryo,
               "Noto Sans CJK JP", "Noto Sans JP", sans-serif; }
  .leaflet-container { background: #eef0ec; font-family: inherit; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .e2c-box { background: rgba(255,255,255,0.96); border: 1px solid #888; border-radius: 6px;
             padding: 8px 12px; box-shadow: 0 1px 4px rgba(0,0,0,0.3); color: #222;
             font-size: 13px; line-height: 1.5; max-width: 400px; }
  .e2c-title h1 { font-size: 18px; margin: 0 0 4px 0; line-height: 1.35; }
  .e2c-title .e2c-ind { font-size: 15px; font-weight: bold; margin-bottom: 4px; }
  .e2c-title .e2c-showing { margin-top: 4px; font-weight: bold; color: #0b4f8a; }
  .e2c-banner { position: fixed; top: 0; left: 0; right: 0; z-index: 2000; background: #c62828;
                color: #fff; font-weight: bold; font-size: 17px; text-align: center; padding: 7px 8px;
                letter-spacing: 0.05em; border-bottom: 3px solid #7f0000; }
  body.e2c-synthetic .leaflet-top { top: 42px; }
  .e2c-switch { font-size: 14px; width: 400px; max-width: 400px; box-sizing: border-box; }
  .e2c-switch .e2c-row { padding: 2px 0; border-top: 1px solid #ddd; }
  .e2c-switch .e2c-row:first-child { border-top: 0; }
  .e2c-switch .e2c-h { font-weight: bold; display: block; font-size: 12px; color: #444; }
  .e2c-switch label { display: inline-block; cursor: pointer; padding: 1px 10px 1px 0; white-space: nowrap; }
  .e2c-switch input { margin: 0 4px 0 0; vertical-align: middle; }
  .e2c-title { width: 400px; box-sizing: border-box; }
  .e2c-legend .e2c-h { font-weight: bold; margin-bottom: 3px; }
  .e2c-legend .e2c-hint { font-size: 12px; color: #444; margin-bottom: 4px; }
  .e2c-legend table { border-collapse: collapse; }
  .e2c-legend td { padding: 1px 4px; vertical-align: middle; }
  .e2c-legend svg { display: block; }
  .e2c-legend, .e2c-note { width: 350px; }
  .e2c-note { font-size: 12px; }
  .e2c-note .e2c-synth { color: #c62828; font-weight: bold; }
  .e2c-label { background: none; border: none; }
  .e2c-label span { display: inline-block; transform: translate(-50%, -140%); white-space: nowrap;
                    font-size: 13px; font-weight: bold; padding: 1px 6px; border-radius: 4px;
                    border: 2px solid #222; background: #fff; color: #222;
                    box-shadow: 0 1px 3px rgba(0,0,0,0.35); }
  .e2c-label.e2c-treated span { border-color: #0b4f8a; color: #0b4f8a; }
  .e2c-label.e2c-comparison span { border-color: #555; color: #555; border-style: dashed; }
  .leaflet-tooltip { font-size: 13px; line-height: 1.5; }
</style>
"""

_SCRIPT = Template(
    """
{% macro script(this, kwargs) %}
(function () {
  var map = {{ this._parent.get_name() }};
  var DATA = {{ this.data_json }};
  var tiles = { gsi: {{ this.gsi }}, osm: {{ this.osm }} };
  function box(id, position) {
    var el = document.getElementById(id);
    if (!el) { return; }
    var C = L.Control.extend({ onAdd: function () {
      L.DomEvent.disableClickPropagation(el); L.DomEvent.disableScrollPropagation(el);
      el.style.display = ''; return el; } });
    new C({ position: position }).addTo(map);
  }
  box('e2c-title', 'topleft');     // left column: title, switches, zoom; right column: legend, note
  box('e2c-switch', 'topleft');
  L.control.zoom({ position: 'topleft', zoomInTitle: '拡大', zoomOutTitle: '縮小' }).addTo(map);
  box('e2c-note', 'bottomright');    // bottom corners stack upwards: the legend sits above the note
  box('e2c-legend', 'bottomright');

  L.geoJSON(DATA.outlines.ward, { interactive: false,
    style: { color: '#555', weight: 2.5, opacity: 0.9, fill: false } }).addTo(map);
  L.geoJSON(DATA.outlines.area, { interactive: false,
    style: { color: '#222', weight: 2.5, opacity: 0.9, dashArray: '10 6', fill: false } }).addTo(map);

  // One feature group per indicator × layer; every indicator is embedded, switched client-side.
  var groups = {};
  Object.keys(DATA.indicators).forEach(function (ind) {
    groups[ind] = {};
    Object.keys(DATA.indicators[ind].layers).forEach(function (key) {
      var fc = { type: 'FeatureCollection', features: DATA.indicators[ind].layers[key].map(function (p) {
        return { type: 'Feature', properties: p, geometry: DATA.geoms[p.g] }; }) };
      var g = L.featureGroup();
      L.geoJSON(fc, { interactive: false,
        filter: function (f) { return f.properties.kind === 'value'; },
        style: function (f) { return { color: '{{ this.casing }}', weight: f.properties.style.weight + 3,
                                       opacity: 0.85, lineCap: 'round', className: 'e2c-casing' }; } }).addTo(g);
      L.geoJSON(fc, {
        style: function (f) {
          return L.extend({ className: 'e2c-road e2c-' + f.properties.kind }, f.properties.style); },
        onEachFeature: function (f, layer) {
          layer.bindTooltip(f.properties.tip, { sticky: true, direction: 'top' });
          layer.bindPopup(f.properties.tip);
        } }).addTo(g);
      groups[ind][key] = g;
    });
  });

  // Optional overlays (only present when their data was given): cut-through routes, braking hot spots.
  var extras = {};
  if (DATA.cut_through) {
    extras.cut_through = L.geoJSON(DATA.cut_through, {
      style: function (f) { return f.properties.style; },
      onEachFeature: function (f, layer) { layer.bindTooltip(f.properties.tip, { sticky: true, direction: 'top' });
                                           layer.bindPopup(f.properties.tip); } });
  }
  if (DATA.braking) {
    extras.braking = L.geoJSON(DATA.braking, {
      pointToLayer: function (f, latlng) { return L.circleMarker(latlng, f.properties.style); },
      onEachFeature: function (f, layer) { layer.bindTooltip(f.properties.tip, { direction: 'top' });
                                           layer.bindPopup(f.properties.tip); } });
  }
  DATA.labels.forEach(function (p) {
    L.marker([p.lat, p.lon], { interactive: false, keyboard: false,
      icon: L.divIcon({ className: 'e2c-label e2c-' + p.role, html: '<span>' + p.text + '</span>', iconSize: null })
    }).addTo(map);
  });

  var state = { layer: DATA.initial, indicator: DATA.initial_indicator };
  function show(key, ind) {
    state.layer = key || state.layer; state.indicator = ind || state.indicator;
    Object.keys(groups).forEach(function (i) {
      Object.keys(groups[i]).forEach(function (k) {
        var g = groups[i][k];
        if (i === state.indicator && k === state.layer) { map.addLayer(g); } else { map.removeLayer(g); }
      });
    });
    Object.keys(extras).forEach(function (k) { if (map.hasLayer(extras[k])) { extras[k].bringToFront(); } });
    var want = state.indicator + ':' + state.layer;
    document.querySelectorAll('[data-e2c-legend]').forEach(function (el) {
      el.style.display = el.getAttribute('data-e2c-legend') === want ? '' : 'none';
    });
    var s = document.getElementById('e2c-showing');
    if (s) { s.textContent = '表示中：' + DATA.names[state.layer]; }
    var t = document.getElementById('e2c-ind');
    if (t) { t.textContent = DATA.indicators[state.indicator].label + '：対策前と対策後の比較'; }
  }
  function extra(key, on) {
    if (!extras[key]) { return; }
    if (on) { map.addLayer(extras[key]); extras[key].bringToFront(); } else { map.removeLayer(extras[key]); }
    document.querySelectorAll('[data-e2c-extra-legend="' + key + '"]').forEach(function (el) {
      el.style.display = on ? '' : 'none'; });
  }
  function base(key) {
    Object.keys(tiles).forEach(function (k) {
      if (k === key) { map.addLayer(tiles[k]); } else { map.removeLayer(tiles[k]); }
    });
  }
  document.querySelectorAll('input[name="e2c-layer"]').forEach(function (el) {
    el.addEventListener('change', function () { if (el.checked) { show(el.value, null); } });
  });
  document.querySelectorAll('input[name="e2c-indicator"]').forEach(function (el) {
    el.addEventListener('change', function () { if (el.checked) { show(null, el.value); } });
  });
  document.querySelectorAll('input[name="e2c-extra"]').forEach(function (el) {
    el.addEventListener('change', function () { extra(el.value, el.checked); });
    extra(el.value, el.checked);
  });
  document.querySelectorAll('input[name="e2c-base"]').forEach(function (el) {
    el.addEventListener('change', function () { if (el.checked) { base(el.value); } });
  });
  show(DATA.initial, DATA.initial_indicator);
  base('gsi');

  // Fit the roads into the part of the map not covered by the left column (title, switches) and the
  // right-hand column (legend, note). Wide screens: between the columns; medium: below the title;
  // narrow screens: the boxes overlap anyway, so use small paddings.
  function fit() {
    var size = map.getSize(), rect = map.getContainer().getBoundingClientRect();
    var tl = [20, 20], br = [20, 20];
    var sw = document.getElementById('e2c-switch'), title = document.getElementById('e2c-title');
    var left = sw || title, legend = document.getElementById('e2c-legend');
    if (size.x > 1100 && left && legend) {
      tl[0] = left.getBoundingClientRect().right - rect.left + 15;
      br[0] = legend.getBoundingClientRect().width + 35;
    } else if (size.x > 700 && title) {
      tl[1] = title.getBoundingClientRect().bottom - rect.top + 15;
      if (legend) { br[0] = legend.getBoundingClientRect().width + 35; }
    }
    if (tl[1] + br[1] > size.y * 0.6) { tl[1] = 20; }
    if (tl[0] + br[0] > size.x * 0.7) { tl[0] = 20; br[0] = 20; }
    map.fitBounds(DATA.bounds, { paddingTopLeft: tl, paddingBottomRight: br });
  }
  fit();
  // Handles for tests and for readers' own scripts: the map, the road groups and the switches.
  window.e2c = { map: map, groups: groups, extras: extras, tiles: tiles, state: state, show: show,
                 base: base, extra: extra };
})();
{% endmacro %}
"""
)


class _DistrictLayers(MacroElement):
    """Road layers, labels, outlines, the layer switch and the info boxes (one script block)."""

    _template = _SCRIPT

    def __init__(self, data: dict, gsi: folium.TileLayer, osm: folium.TileLayer):
        super().__init__()
        self._name = "DistrictLayers"
        self.data_json = _json_for_script(data)
        self.gsi = gsi.get_name()
        self.osm = osm.get_name()
        self.casing = palette.CASING_COLOR


def _json_for_script(data) -> str:
    """JSON (UTF-8, not \\u-escaped, so Japanese stays readable) safe inside a <script> element."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def _line_svg(color: str, weight: float, dash: str | None = None, casing: bool = False) -> str:
    parts = ['<svg width="40" height="14" aria-hidden="true">']
    if casing:
        parts.append(f'<line x1="4" y1="7" x2="36" y2="7" stroke="{palette.CASING_COLOR}" '
                     f'stroke-width="{weight + 3}" stroke-linecap="round"/>')
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    cap = ' stroke-linecap="round"' if casing else ""
    parts.append(f'<line x1="4" y1="7" x2="36" y2="7" stroke="{color}" stroke-width="{weight}"{dash_attr}{cap}/>')
    parts.append("</svg>")
    return "".join(parts)


def _legend_html(labels: dict[str, str], min_vehicles: int, periods: dict[str, Period],
                 has_area: bool, has_ward: bool, ward_ja: str, *, braking: bool = False,
                 cut_through: bool = False) -> str:
    """Legend box: one block per indicator × layer (the page shows the selected one) and common rows."""
    blocks = []
    for indicator, label in labels.items():
        spec = indicator_spec(indicator)
        seq = palette.sequential_scale(indicator)
        div = palette.change_scale(indicator)
        for key in ("before", "after"):
            rows = "".join(f"<tr><td>{_line_svg(c, 5, casing=True)}</td><td>{t}</td></tr>" for c, t in seq.legend())
            blocks.append(
                f'<div data-e2c-legend="{indicator}:{key}"><div class="e2c-h">{LAYER_NAMES[key]}：{label} '
                f'({spec.legend_unit})</div>'
                f'<div class="e2c-hint">{format_period(periods[key])}</div><table>{rows}</table></div>'
            )
        rows = "".join(f"<tr><td>{_line_svg(c, 5, casing=True)}</td><td>{t}</td></tr>" for c, t in div.legend())
        blocks.append(
            f'<div data-e2c-legend="{indicator}:change"><div class="e2c-h">変化：{label}の増減 '
            f'({spec.change_legend_unit})</div>'
            f'<div class="e2c-hint">対策後 − 対策前。青＝{spec.down_word}（改善）、赤＝{spec.up_word}</div>'
            f"<table>{rows}</table></div>"
        )
    common = [
        (_line_svg(palette.INSUFFICIENT_COLOR, 4, dash="7 6"), f"データ不足（観測車両 {min_vehicles} 台未満、数値は非表示）"),
        (_line_svg(palette.NO_DATA_COLOR, 1.5), "データなし"),
    ]
    if has_area:
        common.append((_line_svg("#222", 2.5, dash="10 6"), "対象地区"))
    if has_ward:
        common.append((_line_svg("#555", 2.5), f"区の境界（{html.escape(ward_ja)}）" if ward_ja else "区の境界"))
    common_rows = "".join(f"<tr><td>{svg}</td><td>{t}</td></tr>" for svg, t in common)
    extra_rows = ""
    if cut_through:
        extra_rows += (f'<tr data-e2c-extra-legend="cut_through"><td>{_line_svg(CUT_THROUGH_COLOR, 4, dash="2 7")}'
                       "</td><td>抜け道ルート（通り抜ける車両、太いほど多い）</td></tr>")
    if braking:
        extra_rows += ('<tr data-e2c-extra-legend="braking"><td><svg width="40" height="14" aria-hidden="true">'
                       f'<circle cx="20" cy="7" r="5.5" fill="{BRAKING_COLOR}" fill-opacity="0.75" stroke="#fff" '
                       'stroke-width="1.5"/></svg></td><td>急ブレーキ多発地点（円が大きいほど多い）</td></tr>')
    return (
        '<div id="e2c-legend" class="e2c-box e2c-legend" style="display:none">'
        + "".join(blocks)
        + f'<table style="margin-top:4px;border-top:1px solid #ccc">{extra_rows}{common_rows}</table></div>'
    )


def _optional_points(gdf, what: str) -> gpd.GeoDataFrame:
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise ValueError(f"{what} must be a GeoDataFrame, got {type(gdf).__name__}")
    if gdf.crs is None:
        gdf = gdf.set_crs(4326)
    elif gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(4326)
    return gdf


def _braking_layer(points: gpd.GeoDataFrame | None) -> dict | None:
    """FeatureCollection of sudden-braking hot spots (circle size ~ sqrt(count)), or None."""
    if points is None:
        return None
    points = _optional_points(points, "braking_points")
    if "count" not in points.columns:
        raise ValueError(f"braking_points needs a 'count' column (has {list(points.columns)})")
    if not points.geom_type.eq("Point").all():
        raise ValueError("braking_points must be Points")
    top = max(float(points["count"].max()), 1.0) if len(points) else 1.0
    features = []
    for row in points.itertuples(index=False):
        count = int(row.count)
        lines = ["<b>急ブレーキ多発地点</b>", f"急ブレーキ <b>{count} 回</b>"]
        if "period" in points.columns and isinstance(row.period, str) and row.period:
            lines.append(f"期間：{html.escape(row.period)}")
        radius = 5 + 11 * (count / top) ** 0.5
        style = {"radius": round(radius, 1), "color": "#ffffff", "weight": 1.5, "fillColor": BRAKING_COLOR,
                 "fillOpacity": 0.75, "className": "e2c-braking"}
        features.append({"type": "Feature", "properties": {"count": count, "tip": "<br>".join(lines), "style": style},
                         "geometry": mapping(row.geometry)})
    return {"type": "FeatureCollection", "features": features}


def _cut_through_layer(lines: gpd.GeoDataFrame | None) -> dict | None:
    """FeatureCollection of cut-through routes (line width ~ share or count), or None."""
    if lines is None:
        return None
    lines = _optional_points(lines, "cut_through")
    column = "share" if "share" in lines.columns else "count" if "count" in lines.columns else None
    if column is None:
        raise ValueError(f"cut_through needs a 'share' (0..1) or 'count' column (has {list(lines.columns)})")
    if not lines.geom_type.isin(["LineString", "MultiLineString"]).all():
        raise ValueError("cut_through must be LineStrings")
    values = lines[column].astype(float)
    if column == "share" and ((values < 0) | (values > 1)).any():
        raise ValueError("cut_through share must be a fraction 0..1")
    top = max(float(values.max()), 1e-9) if len(values) else 1.0
    features = []
    for row, value in zip(lines.itertuples(index=False), values):
        name = getattr(row, "name", None) if "name" in lines.columns else None
        head = f"<b>抜け道ルート{'：' + html.escape(str(name)) if isinstance(name, str) and name else ''}</b>"
        figure = (f"通り抜ける車両の割合 <b>{round(100 * value):.0f}%</b>" if column == "share"
                  else f"通り抜ける車両 <b>{int(value)} 台</b>")
        style = {"color": CUT_THROUGH_COLOR, "weight": round(3 + 4 * value / top, 1), "opacity": 0.85,
                 "dashArray": "1 8", "lineCap": "round", "className": "e2c-cut"}
        features.append({"type": "Feature", "properties": {column: float(value), "tip": f"{head}<br>{figure}",
                                                           "style": style},
                         "geometry": mapping(row.geometry)})
    return {"type": "FeatureCollection", "features": features}


def _limit_note(roads: gpd.GeoDataFrame, stats: pd.DataFrame, periods: tuple[str, str]) -> str:
    """'制限速度：生活道路 30 km/h、幹線道路 40・50 km/h' when roads have different limits, else ''."""
    rows = stats[stats["period"].astype(str).isin(periods)].dropna(subset=["limit_kmh"])
    roles = dict(zip(roads["road_id"], roads["role"]))
    groups: dict[str, set[int]] = {"生活道路": set(), "幹線道路": set()}
    for rid, limit in zip(rows["road_id"].astype(str), rows["limit_kmh"]):
        groups["幹線道路" if roles.get(rid) == "arterial" else "生活道路"].add(int(limit))
    if len(groups["生活道路"] | groups["幹線道路"]) <= 1:
        return ""
    parts = [f"{k} {'・'.join(str(v) for v in sorted(vals))} km/h" for k, vals in groups.items() if vals]
    return "制限速度：" + "、".join(parts)


def _fit_bounds(roads: gpd.GeoDataFrame) -> list[list[float]]:
    minx, miny, maxx, maxy = roads.total_bounds
    return [[float(miny), float(minx)], [float(maxy), float(maxx)]]


def render_district_map(
    district: District,
    roads: gpd.GeoDataFrame,
    stats: pd.DataFrame,
    out_path: Path,
    *,
    before: str,
    after: str,
    wards_path: Path | None = None,
    area_path: Path | None = None,
    indicator: str = "share_at_or_over_limit",
    min_vehicles: int = 10,
    synthetic: bool = True,
    initial_layer: str = "change",
    indicators: tuple[str, ...] | None = None,
    braking_points: gpd.GeoDataFrame | None = None,
    cut_through: gpd.GeoDataFrame | None = None,
) -> Path:
    """Write one self-contained HTML map (対策前 / 対策後 / 変化 layers) for `district`; returns out_path.

    roads: GeoDataFrame of LineStrings in EPSG:4326 with road_id (str), name (Japanese), role
      ("treated" | "comparison" | "arterial" | "residential"); other columns are ignored.
    stats: one row per road_id and period with n_vehicles (distinct vehicles), limit_kmh (km/h) and the
      indicator columns: share_at_or_over_limit (fraction 0..1), mean_kmh and p85_kmh (km/h).
    indicator: the indicator shown first. indicators: those embedded for the page's indicator chooser
      (default: every one of share / p85 / mean that `stats` has); all switch client-side.
    before/after: period names of `district` to compare. Roads with n_vehicles < min_vehicles in a
      period are drawn grey dashed as データ不足 with no figures (of any indicator) anywhere in the HTML.
    wards_path / area_path: optional GeoJSON outlines (ward file filtered by N03_004 / N03_007).
    braking_points: optional Points with a `count` column (sudden-braking events; optional `period`
      text) → layer 急ブレーキ多発地点. cut_through: optional LineStrings with a `share` (fraction 0..1
      of vehicles passing through) or `count` column (optional `name`) → layer 抜け道ルート. Each
      layer exists only when its input is given.
    synthetic: adds the red 合成データ banner. initial_layer: "before" | "after" | "change".
    Raises ValueError for bad input (missing columns, unknown period or indicator, share not 0..1).
    """
    if initial_layer not in LAYER_KEYS:
        raise ValueError(f"initial_layer must be one of {LAYER_KEYS}, got {initial_layer!r}")
    indicator_spec(indicator)
    if indicators is None:
        indicators = tuple(k for k in INDICATOR_ORDER if k in stats.columns)
    indicators = tuple(dict.fromkeys((indicator, *indicators)))  # the initial one first, no repeats
    roads = _check_roads(roads)
    periods = {"before": district.period(before), "after": district.period(after)}
    limits = {int(x) for x in stats.loc[stats["period"].astype(str).isin([before, after]), "limit_kmh"].dropna()}
    label = indicator_label(indicator, limits)
    geoms: list[dict] = []
    geom_index: dict[str, int] = {}
    embedded: dict[str, dict] = {}
    for ind in indicators:
        layers = build_layers(district, roads, stats, before=before, after=after,
                              indicator=ind, min_vehicles=min_vehicles)
        compact = {}
        for key, fc in layers.items():
            props = []
            for f in fc["features"]:  # geometry stored once, referenced by index from every layer
                gkey = json.dumps(f["geometry"], separators=(",", ":"))
                if gkey not in geom_index:
                    geom_index[gkey] = len(geoms)
                    geoms.append(f["geometry"])
                props.append({**f["properties"], "g": geom_index[gkey]})
            compact[key] = props
        embedded[ind] = {"label": indicator_label(ind, limits), "layers": compact}
    ward = _outline(wards_path, "wards", ward=district)
    area = _outline(area_path, "district area")
    braking = _braking_layer(braking_points)
    cut = _cut_through_layer(cut_through)

    m = _OfflineMap(location=[district.center_lat, district.center_lon], zoom_start=16, tiles=None,
                    zoom_control=False, control_scale=True, prefer_canvas=False,
                    zoom_snap=0.25, zoom_delta=0.5)
    gsi = folium.TileLayer(tiles=GSI_PALE_URL, attr=GSI_ATTRIBUTION, name="地理院タイル 淡色地図",
                           max_native_zoom=18, max_zoom=19, show=False, control=False)
    osm = folium.TileLayer(tiles=OSM_URL, attr=OSM_ATTRIBUTION, name="OpenStreetMap",
                           max_native_zoom=19, max_zoom=19, show=False, control=False)
    gsi.add_to(m)
    osm.add_to(m)

    names = {"before": "対策前", "after": "対策後", "change": "変化（対策後 − 対策前）"}
    data = {
        "geoms": geoms,
        "indicators": embedded,
        "initial_indicator": indicator,
        "labels": _label_points(district, roads),
        "outlines": {"ward": ward or {"type": "FeatureCollection", "features": []},
                     "area": area or {"type": "FeatureCollection", "features": []}},
        "names": names,
        "initial": initial_layer,
        "bounds": _fit_bounds(roads),
        "braking": braking,
        "cut_through": cut,
    }
    m.add_child(_DistrictLayers(data, gsi, osm))

    title_text = f"{district.name_ja}（{district.ward_ja}）生活道路の速度" if district.ward_ja \
        else f"{district.name_ja} 生活道路の速度"
    fig = m.get_root()
    fig.header.add_child(Element(inline_head() + _CSS), name="e2c_head")

    banner = ""
    if synthetic:
        banner = '<div class="e2c-banner" role="alert">合成データ（デモ用）— 実際の観測値ではありません</div>'
    limit_note = _limit_note(roads, stats, (before, after))
    limit_line = f"<div>{limit_note}</div>" if limit_note else ""
    period_lines = "".join(f"<div>{_period_line(k, periods[k])}</div>" for k in ("before", "after"))
    title_box = (
        f'<div id="e2c-title" class="e2c-box e2c-title" style="display:none">'
        f"<h1>{html.escape(title_text)}</h1>"
        f'<div id="e2c-ind" class="e2c-ind">{label}：対策前と対策後の比較</div>{limit_line}{period_lines}'
        f'<div id="e2c-showing" class="e2c-showing">表示中：{names[initial_layer]}</div></div>'
    )
    short = {"before": "対策前", "after": "対策後", "change": "変化"}
    radios = "".join(
        f'<label><input type="radio" name="e2c-layer" value="{k}"{" checked" if k == initial_layer else ""}>'
        f"{short[k]}</label>"
        for k in LAYER_KEYS
    )
    ind_radios = "".join(
        f'<label><input type="radio" name="e2c-indicator" value="{k}"{" checked" if k == indicator else ""}>'
        f"{embedded[k]['label']}</label>"
        for k in indicators
    )
    rows = [f'<div class="e2c-row"><span class="e2c-h">表示する地図</span>{radios}</div>']
    if len(indicators) > 1:
        rows.append(f'<div class="e2c-row"><span class="e2c-h">指標</span>{ind_radios}</div>')
    extra_boxes = ""
    if braking is not None:
        extra_boxes += '<label><input type="checkbox" name="e2c-extra" value="braking" checked>急ブレーキ多発地点</label>'
    if cut is not None:
        extra_boxes += '<label><input type="checkbox" name="e2c-extra" value="cut_through" checked>抜け道ルート</label>'
    if extra_boxes:
        rows.append(f'<div class="e2c-row"><span class="e2c-h">重ねて表示</span>{extra_boxes}</div>')
    rows.append(
        '<div class="e2c-row"><span class="e2c-h">背景地図</span>'
        '<label><input type="radio" name="e2c-base" value="gsi" checked>地理院タイル（淡色）</label>'
        '<label><input type="radio" name="e2c-base" value="osm">OpenStreetMap</label></div>'
    )
    switch_box = '<div id="e2c-switch" class="e2c-box e2c-switch" style="display:none">' + "".join(rows) + "</div>"
    network_note = "<div>道路網は架空のものです（デモ用）。</div>" if district.synthetic_network else ""
    synth_note = ('<div class="e2c-synth">この地図は合成データ（デモ用）です。実際の観測値ではありません。</div>'
                  if synthetic else "")
    note_box = (
        '<div id="e2c-note" class="e2c-box e2c-note" style="display:none">'
        f"{synth_note}<div><b>データ</b>：ETC2.0 プローブデータ</div>"
        "<div><b>方法</b>：速度は各地点の瞬間速度です。道路ごとに集計しました。"
        f"観測車両が {min_vehicles} 台未満の道路は数値を表示しません（灰色の破線）。</div>"
        f"{network_note}</div>"
    )
    legend_box = _legend_html({k: v["label"] for k, v in embedded.items()}, min_vehicles, periods,
                              area is not None, ward is not None, district.ward_ja,
                              braking=braking is not None, cut_through=cut is not None)
    fig.html.add_child(Element(banner + title_box + switch_box + legend_box + note_box), name="e2c_boxes")

    page = fig.render()
    page = _finish_page(page, title=f"{title_text}｜{label}", synthetic=synthetic)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(page, encoding="utf-8")
    return out_path


def _finish_page(page: str, *, title: str, synthetic: bool) -> str:
    """Add lang/charset/title to folium's page and check that no CDN asset slipped in."""
    replacements = [
        ("<html>", '<html lang="ja">'),
        ("<head>", f'<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>'),
        ("<body>", '<body class="e2c-synthetic">' if synthetic else "<body>"),
    ]
    for old, new in replacements:
        if old not in page:
            raise RuntimeError(f"unexpected folium page layout: {old!r} not found")
        page = page.replace(old, new, 1)
    external = re.findall(r"<(?:script|link)\b[^>]*(?:src|href)\s*=\s*[\"']?(?:https?:)?//[^>]*>", page)
    if external:
        raise RuntimeError(f"map HTML would load external assets: {external[:3]}")
    return page


__all__ = [
    "render_district_map",
    "build_layers",
    "indicator_label",
    "display_value",
    "format_value",
    "format_change",
    "format_period",
    "LEAFLET_VERSION",
]
