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
def trip_features_kernel(trip, gps_us, x, y, speed_kmh, max_gap_s, min_step_m, g_ms2):
    """Per point of rows ordered by trip then time (see analysis.matchstage.trip_features): seq,
    dt_prev_s, heading_deg, decel_prev_g, first and last flags, in one pass."""
    n = trip.shape[0]
    seq = np.empty(n, dtype=np.int32)
    dt_s = np.empty(n)
    heading = np.empty(n)
    decel = np.empty(n)
    first = np.empty(n, dtype=np.bool_)
    last = np.empty(n, dtype=np.bool_)
    k = 0
    for i in range(n):
        if i == 0 or trip[i] != trip[i - 1]:
            k = 0
            first[i] = True
            dt_s[i] = np.nan
            heading[i] = np.nan
            decel[i] = np.nan
        else:
            k += 1
            first[i] = False
            gap = (gps_us[i] - gps_us[i - 1]) / 1e6
            dx = x[i] - x[i - 1]
            dy = y[i] - y[i - 1]
            dt_s[i] = gap
            if gap <= max_gap_s and math.hypot(dx, dy) >= min_step_m:
                heading[i] = math.degrees(math.atan2(dx, dy)) % 360.0
            else:
                heading[i] = np.nan
            decel[i] = (speed_kmh[i - 1] - speed_kmh[i]) / 3.6 / gap / g_ms2 if gap > 0 else np.nan
        seq[i] = k
        last[i] = i == n - 1 or trip[i + 1] != trip[i]
    return seq, dt_s, heading, decel, first, last
