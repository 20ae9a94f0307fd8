"""A district's before/after comparison, assembled and stored: changes with intervals, DiD, braking, cut-through.

`compare` (any network) and `compare_district` (a district file) read the two periods from the
warehouse, compute with the statistics of `analysis.bootstrap` and store the results: this module
is the assembly, `analysis.bootstrap` the method. "Compare" is the one word for the idea, as in
`etc2calm compare` and the tables comparison_results and comparison_histogram.

Everything comes from the matched points of the two periods read through the one reader with the
one filter (analysis.points); the stored tables (comparison_results, comparison_histogram,
braking_per_road, braking_hotspots, cut_through_summary, cut_through_streets, evidence_runs) are
what maps, reports and sheets publish.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Transformer

from analysis.behaviour import (
    braking_hotspots,
    braking_per_road,
    classify_trips,
    cut_through_streets,
)
from analysis.bootstrap import INDICATORS, SAMPLE_COUNT, compare_periods_all
from analysis.filters import ALL_POINTS, PointFilter
from analysis.matchstage import match_stage, trip_ids
from analysis.network import Network, district_network
from analysis.placebo import placebo_candidates, placebo_dids
from analysis.points import read_events, read_trips
from analysis.samples import period_samples
from analysis.stages import forget_stage
from config.districts import District, Period
from config.settings import (
    ADEQUATE_MIN_VEHICLES,
    DEFAULT_BRAKING_THRESHOLD_G,
    DEFAULT_RADIUS_M,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    LONLAT_CRS,
    METRIC_CRS,
)
from etl.schema import transaction
from etl.warehouse import connect
from geo.aggregate import speed_bin_kmh
from geo.calendar import months_between
from geo.network import load_area


@dataclass
class DistrictComparison:
    district_key: str
    periods: dict[str, Period]
    filter: PointFilter
    roads: object  # GeoDataFrame, metric CRS, roles set
    comparisons: dict[str, pd.DataFrame]  # indicator -> compare_periods table
    distributions: pd.DataFrame  # unit ('treated', 'control', road ids), period, speed_bin_kmh, n_points
    braking: pd.DataFrame  # period, road_id, n_events, n_passages, events_per_1000_passages, n_vehicles
    hotspots: pd.DataFrame  # period, x_m, y_m, n_events, n_vehicles
    cut_through: pd.DataFrame  # period, n_trips, n_cut_through, share_cut_through, n_vehicles, n_vehicles_cut_through
    cut_through_streets: (
        pd.DataFrame
    )  # period, road_id, n_trips, n_cut_through, n_vehicles_cut_through, share_cut_through
    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    min_vehicles: int = ADEQUATE_MIN_VEHICLES
    threshold_g: float = DEFAULT_BRAKING_THRESHOLD_G
    braking_source: str = "points"  # 'behavior_events' (挙動履歴) or 'points' (inferred from consecutive points)
    radius_m: float = DEFAULT_RADIUS_M
    # placebo_results rows (analysis.placebo): indicator, road_id, did, n_vehicles, before, after
    placebo: pd.DataFrame = field(default_factory=pd.DataFrame)


def braking_events(
    con,
    warehouse: Path,
    network: Network,
    period: Period,
    braking_points: pd.DataFrame,
    point_filter: PointFilter = ALL_POINTS,
    threshold_g: float = DEFAULT_BRAKING_THRESHOLD_G,
) -> tuple[pd.DataFrame, str]:
    """The period's sudden braking events on the network, with road_id, and their source: 挙動履歴
    ('behavior_events') when the delivery has events in the period, else inferred from consecutive
    points ('points': `braking_points`, the period's points inferred as braking at `threshold_g`,
    PeriodSamples.braking_points)."""
    if read_events(con, warehouse, network.key, period.start, period.end).num_rows > 0:
        ev, source = (
            read_events(con, warehouse, network.key, period.start, period.end, point_filter).to_pandas(),
            "behavior_events",
        )
    else:
        ev, source = braking_points, "points"
    ev = ev.assign(road_id=network.road_ids[ev["road_idx"].to_numpy()] if len(ev) else np.array([], dtype=object))
    return ev, source


def trip_ends(con, warehouse: Path, network: Network, period: Period) -> pd.DataFrame:
    """Origin and destination (metres, EPSG:6677) of the trips touching the network in the period's
    months: 様式1-3 where delivered, else the first and last point of the whole trip."""
    t = read_trips(con, warehouse, network.key, period.start, period.end).to_pandas()
    ends = pd.DataFrame(
        {
            "trip_id": t["trip_id"],
            "origin_x_m": t["first_x_m"],
            "origin_y_m": t["first_y_m"],
            "dest_x_m": t["last_x_m"],
            "dest_y_m": t["last_y_m"],
        }
    )
    has_trips = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'trips'").fetchone()[0]
    if not has_trips:
        return ends
    o = con.execute(
        """SELECT vehicle_id, operation_date, trip_no, origin_lon, origin_lat, dest_lon, dest_lat FROM trips
           WHERE operation_date BETWEEN ?::DATE - 1 AND ?::DATE + 1
             AND origin_lon IS NOT NULL AND dest_lon IS NOT NULL""",
        [period.start, period.end],
    ).df()
    if o.empty:
        return ends
    days = pd.to_datetime(o["operation_date"]).to_numpy().astype("datetime64[D]").astype(np.int64)
    o["trip_id"] = trip_ids(o["vehicle_id"].to_numpy(np.int64), days, o["trip_no"].to_numpy(np.int64))
    to_m = Transformer.from_crs(LONLAT_CRS, METRIC_CRS, always_xy=True)
    ox, oy = to_m.transform(o["origin_lon"].to_numpy(float), o["origin_lat"].to_numpy(float))
    dx, dy = to_m.transform(o["dest_lon"].to_numpy(float), o["dest_lat"].to_numpy(float))
    delivered = pd.DataFrame(
        {"trip_id": o["trip_id"], "origin_x_m": ox, "origin_y_m": oy, "dest_x_m": dx, "dest_y_m": dy}
    )
    delivered = delivered.drop_duplicates("trip_id")
    return pd.concat([delivered, ends[~ends["trip_id"].isin(delivered["trip_id"])]], ignore_index=True)


def cut_through_of_period(
    con, warehouse: Path, network: Network, period: Period, area_trips: pd.DataFrame, area
) -> pd.DataFrame:
    """Cut-through classification (analysis.behaviour.cut_through_trips) of the trips using the network's
    residential streets (limit <= RESIDENTIAL_MAX_LIMIT_KMH) inside `area`: `area_trips`
    (PeriodSamples.area_trips, read month by month) with the trips' ends (`trip_ends`)."""
    return classify_trips(area_trips, trip_ends(con, warehouse, network, period), area)


def compare(  # noqa: PLR0913 -- public API: its keywords are the documented user options of `etc2calm compare`
    warehouse: str | Path,
    network: Network,
    periods: dict[str, Period],
    *,
    area=None,
    point_filter: PointFilter = ALL_POINTS,
    indicators: tuple[str, ...] = INDICATORS,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    min_vehicles: int = ADEQUATE_MIN_VEHICLES,
    threshold_g: float = DEFAULT_BRAKING_THRESHOLD_G,
    store: bool = True,
    client=None,
) -> DistrictComparison:
    """Compare `before` and `after` (keys of `periods`) on the network's treated and comparison roads.

    area: the district outline (shapely, metres) for cut-through, or None. Every figure comes from
    the matched points kept by `point_filter` (its direction too). Results are stored in the
    warehouse, replacing earlier rows of the same district and filter.

    client: a `distributed.Client` (etl.cluster.dask_client): the match stage and the reading of each
    period (points and passages) run month by month on its workers; the bootstrap runs here, on the
    same samples, so the stored results are the same bits as without it.
    """
    if set(periods) != {"before", "after"}:
        raise ValueError(f"compare needs exactly the periods 'before' and 'after', got {', '.join(periods)}")
    roads = network.roads
    treated = roads.loc[roads["role"] == "treated", "road_id"].tolist()
    control = roads.loc[roads["role"] == "comparison", "road_id"].tolist()
    if not treated:
        raise ValueError("no treated roads given")
    warehouse = Path(warehouse)
    months = sorted({m for p in periods.values() for m in months_between(p.start, p.end)})
    match_stage(warehouse, network, months, client=client)
    read = _read_periods(warehouse, network, periods, area, point_filter, threshold_g, client)
    points = pd.concat(read.samples, ignore_index=True)
    pas_all = pd.concat(read.passage_samples, ignore_index=True)
    comparisons = compare_periods_all(
        points,
        treated=treated,
        control=control,
        indicators=tuple(indicators),
        passages=pas_all,
        resamples=resamples,
        seed=seed,
        min_vehicles=min_vehicles,
        first_points=pd.concat(read.first_points, ignore_index=True),
    )
    placebo = placebo_dids(points, pas_all, placebo_candidates(roads, points, min_vehicles), comparisons)
    comparison = DistrictComparison(
        district_key=network.key,
        periods=periods,
        filter=point_filter,
        roads=roads,
        comparisons=comparisons,
        distributions=_distributions(points, treated, control),
        braking=pd.concat(read.braking, ignore_index=True),
        hotspots=pd.concat(read.hotspots, ignore_index=True),
        cut_through=pd.concat(read.cut, ignore_index=True) if read.cut else pd.DataFrame(),
        cut_through_streets=pd.concat(read.cut_streets, ignore_index=True) if read.cut_streets else pd.DataFrame(),
        resamples=resamples,
        seed=seed,
        min_vehicles=min_vehicles,
        threshold_g=threshold_g,
        braking_source=read.braking_source,
        radius_m=network.radius_m,
        placebo=placebo,
    )
    if store:
        _store(warehouse, network, comparison)
    return comparison


@dataclass
class _PeriodsRead:
    """What `compare` reads of each period, one frame per period in each list."""

    samples: list[pd.DataFrame] = field(default_factory=list)
    first_points: list[pd.DataFrame] = field(default_factory=list)
    passage_samples: list[pd.DataFrame] = field(default_factory=list)
    braking: list[pd.DataFrame] = field(default_factory=list)
    hotspots: list[pd.DataFrame] = field(default_factory=list)
    cut: list[pd.DataFrame] = field(default_factory=list)
    cut_streets: list[pd.DataFrame] = field(default_factory=list)
    braking_source: str = "points"


def _read_periods(
    warehouse: Path,
    network: Network,
    periods: dict[str, Period],
    area,
    point_filter: PointFilter,
    threshold_g: float,
    client,
) -> _PeriodsRead:
    """Each period's bootstrap samples, braking (per road and hotspots) and, with an area, cut-through."""
    read = _PeriodsRead()
    con = connect(warehouse, read_only=True)  # reads only: no write lock, no view refresh
    try:
        for label, period in periods.items():
            ps = period_samples(
                con, warehouse, network, label, period, point_filter, threshold_g=threshold_g, area=area, client=client
            )
            read.samples.append(ps.point_samples)
            read.first_points.append(ps.first_points)
            read.passage_samples.append(ps.passage_samples)
            ev, source = braking_events(con, warehouse, network, period, ps.braking_points, point_filter, threshold_g)
            if source == "behavior_events":
                read.braking_source = source
            read.braking.append(braking_per_road(ev, ps.passages).assign(period=label))
            read.hotspots.append(braking_hotspots(ev).assign(period=label))
            if area is not None:
                trips = cut_through_of_period(con, warehouse, network, period, ps.area_trips, area)
                read.cut.append(_cut_through_summary(trips, label))
                read.cut_streets.append(cut_through_streets(trips, ps.road_trips).assign(period=label))
    finally:
        con.close()
    return read


def _cut_through_summary(trips: pd.DataFrame, label: str) -> pd.DataFrame:
    """One period's cut-through_summary row from its classified trips."""
    n, k = len(trips), int(trips["cut_through"].sum())
    return pd.DataFrame(
        [
            {
                "period": label,
                "n_trips": n,
                "n_cut_through": k,
                "share_cut_through": k / n if n else np.nan,
                "n_vehicles": trips["vehicle_id"].nunique(),
                "n_vehicles_cut_through": trips.loc[trips["cut_through"], "vehicle_id"].nunique(),
            }
        ]
    )


def compare_district(
    warehouse: str | Path,
    district: District,
    periods: dict[str, Period] | None = None,
    *,
    radius_m: float = DEFAULT_RADIUS_M,
    treated: tuple[str, ...] | None = None,
    control: tuple[str, ...] | None = None,
    **kwargs,
) -> DistrictComparison:
    """`compare` with the district's network, roads, outline and (by default) its before/after periods."""
    if periods is None:
        periods = {"before": district.period(district.default_before), "after": district.period(district.default_after)}
    network = district_network(district, radius_m, treated=treated, comparison=control)
    area = load_area(district.area_path) if district.area_path else None
    return compare(warehouse, network, periods, area=area, **kwargs)


def _distributions(points: pd.DataFrame, treated, control) -> pd.DataFrame:
    """Point counts per unit, period and 1 km/h bin: each road, and treated and control pooled
    (points: PeriodSamples.point_samples, each row standing for n_points points)."""
    m = points.assign(speed_bin_kmh=speed_bin_kmh(points["speed_kmh"].to_numpy(float)))[
        ["unit", "period", "speed_bin_kmh", SAMPLE_COUNT]
    ]
    frames = [m, m[m["unit"].isin(treated)].assign(unit="treated"), m[m["unit"].isin(control)].assign(unit="control")]
    allm = pd.concat(frames, ignore_index=True)
    return allm.groupby(["unit", "period", "speed_bin_kmh"])[SAMPLE_COUNT].sum().rename("n_points").reset_index()


COMPARISON_TABLES = (
    "comparison_results",
    "comparison_histogram",
    "evidence_runs",
    "braking_per_road",
    "braking_hotspots",
    "cut_through_summary",
    "cut_through_streets",
    "placebo_results",
)


@dataclass(frozen=True)
class _Run:
    """What every stored row of one comparison names: district, filter, the two periods, when."""

    district: str
    filter: str
    period_before: str
    period_after: str
    computed_at: dt.datetime


def _store(warehouse: Path, network: Network, ev: DistrictComparison) -> None:
    pb, pa_ = ev.periods["before"], ev.periods["after"]
    run = _Run(
        ev.district_key, ev.filter.describe_ja(), f"{pb.start}..{pb.end}", f"{pa_.start}..{pa_.end}", dt.datetime.now()
    )
    comp = pd.concat(ev.comparisons.values(), ignore_index=True)
    comp = comp.assign(
        district=run.district,
        filter=run.filter,
        resamples=ev.resamples,
        seed=ev.seed,
        period_before=run.period_before,
        period_after=run.period_after,
        computed_at=run.computed_at,
        min_vehicles=ev.min_vehicles,
    )
    to_lonlat = Transformer.from_crs(METRIC_CRS, LONLAT_CRS, always_xy=True)
    hs = ev.hotspots.copy()
    hs["lon"], hs["lat"] = to_lonlat.transform(hs["x_m"].to_numpy(float), hs["y_m"].to_numpy(float))
    con = connect(warehouse, create=False)
    try:
        with transaction(con):
            forget_stage(con, run.district, "compare")
            for table in COMPARISON_TABLES:
                con.execute(f"DELETE FROM {table} WHERE district = ? AND filter = ?", [run.district, run.filter])
            _insert_comparisons(con, run, comp, ev)
            _insert_run(con, run, network, ev)
            _insert_behaviour(con, run, hs, ev)
    finally:
        con.close()


def _insert_comparisons(con, run: _Run, comp: pd.DataFrame, ev: DistrictComparison) -> None:
    """comparison_results, placebo_results and comparison_histogram of the run."""
    con.register("_c", comp)
    con.execute("""INSERT INTO comparison_results SELECT district, filter, indicator, unit, before, after,
                   change, ci_low, ci_high, n_vehicles_before, n_vehicles_after, flag, resamples, seed,
                   period_before, period_after, computed_at, n_before, n_after, min_vehicles, before_ci_low,
                   before_ci_high, after_ci_low, after_ci_high, degenerate FROM _c""")
    if len(ev.placebo):
        con.register(
            "_p",
            ev.placebo.assign(
                district=run.district,
                filter=run.filter,
                period_before=run.period_before,
                period_after=run.period_after,
                computed_at=run.computed_at,
            ),
        )
        con.execute("""INSERT INTO placebo_results SELECT district, filter, period_before, period_after,
                       indicator, road_id, did, n_vehicles, before, after, computed_at FROM _p""")
    con.register("_d", ev.distributions.assign(district=run.district, filter=run.filter))
    con.execute(
        "INSERT INTO comparison_histogram SELECT district, filter, unit, period, speed_bin_kmh, n_points FROM _d"
    )


def _insert_run(con, run: _Run, network: Network, ev: DistrictComparison) -> None:
    """The evidence_runs row: the run's parameters and the network it used."""
    con.execute(
        "INSERT INTO evidence_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run.district,
            run.filter,
            run.period_before,
            run.period_after,
            ev.resamples,
            ev.seed,
            ev.min_vehicles,
            ev.threshold_g,
            ev.braking_source,
            network.radius_m,
            network.fingerprint,
            run.computed_at,
        ],
    )


def _insert_behaviour(con, run: _Run, hotspots: pd.DataFrame, ev: DistrictComparison) -> None:
    """braking_per_road, braking_hotspots (`hotspots`: with lon, lat) and, with an area, cut-through."""
    district, flt, now = run.district, run.filter, run.computed_at
    con.register("_b", ev.braking.assign(district=district, filter=flt, threshold_g=ev.threshold_g, computed_at=now))
    con.execute("""INSERT INTO braking_per_road SELECT district, filter, period, road_id, n_events, n_passages,
                   events_per_1000_passages, n_vehicles, threshold_g, computed_at FROM _b""")
    con.register("_h", hotspots.assign(district=district, filter=flt, computed_at=now))
    con.execute("""INSERT INTO braking_hotspots SELECT district, filter, period, x_m, y_m, lon, lat, n_events,
                   n_vehicles, computed_at FROM _h""")
    if not ev.cut_through.empty:
        con.register("_s", ev.cut_through.assign(district=district, filter=flt, computed_at=now))
        con.execute("""INSERT INTO cut_through_summary SELECT district, filter, period, n_trips, n_cut_through,
                       share_cut_through, computed_at, n_vehicles, n_vehicles_cut_through FROM _s""")
        con.register("_t", ev.cut_through_streets.assign(district=district, filter=flt, computed_at=now))
        con.execute("""INSERT INTO cut_through_streets SELECT district, filter, period, road_id, n_trips,
                       n_cut_through, n_vehicles_cut_through, share_cut_through, computed_at FROM _t""")
