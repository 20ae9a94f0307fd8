"""The statistics of a before/after comparison: indicators, cluster-bootstrap intervals over vehicles, DiD.

This module is the method, on samples handed to it (`compare_periods`, `compare_periods_all`);
`analysis.comparison` assembles a district's comparison from the warehouse with it and stores it.

Records of one vehicle are not independent (a commuter passes the same street every day at
a similar speed), so every interval here resamples *vehicles*, not points: one bootstrap
replicate draws the vehicles of the analysis with replacement and keeps all their points and
passages, in every period and on every road at once. That keeps the pairing of before and after
(the same commuters drive in both) and of treated and comparison streets, which a per-period or
per-road resampling would break.

Indicators (INDICATORS): of points — mean, p85 (km/h), share and share_plus10 (fraction at or
over the limit / limit + 10); of passages (one vehicle's traversal of one road) — passage_mean,
passage_p85 and passage_share (fraction of passages whose speed is at or over the limit: the
"share of vehicles" of published Japanese evaluations). The point p85 is the grouped-data
percentile of the recorded whole km/h, binned exactly as the cube's (`geo.aggregate.speed_bin_kmh`,
`geo.aggregate.grouped_quantile`), so `compare` and `analyze` agree; the passage p85 is the plain
sample quantile of the (continuous) passage speeds (docs/statistics.md).

An interval is `degenerate` when its resamples take fewer than three distinct values (a share of 0
or 1, a level that sits on one value): nothing else. Every other interval is expected to hold its
estimate strictly inside — a property checked on the stored results (tests/test_demo.py), not part of
the definition; no interval is widened to make it so.

The replicates are independent of the pseudonymisation key: vehicles enter the resampling in the
order of their first point (time, position, speed), not of their pseudonyms, so the same delivery
gives the same intervals on any machine. All computations are vectorised: a replicate's figures
come from a (replicates × vehicles) matrix of multinomial weights and per-vehicle histograms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from config.settings import (
    ADEQUATE_MIN_VEHICLES,
    CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    INDICATORS,
    MIN_DISTINCT_RESAMPLES,
    P85,
    PASSAGE_INDICATORS,
    POINT_INDICATORS,
)
from geo.aggregate import grouped_quantile, speed_bin_kmh

# Of point samples reduced month by month (analysis.samples): how many identical points a row stands for.
SAMPLE_COUNT = "n_points"


@dataclass(frozen=True)
class GroupData:
    """Samples (points or passages) of one unit in one period, encoded for the bootstrap.

    vehicle: index of each sample's vehicle in the analysis-wide vehicle list; speed_kmh: its
    speed (km/h); limit_kmh: speed limit (km/h); p85_kmh: the recorded whole km/h (1 km/h bin) of
    each sample when its 85th percentile is the grouped-data percentile (points); None: the plain
    sample quantile of speed_kmh (passages). n: how many identical samples each row stands for
    (points reduced month by month, SAMPLE_COUNT); None: one each.
    """

    vehicle: np.ndarray
    speed_kmh: np.ndarray
    limit_kmh: np.ndarray
    p85_kmh: np.ndarray | None = None
    n: np.ndarray | None = None

    @property
    def p85_values(self) -> np.ndarray:
        return self.speed_kmh if self.p85_kmh is None else self.p85_kmh


def point_indicators(
    speed_kmh: np.ndarray,
    limit_kmh: np.ndarray | float,
    p85_kmh: np.ndarray | None = None,
    n: np.ndarray | None = None,
) -> dict[str, float]:
    """Indicators of raw samples: mean and p85 in km/h, shares 0–1 (at or over the limit, and over
    limit + 10). p85: the grouped-data percentile of the recorded whole km/h `p85_kmh` when given
    (points), else the plain sample quantile of the speeds (numpy's linear, type 7: passages).
    n: how many identical samples each row stands for (None: one each); the figures are those of
    the expanded samples (exactly so for whole-km/h speeds, whose sums are exact in any order)."""
    speed_kmh = np.asarray(speed_kmh, dtype=float)
    if n is not None:
        return _weighted_indicators(speed_kmh, limit_kmh, p85_kmh, np.asarray(n, dtype=float))
    if len(speed_kmh) == 0:
        return {k: float("nan") for k in POINT_INDICATORS}
    limit = np.broadcast_to(np.asarray(limit_kmh, dtype=float), speed_kmh.shape)
    if p85_kmh is None:
        p85 = float(np.percentile(speed_kmh, 100 * P85))
    else:
        values, counts = np.unique(np.asarray(p85_kmh, dtype=float), return_counts=True)
        p85 = float(grouped_quantile(values, counts, P85))
    return {
        "mean": float(speed_kmh.mean()),
        "p85": p85,
        "share": float((speed_kmh >= limit).mean()),
        "share_plus10": float((speed_kmh >= limit + 10).mean()),
    }


def _weighted_indicators(speed: np.ndarray, limit_kmh, p85_kmh, n: np.ndarray) -> dict[str, float]:
    """`point_indicators` of rows standing for `n` samples each."""
    total = float(n.sum())
    if total == 0:
        return {k: float("nan") for k in POINT_INDICATORS}
    limit = np.broadcast_to(np.asarray(limit_kmh, dtype=float), speed.shape)
    values, inv = np.unique(speed if p85_kmh is None else np.asarray(p85_kmh, dtype=float), return_inverse=True)
    counts = np.bincount(inv, weights=n, minlength=len(values))
    if p85_kmh is None:
        p85 = float(_weighted_quantile_from_counts(values, counts[None, :], P85)[0])
    else:
        p85 = float(grouped_quantile(values, counts, P85))
    return {
        "mean": float((speed * n).sum() / total),
        "p85": p85,
        "share": float(n[speed >= limit].sum() / total),
        "share_plus10": float(n[speed >= limit + 10].sum() / total),
    }


def _weighted_quantile_from_counts(values: np.ndarray, counts: np.ndarray, q: float) -> np.ndarray:
    """Plain sample quantile (linear interpolation between order statistics, numpy's default) per row of `counts`.

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


def replicate_dot(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """weights (r × n) times values (n,), one replicate per row, summed in an order fixed by the data
    alone: BLAS (`@`) gives other last bits with another number of threads or rows, so the same
    samples would give other intervals on another machine or a Dask worker."""
    return np.einsum("ij,j->i", weights, values)


def replicate_indicators(group: GroupData, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Indicators of one group under each row of vehicle weights (r × n_vehicles), vectorised.

    Per vehicle of the group, the counts of its samples per p85 value (a sparse histogram), its
    samples, the sum of its speeds and its samples at or over the limit (and limit + 10); a
    replicate weights those per-vehicle sums (compiled: only the group's vehicles are visited).
    """
    return _replicate_indicators(group, np.ascontiguousarray(np.asarray(weights, dtype=np.float64).T))


def _replicate_indicators(group: GroupData, weights_t: np.ndarray) -> dict[str, np.ndarray]:
    """`replicate_indicators` with the weights transposed (n_vehicles × r, C order): one vehicle's
    weights in all replicates are contiguous, so the kernel's inner loops run over replicates."""
    speed = np.asarray(group.speed_kmh, dtype=float)
    limit = np.broadcast_to(np.asarray(group.limit_kmh, dtype=float), speed.shape)
    mult = np.ones(len(speed)) if group.n is None else np.asarray(group.n, dtype=float)
    vehicles, local = np.unique(np.asarray(group.vehicle, dtype=np.int64), return_inverse=True)
    per_vehicle = lambda w: np.bincount(local, weights=w, minlength=len(vehicles))  # noqa: E731
    sums = np.stack(
        [
            per_vehicle(mult),
            per_vehicle(speed * mult),
            per_vehicle((speed >= limit) * mult),
            per_vehicle((speed >= limit + 10) * mult),
        ],
        axis=1,
    )
    values, value_idx = np.unique(group.p85_values, return_inverse=True)
    pair, pair_of = np.unique(local.astype(np.int64) * len(values) + value_idx, return_inverse=True)
    cnt = np.bincount(pair_of, weights=mult, minlength=len(pair))
    pair_vehicle, pair_value = np.divmod(pair, len(values))
    totals, counts = _replicate_sums(weights_t, vehicles, sums, vehicles[pair_vehicle], pair_value, cnt, len(values))
    n = totals[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean, share, share10 = totals[:, 1] / n, totals[:, 2] / n, totals[:, 3] / n
    if group.p85_kmh is None:
        p85 = _weighted_quantile_from_counts(values.astype(float), counts, P85)
    else:
        p85 = grouped_quantile(values.astype(float), counts, P85)
    return {"mean": mean, "p85": p85, "share": share, "share_plus10": share10}


@njit(cache=True, nogil=True)
def _replicate_sums(weights_t, vehicles, sums, pair_vehicle, pair_value, pair_count, n_values):
    """For each replicate r (column of `weights_t`, rows indexed by vehicle): totals[r, c] = Σ_j
    weights_t[vehicles[j], r] · sums[j, c], and the replicate histogram counts[r, v] = Σ_p
    weights_t[pair_vehicle[p], r] · pair_count[p] over the (vehicle, value) pairs p of value v.
    Terms of weight 0 are skipped (a vehicle not drawn contributes nothing, not even a NaN)."""
    n_rep = weights_t.shape[1]
    n_col = sums.shape[1]
    totals = np.zeros((n_col, n_rep))
    counts = np.zeros((n_values, n_rep))
    for j in range(vehicles.shape[0]):
        w = weights_t[vehicles[j]]
        for c in range(n_col):
            s = sums[j, c]
            t = totals[c]
            for r in range(n_rep):
                t[r] += w[r] * s if w[r] != 0.0 else 0.0
    for q in range(pair_vehicle.shape[0]):
        w = weights_t[pair_vehicle[q]]
        s = pair_count[q]
        t = counts[pair_value[q]]
        for r in range(n_rep):
            t[r] += w[r] * s if w[r] != 0.0 else 0.0
    return totals.T, counts.T


def bootstrap_weights(n_vehicles: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples × n_vehicles) multinomial counts: each row a draw of all vehicles with replacement."""
    rng = np.random.default_rng(seed)
    if n_vehicles == 0:
        return np.zeros((resamples, 0))
    return rng.multinomial(n_vehicles, np.full(n_vehicles, 1.0 / n_vehicles), size=resamples).astype(float)


def bootstrap_weights_t(n_vehicles: int, resamples: int, seed: int, chunk: int = 64) -> np.ndarray:
    """`bootstrap_weights` transposed (n_vehicles × resamples, C order: what the kernels read), drawn
    `chunk` replicates at a time: the same draws (a Generator draws the rows of one call in turn), but
    only one (vehicles × replicates) array of floats is ever held, not the integer draws beside it."""
    out = np.zeros((n_vehicles, resamples))
    if n_vehicles == 0:
        return out
    rng = np.random.default_rng(seed)
    p = np.full(n_vehicles, 1.0 / n_vehicles)
    for start in range(0, resamples, chunk):  # a loop over blocks of replicates, not over samples
        rows = rng.multinomial(n_vehicles, p, size=min(chunk, resamples - start))
        out[:, start : start + len(rows)] = rows.T
    return out


def vehicle_order(points: pd.DataFrame) -> np.ndarray:
    """The analysis's vehicles in a key-independent order: by their first point (time, then x, y and
    speed), so resampling does not depend on the pseudonyms. Needs columns vehicle and, for the
    key-independent order, gps_us, x_m, y_m (else vehicles are ordered by their id)."""
    if not {"gps_us", "x_m", "y_m"} <= set(points.columns):
        return np.sort(points["vehicle"].unique())
    first = points.sort_values(["gps_us", "x_m", "y_m", "speed_kmh"], kind="stable").drop_duplicates("vehicle")
    return first["vehicle"].to_numpy()


def compare_periods(
    points: pd.DataFrame,
    *,
    treated: list[str],
    control: list[str],
    indicator: str = "mean",
    passages: pd.DataFrame | None = None,
    **kwargs,
) -> pd.DataFrame:
    """`compare_periods_all` for one indicator."""
    return compare_periods_all(
        points, treated=treated, control=control, indicators=(indicator,), passages=passages, **kwargs
    )[indicator]


def compare_periods_all(  # noqa: PLR0913 -- public API: resamples, seed, min_vehicles, confidence are documented user options
    points: pd.DataFrame,
    *,
    treated: list[str],
    control: list[str],
    indicators: tuple[str, ...] = POINT_INDICATORS,
    passages: pd.DataFrame | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    min_vehicles: int = ADEQUATE_MIN_VEHICLES,
    confidence: float = CONFIDENCE,
    first_points: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """Before/after change per road, pooled treated, pooled control, and difference in differences,
    for several indicators from the same bootstrap replicates (one set of resampled vehicles).

    points: one row per matched point with columns unit (road id, text), period ('before' or
    'after'), vehicle (any hashable id), speed_kmh, limit_kmh (and gps_us, x_m, y_m for the
    key-independent vehicle order); or rows standing for `n_points` (SAMPLE_COUNT) identical points
    each, with `first_points`: one row per unit, period and vehicle holding its first point there
    (gps_us, x_m, y_m, speed_kmh) for that order. passages (needed for passage_* indicators): one row per
    passage with unit, period, vehicle, speed_kmh (the passage speed), limit_kmh.
    Returns {indicator: table} with one row per treated road, per control road, then 'treated',
    'control' and 'did' and columns unit, indicator, before, after, change (after − before; for
    did: treated change − control change), ci_low, ci_high (percentile interval of the change),
    n_before, n_after (samples), n_vehicles_before, n_vehicles_after, flag ('low_sample' below
    `min_vehicles` distinct vehicles, else ''), and before_ci_low / before_ci_high /
    after_ci_low / after_ci_high (intervals of the two levels, from the same replicates; NaN for did),
    and degenerate (True when one of the row's intervals is degenerate: `degenerate_interval`).
    """
    want_passages = _check_compare_inputs(points, passages, indicators, resamples)
    units_all = [*treated, *control]
    pts = points[points["unit"].isin(units_all) & points["period"].isin(["before", "after"])]
    if first_points is None:
        order = vehicle_order(pts)
    else:
        order = vehicle_order(
            first_points[first_points["unit"].isin(units_all) & first_points["period"].isin(["before", "after"])]
        )
    code_of = pd.Index(order)
    weights_t = bootstrap_weights_t(len(order), resamples, seed)  # vehicles × replicates
    samples = {"point": _encode(pts, code_of, binned=True)}
    if want_passages:
        pas = passages[passages["unit"].isin(units_all) & passages["period"].isin(["before", "after"])]
        samples["passage"] = _encode(pas, code_of, binned=False)
    alpha = (1 - confidence) / 2
    rows: dict[str, list[dict]] = {ind: [] for ind in indicators}
    changes: dict[str, dict] = {ind: {} for ind in indicators}
    units = [*((u, [u]) for u in treated), *((u, [u]) for u in control), ("treated", treated), ("control", control)]
    for kind, encoded in samples.items():
        mine = [i for i in indicators if (i in PASSAGE_INDICATORS) == (kind == "passage")]
        if not mine:
            continue
        for name, members in units:
            before = _group_figures(encoded, members, "before", weights_t, resamples)
            after = _group_figures(encoded, members, "after", weights_t, resamples)
            for ind in mine:
                row, changes[ind][name] = _change_row(name, ind, before, after, alpha, min_vehicles)
                rows[ind].append(row)
    out = {}
    for ind in indicators:
        rows[ind].append(_did_row(ind, changes[ind], rows[ind][-2], rows[ind][-1], alpha, min_vehicles))
        out[ind] = pd.DataFrame(rows[ind])
    return out


def _check_compare_inputs(points: pd.DataFrame, passages, indicators: tuple[str, ...], resamples: int) -> bool:
    """Raise on an unknown indicator, missing point columns, too few resamples or missing passages;
    return whether passage indicators are wanted."""
    for indicator in indicators:
        if indicator not in INDICATORS:
            raise ValueError(f"unknown indicator {indicator!r} (choose one of {', '.join(INDICATORS)})")
    missing = {"unit", "period", "vehicle", "speed_kmh", "limit_kmh"} - set(points.columns)
    if missing:
        raise ValueError(f"points lack columns: {', '.join(sorted(missing))}")
    if resamples < 10:
        raise ValueError(f"resamples must be at least 10, got {resamples}")
    want_passages = any(i in PASSAGE_INDICATORS for i in indicators)
    if want_passages and passages is None:
        raise ValueError("passage indicators need the passages")
    return want_passages


def _group_figures(encoded: tuple, members: list[str], period: str, weights_t: np.ndarray, resamples: int):
    """One group's (roads `members`, one period) indicators, their replicates, samples and vehicles."""
    unit, per, veh, speed, limit, q, n = encoded
    mask = np.isin(unit, members) & (per == period)
    g = GroupData(veh[mask], speed[mask], limit[mask], None if q is None else q[mask], None if n is None else n[mask])
    value = point_indicators(g.speed_kmh, g.limit_kmh, g.p85_kmh, g.n)
    reps = (
        _replicate_indicators(g, weights_t) if mask.any() else {k: np.full(resamples, np.nan) for k in POINT_INDICATORS}
    )
    n_samples = int(mask.sum()) if n is None else int(n[mask].sum())
    return value, reps, n_samples, len(np.unique(g.vehicle))


def _change_row(name: str, ind: str, before: tuple, after: tuple, alpha: float, min_vehicles: int):
    """The row of one unit and indicator (change, its interval and the levels' intervals) and the
    (change, replicates of the change) the difference in differences needs."""
    b, b_reps, nb, vb = before
    a, a_reps, na, va = after
    k = ind.removeprefix("passage_")
    diff = a_reps[k] - b_reps[k]
    lo, hi = percentile_interval(diff, alpha)
    row = _row(name, ind, (b[k], a[k], a[k] - b[k]), (lo, hi), (nb, na, vb, va), min_vehicles)
    # the levels' own intervals (same replicates), for charts with whiskers
    row["before_ci_low"], row["before_ci_high"] = percentile_interval(b_reps[k], alpha)
    row["after_ci_low"], row["after_ci_high"] = percentile_interval(a_reps[k], alpha)
    row["degenerate"] = degenerate_interval(diff) or degenerate_interval(b_reps[k]) or degenerate_interval(a_reps[k])
    return row, (a[k] - b[k], diff)


def _did_row(ind: str, changes: dict, tr: dict, co: dict, alpha: float, min_vehicles: int) -> dict:
    """The difference in differences row: treated change − control change, from the same replicates."""
    t_change, t_reps = changes["treated"]
    c_change, c_reps = changes["control"]
    lo, hi = percentile_interval(t_reps - c_reps, alpha)
    degenerate = degenerate_interval(t_reps - c_reps)
    counts = (
        tr["n_before"] + co["n_before"],
        tr["n_after"] + co["n_after"],
        min(tr["n_vehicles_before"], co["n_vehicles_before"]),
        min(tr["n_vehicles_after"], co["n_vehicles_after"]),
    )
    did = _row("did", ind, (np.nan, np.nan, t_change - c_change), (lo, hi), counts, min_vehicles)
    nan = np.nan
    return {
        **did,
        **{"before_ci_low": nan, "before_ci_high": nan, "after_ci_low": nan, "after_ci_high": nan},
        "degenerate": degenerate,
    }


def _encode(df: pd.DataFrame, code_of: pd.Index, binned: bool):
    speed = df["speed_kmh"].to_numpy(dtype=float)
    q = speed_bin_kmh(speed) if binned else None  # recorded whole km/h: grouped p85; passages: sample quantile
    return (
        df["unit"].to_numpy(),
        df["period"].to_numpy(),
        code_of.get_indexer(df["vehicle"]).astype(np.int64),
        speed,
        df["limit_kmh"].to_numpy(dtype=float),
        q,
        df[SAMPLE_COUNT].to_numpy(dtype=float) if SAMPLE_COUNT in df.columns else None,
    )


def percentile_interval(reps: np.ndarray, alpha: float) -> tuple[float, float]:
    """Percentile interval (alpha, 1 - alpha quantiles) of bootstrap replicates, NaN ones left out."""
    reps = reps[np.isfinite(reps)]
    if len(reps) == 0:
        return float("nan"), float("nan")
    return float(np.quantile(reps, alpha)), float(np.quantile(reps, 1 - alpha))


def degenerate_interval(reps: np.ndarray) -> bool:
    """Whether a bootstrap interval says nothing about sampling: its resamples take fewer than
    MIN_DISTINCT_RESAMPLES distinct values (a share of 0 or 1, whose every resample is 0 or 1; a level
    on one recorded value). Only that: whether the estimate lies strictly inside the interval is not
    part of the definition, so that the rule "every other interval holds its estimate strictly
    inside" is a check (tests/test_demo.py), not a tautology."""
    finite = np.asarray(reps, dtype=float)
    finite = finite[np.isfinite(finite)]
    # values equal but for floating-point summation order (e.g. a score of 70 summed from its points
    # in another order) are one value
    return len(np.unique(np.round(finite, 9))) < MIN_DISTINCT_RESAMPLES


def _row(unit, indicator, levels: tuple, interval: tuple, counts: tuple, min_vehicles) -> dict:
    """levels: (before, after, change); interval: (ci_low, ci_high) of the change; counts: (samples
    before, samples after, vehicles before, vehicles after)."""
    before, after, change = levels
    lo, hi = interval
    nb, na, vb, va = counts
    return {
        "unit": unit,
        "indicator": indicator,
        "before": before,
        "after": after,
        "change": change,
        "ci_low": lo,
        "ci_high": hi,
        "n_before": int(nb),
        "n_after": int(na),
        "n_vehicles_before": int(vb),
        "n_vehicles_after": int(va),
        "flag": "low_sample" if min(vb, va) < min_vehicles else "",
    }
