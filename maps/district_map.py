"""The district map: one self-contained HTML file (Leaflet and the product's own JS/CSS inlined) with
the headline, the before / after / change maps under every indicator, devices, overlays, legend,
credits, an English toggle, a phone layout and a print layout. Opens from file:// without network.

Behaviour and styles live in maps/assets/map.js and map.css; this module writes the page and the
data (E2C_DATA) they read. Every figure comes from maps.public.public_results (suppressed) through
maps.layers; wording and rounding from maps.wording.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Callable
from pathlib import Path

from analysis.results import DistrictResults
from config.districts import District
from config.settings import PUBLIC_MIN_VEHICLES
from maps import embed, layers, palette, through
from maps import wording as w
from maps.headline import Headline, headline
from maps.layers import DEVICE_SHAPES
from maps.public import PublicResults, public_results

GSI_PALE_URL = "https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png"
GSI_ATTRIBUTION = '<a href="https://maps.gsi.go.jp/development/ichiran.html">地理院タイル</a>'
OSM_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
# Overlays shown when the map opens (the cut-through routes would bury the light road colours).
EXTRAS_ON = {"devices": True, "braking": True, "cut_through": False, "gates": False}
GATE_COLOUR = "#5e3c99"  # the gates (出入口): purple, apart from every road and overlay colour


def bi(make: Callable[[str], str], tag: str = "span", escape: bool = True, **attrs) -> str:
    """The same element in both languages: <span lang="ja">…</span><span lang="en">…</span>."""
    extra = "".join(f' {k.rstrip("_").replace("_", "-")}="{html.escape(str(v))}"' for k, v in attrs.items())
    out = []
    for lang in w.LANGS:
        body = make(lang)
        out.append(f'<{tag} lang="{lang}"{extra}>{html.escape(body) if escape else body}</{tag}>')
    return "".join(out)


def device_svg(kind: str, size: int = 22) -> str:
    paths = " ".join("M" + " L".join(f"{x} {y}" for x, y in poly) + " Z" for poly in DEVICE_SHAPES[kind])
    return (
        f'<svg width="{size}" height="{size}" viewBox="0 0 22 22" aria-hidden="true"><path d="{paths}" '
        f'fill="{palette.DEVICE_COLOR}" stroke="#fff" stroke-width="1.6" stroke-linejoin="round"/></svg>'
    )


def _line_svg(color: str, weight: float, dash: str | None = None, casing: bool = False) -> str:
    parts = ['<svg width="40" height="14" aria-hidden="true">']
    if casing:
        parts.append(
            f'<line x1="4" y1="7" x2="36" y2="7" stroke="{palette.CASING_COLOR}" '
            f'stroke-width="{weight + 3}" stroke-linecap="round"/>'
        )
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    cap = ' stroke-linecap="round"' if casing else ""
    parts.append(f'<line x1="4" y1="7" x2="36" y2="7" stroke="{color}" stroke-width="{weight}"{dash_attr}{cap}/>')
    parts.append("</svg>")
    return "".join(parts)


def _legend(
    pub: PublicResults,
    indicators: tuple[str, ...],
    labels: dict[str, dict[str, str]],
    *,
    has_area: bool,
    has_ward: bool,
    district: District,
    overlays: dict,
) -> str:
    k = pub.public_min_vehicles
    blocks = []
    for ind in indicators:
        seq, div = palette.sequential_scale(ind), palette.change_scale(ind)
        for key in ("before", "after"):
            rows = "".join(
                f"<tr><td>{_line_svg(c, 5, casing=True)}</td><td>{bi(lambda l, i=i: seq.legend(l)[i][1])}</td></tr>"
                for i, (c, _) in enumerate(seq.legend())
            )
            head = bi(
                lambda l: w.t(
                    "legend_values",
                    l,
                    layer=w.layer_name(key, l, short=True),
                    label=labels[ind][l],
                    unit=w.unit(ind, l),
                )
            )
            hint = bi(lambda l: w.fmt_period(pub.periods[key], l))
            blocks.append(
                f'<div data-e2c-legend="{ind}:{key}"><div class="e2c-h">{head}</div>'
                f'<div class="e2c-hint">{hint}</div><table>{rows}</table></div>'
            )
        rows = "".join(
            f"<tr><td>{_line_svg(c, 5, casing=True)}</td><td>{bi(lambda l, i=i: div.legend(l)[i][1])}</td></tr>"
            for i, (c, _) in enumerate(div.legend())
        )
        head = bi(lambda l: w.t("legend_change", l, label=labels[ind][l], unit=w.unit(ind, l, change=True)))
        hint = bi(lambda l: w.t("change_hint", l, down=div.words(l)[0], up=div.words(l)[1]))
        blocks.append(
            f'<div data-e2c-legend="{ind}:change"><div class="e2c-h">{head}</div>'
            f'<div class="e2c-hint">{hint}</div><table>{rows}</table></div>'
        )
    common = [
        (_line_svg(palette.INSUFFICIENT_COLOR, 4, dash="7 6"), bi(lambda l: w.t("legend_too_few", l, k=k))),
        (_line_svg(palette.NO_DATA_COLOR, 1.5), bi(lambda l: w.t("legend_no_data", l))),
    ]
    if has_area:
        common.append((_line_svg("#222", 2.5, dash="10 6"), bi(lambda l: w.t("legend_area", l))))
    if has_ward:
        common.append(
            (
                _line_svg("#555", 2.5),
                bi(
                    lambda l: (
                        w.t("legend_ward", l, ward=district.ward(l))
                        if district.ward(l)
                        else w.t("legend_ward_plain", l)
                    )
                ),
            )
        )
    extra_rows = ""
    if overlays.get("devices"):
        for kind in sorted({d.kind for d in district.devices}):
            illustrative = any(d.illustrative for d in district.devices if d.kind == kind)
            label = bi(
                lambda l: (
                    w.t(f"legend_{kind}", l)
                    + (
                        (" (" if l == "en" else "（") + w.t("illustrative", l) + (")" if l == "en" else "）")
                        if illustrative
                        else ""
                    )
                )
            )
            extra_rows += (
                f'<tr data-e2c-extra-legend="devices"><td><div style="width:40px;display:flex;'
                f'justify-content:center">{device_svg(kind, 18)}</div></td><td>{label}</td></tr>'
            )
    if overlays.get("cut_through"):
        extra_rows += (
            f'<tr data-e2c-extra-legend="cut_through"><td>{_line_svg(palette.CUT_THROUGH_COLOR, 4, dash="2 7")}'
            f"</td><td>{bi(lambda l: w.t('legend_cut', l))}</td></tr>"
        )
    if overlays.get("gates"):
        extra_rows += (
            f'<tr data-e2c-extra-legend="gates"><td><svg width="40" height="14" aria-hidden="true">'
            f'<circle cx="20" cy="7" r="5" fill="#fff" stroke="{GATE_COLOUR}" stroke-width="2.5"/></svg></td>'
            f"<td>{bi(lambda l: through.tt('legend_gate', l))}</td></tr>"
        )
    if overlays.get("braking"):
        extra_rows += (
            '<tr data-e2c-extra-legend="braking"><td><svg width="40" height="14" aria-hidden="true">'
            f'<circle cx="20" cy="7" r="5.5" fill="{palette.BRAKING_COLOR}" fill-opacity="0.75" stroke="#fff" '
            f'stroke-width="1.5"/></svg></td><td>{bi(lambda l: w.t("legend_braking", l))}</td></tr>'
        )
    common_rows = "".join(f"<tr><td>{svg}</td><td>{t}</td></tr>" for svg, t in common)
    return (
        f'<section id="e2c-legend">{"".join(blocks)}'
        f'<table style="margin-top:4px;border-top:1px solid #ccc">{extra_rows}{common_rows}</table></section>'
    )


def _headline_html(h: Headline) -> str:
    cls = "e2c-headline" + ("" if h.verdict == "effect" else " e2c-weak")
    parts = []
    for lang in w.LANGS:
        sep = " " if lang == "en" else ""
        details = sep.join(html.escape(s) for s in h.details[lang])
        parts.append(f'<p lang="{lang}"><strong>{html.escape(h.lead[lang])}</strong>{sep}{details}</p>')
    return (
        f'<div id="headline" class="{cls}" data-verdict="{h.verdict}" data-monitoring="{h.monitoring or "none"}">'
        f"{''.join(parts)}</div>"
    )


def _controls(
    indicators: tuple[str, ...], labels: dict, initial_layer: str, initial_indicator: str, overlays: dict
) -> str:
    def radio(name: str, value: str, label: str, checked: bool) -> str:
        return (
            f'<label><input type="radio" name="{name}" value="{value}"{" checked" if checked else ""}>{label}</label>'
        )

    rows = [
        f'<span class="e2c-h">{bi(lambda l: w.t("choose_layer", l))}</span>'
        + "".join(
            radio("e2c-layer", k, bi(lambda l, k=k: w.layer_name(k, l, short=True)), k == initial_layer)
            for k in layers.LAYER_KEYS
        )
    ]
    if len(indicators) > 1:
        rows.append(
            f'<span class="e2c-h">{bi(lambda l: w.t("choose_indicator", l))}</span>'
            + "".join(
                radio("e2c-indicator", i, bi(lambda l, i=i: labels[i][l]), i == initial_indicator) for i in indicators
            )
        )
    boxes = ""
    for key, word in (
        ("devices", "devices_layer"),
        ("braking", "braking_layer"),
        ("cut_through", "cut_layer"),
        ("gates", "gates_layer"),
    ):
        if overlays.get(key):
            label = bi(lambda l, word=word: through.tt(word, l) if word == "gates_layer" else w.t(word, l))
            boxes += (
                f'<label><input type="checkbox" name="e2c-extra" value="{key}"{" checked" if EXTRAS_ON[key] else ""}>'
                f"{label}</label>"
            )
    if boxes:
        rows.append(f'<span class="e2c-h">{bi(lambda l: w.t("overlays", l))}</span>{boxes}')
    rows.append(
        f'<span class="e2c-h">{bi(lambda l: w.t("base_map", l))}</span>'
        + radio("e2c-base", "gsi", bi(lambda l: w.t("gsi_pale", l)), True)
        + radio("e2c-base", "osm", "OpenStreetMap", False)
    )
    rows.append(f'<button type="button" id="e2c-print">{bi(lambda l: w.t("print", l))}</button>')
    return '<section class="e2c-controls">' + "<br>".join(rows) + "</section>"


def _through_panel(pub: PublicResults) -> str:
    """The side panel's through-traffic section: the share of through trips before → after (whole day),
    public cells only; '' without a gate classification."""
    if not through.has_gates(pub):
        return ""
    k = pub.public_min_vehicles
    lines = []
    for key in ("before", "after"):
        cells, total = through.class_cells(pub, pub.periods[key])
        cell = cells["through"]

        def line(l, key=key, cell=cell, total=total):
            value = through.cell_text(cell, "share", l, k)
            trips = (
                "" if cell.status != "ok" or w.is_missing(total) else through.tt("panel_trips", l, n=w.fmt_count(total))
            )
            return through.tt("panel_line", l, p=w.layer_name(key, l, short=True), v=value) + trips

        lines.append(f"<div>{bi(line)}</div>")
    return (
        f'<section id="e2c-through"><div class="e2c-h">{bi(lambda l: through.tt("panel_title", l))}</div>'
        f'{"".join(lines)}<div class="e2c-hint">{bi(lambda l: through.tt("panel_hint", l))}</div></section>'
    )


def render_district_map(
    district: District,
    results: DistrictResults,
    out_path: str | Path,
    *,
    lang: str = "ja",
    wards_path: Path | None = None,
    indicator: str | None = None,
    initial_layer: str = "change",
    public_min_vehicles: int = PUBLIC_MIN_VEHICLES,
    synthetic: bool | None = None,
    created: dt.date | None = None,
) -> Path:
    """Write the self-contained HTML map of `district` from its stored results; returns the path.

    results: analysis.results.DistrictResults (or maps.public.PublicResults); suppression under
      `public_min_vehicles` distinct vehicles is applied here, to every figure, tooltip and layer.
    lang: the language the page opens in ('ja' or 'en'; a button switches in the page).
    indicator: the indicator shown first (maps.wording.MAP_INDICATORS key or stats column; default:
      the first stored of passage_share, share, p85, mean). Every stored one is embedded.
    initial_layer: 'before' | 'after' | 'change'. wards_path: ward outlines (N03) to draw.
    synthetic: the red 合成データ banner (default: the district's network is synthetic).
    created: the date printed in the credits (default: the district file's, else today).
    Raises ValueError for bad input.
    """
    w.check_lang(lang)
    if initial_layer not in layers.LAYER_KEYS:
        raise ValueError(f"initial_layer must be one of {layers.LAYER_KEYS}, got {initial_layer!r}")
    pub = public_results(results, public_min_vehicles)
    synthetic = district.synthetic_network if synthetic is None else synthetic
    indicators = layers.available_indicators(pub)
    first = w.indicator(indicator).key if indicator else indicators[0]
    indicators = tuple(dict.fromkeys((first, *indicators)))
    roads = layers.check_roads(pub.roads)
    limits = layers.limits_of(pub.road_stats)
    labels = {i: {l: w.indicator_label(i, l, limits, capital=True) for l in w.LANGS} for i in indicators}

    geoms: list[dict] = []
    geom_index: dict[str, int] = {}
    embedded: dict[str, dict] = {}
    for ind in indicators:
        compact = {}
        for key, fc in layers.road_layers(pub, ind).items():
            props = []
            for f in fc["features"]:  # geometry stored once, referenced by index from every layer
                gkey = json.dumps(f["geometry"], separators=(",", ":"))
                if gkey not in geom_index:
                    geom_index[gkey] = len(geoms)
                    geoms.append(f["geometry"])
                props.append({**f["properties"], "g": geom_index[gkey]})
            compact[key] = props
        embedded[ind] = {"label": labels[ind], "layers": compact}
    ward = layers.outline(wards_path, "wards", ward=district)
    area = layers.outline(district.area_path, "district area")
    overlays = {
        "devices": layers.device_layer(district),
        "braking": layers.braking_layer(pub),
        "cut_through": layers.cut_through_layer(pub),
        "gates": through.gate_layer(pub),
    }
    head = headline(district, pub)
    created = w.creation_date(district, created)
    titles = {l: w.map_title(district, l) for l in w.LANGS}
    data = {
        "lang": lang,
        "geoms": geoms,
        "indicators": embedded,
        "initial_indicator": first,
        "initial_layer": initial_layer,
        "initial_base": "gsi",
        "labels": layers.label_points(district, roads),
        "outlines": {
            "ward": ward or {"type": "FeatureCollection", "features": []},
            "area": area or {"type": "FeatureCollection", "features": []},
        },
        "bounds": layers.fit_bounds(roads),
        "devices": overlays["devices"],
        "braking": overlays["braking"],
        "cut_through": overlays["cut_through"],
        "gates": overlays["gates"],
        "gate_colour": GATE_COLOUR,
        "device_icons": {kind: device_svg(kind) for kind in DEVICE_SHAPES},
        "casing": palette.CASING_COLOR,
        "tiles": {
            "gsi": {"url": GSI_PALE_URL, "attribution": GSI_ATTRIBUTION, "max_native_zoom": 18},
            "osm": {"url": OSM_URL, "attribution": OSM_ATTRIBUTION, "max_native_zoom": 19},
        },
        "doc_title": titles,
        "map_label": {l: f"{titles[l]} — {w.layer_name('change', l)}" for l in w.LANGS},
        "zoom_titles": {"ja": ["拡大", "縮小"], "en": ["Zoom in", "Zoom out"]},
        "lang_toggle": {"ja": "English", "en": "日本語"},
        "lang_toggle_label": {"ja": "Show this map in English", "en": "日本語で表示"},
        "headline": {l: head.text(l) for l in w.LANGS},
        "verdict": head.verdict,
    }

    k = pub.public_min_vehicles
    period_lines = "".join(
        f"<div>{bi(lambda l, key=key: w.period_line(key, pub.periods[key], l))}</div>" for key in ("before", "after")
    )
    limit_text = layers.limit_note(pub, "ja")
    limit_line = f"<div>{bi(lambda l: layers.limit_note(pub, l))}</div>" if limit_text else ""
    ind_lines = "".join(
        '<div class="e2c-ind" '
        f'data-e2c-ind="{i}">{bi(lambda l, i=i: w.t("comparison_of", l, label=labels[i][l]))}</div>'
        for i in indicators
    )
    showing = "".join(
        f'<div class="e2c-showing" data-e2c-showing="{key}">'
        f"{bi(lambda l, key=key: w.t('showing', l, name=w.layer_name(key, l)))}</div>"
        for key in layers.LAYER_KEYS
    )
    notes = []
    if synthetic:
        notes.append(f'<p class="e2c-synth">{bi(lambda l: w.SYNTHETIC_NOTE[l == "en"])}</p>')
    notes.append(f"<p>{bi(lambda l: w.t('data_line', l))}</p>")
    notes.append(f"<p>{bi(lambda l: w.t('method_line', l, k=k))}</p>")
    if district.synthetic_network:
        notes.append(f"<p>{bi(lambda l: w.SYNTHETIC_NETWORK_NOTE[l == 'en'])}</p>")
    notes.append(f'<p class="e2c-credits">{bi(lambda l: w.credits(district, created, l))}</p>')
    banner = f'<div class="e2c-banner" role="alert">{bi(w.banner)}</div>' if synthetic else ""
    top = (
        f'<header id="e2c-top"><div class="e2c-titlebar"><h1>{bi(lambda l: titles[l])}</h1>'
        f'<button type="button" id="e2c-lang-toggle">'
        f"{data['lang_toggle'][lang]}</button></div>{_headline_html(head)}</header>"
    )
    legend = _legend(
        pub,
        indicators,
        labels,
        has_area=area is not None,
        has_ward=ward is not None,
        district=district,
        overlays=overlays,
    )
    panel = (
        f'<aside id="e2c-panel"><button type="button" id="e2c-handle" aria-expanded="false" '
        f'aria-controls="e2c-panel-body"><span class="e2c-arrow" aria-hidden="true">▲</span> '
        f'{bi(lambda l: w.t("panel_handle", l))}</button><div id="e2c-panel-body">'
        f"<section>{ind_lines}{period_lines}{limit_line}{showing}</section>{_through_panel(pub)}"
        f"{_controls(indicators, labels, initial_layer, first, overlays)}"
        f"{legend}"
        f'<section class="e2c-note">{"".join(notes)}</section></div></aside>'
    )
    body_class = ' class="e2c-synthetic"' if synthetic else ""
    page = (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(titles[lang])}</title>\n"
        f"{embed.leaflet_head()}{embed.style('map.css')}\n</head>\n"
        f'<body{body_class}>\n<div id="e2c-app">{banner}{top}{panel}'
        f'<div id="e2c-map" role="region" aria-label="{html.escape(data["map_label"][lang])}"></div></div>\n'
        "<script>\nvar E2C_DATA = "
        f"{_json_for_script(data)};\n</script>\n{embed.script('frame.js')}\n{embed.script('map.js')}\n</body>\n</html>\n"
    )
    _check_offline(page)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(page, encoding="utf-8")
    return out_path


def _json_for_script(data) -> str:
    """JSON (UTF-8, not \\u-escaped, so Japanese stays readable) safe inside a <script> element."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def _check_offline(page: str) -> None:
    external = re.findall(r"<(?:script|link)\b[^>]*(?:src|href)\s*=\s*[\"']?(?:https?:)?//[^>]*>", page)
    if external:
        raise RuntimeError(f"map HTML would load external assets: {external[:3]}")


__all__ = ["render_district_map", "bi", "device_svg", "DEVICE_SHAPES", "EXTRAS_ON"]
