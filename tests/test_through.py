"""Through traffic by gates in the publications: the report's section (class shares before and
after with trips, shares by time band, the through-traffic pairs of named gates) and the map's gate
markers and through-traffic panel; cells under the publication threshold suppressed, and the smallest
other cell of their row withheld so that no hidden cell can be had by subtraction."""

from __future__ import annotations

import re

import folium
import numpy as np
import pytest

from conftest import bilingual_texts, make_gates, make_map_district, make_map_results
from maps.district_map import district_map, render_district_map
from maps.page import save_page
from maps.public import complementary, public_gates, public_results
from maps.report import render_report

LABELS = {
    "ja": ("通過交通", "流入", "流出", "地区内", "外周のみ"),
    "en": ("Through traffic", "Into the district", "Out of the district", "Within the district", "Around it only"),
}


@pytest.fixture
def district_results(tmp_path):
    district = make_map_district(tmp_path)
    results = make_map_results(tmp_path, district=district)
    results.gates = make_gates(district)
    return district, results


def _section(page: str) -> str:
    start = page.index('<h2 id="gates">')
    end = page.find("<h2", start + 5)
    return page[start : end if end > 0 else None]


def _tables(section: str) -> list[list[list[str]]]:
    out = []
    for table in re.findall(r"<table>.*?</table>", section, flags=re.S):
        rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
        out.append(
            [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, flags=re.S)] for r in rows]
        )
    return out


def test_complementary_withholds_the_smallest_public_cell():
    assert list(complementary([410, 220, 230, 0, 140], [150, 90, 95, 0, 60])) == ["ok"] * 5
    assert list(complementary([352, 231, 226, 4, 187], [130, 88, 91, 3, 72])) == [
        "ok",
        "ok",
        "ok",
        "suppressed",
        "withheld",
    ]
    assert list(complementary([5, 0, 3], [4, 0, 2])) == ["suppressed"] * 3  # nothing public: the zeros too


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_report_shows_classes_time_bands_and_gate_pairs(district_results, tmp_path, lang):
    district, results = district_results
    page = render_report(district, results, tmp_path / "r.html", lang=lang).read_text(encoding="utf-8")
    section = _section(page)
    classes, bands, od = _tables(section)
    # classes before and after, with trips and shares, and the total
    assert [r[0] for r in classes[1:]] == [*LABELS[lang], "合計" if lang == "ja" else "Total"]
    by = {r[0]: r for r in classes[1:]}
    through = by[LABELS[lang][0]]
    assert through[2:] == ["410", "41.0%", "352", "35.2%"]  # formatted here: 410 / 1000, 352 / 1000
    too_few = "データ不足" if lang == "ja" else "too few data"
    assert by[LABELS[lang][3]][4:] == [too_few, too_few]  # 4 internal trips of 3 vehicles
    assert by[LABELS[lang][4]][4:] == ["—", "—"]  # the smallest other cell, withheld
    assert by[LABELS[lang][3]][2:4] == ["0", "0.0%"]  # before: none, published
    total = by["合計" if lang == "ja" else "Total"]
    assert total[2] == "1,000" and total[4] == "1,000"
    # shares by time band: both periods, five bands each
    assert len(bands) == 1 + 2 * 5 and bands[0][2:] == list(LABELS[lang])
    assert bands[1][1] == ("0〜7時" if lang == "ja" else "0:00–7:00")
    # through-traffic pairs of named gates, busiest first; the suppressed pair is not listed, the withheld one shows —
    pairs = [(r[0], r[1], r[2], r[3]) for r in od[1:]]
    g1, g2 = (
        ("G1 桜通り 西側", "G2 桜通り 東側")
        if lang == "ja"
        else ("G1 Sakura-dori, west side", "G2 Sakura-dori, east side")
    )
    assert pairs[0] == (g1, g2, "200", "170") and pairs[1][2:] == ("150", "140")
    assert not any("G3" in a and "G2" in b for a, b, _, _ in pairs)  # G3 → G2: 4 vehicles
    # G1 → G3 (55 trips) is withheld so that the 5 trips of G3 → G2 stay hidden; it is public in no period
    assert not any(a.startswith("G1 ") and b.startswith("G3 ") for a, b, _, _ in pairs)
    g31 = [p for p in pairs if p[0].startswith("G3 ") and p[1].startswith("G1 ")]
    assert g31 and g31[0][2:] == (("データなし" if lang == "ja" else "no data"), "42")
    for hidden in ("187", "18.7%", "55", "4 ", ">5<"):
        assert hidden not in section.replace("1,000", ""), hidden
    assert page.index('<h2 id="gates">') > page.index("<h2>" + ("抜け道利用" if lang == "ja" else "Cut-through"))


def test_report_without_gates_says_so(tmp_path):
    district = make_map_district(tmp_path)
    page = render_report(district, make_map_results(tmp_path, district=district), tmp_path / "r.html").read_text(
        encoding="utf-8"
    )
    assert "出入口ゲート別の分類はありません" in _section(page)


def test_hidden_cells_cannot_be_had_by_subtraction(district_results):
    """Per row with a suppressed cell: total minus the published cells is never the suppressed cells alone."""
    district, results = district_results
    pub = public_results(results)
    raw, shown = results.gates["summary"], pub.gates["summary"]
    for key, g in shown.groupby(["period", "time_band"]):
        r = raw[(raw["period"] == key[0]) & (raw["time_band"] == key[1])]
        small = r[(r["n_vehicles"] > 0) & (r["n_vehicles"] < 10)]
        if small.empty:
            continue
        hidden = r["n_trips"].sum() - g["n_trips"].fillna(0).sum()
        assert hidden != small["n_trips"].sum() and (g["public"] == "withheld").sum() == 1, key
        assert set(g.loc[g["public"] != "ok", "n_trips"].dropna()) == set()  # no number on a hidden cell


def test_pairs_of_a_hidden_class_are_withheld(district_results):
    district, results = district_results
    gates = {k: v.copy() for k, v in results.gates.items()}
    s = gates["summary"]
    s.loc[(s["period"] == "after") & (s["time_band"] == "all") & (s["gate_class"] == "through"), "n_vehicles"] = 7
    pub = public_gates(gates)
    od = pub["od"]
    after = od[(od["period"] == "after") & (od["gate_class"] == "through")]
    assert (after["public"] == "withheld").all() and after["n_trips"].isna().all()


def test_map_has_gate_markers_and_the_through_share(district_results, tmp_path):
    district, results = district_results
    m = district_map(district, results)
    page = save_page(m, tmp_path / "m.html").read_text(encoding="utf-8")
    markers = [c for c in m._children["overlay:gates"]._children.values() if isinstance(c, folium.Marker)]
    ids = [re.search(r'e2c-gate-id"[^>]*>(\w+)<', mk.icon.options["html"]) for mk in markers]
    assert all(mk.icon.options["class_name"] == "e2c-gate" for mk in markers)
    assert '"className": "e2c-gate"' in page
    assert [x.group(1) for x in ids] == ["G1", "G2", "G3"]
    tips = [t for t in bilingual_texts(page) if "G1 " in t["ja"]]
    assert tips and "G1 桜通り 西側" in tips[0]["ja"] and "Sakura-dori, west side" in tips[0]["en"]
    panel = re.search(r'<section id="e2c-through">.*?</section>', page, flags=re.S).group(0)
    text = re.sub(r"<[^>]+>", "|", panel)
    assert "対策前：41.0%（1,000 トリップ中）" in text and "対策後：35.2%（1,000 トリップ中）" in text
    assert "Before: 41.0% (of 1,000 trips)" in text and "地区を通り抜ける交通（通過交通）" in text
    assert 'name="e2c-extra" value="gates"' in page and 'value="gates" checked' not in page  # off by default
    assert 'data-e2c-extra-legend="gates"' in page


def test_map_without_gates_has_no_gate_panel(tmp_path):
    district = make_map_district(tmp_path)
    page = render_district_map(district, make_map_results(tmp_path, district=district), tmp_path / "m.html").read_text(
        encoding="utf-8"
    )
    assert 'id="e2c-through"' not in page and '"gates":null' in page and '"className": "e2c-gate"' not in page


def test_suppressed_through_share_on_the_map(district_results, tmp_path):
    district, results = district_results
    s = results.gates["summary"]
    s.loc[(s["period"] == "after") & (s["time_band"] == "all"), "n_vehicles"] = np.minimum(
        s.loc[(s["period"] == "after") & (s["time_band"] == "all"), "n_vehicles"], 6
    )
    page = render_district_map(district, results, tmp_path / "m.html").read_text(encoding="utf-8")
    panel = re.sub(r"<[^>]+>", "|", re.search(r'<section id="e2c-through">.*?</section>', page, flags=re.S).group(0))
    assert "対策後：データ不足" in panel and "35.2" not in panel and "対策前：41.0%" in panel
