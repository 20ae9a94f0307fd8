"""The screening map: where to calm next. One self-contained HTML file in the style of the district map
(Leaflet and the product's own assets inlined, Japanese first with an English button, the phone's
bottom sheet, opens from file:// without network).

It draws the top N public candidates of a stored screening run (analysis.results.load_screening)
coloured by rank with their rank number, the area outline and the other roads of the screened network
in grey; a tap on a candidate opens its rank, score and every component with its interval. Nothing
is recomputed: every figure is a stored screening_results value, worded and rounded by maps.wording,
after maps.public.public_screening (candidates under the publication threshold are not shown even
when `screen --min-vehicles` went lower; scores only when nothing is held back).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
from shapely.geometry import LineString, MultiLineString, mapping
from shapely.ops import linemerge, unary_union

from analysis.results import ResultsMissing, load_screening
from config.districts import District, Period
from config.settings import (
    EXCLUDED_HIGHWAY_CLASSES,
    LONLAT_CRS,
    PUBLIC_MIN_VEHICLES,
    RESIDENTIAL_MAX_LIMIT_KMH,
    SCREENING_TOP_N,
)
from geo.network import load_roads
from maps import embed, layers
from maps import wording as w
from maps.district_map import GSI_ATTRIBUTION, GSI_PALE_URL, OSM_ATTRIBUTION, OSM_URL, bi
from maps.public import public_screening

# Rank tiers: (first rank, last rank, colour), darkest first (ColorBrewer YlOrRd).
RANK_TIERS = ((1, 3, "#b10026"), (4, 6, "#e31a1c"), (7, 10, "#fd8d3c"), (11, 10_000, "#feb24c"))
RESIDENTIAL_GREY = "#8f8f8f"
MAIN_ROAD_GREY = "#c4c4c4"

SCREEN_TEXT: dict[str, tuple[str, str]] = {
    "title": ("{place} 生活道路の対策候補", "{place}: where to calm next"),
    "title_network": ("生活道路の対策候補（{name}）", "Where to calm next ({name})"),
    "lead": ("対策を検討する候補の1位は「{name}」です。", "The first candidate for traffic calming is {name}."),
    "lead_held": (
        "公表できる候補の最上位は「{name}」（{r}位）です。",
        "The highest-ranked candidate that can be published is {name} (No. {r}).",
    ),
    "lead_none": ("公表できる候補はありません。", "No candidate can be published."),
    "details": (
        "{period}の ETC2.0 データで、生活道路 {n} 本を、速度・急ブレーキ・抜け道・交通量から求めたスコア"
        "（0〜100）で順位付けしました（観測車両 {m} 台以上の道路）。",
        "From the ETC2.0 data of {period}, {n} residential streets with at least {m} vehicles were ranked by a "
        "score (0–100) from speeds, sudden braking, cut-through traffic and volume.",
    ),
    "details_score": (
        "1位のスコアは {score}（95%信頼区間 {lo}〜{hi}）、順位の95%信頼区間は {rlo}〜{rhi} 位です。",
        "Its score is {score} (95% confidence interval {lo}–{hi}); its rank lies between {rlo} and {rhi} "
        "(95% interval).",
    ),
    "details_no_score": (
        "スコアは、観測車両が少ない値を含むため公表していません（順位と各指標のみ）。",
        "Scores are not published because they rest on figures from too few vehicles (ranks and components only).",
    ),
    "rank": ("{r}位", "No. {r}"),
    "rank_ci": ("順位 {r}位（95%信頼区間 {lo}〜{hi}位）", "Rank {r} (95% interval {lo}–{hi})"),
    "score": ("スコア {v}（95%信頼区間 {lo}〜{hi}）", "Score {v} (95% interval {lo}–{hi})"),
    "score_withheld": ("スコアは非公表", "Score not published"),
    "share": ("{limit} km/h 以上で通過した車の割合", "Share of passages at or over {limit} km/h"),
    "p85": ("85パーセンタイル速度（通過ごと）", "85th-percentile speed of passages"),
    "braking": ("急ブレーキ（1,000通過あたり）", "Sudden braking per 1,000 passages"),
    "braking_events": ("{n} 件", "{n} events"),
    "braking_few": ("データ不足（{k} 台未満の車両）", "too few data (under {k} vehicles)"),
    "cut": ("抜け道の割合", "Cut-through share"),
    "cut_of": ("{n} トリップ中 {c}", "{c} of {n} trips"),
    "cut_none": ("区域がないため算出なし", "not computed (no area)"),
    "volume": ("交通量", "Volume"),
    "per_day": ("{v} 通過/日", "{v} passages a day"),
    "vehicles": ("観測車両 {n} 台・通過 {p} 回", "{n} vehicles, {p} passages"),
    "points": ("{v} 点", "{v} pts"),
    "points_head": ("[ ] 内：スコアへの寄与（点）", "[in brackets]: points of the score"),
    "list": ("候補（上位 {n}）", "Candidates (top {n})"),
    "legend": ("凡例", "Legend"),
    "tier": ("{a}〜{b}位", "Rank {a}–{b}"),
    "tier_from": ("{a}位以下", "Rank {a} and below"),
    "other_residential": ("その他の生活道路", "Other residential streets"),
    "main_roads": ("幹線道路など", "Main roads"),
    "area": ("対象区域", "Area screened"),
    "period": ("期間：{text}", "Period: {text}"),
    "method": (
        "スコア：各指標を候補の中の最大値で割り、重み（{weights}）を掛けて合計（0〜100）。スコアはこの区域の候補の中での"
        "相対値です。信頼区間は車両単位のブートストラップ（{n}回）。",
        "Score: each component divided by the best candidate's value, weighted ({weights}) and added up "
        "(0–100); scores are relative to this area's candidates. Intervals: bootstrap over vehicles ({n} "
        "resamples).",
    ),
    "braking_inferred": (
        "挙動履歴の提供がないため、急ブレーキは連続する2地点の速度差から求めた推定値（下限）です。",
        "No behaviour history (挙動履歴) was delivered: sudden braking is inferred from consecutive "
        "records (a lower bound).",
    ),
    "hidden": (
        "観測車両が {k} 台未満の候補 {n} 本は表示していません（順位は全候補の中の順位です）。",
        "{n} candidate(s) with fewer than {k} vehicles are not shown (ranks are among all candidates).",
    ),
    "threshold": ("観測車両が {k} 台未満の数値は表示しません。", "Figures from fewer than {k} vehicles are not shown."),
    "docs": ("詳しい方法：docs/screening.md", "Method in detail: docs/screening.md"),
    "w_share": ("制限以上", "at or over the limit"),
    "w_share10": ("制限+10以上", "limit + 10"),
    "w_p85": ("85%速度", "p85"),
    "w_braking": ("急ブレーキ", "braking"),
    "w_cut": ("抜け道", "cut-through"),
    "w_volume": ("交通量", "volume"),
}
WEIGHT_KEYS = {
    "share_at_or_over_limit": "w_share",
    "share_at_or_over_limit_plus_10": "w_share10",
    "p85_over_limit": "w_p85",
    "braking_per_1000_passages": "w_braking",
    "cut_through_share": "w_cut",
    "passages_per_day": "w_volume",
}


def st(key: str, lang: str = "ja", **kw) -> str:
    return w.text_of(SCREEN_TEXT, key, lang, **kw)


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


def _name(road_name: str, road_id: str, names_en: dict[str, str], lang: str) -> str:
    if lang == "en" and names_en.get(road_id):
        return names_en[road_id]
    return road_name or road_id


def _popup(r, lang: str, scores: bool, names_en: dict[str, str], braking_source: str, k: int) -> str:
    limit = int(r["limit_kmh"])  # a candidate is a residential road: its limit is known
    name = html.escape(_name(str(r["road_name"]), str(r["road_id"]), names_en, lang))
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


def render_screening_map(
    run: pd.Series,
    rows: pd.DataFrame,
    out_path: str | Path,
    *,
    roads: gpd.GeoDataFrame | None = None,
    district: District | None = None,
    top: int = SCREENING_TOP_N,
    lang: str = "ja",
    public_min_vehicles: int = PUBLIC_MIN_VEHICLES,
    synthetic: bool | None = None,
    created: dt.date | None = None,
) -> Path:
    """Write the screening map of one stored run (load_screening's run row and ranked rows); returns the path.

    roads: the screened network (default: read from run['network_path'], without the district's
    excluded classes); district: for the title, the period's name and credits (optional); top: the
    number of public candidates drawn; lang: the language the page opens in."""
    w.check_lang(lang)
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    k = public_min_vehicles
    if roads is None:
        exclude = district.exclude_highway if district is not None else EXCLUDED_HIGHWAY_CLASSES
        roads = load_roads(run["network_path"], exclude_highway=exclude)
    pub, held = public_screening(rows, k)
    shown = pub.head(top)
    geoms = _road_geoms(roads)
    names_en = (
        dict(zip(roads["road_id"].astype(str), roads["name_en"].fillna("").astype(str), strict=True))
        if "name_en" in roads
        else {}
    )
    candidate_ids = set(shown["road_id"].astype(str))
    limits = dict(zip(roads["road_id"].astype(str), roads["limit_kmh"].astype(float), strict=True))
    other = []
    for rid, geom in geoms.items():
        if rid in candidate_ids:
            continue
        residential = limits.get(rid, 99) <= RESIDENTIAL_MAX_LIMIT_KMH
        other.append(
            {
                "type": "Feature",
                "geometry": mapping(geom),
                "properties": {"kind": "residential" if residential else "main"},
            }
        )
    scores = held["scores_public"]
    braking_source = str(run.get("braking_source", "points"))
    candidates = []
    for r in shown.to_dict("records"):
        rid = str(r["road_id"])
        if rid not in geoms:
            continue
        lat, lon = _midpoint(geoms[rid])
        rank = int(r["rank"])
        names = {l: _name(str(r["road_name"]), rid, names_en, l) for l in w.LANGS}
        candidates.append(
            {
                "rank": rank,
                "road_id": rid,
                "name": names,
                "colour": tier_colour(rank),
                "lat": lat,
                "lon": lon,
                "score": round(float(r["score"]), 1) if scores else None,
                "geometry": mapping(geoms[rid]),
                "popup": {l: _popup(r, l, scores, names_en, braking_source, k) for l in w.LANGS},
                "tip": {l: f"<b>{html.escape(st('rank', l, r=rank))}</b> {html.escape(names[l])}" for l in w.LANGS},
            }
        )
    area_path = str(run.get("area_path") or "")
    area = layers.outline(Path(area_path), "area") if area_path and Path(area_path).is_file() else None
    start, end = (pd.Timestamp(run[c]).date() for c in ("period_start", "period_end"))
    period = Period(str(run["period"]), start, end)
    if district is not None:
        for p in district.periods.values():
            if (p.start, p.end) == (start, end):
                period = p
    synthetic = (district.synthetic_network if district is not None else False) if synthetic is None else synthetic
    created = w.creation_date(district, created) if district is not None else (created or dt.date.today())
    if district is not None:
        titles = {l: st("title", l, place=w.place(district, l)).replace("） ", "）") for l in w.LANGS}
    else:
        titles = {l: st("title_network", l, name=Path(str(run["network_path"])).stem) for l in w.LANGS}
    period_text = {l: w.fmt_period(period, l) for l in w.LANGS}
    first = candidates[0] if candidates else None
    first_row = shown.iloc[0] if len(shown) else None

    def head_text(l: str) -> tuple[str, str]:
        if first is None:
            return st("lead_none", l), st(
                "details", l, period=period_text[l], n=w.fmt_count(run["n_candidates"]), m=int(run["min_vehicles"])
            )
        parts = [
            st("details", l, period=period_text[l], n=w.fmt_count(run["n_candidates"]), m=int(run["min_vehicles"]))
        ]
        if scores:
            parts.append(
                st(
                    "details_score",
                    l,
                    score=_num(first_row["score"]),
                    lo=_num(first_row["score_ci_low"]),
                    hi=_num(first_row["score_ci_high"]),
                    rlo=int(first_row["rank_ci_low"]),
                    rhi=int(first_row["rank_ci_high"]),
                )
            )
        else:
            parts.append(st("details_no_score", l))
        lead = (
            st("lead", l, name=first["name"][l])
            if first["rank"] == 1
            else st("lead_held", l, name=first["name"][l], r=first["rank"])
        )
        return lead, (" " if l == "en" else "").join(parts)

    heads = {l: head_text(l) for l in w.LANGS}
    headline_html = (
        '<div id="headline" class="e2c-headline" data-top="'
        + html.escape(first["road_id"] if first else "")
        + '">'
        + "".join(
            f'<p lang="{l}"><strong>{html.escape(heads[l][0])}</strong>{"" if l == "ja" else " "}'
            f"{html.escape(heads[l][1])}</p>"
            for l in w.LANGS
        )
        + "</div>"
    )
    weights = json.loads(run["weights"]) if isinstance(run.get("weights"), str) else dict(run.get("weights") or {})
    sep = {"ja": "・", "en": ", "}
    weight_text = {
        l: sep[l].join(f"{st(WEIGHT_KEYS[c], l)} {v:g}" for c, v in weights.items() if c in WEIGHT_KEYS)
        for l in w.LANGS
    }
    items = "".join(
        f'<li data-rank="{c["rank"]}"><button type="button" class="e2c-cand" data-rank="{c["rank"]}">'
        f'<span class="e2c-rank" style="background:{c["colour"]}">{c["rank"]}</span>'
        f"{bi(lambda l, c=c: c['name'][l])}"
        + (f'<span class="e2c-score">{html.escape(_num(c["score"]))}</span>' if c["score"] is not None else "")
        + "</button></li>"
        for c in candidates
    )
    tiers = [(a, b, col) for a, b, col in RANK_TIERS if a <= max((c["rank"] for c in candidates), default=0)]
    legend_rows = "".join(
        f'<tr><td><svg width="40" height="14" aria-hidden="true"><line x1="4" y1="7" x2="36" y2="7" stroke="{col}" '
        f'stroke-width="6" stroke-linecap="round"/></svg></td><td>'
        f"{bi(lambda l, a=a, b=b: st('tier', l, a=a, b=b) if b < 10_000 else st('tier_from', l, a=a))}</td></tr>"
        for a, b, col in tiers
    )
    legend_rows += (
        f'<tr><td><svg width="40" height="14" aria-hidden="true"><line x1="4" y1="7" x2="36" y2="7" '
        f'stroke="{RESIDENTIAL_GREY}" '
        f'stroke-width="2.5"/></svg></td><td>{bi(lambda l: st("other_residential", l))}</td></tr>'
        f'<tr><td><svg width="40" height="14" aria-hidden="true"><line x1="4" y1="7" x2="36" y2="7" '
        f'stroke="{MAIN_ROAD_GREY}" stroke-width="5"/></svg></td><td>{bi(lambda l: st("main_roads", l))}</td></tr>'
    )
    if area is not None:
        legend_rows += (
            '<tr><td><svg width="40" height="14" aria-hidden="true"><line x1="4" y1="7" x2="36" y2="7" '
            'stroke="#222" stroke-width="2.5" stroke-dasharray="10 '
            f'6"/></svg></td><td>{bi(lambda l: st("area", l))}</td></tr>'
        )
    notes = []
    if synthetic:
        notes.append(f'<p class="e2c-synth">{bi(lambda l: w.SYNTHETIC_NOTE[l == "en"])}</p>')
    notes.append(f"<p>{bi(lambda l: st('method', l, weights=weight_text[l], n=w.fmt_count(run['resamples'])))}</p>")
    if braking_source != "behavior_events":
        notes.append(f"<p>{bi(lambda l: st('braking_inferred', l))}</p>")
    notes.append(f"<p>{bi(lambda l: st('threshold', l, k=k))}</p>")
    if held["n_hidden"]:
        notes.append(f"<p>{bi(lambda l: st('hidden', l, k=k, n=held['n_hidden']))}</p>")
    if district is not None and district.synthetic_network:
        notes.append(f"<p>{bi(lambda l: w.SYNTHETIC_NETWORK_NOTE[l == 'en'])}</p>")
    notes.append(f"<p>{bi(lambda l: st('docs', l))}</p>")
    if district is not None:
        notes.append(f'<p class="e2c-credits">{bi(lambda l: w.credits(district, created, l))}</p>')
    else:
        notes.append(f'<p class="e2c-credits">{bi(lambda l: w.t("data_line", l) + " · " + w.fmt_date(created, l))}</p>')
    bounds_src = roads.to_crs(LONLAT_CRS).total_bounds
    data = {
        "lang": lang,
        "roads": {"type": "FeatureCollection", "features": other},
        "candidates": candidates,
        "area": area or {"type": "FeatureCollection", "features": []},
        "bounds": [[float(bounds_src[1]), float(bounds_src[0])], [float(bounds_src[3]), float(bounds_src[2])]],
        "styles": {
            "residential": {"color": RESIDENTIAL_GREY, "weight": 2.5, "opacity": 0.9},
            "main": {"color": MAIN_ROAD_GREY, "weight": 5, "opacity": 0.9},
        },
        "tiles": {
            "gsi": {"url": GSI_PALE_URL, "attribution": GSI_ATTRIBUTION, "max_native_zoom": 18},
            "osm": {"url": OSM_URL, "attribution": OSM_ATTRIBUTION, "max_native_zoom": 19},
        },
        "doc_title": titles,
        "zoom_titles": {"ja": ["拡大", "縮小"], "en": ["Zoom in", "Zoom out"]},
        "lang_toggle": {"ja": "English", "en": "日本語"},
        "lang_toggle_label": {"ja": "Show this map in English", "en": "日本語で表示"},
        "map_label": titles,
        "headline": {l: " ".join(heads[l]) if l == "en" else "".join(heads[l]) for l in w.LANGS},
    }
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")  # safe inside <script>
    banner = f'<div class="e2c-banner" role="alert">{bi(w.banner)}</div>' if synthetic else ""
    top_html = (
        f'<header id="e2c-top"><div class="e2c-titlebar"><h1>{bi(lambda l: titles[l])}</h1>'
        f'<button type="button" id="e2c-lang-toggle">{data["lang_toggle"][lang]}</button></div>{headline_html}</header>'
    )
    basis = str(run.get("basis") or "given")
    period_line = bi(
        lambda l: (
            st("period", l, text=period_text[l]) + (w.t(f"screening_basis_{basis}", l) if basis != "given" else "")
        )
    )
    panel = (
        '<aside id="e2c-panel"><button type="button" id="e2c-handle" aria-expanded="false" '
        'aria-controls="e2c-panel-body">'
        f'<span class="e2c-arrow" aria-hidden="true">▲</span> {bi(lambda l: st("list", l, n=len(candidates)))}</button>'
        f'<div id="e2c-panel-body"><section><div>{period_line}</div>'
        f'<span class="e2c-h">{bi(lambda l: st("list", l, n=len(candidates)))}</span>'
        f'<ol id="e2c-candidates">{items}</ol></section>'
        f'<section class="e2c-controls"><span class="e2c-h">{bi(lambda l: w.t("base_map", l))}</span>'
        f'<label><input type="radio" name="e2c-base" value="gsi" checked>{bi(lambda l: w.t("gsi_pale", l))}</label>'
        f'<label><input type="radio" name="e2c-base" value="osm">OpenStreetMap</label></section>'
        '<section id="e2c-legend"><span '
        f'class="e2c-h">{bi(lambda l: st("legend", l))}</span><table>{legend_rows}</table></section>'
        f'<section class="e2c-note">{"".join(notes)}</section></div></aside>'
    )
    body_class = ' class="e2c-synthetic e2c-screening"' if synthetic else ' class="e2c-screening"'
    page = (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(titles[lang])}</title>\n"
        f"{embed.leaflet_head()}{embed.style('map.css')}\n{embed.style('screening.css')}\n</head>\n"
        f'<body{body_class}>\n<div id="e2c-app">{banner}{top_html}{panel}'
        f'<div id="e2c-map" role="region" aria-label="{html.escape(titles[lang])}"></div></div>\n'
        f"<script>\nvar E2C_SCREEN = {payload};\n</script>\n"
        f"{embed.script('frame.js')}\n{embed.script('screening.js')}\n</body>\n</html>\n"
    )
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(page, encoding="utf-8")
    return out_path


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
    district: District | None = None,
    top: int = SCREENING_TOP_N,
    lang: str = "ja",
    created: dt.date | None = None,
) -> Path:
    """The screening map of the latest stored screening of a network (district key or 'roads:<stem>';
    of `area` and of the dates `period` = (start, end) when given) from the warehouse, computing
    nothing; ResultsMissing when none is stored."""
    run, rows = load_screening(warehouse, network_key, area=area, period=period)
    if run is None:
        where = f" of area {area!r}" if area else ""
        when = f" for {period[0]}..{period[1]}" if period else ""
        raise ResultsMissing(
            f"no stored screening of {network_key!r}{where}{when}: run 'etc2calm screen' without "
            "--map (or the monthly flow) first"
        )
    return render_screening_map(run, rows, out, district=district, top=top, lang=lang, created=created)


__all__ = ["render_screening_map", "write_screening_map", "default_area", "SCREEN_TEXT", "RANK_TIERS", "tier_colour"]
