"""A period's bootstrap samples, reduced month by month: no point is held beyond its month.

Comparisons, screening and the monthly series resample vehicles (analysis.bootstrap), and every input
they need adds up across months, because a trip lies in one month (analysis.matchstage):

- points → per road, vehicle and recorded speed, how many points (`SAMPLE_COUNT`): the bootstrap's
  per-vehicle sums and histograms are sums of these counts;
- each vehicle's first point on each road (time, x, y, speed): the minimum of the months' minima,
  for the key-independent vehicle order (analysis.bootstrap.vehicle_order);
- passages, and the points inferred as sudden braking: rows of their own month, concatenated;
- the distinct (road, trip, vehicle) and, with an area, the trips with a point on a residential
  street inside it: distinct rows of each month, whose union is the period's (cut-through).

Output structures grow with the vehicles, roads and trips they describe; point data are read one
month at a time (on a Dask worker per month with a `client`: the same rows, merged in the same order).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis._partitions import month_points_and_passages, order_passages
from analysis.behaviour import inferred_braking, trips_in_area
from analysis.bootstrap import SAMPLE_COUNT
from analysis.filters import ALL_POINTS, PointFilter
from analysis.network import Network
from analysis.points import PASSAGE_SPEED_COLUMN, matched_folders
from config.districts import Period
from config.settings import DEFAULT_BRAKING_THRESHOLD_G, RESIDENTIAL_MAX_LIMIT_KMH
from etl.memory import trim_freed_memory

SAMPLE_COLUMNS = [
    "trip_id",
    "seq",
    "vehicle_id",
    "gps_time",
    "speed_kmh",
    "x_m",
    "y_m",
    "road_idx",
    "road_pos_m",
    "decel_prev_g",
    "direction",
]
FIRST_POINT_KEY = ["gps_us", "x_m", "y_m", "speed_kmh"]  # a vehicle's first point: by time, then x, y, speed


@dataclass
class PeriodSamples:
    """One period's samples for the bootstrap and the behaviour figures, each reduced month by month.

    point_samples: unit (road id), period, vehicle, speed_kmh, limit_kmh, n_points (`SAMPLE_COUNT`:
    the period's points of that vehicle on that road at that speed).
    first_points: unit, period, vehicle and its first point on that road (gps_us, x_m, y_m, speed_kmh).
    passages: the passages (analysis.points.passages) with road_id; passage_samples: those with a
    speed as bootstrap samples (unit, period, vehicle, speed_kmh, limit_kmh).
    braking_points: the points whose decel_prev_g reaches `threshold_g` (analysis.behaviour.inferred_braking),
    with road_id. road_trips: distinct road_id, trip_id, vehicle_id of the points.
    area_trips: trip_id, vehicle_id of the trips with a point on a residential street inside the area
    (analysis.behaviour.trips_in_area; None without an area).
    """

    point_samples: pd.DataFrame
    first_points: pd.DataFrame
    passages: pd.DataFrame
    passage_samples: pd.DataFrame
    braking_points: pd.DataFrame
    road_trips: pd.DataFrame
    area_trips: pd.DataFrame | None = None


@dataclass(frozen=True)
class _MonthPart:
    """One month's reduced rows, road ids as indices into the network (merged by `_merge`)."""

    counts: pd.DataFrame  # road_idx, vehicle_id, speed_kmh, n_points
    first: pd.DataFrame  # road_idx, vehicle_id, gps_us, x_m, y_m, speed_kmh
    passages: pd.DataFrame
    braking: pd.DataFrame
    road_trips: pd.DataFrame  # road_idx, trip_id, vehicle_id
    area_trips: pd.DataFrame | None


def month_samples(  # a cluster task (its name is the task's prefix on the scheduler)
    folder: str,
    network: Network,
    point_filter: PointFilter,
    start: dt.date,
    end: dt.date,
    threshold_g: float = DEFAULT_BRAKING_THRESHOLD_G,
    area=None,
) -> _MonthPart:
    """One month folder's points read and reduced (`PeriodSamples`, before the months are merged)."""
    table, pas = month_points_and_passages(folder, network, SAMPLE_COLUMNS, point_filter, start, end)
    pts = table.to_pandas()
    pts["gps_us"] = pts["gps_time"].to_numpy().astype("datetime64[us]").astype(np.int64)
    counts = (
        pts.groupby(["road_idx", "vehicle_id", "speed_kmh"], sort=True, dropna=False)
        .size()
        .rename(SAMPLE_COUNT)
        .reset_index()
    )
    first = _first_rows(pts[["road_idx", "vehicle_id", *FIRST_POINT_KEY]])
    road_trips = pts[["road_idx", "trip_id", "vehicle_id"]].drop_duplicates(["road_idx", "trip_id"])
    area_trips = None
    if area is not None:
        residential = network.limits_kmh <= RESIDENTIAL_MAX_LIMIT_KMH
        area_trips = trips_in_area(pts[residential[pts["road_idx"].to_numpy()]] if len(pts) else pts, area)
    braking = inferred_braking(pts, threshold_g).drop(columns="gps_us")
    part = _MonthPart(counts, first, pas, braking, road_trips.reset_index(drop=True), area_trips)
    del table, pts
    trim_freed_memory()  # the month's points go back to the system before the next month is read
    return part


def _first_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Each (road_idx, vehicle_id)'s first row by FIRST_POINT_KEY (ties: the earlier row), in the
    rows' own order. Vectorised: the earliest time per pair, then, only where a pair has several rows
    at that time, the rest of the key (a four-key sort of every row costs ten times as much)."""
    if rows.empty:
        return rows.reset_index(drop=True)
    vehicle, _ = pd.factorize(rows["vehicle_id"].to_numpy())
    pair, _ = pd.factorize(rows["road_idx"].to_numpy(np.int64) * (int(vehicle.max()) + 1) + vehicle)
    gps = rows["gps_us"].to_numpy(np.int64)
    earliest = np.full(int(pair.max()) + 1, np.iinfo(np.int64).max)
    np.minimum.at(earliest, pair, gps)
    candidate = np.flatnonzero(gps == earliest[pair])  # in row order
    n_at_earliest = np.bincount(pair[candidate], minlength=len(earliest))
    single = candidate[n_at_earliest[pair[candidate]] == 1]
    tied = candidate[n_at_earliest[pair[candidate]] > 1]
    if len(tied):  # the rest of the key decides; np.lexsort is stable: equal keys keep row order
        t = rows.iloc[tied]
        order = np.lexsort((t["speed_kmh"].to_numpy(), t["y_m"].to_numpy(), t["x_m"].to_numpy(), pair[tied]))
        _, first = np.unique(pair[tied][order], return_index=True)
        single = np.concatenate([single, tied[order[first]]])
    return rows.iloc[np.sort(single)].reset_index(drop=True)


def _merge(parts: list[_MonthPart], network: Network, label: str, with_area: bool) -> PeriodSamples:
    """The months' parts (in month order) as the period's samples."""
    road_ids, limits = network.road_ids, network.limits_kmh
    cat = lambda name: pd.concat([getattr(p, name) for p in parts], ignore_index=True)  # noqa: E731
    if parts:
        keys = ["road_idx", "vehicle_id", "speed_kmh"]
        counts = cat("counts").groupby(keys, sort=True, dropna=False)[SAMPLE_COUNT].sum()
        counts = counts.reset_index()
        first, road_trips, braking = _first_rows(cat("first")), cat("road_trips"), cat("braking")
    else:
        idx = pd.Series([], dtype=np.int64)
        counts = pd.DataFrame({"road_idx": idx, "vehicle_id": idx, "speed_kmh": pd.Series([], dtype=float)})
        counts[SAMPLE_COUNT] = idx
        first = counts[["road_idx", "vehicle_id"]].assign(gps_us=idx, x_m=0.0, y_m=0.0, speed_kmh=0.0).iloc[:0]
        road_trips = pd.DataFrame({"road_idx": idx, "trip_id": idx, "vehicle_id": idx})
        braking = pd.DataFrame({c: [] for c in [*SAMPLE_COLUMNS, "road_idx"]})
    area_trips = None
    if with_area:
        area_trips = (
            cat("area_trips").drop_duplicates("trip_id").reset_index(drop=True)
            if parts
            else pd.DataFrame({"trip_id": pd.Series([], dtype=np.int64), "vehicle_id": pd.Series([], dtype=np.int64)})
        )
    pas = order_passages([p.passages for p in parts])
    road_of = lambda idx: road_ids[np.asarray(idx, dtype=np.int64)]  # noqa: E731
    point_samples = pd.DataFrame(
        {
            "unit": road_of(counts["road_idx"]),
            "period": label,
            "vehicle": counts["vehicle_id"].to_numpy(),
            "speed_kmh": counts["speed_kmh"].to_numpy(float),
            "limit_kmh": limits[counts["road_idx"].to_numpy(np.int64)],
            SAMPLE_COUNT: counts[SAMPLE_COUNT].to_numpy(np.int64),
        }
    )
    first_points = pd.DataFrame(
        {
            "unit": road_of(first["road_idx"]),
            "period": label,
            "vehicle": first["vehicle_id"].to_numpy(),
            **{c: first[c].to_numpy() for c in FIRST_POINT_KEY},
        }
    )
    pas["road_id"] = road_of(pas["road_idx"]) if len(pas) else np.array([], dtype=object)
    timed = pas[np.isfinite(pas[PASSAGE_SPEED_COLUMN].to_numpy(float))] if len(pas) else pas  # passages with a speed
    passage_samples = pd.DataFrame(
        {
            "unit": timed["road_id"],
            "period": label,
            "vehicle": timed["vehicle_id"],
            "speed_kmh": timed[PASSAGE_SPEED_COLUMN],
            "limit_kmh": limits[timed["road_idx"].to_numpy(dtype=np.int64)] if len(timed) else np.array([], float),
        }
    )
    braking = braking.assign(road_id=road_of(braking["road_idx"]) if len(braking) else np.array([], dtype=object))
    road_trips = pd.DataFrame(
        {
            "road_id": road_of(road_trips["road_idx"]),
            "trip_id": road_trips["trip_id"].to_numpy(),
            "vehicle_id": road_trips["vehicle_id"].to_numpy(),
        }
    )
    return PeriodSamples(point_samples, first_points, pas, passage_samples, braking, road_trips, area_trips)


def samples_of_folders(  # noqa: PLR0913 -- the period's reading: folders, network, label, period and what it keeps
    folders: list[Path],
    network: Network,
    label: str,
    period: Period,
    point_filter: PointFilter = ALL_POINTS,
    *,
    threshold_g: float = DEFAULT_BRAKING_THRESHOLD_G,
    area=None,
    client=None,
) -> PeriodSamples:
    """`PeriodSamples` of the match stage's month folders, read month by month (no warehouse
    connection: runs on a worker too; with `client`, each month on the cluster's workers)."""
    args = (network, point_filter, period.start, period.end, threshold_g, area)
    if client is None:
        parts = [month_samples(str(f), *args) for f in folders]
    else:
        futures = [client.submit(month_samples, str(Path(f).absolute()), *args, pure=False) for f in folders]
        parts = client.gather(futures)
    samples = _merge(parts, network, label, area is not None)
    del parts
    trim_freed_memory()
    return samples


def period_samples(  # noqa: PLR0913 -- as samples_of_folders, from the warehouse's list of months
    con,
    warehouse: Path,
    network: Network,
    label: str,
    period: Period,
    point_filter: PointFilter = ALL_POINTS,
    *,
    threshold_g: float = DEFAULT_BRAKING_THRESHOLD_G,
    area=None,
    client=None,
) -> PeriodSamples:
    """One period's `PeriodSamples` through the one reader (analysis.points) and the one filter."""
    folders = matched_folders(con, warehouse, network.key, period.start, period.end)
    return samples_of_folders(
        folders, network, label, period, point_filter, threshold_g=threshold_g, area=area, client=client
    )
