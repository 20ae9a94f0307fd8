"""Screening: where to calm next. Ranks the residential roads of a network by a documented score.

Yokohama found 大倉山三丁目 by screening ETC2.0 data first: speeding and sudden braking on a
30 km/h street. `screen` does that step for any network and period, from the same matched points
as every other figure (analysis.points; braking and cut-through from analysis.behaviour through
analysis.comparison; intervals from analysis.bootstrap).

Candidates
    Every residential road (limit <= RESIDENTIAL_MAX_LIMIT_KMH) with at least `min_vehicles`
    distinct vehicles (SCREENING_MIN_VEHICLES, 50) among its passages in the period. With an
    area (the --area polygon, else the district outline) only roads with at least
    SCREENING_AREA_MIN_INSIDE (half) of their length inside it; without an area, every residential
    road of the network. Roads below the vehicle minimum are left out (counted, not ranked).

Components (per road; a passage is one vehicle's traversal of the road, its speed the mean of its
points, as for the published "share of vehicles")
    share_at_or_over_limit          share of passages at or over the limit (「30キロ以上の割合」)
    share_at_or_over_limit_plus_10  share of passages at or over the limit + 10 km/h
    p85_over_limit                  85th percentile passage speed minus the limit, km/h, 0 when below
    braking_per_1000_passages       sudden braking events (挙動履歴, else inferred from consecutive
                                    points at >= 0.25 G: a lower bound) per 1,000 passages
    cut_through_share               share of the trips using the road (inside the area) whose origin
                                    and destination lie outside the area (抜け道); needs an area
    passages_per_day                volume: passages / days of the period

Score (0-100)
    score = 100 * sum_i w_i * x_i / max_c(x_i)  /  sum_i w_i

    x_i is the road's value of component i, max_c(x_i) the highest value among the candidates
    (a component that is 0 for every candidate gives no points to any), w_i its weight
    (SCREENING_WEIGHTS): share >= limit 25, share >= limit + 10 15, p85 over the limit 10,
    braking 20, cut-through 15, volume 15. Each term is shown as the road's `points_*` column
    (they add up to the score). Without an area the cut-through term is left out and the other
    weights are rescaled to 100 (sum_i runs over the available components).

Why this score
    - Linear scaling by the best candidate (simple additive weighting): every component counts in
      its own unit, without thresholds chosen for this data; a road that is worst on everything
      scores 100. The price: scores are relative to the screened set, so ranks within one run
      are meaningful, scores across runs or areas are not. Volume has no absolute scale anyway:
      probe passages depend on the ETC2.0 penetration of the fleet.
    - Speed carries half of the points (25 + 15 + 10). The share of passages at or over the limit
      is what Japanese evaluations publish and what the city acted on; the share at or over
      limit + 10 adds severity (injury risk to pedestrians rises steeply above 30 km/h, the
      premise of zone 30); p85 is the engineer's operating speed, weighted least because it is
      correlated with both shares.
    - Sudden braking 20: the other signal both Yokohama cases cite (急ブレーキ / 急減速); not more,
      because inferred events understate hard braking and are rare, hence noisy.
    - Cut-through 15: calming aims at through traffic on residential streets (ゾーン30); a
      street mostly used by cut-through trips is where devices divert traffic, not residents.
    - Volume 15: exposure. The same share on a busier street is more speeding vehicles a day in
      front of the same houses; not more, because volume alone is no problem on a residential street.
    The weights are judgment, set from these reasons and not fitted to any answer; they live in
    config.settings and every run stores the weights it used (screening_runs).

Uncertainty
    One cluster bootstrap over vehicles (analysis.bootstrap: vehicles in a key-independent order,
    multinomial weights) gives 95 % intervals of the shares and p85 (replicate_indicators), and, by
    recomputing every component, the max-scaling and the score on each replicate (the vehicles of
    all roads resampled jointly), intervals of the score and of the rank.

Which months
    A district is screened by default on the complete months right before its before period when
    the store holds them (analysis.pretrend.screening_period, basis 'pre_period'): selecting on the
    data later used as the before level invites regression to the mean. Without such months it
    screens the before period itself (basis 'before_period') and says so; a period given by the
    user is basis 'given'.

Stored: screening_results (one row per candidate and run) and screening_runs (parameters, counts,
basis), replacing earlier rows of the same network, area and dates. Publishing reads them back.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from analysis.behaviour import braking_per_road, cut_through_streets
from analysis.bootstrap import (
    GroupData,
    bootstrap_weights,
    degenerate_interval,
    percentile_interval,
    point_indicators,
    replicate_dot,
    replicate_indicators,
    vehicle_order,
)
from analysis.comparison import braking_events, cut_through_of_period
from analysis.matchstage import match_stage
from analysis.network import Network, district_network
from analysis.points import PASSAGE_SPEED_COLUMN
from analysis.pretrend import screening_period
from analysis.samples import period_samples
from analysis.stages import forget_stage
from config.districts import District, Period
from config.settings import (
    CONFIDENCE,
    DEFAULT_BRAKING_THRESHOLD_G,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    RESIDENTIAL_MAX_LIMIT_KMH,
    SCREENING_AREA_MIN_INSIDE,
    SCREENING_MIN_VEHICLES,
    SCREENING_WEIGHTS,
)
from etl.schema import transaction
from etl.warehouse import connect
from geo.calendar import months_between
from geo.network import load_area

COMPONENTS = tuple(SCREENING_WEIGHTS)
# The `points_*` column of each component (its share of the score).
POINTS_COLUMNS = {
    "share_at_or_over_limit": "points_share",
    "share_at_or_over_limit_plus_10": "points_share_plus_10",
    "p85_over_limit": "points_p85",
    "braking_per_1000_passages": "points_braking",
    "cut_through_share": "points_cut_through",
    "passages_per_day": "points_volume",
}
# Columns of the CSV and of screening_results (after district, area, period, dates).
RESULT_COLUMNS = [
    "rank",
    "road_id",
    "road_name",
    "score",
    "score_ci_low",
    "score_ci_high",
    "rank_ci_low",
    "rank_ci_high",
    "limit_kmh",
    "n_vehicles",
    "n_passages",
    "passages_per_day",
    "share_at_or_over_limit",
    "share_ci_low",
    "share_ci_high",
    "share_at_or_over_limit_plus_10",
    "share_plus_10_ci_low",
    "share_plus_10_ci_high",
    "p85_kmh",
    "p85_ci_low",
    "p85_ci_high",
    "p85_over_limit",
    "n_braking_events",
    "n_braking_vehicles",
    "braking_per_1000_passages",
    "n_trips",
    "n_cut_through",
    "n_cut_through_vehicles",
    "cut_through_share",
    *POINTS_COLUMNS.values(),
    "degenerate",
]


@dataclass
class ScreeningResult:
    network_key: str
    area: str  # '' (no area), 'outline' (the district outline) or 'area:<file stem>'
    period: Period
    table: pd.DataFrame  # one row per candidate, RESULT_COLUMNS, sorted by rank
    n_roads: int  # roads of the network
    n_residential: int  # residential roads (in the area, when there is one)
    low_sample: pd.DataFrame  # residential roads left out: road_id, road_name, n_vehicles
    braking_source: str
    weights: dict[str, float]
    min_vehicles: int
    resamples: int
    seed: int
    threshold_g: float
    cut_through_available: bool
    notes: list[str] = field(default_factory=list)
    area_path: str = ""  # the area's polygon file ('' when none or not from a file)
    basis: str = "given"  # which months: pre_period | before_period | given (analysis.pretrend)


def roads_in_area(roads, area, min_inside: float = SCREENING_AREA_MIN_INSIDE) -> np.ndarray:
    """Whether each road (GeoDataFrame in metres) has at least `min_inside` of its length inside `area`."""
    geoms = roads.geometry.values
    length = shapely.length(geoms)
    inside = shapely.length(shapely.intersection(geoms, area))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(length > 0, inside / length, 0.0) >= min_inside


def score_candidates(components: pd.DataFrame, weights: dict[str, float] = SCREENING_WEIGHTS) -> pd.DataFrame:
    """Points per component, score and rank of candidate roads (see the module docstring).

    components: one row per candidate with a column per component (COMPONENTS; a component given
    as all-NaN, e.g. cut_through_share without an area, is left out and the weights rescaled) and
    road_id. Returns a copy with the points_* columns, score and rank (1 = highest score; ties
    broken by share at or over the limit, then road_id), sorted by rank.
    """
    df = components.copy()
    points = _points(df[list(COMPONENTS)].to_numpy(dtype=float), weights)
    for i, c in enumerate(COMPONENTS):
        df[POINTS_COLUMNS[c]] = points[:, i]
    df["score"] = points.sum(axis=1)
    df = df.sort_values(["score", "share_at_or_over_limit", "road_id"], ascending=[False, False, True], kind="stable")
    df["rank"] = np.arange(1, len(df) + 1)
    return df.reset_index(drop=True)


def _points(values: np.ndarray, weights: dict[str, float]) -> np.ndarray:
    """(..., roads, components) values → points (same shape): 100 * w * x / max over roads / sum of the
    available weights. Vectorised over leading axes (bootstrap replicates)."""
    w = np.array([weights[c] for c in COMPONENTS], dtype=float)
    available = ~np.all(np.isnan(values), axis=-2)  # (..., components)
    x = np.nan_to_num(values, nan=0.0)
    top = x.max(axis=-2, keepdims=True) if x.shape[-2] else np.zeros_like(x[..., :1, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(top > 0, x / np.where(top > 0, top, 1.0), 0.0)
    w_avail = np.where(available, w, 0.0)
    total = w_avail.sum(axis=-1, keepdims=True)
    return 100.0 * scaled * (w_avail / np.where(total > 0, total, 1.0))[..., None, :]


def road_components(
    road_trips: pd.DataFrame,
    passages: pd.DataFrame,
    events: pd.DataFrame,
    network: Network,
    days: int,
    cut_trips: pd.DataFrame | None,
) -> pd.DataFrame:
    """Every road's screening components from one period's distinct road_id, trip_id, vehicle_id of its
    matched points (PeriodSamples.road_trips), passages (road_id, vehicle_id, mean_kmh), braking
    events (road_id, vehicle_id) and the cut-through classification of its trips (None without an area).

    Returns one row per road of the network: road_id, road_name, limit_kmh, n_vehicles,
    n_passages, passages_per_day, share_at_or_over_limit, share_at_or_over_limit_plus_10, p85_kmh,
    p85_over_limit, n_braking_events, n_braking_vehicles (distinct vehicles of those events),
    braking_per_1000_passages, n_trips, n_cut_through, n_cut_through_vehicles (distinct vehicles of the
    cut-through trips: what publishing needs to apply its threshold),
    cut_through_share (figures NaN for a road without passages; cut-through NaN without an area).
    """
    roads = network.roads
    out = pd.DataFrame(
        {
            "road_id": roads["road_id"].to_numpy(),
            "road_name": roads["name"].to_numpy(),
            "limit_kmh": roads["limit_kmh"].to_numpy(float),
        }
    )
    limit_of = dict(zip(out["road_id"], out["limit_kmh"], strict=True))
    out = out.merge(_passage_figures(passages, limit_of), on="road_id", how="left")
    out[["n_vehicles", "n_passages"]] = out[["n_vehicles", "n_passages"]].fillna(0).astype("int64")
    out["passages_per_day"] = out["n_passages"] / days
    out["p85_over_limit"] = (out["p85_kmh"] - out["limit_kmh"]).clip(lower=0)
    out = _with_braking(out, events, passages)
    return _with_cut_through(out, cut_trips, road_trips)


def _passage_figures(passages: pd.DataFrame, limit_of: dict) -> pd.DataFrame:
    """Per road with passages: vehicles (of the passages with a speed), passages, shares and p85."""
    figs = []
    for road_id, g in passages.groupby("road_id", sort=False):
        v = g[PASSAGE_SPEED_COLUMN].to_numpy(float)
        timed = np.isfinite(v)
        f = point_indicators(v[timed], limit_of[road_id])
        figs.append(
            {
                "road_id": road_id,
                "n_vehicles": g["vehicle_id"][timed].nunique(),  # of the passages with a speed
                "n_passages": len(g),
                "share_at_or_over_limit": f["share"],
                "share_at_or_over_limit_plus_10": f["share_plus10"],
                "p85_kmh": f["p85"],
            }
        )
    return pd.DataFrame(
        figs,
        columns=[
            "road_id",
            "n_vehicles",
            "n_passages",
            "share_at_or_over_limit",
            "share_at_or_over_limit_plus_10",
            "p85_kmh",
        ],
    )


def _with_braking(out: pd.DataFrame, events: pd.DataFrame, passages: pd.DataFrame) -> pd.DataFrame:
    """`out` with n_braking_events, n_braking_vehicles and braking_per_1000_passages."""
    brk = braking_per_road(events, passages)
    out = out.merge(
        brk[["road_id", "n_events", "n_vehicles"]].rename(
            columns={"n_events": "n_braking_events", "n_vehicles": "n_braking_vehicles"}
        ),
        on="road_id",
        how="left",
    )
    out[["n_braking_events", "n_braking_vehicles"]] = (
        out[["n_braking_events", "n_braking_vehicles"]].fillna(0).astype("int64")
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        out["braking_per_1000_passages"] = np.where(
            out["n_passages"] > 0, 1000.0 * out["n_braking_events"] / out["n_passages"], np.nan
        )
    return out


def _with_cut_through(out: pd.DataFrame, cut_trips: pd.DataFrame | None, road_trips: pd.DataFrame) -> pd.DataFrame:
    """`out` with n_trips, n_cut_through, n_cut_through_vehicles and cut_through_share (NaN without an area)."""
    if cut_trips is not None:
        cols = ["road_id", "n_trips", "n_cut_through", "n_vehicles_cut_through"]
        cs = cut_through_streets(cut_trips, road_trips) if len(cut_trips) else pd.DataFrame(columns=cols)
        out = out.merge(
            cs[cols].rename(columns={"n_vehicles_cut_through": "n_cut_through_vehicles"}), on="road_id", how="left"
        )
        counts = ["n_trips", "n_cut_through", "n_cut_through_vehicles"]
        out[counts] = out[counts].fillna(0).astype("int64")
        with np.errstate(invalid="ignore", divide="ignore"):
            out["cut_through_share"] = np.where(out["n_trips"] > 0, out["n_cut_through"] / out["n_trips"], 0.0)
    else:
        out["n_trips"], out["n_cut_through"], out["n_cut_through_vehicles"], out["cut_through_share"] = 0, 0, 0, np.nan
    return out


def _road_trip_pairs(road_trips: pd.DataFrame, cut_trips: pd.DataFrame) -> pd.DataFrame:
    """(road_id, trip_id) of the classified trips with vehicle_id and cut_through: the rows that
    analysis.behaviour.cut_through_streets counts (for the bootstrap's per-vehicle counts)."""
    return (
        road_trips[["road_id", "trip_id"]]
        .drop_duplicates()
        .merge(cut_trips[["trip_id", "vehicle_id", "cut_through"]], on="trip_id")
    )


def _replicate_sums(
    weights: np.ndarray, road: np.ndarray, vehicle: np.ndarray, value: np.ndarray, n_roads: int
) -> np.ndarray:
    """(replicates × roads) sums of `value` per road when each vehicle counts weights[r, vehicle] times."""
    out = np.zeros((weights.shape[0], n_roads))
    if len(road) == 0:
        return out
    key = road.astype(np.int64) * weights.shape[1] + vehicle.astype(np.int64)
    uniq, inv = np.unique(key, return_inverse=True)
    sums = np.bincount(inv, weights=value.astype(float))
    r_of, v_of = np.divmod(uniq, weights.shape[1])
    for r in np.unique(r_of):
        sel = r_of == r
        out[:, r] = replicate_dot(weights[:, v_of[sel]], sums[sel])
    return out


@dataclass(frozen=True)
class ScreeningSamples:
    """One period's data the screening bootstrap resamples: point_samples (each vehicle's first point
    on each road: unit, vehicle, gps_us, x_m, y_m, speed_kmh, PeriodSamples.first_points), for the
    key-independent vehicle order; passages and events with road_id and vehicle_id; pairs:
    _road_trip_pairs (None without an area)."""

    point_samples: pd.DataFrame
    passages: pd.DataFrame
    events: pd.DataFrame
    pairs: pd.DataFrame | None


@dataclass(frozen=True)
class _ReplicateCounter:
    """Per-road replicate sums over rows given by road_id and vehicle_id (candidates and resampled vehicles)."""

    road_of: pd.Index
    code_of: pd.Index
    weights: np.ndarray

    def sums(self, road_ids, vehicle_ids, value: np.ndarray) -> np.ndarray:
        road, vehicle = self.road_of.get_indexer(road_ids), self.code_of.get_indexer(vehicle_ids)
        return _replicate_sums(self.weights, road, vehicle, value, len(self.road_of))


def bootstrap_screening(
    table: pd.DataFrame,
    samples: ScreeningSamples,
    days: int,
    weights: dict[str, float],
    resamples: int,
    seed: int,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Intervals of the candidates' shares, p85, score and rank from one cluster bootstrap over vehicles.

    table: scored candidates (score_candidates); samples: the period's points, passages, events and
    road-trip pairs (ScreeningSamples). Returns `table` with the *_ci_low / *_ci_high columns.
    """
    out = table.copy()
    alpha = (1 - confidence) / 2
    roads = out["road_id"].tolist()
    n = len(roads)
    code_of = pd.Index(_resampled_vehicles(samples, roads))
    counter = _ReplicateCounter(pd.Index(roads), code_of, bootstrap_weights(len(code_of), resamples, seed))
    pas = samples.passages[samples.passages["road_id"].isin(roads)]
    reps = np.full((resamples, n, len(COMPONENTS)), np.nan)
    reps[:, :, :3] = _speed_replicates(out, pas, counter, alpha)
    n_pas = counter.sums(pas["road_id"], pas["vehicle_id"], np.ones(len(pas)))
    ev = samples.events[samples.events["road_id"].isin(roads)]
    n_ev = counter.sums(ev["road_id"], ev["vehicle_id"], np.ones(len(ev)))
    with np.errstate(invalid="ignore", divide="ignore"):
        reps[:, :, 3] = np.where(n_pas > 0, 1000.0 * n_ev / n_pas, np.nan)
    if samples.pairs is not None:
        pr = samples.pairs[samples.pairs["road_id"].isin(roads)]
        n_trips = counter.sums(pr["road_id"], pr["vehicle_id"], np.ones(len(pr)))
        n_cut = counter.sums(pr["road_id"], pr["vehicle_id"], pr["cut_through"].to_numpy(float))
        with np.errstate(invalid="ignore", divide="ignore"):
            reps[:, :, 4] = np.where(n_trips > 0, n_cut / n_trips, 0.0)
    reps[:, :, 5] = n_pas / days
    _score_and_rank_intervals(out, reps, weights, alpha)
    return out


def _resampled_vehicles(samples: ScreeningSamples, roads: list) -> np.ndarray:
    """The vehicles of the candidates in their key-independent order (analysis.bootstrap.vehicle_order)."""
    point_samples, events = samples.point_samples, samples.events
    order = vehicle_order(point_samples[point_samples["unit"].isin(roads)])
    # 挙動履歴 events of vehicles without a point on the candidates join the resampling too, in the
    # order of their first event (time, position: key-independent).
    extra = events[events["road_id"].isin(roads) & ~events["vehicle_id"].isin(order)]
    if len(extra):
        first = extra.sort_values(["gps_time", "x_m", "y_m"], kind="stable").drop_duplicates("vehicle_id")
        order = np.r_[order, first["vehicle_id"].to_numpy()]
    return order


def _speed_replicates(out: pd.DataFrame, pas: pd.DataFrame, counter: _ReplicateCounter, alpha: float) -> np.ndarray:
    """(replicates × roads × 3) shares and p85 over the limit of the candidates' passages; sets the
    share, share_plus_10 and p85 intervals and `degenerate` of `out`."""
    w = counter.weights
    resamples, n = w.shape[0], len(counter.road_of)
    p_road = counter.road_of.get_indexer(pas["road_id"])
    p_veh = counter.code_of.get_indexer(pas["vehicle_id"])
    p_speed = pas[PASSAGE_SPEED_COLUMN].to_numpy(float)
    limit = out.set_index("road_id")["limit_kmh"].to_numpy(float)
    reps = np.full((resamples, n, 3), np.nan)
    out["degenerate"] = False
    for i in range(n):
        mask = (p_road == i) & np.isfinite(p_speed)
        if mask.any():
            g = GroupData(p_veh[mask], p_speed[mask], np.full(int(mask.sum()), limit[i]))
            r = replicate_indicators(g, w)
        else:  # no passage of the road has a travel speed: no speed figure, nothing resampled
            r = {key: np.full(resamples, np.nan) for key in ("share", "share_plus10", "p85")}
        reps[:, i, 0], reps[:, i, 1] = r["share"], r["share_plus10"]
        reps[:, i, 2] = np.maximum(r["p85"] - limit[i], 0.0)
        for col, key in (("share", "share"), ("share_plus_10", "share_plus10"), ("p85", "p85")):
            lo, hi = percentile_interval(r[key], alpha)
            out.loc[i, f"{col}_ci_low"], out.loc[i, f"{col}_ci_high"] = lo, hi
            out.loc[i, "degenerate"] |= degenerate_interval(r[key])
    return reps


def _score_and_rank_intervals(out: pd.DataFrame, reps: np.ndarray, weights: dict[str, float], alpha: float) -> None:
    """Score and rank intervals of the candidates from the components of every replicate, set in `out`."""
    n = len(out)
    points = _points(reps, weights)
    score = points.sum(axis=-1)  # (replicates, roads)
    # Rank on each replicate (1 = highest score; ties in candidate order, as score_candidates sorts them).
    rank = np.empty(score.shape, dtype=np.int64)
    np.put_along_axis(
        rank, np.argsort(-score, axis=1, kind="stable"), np.arange(1, n + 1)[None, :].repeat(len(score), 0), axis=1
    )
    for i in range(n):
        out.loc[i, "score_ci_low"], out.loc[i, "score_ci_high"] = percentile_interval(score[:, i], alpha)
        out.loc[i, "degenerate"] |= degenerate_interval(score[:, i])
        lo, hi = percentile_interval(rank[:, i].astype(float), alpha)
        out.loc[i, "rank_ci_low"], out.loc[i, "rank_ci_high"] = np.floor(lo), np.ceil(hi)
    out[["rank_ci_low", "rank_ci_high"]] = out[["rank_ci_low", "rank_ci_high"]].astype("Int64")


def screen(  # noqa: PLR0913 -- public API: its keywords are the documented user options of `etc2calm screen`
    warehouse: str | Path,
    network: Network,
    period: Period,
    *,
    area=None,
    area_label: str = "",
    area_path=None,
    min_vehicles: int = SCREENING_MIN_VEHICLES,
    weights: dict[str, float] = SCREENING_WEIGHTS,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    threshold_g: float = DEFAULT_BRAKING_THRESHOLD_G,
    store: bool = True,
    client=None,
    basis: str = "given",
) -> ScreeningResult:
    """Rank the network's residential roads (in `area`, a shapely polygon in metres, when given) for one
    period; see the module docstring. Matches what is missing first; stores the ranking unless `store` is False.

    area_label: how the area is named in the stored rows ('outline', 'area:<stem>'; '' without area);
    area_path: the polygon file, stored with the run for the map.
    basis: which months `period` is (pre_period, before_period or given; stored, said in the notes).
    client: a `distributed.Client`: the match stage and the period's reading run month by month on
    its workers (analysis._partitions); the ranking is the same bits as without it.
    """
    if set(weights) != set(COMPONENTS) or any(not np.isfinite(v) or v < 0 for v in weights.values()):
        raise ValueError(f"screening weights must give a non-negative number for each of {', '.join(COMPONENTS)}")
    if min_vehicles < 1:
        raise ValueError(f"--min-vehicles must be at least 1, got {min_vehicles}")
    warehouse = Path(warehouse)
    match_stage(warehouse, network, months_between(period.start, period.end), client=client)
    days = (period.end - period.start).days + 1
    ps, events, braking_source, cut_trips = _read_period(warehouse, network, period, area, threshold_g, client)
    comp = road_components(ps.road_trips, ps.passages, events, network, days, cut_trips)
    residential = comp["limit_kmh"].to_numpy() <= RESIDENTIAL_MAX_LIMIT_KMH
    if area is not None:
        residential &= roads_in_area(network.roads, area)
    enough = comp["n_vehicles"].to_numpy() >= min_vehicles
    low = comp.loc[residential & ~enough, ["road_id", "road_name", "n_vehicles"]].reset_index(drop=True)
    table = score_candidates(comp[residential & enough], weights)
    pairs = None if cut_trips is None else _road_trip_pairs(ps.road_trips, cut_trips)
    if len(table):
        samples = ScreeningSamples(ps.first_points, ps.passages, events, pairs)
        table = bootstrap_screening(table, samples, days, weights, resamples, seed)
    else:
        for c in RESULT_COLUMNS:
            if c not in table:
                table[c] = pd.Series(dtype=float)
    result = ScreeningResult(
        network_key=network.key,
        area=area_label if area is not None else "",
        period=period,
        table=table[RESULT_COLUMNS].reset_index(drop=True),
        n_roads=len(network.roads),
        n_residential=int(residential.sum()),
        low_sample=low,
        braking_source=braking_source,
        weights=dict(weights),
        min_vehicles=min_vehicles,
        resamples=resamples,
        seed=seed,
        threshold_g=threshold_g,
        cut_through_available=area is not None,
        notes=_screening_notes(basis, period, area is not None, table),
        area_path=str(Path(area_path).resolve()) if area is not None and area_path else "",
        basis=basis,
    )
    if store:
        _store(warehouse, network, result)
    return result


def _read_period(warehouse: Path, network: Network, period: Period, area, threshold_g: float, client):
    """The period's samples (read month by month), braking events and their source, and (with an
    area) its classified trips."""
    con = connect(warehouse, create=False)
    try:
        ps = period_samples(
            con, warehouse, network, period.name, period, threshold_g=threshold_g, area=area, client=client
        )
        events, braking_source = braking_events(
            con, warehouse, network, period, ps.braking_points, threshold_g=threshold_g
        )
        cut_trips = (
            cut_through_of_period(con, warehouse, network, period, ps.area_trips, area) if area is not None else None
        )
    finally:
        con.close()
    return ps, events, braking_source, cut_trips


def _screening_notes(basis: str, period: Period, has_area: bool, table: pd.DataFrame) -> list[str]:
    """What a run says about its months, a missing area and a missing braking signal."""
    notes = [_basis_note(basis, period)] if basis != "given" else []
    if not has_area:
        notes.append("no area: cut-through left out of the score (its weight shared by the other components)")
    if len(table) and not (table["n_braking_events"] > 0).any():
        notes.append("no sudden braking on any candidate: the braking component gives no points")
    return notes


def screen_district(
    warehouse: str | Path,
    district: District,
    period: Period | None = None,
    *,
    area=None,
    area_label: str | None = None,
    radius_m: float | None = None,
    **kwargs,
) -> ScreeningResult:
    """`screen` with the district's network and outline (or `area`); the period defaults to the months
    right before the district's before period when the store holds them, else the before period itself
    (analysis.pretrend.screening_period: the basis is stored and said)."""
    if period is None:
        period, kwargs["basis"] = screening_period(warehouse, district)
    network = district_network(district) if radius_m is None else district_network(district, radius_m)
    if area is None and district.area_path is not None:
        area, area_label, kwargs["area_path"] = load_area(district.area_path), "outline", district.area_path
    return screen(warehouse, network, period, area=area, area_label=area_label or "", **kwargs)


def _basis_note(basis: str, period: Period) -> str:
    """What a run says about its months (ScreeningResult.notes, the CLI and the demo)."""
    dates = f"{period.start}..{period.end}"
    if basis == "pre_period":
        return f"screened on the months before the before period ({dates}), not on the baseline of the comparison"
    return (
        f"no month before the before period delivered: screened on the before period itself ({dates}), which is "
        "also the baseline of the before/after comparison (a street chosen for being fast there may slow down "
        "anyway: regression to the mean)"
    )


def _store(warehouse: Path, network: Network, res: ScreeningResult) -> None:
    now = dt.datetime.now()
    key = [res.network_key, res.area, res.period.start, res.period.end]
    rows = res.table.assign(
        district=res.network_key,
        area=res.area,
        period=res.period.name,
        period_start=res.period.start,
        period_end=res.period.end,
        braking_source=res.braking_source,
        computed_at=now,
    )
    con = connect(warehouse, create=False)
    try:
        with transaction(con):
            forget_stage(con, res.network_key, "screen")
            for table in ("screening_results", "screening_runs"):
                con.execute(
                    f"DELETE FROM {table} WHERE district = ? AND area = ? AND period_start = ? AND period_end = ?", key
                )
            con.register("_r", rows)
            con.execute(f"""INSERT INTO screening_results SELECT district, area, period, period_start, period_end,
                            {", ".join(RESULT_COLUMNS[:-1])}, braking_source, computed_at, degenerate FROM _r""")
            con.execute(
                "INSERT INTO screening_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    *key[:2],
                    res.period.name,
                    *key[2:],
                    res.min_vehicles,
                    json.dumps(res.weights),
                    res.resamples,
                    res.seed,
                    res.threshold_g,
                    res.braking_source,
                    res.cut_through_available,
                    res.n_roads,
                    res.n_residential,
                    len(res.table),
                    len(res.low_sample),
                    network.fingerprint,
                    str(network.source_path),
                    res.area_path,
                    now,
                    res.basis,
                ],
            )
    finally:
        con.close()
