"""Road network loading: id columns, speed limits, CRS, formats (GeoJSON, GeoPackage, OSM XML)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from config.settings import METRIC_CRS
from geo.network import build_links, load_roads, segment_arrays

DATA = Path(__file__).parent / "data"


def _fc(features):
    return {"type": "FeatureCollection", "features": features}


def _feat(props, coords=((139.62, 35.52), (139.63, 35.52))):
    return {"type": "Feature", "properties": props, "geometry": {"type": "LineString", "coordinates": coords}}


def test_real_osm_extract_loads_projected_with_limits():
    roads = load_roads(DATA / "hodogaya_osm_roads.geojson", exclude_highway=None)
    assert roads.crs == METRIC_CRS and len(roads) == 272
    assert roads["road_id"].map(type).eq(str).all() and roads["road_id"].is_unique
    residential = roads["highway"].isin(["residential", "unclassified", "living_street"])
    assert (roads.loc[residential, "limit_kmh"] == 30).all()
    # EPSG:6677 coordinates of 保土ケ谷 lie some tens of km south-west of the zone origin.
    minx, miny, maxx, maxy = roads.total_bounds
    assert -40_000 < minx < maxx < 0 and -80_000 < miny < maxy < -40_000


def test_service_roads_are_excluded_by_default():
    """Parking aisles and driveways (highway=service) would get the legal 60 km/h and clutter every table."""
    everything = load_roads(DATA / "hodogaya_osm_roads.geojson", exclude_highway=None)
    roads = load_roads(DATA / "hodogaya_osm_roads.geojson")
    assert (everything["highway"] == "service").sum() == 165
    assert len(roads) == 272 - 165 and not (roads["highway"] == "service").any()
    assert len(load_roads(DATA / "hodogaya_osm_roads.geojson", exclude_highway=("service", "track"))) == 272 - 166


def test_network_of_only_excluded_roads_is_a_clear_error(tmp_path):
    p = tmp_path / "r.geojson"
    p.write_text(json.dumps(_fc([_feat({"id": 1, "highway": "service"})])))
    with pytest.raises(ValueError, match="excluded highway class"):
        load_roads(p)


def test_id_fallbacks_and_maxspeed(tmp_path):
    p = tmp_path / "r.geojson"
    p.write_text(
        json.dumps(
            _fc(
                [
                    _feat({"id": 7, "highway": "residential"}),
                    _feat({"id": 8, "highway": "tertiary", "maxspeed": "40"}),
                    _feat({"id": 9, "highway": "secondary", "maxspeed": "JP:zone30"}),
                    _feat({"id": 10, "highway": "living_street", "maxspeed": "20 km/h"}),
                ]
            )
        )
    )
    roads = load_roads(p)
    assert roads["road_id"].tolist() == ["7", "8", "9", "10"]
    assert roads["limit_kmh"].tolist() == [30, 40, 60, 20]
    # 1 km of longitude at 35.52° N is ~906 m.
    assert roads.geometry.length.iloc[0] == pytest.approx(906, rel=0.01)


def test_geopackage(tmp_path):
    gdf = gpd.GeoDataFrame(
        {"road_id": ["a", "b"], "highway": ["residential", "primary"]},
        geometry=[shapely.LineString([(139.62, 35.52), (139.621, 35.52)])] * 2,
        crs="EPSG:4326",
    )
    gdf.to_file(tmp_path / "r.gpkg")
    roads = load_roads(tmp_path / "r.gpkg")
    assert roads["road_id"].tolist() == ["a", "b"] and roads["limit_kmh"].tolist() == [30, 60]


OSM_XML = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
  <node id="1" lat="35.5200" lon="139.6200" version="1"/>
  <node id="2" lat="35.5200" lon="139.6210" version="1"/>
  <node id="3" lat="35.5210" lon="139.6210" version="1"/>
  <way id="101" version="1"><nd ref="1"/><nd ref="2"/>
    <tag k="highway" v="residential"/><tag k="name" v="テスト通り"/></way>
  <way id="102" version="1"><nd ref="2"/><nd ref="3"/>
    <tag k="highway" v="secondary"/><tag k="maxspeed" v="40"/></way>
  <way id="103" version="1"><nd ref="1"/><nd ref="3"/><tag k="building" v="yes"/></way>
</osm>
"""


def test_osm_xml_through_pyogrio(tmp_path):
    p = tmp_path / "r.osm"
    p.write_text(OSM_XML, encoding="utf-8")
    roads = load_roads(p)
    assert sorted(roads["road_id"]) == ["101", "102"]
    by_id = roads.set_index("road_id")
    assert by_id.loc["101", "limit_kmh"] == 30 and by_id.loc["102", "limit_kmh"] == 40
    assert by_id.loc["101", "name"] == "テスト通り"


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_roads(tmp_path / "none.geojson")
    p = tmp_path / "noid.geojson"
    p.write_text(json.dumps(_fc([_feat({"name": "x"})])))
    with pytest.raises(ValueError, match="no id column"):
        load_roads(p)
    p.write_text(json.dumps(_fc([_feat({"road_id": "x"}), _feat({"road_id": "x"})])))
    with pytest.raises(ValueError, match="duplicate road id 'x'"):
        load_roads(p)


def test_segment_arrays_multilinestring():
    g = shapely.from_wkt(["MULTILINESTRING ((0 0, 1 0, 2 0), (5 5, 6 6))", "LINESTRING (0 1, 0 2)"])
    x0, y0, x1, y1, idx = segment_arrays(g)
    assert idx.tolist() == [0, 0, 0, 1]
    assert x1.tolist() == [1, 2, 6, 0]


def test_build_links_and_pitches():
    g = shapely.from_wkt(
        [
            "LINESTRING (0 0, 10 0, 20 0, 30 0)",
            "LINESTRING (10 -5, 10 0, 10 5)",
            "MULTILINESTRING ((100 0, 110 0), (110 0, 120 0))",
        ]
    )
    L = build_links(g, pitch_m=4)
    assert L.seg_link.tolist() == [0, 1, 1, 2, 3, 4, 5]
    assert L.link_road.tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_allclose(L.link_length_m, [10, 20, 5, 5, 10, 10])
    assert np.diff(L.link_first_piece).tolist() == [3, 5, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="pitch_m"):
        build_links(g, pitch_m=0)
