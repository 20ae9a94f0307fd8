"""Compiled ordering of probe points into trips (numba): rows by trip, then by time, in linear time.

The match stage orders each pass of points by vehicle, 運行日, trip number and GPS時刻. A general
multi-key sort costs O(n log n) over every row; here only the distinct trips are sorted (about
thirty times fewer), then the rows are placed by a counting sort on their trip's rank and each
trip's rows ordered by time (an insertion sort: a trip's points arrive nearly in time order).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# status of `order_by_trip`
TRIP_ORDER_OK = 0
TRIP_ORDER_TIES = 1  # two points of one trip at the same GPS時刻: their order needs a tie-break
TRIP_ORDER_MIXED = 2  # one trip code covers rows of different trips (a hash collision)


@njit(cache=True, nogil=True)
def _sort_trip_by_time(order, a, b, gps_us):
    """Stable sort of order[a:b] by gps_us: insertion sort for short or nearly sorted runs, else a
    stable merge sort of the run."""
    inversions = 0
    for q in range(a + 1, b):
        if gps_us[order[q]] < gps_us[order[q - 1]]:
            inversions += 1
    if inversions == 0:
        return
    if b - a > 64 and inversions > 8:
        seg = order[a:b].copy()
        keys = np.empty(b - a, dtype=np.int64)
        for q in range(b - a):
            keys[q] = gps_us[seg[q]]
        idx = np.argsort(keys, kind="mergesort")
        for q in range(b - a):
            order[a + q] = seg[idx[q]]
        return
    for q in range(a + 1, b):
        x = order[q]
        g = gps_us[x]
        k = q - 1
        while k >= a and gps_us[order[k]] > g:
            order[k + 1] = order[k]
            k -= 1
        order[k + 1] = x


@njit(cache=True, nogil=True)
def order_by_trip(code, trip_rank, vehicle_id, days, trip_no, gps_us):
    """Permutation of the rows by trip (trips in the order of `trip_rank`, indexed by `code`), then
    by GPS time; rows of one trip at the same time keep their input order.

    code: 0..k-1 per row (the row's trip); trip_rank: rank of each code (a permutation of 0..k-1).
    Returns (order, status): TRIP_ORDER_TIES when some trip has two rows at the same time,
    TRIP_ORDER_MIXED when rows of one code differ in vehicle, day or trip number (the caller then
    sorts by the keys themselves)."""
    n = code.shape[0]
    k = trip_rank.shape[0]
    start = np.zeros(k + 1, dtype=np.int64)
    for i in range(n):
        start[trip_rank[code[i]] + 1] += 1
    for r in range(k):
        start[r + 1] += start[r]
    fill = start[:-1].copy()
    first = np.full(k, -1, dtype=np.int64)
    order = np.empty(n, dtype=np.int64)
    status = TRIP_ORDER_OK
    for i in range(n):
        c = code[i]
        r = trip_rank[c]
        order[fill[r]] = i
        fill[r] += 1
        f = first[c]
        if f < 0:
            first[c] = i
        elif vehicle_id[f] != vehicle_id[i] or days[f] != days[i] or trip_no[f] != trip_no[i]:
            status = TRIP_ORDER_MIXED
    for r in range(k):
        a = start[r]
        b = start[r + 1]
        _sort_trip_by_time(order, a, b, gps_us)
        for q in range(a + 1, b):
            if gps_us[order[q]] == gps_us[order[q - 1]] and status == TRIP_ORDER_OK:
                status = TRIP_ORDER_TIES
    return order, status


@njit(cache=True, nogil=True)
def trip_features_kernel(order, trip_in, gps_in, x_in, y_in, speed_in, vid_in, max_gap_s, min_step_m, g_ms2):  # noqa: PLR0913
    """Per point of the rows `order` of the inputs (ordered by trip then time; see
    analysis.matchstage.trip_features): the rows gathered in that order (trip, gps_us, x, y, speed,
    vehicle id: vid_in may be empty) and seq, dt_prev_s, heading_deg, decel_prev_g, first and last
    flags, in one pass."""
    n = order.shape[0]
    with_vid = vid_in.shape[0] > 0
    trip = np.empty(n, dtype=np.int64)
    gps_us = np.empty(n, dtype=np.int64)
    x = np.empty(n)
    y = np.empty(n)
    speed_kmh = np.empty(n)
    vid = np.empty(n if with_vid else 0, dtype=np.int64)
    seq = np.empty(n, dtype=np.int32)
    dt_s = np.empty(n)
    heading = np.empty(n)
    decel = np.empty(n)
    first = np.empty(n, dtype=np.bool_)
    last = np.empty(n, dtype=np.bool_)
    step2_hi = (min_step_m * (1.0 + 1e-9)) ** 2
    step2_lo = (min_step_m * (1.0 - 1e-9)) ** 2
    k = 0
    for i in range(n):
        o = order[i]
        trip[i] = trip_in[o]
        gps_us[i] = gps_in[o]
        x[i] = x_in[o]
        y[i] = y_in[o]
        speed_kmh[i] = speed_in[o]
        if with_vid:
            vid[i] = vid_in[o]
        if i == 0 or trip[i] != trip[i - 1]:
            k = 0
            first[i] = True
            if i > 0:
                last[i - 1] = True
            dt_s[i] = np.nan
            heading[i] = np.nan
            decel[i] = np.nan
        else:
            k += 1
            first[i] = False
            last[i - 1] = False
            gap = (gps_us[i] - gps_us[i - 1]) / 1e6
            dx = x[i] - x[i - 1]
            dy = y[i] - y[i - 1]
            dt_s[i] = gap
            # hypot (a libm call) only when the step is within rounding of min_step_m
            d2 = dx * dx + dy * dy
            if d2 > step2_hi:
                long_step = True
            elif d2 < step2_lo:
                long_step = False
            else:
                long_step = math.hypot(dx, dy) >= min_step_m
            if gap <= max_gap_s and long_step:
                # x % 360.0 for x in [-180, 180], as Python computes it (a zero of either sign gives
                # +0.0), without the call to a float modulo
                h = math.degrees(math.atan2(dx, dy))
                if h < 0.0:
                    h += 360.0
                elif h == 0.0:
                    h = 0.0
                heading[i] = h
            else:
                heading[i] = np.nan
            decel[i] = (speed_kmh[i - 1] - speed_kmh[i]) / 3.6 / gap / g_ms2 if gap > 0 else np.nan
        seq[i] = k
    if n:
        last[n - 1] = True
    return trip, gps_us, x, y, speed_kmh, vid, seq, dt_s, heading, decel, first, last


# Compiled kernel: takes flat arrays, its loop is the hot path (hence the noqa: PLR0913).
@njit(cache=True, nogil=True)
def _context_pair(q, p, road, pos, x, y, r, nodes, tol_m, max_detour):  # noqa: PLR0913
    """A context pair between row q (before or after the run) and row p (the run's end point on road r):
    (metres of the pair on the road, metres of the whole pair, direction along the road from q to p).
    q on the road: its position. Else the trip reached the road at one of the road's nodes (a junction or
    an end: where its links meet) — where q's road meets it when q is on a road that does (the shared
    node nearest to q), else the node nearest to q —: straight from q to that node, then along the road
    to p.
    (0, NaN, 0) when q is nearer to p than to that node beyond tol_m (a GPS stray beside the street), or
    when that route is longer than max_detour times the straight distance from q to p, + tol_m (the
    trip did not come that way: it crossed the street at a junction nearer to p)."""
    if road[q] == r and not math.isnan(pos[q]):
        d = pos[p] - pos[q]
        return abs(d), abs(d), (1 if d > 0 else (-1 if d < 0 else 0))
    best = -1
    best_d = np.inf
    rq = road[q]
    node_first, node_s, node_x, node_y, pair_key, pair_node = nodes
    if rq >= 0:  # q on another road: the junction of the two roads (their shared node) nearest to q
        key = r * (node_first.shape[0] - 1) + rq
        for i in range(np.searchsorted(pair_key, key), np.searchsorted(pair_key, key, side="right")):
            j = pair_node[i]
            d = math.hypot(x[q] - node_x[j], y[q] - node_y[j])
            if d < best_d:
                best_d = d
                best = j
    if best < 0:  # off the network, or the roads do not meet: the node nearest to q
        for j in range(node_first[r], node_first[r + 1]):
            d = math.hypot(x[q] - node_x[j], y[q] - node_y[j])
            if d < best_d:
                best_d = d
                best = j
    chord = math.hypot(x[q] - x[p], y[q] - y[p])
    if best < 0 or best_d > chord + tol_m:
        return 0.0, np.nan, 0
    d = pos[p] - node_s[best]
    if best_d + abs(d) > max_detour * chord + tol_m:
        return 0.0, np.nan, 0
    return abs(d), best_d + abs(d), (1 if d > 0 else (-1 if d < 0 else 0))


# Compiled kernel: takes flat arrays, its loop is the hot path (hence the noqa: PLR0913).
@njit(cache=True, nogil=True)
def _pair_time(on_m, total_m, dt, min_step, max_step, max_gap, max_kmh, v_on, v_off):  # noqa: PLR0913
    """Seconds of a pair spent on its `on_m` metres of the street; 0 for a pair roadlabo/ETC's route
    performance drops (Δt <= 0, |Δs| < min_step or > max_step, Δt > max_gap, speed > max_kmh) or one
    with no metre on the street.

    The pair's time Δt is shared between its part on the street (on_m, driven at about v_on, the
    recorded speed of its point on the street) and its part off it (total_m - on_m, at about v_off, the
    recorded speed of its other point): τ = Δt · (on/v_on) / (on/v_on + off/v_off). Between two points
    on the street, or when a recorded speed is not positive, that is the constant-speed share
    Δt · on / total."""
    if math.isnan(total_m) or dt <= 0.0 or total_m < min_step or total_m > max_step or dt > max_gap:
        return 0.0
    if total_m / dt * 3.6 > max_kmh or on_m <= 0.0:
        return 0.0
    off_m = total_m - on_m
    if off_m > 0.0 and v_on > 0.0 and v_off > 0.0:
        return dt * (on_m / v_on) / (on_m / v_on + off_m / v_off)
    return dt * on_m / total_m


@njit(cache=True, nogil=True)
def section_speed_kernel(  # noqa: C901, PLR0913 -- compiled kernel: takes flat arrays, its loop is the hot path
    trip,
    t_s,
    x,
    y,
    road,
    pos,
    speed,
    keep,
    nodes,
    min_step,
    max_step,
    max_gap,
    max_kmh,
    tol_m,
    max_detour,
):
    """Passages and their section travel speed, rows ordered by trip then time (every stored point of
    the trip: on the network or not, kept by the filter or not).

    A passage is a maximal run of kept rows (`keep`: on the network and in the filter) of one trip on one
    road (rows not kept in between are skipped), split where two consecutive kept rows are more than
    max_gap seconds or max_step metres apart along the road, or where the direction along the road
    reverses (a U-turn; steps under min_step have no direction). Its travel speed = Σ d / Σ τ over its
    pairs of consecutive points — the point just before the run (context), the run's points, the point
    just after it — d the pair's metres on the street, τ their share of the pair's time (`_pair_time`:
    for a context pair, weighted by the recorded speeds on either side of the junction, speed): so a run
    of one point still gets a speed from where the trip entered and left the street (`_context_pair`:
    at the road's node nearest to the context point). Pairs are dropped as
    roadlabo/ETC's route performance drops them (`_pair_time`); a context pair running against the
    run's direction is dropped too.

    nodes: (node_first (n_roads + 1), node_s, node_x, node_y, pair_key, pair_node), the nodes of each road
    (its links' ends: junctions and the road's two ends) in CSR, each with its position along the road
    (metres, as pos) and coordinates (metres), and the nodes two roads share (`shared_nodes`)
    (analysis.points.RoadNodes.kernel_arrays).

    Returns (pid per row: the row's passage, -1 when not kept; per passage: first row, last row,
    number of points, metres and seconds on the street)."""
    n = trip.shape[0]
    pid = np.full(n, -1, dtype=np.int64)
    first = np.empty(n, dtype=np.int64)
    last = np.empty(n, dtype=np.int64)
    npts = np.zeros(n, dtype=np.int64)
    sign = np.zeros(n, dtype=np.int8)  # direction of the passage along its road: +1, -1, 0 unknown
    split_after = np.zeros(n, dtype=np.bool_)  # the next passage continues it on the same road (split)
    k = -1
    prev = -1  # previous kept row of the same trip
    for i in range(n):
        if i > 0 and trip[i] != trip[i - 1]:
            prev = -1
        if not keep[i]:
            continue
        new = True
        if prev >= 0 and road[prev] == road[i]:
            ds = pos[i] - pos[prev]
            dt = t_s[i] - t_s[prev]
            s = 0
            if abs(ds) >= min_step:
                s = 1 if ds > 0 else -1
            if dt > max_gap or abs(ds) > max_step or (s != 0 and sign[k] != 0 and s != sign[k]):
                split_after[k] = True
            else:
                new = False
                if s != 0 and dt > 0:
                    sign[k] = s
        if new:
            k += 1
            first[k] = i
            sign[k] = 0
        pid[i] = k
        last[k] = i
        npts[k] += 1
        prev = i
    n_pass = k + 1
    dist = np.zeros(n_pass)
    time = np.zeros(n_pass)
    for k in range(n_pass):
        a = first[k]
        b = last[k]
        r = road[a]
        # pairs of consecutive kept points of the passage
        p = a
        for i in range(a + 1, b + 1):
            if pid[i] != k:
                continue
            d = abs(pos[i] - pos[p])
            tau = _pair_time(d, d, t_s[i] - t_s[p], min_step, max_step, max_gap, max_kmh, 1.0, 1.0)
            if tau > 0:
                dist[k] += d
                time[k] += tau
            p = i
        s = sign[k]
        # the context point before: the trip's row just before the first point
        if a > 0 and trip[a - 1] == trip[a]:
            on, total, direction = _context_pair(a - 1, a, road, pos, x, y, r, nodes, tol_m, max_detour)
            if not (s != 0 and direction == -s):
                dt = t_s[a] - t_s[a - 1]
                tau = _pair_time(on, total, dt, min_step, max_step, max_gap, max_kmh, speed[a], speed[a - 1])
                if tau > 0:
                    dist[k] += on
                    time[k] += tau
                    if s == 0:
                        s = direction
        # the context point after (unless the next passage continues this one on the road: its pair)
        if not split_after[k] and b + 1 < n and trip[b + 1] == trip[b]:
            on, total, direction = _context_pair(b + 1, b, road, pos, x, y, r, nodes, tol_m, max_detour)
            if not (s != 0 and direction == s):  # direction runs from the context point to the run's end
                dt = t_s[b + 1] - t_s[b]
                tau = _pair_time(on, total, dt, min_step, max_step, max_gap, max_kmh, speed[b], speed[b + 1])
                if tau > 0:
                    dist[k] += on
                    time[k] += tau
    return pid, first[:n_pass].copy(), last[:n_pass].copy(), npts[:n_pass].copy(), dist, time


@njit(cache=True, nogil=True)
def shared_nodes(node_first, node_x, node_y, tol_m):
    """The nodes each pair of roads shares: node j of road r is shared with road r2 when r2 has a node
    within tol_m of it in x and in y (a junction; a road shares each of its nodes with itself).

    node_first (n_roads + 1): each road's nodes in CSR; node_x, node_y: their coordinates (metres).
    Returns (key, node), sorted by key then node: key = r * n_roads + r2, node = j. Candidates are found
    in a grid of cells of 2 tol_m, so the cost grows with the nodes, not with their pairs."""
    n_roads = node_first.shape[0] - 1
    n = node_x.shape[0]
    node_road = np.empty(n, dtype=np.int64)
    for r in range(n_roads):
        for j in range(node_first[r], node_first[r + 1]):
            node_road[j] = r
    size = 2.0 * tol_m
    cx = np.empty(n, dtype=np.int64)
    cy = np.empty(n, dtype=np.int64)
    for j in range(n):
        cx[j] = int(math.floor(node_x[j] / size))
        cy[j] = int(math.floor(node_y[j] / size))
    order = np.argsort(cx * 4_000_000_003 + cy)  # cells in (x, y) order; coordinates within ±8,000 km
    cell = (cx * 4_000_000_003 + cy)[order]
    keys = []
    nodes = []
    for j in range(n):
        for ox in (-1, 0, 1):
            for oy in (-1, 0, 1):
                c = (cx[j] + ox) * 4_000_000_003 + cy[j] + oy
                for i in range(np.searchsorted(cell, c), np.searchsorted(cell, c, side="right")):
                    k = order[i]
                    if abs(node_x[j] - node_x[k]) < tol_m and abs(node_y[j] - node_y[k]) < tol_m:
                        keys.append(node_road[j] * n_roads + node_road[k])
                        nodes.append(j)
    # one row per (key, node), in that order (a node may meet several of r2's nodes)
    pairs = np.unique(np.array(keys, dtype=np.int64) * n + np.array(nodes, dtype=np.int64))
    return pairs // n, pairs % n
