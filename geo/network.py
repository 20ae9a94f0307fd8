"""Road networks: loading GeoJSON, GeoPackage or OSM files into one projected, typed GeoDataFrame."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

# JGD2011 / Japan Plane Rectangular CS IX: metres, covers Kanagawa and Tokyo.
METRIC_CRS = "EPSG:6677"

# Speed limit (km/h) by OSM highway class when the road carries no maxspeed. Residential
# classes are the 生活道路 that zone-30 policy targets; elsewhere the legal default of 60 km/h
# on general roads (道路交通法施行令 第11条) applies.
LIMIT_BY_HIGHWAY_KMH = {
    "residential": 30,
    "unclassified": 30,
    "living_street": 30,
}
LEGAL_DEFAULT_LIMIT_KMH = 60

ID_COLUMNS = ("road_id", "osm_id", "id")


def _parse_maxspeed(values: pd.Series) -> pd.Series:
    """'30', '30 km/h', 30.0 → 30.0 km/h; anything else (e.g. 'JP:zone30', 'signals') → NaN."""
    text = values.astype("string").str.strip()
    num = text.str.extract(r"^(\d+(?:\.\d+)?)\s*(?:km/h|kmh)?$", expand=False)
    mph = text.str.extract(r"^(\d+(?:\.\d+)?)\s*mph$", expand=False)
    out = pd.to_numeric(num, errors="coerce")
    return out.fillna(pd.to_numeric(mph, errors="coerce") * 1.609344)


def _read(path: Path) -> gpd.GeoDataFrame:
    suffix = path.suffix.lower()
    if suffix in (".osm", ".pbf"):
        gdf = gpd.read_file(path, layer="lines", engine="pyogrio")
        if "other_tags" in gdf and "maxspeed" not in gdf:
            gdf["maxspeed"] = gdf["other_tags"].astype("string").str.extract(r'"maxspeed"=>"([^"]*)"', expand=False)
        if "highway" in gdf:
            gdf = gdf[gdf["highway"].notna()]
        return gdf
    return gpd.read_file(path, engine="pyogrio")


def _text_column(gdf: gpd.GeoDataFrame, name: str) -> np.ndarray:
    if name not in gdf:
        return np.full(len(gdf), "", dtype=object)
    return gdf[name].astype("string").fillna("").to_numpy(dtype=object)


def load_roads(path: str | Path) -> gpd.GeoDataFrame:
    """Read a road network and return it in metres (EPSG:6677).

    Columns of the result: road_id (str: the input feature's id as text, from `road_id`,
    else `osm_id`, else `id`), name, highway, limit_kmh (float, km/h: `maxspeed`, else by
    highway class), role ('treated' | 'comparison' | other text, '' when absent), geometry
    (LineString or MultiLineString, projected coordinates in metres).
    Raises FileNotFoundError or ValueError with a one-line reason.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"road network file not found: {path}")
    try:
        gdf = _read(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise ValueError(f"cannot read road network {path}: {exc}") from None
    if gdf.empty:
        raise ValueError(f"road network {path} has no features")
    id_col = next((c for c in ID_COLUMNS if c in gdf.columns), None)
    if id_col is None:
        raise ValueError(f"road network {path} has no id column (expected one of {', '.join(ID_COLUMNS)})")
    gdf = gdf[gdf.geometry.notna() & gdf.geom_type.isin(["LineString", "MultiLineString"])].copy()
    if gdf.empty:
        raise ValueError(f"road network {path} has no LineString features")
    if gdf.crs is None:
        gdf = gdf.set_crs("EPSG:4326")
    ids = gdf[id_col]
    if pd.api.types.is_float_dtype(ids) and (ids.dropna() % 1 == 0).all():
        ids = ids.astype("Int64")
    road_id = ids.astype("string")
    if road_id.isna().any():
        raise ValueError(f"road network {path}: {int(road_id.isna().sum())} features without {id_col}")
    if road_id.duplicated().any():
        dup = road_id[road_id.duplicated()].iloc[0]
        raise ValueError(f"road network {path}: duplicate road id {dup!r}")
    highway = gdf["highway"].astype("string") if "highway" in gdf else pd.Series(pd.NA, index=gdf.index, dtype="string")
    limit = _parse_maxspeed(gdf["maxspeed"]) if "maxspeed" in gdf else pd.Series(np.nan, index=gdf.index)
    by_class = highway.map(LIMIT_BY_HIGHWAY_KMH).astype("Float64").fillna(LEGAL_DEFAULT_LIMIT_KMH)
    limit = limit.astype("Float64").fillna(by_class).astype(float)
    out = gpd.GeoDataFrame(
        {
            "road_id": road_id.astype(str).to_numpy(),
            "name": _text_column(gdf, "name"),
            "highway": highway.fillna("").to_numpy(),
            "limit_kmh": limit.to_numpy(),
            "role": _text_column(gdf, "role"),
        },
        geometry=gdf.geometry.to_crs(METRIC_CRS).to_numpy(),
        crs=METRIC_CRS,
    )
    return out.reset_index(drop=True)


def segment_arrays(geometries) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Straight segments of (Multi)LineStrings: (x0, y0, x1, y1, feature index), vectorised.

    Coordinates as given (metres when the input is projected).
    """
    geoms = np.asarray(geometries, dtype=object)
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    coords, vertex_of = shapely.get_coordinates(parts, return_index=True)
    same = vertex_of[1:] == vertex_of[:-1]  # consecutive vertices of the same part form a segment
    start = np.flatnonzero(same)
    x0, y0 = coords[start, 0], coords[start, 1]
    x1, y1 = coords[start + 1, 0], coords[start + 1, 1]
    return x0, y0, x1, y1, part_of[vertex_of[start]]
