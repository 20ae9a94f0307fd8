"""Road networks prepared for matching: roads with their roles, a grid index and the fingerprint
that keys their stored matches (metres, projected coordinates EPSG:6677)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from config.settings import (
    DEFAULT_RADIUS_M,
    EXCLUDED_HIGHWAY_CLASSES,
    HEADING_TOLERANCE_DEG,
    MAX_HEADING_GAP_S,
    MIN_HEADING_STEP_M,
    TRIP_CONTEXT_MARGIN_M,
)
from etl.schema import MATCH_VERSION
from geo.matching import SegmentGridIndex, build_segment_index
from geo.network import load_roads, with_road_names


@dataclass(frozen=True)
class Network:
    """A road network prepared for matching: roads (metres, EPSG:6677, roles set), its grid index,
    the radius (metres) and the fingerprint that keys its stored matches."""

    key: str  # district key, or 'roads:<file stem>' for an ad-hoc network
    roads: gpd.GeoDataFrame
    index: SegmentGridIndex
    radius_m: float
    fingerprint: str
    source_path: Path

    @cached_property
    def bounds(self) -> tuple[float, float, float, float]:
        """The roads' bounding box grown by TRIP_CONTEXT_MARGIN_M (metres, EPSG:6677): points kept with their trip."""
        minx, miny, maxx, maxy = self.roads.total_bounds
        m = max(TRIP_CONTEXT_MARGIN_M, self.radius_m)
        return (minx - m, miny - m, maxx + m, maxy + m)

    @property
    def road_ids(self) -> np.ndarray:
        return self.roads["road_id"].to_numpy(dtype=object)

    @property
    def limits_kmh(self) -> np.ndarray:
        return self.roads["limit_kmh"].to_numpy(dtype=float)

    @property
    def piece_road(self) -> np.ndarray:
        return self.index.links.piece_road.astype(np.int64)


def assign_roles(roads: gpd.GeoDataFrame, treated: tuple[str, ...], comparison: tuple[str, ...]) -> gpd.GeoDataFrame:
    """Mark the given road ids as treated / comparison (other roles kept unless they claim either)."""
    roads = roads.copy()
    known = set(roads["road_id"])
    missing = [r for r in (*treated, *comparison) if r not in known]
    if missing:
        raise ValueError(f"road ids not in the network: {', '.join(missing)}")
    role = roads["role"].where(~roads["role"].isin(["treated", "comparison"]), "")
    role = np.where(roads["road_id"].isin(treated), "treated", role)
    role = np.where(roads["road_id"].isin(comparison), "comparison", role)
    roads["role"] = role
    return roads


def network_fingerprint(roads: gpd.GeoDataFrame, radius_m: float) -> str:
    """sha256 (hex, 16 chars) of what a match depends on: geometry, ids, one-way flags, limits,
    radius and the matching constants, and MATCH_VERSION."""
    h = hashlib.sha256()
    params = {
        "version": MATCH_VERSION,
        "radius_m": float(radius_m),
        "tolerance": HEADING_TOLERANCE_DEG,
        "gap_s": MAX_HEADING_GAP_S,
        "step_m": MIN_HEADING_STEP_M,
        "margin_m": TRIP_CONTEXT_MARGIN_M,
    }
    h.update(json.dumps(params, sort_keys=True).encode())
    h.update("\x1f".join(roads["road_id"]).encode())
    h.update(np.asarray(roads["oneway"], dtype=np.int8).tobytes())
    h.update(np.asarray(roads["limit_kmh"], dtype=np.float64).tobytes())
    geoms = roads.geometry.values
    h.update(np.round(shapely.get_coordinates(geoms), 3).tobytes())  # millimetres: robust to float noise
    h.update(shapely.get_num_coordinates(geoms).astype(np.int64).tobytes())
    h.update(shapely.get_num_geometries(geoms).astype(np.int64).tobytes())
    return h.hexdigest()[:16]


def prepare_network(
    roads_path: str | Path,
    key: str,
    *,
    radius_m: float = DEFAULT_RADIUS_M,
    treated: tuple[str, ...] = (),
    comparison: tuple[str, ...] = (),
    exclude_highway: tuple[str, ...] | None = EXCLUDED_HIGHWAY_CLASSES,
) -> Network:
    """Load a road network, assign roles, build its index (radius in metres) and fingerprint."""
    if not (np.isfinite(radius_m) and radius_m > 0):
        raise ValueError(f"matching radius must be a positive number of metres, got {radius_m!r}")
    roads = assign_roles(load_roads(roads_path, exclude_highway=exclude_highway), treated, comparison)
    index = build_segment_index(roads.geometry.values, radius_m=radius_m, oneway=roads["oneway"].to_numpy())
    return Network(key, roads, index, float(radius_m), network_fingerprint(roads, radius_m), Path(roads_path).resolve())


def district_network(
    district,
    radius_m: float = DEFAULT_RADIUS_M,
    *,
    treated: tuple[str, ...] | None = None,
    comparison: tuple[str, ...] | None = None,
) -> Network:
    """The network of a District (config.districts), with its treated and comparison roads (or those given)
    and the names its file gives ([roads.names]; names do not change the fingerprint)."""
    network = prepare_network(
        district.network_path,
        district.key,
        radius_m=radius_m,
        treated=district.treated_roads if treated is None else tuple(treated),
        comparison=district.comparison_roads if comparison is None else tuple(comparison),
        exclude_highway=district.exclude_highway,
    )
    names = getattr(district, "road_names", None)
    return dataclasses.replace(network, roads=with_road_names(network.roads, names)) if names else network
