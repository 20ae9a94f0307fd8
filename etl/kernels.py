"""Compiled (numba) kernels of the ingest: calendar checks of delivered dates / times and the EPSG:6677 projection.

Both are exact re-statements of what they replace, tested against them (tests/test_ingest_kernels.py):

* `digits_to_seconds`: YYYYMMDD / YYYYMMDDhhmm / YYYYMMDDhhmmss integers → seconds since
  1970-01-01 and a validity flag (years 1900–2200, real calendar dates), one pass, no temporaries;
* `to_epsg6677`: longitude / latitude (JGD2011 degrees) → Japan Plane Rectangular CS IX metres
  (EPSG:6677: GRS80, origin 36°N 139°50'E, scale 0.9999), by Krüger's series to the 6th order
  (Karney 2011), the method PROJ uses for its transverse Mercator: within 1 µm of pyproj over Japan.

Compiled once per machine (numba's cache, next to this file) and before worker processes fork.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

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
def digits_to_seconds(v, valid_in, date_only):
    """(seconds, valid) of integer dates / times; the form is told by the value (see etl.validate)."""
    n = v.shape[0]
    secs = np.zeros(n, np.int64)
    valid = np.zeros(n, np.bool_)
    for i in range(n):
        if not valid_in[i]:
            continue
        x = v[i]
        if date_only:
            if x < 10_000_000 or x >= 1_000_000_000:
                continue
            x *= 1_000_000
        elif 100_000_000_000 <= x < 1_000_000_000_000:
            x *= 100
        elif not (10_000_000_000_000 <= x < 1_000_000_000_000_000):
            continue
        year = x // 10_000_000_000
        rest = x % 10_000_000_000
        month = rest // 100_000_000
        rest = rest % 100_000_000
        day = rest // 1_000_000
        rest = rest % 1_000_000
        hh = rest // 10_000
        rest = rest % 10_000
        mm = rest // 100
        ss = rest % 100
        if year < 1900 or year > 2200 or month < 1 or month > 12 or day < 1 or hh >= 24 or mm >= 60 or ss >= 60:
            continue
        if month == 2:
            leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
            dim = 29 if leap else 28
        elif month in (4, 6, 9, 11):
            dim = 30
        else:
            dim = 31
        if day > dim:
            continue
        secs[i] = _days_from_civil(year, month, day) * 86400 + hh * 3600 + mm * 60 + ss
        valid[i] = True
    return secs, valid


# --- EPSG:6677 --------------------------------------------------------------------------------

_A = 6378137.0
_F = 1 / 298.257222101
_N = _F / (2 - _F)
_AA = _A / (1 + _N) * (1 + _N**2 / 4 + _N**4 / 64 + _N**6 / 256)
_ALPHA = np.array([
    _N / 2 - 2 * _N**2 / 3 + 5 * _N**3 / 16 + 41 * _N**4 / 180 - 127 * _N**5 / 288 + 7891 * _N**6 / 37800,
    13 * _N**2 / 48 - 3 * _N**3 / 5 + 557 * _N**4 / 1440 + 281 * _N**5 / 630 - 1983433 * _N**6 / 1935360,
    61 * _N**3 / 240 - 103 * _N**4 / 140 + 15061 * _N**5 / 26880 + 167603 * _N**6 / 181440,
    49561 * _N**4 / 161280 - 179 * _N**5 / 168 + 6601661 * _N**6 / 7257600,
    34729 * _N**5 / 80640 - 3418889 * _N**6 / 1995840,
    212378941 * _N**6 / 319334400,
])  # fmt: skip
_E = math.sqrt(_F * (2 - _F))
_K0 = 0.9999
_LAT0 = math.radians(36.0)
_LON0 = math.radians(139.0 + 50.0 / 60.0)


@njit(cache=True, nogil=True)
def _xi_eta(phi, lam, alpha, e):
    s = math.sin(phi)
    t = math.sinh(math.atanh(s) - e * math.atanh(e * s))
    xi_ = math.atan2(t, math.cos(lam))
    eta_ = math.atanh(math.sin(lam) / math.sqrt(1.0 + t * t))
    # Clenshaw summation of sum_j alpha_j sin(2 j (xi' + i eta')), in real arithmetic.
    c2x, s2x = math.cos(2 * xi_), math.sin(2 * xi_)
    ch, sh = math.cosh(2 * eta_), math.sinh(2 * eta_)
    ar, ai = 2 * c2x * ch, -2 * s2x * sh  # 2 cos(2z)
    y0r = y0i = y1r = y1i = 0.0
    for j in range(alpha.shape[0] - 1, -1, -1):
        tr = ar * y0r - ai * y0i - y1r + alpha[j]
        ti = ar * y0i + ai * y0r - y1i
        y1r, y1i = y0r, y0i
        y0r, y0i = tr, ti
    szr, szi = s2x * ch, c2x * sh  # sin(2z)
    return xi_ + (y0r * szr - y0i * szi), eta_ + (y0r * szi + y0i * szr)


@njit(cache=True, nogil=True)
def _project(lon, lat, alpha, e, aa, k0, lat0, lon0):
    n = lon.shape[0]
    x = np.empty(n)
    y = np.empty(n)
    xi0, _ = _xi_eta(lat0, 0.0, alpha, e)
    for i in range(n):
        xi, eta = _xi_eta(math.radians(lat[i]), math.radians(lon[i]) - lon0, alpha, e)
        x[i] = k0 * aa * eta
        y[i] = k0 * aa * (xi - xi0)
    return x, y


def to_epsg6677(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude / latitude (degrees, JGD2011) → (easting, northing) metres in EPSG:6677."""
    lon = np.ascontiguousarray(lon, dtype=np.float64)
    lat = np.ascontiguousarray(lat, dtype=np.float64)
    return _project(lon, lat, _ALPHA, _E, _AA, _K0, _LAT0, _LON0)


def warm_up() -> None:
    """Compile (or load from numba's cache) before worker processes fork."""
    digits_to_seconds(np.array([20170905080000], np.int64), np.ones(1, np.bool_), False)
    digits_to_seconds(np.array([20170905], np.int64), np.ones(1, np.bool_), True)
    to_epsg6677(np.array([139.6]), np.array([35.5]))
