"""Wording and number formatting shared by every public output: map, report, sheet and export.

One place for titles, the 合成データ banner, units, period lines, indicator labels, suppression
text, credits and the rounding of every figure. A stored value is rounded once, here, so the map,
the report and the sheet print the same digits for it; a difference is computed from unrounded
stored values (or taken from comparison_results' `change`) and then rounded here.

Every text exists in Japanese ("ja", the default) and English ("en").
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import pandas as pd

from config.districts import District, Period
from config.settings import PUBLIC_LANGUAGES

LANGS = PUBLIC_LANGUAGES
MINUS = "\u2212"  # typographic minus for signed figures
DECIMALS = 1  # every published speed (km/h), share (%) and their changes: one decimal


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r} (choose one of {', '.join(LANGS)})")
    return lang


# ---------------------------------------------------------------------------------------------
# indicators


@dataclass(frozen=True)
class Indicator:
    """One indicator under its two names: comparison_results' `indicator` and the stats column."""

    key: str  # comparison_results indicator: mean | p85 | share | share_plus10 | passage_*
    column: str  # road_period_stats / group_period_stats column
    kind: str  # 'speed' (km/h) or 'share' (fraction 0..1)
    of: str  # 'points' or 'passages'


INDICATORS: dict[str, Indicator] = {
    i.key: i
    for i in (
        Indicator("passage_share", "passage_share_at_or_over_limit", "share", "passages"),
        Indicator("share", "share_at_or_over_limit", "share", "points"),
        Indicator("share_plus10", "share_at_or_over_limit_plus_10", "share", "points"),
        Indicator("p85", "p85_kmh", "speed", "points"),
        Indicator("mean", "mean_kmh", "speed", "points"),
        Indicator("passage_p85", "passage_p85_kmh", "speed", "passages"),
        Indicator("passage_mean", "passage_mean_kmh", "speed", "passages"),
    )
}
BY_COLUMN: dict[str, Indicator] = {i.column: i for i in INDICATORS.values()}
# Indicators offered by the map's chooser, in this order (the first one present is the default).
MAP_INDICATORS = ("passage_share", "share", "p85", "mean")

_LABELS = {
    "mean": ("平均速度", "mean speed"),
    "p85": ("85パーセンタイル速度", "85th-percentile speed"),
    "share": ("{limit}以上で走った地点の割合", "share of records at or over {limit}"),
    "share_plus10": ("{limit10}以上で走った地点の割合", "share of records at or over {limit10}"),
    "passage_mean": ("通過ごとの平均速度", "mean speed of passages"),
    "passage_p85": ("通過ごとの85パーセンタイル速度", "85th-percentile speed of passages"),
    "passage_share": ("{limit}以上で通過した車の割合", "share of vehicles at or over {limit}"),
}


def indicator(name: str) -> Indicator:
    """The Indicator of a comparison indicator name or a stats column; ValueError when unknown."""
    found = INDICATORS.get(name) or BY_COLUMN.get(name)
    if found is None:
        raise ValueError(f"unknown indicator {name!r} (known: {', '.join(INDICATORS)})")
    return found


def indicator_label(name: str, lang: str = "ja", limits: set[int] | None = None, capital: bool = False) -> str:
    """Name of an indicator. Shares name the limit ('30 km/h 以上で通過した車の割合') when every road
    shown has the same one, else 'the speed limit' ('制限速度以上…')."""
    ind = indicator(name)
    ja, en = _LABELS[ind.key]
    one = next(iter(limits)) if limits and len(limits) == 1 else None
    if lang == "en":
        text = en.format(
            limit=f"{one} km/h" if one else "the speed limit",
            limit10=f"{one + 10} km/h" if one else "the limit + 10 km/h",
        )
        return text[:1].upper() + text[1:] if capital else text
    check_lang(lang)
    return ja.format(
        limit=f"{one} km/h " if one else "制限速度", limit10=f"{one + 10} km/h " if one else "制限速度+10 km/h "
    )


def unit(name: str, lang: str = "ja", change: bool = False) -> str:
    """Unit of an indicator's values ('%' / 'km/h') or of its changes ('ポイント' / 'points' / 'km/h')."""
    ind = indicator(name)
    if ind.kind == "speed":
        return "km/h"
    if change:
        return "points" if lang == "en" else "ポイント"
    return "%"


# ---------------------------------------------------------------------------------------------
# numbers


def is_missing(value) -> bool:
    """None or NaN (a suppressed or absent figure)."""
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def is_true(value) -> bool:
    """A stored flag that is set: True / 1, not None, NaN or NA (a missing flag is not set)."""
    return value is not None and bool(pd.notna(value)) and bool(value)


def display(name: str, raw: float) -> float:
    """Stored value → the rounded number printed (share fraction → percent; km/h as is), one decimal."""
    factor = 100.0 if indicator(name).kind == "share" else 1.0
    return round(float(raw) * factor, DECIMALS) + 0.0  # + 0.0 normalises −0.0


def number(value: float) -> str:
    """A display value with the fixed decimals, typographic minus ('−7.8')."""
    text = f"{value:.{DECIMALS}f}"
    return MINUS + text[1:] if text.startswith("-") else text


def signed(value: float) -> str:
    """A display change with its sign: '−7.8', '+0.2', '±0.0'."""
    text = f"{abs(value):.{DECIMALS}f}"
    if float(text) == 0:
        return "±" + text
    return (MINUS if value < 0 else "+") + text


def fmt_value(name: str, raw: float, lang: str = "ja") -> str:
    """A stored value with its unit: '32.6 km/h', '19.4%'."""
    ind = indicator(name)
    v = number(display(name, raw))
    return f"{v} km/h" if ind.kind == "speed" else f"{v}%"


def fmt_change(name: str, raw_change: float, lang: str = "ja") -> str:
    """A change (after − before of stored values, unrounded) with sign and unit: '−7.8 km/h', '+3.0 ポイント'."""
    return f"{signed(display(name, raw_change))} {unit(name, lang, change=True)}"


def fmt_interval(name: str, low: float, high: float, lang: str = "ja") -> str:
    """A 95 % interval of a change, signed, without unit: '−8.3〜−7.2' / '−8.3 to −7.2'."""
    a, b = signed(display(name, low)), signed(display(name, high))
    return f"{a} to {b}" if lang == "en" else f"{a}〜{b}"


def fmt_count(n) -> str:
    return f"{int(n):,}"


def vehicles(n, lang: str = "ja") -> str:
    return f"{fmt_count(n)} vehicles" if lang == "en" else f"{fmt_count(n)} 台"


# ---------------------------------------------------------------------------------------------
# dates and periods

_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def fmt_date(day: dt.date, lang: str = "ja") -> str:
    """'2017年9月1日' / '1 Sep 2017'."""
    if lang == "en":
        return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
    return f"{day.year}年{day.month}月{day.day}日"


def fmt_month(month, lang: str = "ja") -> str:
    """A calendar month: '2019年4月' / 'Apr 2019' (a date or timestamp of any day of it)."""
    if lang == "en":
        return f"{_MONTHS_EN[month.month - 1]} {month.year}"
    return f"{month.year}年{month.month}月"


def fmt_period(period: Period, lang: str = "ja") -> str:
    """Inclusive date range: '2017年9月1日〜2017年9月30日' / '1 Sep 2017 – 30 Sep 2017'."""
    sep = " – " if lang == "en" else "〜"
    return f"{fmt_date(period.start, lang)}{sep}{fmt_date(period.end, lang)}"


LAYER_NAMES = {
    "before": ("対策前", "Before"),
    "after": ("対策後", "After"),
    "change": ("変化（対策後 − 対策前）", "Change (after − before)"),
}
LAYER_SHORT = {"before": ("対策前", "Before"), "after": ("対策後", "After"), "change": ("変化", "Change")}
ROLE_LABELS = {"treated": ("対策道路", "Treated street"), "comparison": ("比較道路", "Comparison street")}


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


def layer_name(key: str, lang: str = "ja", short: bool = False) -> str:
    return _pick((LAYER_SHORT if short else LAYER_NAMES)[key], lang)


def role_label(role: str, lang: str = "ja") -> str | None:
    pair = ROLE_LABELS.get(role)
    return _pick(pair, lang) if pair else None


def period_line(key: str, period: Period, lang: str = "ja") -> str:
    """'対策前（整備前）：2023年4月1日〜2023年6月30日' / 'Before: 1 Apr 2023 – 30 Jun 2023' (plain text)."""
    name = layer_name(key, lang, short=True)
    if lang == "en":
        label = period.label_en
        head = f"{name} ({label})" if label and label.lower() != name.lower() else name
        return f"{head}: {fmt_period(period, lang)}"
    label, head = period.label_ja, name
    if label and label not in (name, period.name):
        # a label that already says 対策前/対策後 replaces the layer name instead of repeating it
        head = label if name in label else f"{name}（{label}）"
    return f"{head}：{fmt_period(period, lang)}"


# ---------------------------------------------------------------------------------------------
# titles, banner, credits, suppression


def place(district: District, lang: str = "ja") -> str:
    """'大倉山三丁目（港北区）' / 'Okurayama 3-chome, Kohoku Ward'."""
    ward = district.ward(lang)
    if lang == "en":
        return f"{district.name(lang)}, {ward}" if ward else district.name(lang)
    return f"{district.name_ja}（{ward}）" if ward else district.name_ja


def map_title(district: District, lang: str = "ja") -> str:
    if lang == "en":
        return f"{place(district, lang)}: speeds on residential streets"
    return f"{place(district, lang)} 生活道路の速度".replace("） ", "）")


def report_title(district: District, lang: str = "ja") -> str:
    if lang == "en":
        return f"{place(district, lang)}: did the traffic calming work?"
    return f"{place(district, lang)} 交通安全対策の効果検証".replace("） ", "）")


BANNER = ("合成データ（デモ用）— 実際の観測値ではありません", "Synthetic data (demo) — not real observations")
SYNTHETIC_NOTE = (
    "この資料は合成データ（デモ用）です。実際の観測値ではありません。",
    "This document shows synthetic data (demo), not real observations.",
)
SYNTHETIC_NETWORK_NOTE = ("道路網は架空のものです（デモ用）。", "The road network is fictitious (demo).")


def banner(lang: str = "ja") -> str:
    return _pick(BANNER, lang)


def credits(district: District, created: dt.date, lang: str = "ja") -> str:
    """'作成：… ／ 作成日：2024年5月1日 ／ 出典：ETC2.0プローブ情報' (one line, plain text)."""
    pub = district.publication
    if lang == "en":
        return f"Published by {pub.publisher(lang)} · {fmt_date(created, lang)} · {pub.source(lang)}"
    return f"作成：{pub.publisher(lang)} ／ 作成日：{fmt_date(created, lang)} ／ {pub.source(lang)}"


def creation_date(district: District, created: dt.date | None = None) -> dt.date:
    """The date printed on an output: given, else fixed by the district file, else today (JST)."""
    if created is not None:
        return created
    if district.publication.date is not None:
        return district.publication.date
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).date()


def too_few(k: int, lang: str = "ja", short: bool = False) -> str:
    """What a suppressed figure says instead of a number."""
    if short:
        return "too few data" if lang == "en" else "データ不足"
    if lang == "en":
        return f"Too few vehicles (fewer than {k}): figures not shown"
    return f"データ不足（観測車両 {k} 台未満のため数値は非表示）"


def no_data(lang: str = "ja") -> str:
    return "no data" if lang == "en" else "データなし"


# ---------------------------------------------------------------------------------------------
# legend classes


def class_below(x: float, u: str, lang: str = "ja") -> str:
    return f"under {_g(x)}{_sp(u)}{u}" if lang == "en" else f"{_g(x)}{_sp(u)}{u}{_sp_ja(u)}未満"


def class_at_most(x: float, u: str, lang: str = "ja") -> str:
    return f"{_g(x)}{_sp(u)}{u} or less" if lang == "en" else f"{_g(x)}{_sp(u)}{u}{_sp_ja(u)}以下"


def class_at_least(x: float, u: str, lang: str = "ja") -> str:
    return f"{_g(x)}{_sp(u)}{u} or more" if lang == "en" else f"{_g(x)}{_sp(u)}{u}{_sp_ja(u)}以上"


def class_range(a: float, b: float, u: str, lang: str = "ja") -> str:
    return f"{_g(a)}–{_g(b)}{_sp(u)}{u}" if lang == "en" else f"{_g(a)}〜{_g(b)}{_sp(u)}{u}"


def class_no_change(x: float, u: str, lang: str = "ja") -> str:
    if lang == "en":
        return f"Hardly any change (under ±{_g(x)} {u})"
    return f"ほぼ変化なし（±{_g(x)} {u}{_sp_ja(u)}未満）"


def _g(x: float) -> str:
    return f"{x:g}"


def _sp(u: str) -> str:
    """A space between number and unit except for '%'."""
    return "" if u == "%" else " "


def _sp_ja(u: str) -> str:
    """Japanese 以上/未満 follow Latin units after a space ('6 km/h 以上', '20 ポイント以上', '50%以上')."""
    return " " if u[-1:].isascii() and u[-1:].isalpha() else ""


# ---------------------------------------------------------------------------------------------
# other labels, by key


TEXT: dict[str, tuple[str, str]] = {
    "comparison_of": ("{label}：対策前と対策後の比較", "{label}: before and after"),
    "showing": ("表示中：{name}", "Showing: {name}"),
    "choose_layer": ("表示する地図", "Map"),
    "choose_indicator": ("指標", "Indicator"),
    "overlays": ("重ねて表示", "Overlays"),
    "base_map": ("背景地図", "Base map"),
    "gsi_pale": ("地理院タイル（淡色）", "GSI tiles (pale)"),
    "language": ("言語", "Language"),
    "panel_handle": ("凡例・表示の切り替え", "Legend and map options"),
    "braking_layer": ("急ブレーキ多発地点", "Sudden-braking hot spots"),
    "cut_layer": ("抜け道ルート", "Cut-through routes"),
    "devices_layer": ("対策の設置位置", "Traffic-calming devices"),
    "hump": ("ハンプ", "Speed hump"),
    "narrowing": ("狭さく", "Narrowing"),
    "illustrative": ("位置は例示", "position illustrative"),
    "installed": ("設置：{date}", "Installed: {date}"),
    "vehicles_seen": ("観測車両 {n} 台", "{n} vehicles observed"),
    "vehicles_both": ("観測車両 対策前 {b} 台／対策後 {a} 台", "Vehicles observed: {b} before / {a} after"),
    "no_data_period": ("この期間のデータなし", "No data in this period"),
    "no_comparison": ("比較できるデータなし", "No data to compare"),
    "too_few_either": (
        "データ不足（どちらかの期間で観測車両 {k} 台未満のため数値は非表示）",
        "Too few vehicles (fewer than {k} in a period): figures not shown",
    ),
    "no_name": ("（名称なし）", "(unnamed)"),
    "change_hint": (
        "対策後 − 対策前。青＝{down}（改善）、赤＝{up}",
        "After − before. Blue = {down} (better), red = {up}",
    ),
    "legend_values": ("{layer}：{label} ({unit})", "{layer}: {label} ({unit})"),
    "legend_change": ("変化：{label}の増減 ({unit})", "Change: {label} ({unit})"),
    "legend_too_few": (
        "データ不足（観測車両 {k} 台未満、数値は非表示）",
        "Too few vehicles (fewer than {k}): no figure",
    ),
    "legend_no_data": ("データなし", "No data"),
    "legend_area": ("対象地区", "District"),
    "legend_ward": ("区の境界（{ward}）", "Ward boundary ({ward})"),
    "legend_ward_plain": ("区の境界", "Ward boundary"),
    "legend_cut": ("抜け道ルート（通り抜ける車両、太いほど多い）", "Cut-through routes (wider: more vehicles)"),
    "legend_braking": ("急ブレーキ多発地点（円が大きいほど多い）", "Sudden-braking hot spots (larger: more)"),
    "legend_hump": ("ハンプ", "Speed hump"),
    "legend_narrowing": ("狭さく", "Narrowing"),
    "decrease_speed": ("低下", "decrease"),
    "increase_speed": ("上昇", "increase"),
    "decrease_share": ("減少", "decrease"),
    "increase_share": ("増加", "increase"),
    "class_change": ("{span}の{word}", "{word} of {span}"),
    "data_line": ("データ：ETC2.0 プローブデータ", "Data: ETC2.0 probe data"),
    "method_line": (
        "方法：速度は各地点の瞬間速度と、道路を1回通過するごとの速度です。道路ごとに集計しました。"
        "観測車両が {k} 台未満の道路は数値を表示しません（灰色の破線）。",
        "Method: speeds are the instantaneous speeds of the records and the speeds of each passage "
        "along a street, per street. Streets with fewer than {k} vehicles show no figure (grey, dashed).",
    ),
    "limits": ("制限速度：{text}", "Speed limits: {text}"),
    "residential": ("生活道路", "residential streets"),
    "arterial": ("幹線道路", "main roads"),
    "braking_tip": ("急ブレーキ <b>{n} 回</b>", "<b>{n}</b> sudden brakings"),
    "period": ("期間：{text}", "Period: {text}"),
    "cut_share_tip": ("通り抜ける車両の割合 <b>{v}</b>", "Share of vehicles passing through <b>{v}</b>"),
    "cut_count_tip": ("通り抜ける車両 <b>{n} 台</b>", "<b>{n}</b> vehicles passing through"),
    "headline_label": ("結果", "Result"),
    "print": ("印刷", "Print"),
    "sheet_street": ("道路", "Streets"),
    "sheet_period": ("期間", "Period"),
    "sheet_vehicles": ("観測車両（台）", "Vehicles"),
    "sheet_treated": ("対策道路（まとめ）", "Treated street(s)"),
    "sheet_comparison": ("比較道路（まとめ）", "Comparison streets"),
    "sheet_key_figures": ("主な数値", "Key figures"),
    "sheet_no_figures": ("対策道路・比較道路の数値なし", "No figures for the treated and comparison streets"),
    "sheet_change_note": (
        "変化 ＝ 対策後 − 対策前（丸める前の数値の差）。速度は km/h、割合は %、その変化はポイント。"
        "車の割合：道路を1回通過するごとの平均速度が制限速度以上だった通過の割合。",
        "Change = after − before (of the unrounded figures). Speeds in km/h, shares in %, their "
        "changes in percentage points. Share of vehicles: passages along a street whose mean speed "
        "was at or over the limit.",
    ),
    "under_k": ("{k} 未満", "under {k}"),
    # headline: placebo streets (analysis.placebo) and the caveats of the verdict
    "placebo_rank": (
        "対策していない生活道路 {n} 本に同じ比較（差の差）をすると、対策道路の低下は {total} 本中 "
        "{rank} 番目の大きさです（p = {p}）。",
        "Run the same comparison (difference in differences) on {n} untreated residential streets and the "
        "treated street's fall ranks {rank} of {total} (placebo p = {p}).",
    ),
    "placebo_few": (
        "比べられる道路が {m} 本未満のため、この順位は判定には使っていません。",
        " With fewer than {m} such streets, the rank is not used in the verdict.",
    ),
    "placebo_none": (
        "観測車両の十分な、対策していない生活道路がないため、他の道路との比較（プラシーボ）はできません。",
        "No untreated residential street had enough vehicles for a placebo comparison.",
    ),
    "caveat_placebo": (
        "ただし、対策していない生活道路にも同じくらい変化した道路があり（{total} 本中 {rank} 番目、p = {p}）、"
        "対策の効果とは言い切れません。",
        "But untreated residential streets changed as much (rank {rank} of {total}, placebo p = {p}), so the "
        "change cannot be called an effect of the measures.",
    ),
    "caveat_degenerate": (
        "ただし、信頼区間が標本の変動を表していない（再標本化の値がほとんど変わらない）ため、判断できません。",
        "But the interval does not describe sampling (the resamples hardly vary), so no effect is claimed.",
    ),
    # headline: is the effect lasting? (analysis.equivalence: the month's difference in differences vs the after period)
    "monitor_suppressed": (
        "最新の月（{month}）は観測車両が {k} 台未満のため、対策後の水準と比べられません。",
        "The latest month ({month}) had fewer than {k} vehicles: it cannot be compared with the after level.",
    ),
    "monitor_no_after": (
        "{month}の対策道路の{label}は {value}（対策後の水準はデータ不足のため比べられません）。",
        "In {month} the {label} on the treated street was {value}; the after level is not published (too few data).",
    ),
    "monitor_unknown": (
        "{month}の対策道路の{label}は {value}（対策後の水準 {after} と比べる信頼区間はありません）。",
        "In {month} the {label} on the treated street was {value}; no interval against the after level ({after}) "
        "is stored.",
    ),
    "monitor_holding": (
        "{month}の対策道路の{label}は {value} で、対策後の水準 {after} を保っています（比較道路の変化を差し引いた差 "
        "{did}、95%信頼区間 {ci}：±{margin} 以内）。",
        "In {month} the {label} on the treated street was {value}, still at the after level of {after} (net of the "
        "comparison streets {did}, 95% confidence interval {ci}: within ±{margin}).",
    ),
    "monitor_rising": (
        "{month}の対策道路の{label}は {value} で、2か月続けて対策後の水準 {after} より高くなっています（比較道路の"
        "変化を差し引いた差 {did}、95%信頼区間 {ci}：+{margin} を超える）。効果が薄れている可能性があります。",
        "In {month} the {label} on the treated street was {value}, above the after level of {after} for a second "
        "month running (net of the comparison streets {did}, 95% confidence interval {ci}: beyond +{margin}). "
        "The effect may be wearing off.",
    ),
    "monitor_falling": (
        "{month}の対策道路の{label}は {value} で、2か月続けて対策後の水準 {after} より低くなっています（比較道路の"
        "変化を差し引いた差 {did}、95%信頼区間 {ci}：−{margin} を超える）。",
        "In {month} the {label} on the treated street was {value}, below the after level of {after} for a second "
        "month running (net of the comparison streets {did}, 95% confidence interval {ci}: beyond −{margin}).",
    ),
    "monitor_inconclusive": (
        "{month}の対策道路の{label}は {value}（対策後の水準 {after}）。比較道路の変化を差し引いた差は {did}"
        "（95%信頼区間 {ci}）で、対策後の水準を保っているとも変わったとも、まだ言えません（判定の幅 ±{margin}）。",
        "In {month} the {label} on the treated street was {value} (after level {after}); net of the comparison "
        "streets the difference is {did} (95% confidence interval {ci}): it cannot yet be said whether it holds "
        "the after level or has moved (margin ±{margin}).",
    ),
    "monitor_few": (
        "ただし、この月の観測車両は {n} 台と少なめです。",
        " Few vehicles were observed that month ({n}).",
    ),
    # report: degenerate intervals, placebo streets, the months before the before period
    "degenerate_note": (
        "区間は標本の変動を表していません（再標本化の値が3通り未満か、推定値が区間の端）",
        "interval degenerate (resamples take fewer than 3 values, or the estimate is an end of it)",
    ),
    "placebo_title": ("他の生活道路との比較（プラシーボ）", "Untreated residential streets (placebo streets)"),
    "placebo_wider": (
        "対策していない生活道路の差の差のばらつき（95%の範囲 {spread}）は、対策道路の差の差の信頼区間（{ci}）より"
        "広く、道路ごとの変動は車両の標本の誤差より大きいことを示しています。",
        "The untreated streets' differences in differences spread wider (central 95% {spread}) than the treated "
        "street's bootstrap interval ({ci}): streets vary from period to period more than vehicle sampling says.",
    ),
    "placebo_narrower": (
        "対策していない生活道路の差の差のばらつき（95%の範囲 {spread}）は、対策道路の差の差の信頼区間（{ci}）に"
        "収まる幅です。",
        "The untreated streets' differences in differences spread no wider (central 95% {spread}) than the treated "
        "street's bootstrap interval ({ci}).",
    ),
    "placebo_spill": (
        "対策していないのに対策道路と同じくらい、またはそれ以上に変化した道路：{names}。対策の影響（交通の転換など）の"
        "可能性があります。",
        "Untreated streets that changed as much as the treated one or more: {names}. This may be spill-over of the "
        "measures (diverted traffic).",
    ),
    "pretrend_title": ("対策前期間より前の推移", "Before the before period"),
    "pretrend_none": (
        "対策前期間より前の月のデータがないため、推移は示せません（選定と前後比較が同じデータによる場合、平均への"
        "回帰を確かめられません）。",
        "No month before the before period was delivered: no earlier trend can be shown (if the street was chosen "
        "on the before period itself, regression to the mean cannot be checked).",
    ),
    "pretrend_intro": (
        "{before} と比べた各月の値。差の差がゼロに近ければ、対策前の対策道路と比較道路は同じように推移していました。",
        "Each month against {before}. A difference in differences near zero means treated and comparison streets "
        "moved alike before the measures.",
    ),
    "pretrend_month": ("月", "Month"),
    "pretrend_treated": ("対策道路", "Treated"),
    "pretrend_control": ("比較道路", "Comparison"),
    "pretrend_did": ("差の差（対策前期間との比較）[95%信頼区間]", "Difference in differences vs before [95% interval]"),
    # screening: which months the ranking used (screening_runs.basis)
    "screening_basis_pre_period": (
        "（対策前期間より前の月で選びました。前後比較の基準とは別のデータです。）",
        " (ranked on the months before the before period, not on the comparison's baseline)",
    ),
    "screening_basis_before_period": (
        "（対策前期間より前の月のデータがないため、対策前期間そのもので選びました。前後比較の基準と同じデータのため、"
        "平均への回帰で効果が大きく見えることがあります。）",
        " (no month before the before period was delivered: ranked on the before period itself, the comparison's "
        "baseline, so regression to the mean may exaggerate an effect)",
    ),
}


def text_of(table: dict[str, tuple[str, str]], key: str, lang: str = "ja", **kw) -> str:
    """The text `key` of a (Japanese, English) table in `lang`, formatted with `kw`. Each output's own
    table (report, trend chart, gates, screening map) is read through this, as TEXT is by `t`."""
    return _pick(table[key], lang).format(**kw)


def t(key: str, lang: str = "ja", **kw) -> str:
    """The text `key` in `lang`, formatted with `kw`."""
    return text_of(TEXT, key, lang, **kw)


def both(key: str, **kw) -> dict[str, str]:
    """{'ja': …, 'en': …} of a text (for the map, which switches language in the page)."""
    return {lang: t(key, lang, **kw) for lang in LANGS}
