"""Before/after evidence: indicators, cluster-bootstrap confidence intervals over vehicles, difference in differences.

Records of one vehicle are not independent (a commuter passes the same street every day at
a similar speed), so every interval here resamples *vehicles*, not points: one bootstrap
replicate draws the vehicles of the analysis with replacement and keeps all their points, in
every period and on every road at once. That keeps the pairing of before and after (the same
commuters drive in both) and of treated and comparison streets, which a per-period or per-road
resampling would break.

All computations are vectorised: a replicate's figures come from a (replicates × vehicles)
matrix of multinomial weights multiplied with per-vehicle speed histograms, so the cost does
not grow with the number of points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

INDICATORS = ("mean", "p85", "share", "share_plus10")
INDICATOR_LABELS_JA = {
    "mean": "平均速度 (km/h)",
    "p85": "85%タイル速度 (km/h)",
    "share": "制限速度以上の割合",
    "share_plus10": "制限速度+10 km/h 以上の割合",
}
DEFAULT_RESAMPLES = 1000
DEFAULT_MIN_VEHICLES = 50  # sample adequacy: flag figures from fewer distinct vehicles
DEFAULT_PUBLIC_MIN_VEHICLES = 10  # publication threshold: never show figures from fewer


@dataclass(frozen=True)
class GroupData:
    """Points of one unit (road or pooled group) in one period, encoded for the bootstrap.

    vehicle: index of each point's vehicle in the analysis-wide vehicle list;
    speed_kmh: speed per point (km/h); limit_kmh: speed limit per point (km/h).
    """

    vehicle: np.ndarray
    speed_kmh: np.ndarray
    limit_kmh: np.ndarray


def point_indicators(speed_kmh: np.ndarray, limit_kmh: np.ndarray | float) -> dict[str, float]:
    """Indicators of raw points: mean and p85 in km/h (p85 linear interpolation), shares 0–1."""
    speed_kmh = np.asarray(speed_kmh, dtype=float)
    if len(speed_kmh) == 0:
        return {k: float("nan") for k in INDICATORS}
    limit = np.broadcast_to(np.asarray(limit_kmh, dtype=float), speed_kmh.shape)
    return {
        "mean": float(speed_kmh.mean()),
        "p85": float(np.percentile(speed_kmh, 85)),
        "share": float((speed_kmh >= limit).mean()),
        "share_plus10": float((speed_kmh >= limit + 10).mean()),
    }


def _weighted_quantile_from_counts(values: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    """Quantile (linear interpolation between order statistics, numpy's default) per row of `counts`.

    values: sorted unique values (k,); counts: (r, k) non-negative integer multiplicities.
    Equals np.percentile of the expanded sample of each row exactly.
    """
    cum = np.cumsum(counts, axis=1)
    n = cum[:, -1]
    pos = (n - 1) * q
    lo = np.floor(pos)
    frac = pos - lo
    # Value of the order statistic with 0-based rank r: first value whose cumulative count exceeds r.
    lo_idx = np.argmax(cum > lo[:, None], axis=1)
    hi_idx = np.argmax(cum > np.minimum(lo + 1, n - 1)[:, None], axis=1)
    out = values[lo_idx] + frac * (values[hi_idx] - values[lo_idx])
    return np.where(n > 0, out, np.nan)


def replicate_indicators(
    group: GroupData, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Indicators of one group under each row of vehicle weights (r × n_vehicles), vectorised."""
    values, value_idx = np.unique(group.speed_kmh, return_inverse=True)
    n_vehicles_total = weights.shape[1]
    # Per (vehicle, speed value) counts of this group's points: a sparse histogram per vehicle.
    veh_vals = group.vehicle.astype(np.int64) * len(values) + value_idx
    uniq, cnt = np.unique(veh_vals, return_counts=True)
    veh_of, val_of = np.divmod(uniq, len(values))
    # Replicate histogram over speed values: sum over vehicles of weight × count.
    onehot = np.zeros((len(uniq), len(values)))
    onehot[np.arange(len(uniq)), val_of] = 1.0
    counts = (weights[:, veh_of] * cnt) @ onehot
    n = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = counts @ values / n
        limit = np.broadcast_to(group.limit_kmh, group.speed_kmh.shape)
        over = group.speed_kmh >= limit
        over10 = group.speed_kmh >= limit + 10
        # Points at or over the limit per vehicle, then weighted.
        per_vehicle_over = np.bincount(group.vehicle, weights=over, minlength=n_vehicles_total)
        per_vehicle_over10 = np.bincount(group.vehicle, weights=over10, minlength=n_vehicles_total)
        share = weights @ per_vehicle_over / n
        share10 = weights @ per_vehicle_over10 / n
    p85 = _weighted_quantile_from_counts(values.astype(float), counts, 0.85)
    return {"mean": mean, "p85": p85, "share": share, "share_plus10": share10}


def bootstrap_weights(n_vehicles: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples × n_vehicles) multinomial counts: each row a draw of all vehicles with replacement."""
    rng = np.random.default_rng(seed)
    if n_vehicles == 0:
        return np.zeros((resamples, 0))
    return rng.multinomial(n_vehicles, np.full(n_vehicles, 1.0 / n_vehicles), size=resamples).astype(float)


@dataclass
class Comparison:
    """Result rows of a before/after comparison (one per unit, plus pooled and DiD rows)."""

    table: pd.DataFrame  # unit, indicator, before, after, change, ci_low, ci_high, n_vehicles_before, n_vehicles_after, flag


def compare_periods(
    points: pd.DataFrame,
    *,
    treated: list[str],
    control: list[str],
    indicator: str = "mean",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    min_vehicles: int = DEFAULT_MIN_VEHICLES,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Before/after change per road, pooled treated, pooled control, and difference in differences.

    points: one row per matched point with columns unit (road id, text), period ('before' or
    'after'), vehicle (any hashable vehicle pseudonym), speed_kmh, limit_kmh.
    Returns one row per treated road, per control road, then 'treated', 'control' and 'did'
    with columns unit, indicator, before, after, change (after − before; for did: treated
    change − control change), ci_low, ci_high (cluster bootstrap over vehicles, percentile
    interval), n_vehicles_before, n_vehicles_after, flag ('low_sample' when a figure rests on
    fewer than `min_vehicles` distinct vehicles, else '').
    """
    return compare_periods_all(
        points, treated=treated, control=control, indicators=(indicator,), resamples=resamples, seed=seed,
        min_vehicles=min_vehicles, confidence=confidence,
    )[indicator]  # fmt: skip


def compare_periods_all(
    points: pd.DataFrame,
    *,
    treated: list[str],
    control: list[str],
    indicators: tuple[str, ...] = INDICATORS,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    min_vehicles: int = DEFAULT_MIN_VEHICLES,
    confidence: float = 0.95,
) -> dict[str, pd.DataFrame]:
    """`compare_periods` for several indicators from the same bootstrap replicates (one pass).

    Using one set of resampled vehicles for every indicator makes their intervals consistent
    with each other, and costs one replicate computation per unit instead of one per indicator.
    """
    for indicator in indicators:
        if indicator not in INDICATORS:
            raise ValueError(f"unknown indicator {indicator!r} (choose one of {', '.join(INDICATORS)})")
    missing = {"unit", "period", "vehicle", "speed_kmh", "limit_kmh"} - set(points.columns)
    if missing:
        raise ValueError(f"points lack columns: {', '.join(sorted(missing))}")
    if resamples < 10:
        raise ValueError(f"resamples must be at least 10, got {resamples}")
    pts = points[points["unit"].isin([*treated, *control]) & points["period"].isin(["before", "after"])]
    vehicle_codes, vehicles = pd.factorize(pts["vehicle"], sort=True)
    weights = bootstrap_weights(len(vehicles), resamples, seed)
    unit = pts["unit"].to_numpy()
    period = pts["period"].to_numpy()
    speed = pts["speed_kmh"].to_numpy(dtype=float)
    limit = pts["limit_kmh"].to_numpy(dtype=float)

    def figures(mask: np.ndarray):
        g = GroupData(vehicle_codes[mask], speed[mask], limit[mask])
        point_values = point_indicators(g.speed_kmh, g.limit_kmh)
        if mask.any():
            reps = replicate_indicators(g, weights)
        else:
            reps = {k: np.full(resamples, np.nan) for k in INDICATORS}
        return point_values, reps, len(np.unique(g.vehicle))

    alpha = (1 - confidence) / 2
    rows: dict[str, list[dict]] = {ind: [] for ind in indicators}
    changes: dict[str, dict] = {ind: {} for ind in indicators}
    units = [*((u, [u]) for u in treated), *((u, [u]) for u in control), ("treated", treated), ("control", control)]
    for name, members in units:
        in_unit = np.isin(unit, members)
        b, b_reps, nb = figures(in_unit & (period == "before"))
        a, a_reps, na = figures(in_unit & (period == "after"))
        for ind in indicators:
            diff = a_reps[ind] - b_reps[ind]
            changes[ind][name] = (a[ind] - b[ind], diff)
            lo, hi = _interval(diff, alpha)
            rows[ind].append(_row(name, ind, b[ind], a[ind], a[ind] - b[ind], lo, hi, nb, na, min_vehicles))
    out = {}
    for ind in indicators:
        t_change, t_reps = changes[ind]["treated"]
        c_change, c_reps = changes[ind]["control"]
        lo, hi = _interval(t_reps - c_reps, alpha)
        r = rows[ind]
        nb = min(r[-2]["n_vehicles_before"], r[-1]["n_vehicles_before"])
        na = min(r[-2]["n_vehicles_after"], r[-1]["n_vehicles_after"])
        r.append(_row("did", ind, np.nan, np.nan, t_change - c_change, lo, hi, nb, na, min_vehicles))
        out[ind] = pd.DataFrame(r)
    return out


def _interval(reps: np.ndarray, alpha: float) -> tuple[float, float]:
    reps = reps[np.isfinite(reps)]
    if len(reps) == 0:
        return float("nan"), float("nan")
    return float(np.quantile(reps, alpha)), float(np.quantile(reps, 1 - alpha))


def _row(unit, indicator, before, after, change, lo, hi, nb, na, min_vehicles) -> dict:
    return {
        "unit": unit,
        "indicator": indicator,
        "before": before,
        "after": after,
        "change": change,
        "ci_low": lo,
        "ci_high": hi,
        "n_vehicles_before": int(nb),
        "n_vehicles_after": int(na),
        "flag": "low_sample" if min(nb, na) < min_vehicles else "",
    }
