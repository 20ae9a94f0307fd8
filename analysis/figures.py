"""Per-road and per-group speed figures of named periods, from matched points, stored in the warehouse.

For each period the matched points (analysis.points, with the one filter) are aggregated into a
mergeable cube (geo.aggregate: link × direction × hour × day type × vehicle class, histograms,
sums, exceedance counts, exact distinct vehicles); every point figure comes from the cube's merged
arrays. Passage figures (one vehicle's traversal of one road) come from the same points.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis._background import OneBehind, overlap_enabled
from analysis._cube_files import CubeFileWriter, sweep_unlisted
from analysis._partitions import MonthReducer, collect_period_cube, passage_counts, submit_period_cube
from analysis.filters import ALL_POINTS, PointFilter
from analysis.matchstage import match_stage
from analysis.network import Network, district_network
from analysis.points import matched_folders
from analysis.stages import forget_stage
from config.districts import District, Period
from config.settings import DEFAULT_RADIUS_M, P85, PASSAGE_SPEEDS
from etl.schema import transaction
from etl.warehouse import connect, refresh_views
from geo.aggregate import Cube, FigureSums, sample_quantile
from geo.calendar import months_between
from geo.kernels import N_BIN

POINT_FIGURES = [
    "n_points",
    "n_vehicles",
    "mean_kmh",
    "p85_kmh",
    "share_at_or_over_limit",
    "share_at_or_over_limit_plus_10",
]
PASSAGE_FIGURES = [
    "n_passages",
    "passage_mean_kmh",
    "passage_p85_kmh",
    "passage_share_at_or_over_limit",
    "passage_spot_mean_kmh",
]


@dataclass
class AnalysisResult:
    network: Network
    periods: dict[str, Period]
    point_filter: PointFilter
    road_stats: pd.DataFrame  # one row per road and period label: POINT_FIGURES, PASSAGE_FIGURES, limit_kmh …
    group_stats: pd.DataFrame  # one row per road group (treated, comparison) and period label
    n_points_matched: dict[str, int] = field(default_factory=dict)
    stored: bool = False

    @property
    def roads(self):
        return self.network.roads

    @property
    def district_key(self) -> str:
        return self.network.key


class NothingMatched(ValueError):
    """No point of any period lies on the network: nothing was stored."""


def passage_figures(
    p: pd.DataFrame | dict,
    group_of_road: np.ndarray,
    n_groups: int,
    limit_of_road: np.ndarray,
    speed: str = PASSAGE_SPEEDS[0],
) -> dict[str, np.ndarray]:
    """Per group of roads (group -1 ignored): n_passages, passage_mean_kmh, passage_p85_kmh and
    passage_share_at_or_over_limit of the passages' `speed` (default 'section', the section travel
    speed; 'mean' or 'max' of their spot speeds; passages without that speed are left out), and
    passage_spot_mean_kmh, the mean over the same passages of their mean spot speed (sensitivity).

    p: the passages (analysis.points.passages), or their counts per road and speed
    (analysis._partitions.passage_counts: what a period reduced month by month keeps). The mean is
    taken over the counts in road then speed order, so it does not depend on how the passages
    were partitioned."""
    if speed not in PASSAGE_SPEEDS:
        raise ValueError(f"unknown passage speed {speed!r} (choose one of {', '.join(PASSAGE_SPEEDS)})")
    counts = passage_counts(p, speed) if isinstance(p, pd.DataFrame) else p
    road, value, k = counts["road_idx"], counts["value"], counts["n"]
    g = group_of_road[road] if len(road) else np.zeros(0, np.int64)
    ok = g >= 0
    g, value, k, limit = g[ok], value[ok], k[ok], limit_of_road[road[ok]]
    n = np.bincount(g, weights=k, minlength=n_groups).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.bincount(g, weights=value * k, minlength=n_groups) / n, np.nan)
        share = np.where(n > 0, np.bincount(g, weights=(value >= limit) * k, minlength=n_groups) / n, np.nan)
    # passage speeds are continuous: the plain sample quantile of the values, each counted k times
    p85 = sample_quantile(g, value, n_groups, P85, count=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        spot_tenths = np.bincount(g, weights=counts["spot_sum"][ok], minlength=n_groups)  # exact: integers
        spot = np.where(n > 0, spot_tenths / 10 / n, np.nan)
    return {
        "n_passages": n,
        "passage_mean_kmh": mean,
        "passage_p85_kmh": p85,
        "passage_share_at_or_over_limit": share,
        "passage_spot_mean_kmh": spot,
    }


def analyze(
    warehouse: str | Path,
    network: Network,
    periods: dict[str, Period],
    *,
    point_filter: PointFilter = ALL_POINTS,
    store: bool = True,
    client=None,
) -> AnalysisResult:
    """Per-road and per-group figures of each period, from the network's matched points.

    Matches what is missing first (the match stage; current months are not read again). With an
    active `point_filter` the figures are returned but not stored (the stored tables hold the
    figures of all points, which maps and reports publish). Stores road_period_stats,
    group_period_stats, road_speed_histogram, analysis_runs and the period cube's rows (the Parquet
    files of figure_files, which the views link_hour_stats and link_hour_histogram read), replacing
    earlier rows of the same district and period label (re-running is safe). Raises NothingMatched
    (and stores nothing) when, unfiltered, no period has a single matched point.

    client: a `distributed.Client` (etl.cluster.dask_client): the match stage runs month by month on
    its workers, and each period's cube is built partition-parallel (months, then piece ranges:
    analysis._partitions); the stored tables are the same bits as without it.
    """
    warehouse = Path(warehouse)
    tallies = period_tallies(warehouse, network, periods, point_filter, client)
    con = connect(warehouse, create=False) if store and not point_filter.active else None
    files: list[tuple[str, Period, CubeFileWriter]] = []  # the cube files written by this run
    try:
        try:
            with transaction(con) if con is not None else contextlib.nullcontext():
                if con is not None:
                    _delete_stored(con, network, periods)
                parts, n_matched = _reduce_periods(tallies, network, periods, warehouse if con else None, files)
                result = _result(network, periods, point_filter, parts, n_matched)
                if sum(n_matched.values()) == 0 and not point_filter.active:
                    raise NothingMatched(
                        f"0 points matched to the {len(network.roads)} roads of {network.source_path.name} within "
                        f"{network.radius_m:g} m in "
                        f"{', '.join(f'{k} {p.start}..{p.end}' for k, p in periods.items())}: nothing stored"
                    )
                if con is not None:
                    _insert_stats(con, network, periods, result, pd.concat(parts["hist"], ignore_index=True))
                    _record_cube_files(con, warehouse, network, files)
                    result.stored = True
        except BaseException:  # nothing of this run stays: figure_files never named its folders
            for _, _, writer in files:
                writer.discard()
            raise
        if con is not None:  # the folders this run replaced, and any a killed run left
            sweep_unlisted(con, warehouse)
    finally:
        if con is not None:
            con.close()
        for t in tallies.values():
            t.close()
    return result


def _record_cube_files(con, warehouse: Path, network: Network, files: list) -> None:
    """List this run's cube folders in figure_files and point the views at them (in the storing transaction)."""
    now = dt.datetime.now()
    for label, period, writer in files:
        con.execute(
            "INSERT INTO figure_files VALUES (?, ?, ?, ?, ?, ?)",
            [network.key, label, period.start, period.end, writer.folder.as_posix(), now],
        )
    refresh_views(con, warehouse, in_transaction=True)


def _road_groups(network: Network) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The road groups present (treated, comparison), each road's group (-1 none), each group's limit."""
    roads, limits = network.roads, network.limits_kmh
    groups = [g for g in ("treated", "comparison") if (roads["role"] == g).any()]
    road_group = np.array([groups.index(r) if r in groups else -1 for r in roads["role"]], dtype=np.int64)
    return groups, road_group, np.array([limits[road_group == gi].max() for gi in range(len(groups))])


def _reduce_periods(
    tallies: dict, network: Network, periods: dict[str, Period], warehouse: Path | None, files: list
) -> tuple[dict, dict]:
    """Each period's figures from its cube, range by range (PeriodCube.ranges); with a `warehouse`
    the cube's rows are written as they come into a new folder (analysis._cube_files), appended to
    `files` as (label, period, writer) before its first row, so that the caller can remove it."""
    n_roads, road_ids, limits, piece_road = len(network.roads), network.road_ids, network.limits_kmh, network.piece_road
    groups, road_group, group_limit = _road_groups(network)
    parts = {k: [] for k in ("road", "group", "hist")}
    n_matched = {}
    for label, period in periods.items():
        res = tallies[label]
        n_matched[label] = res.n_points
        extra = {"district": network.key, "period": label, "period_start": period.start, "period_end": period.end}
        road_sums = group_sums = None
        hist = np.zeros(n_roads * N_BIN, np.int64)
        writer = None
        if warehouse is not None:
            writer = CubeFileWriter(warehouse, network.index.links.piece_link, piece_road, road_ids)
            files.append((label, period, writer))
        # each range written in the background while the next is merged (`OneBehind`): the
        # Parquet encoder releases the GIL
        with OneBehind(writer is not None and overlap_enabled()) as behind:
            for cube in res.ranges():
                road_sums = _added(road_sums, FigureSums.of(cube, piece_road, n_roads))
                group_sums = _added(group_sums, FigureSums.of(cube, road_group[piece_road], len(groups)))
                hist += _histogram_counts(cube, piece_road, n_roads)
                if writer is not None:
                    behind.submit(writer.add, cube)
            if writer is not None:
                behind.submit(writer.close)
        road_sums = road_sums or FigureSums.of(Cube.empty(), piece_road, n_roads)
        group_sums = group_sums or FigureSums.of(Cube.empty(), road_group[piece_road], len(groups))
        pf = passage_figures(res.passages, np.arange(n_roads), n_roads, limits)
        road = pd.DataFrame({"road_id": road_ids, **road_sums.figures(), **pf, "limit_kmh": limits})
        parts["road"].append(_with(road, extra))
        if groups:
            gp = passage_figures(res.passages, road_group, len(groups), limits)
            group = pd.DataFrame({"road_group": groups, **group_sums.figures(), **gp, "limit_kmh": group_limit})
            parts["group"].append(_with(group, extra))
        parts["hist"].append(_with(_histogram_frame(hist, road_ids), extra))
    return parts, n_matched


def _added(total: FigureSums | None, part: FigureSums) -> FigureSums:
    return part if total is None else total + part


def _result(network: Network, periods, point_filter, parts: dict, n_matched: dict) -> AnalysisResult:
    roads = network.roads
    road_stats = _blank_empty(pd.concat(parts["road"], ignore_index=True))
    road_stats["road_name"] = road_stats["road_id"].map(dict(zip(roads["road_id"], roads["name"], strict=True)))
    road_stats["role"] = road_stats["road_id"].map(dict(zip(roads["road_id"], roads["role"], strict=True)))
    if parts["group"]:
        group_stats = _blank_empty(pd.concat(parts["group"], ignore_index=True))
    else:
        extra = ["limit_kmh", "district", "period", "period_start", "period_end"]
        group_stats = pd.DataFrame(columns=["road_group", *POINT_FIGURES, *PASSAGE_FIGURES, *extra])
    order = {label: i for i, label in enumerate(periods)}
    road_stats = road_stats.sort_values(["road_id", "period"], key=lambda s: s.map(order) if s.name == "period" else s)
    return AnalysisResult(network, periods, point_filter, road_stats.reset_index(drop=True), group_stats, n_matched)


def period_tallies(
    warehouse: Path, network: Network, periods: dict[str, Period], point_filter: PointFilter, client=None
) -> dict[str, tuple[Cube, dict, int]]:
    """Every period's (cube, passage counts, number of points), month by month (analysis._partitions).

    Without a client the match stage runs fused with the reduction: a month matched now is
    reduced while its points are in memory, a current one read back (needed columns only). With
    one, the months are matched on the cluster, then reduced there (months, then piece ranges)."""
    months = sorted({m for p in periods.values() for m in months_between(p.start, p.end)})
    if client is None:
        reducer = MonthReducer(network, periods, point_filter)
        match_stage(warehouse, network, months, on_month=reducer)
        return reducer.results()
    match_stage(warehouse, network, months, client=client)
    con = connect(warehouse, read_only=True)  # reads only: no write lock, no view refresh
    try:
        folders = {label: matched_folders(con, warehouse, network.key, p.start, p.end) for label, p in periods.items()}
    finally:
        con.close()
    (net,) = client.scatter([network], broadcast=True, hash=False)
    submitted = {  # every period's month and range tasks at once
        label: submit_period_cube(client, net, network, folders[label], point_filter, p.start, p.end)
        for label, p in periods.items()
    }
    return {label: collect_period_cube(client, submitted[label]) for label in periods}


def empty_periods(result: AnalysisResult) -> list[str]:
    """Labels of the periods in which no point matched (worth a warning)."""
    return [k for k, n in result.n_points_matched.items() if n == 0]


def _histogram_counts(cube: Cube, group_of_piece: np.ndarray, n_groups: int) -> np.ndarray:
    """Points per group and 1 km/h bin (groups -1 left out), as a flat (n_groups * N_BIN) array."""
    h = cube.hist
    g = group_of_piece[h["piece"]] if len(h["piece"]) else np.zeros(0, np.int64)
    ok = g >= 0
    key = g[ok] * N_BIN + h["speed_kmh"][ok].astype(np.int64)
    return np.bincount(key, weights=h["n_points"][ok], minlength=n_groups * N_BIN).astype(np.int64)


def _histogram_frame(counts: np.ndarray, names: np.ndarray) -> pd.DataFrame:
    """The non-empty (group, bin) counts of `_histogram_counts`: name, speed_bin_kmh, n_points."""
    at = np.flatnonzero(counts)
    return pd.DataFrame(
        {
            "road_id": names[at // N_BIN] if len(at) else np.array([], dtype=object),
            "speed_bin_kmh": (at % N_BIN).astype(float),
            "n_points": counts[at],
        }
    )


def _blank_empty(df: pd.DataFrame) -> pd.DataFrame:
    """Roads or groups without points (passages): counts 0, figures empty (NaN)."""
    for n_col, cols in (("n_points", POINT_FIGURES[2:]), ("n_passages", PASSAGE_FIGURES[1:])):
        df.loc[df[n_col] == 0, cols] = np.nan
    return df


def _with(df: pd.DataFrame, extra: dict) -> pd.DataFrame:
    for k, v in extra.items():
        df[k] = v
    return df


_STAT_COLUMNS = ", ".join([*POINT_FIGURES, *PASSAGE_FIGURES, "limit_kmh"])


def _delete_stored(con, network: Network, periods: dict[str, Period]) -> None:
    """Earlier rows of the district and period labels (inside the storing transaction)."""
    forget_stage(con, network.key, "analyze")
    for table in (
        "road_period_stats",
        "group_period_stats",
        "road_speed_histogram",
        "figure_files",
        "analysis_runs",
    ):
        con.execute(
            f"DELETE FROM {table} WHERE district = ? AND period IN (SELECT unnest(?::VARCHAR[]))",
            [network.key, list(periods)],
        )


def _insert_stats(con, network: Network, periods: dict[str, Period], result: AnalysisResult, hist) -> None:
    """The figures of every period (the cube rows are in already), inside the storing transaction."""
    now = dt.datetime.now()
    con.register("_rs", result.road_stats)
    con.execute(
        f"""INSERT INTO road_period_stats SELECT district, road_id, road_name, role, period, period_start,
                    period_end, {_STAT_COLUMNS}, ?::TIMESTAMP FROM _rs""",
        [now],
    )
    if len(result.group_stats):
        con.register("_gs", result.group_stats)
        con.execute(
            f"""INSERT INTO group_period_stats SELECT district, road_group, period, period_start, period_end,
                        {_STAT_COLUMNS}, ?::TIMESTAMP FROM _gs""",
            [now],
        )
    con.register("_h", hist)
    con.execute("""INSERT INTO road_speed_histogram SELECT district, road_id, period, period_start, period_end,
                   speed_bin_kmh, n_points FROM _h""")
    for label, p in periods.items():
        con.execute(
            "INSERT INTO analysis_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                network.key,
                label,
                p.start,
                p.end,
                network.fingerprint,
                network.radius_m,
                str(network.source_path),
                result.n_points_matched[label],
                now,
            ],
        )


def analyze_district(
    warehouse: str | Path,
    district: District,
    periods: dict[str, Period] | None = None,
    radius_m: float = DEFAULT_RADIUS_M,
    point_filter: PointFilter = ALL_POINTS,
    store: bool = True,
    client=None,
) -> AnalysisResult:
    """`analyze` with the district's network and roles; periods default to every named period."""
    periods = dict(district.periods) if periods is None else periods
    return analyze(
        warehouse, district_network(district, radius_m), periods, point_filter=point_filter, store=store, client=client
    )
