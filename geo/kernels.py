"""Compiled kernels (numba, nopython, parallel): grid-index matching and histogram aggregation.

The hot path of the product: no Python-level loop over points or segments. `cache=True` keeps
the compiled code on disk (``__pycache__``) so only the first run on a machine pays for JIT.
"""

from __future__ import annotations

import math
import threading

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


# Held around every call of a parallel kernel (match_kernel, aggregate_kernel): numba's default
# "workqueue" threading layer aborts the process when two threads launch parallel kernels at once
# (the match stage matches one pass while it reduces the one before, analysis.matchstage).
PARALLEL_KERNEL_LOCK = threading.Lock()


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


@njit(cache=True, nogil=True)
def _block_order(px, py, origin_x, origin_y, cell_m, nx, ny):
    """Permutation (int32) visiting points block by block: a stable counting sort on 8×8-cell
    blocks, points outside the grid (or not finite) last, and the number of points inside."""
    n = px.shape[0]
    nbx = (nx >> BLOCK_SHIFT) + 1
    nby = (ny >> BLOCK_SHIFT) + 1
    nb = nbx * nby
    block = np.empty(n, dtype=np.int32)
    counts = np.zeros(nb + 2, dtype=np.int64)
    for i in range(n):
        fx = (px[i] - origin_x) / cell_m
        fy = (py[i] - origin_y) / cell_m
        # comparisons are False for NaN: non-finite points fall outside
        if fx >= 0.0 and fy >= 0.0 and fx < nx and fy < ny:
            b = (int(fy) >> BLOCK_SHIFT) * nbx + (int(fx) >> BLOCK_SHIFT)
        else:
            b = nb
        block[i] = b
        counts[b + 1] += 1
    for b in range(nb + 1):
        counts[b + 1] += counts[b]
    inside = counts[nb]
    perm = np.empty(n, dtype=np.int32)
    for i in range(n):
        b = block[i]
        perm[counts[b]] = i
        counts[b] += 1
    return perm, inside


@njit(cache=True, nogil=True)
def _gather3(perm, m, a, b, c, oa, ob, oc):
    for j in range(m):
        i = perm[j]
        oa[j] = a[i]
        ob[j] = b[i]
        oc[j] = c[i]


@njit(parallel=True, cache=True, nogil=True)
def match_kernel(  # noqa: C901, PLR0913 -- compiled kernel: takes flat arrays, its loop is the hot path
    px,
    py,
    heading_deg,
    origin_x,
    origin_y,
    cell_m,
    nx,
    ny,
    cell_start,
    cell_segments,
    packed,
    seg_len,
    seg_link,
    seg_start_m,
    link_length_m,
    radius_m,
    tol_deg,
    out_seg,
    out_dist,
    out_pos,
    out_dir,
):
    """Nearest segment of each point within radius_m, heading-consistent when the heading is known.

    Writes per point: segment id (-1 unmatched), distance (m), position along the link (0-1) and
    direction relative to digitisation (+1/-1, 0 unknown heading on a two-way link). Ties: smaller
    distance, then smaller segment id. When no candidate agrees with a known heading, the nearest
    candidate is kept with direction 0 (its heading cannot be trusted).

    `packed` holds, in the order of `cell_segments`, one row per (cell, segment) entry:
    x0, y0, ux, uy, length, oneway, bearing (degrees clockwise from grid north) of the segment — a point's
    candidates are contiguous in memory.

    Points are first sorted by grid block (counting sort) and their coordinates gathered into
    that order, so the matching loop reads points and candidates sequentially; results are
    scattered back to the input order at the end.
    """
    n = px.shape[0]
    perm, m = _block_order(px, py, origin_x, origin_y, cell_m, nx, ny)
    sx = np.empty(m)
    sy = np.empty(m)
    sh = np.empty(m)
    _gather3(perm, m, px, py, heading_deg, sx, sy, sh)
    r_seg = np.empty(m, dtype=np.int32)
    r_dist = np.empty(m)
    r_pos = np.empty(m)
    r_dir = np.empty(m, dtype=np.int8)
    for j in prange(m):
        x = sx[j]
        y = sy[j]
        # inside the grid (see _block_order): truncation is floor
        c = int((y - origin_y) / cell_m) * nx + int((x - origin_x) / cell_m)
        h = sh[j]
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
            r_seg[j] = best_s
            r_dist[j] = best_d
            r_pos[j] = min(1.0, (seg_start_m[best_s] + best_t * seg_len[best_s]) / link_length_m[lk])
            r_dir[j] = best_dir
        else:
            r_seg[j] = -1
            r_dist[j] = np.nan
            r_pos[j] = np.nan
            r_dir[j] = 0
    for j in range(m):
        i = perm[j]
        out_seg[i] = r_seg[j]
        out_dist[i] = r_dist[j]
        out_pos[i] = r_pos[j]
        out_dir[i] = r_dir[j]
    for j in range(m, n):
        i = perm[j]
        out_seg[i] = -1
        out_dist[i] = np.nan
        out_pos[i] = np.nan
        out_dir[i] = 0


@njit(cache=True, nogil=True)
def _sort_small(v, lo, hi):
    """Sort v[lo:hi] in place: insertion sort for short runs, else numpy's sort of the view."""
    if hi - lo < 32:
        for q in range(lo + 1, hi):
            x = v[q]
            r = q - 1
            while r >= lo and v[r] > x:
                v[r + 1] = v[r]
                r -= 1
            v[r + 1] = x
    else:
        v[lo:hi].sort()


@njit(cache=True, nogil=True)
def _group_by_piece(  # noqa: PLR0913 -- compiled kernel: takes flat arrays, its loop is the hot path
    seg,
    pos,
    direction,
    seg_link,
    link_length_m,
    link_first_piece,
    pitch_m,
    gps_us,
    vehicle_type,
    speed_kmh,
    vehicle_id,
    holiday_day0,
    holidays,
    n_pieces,
):
    """Cell key of each matched point (layout at the top), and the points grouped by piece:
    a counting sort that moves (key, speed, vehicle) into per-piece slices (offsets: n_pieces+1)."""
    n = seg.shape[0]
    piece = np.empty(n, dtype=np.int32)
    offsets = np.zeros(n_pieces + 1, dtype=np.int64)
    for i in range(n):
        s = seg[i]
        if s < 0 or not math.isfinite(speed_kmh[i]):
            piece[i] = -1
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
            p = first + k
        else:
            p = first
        piece[i] = p
        offsets[p + 1] += 1
    for p in range(n_pieces):
        offsets[p + 1] += offsets[p]
    m = offsets[n_pieces]
    # Two-level counting sort for cache locality: point indices first into <= 256 buckets of
    # consecutive pieces (few write streams), then each bucket's points into their pieces.
    shift = 0
    while (n_pieces - 1) >> shift >= 256:
        shift += 1
    n_buckets = ((n_pieces - 1) >> shift) + 1
    bfill = np.empty(n_buckets, dtype=np.int64)
    for k in range(n_buckets):
        bfill[k] = offsets[min(k << shift, n_pieces)]
    order = np.empty(m, dtype=np.int32)
    for i in range(n):
        p = piece[i]
        if p >= 0:
            k = p >> shift
            order[bfill[k]] = i
            bfill[k] += 1
    fill = offsets[:-1].copy()
    g_key = np.empty(m, dtype=np.int64)
    g_speed = np.empty(m, dtype=np.float64)
    g_vid = np.empty(m, dtype=np.int64)
    for j in range(m):
        i = order[j]
        p = piece[i]
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
        key = (((((direction[i] + 1) * N_HOUR + hour) * N_DAYTYPE + dt) * N_CLASS + vc) * N_BIN) + b
        q = fill[p]
        fill[p] = q + 1
        g_key[q] = (np.int64(key) << 32) | np.int64(q - offsets[p])
        g_speed[q] = speed_kmh[i]
        g_vid[q] = vehicle_id[i]
    return offsets, g_key, g_speed, g_vid


@njit(parallel=True, cache=True, nogil=True)
def aggregate_kernel(offsets, g_key, g_speed, g_vid, piece_limit, n_pieces):
    """Per piece (slices of `_group_by_piece`), the cube rows, written into the piece's own slice
    of point-sized buffers; row counts per piece returned for `compact_rows`.

    - histogram rows: key (cell and bin), n_points;
    - cell rows (key // N_BIN): cell, n_points, sum of speeds, n >= limit, n >= limit + 10,
      distinct vehicles;
    - the distinct vehicle ids of each cell, in order (t_vid: what makes per-cell distinct vehicles
      exact after a merge of cubes, `merge_cubes_in_order`);
    - distinct vehicle ids of the piece.
    g_key (key << 32 | position in the piece's slice) is sorted in place; g_vid is reused.
    """
    m = g_key.shape[0]
    h_key = np.empty(m, dtype=np.int32)
    h_n = np.empty(m, dtype=np.int64)
    c_cell = np.empty(m, dtype=np.int32)
    c_n = np.empty(m, dtype=np.int64)
    c_sum = np.empty(m, dtype=np.float64)
    c_ge = np.empty(m, dtype=np.int64)
    c_ge10 = np.empty(m, dtype=np.int64)
    c_veh = np.empty(m, dtype=np.int64)
    vs = np.empty(m, dtype=np.int64)
    t_vid = np.empty(m, dtype=np.int64)
    counts = np.zeros((n_pieces, 4), dtype=np.int64)
    mask = np.int64(0xFFFFFFFF)
    for p in prange(n_pieces):
        a = offsets[p]
        b = offsets[p + 1]
        if a == b:
            continue
        _sort_small(g_key, a, b)
        lim = piece_limit[p]
        hw = a  # next histogram row
        cw = a  # next cell row
        tw = a  # next (cell, vehicle) row
        j = a
        while j < b:
            cell = (g_key[j] >> 32) // N_BIN
            j_end = j + 1
            while j_end < b and (g_key[j_end] >> 32) // N_BIN == cell:
                j_end += 1
            k = j
            while k < j_end:
                kk = g_key[k] >> 32
                k_end = k + 1
                while k_end < j_end and (g_key[k_end] >> 32) == kk:
                    k_end += 1
                h_key[hw] = kk
                h_n[hw] = k_end - k
                hw += 1
                k = k_end
            sm = 0.0
            ge = 0
            ge10 = 0
            for q in range(j, j_end):
                i = a + (g_key[q] & mask)
                v = g_speed[i]
                sm += v
                if v >= lim:
                    ge += 1
                if v >= lim + 10.0:
                    ge10 += 1
                vs[q] = g_vid[i]
            _sort_small(vs, j, j_end)
            nd = 1
            t_vid[tw] = vs[j]
            tw += 1
            for q in range(j + 1, j_end):
                if vs[q] != vs[q - 1]:
                    nd += 1
                    t_vid[tw] = vs[q]
                    tw += 1
            c_cell[cw] = cell
            c_n[cw] = j_end - j
            c_sum[cw] = sm
            c_ge[cw] = ge
            c_ge10[cw] = ge10
            c_veh[cw] = nd
            cw += 1
            j = j_end
        # distinct vehicles of the piece, in place in g_vid
        _sort_small(g_vid, a, b)
        w = a + 1
        for q in range(a + 1, b):
            if g_vid[q] != g_vid[w - 1]:
                g_vid[w] = g_vid[q]
                w += 1
        counts[p, 0] = hw - a
        counts[p, 1] = cw - a
        counts[p, 2] = w - a
        counts[p, 3] = tw - a
    return counts, h_key, h_n, c_cell, c_n, c_sum, c_ge, c_ge10, c_veh, t_vid


@njit(cache=True, nogil=True)
def _rows(offsets, counts, col, n_pieces):
    """Row offsets of the compacted output of column `col` of counts."""
    out = np.zeros(n_pieces + 1, dtype=np.int64)
    for p in range(n_pieces):
        out[p + 1] = out[p] + counts[p, col]
    return out


@njit(cache=True, nogil=True)
def _squeeze(src, offsets, counts, col, rows, dst):
    for p in range(offsets.shape[0] - 1):
        a = offsets[p]
        r = rows[p]
        for q in range(counts[p, col]):
            dst[r + q] = src[a + q]


@njit(cache=True, nogil=True)
def _piece_column(rows, n_pieces):
    out = np.empty(rows[n_pieces], dtype=np.int32)
    for p in range(n_pieces):
        for r in range(rows[p], rows[p + 1]):
            out[r] = p
    return out


# Compiled kernel: takes flat arrays, its loop is the hot path (hence the noqa: PLR0913).
@njit(cache=True, nogil=True)
def compact_rows(offsets, counts, h_key, h_n, c_cell, c_n, c_sum, c_ge, c_ge10, c_veh, g_vid, n_pieces):  # noqa: PLR0913
    """The rows of `aggregate_kernel`, compacted into exact-size arrays ordered by piece then key:
    histogram (piece, cell, speed, n), cells (piece, cell, n, sum, ge, ge10, vehicles) and
    distinct (piece, vehicle) pairs."""
    hr = _rows(offsets, counts, 0, n_pieces)
    cr = _rows(offsets, counts, 1, n_pieces)
    vr = _rows(offsets, counts, 2, n_pieces)
    nh = hr[n_pieces]
    hk = np.empty(nh, dtype=np.int32)
    _squeeze(h_key, offsets, counts, 0, hr, hk)
    h_cell = np.empty(nh, dtype=np.int32)
    h_speed = np.empty(nh, dtype=np.int16)
    for r in range(nh):
        h_cell[r] = hk[r] // N_BIN
        h_speed[r] = hk[r] % N_BIN
    hn = np.empty(nh, dtype=np.int64)
    _squeeze(h_n, offsets, counts, 0, hr, hn)
    nc = cr[n_pieces]
    cc = np.empty(nc, dtype=np.int32)
    _squeeze(c_cell, offsets, counts, 1, cr, cc)
    cn = np.empty(nc, dtype=np.int64)
    _squeeze(c_n, offsets, counts, 1, cr, cn)
    cs = np.empty(nc, dtype=np.float64)
    _squeeze(c_sum, offsets, counts, 1, cr, cs)
    cg = np.empty(nc, dtype=np.int64)
    _squeeze(c_ge, offsets, counts, 1, cr, cg)
    cg10 = np.empty(nc, dtype=np.int64)
    _squeeze(c_ge10, offsets, counts, 1, cr, cg10)
    cv = np.empty(nc, dtype=np.int64)
    _squeeze(c_veh, offsets, counts, 1, cr, cv)
    vv = np.empty(vr[n_pieces], dtype=np.int64)
    _squeeze(g_vid, offsets, counts, 2, vr, vv)
    return (
        _piece_column(hr, n_pieces),
        h_cell,
        h_speed,
        hn,
        _piece_column(cr, n_pieces),
        cc,
        cn,
        cs,
        cg,
        cg10,
        cv,
        _piece_column(vr, n_pieces),
        vv,
    )


@njit(cache=True, nogil=True)
def compact_cell_vehicles(offsets, counts, t_vid, n_pieces):
    """The distinct vehicles of each cell (aggregate_kernel's t_vid), compacted in the order of the
    cell rows: cell r's vehicles follow those of cell r - 1, `n_vehicles` of them, sorted."""
    tr = _rows(offsets, counts, 3, n_pieces)
    out = np.empty(tr[n_pieces], dtype=np.int64)
    _squeeze(t_vid, offsets, counts, 3, tr, out)
    return out


@njit(cache=True, nogil=True)
def union_sorted(ak1, ak2, bk1, bk2):
    """Union of two row lists each sorted by (k1, k2) without repeats: per output row (in the same
    order), its index in a and in b, -1 where the row is not in that list."""
    na = ak1.shape[0]
    nb = bk1.shape[0]
    ia = np.empty(na + nb, dtype=np.int32)
    ib = np.empty(na + nb, dtype=np.int32)
    i = 0
    j = 0
    r = 0
    while i < na or j < nb:
        if j >= nb:
            c = -1
        elif i >= na:
            c = 1
        elif ak1[i] != bk1[j]:
            c = -1 if ak1[i] < bk1[j] else 1
        elif ak2[i] != bk2[j]:
            c = -1 if ak2[i] < bk2[j] else 1
        else:
            c = 0
        if c <= 0:
            ia[r] = i
            i += 1
        else:
            ia[r] = -1
        if c >= 0:
            ib[r] = j
            j += 1
        else:
            ib[r] = -1
        r += 1
    return ia[:r].copy(), ib[:r].copy()


@njit(cache=True, nogil=True)
def union_cell_vehicles(ia, ib, a_n, a_vid, b_n, b_vid):
    """Per merged cell (ia, ib from `union_sorted`), the union of its sorted distinct vehicle lists
    in a and b (each cell's list follows the previous cell's, a_n / b_n long): (n per cell, ids)."""
    a_off = np.zeros(a_n.shape[0] + 1, dtype=np.int64)
    for k in range(a_n.shape[0]):
        a_off[k + 1] = a_off[k] + a_n[k]
    b_off = np.zeros(b_n.shape[0] + 1, dtype=np.int64)
    for k in range(b_n.shape[0]):
        b_off[k + 1] = b_off[k] + b_n[k]
    out_n = np.empty(ia.shape[0], dtype=np.int64)
    out = np.empty(a_vid.shape[0] + b_vid.shape[0], dtype=np.int64)
    w = 0
    for r in range(ia.shape[0]):
        start = w
        i, i_end = (a_off[ia[r]], a_off[ia[r] + 1]) if ia[r] >= 0 else (0, 0)
        j, j_end = (b_off[ib[r]], b_off[ib[r] + 1]) if ib[r] >= 0 else (0, 0)
        while i < i_end or j < j_end:
            if j >= j_end or (i < i_end and a_vid[i] < b_vid[j]):
                out[w] = a_vid[i]
                i += 1
            elif i >= i_end or b_vid[j] < a_vid[i]:
                out[w] = b_vid[j]
                j += 1
            else:
                out[w] = a_vid[i]
                i += 1
                j += 1
            w += 1
        out_n[r] = w - start
    return out_n, out[:w].copy()


@njit(cache=True, nogil=True)
def distinct_per_group(group, vehicle_id, n_groups):
    """Distinct vehicle ids per group (group -1: ignored): a counting sort by group, then each group's
    ids sorted and counted."""
    start = np.zeros(n_groups + 1, dtype=np.int64)
    for i in range(group.shape[0]):
        if group[i] >= 0:
            start[group[i] + 1] += 1
    for g in range(n_groups):
        start[g + 1] += start[g]
    fill = start[:-1].copy()
    ids = np.empty(start[n_groups], dtype=np.int64)
    for i in range(group.shape[0]):
        g = group[i]
        if g >= 0:
            ids[fill[g]] = vehicle_id[i]
            fill[g] += 1
    out = np.zeros(n_groups, dtype=np.int64)
    for g in range(n_groups):
        a = start[g]
        b = start[g + 1]
        if a == b:
            continue
        ids[a:b].sort()
        k = 1
        for q in range(a + 1, b):
            if ids[q] != ids[q - 1]:
                k += 1
        out[g] = k
    return out


# Compiled kernel: takes flat arrays, its loop is the hot path (hence the noqa: PLR0913).
@njit(cache=True, nogil=True)
def merge_hist_rows(ia, ib, a_piece, a_cell, a_speed, a_n, b_piece, b_cell, b_speed, b_n):  # noqa: PLR0913
    """Histogram rows of the union (ia, ib from `union_sorted`): keys from whichever holds the row,
    counts added."""
    m = ia.shape[0]
    piece = np.empty(m, dtype=np.int32)
    cell = np.empty(m, dtype=np.int32)
    speed = np.empty(m, dtype=np.int16)
    n = np.empty(m, dtype=np.int64)
    for r in range(m):
        i = ia[r]
        j = ib[r]
        if i >= 0:
            piece[r], cell[r], speed[r] = a_piece[i], a_cell[i], a_speed[i]
            n[r] = a_n[i] + (b_n[j] if j >= 0 else 0)
        else:
            piece[r], cell[r], speed[r] = b_piece[j], b_cell[j], b_speed[j]
            n[r] = b_n[j]
    return piece, cell, speed, n


# Compiled kernel: takes flat arrays, its loop is the hot path (hence the noqa: PLR0913).
@njit(cache=True, nogil=True)
def merge_cell_rows(ia, ib, a_piece, a_cell, a_n, a_sum, a_ge, a_ge10, b_piece, b_cell, b_n, b_sum, b_ge, b_ge10):  # noqa: PLR0913
    """Cell rows of the union: keys from whichever holds the row; counts added, sums as a + b."""
    m = ia.shape[0]
    piece = np.empty(m, dtype=np.int32)
    cell = np.empty(m, dtype=np.int32)
    n = np.empty(m, dtype=np.int64)
    sm = np.empty(m, dtype=np.float64)
    ge = np.empty(m, dtype=np.int64)
    ge10 = np.empty(m, dtype=np.int64)
    for r in range(m):
        i = ia[r]
        j = ib[r]
        if i >= 0 and j >= 0:
            piece[r], cell[r] = a_piece[i], a_cell[i]
            n[r], sm[r], ge[r], ge10[r] = a_n[i] + b_n[j], a_sum[i] + b_sum[j], a_ge[i] + b_ge[j], a_ge10[i] + b_ge10[j]
        elif i >= 0:
            piece[r], cell[r], n[r], sm[r], ge[r], ge10[r] = a_piece[i], a_cell[i], a_n[i], a_sum[i], a_ge[i], a_ge10[i]
        else:
            piece[r], cell[r], n[r], sm[r], ge[r], ge10[r] = b_piece[j], b_cell[j], b_n[j], b_sum[j], b_ge[j], b_ge10[j]
    return piece, cell, n, sm, ge, ge10


@njit(cache=True, nogil=True)
def merge_pair_rows(ia, ib, a_piece, a_vid, b_piece, b_vid):
    """(piece, vehicle) pairs of the union."""
    m = ia.shape[0]
    piece = np.empty(m, dtype=np.int32)
    vid = np.empty(m, dtype=np.int64)
    for r in range(m):
        i = ia[r]
        if i >= 0:
            piece[r], vid[r] = a_piece[i], a_vid[i]
        else:
            piece[r], vid[r] = b_piece[ib[r]], b_vid[ib[r]]
    return piece, vid


@njit(cache=True, nogil=True)
def distinct_pairs_by_group(group, vehicle_id, n_groups):
    """The distinct (group, vehicle) pairs of (group, vehicle) rows (group -1: left out), ordered by
    group then vehicle id."""
    start = np.zeros(n_groups + 1, dtype=np.int64)
    for i in range(group.shape[0]):
        if group[i] >= 0:
            start[group[i] + 1] += 1
    for g in range(n_groups):
        start[g + 1] += start[g]
    fill = start[:-1].copy()
    ids = np.empty(start[n_groups], dtype=np.int64)
    for i in range(group.shape[0]):
        g = group[i]
        if g >= 0:
            ids[fill[g]] = vehicle_id[i]
            fill[g] += 1
    out_g = np.empty(ids.shape[0], dtype=np.int64)
    out_v = np.empty(ids.shape[0], dtype=np.int64)
    w = 0
    for g in range(n_groups):
        a = start[g]
        b = start[g + 1]
        ids[a:b].sort()
        for q in range(a, b):
            if q == a or ids[q] != ids[q - 1]:
                out_g[w] = g
                out_v[w] = ids[q]
                w += 1
    return out_g[:w].copy(), out_v[:w].copy()
