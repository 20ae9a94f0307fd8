"""Scale-out benchmark: ingest and match+aggregate on Dask LocalClusters of 1 and 2 workers, and in one process.

    .venv/bin/python bench/scale_out.py [--ingest-rows N] [--scale F] [--repeat R] [--dir DIR]

What runs is what `--dask-local N` runs (etl.cluster.dask_client's LocalCluster: single-threaded
worker processes, compiled kernels on one thread each):

- **ingest**: `etl.ingest.ingest_paths` of a synthetic 様式1-2 delivery of N rows in 50,000-row ZIPs
  (etl.synthetic.generate_bench_delivery, default 1 million rows) into a new warehouse each run:
  files staged by the workers, committed by this process (the single writer);
- **match+aggregate**: on a warehouse holding the calibrated synthetic delivery of both districts
  (etl.synthetic.generate_delivery at --scale, every month), the match stage of every month
  (`analysis.matchstage.match_stage`, matches removed before each run) then the figures of every
  named period (`analysis.figures.analyze`, cubes by month and piece range), for both districts.

Configurations: in this process without Dask (the default path: ingest with `--workers 1`), and
LocalClusters of 1 and 2 workers, all up at once; runs alternate (none, 1, 2, none, 1, 2 …) so that
load from other users of the machine falls on all alike; median of R runs. Every run's stored
results are checked equal to the first run's (row counts and summary for ingest; every stored
figure for match+aggregate). Also measured: the snapshot's size and the time to rewrite and read it
per listed file (what every commit pays), to project the commit at national scale.

Last lines: `ingest: …`, `match+aggregate: …` with times, rates, speed-up (1 → 2 workers) and efficiency
(speed-up / 2), the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ETC2CALM_HOME", str(ROOT))
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")


def load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def _clusters(ks):
    from distributed import Client, LocalCluster

    out = {}
    for k in ks:
        c = LocalCluster(
            n_workers=k,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
            env={"NUMBA_NUM_THREADS": "1"},
        )
        out[k] = (c, Client(c))
    return out


def _warm(client) -> None:
    from analysis.distributed import warm_up
    from etl._kernels import warm_up as warm_ingest

    client.run(warm_up, 1)
    client.run(warm_ingest)


def _cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _cpu_of(client) -> float:
    """CPU seconds used so far by this process and, with a client, by its workers."""
    return _cpu() + (sum(client.run(_cpu).values()) if client is not None else 0.0)


def _reset_matches(warehouse: Path) -> None:
    from etl.warehouse import connect

    con = connect(warehouse, create=False)
    try:
        con.execute("DELETE FROM match_state")
        con.execute("DELETE FROM matched_networks")
    finally:
        con.close()
    shutil.rmtree(warehouse / "matched", ignore_errors=True)


def _stored_figures(warehouse: Path):
    from etl.warehouse import connect

    con = connect(warehouse, read_only=True)
    try:
        return [
            con.execute(f"SELECT * {x} FROM {t} ORDER BY ALL").df()
            for t, x in (
                ("road_period_stats", "EXCLUDE (computed_at)"),
                ("group_period_stats", "EXCLUDE (computed_at)"),
                ("link_hour_stats", ""),
                ("link_hour_histogram", ""),
            )
        ]
    finally:
        con.close()


def _snapshot_cost(scratch: Path, n: int = 200_000) -> tuple[float, float, float]:
    """(bytes, seconds to write, seconds to read) per listed file of a snapshot with n point files."""
    from etl.warehouse import empty_snapshot, read_snapshot, write_json_atomic

    snap = empty_snapshot()
    snap["files"]["probe_points"] = [
        {
            "file_id": f"{i:020x}",
            "day": "2024-05-17",
            "year": 2024,
            "month": 5,
            "rows": 50_000,
            "path": f"probe_points/year=2024/month=5/2024-05-17_{i:020x}_20240610T060000-abcdef_0.parquet",
        }
        for i in range(n)
    ]
    scratch.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    write_json_atomic(scratch / "_snapshot.json", snap)
    t1 = time.perf_counter()
    read_snapshot(scratch)
    t2 = time.perf_counter()
    size = (scratch / "_snapshot.json").stat().st_size
    shutil.rmtree(scratch, ignore_errors=True)
    return size / n, (t1 - t0) / n, (t2 - t1) / n


def csv_bytes_per_row(rows: int = 100_000) -> float:
    """Uncompressed bytes per 様式1-2 row of a synthetic delivery (etl.synthetic)."""
    import tempfile
    import zipfile

    from etl.synthetic import generate_bench_delivery

    with tempfile.TemporaryDirectory() as tmp:
        generate_bench_delivery(Path(tmp), rows=rows, workers=1)
        return sum(i.file_size for z in Path(tmp).rglob("*.zip") for i in zipfile.ZipFile(z).infolist()) / rows


# Assumptions of the projection (printed with it; docs/scaling.md discusses them).
NATIONAL_TB, NATIONAL_MONTHS = 5.0, 11.0  # 様式1-2 CSV delivered nationally (issue 7)
POINTS_PER_VEHICLE_DAY = 150  # a point every ~200 m (走行履歴), ~30 km driven a day
POPULATION_M = {"Yokohama (city)": 3.77, "Kanagawa (prefecture)": 9.24, "Japan": 124.0}
MESHES = {"Yokohama (city)": 8, "Kanagawa (prefecture)": 30, "Japan": 4000}  # 2次メッシュ (~10 × 10 km) with roads
NIGHT_H = 8.0
BATCH_GB = 2.0  # delivered bytes per commit (etl.ingest.BATCH_BYTES)


def project(res: dict, csv_row: float) -> list[str]:
    """Data volumes, workers for a night, and the commit's and snapshot's costs at each scale."""
    import math

    per_day_national = NATIONAL_TB * 1e12 * 12 / NATIONAL_MONTHS / 365 / csv_row
    rate = {k: res[k]["rate_per_cpu_s"] for k in ("ingest", "match")}  # Dask's overhead included
    lines = [
        f"projection: assumptions: {NATIONAL_TB:g} TB of 様式1-2 CSV per {NATIONAL_MONTHS:g} months nationally, "
        f"{csv_row:.0f} B per CSV row (measured) → {per_day_national / 1e6:.0f} M points a day; "
        f"{POINTS_PER_VEHICLE_DAY} points per vehicle-day → {per_day_national / POINTS_PER_VEHICLE_DAY / 1e6:.2f} M "
        f"vehicle-days a day; regions by population share; one Parquet file per 2次メッシュ and day; a night = "
        f"{NIGHT_H:g} h; a worker is one core at this run's rate per CPU-second on 2 workers (ingest "
        f"{rate['ingest']:,.0f} rows, match+aggregate {rate['match']:,.0f} points; client and scheduler included)"
    ]
    for region, pop in POPULATION_M.items():
        day = per_day_national * pop / POPULATION_M["Japan"]
        for days, what in ((30, "month"), (365, "year")):
            n = day * days
            w_ing = math.ceil(n / (rate["ingest"] * NIGHT_H * 3600))
            w_ana = math.ceil(n / (rate["match"] * NIGHT_H * 3600))
            commits = n * csv_row / (BATCH_GB * 1e9)
            commit_h = n * res["commit_us_per_row"] / 1e6 / 3600
            files = MESHES[region] * days
            snap_h = commits * files / 2 * res["snapshot_write_us"] / 1e6 / 3600  # grows from 0 to `files` entries
            lines.append(
                f"projection: {region}, a {what} ({days} d): {n / 1e9:.2f} billion points, {n * csv_row / 1e12:.2f} "
                "TB CSV; "
                f"in one night: ingest {w_ing} worker(s), match+aggregate {w_ana}; commit {commit_h:.2f} h on one "
                "writer; "
                f"{files:,} point files, snapshot {files * res['snapshot_bytes'] / 1e6:.0f} MB rewritten by each of "
                f"{commits:,.0f} commits ({snap_h:.2f} h in all)"
            )
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ingest-rows", type=int, default=1_000_000)
    ap.add_argument("--scale", type=float, default=1.0, help="traffic of the calibrated delivery for match+aggregate")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=ROOT / "build" / "scale_out")
    ap.add_argument("--project-only", action="store_true", help="print the projection from DIR/result.json")
    args = ap.parse_args()
    if args.project_only:
        res = json.loads((args.dir / "result.json").read_text())
        print("\n".join(project(res, res.get("csv_bytes_per_row") or csv_bytes_per_row())))
        return 0
    os.environ.setdefault("ETC2CALM_ID_KEY", "scale-out-benchmark-key-0123456789")
    logging.getLogger("distributed").setLevel(logging.ERROR)

    from analysis.figures import analyze
    from analysis.matchstage import match_stage
    from analysis.network import district_network
    from config.districts import list_districts
    from etl.ingest import ingest_paths
    from etl.synthetic import generate_bench_delivery, generate_delivery

    print(f"load average at the start: {load()} on {os.cpu_count()} cores shared with other users", flush=True)
    d = args.dir
    t0 = time.perf_counter()
    bench = d / f"ingest_{args.ingest_rows}"
    if not (bench / "done").exists():
        shutil.rmtree(bench, ignore_errors=True)
        generate_bench_delivery(bench, rows=args.ingest_rows, rows_per_file=50_000)
        (bench / "done").write_text("ok")
    calib = d / f"delivery_{args.scale:g}"
    if not (calib / "done").exists():
        shutil.rmtree(calib, ignore_errors=True)
        generate_delivery(calib, scale=args.scale)
        (calib / "done").write_text("ok")
    zips = sorted(bench.rglob("*.zip"))
    print(
        f"data: ingest {len(zips)} ZIPs ({sum(z.stat().st_size for z in zips) / 1e6:.0f} MB); calibrated delivery "
        f"{len(list(calib.rglob('*.zip')))} ZIPs ({time.perf_counter() - t0:.0f} s to generate or find)",
        flush=True,
    )

    configs = ["none", 1, 2]
    clusters = _clusters([1, 2])
    secs = {"ingest": {c: [] for c in configs}, "match": {c: [] for c in configs}}
    cpu = {"ingest": {c: [] for c in configs}, "match": {c: [] for c in configs}}
    commit = []
    try:
        for _, client in clusters.values():
            _warm(client)
        # --- ingest
        ref = None
        for r in range(args.repeat):
            for c in configs:
                wh = d / f"wh_ingest_{c}"
                shutil.rmtree(wh, ignore_errors=True)
                client = None if c == "none" else clusters[c][1]
                c0, t = _cpu_of(client), time.perf_counter()
                rep = ingest_paths([bench], wh, workers=1, client=client)
                secs["ingest"][c].append(time.perf_counter() - t)
                cpu["ingest"][c].append(_cpu_of(client) - c0)
                commit.append(rep.commit_seconds)
                ref = ref or rep.summary()
                if rep.summary() != ref or rep.failed:
                    sys.exit(f"ingest with {c} worker(s) stored other rows: {rep.summary()}")
                rows = rep.total("rows_read")
                shutil.rmtree(wh, ignore_errors=True)
            print(
                f"ingest run {r + 1}: "
                + ", ".join(f"{c}: {secs['ingest'][c][-1]:.1f} s" for c in configs)
                + f" (load {load()})",
                flush=True,
            )
        # --- match + aggregate
        wh = d / "wh_match"
        if not (wh / "done").exists():
            shutil.rmtree(wh, ignore_errors=True)
            ingest_paths([calib], wh)
            (wh / "done").write_text("ok")
        districts = list_districts()
        networks = [district_network(x) for x in districts]
        figures_ref = None
        n_points = 0
        for r in range(args.repeat):
            for c in configs:
                _reset_matches(wh)
                client = None if c == "none" else clusters[c][1]
                c0, t = _cpu_of(client), time.perf_counter()
                n_points = 0
                for district, network in zip(districts, networks, strict=True):
                    rep = match_stage(wh, network, client=client)
                    n_points += rep.n_points
                    analyze(wh, network, dict(district.periods), client=client)
                secs["match"][c].append(time.perf_counter() - t)
                cpu["match"][c].append(_cpu_of(client) - c0)
                got = _stored_figures(wh)
                figures_ref = figures_ref or got
                if not all(a.equals(b) for a, b in zip(got, figures_ref, strict=True)):
                    sys.exit(f"match+aggregate with {c} worker(s) stored other figures than the first run")
            print(
                f"match+aggregate run {r + 1}: "
                + ", ".join(f"{c}: {secs['match'][c][-1]:.1f} s" for c in configs)
                + f" (load {load()})",
                flush=True,
            )
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()
    from etl.warehouse import connect

    con = connect(wh, read_only=True)
    try:
        read = con.execute("SELECT sum(n_points_read) FROM match_state").fetchone()[0]
        store = con.execute("SELECT count(*) FROM probe_points").fetchone()[0]
    finally:
        con.close()
    med = {kind: {c: statistics.median(v) for c, v in s.items()} for kind, s in secs.items()}
    out = {"load_end": os.getloadavg()}
    for kind, label, n, unit in (("ingest", "ingest", rows, "rows"), ("match", "match+aggregate", read, "points read")):
        m = med[kind]
        speedup = m[1] / m[2]
        cpu_med = {c: statistics.median(v) for c, v in cpu[kind].items()}
        out[kind] = {
            "seconds": m,
            "rate_1": n / m[1],
            "rate_2": n / m[2],
            "rate_none": n / m["none"],
            "speedup": speedup,
            "cpu_seconds": cpu_med,
            "rate_per_cpu_s": n / cpu_med[2],
            "n": n,
        }
        print(
            f"{label}: in-process {m['none']:.1f} s, 1 worker {m[1]:.1f} s, 2 workers {m[2]:.1f} s "
            f"(medians of {args.repeat}); {n / m[1]:,.0f} {unit}/s per worker, {n / m[2]:,.0f} {unit}/s on 2; "
            f"speed-up 1→2 workers {speedup:.2f}x, efficiency {speedup / 2:.0%}; "
            f"1 Dask worker / in-process {m[1] / m['none']:.2f}"
        )
        print(
            f"{label}: CPU (this process + workers, medians) in-process {cpu_med['none']:.1f} s, 1 worker "
            f"{cpu_med[1]:.1f} s, 2 workers {cpu_med[2]:.1f} s: {n / cpu_med[2]:,.0f} {unit} per CPU-second on 2 "
            "workers; "
            f"wall / CPU on 2 workers {m[2] / cpu_med[2]:.2f} (1.0 would be one busy core, 0.5 two)"
        )
    print(
        f"match+aggregate: {read:,} points of touching trips read and matched ({n_points:,} inside the networks' "
        "boxes) "
        f"out of {store:,} stored points; both districts, every month and named period"
    )
    per_row = statistics.median(commit) / rows
    print(
        f"commit (single writer, this process): median {statistics.median(commit):.2f} s per ingest, "
        f"{per_row * 1e6:.2f} µs per row"
    )
    size, w, rd = _snapshot_cost(d / "snapshot_probe")
    print(
        f"snapshot: {size:.0f} B per listed file; rewrite {w * 1e6:.1f} µs and read {rd * 1e6:.1f} µs per listed file"
    )
    out.update(
        commit_us_per_row=per_row * 1e6, snapshot_bytes=size, snapshot_write_us=w * 1e6, snapshot_read_us=rd * 1e6
    )
    out["csv_bytes_per_row"] = csv_bytes_per_row()
    (d / "result.json").write_text(json.dumps(out, indent=1, default=str))
    print(f"load average at the end: {load()}")
    print("\n".join(project(out, out["csv_bytes_per_row"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
