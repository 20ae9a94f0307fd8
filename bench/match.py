"""Benchmark of the core: read Parquet → match → aggregate → write aggregates, vs geopandas.

    .venv/bin/python bench/match.py [--points N] [--dir DIR]

Builds a synthetic street grid (≥ 20,000 segments, EPSG:6677 metres near Yokohama) and N points
(default 20 million) stored like the warehouse (hive year=/month=/mesh= partitions, zstd Parquet,
1 M-row row groups, the columns ingest provides: x_m, y_m, speed_kmh, heading_deg, dt_prev_s,
vehicle_id, gps_time, vehicle_type). The data are cached in DIR and reused for the same N.

Then, each in a fresh process so that peak RSS is its own:
- core: the product's own path, partition by partition, whole partitions spread over 2 worker
  processes (single-threaded each): geo.pointsource.point_batches → geo.matching.match_points
  (compiled kernel, heading check) → geo.aggregate.aggregate_points and merge_cubes →
  geo.aggregate.write_cube (cells, histograms, distinct vehicle pairs as Parquet). Worker start,
  index build and JIT compile / cache load happen before the clock starts and are reported
  apart; stage times are summed over workers (worker-seconds); peak RSS is the sum of the
  processes' peaks;
- geopandas: on a 1 million point subset, the same work with geopandas `sjoin_nearest`
  (max_distance = radius, no heading check) + pandas group-by.
Last line: `match+aggregate: <Mpts/s> Mpts/s end to end, peak RSS <MB> MB, <ratio>x geopandas`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RADIUS_M = 20.0
GRID_N = 90  # streets per direction
SPACING_M = 60.0
ORIGIN = (-62_000.0, -42_000.0)  # EPSG:6677, around 横浜市
MONTHS = 4
MESHES = 5
SUBSET = 1_000_000


def network():
    """GRID_N × GRID_N street grid; each street bends slightly mid-block (two segments per block)."""
    import shapely

    geoms = []
    span = np.arange(GRID_N) * SPACING_M
    for k in range(GRID_N):
        c = k * SPACING_M
        mid = (span[:-1] + span[1:]) / 2
        along = np.empty(2 * GRID_N - 1)
        along[0::2], along[1::2] = span, mid
        off = np.zeros_like(along)
        off[1::2] = 3.0
        geoms.append(shapely.linestrings(np.c_[ORIGIN[0] + along, ORIGIN[1] + c + off]))  # east-west
        geoms.append(shapely.linestrings(np.c_[ORIGIN[0] + c + off, ORIGIN[1] + along]))  # north-south
    oneway = np.zeros(len(geoms), dtype=np.int8)
    oneway[::7] = 1  # some one-way streets
    return np.array(geoms, dtype=object), oneway


def generate(out: Path, n_points: int, seed: int = 1) -> None:
    """Points along trips (as delivered: one vehicle's trip after another), partition by partition.

    A trip drives along one street of the grid, a point about every 25-45 m (heading along the
    street, 4 m GPS noise, 10° heading noise; the first point of a trip without heading).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    marker = out / "bench.json"
    if marker.exists() and json.loads(marker.read_text()) == {"points": n_points, "seed": seed}:
        return
    rng = np.random.default_rng(seed)
    n_part = MONTHS * MESHES
    per = np.full(n_part, n_points // n_part)
    per[: n_points % n_part] += 1
    extent = (GRID_N - 1) * SPACING_M
    for p in range(n_part):
        month, mesh = p // MESHES + 1, 533900 + p % MESHES
        n = int(per[p])
        trip_len = rng.integers(10, 60, n // 10 + 2)
        trip_len = trip_len[: np.searchsorted(np.cumsum(trip_len), n) + 1]
        trip_len[-1] -= trip_len.sum() - n
        n_trips = len(trip_len)
        trip = np.repeat(np.arange(n_trips), trip_len)
        k_in_trip = np.arange(n) - np.repeat(np.cumsum(trip_len) - trip_len, trip_len)
        street = rng.integers(0, GRID_N, n_trips)[trip]
        vertical = (rng.random(n_trips) < 0.5)[trip]
        fwd = (rng.random(n_trips) < 0.5)[trip]
        step = rng.uniform(25, 45, n_trips)[trip]
        start = rng.uniform(0, extent, n_trips)[trip]
        along = (start + np.where(fwd, 1, -1) * k_in_trip * step) % (2 * extent)
        along = np.where(along > extent, 2 * extent - along, along)  # bounce at the grid's edge
        across = street * SPACING_M
        x = ORIGIN[0] + np.where(vertical, across, along) + rng.normal(0, 4, n)
        y = ORIGIN[1] + np.where(vertical, along, across) + rng.normal(0, 4, n)
        base = np.where(vertical, 0.0, 90.0) + np.where(fwd, 0.0, 180.0)
        heading = (base + rng.normal(0, 10, n)) % 360
        first = k_in_trip == 0
        heading[first] = np.nan
        dt_prev = np.where(first, np.nan, rng.uniform(10, 40, n)).astype(np.float32)
        t0 = np.datetime64(f"2024-{month:02d}-01T00:00:00", "us").astype(np.int64)
        trip_start = t0 + rng.integers(0, 28 * 86_400, n_trips) * 1_000_000
        gps = trip_start[trip] + (k_in_trip * 25 * 1_000_000)
        table = pa.table({
            "vehicle_id": rng.integers(-(2**62), 2**62, 300_000)[rng.integers(0, 300_000, n_trips)][trip],
            "vehicle_type": rng.integers(1, 5, n_trips).astype(np.int32)[trip],
            "gps_time": pa.array(gps, pa.timestamp("us")),
            "x_m": x, "y_m": y,
            "speed_kmh": np.clip(np.round(rng.normal(32, 9, n)), 0, 120),
            "heading_deg": pa.array(heading, from_pandas=True),
            "dt_prev_s": pa.array(dt_prev, from_pandas=True),
        })  # fmt: skip
        d = out / "probe_points" / "year=2024" / f"month={month:02d}" / f"mesh={mesh}"
        d.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, d / "part-0.parquet", compression="zstd", row_group_size=1_000_000)
        del table
    marker.write_text(json.dumps({"points": n_points, "seed": seed}))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


WORKERS = 2  # processes, each handling whole partitions single-threaded (the machine has 2 cores)
_W: dict = {}


def _worker_init() -> None:
    """Worker process: one thread for numba and Arrow, the index built once, JIT / cache loaded."""
    import numba
    import pyarrow as pa

    from geo.aggregate import aggregate_points
    from geo.matching import build_segment_index, match_points

    numba.set_num_threads(1)
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    geoms, oneway = network()
    index = build_segment_index(geoms, radius_m=RADIUS_M, oneway=oneway)
    piece_limit = np.full(index.links.n_pieces, 30.0)
    m = match_points(np.array([ORIGIN[0]]), np.array([ORIGIN[1]]), index, np.array([90.0]))
    aggregate_points(m.seg, m.pos, m.direction, index, np.zeros(1, np.int64), np.ones(1, np.int32),
                     np.array([30.0]), np.zeros(1, np.int64), piece_limit)  # fmt: skip
    _W.update(index=index, piece_limit=piece_limit)


def _ready(_: int) -> int:
    import os

    time.sleep(0.2)
    return os.getpid()


def _partition(out: Path, rel: str) -> dict:
    """One partition, the product's path: read → match → aggregate (→ merge) → write its cube."""
    import os

    from geo.aggregate import aggregate_points, merge_cubes, write_cube
    from geo.matching import match_points
    from geo.pointsource import point_batches

    index, piece_limit = _W["index"], _W["piece_limit"]
    cubes = []
    n_points = n_matched = 0
    t_read = t_match = t_agg = 0.0
    cpu0 = time.process_time()
    tr = time.perf_counter()
    for b in point_batches(out / "probe_points" / rel, batch_rows=1_000_000):
        tm = time.perf_counter()
        t_read += tm - tr
        m = match_points(b.x_m, b.y_m, index, b.heading_deg)
        ta = time.perf_counter()
        t_match += ta - tm
        cubes.append(aggregate_points(m.seg, m.pos, m.direction, index, b.gps_us, b.vehicle_type, b.speed_kmh,
                                      b.vehicle_id, piece_limit))  # fmt: skip
        n_points += len(b)
        n_matched += int((m.seg >= 0).sum())
        tr = time.perf_counter()
        t_agg += tr - ta
    tw = time.perf_counter()
    cube = merge_cubes(cubes) if len(cubes) > 1 else cubes[0]
    write_cube(cube, out / "aggregates" / rel)
    t_write = time.perf_counter() - tw
    return {"pid": os.getpid(), "cpu_s": time.process_time() - cpu0, "points": n_points, "matched": n_matched, "read_s": t_read, "match_s": t_match,
            "aggregate_s": t_agg, "merge_write_s": t_write, "cells": len(cube.cells["piece"]),
            "hist_rows": len(cube.hist["piece"]), "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def phase_core(out: Path) -> dict:
    """Partitions spread over WORKERS processes (largest first); stage times are summed over workers."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from geo.pointsource import partitions

    t0 = time.perf_counter()
    geoms, oneway = network()
    from geo.matching import build_segment_index

    index = build_segment_index(geoms, radius_m=RADIUS_M, oneway=oneway)
    t_index = time.perf_counter() - t0
    parts = sorted(partitions(out / "probe_points"), key=lambda p: -sum(f.stat().st_size for f in p[1]))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(WORKERS, mp_context=mp.get_context("spawn"), initializer=_worker_init) as pool:
        pids: set[int] = set()
        while len(pids) < WORKERS:  # every worker started, index built and JIT loaded
            pids |= set(pool.map(_ready, range(WORKERS)))
        t_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        results = list(pool.map(_partition, [out] * len(parts), [rel for rel, _ in parts]))
        total = time.perf_counter() - t0
    peak = {}
    for r in results:
        peak[r["pid"]] = max(peak.get(r["pid"], 0.0), r["peak_rss_mb"])
    s = lambda k: sum(r[k] for r in results)  # noqa: E731
    return {"points": s("points"), "matched": s("matched"), "seconds": total, "read_s": s("read_s"),
            "match_s": s("match_s"), "aggregate_s": s("aggregate_s"), "merge_write_s": s("merge_write_s"),
            "index_s": t_index, "jit_s": t_start, "segments": int(len(index.links.x0)), "links": index.links.n_links,
            "cells": s("cells"), "hist_rows": s("hist_rows"), "workers": WORKERS, "cpu_s": s("cpu_s"),
            "peak_rss_mb": peak_rss_mb() + sum(peak.values()), "worker_peak_rss_mb": max(peak.values())}  # fmt: skip


def phase_geopandas(out: Path) -> dict:
    import geopandas as gpd
    import pandas as pd
    import pyarrow.parquet as pq
    import shapely

    from geo.network import build_links

    geoms, oneway = network()
    L = build_links(geoms, oneway=oneway)
    first = sorted((out / "probe_points").rglob("*.parquet"))[0]
    t = pq.ParquetFile(first).read_row_group(0).slice(0, SUBSET).to_pandas()
    t0 = time.perf_counter()
    segs = gpd.GeoDataFrame({"link": L.seg_link}, geometry=shapely.linestrings(
        np.stack([np.c_[L.x0, L.y0], np.c_[L.x1, L.y1]], axis=1)), crs="EPSG:6677")  # fmt: skip
    pts = gpd.GeoDataFrame(t, geometry=gpd.points_from_xy(t["x_m"], t["y_m"]), crs="EPSG:6677")
    j = gpd.sjoin_nearest(pts, segs, how="inner", max_distance=RADIUS_M, distance_col="dist")
    j = j[~j.index.duplicated(keep="first")]  # ties: keep one
    ts = pd.to_datetime(j["gps_time"])
    j = j.assign(hour=ts.dt.hour, day_type=(ts.dt.day_of_week >= 5).astype(int), bin=j["speed_kmh"].round().astype(int),
                 ge=(j["speed_kmh"] >= 30), ge10=(j["speed_kmh"] >= 40))  # fmt: skip
    keys = ["link", "hour", "day_type", "vehicle_type"]
    cells = j.groupby(keys).agg(n=("speed_kmh", "size"), s=("speed_kmh", "sum"), ge=("ge", "sum"), ge10=("ge10", "sum"),
                                veh=("vehicle_id", "nunique"))  # fmt: skip
    hist = j.groupby(keys + ["bin"]).size()
    seconds = time.perf_counter() - t0
    return {"points": len(t), "matched": int(len(j)), "seconds": seconds, "cells": len(cells), "hist_rows": len(hist),
            "peak_rss_mb": peak_rss_mb()}  # fmt: skip


def run_phase(name: str, out: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--phase", name, "--dir", str(out)], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=20_000_000)
    ap.add_argument("--dir", type=Path, default=ROOT / "build" / "bench")
    ap.add_argument("--phase", choices=["core", "geopandas"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(phase_core(args.dir) if args.phase == "core" else phase_geopandas(args.dir)))
        return
    t0 = time.perf_counter()
    generate(args.dir, args.points)
    print(f"data: {args.points:,} points in {args.dir / 'probe_points'} ({time.perf_counter() - t0:.1f} s to generate or check)")
    core = run_phase("core", args.dir)
    print(f"core: {core['segments']:,} segments ({core['links']:,} links), {core['points']:,} points, "
          f"{core['matched']:,} matched, {core['cells']:,} cells, {core['hist_rows']:,} histogram rows")  # fmt: skip
    print(f"core: {core['seconds']:.2f} s wall on {core['workers']} processes; worker-seconds: read {core['read_s']:.2f} + "
          f"match {core['match_s']:.2f} + aggregate {core['aggregate_s']:.2f} + merge/write {core['merge_write_s']:.2f} "
          f"(CPU {core['cpu_s']:.2f} s); "
          f"index {core['index_s']:.2f} s, worker start + JIT/cache load {core['jit_s']:.2f} s (not in the rate)")  # fmt: skip
    gp = run_phase("geopandas", args.dir)
    gp_rate = gp["points"] / gp["seconds"] / 1e6
    print(f"geopandas: {gp['points']:,} points, {gp['matched']:,} matched, {gp['seconds']:.2f} s = {gp_rate:.3f} Mpts/s, "
          f"peak RSS {gp['peak_rss_mb']:.0f} MB")  # fmt: skip
    rate = core["points"] / core["seconds"] / 1e6
    print(f"match+aggregate: {rate:.2f} Mpts/s end to end, peak RSS {core['peak_rss_mb']:.0f} MB (all processes; "
          f"largest worker {core['worker_peak_rss_mb']:.0f} MB), {rate / gp_rate:.0f}x geopandas")


if __name__ == "__main__":
    main()
