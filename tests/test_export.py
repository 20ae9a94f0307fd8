"""`etc2calm export`: road geometries with every stored figure per period and the change, as GeoPackage
(pyogrio) or GeoParquet, with documented layers and columns, suppressed as on the map."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import geopandas as gpd
import pyarrow.parquet as pq
import pyogrio
import pytest

from conftest import ETC2CALM, make_delivery
from maps.export import CHANGE_FIGURES, LAYERS, PERIOD_COLUMNS, ROAD_COLUMNS, column_prefix, docs_markdown

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    return subprocess.run([ETC2CALM, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """A warehouse with the hand-made delivery analysed on the tiny network (`analyze --roads`), and the CSV."""
    from conftest import offset

    root = tmp_path_factory.mktemp("export")
    w, e, wn, en = offset(-200, 0), offset(200, 0), offset(-200, 100), offset(200, 100)
    roads = root / "tiny_roads.geojson"
    roads.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {
                            "road_id": "R1",
                            "name": "生活道路",
                            "name_en": "Home street",
                            "highway": "residential",
                        },
                        "geometry": {"type": "LineString", "coordinates": [list(w), list(e)]},
                    },
                    {
                        "type": "Feature",
                        "properties": {"road_id": "A1", "name": "幹線", "highway": "secondary", "maxspeed": "50"},
                        "geometry": {"type": "LineString", "coordinates": [list(wn), list(en)]},
                    },
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    make_delivery(root / "delivery")
    assert run("ingest", "--warehouse", root / "wh", root / "delivery").returncode == 0
    proc = run(
        "analyze",
        "--warehouse",
        root / "wh",
        "--roads",
        roads,
        "--before",
        "2017-09-01..2017-09-30",
        "--after",
        "2017-11-01..2017-11-30",
        "--out",
        root / "stats.csv",
    )
    assert proc.returncode == 0, proc.stderr
    stored = {(r["road_id"], r["period"]): r for r in csv.DictReader((root / "stats.csv").open(encoding="utf-8"))}
    return root, roads, stored


def test_geopackage_layers_columns_and_figures(analysed, tmp_path):
    root, roads, stored = analysed
    out = tmp_path / "gis" / "roads.gpkg"
    proc = run("export", "--warehouse", root / "wh", "--roads", roads, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "GeoPackage" in proc.stdout and "change before → after" in proc.stdout
    layers = {name: geom for name, geom in pyogrio.list_layers(out)}
    assert layers == {"roads": "LineString", "road_periods": "LineString"}
    info = pyogrio.read_info(out, layer="roads")
    assert info["crs"] == "EPSG:6677" and info["layer_metadata"]["DESCRIPTION"] == LAYERS["roads"]
    wide = gpd.read_file(out, layer="roads")
    expected = [
        *ROAD_COLUMNS,
        *(f"{p}_{c}" for p in ("before", "after") for c in PERIOD_COLUMNS),
        *(f"change_{c}" for c in CHANGE_FIGURES),
    ]
    assert sorted(wide.columns.drop("geometry")) == sorted(expected)  # exactly the documented columns
    r1 = wide.set_index("road_id").loc["R1"]
    assert r1["name_en"] == "Home street" and r1["limit_kmh"] == 30
    for period in ("before", "after"):
        row = stored[("R1", period)]
        assert r1[f"{period}_public"] == "ok" and r1[f"{period}_period_start"] == row["period_start"]
        assert int(r1[f"{period}_n_vehicles"]) == int(row["n_vehicles"])
        for col in ("mean_kmh", "p85_kmh", "share_at_or_over_limit", "passage_share_at_or_over_limit"):
            assert r1[f"{period}_{col}"] == pytest.approx(float(row[col]), rel=1e-12)  # full precision, as stored
    assert r1["change_mean_kmh"] == pytest.approx(
        float(stored[("R1", "after")]["mean_kmh"]) - float(stored[("R1", "before")]["mean_kmh"])
    )
    long = gpd.read_file(out, layer="road_periods")
    assert len(long) == 4 and set(long["period"]) == {"before", "after"}
    assert sorted(long.columns.drop(["geometry", "period"])) == sorted([*ROAD_COLUMNS, *PERIOD_COLUMNS])


def test_geoparquet_is_valid_geoparquet(analysed, tmp_path):
    root, roads, stored = analysed
    out = tmp_path / "roads.parquet"
    proc = run("export", "--warehouse", root / "wh", "--roads", roads, "--out", out)
    assert proc.returncode == 0, proc.stderr
    meta = json.loads(pq.read_schema(out).metadata[b"geo"])
    assert meta["version"] == "1.0.0" and meta["primary_column"] == "geometry"
    assert meta["columns"]["geometry"]["encoding"] == "WKB"
    assert meta["columns"]["geometry"]["crs"]["id"] == {"authority": "EPSG", "code": 6677}
    df = gpd.read_parquet(out)
    assert set(df["road_id"]) == {"R1", "A1"} and "change_p85_kmh" in df.columns
    assert df.set_index("road_id").loc["A1", "before_mean_kmh"] == pytest.approx(
        float(stored[("A1", "before")]["mean_kmh"])
    )


@pytest.mark.slow
def test_export_mistakes_are_one_line(analysed, tmp_path):
    root, roads, _ = analysed
    for args, needle in (
        (["--roads", roads, "--out", tmp_path / "x.shp"], ".gpkg"),
        (["--roads", roads, "--out", tmp_path], "is a folder"),
        (
            ["--roads", ROOT / "tests" / "data" / "hodogaya_osm_roads.geojson", "--out", tmp_path / "h.gpkg"],
            "no stored figures",
        ),
    ):
        proc = run("export", "--warehouse", root / "wh", *args)
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        assert proc.returncode != 0 and len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr, (
            proc.stderr
        )


def test_column_prefixes():
    assert (
        column_prefix("before") == "before"
        and column_prefix("Trial 2") == "trial_2"
        and column_prefix("2019-04") == "p_2019_04"
    )


def test_export_docs_are_generated_from_the_code():
    assert (ROOT / "docs" / "export.md").read_text(encoding="utf-8") == docs_markdown(), (
        "docs/export.md is stale: run `python -m maps.export`"
    )
