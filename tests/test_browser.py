"""The published pages in a real browser: Debian's headless Chromium driven by Playwright.

Maps open from file:// with no network, at 390×844 (phone), 1024×768 (projector) and 1280×900.
What the tests assert:
- no console error and no uncaught exception from the page. Base-tile requests are aborted by the
  test; Chromium then logs "Failed to load resource: net::ERR_FAILED" with that tile's URL. Exactly
  those are ignored, and only when the URL matches a tile template of the map (TILE_URL below);
- in the default view and after every switch (map, indicator, overlays, language, the phone's
  bottom sheet), no panel's box (banner, header, side panel / bottom sheet, Leaflet's controls)
  contains a point of the treated street's rendered SVG path, and that path lies in the viewport;
- a tap on a road opens its popup inside the viewport, clear of the bottom sheet;
- the headline (#headline) is the stored results formatted, and is on the first screen;
- Ctrl+P (print media, A4) gives one page without switches;
- the report fits a 390 px screen (tables scroll inside their box) and answers on its first screen;
- screenshots at the three sizes go to build/test-artifacts/browser/ (ETC2CALM_ARTIFACTS overrides).

Chromium must be installed (`.ci/run` installs Debian's `chromium`); without it these tests fail with
a message saying so, unless ETC2CALM_SKIP_BROWSER=1 is set.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest

from config.districts import Device, load_district
from conftest import MAP_LAT, MAP_LON, ROAD_DEG, fabricated_results, make_map_district, make_map_results, write_area
from maps import _palette as palette
from maps.district_map import render_district_map
from maps.headline import headline
from maps.public import public_results
from maps.report import render_report

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("ETC2CALM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Base tiles of the maps: the only requests a map makes, and the only failures the tests ignore.
TILE_URL = re.compile(r"^https://(cyberjapandata\.gsi\.go\.jp/xyz/pale|tile\.openstreetmap\.org)/\d+/\d+/\d+\.png$")
ARTIFACTS = Path(os.environ.get("ETC2CALM_ARTIFACTS", Path(__file__).resolve().parents[1] / "build" / "test-artifacts"))
SIZES = {"phone": (390, 844), "projector": (1024, 768), "desktop": (1280, 900)}
# Everything that sits over or beside the map; the treated street must be clear of all of them.
PANELS = (
    ".e2c-banner",
    "#e2c-top",
    "#e2c-panel",
    ".leaflet-control-zoom",
    ".leaflet-control-scale",
    ".leaflet-control-attribution",
)


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


class Opened:
    """A page showing one published file, with what the browser reported while loading and using it."""

    def __init__(self, browser, path: Path, size: tuple[int, int] = SIZES["desktop"], wait_for_map: bool = True):
        phone = size[0] < 600
        self.size = size
        self.phone = phone
        self.context = browser.new_context(
            viewport={"width": size[0], "height": size[1]},
            locale="ja-JP",
            is_mobile=phone,
            has_touch=phone,
            device_scale_factor=1,
        )
        self.page = self.context.new_page()
        self.console: list = []
        self.page_errors: list[str] = []
        self.failed_requests: list[str] = []
        self.tile_requests: list[str] = []
        self.requests: list[str] = []  # every request the page makes
        self.page.on("console", lambda msg: self.console.append(msg))
        self.page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        self.page.on("requestfailed", lambda req: self.failed_requests.append(req.url))
        self.page.on("request", lambda req: TILE_URL.match(req.url) and self.tile_requests.append(req.url))
        self.page.on("request", lambda req: self.requests.append(req.url))
        self.page.route(TILE_URL, lambda route: route.abort())  # no network: fail tiles at once
        self.page.goto(path.resolve().as_uri())
        if wait_for_map:
            self.page.wait_for_function("window.e2c !== undefined")
        self.page.wait_for_timeout(300)

    def errors(self) -> list[str]:
        """Console errors and failed loads not explained by an aborted base-tile request."""
        bad = [f"pageerror: {e}" for e in self.page_errors]
        for msg in self.console:
            if msg.type != "error":
                continue
            url = (msg.location or {}).get("url", "")
            if msg.text.startswith("Failed to load resource") and TILE_URL.match(url):
                continue
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

    def treated_geometry(self) -> dict:
        """Points along the treated street's rendered SVG path (client coordinates) and the panels' boxes."""
        return self.page.evaluate(
            """(selectors) => {
              var pts = [];
              document.querySelectorAll('path.e2c-road.e2c-role-treated').forEach(function (p) {
                var n = p.getTotalLength(), m = p.getScreenCTM();
                for (var i = 0; i <= 40; i++) {
                  var q = p.getPointAtLength(n * i / 40);
                  pts.push([m.a * q.x + m.c * q.y + m.e, m.b * q.x + m.d * q.y + m.f]);
                }
              });
              var boxes = [];
              selectors.forEach(function (s) { document.querySelectorAll(s).forEach(function (el) {
                var r = el.getBoundingClientRect(), cs = window.getComputedStyle(el);
                if (r.width > 0 && r.height > 0 && cs.display !== 'none' && cs.visibility !== 'hidden') {
                  boxes.push({ sel: s, l: r.left, t: r.top, r: r.right, b: r.bottom });
                } }); });
              return { pts: pts, boxes: boxes, w: window.innerWidth, h: window.innerHeight }; }""",
            list(PANELS),
        )

    def assert_treated_street_clear(self, when: str) -> None:
        g = self.treated_geometry()
        assert len(g["pts"]) >= 41, f"{when}: the treated street is not drawn"
        for x, y in g["pts"]:
            assert 0 <= x <= g["w"] and 0 <= y <= g["h"], (
                f"{when}: treated street outside the viewport at {x:.0f},{y:.0f}"
            )
            for b in g["boxes"]:
                inside = b["l"] - 2 < x < b["r"] + 2 and b["t"] - 2 < y < b["b"] + 2
                assert not inside, f"{when}: {b['sel']} covers the treated street at ({x:.0f}, {y:.0f})"

    def popup_box(self) -> dict:
        loc = self.page.locator(".leaflet-popup").last
        loc.wait_for(state="visible", timeout=3000)
        self.page.wait_for_timeout(400)  # let the auto-pan finish
        return self.page.evaluate(
            """() => { var r = document.querySelector('.leaflet-popup').getBoundingClientRect();
                       var s = document.getElementById('e2c-panel').getBoundingClientRect();
                       return { l: r.left, t: r.top, r: r.right, b: r.bottom, sheet_top: s.top,
                                text: document.querySelector('.leaflet-popup-content').innerText }; }"""
        )

    def tap(self, x: float, y: float) -> None:
        if self.phone:
            self.page.touchscreen.tap(x, y)
        else:
            self.page.mouse.click(x, y)

    def lonlat_to_client(self, lon: float, lat: float) -> tuple[float, float]:
        return tuple(
            self.page.evaluate(
                """([lat, lon]) => { var m = window.e2c.map, p = m.latLngToContainerPoint([lat, lon]),
                                   r = m.getContainer().getBoundingClientRect();
                                   return [r.left + p.x, r.top + p.y]; }""",
                [lat, lon],
            )
        )

    def hover_lonlat(self, lon: float, lat: float) -> str:
        x, y = self.lonlat_to_client(lon, lat)
        self.page.mouse.move(x - 30, y - 30)
        self.page.mouse.move(x, y, steps=4)
        tip = self.page.locator(".leaflet-tooltip").last
        tip.wait_for(state="visible", timeout=3000)
        return tip.inner_text()

    def open_sheet(self, open_: bool) -> None:
        if (
            self.phone
            and self.page.evaluate("document.getElementById('e2c-panel').classList.contains('e2c-open')") != open_
        ):
            self.page.locator("#e2c-handle").click()
            self.page.wait_for_timeout(150)

    def choose(self, name: str, value: str, check: bool = True) -> None:
        box = self.page.locator(f'input[name="{name}"][value="{value}"]')
        box.check() if check else box.uncheck()

    def screenshot(self, name: str, full_page: bool = False) -> Path:
        ARTIFACTS.joinpath("browser").mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / "browser" / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def opened(browser):
    pages: list[Opened] = []

    def open_(path: Path, size=SIZES["desktop"], wait_for_map: bool = True) -> Opened:
        m = Opened(browser, path, size, wait_for_map)
        pages.append(m)
        return m

    yield open_
    for m in pages:
        m.close()


# --- inputs ------------------------------------------------------------------------------------

DEVICES = (
    Device("hump", MAP_LON + 0.0006, MAP_LAT, dt.date(2023, 10, 1), illustrative=True),
    Device("narrowing", MAP_LON + 0.0013, MAP_LAT, dt.date(2023, 10, 1), illustrative=True),
)


@pytest.fixture
def test_map(tmp_path) -> tuple[Path, object, object]:
    district = make_map_district(tmp_path, devices=DEVICES, area_path=write_area(tmp_path / "area.geojson"))
    results = make_map_results(tmp_path, district=district)
    return render_district_map(district, results, tmp_path / "map.html"), district, results


@pytest.fixture(scope="module", params=["okurayama", "nakayama"])
def bundled_map(request, tmp_path_factory):
    from config.settings import wards_path

    district = load_district(request.param)
    results = fabricated_results(district)
    out = render_district_map(
        district, results, tmp_path_factory.mktemp(request.param) / f"{district.key}.html", wards_path=wards_path()
    )
    return request.param, out, district, results


# --- the map at three sizes ----------------------------------------------------------------------


@pytest.mark.parametrize("size", list(SIZES))
def test_no_panel_covers_the_treated_street(opened, bundled_map, size):
    """Default view, then after every switch: the treated street stays in the viewport, clear of every panel."""
    key, path, district, results = bundled_map
    w, h = SIZES[size]
    m = opened(path, (w, h))
    assert m.errors() == []
    headline_box = m.page.locator("#headline").bounding_box()
    assert headline_box and headline_box["y"] >= 0 and headline_box["y"] + headline_box["height"] <= h  # first screen
    m.assert_treated_street_clear("default view")
    if m.phone:  # closed by default: only the handle of the bottom sheet shows
        assert not m.page.locator("#e2c-panel-body").is_visible()
        assert m.page.locator("#e2c-panel").bounding_box()["height"] < 60
    m.screenshot(f"map_{key}_{w}x{h}")
    m.open_sheet(True)
    m.assert_treated_street_clear("bottom sheet open")
    for layer in ("before", "after", "change"):
        m.choose("e2c-layer", layer)
        m.assert_treated_street_clear(f"map {layer}")
    for ind in ("share", "p85", "mean", "passage_share"):
        m.choose("e2c-indicator", ind)
        m.assert_treated_street_clear(f"indicator {ind}")
    for extra in ("cut_through", "braking", "devices"):
        if m.page.locator(f'input[name="e2c-extra"][value="{extra}"]').count():
            m.choose("e2c-extra", extra, check=True)
            m.assert_treated_street_clear(f"overlay {extra} on")
    if m.page.locator('input[name="e2c-extra"][value="cut_through"]').count():
        m.choose("e2c-extra", "cut_through", check=False)
    m.open_sheet(False)
    m.page.locator("#e2c-lang-toggle").click()
    assert m.page.evaluate("document.documentElement.lang") == "en"
    m.assert_treated_street_clear("English")
    m.page.set_viewport_size({"width": h if not m.phone else w, "height": w if not m.phone else h})  # a rotated screen
    m.page.wait_for_timeout(300)
    m.assert_treated_street_clear("resized")
    assert m.errors() == []


@pytest.mark.parametrize("size", list(SIZES))
def test_tap_opens_a_popup_inside_the_viewport(opened, test_map, size):
    path, district, results = test_map
    w, h = SIZES[size]
    m = opened(path, (w, h))
    targets = [
        (MAP_LON + ROAD_DEG / 2, MAP_LAT, "桜通り"),  # the treated street (bottom)
        (MAP_LON + ROAD_DEG / 2, MAP_LAT + ROAD_DEG, "楓通り"),
    ]  # the comparison street (top edge)
    for lon, lat, name in targets:
        m.page.evaluate("window.e2c.map.closePopup()")
        m.tap(*m.lonlat_to_client(lon, lat))
        box = m.popup_box()
        assert name in box["text"] and "%" in box["text"], box["text"]
        assert box["l"] >= 0 and box["r"] <= w and box["t"] >= 0 and box["b"] <= h, (size, name, box)
        if m.phone:
            assert box["b"] <= box["sheet_top"], "the popup hides behind the bottom sheet"
    m.screenshot(f"map_popup_{w}x{h}")
    assert m.errors() == []


def test_headline_is_the_stored_results_formatted(opened, test_map):
    path, district, results = test_map
    m = opened(path, SIZES["phone"])
    h = headline(district, public_results(results))
    shown = m.page.locator("#headline").inner_text().replace("\n", "")
    assert shown == h.text("ja")
    p85 = results.comparisons["p85"].set_index("unit").loc["treated"]
    assert f"{p85['before']:.1f} → {p85['after']:.1f} km/h" in shown  # independent of maps.wording
    m.page.locator("#e2c-lang-toggle").click()
    assert m.page.locator("#headline").inner_text().replace("\n", " ") == h.text("en")
    assert m.page.title() == "Test-cho 1, Kohoku Ward: speeds on residential streets"
    assert m.errors() == []


def test_low_sample_headline_does_not_claim_an_effect(opened, tmp_path):
    from conftest import comparisons_from, make_map_stats

    district = make_map_district(tmp_path)
    stats = make_map_stats()
    results = make_map_results(
        tmp_path, stats=stats, comparisons=comparisons_from(stats, flags={"treated": "low_sample"})
    )
    path = render_district_map(district, results, tmp_path / "low.html")
    m = opened(path, SIZES["phone"])
    text = m.page.locator("#headline").inner_text()
    assert "効果は判断できません" in text and "はっきり下がりました" not in text
    assert m.errors() == []


def test_every_layer_draws_with_figures_and_suppression(opened, test_map):
    path, district, results = test_map
    m = opened(path)
    assert m.errors() == []
    assert m.tile_requests and all("cyberjapandata.gsi.go.jp/xyz/pale/" in u for u in m.tile_requests)
    for layer in ("change", "before", "after"):
        m.choose("e2c-layer", layer)
        assert m.page.locator("path.e2c-road").count() == 4, layer
        drawn = {d["road_id"]: d for d in m.drawn()}
        assert drawn["r3"]["kind"] == "insufficient" and not drawn["r3"]["has_value"]
        assert drawn["r3"]["stroke"] == palette.INSUFFICIENT_COLOR and drawn["r3"]["dash"] == "7 6"
        assert drawn["r4"]["stroke"] == palette.NO_DATA_COLOR
        assert m.page.locator("path.e2c-casing").count() == 2
        assert m.page.locator(f'[data-e2c-legend="passage_share:{layer}"]:visible').count() == 1
        assert m.page.locator("[data-e2c-legend]:visible").count() == 1
    # overlays: devices and braking shown, cut-through off until asked for
    assert m.page.locator(".e2c-device").count() == 2 and m.page.locator("path.e2c-braking").count() == 1
    assert m.page.locator("path.e2c-cut").count() == 0
    m.choose("e2c-extra", "cut_through")
    assert m.page.locator("path.e2c-cut").count() == 2  # r1 and r2; r3's 3 cut-through vehicles are not published
    m.choose("e2c-extra", "braking", check=False)
    assert m.page.locator("path.e2c-braking").count() == 0
    assert m.page.locator('[data-e2c-extra-legend="braking"]:visible').count() == 0
    assert m.page.locator(".leaflet-control-scale-line").count() == 1  # metric only, no feet or miles
    assert "ft" not in m.page.locator(".leaflet-control-scale").inner_text()
    assert m.errors() == []


def test_tooltips_show_figures_and_suppressed_roads_none(opened, test_map):
    path, district, results = test_map
    m = opened(path)
    m.choose("e2c-layer", "before")
    tip = m.hover_lonlat(MAP_LON + ROAD_DEG * 0.35, MAP_LAT)
    assert "桜通り" in tip and "38.4%" in tip and "観測車両 120 台" in tip and "2023年4月1日〜2023年6月30日" in tip
    m.choose("e2c-layer", "change")
    tip = m.hover_lonlat(MAP_LON + ROAD_DEG * 0.35, MAP_LAT)
    assert "38.4% → 6.1%" in tip and "\u221232.3 ポイント" in tip
    tip = m.hover_lonlat(MAP_LON, MAP_LAT + ROAD_DEG / 2)  # r3: 7 and 6 vehicles
    assert "ひっそり小路" in tip and "データ不足" in tip
    assert not re.search(r"\d+(\.\d)?\s*(%|km/h)", tip.replace("10 台未満", ""))
    m.choose("e2c-indicator", "p85")
    tip = m.hover_lonlat(MAP_LON + ROAD_DEG * 0.35, MAP_LAT)
    assert "38.4 km/h → 29.5 km/h" in tip and "\u22128.9 km/h" in tip
    assert m.page.locator('[data-e2c-ind="p85"]').inner_text() == "85パーセンタイル速度：対策前と対策後の比較"
    m.page.locator("#e2c-lang-toggle").click()
    tip = m.hover_lonlat(MAP_LON + ROAD_DEG * 0.35, MAP_LAT)
    assert "Sakura-dori" in tip and "38.4 km/h → 29.5 km/h" in tip and "85th-percentile speed" in tip
    assert m.page.locator('[data-e2c-ind="p85"]').inner_text() == "85th-percentile speed: before and after"
    m.screenshot("test_map_change_en")
    assert m.errors() == []


def _network_requests(m: Opened, page: Path) -> list[str]:
    """The requests of an opened page that are neither the page itself nor a data: URI."""
    return [u for u in m.requests if u != page.resolve().as_uri() and not u.startswith("data:")]


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_the_only_network_requests_are_map_tiles(opened, test_map, screening_map, size):
    """Published pages load no script, stylesheet, font or image from the network (folium's CDN defaults
    are replaced by the vendored files): map tiles are their only requests, whatever the reader does."""
    path = test_map[0]
    m = opened(path, SIZES[size])
    m.open_sheet(True)
    for extra in ("cut_through", "braking", "devices"):
        m.choose("e2c-extra", extra, check=True)
    m.choose("e2c-base", "osm")
    m.page.locator("#e2c-lang-toggle").click()
    m.page.emulate_media(media="print")
    m.page.wait_for_timeout(300)
    requests = _network_requests(m, path)
    assert requests and all(TILE_URL.match(u) for u in requests), [u for u in requests if not TILE_URL.match(u)]
    assert {u.split("/")[2] for u in requests} == {"cyberjapandata.gsi.go.jp", "tile.openstreetmap.org"}
    s = opened(screening_map, SIZES[size])
    s.page.evaluate("window.e2c.openCandidate(1)")
    s.page.wait_for_timeout(300)
    requests = _network_requests(s, screening_map)
    assert requests and all(TILE_URL.match(u) for u in requests), [u for u in requests if not TILE_URL.match(u)]
    assert m.errors() == [] and s.errors() == []


def test_osm_base_layer_switch(opened, test_map):
    path, _, _ = test_map
    m = opened(path)
    m.choose("e2c-base", "osm")
    m.page.wait_for_timeout(300)
    assert any(u.startswith("https://tile.openstreetmap.org/") for u in m.tile_requests)
    assert m.page.evaluate(
        "window.e2c.map.hasLayer(window.e2c.tiles.osm) && !window.e2c.map.hasLayer(window.e2c.tiles.gsi)"
    )
    assert "OpenStreetMap" in m.page.locator(".leaflet-control-attribution").inner_text()
    m.choose("e2c-base", "gsi")
    assert "地理院タイル" in m.page.locator(".leaflet-control-attribution").inner_text()
    assert m.errors() == []


def test_bundled_maps_draw_every_road(opened, bundled_map):
    key, path, district, results = bundled_map
    m = opened(path)
    banner = m.page.locator(".e2c-banner")
    assert banner.is_visible() and "合成データ" in banner.inner_text()
    suppressed = set(results.road_stats.loc[results.road_stats["n_vehicles"] < 10, "road_id"])
    assert suppressed
    for layer in ("before", "after", "change"):
        m.choose("e2c-layer", layer)
        drawn = m.drawn()
        assert m.page.locator("path.e2c-road").count() == len(drawn) == len(results.roads), layer
        for d in drawn:
            if d["road_id"] in suppressed:
                assert d["kind"] == "insufficient" and d["stroke"] == palette.INSUFFICIENT_COLOR and not d["has_value"]
            else:
                assert d["stroke"] != palette.INSUFFICIENT_COLOR, d
    assert m.page.locator(".e2c-label").count() == len(district.treated_roads) + len(district.comparison_roads)
    assert m.page.locator(".e2c-device").count() == len(district.devices) > 0
    assert m.errors() == []


def test_print_gives_one_clean_a4_page(opened, bundled_map, tmp_path):
    key, path, district, results = bundled_map
    m = opened(path)
    m.page.emulate_media(media="print")
    m.page.wait_for_timeout(300)
    hidden_in_print = (".e2c-controls", "#e2c-lang-toggle", ".leaflet-control-zoom", "#e2c-handle")
    for hidden in (*hidden_in_print, ".leaflet-control-zoom-fullscreen", ".leaflet-control-locate"):
        assert not m.page.locator(hidden).first.is_visible(), hidden
    for shown in ("#headline", ".folium-map", "#e2c-legend", ".e2c-credits"):
        assert m.page.locator(shown).first.is_visible(), shown
    pdf = m.page.pdf(format="A4", print_background=True)
    pages = len(re.findall(rb"/Type\s*/Page(?![a-z])", pdf))
    (ARTIFACTS / "browser").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "browser" / f"map_{key}_print.pdf").write_bytes(pdf)
    assert pages == 1
    m.screenshot(f"map_{key}_print", full_page=True)
    assert m.errors() == []


# --- the report --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_report_answers_on_the_first_screen_and_fits_a_phone(opened, tmp_path, size):
    district = make_map_district(tmp_path)
    results = make_map_results(tmp_path, district=district)
    path = render_report(district, results, tmp_path / "report.html")
    w, h = SIZES[size]
    m = opened(path, (w, h), wait_for_map=False)
    assert m.page.evaluate("document.documentElement.scrollWidth") <= w  # no sideways scrolling of the page
    box = m.page.locator("#headline").bounding_box()
    assert box["y"] + box["height"] <= h  # the answer is on the first screen
    assert m.page.locator("#answer svg.chart").count() == 2
    chart = m.page.locator("#answer svg.chart").first.bounding_box()
    assert chart["x"] >= 0 and chart["x"] + chart["width"] <= w
    if size == "phone":
        # a wide table scrolls inside its box; its cells do not wrap one character per line
        wrap = m.page.locator(".table-wrap").first
        assert wrap.evaluate("el => el.scrollWidth > el.clientWidth")
        heights = (
            m.page.locator(".table-wrap")
            .first.locator("td")
            .evaluate_all("tds => tds.map(td => td.getBoundingClientRect().height)")
        )
        assert max(heights) < 40
    m.screenshot(f"report_{w}x{h}")
    m.screenshot(f"report_{w}x{h}_full", full_page=True)
    assert m.errors() == []


# --- the screening map ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def screening_map(tmp_path_factory) -> Path:
    from screening_data import stored_screening

    from maps.screening_map import write_screening_map

    stored = stored_screening(tmp_path_factory.mktemp("browser_screening"))
    return write_screening_map(
        stored["wh"], "t", stored["root"] / "screening.html", area="outline", district=stored["district"]
    )


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_screening_map_draws_ranks_and_a_tap_opens_the_candidate(opened, screening_map, size):
    w, h = SIZES[size]
    m = opened(screening_map, (w, h))
    assert m.page.locator("path.e2c-candidate").count() == 4 and m.page.locator(".e2c-rank-marker").count() == 4
    assert [t.strip() for t in m.page.locator(".e2c-rank-marker span").all_inner_texts()] == ["4", "3", "2", "1"]
    marker = m.page.locator(".e2c-rank-marker").last.bounding_box()  # rank 1, drawn last (on top)
    m.tap(marker["x"] + marker["width"] / 2, marker["y"] + marker["height"] / 2)
    box = m.popup_box()
    assert "1位 道路R1" in box["text"] and "スコア" in box["text"] and "%" in box["text"], box["text"]
    assert box["l"] >= 0 and box["r"] <= w and box["t"] >= 0 and box["b"] <= h, (size, box)
    if m.phone:
        assert box["b"] <= box["sheet_top"], "the popup hides behind the bottom sheet"
    m.screenshot(f"screening_popup_{w}x{h}")
    m.page.click("#e2c-lang-toggle")
    assert m.page.evaluate("document.documentElement.lang") == "en" and m.page.title() == "Test: where to calm next"
    m.page.evaluate("window.e2c.openCandidate(2)")
    assert "No. 2 道路R2" in m.popup_box()["text"]
    assert m.errors() == []


# --- a district on a real OpenStreetMap network -------------------------------------------------------


@pytest.fixture(scope="module")
def osm_map(tmp_path_factory) -> tuple[Path, object]:
    """A district on the real OSM extract of 保土ケ谷: the treated street and two comparison streets a block
    apart (their labels would collide at the phone's scale), the outline made from the roads, fabricated
    figures for every road."""
    import shutil

    import geopandas as gpd

    from config.districts import load_district_file
    from geo.network import load_roads
    from geo.outline import outline_from_roads

    root = tmp_path_factory.mktemp("osm_map")
    osm = Path(__file__).parent / "data" / "hodogaya_osm_roads.geojson"
    shutil.copyfile(osm, root / "roads.geojson")
    roads = load_roads(osm)
    area = gpd.GeoSeries([outline_from_roads(roads.geometry.values)], crs=roads.crs).to_crs("EPSG:4326")
    (root / "area.geojson").write_text(area.to_json(), encoding="utf-8")
    (root / "hodogaya.toml").write_text(
        'name_ja = "保土ケ谷区岩崎町"\nname_en = "Iwasakicho"\nward_ja = "保土ケ谷区"\nnetwork = "roads.geojson"\n'
        'area = "area.geojson"\n[roads]\ntreated = ["125735160"]\ncomparison = ["125735195", "125735204"]\n'
        '[[periods]]\nname = "before"\nstart = 2023-05-01\nend = 2023-05-31\n'
        '[[periods]]\nname = "after"\nstart = 2023-11-01\nend = 2023-11-30\n',
        encoding="utf-8",
    )
    district = load_district_file(root / "hodogaya.toml")
    out = render_district_map(district, fabricated_results(district), root / "hodogaya.html")
    return out, district


def _label_boxes(m: Opened) -> dict:
    """The role labels' boxes (client coordinates), the map's box and the top of the bottom sheet."""
    return m.page.evaluate(
        """() => { var r = window.e2c.map.getContainer().getBoundingClientRect();
                   var sheet = document.getElementById('e2c-panel').getBoundingClientRect();
                   var boxes = [];
                   document.querySelectorAll('.e2c-label > span').forEach(function (el) {
                     var b = el.getBoundingClientRect();  // a label whose street is off screen is hidden
                     if (b.width > 0) {
                       boxes.push({ l: b.left, t: b.top, r: b.right, b: b.bottom, text: el.innerText });
                     }
                   });
                   return { labels: boxes, map: { l: r.left, t: r.top, r: r.right, b: r.bottom },
                            sheet_top: sheet.top, zoom: window.e2c.map.getZoom() }; }"""
    )


def _assert_labels_clear(m: Opened, when: str, shown: int | None = 3) -> dict:
    g = _label_boxes(m)
    assert shown is None or len(g["labels"]) == shown, (when, g["labels"])
    bottom = min(g["map"]["b"], g["sheet_top"]) if m.phone else g["map"]["b"]
    for box in g["labels"]:
        inside = box["l"] >= g["map"]["l"] and box["r"] <= g["map"]["r"] and box["t"] >= g["map"]["t"]
        assert inside and box["b"] <= bottom, f"{when}: label {box['text']} clipped: {box} in {g['map']}"
    for i, a in enumerate(g["labels"]):
        for b in g["labels"][i + 1 :]:
            apart = a["r"] <= b["l"] or b["r"] <= a["l"] or a["b"] <= b["t"] or b["b"] <= a["t"]
            assert apart, f"{when}: labels {a['text']} and {b['text']} overlap: {a} {b}"
    return g


@pytest.mark.parametrize("size", list(SIZES))
def test_labels_of_the_treated_and_comparison_streets_never_overlap_or_clip(opened, osm_map, size):
    """At every size, and on a phone with the bottom sheet open, in English and after zooming: each label
    whole inside the map (above the sheet), no two overlapping. The sheet keeps the district's scale."""
    path, _ = osm_map
    m = opened(path, SIZES[size])
    assert m.errors() == []
    closed = _assert_labels_clear(m, "default view")
    m.assert_treated_street_clear("default view")
    m.screenshot(f"osm_map_{SIZES[size][0]}x{SIZES[size][1]}")
    if m.phone:
        m.open_sheet(True)
        opened_sheet = _assert_labels_clear(m, "bottom sheet open")
        assert opened_sheet["zoom"] >= closed["zoom"], "opening the sheet zoomed the district out"
        m.assert_treated_street_clear("bottom sheet open")
        m.screenshot("osm_map_phone_sheet")
        m.open_sheet(False)
    m.page.locator("#e2c-lang-toggle").click()
    m.page.wait_for_timeout(150)
    _assert_labels_clear(m, "English")
    for step in (1, -2):
        m.page.evaluate(f"window.e2c.map.setZoom(window.e2c.map.getZoom() + {step}, {{ animate: false }})")
        m.page.wait_for_timeout(200)
        _assert_labels_clear(m, f"zoom {step:+d}", shown=None)
    assert m.errors() == []
