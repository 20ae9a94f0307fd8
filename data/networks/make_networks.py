"""Build the synthetic (合成) road networks and approximate district outlines: deterministic, reproducible.

There is no open road geometry inside 大倉山三丁目 or 中山町, so this script lays out a
plausible network at the real representative point and at the real size of each district:
arterials on the edges, a slightly irregular grid of 30 km/h residential streets with jogged
(食い違い) crossings, one diagonal cut-through street (the treated street) and two comparison
streets. Every intersection is a shared vertex (identical coordinates) of the roads meeting there.

Run:  python data/networks/make_networks.py      (rewrites the *_roads.geojson / *_area.geojson files)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyproj import Transformer
from shapely.geometry import LineString, Point

HERE = Path(__file__).resolve().parent
METRIC_CRS = "EPSG:6677"  # JGD2011 / Japan Plane Rectangular CS IX, metres
EXTEND_M = 150.0  # arterials run this far beyond the district square
STUB_M = 5.0  # streets are drawn this far past the road they end on, then trimmed back to it
ROAD_NOTE = (
    "合成データ (synthetic data): plausible network placed at the real location and size of {name}; "
    "not real road geometry"
)
AREA_NOTE = "概略区域（合成）: approximate outline of the real area, not the official boundary"


@dataclass(frozen=True)
class DistrictLayout:
    """Real facts (point, area) plus the layout choices of one synthetic network."""

    key: str
    name_ja: str
    name_en: str
    lat: float
    lon: float
    area_m2: float
    n_streets: int  # residential streets per direction inside the square
    treated_corner: str  # corner cut by the diagonal treated street: "NW", "NE", "SW", "SE"
    treated_leg_m: float  # distance from the arterial corner to each end of the treated street, metres
    comparison_h: int  # index (south to north) of the E-W street whose west part is comparison street 1
    comparison_v: int  # index (west to east) of the N-S street whose south part is comparison street 2
    comparison_len_m: float  # approximate length of the comparison streets, metres
    seed: int


LAYOUTS = (
    DistrictLayout(
        "okurayama", "大倉山三丁目", "Okurayama 3-chome", 35.521096, 139.626967, 240442, 4, "NW", 240.0, 0, 3, 330.0, 3
    ),
    DistrictLayout("nakayama", "中山町", "Nakayamacho", 35.509773, 139.542986, 967257, 6, "SE", 250.0, 5, 0, 360.0, 7),
)


def _road(road_id, name, name_en, highway, maxspeed, role, coords):
    return {
        "road_id": road_id,
        "name": name,
        "name_en": name_en,
        "highway": highway,
        "maxspeed": int(maxspeed),
        "oneway": "no",
        "role": role,
        "coords": [tuple(map(float, c)) for c in coords],
    }


def layout_roads(lay: DistrictLayout) -> list[dict]:
    """Road centrelines of one district in local metres (x east, y north, origin at the representative point)."""
    rng = np.random.default_rng(lay.seed)
    h = math.sqrt(lay.area_m2) / 2.0  # half side of the square of the real area, metres
    a = h + 15.0  # arterials run just outside the residential blocks
    e = a + EXTEND_M
    roads = []
    # Arterials: a box with gentle bends, each extending beyond the corners.
    roads.append(
        _road(
            "A1",
            "幹線道路A（合成）",
            "Arterial A (synthetic)",
            "primary",
            50,
            "arterial",
            [(-a - 6, -e), (-a + 4, -0.3 * a), (-a - 3, 0.4 * a), (-a + 2, e)],
        )
    )
    roads.append(
        _road(
            "A2",
            "幹線道路B（合成）",
            "Arterial B (synthetic)",
            "secondary",
            40,
            "arterial",
            [(-e, a + 3), (-0.2 * a, a - 5), (e, a + 8)],
        )
    )
    roads.append(
        _road(
            "A3",
            "幹線道路C（合成）",
            "Arterial C (synthetic)",
            "secondary",
            40,
            "arterial",
            [(a + 8, -e), (a - 4, 0.1 * a), (a + 10, e)],
        )
    )
    roads.append(
        _road(
            "A4",
            "幹線道路D（合成）",
            "Arterial D (synthetic)",
            "primary",
            50,
            "arterial",
            [(-e, -a - 4), (0.3 * a, -a + 6), (e, -a - 2)],
        )
    )

    n = lay.n_streets
    base = np.linspace(-h, h, n + 2)[1:-1]
    xs = base + rng.uniform(-12, 12, n)  # vertical (N-S) streets
    ys = base + rng.uniform(-12, 12, n)  # horizontal (E-W) streets
    out = a + STUB_M  # residential streets drawn to just beyond the arterial box, trimmed later
    rid = 0

    def next_r():
        nonlocal rid
        rid += 1
        return f"R{rid}"

    def res(coords, road_id=None, role="residential", name=None, name_en=None):
        road_id = road_id or next_r()
        name = name or f"生活道路{road_id}（合成）"
        name_en = name_en or f"Residential street {road_id} (synthetic)"
        roads.append(_road(road_id, name, name_en, "residential", 30, role, coords))

    # Horizontal (E-W) streets, each jogged (食い違い) at one vertical street: west part / east part.
    # Vertical (N-S) streets, each jogged at one horizontal street: south part / north part.
    # Jogs are chosen so that no street jogs where its crossing street jogs too.
    ch, cv = lay.comparison_h, lay.comparison_v
    h_jog = {ch: int(np.argmin(np.abs(xs - (-a + lay.comparison_len_m))))}
    v_jog = {cv: int(np.argmin(np.abs(ys - (-a + lay.comparison_len_m))))}
    for k in range(n):
        if k not in h_jog:
            h_jog[k] = next(m for m in ((k + n // 2 + t) % n for t in range(n)) if v_jog.get(m) != k)
    for i in range(n):
        if i not in v_jog:
            v_jog[i] = next(j for j in ((i + 2 + t) % n for t in range(n)) if h_jog[j] != i and j != ch)
    h_parts = {}
    for k, y in enumerate(ys):
        jx = xs[h_jog[k]]
        shift = rng.choice([-1, 1]) * rng.uniform(18, 30)
        bend = rng.uniform(-8, 8)
        west = [(-out, y), ((-h + jx) / 2, y + bend), (jx + STUB_M, y)]
        east = [(jx - STUB_M, y + shift), ((h + jx) / 2, y + shift - bend), (out, y + shift)]
        h_parts[k] = (jx, LineString(west), LineString(east))
        if k == ch:
            res(west, "C1", "comparison", "比較道路1（合成）", "Comparison street 1 (synthetic)")
        else:
            res(west)
        res(east)

    def y_on(k, x):
        jx, west, east = h_parts[k]
        part = west if x < jx else east
        hit = part.intersection(LineString([(x, -10 * a), (x, 10 * a)]))
        return hit.y

    for i, x in enumerate(xs):
        j = v_jog[i]
        sign = 1 if i < n - 1 else -1
        shift = sign * rng.uniform(18, 30)
        bend = rng.uniform(-8, 8)
        y0, y1 = y_on(j, x), y_on(j, x + shift)
        south = [(x, -out), (x + bend, (-h + y0) / 2), (x, y0 + STUB_M)]
        north = [(x + shift, y1 - STUB_M), (x + shift - bend, (h + y1) / 2), (x + shift, out)]
        if i == cv:
            res(south, "C2", "comparison", "比較道路2（合成）", "Comparison street 2 (synthetic)")
        else:
            res(south)
        res(north)
    # A diagonal lane across one block (not every street is on the grid).
    bx, by = xs[n // 2 - 1], ys[n // 2 - 1]
    res([(bx - STUB_M, by - STUB_M), (xs[n // 2] + STUB_M * 0.3, ys[n // 2] + STUB_M * 0.3)])
    # The treated street: a straight-ish diagonal cutting the corner between two arterials.
    sx = -1.0 if "W" in lay.treated_corner else 1.0
    sy = 1.0 if "N" in lay.treated_corner else -1.0
    d = lay.treated_leg_m
    p0 = np.array([sx * (a + STUB_M), sy * (a - d)])
    p1 = np.array([sx * (a - d), sy * (a + STUB_M)])
    mid = (p0 + p1) / 2 + np.array([-sx, -sy]) * 6.0
    roads.append(
        _road(
            "T1",
            "対策道路（合成）",
            "Treated street (synthetic)",
            "residential",
            30,
            "treated",
            [tuple(p0), tuple(mid), tuple(p1)],
        )
    )
    return roads


def node_roads(roads: list[dict]) -> list[dict]:
    """Insert every crossing as a shared vertex and trim the stubs drawn past the road a street ends on."""
    lines = [LineString(r["coords"]) for r in roads]
    extra: list[list[tuple[float, float]]] = [[] for _ in roads]
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            inter = lines[i].intersection(lines[j])
            if inter.is_empty:
                continue
            pts = getattr(inter, "geoms", [inter])
            for p in pts:
                if p.geom_type != "Point":
                    raise ValueError(f"roads {roads[i]['road_id']} and {roads[j]['road_id']} overlap")
                q = (round(p.x, 3), round(p.y, 3))
                extra[i].append(q)
                extra[j].append(q)
    out = []
    for r, line, pts in zip(roads, lines, extra, strict=True):
        cross = sorted({(line.project(Point(q)), q) for q in pts})
        verts = [(line.project(Point(c)), (round(c[0], 3), round(c[1], 3))) for c in line.coords]
        merged = []
        for s, q in sorted(verts + cross):
            if merged and abs(merged[-1][0] - s) < 0.05:
                if q in [c[1] for c in cross]:  # a crossing replaces a vertex at the same place
                    merged[-1] = (s, q)
                continue
            merged.append((s, q))
        cross_s = [s for s, _ in cross]
        if cross_s and cross_s[0] <= 2 * STUB_M:  # drawn past the road it starts on
            merged = [m for m in merged if m[0] >= cross_s[0] - 1e-6]
        if cross_s and line.length - cross_s[-1] <= 2 * STUB_M:
            merged = [m for m in merged if m[0] <= cross_s[-1] + 1e-6]
        out.append({**r, "coords": [q for _, q in merged]})
    return out


def to_feature_collection(lay: DistrictLayout, roads: list[dict]) -> dict:
    """GeoJSON FeatureCollection (EPSG:4326 lon/lat, 7 decimals) of the noded roads."""
    fwd = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    inv = Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)
    cx, cy = fwd.transform(lay.lon, lay.lat)
    feats = []
    for r in roads:
        xy = np.array(r["coords"])
        lon, lat = inv.transform(xy[:, 0] + cx, xy[:, 1] + cy)
        coords = [[round(float(x), 7), round(float(y), 7)] for x, y in zip(lon, lat, strict=True)]
        props = {k: v for k, v in r.items() if k != "coords"}
        feats.append(
            {"type": "Feature", "properties": props, "geometry": {"type": "LineString", "coordinates": coords}}
        )
    return {
        "type": "FeatureCollection",
        "name": f"{lay.key}_roads",
        "synthetic": True,
        "note": ROAD_NOTE.format(name=lay.name_ja),
        "crs_note": "EPSG:4326 lon/lat",
        "features": feats,
    }


def area_feature_collection(lay: DistrictLayout) -> dict:
    """Approximate district outline: a slightly irregular quadrilateral of the real area (EPSG:4326)."""
    fwd = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    inv = Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)
    cx, cy = fwd.transform(lay.lon, lay.lat)
    h = math.sqrt(lay.area_m2) / 2.0
    corners = np.array([(-h - 6, -h + 4), (h + 5, -h - 3), (h - 4, h + 6), (-h + 3, h - 5)])
    # rescale so the polygon's area equals the real area
    x, y = corners[:, 0], corners[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    corners = corners * math.sqrt(lay.area_m2 / area)
    lon, lat = inv.transform(corners[:, 0] + cx, corners[:, 1] + cy)
    ring = [[round(float(a), 7), round(float(b), 7)] for a, b in zip(lon, lat, strict=True)]
    ring.append(ring[0])
    return {
        "type": "FeatureCollection",
        "name": f"{lay.key}_area",
        "synthetic": True,
        "note": AREA_NOTE,
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {
                    "name_ja": lay.name_ja,
                    "name_en": lay.name_en,
                    "synthetic": True,
                    "area_m2": lay.area_m2,
                    "note": AREA_NOTE,
                },
            }
        ],
    }


def check_network(fc: dict) -> None:
    """Raise ValueError unless roads that touch share a vertex and the network is one connected graph."""
    feats = fc["features"]
    vsets = [set(map(tuple, f["geometry"]["coordinates"])) for f in feats]
    lines = [LineString(f["geometry"]["coordinates"]) for f in feats]
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            if lines[i].distance(lines[j]) < 1e-7 and not (vsets[i] & vsets[j]):
                raise ValueError(
                    f"{feats[i]['properties']['road_id']} and {feats[j]['properties']['road_id']} touch without a "
                    "shared vertex"
                )
    parent = list(range(len(feats)))

    def find(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for i in range(len(feats)):
        for j in range(i + 1, len(feats)):
            if vsets[i] & vsets[j]:
                parent[find(i)] = find(j)
    if len({find(k) for k in range(len(feats))}) != 1:
        raise ValueError(f"{fc['name']}: network is not connected")


def main() -> None:
    for lay in LAYOUTS:
        fc = to_feature_collection(lay, node_roads(layout_roads(lay)))
        check_network(fc)
        (HERE / f"{lay.key}_roads.geojson").write_text(
            json.dumps(fc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        (HERE / f"{lay.key}_area.geojson").write_text(
            json.dumps(area_feature_collection(lay), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        print(f"{lay.key}: {len(fc['features'])} roads")


if __name__ == "__main__":
    main()
