"""Benchmark of `etc2calm compare`'s memory and time as its periods grow (the month-by-month samples).

    PYTHONPATH=$PWD .venv/bin/python bench/compare.py [--dir DIR] [--scale S] [--runs K]

Data (built once, cached in DIR): `etc2calm generate --district okurayama --scale S` (synthetic,
default scale 8: about 5.1 M rows over 9 months, 40 k vehicles), ingested into DIR/wh, then matched
once by a first compare (not timed: the figures below leave the match stage out, it is current).

Figures, each from a fresh process (`etc2calm compare --district okurayama --indicator p85`,
1,000 resamples, store included), peak RSS of the process and its children (os.wait4) and wall:
- short: before 2017-10-01..2017-10-31, after 2019-06-01..2019-06-30 (one month each): the baseline
  measured in the same run;
- long: before 2017-08-01..2017-10-31, after 2019-03-01..2019-06-30 (3 + 4 months).
The last line gives long / short for the points read, peak RSS and wall: with points reduced month by
month, peak RSS grows with what is kept (per-vehicle counts, passages, trips), not with the points.
Included: interpreter start, imports, network load, the reading and reduction of every month, the
bootstrap, placebo streets, braking, cut-through, the stores. Left out: generation, ingest, the match.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERIODS = {
    "short": ("2017-10-01..2017-10-31", "2019-06-01..2019-06-30"),
    "long": ("2017-08-01..2017-10-31", "2019-03-01..2019-06-30"),
}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from etc2calm.cli import main; sys.exit(main())", *args]


def prepare(out: Path, scale: float) -> Path:
    """The delivery, the warehouse and the district's matched months (cached in `out`)."""
    wh = out / "wh"
    if not (out / "ready").exists():
        out.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        gen = ["generate", str(out / "gen"), "--scale", str(scale), "--district", "okurayama"]
        subprocess.run(_cli(*gen), check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(_cli("ingest", str(out / "gen"), "--warehouse", str(wh)), check=True, env=env)
        before, after = PERIODS["long"]
        subprocess.run(_cli(*_compare_args(wh, before, after)), check=True, env=env, stdout=subprocess.DEVNULL)
        (out / "ready").write_text("ok\n")
    return wh


def _compare_args(wh: Path, before: str, after: str) -> list[str]:
    return ["compare", "--district", "okurayama", "--warehouse", str(wh), "--before", before, "--after", after]


def run(wh: Path, before: str, after: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    proc = subprocess.Popen(
        _cli(*_compare_args(wh, before, after), "--indicator", "p85"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = proc.stdout.read()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"compare failed: {output.decode(errors='replace')[-3000:]}")
    return {"peak_rss_mb": ru.ru_maxrss / 1024, "wall_s": wall}


def points_in(wh: Path, before: str, after: str) -> int:
    import duckdb

    con = duckdb.connect(str(wh / "warehouse.duckdb"), read_only=True)
    try:
        n = 0
        for period in (before, after):
            a, b = period.split("..")
            n += con.execute(
                "SELECT count(*) FROM probe_points WHERE gps_time >= ?::DATE AND gps_time < ?::DATE + 1", [a, b]
            ).fetchone()[0]
        return n
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=ROOT / "build" / "bench-compare", help="data cache")
    ap.add_argument("--scale", type=float, default=8.0, help="traffic volume factor of the generator (default 8)")
    ap.add_argument("--runs", type=int, default=2, help="runs of each size, alternating (the minimum is printed)")
    args = ap.parse_args()
    wh = prepare(args.dir.resolve(), args.scale)
    best: dict[str, dict] = {}
    for _ in range(args.runs):
        for name, (before, after) in PERIODS.items():
            r = run(wh, before, after)
            for k, v in r.items():
                best.setdefault(name, {})[k] = min(v, best.get(name, {}).get(k, v))
    n = {name: points_in(wh, *p) for name, p in PERIODS.items()}
    for name, (before, after) in PERIODS.items():
        b = best[name]
        print(
            f"{name}: before {before}, after {after}: {n[name]:,} points in the store; "
            f"peak RSS {b['peak_rss_mb']:.0f} MB, wall {b['wall_s']:.1f} s (min of {args.runs}); load {os.getloadavg()}"
        )
    s, g = best["short"], best["long"]
    rss = g["peak_rss_mb"] / s["peak_rss_mb"]
    print(
        f"compare long/short: points {n['long'] / n['short']:.2f}x, peak RSS {rss:.2f}x "
        f"({g['peak_rss_mb']:.0f} / {s['peak_rss_mb']:.0f} MB), wall {g['wall_s'] / s['wall_s']:.2f}x"
    )


if __name__ == "__main__":
    main()
