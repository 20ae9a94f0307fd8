"""What the headline and the report say about placebo streets, degenerate intervals, regression to the
mean and the months before the before period."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

from conftest import make_map_district, make_map_results
from maps.headline import headline
from maps.public import public_results
from maps.report import render_report

CLAIMS = ("はっきり下がりました", "clearly fell")


def placebo_rows(dids, indicator="p85", n_vehicles=80):
    return pd.DataFrame(
        {
            "indicator": indicator,
            "road_id": [f"x{i}" for i in range(len(dids))],
            "did": dids,
            "n_vehicles": n_vehicles,
            "before": 30.0,
            "after": 30.0 + np.asarray(dids, float),
        }
    )


def with_placebo(tmp_path, dids):
    district = make_map_district(tmp_path)
    results = make_map_results(tmp_path, district=district)
    results.placebo = placebo_rows(dids)
    return district, results


def _did(results, ind="p85"):
    return results.comparisons[ind].set_index("unit").loc["did", "change"]


def test_headline_claims_an_effect_only_when_the_placebo_rank_allows(tmp_path):
    district, results = with_placebo(tmp_path, [])
    d = _did(results)  # the fixture's DiD (a fall of several km/h)
    # 9 untreated streets, all changing less: rank 1 of 10, p = 0.1 -> the effect stands, with its rank
    results.placebo = placebo_rows(np.linspace(-1.5, 1.5, 9))
    h = headline(district, public_results(results))
    assert h.verdict == "effect" and "10 本中 1 番目" in h.text("ja") and "(placebo p = 0.10)" in h.text("en")
    # two untreated streets fell as much or more: rank 3 of 10, p = 0.3 -> no claim
    results.placebo = placebo_rows([d - 0.5, d, *np.linspace(-1.5, 1.5, 7)])
    h = headline(district, public_results(results))
    assert h.verdict == "unclear" and not any(c in h.text("ja") + h.text("en") for c in CLAIMS)
    assert "rank 3 of 10, placebo p = 0.30" in h.text("en") and "対策の効果とは言い切れません" in h.text("ja")
    # fewer than 9 placebo streets: the rank is stated and left out of the rule
    results.placebo = placebo_rows([d - 0.5, 0.2, -0.3])
    h = headline(district, public_results(results))
    assert h.verdict == "effect" and "ranks 2 of 4" in h.text("en") and "not used in the verdict" in h.text("en")
    # placebo streets under the publication threshold are not published, nor counted
    results.placebo = placebo_rows(np.linspace(-1.5, 1.5, 9), n_vehicles=6)
    h = headline(district, public_results(results))
    assert "No untreated residential street had enough vehicles" in h.text("en")


def test_degenerate_interval_is_said_and_claims_nothing(tmp_path):
    district, results = with_placebo(tmp_path, [])
    t = results.comparisons["p85"]
    t["degenerate"] = t["unit"].eq("treated")
    h = headline(district, public_results(results))
    assert h.verdict == "unclear" and "does not describe sampling" in h.text("en")
    page = render_report(district, results, tmp_path / "r.html", lang="en").read_text(encoding="utf-8")
    summary = page[page.index("Detailed results") :]
    assert "interval degenerate" in summary


def test_report_placebo_section_spread_and_spill_over(tmp_path):
    district, results = with_placebo(tmp_path, [])
    d = _did(results)
    results.placebo = placebo_rows([d - 1.0, *np.linspace(-4.0, 4.0, 9)])
    results.placebo.loc[0, "road_id"] = "r4"  # 名無し坂: an untreated street that fell more than the treated one
    page = render_report(district, results, tmp_path / "r.html").read_text(encoding="utf-8")
    section = page[page.index('id="placebo"') : page.index('id="pretrend"')]
    text = re.sub(r"<[^>]+>", "", section)
    assert "10 本" in text and "11 本中 2 番目" in text
    assert "信頼区間" in text and "より広く" in text  # the placebo spread (8 km/h) is wider than the interval
    assert "名無し坂 [r4]" in text and "可能性があります" in text
    # English, and a narrow placebo spread
    results.placebo = placebo_rows(np.linspace(-0.2, 0.2, 9))
    page = render_report(district, results, tmp_path / "r.en.html", lang="en").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", page[page.index('id="placebo"') : page.index('id="pretrend"')])
    assert "spread no wider" in text and "spill-over" not in text


def test_report_corrects_regression_to_the_mean_and_shows_the_pre_period(tmp_path):
    district, results = with_placebo(tmp_path, [])
    page = render_report(district, results, tmp_path / "r.en.html", lang="en").read_text(encoding="utf-8")
    assert "It does not remove regression to the mean" in page
    assert "may slow down anyway (regression to the mean); season" not in page  # the old, wrong claim
    assert "No month before the before period was delivered" in page
    ja = render_report(district, results, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "差の差ではこれを取り除けません" in ja
    # a pre-period month: treated and comparison levels and the DiD against the before period
    rows = []
    for unit, value, change, lo, hi in (
        ("treated", 38.9, 0.5, -0.4, 1.4),
        ("control", 34.1, 0.1, -0.7, 0.9),
        ("did", np.nan, 0.4, -0.8, 1.6),
    ):
        rows.append(
            dict(
                month=dt.date(2023, 3, 1),
                indicator="p85",
                unit=unit,
                value=value,
                ci_low=value - 1,
                ci_high=value + 1,
                n=500,
                n_vehicles=90,
                before_level=value - change,
                change_vs_before=change,
                change_ci_low=lo,
                change_ci_high=hi,
                flag="",
                degenerate=False,
            )  # fmt: skip
        )
    results.pre_period = pd.DataFrame(rows)
    page = render_report(district, results, tmp_path / "r2.en.html", lang="en").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", " ", page[page.index('id="pretrend"') :])
    assert "Mar 2023" in text and "38.9 km/h" in text and "34.1 km/h" in text and "+0.4 km/h" in text
    assert "\u22120.8 to +1.6" in text
    # a month under the publication threshold shows no figure
    results.pre_period["n_vehicles"] = 6
    page = render_report(district, results, tmp_path / "r3.en.html", lang="en").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", " ", page[page.index('id="pretrend"') :])
    assert "38.9" not in text and "too few data" in text
