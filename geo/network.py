"""Road networks: loading GeoJSON, GeoPackage or OSM files into one projected, typed GeoDataFrame."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from config.settings import (
    ARTERIAL_HIGHWAY_CLASSES,
    EXCLUDED_HIGHWAY_CLASSES,
    LEGAL_DEFAULT_LIMIT_KMH,
    LIMIT_BY_HIGHWAY_KMH,
    LONLAT_CRS,
    METRIC_CRS,
    RESIDENTIAL_MAX_LIMIT_KMH,
    ROAD_ID_COLUMNS,
    SERVICE_HIGHWAY_CLASSES,
)

ID_COLUMNS = ROAD_ID_COLUMNS


def _parse_maxspeed(values: pd.Series) -> pd.Series:
    """'30', '30 km/h', 30.0 → 30.0 km/h; anything else (e.g. 'JP:zone30', 'signals') → NaN."""
    text = values.astype("string").str.strip()
    num = text.str.extract(r"^(\d+(?:\.\d+)?)\s*(?:km/h|kmh)?$", expand=False)
    mph = text.str.extract(r"^(\d+(?:\.\d+)?)\s*mph$", expand=False)
    out = pd.to_numeric(num, errors="coerce")
    return out.fillna(pd.to_numeric(mph, errors="coerce") * 1.609344)


def _parse_oneway(values: pd.Series) -> np.ndarray:
    """OSM `oneway`: yes/true/1 → 1 (digitised direction), -1/reverse → -1, anything else → 0 (two-way)."""
    text = values.astype("string").str.strip().str.lower().fillna("")
    out = np.zeros(len(values), dtype=np.int8)
    out[text.isin(["yes", "true", "1"]).to_numpy()] = 1
    out[text.isin(["-1", "reverse"]).to_numpy()] = -1
    return out


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


def load_roads(
    path: str | Path, exclude_highway: tuple[str, ...] | None = EXCLUDED_HIGHWAY_CLASSES
) -> gpd.GeoDataFrame:
    """Read a road network and return it in metres (EPSG:6677).

    exclude_highway: OSM highway classes left out (default: ``service`` — parking aisles and
    driveways, which are not streets); None or () keeps every feature.

    Columns of the result: road_id (str: the input feature's id as text, from `road_id`,
    else `osm_id`, else `id`), name, name_en (English name, '' when absent), highway, limit_kmh
    (float, km/h: `maxspeed`, else by highway class), role ('treated' | 'comparison' | other text, '' when
    absent; 'arterial' for a way of config.settings.ARTERIAL_HIGHWAY_CLASSES whose file gives none),
    oneway (int8: 0 two-way, 1 one-way in the digitised direction, -1 one-way against it), geometry
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
    if exclude_highway and "highway" in gdf:
        gdf = gdf[~gdf["highway"].astype("string").isin(list(exclude_highway)).fillna(False).to_numpy()]
        if gdf.empty:
            raise ValueError(
                f"road network {path}: every feature is of an excluded highway class ({', '.join(exclude_highway)})"
            )
    if gdf.crs is None:
        gdf = gdf.set_crs(LONLAT_CRS)
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
    oneway = _parse_oneway(gdf["oneway"]) if "oneway" in gdf else np.zeros(len(gdf), dtype=np.int8)
    role = _text_column(gdf, "role")
    arterial = highway.isin(list(ARTERIAL_HIGHWAY_CLASSES)).fillna(False).to_numpy(dtype=bool)
    role = np.where((role == "") & arterial, "arterial", role).astype(object)
    out = gpd.GeoDataFrame(
        {
            "road_id": road_id.astype(str).to_numpy(),
            "name": _text_column(gdf, "name"),
            "name_en": _text_column(gdf, "name_en"),
            "highway": highway.fillna("").to_numpy(),
            "limit_kmh": limit.to_numpy(),
            "role": role,
            "oneway": oneway,
        },
        geometry=gdf.geometry.to_crs(METRIC_CRS).to_numpy(),
        crs=METRIC_CRS,
    )
    return out.reset_index(drop=True)


def with_road_names(roads: gpd.GeoDataFrame, names: dict[str, tuple[str, str]]) -> gpd.GeoDataFrame:
    """`roads` with the names a district file gives ([roads.names]: road id → (Japanese, English)) over
    the network file's; an English name left empty keeps the file's."""
    if not names:
        return roads
    roads = roads.copy()
    ids = roads["road_id"].astype(str)
    ja = ids.map(lambda r: names[r][0] if r in names and names[r][0] else None)
    en = ids.map(lambda r: names[r][1] if r in names and names[r][1] else None)
    roads["name"] = ja.where(ja.notna(), roads["name"]).to_numpy(dtype=object)
    roads["name_en"] = en.where(en.notna(), roads["name_en"]).to_numpy(dtype=object)
    return roads


def road_classes(highway, limit_kmh, role=None) -> np.ndarray:
    """The class of each road for drawing and wording: 'arterial' (role arterial, or a class of
    ARTERIAL_HIGHWAY_CLASSES), 'service' (SERVICE_HIGHWAY_CLASSES), 'residential' (a limit at or
    below RESIDENTIAL_MAX_LIMIT_KMH: a 生活道路) or 'other'. Arrays of equal length."""
    hw = pd.Series(np.asarray(highway, dtype=object)).fillna("").astype(str).to_numpy()
    limit = np.asarray(limit_kmh, dtype=float)
    out = np.full(len(hw), "other", dtype=object)
    out[limit <= RESIDENTIAL_MAX_LIMIT_KMH] = "residential"
    out[np.isin(hw, SERVICE_HIGHWAY_CLASSES)] = "service"
    arterial = np.isin(hw, ARTERIAL_HIGHWAY_CLASSES)
    if role is not None:
        arterial |= np.asarray(role, dtype=object) == "arterial"
    out[arterial] = "arterial"
    return out


def unnamed_numbers(names, classes) -> np.ndarray:
    """A short number for each unnamed road within its class (1, 2, … in the order of the roads; 0 for a
    named road): an unnamed way reads 「生活道路 #3（名称なし）」 on every output (maps.wording.road_label)."""
    named = pd.Series(np.asarray(names, dtype=object)).fillna("").astype(str).str.strip().to_numpy() != ""
    cls = pd.Series(np.asarray(classes, dtype=object))
    numbers = cls.where(~named).groupby(cls.where(~named)).cumcount() + 1
    return np.where(named, 0, numbers.reindex(cls.index).fillna(0).to_numpy()).astype(np.int64)


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


@dataclass(frozen=True)
class LinkNetwork:
    """Roads split into links at intersections (vertices shared with another road or part).

    Straight segments (x0, y0, x1, y1) keep the order of `segment_arrays`, so segment ids,
    link ids and road indices all increase together. A link is a run of consecutive segments of
    one road part between two split vertices; `seg_start_m` is the distance along the link at
    the start of each segment. With `pitch_m`, every link is further cut into pieces of
    `pitch_m` metres (the last one shorter): piece ids number the pieces of link 0 first, then
    link 1 and so on; without it a piece is a link.
    """

    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    seg_link: np.ndarray  # int32, link of each segment
    seg_start_m: np.ndarray  # float64, distance along the link where the segment starts
    link_road: np.ndarray  # int32, road (feature) index of each link
    link_length_m: np.ndarray  # float64
    link_oneway: np.ndarray  # int8: 0 two-way, 1 digitised direction only, -1 reverse only
    link_first_piece: np.ndarray  # int32, id of the link's first piece (length n_links + 1)
    pitch_m: float | None

    @property
    def n_links(self) -> int:
        return len(self.link_road)

    @property
    def n_pieces(self) -> int:
        return int(self.link_first_piece[-1])

    @property
    def piece_link(self) -> np.ndarray:
        counts = np.diff(self.link_first_piece)
        return np.repeat(np.arange(self.n_links, dtype=np.int32), counts)

    @property
    def piece_road(self) -> np.ndarray:
        return self.link_road[self.piece_link]

    @property
    def link_offset_m(self) -> np.ndarray:
        """Distance along its road (metres, parts of a MultiLineString in order) where each link starts."""
        before = np.cumsum(self.link_length_m) - self.link_length_m
        first_of_road = np.r_[True, self.link_road[1:] != self.link_road[:-1]]
        road_start = np.maximum.accumulate(np.where(first_of_road, np.arange(self.n_links), 0))
        return before - before[road_start]


def build_links(geometries, oneway=None, pitch_m: float | None = None) -> LinkNetwork:
    """Split (Multi)LineStrings (metres) into links at intersections, vectorised; see LinkNetwork.

    A vertex splits a road when its exact coordinates occur more than once in the network
    (shared with another road, another part, or the same road crossing itself) — the OSM
    convention of roads joined at common nodes. Zero-length segments are dropped.
    """
    geoms = np.asarray(geometries, dtype=object)
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    coords, vertex_of = shapely.get_coordinates(parts, return_index=True)
    same = vertex_of[1:] == vertex_of[:-1]
    start = np.flatnonzero(same)
    x0, y0 = coords[start, 0], coords[start, 1]
    x1, y1 = coords[start + 1, 0], coords[start + 1, 1]
    keep = (x0 != x1) | (y0 != y1)
    start, x0, y0, x1, y1 = start[keep], x0[keep], y0[keep], x1[keep], y1[keep]
    seg_part = vertex_of[start]
    seg_road = part_of[seg_part]
    # How often each vertex coordinate occurs in the whole network.
    _, inverse, counts = np.unique(coords, axis=0, return_inverse=True, return_counts=True)
    shared = counts[inverse.ravel()] > 1
    # A new link starts at a segment whose start vertex is shared, or at the first segment of a part.
    new_link = np.ones(len(start), dtype=bool)
    new_link[1:] = (seg_part[1:] != seg_part[:-1]) | shared[start[1:]]
    seg_link = (np.cumsum(new_link) - 1).astype(np.int32)
    n_links = int(seg_link[-1]) + 1 if len(seg_link) else 0
    seg_len = np.hypot(x1 - x0, y1 - y0)
    link_length = np.bincount(seg_link, weights=seg_len, minlength=n_links)
    csum = np.cumsum(seg_len) - seg_len  # length before each segment, network-wide
    link_first_seg = np.flatnonzero(new_link)
    seg_start_m = csum - csum[link_first_seg][seg_link]
    link_road = seg_road[link_first_seg].astype(np.int32)
    ow = np.zeros(len(geoms), dtype=np.int8) if oneway is None else np.asarray(oneway, dtype=np.int8)
    link_oneway = ow[link_road]
    if pitch_m is not None:
        if pitch_m <= 0:
            raise ValueError(f"pitch_m must be positive, got {pitch_m}")
        n_pieces = np.maximum(np.ceil(link_length / pitch_m - 1e-9), 1).astype(np.int64)
    else:
        n_pieces = np.ones(n_links, dtype=np.int64)
    link_first_piece = np.concatenate([[0], np.cumsum(n_pieces)]).astype(np.int32)
    return LinkNetwork(
        x0,
        y0,
        x1,
        y1,
        seg_link,
        seg_start_m,
        link_road,
        link_length,
        link_oneway,
        link_first_piece,
        None if pitch_m is None else float(pitch_m),
    )


def load_area(path: str | Path):
    """An area outline (GeoJSON / GeoPackage polygons) as one shapely geometry in metres (EPSG:6677)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"area file not found: {path}")
    gdf = gpd.read_file(path, engine="pyogrio")
    if gdf.empty or not gdf.geom_type.isin(["Polygon", "MultiPolygon"]).any():
        raise ValueError(f"area file {path} has no polygon")
    if gdf.crs is None:
        gdf = gdf.set_crs(LONLAT_CRS)
    return gdf[gdf.geom_type.isin(["Polygon", "MultiPolygon"])].to_crs(METRIC_CRS).geometry.union_all()
