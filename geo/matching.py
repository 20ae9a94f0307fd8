"""Matching probe points to road links: uniform grid index + compiled kernel (geo/kernels.py).

Each point goes to the nearest straight segment within a radius whose bearing agrees with the
point's heading (when known); ties go to the smaller distance, then the smaller segment id
(segment, link and road ids increase together, so also to the smaller road index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from config.settings import DEFAULT_RADIUS_M, HEADING_TOLERANCE_DEG
from geo.kernels import PARALLEL_KERNEL_LOCK, match_kernel, ro
from geo.network import LinkNetwork, build_links


@dataclass(frozen=True)
class SegmentGridIndex:
    """Straight road segments registered in every grid cell within `radius_m` of their bounding box.

    A point's candidates are then exactly the segments listed in its own cell: every segment
    that can lie within `radius_m` of any point of the cell. Coordinates in metres (projected).
    """

    links: LinkNetwork
    origin_x: float
    origin_y: float
    cell_m: float
    nx: int
    ny: int
    cell_start: np.ndarray  # CSR offsets, length nx*ny + 1
    cell_segments: np.ndarray  # segment ids, grouped by cell
    radius_m: float

    ux: np.ndarray  # unit vector of each segment (digitised direction)
    uy: np.ndarray
    seg_len: np.ndarray
    packed: np.ndarray  # (len(cell_segments), 7): x0, y0, ux, uy, length, oneway, bearing per cell entry


def build_segment_index(
    geometries,
    radius_m: float = DEFAULT_RADIUS_M,
    cell_m: float | None = None,
    *,
    oneway=None,
    pitch_m: float | None = None,
) -> SegmentGridIndex:
    """Index the segments of (Multi)LineStrings given in metres (projected CRS) for matching within `radius_m`.

    Roads are split into links at intersections (and into pieces of `pitch_m` metres when
    given); `oneway` per road: 0 two-way, 1 digitised direction only, -1 reverse only.
    Built once per network, vectorised (numpy).
    """
    if radius_m <= 0:
        raise ValueError(f"radius_m must be positive, got {radius_m}")
    links = build_links(geometries, oneway=oneway, pitch_m=pitch_m)
    x0, y0, x1, y1 = links.x0, links.y0, links.x1, links.y1
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
    seg_len = np.hypot(x1 - x0, y1 - y0)
    ux, uy = (x1 - x0) / seg_len, (y1 - y0) / seg_len
    oneway = links.link_oneway[links.seg_link].astype(np.float64)
    bearing = np.degrees(np.arctan2(x1 - x0, y1 - y0)) % 360.0
    packed = np.ascontiguousarray(np.stack([x0, y0, ux, uy, seg_len, oneway, bearing], axis=1)[seg])
    return SegmentGridIndex(
        links,
        origin_x,
        origin_y,
        cell_m,
        nx,
        ny,
        cell_start,
        seg.astype(np.int32),
        float(radius_m),
        ux,
        uy,
        seg_len,
        packed,
    )


@dataclass
class MatchResult:
    """Per point: segment id (-1 unmatched), link, road index, piece (-1 unmatched), distance (m,
    NaN unmatched), position along the link (0-1, NaN unmatched) and direction of travel relative
    to the link's digitisation (+1 / -1; 0 when the heading is unknown or agrees with no candidate)."""

    seg: np.ndarray
    link: np.ndarray
    road: np.ndarray
    dist: np.ndarray
    pos: np.ndarray
    direction: np.ndarray


def match_points(
    x_m, y_m, index: SegmentGridIndex, heading_deg=None, heading_tolerance_deg: float = HEADING_TOLERANCE_DEG
) -> MatchResult:
    """Match points (metres, same CRS as the index) with the compiled kernel, in parallel.

    heading_deg: direction of travel, degrees clockwise from grid north, NaN when unknown
    (distance only). Candidates whose bearing differs from it by more than the tolerance are
    dropped (either direction on two-way links, the permitted one on one-way links).
    """
    px = np.ascontiguousarray(x_m, dtype=np.float64)
    py = np.ascontiguousarray(y_m, dtype=np.float64)
    if px.shape != py.shape:
        raise ValueError(f"x_m and y_m differ in shape: {px.shape} vs {py.shape}")
    heading = np.full(px.shape, np.nan) if heading_deg is None else np.ascontiguousarray(heading_deg, dtype=np.float64)
    n = len(px)
    seg = np.empty(n, dtype=np.int32)
    dist = np.empty(n)
    pos = np.empty(n)
    direction = np.empty(n, dtype=np.int8)
    L = index.links
    with PARALLEL_KERNEL_LOCK:
        match_kernel(
            ro(px),
            ro(py),
            ro(heading),
            float(index.origin_x),
            float(index.origin_y),
            float(index.cell_m),
            int(index.nx),
            int(index.ny),
            ro(index.cell_start),
            ro(index.cell_segments),
            ro(index.packed),
            ro(index.seg_len),
            ro(L.seg_link),
            ro(L.seg_start_m),
            ro(L.link_length_m),
            float(index.radius_m),
            float(heading_tolerance_deg),
            seg,
            dist,
            pos,
            direction,
        )
    hit = seg >= 0
    link = np.where(hit, L.seg_link[np.maximum(seg, 0)], -1).astype(np.int32)
    road = np.where(hit, L.link_road[np.maximum(link, 0)], -1).astype(np.int64)
    return MatchResult(seg, link, road, dist, pos, direction)
