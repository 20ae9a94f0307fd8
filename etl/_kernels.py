"""Compiled (numba) kernels of the ingest: record boundaries, calendar checks of delivered dates / times and the
EPSG:6677 projection.

* `stray_bytes` / `records`: a record ends only at the line ending its file uses (CRLF or LF); a CR or
  LF that is not that ending, or a NUL, breaks the record it lies in (one vectorised pass decides
  the usual clean payload; the record table is built only for a payload that has such a byte).

The others are exact re-statements of what they replace, tested against them (tests/test_ingest_kernels.py):

* `digits_to_seconds`: YYYYMMDD / YYYYMMDDhhmm / YYYYMMDDhhmmss integers → seconds since
  1970-01-01 and a validity flag (years 1900–2200, real calendar dates), one pass, no temporaries;
* `to_epsg6677`: longitude / latitude (JGD2011 degrees) → Japan Plane Rectangular CS IX metres
  (EPSG:6677: GRS80, origin 36°N 139°50'E, scale 0.9999), by Krüger's series to the 6th order
  (Karney 2011; conformal latitude by its series too), the method PROJ uses for its transverse
  Mercator: within 1 µm of pyproj over Japan, in about a third of its time.

Compiled once per machine (numba's cache, next to this file) and before worker processes fork.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# --- records ----------------------------------------------------------------------------------

CR, LF, NUL = 13, 10, 0
# Reasons a record is broken, by code (0: whole): a NUL wins over a stray CR, which wins over a stray LF.
BROKEN_REASONS = ("", "nul_in_record", "stray_cr", "stray_lf")


@njit(cache=True, nogil=True)
def stray_bytes(a, crlf):
    """How many CR / LF bytes of the payload `a` (uint8) are not the file's line ending (CRLF when `crlf`,
    else LF): 0 for a clean payload (NULs are looked for apart, by memchr). Branch-free, so it
    vectorises (~7 GB/s): in a CRLF file, a CR not followed by an LF or an LF not preceded by a CR
    makes `(byte is CR) xor (next byte is LF)` true."""
    n = a.shape[0]
    if n == 0:
        return 0
    s = 0
    if crlf:
        for i in range(n - 1):
            s += (a[i] == CR) ^ (a[i + 1] == LF)
        s += (a[0] == LF) + (a[n - 1] == CR)
    else:
        for i in range(n):
            s += a[i] == CR
    return s


@njit(cache=True, nogil=True)
def records(a, crlf):
    """(start, end, code) of every record of the payload `a`: bytes [start, end) without the line ending;
    code 0 whole, else the index in BROKEN_REASONS. A payload not ending in a line ending has a last
    record up to its end."""
    n = a.shape[0]
    width = 2 if crlf else 1
    count = 0
    i = 0
    while i < n:
        if a[i] == LF and (not crlf or (i > 0 and a[i - 1] == CR)):
            count += 1
        i += 1
    tail = n > 0 and not (a[n - 1] == LF and (not crlf or (n > 1 and a[n - 2] == CR)))
    m = count + (1 if tail else 0)
    start = np.zeros(m, np.int64)
    end = np.zeros(m, np.int64)
    code = np.zeros(m, np.int8)
    r = 0
    s = 0
    worst = 0
    for i in range(n):
        c = a[i]
        if c == LF and (not crlf or (i > 0 and a[i - 1] == CR)):
            start[r] = s
            end[r] = i + 1 - width
            code[r] = worst
            r += 1
            s = i + 1
            worst = 0
            continue
        if c == NUL:
            worst = 1
        elif c == CR and not (crlf and i + 1 < n and a[i + 1] == LF) and worst != 1:
            worst = 2
        elif c == LF and worst == 0:
            worst = 3
    if tail:
        start[r] = s
        end[r] = n
        code[r] = worst
    return start, end, code


@njit(cache=True, nogil=True)
def join_records(a, start, end, keep, crlf):
    """The kept records of `a`, each followed by the line ending (CRLF when `crlf`, else LF), as uint8."""
    width = 2 if crlf else 1
    total = 0
    for r in range(start.shape[0]):
        if keep[r]:
            total += end[r] - start[r] + width
    out = np.empty(total, np.uint8)
    o = 0
    for r in range(start.shape[0]):
        if keep[r]:
            ln = end[r] - start[r]
            out[o : o + ln] = a[start[r] : end[r]]
            o += ln
            if crlf:
                out[o] = CR
                o += 1
            out[o] = LF
            o += 1
    return out


# --- calendar -----------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    mp = m + (-3 if m > 2 else 9)
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@njit(cache=True, nogil=True)
def _date_days(date):
    """(days since 1970-01-01, valid) of a YYYYMMDD integer (years 1900-2200, real calendar dates)."""
    year = date // 10_000
    month = (date // 100) % 100
    day = date % 100
    if year < 1900 or year > 2200 or month < 1 or month > 12 or day < 1:
        return 0, False
    if month == 2:
        dim = 29 if ((year % 4 == 0 and year % 100 != 0) or year % 400 == 0) else 28
    elif month == 4 or month == 6 or month == 9 or month == 11:
        dim = 30
    else:
        dim = 31
    if day > dim:
        return 0, False
    return _days_from_civil(year, month, day), True


@njit(cache=True, nogil=True)
def digits_to_seconds(v, valid_in, date_only):
    """(seconds, valid) of integer dates / times; the form is told by the value (see etl.validate)."""
    n = v.shape[0]
    secs = np.zeros(n, np.int64)
    valid = np.zeros(n, np.bool_)
    last_date = -1
    last_days = 0
    last_ok = False
    for i in range(n):
        if not valid_in[i]:
            continue
        x = v[i]
        if date_only:
            if x < 10_000_000 or x >= 1_000_000_000:
                continue
            date = x
            rest = 0
        elif 100_000_000_000 <= x < 1_000_000_000_000:  # YYYYMMDDhhmm
            date = x // 10_000
            rest = (x % 10_000) * 100
        elif 10_000_000_000_000 <= x < 1_000_000_000_000_000:  # YYYYMMDDhhmmss
            date = x // 1_000_000
            rest = x % 1_000_000
        else:
            continue
        if date != last_date:  # the rows of a file mostly share their date: checked once
            last_days, last_ok = _date_days(date)
            last_date = date
        if not last_ok:
            continue
        hh = rest // 10_000
        mm = (rest // 100) % 100
        ss = rest % 100
        if hh >= 24 or mm >= 60 or ss >= 60:
            continue
        secs[i] = last_days * 86400 + hh * 3600 + mm * 60 + ss
        valid[i] = True
    return secs, valid


# --- exact duplicates ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def repeated_keys(keys):
    """True where an int64 key occurred earlier in the array (as pandas' duplicated(keep="first")):
    an open-addressing hash set (linear probing, load ≤ 1/2), one pass. The slot is the top bits of
    the key times 2^64/φ (Fibonacci hashing), so keys alike in their low bits spread too."""
    n = keys.shape[0]
    out = np.zeros(n, np.bool_)
    bits = 4
    while (1 << bits) < 2 * n:
        bits += 1
    mask = (1 << bits) - 1
    shift = np.uint64(64 - bits)
    golden = np.uint64(0x9E3779B97F4A7C15)
    table = np.zeros(mask + 1, np.int64)
    used = np.zeros(mask + 1, np.bool_)
    for i in range(n):
        k = keys[i]
        j = np.int64((np.uint64(k) * golden) >> shift)
        while used[j]:
            if table[j] == k:
                out[i] = True
                break
            j = (j + 1) & mask
        else:
            used[j] = True
            table[j] = k
    return out


# --- EPSG:6677 --------------------------------------------------------------------------------

_A = 6378137.0
_F = 1 / 298.257222101
_N = _F / (2 - _F)
_AA = _A / (1 + _N) * (1 + _N**2 / 4 + _N**4 / 64 + _N**6 / 256)
_ALPHA = np.array(
    [
        _N / 2 - 2 * _N**2 / 3 + 5 * _N**3 / 16 + 41 * _N**4 / 180 - 127 * _N**5 / 288 + 7891 * _N**6 / 37800,
        13 * _N**2 / 48 - 3 * _N**3 / 5 + 557 * _N**4 / 1440 + 281 * _N**5 / 630 - 1983433 * _N**6 / 1935360,
        61 * _N**3 / 240 - 103 * _N**4 / 140 + 15061 * _N**5 / 26880 + 167603 * _N**6 / 181440,
        49561 * _N**4 / 161280 - 179 * _N**5 / 168 + 6601661 * _N**6 / 7257600,
        34729 * _N**5 / 80640 - 3418889 * _N**6 / 1995840,
        212378941 * _N**6 / 319334400,
    ]
)
_E = math.sqrt(_F * (2 - _F))
_K0 = 0.9999
_LAT0 = math.radians(36.0)
_LON0 = math.radians(139.0 + 50.0 / 60.0)


# Conformal latitude from geographic latitude: chi = phi + sum_j c_j sin(2 j phi) (Karney 2011, 6th order).
_C = np.array(
    [
        -2 * _N + 2 * _N**2 / 3 + 4 * _N**3 / 3 - 82 * _N**4 / 45 + 32 * _N**5 / 45 + 4642 * _N**6 / 4725,
        5 * _N**2 / 3 - 16 * _N**3 / 15 - 13 * _N**4 / 9 + 904 * _N**5 / 315 - 1522 * _N**6 / 945,
        -26 * _N**3 / 15 + 34 * _N**4 / 21 + 8 * _N**5 / 5 - 12686 * _N**6 / 2835,
        1237 * _N**4 / 630 - 12 * _N**5 / 5 - 24832 * _N**6 / 14175,
        -734 * _N**5 / 315 + 109598 * _N**6 / 31185,
        444337 * _N**6 / 155925,
    ]
)


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _clenshaw_sin(s2, c2, coef):
    """sum_j coef[j] sin(2 (j + 1) x), given sin 2x and cos 2x."""
    a = 2 * c2
    y0 = 0.0
    y1 = 0.0
    for j in range(coef.shape[0] - 1, -1, -1):
        y0, y1 = a * y0 - y1 + coef[j], y0
    return y0 * s2


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _project(lon, lat, alpha, coef, aa, k0, lon0, xi0):
    n = lon.shape[0]
    x = np.empty(n)
    y = np.empty(n)
    for i in range(n):
        phi = math.radians(lat[i])
        lam = math.radians(lon[i]) - lon0
        sp, cp = math.sin(phi), math.cos(phi)
        chi = phi + _clenshaw_sin(2 * sp * cp, cp * cp - sp * sp, coef)
        sc, cc = math.sin(chi), math.cos(chi)
        sl, cl = math.sin(lam), math.cos(lam)
        # xi' = atan2(sin chi, cos chi cos lam), eta' = atanh(cos chi sin lam); double angles algebraically.
        u = cc * sl
        big = (1 + u) / (1 - u)  # exp(2 eta')
        eta_ = 0.5 * math.log(big)
        xi_ = math.atan2(sc, cc * cl)
        d2 = sc * sc + cc * cc * cl * cl
        s2x = 2 * sc * cc * cl / d2
        c2x = (cc * cc * cl * cl - sc * sc) / d2
        ch = 0.5 * (big + 1 / big)
        sh = 0.5 * (big - 1 / big)
        # Clenshaw summation of sum_j alpha_j sin(2 j (xi' + i eta')), in real arithmetic.
        ar, ai = 2 * c2x * ch, -2 * s2x * sh  # 2 cos(2z)
        y0r = y0i = y1r = y1i = 0.0
        for j in range(alpha.shape[0] - 1, -1, -1):
            tr = ar * y0r - ai * y0i - y1r + alpha[j]
            ti = ar * y0i + ai * y0r - y1i
            y1r, y1i = y0r, y0i
            y0r, y0i = tr, ti
        szr, szi = s2x * ch, c2x * sh  # sin(2z)
        x[i] = k0 * aa * (eta_ + (y0r * szi + y0i * szr))
        y[i] = k0 * aa * (xi_ + (y0r * szr - y0i * szi) - xi0)
    return x, y


def _xi0() -> float:
    """Rectifying-sphere northing of the origin latitude (the y offset of the zone)."""
    chi0 = _LAT0 + sum(c * math.sin(2 * (j + 1) * _LAT0) for j, c in enumerate(_C))
    return chi0 + sum(a * math.sin(2 * (j + 1) * chi0) for j, a in enumerate(_ALPHA))


_XI0 = _xi0()


def to_epsg6677(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude / latitude (degrees, JGD2011) → (easting, northing) metres in EPSG:6677."""
    lon = np.ascontiguousarray(lon, dtype=np.float64)
    lat = np.ascontiguousarray(lat, dtype=np.float64)
    return _project(lon, lat, _ALPHA, _C, _AA, _K0, _LON0, _XI0)


def warm_up() -> None:
    """Compile (or load from numba's cache) before worker processes fork."""
    digits_to_seconds(np.array([20170905080000], np.int64), np.ones(1, np.bool_), False)
    digits_to_seconds(np.array([20170905], np.int64), np.ones(1, np.bool_), True)
    to_epsg6677(np.array([139.6]), np.array([35.5]))
    repeated_keys(np.array([1, 1], np.int64))
    probe = np.frombuffer(b"a\r\nb\n", np.uint8)
    for crlf in (True, False):
        stray_bytes(probe, crlf)
        st, en, code = records(probe, crlf)
        join_records(probe, st, en, code == 0, crlf)
