"""Benchmark of the monthly flow on the demo delivery: today's code against the code before issue 10.

    PYTHONPATH=$PWD .venv/bin/python bench/flow.py [--scale F] [--repeat R] [--dir DIR] [--old-rev REV]
        [--rev NAME=REV]...

What it runs:
- the demo delivery, generated once with today's generator (etl.synthetic.generate_delivery,
  seed 20171005, scale F, default 1.0) into DIR/landing/, the same bytes for both sides;
- the code before issue 10 (REV, default b4bf3c4) checked out read-only into a temporary git
  worktree outside the work tree (/tmp/...), removed at the end; today's code is this tree; any
  --rev NAME=REV is one more side (e.g. main=<commit>), in its own temporary worktree;
- a warm-up of each side on a small delivery (scale 0.05), not counted (numba caches, Prefect DB);
- for each side, R times (default 3), alternating (old, new, …; then the order rotated), in a
  fresh process (python with PYTHONPATH pointing at that side's tree) with a fresh warehouse:
  1. a trivial Prefect flow: ephemeral mode starts its API server here (reported apart as
     "API start", not in the flow times below);
  2. `flows.pipeline.monthly_pipeline(landing="landing", ...)` on the empty warehouse (as the
     deployment passes it: a path relative to the working directory), every bundled district:
     ingest, (new: match,) analyse, compare, (new: gates, screening, monitoring,) publish — the
     "first run";
  3. the same flow again on the same warehouse with nothing new — the "second run".
  Each flow time is the wall time of the flow call (API already up); the stage times are the
  wall times of the plain functions the tasks call, summed over districts, and "orchestration" is
  the flow time minus the stages (Prefect task and flow-run bookkeeping). Process time includes
  the imports too. Peak RSS is the flow process's own (its ingest workers and the API server are
  other processes: their largest is printed apart).
- prints each run, then per side the medians, the ratios new/old (per pair, median) and the load
  average (1, 5, 15 min) before and after. The machine is shared: compare ratios, not absolutes.

Last line: `monthly flow (demo delivery, scale F): first run new X s / old Y s = R, second run new … / old … = …,
load L` (one line).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD_REV = "b4bf3c4"
WARMUP_SCALE = 0.05
# Stages of today's flow that the old one did not have (features added since): left out of the
# like-for-like ratios.
NEW_STAGES = ("gates", "screen", "monitor")
# Plain functions the flow's tasks call, by module attribute of flows.pipeline, and their stage.
STAGES = {
    "new_delivery_files": "find-new",
    "ingest_paths": "ingest",
    "match_stage": "match",
    "analyze_district_periods": "analyze",  # analysis.figures.analyze_district (flows.pipeline.figures)
    "compare_district": "compare",
    "evaluate_district": "compare",  # its name in the baseline revision's tree
    "monthly_series": "monitor",
    "evaluate_gates": "gates",
    "screen_district": "screen",
    "publish_district": "publish",
    "update_latest": "publish",
    "write_district_map": "publish",
    "render_report": "publish",
    "write_district_sheet": "publish",
}


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


# ---------------------------------------------------------------------------------------------
# The child: one side's flow, in its own process (PYTHONPATH = that side's tree)


def child(args) -> None:
    t_proc = time.perf_counter()
    from prefect import flow

    import flows.pipeline as fp

    t_import = time.perf_counter() - t_proc
    times: dict[str, float] = defaultdict(float)

    def timed(fn, name):
        def wrapper(*a, **kw):
            stage = STAGES[name]
            if name in ("compare_district", "evaluate_district") and kw.get("store") is False:
                stage = "publish"  # before issue 10, publishing re-ran the bootstrap without storing
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                times[stage] += time.perf_counter() - t

        return wrapper

    for name in STAGES:
        if hasattr(fp, name):
            setattr(fp, name, timed(getattr(fp, name), name))
    figures_module = getattr(fp, "figures", None)  # the flow calls analysis.figures.analyze_district by its module
    if figures_module is not None and hasattr(figures_module, "analyze_district"):
        figures_module.analyze_district = timed(figures_module.analyze_district, "analyze_district_periods")

    @flow(name="bench-noop")
    def noop() -> int:
        return 1

    t = time.perf_counter()
    noop()
    t_api = time.perf_counter() - t
    runs = []
    for k in (1, 2):
        times.clear()
        t = time.perf_counter()
        out = fp.monthly_pipeline(landing=args.landing, warehouse=args.warehouse, out_dir=args.out)
        wall = time.perf_counter() - t
        if not isinstance(out, dict):  # a Failed state
            sys.exit(f"run {k}: the flow did not complete: {out}")
        ingest = out["ingest"]
        runs.append(
            {
                "wall_s": wall,
                "stages": dict(times),
                "orchestration_s": wall - sum(times.values()),
                "rows_stored": ingest.get("rows_stored"),
                "ingest": ingest.get("summary", ""),
            }
        )
    import resource

    print(
        json.dumps(
            {
                "import_s": t_import,
                "api_start_s": t_api,
                "runs": runs,
                "process_s": time.perf_counter() - t_proc,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            }
        )
    )


# ---------------------------------------------------------------------------------------------
# The parent


def run_side(side: str, tree: Path, work: Path, prefect_home: Path, landing: str = "landing") -> dict:
    """One fresh process of `side` on a fresh warehouse; its JSON report plus process wall time."""
    run = work / f"run-{side}"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(tree),
            "PREFECT_HOME": str(prefect_home),
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "ETC2CALM_HOME": str(tree),
        }
    )
    env.pop("PREFECT_API_URL", None)
    # The landing folder relative to the working directory (work/landing), as the deployment passes it.
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--landing",
        landing,
        "--warehouse",
        str(run / "warehouse"),
        "--out",
        str(run / "maps"),
    ]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"{side}: child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_wall_s"] = wall
    shutil.rmtree(run, ignore_errors=True)
    return res


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_run(r: dict) -> str:
    st = r["stages"]
    parts = " + ".join(
        f"{k} {st[k]:.1f}"
        for k in ("find-new", "ingest", "match", "analyze", "compare", *NEW_STAGES, "publish")
        if k in st
    )
    return f"{r['wall_s']:6.1f} s = {parts} + orchestration {r['orchestration_s']:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="demo delivery scale (default 1.0)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side, alternated (default 3)")
    ap.add_argument(
        "--dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "etc2calm-bench-flow",
        help="work folder (delivery cached there; warehouses made and removed per run)",
    )
    ap.add_argument("--old-rev", default=OLD_REV, help=f"the code before issue 10 (default {OLD_REV})")
    ap.add_argument(
        "--rev",
        action="append",
        default=[],
        metavar="NAME=REV",
        help="another side to run (a temporary worktree of REV), e.g. main=52fc0ca; repeatable",
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--landing", help=argparse.SUPPRESS)
    ap.add_argument("--warehouse", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    load0 = load()
    work = args.dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    os.environ["ETC2CALM_HOME"] = str(ROOT)  # this tree's district files, not an installed copy's
    # The generator's code and the district files it reads: a changed generator makes a new delivery.
    gen = hashlib.sha256()
    for f in [ROOT / "etl" / "synthetic.py", *sorted((ROOT / "data").glob("[ds]*/*.toml"))]:
        gen.update(f.read_bytes())
    for name, scale in (("landing", args.scale), ("landing-warmup", WARMUP_SCALE)):
        marker = work / f"{name}.json"
        want = {"seed": 20171005, "scale": scale, "generator": gen.hexdigest()[:16]}
        have = json.loads(marker.read_text()) if marker.exists() else {}
        if {k: have.get(k) for k in want} != want:
            from etl.synthetic import generate_delivery

            shutil.rmtree(work / name, ignore_errors=True)
            g = generate_delivery(work / name, seed=20171005, scale=scale)
            marker.write_text(json.dumps({**want, "rows": g["rows"], "files": g["files"]}))
            print(f"delivery {name}: {g['files']} files, {g['rows']:,} rows generated in {g['seconds']:.1f} s")
    info = json.loads((work / "landing.json").read_text())
    print(
        f"delivery: {work / 'landing'} ({info['files']} ZIP files, {info['rows']:,} rows; seed 20171005, scale "
        f"{args.scale:g}, "
        f"generator {info['generator']})"
    )
    # Sides: old (a temporary worktree of --old-rev), new (this tree), and any --rev NAME=REV (worktrees too).
    revs = [("old", args.old_rev)] + [tuple(r.split("=", 1)) for r in args.rev]
    trees: dict[str, Path] = {"new": ROOT}
    for name, rev in revs:
        tree = Path(tempfile.mkdtemp(prefix=f"etc2calm-flow-{name}-"))
        tree.rmdir()
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True, capture_output=True
        )
        trees[name] = tree
    sides = ["old", "new", *[name for name, _ in revs[1:]]]
    prefect_home = work / "prefect-home"
    results: dict[str, list[dict]] = {side: [] for side in sides}
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD"], capture_output=True).returncode
        print(
            f"new: {ROOT} at {head}{' + uncommitted changes' if dirty else ''}; "
            + "; ".join(f"{name}: {rev} in {trees[name]} (temporary worktree)" for name, rev in revs)
        )
        print(f"load average before: {load0}")
        # Warm-up, not counted: each side once on a small delivery (scale WARMUP_SCALE), so that all
        # have their numba caches and Prefect's database is migrated before the clock.
        for side in sides:
            w = run_side(side, trees[side], work, prefect_home, "landing-warmup")
            print(f"warm-up {side}: process {w['process_wall_s']:.1f} s (not counted)", flush=True)
        for i in range(args.repeat):
            for side in sides[i % len(sides) :] + sides[: i % len(sides)]:  # rotated: each side starts a round
                r = run_side(side, trees[side], work, prefect_home)
                results[side].append(r)
                first, second = r["runs"]
                print(
                    f"{side} #{i + 1}: API start {r['api_start_s']:.1f} s, imports {r['import_s']:.1f} s; "
                    f"first run {fmt_run(first)}; second run {fmt_run(second)}; "
                    f"process {r['process_wall_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB "
                    f"(largest child {r['children_peak_rss_mb']:.0f} MB); load {load()}",
                    flush=True,
                )
                if first["rows_stored"] is not None and i == 0:
                    print(f"    ingest: {first['ingest']}")
    finally:
        for name, _ in revs:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(trees[name])], capture_output=True
            )
            shutil.rmtree(trees[name], ignore_errors=True)
    load1 = load()
    med = {}
    for side, rs in results.items():
        med[side] = {
            "first": median([r["runs"][0]["wall_s"] for r in rs]),
            "second": median([r["runs"][1]["wall_s"] for r in rs]),
            "api": median([r["api_start_s"] for r in rs]),
            "process": median([r["process_wall_s"] for r in rs]),
        }
        stages = sorted({k for r in rs for k in r["runs"][0]["stages"]})
        st = ", ".join(f"{k} {median([r['runs'][0]['stages'].get(k, 0.0) for r in rs]):.1f}" for k in stages)
        print(
            f"{side} (median of {len(rs)}): first run {med[side]['first']:.1f} s ({st}), second run "
            f"{med[side]['second']:.1f} s, API start {med[side]['api']:.1f} s, whole process "
            f"{med[side]['process']:.1f} s"
        )

    def ratio(side: str, value) -> float:
        """Median over rounds of side / old, each round's runs paired."""
        return median([value(a) / value(b) for a, b in zip(results[side], results["old"], strict=True)])

    first = lambda r: r["runs"][0]["wall_s"]  # noqa: E731
    second = lambda r: r["runs"][1]["wall_s"]  # noqa: E731

    def analysis(k):
        return lambda r: sum(
            v for s, v in r["runs"][k]["stages"].items() if s not in ("find-new", "ingest", *NEW_STAGES)
        )  # noqa: E731

    no_new = lambda k: lambda r: r["runs"][k]["wall_s"] - sum(r["runs"][k]["stages"].get(s, 0.0) for s in NEW_STAGES)  # noqa: E731
    ratios = {}
    for side in sides[1:]:
        ratios[side] = (ratio(side, first), ratio(side, second))
        print(
            f"ratio {side}/old (median of per-round ratios): first run {ratios[side][0]:.2f}, second run "
            f"{ratios[side][1]:.2f}, whole process {ratio(side, lambda r: r['process_wall_s']):.2f}; without the "
            "stages "
            f"the old flow did not have ({', '.join(NEW_STAGES)}): first {ratio(side, no_new(0)):.2f}, second "
            f"{ratio(side, no_new(1)):.2f}; analysis stages alone (match, analyse, compare, publish vs analyse, "
            f"compare, publish; no ingest, no new stages): first {ratio(side, analysis(0)):.2f}, second "
            f"{ratio(side, analysis(1)):.2f}"
        )
    (work / "results.json").write_text(json.dumps({"load_before": load0, "load_after": load(), "results": results}))
    r1, r2 = ratios["new"]
    print(f"load average before {load0}, after {load1}")
    print(
        f"monthly flow (demo delivery, scale {args.scale:g}): first run new {med['new']['first']:.1f} s / old "
        f"{med['old']['first']:.1f} s = {r1:.2f}, second run new {med['new']['second']:.1f} s / old "
        f"{med['old']['second']:.1f} s = {r2:.2f} (API start {med['new']['api']:.1f} s apart), load {load1}"
    )


if __name__ == "__main__":
    main()
