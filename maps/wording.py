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
from config.settings import INDICATOR_COLUMNS, PASSAGE_INDICATORS, PUBLIC_LANGUAGES, SHARE_INDICATORS
from config.settings import INDICATORS as SETTINGS_INDICATORS
from config.settings import MAP_INDICATORS as SETTINGS_MAP_INDICATORS

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


# The indicators and their columns as config.settings lists them (one list, read here).
INDICATORS: dict[str, Indicator] = {
    key: Indicator(
        key,
        INDICATOR_COLUMNS[key],
        "share" if key in SHARE_INDICATORS else "speed",
        "passages" if key in PASSAGE_INDICATORS else "points",
    )
    for key in SETTINGS_INDICATORS
}
BY_COLUMN: dict[str, Indicator] = {i.column: i for i in INDICATORS.values()}
MAP_INDICATORS = SETTINGS_MAP_INDICATORS  # offered by the map's chooser, in this order


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
    check_lang(lang)
    one = next(iter(limits)) if limits and len(limits) == 1 else None
    space = "" if lang == "en" else " "  # Japanese: '30 km/h 以上'
    limit = f"{one} km/h{space}" if one else t("limit_any", lang)
    limit10 = f"{one + 10} km/h{space}" if one else t("limit10_any", lang)
    text = t(f"indicator.{ind.key}", lang, limit=limit, limit10=limit10)
    return text[:1].upper() + text[1:] if capital and lang == "en" else text


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


ROLES = ("treated", "comparison")  # the roads with a role: labelled on the map, drawn wider


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


def road_labels(roads) -> dict[str, dict[str, str]]:
    """road_id → {'ja', 'en'}: how every output names each road of a network (a DataFrame with road_id,
    name and optionally name_en, highway, limit_kmh, role): its name (the English name in English when
    there is one; names of the district file's [roads.names] are already in them), else its class and a
    short number: 「生活道路 #3（名称なし）」 / 'Residential street #3 (unnamed)' (geo.network.unnamed_numbers)."""
    import numpy as np

    from geo.network import road_classes, unnamed_numbers

    n = len(roads)
    col = lambda c, d: roads[c].to_numpy(dtype=object) if c in roads else np.full(n, d, dtype=object)  # noqa: E731
    names = np.array(["" if is_missing(x) else str(x).strip() for x in col("name", "")], dtype=object)
    names_en = np.array(["" if is_missing(x) else str(x).strip() for x in col("name_en", "")], dtype=object)
    limits = np.array([np.nan if is_missing(x) else float(x) for x in col("limit_kmh", np.nan)])
    classes = road_classes(col("highway", ""), limits, col("role", ""))
    numbers = unnamed_numbers(names, classes)
    out = {}
    for rid, name, name_en, cls, no in zip(
        roads["road_id"].astype(str), names, names_en, classes, numbers, strict=True
    ):
        if name:
            out[rid] = {"ja": name, "en": name_en or name}
        else:
            out[rid] = {lang: t("unnamed_road", lang, cls=t(f"road_class.{cls}", lang), n=no) for lang in LANGS}
    return out


def road_class_word(road_class: str, lang: str = "ja") -> str:
    """生活道路 / 幹線道路 / 通路 / 道路 (geo.network.road_classes)."""
    return t(f"road_class.{road_class}", lang)


def layer_name(key: str, lang: str = "ja", short: bool = False) -> str:
    return t(f"layer_short.{key}" if short else f"layer.{key}", lang)


def role_label(role: str, lang: str = "ja") -> str | None:
    return t(f"role.{role}", lang) if role in ROLES else None


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
    """'大倉山三丁目（港北区）' / 'Okurayama 3-chome, Kohoku Ward'; the ward is left out when there is none
    or the name already holds it ('保土ケ谷区岩崎町')."""
    ward = district.ward(lang)
    if ward and ward in district.name(lang):
        ward = ""
    if lang == "en":
        return f"{district.name(lang)}, {ward}" if ward else district.name(lang)
    return f"{district.name_ja}（{ward}）" if ward else district.name_ja


def map_title(district: District, lang: str = "ja") -> str:
    return t("map_title", lang, place=place(district, lang)).replace("） ", "）")


def report_title(district: District, lang: str = "ja") -> str:
    return t("report_title", lang, place=place(district, lang)).replace("） ", "）")


def paren(text: str, lang: str = "ja") -> str:
    """An aside in brackets after a word: '（位置は例示）' / ' (position illustrative)'."""
    return f" ({text})" if lang == "en" else f"（{text}）"


def banner(lang: str = "ja") -> str:
    return t("banner", lang)


def credits(district: District, created: dt.date, lang: str = "ja") -> str:
    """'作成：… ／ 作成日：2024年5月1日 ／ 出典：ETC2.0プローブ情報' (one line, plain text)."""
    pub = district.publication
    return t("credits", lang, publisher=pub.publisher(lang), date=fmt_date(created, lang), source=pub.source(lang))


def creation_date(district: District, created: dt.date | None = None) -> dt.date:
    """The date printed on an output: given, else fixed by the district file, else today (JST)."""
    if created is not None:
        return created
    if district.publication.date is not None:
        return district.publication.date
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).date()


def too_few(k: int, lang: str = "ja", short: bool = False) -> str:
    """What a suppressed figure says instead of a number."""
    return t("too_few_short", lang) if short else t("too_few", lang, k=k)


def no_data(lang: str = "ja") -> str:
    return t("no_data", lang)


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
    # an unnamed way: its class and a short number (maps.wording.road_labels)
    "unnamed_road": ("{cls} #{n}（名称なし）", "{cls} #{n} (unnamed)"),
    "road_class.residential": ("生活道路", "Residential street"),
    "road_class.arterial": ("幹線道路", "Main road"),
    "road_class.service": ("通路", "Service road"),
    "road_class.other": ("道路", "Road"),
    "road_class_tip": ("（{cls}）", " ({cls})"),
    "legend_arterial": (
        "幹線道路（色分けの対象外。数値は参考としてタップで表示）",
        "Main roads (not coloured; their figures, for reference, on a tap)",
    ),
    "limit_group.residential": ("生活道路", "residential streets"),
    "limit_group.arterial": ("幹線道路", "main roads"),
    "limit_group.service": ("通路など", "service roads"),
    "limit_group.other": ("その他の道路", "other roads"),
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
        "方法：速度は各地点の瞬間速度と、道路を1回通過するごとの走行速度（距離÷所要時間）です。道路ごとに集計しました。"
        "観測車両が {k} 台未満の道路は数値を表示しません（灰色の破線）。",
        "Method: speeds are the instantaneous speeds of the records and the travel speed of each passage "
        "along a street (distance over time taken), per street. Streets with fewer than {k} vehicles show no "
        "figure (grey, dashed).",
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
    "zoom_in": ("拡大", "Zoom in"),
    "zoom_out": ("縮小", "Zoom out"),
    "fullscreen": ("全画面で表示", "View full screen"),
    "fullscreen_exit": ("全画面表示を終了", "Exit full screen"),
    "locate": ("現在地を表示", "Show where I am"),
    "locate_popup": ("現在地（この点から {distance} {unit} 以内）", "You are within {distance} {unit} of this point"),
    "sheet_street": ("道路", "Streets"),
    "sheet_period": ("期間", "Period"),
    "sheet_vehicles": ("観測車両（台）", "Vehicles"),
    "sheet_treated": ("対策道路（まとめ）", "Treated street(s)"),
    "sheet_comparison": ("比較道路（まとめ）", "Comparison streets"),
    "sheet_key_figures": ("主な数値", "Key figures"),
    "sheet_no_figures": ("対策道路・比較道路の数値なし", "No figures for the treated and comparison streets"),
    "sheet_change_note": (
        "変化 ＝ 対策後 − 対策前（丸める前の数値の差）。速度は km/h、割合は %、その変化はポイント。"
        "車の割合：道路を1回通過するごとの走行速度（距離÷所要時間）が制限速度以上だった通過の割合。",
        "Change = after − before (of the unrounded figures). Speeds in km/h, shares in %, their "
        "changes in percentage points. Share of vehicles: passages along a street whose travel speed "
        "(distance over time taken) was at or over the limit.",
    ),
    "under_k": ("{k} 未満", "under {k}"),
    # maps.headline: the sentences with the figures
    "headline.suppressed": (
        "対策道路の観測車両がどちらかの期間で {k} 台未満でした（データ不足）。",
        "The treated street had fewer than {k} vehicles in a period (too few data).",
    ),
    "headline.treated": (
        "対策道路の{label}は {b} → {a} {u}（{change}{ci}）。",
        "On the treated street the {label} went from {b} to {a} {u} ({change}{ci}).",
    ),
    "headline.treated_ci": ("、95%信頼区間 {ci}", ", 95% confidence interval {ci}"),
    "headline.control_none": (
        "比較道路はデータ不足のため比べられません。",
        "The comparison streets had too few data to compare.",
    ),
    "headline.control_hardly": (
        "比較道路はほぼ変化なし（{change}）。",
        "The comparison streets hardly changed ({change}).",
    ),
    "headline.control_unclear": (
        "比較道路ははっきりした変化なし（{change}、95%信頼区間 {ci}）。",
        "The comparison streets showed no clear change ({change}, 95% confidence interval {ci}).",
    ),
    "headline.control_changed": (
        "比較道路は {change}（95%信頼区間 {ci}）。",
        "The comparison streets changed by {change} (95% confidence interval {ci}).",
    ),
    "headline.share": ("{label}は {b} → {a}。", "The {label} went from {b} to {a}."),
    "headline.caveat_low_sample": (
        "ただし観測車両が少ない（対策前 {b} 台・対策後 {a} 台）ため、この差を対策の効果とは言えません。",
        "But few vehicles were observed ({b} before, {a} after), so the difference cannot be called an effect "
        "of the measures.",
    ),
    "headline.caveat_no_comparison": (
        "対策道路だけの変化は、季節や交通量など対策以外の理由によることもあります。",
        "A fall on the treated street alone may come from other causes (season, traffic volume).",
    ),
    "headline.caveat_margin": (
        "対策道路の変化は誤差の範囲です。",
        "The change on the treated street lies within the margin of error.",
    ),
    "headline.caveat_did": (
        "比較道路の変化を差し引くと、低下ははっきりしません（差の差 {did}、95%信頼区間 {ci}）。",
        "Net of the comparison streets' change, the fall is not clear (difference in differences {did}, "
        "95% confidence interval {ci}).",
    ),
    # headline: placebo streets (analysis.placebo) and the caveats of the verdict
    "headline.placebo_rank": (
        "対策していない生活道路 {n} 本に同じ比較（差の差）をすると、対策道路の低下は {total} 本中 "
        "{rank} 番目の大きさです（p = {p}）。",
        "Run the same comparison (difference in differences) on {n} untreated residential streets and the "
        "treated street's fall ranks {rank} of {total} (placebo p = {p}).",
    ),
    "headline.placebo_few": (
        "比べられる道路が {m} 本未満のため、この順位は判定には使っていません。",
        " With fewer than {m} such streets, the rank is not used in the verdict.",
    ),
    "headline.placebo_none": (
        "観測車両の十分な、対策していない生活道路がないため、他の道路との比較（プラシーボ）はできません。",
        "No untreated residential street had enough vehicles for a placebo comparison.",
    ),
    "headline.caveat_placebo": (
        "ただし、対策していない生活道路にも同じくらい変化した道路があり（{total} 本中 {rank} 番目、p = {p}）、"
        "対策の効果とは言い切れません。",
        "But untreated residential streets changed as much (rank {rank} of {total}, placebo p = {p}), so the "
        "change cannot be called an effect of the measures.",
    ),
    "headline.caveat_degenerate": (
        "ただし、信頼区間が標本の変動を表していない（再標本化の値がほとんど変わらない）ため、判断できません。",
        "But the interval does not describe sampling (the resamples hardly vary), so no effect is claimed.",
    ),
    # headline: is the effect lasting? (analysis.equivalence: the month's difference in differences vs the after period)
    "headline.monitor_suppressed": (
        "最新の月（{month}）は観測車両が {k} 台未満のため、対策後の水準と比べられません。",
        "The latest month ({month}) had fewer than {k} vehicles: it cannot be compared with the after level.",
    ),
    "headline.monitor_no_after": (
        "{month}の対策道路の{label}は {value}（対策後の水準はデータ不足のため比べられません）。",
        "In {month} the {label} on the treated street was {value}; the after level is not published (too few data).",
    ),
    "headline.monitor_unknown": (
        "{month}の対策道路の{label}は {value}（対策後の水準 {after} と比べる信頼区間はありません）。",
        "In {month} the {label} on the treated street was {value}; no interval against the after level ({after}) "
        "is stored.",
    ),
    "headline.monitor_holding": (
        "{month}の対策道路の{label}は {value} で、対策後の水準 {after} を保っています（比較道路の変化を差し引いた差 "
        "{did}、95%信頼区間 {ci}：±{margin} 以内）。",
        "In {month} the {label} on the treated street was {value}, still at the after level of {after} (net of the "
        "comparison streets {did}, 95% confidence interval {ci}: within ±{margin}).",
    ),
    "headline.monitor_rising": (
        "{month}の対策道路の{label}は {value} で、2か月続けて対策後の水準 {after} より高くなっています（比較道路の"
        "変化を差し引いた差 {did}、95%信頼区間 {ci}：+{margin} を超える）。効果が薄れている可能性があります。",
        "In {month} the {label} on the treated street was {value}, above the after level of {after} for a second "
        "month running (net of the comparison streets {did}, 95% confidence interval {ci}: beyond +{margin}). "
        "The effect may be wearing off.",
    ),
    "headline.monitor_falling": (
        "{month}の対策道路の{label}は {value} で、2か月続けて対策後の水準 {after} より低くなっています（比較道路の"
        "変化を差し引いた差 {did}、95%信頼区間 {ci}：−{margin} を超える）。",
        "In {month} the {label} on the treated street was {value}, below the after level of {after} for a second "
        "month running (net of the comparison streets {did}, 95% confidence interval {ci}: beyond −{margin}).",
    ),
    "headline.monitor_inconclusive": (
        "{month}の対策道路の{label}は {value}（対策後の水準 {after}）。比較道路の変化を差し引いた差は {did}"
        "（95%信頼区間 {ci}）で、対策後の水準を保っているとも変わったとも、まだ言えません（判定の幅 ±{margin}）。",
        "In {month} the {label} on the treated street was {value} (after level {after}); net of the comparison "
        "streets the difference is {did} (95% confidence interval {ci}): it cannot yet be said whether it holds "
        "the after level or has moved (margin ±{margin}).",
    ),
    "headline.monitor_few": (
        "ただし、この月の観測車両は {n} 台と少なめです。",
        " Few vehicles were observed that month ({n}).",
    ),
    # report: degenerate intervals, placebo streets, the months before the before period
    "report.degenerate_note": (
        "区間は標本の変動を表していません（再標本化の値が3通り未満：割合0または1など）",
        "interval degenerate (resamples take fewer than 3 values, e.g. a share of 0 or 1)",
    ),
    "report.placebo_title": ("他の生活道路との比較（プラシーボ）", "Untreated residential streets (placebo streets)"),
    "report.placebo_wider": (
        "対策していない生活道路の差の差のばらつき（95%の範囲 {spread}）は、対策道路の差の差の信頼区間（{ci}）より"
        "広く、道路ごとの変動は車両の標本の誤差より大きいことを示しています。",
        "The untreated streets' differences in differences spread wider (central 95% {spread}) than the treated "
        "street's bootstrap interval ({ci}): streets vary from period to period more than vehicle sampling says.",
    ),
    "report.placebo_narrower": (
        "対策していない生活道路の差の差のばらつき（95%の範囲 {spread}）は、対策道路の差の差の信頼区間（{ci}）に"
        "収まる幅です。",
        "The untreated streets' differences in differences spread no wider (central 95% {spread}) than the treated "
        "street's bootstrap interval ({ci}).",
    ),
    "report.placebo_spill": (
        "対策していないのに対策道路と同じくらい、またはそれ以上に変化した道路：{names}。対策の影響（交通の転換など）の"
        "可能性があります。",
        "Untreated streets that changed as much as the treated one or more: {names}. This may be spill-over of the "
        "measures (diverted traffic).",
    ),
    "report.pretrend_title": ("対策前期間より前の推移", "Before the before period"),
    "report.pretrend_none": (
        "対策前期間より前の月のデータがないため、推移は示せません（選定と前後比較が同じデータによる場合、平均への"
        "回帰を確かめられません）。",
        "No month before the before period was delivered: no earlier trend can be shown (if the street was chosen "
        "on the before period itself, regression to the mean cannot be checked).",
    ),
    "report.pretrend_intro": (
        "{before} と比べた各月の値。差の差がゼロに近ければ、対策前の対策道路と比較道路は同じように推移していました。",
        "Each month against {before}. A difference in differences near zero means treated and comparison streets "
        "moved alike before the measures.",
    ),
    "report.pretrend_month": ("月", "Month"),
    "report.pretrend_treated": ("対策道路", "Treated"),
    "report.pretrend_control": ("比較道路", "Comparison"),
    "report.pretrend_did": (
        "差の差（対策前期間との比較）[95%信頼区間]",
        "Difference in differences vs before [95% interval]",
    ),
    # screening: which months the ranking used (screening_runs.basis)
    "screen.basis_pre_period": (
        "（対策前期間より前の月で選びました。前後比較の基準とは別のデータです。）",
        " (ranked on the months before the before period, not on the comparison's baseline)",
    ),
    "screen.basis_before_period": (
        "（対策前期間より前の月のデータがないため、対策前期間そのもので選びました。前後比較の基準と同じデータのため、"
        "平均への回帰で効果が大きく見えることがあります。）",
        " (no month before the before period was delivered: ranked on the before period itself, the comparison's "
        "baseline, so regression to the mean may exaggerate an effect)",
    ),
    # the wording's own words: indicators, maps, roles, titles, banner, credits, suppression
    "indicator.mean": ("平均速度", "mean speed"),
    "indicator.p85": ("85パーセンタイル速度", "85th-percentile speed"),
    "indicator.share": ("{limit}以上で走った地点の割合", "share of records at or over {limit}"),
    "indicator.share_plus10": ("{limit10}以上で走った地点の割合", "share of records at or over {limit10}"),
    "indicator.passage_mean": ("通過ごとの平均速度", "mean speed of passages"),
    "indicator.passage_p85": ("通過ごとの85パーセンタイル速度", "85th-percentile speed of passages"),
    "indicator.passage_share": ("{limit}以上で通過した車の割合", "share of vehicles at or over {limit}"),
    "limit_any": ("制限速度", "the speed limit"),
    "limit10_any": ("制限速度+10 km/h ", "the limit + 10 km/h"),
    "layer.before": ("対策前", "Before"),
    "layer.after": ("対策後", "After"),
    "layer.change": ("変化（対策後 − 対策前）", "Change (after − before)"),
    "layer_short.before": ("対策前", "Before"),
    "layer_short.after": ("対策後", "After"),
    "layer_short.change": ("変化", "Change"),
    "role.treated": ("対策道路", "Treated street"),
    "role.comparison": ("比較道路", "Comparison street"),
    "map_title": ("{place} 生活道路の速度", "{place}: speeds on residential streets"),
    "report_title": ("{place} 交通安全対策の効果検証", "{place}: did the traffic calming work?"),
    "banner": ("合成データ（デモ用）— 実際の観測値ではありません", "Synthetic data (demo) — not real observations"),
    "synthetic_note": (
        "この資料は合成データ（デモ用）です。実際の観測値ではありません。",
        "This document shows synthetic data (demo), not real observations.",
    ),
    "synthetic_network_note": ("道路網は架空のものです（デモ用）。", "The road network is fictitious (demo)."),
    "credits": ("作成：{publisher} ／ 作成日：{date} ／ {source}", "Published by {publisher} · {date} · {source}"),
    "too_few": (
        "データ不足（観測車両 {k} 台未満のため数値は非表示）",
        "Too few vehicles (fewer than {k}): figures not shown",
    ),
    "too_few_short": ("データ不足", "too few data"),
    "no_data": ("データなし", "no data"),
    # etc2calm._summary: the CLI's and the demo's summary (printed in English; keys summary.*)
    "summary.stat_mean": ("平均速度", "mean speed"),
    "summary.stat_p85": ("85パーセンタイル速度", "85th percentile speed"),
    "summary.stat_share": ("制限速度以上の地点の割合", "share of points >= limit"),
    "summary.stat_share_plus10": ("制限速度+10 km/h 以上の地点の割合", "share of points >= limit + 10"),
    "summary.stat_passage_mean": ("通過ごとの平均速度", "mean passage speed"),
    "summary.stat_passage_p85": ("通過ごとの85パーセンタイル速度", "85th percentile passage speed"),
    "summary.stat_passage_share": ("制限速度以上の車（通過）の割合", "share of vehicles (passages) >= limit"),
    "summary.class_through": ("通過", "through"),
    "summary.class_into": ("流入", "into"),
    "summary.class_out_of": ("流出", "out of"),
    "summary.class_internal": ("地区内", "internal"),
    "summary.class_perimeter": ("外周のみ", "perimeter"),
    # maps.headline: the answer (keys headline.*)
    "headline.lead_effect": (
        "対策後、対策道路の速度ははっきり下がりました。",
        "After the measures, speeds on the treated street clearly fell.",
    ),
    "headline.lead_increase": (
        "対策後、対策道路の速度は下がっていません。",
        "After the measures, speeds on the treated street did not fall.",
    ),
    "headline.lead_unclear": ("対策の効果ははっきりしません。", "The effect of the measures is not clear."),
    "headline.lead_low_sample": (
        "観測車両が少ないため、効果は判断できません。",
        "Too few vehicles were observed to judge the effect.",
    ),
    "headline.lead_no_comparison": (
        "比較道路と比べられないため、効果は判断できません。",
        "Without comparison streets, the effect cannot be judged.",
    ),
    "headline.lead_suppressed": (
        "観測車両が少ないため、結果は公表していません。",
        "Too few vehicles were observed: no result is published.",
    ),
    "headline.lead_no_data": ("対策前後を比べる結果はまだありません。", "There is no before/after result yet."),
    # maps.report (keys report.*)
    "report.periods": ("{b}　{a}　対象：{f}", "{b} · {a} · Records: {f}"),
    "report.all_points": ("全日・全車種", "all days, all vehicles"),
    "report.chart_title": ("{label}（対策前・対策後）", "{label}, before and after"),
    "report.chart_caption": (
        "棒：対策前と対策後の値。ひげ：それぞれの値の95%信頼区間（車両単位のブートストラップ）。"
        "変化とその信頼区間は下の表にあります。",
        "Bars: before and after. Whiskers: 95% confidence interval of each value (bootstrap over "
        "vehicles). The change and its interval are in the table below.",
    ),
    "report.treated": ("対策道路", "Treated"),
    "report.comparison": ("比較道路", "Comparison"),
    "report.summary": ("結果の詳細", "Detailed results"),
    "report.indicator": ("指標", "Indicator"),
    "report.unit": ("対象", "Streets"),
    "report.before": ("対策前", "Before"),
    "report.after": ("対策後", "After"),
    "report.change": ("変化", "Change"),
    "report.ci": ("95%信頼区間", "95% interval"),
    "report.vehicles": ("車両数 (前/後)", "Vehicles (before/after)"),
    "report.flag": ("注記", "Note"),
    "report.treated_all": ("対策道路（全体）", "Treated street(s), pooled"),
    "report.control_all": ("比較道路（全体）", "Comparison streets, pooled"),
    "report.did": ("差の差（対策 − 比較）", "Difference in differences (treated − comparison)"),
    "report.low_sample": ("標本少（{n}台未満）", "small sample (under {n} vehicles)"),
    "report.suppressed": ("データ不足（非公表）", "too few vehicles (not published)"),
    "report.did_effect": (
        "比較道路の変化を差し引いても、対策道路の{label}は下がりました（差の差 {did}、95%信頼区間 {ci}）。",
        "Net of the comparison streets' change, the {label} on the treated street fell (difference in "
        "differences {did}, 95% interval {ci}).",
    ),
    "report.did_unclear": (
        "比較道路の変化を差し引くと、対策道路の{label}の低下ははっきりしません（差の差 {did}、95%信頼区間 {ci}）。",
        "Net of the comparison streets' change, a fall of the {label} on the treated street is not clear "
        "(difference in differences {did}, 95% interval {ci}).",
    ),
    "report.did_suppressed": (
        "対策道路または比較道路の観測車両が {k} 台未満のため、差の差は公表していません。",
        "The treated or the comparison streets had fewer than {k} vehicles: no difference in differences is published.",
    ),
    "report.distributions": ("速度の分布（対策前・対策後）", "Speed distributions (before and after)"),
    "report.dist_legend": (
        "棒：各速度（1 km/h ごと）の地点の割合（左の目盛）、線：累積割合（右の目盛）",
        "Bars: share of records per 1 km/h (left axis); lines: cumulative share (right axis)",
    ),
    "report.speed_axis": ("速度 (km/h)", "Speed (km/h)"),
    "report.share_axis": ("地点の割合 (%)", "Share of records (%)"),
    "report.cum_axis": ("累積 (%)", "Cumulative (%)"),
    "report.limit": ("制限 {v} km/h", "limit {v} km/h"),
    "report.too_few_chart": (
        "{title}：データ不足（観測車両 {k} 台未満のため非表示）",
        "{title}: too few vehicles (fewer than {k}): not shown",
    ),
    "report.no_data": ("データなし", "No data"),
    "report.roads": ("道路別の結果", "Results per street"),
    "report.road": ("道路", "Street"),
    "report.role": ("区分", "Role"),
    "report.braking": ("急減速（急ブレーキ）", "Sudden braking"),
    "report.braking_inferred": (
        "挙動履歴の提供がないため、急ブレーキは推定値（下限）です。連続する2地点の速度差から求めた "
        "{g} G 以上の減速を数えました。地点の間隔が長いため、短く強いブレーキは捉えきれません。",
        "No behaviour history (挙動履歴) was delivered, so sudden braking is inferred: a lower bound. "
        "We counted decelerations of {g} G or more between consecutive records; records are far "
        "apart, so short hard braking is missed.",
    ),
    "report.braking_events": (
        "急ブレーキは ETC2.0 の挙動履歴（前後加速度がしきい値を超えたときの記録）を道路に対応付けて数えました。",
        "Sudden braking counts the behaviour history (挙動履歴) events of ETC2.0 matched to streets.",
    ),
    "report.events": ("件数 {p}", "Events {p}"),
    "report.per_1000": ("1,000通過あたり {p}", "Per 1,000 passages {p}"),
    "report.few_events": ("{k}台未満", "under {k} veh."),
    "report.hotspots": (
        "急減速が集中する地点（25 m 四方、{k}台以上の車両）：対策前 {b} か所、対策後 {a} か所。",
        "Hot spots (25 m cells, events from {k} or more vehicles): {b} before, {a} after.",
    ),
    "report.braking_none": ("急ブレーキのデータなし。", "No sudden-braking data."),
    "report.cut": ("抜け道利用", "Cut-through traffic"),
    "report.cut_no_area": (
        "地区の区域が定義されていないため、算出していません。",
        "Not computed: the district has no outline.",
    ),
    "report.cut_period": ("期間", "Period"),
    "report.cut_trips": ("地区内の生活道路を通ったトリップ", "Trips on the district's residential streets"),
    "report.cut_through": (
        "うち抜け道（出発・到着とも地区外）",
        "of which cut-through (origin and destination outside)",
    ),
    "report.cut_share": ("抜け道の割合", "Cut-through share"),
    "report.cut_streets": (
        "対策後に抜け道トリップが多く通った生活道路：{s}",
        "Residential streets most used by cut-through trips after: {s}",
    ),
    "report.method": ("方法", "Method"),
    "report.m_data": (
        "データ：ETC2.0 プローブデータ（約200 m ごとに記録される位置と瞬間速度）。各地点を最も近い道路（{r} m 以内）に"
        "対応付け、道路ごとに集計しました。運行IDは取り込み時に鍵付きハッシュで匿名化しています。",
        "Data: ETC2.0 probe data (position and instantaneous speed about every 200 m). Each record is matched "
        "to the nearest street within {r} m and figures are computed per street. Vehicle IDs are replaced by a "
        "keyed hash on ingest.",
    ),
    "report.m_passage": (
        "通過：1台の車が1本の道路を1回通ること（同じトリップの連続する地点）。通過の速度は走行速度（道路の距離÷"
        "所要時間、前後の地点から入口・出口の時刻を補間）です。「車の割合」は、走行速度が制限速度以上だった通過の割合で、"
        "地点の割合（記録の割合）とは別の指標です。",
        "Passage: one vehicle travelling along one street once (consecutive records of one trip). The "
        "passage's speed is its travel speed (the street's distance over the time taken, entry and exit "
        'interpolated from the points before and after it). The "share of vehicles" is the share of '
        "passages whose travel speed was at or over the limit; the share of records is a different indicator.",
    ),
    "report.m_ci": (
        "信頼区間：同じ車両の記録は互いに独立ではないため、車両単位で再標本化するブートストラップ法（{n}回、"
        "乱数シード {s}）"
        "で95%信頼区間を求めました。",
        "Intervals: records of one vehicle are not independent, so 95% intervals come from a bootstrap that "
        "resamples vehicles ({n} resamples, seed {s}).",
    ),
    "report.m_did": (
        "比較道路を使う理由：季節や交通量の変化は、対策道路にも比較道路にも同じように影響します。対策をしていない比較道路の"
        "変化を差し引いた「差の差」は、こうした共通の変化を取り除いた効果の目安です。ただし、対策道路は「速度が高かった"
        "から」選ばれた道路で、何もしなくても次の期間には平均に近づく（平均への回帰）ことがあります。比較道路は速いという"
        "理由で選ばれたのではないため、差の差ではこれを取り除けません。対策前期間より前の推移と、対策していない他の"
        "生活道路との比較（プラシーボ）で確かめています。",
        "Why comparison streets: season and traffic affect treated and comparison streets alike, and subtracting "
        "the change on untreated comparison streets (difference in differences) removes such common changes. It "
        "does not remove regression to the mean: the treated street was chosen because it was fast and may slow "
        "down anyway, while the comparison streets were not chosen for being fast. The months before the before "
        "period and the untreated residential streets (placebo streets) show how much that may matter.",
    ),
    "report.m_sample": (
        "標本：観測車両が{n}台未満の数値には「標本少」と注記しました。{k}台未満の数値・グラフ・件数は公表せず"
        "「データ不足」と表示しています。",
        'Samples: figures from fewer than {n} vehicles are marked "small sample". Figures, charts and counts '
        'from fewer than {k} vehicles are not published ("too few vehicles").',
    ),
    "report.m_cut": (
        "抜け道：地区内の生活道路（制限{v} km/h以下）を通り、出発地と到着地がともに地区外のトリップです。",
        "Cut-through: trips on the district's residential streets (limit {v} km/h or less) whose origin and "
        "destination both lie outside the district.",
    ),
    # maps._trend: is the effect lasting? (keys trend.*)
    "trend.section": ("効果は続いているか（月ごとの推移）", "Is the effect lasting? Month by month"),
    "trend.title": ("{label}の月ごとの推移", "{label}, month by month"),
    "trend.sheet_heading": (
        "効果は続いているか：{label}の月ごとの推移",
        "Is the effect lasting? {label}, month by month",
    ),
    "trend.month_axis": ("月", "Month"),
    "trend.treated": ("対策道路", "Treated street"),
    "trend.control": ("比較道路", "Comparison streets"),
    "trend.band": ("帯：95%信頼区間", "Band: 95% interval"),
    "trend.before_level": ("対策前の水準（対策道路）", "Before level (treated)"),
    "trend.after_level": ("対策後の水準（対策道路）", "After level (treated)"),
    "trend.suppressed_month": (
        "灰色の月：データ不足（観測車両 {k} 台未満）",
        "Grey month: too few vehicles (under {k})",
    ),
    "trend.caption": (
        "対策後の期間（{after}）より後の、完全な月ごとの値です。線：月ごとの値（対策道路・比較道路それぞれの全体）、"
        "帯：その95%信頼区間（車両単位のブートストラップ）、破線：対策前の水準、点線：対策後の水準。"
        "最新の月の「対策後との差」の信頼区間が0をまたぐとき、対策後の水準を保っていると判断します。",
        "Complete months after the after period ({after}). Lines: the month's value (treated and comparison "
        "streets, pooled); bands: its 95% interval (bootstrap over vehicles); dashed: the before level; "
        "dotted: the after level. When the interval of the latest month's difference from the after level "
        "includes 0, the street is still at the after level.",
    ),
    "trend.none": ("対策後の期間より後の月のデータはまだありません。", "There is no month after the after period yet."),
    "trend.month": ("月", "Month"),
    "trend.value": ("対策道路", "Treated"),
    "trend.ci": ("95%信頼区間", "95% interval"),
    "trend.vs_after": ("対策後との差 [95%信頼区間]", "Difference from after [95% interval]"),
    "trend.vehicles": ("観測車両（台）", "Vehicles"),
    "trend.comparison": ("比較道路", "Comparison"),
    # maps.through: through traffic by gates (keys gates.*)
    "gates.section": ("通過交通（出入口ゲート別）", "Through traffic by gates"),
    "gates.intro": (
        "地区の区域の線を道路が横切る所を出入口（ゲート）とし、地区の道路網を通ったトリップ（1台の車の1回の移動）を、"
        "どこから入りどこへ出たかで5つに分けました。出発地・到着地は様式1-3、ない場合はトリップの最初と最後の地点です。",
        "Gates are where roads cross the district's outline. Every trip (one vehicle's journey) on the "
        "district's roads is classed by where it entered and left. Origin and destination: 様式1-3 where "
        "delivered, else the trip's first and last record.",
    ),
    "gates.classes": ("区分ごとのトリップ（全日）", "Trips by class (whole day)"),
    "gates.class": ("区分", "Class"),
    "gates.meaning": ("内容", "Meaning"),
    "gates.trips": ("{p} トリップ", "{p} trips"),
    "gates.share": ("{p} 割合", "{p} share"),
    "gates.total": ("合計", "Total"),
    "gates.bands": ("時間帯別の割合", "Shares by time of day"),
    "gates.period": ("期間", "Period"),
    "gates.band": ("時間帯", "Time of day"),
    "gates.od": (
        "通過交通の入口と出口（全日、多い順）",
        "Through traffic: entry and exit gates (whole day, busiest first)",
    ),
    "gates.entry": ("入口", "Entry gate"),
    "gates.exit": ("出口", "Exit gate"),
    "gates.od_none": ("公表できる組み合わせはありません。", "No pair can be published."),
    "gates.note": (
        "観測車両が {k} 台未満のセルは「データ不足」とし、合計から差し引いて分かってしまわないよう、"
        "同じ行のいちばん小さいセルも"
        "「—」としました。時間帯は、トリップが地区内で最初に記録された時刻（外周のみは道路網で最初の時刻）です。",
        'Cells from fewer than {k} vehicles say "too few data"; so that they cannot be had by subtraction '
        'from the total, the smallest other cell of the same row shows "—". The time of day is that of the '
        "trip's first record inside the district (around it only: on the network).",
    ),
    "gates.none": (
        "出入口ゲート別の分類はありません（地区の区域がないか、まだ計算されていません）。",
        "No gate classification (the district has no outline, or it was not computed yet).",
    ),
    "gates.unknown_gate": ("不明（近くに出入口なし）", "unknown (no gate nearby)"),
    "gates.gates_layer": ("出入口（ゲート）", "Gates"),
    "gates.panel_title": ("地区を通り抜ける交通（通過交通）", "Traffic passing through the district"),
    "gates.panel_line": ("{p}：{v}", "{p}: {v}"),
    "gates.panel_trips": ("（{n} トリップ中）", " (of {n} trips)"),
    "gates.panel_hint": (
        "地区外から入り地区外へ出るトリップの割合（全日）。出入口は「重ねて表示」で地図に出せます。",
        'Share of trips entering from outside and leaving again (whole day). Show the gates under "Overlays".',
    ),
    "gates.legend_gate": ("出入口（ゲート）", "Gate (where a road crosses the outline)"),
    "gates.class_through": ("通過交通", "Through traffic"),
    "gates.class_into": ("流入", "Into the district"),
    "gates.class_out_of": ("流出", "Out of the district"),
    "gates.class_internal": ("地区内", "Within the district"),
    "gates.class_perimeter": ("外周のみ", "Around it only"),
    "gates.meaning_through": ("地区外から入り、地区外へ出る", "enters from outside and leaves again"),
    "gates.meaning_into": ("地区外から入り、地区内で終わる", "comes from outside and ends inside"),
    "gates.meaning_out_of": ("地区内で始まり、地区外へ出る", "starts inside and leaves"),
    "gates.meaning_internal": ("地区内で始まり、地区内で終わる", "starts and ends inside"),
    "gates.meaning_perimeter": ("地区の周りの道路だけを通る", "uses only the roads around the district"),
    # maps.screening_map: where to calm next (keys screen.*)
    "screen.title": ("{place} 生活道路の対策候補", "{place}: where to calm next"),
    "screen.title_network": ("生活道路の対策候補（{name}）", "Where to calm next ({name})"),
    "screen.lead": ("対策を検討する候補の1位は「{name}」です。", "The first candidate for traffic calming is {name}."),
    "screen.lead_held": (
        "公表できる候補の最上位は「{name}」（{r}位）です。",
        "The highest-ranked candidate that can be published is {name} (No. {r}).",
    ),
    "screen.lead_none": ("公表できる候補はありません。", "No candidate can be published."),
    "screen.details": (
        "{period}の ETC2.0 データで、生活道路 {n} 本を、速度・急ブレーキ・抜け道・交通量から求めたスコア"
        "（0〜100）で順位付けしました（観測車両 {m} 台以上の道路）。",
        "From the ETC2.0 data of {period}, {n} residential streets with at least {m} vehicles were ranked by a "
        "score (0–100) from speeds, sudden braking, cut-through traffic and volume.",
    ),
    "screen.details_score": (
        "1位のスコアは {score}（95%信頼区間 {lo}〜{hi}）、順位の95%信頼区間は {rlo}〜{rhi} 位です。",
        "Its score is {score} (95% confidence interval {lo}–{hi}); its rank lies between {rlo} and {rhi} "
        "(95% interval).",
    ),
    "screen.details_no_score": (
        "スコアは、観測車両が少ない値を含むため公表していません（順位と各指標のみ）。",
        "Scores are not published because they rest on figures from too few vehicles (ranks and components only).",
    ),
    "screen.rank": ("{r}位", "No. {r}"),
    "screen.rank_ci": ("順位 {r}位（95%信頼区間 {lo}〜{hi}位）", "Rank {r} (95% interval {lo}–{hi})"),
    "screen.score": ("スコア {v}（95%信頼区間 {lo}〜{hi}）", "Score {v} (95% interval {lo}–{hi})"),
    "screen.score_withheld": ("スコアは非公表", "Score not published"),
    "screen.share": ("{limit} km/h 以上で通過した車の割合", "Share of passages at or over {limit} km/h"),
    "screen.p85": ("85パーセンタイル速度（通過ごと）", "85th-percentile speed of passages"),
    "screen.braking": ("急ブレーキ（1,000通過あたり）", "Sudden braking per 1,000 passages"),
    "screen.braking_events": ("{n} 件", "{n} events"),
    "screen.braking_few": ("データ不足（{k} 台未満の車両）", "too few data (under {k} vehicles)"),
    "screen.cut": ("抜け道の割合", "Cut-through share"),
    "screen.cut_of": ("{n} トリップ中 {c}", "{c} of {n} trips"),
    "screen.cut_none": ("区域がないため算出なし", "not computed (no area)"),
    "screen.volume": ("交通量", "Volume"),
    "screen.per_day": ("{v} 通過/日", "{v} passages a day"),
    "screen.vehicles": ("観測車両 {n} 台・通過 {p} 回", "{n} vehicles, {p} passages"),
    "screen.points": ("{v} 点", "{v} pts"),
    "screen.points_head": ("[ ] 内：スコアへの寄与（点）", "[in brackets]: points of the score"),
    "screen.list": ("候補（上位 {n}）", "Candidates (top {n})"),
    "screen.legend": ("凡例", "Legend"),
    "screen.tier": ("{a}〜{b}位", "Rank {a}–{b}"),
    "screen.tier_from": ("{a}位以下", "Rank {a} and below"),
    "screen.other_residential": ("その他の生活道路", "Other residential streets"),
    "screen.main_roads": ("幹線道路など", "Main roads"),
    "screen.area": ("対象区域", "Area screened"),
    "screen.period": ("期間：{text}", "Period: {text}"),
    "screen.method": (
        "スコア：各指標を候補の中の最大値で割り、重み（{weights}）を掛けて合計（0〜100）。スコアはこの区域の候補の中での"
        "相対値です。信頼区間は車両単位のブートストラップ（{n}回）。",
        "Score: each component divided by the best candidate's value, weighted ({weights}) and added up "
        "(0–100); scores are relative to this area's candidates. Intervals: bootstrap over vehicles ({n} "
        "resamples).",
    ),
    "screen.braking_inferred": (
        "挙動履歴の提供がないため、急ブレーキは連続する2地点の速度差から求めた推定値（下限）です。",
        "No behaviour history (挙動履歴) was delivered: sudden braking is inferred from consecutive "
        "records (a lower bound).",
    ),
    "screen.hidden": (
        "観測車両が {k} 台未満の候補 {n} 本は表示していません（順位は全候補の中の順位です）。",
        "{n} candidate(s) with fewer than {k} vehicles are not shown (ranks are among all candidates).",
    ),
    "screen.threshold": (
        "観測車両が {k} 台未満の数値は表示しません。",
        "Figures from fewer than {k} vehicles are not shown.",
    ),
    "screen.docs": ("詳しい方法：docs/screening.md", "Method in detail: docs/screening.md"),
    "screen.w_share": ("制限以上", "at or over the limit"),
    "screen.w_share10": ("制限+10以上", "limit + 10"),
    "screen.w_p85": ("85%速度", "p85"),
    "screen.w_braking": ("急ブレーキ", "braking"),
    "screen.w_cut": ("抜け道", "cut-through"),
    "screen.w_volume": ("交通量", "volume"),
    # the side of a derived gate's name ('対策道路（合成） 西側'), in English
    "gates.side_北": ("北", "north"),
    "gates.side_北東": ("北東", "north-east"),
    "gates.side_東": ("東", "east"),
    "gates.side_南東": ("南東", "south-east"),
    "gates.side_南": ("南", "south"),
    "gates.side_南西": ("南西", "south-west"),
    "gates.side_西": ("西", "west"),
    "gates.side_北西": ("北西", "north-west"),
    "gates.band_all": ("全日", "whole day"),
    "gates.band_hours": ("{a}〜{b}時", "{a}:00–{b}:00"),
}


# The language button names the other language, in that language.
LANG_TOGGLE = {"ja": "English", "en": "日本語"}
LANG_TOGGLE_LABEL = {"ja": "Show this map in English", "en": "日本語で表示"}


def t(key: str, lang: str = "ja", **kw) -> str:
    """The text `key` of TEXT in `lang` ('ja' or 'en'), formatted with `kw`."""
    return _pick(TEXT[key], lang).format(**kw)


def both(key: str, **kw) -> dict[str, str]:
    """{'ja': …, 'en': …} of a text (for the map, which switches language in the page)."""
    return {lang: t(key, lang, **kw) for lang in LANGS}
