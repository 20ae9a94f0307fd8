"""Scale-out benchmark: partition-parallel aggregation on a Dask LocalCluster, 1 vs 2 workers.

    .venv/bin/python bench/scale_out.py [--points N] [--dir DIR] [--repeat R]

Data: bench/match.py's synthetic street grid (≥ 20,000 segments) and N points (default 6 million)
in its hive layout (year=/month=/mesh=, 20 partitions), cached in DIR. Each configuration runs
`geo.distributed.aggregate_partitions` (read → match → aggregate per partition on the workers,
cubes tree-merged) on a LocalCluster of single-threaded worker processes, with the compiled
kernels pinned to one thread per worker, after a warm-up on every worker (JIT / cache load not
timed); both clusters are up together and runs alternate between them; median of R runs. The merged cube is checked equal to the single-process path's.

Prints `scale-out: 1 worker <s> s, 2 workers <s> s, speed-up <x>x`, then a projection for a
full-year city-wide delivery with its assumptions (national volume, the city's share, bytes per
delivered CSV row measured on a synthetic 様式1-2 delivery, bytes per row of our Parquet).
"""

from __future__ import annotations

import argparse
import logging
import importlib.util
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _bench_match():
    spec = importlib.util.spec_from_file_location("bench_match", ROOT / "bench" / "match.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def csv_bytes_per_row(rows: int = 100_000) -> tuple[float, float]:
    """(uncompressed, zipped) bytes per 様式1-2 row of a synthetic delivery (etl.synthetic)."""
    from etl.synthetic import generate_bench_delivery

    with tempfile.TemporaryDirectory() as tmp:
        generate_bench_delivery(Path(tmp), rows=rows, workers=1)
        zips = list(Path(tmp).rglob("*.zip"))
        raw = sum(i.file_size for z in zips for i in zipfile.ZipFile(z).infolist())
        packed = sum(z.stat().st_size for z in zips)
    return raw / rows, packed / rows


def same_cube(a, b) -> bool:
    return all(np.array_equal(getattr(a, p)[k], getattr(b, p)[k]) for p in ("cells", "hist", "vehicles")
               for k in set(getattr(a, p)) & set(getattr(b, p)))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=6_000_000)
    ap.add_argument("--dir", type=Path, default=ROOT / "build" / "scale_out")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--national-tb", type=float, default=5.0, help="national ETC2.0 delivery, TB of CSV (issue 7)")
    ap.add_argument("--national-months", type=float, default=11.0, help="months that volume covers (issue 7)")
    ap.add_argument("--city-share", type=float, default=0.03,
                    help="the city's share of national points (Yokohama: 3.77 M of 124 M people ≈ 3 %%)")  # fmt: skip
    args = ap.parse_args()

    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)

    from geo.distributed import aggregate_partitions, aggregate_partitions_serial, warm_up
    from geo.matching import build_segment_index

    bm = _bench_match()
    t0 = time.perf_counter()
    bm.generate(args.dir, args.points)
    store = args.dir / "probe_points"
    parquet_bytes = sum(f.stat().st_size for f in store.rglob("*.parquet"))
    print(f"data: {args.points:,} points, {len(list(store.rglob('*.parquet')))} partitions, "
          f"{parquet_bytes / 1e6:.0f} MB Parquet in {store} ({time.perf_counter() - t0:.1f} s to generate or check)")  # fmt: skip
    geoms, oneway = bm.network()
    index = build_segment_index(geoms, radius_m=bm.RADIUS_M, oneway=oneway)
    piece_limit = np.full(index.links.n_pieces, 30.0)
    warm_up(None)
    serial = aggregate_partitions_serial(store, index, piece_limit)  # also warms the page cache
    print(f"single process (no Dask, compiled kernels on all {os.cpu_count()} cores): {serial.seconds:.2f} s, "
          f"{serial.n_points:,} points, {serial.n_matched:,} matched")  # fmt: skip

    # Both clusters up at once and runs alternated (1, 2, 1, 2 ...), so that load from other
    # processes on the machine falls on both alike; median of the runs.
    clusters = {k: LocalCluster(n_workers=k, threads_per_worker=1, processes=True, dashboard_address=None,
                                    silence_logs=logging.ERROR) for k in (1, 2)}
    clients = {k: Client(c) for k, c in clusters.items()}
    runs: dict[int, list[float]] = {1: [], 2: []}
    in_tasks: dict[int, list[float]] = {1: [], 2: []}
    try:
        for c in clients.values():
            c.run(warm_up, 1)
        for _ in range(args.repeat):
            for k, client in clients.items():
                r = aggregate_partitions(store, index, piece_limit, client=client, numba_threads=1)
                if not same_cube(r.cube, serial.cube) or r.n_points != serial.n_points or r.n_workers != k:
                    sys.exit(f"scale-out: {k} worker(s) gave a cube different from the single-process path")
                runs[k].append(r.seconds)
                in_tasks[k].append(sum(r.partition_seconds.values()))
    finally:
        for k in clients:
            clients[k].close()
            clusters[k].close()
    seconds = {k: float(np.median(v)) for k, v in runs.items()}
    for k in (1, 2):
        print(f"{k} worker(s): runs {', '.join(f'{s:.2f}' for s in runs[k])} s (median {seconds[k]:.2f} s, "
              f"{serial.n_points / seconds[k] / 1e6:.2f} Mpts/s); read+match+aggregate tasks "
              f"{np.median(in_tasks[k]):.1f} s of worker time, the rest is the merge by piece ranges and transfers; "
              f"cube identical to single process")  # fmt: skip
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores shared with other users")  # fmt: skip
    speedup = seconds[1] / seconds[2]
    print(f"scale-out: 1 worker {seconds[1]:.2f} s, 2 workers {seconds[2]:.2f} s, speed-up {speedup:.2f}x")

    # Projection: a full-year, city-wide delivery.
    csv_row, zip_row = csv_bytes_per_row()
    pq_row = parquet_bytes / args.points
    year_bytes = args.national_tb * 1e12 * 12 / args.national_months * args.city_share
    rows = year_bytes / csv_row
    rate_per_worker = serial.n_points / seconds[1]  # points/s of one single-threaded worker
    efficiency = speedup / 2
    print(f"projection: assumptions: national delivery {args.national_tb:g} TB of 様式1-2 CSV per "
          f"{args.national_months:g} months, city share {args.city_share:.1%}; {csv_row:.0f} B per CSV row "
          f"(measured, synthetic delivery; {zip_row:.0f} B zipped), {pq_row:.0f} B per row of our Parquet (measured)")  # fmt: skip
    print(f"projection: one year city-wide ≈ {year_bytes / 1e9:.0f} GB CSV ≈ {rows / 1e9:.2f} billion points "
          f"≈ {rows * pq_row / 1e9:.0f} GB Parquet")  # fmt: skip
    for w in (1, 8, 32):
        linear = rows / (rate_per_worker * w) / 3600
        measured = rows / (rate_per_worker * w * (efficiency if w > 1 else 1.0)) / 3600
        print(f"projection: {w:>2} single-core worker(s) at the measured {rate_per_worker / 1e6:.2f} Mpts/s each: "
              f"{linear:.2f} h with linear scaling" + (f", {measured:.2f} h at this run's 2-worker efficiency "
              f"({efficiency:.0%})" if w > 1 else ""))  # fmt: skip

if __name__ == "__main__":
    main()
