"""Scale-out benchmark: partition-parallel aggregation on a Dask LocalCluster, 1 vs 2 workers.

    .venv/bin/python bench/scale_out.py [--points N] [--dir DIR] [--repeat R]

Data: bench/match.py's synthetic street grid (≥ 20,000 segments) and N points (default 6 million)
in its hive layout (year=/month=/mesh=, 20 partitions), cached in DIR. Each configuration runs
`geo.distributed.aggregate_partitions` (read → match → aggregate per partition on the workers,
cubes tree-merged) on a LocalCluster of single-threaded worker processes, with the compiled
kernels pinned to one thread per worker, after a warm-up on every worker (JIT / cache load not
timed); best of R runs. The merged cube is checked equal to the single-process path's.

Prints `scale-out: 1 worker <s> s, 2 workers <s> s, speed-up <x>x`, then a projection for a
full-year city-wide delivery with its assumptions (national volume, the city's share, bytes per
delivered CSV row measured on a synthetic 様式1-2 delivery, bytes per row of our Parquet).
"""

from __future__ import annotations

import argparse
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
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--national-tb", type=float, default=5.0, help="national ETC2.0 delivery, TB of CSV (issue 7)")
    ap.add_argument("--national-months", type=float, default=11.0, help="months that volume covers (issue 7)")
    ap.add_argument("--city-share", type=float, default=0.03,
                    help="the city's share of national points (Yokohama: 3.77 M of 124 M people ≈ 3 %%)")  # fmt: skip
    args = ap.parse_args()

    from distributed import Client, LocalCluster

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

    seconds = {}
    for k in (1, 2):
        cluster = LocalCluster(n_workers=k, threads_per_worker=1, processes=True, dashboard_address=None)
        try:
            with Client(cluster) as client:
                client.run(warm_up, 1)
                runs = []
                for _ in range(args.repeat):
                    r = aggregate_partitions(store, index, piece_limit, client=client, numba_threads=1)
                    if not same_cube(r.cube, serial.cube) or r.n_points != serial.n_points:
                        sys.exit(f"scale-out: {k} worker(s) gave a cube different from the single-process path")
                    runs.append(r.seconds)
                    in_tasks = sum(r.partition_seconds.values())
                seconds[k] = min(runs)
                print(f"{k} worker(s): runs {', '.join(f'{s:.2f}' for s in runs)} s; "
                      f"{serial.n_points / seconds[k] / 1e6:.2f} Mpts/s; read+match+aggregate tasks {in_tasks:.1f} s "
                      f"of worker time (last run), the rest is the merge by piece ranges and transfers; "
                      f"cube identical to single process")  # fmt: skip
        finally:
            cluster.close()
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
    for w in (1, 2, 8, 32):
        eff = 1.0 if w == 1 else efficiency  # measured 2-worker efficiency, assumed to hold further out
        hours = rows / (rate_per_worker * w * eff) / 3600
        print(f"projection: {w:>2} single-core worker(s) at {rate_per_worker / 1e6:.2f} Mpts/s each"
              f"{'' if w == 1 else f' × {eff:.0%} efficiency'}: {hours:.2f} h")  # fmt: skip


if __name__ == "__main__":
    main()
