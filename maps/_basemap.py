"""What the district map and the screening map share: the folium.Map on its page, the base tiles
(地理院タイル 淡色地図 and OpenStreetMap, with their attributions), the map's controls (zoom, a metric
scale, full screen, locate: folium's own), the title bar and the frame element.

Map texts come from maps.wording in both languages; the page switches between them.
"""

from __future__ import annotations

import html

import folium
from folium.plugins import Fullscreen, LocateControl

import maps.wording as w
from maps._elements import Assets, Banner, Frame, TitleBar, bi
from maps.page import Page, new_map

GSI_PALE_URL = "https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png"
GSI_ATTRIBUTION = '<a href="https://maps.gsi.go.jp/development/ichiran.html">地理院タイル</a>'
OSM_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
BASES = ("gsi", "osm")  # the base maps, the first shown when the page opens


def page_map(
    titles: dict[str, str], bounds: list[list[float]], lang: str, body_class: str, assets: tuple
) -> folium.Map:
    """A folium.Map on a new Page (title in `lang`, `body_class`), the product's `assets` inlined, the
    zoom buttons top left; centred on `bounds` (the frame fits them into the uncovered part at start)."""
    page = Page(lang=lang, title=titles[lang], body_class=body_class)
    m = new_map(page, bounds, zoom_start=16, zoom_control="topleft", zoom_snap=0.25, zoom_delta=0.5, font_size="13px")
    m.add_child(Assets(*assets), name="assets")
    return m


def base_tiles(m: folium.Map) -> dict[str, folium.TileLayer]:
    """The base maps as folium TileLayers (the page's base-map switch shows one at a time)."""
    tiles = {
        "gsi": folium.TileLayer(
            GSI_PALE_URL, attr=GSI_ATTRIBUTION, name=w.t("gsi_pale", "ja"), max_zoom=19, max_native_zoom=18
        ),
        "osm": folium.TileLayer(OSM_URL, attr=OSM_ATTRIBUTION, name="OpenStreetMap", max_zoom=19, max_native_zoom=19),
    }
    for key, layer in tiles.items():
        layer.show = key == BASES[0]
        m.add_child(layer, name=f"tiles:{key}")
    return tiles


def map_controls(m: folium.Map, lang: str) -> None:
    """folium's own controls: a metric scale (bottom left), full screen and locate (under the zoom buttons)."""
    # bottom left is Leaflet's default: folium 0.20's Control mis-passes `position` as arguments
    folium.Control("Scale", metric=True, imperial=False, max_width=120).add_to(m)
    Fullscreen(position="topleft", title=w.t("fullscreen", lang), title_cancel=w.t("fullscreen_exit", lang)).add_to(m)
    LocateControl(
        position="topleft",
        icon="e2c-locate-icon",
        iconLoading="e2c-locate-icon",
        flyTo=False,
        keepCurrentZoomLevel=True,
        strings={
            "title": w.t("locate", lang),
            "popup": w.t("locate_popup", lang, distance="{distance}", unit="{unit}"),
        },
    ).add_to(m)


def frame(m: folium.Map, titles: dict[str, str], bounds, lang: str, **options) -> Frame:
    """The page's frame (maps/assets/frame.js) for `m`: texts of both languages, the bounds to fit."""
    controls = [
        (".leaflet-control-zoom-in", "zoom_in"),
        (".leaflet-control-zoom-out", "zoom_out"),
        (".leaflet-control-zoom-fullscreen", "fullscreen"),
        (".leaflet-control-locate a", "locate"),
    ]
    data = {
        "lang": lang,
        "bounds": bounds,
        "doc_title": titles,
        "map_label": options.pop("map_label", titles),
        "lang_toggle": w.LANG_TOGGLE,
        "lang_toggle_label": w.LANG_TOGGLE_LABEL,
        "titles": [{"selector": sel, "text": w.both(key)} for sel, key in controls],
        **options,
    }
    f = Frame(data)
    m.add_child(f, name="frame")
    return f


def page_top(m: folium.Map, titles: dict[str, str], headline_html: str, lang: str, synthetic: bool) -> None:
    """The banner (synthetic data only), then the title with the language button and the headline."""
    if synthetic:
        m.add_child(Banner(bi(w.banner)), name="banner")
    m.add_child(TitleBar(bi(lambda l: titles[l]), w.LANG_TOGGLE[lang], headline_html), name="title")


def headline_html(verdict_class: str, attrs: dict[str, str], lead: dict[str, str], details: dict[str, str]) -> str:
    """<div id="headline"> with the lead in bold and the details, one paragraph per language."""
    parts = [
        f'<p lang="{l}"><strong>{html.escape(lead[l])}</strong>{" " if l == "en" else ""}{details[l]}</p>'
        for l in w.LANGS
    ]
    extra = "".join(f' {k}="{html.escape(v)}"' for k, v in attrs.items())
    return f'<div id="headline" class="{verdict_class}"{extra}>{"".join(parts)}</div>'
