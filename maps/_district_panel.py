"""The district map's panel (a side column on wide screens, the bottom sheet on phones): what is
shown, the through-traffic shares, the switches, the legend and the notes, as HTML sections in both
languages (maps._elements.bi). Figures come from maps.public.PublicResults, words from maps.wording."""

from __future__ import annotations

from dataclasses import dataclass

import maps._palette as palette
import maps.through as through
import maps.wording as w
from config.districts import District
from maps._elements import bi
from maps._layers import DEVICE_SHAPES, LAYER_KEYS, limit_note
from maps.public import PublicResults

# Overlays shown when the map opens (the cut-through routes would bury the light road colours).
EXTRAS_ON = {"devices": True, "braking": True, "cut_through": False, "gates": False}
GATE_COLOUR = "#5e3c99"  # the gates (出入口): purple, apart from every road and overlay colour
OVERLAY_WORDS = (
    ("devices", "devices_layer"),
    ("braking", "braking_layer"),
    ("cut_through", "cut_layer"),
    ("gates", "gates_layer"),
)


@dataclass(frozen=True)
class PanelContent:
    """What the panel describes: the district, its public results, the indicators offered (the first
    shown first) with their labels {indicator: {lang: label}}, the map shown first, the overlays
    present (key → layer data or None), whether ward and area outlines are drawn."""

    district: District
    pub: PublicResults
    indicators: tuple[str, ...]
    labels: dict[str, dict[str, str]]
    period: str
    overlays: dict
    has_ward: bool
    has_area: bool
    synthetic: bool
    created: object


def device_svg(kind: str, size: int = 22) -> str:
    """The device symbol (maps._layers.DEVICE_SHAPES) as inline SVG, drawn alike on map and legend."""
    paths = " ".join("M" + " L".join(f"{x} {y}" for x, y in poly) + " Z" for poly in DEVICE_SHAPES[kind])
    return (
        f'<svg width="{size}" height="{size}" viewBox="0 0 22 22" aria-hidden="true"><path d="{paths}" '
        f'fill="{palette.DEVICE_COLOR}" stroke="#fff" stroke-width="1.6" stroke-linejoin="round"/></svg>'
    )


def line_svg(color: str, weight: float, dash: str | None = None, casing: bool = False) -> str:
    """A legend sample of a road line (with the dark casing under coloured roads)."""
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


def panel_sections(c: PanelContent) -> list[str]:
    """The panel's sections, top to bottom."""
    return [showing_section(c), through_section(c.pub), controls_section(c), legend_section(c), notes_section(c)]


def showing_section(c: PanelContent) -> str:
    """The indicator compared, the two periods, the speed limits and the map shown."""
    pub = c.pub
    ind_lines = "".join(
        f'<div class="e2c-ind" data-e2c-ind="{i}">'
        f"{bi(lambda l, i=i: w.t('comparison_of', l, label=c.labels[i][l]))}</div>"
        for i in c.indicators
    )
    period_lines = "".join(
        f"<div>{bi(lambda l, key=key: w.period_line(key, pub.periods[key], l))}</div>" for key in ("before", "after")
    )
    limit_line = f"<div>{bi(lambda l: limit_note(pub, l))}</div>" if limit_note(pub, "ja") else ""
    showing = "".join(
        f'<div class="e2c-showing" data-e2c-showing="{key}">'
        f"{bi(lambda l, key=key: w.t('showing', l, name=w.layer_name(key, l)))}</div>"
        for key in LAYER_KEYS
    )
    return f"<section>{ind_lines}{period_lines}{limit_line}{showing}</section>"


def through_section(pub: PublicResults) -> str:
    """The share of through trips before → after (whole day), public cells only; '' without gates."""
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


def _radio(name: str, value: str, label: str, checked: bool) -> str:
    return f'<label><input type="radio" name="{name}" value="{value}"{" checked" if checked else ""}>{label}</label>'


def controls_section(c: PanelContent) -> str:
    """The switches: map (before / after / change), indicator, overlays, base map; the print button."""
    rows = [
        f'<span class="e2c-h">{bi(lambda l: w.t("choose_layer", l))}</span>'
        + "".join(
            _radio("e2c-layer", k, bi(lambda l, k=k: w.layer_name(k, l, short=True)), k == c.period) for k in LAYER_KEYS
        )
    ]
    if len(c.indicators) > 1:
        rows.append(
            f'<span class="e2c-h">{bi(lambda l: w.t("choose_indicator", l))}</span>'
            + "".join(
                _radio("e2c-indicator", i, bi(lambda l, i=i: c.labels[i][l]), i == c.indicators[0])
                for i in c.indicators
            )
        )
    boxes = "".join(
        f'<label><input type="checkbox" name="e2c-extra" value="{key}"{" checked" if EXTRAS_ON[key] else ""}>'
        f"{bi(lambda l, word=word: through.tt(word, l) if word == 'gates_layer' else w.t(word, l))}</label>"
        for key, word in OVERLAY_WORDS
        if c.overlays.get(key)
    )
    if boxes:
        rows.append(f'<span class="e2c-h">{bi(lambda l: w.t("overlays", l))}</span>{boxes}')
    rows.append(
        f'<span class="e2c-h">{bi(lambda l: w.t("base_map", l))}</span>'
        + _radio("e2c-base", "gsi", bi(lambda l: w.t("gsi_pale", l)), True)
        + _radio("e2c-base", "osm", "OpenStreetMap", False)
    )
    rows.append(f'<button type="button" id="e2c-print">{bi(lambda l: w.t("print", l))}</button>')
    return '<section class="e2c-controls">' + "<br>".join(rows) + "</section>"


def _legend_table(rows: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><td>{svg}</td><td>{label}</td></tr>" for svg, label in rows)


def indicator_legends(c: PanelContent) -> str:
    """One legend block per indicator and map ('passage_share:before' …); the page shows the one drawn."""
    blocks = []
    for ind in c.indicators:
        seq, div = palette.sequential_scale(ind), palette.change_scale(ind)
        for key in ("before", "after"):
            rows = [
                (line_svg(col, 5, casing=True), bi(lambda l, i=i, seq=seq: seq.legend(l)[i][1]))
                for i, (col, _) in enumerate(seq.legend())
            ]
            head = bi(
                lambda l, key=key, ind=ind: w.t(
                    "legend_values",
                    l,
                    layer=w.layer_name(key, l, short=True),
                    label=c.labels[ind][l],
                    unit=w.unit(ind, l),
                )
            )
            hint = bi(lambda l, key=key: w.fmt_period(c.pub.periods[key], l))
            blocks.append((f"{ind}:{key}", head, hint, rows))
        rows = [
            (line_svg(col, 5, casing=True), bi(lambda l, i=i, div=div: div.legend(l)[i][1]))
            for i, (col, _) in enumerate(div.legend())
        ]
        head = bi(lambda l, ind=ind: w.t("legend_change", l, label=c.labels[ind][l], unit=w.unit(ind, l, change=True)))
        hint = bi(lambda l, div=div: w.t("change_hint", l, down=div.words(l)[0], up=div.words(l)[1]))
        blocks.append((f"{ind}:change", head, hint, rows))
    return "".join(
        f'<div data-e2c-legend="{key}"><div class="e2c-h">{head}</div><div class="e2c-hint">{hint}</div>'
        f"<table>{_legend_table(rows)}</table></div>"
        for key, head, hint, rows in blocks
    )


def overlay_legend_rows(c: PanelContent) -> str:
    """Legend rows of the overlays present (shown and hidden with their overlay)."""
    rows = []
    if c.overlays.get("devices"):
        for kind in sorted({d.kind for d in c.district.devices}):
            illustrative = any(d.illustrative for d in c.district.devices if d.kind == kind)
            label = bi(
                lambda l, kind=kind, ill=illustrative: (
                    w.t(f"legend_{kind}", l) + (w.paren(w.t("illustrative", l), l) if ill else "")
                )
            )
            icon = f'<div style="width:40px;display:flex;justify-content:center">{device_svg(kind, 18)}</div>'
            rows.append(("devices", icon, label))
    if c.overlays.get("cut_through"):
        rows.append(
            ("cut_through", line_svg(palette.CUT_THROUGH_COLOR, 4, dash="2 7"), bi(lambda l: w.t("legend_cut", l)))
        )
    if c.overlays.get("gates"):
        ring = (
            '<svg width="40" height="14" aria-hidden="true">'
            f'<circle cx="20" cy="7" r="5" fill="#fff" stroke="{GATE_COLOUR}" stroke-width="2.5"/></svg>'
        )
        rows.append(("gates", ring, bi(lambda l: through.tt("legend_gate", l))))
    if c.overlays.get("braking"):
        dot = (
            '<svg width="40" height="14" aria-hidden="true">'
            f'<circle cx="20" cy="7" r="5.5" fill="{palette.BRAKING_COLOR}" fill-opacity="0.75" stroke="#fff" '
            'stroke-width="1.5"/></svg>'
        )
        rows.append(("braking", dot, bi(lambda l: w.t("legend_braking", l))))
    return "".join(f'<tr data-e2c-extra-legend="{key}"><td>{svg}</td><td>{label}</td></tr>' for key, svg, label in rows)


def common_legend_rows(c: PanelContent) -> str:
    """Legend rows of every map: too few vehicles, no data, the outlines drawn."""
    k = c.pub.public_min_vehicles
    rows = [
        (line_svg(palette.INSUFFICIENT_COLOR, 4, dash="7 6"), bi(lambda l: w.t("legend_too_few", l, k=k))),
        (line_svg(palette.NO_DATA_COLOR, 1.5), bi(lambda l: w.t("legend_no_data", l))),
    ]
    if len(c.pub.roads) and (c.pub.roads["role"] == "arterial").any():
        rows.append((line_svg(palette.ARTERIAL_COLOR, 5, casing=True), bi(lambda l: w.t("legend_arterial", l))))
    if c.has_area:
        rows.append((line_svg("#222", 2.5, dash="10 6"), bi(lambda l: w.t("legend_area", l))))
    if c.has_ward:
        ward = c.district.ward

        def ward_label(l):
            return w.t("legend_ward", l, ward=ward(l)) if ward(l) else w.t("legend_ward_plain", l)

        rows.append((line_svg("#555", 2.5), bi(ward_label)))
    return _legend_table(rows)


def legend_section(c: PanelContent) -> str:
    return (
        f'<section id="e2c-legend">{indicator_legends(c)}'
        f'<table style="margin-top:4px;border-top:1px solid #ccc">{overlay_legend_rows(c)}{common_legend_rows(c)}'
        "</table></section>"
    )


def notes_section(c: PanelContent) -> str:
    """Synthetic data, data source, method, synthetic network, credits."""
    k = c.pub.public_min_vehicles
    notes = []
    if c.synthetic:
        notes.append(f'<p class="e2c-synth">{bi(lambda l: w.t("synthetic_note", l))}</p>')
    notes.append(f"<p>{bi(lambda l: w.t('data_line', l))}</p>")
    notes.append(f"<p>{bi(lambda l: w.t('method_line', l, k=k))}</p>")
    if c.district.synthetic_network:
        notes.append(f"<p>{bi(lambda l: w.t('synthetic_network_note', l))}</p>")
    notes.append(f'<p class="e2c-credits">{bi(lambda l: w.credits(c.district, c.created, l))}</p>')
    return f'<section class="e2c-note">{"".join(notes)}</section>'
