"""maps/: colour classes, shared wording, layers, the headline and the self-contained district HTML map."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import folium
import pytest

import maps._palette as palette
import maps.wording as w
from config.districts import Device
from conftest import (
    MAP_LAT,
    MAP_LON,
    bilingual_texts,
    comparisons_from,
    frame_options,
    make_map_district,
    make_map_results,
    make_map_stats,
    map_features,
    page_text,
    square,
    write_area,
)
from maps._embed import LEAFLET_VERSION, VENDORED, vendored_text
from maps._layers import road_layers
from maps.district_map import district_map, render_district_map
from maps.headline import headline
from maps.page import save_page
from maps.public import public_results

CREATED = dt.date(2024, 7, 10)


@pytest.fixture
def rendered(tmp_path: Path) -> tuple[Path, str]:
    area = write_area(tmp_path / "area.geojson")
    wards = tmp_path / "wards.geojson"
    wards.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"N03_004": "港北区", "N03_007": "14109"},
                        "geometry": square(MAP_LON, MAP_LAT, 0.01).__geo_interface__,
                    },
                    {
                        "type": "Feature",
                        "properties": {"N03_004": "緑区", "N03_007": "14113"},
                        "geometry": square(MAP_LON + 0.5, MAP_LAT, 0.01).__geo_interface__,
                    },
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    devices = [Device("hump", MAP_LON + 0.0006, MAP_LAT, dt.date(2023, 10, 1), illustrative=True)]
    district = make_map_district(tmp_path, devices=devices, area_path=area)
    m = district_map(district, make_map_results(tmp_path, district=district), wards_path=wards, created=CREATED)
    out = save_page(m, tmp_path / "out" / "map.html")
    return out, out.read_text(encoding="utf-8"), m


# --- palette and wording -----------------------------------------------------------------------


def test_share_classes_exact():
    assert palette.sequential_color(0, "share") == "#fed976"
    assert palette.sequential_color(9.9, "share") == "#fed976"
    assert palette.sequential_color(10, "share") == "#feb24c"  # a break belongs to the upper class
    assert palette.sequential_color(42, "passage_share") == "#e31a1c"
    assert palette.sequential_color(100, "share") == "#b10026"


def test_speed_classes_of_published_etc2_maps():
    """<= 30 km/h blue, 30-40 green, >= 40 orange/red, for every speed indicator."""
    for name in ("mean", "p85", "mean_kmh", "passage_p85_kmh"):
        assert palette.sequential_color(12.0, name) == palette.sequential_color(30.0, name) == "#2c7bb6"
        assert palette.sequential_color(30.1, name) == palette.sequential_color(39.9, name) == "#a6d96a"
        assert palette.sequential_color(40.0, name) == palette.sequential_color(61.0, name) == "#e34a33"
    assert [t for _, t in palette.SPEED_SCALE.legend("ja")] == ["40 km/h 以上", "30〜40 km/h", "30 km/h 以下"]
    assert [t for _, t in palette.SPEED_SCALE.legend("en")] == ["40 km/h or more", "30–40 km/h", "30 km/h or less"]


def test_change_colours_exact_and_symmetric():
    assert palette.change_color(0) == "#f7f7f7"
    assert palette.change_color(-2) == palette.change_color(2) == "#f7f7f7"
    assert palette.change_color(-3) == "#d1e5f0" and palette.change_color(3) == "#fddbc7"
    assert palette.change_color(-23) == "#2166ac" and palette.change_color(23) == "#b2182b"
    assert palette.change_color(-1.5, "mean") == "#d1e5f0"


def test_scales_reject_nan():
    with pytest.raises(ValueError):
        palette.sequential_color(float("nan"))
    with pytest.raises(ValueError):
        palette.change_color(float("nan"))


def test_legend_labels_in_both_languages():
    assert palette.SHARE_SCALE.legend("ja")[0] == ("#b10026", "50%以上")
    assert palette.SHARE_SCALE.legend("en")[-1] == ("#fed976", "under 10%")
    rows = palette.SHARE_CHANGE_SCALE.legend("ja")
    assert rows[0] == ("#2166ac", "20 ポイント以上の減少") and rows[3] == ("#f7f7f7", "ほぼ変化なし（±3 ポイント未満）")
    assert palette.SPEED_CHANGE_SCALE.legend("ja")[0] == ("#2166ac", "6 km/h 以上の低下")
    assert palette.SPEED_CHANGE_SCALE.legend("en")[0] == ("#2166ac", "Decrease of 6 km/h or more")
    assert len(rows) == 7


def test_one_rounding_for_every_output():
    assert w.display("share", 0.419) == 41.9 and w.display("passage_share_at_or_over_limit", 0.0615) == 6.2
    assert w.display("mean", 24.94) == 24.9
    assert w.fmt_value("p85", 32.649) == "32.6 km/h" and w.fmt_value("share", 0.19) == "19.0%"
    assert (
        w.fmt_change("share", -0.2301) == "\u221223.0 ポイント" and w.fmt_change("share", 0.03, "en") == "+3.0 points"
    )
    assert w.fmt_change("mean", -0.04) == "±0.0 km/h"
    assert w.fmt_interval("p85", -8.34, -7.21) == "\u22128.3〜\u22127.2"
    assert w.fmt_interval("p85", -0.4, 1.2, "en") == "\u22120.4 to +1.2"
    assert w.indicator_label("share", "ja", {30}) == "30 km/h 以上で走った地点の割合"
    assert w.indicator_label("passage_share", "ja", {30}) == "30 km/h 以上で通過した車の割合"
    assert w.indicator_label("passage_share", "ja", {30, 40}) == "制限速度以上で通過した車の割合"
    assert w.indicator_label("passage_share", "en", {30}, capital=True) == "Share of vehicles at or over 30 km/h"
    assert w.fmt_date(dt.date(2017, 9, 1)) == "2017年9月1日" and w.fmt_date(dt.date(2017, 9, 1), "en") == "1 Sep 2017"


def test_every_label_exists_in_both_languages():
    """One wording table: every label of map, report, sheet, screening map, gates, trend and headline."""
    prefixes = {key.split(".")[0] for key in w.TEXT if "." in key}
    assert {"report", "screen", "gates", "trend", "headline", "indicator", "layer", "role"} <= prefixes
    for key, pair in w.TEXT.items():
        assert len(pair) == 2 and all(pair) and pair[0] != pair[1], key
        assert re.search(r"[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]", pair[0]), f"{key}: no Japanese"
        assert not re.search(r"[\u3040-\u30ff]", pair[1].replace("挙動履歴", "")), f"{key}: kana in English"
        fields = [set(re.findall(r"\{(\w+)\}", x)) for x in pair]
        assert fields[0] == fields[1], f"{key}: the two languages take different figures"
    for scale in (palette.SHARE_SCALE, palette.SPEED_SCALE, palette.SHARE_CHANGE_SCALE, palette.SPEED_CHANGE_SCALE):
        assert [c for c, _ in scale.legend("ja")] == [c for c, _ in scale.legend("en")]
    for name in w.INDICATORS:
        assert w.indicator_label(name, "ja", {30}) != w.indicator_label(name, "en", {30})


def test_no_wording_table_outside_maps_wording():
    """Other publishing modules hold no (Japanese, English) tables of their own."""
    import ast

    for path in (Path(__file__).resolve().parents[1] / "maps").glob("*.py"):
        if path.name == "wording.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict) and node.values and all(isinstance(v, ast.Tuple) for v in node.values):
                pairs = [v.elts for v in node.values if len(v.elts) == 2]
                texts = [p for p in pairs if all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in p)]
                japanese = [p for p in texts if re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", p[0].value)]
                assert len(japanese) < 2, f"{path.name}:{node.lineno} holds a wording table"


def test_indicators_are_listed_once_in_settings():
    from config.settings import INDICATOR_COLUMNS, MAP_INDICATORS, SHARE_INDICATORS

    assert {k: i.column for k, i in w.INDICATORS.items()} == INDICATOR_COLUMNS
    assert w.MAP_INDICATORS == MAP_INDICATORS
    assert {k for k, i in w.INDICATORS.items() if i.kind == "share"} == set(SHARE_INDICATORS)


def test_publishing_modules_import_no_private_names():
    """The sheet, report and map share public modules (wording, layers, public), never each other's privates."""
    import ast

    for path in (Path(__file__).resolve().parents[1] / "maps").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("maps"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"


# --- layers ------------------------------------------------------------------------------------


def test_layers_values_suppression_and_change_sign(tmp_path):
    layers = road_layers(public_results(make_map_results(tmp_path)), "share")
    by_id = {k: {f["properties"]["road_id"]: f["properties"] for f in fc["features"]} for k, fc in layers.items()}
    assert by_id["before"]["r1"]["value"] == 42.0 and by_id["after"]["r1"]["value"] == 19.0
    assert by_id["change"]["r1"]["value"] == -23.0  # after − before of the stored figures, rounded once
    assert by_id["change"]["r1"]["style"]["color"] == "#2166ac"
    assert by_id["change"]["r2"]["value"] == 3.0 and by_id["change"]["r2"]["style"]["color"] == "#fddbc7"
    assert by_id["before"]["r1"]["role"] == "treated" and by_id["before"]["r2"]["role"] == "comparison"
    for key in ("before", "after", "change"):
        sparse = by_id[key]["r3"]
        assert sparse["kind"] == "insufficient" and "value" not in sparse
        assert sparse["style"]["dashArray"] and sparse["style"]["color"] == palette.INSUFFICIENT_COLOR
        assert "データ不足" in sparse["tip"]["ja"] and "Too few vehicles" in sparse["tip"]["en"]
        assert by_id[key]["r4"]["kind"] == "nodata"
    kinds = [f["properties"]["kind"] for f in layers["change"]["features"]]
    assert kinds == sorted(kinds, key={"nodata": 0, "insufficient": 1, "value": 2}.get)


def test_speed_and_passage_indicators(tmp_path):
    pub = public_results(make_map_results(tmp_path))
    change = {f["properties"]["road_id"]: f["properties"] for f in road_layers(pub, "p85")["change"]["features"]}
    assert change["r1"]["value"] == pytest.approx(-8.9) and "\u22128.9 km/h" in change["r1"]["tip"]["ja"]
    passage = {
        f["properties"]["road_id"]: f["properties"] for f in road_layers(pub, "passage_share")["before"]["features"]
    }
    assert passage["r1"]["value"] == 38.4 and "30 km/h 以上で通過した車の割合" in passage["r1"]["tip"]["ja"]
    assert (
        "Sakura-dori" in passage["r1"]["tip"]["en"]
        and "Share of vehicles at or over 30 km/h" in passage["r1"]["tip"]["en"]
    )


def test_bad_inputs(tmp_path):
    results = make_map_results(tmp_path)
    with pytest.raises(ValueError, match="unknown indicator"):
        road_layers(public_results(results), "max_kmh")
    with pytest.raises(ValueError, match="public_results"):
        road_layers(results, "share")
    pct = make_map_results(
        tmp_path, stats=make_map_stats().assign(share_at_or_over_limit=lambda d: d["share_at_or_over_limit"] * 100)
    )
    with pytest.raises(ValueError, match="fraction"):
        road_layers(public_results(pct), "share")
    with pytest.raises(ValueError, match="missing column"):
        road_layers(
            public_results(make_map_results(tmp_path, roads=make_map_results(tmp_path).roads.drop(columns="name"))),
            "share",
        )
    with pytest.raises(ValueError, match="unknown language"):
        render_district_map(make_map_district(tmp_path), results, tmp_path / "m.html", lang="fr")
    with pytest.raises(ValueError, match="period"):
        render_district_map(make_map_district(tmp_path), results, tmp_path / "m.html", period="diff")
    with pytest.raises(TypeError):
        render_district_map(make_map_district(tmp_path), results, tmp_path / "m.html", colour="red")


# --- the headline ------------------------------------------------------------------------------


def test_headline_equals_the_stored_results_formatted(tmp_path):
    """The numbers of the headline are comparison_results' numbers, formatted here independently."""
    results = make_map_results(tmp_path)
    h = headline(make_map_district(tmp_path), public_results(results))
    p85 = results.comparisons["p85"].set_index("unit")
    share = results.comparisons["passage_share"].set_index("unit")
    t, c = p85.loc["treated"], p85.loc["control"]
    m = "\u2212"
    assert h.verdict == "effect"
    assert h.text("ja") == (
        "対策後、対策道路の速度ははっきり下がりました。"
        f"対策道路の85パーセンタイル速度は {t['before']:.1f} → {t['after']:.1f} km/h"
        f"（{m}{abs(t['change']):.1f} km/h、95%信頼区間 {m}{abs(t['ci_low']):.1f}〜{m}{abs(t['ci_high']):.1f}）。"
        f"比較道路はほぼ変化なし（+{c['change']:.1f} km/h）。"
        f"30 km/h 以上で通過した車の割合は {100 * share.loc['treated', 'before']:.1f}% → "
        f"{100 * share.loc['treated', 'after']:.1f}%。"
    )
    assert h.text("en").startswith(
        "After the measures, speeds on the treated street clearly fell. On the treated street "
        "the 85th-percentile speed went from 38.4 to 29.5 km/h"
    )


def _no_effect_results(tmp_path, **kw):
    stats = make_map_stats()
    stats.loc[(stats["road_id"] == "r1") & (stats["period"] == "after"), ["mean_kmh", "p85_kmh"]] = [30.9, 38.0]
    return make_map_results(tmp_path, stats=stats, comparisons=comparisons_from(stats, half_width={"p85": 1.5}, **kw))


def test_headline_does_not_claim_an_effect_without_evidence(tmp_path):
    district = make_map_district(tmp_path)
    claims = ("はっきり下がりました", "clearly fell", "下がりました。")
    # no effect: the treated street's interval includes zero
    h = headline(district, public_results(_no_effect_results(tmp_path)))
    assert h.verdict == "unclear" and "効果ははっきりしません" in h.text("ja") and "誤差の範囲" in h.text("ja")
    assert not any(c in h.text("ja") + h.text("en") for c in claims)
    # low sample: a fall, but from fewer than the adequate number of vehicles
    low = make_map_results(tmp_path, comparisons=comparisons_from(make_map_stats(), flags={"treated": "low_sample"}))
    h = headline(district, public_results(low))
    assert (
        h.verdict == "low_sample"
        and "観測車両が少ない" in h.text("ja")
        and "cannot be called an effect" in h.text("en")
    )
    assert not any(c in h.text("ja") + h.text("en") for c in claims)
    # the comparison streets fell as much: the difference in differences includes zero
    stats = make_map_stats()
    stats.loc[(stats["road_id"] == "r2") & (stats["period"] == "after"), "p85_kmh"] = 25.6
    h = headline(district, public_results(make_map_results(tmp_path, stats=stats)))
    assert h.verdict == "unclear" and "差の差" in h.text("ja") and not any(c in h.text("ja") for c in claims)
    # below the publication threshold: no number at all
    few = make_map_stats().assign(n_vehicles=lambda d: d["n_vehicles"].clip(upper=6))
    h = headline(district, public_results(make_map_results(tmp_path, stats=few)))
    assert h.verdict == "suppressed" and not re.search(r"\d+\.\d", h.text("ja") + h.text("en"))


def test_headline_uses_the_districts_indicator(tmp_path):
    from dataclasses import replace

    from config.districts import Publication

    district = replace(make_map_district(tmp_path), publication=Publication(headline_indicator="mean"))
    h = headline(district, public_results(make_map_results(tmp_path)))
    assert "対策道路の平均速度は 31.2 → 24.9 km/h" in h.text("ja")


# --- HTML --------------------------------------------------------------------------------------


def test_html_is_self_contained(rendered):
    path, page, m = rendered
    assert isinstance(m, folium.Map) and path.exists() and path.stat().st_size > 100_000
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)
    assert not re.search(r"<link[^>]*\bhref\s*=", page)
    assert f"Leaflet {LEAFLET_VERSION}" in page and ".leaflet-container" in page and "url(images/" not in page
    assert "url(icon-fullscreen.svg)" not in page and "L.Control.Locate" in page  # folium's plugins, vendored
    assert "jquery" not in page.lower() and "bootstrap" not in page.lower()  # folium's defaults the map does not need
    assert '<meta charset="utf-8">' in page and '<html lang="ja">' in page
    assert "E2CDistrict.start(" in page and "window.e2c = {" in page  # maps/assets/map.js inlined
    assert "#e2c-panel" in page and "@media print" in page  # maps/assets/map.css inlined
    own = page
    for url in VENDORED:  # the libraries mention URLs in comments
        own = own.replace(vendored_text(url), "")
    for url in re.findall(r"https?://[^\s\"'<>\\]+", own):
        assert url.startswith(
            (
                "https://cyberjapandata.gsi.go.jp/xyz/pale/",
                "https://maps.gsi.go.jp/",
                "https://tile.openstreetmap.org/",
                "https://www.openstreetmap.org/copyright",
                "https://leafletjs.com",
                "http://www.w3.org/2000/svg",  # the namespace of an inline SVG image, never fetched
            )
        ), url


def test_page_warns_when_an_added_plugin_needs_the_network(rendered, tmp_path):
    """A plugin whose files are not vendored still works online; saving says the page needs the network,
    and publishing refuses it."""
    from folium.plugins import MiniMap

    from maps.page import NotOffline

    _, _, m = rendered
    m.add_child(folium.Marker([MAP_LAT, MAP_LON], popup="folium Popup"))  # needs jQuery: vendored, inlined
    page = m.get_root().render()
    assert "jQuery v3.7.1" in page and not re.search(r"<script[^>]*\bsrc\s*=", page)
    MiniMap().add_to(m)
    with pytest.warns(UserWarning, match="from the network"):
        m.save(tmp_path / "online.html")
    with pytest.raises(NotOffline):
        save_page(m, tmp_path / "published.html")
    assert not (tmp_path / "published.html").exists()


def test_assets_are_files_not_python_strings():
    root = Path(__file__).resolve().parents[1] / "maps"
    for name in ("frame.js", "map.js", "map.css", "report.css", "screening.js"):
        assert (root / "assets" / name).stat().st_size > 1000, name
    source = (root / "district_map.py").read_text(encoding="utf-8")
    assert "L.geoJSON" not in source and "@media" not in source


def test_html_content_in_both_languages(rendered):
    _, page, m = rendered
    assert "<title>テスト町一丁目（港北区）生活道路の速度</title>" in page
    assert '<span lang="ja">テスト町一丁目（港北区）生活道路の速度</span>' in page
    assert '<span lang="en">Test-cho 1, Kohoku Ward: speeds on residential streets</span>' in page
    assert 'id="headline"' in page and "対策後、対策道路の速度ははっきり下がりました。" in page
    assert "30 km/h 以上で通過した車の割合：対策前と対策後の比較" in page
    assert "Share of vehicles at or over 30 km/h: before and after" in page
    assert "対策前（整備前）：2023年4月1日〜2023年6月30日" in page and "Before: 1 Apr 2023 – 30 Jun 2023" in page
    assert page.count('type="radio" name="e2c-layer"') == 3
    indicators = re.findall(r'name="e2c-indicator" value="(\w+)"', page)
    assert indicators == ["passage_share", "share", "p85", "mean"]  # the share of vehicles first (default)
    assert 'name="e2c-indicator" value="passage_share" checked' in page
    # overlays: devices and braking on, cut-through off by default
    assert 'value="devices" checked' in page and 'value="braking" checked' in page
    assert 'value="cut_through">' in page and 'value="cut_through" checked' not in page
    assert "合成データ（デモ用）— 実際の観測値ではありません" in page and "Synthetic data (demo)" in page
    assert "作成：etc2calm ／ 作成日：2024年7月10日 ／ 出典：ETC2.0プローブ情報（国土交通省）" in page
    assert "Published by etc2calm · 10 Jul 2024 · Source: ETC2.0 probe data (MLIT, Japan)" in page
    assert "ハンプ（位置は例示）" in page and "Speed hump (position illustrative)" in page
    assert "区の境界（港北区）" in page and "Ward boundary (Kohoku Ward)" in page
    assert "40 km/h 以上" in page and "30 km/h 以下" in page  # the speed classes' legend
    assert "e2c-device e2c-device-hump" in page  # the device's marker
    assert {"overlay:devices", "overlay:braking", "overlay:cut_through"} <= set(m._children)
    labels = [c for k, c in m._children.items() if k.startswith("label:")]
    text = page_text(page)
    assert len(labels) == 2 and '<span lang="ja">対策道路</span>' in text and '<span lang="ja">比較道路</span>' in text
    assert m._children["tiles:gsi"].tiles == "https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png"
    assert '"https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png"' in page


def test_suppressed_road_has_no_figures(rendered):
    _, raw, m = rendered
    page = page_text(raw)
    assert "ひっそり小路" in page and "データ不足" in page
    for figure in (
        "87.3",
        "86.1",
        "77.7",
        "74.3",
        "57.1",
        "51.4",
        "47.7",
        "53.3",
        "46.1",
        "52.2",
        "46.6",
        "52.4",
        "45.3",
        "51.8",
    ):
        assert figure not in page, figure
    assert not re.search(r"(?<![0-9,])[67] 台", page)  # r3's vehicle counts
    groups = {k for k in m._children if k.startswith("roads:")}
    assert {k.split(":")[1] for k in groups} == {"passage_share", "share", "p85", "mean"} and len(groups) == 12
    roads = [f["properties"] for f in map_features(raw) if "road_id" in f.get("properties", {})]
    assert len(roads) == 12 * 4  # every road in every layer
    sparse = [p for p in roads if p["road_id"] == "r3"]
    assert len(sparse) == 12 and all(p["kind"] == "insufficient" and "value" not in p for p in sparse)


def test_hot_spot_from_too_few_vehicles_is_not_published(rendered):
    _, page, m = rendered
    spots = [c for c in m._children["overlay:braking"]._children.values() if isinstance(c, folium.Marker)]
    assert len(spots) == 1 and isinstance(spots[0], folium.CircleMarker)
    tips = [t["ja"] for t in bilingual_texts(page) if "急ブレーキ" in t["ja"]]
    assert tips == ["<b>急ブレーキ多発地点</b><br>急ブレーキ <b>30 回</b><br>期間：2023年10月1日〜2023年12月31日"] or (
        len(tips) == 1 and "30 回" in tips[0]
    )  # the after hot spot of 25 vehicles; the one of 6 vehicles is left out


def test_ward_outline_filtered(rendered):
    _, page, m = rendered
    ward = m._children["outline:ward"].data["features"][0]["geometry"]
    xs = [pt[0] for ring in ward["coordinates"] for pt in ring]
    assert max(xs) < MAP_LON + 0.1  # 緑区 (0.5° east) was filtered out


def test_english_first_and_no_banner(tmp_path):
    out = render_district_map(
        make_map_district(tmp_path),
        make_map_results(tmp_path),
        tmp_path / "m.html",
        lang="en",
        synthetic=False,
        period="before",
    )
    page = out.read_text(encoding="utf-8")
    assert (
        '<html lang="en">' in page and "<title>Test-cho 1, Kohoku Ward: speeds on residential streets</title>" in page
    )
    assert "合成データ" not in page and 'class="e2c-banner"' not in page
    assert 'value="before" checked' in page and frame_options(page)["lang"] == "en"
