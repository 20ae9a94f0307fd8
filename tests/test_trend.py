"""Monitoring where people look: the headline says whether the latest month is still at the
after level, and the report and the sheet chart the monthly series (treated and comparison streets,
interval bands, the before and after levels, months on the x axis); months under the publication
threshold leave a gap and no number."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from conftest import MONTHS, make_map_district, make_map_results, make_monthly
from maps.district_map import render_district_map
from maps.district_sheet import render_district_sheet
from maps.headline import headline
from maps.public import public_results
from maps.report import render_report


def results_with(tmp_path, shifts=(0.2, -0.3, 0.1, 0.3), vehicles=None, months=MONTHS):
    district = make_map_district(tmp_path)
    results = make_map_results(tmp_path, district=district)
    results.monthly = make_monthly(results.comparisons, shifts=shifts, vehicles=vehicles, months=months)
    return district, results


def _treated(results, month, ind="p85"):
    m = results.monthly
    return m[(m["indicator"] == ind) & (m["unit"] == "treated") & (m["month"] == month)].iloc[0]


# --- the verdict sentence ------------------------------------------------------------------------


def _signed(v: float) -> str:
    return ("+" if v > 0 else "\u2212") + f"{abs(v):.1f}"


@pytest.mark.parametrize(
    "state, shifts",
    [
        ("holding", (0.2, -0.3, 0.1, 0.1)),  # the month's DiD interval within ±1 km/h
        ("rising", (0.2, -0.3, 2.5, 2.5)),  # above +1 km/h two months running
        ("falling", (0.2, -0.3, -2.5, -2.5)),  # below −1 km/h two months running
        ("inconclusive", (0.2, -0.3, 0.1, 2.5)),  # beyond the margin in one month only
        ("inconclusive", (0.2, -0.3, 0.1, 0.3)),  # an interval across the margin
    ],
)
def test_headline_says_whether_the_latest_month_holds(tmp_path, state, shifts):
    """The verdict is the equivalence test on the month's difference in differences (an
    interval that contains zero no longer holds by default; one month beyond the margin is no rise)."""
    district, results = results_with(tmp_path, shifts=shifts)
    h = headline(district, public_results(results))
    assert h.monitoring == state and h.verdict == "effect"
    r = _treated(results, MONTHS[-1])
    m = results.monthly
    d = m[(m["indicator"] == "p85") & (m["unit"] == "did") & (m["month"] == MONTHS[-1])].iloc[0]
    after = results.comparisons["p85"].set_index("unit").loc["treated", "after"]
    # formatted here, independently of maps.wording
    value, did = f"{r['value']:.1f} km/h", f"{_signed(d['change_vs_after'])} km/h"
    ci = "〜".join(_signed(v) for v in (d["change_ci_low"], d["change_ci_high"]))
    label = "2024年10月の対策道路の85パーセンタイル速度は"
    sentence = {
        "holding": f"{label} {value} で、対策後の水準 {after:.1f} km/h を保っています（比較道路の変化を差し引いた差 "
        f"{did}、95%信頼区間 {ci}：±1.0 km/h 以内）。",
        "rising": f"{label} {value} で、2か月続けて対策後の水準 {after:.1f} km/h より高くなっています（比較道路の"
        f"変化を差し引いた差 {did}、95%信頼区間 {ci}：+1.0 km/h を超える）。",
        "falling": f"{label} {value} で、2か月続けて対策後の水準 {after:.1f} km/h より低くなっています（比較道路の"
        f"変化を差し引いた差 {did}、95%信頼区間 {ci}：−1.0 km/h を超える）。",
        "inconclusive": f"{label} {value}（対策後の水準 {after:.1f} km/h）。比較道路の変化を差し引いた差は {did}"
        f"（95%信頼区間 {ci}）で、対策後の水準を保っているとも変わったとも、まだ言えません（判定の幅 ±1.0 km/h）。",
    }[state]
    assert h.details["ja"][-1].startswith(sentence), h.details["ja"][-1]
    assert ("効果が薄れている可能性があります。" in h.text("ja")) == (state == "rising")
    en = {
        "holding": "still at the after level",
        "rising": "above the after level",
        "falling": "below the after level",
        "inconclusive": "it cannot yet be said whether it holds the after level",
    }
    assert "In Oct 2024 the 85th-percentile speed on the treated street was " + value in h.text("en")
    assert en[state] in h.text("en") and f"95% confidence interval {ci.replace('〜', ' to ')}" in h.text("en")


def test_headline_without_a_monitoring_month_says_nothing_about_it(tmp_path):
    district = make_map_district(tmp_path)
    plain = make_map_results(tmp_path, district=district)
    h = headline(district, public_results(plain))
    assert h.monitoring is None and "対策後の水準" not in h.text("ja") and "after level" not in h.text("en")
    plain.monthly = make_monthly(plain.comparisons).iloc[0:0]  # a stored but empty series
    assert headline(district, public_results(plain)).monitoring is None


def test_latest_month_under_the_threshold_is_not_judged(tmp_path):
    district, results = results_with(tmp_path, shifts=(0.2, -0.3, 0.1, 4.37), vehicles=[100, 100, 100, 6])
    h = headline(district, public_results(results))
    assert h.monitoring == "suppressed"
    assert "最新の月（2024年10月）は観測車両が 10 台未満のため、対策後の水準と比べられません。" in h.text("ja")
    r = _treated(results, MONTHS[-1])
    assert f"{r['value']:.1f}" not in h.text("ja") and f"{r['change_vs_after']:.1f}" not in h.text("en")


def test_months_without_any_vehicle_are_not_the_latest_month(tmp_path):
    """A month of the store without a single vehicle on the district (another district's delivery) is
    no month of this district's series: the verdict is of the latest month with data."""
    months = (*MONTHS, dt.date(2025, 1, 1))
    district, results = results_with(
        tmp_path, shifts=(0.2, -0.3, 2.5, 2.5, 0.0), vehicles=[100, 100, 100, 100, 0], months=months
    )
    pub = public_results(results)
    assert headline(district, pub).monitoring == "rising" and "2024年10月の" in headline(district, pub).text("ja")
    page = render_report(district, results, tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'data-months="4"' in page and "2025年1月" not in page


def test_map_headline_carries_the_verdict(tmp_path):
    district, results = results_with(tmp_path, shifts=(0.2, -0.3, -2.5, -2.5))
    page = render_district_map(district, results, tmp_path / "m.html").read_text(encoding="utf-8")
    h = headline(district, public_results(results))
    assert 'data-monitoring="falling"' in page and h.details["ja"][-1] in page and h.details["en"][-1] in page


# --- the chart in the report -----------------------------------------------------------------


def _trend_svg(page: str) -> str:
    return re.search(r'<svg class="chart trend".*?</svg>', page, flags=re.S).group(0)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_report_charts_the_monthly_series(tmp_path, lang):
    district, results = results_with(tmp_path, vehicles=[100, 6, 100, 120])
    page = render_report(district, results, tmp_path / "r.html", lang=lang).read_text(encoding="utf-8")
    assert (
        page.index('id="answer"')
        < page.index('id="trend"')
        < page.index("<h2>" + ("結果の詳細" if lang == "ja" else "Detailed"))
    )
    svg = _trend_svg(page)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    # labelled axes: the unit on y, months on x (one tick per month, the year under the first)
    assert "km/h" in texts and ("月" if lang == "ja" else "Month") in texts
    months = ["7月", "8月", "9月", "10月"] if lang == "ja" else ["Jul", "Aug", "Sep", "Oct"]
    ticks = re.search(r'<g class="months">(.*?)</g>', svg).group(1)
    assert re.findall(r"<text[^>]*>([^<]*)</text>", ticks) == [
        months[0],
        "2024年" if lang == "ja" else "2024",
        *months[1:],
    ]
    assert 'data-months="4"' in svg and len(re.findall(r"<line [^>]*y2=\"\d+(\.\d)?\" stroke=\"#666\"/>", ticks)) == 4
    # treated and comparison: a point for every public month, a gap (and a grey band) at the suppressed one
    assert len(re.findall(r'class="m-treated"', svg)) == 3 and len(re.findall(r'class="m-control"', svg)) == 3
    assert svg.count('class="suppressed-month"') == 1
    assert svg.count('class="band"') >= 2  # interval bands (and the lone month's interval)
    assert svg.count('class="level"') == 2  # the before and the after level
    legend = ("対策道路", "比較道路", "帯：95%信頼区間", "対策前の水準（対策道路）", "対策後の水準（対策道路）")
    if lang == "ja":
        assert all(t in texts for t in legend) and "灰色の月：データ不足（観測車両 10 台未満）" in texts
        assert "85パーセンタイル速度の月ごとの推移" in texts
    # the month table: figures of public months, データ不足 for the suppressed one
    table = page[page.index("</svg>", page.index('id="trend"')) : page.index("<h2>", page.index('id="trend"') + 10)]
    r = _treated(results, MONTHS[0])
    assert f"{r['value']:.1f} km/h" in table
    assert table.count("データ不足" if lang == "ja" else "too few data") == 2  # treated and comparison of August


def test_before_level_line_is_the_stored_before_figure(tmp_path):
    district, results = results_with(tmp_path)
    svg = _trend_svg(render_report(district, results, tmp_path / "r.html").read_text(encoding="utf-8"))
    ticks = [
        (float(t), float(y) - 4)
        for y, t in re.findall(
            r'<text x="[\d.]+" y="([\d.]+)" font-size="12" '
            r'text-anchor="end">([\d.]+)</text>',
            svg,
        )
    ]
    (v0, y0), (v1, y1) = ticks[0], ticks[-1]
    level_y = [float(y) for y in re.findall(r'<line class="level" [^>]*y1="([\d.]+)"', svg)]
    p85 = results.comparisons["p85"].set_index("unit").loc["treated"]
    for value, y in zip((p85["before"], p85["after"]), level_y, strict=True):
        assert y == pytest.approx(y0 + (value - v0) * (y1 - y0) / (v1 - v0), abs=0.15)


def test_report_without_months_says_so(tmp_path):
    district = make_map_district(tmp_path)
    page = render_report(district, make_map_results(tmp_path, district=district), tmp_path / "r.html").read_text(
        encoding="utf-8"
    )
    assert "対策後の期間より後の月のデータはまだありません。" in page and 'class="chart trend"' not in page


def test_trend_uses_the_districts_headline_indicator(tmp_path):
    from dataclasses import replace

    from config.districts import Publication

    district, results = results_with(tmp_path)
    district = replace(district, publication=Publication(headline_indicator="mean"))
    svg = _trend_svg(render_report(district, results, tmp_path / "r.html").read_text(encoding="utf-8"))
    assert "平均速度の月ごとの推移" in svg


# --- the chart on the sheet ------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_sheet_charts_the_monthly_series(tmp_path, lang):
    district, results = results_with(tmp_path, shifts=(0.2, -0.3, 0.1, 2.5), vehicles=[100, 6, 100, 120])
    sheet = render_district_sheet(district, results, tmp_path / "s.pdf", lang=lang, png=False)
    drawn = sheet.texts
    heading = (
        "効果は続いているか：85パーセンタイル速度の月ごとの推移"
        if lang == "ja"
        else "Is the effect lasting? 85th-percentile speed, month by month"
    )
    assert heading in drawn and "km/h" in drawn
    months = ["7月\n2024年", "8月", "9月", "10月"] if lang == "ja" else ["Jul\n2024", "Aug", "Sep", "Oct"]
    assert all(m in drawn for m in months)
    legend = [
        "対策道路",
        "比較道路",
        "対策前の水準（対策道路）",
        "対策後の水準（対策道路）",
        "灰色の月：データ不足（観測車両 10 台未満）",
    ]
    if lang == "ja":
        assert all(t in drawn for t in legend)
    h = headline(district, public_results(results))
    assert h.details[lang][-1] in drawn  # the verdict is in the sheet's headline too
    assert (tmp_path / "s.pdf").stat().st_size > 0


def test_sheet_without_months_keeps_its_layout(tmp_path):
    district = make_map_district(tmp_path)
    sheet = render_district_sheet(
        district, make_map_results(tmp_path, district=district), tmp_path / "s.pdf", png=False
    )
    assert not any("月ごとの推移" in t for t in sheet.texts)
