"""Matching probe points to the nearest road within a radius, through a uniform grid index (vectorised)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo.network import segment_arrays

DEFAULT_RADIUS_M = 20.0
# Points are matched in chunks so the candidate pairs of one chunk stay small in memory.
CHUNK_POINTS = 1_000_000


@dataclass(frozen=True)
class SegmentGridIndex:
    """Straight road segments registered in every grid cell within `radius_m` of their bounding box.

    A point's candidates are then exactly the segments listed in its own cell: every segment
    that can lie within `radius_m` of any point of the cell. Coordinates in metres (projected).
    """

    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    road_idx: np.ndarray  # feature index of each segment
    origin_x: float
    origin_y: float
    cell_m: float
    nx: int
    ny: int
    cell_start: np.ndarray  # CSR offsets, length nx*ny + 1
    cell_segments: np.ndarray  # segment ids, grouped by cell
    radius_m: float


def build_segment_index(geometries, radius_m: float = DEFAULT_RADIUS_M, cell_m: float | None = None) -> SegmentGridIndex:
    """Index the segments of (Multi)LineStrings given in metres (projected CRS) for matching within `radius_m`."""
    if radius_m <= 0:
        raise ValueError(f"radius_m must be positive, got {radius_m}")
    x0, y0, x1, y1, road_idx = segment_arrays(geometries)
    if len(x0) == 0:
        raise ValueError("road network has no segments to match against")
    cell_m = float(cell_m or max(radius_m, 1.0))
    # Each segment's bounding box, grown by the radius, in cell coordinates.
    lo_x = np.minimum(x0, x1) - radius_m
    hi_x = np.maximum(x0, x1) + radius_m
    lo_y = np.minimum(y0, y1) - radius_m
    hi_y = np.maximum(y0, y1) + radius_m
    origin_x, origin_y = float(lo_x.min()), float(lo_y.min())
    nx = int(np.floor((hi_x.max() - origin_x) / cell_m)) + 1
    ny = int(np.floor((hi_y.max() - origin_y) / cell_m)) + 1
    cx0 = np.floor((lo_x - origin_x) / cell_m).astype(np.int64)
    cx1 = np.floor((hi_x - origin_x) / cell_m).astype(np.int64)
    cy0 = np.floor((lo_y - origin_y) / cell_m).astype(np.int64)
    cy1 = np.floor((hi_y - origin_y) / cell_m).astype(np.int64)
    wx, wy = cx1 - cx0 + 1, cy1 - cy0 + 1
    n_cells = wx * wy
    seg = np.repeat(np.arange(len(x0), dtype=np.int64), n_cells)
    # k-th cell of a segment's box: column k % wx, row k // wx.
    k = np.arange(n_cells.sum(), dtype=np.int64) - np.repeat(np.cumsum(n_cells) - n_cells, n_cells)
    cell = (cy0[seg] + k // wx[seg]) * nx + (cx0[seg] + k % wx[seg])
    order = np.lexsort((seg, cell))
    cell, seg = cell[order], seg[order]
    cell_start = np.searchsorted(cell, np.arange(nx * ny + 1, dtype=np.int64))
    return SegmentGridIndex(x0, y0, x1, y1, road_idx, origin_x, origin_y, cell_m, nx, ny, cell_start, seg, float(radius_m))


def point_segment_distance(px, py, x0, y0, x1, y1) -> tuple[np.ndarray, np.ndarray]:
    """Distance (m) from points to segments, element-wise, and the position along each segment (0–1)."""
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        t = ((px - x0) * dx + (py - y0) * dy) / length2
    t = np.where(length2 > 0, np.clip(t, 0.0, 1.0), 0.0)
    return np.hypot(px - (x0 + t * dx), py - (y0 + t * dy)), t


def _match_chunk(index: SegmentGridIndex, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(px)
    road = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.nan)
    cx = np.floor((px - index.origin_x) / index.cell_m)
    cy = np.floor((py - index.origin_y) / index.cell_m)
    inside = (cx >= 0) & (cx < index.nx) & (cy >= 0) & (cy < index.ny) & np.isfinite(px) & np.isfinite(py)
    pts = np.flatnonzero(inside)
    cell = cy[pts].astype(np.int64) * index.nx + cx[pts].astype(np.int64)
    first, last = index.cell_start[cell], index.cell_start[cell + 1]
    counts = last - first
    has = counts > 0
    pts, first, counts = pts[has], first[has], counts[has]
    if len(pts) == 0:
        return road, dist
    # Every (point, candidate segment) pair of the chunk, as flat arrays.
    pair_pt = np.repeat(pts, counts)
    offsets = np.arange(counts.sum(), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    pair_seg = index.cell_segments[np.repeat(first, counts) + offsets]
    d, _ = point_segment_distance(
        px[pair_pt], py[pair_pt], index.x0[pair_seg], index.y0[pair_seg], index.x1[pair_seg], index.y1[pair_seg]
    )
    ok = d <= index.radius_m
    pair_pt, pair_seg, d = pair_pt[ok], pair_seg[ok], d[ok]
    pair_road = index.road_idx[pair_seg]
    # Nearest first; exact ties go to the smaller road index, then the smaller segment id.
    order = np.lexsort((pair_seg, pair_road, d, pair_pt))
    pair_pt, pair_road, d = pair_pt[order], pair_road[order], d[order]
    first_of_point = np.ones(len(pair_pt), dtype=bool)
    first_of_point[1:] = pair_pt[1:] != pair_pt[:-1]
    road[pair_pt[first_of_point]] = pair_road[first_of_point]
    dist[pair_pt[first_of_point]] = d[first_of_point]
    return road, dist


def match_points_to_roads(x_m, y_m, index: SegmentGridIndex) -> tuple[np.ndarray, np.ndarray]:
    """Nearest road of each point within the index's radius.

    x_m, y_m: point coordinates in metres, same projected CRS as the indexed roads.
    Returns (road index per point, -1 when no road lies within the radius; distance in metres,
    NaN when unmatched). Ties in distance go to the smaller road index.
    """
    px = np.asarray(x_m, dtype=np.float64)
    py = np.asarray(y_m, dtype=np.float64)
    if px.shape != py.shape:
        raise ValueError(f"x_m and y_m differ in shape: {px.shape} vs {py.shape}")
    roads = np.empty(len(px), dtype=np.int64)
    dists = np.empty(len(px))
    for start in range(0, len(px), CHUNK_POINTS):  # loop over chunks of a million points, not over points
        sl = slice(start, start + CHUNK_POINTS)
        roads[sl], dists[sl] = _match_chunk(index, px[sl], py[sl])
    return roads, dists
