"""The screening map: where to calm next. A folium.Map in the style of the district map (one
self-contained page: vendored libraries and the product's own assets inlined, Japanese first with an
English button, the phone's bottom sheet, opens from file:// without network).

It draws the top N public candidates of a stored screening run (analysis.results.load_screening)
coloured by rank with their rank number, the area outline and the other roads of the screened network
in grey; a tap on a candidate opens its rank, score and every component with its interval. Nothing
is recomputed: every figure is a stored screening_results value, worded and rounded by maps.wording,
after maps.public.public_screening (candidates under the publication threshold are not shown even
when `screen --min-vehicles` went lower; scores only when nothing is held back).

Engineers open it as an object: `build_screening_map(warehouse, "okurayama")` (docs/maps.md).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass
from pathlib import Path

import folium
import geopandas as gpd
import pandas as pd
from shapely.geometry import LineString, MultiLineString, mapping
from shapely.ops import linemerge, unary_union

import maps._layers as layers
import maps.wording as w
from analysis.pretrend import screening_period
from analysis.results import ResultsMissing, load_screening
from config.districts import District, Period, load_district
from config.settings import (
    EXCLUDED_HIGHWAY_CLASSES,
    LONLAT_CRS,
    PUBLIC_MIN_VEHICLES,
    RESIDENTIAL_MAX_LIMIT_KMH,
    SCREENING_TOP_N,
)
from geo.network import load_roads, with_road_names
from maps._basemap import base_tiles, frame, headline_html, map_controls, page_map, page_top
from maps._elements import Frame, Script, SidePanel, Tip, bi
from maps.page import save_page
from maps.public import public_screening

ASSETS = ("map.css", "screening.css", "frame.js", "screening.js")

RANK_TIERS = ((1, 3, "#b10026"), (4, 6, "#e31a1c"), (7, 10, "#fd8d3c"), (11, 10_000, "#feb24c"))
RESIDENTIAL_GREY = "#8f8f8f"
MAIN_ROAD_GREY = "#c4c4c4"

WEIGHT_KEYS = {
    "share_at_or_over_limit": "w_share",
    "share_at_or_over_limit_plus_10": "w_share10",
    "p85_over_limit": "w_p85",
    "braking_per_1000_passages": "w_braking",
    "cut_through_share": "w_cut",
    "passages_per_day": "w_volume",
}


def st(key: str, lang: str = "ja", **kw) -> str:
    """The screening map's text `key` (maps.wording's screen.<key>) in `lang`."""
    return w.t(f"screen.{key}", lang, **kw)


def tier_colour(rank: int) -> str:
    return next(c for a, b, c in RANK_TIERS if a <= rank <= b)


def _num(v: float) -> str:
    """A score or points figure as printed: maps.wording's one rounding (one decimal)."""
    return w.number(round(float(v), w.DECIMALS) + 0.0)


def _pct(v: float) -> str:
    return w.fmt_value("share", v)


def _kmh(v: float) -> str:
    return w.fmt_value("p85", v)


def _paren(text: str, lang: str) -> str:
    return f"（{text}）" if lang == "ja" else f" ({text})"


def _interval(lo, hi, fmt, lang: str) -> str:
    if w.is_missing(lo) or w.is_missing(hi):
        return ""
    return f"（{fmt(lo)}〜{fmt(hi)}）" if lang == "ja" else f" ({fmt(lo)}–{fmt(hi)})"


def _name(road_name: str, road_id: str, labels: dict[str, dict[str, str]], lang: str) -> str:
    """The road's name as every output gives it (maps.wording.road_labels), else the stored one, else its id."""
    if road_id in labels:
        return labels[road_id][lang]
    return road_name or road_id


def _popup(r, lang: str, scores: bool, labels: dict[str, dict[str, str]], braking_source: str, k: int) -> str:
    limit = int(r["limit_kmh"])  # a candidate is a residential road: its limit is known
    name = html.escape(_name(str(r["road_name"]), str(r["road_id"]), labels, lang))
    rank = int(r["rank"])
    head = [f"<b>{html.escape(st('rank', lang, r=rank))} {name}</b> [{html.escape(str(r['road_id']))}]"]
    if not w.is_missing(r.get("rank_ci_low")):
        head.append(html.escape(st("rank_ci", lang, r=rank, lo=int(r["rank_ci_low"]), hi=int(r["rank_ci_high"]))))
    if scores:
        head.append(
            "<b>"
            + html.escape(
                st("score", lang, v=_num(r["score"]), lo=_num(r["score_ci_low"]), hi=_num(r["score_ci_high"]))
            )
            + "</b>"
        )
    else:
        head.append(html.escape(st("score_withheld", lang)))
    rows = []

    def line(label: str, value: str, points_col: str) -> None:
        pts = (
            f' <span class="e2c-pts">[{html.escape(st("points", lang, v=_num(r[points_col])))}]</span>'
            if scores
            else ""
        )
        rows.append(f"<tr><td>{html.escape(label)}</td><td><b>{html.escape(value)}</b>{pts}</td></tr>")

    line(
        st("share", lang, limit=limit),
        _pct(r["share_at_or_over_limit"]) + _interval(r["share_ci_low"], r["share_ci_high"], _pct, lang),
        "points_share",
    )
    line(
        st("share", lang, limit=limit + 10),
        _pct(r["share_at_or_over_limit_plus_10"])
        + _interval(r["share_plus_10_ci_low"], r["share_plus_10_ci_high"], _pct, lang),
        "points_share_plus_10",
    )
    line(st("p85", lang), _kmh(r["p85_kmh"]) + _interval(r["p85_ci_low"], r["p85_ci_high"], _kmh, lang), "points_p85")
    if r["braking_public"] and not w.is_missing(r["braking_per_1000_passages"]):
        braking = _num(r["braking_per_1000_passages"]) + _paren(
            st("braking_events", lang, n=w.fmt_count(r["n_braking_events"])), lang
        )
    else:
        braking = st("braking_few", lang, k=k)
    line(st("braking", lang), braking, "points_braking")
    if not r["cut_through_public"]:
        cut = st("braking_few", lang, k=k)
    elif w.is_missing(r["cut_through_share"]):
        cut = st("cut_none", lang)
    else:
        cut = _pct(r["cut_through_share"]) + _paren(
            st("cut_of", lang, n=w.fmt_count(r["n_trips"]), c=w.fmt_count(r["n_cut_through"])), lang
        )
    line(st("cut", lang), cut, "points_cut_through")
    line(st("volume", lang), st("per_day", lang, v=w.fmt_count(round(float(r["passages_per_day"])))), "points_volume")
    foot = [html.escape(st("vehicles", lang, n=w.fmt_count(r["n_vehicles"]), p=w.fmt_count(r["n_passages"])))]
    if scores:
        foot.append(html.escape(st("points_head", lang)))
    if braking_source != "behavior_events":
        foot.append(f'<span class="e2c-note-small">{html.escape(st("braking_inferred", lang))}</span>')
    return "<br>".join(head) + f'<table class="e2c-components">{"".join(rows)}</table>' + "<br>".join(foot)


def _road_geoms(roads: gpd.GeoDataFrame) -> dict[str, object]:
    """road_id → the road's geometry in EPSG:4326 (pieces of one road merged)."""
    r = roads.to_crs(LONLAT_CRS)
    out = {}
    for rid, g in r.groupby(r["road_id"].astype(str), sort=False):
        merged = unary_union(list(g.geometry))
        if isinstance(merged, MultiLineString):
            merged = linemerge(merged)
        out[rid] = merged
    return out


def _midpoint(geom) -> tuple[float, float]:
    pieces = list(geom.geoms) if hasattr(geom, "geoms") else [geom]
    longest = max((p for p in pieces if isinstance(p, LineString)), key=lambda p: p.length)
    pt = longest.interpolate(0.5, normalized=True)
    return pt.y, pt.x


@dataclass(frozen=True)
class ScreeningOptions:
    """How the screening map is drawn. roads: the screened network (default: read from the run's
    network_path, without the district's excluded classes); district: for the title, the period's
    name and credits (optional); top: the number of public candidates drawn; lang: the language the
    page opens in; public_min_vehicles, synthetic, created: as for the district map."""

    roads: gpd.GeoDataFrame | None = None
    district: District | None = None
    top: int = SCREENING_TOP_N
    lang: str = "ja"
    public_min_vehicles: int = PUBLIC_MIN_VEHICLES
    synthetic: bool | None = None
    created: dt.date | None = None

    def __post_init__(self) -> None:
        w.check_lang(self.lang)
        if self.top < 1:
            raise ValueError(f"top must be at least 1, got {self.top}")


@dataclass(frozen=True)
class ScreeningContent:
    """What the screening map shows, from the stored run and its public candidates."""

    run: pd.Series
    opts: ScreeningOptions
    shown: pd.DataFrame  # the public candidates drawn, by rank
    held: dict  # maps.public.public_screening's account of what was held back
    candidates: list[dict]
    other: dict  # FeatureCollection of the network's other roads (kind: residential | main)
    area: dict | None
    period: Period
    titles: dict[str, str]
    bounds: list[list[float]]
    synthetic: bool
    created: dt.date

    @property
    def k(self) -> int:
        """The publication threshold: the product's, raised by the district file's [publication] min_vehicles."""
        district = self.opts.district
        return max(self.opts.public_min_vehicles, district.public_min_vehicles if district is not None else 0)


def build_screening_map(
    warehouse: str | Path,
    district: District | str,
    *,
    lang: str = "ja",
    top: int = SCREENING_TOP_N,
    created: dt.date | None = None,
) -> folium.Map:
    """The screening map of `district` (a District or a key such as 'okurayama') as a folium.Map: its
    stored screening of its default screening period (analysis.pretrend.screening_period: the months
    before its before period when delivered, else the before period) and own area (what the monthly
    flow stores and `etc2calm publish` draws), nothing computed; ResultsMissing when none is stored."""
    district = load_district(district) if isinstance(district, str) else district
    period, _ = screening_period(warehouse, district)
    run, rows = _stored(warehouse, district.key, default_area(district), (period.start, period.end))
    return screening_map(run, rows, district=district, top=top, lang=lang, created=created)


def render_screening_map(run: pd.Series, rows: pd.DataFrame, out_path: str | Path, **options) -> Path:
    """Write the screening map of one stored run (load_screening's run row and ranked rows; options:
    ScreeningOptions) to `out_path`; returns the path."""
    return save_page(screening_map(run, rows, **options), out_path)


def screening_map(run: pd.Series, rows: pd.DataFrame, **options) -> folium.Map:
    """The screening map of one stored run as a folium.Map on its page (options: ScreeningOptions)."""
    c = screening_content(run, rows, ScreeningOptions(**options))
    lang = c.opts.lang
    body_class = "e2c-synthetic e2c-screening" if c.synthetic else "e2c-screening"
    m = page_map(c.titles, c.bounds, lang, body_class, ASSETS)
    page_top(m, c.titles, _headline(c), lang, c.synthetic)
    handle = bi(lambda l: st("list", l, n=len(c.candidates)))
    m.add_child(
        SidePanel(handle, [_list_section(c), _base_section(), _legend_section(c), _notes_section(c)]), name="panel"
    )
    f = frame(m, c.titles, c.bounds, lang, popupMaxWidth=340)
    tiles = base_tiles(m)
    _network_layers(m, c)
    _candidate_layers(m, c, f)
    map_controls(m, lang)
    cands = [{k: x[k] for k in ("rank", "road_id", "name", "score", "lat", "lon", "popup")} for x in c.candidates]
    m.add_child(Script("E2CScreening", f, {"tiles": tiles, "base": "gsi", "candidates": cands}), name="script")
    return m


def screening_content(run: pd.Series, rows: pd.DataFrame, opts: ScreeningOptions) -> ScreeningContent:
    """The public candidates of `run` with their popups, the network's other roads, area and period."""
    roads = opts.roads
    if roads is None:
        exclude = opts.district.exclude_highway if opts.district is not None else EXCLUDED_HIGHWAY_CLASSES
        roads = load_roads(run["network_path"], exclude_highway=exclude)
        if opts.district is not None:
            roads = with_road_names(roads, opts.district.road_names)
    k = max(opts.public_min_vehicles, opts.district.public_min_vehicles if opts.district is not None else 0)
    pub, held = public_screening(rows, k)
    shown = pub.head(opts.top)
    geoms = _road_geoms(roads)
    candidates = _candidates(run, shown, roads, geoms, held["scores_public"], k)
    area_path = str(run.get("area_path") or "")
    area = layers.outline(Path(area_path), "area") if area_path and Path(area_path).is_file() else None
    district = opts.district
    synthetic = (
        (district.synthetic_network if district is not None else False) if opts.synthetic is None else opts.synthetic
    )
    created = w.creation_date(district, opts.created) if district is not None else (opts.created or dt.date.today())
    b = roads.to_crs(LONLAT_CRS).total_bounds
    return ScreeningContent(
        run=run,
        opts=opts,
        shown=shown,
        held=held,
        candidates=candidates,
        other=_other_roads(roads, geoms, {c["road_id"] for c in candidates}),
        area=area,
        period=_period(run, district),
        titles=_titles(run, district),
        bounds=[[float(b[1]), float(b[0])], [float(b[3]), float(b[2])]],
        synthetic=synthetic,
        created=created,
    )


def _candidates(run, shown: pd.DataFrame, roads, geoms: dict, scores: bool, k: int) -> list[dict]:
    labels = w.road_labels(roads)
    braking_source = str(run.get("braking_source", "points"))
    out = []
    for r in shown.to_dict("records"):
        rid = str(r["road_id"])
        if rid not in geoms:
            continue
        lat, lon = _midpoint(geoms[rid])
        rank = int(r["rank"])
        names = {l: _name(str(r["road_name"]), rid, labels, l) for l in w.LANGS}
        out.append(
            {
                "rank": rank,
                "road_id": rid,
                "name": names,
                "colour": tier_colour(rank),
                "lat": lat,
                "lon": lon,
                "score": round(float(r["score"]), 1) if scores else None,
                "geometry": mapping(geoms[rid]),
                "popup": {l: _popup(r, l, scores, labels, braking_source, k) for l in w.LANGS},
                "tip": {l: f"<b>{html.escape(st('rank', l, r=rank))}</b> {html.escape(names[l])}" for l in w.LANGS},
            }
        )
    return out


def _other_roads(roads, geoms: dict, candidate_ids: set[str]) -> dict:
    limits = dict(zip(roads["road_id"].astype(str), roads["limit_kmh"].astype(float), strict=True))
    feats = [
        {
            "type": "Feature",
            "geometry": mapping(geom),
            "properties": {"kind": "residential" if limits.get(rid, 99) <= RESIDENTIAL_MAX_LIMIT_KMH else "main"},
        }
        for rid, geom in geoms.items()
        if rid not in candidate_ids
    ]
    return {"type": "FeatureCollection", "features": feats}


def _period(run: pd.Series, district: District | None) -> Period:
    """The screened period, under the district's name for it when it is one of its periods."""
    start, end = (pd.Timestamp(run[c]).date() for c in ("period_start", "period_end"))
    period = Period(str(run["period"]), start, end)
    if district is not None:
        for p in district.periods.values():
            if (p.start, p.end) == (start, end):
                period = p
    return period


def _titles(run: pd.Series, district: District | None) -> dict[str, str]:
    if district is not None:
        return {l: st("title", l, place=w.place(district, l)).replace("） ", "）") for l in w.LANGS}
    return {l: st("title_network", l, name=Path(str(run["network_path"])).stem) for l in w.LANGS}


# --- the page around the map ----------------------------------------------------------------------


def _head_text(c: ScreeningContent, l: str) -> tuple[str, str]:
    """(lead, details) of the headline in language `l`."""
    run = c.run
    details = st(
        "details", l, period=w.fmt_period(c.period, l), n=w.fmt_count(run["n_candidates"]), m=int(run["min_vehicles"])
    )
    if not c.candidates:
        return st("lead_none", l), details
    first, row = c.candidates[0], c.shown.iloc[0]
    parts = [details]
    if c.held["scores_public"]:
        lo, hi = _num(row["score_ci_low"]), _num(row["score_ci_high"])
        rlo, rhi = int(row["rank_ci_low"]), int(row["rank_ci_high"])
        parts.append(st("details_score", l, score=_num(row["score"]), lo=lo, hi=hi, rlo=rlo, rhi=rhi))
    else:
        parts.append(st("details_no_score", l))
    if first["rank"] == 1:
        lead = st("lead", l, name=first["name"][l])
    else:
        lead = st("lead_held", l, name=first["name"][l], r=first["rank"])
    return lead, (" " if l == "en" else "").join(parts)


def _headline(c: ScreeningContent) -> str:
    heads = {l: _head_text(c, l) for l in w.LANGS}
    top = c.candidates[0]["road_id"] if c.candidates else ""
    lead = {l: heads[l][0] for l in w.LANGS}
    details = {l: html.escape(heads[l][1]) for l in w.LANGS}
    return headline_html("e2c-headline", {"data-top": top}, lead, details)


def _list_section(c: ScreeningContent) -> str:
    items = "".join(
        f'<li data-rank="{x["rank"]}"><button type="button" class="e2c-cand" data-rank="{x["rank"]}">'
        f'<span class="e2c-rank" style="background:{x["colour"]}">{x["rank"]}</span>'
        f"{bi(lambda l, x=x: x['name'][l])}"
        + (f'<span class="e2c-score">{html.escape(_num(x["score"]))}</span>' if x["score"] is not None else "")
        + "</button></li>"
        for x in c.candidates
    )
    basis = str(c.run.get("basis") or "given")  # which months the ranking used (screening_runs.basis)
    period_line = bi(
        lambda l: (
            st("period", l, text=w.fmt_period(c.period, l))
            + (w.t(f"screen.basis_{basis}", l) if basis != "given" else "")
        )
    )
    heading = bi(lambda l: st("list", l, n=len(c.candidates)))
    return (
        f'<section><div>{period_line}</div><span class="e2c-h">{heading}</span>'
        f'<ol id="e2c-candidates">{items}</ol></section>'
    )


def _base_section() -> str:
    return (
        f'<section class="e2c-controls"><span class="e2c-h">{bi(lambda l: w.t("base_map", l))}</span>'
        f'<label><input type="radio" name="e2c-base" value="gsi" checked>{bi(lambda l: w.t("gsi_pale", l))}</label>'
        f'<label><input type="radio" name="e2c-base" value="osm">OpenStreetMap</label></section>'
    )


def _legend_line(colour: str, width: float, dash: str = "") -> str:
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    cap = ' stroke-linecap="round"' if width >= 6 else ""
    return (
        f'<svg width="40" height="14" aria-hidden="true"><line x1="4" y1="7" x2="36" y2="7" stroke="{colour}" '
        f'stroke-width="{width:g}"{cap}{dash_attr}/></svg>'
    )


def _legend_section(c: ScreeningContent) -> str:
    last = max((x["rank"] for x in c.candidates), default=0)
    rows = [
        (
            _legend_line(col, 6),
            bi(lambda l, a=a, b=b: st("tier", l, a=a, b=b) if b < 10_000 else st("tier_from", l, a=a)),
        )
        for a, b, col in RANK_TIERS
        if a <= last
    ]
    rows.append((_legend_line(RESIDENTIAL_GREY, 2.5), bi(lambda l: st("other_residential", l))))
    rows.append((_legend_line(MAIN_ROAD_GREY, 5), bi(lambda l: st("main_roads", l))))
    if c.area is not None:
        rows.append((_legend_line("#222", 2.5, "10 6"), bi(lambda l: st("area", l))))
    table = "".join(f"<tr><td>{svg}</td><td>{label}</td></tr>" for svg, label in rows)
    heading = bi(lambda l: st("legend", l))
    return f'<section id="e2c-legend"><span class="e2c-h">{heading}</span><table>{table}</table></section>'


def _notes_section(c: ScreeningContent) -> str:
    run, k, district = c.run, c.k, c.opts.district
    weights = json.loads(run["weights"]) if isinstance(run.get("weights"), str) else dict(run.get("weights") or {})
    sep = {"ja": "・", "en": ", "}
    weight_text = {
        l: sep[l].join(f"{st(WEIGHT_KEYS[col], l)} {v:g}" for col, v in weights.items() if col in WEIGHT_KEYS)
        for l in w.LANGS
    }
    notes = []
    if c.synthetic:
        notes.append(f'<p class="e2c-synth">{bi(lambda l: w.t("synthetic_note", l))}</p>')
    notes.append(f"<p>{bi(lambda l: st('method', l, weights=weight_text[l], n=w.fmt_count(run['resamples'])))}</p>")
    if str(run.get("braking_source", "points")) != "behavior_events":
        notes.append(f"<p>{bi(lambda l: st('braking_inferred', l))}</p>")
    notes.append(f"<p>{bi(lambda l: st('threshold', l, k=k))}</p>")
    if c.held["n_hidden"]:
        notes.append(f"<p>{bi(lambda l: st('hidden', l, k=k, n=c.held['n_hidden']))}</p>")
    if district is not None and district.synthetic_network:
        notes.append(f"<p>{bi(lambda l: w.t('synthetic_network_note', l))}</p>")
    notes.append(f"<p>{bi(lambda l: st('docs', l))}</p>")
    if district is not None:
        credits = bi(lambda l: w.credits(district, c.created, l))
    else:
        credits = bi(lambda l: w.t("data_line", l) + " · " + w.fmt_date(c.created, l))
    notes.append(f'<p class="e2c-credits">{credits}</p>')
    return f'<section class="e2c-note">{"".join(notes)}</section>'


# --- layers ---------------------------------------------------------------------------------------

NETWORK_STYLES = {
    "residential": {"color": RESIDENTIAL_GREY, "weight": 2.5, "opacity": 0.9, "lineCap": "round"},
    "main": {"color": MAIN_ROAD_GREY, "weight": 5, "opacity": 0.9, "lineCap": "round"},
}


def _network_layers(m: folium.Map, c: ScreeningContent) -> None:
    """The area outline (dashed) and the network's other roads in grey, not interactive."""
    if c.area is not None:
        style = {"color": "#222", "weight": 2.5, "opacity": 0.9, "dashArray": "10 6", "fill": False}
        m.add_child(
            folium.GeoJson(c.area, name="area", style_function=lambda f: style, interactive=False), name="outline:area"
        )
    if c.other["features"]:
        roads = folium.GeoJson(
            c.other, name="roads", style_function=lambda f: NETWORK_STYLES[f["properties"]["kind"]], interactive=False
        )
        m.add_child(roads, name="roads")


def _candidate_layers(m: folium.Map, c: ScreeningContent, f: Frame) -> None:
    """Each candidate a FeatureGroup: its line over a white casing and its rank marker, the best drawn
    last (on top); a tap on the line or on the rank opens its popup."""
    for x in reversed(c.candidates):
        wide = x["rank"] <= 3
        group = folium.FeatureGroup(name=f"{st('rank', c.opts.lang, r=x['rank'])} {x['name'][c.opts.lang]}")
        casing = {
            "color": "#ffffff",
            "weight": 11 if wide else 10,
            "opacity": 0.95,
            "lineCap": "round",
            "className": "e2c-casing",
        }
        line = {
            "color": x["colour"],
            "weight": 7 if wide else 6,
            "opacity": 1,
            "lineCap": "round",
            "className": f"e2c-candidate e2c-cand-{x['rank']}",
        }
        group.add_child(folium.GeoJson(x["geometry"], style_function=lambda _, s=casing: s, interactive=False))
        road = folium.GeoJson(x["geometry"], style_function=lambda _, s=line: s)
        road.add_child(Tip(f, x["tip"], sticky=True, popup=x["popup"]))
        group.add_child(road)
        icon = folium.DivIcon(
            html=f'<span style="background:{x["colour"]}">{x["rank"]}</span>',
            icon_size=(24, 24),
            icon_anchor=(12, 12),
            class_name="e2c-rank-marker",
        )
        marker = folium.Marker(
            [x["lat"], x["lon"]], icon=icon, keyboard=False, rise_on_hover=True, z_index_offset=1000 - x["rank"]
        )
        marker.add_child(Tip(f, x["tip"], sticky=True, popup=x["popup"]))
        group.add_child(marker)
        m.add_child(group, name=f"candidate:{x['rank']}")


def _stored(warehouse, network_key: str, area: str | None, period) -> tuple[pd.Series, pd.DataFrame]:
    run, rows = load_screening(warehouse, network_key, area=area, period=period)
    if run is None:
        where = f" of area {area!r}" if area else ""
        when = f" for {period[0]}..{period[1]}" if period else ""
        raise ResultsMissing(
            f"no stored screening of {network_key!r}{where}{when}: run 'etc2calm screen' without "
            "--map (or the monthly flow) first"
        )
    return run, rows


def default_area(district: District) -> str:
    """The area label a district's own screening is stored under (screen_district): its outline, or none."""
    return "outline" if district.area_path is not None else ""


def write_screening_map(
    warehouse: str | Path,
    network_key: str,
    out: str | Path,
    *,
    area: str | None = None,
    period: tuple[dt.date, dt.date] | None = None,
    **options,
) -> Path:
    """The screening map of the latest stored screening of a network (district key or 'roads:<stem>';
    of `area` and of the dates `period` = (start, end) when given) from the warehouse, computing
    nothing (options: ScreeningOptions: district, top, lang, created …); ResultsMissing when none is
    stored."""
    run, rows = _stored(warehouse, network_key, area, period)
    return render_screening_map(run, rows, out, **options)


__all__ = [
    "build_screening_map",
    "screening_map",
    "render_screening_map",
    "write_screening_map",
    "default_area",
    "ScreeningOptions",
    "RANK_TIERS",
    "tier_colour",
]
