"""The one reader of matched points (and their trips, events and passages), with the one filter.

Everything that computes a figure — the cube and per-road figures, before/after with the
bootstrap and DiD, braking, cut-through, the monthly series, screening — reads the match stage's
stored output through `read_points` (with `analysis.filters.PointFilter.expression`), so two
analyses with the same period and filter see exactly the same points.

A passage is one vehicle's traversal of one road: a maximal run of consecutive matched points of
one trip on the same road (points matched to no road are skipped, so GPS noise off the road does
not split a traversal). Its speeds: the mean and the maximum of its points' instantaneous speeds
and, with two points or more, the section speed = distance along the road between its first and
last point / time between them (km/h), as roadlabo/ETC measures.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from analysis.filters import ALL_POINTS, PointFilter
from analysis.matchstage import EVENTS_SCHEMA, POINTS_SCHEMA, TRIPS_SCHEMA, months_between
from config.settings import PASSAGE_SPEED_DECIMALS


def matched_folders(
    con: duckdb.DuckDBPyConnection, warehouse: Path, district: str, start: dt.date, end: dt.date
) -> list[Path]:
    """The match stage's folders of `district` for the months that can hold days start..end."""
    months = months_between(start, end)
    rows = con.execute(
        "SELECT year, month, folder FROM match_state WHERE district = ? ORDER BY year, month", [district]
    ).fetchall()
    return [Path(warehouse) / f for y, m, f in rows if (y, m) in months]


def read_matched_files(folders: list[Path], name: str, schema: pa.Schema, columns: list[str] | None, expr) -> pa.Table:
    """Read `name`.parquet (points, trips or events) of match-stage folders with a filter expression."""
    files = [str(f / f"{name}.parquet") for f in folders if (f / f"{name}.parquet").exists()]
    cols = columns or schema.names
    if not files:
        return schema.empty_table().select(cols)
    return ds.dataset(files, format="parquet", schema=schema).to_table(columns=cols, filter=expr)


def points_expression(point_filter: PointFilter, start: dt.date, end: dt.date, on_network: bool = True):
    """The filter expression of `read_points` (period, filter, and on the network)."""
    expr = point_filter.expression(start, end)
    if on_network:
        net = pc.field("road_idx") >= 0
        expr = net if expr is None else expr & net
    return expr


def read_points(
    con: duckdb.DuckDBPyConnection,
    warehouse: Path,
    district: str,
    start: dt.date,
    end: dt.date,
    point_filter: PointFilter = ALL_POINTS,
    columns: list[str] | None = None,
    on_network: bool = True,
) -> pa.Table:
    """Matched points of `district` with GPS時刻 on days start..end (inclusive) kept by the filter.

    on_network: only points matched to a road (else also the trip points off the network inside
    the network's grown box). Columns as documented for the view matched_points.
    """
    expr = points_expression(point_filter, start, end, on_network)
    return read_matched_files(
        matched_folders(con, warehouse, district, start, end), "points", POINTS_SCHEMA, columns, expr
    )


def read_trips(
    con: duckdb.DuckDBPyConnection, warehouse: Path, district: str, start: dt.date, end: dt.date
) -> pa.Table:
    """Trips touching the network in the months of start..end: first / last point of the whole trip."""
    return read_matched_files(matched_folders(con, warehouse, district, start, end), "trips", TRIPS_SCHEMA, None, None)


def read_events(
    con: duckdb.DuckDBPyConnection,
    warehouse: Path,
    district: str,
    start: dt.date,
    end: dt.date,
    point_filter: PointFilter = ALL_POINTS,
) -> pa.Table:
    """挙動履歴 braking events on the network in start..end; the filter's time band and day type apply
    (events carry no vehicle class or road direction)."""
    expr = point_filter.without_vehicle_and_direction().expression(start, end)
    base = (pc.field("road_idx") >= 0) & pc.field("is_braking")
    expr = base if expr is None else expr & base
    return read_matched_files(
        matched_folders(con, warehouse, district, start, end), "events", EVENTS_SCHEMA, None, expr
    )


def passages(points: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """One row per passage of matched points (columns trip_id, seq, vehicle_id, road_idx, speed_kmh,
    gps_time, road_pos_m; any order): road_idx, vehicle_id, trip_id, n_points, mean_kmh, max_kmh,
    section_kmh (NaN with one point or no time between first and last), first_time. Speeds in
    km/h rounded to PASSAGE_SPEED_DECIMALS (0.1 km/h).
    """
    df = points.to_pandas() if isinstance(points, pa.Table) else points
    cols = ["road_idx", "vehicle_id", "trip_id", "n_points", "mean_kmh", "max_kmh", "section_kmh", "first_time"]
    if len(df) == 0:
        return pd.DataFrame({c: [] for c in cols})
    order = np.lexsort((df["seq"].to_numpy(), df["trip_id"].to_numpy()))
    trip = df["trip_id"].to_numpy()[order]
    road = df["road_idx"].to_numpy()[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (trip[1:] != trip[:-1]) | (road[1:] != road[:-1])
    pid = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(order)] - 1
    speed = df["speed_kmh"].to_numpy(dtype=np.float64)[order]
    n = np.diff(np.r_[starts, len(order)])
    t_us = df["gps_time"].to_numpy().astype("datetime64[us]").astype(np.int64)[order]
    pos = df["road_pos_m"].to_numpy(dtype=np.float64)[order]
    dt_s = (t_us[ends] - t_us[starts]) / 1e6
    with np.errstate(invalid="ignore", divide="ignore"):
        section = np.where((n >= 2) & (dt_s > 0), np.abs(pos[ends] - pos[starts]) / dt_s * 3.6, np.nan)
    return pd.DataFrame(
        {
            "road_idx": road[starts],
            "vehicle_id": df["vehicle_id"].to_numpy()[order][starts],
            "trip_id": trip[starts],
            "n_points": n,
            "mean_kmh": np.round(np.bincount(pid, weights=speed) / n, PASSAGE_SPEED_DECIMALS),
            "max_kmh": np.round(np.maximum.reduceat(speed, starts), PASSAGE_SPEED_DECIMALS),
            "section_kmh": np.round(section, PASSAGE_SPEED_DECIMALS),
            "first_time": df["gps_time"].to_numpy()[order][starts],
        }
    )
