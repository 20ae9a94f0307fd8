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
def _radix_pass(v, a, b, tmp, count, shift, mask, flip):
    """One stable counting-sort pass of v[a:b] (non-empty) on the digit ((v >> shift) & mask) ^ flip,
    through tmp[a:b]; count: mask + 1 counters. Nothing moves when every row has the same digit."""
    count[:] = 0
    for q in range(a, b):
        count[((v[q] >> shift) & mask) ^ flip] += 1
    if count[((v[a] >> shift) & mask) ^ flip] == b - a:
        return
    total = a
    for d in range(mask + 1):
        c = count[d]
        count[d] = total
        total += c
    for q in range(a, b):
        d = ((v[q] >> shift) & mask) ^ flip
        tmp[count[d]] = v[q]
        count[d] += 1
    v[a:b] = tmp[a:b]


# Counters `_sort_ids` needs: one per bucket of its one distribution pass (at most 2^16 buckets).
ID_BUCKET_BITS = 16
ID_COUNTERS = 1 << ID_BUCKET_BITS


@njit(cache=True, nogil=True)
def _sort_ids(v, a, b, tmp, count):
    """Sort the int64 ids v[a:b] in place (signed order, as numpy sorts): `_sort_small` for short
    slices, else one distribution pass on the high bits of id - min (about one bucket per id, at
    most 2^16), then each bucket sorted by `_sort_small`: pseudonyms are uniform, so buckets hold
    an id or two and the sort is linear, with no comparisons to mispredict; clustered ids (equal or
    close ones) only make larger buckets, sorted by numpy. tmp: scratch of at least b - a rows from a;
    count: ID_COUNTERS counters."""
    n = b - a
    if n < 256:
        _sort_small(v, a, b)
        return
    lo = v[a]
    hi = v[a]
    for q in range(a + 1, b):
        x = v[q]
        if x < lo:
            lo = x
        elif x > hi:
            hi = x
    if lo == hi:
        return
    ulo = np.uint64(lo)
    width = np.uint64(hi) - ulo  # hi - lo, exact in unsigned arithmetic
    bits = 0
    while bits < 64 and (width >> np.uint64(bits)) != np.uint64(0):
        bits += 1
    nb = 1
    while (1 << nb) < n and nb < ID_BUCKET_BITS:
        nb += 1
    shift = np.uint64(bits - nb if bits > nb else 0)
    n_buckets = 1 << nb
    count[:n_buckets] = 0
    for q in range(a, b):
        count[(np.uint64(v[q]) - ulo) >> shift] += 1
    total = a
    for d in range(n_buckets):
        c = count[d]
        count[d] = total
        total += c
    for q in range(a, b):
        d = (np.uint64(v[q]) - ulo) >> shift
        tmp[count[d]] = v[q]
        count[d] += 1
    s = a  # count[d] is now the end of bucket d
    for d in range(n_buckets):
        e = count[d]
        if e - s > 1:
            _sort_small(tmp, s, e)
        s = e
    v[a:b] = tmp[a:b]


@njit(cache=True, nogil=True)
def _distinct_to(v, a, b, w, tmp, count):
    """The distinct ids of v[a:b] (a non-empty slice, sorted in place), written from v[w] (w <= a) as
    they are found; returns the next free row."""
    _sort_ids(v, a, b, tmp, count)
    v[w] = v[a]
    w += 1
    for q in range(a + 1, b):
        if v[q] != v[w - 1]:
            v[w] = v[q]
            w += 1
    return w


@njit(cache=True, nogil=True)
def _sort_cell_keys(g_key, a, b, tmp, count):
    """Sort g_key[a:b] (cell key << 32 | position, positions in increasing order) by key: an
    insertion sort for short slices, else a stable two-pass radix sort on the key's 20 bits (no
    comparisons, so no mispredicted branches on a piece's hundreds of points). tmp: scratch of
    at least b - a rows from a; count: 1024 counters."""
    if b - a < 48:
        _sort_small(g_key, a, b)
        return
    for shift in (32, 42):
        _radix_pass(g_key, a, b, tmp, count, shift, 1023, 0)


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
    keep,
):
    """Cell key of each matched point (layout at the top), and the points grouped by piece:
    a counting sort that moves (key, speed, vehicle) into per-piece slices (offsets: n_pieces+1).
    keep: per point, whether it counts (empty: every point)."""
    n = seg.shape[0]
    some = keep.shape[0] > 0
    piece = np.empty(n, dtype=np.int32)
    key = np.empty(n, dtype=np.int32)
    offsets = np.zeros(n_pieces + 1, dtype=np.int64)
    # One sequential pass: each point's piece and cell key, and the points per piece.
    for i in range(n):
        s = seg[i]
        if s < 0 or not math.isfinite(speed_kmh[i]) or (some and not keep[i]):
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
        key[i] = (((((direction[i] + 1) * N_HOUR + hour) * N_DAYTYPE + dt) * N_CLASS + vc) * N_BIN) + b
    for p in range(n_pieces):
        offsets[p + 1] += offsets[p]
    m = offsets[n_pieces]
    # Then each point moved into its piece's slice, in the input order. Points come in trip order
    # (a trip's points along its roads), so consecutive points write to few nearby pieces: measured
    # faster than a two-level counting sort through buckets of pieces (0.33 vs 0.40 s for 12 M).
    fill = offsets[:-1].copy()
    g_key = np.empty(m, dtype=np.int64)
    g_speed = np.empty(m, dtype=np.float64)
    g_vid = np.empty(m, dtype=np.int64)
    for i in range(n):
        p = piece[i]
        if p >= 0:
            q = fill[p]
            fill[p] = q + 1
            g_key[q] = (np.int64(key[i]) << 32) | np.int64(q - offsets[p])
            g_speed[q] = speed_kmh[i]
            g_vid[q] = vehicle_id[i]
    return offsets, g_key, g_speed, g_vid


@njit(cache=True, nogil=True)
def piece_blocks(offsets, n_pieces, n_blocks):
    """Boundaries (n_blocks + 1 pieces) of consecutive blocks of pieces holding about equal points."""
    total = offsets[n_pieces]
    edges = np.empty(n_blocks + 1, dtype=np.int64)
    edges[0] = 0
    p = 0
    for b in range(1, n_blocks):
        target = total * b // n_blocks
        while p < n_pieces and offsets[p] < target:
            p += 1
        edges[b] = p
    edges[n_blocks] = n_pieces
    return edges


@njit(parallel=True, cache=True, nogil=True)
def aggregate_kernel(offsets, g_key, g_speed, g_vid, piece_limit, n_pieces, blocks, piece_pairs):  # noqa: PLR0913
    """Per piece (slices of `_group_by_piece`), the cube rows. Pieces go in blocks (`piece_blocks`,
    one per thread): a block writes its pieces' rows one after the other from the first point of
    the block in point-sized buffers, so that `compact_rows` only joins the blocks. Returns the row
    counts per piece and per block, and the buffers:

    - histogram rows: key (cell and bin), n_points;
    - cell rows (key // N_BIN): cell, n_points, sum of speeds, n >= limit, n >= limit + 10,
      distinct vehicles;
    - the distinct vehicle ids of each cell, in order (t_vid, `compact_cell_vehicles`);
    - distinct vehicle ids of the piece (in g_vid, which is reused), when piece_pairs (else g_vid is
      left as it came: `distinct_ids_by_span` then makes the pairs of whole roads).
    g_key (key << 32 | position in the piece's slice) is sorted in place.
    """
    m = g_key.shape[0]
    n_blocks = blocks.shape[0] - 1
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
    block_rows = np.zeros((n_blocks, 4), dtype=np.int64)
    mask = np.int64(0xFFFFFFFF)
    tmp = np.empty(m, dtype=np.int64)
    for blk in prange(n_blocks):
        count = np.empty(1024, dtype=np.int64)
        count_ids = np.empty(ID_COUNTERS, dtype=np.int64)
        start = offsets[blocks[blk]]
        hw = start  # next histogram row
        cw = start  # next cell row
        tw = start  # next (cell, vehicle) row
        vw = start  # next (piece, vehicle) row: never beyond the piece's own slice, read before
        for p in range(blocks[blk], blocks[blk + 1]):
            a = offsets[p]
            b = offsets[p + 1]
            if a == b:
                continue
            _sort_cell_keys(g_key, a, b, tmp, count)
            lim = piece_limit[p]
            h0, c0, t0, v0 = hw, cw, tw, vw
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
            if piece_pairs:
                vw = _distinct_to(g_vid, a, b, vw, tmp, count_ids)
            counts[p, 0] = hw - h0
            counts[p, 1] = cw - c0
            counts[p, 2] = vw - v0
            counts[p, 3] = tw - t0
        block_rows[blk, 0] = hw - start
        block_rows[blk, 1] = cw - start
        block_rows[blk, 2] = vw - start
        block_rows[blk, 3] = tw - start
    return counts, block_rows, h_key, h_n, c_cell, c_n, c_sum, c_ge, c_ge10, c_veh, t_vid


@njit(cache=True, nogil=True)
def _join_blocks(src, offsets, blocks, block_rows, col):
    """The rows of each block (from the block's first point, block_rows[:, col] of them) joined."""
    n_blocks = blocks.shape[0] - 1
    dst = np.empty(block_rows[:, col].sum(), dtype=src.dtype)
    w = 0
    for b in range(n_blocks):
        a = offsets[blocks[b]]
        r = block_rows[b, col]
        dst[w : w + r] = src[a : a + r]
        w += r
    return dst


@njit(cache=True, nogil=True)
def _piece_column(counts, col, n_pieces):
    out = np.empty(counts[:, col].sum(), dtype=np.int32)
    r = 0
    for p in range(n_pieces):
        for _ in range(counts[p, col]):
            out[r] = p
            r += 1
    return out


# Compiled kernel: takes flat arrays, its loop is the hot path (hence the noqa: PLR0913).
@njit(cache=True, nogil=True)
def compact_rows(offsets, blocks, counts, block_rows, h_key, h_n, c_cell, c_n, c_sum, c_ge, c_ge10, c_veh, g_vid):  # noqa: PLR0913
    """The rows of `aggregate_kernel` joined into exact-size arrays ordered by piece then key:
    histogram (piece, cell, speed, n), cells (piece, cell, n, sum, ge, ge10, vehicles) and
    distinct (piece, vehicle) pairs."""
    n_pieces = counts.shape[0]
    hk = _join_blocks(h_key, offsets, blocks, block_rows, 0)
    nh = hk.shape[0]
    h_cell = np.empty(nh, dtype=np.int32)
    h_speed = np.empty(nh, dtype=np.int16)
    for r in range(nh):
        h_cell[r] = hk[r] // N_BIN
        h_speed[r] = hk[r] % N_BIN
    return (
        _piece_column(counts, 0, n_pieces),
        h_cell,
        h_speed,
        _join_blocks(h_n, offsets, blocks, block_rows, 0),
        _piece_column(counts, 1, n_pieces),
        _join_blocks(c_cell, offsets, blocks, block_rows, 1),
        _join_blocks(c_n, offsets, blocks, block_rows, 1),
        _join_blocks(c_sum, offsets, blocks, block_rows, 1),
        _join_blocks(c_ge, offsets, blocks, block_rows, 1),
        _join_blocks(c_ge10, offsets, blocks, block_rows, 1),
        _join_blocks(c_veh, offsets, blocks, block_rows, 1),
        _piece_column(counts, 2, n_pieces),
        _join_blocks(g_vid, offsets, blocks, block_rows, 2),
    )


@njit(cache=True, nogil=True)
def compact_cell_vehicles(offsets, blocks, block_rows, t_vid):
    """The distinct vehicles of each cell (aggregate_kernel's t_vid), joined in the order of the
    cell rows: cell r's vehicles follow those of cell r - 1, `n_vehicles` of them, sorted."""
    return _join_blocks(t_vid, offsets, blocks, block_rows, 3)


@njit(cache=True, nogil=True)
def _ids_by_group(group, vehicle_id, n_groups):
    """The vehicle ids of (group, vehicle) rows (group -1: left out) by group, a counting sort: ids,
    and the start of each group's rows (n_groups + 1)."""
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
    return ids, start


@njit(cache=True, nogil=True)
def distinct_per_group(group, vehicle_id, n_groups):
    """Distinct vehicle ids per group (group -1: ignored): `_ids_by_group`, then each group's ids
    sorted and counted."""
    ids, start = _ids_by_group(group, vehicle_id, n_groups)
    tmp = np.empty(ids.shape[0], dtype=np.int64)
    count = np.empty(ID_COUNTERS, dtype=np.int64)
    out = np.zeros(n_groups, dtype=np.int64)
    for g in range(n_groups):
        a = start[g]
        b = start[g + 1]
        if a == b:
            continue
        _sort_ids(ids, a, b, tmp, count)
        k = 1
        for q in range(a + 1, b):
            if ids[q] != ids[q - 1]:
                k += 1
        out[g] = k
    return out


@njit(cache=True, nogil=True)
def distinct_ids_by_span(ids, span_start):
    """The distinct ids of each span of rows (span s: rows span_start[s]..span_start[s + 1] of ids,
    sorted in place): (span, id) pairs ordered by span then id."""
    n_spans = span_start.shape[0] - 1
    tmp = np.empty(ids.shape[0], dtype=np.int64)
    count = np.empty(ID_COUNTERS, dtype=np.int64)
    out_s = np.empty(ids.shape[0], dtype=np.int64)
    out_v = np.empty(ids.shape[0], dtype=np.int64)
    w = 0
    for s in range(n_spans):
        a = span_start[s]
        b = span_start[s + 1]
        _sort_ids(ids, a, b, tmp, count)
        for q in range(a, b):
            if q == a or ids[q] != ids[q - 1]:
                out_s[w] = s
                out_v[w] = ids[q]
                w += 1
    return out_s[:w].copy(), out_v[:w].copy()


@njit(cache=True, nogil=True)
def distinct_pairs_by_group(group, vehicle_id, n_groups):
    """The distinct (group, vehicle) pairs of (group, vehicle) rows (group -1: left out), ordered by
    group then vehicle id."""
    return distinct_ids_by_span(*_ids_by_group(group, vehicle_id, n_groups))


@njit(cache=True, nogil=True)
def regroup_parts(part_counts, cell_key, g_speed, g_vid):
    """Points of consecutive parts, each grouped by piece (`_group_by_piece`, its rows of a range
    of pieces: part_counts[k, p] rows of piece p in part k, parts one after the other, each in piece
    order; cell_key: the cell key of each row, without its position), grouped by piece as one: per
    piece, part after part, each part's rows in their order, positions numbered within the piece.
    Returns offsets (per piece), g_key, g_speed, g_vid: what `_group_by_piece` gives for all the
    parts' points at once."""
    n_parts, n = part_counts.shape
    offsets = np.zeros(n + 1, dtype=np.int64)
    for p in range(n):
        c = 0
        for k in range(n_parts):
            c += part_counts[k, p]
        offsets[p + 1] = offsets[p] + c
    m = offsets[n]
    o_key = np.empty(m, dtype=np.int64)
    o_speed = np.empty(m, dtype=np.float64)
    o_vid = np.empty(m, dtype=np.int64)
    fill = offsets[:-1].copy()
    src = 0
    for k in range(n_parts):
        for p in range(n):
            w = fill[p]
            base = offsets[p]
            for _ in range(part_counts[k, p]):
                o_key[w] = (np.int64(cell_key[src]) << 32) | (w - base)
                o_speed[w] = g_speed[src]
                o_vid[w] = g_vid[src]
                w += 1
                src += 1
            fill[p] = w
    return offsets, o_key, o_speed, o_vid
