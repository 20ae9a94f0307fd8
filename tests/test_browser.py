"""The district maps opened in a real browser: Debian's headless Chromium driven by Playwright.

Each map is opened from file:// with no network. What the tests assert:
- no console error and no uncaught exception from the page itself. Base-tile requests are aborted
  by the test (the machine has no network anyway); Chromium then logs one console error per tile,
  "Failed to load resource: net::ERR_FAILED" whose location URL is that tile. Exactly those are
  ignored — and only when the URL matches a tile template of this map (TILE_URL below); any other
  failed load or console error fails the test;
- the number of road paths drawn per layer (SVG <path class="e2c-road ...">) equals the roads given,
  and the optional layers draw exactly the features given;
- hovering a road shows its tooltip with the figure; suppressed roads are grey, dashed and figureless;
- a screenshot per map is saved under build/test-artifacts/browser/ (ETC2CALM_ARTIFACTS overrides).

Chromium must be installed (`.ci/run` installs Debian's `chromium`); without it these tests fail with
a message saying so, unless ETC2CALM_SKIP_BROWSER=1 is set.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, mapping

from maps import palette
from maps.district_map import render_district_map
from config.districts import load_district
from test_maps import LAT, LON, make_district, make_roads, make_stats, square

CHROMIUM = os.environ.get("ETC2CALM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Base tiles of the maps: the only requests a map makes, and the only failures the tests ignore.
TILE_URL = re.compile(r"^https://(cyberjapandata\.gsi\.go\.jp/xyz/pale|tile\.openstreetmap\.org)/\d+/\d+/\d+\.png$")
ARTIFACTS = Path(os.environ.get("ETC2CALM_ARTIFACTS", Path(__file__).resolve().parents[1] / "build" / "test-artifacts"))
VIEWPORT = {"width": 1400, "height": 900}


@pytest.fixture(scope="module")
def browser():
    if os.environ.get("ETC2CALM_SKIP_BROWSER") == "1":
        pytest.skip("ETC2CALM_SKIP_BROWSER=1: browser tests skipped")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's chromium (`apt-get install chromium`, as .ci/run "
            "does), point ETC2CALM_CHROMIUM at a Chromium binary, or set ETC2CALM_SKIP_BROWSER=1 to skip these tests",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the test extra pins playwright
        pytest.fail("playwright is not installed: pip install -e '.[test]'", pytrace=False)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class OpenedMap:
    """A page showing one map, with what the browser reported while loading and using it."""

    def __init__(self, browser, path: Path):
        self.context = browser.new_context(viewport=VIEWPORT, locale="ja-JP")
        self.page = self.context.new_page()
        self.console: list = []  # every console message
        self.page_errors: list[str] = []  # uncaught exceptions
        self.failed_requests: list[str] = []
        self.tile_requests: list[str] = []
        self.page.on("console", lambda msg: self.console.append(msg))
        self.page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        self.page.on("requestfailed", lambda req: self.failed_requests.append(req.url))
        self.page.on("request", lambda req: TILE_URL.match(req.url) and self.tile_requests.append(req.url))
        # no network here: abort tile requests at once instead of waiting for DNS to fail
        self.page.route(TILE_URL, lambda route: route.abort())
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_function("window.e2c !== undefined")
        self.page.wait_for_timeout(300)  # let tile requests fail and be reported

    def errors(self) -> list[str]:
        """Console errors and failed loads not explained by an aborted base-tile request."""
        bad = [f"pageerror: {e}" for e in self.page_errors]
        for msg in self.console:
            if msg.type != "error":
                continue
            url = (msg.location or {}).get("url", "")
            if msg.text.startswith("Failed to load resource") and TILE_URL.match(url):
                continue  # a base tile the test aborted
            bad.append(f"console {msg.type}: {msg.text} ({url})")
        bad += [f"failed request: {u}" for u in self.failed_requests if not TILE_URL.match(u)]
        return bad

    def drawn(self) -> list[dict]:
        """Road paths of the layer on screen: road_id, kind and the SVG stroke attributes."""
        return self.page.evaluate(
            """() => {
              var g = window.e2c.groups[window.e2c.state.indicator][window.e2c.state.layer], out = [];
              g.eachLayer(function (gj) { gj.eachLayer(function (l) {
                if (!l._path || !l._path.classList.contains('e2c-road')) { return; }
                out.push({ road_id: l.feature.properties.road_id, kind: l.feature.properties.kind,
                           stroke: l._path.getAttribute('stroke'), dash: l._path.getAttribute('stroke-dasharray'),
                           has_value: 'value' in l.feature.properties });
              }); });
              return out; }"""
        )

    def count(self, selector: str) -> int:
        return self.page.locator(selector).count()

    def hover_lonlat(self, lon: float, lat: float) -> str:
        """Move the mouse onto (lon, lat) and return the tooltip's text."""
        x, y = self.page.evaluate(
            """([lat, lon]) => { var m = window.e2c.map, p = m.latLngToContainerPoint([lat, lon]),
                                   r = m.getContainer().getBoundingClientRect();
                                   return [r.left + p.x, r.top + p.y]; }""",
            [lat, lon],
        )
        self.page.mouse.move(x - 30, y - 30)
        self.page.mouse.move(x, y, steps=4)
        tip = self.page.locator(".leaflet-tooltip").last
        tip.wait_for(state="visible", timeout=3000)
        return tip.inner_text()

    def choose(self, name: str, value: str) -> None:
        self.page.locator(f'input[name="{name}"][value="{value}"]').check()

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.joinpath("browser").mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / "browser" / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def opened(browser):
    maps: list[OpenedMap] = []

    def open_(path: Path) -> OpenedMap:
        m = OpenedMap(browser, path)
        maps.append(m)
        return m

    yield open_
    for m in maps:
        m.close()


# --- inputs ------------------------------------------------------------------------------------

D = 0.002  # road length in degrees in tests.test_maps.make_roads


def braking_points() -> gpd.GeoDataFrame:
    """Three hot spots away from the roads' midpoints (so hovering a road hits the road)."""
    pts = [(LON + 0.0003, LAT + 0.0001, 12), (LON + D - 0.0001, LAT + D - 0.0004, 5), (LON + 0.0001, LAT + D, 30)]
    return gpd.GeoDataFrame({"count": [c for *_, c in pts], "period": ["2024年4月〜6月"] * 3},
                            geometry=[Point(x, y) for x, y, _ in pts], crs="EPSG:4326")


def cut_through_lines() -> gpd.GeoDataFrame:
    """Two routes: diagonal through the block and along its south edge, with shares of vehicles."""
    return gpd.GeoDataFrame(
        {"name": ["北東方向への抜け道", "南側の抜け道"], "share": [0.34, 0.12]},
        geometry=[LineString([(LON - 0.001, LAT - 0.001), (LON + D + 0.001, LAT + D + 0.001)]),
                  LineString([(LON - 0.001, LAT - 0.0006), (LON + D + 0.001, LAT - 0.0006)])],
        crs="EPSG:4326",
    )


@pytest.fixture
def test_map(tmp_path) -> Path:
    area = tmp_path / "area.geojson"
    area.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": mapping(square(LON + 0.001, LAT + 0.001, 0.0015))}]}),
        encoding="utf-8")  # fmt: skip
    return render_district_map(
        make_district(tmp_path), make_roads(), make_stats(), tmp_path / "map.html", before="before", after="after",
        area_path=area, braking_points=braking_points(), cut_through=cut_through_lines(),
    )


def fabricated_stats(roads: gpd.GeoDataFrame) -> pd.DataFrame:
    """Deterministic figures for a bundled network: every 5th road under 10 vehicles, every 7th without 'after'."""
    rows = []
    for i, rid in enumerate(roads["road_id"].astype(str)):
        for period, drop in (("before", 0.0), ("after", 6.0)):
            if period == "after" and i % 7 == 3 and i % 5 != 2:
                continue
            nveh = 4 if i % 5 == 2 else 40 + 3 * i
            mean = 24 + (i * 37 % 13) - drop * (i % 2)
            rows.append(dict(road_id=rid, period=period, n_points=nveh * 3, n_vehicles=nveh, mean_kmh=mean,
                             p85_kmh=mean + 6, share_at_or_over_limit=min(0.95, max(0.0, (mean - 20) / 20)),
                             limit_kmh=30.0))
    return pd.DataFrame(rows)


@pytest.fixture(params=["okurayama", "nakayama"])
def bundled_map(request, tmp_path):
    from analysis.matchstage import assign_roles
    from config.settings import wards_path
    from geo.network import load_roads

    district = load_district(request.param)
    roads = assign_roles(load_roads(district.network_path), district.treated_roads, district.comparison_roads)
    roads = roads.to_crs("EPSG:4326")
    stats = fabricated_stats(roads)
    out = render_district_map(
        district, roads, stats, tmp_path / f"{district.key}.html", before=district.default_before,
        after=district.default_after, wards_path=wards_path(), area_path=district.area_path, synthetic=True,
    )
    return request.param, out, roads, stats


# --- tests -------------------------------------------------------------------------------------


def test_test_map_draws_every_layer_without_errors(opened, test_map):
    m = opened(test_map)
    assert m.errors() == []
    assert m.tile_requests and all("cyberjapandata.gsi.go.jp/xyz/pale/" in u for u in m.tile_requests)
    for layer in ("change", "before", "after"):
        m.choose("e2c-layer", layer)
        assert m.count("path.e2c-road") == 4, layer  # one path per road, only the chosen layer on screen
        drawn = {d["road_id"]: d for d in m.drawn()}
        assert set(drawn) == {"r1", "r2", "r3", "r4"}
        # r3 has fewer than 10 vehicles: grey, dashed, no figure; r4 has no data: thin grey
        assert drawn["r3"]["kind"] == "insufficient" and not drawn["r3"]["has_value"]
        assert drawn["r3"]["stroke"] == palette.INSUFFICIENT_COLOR and drawn["r3"]["dash"] == "7 6"
        assert drawn["r4"]["stroke"] == palette.NO_DATA_COLOR
        assert m.count("path.e2c-casing") == 2  # casings under the two coloured roads only
        assert m.count(f'[data-e2c-legend="share_at_or_over_limit:{layer}"]:visible') == 1
        assert m.count("[data-e2c-legend]:visible") == 1
    # optional layers: exactly the features given, toggled by their checkboxes
    assert m.count("path.e2c-braking") == 3 and m.count("path.e2c-cut") == 2
    m.page.locator('input[name="e2c-extra"][value="braking"]').uncheck()
    assert m.count("path.e2c-braking") == 0 and m.count("path.e2c-cut") == 2
    assert m.count('[data-e2c-extra-legend="braking"]:visible') == 0
    m.page.locator('input[name="e2c-extra"][value="braking"]').check()
    assert m.count("path.e2c-braking") == 3
    assert m.errors() == []


def test_tooltips_show_figures_and_suppressed_roads_none(opened, test_map):
    m = opened(test_map)
    m.choose("e2c-layer", "before")
    tip = m.hover_lonlat(LON + D / 2, LAT)  # middle of r1 (treated)
    assert "桜通り" in tip and "42%" in tip and "観測車両 120 台" in tip and "2023年4月1日〜2023年6月30日" in tip
    m.choose("e2c-layer", "change")
    tip = m.hover_lonlat(LON + D / 2, LAT)
    assert "42% → 19%" in tip and "\u221223 ポイント" in tip
    tip = m.hover_lonlat(LON, LAT + D / 2)  # middle of r3 (7 and 6 vehicles)
    assert "ひっそり小路" in tip and "データ不足" in tip
    assert not re.search(r"\d+(\.\d)?\s*(%|km/h)", tip.replace("10 台未満", ""))
    # the indicator chooser switches every layer client-side; the suppressed road stays figureless
    m.choose("e2c-indicator", "p85_kmh")
    tip = m.hover_lonlat(LON + D / 2, LAT)
    assert "38.4 km/h → 29.5 km/h" in tip and "\u22128.9 km/h" in tip
    assert m.page.locator("#e2c-ind").inner_text() == "85パーセンタイル速度：対策前と対策後の比較"
    assert m.count('[data-e2c-legend="p85_kmh:change"]:visible') == 1
    m.choose("e2c-indicator", "mean_kmh")
    for layer in ("before", "after", "change"):
        m.choose("e2c-layer", layer)
        tip = m.hover_lonlat(LON, LAT + D / 2)
        assert "データ不足" in tip and "km/h" not in tip.replace("km/h 以上", "")
        drawn = {d["road_id"]: d for d in m.drawn()}
        assert drawn["r3"]["stroke"] == palette.INSUFFICIENT_COLOR and not drawn["r3"]["has_value"]
    # optional layers' tooltips
    tip = m.hover_lonlat(LON + 0.0001, LAT + D)
    assert "急ブレーキ多発地点" in tip and "30 回" in tip
    m.choose("e2c-layer", "change")
    m.choose("e2c-indicator", "share_at_or_over_limit")
    m.screenshot("test_map_change")
    assert m.errors() == []


def test_osm_base_layer_switch(opened, test_map):
    m = opened(test_map)
    assert m.tile_requests and all("cyberjapandata.gsi.go.jp/xyz/pale/" in u for u in m.tile_requests)
    m.choose("e2c-base", "osm")
    m.page.wait_for_timeout(300)
    assert any(u.startswith("https://tile.openstreetmap.org/") for u in m.tile_requests)
    assert m.page.evaluate("window.e2c.map.hasLayer(window.e2c.tiles.osm) && !window.e2c.map.hasLayer(window.e2c.tiles.gsi)")
    assert m.page.locator(".leaflet-control-attribution").inner_text().count("OpenStreetMap") >= 1
    m.choose("e2c-base", "gsi")
    assert "地理院タイル" in m.page.locator(".leaflet-control-attribution").inner_text()
    assert m.errors() == []


def test_bundled_district_maps(opened, bundled_map):
    key, path, roads, stats = bundled_map
    m = opened(path)
    assert m.errors() == []
    banner = m.page.locator(".e2c-banner")
    assert banner.is_visible() and "合成データ" in banner.inner_text()
    assert m.page.locator("#e2c-title h1").is_visible()
    n_roads = len(roads)
    suppressed = set(stats.loc[stats["n_vehicles"] < 10, "road_id"])
    assert suppressed  # the fabricated stats do suppress some roads
    for layer in ("before", "after", "change"):
        m.choose("e2c-layer", layer)
        drawn = m.drawn()
        assert m.count("path.e2c-road") == len(drawn) == n_roads, layer
        for d in drawn:
            if d["road_id"] in suppressed:
                assert d["kind"] == "insufficient" and d["stroke"] == palette.INSUFFICIENT_COLOR, d
                assert not d["has_value"]
            else:
                assert d["stroke"] not in (palette.INSUFFICIENT_COLOR,), d
    district = load_district(key)
    assert m.count(".e2c-label") == len(district.treated_roads) + len(district.comparison_roads)
    m.choose("e2c-layer", "change")
    m.screenshot(f"map_{key}")
    assert m.errors() == []
