"""Speed-exceedance aggregation of matched points: per-road figures and mergeable speed histograms."""

from __future__ import annotations

import duckdb
import pyarrow as pa

# Histogram bin width: 1 km/h. ETC2.0 speeds are whole km/h, so each bin holds one speed value
# and the histogram reproduces every quantile of the raw points exactly.
SPEED_BIN_KMH = 1.0

STATS_COLUMNS = [
    "n_points", "n_vehicles", "mean_kmh", "p85_kmh", "share_at_or_over_limit", "limit_kmh",
]  # fmt: skip


def speed_statistics(con: duckdb.DuckDBPyConnection, matched: pa.Table, group_by: list[str]) -> pa.Table:
    """Figures per group of matched points.

    `matched` needs columns vehicle_key, speed_kmh (km/h), limit_kmh (km/h) and the
    `group_by` columns. Returns those columns plus n_points, n_vehicles (distinct
    pseudonymised vehicles), mean_kmh, p85_kmh (linear interpolation between order
    statistics, numpy's default), share_at_or_over_limit (fraction of points with
    speed ≥ limit, 0–1) and limit_kmh.
    """
    keys = ", ".join(group_by)
    con.register("_matched", matched)
    try:
        return con.sql(
            f"""
            SELECT {keys},
                   count(*)                                   AS n_points,
                   count(DISTINCT vehicle_key)                AS n_vehicles,
                   avg(speed_kmh)                             AS mean_kmh,
                   quantile_cont(speed_kmh, 0.85)             AS p85_kmh,
                   avg(CASE WHEN speed_kmh >= limit_kmh THEN 1.0 ELSE 0.0 END) AS share_at_or_over_limit,
                   max(limit_kmh)                             AS limit_kmh
            FROM _matched
            GROUP BY {keys}
            ORDER BY {keys}
            """
        ).to_arrow_table()
    finally:
        con.unregister("_matched")


def speed_histogram(con: duckdb.DuckDBPyConnection, matched: pa.Table, group_by: list[str]) -> pa.Table:
    """Count of points per group and 1 km/h speed bin (`speed_bin_kmh` = lower edge, km/h).

    Counts add up across any union of groups, periods or partitions: the mergeable form.
    """
    keys = ", ".join(group_by)
    con.register("_matched", matched)
    try:
        return con.sql(
            f"""
            SELECT {keys},
                   floor(speed_kmh / {SPEED_BIN_KMH}) * {SPEED_BIN_KMH} AS speed_bin_kmh,
                   count(*) AS n_points
            FROM _matched
            GROUP BY ALL
            ORDER BY ALL
            """
        ).to_arrow_table()
    finally:
        con.unregister("_matched")
