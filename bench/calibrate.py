"""Calibration check of the synthetic generator: generate, ingest, measure the treated street, compare.

    PYTHONPATH=$PWD .venv/bin/python bench/calibrate.py [--scale F] [--seed S] [--district KEY]...
                                                        [--no-monitoring] [--no-year] [--keep DIR]

Generates the bundled districts (or the ones named) with etl.synthetic at `--scale`, ingests the
delivery with the product's ingest into a temporary warehouse, then, per district and period (the
named periods and the generated monitoring months), measures on the treated street (all points the
pipeline matches to it, pooled over the period):

    p85       85th percentile of point speeds (grouped-data percentile, as `compare --indicator p85`)
    mean      mean point speed
    pt>=lim   share of points at or over the street's limit
    pas>=lim  share of PASSAGES at or over the limit: a passage is one vehicle's traversal of the
              street (consecutive points of one trip, i.e. vehicle pseudonym + operation date + trip
              number, matched to it); its speed is the section travel speed (distance along the
              street / time taken, analysis.points; docs/statistics.md)
    pas_mean  mean passage speed (section travel speed)
    spot>=    share of the same passages whose mean spot speed is at or over the limit (sensitivity)
    n_pas     passages with a speed; pts/pas: points per passage; veh: distinct vehicles

next to the targets of the district file's [synthetic.calibration] table, with PASS/FAIL. It also
simulates (without writing or ingesting) the district's `data_basis` year, when the table names
one, and prints the distinct vehicles it would contain at the generated daily volumes.

Only `matched_points` and `passage_speeds` use the pipeline (its match stage, reader and passage
definition); the rest is plain pandas on their output.
The exit status is 1 when a target fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.districts import District, Period, list_districts, load_district  # noqa: E402
from etl.ingest import ingest_paths  # noqa: E402
from etl.synthetic import generate_delivery, monitoring_periods, pre_periods  # noqa: E402
from geo.aggregate import grouped_quantile  # noqa: E402

DEMO_SEED = 20171005  # etc2calm demo's default seed


def matched_points(warehouse: Path, district: District, period: Period) -> tuple[pd.DataFrame, dict[str, float]]:
    """Points of `period` matched to the district's roads by the product (match stage + the one reader).

    Returns (points with vehicle, trip_id, seq, gps_time, speed_kmh, road_idx, road_pos_m, road_id,
    x_m, y_m — every stored point of the trips, road_idx -1 and road_id None off the network: the
    passages' context — and {road_id: limit_kmh}). The only function here that touches the pipeline.
    """
    from analysis.matchstage import match_stage
    from analysis.network import district_network
    from analysis.points import RoadNodes, read_points
    from etl.warehouse import connect
    from geo.calendar import months_between

    net = district_network(district)
    match_stage(warehouse, net, months_between(period.start, period.end))
    con = connect(warehouse, create=False)
    try:
        pts = read_points(con, warehouse, net, period.start, period.end, on_network=False).to_pandas()
    finally:
        con.close()
    road = pts["road_idx"].to_numpy()
    pts["road_id"] = np.where(road >= 0, net.road_ids[np.maximum(road, 0)], None) if len(pts) else np.array([], object)
    pts.attrs["nodes"] = RoadNodes.of_network(net)
    pts["vehicle"] = pts["vehicle_id"]
    return pts, dict(zip(net.roads["road_id"], net.roads["limit_kmh"].astype(float), strict=True))


def passage_speeds(points: pd.DataFrame, road_id: str) -> pd.DataFrame:
    """One row per passage on `road_id` with a speed (the product's definition, analysis.points.passages):
    vehicle, n_points, speed_kmh (section travel speed), mean_kmh (mean of its points' speeds), 0.1 km/h."""
    from analysis.points import PASSAGE_SPEED_COLUMN, passages

    p = passages(points, points.attrs["nodes"])
    p = p[np.isfinite(p[PASSAGE_SPEED_COLUMN].to_numpy(float))]
    idx = points.loc[points["road_id"] == road_id, "road_idx"]
    p = p[p["road_idx"] == (idx.iloc[0] if len(idx) else -2)]
    return pd.DataFrame(
        {
            "vehicle": p["vehicle_id"].to_numpy(),
            "n_points": p["n_points"].to_numpy(),
            "speed_kmh": p[PASSAGE_SPEED_COLUMN].to_numpy(),
            "mean_kmh": p["mean_kmh"].to_numpy(),
        }
    )


def street_figures(points: pd.DataFrame, road_ids: tuple[str, ...], limits: dict[str, float]) -> dict:
    """Point and passage figures of the roads `road_ids` pooled (the district's treated street)."""
    on = points[points["road_id"].isin(road_ids)]
    v = on["speed_kmh"].to_numpy(float)
    lim = on["road_id"].map(limits).to_numpy(float)
    pas = pd.concat([passage_speeds(points, r).assign(limit=limits[r]) for r in road_ids], ignore_index=True)
    if not len(v):
        return {"n_points": 0, "n_passages": 0, "vehicles": 0}
    # sampling error of the passage share, clustered by vehicle (linearised ratio estimator)
    hit = (pas["speed_kmh"] >= pas["limit"]).to_numpy(float)
    share = hit.mean()
    per_vehicle = pd.DataFrame({"v": pas["vehicle"].to_numpy(), "y": hit}).groupby("v")["y"].agg(["sum", "size"])
    k = len(per_vehicle)
    resid = per_vehicle["sum"].to_numpy() - share * per_vehicle["size"].to_numpy()
    share_se = float(np.sqrt(k / max(k - 1, 1) * (resid**2).sum()) / len(pas))
    # sampling error of the mean point speed, clustered by vehicle
    pv = pd.DataFrame({"v": on["vehicle"].to_numpy(), "x": v}).groupby("v")["x"].agg(["sum", "size"])
    r = pv["sum"].to_numpy() - v.mean() * pv["size"].to_numpy()
    mean_se = float(np.sqrt(len(pv) / max(len(pv) - 1, 1) * (r**2).sum()) / v.size)
    return {
        "p85": float(grouped_quantile(*np.unique(v, return_counts=True), 0.85)),  # as the cube (grouped data)
        "mean_se": mean_se,
        "mean": float(v.mean()),
        "point_share": float((v >= lim).mean()),
        "passage_share": float(share),
        "passage_share_se": share_se,
        "passage_share_deff": share_se**2 / (share * (1 - share) / len(pas)) if 0 < share < 1 else np.nan,
        "passage_mean": float(pas["speed_kmh"].mean()),
        "passage_spot_share": float((pas["mean_kmh"] >= pas["limit"]).mean()),
        "n_points": int(v.size),
        "n_passages": int(len(pas)),
        "points_per_passage": float(v.size / len(pas)),
        "vehicles": int(on["vehicle"].nunique()),
    }


def evaluate_targets(district: District, figs: dict[str, dict]) -> list[dict]:
    """Targets of [synthetic.calibration] with the measured value and PASS/FAIL.

    statistic: p85 | mean | point_share | passage_share (value in `period`), or <one of those>_change
    (period minus `reference`) or <one of those>_ratio (period / reference).
    """
    out = []
    for t in district.synthetic.get("calibration", {}).get("targets", []):
        stat, period = t["statistic"], t["period"]
        base = stat.removesuffix("_change").removesuffix("_ratio")
        value = figs.get(period, {}).get(base, np.nan)
        if stat.endswith("_change"):
            value = value - figs.get(t["reference"], {}).get(base, np.nan)
        elif stat.endswith("_ratio"):
            value = value / figs.get(t["reference"], {}).get(base, np.nan)
        ok = bool(t["min"] <= value <= t["max"])
        out.append({**t, "value": value, "ok": ok})
    return out


def year_vehicles(district: District, seed: int, scale: float) -> dict | None:
    """Distinct vehicles of the district's `data_basis` year at the generated daily volumes (simulated, not written)."""
    basis = district.synthetic.get("calibration", {}).get("data_basis")
    if not basis:
        return None
    from etl.synthetic import _simulate_district

    year = Period("data_basis", basis["start"], basis["end"])
    syn = {k: v for k, v in district.synthetic.items() if k not in ("monitoring_months", "pre_months")}
    d = dataclasses.replace(district, periods={"data_basis": year}, synthetic=syn)
    _, stats = _simulate_district(d, seed, scale)
    return {**basis, "vehicles": stats["vehicles"] / scale, "vehicles_raw": stats["vehicles"]}


def _fmt(stat: str, v: float) -> str:
    if "share" in stat and not stat.endswith("_ratio"):
        return f"{100 * v:.1f} %" + (" pts" if stat.endswith("_change") else "")
    if stat.endswith("_ratio"):
        return f"{v:.2f}x"
    return f"{v:+.1f} km/h" if stat.endswith("_change") else f"{v:.1f} km/h"


def run(scale: float, seed: int, districts: list[District], monitoring: bool, year: bool, work: Path) -> int:
    t0 = time.perf_counter()
    gen = generate_delivery(work / "delivery", districts=districts, seed=seed, scale=scale, monitoring=monitoring)
    t1 = time.perf_counter()
    rep = ingest_paths([work / "delivery"], work / "warehouse", progress=False)
    t2 = time.perf_counter()
    per = ", ".join(f"{k} {v['rows']:,}" for k, v in gen["districts"].items())
    print(
        f"scale {scale}, seed {seed}: generated {gen['rows']:,} rows ({per}) in {t1 - t0:.0f} s; "
        f"ingested in {t2 - t1:.0f} s ({rep.summary() if hasattr(rep, 'summary') else ''})"
    )
    failed = checked = 0
    for d in districts:
        periods = dict(d.periods)
        if monitoring:
            periods.update({p.name: p for p in (*pre_periods(d), *monitoring_periods(d))})
        figs = {}
        for name, period in periods.items():
            pts, limits = matched_points(work / "warehouse", d, period)
            figs[name] = street_figures(pts, d.treated_roads, limits)
        print(f"\n{d.key} ({d.name_ja}), treated {','.join(d.treated_roads)}:")
        print(
            f"  {'period':<9} {'dates':<22} {'p85':>5} {'mean':>5} {'±se':>4} {'pt>=lim':>8} {'pas>=lim':>9} "
            f"{'±se':>5} {'deff':>4} {'pas_mean':>8} {'spot>=':>7} "
            f"{'n_pts':>6} {'n_pas':>6} {'pts/pas':>7} {'veh':>5}"
        )
        for name, period in periods.items():
            f = figs[name]
            if not f.get("n_points"):
                print(f"  {name:<9} {period.start}..{period.end}  (no points)")
                continue
            print(
                f"  {name:<9} {str(period.start) + '..' + str(period.end):<22} {f['p85']:5.1f} {f['mean']:5.1f} "
                f"{f['mean_se']:4.1f} "
                f"{100 * f['point_share']:7.1f}% {100 * f['passage_share']:8.1f}% {100 * f['passage_share_se']:5.1f} "
                f"{f['passage_share_deff']:4.1f} {f['passage_mean']:8.1f} {100 * f['passage_spot_share']:6.1f}% "
                f"{f['n_points']:6d} {f['n_passages']:6d} {f['points_per_passage']:7.2f} {f['vehicles']:5d}"
            )
        for t in evaluate_targets(d, figs):
            checked += 1
            failed += not t["ok"]
            ref = f" vs {t['reference']}" if "reference" in t else ""
            print(
                f"  {'PASS' if t['ok'] else 'FAIL'}  {t['statistic']}{ref} {t['period']}: measured "
                f"{_fmt(t['statistic'], t['value'])}, "
                f"target {_fmt(t['statistic'], t['min'])} .. {_fmt(t['statistic'], t['max'])}"
                + (f"  (published: {t['published']})" if t.get("published") else "")
            )
        if year:
            y = year_vehicles(d, seed, scale)
            if y is not None:
                if "min" in y:
                    ok = y["min"] <= y["vehicles"] <= y["max"]
                    checked += 1
                    failed += not ok
                    verdict, target = ("PASS" if ok else "FAIL"), f", target {y['min']:,}..{y['max']:,}"
                else:
                    verdict, target = "INFO", " (not a calibration target)"
                print(
                    f"  {verdict}  distinct vehicles {y['start']}..{y['end']} (whole network, simulated at "
                    f"scale {scale}: {y['vehicles_raw']:,}, / scale = {y['vehicles']:,.0f}){target}"
                    + (f"  (published: {y['published']})" if y.get("published") else "")
                )
    verdict = (
        f"{failed} of {checked} target(s) FAILED"
        if failed
        else f"all {checked} targets met"
        if checked
        else "no calibration targets"
    )
    print(f"\n{verdict}; {time.perf_counter() - t0:.0f} s")
    return 1 if failed else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="generator scale (default 1.0, the demo's)")
    ap.add_argument("--seed", type=int, default=DEMO_SEED, help=f"generator seed (default {DEMO_SEED}, the demo's)")
    ap.add_argument("--district", action="append", help="district key (repeatable; default: all bundled)")
    ap.add_argument("--no-monitoring", action="store_true", help="generate and measure the named periods only")
    ap.add_argument("--no-year", action="store_true", help="skip the simulated data-basis year")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary folder, removed)")
    args = ap.parse_args(argv)
    os.environ.setdefault("ETC2CALM_ID_KEY", "benchmark-key-not-secret")
    districts = [load_district(k) for k in args.district] if args.district else list_districts()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="etc2calm-calib-"))
    if args.keep and work.exists():
        shutil.rmtree(work)
    try:
        return run(args.scale, args.seed, districts, not args.no_monitoring, not args.no_year, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
