"""Tests for maps/: colour scales, layer building and the self-contained district HTML map."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import LineString, Polygon, mapping

from config.districts import District, Period
from maps import palette
from maps.assets import LEAFLET_VERSION, leaflet_css, leaflet_js
from maps.district_map import (
    build_layers,
    display_value,
    format_change,
    indicator_label,
    render_district_map,
)

LON, LAT = 139.6300, 35.5330


def make_district(tmp_path: Path) -> District:
    """A District built directly, two labelled periods, one treated and one comparison road."""
    return District(
        key="testdistrict",
        name_ja="テスト町一丁目",
        name_en="Test-cho 1",
        ward_ja="港北区",
        ward_code="14109",
        center_lat=LAT,
        center_lon=LON,
        network_path=tmp_path / "network.geojson",
        synthetic_network=True,
        periods={
            "before": Period("before", dt.date(2023, 4, 1), dt.date(2023, 6, 30), "整備前"),
            "after": Period("after", dt.date(2024, 4, 1), dt.date(2024, 6, 30), "整備後"),
        },
        default_before="before",
        default_after="after",
        treated_roads=("r1",),
        comparison_roads=("r2",),
        source_path=tmp_path / "testdistrict.toml",
    )


def make_roads() -> gpd.GeoDataFrame:
    """Four small streets: treated, comparison, a sparse one (under the minimum) and one without stats."""
    d = 0.002
    rows = [
        ("r1", "桜通り", "residential", 30, LineString([(LON, LAT), (LON + d, LAT)])),
        ("r2", "楓通り", "residential", 30, LineString([(LON, LAT + d), (LON + d, LAT + d)])),
        ("r3", "ひっそり小路", "residential", 30, LineString([(LON, LAT), (LON, LAT + d)])),
        ("r4", "名無し坂", "residential", 30, LineString([(LON + d, LAT), (LON + d, LAT + d)])),
    ]
    gdf = gpd.GeoDataFrame(
        [dict(road_id=r, name=n, highway=h, limit_kmh=lim, geometry=g) for r, n, h, lim, g in rows],
        crs="EPSG:4326",
    )
    gdf["role"] = ["treated", "comparison", "residential", "residential"]
    return gdf


def make_stats() -> pd.DataFrame:
    """Stats for r1–r3 in both periods; r3 is below 10 vehicles with distinctive figures."""
    rows = [
        # road, period, n_points, n_vehicles, mean, p85, share
        ("r1", "before", 900, 120, 31.2, 38.4, 0.42),
        ("r1", "after", 800, 110, 24.9, 29.5, 0.19),
        ("r2", "before", 700, 95, 29.0, 34.0, 0.35),
        ("r2", "after", 720, 97, 29.4, 34.6, 0.38),
        ("r3", "before", 31, 7, 47.7, 53.3, 0.873),
        ("r3", "after", 29, 6, 46.1, 52.2, 0.861),
    ]
    df = pd.DataFrame(
        rows, columns=["road_id", "period", "n_points", "n_vehicles", "mean_kmh", "p85_kmh", "share_at_or_over_limit"]
    )
    df["limit_kmh"] = 30
    return df


def square(lon: float, lat: float, r: float) -> Polygon:
    return Polygon([(lon - r, lat - r), (lon + r, lat - r), (lon + r, lat + r), (lon - r, lat + r)])


@pytest.fixture
def rendered(tmp_path: Path) -> tuple[Path, str]:
    area = tmp_path / "area.geojson"
    area.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": mapping(square(LON + 0.001, LAT + 0.001, 0.0015))}]}),
        encoding="utf-8")
    wards = tmp_path / "wards.geojson"
    wards.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"N03_004": "港北区", "N03_007": "14109"},
         "geometry": mapping(square(LON, LAT, 0.01))},
        {"type": "Feature", "properties": {"N03_004": "緑区", "N03_007": "14113"},
         "geometry": mapping(square(LON + 0.5, LAT, 0.01))}]}, ensure_ascii=False), encoding="utf-8")
    out = render_district_map(
        make_district(tmp_path), make_roads(), make_stats(), tmp_path / "out" / "map.html",
        before="before", after="after", wards_path=wards, area_path=area,
    )
    return out, out.read_text(encoding="utf-8")


# --- palette -----------------------------------------------------------------------------------


def test_sequential_colours_exact():
    assert palette.sequential_color(0) == "#fed976"
    assert palette.sequential_color(9.9) == "#fed976"
    assert palette.sequential_color(10) == "#feb24c"  # a break belongs to the upper class
    assert palette.sequential_color(42) == "#e31a1c"
    assert palette.sequential_color(50) == "#b10026"
    assert palette.sequential_color(100) == "#b10026"
    assert palette.sequential_color(31.5, "p85_kmh") == "#fc4e2a"


def test_change_colours_exact_and_symmetric():
    assert palette.change_color(0) == "#f7f7f7"
    assert palette.change_color(-2) == palette.change_color(2) == "#f7f7f7"
    assert palette.change_color(-3) == "#d1e5f0"
    assert palette.change_color(3) == "#fddbc7"
    assert palette.change_color(-23) == "#2166ac"  # big decrease: dark blue (improvement)
    assert palette.change_color(23) == "#b2182b"  # big increase: dark red
    assert palette.change_color(-1.5, "mean_kmh") == "#d1e5f0"


def test_scales_reject_nan():
    with pytest.raises(ValueError):
        palette.sequential_color(float("nan"))
    with pytest.raises(ValueError):
        palette.change_color(float("nan"))


def test_legend_labels():
    assert palette.SHARE_SCALE.legend()[0] == ("#b10026", "50%以上")
    assert palette.SHARE_SCALE.legend()[-1] == ("#fed976", "10%未満")
    rows = palette.SHARE_CHANGE_SCALE.legend()
    assert rows[0] == ("#2166ac", "20 ポイント以上の減少")
    assert rows[1] == ("#67a9cf", "10〜20 ポイントの減少")
    assert rows[3] == ("#f7f7f7", "ほぼ変化なし（±3 ポイント未満）")
    assert rows[-1] == ("#b2182b", "20 ポイント以上の増加")
    assert palette.SPEED_CHANGE_SCALE.legend()[0] == ("#2166ac", "6 km/h 以上の低下")
    assert palette.SPEED_SCALE.legend()[-1] == ("#fed976", "20 km/h 未満")
    assert len(rows) == 7


# --- formatting and layers ---------------------------------------------------------------------


def test_display_and_change_format():
    assert display_value("share_at_or_over_limit", 0.419) == 42
    assert display_value("mean_kmh", 24.94) == 24.9
    assert format_change("share_at_or_over_limit", -23) == "\u221223 ポイント"
    assert format_change("share_at_or_over_limit", 3) == "+3 ポイント"
    assert format_change("mean_kmh", 0.0) == "±0.0 km/h"
    assert indicator_label("share_at_or_over_limit", {30}) == "30 km/h 以上の割合"
    assert indicator_label("share_at_or_over_limit", {30, 40}) == "制限速度以上の割合"


def test_layers_values_suppression_and_change_sign(tmp_path):
    layers = build_layers(make_district(tmp_path), make_roads(), make_stats(), before="before", after="after")
    by_id = {k: {f["properties"]["road_id"]: f["properties"] for f in fc["features"]} for k, fc in layers.items()}
    assert by_id["before"]["r1"]["value"] == 42 and by_id["after"]["r1"]["value"] == 19
    # change = after − before of the displayed figures: decrease negative, increase positive
    assert by_id["change"]["r1"]["value"] == -23
    assert by_id["change"]["r1"]["style"]["color"] == palette.change_color(-23) == "#2166ac"
    assert by_id["change"]["r2"]["value"] == 3
    assert by_id["change"]["r2"]["style"]["color"] == "#fddbc7"
    assert by_id["before"]["r1"]["style"]["color"] == "#e31a1c"
    for key in ("before", "after", "change"):
        sparse = by_id[key]["r3"]
        assert sparse["kind"] == "insufficient" and "value" not in sparse
        assert sparse["style"]["dashArray"] and sparse["style"]["color"] == palette.INSUFFICIENT_COLOR
        assert "データ不足" in sparse["tip"]
        assert by_id[key]["r4"]["kind"] == "nodata"
    # coloured roads are drawn last (on top)
    kinds = [f["properties"]["kind"] for f in layers["change"]["features"]]
    assert kinds == sorted(kinds, key={"nodata": 0, "insufficient": 1, "value": 2}.get)


def test_speed_indicator(tmp_path):
    layers = build_layers(make_district(tmp_path), make_roads(), make_stats(), before="before", after="after",
                          indicator="p85_kmh")
    change = {f["properties"]["road_id"]: f["properties"] for f in layers["change"]["features"]}
    assert change["r1"]["value"] == pytest.approx(-8.9)
    assert "−8.9 km/h" in change["r1"]["tip"]


# --- bad input ---------------------------------------------------------------------------------


def test_bad_inputs(tmp_path):
    district, roads, stats = make_district(tmp_path), make_roads(), make_stats()
    with pytest.raises(ValueError, match="missing column"):
        build_layers(district, roads, stats.drop(columns="n_vehicles"), before="before", after="after")
    with pytest.raises(ValueError, match="no period 'during'"):
        build_layers(district, roads, stats, before="before", after="during")
    with pytest.raises(ValueError, match="unknown indicator"):
        build_layers(district, roads, stats, before="before", after="after", indicator="max_kmh")
    pct = stats.assign(share_at_or_over_limit=stats["share_at_or_over_limit"] * 100)
    with pytest.raises(ValueError, match="fraction"):
        build_layers(district, roads, pct, before="before", after="after")
    with pytest.raises(ValueError, match="no rows for period 'after'"):
        build_layers(district, roads, stats[stats["period"] == "before"], before="before", after="after")
    with pytest.raises(ValueError, match="missing column"):
        build_layers(district, roads.drop(columns="name"), stats, before="before", after="after")


def test_ward_not_found(tmp_path):
    wards = tmp_path / "wards.geojson"
    wards.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"N03_004": "緑区", "N03_007": "14113"},
         "geometry": mapping(square(LON, LAT, 0.01))}]}, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match="N03_004"):
        render_district_map(make_district(tmp_path), make_roads(), make_stats(), tmp_path / "m.html",
                            before="before", after="after", wards_path=wards)


# --- HTML --------------------------------------------------------------------------------------


def test_html_is_self_contained(rendered):
    path, page = rendered
    assert path.exists() and path.stat().st_size > 100_000
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']?(https?:)?//", page)
    assert "cdn.jsdelivr" not in page and "jquery" not in page.lower() and "bootstrap" not in page.lower()
    assert f"Leaflet {LEAFLET_VERSION}" in page  # inlined library
    assert ".leaflet-container" in page  # inlined CSS
    assert "url(images/" not in page  # CSS images are data: URIs
    assert '<meta charset="utf-8">' in page and '<html lang="ja">' in page
    # the only http(s) URLs left are tile templates and attribution links
    own = page.replace(leaflet_js(), "").replace(leaflet_css(), "")  # Leaflet mentions URLs in comments
    for url in re.findall(r"https?://[^\s\"'<>\\]+", own):
        assert url.startswith(("https://cyberjapandata.gsi.go.jp/xyz/pale/", "https://maps.gsi.go.jp/",
                               "https://tile.openstreetmap.org/", "https://www.openstreetmap.org/copyright")), url


def test_leaflet_version_matches_folium():
    import folium.folium

    urls = [u for _, u in folium.folium._default_js if "leaflet@" in u]
    assert urls and f"leaflet@{LEAFLET_VERSION}/" in urls[0]


def test_html_content(rendered):
    _, page = rendered
    assert "<title>テスト町一丁目（港北区）生活道路の速度" in page
    assert "<h1>テスト町一丁目（港北区）生活道路の速度</h1>" in page
    assert "30 km/h 以上の割合：対策前と対策後の比較" in page
    assert "対策前（整備前）：2023年4月1日〜2023年6月30日" in page
    assert "対策後（整備後）：2024年4月1日〜2024年6月30日" in page
    for name in ("対策前", "対策後", "変化"):
        assert f"{name}</label>" in page
    assert "表示中：変化（対策後 − 対策前）" in page
    assert page.count('type="radio" name="e2c-layer"') == 3  # radio buttons: one layer at a time
    assert "対策前：30 km/h 以上の割合 (%)" in page
    assert "変化：30 km/h 以上の割合の増減 (ポイント)" in page
    assert "50%以上" in page and "ほぼ変化なし" in page
    assert "合成データ（デモ用）— 実際の観測値ではありません" in page
    assert "ETC2.0 プローブデータ" in page and "10 台未満" in page
    assert '"text":"対策道路"' in page and '"text":"比較道路"' in page
    assert "cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png" in page
    attributions = [json.loads(a) for a in re.findall(r'"attribution": ("(?:[^"\\]|\\.)*")', page)]
    assert '<a href="https://maps.gsi.go.jp/development/ichiran.html">地理院タイル</a>' in attributions
    assert any("OpenStreetMap</a> contributors" in a for a in attributions)
    assert "区の境界（港北区）" in page and "対象地区" in page
    # tooltip of a shown road: name, figure with unit, vehicles, change with sign
    assert "桜通り" in page and "42%" in page and "120 台" in page and "\u221223 ポイント" in page
    assert "+3 ポイント" in page
    assert ".fitBounds(" in page


def test_suppressed_road_has_no_figures(rendered):
    _, page = rendered
    assert "ひっそり小路" in page and "データ不足" in page
    for figure in ("87%", "86%", "0.873", "0.861", "87.3", "47.7", "53.3", "46.1", "52.2"):
        assert figure not in page, figure
    assert not re.search(r"(?<![0-9])[67] 台", page)  # r3's vehicle counts
    data = re.search(r"var DATA = (\{.*?\});\n", page).group(1)
    indicators = json.loads(data)["indicators"]
    assert set(indicators) == {"share_at_or_over_limit", "p85_kmh", "mean_kmh"}  # all embedded
    for ind in indicators.values():
        for props in ind["layers"].values():
            (sparse,) = [p for p in props if p["road_id"] == "r3"]
            assert sparse["kind"] == "insufficient" and "value" not in sparse
            assert "データ不足" in sparse["tip"]


def test_ward_outline_filtered(rendered):
    _, page = rendered
    data = json.loads(re.search(r"var DATA = (\{.*?\});\n", page).group(1))
    ward = data["outlines"]["ward"]
    xs = [pt[0] for ring in ward["coordinates"] for pt in ring]
    assert max(xs) < LON + 0.1  # 緑区 (0.5° east) was filtered out


def test_not_synthetic_has_no_banner(tmp_path):
    out = render_district_map(make_district(tmp_path), make_roads(), make_stats(), tmp_path / "m.html",
                              before="before", after="after", synthetic=False)
    page = out.read_text(encoding="utf-8")
    assert "合成データ" not in page and "e2c-banner\"" not in page


def test_initial_layer_checked(tmp_path):
    out = render_district_map(make_district(tmp_path), make_roads(), make_stats(), tmp_path / "m.html",
                              before="before", after="after", initial_layer="before")
    page = out.read_text(encoding="utf-8")
    assert 'value="before" checked>' in page and "表示中：対策前" in page
    with pytest.raises(ValueError, match="initial_layer"):
        render_district_map(make_district(tmp_path), make_roads(), make_stats(), tmp_path / "m.html",
                            before="before", after="after", initial_layer="diff")
