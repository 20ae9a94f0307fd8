"""The maps as folium objects: `build_district_map` / `build_screening_map` return folium.Map
objects built from the stored results, `m.save()` writes the page `etc2calm map` publishes, and the
notebook example of docs/maps.md runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import folium
import pytest

from conftest import cli, map_features, normalised

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[1] / "docs" / "maps.md"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """okurayama's synthetic delivery (15 %) ingested, analysed, compared and screened."""
    from config.districts import load_district
    from etl.synthetic import generate_delivery

    root = tmp_path_factory.mktemp("folium_api")
    wh = root / "wh"
    generate_delivery(root / "d", districts=[load_district("okurayama")], scale=0.15)
    for args in (
        ("ingest", "--warehouse", wh, root / "d"),
        ("analyze", "--warehouse", wh, "--district", "okurayama", "--out", root / "a.csv"),
        ("compare", "--warehouse", wh, "--district", "okurayama", "--resamples", "50", "--out", root / "c.csv"),
        ("screen", "--warehouse", wh, "--district", "okurayama", "--resamples", "30"),  # its screening period
    ):
        proc = cli(*args)
        assert proc.returncode == 0, (args, proc.stderr)
    return wh


def test_build_district_map_returns_a_folium_map_that_saves_the_published_page(warehouse, tmp_path):
    from maps import build_district_map

    m = build_district_map(warehouse, "okurayama")
    assert isinstance(m, folium.Map)
    roads = m._children["roads:passage_share:change"]
    assert isinstance(roads, folium.FeatureGroup)
    layers = [c for c in roads._children.values() if isinstance(c, folium.GeoJson)]
    (geojson,) = [c for c in layers if "tip" in c.data["features"][0]["properties"]]  # the roads over their casing
    assert {f["properties"]["road_id"] for f in geojson.data["features"]} >= {"T1"}
    assert isinstance(m._children["tiles:gsi"], folium.TileLayer) and "cyberjapandata" in m._children["tiles:gsi"].tiles
    saved = tmp_path / "saved.html"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a published map needs no network: no warning
        m.save(saved)
    published = tmp_path / "published.html"
    proc = cli("map", "--warehouse", warehouse, "--district", "okurayama", "--out", published)
    assert proc.returncode == 0, proc.stderr
    a, b = saved.read_text(encoding="utf-8"), published.read_text(encoding="utf-8")
    assert a != b  # folium's ids differ ...
    assert normalised(a) == normalised(b)  # ... and nothing else


def test_build_district_map_options(warehouse):
    from maps import build_district_map

    m = build_district_map(warehouse, "okurayama", lang="en", indicator="p85", period="before")
    page = m.get_root().render()
    assert '<html lang="en">' in page and 'name="e2c-indicator" value="p85" checked' in page
    assert 'name="e2c-layer" value="before" checked' in page
    assert m._children["roads:p85:before"].show and not m._children["roads:p85:change"].show
    with pytest.raises(ValueError, match="period"):
        build_district_map(warehouse, "okurayama", period="trial")
    with pytest.raises(ValueError, match="unknown language"):
        build_district_map(warehouse, "okurayama", lang="fr")


def test_build_screening_map_is_the_published_screening(warehouse, tmp_path):
    from maps import build_screening_map
    from maps.publish import write_district_screening_map

    s = build_screening_map(warehouse, "okurayama", lang="en")
    assert isinstance(s, folium.Map)
    assert any(k.startswith("candidate:") for k in s._children)
    s.save(tmp_path / "s.html")
    from config.districts import load_district

    published = write_district_screening_map(warehouse, load_district("okurayama"), tmp_path / "p.html", lang="en")
    a = (tmp_path / "s.html").read_text(encoding="utf-8")
    assert normalised(a) == normalised(Path(published["screening"]).read_text(encoding="utf-8"))


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    (example,) = [b for b in blocks if ".explore(" in b]
    return example


def test_the_documented_notebook_example_runs(warehouse, tmp_path):
    """docs/maps.md's example, exactly as written, in a fresh interpreter."""
    example = _example()
    assert "explore(\n    m=m" in example or "explore(m=m" in example.replace("\n    ", "")
    proc = subprocess.run(
        [sys.executable, "-c", example],
        cwd=tmp_path,
        env={**__import__("os").environ, "ETC2CALM_WAREHOUSE": str(warehouse)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "okurayama_measured.html").read_text(encoding="utf-8")
    explored = [f for f in map_features(page) if (f.get("properties") or {}).get("highway") == "residential"]
    assert explored and all(f["properties"]["road_id"] for f in explored)  # the explore layer's roads
    assert '"highway"' in page  # with their OSM class in the tooltip
    assert "L.Control.Measure" in page and "leaflet-measure" in page  # the plugin, inlined
    assert "E2CDistrict.start(" in page and 'id="headline"' in page  # still the district map
    from maps.page import external_assets

    assert external_assets(page) == []
