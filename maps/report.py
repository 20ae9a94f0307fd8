"""The district report: one self-contained Japanese HTML page with the evidence a council and an engineer need."""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.results import DistrictResults
from config.districts import District
from config.settings import PUBLIC_MIN_VEHICLES, RESIDENTIAL_MAX_LIMIT_KMH

INDICATOR_LABELS_JA = {
    "mean": "平均速度 (km/h)",
    "p85": "85%タイル速度 (km/h)",
    "share": "制限速度以上の割合",
    "share_plus10": "制限速度+10 km/h 以上の割合",
    "passage_mean": "通過ごとの平均速度 (km/h)",
    "passage_p85": "通過ごとの85%タイル速度 (km/h)",
    "passage_share": "制限速度以上で通過した車の割合",
}


def public_comparison(table: pd.DataFrame, public_min_vehicles: int = PUBLIC_MIN_VEHICLES) -> pd.DataFrame:
    """The comparison rows fit for public outputs: figures from fewer than k distinct vehicles blanked.

    A blanked row keeps its unit and flag ('suppressed') but no figures, so a public table shows
    「データ不足」 where an engineer's table shows the number with its flag.
    """
    out = table.copy()
    small = out[["n_vehicles_before", "n_vehicles_after"]].min(axis=1) < public_min_vehicles
    for col in ("before", "after", "change", "ci_low", "ci_high", "n_vehicles_before", "n_vehicles_after"):
        out[col] = out[col].astype(float).where(~small)
    out.loc[small, "flag"] = "suppressed"
    return out

BEFORE_COLOUR = "#d6604d"  # ColorBrewer RdBu ends: distinguishable for colour-blind readers
AFTER_COLOUR = "#2166ac"


def _fmt(value, indicator: str, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "データ不足"
    if indicator.startswith("share"):
        v = 100 * value
        return f"{v:+.1f} ポイント" if signed else f"{v:.1f}%"
    return f"{value:+.1f} km/h" if signed else f"{value:.1f} km/h"


def _ci(row, indicator: str) -> str:
    if pd.isna(row["ci_low"]):
        return "—"
    k = 100 if indicator.startswith("share") else 1
    return f"[{k * row['ci_low']:+.1f}, {k * row['ci_high']:+.1f}]"


def _unit_label(unit: str, roads: pd.DataFrame) -> str:
    if unit == "treated":
        return "対策道路（全体）"
    if unit == "control":
        return "比較道路（全体）"
    if unit == "did":
        return "差の差（対策 − 比較）"
    name = roads.set_index("road_id")["name"].get(unit, "")
    return f"{name} [{unit}]" if name else unit


def _headline_table(ev: DistrictResults, public_min: int) -> str:
    rows = []
    for indicator, table in ev.comparisons.items():
        pub = public_comparison(table, public_min).set_index("unit")
        for unit in ("treated", "control", "did"):
            r = pub.loc[unit]
            signed_only = unit == "did"
            rows.append(
                "<tr>"
                f"<td>{html.escape(INDICATOR_LABELS_JA[indicator])}</td>"
                f"<td>{_unit_label(unit, ev.roads)}</td>"
                f"<td>{'' if signed_only else _fmt(r['before'], indicator)}</td>"
                f"<td>{'' if signed_only else _fmt(r['after'], indicator)}</td>"
                f"<td><b>{_fmt(r['change'], indicator, signed=True)}</b></td>"
                f"<td>{_ci(r, indicator)}</td>"
                f"<td>{_n(r['n_vehicles_before'])} / {_n(r['n_vehicles_after'])}</td>"
                f"<td>{_flag_ja(r['flag'], ev.min_vehicles)}</td>"
                "</tr>"
            )
    return _table(["指標", "対象", "対策前", "対策後", "変化", "95%信頼区間", "車両数 (前/後)", "注記"], rows)


def _roads_table(ev: DistrictResults, public_min: int) -> str:
    t = ev.comparisons.get("mean")
    s = ev.comparisons.get("share")
    if t is None or s is None:
        return ""
    pub_t = public_comparison(t, public_min).set_index("unit")
    pub_s = public_comparison(s, public_min).set_index("unit")
    rows = []
    for unit in [u for u in pub_t.index if u not in ("treated", "control", "did")]:
        a, b = pub_t.loc[unit], pub_s.loc[unit]
        role = "対策道路" if unit in set(ev.roads.loc[ev.roads["role"] == "treated", "road_id"]) else "比較道路"
        rows.append(
            f"<tr><td>{html.escape(_unit_label(unit, ev.roads))}</td><td>{role}</td>"
            f"<td>{_fmt(a['before'], 'mean')}</td><td>{_fmt(a['after'], 'mean')}</td>"
            f"<td>{_fmt(a['change'], 'mean', True)} {_ci(a, 'mean')}</td>"
            f"<td>{_fmt(b['before'], 'share')}</td><td>{_fmt(b['after'], 'share')}</td>"
            f"<td>{_fmt(b['change'], 'share', True)} {_ci(b, 'share')}</td>"
            f"<td>{_n(a['n_vehicles_before'])} / {_n(a['n_vehicles_after'])}</td><td>{_flag_ja(a['flag'], ev.min_vehicles)}</td></tr>"
        )
    return _table(
        ["道路", "区分", "平均 前", "平均 後", "平均の変化 [95%CI]", "制限以上 前", "制限以上 後", "割合の変化 [95%CI]",
         "車両数 (前/後)", "注記"],
        rows,
    )  # fmt: skip


def _publishable(ev: DistrictResults, unit: str, public_min: int) -> bool:
    """Whether a unit's figures rest on at least `public_min` distinct vehicles in both periods."""
    t = ev.comparisons.get("mean")
    if t is None or unit not in set(t["unit"]):
        return False
    r = t.set_index("unit").loc[unit]
    return min(r["n_vehicles_before"], r["n_vehicles_after"]) >= public_min


def _n(v) -> str:
    return "—" if pd.isna(v) else f"{int(v):,}"


def _flag_ja(flag: str, min_vehicles: int) -> str:
    return {"low_sample": f"標本少（{min_vehicles}台未満）", "suppressed": "データ不足（非公表）"}.get(flag, "")


def _table(header: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def distribution_svg(dist: pd.DataFrame, unit: str, title: str, limit_kmh: float | None, width=560, height=220) -> str:
    """Inline SVG: before/after speed histograms (share of points per km/h) and cumulative curves."""
    d = dist[dist["unit"] == unit]
    if d.empty:
        return "<p>データなし</p>"
    lo = int(max(0, np.floor(d["speed_bin_kmh"].min())))
    hi = int(np.ceil(d["speed_bin_kmh"].max())) + 1
    bins = np.arange(lo, hi + 1)
    pad_l, pad_r, pad_t, pad_b = 40, 40, 24, 30
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    series = {}
    for period in ("before", "after"):
        p = d[d["period"] == period]
        counts = np.zeros(len(bins) - 1)
        if not p.empty:
            idx = np.clip(np.floor(p["speed_bin_kmh"].to_numpy()).astype(int) - lo, 0, len(counts) - 1)
            np.add.at(counts, idx, p["n_points"].to_numpy())
        total = counts.sum()
        series[period] = counts / total if total else counts
    ymax = max(s.max() for s in series.values()) or 1.0
    x = lambda v: pad_l + (v - lo) / (hi - lo) * w  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">']
    parts.append(f'<text x="{pad_l}" y="16" font-size="13">{html.escape(title)}</text>')
    bw = w / (hi - lo)
    for period, colour, off in (("before", BEFORE_COLOUR, 0.0), ("after", AFTER_COLOUR, 0.5)):
        s = series[period]
        for i, v in enumerate(s):
            if v > 0:
                bh = v / ymax * h
                parts.append(
                    f'<rect x="{x(lo + i) + off * bw:.1f}" y="{pad_t + h - bh:.1f}" width="{bw / 2:.1f}" '
                    f'height="{bh:.1f}" fill="{colour}" opacity="0.75"/>'
                )
        cum = np.cumsum(s)
        pts = " ".join(f"{x(lo + i + 1):.1f},{pad_t + h - c * h:.1f}" for i, c in enumerate(cum))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
    if limit_kmh is not None and lo <= limit_kmh <= hi:
        parts.append(
            f'<line x1="{x(limit_kmh):.1f}" x2="{x(limit_kmh):.1f}" y1="{pad_t}" y2="{pad_t + h}" stroke="#333" '
            f'stroke-dasharray="4,3"/><text x="{x(limit_kmh) + 3:.1f}" y="{pad_t + 12}" font-size="11">制限 {limit_kmh:g} km/h</text>'
        )
    for v in range(lo - lo % 10 + 10 if lo % 10 else lo, hi + 1, 10):
        parts.append(f'<text x="{x(v):.1f}" y="{height - 10}" font-size="11" text-anchor="middle">{v}</text>')
    parts.append(f'<text x="{width - pad_r}" y="{height - 10}" font-size="11" text-anchor="end">km/h</text>')
    parts.append(f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{pad_t + h}" y2="{pad_t + h}" stroke="#666"/>')
    parts.append(f'<text x="{pad_l + w + 4}" y="{pad_t + 8}" font-size="10">累積100%</text>')
    parts.append("</svg>")
    return "".join(parts)


CSS = """
body { font-family: "Noto Sans CJK JP", "Hiragino Sans", "Yu Gothic", "Meiryo", sans-serif; margin: 2em auto; max-width: 1100px; color: #222; line-height: 1.6; }
.banner { background: #c62828; color: #fff; padding: .6em 1em; font-weight: bold; font-size: 1.1em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
th, td { border: 1px solid #bbb; padding: .3em .6em; text-align: right; }
th { background: #f0f0f0; } td:first-child, td:nth-child(2) { text-align: left; }
.note { background: #f7f7f2; border-left: 4px solid #999; padding: .6em 1em; }
.legend span { display: inline-block; width: 1em; height: .8em; margin: 0 .3em 0 1em; }
h2 { border-bottom: 2px solid #2166ac; padding-bottom: .2em; }
"""


def render_report(
    district: District, ev: DistrictResults, out: str | Path, *, public_min_vehicles: int = PUBLIC_MIN_VEHICLES,
    synthetic: bool | None = None,
) -> Path:
    """Write the district report (UTF-8 HTML, no external resources) and return its path."""
    synthetic = district.synthetic_network if synthetic is None else synthetic
    pb, pa_ = ev.periods["before"], ev.periods["after"]
    treated_limit = ev.roads.loc[ev.roads["role"] == "treated", "limit_kmh"]
    limit = float(treated_limit.iloc[0]) if len(treated_limit) else None
    blocks = []
    if synthetic:
        blocks.append('<div class="banner">合成データ（デモ用）— 実際の観測値ではありません</div>')
    blocks.append(f"<h1>{html.escape(district.name_ja)}（{html.escape(district.ward_ja)}）交通安全対策の効果検証</h1>")
    blocks.append(
        f"<p>対策前：{pb.start:%Y年%-m月%-d日}〜{pb.end:%Y年%-m月%-d日}　対策後：{pa_.start:%Y年%-m月%-d日}〜{pa_.end:%Y年%-m月%-d日}"
        f"　対象：{html.escape(ev.filter)}</p>"
    )
    blocks.append("<h2>結果の要約</h2>")
    blocks.append(_headline_table(ev, public_min_vehicles))
    did = ev.comparisons.get("mean")
    if did is not None:
        d = public_comparison(did, public_min_vehicles).set_index("unit").loc["did"]
        if not pd.isna(d["ci_low"]):
            verdict = "対策道路の速度は、比較道路の変化を差し引いても下がりました" if d["ci_high"] < 0 else (
                "比較道路の変化を差し引くと、対策道路の速度低下ははっきりしません" )  # fmt: skip
            blocks.append(
                f"<p><b>{verdict}</b>（平均速度の差の差 {d['change']:+.1f} km/h、95%信頼区間 "
                f"{d['ci_low']:+.1f}〜{d['ci_high']:+.1f} km/h）。</p>"
            )
    blocks.append("<h2>速度の分布（対策前・対策後）</h2>")
    blocks.append(
        f'<p class="legend"><span style="background:{BEFORE_COLOUR}"></span>対策前'
        f'<span style="background:{AFTER_COLOUR}"></span>対策後　棒：各速度の割合、線：累積割合（右端が100%）</p>'
    )
    for unit, title in (("treated", "対策道路（全体）"), ("control", "比較道路（全体）")):
        if _publishable(ev, unit, public_min_vehicles):
            blocks.append(distribution_svg(ev.distributions, unit, title, limit))
        else:
            blocks.append(f"<p>{title}：データ不足（観測車両 {public_min_vehicles} 台未満のため非表示）</p>")
    blocks.append("<h2>道路別の結果</h2>")
    blocks.append(_roads_table(ev, public_min_vehicles))
    blocks.append("<h2>急減速（急ブレーキ）</h2>")
    blocks.append(_braking_block(ev))
    blocks.append("<h2>抜け道利用</h2>")
    blocks.append(_cut_through_block(ev))
    blocks.append("<h2>方法</h2>")
    blocks.append(
        f'<div class="note"><p>データ：ETC2.0 プローブデータ（約200 m ごとに記録される位置と瞬間速度）。各地点を最も近い道路（{ev.radius_m:g} m 以内）に'
        "対応付け、道路ごとに集計しました。運行IDは取り込み時に鍵付きハッシュで匿名化しています。</p>"
        "<p>信頼区間：同じ車両の記録は互いに独立ではないため、車両単位で再標本化するブートストラップ法"
        f"（{ev.resamples:,}回、乱数シード {ev.seed}）で95%信頼区間を求めました。</p>"
        "<p>比較道路を使う理由：対策の対象は「速度が高かったから」選ばれた道路です。何もしなくても次の期間には平均に近づく"
        "（平均への回帰）ことがあり、季節や交通量の変化も全体に影響します。そこで、対策をしていない比較道路の変化を差し引いた"
        "「差の差」を対策の効果の目安としています。</p>"
        f"<p>標本：観測車両が{ev.min_vehicles}台未満の数値には「標本少」と注記しました。{public_min_vehicles}台未満の数値は"
        "公表せず「データ不足」と表示しています。</p>"
        + _braking_method(ev)
        + "<p>抜け道：地区内の生活道路（制限30 km/h以下）を通り、出発地と到着地がともに地区外のトリップです。</p></div>"
    )
    body = "\n".join(blocks)
    title = f"{district.name_ja} 交通安全対策の効果検証"
    page = (
        f'<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head><body>{body}</body></html>'
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def _braking_method(ev: DistrictResults) -> str:
    if ev.braking_source == "behavior_events":
        return "<p>急減速：ETC2.0 の挙動履歴（前後加速度がしきい値を超えたときに記録される急減速イベント）を道路に対応付けて数えました。</p>"
    return (
        f"<p>急減速：挙動履歴がないため、連続する2地点の速度差から平均減速度を求め、{ev.threshold_g:g} G 以上を急減速としました。"
        "地点の間隔が長いため、短く強いブレーキは捉えきれず、件数は少なめに出ます（下限の目安）。</p>"
    )


def _braking_block(ev: DistrictResults) -> str:
    b = ev.braking
    focus = ev.roads.loc[ev.roads["role"].isin(["treated", "comparison"]), "road_id"].tolist()
    rows = []
    for road in focus:
        r = {p: b[(b["road_id"] == road) & (b["period"] == p)] for p in ("before", "after")}
        cells = []
        for p in ("before", "after"):
            x = r[p]
            if x.empty or x["n_passages"].item() == 0:
                cells.append("<td>—</td><td>—</td>")
            else:
                cells.append(f"<td>{int(x['n_events'].item())}</td><td>{x['events_per_1000_passages'].item():.1f}</td>")
        rows.append(f"<tr><td>{html.escape(_unit_label(road, ev.roads))}</td>{''.join(cells)}</tr>")
    table = _table(["道路", "件数 前", "1,000通過あたり 前", "件数 後", "1,000通過あたり 後"], rows)
    hs = ev.hotspots
    note = f"<p>急減速が集中する地点（25 m 四方に2件以上）：対策前 {int((hs['period'] == 'before').sum())} か所、対策後 {int((hs['period'] == 'after').sum())} か所。</p>"
    return table + note


def _cut_through_block(ev: DistrictResults) -> str:
    c = ev.cut_through
    if c.empty:
        return "<p>地区の区域が定義されていないため、算出していません。</p>"
    rows = [
        f"<tr><td>{'対策前' if r.period == 'before' else '対策後'}</td><td>{r.n_trips:,}</td><td>{r.n_cut_through:,}</td>"
        f"<td>{100 * r.share_cut_through:.1f}%</td></tr>"
        for r in c.itertuples()
    ]
    table = _table(["期間", "地区内の生活道路を通ったトリップ", "うち抜け道（出発・到着とも地区外）", "抜け道の割合"], rows)
    s = ev.cut_through_streets
    residential = set(ev.roads.loc[ev.roads["limit_kmh"] <= RESIDENTIAL_MAX_LIMIT_KMH, "road_id"])
    top = s[(s["period"] == "after") & s["road_id"].isin(residential)].head(5)
    streets = "、".join(f"{html.escape(_unit_label(r.road_id, ev.roads))}（{r.n_cut_through:,}）" for r in top.itertuples())
    return table + (f"<p>対策後に抜け道トリップが多く通った生活道路：{streets}</p>" if streets else "")
