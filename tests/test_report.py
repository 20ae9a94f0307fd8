"""The district report: the answer first (headline, before/after chart with whiskers and labelled axes),
then the tables; sections without data say so; English; the same numbers as the map and the sheet."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest

from conftest import make_map_district, make_map_results
from maps.district_map import render_district_map
from maps.district_sheet import render_district_sheet
from maps.headline import headline
from maps.public import public_results
from maps.report import render_report

CREATED = dt.date(2024, 7, 10)


@pytest.fixture
def report(tmp_path):
    district = make_map_district(tmp_path)
    results = make_map_results(tmp_path, district=district)
    page = render_report(district, results, tmp_path / "report.html", created=CREATED).read_text(encoding="utf-8")
    return page, district, results


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg class=\"chart\".*?</svg>", page, flags=re.S)


def test_report_starts_with_the_answer(report):
    page, district, results = report
    h = headline(district, public_results(results))
    first_h2 = page.index("<h2>")
    assert page.index('id="headline"') < page.index('<div class="charts">') < first_h2
    shown = re.sub(r"<[^>]+>", "", re.search(r'<div id="headline".*?</div>', page, flags=re.S).group(0))
    assert shown == h.text("ja")
    assert page.index("<footer") > page.rindex("<h2>")  # publisher, date and 出典 close the report
    assert (
        "作成：etc2calm ／ 作成日：2024年7月10日 ／ 出典：ETC2.0プローブ情報（国土交通省）"
        in page[page.index("<footer") :]
    )
    assert page.index("合成データ（デモ用）") < page.index("<h1>")


def test_before_after_chart_has_whiskers_values_and_labelled_axes(report):
    page, _, results = report
    answer = page[page.index('id="answer"') : page.index("</section>")]
    speed, share = _svgs(answer)
    for svg, unit in ((speed, "km/h"), (share, "%")):
        texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
        assert unit in texts  # the y axis carries the unit
        assert "対策道路" in texts and "比較道路" in texts and "対策前" in texts and "対策後" in texts
        assert "95%信頼区間" in texts
        assert len(re.findall(r'<g stroke="#111"', svg)) == 4  # one whisker per bar
    p85 = results.comparisons["p85"].set_index("unit")
    for unit in ("treated", "control"):
        for period in ("before", "after"):
            assert f">{p85.loc[unit, period]:.1f}</text>" in speed
    assert (
        "85パーセンタイル速度（対策前・対策後）" in speed
        and "30 km/h 以上で通過した車の割合（対策前・対策後）" in share
    )


def _axis(svg: str):
    """value → y of a chart, read from two of its tick labels (not from maps.report)."""
    ticks = [
        (float(t), float(y) - 4)
        for y, t in re.findall(
            r'<text x="[\d.]+" y="([\d.]+)" font-size="12" '
            r'text-anchor="end">([\d.]+)</text>',
            svg,
        )
    ]
    (v0, y0), (v1, y1) = ticks[0], ticks[-1]
    return lambda v: y0 + (v - v0) * (y1 - y0) / (v1 - v0)


def test_whiskers_are_the_stored_intervals_of_each_level(report):
    """Each bar's whisker spans the stored 95 % interval of its own level (before_ci_* / after_ci_*),
    not the change's interval drawn from the before value; the caption says so."""
    page, _, results = report
    answer = page[page.index('id="answer"') : page.index("</section>")]
    for svg, ind, factor in zip(_svgs(answer), ("p85", "passage_share"), (1, 100), strict=True):
        y = _axis(svg)
        drawn = [
            tuple(sorted((float(a), float(b))))
            for a, b in re.findall(
                r'<g stroke="#111" stroke-width="1.5"><line x1="[\d.]+" x2="[\d.]+" y1="([\d.]+)" '
                r'y2="([\d.]+)"/>',
                svg,
            )
        ]
        table = results.comparisons[ind].set_index("unit")
        expected = [
            tuple(sorted((y(factor * table.loc[u, f"{p}_ci_low"]), y(factor * table.loc[u, f"{p}_ci_high"]))))
            for u in ("treated", "control")
            for p in ("before", "after")
        ]
        assert drawn == [pytest.approx(e, abs=0.15) for e in expected]
        change = table.loc["treated"]
        from_before = sorted(
            (y(factor * (change["before"] + change["ci_low"])), y(factor * (change["before"] + change["ci_high"])))
        )
        assert drawn[1] != pytest.approx(tuple(from_before), abs=0.15)  # not the old whisker
    assert "ひげ：それぞれの値の95%信頼区間" in answer


def test_bar_without_a_stored_level_interval_has_no_whisker(tmp_path):
    district = make_map_district(tmp_path)
    results = make_map_results(tmp_path, district=district)
    for ind, t in results.comparisons.items():
        results.comparisons[ind] = t.drop(columns=["before_ci_low", "before_ci_high", "after_ci_low", "after_ci_high"])
    page = render_report(district, results, tmp_path / "r.html").read_text(encoding="utf-8")
    answer = page[page.index('id="answer"') : page.index("</section>")]
    assert len(_svgs(answer)) == 2 and '<g stroke="#111"' not in answer


def test_distribution_chart_axes_do_not_collide(report):
    page, _, _ = report
    svg = _svgs(page)[2]
    labels = {t: float(y) for y, t in re.findall(r'<text x="[\d.]+" y="([\d.]+)"[^>]*>([^<]*)</text>', svg)}
    assert "速度 (km/h)" in labels and "30" in labels
    assert labels["速度 (km/h)"] - labels["30"] >= 12  # the unit sits below the tick labels, not beside them
    assert "地点の割合 (%)" in svg and "累積 (%)" in svg  # both y axes labelled


def test_braking_section_says_when_it_is_an_inferred_lower_bound(tmp_path):
    district = make_map_district(tmp_path)
    inferred = render_report(district, make_map_results(tmp_path), tmp_path / "a.html").read_text(encoding="utf-8")
    assert "挙動履歴の提供がないため、急ブレーキは推定値（下限）です。" in inferred
    delivered = render_report(
        district, make_map_results(tmp_path, braking_source="behavior_events"), tmp_path / "b.html"
    ).read_text(encoding="utf-8")
    assert "推定値（下限）" not in delivered and "挙動履歴（前後加速度" in delivered


def test_sections_without_data_say_so(tmp_path):
    district = make_map_district(tmp_path)
    empty = make_map_results(
        tmp_path,
        braking=pd.DataFrame(
            columns=["period", "road_id", "n_events", "n_passages", "events_per_1000_passages", "n_vehicles"]
        ),
        cut_through=pd.DataFrame(
            columns=["period", "n_trips", "n_cut_through", "share_cut_through", "n_vehicles", "n_vehicles_cut_through"]
        ),
        distributions=pd.DataFrame(columns=["unit", "period", "speed_bin_kmh", "n_points"]),
    )
    page = render_report(district, empty, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "急ブレーキのデータなし。" in page and "地区の区域が定義されていないため、算出していません。" in page
    assert "対策道路（全体）：データなし" in page
    braking = page[page.index("<h2>急減速") : page.index("<h2>抜け道")]
    assert "<table" not in braking  # no table of zeros shown as a result


def test_report_in_english(tmp_path):
    district = make_map_district(tmp_path)
    results = make_map_results(tmp_path, district=district)
    page = render_report(district, results, tmp_path / "en.html", lang="en", created=CREATED).read_text(
        encoding="utf-8"
    )
    assert (
        '<html lang="en">' in page and "<title>Test-cho 1, Kohoku Ward: did the traffic calming work?</title>" in page
    )
    assert headline(district, public_results(results)).text("en") in re.sub(r"<[^>]+>", "", page).replace("\n", "")
    assert "Published by etc2calm · 10 Jul 2024" in page and "regression to the mean" in page
    assert "No behaviour history (挙動履歴) was delivered, so sudden braking is inferred: a lower bound." in page
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<style.*?</style>", "", page, flags=re.S))
    for kana in re.findall(r"[^\s]*[\u3040-\u30ff]+[^\s]*", text):  # Japanese only in quoted names of data
        assert kana.strip("()（）.,") in ("挙動履歴", "桜通り", "楓通り"), kana


def test_map_report_and_sheet_print_the_same_numbers(tmp_path):
    """One rounding: the treated street's change and interval read the same in all three outputs."""
    district = make_map_district(tmp_path)
    results = make_map_results(tmp_path, district=district)
    page_map = render_district_map(district, results, tmp_path / "m.html").read_text(encoding="utf-8")
    page_report = render_report(district, results, tmp_path / "r.html").read_text(encoding="utf-8")
    sheet = "\n".join(render_district_sheet(district, results, tmp_path / "s.pdf", png=False).texts)
    for text in ("38.4 → 29.5 km/h（\u22128.9 km/h、95%信頼区間 \u22129.5〜\u22128.3）", "38.4% → 6.1%"):
        assert text in page_map and text in page_report and text in sheet, text
    assert "\u22128.9 km/h" in page_report.split('id="answer"')[1] and "\u221232.3 ポイント" in sheet
