"""Per-road and per-group speed figures of named periods, from matched points, stored in the warehouse.

For each period the matched points (analysis.points, with the one filter) are aggregated into a
mergeable cube (geo.aggregate: link × direction × hour × day type × vehicle class, histograms,
sums, exceedance counts, exact distinct vehicles); every point figure comes from the cube's merged
arrays. Passage figures (one vehicle's traversal of one road) come from the same points.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis.filters import ALL_POINTS, PointFilter
from analysis.matchstage import Network, district_network, match_stage, months_between
from analysis.partitions import collect_period_cube, period_cube_and_passages, submit_period_cube
from analysis.points import matched_folders
from config.districts import District, Period
from config.settings import DEFAULT_RADIUS_M, P85, PASSAGE_SPEEDS
from etl.schema import transaction
from etl.warehouse import connect
from geo.aggregate import Cube, figures, sample_quantile

POINT_FIGURES = [
    "n_points",
    "n_vehicles",
    "mean_kmh",
    "p85_kmh",
    "share_at_or_over_limit",
    "share_at_or_over_limit_plus_10",
]
PASSAGE_FIGURES = ["n_passages", "passage_mean_kmh", "passage_p85_kmh", "passage_share_at_or_over_limit"]
READ_COLUMNS = [
    "trip_id",
    "seq",
    "vehicle_id",
    "gps_time",
    "vehicle_type",
    "speed_kmh",
    "road_idx",
    "seg",
    "pos",
    "direction",
    "road_pos_m",
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
    p: pd.DataFrame, group_of_road: np.ndarray, n_groups: int, limit_of_road: np.ndarray, speed: str = "mean"
) -> dict[str, np.ndarray]:
    """Per group of roads (group -1 ignored): n_passages, passage_mean_kmh, passage_p85_kmh and
    passage_share_at_or_over_limit of the passages' `speed` ('mean', 'max' or 'section'; passages
    without that speed, e.g. a section speed of one point, are left out)."""
    if speed not in PASSAGE_SPEEDS:
        raise ValueError(f"unknown passage speed {speed!r} (choose one of {', '.join(PASSAGE_SPEEDS)})")
    road = p["road_idx"].to_numpy(dtype=np.int64)
    value = p[f"{speed}_kmh"].to_numpy(dtype=float)
    g = group_of_road[road] if len(road) else np.zeros(0, np.int64)
    ok = (g >= 0) & np.isfinite(value)
    g, value, limit = g[ok], value[ok], limit_of_road[road[ok]]
    n = np.bincount(g, minlength=n_groups).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.bincount(g, weights=value, minlength=n_groups) / n, np.nan)
        share = np.where(n > 0, np.bincount(g, weights=(value >= limit).astype(float), minlength=n_groups) / n, np.nan)
    p85 = sample_quantile(g, value, n_groups, P85)  # passage speeds are continuous: the plain sample quantile
    return {"n_passages": n, "passage_mean_kmh": mean, "passage_p85_kmh": p85, "passage_share_at_or_over_limit": share}


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
    group_period_stats, road_speed_histogram, link_hour_stats, link_hour_histogram and
    analysis_runs, replacing earlier rows of the same district and period
    label (re-running is safe). Raises NothingMatched (and stores nothing) when, unfiltered, no
    period has a single matched point.

    client: a `distributed.Client` (etl.cluster.dask_client): the match stage runs month by month on
    its workers, and each period's cube is built partition-parallel (months, then piece ranges:
    analysis.partitions); the stored tables are the same bits as without it.
    """
    warehouse = Path(warehouse)
    months = sorted({m for p in periods.values() for m in months_between(p.start, p.end)})
    match_stage(warehouse, network, months, client=client)
    roads = network.roads
    n_roads = len(roads)
    road_ids = network.road_ids
    limits = network.limits_kmh
    piece_road = network.piece_road
    groups = [g for g in ("treated", "comparison") if (roads["role"] == g).any()]
    road_group = np.array([groups.index(r) if r in groups else -1 for r in roads["role"]], dtype=np.int64)
    group_limit = np.array([limits[road_group == gi].max() for gi in range(len(groups))])
    parts = {k: [] for k in ("road", "group", "hist", "cells", "lhist")}
    n_matched = {}
    con = connect(warehouse, read_only=True)  # reads only: no write lock, no view refresh
    try:
        folders = {label: matched_folders(con, warehouse, network.key, p.start, p.end) for label, p in periods.items()}
    finally:
        con.close()
    if client is not None:  # every period's month and range tasks at once
        (net,) = client.scatter([network], broadcast=True, hash=False)
        submitted = {
            label: submit_period_cube(client, net, network, folders[label], point_filter, p.start, p.end)
            for label, p in periods.items()
        }
    for label, period in periods.items():
        if client is not None:
            cube, pas, n = collect_period_cube(client, submitted.pop(label))
        else:
            cube, pas, n = period_cube_and_passages(
                folders[label], network, point_filter, period.start, period.end, READ_COLUMNS
            )
        n_matched[label] = n
        extra = {"district": network.key, "period": label, "period_start": period.start, "period_end": period.end}
        f = figures(cube, piece_road, n_roads)
        pf = passage_figures(pas, np.arange(n_roads), n_roads, limits)
        parts["road"].append(_with(pd.DataFrame({"road_id": road_ids, **f, **pf, "limit_kmh": limits}), extra))
        if groups:
            g = figures(cube, road_group[piece_road], len(groups))
            gp = passage_figures(pas, road_group, len(groups), limits)
            parts["group"].append(
                _with(pd.DataFrame({"road_group": groups, **g, **gp, "limit_kmh": group_limit}), extra)
            )
        parts["hist"].append(_with(_histogram(cube, piece_road, road_ids), extra))
        parts["cells"].append((label, period, _cube_rows(cube.cells_table(), network)))
        parts["lhist"].append((label, period, _cube_rows(cube.hist_table(), network)))
    road_stats = _blank_empty(pd.concat(parts["road"], ignore_index=True))
    road_stats["road_name"] = road_stats["road_id"].map(dict(zip(roads["road_id"], roads["name"], strict=True)))
    road_stats["role"] = road_stats["road_id"].map(dict(zip(roads["road_id"], roads["role"], strict=True)))
    group_stats = (
        _blank_empty(pd.concat(parts["group"], ignore_index=True))
        if groups
        else pd.DataFrame(
            columns=[
                "road_group",
                *POINT_FIGURES,
                *PASSAGE_FIGURES,
                "limit_kmh",
                "district",
                "period",
                "period_start",
                "period_end",
            ]
        )
    )
    order = {label: i for i, label in enumerate(periods)}
    road_stats = road_stats.sort_values(["road_id", "period"], key=lambda s: s.map(order) if s.name == "period" else s)
    result = AnalysisResult(network, periods, point_filter, road_stats.reset_index(drop=True), group_stats, n_matched)
    if sum(n_matched.values()) == 0 and not point_filter.active:
        raise NothingMatched(
            f"0 points matched to the {n_roads} roads of {network.source_path.name} within {network.radius_m:g} m "
            f"in {', '.join(f'{k} {p.start}..{p.end}' for k, p in periods.items())}: nothing stored"
        )
    if store and not point_filter.active:
        tables = {k: pd.concat(v, ignore_index=True) for k, v in parts.items() if v and k in ("road", "group", "hist")}
        _store(warehouse, network, periods, result, {**tables, "cells": parts["cells"], "lhist": parts["lhist"]})
        result.stored = True
    return result


def empty_periods(result: AnalysisResult) -> list[str]:
    """Labels of the periods in which no point matched (worth a warning)."""
    return [k for k, n in result.n_points_matched.items() if n == 0]


def _histogram(cube: Cube, group_of_piece: np.ndarray, names: np.ndarray) -> pd.DataFrame:
    """Points per group and 1 km/h bin (groups -1 left out): name, speed_bin_kmh, n_points."""
    h = cube.hist
    g = group_of_piece[h["piece"]] if len(h["piece"]) else np.zeros(0, np.int64)
    ok = g >= 0
    key = g[ok] * 1024 + h["speed_kmh"][ok].astype(np.int64)
    uniq, inv = np.unique(key, return_inverse=True)
    n = np.bincount(inv, weights=h["n_points"][ok]).astype(np.int64) if len(key) else np.zeros(0, np.int64)
    return pd.DataFrame(
        {
            "road_id": names[uniq // 1024] if len(uniq) else np.array([], dtype=object),
            "speed_bin_kmh": (uniq % 1024).astype(float),
            "n_points": n,
        }
    )


def _cube_rows(t: pa.Table, network: Network) -> pa.Table:
    """Cube rows (cells or histogram, Arrow) with the link and the road (dictionary-encoded) of each piece."""
    piece = t.column("piece").to_numpy()
    link = network.index.links.piece_link[piece].astype(np.int32)
    road = pa.DictionaryArray.from_arrays(
        pa.array(network.piece_road[piece].astype(np.int32)), pa.array(list(network.road_ids), pa.string())
    )
    return t.append_column("link_id", pa.array(link)).append_column("road_id", road)


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


def _store(warehouse: Path, network: Network, periods: dict[str, Period], result: AnalysisResult, parts: dict) -> None:
    now = dt.datetime.now()
    labels = list(periods)
    con = connect(warehouse, create=False)
    try:
        with transaction(con):
            for table in (
                "road_period_stats",
                "group_period_stats",
                "road_speed_histogram",
                "link_hour_stats",
                "link_hour_histogram",
                "analysis_runs",
            ):
                con.execute(
                    f"DELETE FROM {table} WHERE district = ? AND period IN (SELECT unnest(?::VARCHAR[]))",
                    [network.key, labels],
                )
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
            con.register("_h", parts["hist"])
            con.execute("""INSERT INTO road_speed_histogram SELECT district, road_id, period, period_start, period_end,
                           speed_bin_kmh, n_points FROM _h""")
            # The cube's rows straight from Arrow, the district and period as parameters (no per-row
            # constants, no pandas: several times cheaper for millions of rows).
            for label, p, cells in parts["cells"]:
                con.register("_c", cells)
                con.execute(
                    """INSERT INTO link_hour_stats SELECT ?, road_id, link_id, ?, ?, ?, direction, hour, day_type,
                               vehicle_class, n_points, sum_speed_kmh, n_at_or_over_limit, n_at_or_over_limit_plus_10,
                               n_vehicles FROM _c""",
                    [network.key, label, p.start, p.end],
                )
                con.unregister("_c")
            for label, p, hist in parts["lhist"]:
                con.register("_lh", hist)
                con.execute(
                    """INSERT INTO link_hour_histogram SELECT ?, road_id, link_id, ?, ?, ?, direction, hour, day_type,
                               vehicle_class, speed_kmh, n_points FROM _lh""",
                    [network.key, label, p.start, p.end],
                )
                con.unregister("_lh")
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
    finally:
        con.close()


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
