"""Compiled kernels (numba, nopython, parallel): grid-index matching and histogram aggregation.

The hot path of the product: no Python-level loop over points or segments. `cache=True` keeps
the compiled code on disk (``__pycache__``) so only the first run on a machine pays for JIT.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# Layout of the per-point cell key (int32): ((((dir+1)*24 + hour)*2 + day_type)*N_CLASS + class)*N_BIN + bin
N_DIR = 3  # -1, 0 (unknown), +1 relative to digitisation
N_HOUR = 24
N_DAYTYPE = 2  # 0 weekday, 1 weekend or public holiday
N_CLASS = 16  # vehicle_type codes 0-15 (様式1-2 自動車の種別)
N_BIN = 256  # 1 km/h bins 0..255, speed rounded to the nearest km/h (clipped)
US_PER_DAY = 86_400_000_000
US_PER_HOUR = 3_600_000_000


def ro(a: np.ndarray) -> np.ndarray:
    """A read-only, C-contiguous view: kernels see one array type whether inputs come from Arrow
    (read-only) or numpy, so they compile (and cache) one signature only."""
    v = np.ascontiguousarray(a).view()
    v.flags.writeable = False
    return v


@njit(cache=True, nogil=True)
def _day_type(us, holiday_day0, holidays):
    day = us // US_PER_DAY
    # 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Mondays.
    wd = (day + 3) % 7
    if wd >= 5:
        return 1
    k = day - holiday_day0
    if k >= 0 and k < holidays.shape[0] and holidays[k]:
        return 1
    return 0


BLOCK_SHIFT = 3  # points are visited in blocks of 8 × 8 grid cells, for cache locality


@njit(cache=True)
def _block_order(px, py, origin_x, origin_y, cell_m, nx, ny):
    """Permutation visiting points block by block (counting sort on 8×8-cell blocks; outside last)."""
    n = px.shape[0]
    nbx = (nx >> BLOCK_SHIFT) + 1
    nby = (ny >> BLOCK_SHIFT) + 1
    nb = nbx * nby
    block = np.empty(n, dtype=np.int64)
    counts = np.zeros(nb + 2, dtype=np.int64)
    for i in range(n):
        fx = math.floor((px[i] - origin_x) / cell_m)
        fy = math.floor((py[i] - origin_y) / cell_m)
        if fx >= 0 and fy >= 0 and fx < nx and fy < ny:
            b = (int(fy) >> BLOCK_SHIFT) * nbx + (int(fx) >> BLOCK_SHIFT)
        else:
            b = nb  # outside the grid or not finite
        block[i] = b
        counts[b + 1] += 1
    for b in range(nb + 1):
        counts[b + 1] += counts[b]
    perm = np.empty(n, dtype=np.int64)
    for i in range(n):
        b = block[i]
        perm[counts[b]] = i
        counts[b] += 1
    return perm


@njit(parallel=True, cache=True)
def match_kernel(
    px, py, heading_deg,
    origin_x, origin_y, cell_m, nx, ny, cell_start, cell_segments, packed,
    seg_len, seg_link, seg_start_m, link_length_m,
    radius_m, tol_deg, out_seg, out_dist, out_pos, out_dir,
):  # fmt: skip
    """Nearest segment of each point within radius_m, heading-consistent when the heading is known.

    Writes per point: segment id (-1 unmatched), distance (m), position along the link (0-1) and
    direction relative to digitisation (+1/-1, 0 unknown heading on a two-way link). Ties: smaller
    distance, then smaller segment id. When no candidate agrees with a known heading, the nearest
    candidate is kept with direction 0 (its heading cannot be trusted).

    `packed` holds, in the order of `cell_segments`, one row per (cell, segment) entry:
    x0, y0, ux, uy, length, oneway, bearing (degrees clockwise from grid north) of the segment — a point's candidates are contiguous in memory.
    """
    n = px.shape[0]
    perm = _block_order(px, py, origin_x, origin_y, cell_m, nx, ny)
    for j in prange(n):
        i = perm[j]
        out_seg[i] = -1
        out_dist[i] = np.nan
        out_pos[i] = np.nan
        out_dir[i] = 0
        x = px[i]
        y = py[i]
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        fx = math.floor((x - origin_x) / cell_m)
        fy = math.floor((y - origin_y) / cell_m)
        if fx < 0 or fy < 0 or fx >= nx or fy >= ny:
            continue
        c = int(fy) * nx + int(fx)
        h = heading_deg[i]
        known = math.isfinite(h)
        if known and (h < 0.0 or h >= 360.0):
            h = h % 360.0
        best_s = -1
        best_d = np.inf
        best_t = 0.0
        best_dir = 0
        any_s = -1
        any_d = np.inf
        any_t = 0.0
        for k in range(cell_start[c], cell_start[c + 1]):
            sx0 = packed[k, 0]
            sy0 = packed[k, 1]
            sux = packed[k, 2]
            suy = packed[k, 3]
            L = packed[k, 4]
            t = ((x - sx0) * sux + (y - sy0) * suy) / L
            if t < 0.0:
                t = 0.0
            elif t > 1.0:
                t = 1.0
            qx = sx0 + t * L * sux - x
            qy = sy0 + t * L * suy - y
            d = math.sqrt(qx * qx + qy * qy)
            if d > radius_m:
                continue
            s = cell_segments[k]
            if d < any_d or (d == any_d and s < any_s):
                any_s = s
                any_d = d
                any_t = t
            ow = int(packed[k, 5])
            if known:
                # angle between heading and the segment's bearing, 0-180°
                diff = abs(h - packed[k, 6])  # both in [0, 360)
                if diff > 180.0:
                    diff = 360.0 - diff
                if ow >= 0 and diff <= tol_deg:
                    sdir = 1
                elif ow <= 0 and diff >= 180.0 - tol_deg:
                    sdir = -1
                else:
                    continue
            else:
                sdir = ow
            if d < best_d or (d == best_d and s < best_s):
                best_s = s
                best_d = d
                best_t = t
                best_dir = sdir
        if best_s < 0 and any_s >= 0:
            best_s = any_s
            best_d = any_d
            best_t = any_t
            best_dir = 0
        if best_s >= 0:
            lk = seg_link[best_s]
            out_seg[i] = best_s
            out_dist[i] = best_d
            out_pos[i] = min(1.0, (seg_start_m[best_s] + best_t * seg_len[best_s]) / link_length_m[lk])
            out_dir[i] = best_dir


@njit(parallel=True, cache=True)
def cell_keys(
    seg, pos, direction, seg_link, link_length_m, link_first_piece, pitch_m,
    gps_us, vehicle_type, speed_kmh, holiday_day0, holidays, out_piece, out_key,
):  # fmt: skip
    """Piece id (-1 when unmatched) and int32 cell key of each matched point (layout at the top)."""
    n = seg.shape[0]
    for i in prange(n):
        s = seg[i]
        if s < 0 or not math.isfinite(speed_kmh[i]):
            out_piece[i] = -1
            out_key[i] = 0
            continue
        lk = seg_link[s]
        first = link_first_piece[lk]
        if pitch_m > 0.0:
            k = int(math.floor(pos[i] * link_length_m[lk] / pitch_m))
            last = link_first_piece[lk + 1] - 1 - first
            if k > last:
                k = last
            if k < 0:
                k = 0
            out_piece[i] = first + k
        else:
            out_piece[i] = first
        us = gps_us[i]
        hour = (us // US_PER_HOUR) % 24
        dt = _day_type(us, holiday_day0, holidays)
        vc = vehicle_type[i]
        if vc < 0 or vc >= N_CLASS:
            vc = N_CLASS - 1
        b = int(math.floor(speed_kmh[i] + 0.5))
        if b < 0:
            b = 0
        elif b >= N_BIN:
            b = N_BIN - 1
        out_key[i] = (((((direction[i] + 1) * N_HOUR + hour) * N_DAYTYPE + dt) * N_CLASS + vc) * N_BIN) + b


@njit(cache=True)
def _counting_sort(piece, n_pieces):
    """Permutation grouping points by piece (stable), and the group offsets (length n_pieces+1)."""
    n = piece.shape[0]
    offsets = np.zeros(n_pieces + 1, dtype=np.int64)
    for i in range(n):
        offsets[piece[i] + 1] += 1
    for p in range(n_pieces):
        offsets[p + 1] += offsets[p]
    fill = offsets[:-1].copy()
    perm = np.empty(n, dtype=np.int64)
    for i in range(n):
        p = piece[i]
        perm[fill[p]] = i
        fill[p] += 1
    return perm, offsets


@njit(cache=True, nogil=True)
def _sort_small(v, lo, hi):
    """Sort v[lo:hi] in place: insertion sort for short runs, else numpy's sort of the view."""
    if hi - lo < 24:
        for q in range(lo + 1, hi):
            x = v[q]
            r = q - 1
            while r >= lo and v[r] > x:
                v[r + 1] = v[r]
                r -= 1
            v[r + 1] = x
    else:
        v[lo:hi].sort()


@njit(parallel=True, cache=True)
def aggregate_kernel(piece, key, speed_kmh, vehicle_id, piece_limit, n_pieces):
    """Group matched points (piece >= 0) by piece and cell key.

    Returns, each as arrays sized by the number of points with unused rows flagged by a zero
    count (compacted by the caller):
    - histogram rows: piece, key (cell and bin), n_points;
    - cell rows (key // N_BIN): piece, cell, n_points, sum of speeds, n >= limit, n >= limit + 10,
      distinct vehicles;
    - distinct (piece, vehicle_id) pairs, flagged by v_piece >= 0.
    No allocation inside the parallel loop: every piece works in its own slice of global buffers.
    """
    perm, offsets = _counting_sort(piece, n_pieces)
    n = perm.shape[0]
    # (key << 32 | position in the piece's slice), sorted per piece; vehicle ids as scratch.
    packed = np.empty(n, dtype=np.int64)
    vs = np.empty(n, dtype=np.int64)
    h_piece = np.full(n, -1, dtype=np.int32)
    h_key = np.zeros(n, dtype=np.int32)
    h_n = np.zeros(n, dtype=np.int64)
    c_piece = np.full(n, -1, dtype=np.int32)
    c_cell = np.zeros(n, dtype=np.int32)
    c_n = np.zeros(n, dtype=np.int64)
    c_sum = np.zeros(n, dtype=np.float64)
    c_ge = np.zeros(n, dtype=np.int64)
    c_ge10 = np.zeros(n, dtype=np.int64)
    c_veh = np.zeros(n, dtype=np.int64)
    v_piece = np.full(n, -1, dtype=np.int32)
    v_id = np.zeros(n, dtype=np.int64)
    mask = np.int64(0xFFFFFFFF)
    for p in prange(n_pieces):
        a = offsets[p]
        b = offsets[p + 1]
        if a == b:
            continue
        for q in range(a, b):
            packed[q] = (np.int64(key[perm[q]]) << 32) | np.int64(q - a)
        _sort_small(packed, a, b)
        lim = piece_limit[p]
        hw = a  # next histogram row
        cw = a  # next cell row
        j = a
        while j < b:
            cell = (packed[j] >> 32) // N_BIN
            j_end = j
            while j_end < b and (packed[j_end] >> 32) // N_BIN == cell:
                j_end += 1
            k = j
            while k < j_end:
                kk = packed[k] >> 32
                k_end = k
                while k_end < j_end and (packed[k_end] >> 32) == kk:
                    k_end += 1
                h_piece[hw] = p
                h_key[hw] = kk
                h_n[hw] = k_end - k
                hw += 1
                k = k_end
            sm = 0.0
            ge = 0
            ge10 = 0
            for q in range(j, j_end):
                i = perm[a + (packed[q] & mask)]
                v = speed_kmh[i]
                sm += v
                if v >= lim:
                    ge += 1
                if v >= lim + 10.0:
                    ge10 += 1
                vs[q] = vehicle_id[i]
            _sort_small(vs, j, j_end)
            nd = 1
            for q in range(j + 1, j_end):
                if vs[q] != vs[q - 1]:
                    nd += 1
            c_piece[cw] = p
            c_cell[cw] = cell
            c_n[cw] = j_end - j
            c_sum[cw] = sm
            c_ge[cw] = ge
            c_ge10[cw] = ge10
            c_veh[cw] = nd
            cw += 1
            j = j_end
        # distinct vehicles of the piece
        for q in range(a, b):
            vs[q] = vehicle_id[perm[q]]
        _sort_small(vs, a, b)
        w = a
        for q in range(a, b):
            if q == a or vs[q] != vs[q - 1]:
                v_piece[w] = p
                v_id[w] = vs[q]
                w += 1
    return h_piece, h_key, h_n, c_piece, c_cell, c_n, c_sum, c_ge, c_ge10, c_veh, v_piece, v_id
