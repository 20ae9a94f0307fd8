"""Through traffic by gates: trips crossing a district classified by where they enter and leave it.

Gates are where traffic enters or leaves the district: the [[gates]] of its file (a point on an
entering road, or a short line across it), else derived from the network: one gate where a road
crosses the district outline (crossings of one road closer than GATE_MERGE_M are one gate), named
by the road and the side of the district (北側, 南東側 …) and numbered G01, G02 … clockwise from
north. The bundled districts rely on derivation.

The outline decides inside and outside; gates name the crossings. From the stored points of every
trip with a point on the network (the stored points with on_network=False: also the
points off the roads, inside the network's box grown by 300 m; read one month at a time, as a trip
lies in one month), in time order, a crossing is a pair
of consecutive points of which exactly one lies inside the outline. Its gate is the gate on the
road the inside point is matched to (the nearest one to where the pair's segment crosses the
outline when the road has several), else the gate nearest to that crossing within GATE_SNAP_M,
else '?' (a crossing away from every gate).

Classes (GATE_CLASSES), from the trip's origin and destination (様式1-3 where delivered, else the
first and last point of the whole trip: analysis.comparison.trip_ends) and its crossings:

    through    origin and destination outside, enters the area (entry gate → exit gate)
    into       origin outside, destination inside (entry gate)
    out_of     origin inside, destination outside (exit gate)
    internal   origin and destination inside
    perimeter  origin and destination outside, never inside the outline (on the roads around it)

The entry gate is that of the trip's first entry, the exit gate that of its last exit ('' when the
class has none; '?' when the crossing has no gate, or was not seen, e.g. at a period boundary). A
trip's time band (GATE_TIME_BANDS) is that of its first stored point inside the outline (perimeter
trips: of their first point on the network); a trip belongs to the period of its points.

Stored: district_gates, gate_trips (one row per trip), gate_od (trips and distinct vehicles per
time band — and 'all' — class, entry and exit gate) and gate_class_summary (per time band and
class, with the share of trips), replacing earlier rows of the same district and period.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from analysis.comparison import trip_ends
from analysis.filters import ALL_POINTS
from analysis.matchstage import match_stage
from analysis.network import Network, district_network
from analysis.points import matched_folders, points_expression, read_matched_points
from analysis.stages import forget_stage
from config.districts import District, Period
from config.settings import GATE_CLASSES, GATE_MERGE_M, GATE_SNAP_M, GATE_TIME_BANDS, LONLAT_CRS, METRIC_CRS
from etl.memory import trim_freed_memory
from etl.schema import transaction
from etl.warehouse import connect
from geo.calendar import months_between
from geo.network import load_area

GATE_COLUMNS = ["gate_id", "gate_name", "road_id", "source", "x_m", "y_m"]
POINT_COLUMNS = ["trip_id", "seq", "vehicle_id", "gps_time", "hour", "day_type", "x_m", "y_m", "road_idx"]
TRIP_COLUMNS = [
    "trip_id",
    "vehicle_id",
    "gate_class",
    "entry_gate",
    "exit_gate",
    "time_band",
    "day_type",
    "first_time",
    "n_crossings",
    "origin_inside",
    "dest_inside",
]
UNKNOWN_GATE = "?"
_SIDES = ("北", "北東", "東", "南東", "南", "南西", "西", "北西")


def _side(area, x: float, y: float) -> str:
    """Side of the district a point of its outline is on: the compass sector (8) of the outward normal
    of the outline's nearest edge (the east edge of a square is 東, whatever the corner nearby)."""
    best, normal = np.inf, (0.0, 1.0)
    polys = getattr(area, "geoms", [area])
    for poly in polys:
        for ring in (poly.exterior, *poly.interiors):
            c = np.asarray(ring.coords)
            a, b = c[:-1], c[1:]
            d = b - a
            with np.errstate(invalid="ignore", divide="ignore"):
                t = np.clip(((x - a[:, 0]) * d[:, 0] + (y - a[:, 1]) * d[:, 1]) / (d**2).sum(axis=1), 0, 1)
            dist = np.hypot(a[:, 0] + t * d[:, 0] - x, a[:, 1] + t * d[:, 1] - y)
            i = int(np.nanargmin(dist))
            if dist[i] < best:
                n = np.array([d[i, 1], -d[i, 0]]) / (np.hypot(*d[i]) or 1.0)
                # Outward: one metre along the normal from the edge's midpoint leaves the area.
                mid = a[i] + d[i] / 2
                best, normal = dist[i], (n if not shapely.contains_xy(area, *(mid + n)) else -n)
    angle = np.degrees(np.arctan2(normal[0], normal[1])) % 360.0
    return _SIDES[int(((angle + 22.5) % 360) // 45)]


def derive_gates(roads, area, merge_m: float = GATE_MERGE_M) -> pd.DataFrame:
    """One gate where a road (GeoDataFrame in metres) crosses the outline (shapely polygon, metres);
    crossings of one road closer than `merge_m` are one gate (their mean point). Columns GATE_COLUMNS,
    ids G01… clockwise from north around the outline's centroid."""
    boundary = area.boundary
    rows = []
    for road_id, name, geom in zip(roads["road_id"], roads["name"], roads.geometry.values, strict=True):
        inter = shapely.intersection(geom, boundary)
        pts = shapely.get_coordinates(inter)
        if len(pts) == 0:
            continue
        # Greedy clustering along the road: points within merge_m of a cluster's first point join it.
        order = np.argsort(shapely.line_locate_point(geom, shapely.points(pts)))
        pts = pts[order]
        start = 0
        for i in range(1, len(pts) + 1):
            if i == len(pts) or np.hypot(*(pts[i] - pts[start])) >= merge_m:
                x, y = pts[start:i].mean(axis=0)
                rows.append(
                    {"road_id": str(road_id), "road_name": str(name or road_id), "x_m": float(x), "y_m": float(y)}
                )
                start = i
    if not rows:
        return pd.DataFrame({c: [] for c in GATE_COLUMNS})
    g = pd.DataFrame(rows)
    c = area.centroid
    dx, dy = g["x_m"].to_numpy() - c.x, g["y_m"].to_numpy() - c.y
    g["angle"] = np.degrees(np.arctan2(dx, dy)) % 360.0
    g["side"] = [_side(area, x, y) for x, y in zip(g["x_m"], g["y_m"], strict=True)]
    g = g.sort_values(["angle", "road_id"], kind="stable").reset_index(drop=True)
    width = max(2, len(str(len(g))))
    g["gate_id"] = [f"G{i + 1:0{width}d}" for i in range(len(g))]
    g["gate_name"] = g["road_name"] + " " + g["side"] + "側"
    g["source"] = "derived"
    return g[GATE_COLUMNS]


def declared_gates(district: District, network: Network) -> pd.DataFrame:
    """The district file's [[gates]] in metres (a line's midpoint), each on its road (given, else the
    nearest road within the matching radius, else '')."""
    to_m = Transformer.from_crs(LONLAT_CRS, METRIC_CRS, always_xy=True)
    roads = network.roads
    known = set(roads["road_id"])
    rows = []
    for gate in district.gates:
        lon, lat = np.array(gate.coords).T
        x, y = to_m.transform(lon, lat)
        geom = shapely.points(x[0], y[0]) if len(x) == 1 else shapely.linestrings(np.c_[x, y])
        mid = geom if len(x) == 1 else shapely.line_interpolate_point(geom, 0.5, normalized=True)
        if gate.road:
            if gate.road not in known:
                raise ValueError(f"{district.source_path}: gate {gate.id!r}: road {gate.road!r} is not in the network")
            road = gate.road
        else:
            d = shapely.distance(roads.geometry.values, geom)
            road = str(roads["road_id"].iloc[int(np.argmin(d))]) if len(d) and d.min() <= network.radius_m else ""
        rows.append(
            {
                "gate_id": gate.id,
                "gate_name": gate.name_ja,
                "road_id": road,
                "source": "declared",
                "x_m": float(shapely.get_x(mid)),
                "y_m": float(shapely.get_y(mid)),
            }
        )
    return pd.DataFrame(rows, columns=GATE_COLUMNS)


def district_gates(district: District, network: Network, area) -> pd.DataFrame:
    """The district's gates: declared in its file, else derived from the network and the outline."""
    return declared_gates(district, network) if district.gates else derive_gates(network.roads, area)


def crossings(
    points: pd.DataFrame, area, gates: pd.DataFrame, road_ids: np.ndarray, snap_m: float = GATE_SNAP_M
) -> pd.DataFrame:
    """Crossings of the outline by consecutive stored points of a trip, with their gate.

    points: columns trip_id, seq, x_m, y_m, road_idx (-1 off the network); any order. Returns one
    row per crossing: trip_id, seq (of its second point), inward (bool), x_m, y_m (where the pair's
    segment crosses the outline), gate_id ('?' when no gate qualifies), sorted by trip and seq.
    """
    cols = ["trip_id", "seq", "inward", "x_m", "y_m", "gate_id"]
    p = points.sort_values(["trip_id", "seq"], kind="stable")
    trip = p["trip_id"].to_numpy()
    x, y = p["x_m"].to_numpy(float), p["y_m"].to_numpy(float)
    inside = shapely.contains_xy(area, x, y)
    k = np.flatnonzero((trip[1:] == trip[:-1]) & (inside[1:] != inside[:-1]))
    if len(k) == 0:
        return pd.DataFrame({c: [] for c in cols})
    segs = shapely.linestrings(np.stack([np.c_[x[k], y[k]], np.c_[x[k + 1], y[k + 1]]], axis=1))
    where = shapely.centroid(shapely.intersection(segs, area.boundary))
    empty = shapely.is_empty(where)
    cx = np.where(empty, (x[k] + x[k + 1]) / 2, shapely.get_x(where))
    cy = np.where(empty, (y[k] + y[k + 1]) / 2, shapely.get_y(where))
    inward = inside[k + 1]
    road_idx = p["road_idx"].to_numpy()
    inner = np.where(inward, road_idx[k + 1], road_idx[k])
    road_of_inner = np.where(inner >= 0, road_ids[np.maximum(inner, 0)].astype(object), None)
    gx, gy = gates["x_m"].to_numpy(float), gates["y_m"].to_numpy(float)
    g_road, g_id = gates["road_id"].to_numpy(object), gates["gate_id"].to_numpy(object)
    gate = np.full(len(k), UNKNOWN_GATE, dtype=object)
    if len(gates):
        d = np.hypot(cx[:, None] - gx[None, :], cy[:, None] - gy[None, :])  # crossings × gates
        same_road = road_of_inner[:, None] == g_road[None, :]
        on_road = np.where(same_road & (d <= snap_m), d, np.inf)
        near = np.where(d <= snap_m, d, np.inf)
        best_road, best_any = on_road.argmin(axis=1), near.argmin(axis=1)
        rows = np.arange(len(k))
        gate = np.where(
            np.isfinite(on_road[rows, best_road]),
            g_id[best_road],
            np.where(np.isfinite(near[rows, best_any]), g_id[best_any], UNKNOWN_GATE),
        )
    return pd.DataFrame(
        {
            "trip_id": trip[k + 1],
            "seq": p["seq"].to_numpy()[k + 1],
            "inward": inward,
            "x_m": cx,
            "y_m": cy,
            "gate_id": gate,
        }
    )


def time_band(hour: np.ndarray) -> np.ndarray:
    """The GATE_TIME_BANDS name of each hour (0-23)."""
    out = np.full(len(hour), "", dtype=object)
    for name, a, b in GATE_TIME_BANDS:
        out[(hour >= a) & (hour < b)] = name
    return out


def classify_trips(
    points: pd.DataFrame,
    ends: pd.DataFrame,
    area,
    gates: pd.DataFrame,
    road_ids: np.ndarray,
    snap_m: float = GATE_SNAP_M,
) -> pd.DataFrame:
    """Gate class, entry and exit gate and time band of every trip with a point on the network.

    points: a period's stored points of the trips (columns POINT_COLUMNS; road_idx -1 off the
    network); ends: origin_x_m, origin_y_m, dest_x_m, dest_y_m per trip_id (analysis.comparison.trip_ends;
    a trip missing there falls back to its first and last stored point). Returns TRIP_COLUMNS.
    """
    if len(points) == 0:
        return pd.DataFrame({c: [] for c in TRIP_COLUMNS})
    p = points.sort_values(["trip_id", "seq"], kind="stable").reset_index(drop=True)
    on_net = p.groupby("trip_id")["road_idx"].max() >= 0
    p = p[p["trip_id"].isin(on_net.index[on_net])].reset_index(drop=True)
    p["inside"] = shapely.contains_xy(area, p["x_m"].to_numpy(float), p["y_m"].to_numpy(float))
    g = p.groupby("trip_id", sort=True)
    t = pd.DataFrame({"vehicle_id": g["vehicle_id"].first(), "any_inside": g["inside"].any()})
    first = g[["x_m", "y_m"]].first().rename(columns={"x_m": "origin_x_m", "y_m": "origin_y_m"})
    last = g[["x_m", "y_m"]].last().rename(columns={"x_m": "dest_x_m", "y_m": "dest_y_m"})
    e = ends.drop_duplicates("trip_id").set_index("trip_id").reindex(t.index)
    fallback = pd.concat([first, last], axis=1)
    e = e.fillna(fallback)
    t["origin_inside"] = shapely.contains_xy(area, e["origin_x_m"].to_numpy(float), e["origin_y_m"].to_numpy(float))
    t["dest_inside"] = shapely.contains_xy(area, e["dest_x_m"].to_numpy(float), e["dest_y_m"].to_numpy(float))
    c = crossings(p, area, gates, road_ids, snap_m)
    t["n_crossings"] = c.groupby("trip_id").size().reindex(t.index).fillna(0).astype("int32")
    first_in = c[c["inward"]].groupby("trip_id")["gate_id"].first()
    last_out = c[~c["inward"]].groupby("trip_id")["gate_id"].last()
    o, d = t["origin_inside"].to_numpy(), t["dest_inside"].to_numpy()
    cls = np.select(
        [o & d, o & ~d, ~o & d, t["any_inside"].to_numpy()], ["internal", "out_of", "into", "through"], "perimeter"
    )
    t["gate_class"] = cls
    entry = first_in.reindex(t.index).fillna(UNKNOWN_GATE).to_numpy(object)
    exit_ = last_out.reindex(t.index).fillna(UNKNOWN_GATE).to_numpy(object)
    t["entry_gate"] = np.where(np.isin(cls, ["through", "into"]), entry, "")
    t["exit_gate"] = np.where(np.isin(cls, ["through", "out_of"]), exit_, "")
    # The trip's time at the district: its first stored point inside the outline, else (perimeter) on the network.
    ref = p[p["inside"] | ~p["trip_id"].map(t["any_inside"]).to_numpy(bool)]
    ref = ref[ref["inside"] | (ref["road_idx"] >= 0)].groupby("trip_id").first()
    t["first_time"] = ref["gps_time"].reindex(t.index)
    t["time_band"] = time_band(ref["hour"].reindex(t.index).to_numpy(np.int64))
    t["day_type"] = ref["day_type"].reindex(t.index).astype("int8")
    return t.reset_index()[TRIP_COLUMNS]


def period_trips(
    folders: list[Path], network: Network, period: Period, ends: pd.DataFrame, area, gates: pd.DataFrame
) -> pd.DataFrame:
    """`classify_trips` of a period's trips, read one month folder at a time (a trip lies in one month,
    so each is classified from all its points; no more than a month of points is held), by trip_id."""
    expr = points_expression(ALL_POINTS, period.start, period.end, on_network=False)
    parts = []
    for folder in folders:
        pts = read_matched_points([Path(folder)], network, POINT_COLUMNS, expr).to_pandas()
        parts.append(classify_trips(pts, ends, area, gates, network.road_ids))
        del pts
        trim_freed_memory()
    parts = [p for p in parts if len(p)]
    if not parts:
        return classify_trips(pd.DataFrame(columns=POINT_COLUMNS), ends, area, gates, network.road_ids)
    out = pd.concat(parts, ignore_index=True)
    return out.iloc[np.argsort(out["trip_id"].to_numpy(), kind="stable")].reset_index(drop=True)


def gate_od(trips: pd.DataFrame) -> pd.DataFrame:
    """Trips and distinct vehicles per time band (each of GATE_TIME_BANDS, and 'all'), class, entry and exit gate."""
    keys = ["time_band", "gate_class", "entry_gate", "exit_gate"]
    both = pd.concat([trips, trips.assign(time_band="all")], ignore_index=True)
    if both.empty:
        return pd.DataFrame({c: [] for c in [*keys, "n_trips", "n_vehicles"]})
    out = (
        both.groupby(keys, sort=True)
        .agg(n_trips=("trip_id", "size"), n_vehicles=("vehicle_id", "nunique"))
        .reset_index()
    )
    return out.astype({"n_trips": "int64", "n_vehicles": "int64"})


def class_summary(trips: pd.DataFrame) -> pd.DataFrame:
    """Per time band (and 'all') and class (every class, 0 when none): n_trips, share_trips, n_vehicles."""
    both = pd.concat([trips, trips.assign(time_band="all")], ignore_index=True)
    bands = [b for b, _, _ in GATE_TIME_BANDS] + ["all"]
    idx = pd.MultiIndex.from_product([bands, GATE_CLASSES], names=["time_band", "gate_class"])
    g = both.groupby(["time_band", "gate_class"])
    out = pd.DataFrame({"n_trips": g.size(), "n_vehicles": g["vehicle_id"].nunique()}).reindex(idx, fill_value=0)
    total = out.groupby(level="time_band")["n_trips"].transform("sum")
    with np.errstate(invalid="ignore", divide="ignore"):
        out["share_trips"] = np.where(total > 0, out["n_trips"] / total, np.nan)
    return out.reset_index().astype({"n_trips": "int64", "n_vehicles": "int64"})[
        ["time_band", "gate_class", "n_trips", "share_trips", "n_vehicles"]
    ]


@dataclass
class GateResult:
    district_key: str
    gates: pd.DataFrame  # GATE_COLUMNS + lon, lat
    trips: dict[str, pd.DataFrame]  # period label -> TRIP_COLUMNS
    od: dict[str, pd.DataFrame]  # period label -> gate_od
    summary: dict[str, pd.DataFrame]  # period label -> class_summary
    periods: dict[str, Period]


def evaluate_gates(
    warehouse: str | Path,
    district: District,
    periods: dict[str, Period] | None = None,
    *,
    network: Network | None = None,
    store: bool = True,
) -> GateResult:
    """Gates, gate classes and gate OD of the district for each period (default: every named period), stored."""
    if district.area_path is None:
        raise ValueError(f"district {district.key!r} has no outline (area = ...): gates need one")
    periods = dict(district.periods) if periods is None else periods
    network = network or district_network(district)
    area = load_area(district.area_path)
    warehouse = Path(warehouse)
    match_stage(warehouse, network, sorted({m for p in periods.values() for m in months_between(p.start, p.end)}))
    gates = district_gates(district, network, area)
    lon, lat = Transformer.from_crs(METRIC_CRS, LONLAT_CRS, always_xy=True).transform(
        gates["x_m"].to_numpy(float), gates["y_m"].to_numpy(float)
    )
    gates = gates.assign(lon=lon, lat=lat)
    trips, od, summary = {}, {}, {}
    con = connect(warehouse, create=False)
    try:
        for label, period in periods.items():
            folders = matched_folders(con, warehouse, network.key, period.start, period.end)
            t = period_trips(folders, network, period, trip_ends(con, warehouse, network, period), area, gates)
            trips[label], od[label], summary[label] = t, gate_od(t), class_summary(t)
    finally:
        con.close()
    result = GateResult(district.key, gates, trips, od, summary, periods)
    if store:
        _store(warehouse, result)
    return result


def _store(warehouse: Path, res: GateResult) -> None:
    now = dt.datetime.now()
    con = connect(warehouse, create=False)
    try:
        with transaction(con):
            forget_stage(con, res.district_key, "gates")
            con.execute("DELETE FROM district_gates WHERE district = ?", [res.district_key])
            con.register("_g", res.gates.assign(district=res.district_key, computed_at=now))
            con.execute(
                "INSERT INTO district_gates SELECT district, gate_id, gate_name, road_id, source, x_m, y_m, lon, "
                "lat, computed_at FROM _g"
            )
            for label, p in res.periods.items():
                extra = {
                    "district": res.district_key,
                    "period": label,
                    "period_start": p.start,
                    "period_end": p.end,
                    "computed_at": now,
                }
                for table in ("gate_trips", "gate_od", "gate_class_summary"):
                    con.execute(f"DELETE FROM {table} WHERE district = ? AND period = ?", [res.district_key, label])
                con.register("_t", res.trips[label].assign(**extra))
                con.execute(f"""INSERT INTO gate_trips SELECT district, period, period_start, period_end,
                                {", ".join(TRIP_COLUMNS)}, computed_at FROM _t""")
                con.register("_o", res.od[label].assign(**extra))
                con.execute("""INSERT INTO gate_od SELECT district, period, period_start, period_end, time_band,
                               gate_class, entry_gate, exit_gate, n_trips, n_vehicles, computed_at FROM _o""")
                con.register("_s", res.summary[label].assign(**extra))
                con.execute("""INSERT INTO gate_class_summary SELECT district, period, period_start, period_end,
                               time_band, gate_class, n_trips, share_trips, n_vehicles, computed_at FROM _s""")
    finally:
        con.close()
