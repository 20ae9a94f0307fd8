"""The district map: a folium.Map of a district's stored results, saved as one self-contained HTML page.

It states the result in its first lines (the headline), draws every road under every indicator
before, after and as the change (a folium GeoJson per indicator and map, the road's figures in its
tooltip and popup), the traffic-calming devices, sudden-braking hot spots, cut-through routes and
gates as overlays, the ward and district outlines, and carries a legend, notes, credits, an English
toggle, a phone layout and a print layout (maps._elements, maps/assets/). It opens from file://
without network (maps.page: vendored libraries inlined).

Engineers open it as an object: `build_district_map(warehouse, "okurayama")` returns the folium.Map;
add layers or folium plugins to it and `m.save(path)` (docs/maps.md). Every figure comes from
maps.public.public_results (suppressed) through maps._layers; wording and rounding from maps.wording.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from pathlib import Path

import folium

import maps._palette as palette
import maps.through as through
import maps.wording as w
from analysis.results import DistrictResults, load_district_results
from config.districts import District, load_district
from config.settings import PUBLIC_MIN_VEHICLES, wards_path
from maps._basemap import base_tiles, frame, headline_html, map_controls, page_map, page_top
from maps._district_panel import EXTRAS_ON, GATE_COLOUR, OVERLAY_WORDS, PanelContent, device_svg, panel_sections
from maps._elements import Frame, Script, SidePanel, Tip, bi, on_each_feature
from maps._layers import (
    LAYER_KEYS,
    available_indicators,
    braking_layer,
    check_roads,
    cut_through_layer,
    device_layer,
    fit_bounds,
    focus_bounds,
    label_points,
    limits_of,
    outline,
    road_layers,
)
from maps.headline import Headline, headline
from maps.page import save_page
from maps.public import PublicResults, public_results

ASSETS = ("map.css", "frame.js", "map.js")


@dataclass(frozen=True)
class MapOptions:
    """How the district map is drawn.

    lang: the language the page opens in ('ja' or 'en'; a button switches in the page).
    indicator: the indicator shown first (a maps.wording indicator key or stats column; default: the
      first stored of passage_share, share, p85, mean). Every stored one is on the map.
    period: the map shown first: 'before', 'after' or 'change' (after − before).
    wards_path: ward outlines (N03) to draw. public_min_vehicles: the publication threshold applied to
      every figure, tooltip and layer. synthetic: the red 合成データ banner (default: the district's
      network is synthetic). created: the date in the credits (default: the district file's, else today).
    """

    lang: str = "ja"
    indicator: str | None = None
    period: str = "change"
    wards_path: Path | None = None
    public_min_vehicles: int = PUBLIC_MIN_VEHICLES
    synthetic: bool | None = None
    created: dt.date | None = None

    def __post_init__(self) -> None:
        w.check_lang(self.lang)
        if self.period not in LAYER_KEYS:
            raise ValueError(f"period must be one of {LAYER_KEYS}, got {self.period!r}")


@dataclass(frozen=True)
class Content:
    """What the map shows, computed once from the stored results."""

    panel: PanelContent
    lang: str
    roads: object  # GeoDataFrame, EPSG:4326
    ward: dict | None
    area: dict | None
    head: Headline
    titles: dict[str, str]

    @property
    def pub(self) -> PublicResults:
        return self.panel.pub


def build_district_map(
    warehouse: str | Path,
    district: District | str,
    *,
    lang: str = "ja",
    indicator: str | None = None,
    period: str = "change",
    created: dt.date | None = None,
) -> folium.Map:
    """The district map of `district` (a District or a district key such as 'okurayama') as a
    folium.Map, from the results stored in `warehouse` (nothing is computed); `m.save(path)` writes
    the page `etc2calm map` publishes. lang, indicator, period, created: as MapOptions.
    ResultsMissing when nothing is stored for the district."""
    district = load_district(district) if isinstance(district, str) else district
    results = load_district_results(warehouse, district)
    return district_map(
        district, results, lang=lang, indicator=indicator, period=period, wards_path=wards_path(), created=created
    )


def render_district_map(district: District, results: DistrictResults, out_path: str | Path, **options) -> Path:
    """Write the district map of `results` (options: MapOptions) to `out_path`; returns the path."""
    return save_page(district_map(district, results, **options), out_path)


def district_map(district: District, results: DistrictResults, **options) -> folium.Map:
    """The district map of `results` (analysis.results.DistrictResults; suppressed here) as a
    folium.Map on its page; options: MapOptions. ValueError for bad input."""
    c = content(district, results, MapOptions(**options))
    bounds = fit_bounds(c.roads, c.area)
    synthetic = c.panel.synthetic
    m = page_map(c.titles, bounds, c.lang, "e2c-synthetic" if synthetic else "", ASSETS)
    page_top(m, c.titles, _headline_html(c.head), c.lang, synthetic)
    m.add_child(SidePanel(bi(lambda l: w.t("panel_handle", l)), panel_sections(c.panel)), name="panel")
    map_label = {l: f"{c.titles[l]} — {w.layer_name('change', l)}" for l in w.LANGS}
    focus = focus_bounds(c.roads)
    f = frame(m, c.titles, bounds, c.lang, map_label=map_label, topPadding=44, popupMaxWidth=300, focus=focus)
    tiles = base_tiles(m)
    outline_layers(m, c)
    groups = road_groups(m, c, f)
    labels = role_labels(m, district, c)
    extras = overlay_layers(m, c, f)
    map_controls(m, c.lang)
    options = {"tiles": tiles, "groups": groups, "extras": extras, "layer": c.panel.period, "labels": labels}
    options.update(indicator=c.panel.indicators[0], base="gsi")
    m.add_child(Script("E2CDistrict", f, options), name="script")
    return m


def content(district: District, results: DistrictResults, opts: MapOptions) -> Content:
    """Everything the map shows, from the suppressed results."""
    pub = public_results(results, max(opts.public_min_vehicles, district.public_min_vehicles))
    indicators = available_indicators(pub)
    first = w.indicator(opts.indicator).key if opts.indicator else indicators[0]
    indicators = tuple(dict.fromkeys((first, *indicators)))
    roads = check_roads(pub.roads)
    limits = limits_of(pub.road_stats)
    labels = {i: {l: w.indicator_label(i, l, limits, capital=True) for l in w.LANGS} for i in indicators}
    ward = outline(opts.wards_path, "wards", ward=district)
    area = outline(district.area_path, "district area")
    overlays = {
        "devices": device_layer(district),
        "braking": braking_layer(pub),
        "cut_through": cut_through_layer(pub),
        "gates": through.gate_layer(pub),
    }
    panel = PanelContent(
        district=district,
        pub=pub,
        indicators=indicators,
        labels=labels,
        period=opts.period,
        overlays=overlays,
        has_ward=ward is not None,
        has_area=area is not None,
        synthetic=district.synthetic_network if opts.synthetic is None else opts.synthetic,
        created=w.creation_date(district, opts.created),
    )
    titles = {l: w.map_title(district, l) for l in w.LANGS}
    return Content(panel, opts.lang, roads, ward, area, headline(district, pub), titles)


def _headline_html(h: Headline) -> str:
    sep = {"ja": "", "en": " "}
    details = {l: sep[l].join(html.escape(s) for s in h.details[l]) for l in w.LANGS}
    attrs = {"data-verdict": h.verdict, "data-monitoring": h.monitoring or "none"}
    return headline_html("e2c-headline" + ("" if h.verdict == "effect" else " e2c-weak"), attrs, h.lead, details)


# --- layers ---------------------------------------------------------------------------------------


def _outline_style(dashed: bool):
    def style(feature: dict) -> dict:
        base = {"color": "#222" if dashed else "#555", "weight": 2.5, "opacity": 0.9, "fill": False}
        return {**base, "dashArray": "10 6"} if dashed else base

    return style


def outline_layers(m: folium.Map, c: Content) -> None:
    """The ward boundary (solid) and the district's area (dashed), not interactive."""
    for key, geometry, dashed in (("ward", c.ward, False), ("area", c.area, True)):
        if geometry is not None:
            layer = folium.GeoJson(geometry, name=key, style_function=_outline_style(dashed), interactive=False)
            m.add_child(layer, name=f"outline:{key}")


def _road_style(feature: dict) -> dict:
    """A road's Leaflet path style (from maps._layers) with the classes tests and CSS select on."""
    p = feature["properties"]
    return {**p["style"], "className": f"e2c-road e2c-{p['kind']} e2c-role-{p['role']}"}


def _casing_style(feature: dict) -> dict:
    weight = feature["properties"]["weight"]
    return {
        "color": palette.CASING_COLOR,
        "weight": weight + 3,
        "opacity": 0.85,
        "lineCap": "round",
        "className": "e2c-casing",
    }


def _casing(fc: dict) -> dict:
    """The dark casing under coloured roads, so that light classes stay visible on pale tiles."""
    feats = [
        {"type": "Feature", "geometry": f["geometry"], "properties": {"weight": f["properties"]["style"]["weight"]}}
        for f in fc["features"]
        if f["properties"]["kind"] == "value"
    ]
    return {"type": "FeatureCollection", "features": feats}


def road_groups(m: folium.Map, c: Content, f: Frame) -> dict[str, dict[str, folium.FeatureGroup]]:
    """Per indicator and map (before / after / change) a FeatureGroup of the roads (a folium GeoJson,
    each road's figures in its tooltip and popup) over their casing; the page shows one group at a time."""
    groups: dict[str, dict[str, folium.FeatureGroup]] = {}
    for ind in c.panel.indicators:
        groups[ind] = {}
        for key, fc in road_layers(c.pub, ind).items():
            name = f"{w.layer_name(key, c.lang, short=True)}: {c.panel.labels[ind][c.lang]}"
            shown = ind == c.panel.indicators[0] and key == c.panel.period
            group = folium.FeatureGroup(name=name, show=shown)
            casing = _casing(fc)
            if casing["features"]:
                group.add_child(folium.GeoJson(casing, style_function=_casing_style, interactive=False))
            group.add_child(
                folium.GeoJson(fc, name=name, style_function=_road_style, on_each_feature=on_each_feature(f))
            )
            m.add_child(group, name=f"roads:{ind}:{key}")
            groups[ind][key] = group
    return groups


def role_labels(m: folium.Map, district: District, c: Content) -> list[dict]:
    """Permanent 対策道路 / 比較道路 labels above their streets (both languages; CSS shows one). Returns,
    for the page script, each label's marker and the places along its street it may move to, so that
    no two labels overlap and none is cut off by the map's edge or a panel (maps/assets/map.js)."""
    out = []
    for lab in label_points(district, c.roads):
        text = "".join(f'<span lang="{l}">{html.escape(lab["text"][l])}</span>' for l in w.LANGS)
        icon = folium.DivIcon(html=f"<span>{text}</span>", icon_size=(0, 0), class_name=f"e2c-label e2c-{lab['role']}")
        marker = folium.Marker([lab["lat"], lab["lon"]], icon=icon, interactive=False, keyboard=False)
        m.add_child(marker, name=f"label:{lab['road_id']}")
        out.append({"marker": marker, "role": lab["role"], "candidates": lab["candidates"]})
    return out


def overlay_layers(m: folium.Map, c: Content, f: Frame) -> dict[str, folium.FeatureGroup | None]:
    """The overlays (devices, braking hot spots, cut-through routes, gates), None where the district
    has none; the page's checkboxes show and hide them."""
    o = c.panel.overlays
    extras = {
        "cut_through": _cut_through(o["cut_through"], f),
        "braking": _markers(o["braking"], f, _braking_marker),
        "gates": _markers(o["gates"], f, _gate_marker),
        "devices": _markers(o["devices"], f, _device_marker),
    }
    for key, layer in extras.items():
        if layer is not None:
            word = dict(OVERLAY_WORDS)[key]
            layer.layer_name = through.tt(word, c.lang) if key == "gates" else w.t(word, c.lang)
            layer.show = EXTRAS_ON[key]
            m.add_child(layer, name=f"overlay:{key}")
    return extras


def _cut_through(fc: dict | None, f: Frame) -> folium.FeatureGroup | None:
    if fc is None:
        return None
    group = folium.FeatureGroup()
    group.add_child(
        folium.GeoJson(fc, style_function=lambda x: x["properties"]["style"], on_each_feature=on_each_feature(f))
    )
    return group


def _markers(fc: dict | None, f: Frame, make) -> folium.FeatureGroup | None:
    """A FeatureGroup of one marker per point feature of `fc`, each with its tooltip and popup."""
    if fc is None:
        return None
    group = folium.FeatureGroup()
    for feat in fc["features"]:
        lon, lat = feat["geometry"]["coordinates"]
        marker = make([lat, lon], feat["properties"])
        marker.add_child(Tip(f, feat["properties"]["tip"]))
        group.add_child(marker)
    return group


def _device_marker(location: list[float], props: dict) -> folium.Marker:
    kind = props["kind"]
    icon = folium.DivIcon(
        html=device_svg(kind), icon_size=(22, 22), icon_anchor=(11, 11), class_name=f"e2c-device e2c-device-{kind}"
    )
    return folium.Marker(location, icon=icon, keyboard=False, rise_on_hover=True)


def _gate_marker(location: list[float], props: dict) -> folium.Marker:
    ring = (
        f'<span class="e2c-gate-ring" style="border-color:{GATE_COLOUR}"></span>'
        f'<span class="e2c-gate-id" style="color:{GATE_COLOUR}">{html.escape(props["id"])}</span>'
    )
    icon = folium.DivIcon(html=ring, icon_size=(14, 14), icon_anchor=(7, 7), class_name="e2c-gate")
    return folium.Marker(location, icon=icon, keyboard=False, rise_on_hover=True)


def _braking_marker(location: list[float], props: dict) -> folium.CircleMarker:
    s = props["style"]
    return folium.CircleMarker(
        location,
        radius=s["radius"],
        color=s["color"],
        weight=s["weight"],
        fill_color=s["fillColor"],
        fill_opacity=s["fillOpacity"],
        class_name=s["className"],
    )


__all__ = ["build_district_map", "district_map", "render_district_map", "MapOptions", "bi", "device_svg", "EXTRAS_ON"]
