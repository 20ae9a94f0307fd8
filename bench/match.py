"""Benchmark of the analysis core (match stage + aggregation), cold and steady, against geopandas.

    PYTHONPATH=$PWD .venv/bin/python bench/match.py [--points N] [--dir DIR] [--months M] [--cold-runs K] [--dir2 DIR2]

Data (built once, cached in DIR for the same N, months and seed):
- a synthetic street grid: 90 east-west and 90 north-south streets 60 m apart near Yokohama
  (EPSG:6677 metres), each bending 3 m mid-block, so 32,040 straight segments; every 7th street
  one-way (digitised direction), every 10th a 40 km/h street, the others 30 km/h residential —
  written as a road file (GeoPackage) read by the product's loader;
- N points (default 12 million) written directly as a warehouse point store
  (probe_points/year=/month=/<operation date>_<file id>_<commit>_0.parquet, one file per date and
  2次メッシュ as if delivered so, written as ingest writes them: its schema (etl.stage.POINT_SCHEMA),
  codec, encodings and row groups (POINT_FILE_OPTIONS, ROW_GROUP_ROWS); the columns the match
  stage reads are filled, other delivered columns are null), as trips over M months
  (default 4, 2024-01..): a vehicle drives along one street, turns at an intersection onto the
  cross street (one-way streets only in their direction), a point every 25-45 m (whole-second
  GPS times at the trip's speed), 4 m GPS noise; a warehouse database (tables, views) beside it.

Figures, each from its own fresh process:
- cold: `etc2calm analyze --roads grid.gpkg --period all=<whole span>` (the CLI) in a fresh
  process on a warehouse with nothing matched yet. Included: interpreter start and imports,
  numba cache load (the compiled kernels are on disk from an earlier run; compiling them the
  first time on a machine is NOT included and is printed apart when it happened), network load
  and index build, the match stage over every month (read, sort, trip features, match kernel,
  the lean Parquet write, match_state) fused with the period's reduction (each month's cube and
  passages while the month is in memory, merged month by month), per-road and passage figures
  and their stores (the period's cube as Parquet files behind link_hour_*, the figures in
  DuckDB), the CSV. Its rate is points in the store / wall seconds, with the default threads
  (numba and Arrow use both cores). Peak RSS is that process's and its children's (os.wait4).
- cold at 2x: the same command on twice the points over twice the months (default 24 M points,
  8 months; built once in DIR-2x, the same network), as ONE period: its peak RSS shows whether
  memory is bounded by a month or grows with the period.
- steady, per core: in one process pinned to one thread (numba, Arrow), after loading the
  network, building its index and warming the kernels (not timed): month by month what analyze
  does, the match stage (read the columns the match needs, sort + trip features, match kernel,
  assemble, the lean write) and each pass's aggregation while it is in memory (cube: the period
  filter and the pass's points grouped by piece; merge: kept on disk, and at the end the period's
  cube made range of pieces by range from every pass), each stage in CPU
  seconds (process time), as points per CPU-second. The month's passages are timed and printed
  apart (not in the steady figure, as before); per-road figures and database stores are in cold.
- geopandas, per core: on a 1 million point subset (the first trips of the first month), in one
  single-threaded process: read those points (Parquet), geopandas.sjoin_nearest to the same
  segments (max_distance = radius; no heading check, no trip features, no writes) + pandas
  group-by (link × hour × day type × vehicle class: count, sum, exceedances, distinct
  vehicles; histogram rows), CPU seconds. The baseline every other figure is divided by.

The machine is shared and never idle: every figure is printed with its ratio to the geopandas
baseline measured in the same run, and the load average (1, 5, 15 min) at each phase.
Last line: `match+aggregate: cold X Mpts/s (wall, 1 process, N threads), steady Y Mpts/s per core,
geopandas Z Mpts/s per core, ratio R, peak RSS M MB, peak RSS at 2x points M2 MB, load L`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VERSION = 3  # bump when the generated data change (2: point_key; 3: the ingest's schema, layout and encodings)
RADIUS_M = 20.0
GRID_N = 90  # streets per direction
SPACING_M = 60.0
EXTENT_M = (GRID_N - 1) * SPACING_M
ORIGIN = (-25_000.0, -60_000.0)  # EPSG:6677, 横浜市 (保土ケ谷区 / 旭区 area)
ONEWAY_EVERY = 7
LIMIT40_EVERY = 10
FIRST_YEAR = 2024
SUBSET = 1_000_000
COMMIT = "20240601T000000-bench0"
SINGLE_THREAD_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


# ---------------------------------------------------------------------------------------------
# Data


def street_table():
    """The grid's streets: (road_id, geometry, oneway, maxspeed, highway) per street, EPSG:6677."""
    import shapely

    span = np.arange(GRID_N) * SPACING_M
    mid = (span[:-1] + span[1:]) / 2
    along = np.empty(2 * GRID_N - 1)
    along[0::2], along[1::2] = span, mid
    off = np.zeros_like(along)
    off[1::2] = 3.0  # bend mid-block: two segments per block
    rows = []
    for k in range(GRID_N):
        c = k * SPACING_M
        oneway = "yes" if k % ONEWAY_EVERY == 3 else "no"
        speed = 40 if k % LIMIT40_EVERY == 5 else 30
        hw = "tertiary" if speed == 40 else "residential"
        ew = shapely.linestrings(np.c_[ORIGIN[0] + along, ORIGIN[1] + c + off])  # west → east
        ns = shapely.linestrings(np.c_[ORIGIN[0] + c + off, ORIGIN[1] + along])  # south → north
        rows.append((f"EW{k:02d}", ew, oneway, speed, hw))
        rows.append((f"NS{k:02d}", ns, oneway, speed, hw))
    return rows


def write_roads(path: Path) -> None:
    import geopandas as gpd

    rows = street_table()
    gdf = gpd.GeoDataFrame(
        {
            "road_id": [r[0] for r in rows],
            "name": [r[0] for r in rows],
            "oneway": [r[2] for r in rows],
            "maxspeed": [str(r[3]) for r in rows],
            "highway": [r[4] for r in rows],
        },
        geometry=[r[1] for r in rows],
        crs="EPSG:6677",
    )
    tmp = path.with_suffix(".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    gdf.to_file(tmp, driver="GPKG", engine="pyogrio")
    os.replace(tmp, path)


def _mesh2(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """2次メッシュ (JIS X 0410) of lon/lat, as etl.ingest computes it."""
    a = lat * 1.5 + 1e-9
    b = lon - 100 + 1e-9
    return (
        np.floor(a) * 10000 + np.floor(b) * 100 + np.floor((a - np.floor(a)) * 8) * 10 + np.floor((b - np.floor(b)) * 8)
    ).astype(np.int64)


def _month_trips(rng, n_points: int, year: int, month: int, veh: dict) -> dict[str, np.ndarray]:
    """Points of whole trips for one month (about n_points; the last trip cut to make it exact)."""
    streets = street_table()
    oneway = np.array([r[2] == "yes" for r in streets[0::2]])  # per street index k (EW and NS alike)
    n_trips = int(n_points / 35 * 1.15) + 10
    n_pts = rng.integers(10, 61, n_trips)  # points per trip
    step = rng.uniform(25, 45, n_trips)  # metres between points
    total = (n_pts - 1) * step
    a_vertical = rng.random(n_trips) < 0.5  # first leg north-south?
    a_street = rng.integers(0, GRID_N, n_trips)
    a_dir = np.where(oneway[a_street], 1, np.where(rng.random(n_trips) < 0.5, 1, -1))
    leg_a = total * rng.uniform(0.2, 0.8, n_trips)
    # Turn at an intersection q (along street A) such that the start q - dir * leg_a is inside the grid.
    lo = np.where(a_dir > 0, np.ceil(leg_a / SPACING_M), 0)
    hi = np.where(a_dir > 0, GRID_N - 1, np.floor((EXTENT_M - leg_a) / SPACING_M))
    q_idx = (lo + np.floor(rng.random(n_trips) * (hi - lo + 1))).astype(np.int64)
    b_street = q_idx  # the cross street at the turn
    b_start = a_street * SPACING_M  # its along-position at the turn
    leg_b = total - leg_a
    b_dir = np.where(rng.random(n_trips) < 0.5, 1, -1)
    fits = lambda d: np.where(d > 0, b_start + leg_b <= EXTENT_M, b_start - leg_b >= 0)  # noqa: E731
    b_dir = np.where(fits(b_dir), b_dir, -b_dir)
    b_dir = np.where(oneway[b_street], 1, b_dir)  # one-way: only forward (the trip may end at the edge)
    # Points: k-th point of trip i at distance k * step (± 10 %).
    trip = np.repeat(np.arange(n_trips), n_pts)
    k = np.arange(len(trip)) - np.repeat(np.cumsum(n_pts) - n_pts, n_pts)
    d = np.maximum(k * step[trip] + rng.uniform(-0.1, 0.1, len(trip)) * step[trip], 0.0)
    d[k == 0] = 0.0
    d = np.maximum.accumulate(d + trip * 1e7) - trip * 1e7  # non-decreasing within a trip
    on_a = d <= leg_a[trip]
    pos_a = (q_idx * SPACING_M)[trip] - a_dir[trip] * (leg_a[trip] - d)
    pos_b = b_start[trip] + b_dir[trip] * (d - leg_a[trip])
    keep = on_a | ((pos_b >= 0) & (pos_b <= EXTENT_M))  # a one-way cross street that runs off the grid ends the trip
    vert = a_vertical[trip]
    along = np.where(on_a, pos_a, pos_b)
    across = np.where(on_a, a_street[trip] * SPACING_M, b_street[trip] * SPACING_M)
    is_ns = np.where(on_a, vert, ~vert)  # on a north-south street: x fixed
    x = ORIGIN[0] + np.where(is_ns, across, along)
    y = ORIGIN[1] + np.where(is_ns, along, across)
    trip, k, d, x, y = trip[keep], k[keep], d[keep], x[keep], y[keep]
    # Exactly n_points: whole trips, the last one cut.
    trip, d, x, y = trip[:n_points], d[:n_points], x[:n_points], y[:n_points]
    n = len(trip)
    first = np.r_[True, trip[1:] != trip[:-1]]
    # Speeds: per trip around 33 km/h, per point ± 3 km/h, whole km/h.
    v_trip = np.clip(rng.normal(33, 6, n_trips), 8, 70)
    speed = np.clip(np.round(v_trip[trip] + rng.normal(0, 3, n)), 0, 120)
    ds = np.diff(d, prepend=0.0)
    ds[first] = 0.0
    dt_s = np.where(first, 0, np.maximum(1, np.round(ds / (np.maximum(v_trip[trip], 5) / 3.6))))
    trip_start_of_trip = np.cumsum(first) - 1  # 0.. per kept trip
    # Operation date: a day of the month; start between 05:00 and 22:00 (a trip never crosses midnight).
    n_days = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.date(year, month, 1)).days
    kept_trips = trip[first]
    day = rng.integers(0, n_days, len(kept_trips))
    hour_mix = np.where(
        rng.random(len(kept_trips)) < 0.5, rng.normal(8, 1.2, len(kept_trips)), rng.uniform(5, 22, len(kept_trips))
    )
    start_s = np.clip(hour_mix, 5, 22) * 3600
    t0 = np.datetime64(f"{year}-{month:02d}-01T00:00:00", "s").astype(np.int64)
    start_us = (t0 + day * 86_400 + start_s.astype(np.int64)) * 1_000_000
    elapsed = np.cumsum(dt_s) - np.repeat(np.cumsum(dt_s)[first], np.diff(np.r_[np.flatnonzero(first), n]))
    gps_us = start_us[trip_start_of_trip] + (elapsed * 1_000_000).astype(np.int64)
    vehicle = rng.integers(0, len(veh["id"]), len(kept_trips))
    # GPS noise.
    x = x + rng.normal(0, 4, n)
    y = y + rng.normal(0, 4, n)
    return {
        "trip": trip_start_of_trip,
        "x": x,
        "y": y,
        "speed": speed,
        "gps_us": gps_us,
        "first": first,
        "trip_day": day,
        "trip_vehicle": vehicle,
        "trip_start_us": start_us,
    }


def generate(out: Path, n_points: int, months: int, seed: int = 1) -> dict:
    """Build (or find cached) the road file and the warehouse point store; returns the manifest."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyproj import Transformer

    from etl.stage import DUPLICATE_KEY, POINT_FILE_OPTIONS, POINT_SCHEMA, ROW_GROUP_ROWS, point_keys

    marker = out / "bench.json"
    want = {"version": VERSION, "points": n_points, "months": months, "seed": seed}
    if marker.exists():
        have = json.loads(marker.read_text())
        if {k: have.get(k) for k in want} == want:
            return have
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    write_roads(out / "grid.gpkg")
    rng = np.random.default_rng(seed)
    to_lonlat = Transformer.from_crs("EPSG:6677", "EPSG:4326", always_xy=True)
    # Vehicles: about 8 trips each over the whole span; pseudonyms as ingest stores them.
    n_veh = max(1000, int(n_points / 35 / 8))
    keys = np.frombuffer(rng.bytes(16 * n_veh), dtype=np.uint8).reshape(n_veh, 16)
    veh = {
        "id": keys[:, :8].copy().view(">i8").ravel().astype(np.int64),
        "key": pa.array([bytes(r).hex() for r in keys], pa.string()),
        "type": rng.choice(np.array([1, 2, 3, 4], np.int8), n_veh, p=[0.05, 0.6, 0.15, 0.2]),
        "use": rng.choice(np.array([1, 2], np.int8), n_veh, p=[0.7, 0.3]),
    }
    per = np.full(months, n_points // months)
    per[: n_points % months] += 1
    root = out / "warehouse" / "probe_points"
    n_files = 0
    for mi in range(months):
        year, month = FIRST_YEAR + mi // 12, mi % 12 + 1
        p = _month_trips(rng, int(per[mi]), year, month, veh)
        trip = p["trip"]
        vid_t = p["trip_vehicle"]
        # trip_no: rank of the trip among the vehicle's trips of that day, by start time.
        o = np.lexsort((p["trip_start_us"], p["trip_day"], vid_t))
        grp = np.r_[True, (vid_t[o][1:] != vid_t[o][:-1]) | (p["trip_day"][o][1:] != p["trip_day"][o][:-1])]
        idx = np.arange(len(o))
        rank = idx - np.maximum.accumulate(np.where(grp, idx, 0))
        trip_no = np.empty(len(o), np.int32)
        trip_no[o] = rank + 1
        lon, lat = to_lonlat.transform(p["x"], p["y"])
        mesh = _mesh2(lon, lat)
        day = p["trip_day"][trip]
        # Files as ingest commits them: one per operation date and 2次メッシュ; trips in random order,
        # a trip's points in time order.
        trip_rank = rng.permutation(len(vid_t))[trip]
        order = np.lexsort((np.arange(len(trip)), trip_rank, mesh, day))
        file_key = (day * 1_000_000 + mesh)[order]
        bounds = np.flatnonzero(np.r_[True, file_key[1:] != file_key[:-1], True])
        base_date = (dt.date(year, month, 1) - dt.date(1970, 1, 1)).days
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            sel = order[a:b]
            n = len(sel)
            d_, m_ = int(day[sel[0]]), int(mesh[sel[0]])
            date = dt.date(year, month, 1) + dt.timedelta(days=d_)
            file_id = hashlib.sha256(f"{date}{m_}".encode()).hexdigest()[:20]
            vi = vid_t[trip[sel]]
            cols = {
                "operation_date": pa.array(np.full(n, base_date + d_, np.int32), pa.date32()),
                "vehicle_key": veh["key"].take(pa.array(vi)),
                "vehicle_id": veh["id"][vi],
                "vehicle_type": veh["type"][vi],
                "vehicle_use": veh["use"][vi],
                "gps_time": pa.array(p["gps_us"][sel] // 1_000_000, pa.timestamp("s")),
                "trip_no": trip_no[trip[sel]],
                "lon": lon[sel],
                "lat": lat[sel],
                "speed_kmh": p["speed"][sel],
                "mesh_code": pa.array(np.full(n, str(m_), object), pa.string()),
                "x_m": p["x"][sel],
                "y_m": p["y"][sel],
                "mesh2": np.full(n, m_, np.int32),
                "file_id": pa.array(np.full(n, file_id, object), pa.string()),
                "member": pa.array(np.full(n, "data.csv", object), pa.string()),
                "line_no": np.arange(1, n + 1, dtype=np.int64),
            }
            cols["point_key"] = point_keys(
                pa.table({k: cols[k] for k in DUPLICATE_KEY if k != "vehicle_key"} | {"vehicle_id": cols["vehicle_id"]})
            )
            arrays = [
                (cols[f.name] if isinstance(cols[f.name], pa.Array) else pa.array(cols[f.name])).cast(f.type)
                if f.name in cols
                else pa.nulls(n, f.type)
                for f in POINT_SCHEMA
            ]
            folder = root / f"year={year}" / f"month={month}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(
                pa.Table.from_arrays(arrays, schema=POINT_SCHEMA),
                folder / f"{date}_{file_id}_{COMMIT}_0.parquet",
                row_group_size=ROW_GROUP_ROWS,
                **POINT_FILE_OPTIONS,
            )
            n_files += 1
        print(
            f"  generated {year}-{month:02d}: {len(trip):,} points, {len(vid_t):,} trips "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    from etl.warehouse import connect

    con = connect(out / "warehouse")
    con.close()
    shutil.copy(out / "warehouse" / "warehouse.duckdb", out / "pristine.duckdb")
    last = dt.date(FIRST_YEAR + (months - 1) // 12, (months - 1) % 12 + 1, 1)
    last = (last.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    manifest = {
        **want,
        "files": n_files,
        "first_day": f"{FIRST_YEAR}-01-01",
        "last_day": str(last),
        "generate_s": time.perf_counter() - t0,
    }
    marker.write_text(json.dumps(manifest))
    return manifest


def reset_matches(out: Path) -> None:
    """Nothing matched: the pristine database (tables, views) and no matched/ folder."""
    wh = out / "warehouse"
    shutil.rmtree(wh / "matched", ignore_errors=True)
    for f in wh.glob("warehouse.duckdb*"):
        f.unlink()
    shutil.copy(out / "pristine.duckdb", wh / "warehouse.duckdb")


# ---------------------------------------------------------------------------------------------
# Phases (each in its own process)


def _cpu() -> float:
    return time.process_time()


def phase_steady(out: Path) -> dict:
    """Single-threaded, after network + index + JIT warm-up: each stage in CPU seconds."""
    import numba
    import pyarrow as pa

    numba.set_num_threads(1)
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    import pyarrow.parquet as pq

    import analysis.matchstage as ms
    from analysis._partitions import (
        MonthPart,
        PeriodCube,
        kept_rows,
        part_passages,
        part_points,
        period_groups,
        period_ranges,
        reduce_part,
    )
    from analysis.filters import ALL_POINTS
    from analysis.matchstage import _match_month_and_write, match_month
    from analysis.network import prepare_network
    from config.districts import Period
    from etl.warehouse import point_files
    from geo.aggregate import concat_shards

    reset_matches(out)
    wh = out / "warehouse"
    t = time.perf_counter()
    net = prepare_network(out / "grid.gpkg", "roads:grid", radius_m=RADIUS_M)
    t_index = time.perf_counter() - t
    store = point_files(wh)
    months = sorted(store)
    span = Period("all", dt.date(*months[0], 1), dt.date(*months[-1], 28) + dt.timedelta(days=4))
    # Warm-up (not timed): JIT / cache load of every kernel, on one file of the first month.
    t = time.perf_counter()
    res = match_month(store[months[0]][:1], net)
    warm = PeriodCube(net)
    for _ in range(2):
        warm.add(reduce_part(res.points, net, ALL_POINTS, span.start, span.end))
    list(warm.ranges())
    warm.close()
    t_warm = time.perf_counter() - t
    keys = ("read", "sort_features", "match", "assemble", "events", "write", "cube", "merge", "passages")
    stages, walls = {k: 0.0 for k in keys}, {k: 0.0 for k in keys}

    def timed(key, fn, *args):
        c, w = _cpu(), time.perf_counter()
        value = fn(*args)
        stages[key] += _cpu() - c
        walls[key] += time.perf_counter() - w
        return value

    tally = PeriodCube(net, period_ranges(len(months)))  # as MonthReducer makes it for the period
    n_read = n_stored = n_matched = 0
    for ym in months:  # what analyze does: match and write pass by pass, reduce each pass while it is in memory

        def reduce(points):  # analysis._partitions.reduce_part, its steps timed apart
            trips, keep = timed("cube", part_points, points, ALL_POINTS, span.start, span.end)
            n_points = kept_rows(trips, keep)
            groups = timed("cube", period_groups, net, trips, keep)
            pas = timed("passages", part_passages, trips, keep, net)
            timed("merge", tally.add, MonthPart(groups, pas, n_points))

        folder = wh / "matched" / "bench" / f"{ym[0]:04d}-{ym[1]:02d}"
        counts = _match_month_and_write([str(f) for f in store[ym]], net, [], str(folder), reduce)
        for k, (w, c) in counts["timings"].items():
            stages[k] = stages.get(k, 0.0) + c
            walls[k] = walls.get(k, 0.0) + w
        n_read += counts["n_points_read"]
        n_stored += counts["n_points"]
        n_matched += counts["n_matched"]
    ranges = timed("merge", lambda: list(tally.ranges()))  # the period's cube, range by range
    final = concat_shards(ranges)
    tally.close()
    # Linear in the month: month 1 read in one pass, then in passes of about a quarter of it.
    default_bucket = ms.BUCKET_ROWS
    first_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in store[months[0]])
    passes = {}
    for label, rows in (("1 pass", first_rows + 1), ("~4 passes", first_rows // 4)):
        ms.BUCKET_ROWS = rows
        r = match_month(store[months[0]], net)
        passes[label] = {
            "read": r.timings["read"][1],
            "total": sum(c for _, c in r.timings.values()),
            "n_passes": len(ms._read_plan(store[months[0]])),
        }
        del r
    ms.BUCKET_ROWS = default_bucket
    return {
        "points": n_read,
        "stored": n_stored,
        "matched": n_matched,
        "cpu_s": stages,
        "wall_s": walls,
        "index_s": t_index,
        "warmup_s": t_warm,
        "segments": int(len(net.index.links.x0)),
        "links": int(net.index.links.n_links),
        "cells": int(len(final.cells["piece"])),
        "hist_rows": int(len(final.hist["piece"])),
        "numba_threads": numba.get_num_threads(),
        "passes": passes,
        "bucket_rows": default_bucket,
        "month1_rows": first_rows,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load": load(),
    }


def phase_geopandas(out: Path) -> dict:
    """geopandas sjoin_nearest + pandas group-by on a 1 M point subset, single process, CPU seconds."""
    import geopandas as gpd
    import pyarrow.parquet as pq
    import shapely

    from etl.warehouse import point_files
    from geo.network import build_links, load_roads

    roads = load_roads(out / "grid.gpkg")
    L = build_links(roads.geometry.values, oneway=roads["oneway"].to_numpy())
    store = point_files(out / "warehouse")
    files = store[sorted(store)[0]]
    cols = ["vehicle_id", "gps_time", "vehicle_type", "speed_kmh", "x_m", "y_m"]
    c0, w0 = _cpu(), time.perf_counter()
    parts, n = [], 0
    for f in files:  # whole files (days × meshes) until SUBSET points
        t = pq.read_table(f, columns=cols)
        parts.append(t)
        n += t.num_rows
        if n >= SUBSET:
            break
    import pyarrow as pa

    df = pa.concat_tables(parts).slice(0, SUBSET).to_pandas()
    c1 = _cpu()
    segs = gpd.GeoDataFrame(
        {"link": L.seg_link},
        geometry=shapely.linestrings(np.stack([np.c_[L.x0, L.y0], np.c_[L.x1, L.y1]], axis=1)),
        crs="EPSG:6677",
    )
    limit = roads["limit_kmh"].to_numpy()[L.link_road]
    pts = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["x_m"], df["y_m"]), crs="EPSG:6677")
    j = gpd.sjoin_nearest(pts, segs, how="inner", max_distance=RADIUS_M, distance_col="dist")
    j = j[~j.index.duplicated(keep="first")]  # ties: keep one
    c2 = _cpu()
    ts = j["gps_time"]
    lim = limit[j["link"].to_numpy()]
    j = j.assign(
        hour=ts.dt.hour,
        day_type=(ts.dt.dayofweek >= 5).astype(int),
        bin=np.floor(j["speed_kmh"] + 0.5).astype(int),
        ge=(j["speed_kmh"] >= lim),
        ge10=(j["speed_kmh"] >= lim + 10),
    )
    keys = ["link", "hour", "day_type", "vehicle_type"]
    cells = j.groupby(keys).agg(
        n=("speed_kmh", "size"),
        s=("speed_kmh", "sum"),
        ge=("ge", "sum"),
        ge10=("ge10", "sum"),
        veh=("vehicle_id", "nunique"),
    )
    hist = j.groupby(keys + ["bin"]).size()
    c3 = _cpu()
    return {
        "points": len(df),
        "matched": int(len(j)),
        "cpu_s": c3 - c0,
        "wall_s": time.perf_counter() - w0,
        "read_s": c1 - c0,
        "join_s": c2 - c1,
        "groupby_s": c3 - c2,
        "cells": len(cells),
        "hist_rows": len(hist),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load": load(),
    }


def run_phase(name: str, out: Path, env_extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update({"PYTHONPATH": str(ROOT), "ETC2CALM_HOME": str(ROOT)})
    env.update(env_extra or {})
    proc = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--dir", str(out)], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        sys.exit(proc.stderr[-4000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _numba_cache_files() -> int:
    return (
        sum(1 for _ in (ROOT / "geo" / "__pycache__").glob("kernels.*.nbi"))
        if (ROOT / "geo" / "__pycache__").exists()
        else 0
    )


def run_cold(out: Path, man: dict) -> dict:
    """The CLI `etc2calm analyze` in a fresh process on a warehouse with nothing matched: wall, CPU, peak RSS."""
    reset_matches(out)
    cached = _numba_cache_files()
    env = dict(os.environ)
    env.update({"PYTHONPATH": str(ROOT), "ETC2CALM_HOME": str(ROOT)})
    cmd = [
        sys.executable,
        "-m",
        "etc2calm.cli",
        "analyze",
        "--warehouse",
        str(out / "warehouse"),
        "--roads",
        str(out / "grid.gpkg"),
        "--period",
        f"all={man['first_day']}..{man['last_day']}",
        "--out",
        str(out / "cold.csv"),
    ]
    with open(out / "cold.log", "w") as log:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"cold run failed: {(out / 'cold.log').read_text()[-3000:]}")
    import duckdb

    con = duckdb.connect(str(out / "warehouse" / "warehouse.duckdb"), read_only=True)
    try:
        n_read, n_stored, n_matched, s_match = con.execute(
            "SELECT sum(n_points_read), sum(n_points), sum(n_matched), sum(seconds) FROM match_state"
        ).fetchone()
    finally:
        con.close()
    return {
        "wall_s": wall,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "peak_rss_mb": ru.ru_maxrss / 1024,
        "points": n_read,
        "stored": n_stored,
        "matched": n_matched,
        "match_stage_s": s_match,
        "numba_cache_before": cached,
        "load": load(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=12_000_000, help="points in the store (default 12 million)")
    ap.add_argument("--months", type=int, default=4, help="months of data (default 4, from 2024-01)")
    ap.add_argument("--dir", type=Path, default=ROOT / "build" / "bench", help="data cache (default build/bench)")
    ap.add_argument("--cold-runs", type=int, default=1, help="cold runs (median; default 1)")
    ap.add_argument("--dir2", type=Path, help="data cache of the 2x run (default DIR-2x)")
    ap.add_argument("--phase", choices=["steady", "geopandas"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    out = args.dir.resolve()
    if args.phase:
        print(json.dumps(phase_steady(out) if args.phase == "steady" else phase_geopandas(out)))
        return
    load0 = load()
    t0 = time.perf_counter()
    man = generate(out, args.points, args.months)
    print(
        f"data: {args.points:,} points over {args.months} months ({man['files']} files) in {out / 'warehouse'}, "
        f"roads {out / 'grid.gpkg'} ({time.perf_counter() - t0:.1f} s to generate or check); load {load0}"
    )
    # 1. geopandas baseline first, then steady (its warm-up also leaves the numba cache on disk), cold, baseline again.
    gp = run_phase("geopandas", out, SINGLE_THREAD_ENV)
    gp_rate = gp["points"] / gp["cpu_s"] / 1e6
    print(
        "geopandas (the baseline; 1 process, 1 thread, CPU seconds): includes reading the subset's columns (Parquet), "
        "sjoin_nearest (its tree build too) and the pandas group-by; leaves out heading check, trip features, writes, "
        "per-road figures"
    )
    print(
        f"geopandas: {gp['points']:,} points, {gp['matched']:,} matched, CPU {gp['cpu_s']:.2f} s (read "
        f"{gp['read_s']:.2f}"
        f" + sjoin_nearest {gp['join_s']:.2f} + group-by {gp['groupby_s']:.2f}) = {gp_rate:.3f} Mpts per CPU-s; "
        f"wall {gp['wall_s']:.2f} s; load {gp['load']}"
    )
    cache_before = _numba_cache_files()
    st = run_phase("steady", out, SINGLE_THREAD_ENV)
    cpu = st["cpu_s"]
    match_cpu = sum(cpu[k] for k in ("read", "sort_features", "match", "assemble", "events", "write"))
    agg_cpu = cpu["cube"] + cpu["merge"]
    steady = st["points"] / (match_cpu + agg_cpu) / 1e6
    print(
        f"network: {st['segments']:,} segments, {st['links']:,} links; index {st['index_s']:.2f} s and warm-up "
        f"(JIT {'compile' if cache_before == 0 else 'cache load'}) {st['warmup_s']:.2f} s, not in steady"
    )
    print(
        "steady (1 process, 1 thread: numba and Arrow; CPU seconds): includes the match stage month by month (read "
        "the columns the match needs, sort + trip features, match kernel, assemble, the lean write of matched_points) "
        "and aggregation of each pass while it is in memory (cube: the period filter and the pass's points grouped by "
        "piece; merge: kept on disk, and at the end the period's cube made range of pieces by range from every pass); "
        "leaves out imports, network load, index "
        "build and JIT / cache load (warm-up "
        "before the clock), per-road figures and their stores (cube files, DuckDB); passages are timed apart "
        "(in cold, not in steady)"
    )
    print(
        f"steady (1 thread, CPU seconds): {st['points']:,} points read, {st['stored']:,} stored (inside the box), "
        f"{st['matched']:,} matched; {st['cells']:,} cells, {st['hist_rows']:,} histogram rows"
    )
    for k in ("read", "sort_features", "match", "assemble", "write", "cube", "merge", "passages"):
        n = st["matched"] if k in ("cube", "merge", "passages") else st["points"]
        print(
            f"    {k:14s} CPU {cpu[k]:7.2f} s (wall {st['wall_s'][k]:6.2f} s)  {n / cpu[k] / 1e6:8.2f} Mpts per CPU-s"
            f"  ({n / cpu[k] / 1e6 / gp_rate:6.1f}x geopandas)"
        )
    p1, p4 = st["passes"]["1 pass"], st["passes"]["~4 passes"]
    print(
        f"    passes (linear?): month 1 ({st['month1_rows']:,} points) in {p1['n_passes']} pass: read CPU "
        f"{p1['read']:.2f} s, "
        f"match_month {p1['total']:.2f} s; in {p4['n_passes']} passes: read {p4['read']:.2f} s, match_month "
        f"{p4['total']:.2f} s (read ratio {p4['read'] / p1['read']:.2f}; BUCKET_ROWS = {st['bucket_rows']:,})"
    )
    print(
        f"    match stage {st['points'] / match_cpu / 1e6:.2f} Mpts per CPU-s, aggregation "
        f"{st['matched'] / agg_cpu / 1e6:.2f}"
        f" Mpts per CPU-s; together {steady:.2f} Mpts per CPU-s = {steady / gp_rate:.1f}x geopandas; "
        f"peak RSS {st['peak_rss_mb']:.0f} MB (this process, its whole-month pass check included; the RSS "
        f"targets are the cold runs'); load {st['load']}"
    )
    print(
        "cold (etc2calm analyze --roads … --period all=<whole span>, fresh process, default threads; wall): includes "
        "interpreter start, imports, numba cache load, network load and index build, the match stage over every month "
        "with its Parquet writes and match_state, cube, per-road and passage figures, their stores (cube files, "
        "DuckDB) and the CSV; "
        "leaves out data generation and the first compile of the kernels on a machine (printed when it happened)"
    )
    colds = [run_cold(out, man) for _ in range(args.cold_runs)]
    colds.sort(key=lambda c: c["wall_s"])
    cold = colds[len(colds) // 2]
    cold_rate = cold["points"] / cold["wall_s"] / 1e6
    for c in colds:
        print_cold(c, gp_rate)
    # Twice the points over twice the months, as one period: memory must stay bounded by a month.
    out2 = (args.dir2 or out.with_name(out.name + "-2x")).resolve()
    t = time.perf_counter()
    man2 = generate(out2, 2 * args.points, 2 * args.months)
    print(
        f"data at 2x: {2 * args.points:,} points over {2 * args.months} months in {out2 / 'warehouse'}, the same "
        f"network ({time.perf_counter() - t:.1f} s to generate or check); one period over all of it"
    )
    cold2 = run_cold(out2, man2)
    print_cold(cold2, gp_rate)
    gp2 = run_phase("geopandas", out, SINGLE_THREAD_ENV)
    gp2_rate = gp2["points"] / gp2["cpu_s"] / 1e6
    print(
        f"geopandas again: {gp2_rate:.3f} Mpts per CPU-s ({gp2_rate / gp_rate:.2f}x the first; the baseline below is "
        f"their mean); load {gp2['load']}"
    )
    base = (gp_rate + gp2_rate) / 2
    ld = load()
    print(
        f"match+aggregate: cold {cold_rate:.2f} Mpts/s (wall, 1 process, {os.cpu_count()} threads), steady "
        f"{steady:.2f} "
        f"Mpts/s per core, geopandas {base:.3f} Mpts/s per core, ratio {steady / base:.1f}, peak RSS "
        f"{cold['peak_rss_mb']:.0f} MB, peak RSS at 2x points {cold2['peak_rss_mb']:.0f} MB, load {ld}"
    )


def print_cold(c: dict, gp_rate: float) -> None:
    print(
        f"cold (fresh process, etc2calm analyze, {os.cpu_count()} threads): {c['points']:,} points, "
        f"{c['matched']:,} "
        f"matched, wall {c['wall_s']:.1f} s (match stage {c['match_stage_s']:.1f} s of it), CPU {c['cpu_s']:.1f} s "
        f"({c['points'] / c['cpu_s'] / 1e6:.2f} Mpts per CPU-s), "
        f"{c['points'] / c['wall_s'] / 1e6:.2f} Mpts/s = {c['points'] / c['wall_s'] / 1e6 / gp_rate:.1f}x "
        "geopandas "
        f"per core, peak RSS {c['peak_rss_mb']:.0f} MB; numba cache "
        f"{'present' if c['numba_cache_before'] else 'absent (compile included)'}; load {c['load']}"
    )


if __name__ == "__main__":
    main()
