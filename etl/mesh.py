"""JIS X 0410 regional mesh codes (地域メッシュ): vectorised 2次メッシュ (secondary mesh) codes."""

from __future__ import annotations

import numpy as np

# A tiny epsilon keeps points that sit exactly on a mesh edge (after float rounding) in the
# mesh to the north / east of it, as the standard's half-open intervals require.
_EPS = 1e-9


def mesh2_code(lat, lon) -> np.ndarray:
    """2次メッシュコード (6 digits, about 10 km square) of points, as int64.

    Parameters
    ----------
    lat, lon : float or array-like of float
        Latitude and longitude in decimal degrees (JGD2011 / WGS84, EPSG:4326 axis values).

    Returns
    -------
    numpy.ndarray of int64
        ``pp uu q v``: pp = floor(lat * 1.5), uu = floor(lon) - 100 (the 1次メッシュ),
        q = 8 latitude rows and v = 8 longitude columns inside it (the 2次メッシュ);
        e.g. lat 35.521096, lon 139.626967 -> 533925.

    Raises
    ------
    ValueError
        If a point lies outside the area the code is defined for (lat 20-46, lon 100-180 here)
        or is not finite.
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    lat, lon = np.broadcast_arrays(lat, lon)
    bad = ~(np.isfinite(lat) & np.isfinite(lon)) | (lat < 20) | (lat >= 46.6666) | (lon < 100) | (lon >= 180)
    if bad.any():
        k = int(np.flatnonzero(bad.ravel())[0])
        raise ValueError(
            f"mesh2_code: point lat={lat.ravel()[k]!r}, lon={lon.ravel()[k]!r} is outside the JIS X 0410 mesh area "
            "(expects decimal degrees, lat 20-46.67, lon 100-180)"
        )
    y = lat * 1.5 + _EPS
    x = lon - 100.0 + _EPS
    p = np.floor(y)
    u = np.floor(x)
    q = np.floor((y - p) * 8.0)
    v = np.floor((x - u) * 8.0)
    return (p * 10000 + u * 100 + q * 10 + v).astype(np.int64)


def mesh2_bounds(code: int) -> tuple[float, float, float, float]:
    """(south, west, north, east) in decimal degrees of a 2次メッシュ code (JIS X 0410): a cell of 5' of
    latitude × 7.5' of longitude; south and west edges belong to it, north and east to its neighbours.

    Raises ValueError for a code that is no 2次メッシュ (6 digits ``pp uu q v`` with q, v in 0-7)."""
    p, rest = divmod(int(code), 10000)
    u, rest = divmod(rest, 100)
    q, v = divmod(rest, 10)
    if not (0 < p < 100 and q < 8 and v < 8):
        raise ValueError(f"mesh2_bounds: {code!r} is not a 2次メッシュ code (pp uu q v, q and v 0-7)")
    south, west = p / 1.5 + q / 12.0, 100.0 + u + v / 8.0
    return south, west, south + 1 / 12.0, west + 1 / 8.0
