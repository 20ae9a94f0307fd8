"""Warehouse schema: every table's DDL and every view's documented columns, in one place.

Tables are created by `create_tables` (idempotent: ``CREATE TABLE IF NOT EXISTS``, columns added
with ``ADD COLUMN IF NOT EXISTS``); writers change them inside `transaction`, so a failure leaves
the previous rows. docs/warehouse.md is generated from these definitions (`make docs`).
"""

from __future__ import annotations

import re
from contextlib import contextmanager, suppress

import duckdb
import pyarrow as pa

from etl.spec import BEHAVIOR_DEFAULT, STYLE_1_2, STYLE_1_3, Layout


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection):
    """BEGIN … COMMIT around the block; ROLLBACK (and re-raise) when it fails. A COMMIT that fails (a
    full disk: DuckDB cannot write its WAL) has already rolled back: its error is raised as it is."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        with suppress(duckdb.Error):  # the transaction may be gone already (a failed statement ended it)
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


# ---------------------------------------------------------------------------------------------
# Views over the Parquet store and the ingest's bookkeeping tables


def _spec_doc(c) -> str:
    unit = f" [{c.unit}]" if c.unit else ""
    return f"{c.index}: {c.name_ja}{unit}: {c.meaning}"


# The columns every earlier consumer reads, with their types kept (the view casts to them).
LEGACY_TYPES = {"vehicle_type": "INTEGER", "vehicle_use": "INTEGER", "trip_no": "INTEGER"}


def _layout_columns(layout: Layout, first: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    cols = dict(first)
    for c in layout.columns:
        if c.type == "id" or c.name in cols:
            continue
        cols[c.name] = (LEGACY_TYPES.get(c.name, c.sql_type) if layout is STYLE_1_2 else c.sql_type, _spec_doc(c))
    return cols


ID_COLUMNS = {
    "vehicle_key": (
        "VARCHAR",
        "HMAC-SHA-256 pseudonym of 運行ID (first 128 bits, 32 hex chars); the raw ID is never stored",
    ),
    "vehicle_id": ("BIGINT", "first 8 bytes of the same HMAC digest as a signed int64 (fast distinct counts)"),
}

# Column documentation of every view and table: name -> (type, unit/meaning). Also used by docs.
PROBE_POINTS_COLUMNS: dict[str, tuple[str, str]] = {
    "operation_date": ("DATE", "運行日"),
    **ID_COLUMNS,
    "vehicle_type": ("INTEGER", "自動車の種別: 0 軽二輪, 1 大型, 2 普通, 3 小型, 4 軽自動車"),
    "vehicle_use": ("INTEGER", "自動車の用途: 0 未使用, 1 乗用, 2 貨物, 3 特殊, 4 乗合"),
    "gps_time": ("TIMESTAMP", "GPS時刻, JST wall-clock time (no time zone stored); 12-digit times padded with :00"),
    "trip_no": ("INTEGER", "トリップ番号"),
    "lon": ("DOUBLE", "longitude as recorded, degrees, JGD2011"),
    "lat": ("DOUBLE", "latitude as recorded, degrees, JGD2011"),
    "x_m": ("DOUBLE", "easting in metres, EPSG:6677 (JGD2011 plane rectangular IX), from lon/lat"),
    "y_m": ("DOUBLE", "northing in metres, EPSG:6677"),
    "speed_kmh": ("DOUBLE", "速度, km/h"),
    "mesh_code": ("VARCHAR", "2次メッシュコード as delivered"),
    "file_id": ("VARCHAR", "source file (manifest.file_id)"),
    "line_no": ("BIGINT", "1-based line in the source CSV member"),
    "member": ("VARCHAR", "ZIP member name ('' for plain files)"),
    "point_key": (
        "BIGINT",
        "64-bit hash of (operation_date, vehicle_key, trip_no, gps_time, lon, lat, speed_kmh), the fields "
        "that make two points the same: an exact duplicate is stored once (a key match is confirmed on the fields)",
    ),
}
# Headings, time gaps and decelerations are not stored: the match stage sorts each month's trips and
# derives them where they are used (a trip crosses meshes and files, so no file can hold them).
PROBE_POINTS_COLUMNS = _layout_columns(STYLE_1_2, PROBE_POINTS_COLUMNS)
PROBE_POINTS_COLUMNS.update(
    {
        "year": ("INTEGER", "partition: year of operation_date"),
        "month": ("INTEGER", "partition: month of operation_date"),
        "mesh2": (
            "INTEGER",
            "2次メッシュ (JIS X 0410) of the point's own lon/lat (a delivered ZIP holds one mesh and day, so a "
            "point file's statistics mostly cover one mesh)",
        ),
    }
)

DUPLICATES_TABLE = "point_duplicates"
# point_duplicates has the columns of probe_points: the skipped copies, each with its own file_id / line_no.

TRIPS_COLUMNS = _layout_columns(
    STYLE_1_3,
    {
        "operation_date": ("DATE", "運行日 (join key with probe_points)"),
        **ID_COLUMNS,
        "trip_no": ("INTEGER", "トリップ番号 (join key)"),
    },
)
TRIPS_COLUMNS.update(
    {
        "file_id": ("VARCHAR", "source file (manifest.file_id)"),
        "member": ("VARCHAR", "ZIP member name"),
        "line_no": ("BIGINT", "1-based line in the member (a header row counts as line 1)"),
        "year": ("INTEGER", "partition: year of operation_date"),
        "month": ("INTEGER", "partition: month of operation_date"),
    }
)


def behavior_columns(layout: Layout = BEHAVIOR_DEFAULT) -> dict[str, tuple[str, str]]:
    cols = _layout_columns(layout, {"operation_date": ("DATE", "運行日"), **ID_COLUMNS})
    cols.update(
        {
            "x_m": ("DOUBLE", "easting in metres, EPSG:6677"),
            "y_m": ("DOUBLE", "northing in metres, EPSG:6677"),
            "file_id": ("VARCHAR", "source file (manifest.file_id)"),
            "member": ("VARCHAR", "ZIP member name"),
            "line_no": ("BIGINT", "1-based line in the member"),
            "year": ("INTEGER", "partition: year of operation_date"),
            "month": ("INTEGER", "partition: month of operation_date"),
        }
    )
    return cols


QUARANTINE_COLUMNS: dict[str, tuple[str, str]] = {
    "file_id": ("VARCHAR", "source file (manifest.file_id)"),
    "source_path": ("VARCHAR", "path of the delivered file at ingest"),
    "format": ("VARCHAR", "様式1-2 | 様式1-3 | 挙動履歴"),
    "member": ("VARCHAR", "ZIP member name ('' for plain files)"),
    "line_no": (
        "BIGINT",
        "1-based line (record) in the member; a record ends only at the line ending the file uses (CRLF or LF)",
    ),
    "reason": ("VARCHAR", "validation rule that failed (etl/validate.py; listed in docs/warehouse.md)"),
    "raw_text": (
        "VARCHAR",
        "the line as delivered with the 運行ID replaced by its pseudonym; for a line with the wrong number "
        "of fields (the ID's position unknown) every non-empty field is replaced by its pseudonym; in a record "
        "broken by a stray CR / LF (shown ␍ ␊) every piece between commas and breaks is, a NUL is shown ␀",
    ),
}

MANIFEST_COLUMNS: dict[str, tuple[str, str]] = {
    "file_id": ("VARCHAR", "first 20 hex chars of sha256"),
    "source_path": ("VARCHAR", "path at ingest (absolute)"),
    "size_bytes": ("BIGINT", "bytes"),
    "sha256": ("VARCHAR", "SHA-256 of the delivered file's bytes"),
    "format": ("VARCHAR", "様式1-2 | 様式1-3 | 挙動履歴 ('' when unreadable)"),
    "rows_read": ("BIGINT", "data lines read (header rows excluded)"),
    "rows_stored": ("BIGINT", "lines stored"),
    "rows_quarantined": ("BIGINT", "lines in quarantine"),
    "status": ("VARCHAR", "ok | failed | replaced (by a changed version with --replace, or by --rekey)"),
    "message": ("VARCHAR", "reason when failed"),
    "ingested_at": ("TIMESTAMP", "local time of the commit"),
    "rows_duplicate": (
        "BIGINT",
        "exact duplicate points not stored again (same operation date, vehicle, trip, GPS時刻, lon, lat, "
        "speed already stored from this or another file; kept in point_duplicates)",
    ),
}

MANIFEST_DDL = """
CREATE TABLE IF NOT EXISTS manifest (
    file_id VARCHAR, source_path VARCHAR, size_bytes BIGINT, sha256 VARCHAR, format VARCHAR,
    rows_read BIGINT, rows_stored BIGINT, rows_quarantined BIGINT, status VARCHAR, message VARCHAR,
    ingested_at TIMESTAMP
);
ALTER TABLE manifest ADD COLUMN IF NOT EXISTS rows_duplicate BIGINT DEFAULT 0;
CREATE TABLE IF NOT EXISTS ingest_runs (
    started_at TIMESTAMP, finished_at TIMESTAMP, files_ok BIGINT, files_skipped BIGINT, files_failed BIGINT,
    rows_read BIGINT, rows_stored BIGINT, rows_quarantined BIGINT, rows_duplicate BIGINT, seconds DOUBLE
);
CREATE TABLE IF NOT EXISTS skipped_members (
    file_id VARCHAR, source_path VARCHAR, member VARCHAR, reason VARCHAR, ingested_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS column_docs (table_name VARCHAR, column_name VARCHAR, type VARCHAR, doc VARCHAR);
CREATE TABLE IF NOT EXISTS warehouse_info (name VARCHAR, value VARCHAR);
CREATE TABLE IF NOT EXISTS store_files (
    tbl VARCHAR, path VARCHAR, file_id VARCHAR, day DATE, year INTEGER, month INTEGER, n_rows BIGINT, legacy BOOLEAN
);
"""

SKIPPED_MEMBERS_COLUMNS: dict[str, tuple[str, str]] = {
    "file_id": ("VARCHAR", "the delivered ZIP (manifest.file_id)"),
    "source_path": ("VARCHAR", "path of the ZIP at ingest (absolute)"),
    "member": ("VARCHAR", "the member's name inside the ZIP"),
    "reason": (
        "VARCHAR",
        "why it was not read: macOS metadata (__MACOSX/, ._ files), not a .csv or .txt member, empty (no rows), "
        "or not delivered data (a member not named data.csv none of whose first 20 lines has the field count or "
        "header of the file's layout)",
    ),
    "ingested_at": ("TIMESTAMP", "local time of the commit (as manifest.ingested_at)"),
}

STORE_FILES_COLUMNS: dict[str, tuple[str, str]] = {
    "tbl": ("VARCHAR", "view the file belongs to (probe_points, point_duplicates, trips, behavior_events, quarantine)"),
    "path": ("VARCHAR", "path relative to the warehouse folder"),
    "file_id": ("VARCHAR", "delivered file whose rows it holds (manifest.file_id)"),
    "day": ("DATE", "operation date (points)"),
    "year": ("INTEGER", "year of the operation date"),
    "month": ("INTEGER", "month of the operation date"),
    "n_rows": ("BIGINT", "rows in the file"),
    "legacy": ("BOOLEAN", "listed from the folders of a warehouse written before snapshots"),
}
WAREHOUSE_INFO_COLUMNS: dict[str, tuple[str, str]] = {
    "name": (
        "VARCHAR",
        "key_fingerprint (SHA-256 under a fixed prefix of the ID key, never the key), generation (commits), "
        "commit, location / database_path (where the views were made)",
    ),
    "value": ("VARCHAR", "its value"),
}


# ---------------------------------------------------------------------------------------------
# Tables written by the analyses (figures per road and period, the mergeable cube)

RESULT_TABLES_DDL = """
CREATE TABLE IF NOT EXISTS road_period_stats (
    district               VARCHAR,   -- district key, or 'roads:<file stem>' for an ad-hoc network
    road_id                VARCHAR,   -- the input feature's id as text
    road_name              VARCHAR,
    role                   VARCHAR,   -- treated | comparison | other
    period                 VARCHAR,   -- label of the period in this analysis (before, after, trial ...)
    period_start           DATE,      -- inclusive, JST calendar day of GPS時刻
    period_end             DATE,      -- inclusive
    n_points               BIGINT,    -- matched points
    n_vehicles             BIGINT,    -- distinct pseudonymised vehicles (運行ID)
    mean_kmh               DOUBLE,    -- km/h, mean of the points' instantaneous speeds
    p85_kmh                DOUBLE,    -- km/h, 85th percentile of point speeds: grouped-data percentile within the
                                      -- class of the recorded whole km/h (docs/statistics.md)
    share_at_or_over_limit DOUBLE,    -- fraction (0-1) of points with speed >= limit
    share_at_or_over_limit_plus_10 DOUBLE, -- fraction (0-1) of points with speed >= limit + 10 km/h
    n_passages             BIGINT,    -- passages with a speed: one vehicle's traversal of the road (consecutive points
                                      -- of one trip on it, split at gaps, jumps and U-turns)
    passage_mean_kmh       DOUBLE,    -- km/h, mean over passages of the passage speed: the section travel speed,
                                      -- distance along the street / time taken (docs/statistics.md)
    passage_p85_kmh        DOUBLE,    -- km/h, 85th percentile of passage speeds (plain sample quantile, type 7)
    passage_share_at_or_over_limit DOUBLE, -- fraction (0-1) of passages whose speed is >= limit ("share of vehicles")
    passage_spot_mean_kmh  DOUBLE,    -- km/h, sensitivity: mean over the same passages of the mean of their points'
                                      -- instantaneous speeds (the spot-speed passage speed)
    limit_kmh              DOUBLE,    -- km/h
    computed_at            TIMESTAMP
);
CREATE TABLE IF NOT EXISTS group_period_stats (
    district               VARCHAR,
    road_group             VARCHAR,   -- treated | comparison: all points (passages) of those roads pooled
    period                 VARCHAR,
    period_start           DATE,
    period_end             DATE,
    n_points               BIGINT,
    n_vehicles             BIGINT,
    mean_kmh               DOUBLE,
    p85_kmh                DOUBLE,
    share_at_or_over_limit DOUBLE,
    share_at_or_over_limit_plus_10 DOUBLE,
    n_passages             BIGINT,
    passage_mean_kmh       DOUBLE,
    passage_p85_kmh        DOUBLE,
    passage_share_at_or_over_limit DOUBLE,
    passage_spot_mean_kmh  DOUBLE,
    limit_kmh              DOUBLE,    -- km/h, the highest limit of the group's roads
    computed_at            TIMESTAMP
);
CREATE TABLE IF NOT EXISTS road_speed_histogram (
    district      VARCHAR,
    road_id       VARCHAR,
    period        VARCHAR,
    period_start  DATE,
    period_end    DATE,
    speed_bin_kmh DOUBLE,   -- 1 km/h bin: speed rounded to the nearest km/h (ETC2.0 speeds are whole km/h)
    n_points      BIGINT    -- mergeable: add counts over roads, periods or partitions
);
CREATE TABLE IF NOT EXISTS figure_files (
    district     VARCHAR,   -- district key, or 'roads:<file stem>' for an ad-hoc network
    period       VARCHAR,   -- period label stored by the run
    period_start DATE,      -- inclusive, JST calendar day of GPS時刻
    period_end   DATE,      -- inclusive
    folder       VARCHAR,   -- figures/<run>, relative to the warehouse: the views' Parquet files
    computed_at  TIMESTAMP
);
CREATE TABLE IF NOT EXISTS analysis_runs (
    district     VARCHAR,
    period       VARCHAR,   -- period label stored by this run
    period_start DATE,
    period_end   DATE,
    fingerprint  VARCHAR,   -- the network fingerprint (matched_networks) the figures come from
    radius_m     DOUBLE,    -- matching radius used, metres
    network_path VARCHAR,   -- network file used
    n_points_matched BIGINT, -- points matched to the network in the period
    computed_at  TIMESTAMP
);
"""

# The period cube's rows: Parquet files under figures/ (analysis._cube_files), one folder per district
# and period, listed in figure_files and read by the views link_hour_stats / link_hour_histogram.
_CUBE_KEY_COLUMNS: dict[str, tuple[str, str]] = {
    "district": (
        "VARCHAR",
        "district key (file stem of data/districts/*.toml), or 'roads:<file stem>' for an ad-hoc network",
    ),
    "road_id": ("VARCHAR", "the road network feature's id as text"),
    "link_id": ("INTEGER", "link of the road network split at intersections (ids increase with road order)"),
    "period": ("VARCHAR", "period label of the analysis (before, after, trial …)"),
    "period_start": ("DATE", "first day, inclusive (JST calendar day of GPS時刻)"),
    "period_end": ("DATE", "last day, inclusive"),
    "direction": ("TINYINT", "+1 / -1 relative to the link's digitisation, 0 unknown heading"),
    "hour": ("TINYINT", "hour of day of GPS時刻 (JST), 0-23"),
    "day_type": ("TINYINT", "0 weekday, 1 Saturday, Sunday or Japanese public holiday"),
    "vehicle_class": ("TINYINT", "自動車の種別 code (vehicle_type)"),
}
LINK_HOUR_STATS_COLUMNS: dict[str, tuple[str, str]] = {
    **_CUBE_KEY_COLUMNS,
    "n_points": ("BIGINT", "points in the cell; mergeable (add)"),
    "sum_speed_kmh": ("DOUBLE", "km/h, sum of the points' speeds; mergeable (add); mean = sum / n_points"),
    "n_at_or_over_limit": ("BIGINT", "points at or over the road's limit; mergeable (add)"),
    "n_at_or_over_limit_plus_10": ("BIGINT", "points at or over the limit + 10 km/h; mergeable (add)"),
    "n_vehicles": ("BIGINT", "distinct vehicles of this cell only (not additive)"),
}
LINK_HOUR_HISTOGRAM_COLUMNS: dict[str, tuple[str, str]] = {
    **_CUBE_KEY_COLUMNS,
    "speed_kmh": ("SMALLINT", "1 km/h bin: speed rounded to the nearest km/h"),
    "n_points": ("BIGINT", "points in the cell and bin; mergeable (add)"),
}
FIGURE_VIEWS = {"link_hour_stats": LINK_HOUR_STATS_COLUMNS, "link_hour_histogram": LINK_HOUR_HISTOGRAM_COLUMNS}
# Columns constant over a folder: kept in figure_files and given by the views, not stored in the files.
FIGURE_FOLDER_COLUMNS = ("district", "period", "period_start", "period_end")
# Tables of earlier layouts that are views now: dropped with the derived tables.
RETIRED_TABLES = ("link_hour_stats", "link_hour_histogram")


# ---------------------------------------------------------------------------------------------
# Tables written by the before/after comparison (analysis/comparison.py: changes with intervals, braking, cut-through)

COMPARISON_TABLES_DDL = """
CREATE TABLE IF NOT EXISTS comparison_results (
    district          VARCHAR,
    filter            VARCHAR,   -- time band / day type / vehicle class / direction, in Japanese ('全日・全車種': all
                                 -- points)
    indicator         VARCHAR,   -- mean | p85 (km/h) | share | share_plus10 (fraction 0-1) of points; passage_mean |
                                 -- passage_p85 (km/h) | passage_share (0-1) of passages
    unit              VARCHAR,   -- road id, 'treated', 'control' (pooled) or 'did'
    before            DOUBLE,
    after             DOUBLE,
    change            DOUBLE,    -- after - before, computed before any rounding; for did: treated change - control
                                 -- change
    ci_low            DOUBLE,    -- 95 % cluster bootstrap over vehicles (percentile interval)
    ci_high           DOUBLE,
    n_vehicles_before BIGINT,
    n_vehicles_after  BIGINT,
    flag              VARCHAR,   -- low_sample when fewer than min_vehicles distinct vehicles
    resamples         INTEGER,
    seed              BIGINT,
    period_before     VARCHAR,   -- YYYY-MM-DD..YYYY-MM-DD
    period_after      VARCHAR,
    computed_at       TIMESTAMP,
    n_before          BIGINT,    -- points (or passages, for passage_* indicators) before
    n_after           BIGINT,    -- points (or passages) after
    min_vehicles      BIGINT,    -- the adequacy minimum used for flag
    before_ci_low     DOUBLE,    -- 95 % interval of the before level (same replicates); NULL for did
    before_ci_high    DOUBLE,
    after_ci_low      DOUBLE,    -- 95 % interval of the after level
    after_ci_high     DOUBLE,
    degenerate        BOOLEAN    -- an interval of the row says nothing about sampling: its resamples take fewer
                                 -- than 3 distinct values (a share of 0 or 1), nothing else; every other interval
                                 -- holds its estimate strictly inside, as checked on the demo (docs/statistics.md)
);
CREATE TABLE IF NOT EXISTS placebo_results (
    district          VARCHAR,
    filter            VARCHAR,   -- as comparison_results
    period_before     VARCHAR,   -- YYYY-MM-DD..YYYY-MM-DD
    period_after      VARCHAR,
    indicator         VARCHAR,   -- as comparison_results
    road_id           VARCHAR,   -- an untreated residential street (not treated, not a comparison street) with at
                                 -- least min_vehicles distinct vehicles in both periods
    did               DOUBLE,    -- the same difference in differences as the treated street's, against the same
                                 -- comparison streets: (after - before on this street) - (comparison change)
    n_vehicles        BIGINT,    -- distinct vehicles on the street, the smaller of the two periods
    before            DOUBLE,    -- the street's level before (km/h, or fraction 0-1)
    after             DOUBLE,    -- ... and after
    computed_at       TIMESTAMP
);
CREATE TABLE IF NOT EXISTS monthly_series (
    district          VARCHAR,
    filter            VARCHAR,
    month             DATE,      -- first day of a complete calendar month after the district's last named period
    indicator         VARCHAR,   -- as comparison_results (mean, p85, share, share_plus10, passage_*)
    unit              VARCHAR,   -- treated | control (pooled roads) | did (treated change - control change)
    value             DOUBLE,    -- the month's level (km/h, or fraction 0-1); NULL for did
    ci_low            DOUBLE,    -- 95 % cluster bootstrap over vehicles of the month's level
    ci_high           DOUBLE,
    n                 BIGINT,    -- points (passages for passage_*) in the month
    n_vehicles        BIGINT,    -- distinct vehicles in the month
    after_level       DOUBLE,    -- the level of the district's default after period (the reference)
    change_vs_after   DOUBLE,    -- value - after_level
    change_ci_low     DOUBLE,    -- 95 % interval of that change (vehicles resampled jointly)
    change_ci_high    DOUBLE,
    flag              VARCHAR,   -- low_sample below min_vehicles distinct vehicles in the month or the after period
    resamples         INTEGER,
    seed              BIGINT,
    computed_at       TIMESTAMP,
    degenerate        BOOLEAN    -- as comparison_results.degenerate
);
CREATE TABLE IF NOT EXISTS pre_period_series (
    district          VARCHAR,
    filter            VARCHAR,
    month             DATE,      -- first day of a complete calendar month before the district's default before
                                 -- period (the contiguous months right before it, at most PRE_PERIOD_MAX_MONTHS)
    indicator         VARCHAR,   -- as comparison_results
    unit              VARCHAR,   -- treated | control (pooled roads) | did (treated change - control change)
    value             DOUBLE,    -- the month's level (km/h, or fraction 0-1); NULL for did
    ci_low            DOUBLE,    -- 95 % cluster bootstrap over vehicles of the month's level
    ci_high           DOUBLE,
    n                 BIGINT,    -- points (passages for passage_*) in the month
    n_vehicles        BIGINT,    -- distinct vehicles in the month
    before_level      DOUBLE,    -- the level of the district's default before period (the reference)
    change_vs_before  DOUBLE,    -- value - before_level (did: treated change - control change)
    change_ci_low     DOUBLE,    -- 95 % interval of that change (vehicles resampled jointly)
    change_ci_high    DOUBLE,
    flag              VARCHAR,   -- low_sample below min_vehicles distinct vehicles in the month or the before period
    degenerate        BOOLEAN,   -- as comparison_results.degenerate
    resamples         INTEGER,
    seed              BIGINT,
    computed_at       TIMESTAMP
);
CREATE TABLE IF NOT EXISTS comparison_histogram (
    district      VARCHAR,
    filter        VARCHAR,
    unit          VARCHAR,   -- road id, 'treated' or 'control' (pooled)
    period        VARCHAR,   -- before | after
    speed_bin_kmh DOUBLE,    -- 1 km/h bin of the compared points
    n_points      BIGINT
);
CREATE TABLE IF NOT EXISTS evidence_runs (
    district      VARCHAR,
    filter        VARCHAR,
    period_before VARCHAR,
    period_after  VARCHAR,
    resamples     INTEGER,   -- bootstrap replicates
    seed          BIGINT,
    min_vehicles  BIGINT,    -- adequacy minimum (low_sample flag)
    threshold_g   DOUBLE,    -- deceleration threshold of inferred braking, G
    braking_source VARCHAR,  -- behavior_events (挙動履歴) or points (inferred from consecutive points: a lower bound)
    radius_m      DOUBLE,    -- matching radius, metres
    fingerprint   VARCHAR,   -- network fingerprint
    computed_at   TIMESTAMP
);
CREATE TABLE IF NOT EXISTS braking_per_road (
    district VARCHAR, filter VARCHAR, period VARCHAR, road_id VARCHAR,
    n_events BIGINT,                    -- braking events on the road (挙動履歴, else decelerations >= threshold
                                        -- between consecutive points)
    n_passages BIGINT,                  -- passages on the road
    events_per_1000_passages DOUBLE,
    n_vehicles BIGINT,                  -- distinct vehicles of those events
    threshold_g DOUBLE, computed_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS braking_hotspots (
    district VARCHAR, filter VARCHAR, period VARCHAR,
    x_m DOUBLE,                         -- centroid of the cell's events, metres EPSG:6677
    y_m DOUBLE,
    lon DOUBLE,                         -- the same point, degrees
    lat DOUBLE,
    n_events BIGINT,                    -- events in the 25 m cell
    n_vehicles BIGINT,                  -- distinct vehicles of those events
    computed_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS cut_through_summary (
    district VARCHAR, filter VARCHAR, period VARCHAR,
    n_trips BIGINT,                     -- trips on the district's residential streets (limit <= 30 km/h) inside its
                                        -- outline
    n_cut_through BIGINT,               -- of which origin and destination lie outside
    share_cut_through DOUBLE, computed_at TIMESTAMP,
    n_vehicles BIGINT,                  -- distinct vehicles of those trips
    n_vehicles_cut_through BIGINT       -- distinct vehicles of the cut-through trips
);
CREATE TABLE IF NOT EXISTS cut_through_streets (
    district VARCHAR, filter VARCHAR, period VARCHAR, road_id VARCHAR,
    n_trips BIGINT,                     -- trips with a point on the road
    n_cut_through BIGINT,               -- of which cut-through trips
    n_vehicles_cut_through BIGINT,      -- distinct vehicles of those cut-through trips
    share_cut_through DOUBLE, computed_at TIMESTAMP
);
"""


# ---------------------------------------------------------------------------------------------
# The match stage (analysis/matchstage.py): points matched once per district and month

MATCH_DDL = """
CREATE TABLE IF NOT EXISTS matched_networks (
    district     VARCHAR,   -- district key, or 'roads:<file stem>' for an ad-hoc network
    fingerprint  VARCHAR,   -- sha256 (16 hex) of geometry, road ids, one-way flags, limits, radius and matching
                            -- constants
    source_path  VARCHAR,   -- the network file when it was last matched
    radius_m     DOUBLE,    -- matching radius, metres
    n_roads      BIGINT,    -- roads of the network (service roads and other excluded classes left out)
    updated_at   TIMESTAMP, -- when the district was last matched
    segments_file VARCHAR   -- matched/<district>/segments-<fingerprint>.parquet: per segment its link, road,
                            -- limit and position along the road (the views join the stored points on it)
);
CREATE TABLE IF NOT EXISTS match_state (
    district      VARCHAR,
    fingerprint   VARCHAR,   -- the network fingerprint this month was matched with
    year          INTEGER,   -- year of 運行日
    month         INTEGER,   -- month of 運行日
    source_token  VARCHAR,   -- identity of the month's committed point and event files: a change re-matches the month
    folder        VARCHAR,   -- matched/<district>/<YYYY-MM>-<tokens>, relative to the warehouse folder
    n_points_read BIGINT,    -- points of the trips touching the network read (whole trips, every mesh)
    n_points      BIGINT,    -- points stored: those inside the network's box grown by the context margin
    n_matched     BIGINT,    -- of which matched to a road
    n_trips       BIGINT,    -- trips touching the network
    n_events      BIGINT,    -- 挙動履歴 events inside the box
    seconds       DOUBLE,    -- time to match the month, s
    matched_at    TIMESTAMP
);
"""

_MATCH_COLUMNS: dict[str, tuple[str, str]] = {
    "district": ("VARCHAR", "district key, or 'roads:<file stem>' for an ad-hoc network"),
    "trip_id": ("BIGINT", "identifier of (vehicle, 運行日, trip number): a 64-bit mix, depends on the pseudonym key"),
    "vehicle_id": ("BIGINT", "first 8 bytes of the vehicle's HMAC pseudonym as int64"),
    "vehicle_key": ("VARCHAR", "HMAC-SHA-256 pseudonym of 運行ID"),
    "operation_date": ("DATE", "運行日"),
    "trip_no": ("INTEGER", "トリップ番号"),
    "seq": ("INTEGER", "0-based position of the point in its trip (whole trip, ordered by GPS時刻)"),
    "gps_time": ("TIMESTAMP", "GPS時刻, JST wall-clock time"),
    "hour": ("TINYINT", "hour of day of GPS時刻, 0-23 (the filter's time band)"),
    "day_type": (
        "TINYINT",
        "0 weekday, 1 Saturday, Sunday or Japanese public holiday incl. 振替休日 (the filter's day type)",
    ),
    "vehicle_type": ("INTEGER", "自動車の種別: 0 軽二輪, 1 大型, 2 普通, 3 小型, 4 軽自動車"),
    "vehicle_use": ("INTEGER", "自動車の用途: 0 未使用, 1 乗用, 2 貨物, 3 特殊, 4 乗合"),
    "speed_kmh": ("DOUBLE", "速度, km/h (instantaneous)"),
    "lon": ("DOUBLE", "longitude, degrees, JGD2011"),
    "lat": ("DOUBLE", "latitude, degrees, JGD2011"),
    "x_m": ("DOUBLE", "easting, metres, EPSG:6677"),
    "y_m": ("DOUBLE", "northing, metres, EPSG:6677"),
    "decel_prev_g": ("DOUBLE", "mean deceleration since the previous point of the trip, G (positive when slowing)"),
    "road_idx": (
        "INTEGER",
        "index of the road in the network file (after excluded classes), -1 when no road within the radius",
    ),
    "road_id": ("VARCHAR", "the road network feature's id; NULL when no road within the radius"),
    "limit_kmh": ("DOUBLE", "speed limit of that road, km/h"),
    "link_id": ("INTEGER", "link of the network split at intersections (ids increase with road order), -1 unmatched"),
    "seg": ("INTEGER", "straight segment id, -1 unmatched"),
    "pos": ("DOUBLE", "position along the link, 0-1 in the digitised direction"),
    "road_pos_m": ("DOUBLE", "position along the road, metres from its first vertex"),
    "dist_m": ("DOUBLE", "distance from the point to the matched segment, metres"),
    "direction": ("TINYINT", "+1 along the road's digitised direction, -1 against it, 0 unknown heading"),
    "file_id": ("VARCHAR", "source file (manifest.file_id); with member and line_no the delivered line"),
    "member": ("VARCHAR", "ZIP member name"),
    "line_no": ("BIGINT", "1-based line in the member"),
    "point_key": ("BIGINT", "the stored point (probe_points.point_key): what the match stores to refer to it"),
}
# matched_points: the points matched to a road; district_trip_points: every stored point of the
# trips touching the network (also those off the network, inside the grown box). The match stage
# stores only what it made and what the figures read (etl.schema.POINTS_SCHEMA): the
# views join the network's segment table (road, link, limit, road position), the calendar (day
# type) and the delivered columns of probe_points (on point_key) back beside it.
MATCHED_POINTS_COLUMNS = _MATCH_COLUMNS
# How each column of matched_points / district_trip_points is read: m = the stored match, s = the
# network's segment table, c = the calendar, p = the month's probe_points.
MATCHED_POINTS_SQL: dict[str, str] = {
    "trip_id": "m.trip_id",
    "vehicle_id": "m.vehicle_id",
    "vehicle_key": "p.vehicle_key",
    "operation_date": "p.operation_date",
    "trip_no": "p.trip_no",
    "seq": "m.seq",
    "gps_time": "m.gps_time",
    "hour": "hour(m.gps_time)",
    "day_type": "coalesce(c.day_type, CASE WHEN isodow(m.gps_time) >= 6 THEN 1 ELSE 0 END)",
    "vehicle_type": "m.vehicle_type",
    "vehicle_use": "m.vehicle_use",
    "speed_kmh": "m.speed_kmh",
    "lon": "p.lon",
    "lat": "p.lat",
    "x_m": "m.x_m",
    "y_m": "m.y_m",
    "decel_prev_g": "m.decel_prev_g",
    "road_idx": "coalesce(s.road_idx, -1)",
    "road_id": "s.road_id",
    "limit_kmh": "s.limit_kmh",
    "link_id": "coalesce(s.link_id, -1)",
    "seg": "m.seg",
    "pos": "m.pos",
    "road_pos_m": "s.link_offset_m + m.pos * s.link_length_m",
    "dist_m": "m.dist_m",
    "direction": "m.direction",
    "file_id": "p.file_id",
    "member": "p.member",
    "line_no": "p.line_no",
    "point_key": "m.point_key",
}
# The delivered columns the views take from probe_points.
MATCHED_DELIVERED = ("vehicle_key", "operation_date", "trip_no", "lon", "lat", "file_id", "member", "line_no")
# The calendar the match stage writes beside its folders: one row per day of its holiday table
# (day DATE, day_type TINYINT: 0 weekday, 1 Saturday, Sunday or public holiday).
MATCHED_CALENDAR = "matched/calendar.parquet"
MATCHED_TRIPS_COLUMNS: dict[str, tuple[str, str]] = {
    "district": _MATCH_COLUMNS["district"],
    "trip_id": _MATCH_COLUMNS["trip_id"],
    "vehicle_id": _MATCH_COLUMNS["vehicle_id"],
    "operation_date": _MATCH_COLUMNS["operation_date"],
    "trip_no": _MATCH_COLUMNS["trip_no"],
    "n_points": ("INTEGER", "points of the whole trip"),
    "first_time": ("TIMESTAMP", "GPS時刻 of the trip's first point"),
    "last_time": ("TIMESTAMP", "GPS時刻 of the trip's last point"),
    "first_x_m": ("DOUBLE", "first point (origin when 様式1-3 is missing), metres EPSG:6677"),
    "first_y_m": ("DOUBLE", "first point, metres EPSG:6677"),
    "last_x_m": ("DOUBLE", "last point (destination when 様式1-3 is missing), metres EPSG:6677"),
    "last_y_m": ("DOUBLE", "last point, metres EPSG:6677"),
}
MATCHED_EVENTS_COLUMNS: dict[str, tuple[str, str]] = {
    "district": _MATCH_COLUMNS["district"],
    "vehicle_id": _MATCH_COLUMNS["vehicle_id"],
    "gps_time": ("TIMESTAMP", "発生時刻 of the 挙動履歴 event, JST"),
    "hour": _MATCH_COLUMNS["hour"],
    "day_type": _MATCH_COLUMNS["day_type"],
    "x_m": _MATCH_COLUMNS["x_m"],
    "y_m": _MATCH_COLUMNS["y_m"],
    "speed_kmh": ("DOUBLE", "speed at the event, km/h"),
    "accel_long": ("DOUBLE", "longitudinal acceleration as delivered"),
    "is_braking": ("BOOLEAN", "a braking event: longitudinal acceleration negative or not given"),
    "road_idx": _MATCH_COLUMNS["road_idx"],
    "road_id": _MATCH_COLUMNS["road_id"],
    "dist_m": _MATCH_COLUMNS["dist_m"],
}


# ---------------------------------------------------------------------------------------------
# Screening (analysis/screening.py): where to calm next

SCREENING_DDL = """
CREATE TABLE IF NOT EXISTS screening_results (
    district          VARCHAR,   -- network key: district key, or 'roads:<file stem>' for an ad-hoc network
    area              VARCHAR,   -- area the candidates lie in: 'outline' (the district outline), 'area:<file stem>'
                                 -- (--area), '' none
    period            VARCHAR,   -- period label (a district period name, or 'screen' for --period A..B)
    period_start      DATE,
    period_end        DATE,
    rank              INTEGER,   -- 1 = highest score among the run's candidates
    road_id           VARCHAR,
    road_name         VARCHAR,
    score             DOUBLE,    -- 0-100: 100 * sum of weight * value / best candidate's value, over the weights
                                 -- (docs/screening.md); the points_* columns add up to it
    score_ci_low      DOUBLE,    -- 95 % cluster bootstrap over vehicles (every component and the scaling recomputed
                                 -- per replicate)
    score_ci_high     DOUBLE,    -- upper bound of that interval
    rank_ci_low       INTEGER,   -- 95 % interval of the rank over the same replicates
    rank_ci_high      INTEGER,   -- upper bound (a larger number: a lower place)
    limit_kmh         DOUBLE,
    n_vehicles        BIGINT,    -- distinct vehicles of the road's passages with a travel speed (a candidate has
                                 -- at least min_vehicles)
    n_passages        BIGINT,    -- passages: one vehicle's traversal of the road
    passages_per_day  DOUBLE,    -- volume: n_passages / days of the period
    share_at_or_over_limit DOUBLE, -- fraction (0-1) of passages whose speed (mean of its points) is >= limit
    share_ci_low      DOUBLE,    -- 95 % cluster bootstrap over vehicles
    share_ci_high     DOUBLE,    -- upper bound
    share_at_or_over_limit_plus_10 DOUBLE, -- fraction of passages >= limit + 10 km/h
    share_plus_10_ci_low  DOUBLE, -- 95 % cluster bootstrap over vehicles
    share_plus_10_ci_high DOUBLE, -- upper bound
    p85_kmh           DOUBLE,    -- 85th percentile passage speed, km/h (plain sample quantile, type 7)
    p85_ci_low        DOUBLE,    -- 95 % cluster bootstrap over vehicles
    p85_ci_high       DOUBLE,    -- upper bound
    p85_over_limit    DOUBLE,    -- max(p85_kmh - limit_kmh, 0), km/h
    n_braking_events  BIGINT,    -- sudden braking events on the road (挙動履歴, else decelerations >= threshold
                                 -- between consecutive points)
    n_braking_vehicles BIGINT,   -- distinct vehicles of those events (publication threshold)
    braking_per_1000_passages DOUBLE, -- 1000 * n_braking_events / n_passages
    n_trips           BIGINT,    -- trips using the road that use a residential street inside the area (0 without area)
    n_cut_through     BIGINT,    -- of which origin and destination lie outside the area
    n_cut_through_vehicles BIGINT, -- distinct vehicles of those cut-through trips (publication threshold)
    cut_through_share DOUBLE,    -- n_cut_through / n_trips; NULL without an area (component left out)
    points_share      DOUBLE,    -- the score's term of share_at_or_over_limit
    points_share_plus_10 DOUBLE, -- ... of share_at_or_over_limit_plus_10
    points_p85        DOUBLE,    -- ... of p85_over_limit
    points_braking    DOUBLE,    -- ... of braking_per_1000_passages
    points_cut_through DOUBLE,   -- ... of cut_through_share
    points_volume     DOUBLE,    -- ... of passages_per_day
    braking_source    VARCHAR,   -- behavior_events (挙動履歴) or points (inferred: a lower bound)
    computed_at       TIMESTAMP,
    degenerate        BOOLEAN    -- the share, share + 10, p85 or score interval says nothing about sampling (as
                                 -- comparison_results.degenerate); rank intervals are inclusive integer ranges
);
CREATE TABLE IF NOT EXISTS screening_runs (
    district          VARCHAR,
    area              VARCHAR,
    period            VARCHAR,
    period_start      DATE,
    period_end        DATE,
    min_vehicles      BIGINT,    -- candidates have at least this many distinct vehicles
    weights           VARCHAR,   -- JSON {component: weight} used for the score
    resamples         INTEGER,   -- bootstrap replicates
    seed              BIGINT,
    threshold_g       DOUBLE,    -- deceleration threshold of inferred braking, G
    braking_source    VARCHAR,   -- behavior_events (挙動履歴) or points (inferred: a lower bound)
    cut_through_available BOOLEAN, -- false without an area: cut-through left out, other weights rescaled
    n_roads           BIGINT,    -- roads of the network
    n_residential     BIGINT,    -- residential roads (limit <= 30 km/h) in the area
    n_candidates      BIGINT,    -- of which ranked (enough vehicles)
    n_low_sample      BIGINT,    -- of which left out: fewer than min_vehicles distinct vehicles
    fingerprint       VARCHAR,   -- network fingerprint
    network_path      VARCHAR,   -- the road network file screened (geometry of the ranked roads, by road_id)
    area_path         VARCHAR,   -- the area's polygon file (the district outline or --area); '' without area
    computed_at       TIMESTAMP,
    basis             VARCHAR    -- which months were screened: pre_period (the months before the district's before
                                 -- period), before_period (no such months delivered: the before period itself, also
                                 -- the comparison's baseline) or given (a period chosen by the user)
);
"""


# ---------------------------------------------------------------------------------------------
# Gates (analysis/gates.py): trips crossing a district classified by entry and exit gates

GATES_DDL = """
CREATE TABLE IF NOT EXISTS district_gates (
    district    VARCHAR,
    gate_id     VARCHAR,   -- id in the district file ([[gates]]), or G01, G02 … clockwise from north (derived)
    gate_name   VARCHAR,   -- label, Japanese first: the road's name and the side of the district (e.g.
                           -- 生活道路R3（合成） 北側)
    road_id     VARCHAR,   -- the road the gate lies on ('' when no road within the matching radius)
    source      VARCHAR,   -- declared ([[gates]] of the district file) or derived (where a road crosses the outline)
    x_m         DOUBLE,    -- gate point, metres EPSG:6677 (a declared line: its midpoint)
    y_m         DOUBLE,
    lon         DOUBLE,    -- the same point, degrees
    lat         DOUBLE,
    computed_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS gate_trips (
    district      VARCHAR,
    period        VARCHAR,
    period_start  DATE,
    period_end    DATE,
    trip_id       BIGINT,    -- as matched_points.trip_id
    vehicle_id    BIGINT,
    gate_class    VARCHAR,   -- through (enters and leaves through gates) | into (ends inside) | out_of (starts
                             -- inside) | internal (starts and ends inside) | perimeter (on the network, never inside
                             -- the outline)
    entry_gate    VARCHAR,   -- gate of the first entry ('' when none: starts inside or never enters; '?' when no gate
                             -- is near the crossing)
    exit_gate     VARCHAR,   -- gate of the last exit (same conventions)
    time_band     VARCHAR,   -- band (settings GATE_TIME_BANDS) of the hour of the trip's first stored point inside
                             -- the outline (perimeter: first point on the network)
    day_type      TINYINT,   -- 0 weekday, 1 Saturday, Sunday or public holiday, of that point
    first_time    TIMESTAMP, -- GPS時刻 of that point
    n_crossings   INTEGER,   -- crossings of the outline between consecutive stored points of the trip
    origin_inside BOOLEAN,   -- 様式1-3 origin (else the trip's first point) inside the outline
    dest_inside   BOOLEAN,
    computed_at   TIMESTAMP
);
CREATE TABLE IF NOT EXISTS gate_od (
    district      VARCHAR,
    period        VARCHAR,
    period_start  DATE,
    period_end    DATE,
    time_band     VARCHAR,   -- a band of GATE_TIME_BANDS, or 'all' (every hour)
    gate_class    VARCHAR,   -- as gate_trips.gate_class
    entry_gate    VARCHAR,   -- '' for trips that start inside or never enter
    exit_gate     VARCHAR,   -- '' for trips that end inside or never enter
    n_trips       BIGINT,
    n_vehicles    BIGINT,    -- distinct vehicles of those trips (publication threshold)
    computed_at   TIMESTAMP
);
CREATE TABLE IF NOT EXISTS gate_class_summary (
    district      VARCHAR,
    period        VARCHAR,
    period_start  DATE,
    period_end    DATE,
    time_band     VARCHAR,   -- a band of GATE_TIME_BANDS, or 'all'
    gate_class    VARCHAR,   -- every class of gate_trips.gate_class, also those without trips
    n_trips       BIGINT,
    share_trips   DOUBLE,    -- n_trips / trips of every class in the band
    n_vehicles    BIGINT,    -- distinct vehicles of those trips
    computed_at   TIMESTAMP
);
"""


# The monthly flow's stage records (analysis/stages.py): a stage whose fingerprint is recorded does nothing.
STAGE_DDL = """
CREATE TABLE IF NOT EXISTS stage_runs (
    district     VARCHAR,   -- district key
    stage        VARCHAR,   -- analyze, compare, gates, screen, monitor or publish
    fingerprint  VARCHAR,   -- sha256 (32 hex) of the stage's inputs: district files, point store, stored matches,
                            -- parameters, versions (and for publish the other stages' runs)
    summary      VARCHAR,   -- the stage's summary (JSON), returned again when the stage is skipped
    finished_at  TIMESTAMP
);
"""


# Tables derived from the point store (matches, figures, comparisons): recomputed by the next analysis,
# so a new layout drops them instead of migrating. Bump DERIVED_SCHEMA_VERSION when one changes.
# 7: placebo_results, pre_period_series, degenerate, screening_runs.basis; 8: the lean match (segments_file), stage_runs
# 9: passage speed = section travel speed, passage_spot_mean_kmh
# 10: link_hour_stats / link_hour_histogram are views over Parquet files (figure_files)
DERIVED_SCHEMA_VERSION = 10
DERIVED_DDL = (RESULT_TABLES_DDL, COMPARISON_TABLES_DDL, MATCH_DDL, SCREENING_DDL, GATES_DDL, STAGE_DDL)


def derived_schema_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The DERIVED_SCHEMA_VERSION the warehouse's derived tables were written under (None: none yet).
    A read-only connection cannot drop outdated tables: readers check this instead, so that a figure
    computed under an earlier definition is never served."""
    try:
        return con.execute("SELECT max(derived) FROM schema_version").fetchone()[0]
    except duckdb.CatalogException:
        return None


def _table_names(ddl: str) -> list[str]:
    return re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", ddl)


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table of the warehouse that does not exist yet; derived tables of an older layout
    are dropped first (they are recomputed by the next analysis)."""
    con.execute(MANIFEST_DDL)
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (derived INTEGER)")
    row = con.execute("SELECT max(derived) FROM schema_version").fetchone()
    if row[0] != DERIVED_SCHEMA_VERSION:
        with transaction(con):
            for ddl in DERIVED_DDL:
                for table in _table_names(ddl):
                    con.execute(f"DROP TABLE IF EXISTS {table}")
            listed = con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()
            tables = {t for (t,) in listed}
            for table in set(RETIRED_TABLES) & tables:
                con.execute(f"DROP TABLE {table}")
            con.execute("DELETE FROM schema_version")
            con.execute("INSERT INTO schema_version VALUES (?)", [DERIVED_SCHEMA_VERSION])
    for ddl in DERIVED_DDL:
        con.execute(ddl)


# ---------------------------------------------------------------------------------------------
# The stored match (matched/<district>/<YYYY-MM>-<tokens>/): written by analysis.matchstage, read by
# analysis.points and by the views above (MATCHED_POINTS_SQL reads its columns as m.<column>).

# Bump when the stored columns or the matching rules change: every month is matched again.
MATCH_VERSION = 3  # 2: the lean stored match (POINTS_SCHEMA); 3: its columns declared non-null
# Every stored column of a matched point has a value (NaN, -1 or 0 where there is none): declared
# non-null, the Parquet writer skips the definition levels, which halves the cost of the write.
POINTS_SCHEMA = pa.schema(
    [
        pa.field(name, typ, nullable=False)
        for name, typ in [
            ("point_key", pa.int64()),
            ("trip_id", pa.int64()),
            ("seq", pa.int32()),
            ("vehicle_id", pa.int64()),
            ("gps_time", pa.timestamp("us")),
            ("vehicle_type", pa.int8()),
            ("vehicle_use", pa.int8()),
            ("speed_kmh", pa.float64()),
            ("x_m", pa.float64()),
            ("y_m", pa.float64()),
            ("decel_prev_g", pa.float64()),
            ("seg", pa.int32()),
            ("pos", pa.float64()),
            ("dist_m", pa.float64()),
            ("direction", pa.int8()),
        ]
    ]
)
TRIPS_SCHEMA = pa.schema(
    [
        ("trip_id", pa.int64()),
        ("vehicle_id", pa.int64()),
        ("operation_date", pa.date32()),
        ("trip_no", pa.int32()),
        ("n_points", pa.int32()),
        ("first_time", pa.timestamp("us")),
        ("last_time", pa.timestamp("us")),
        ("first_x_m", pa.float64()),
        ("first_y_m", pa.float64()),
        ("last_x_m", pa.float64()),
        ("last_y_m", pa.float64()),
    ]
)
EVENTS_SCHEMA = pa.schema(
    [
        ("vehicle_id", pa.int64()),
        ("gps_time", pa.timestamp("us")),
        ("hour", pa.int8()),
        ("day_type", pa.int8()),
        ("x_m", pa.float64()),
        ("y_m", pa.float64()),
        ("speed_kmh", pa.float64()),
        ("accel_long", pa.float64()),
        ("is_braking", pa.bool_()),
        ("road_idx", pa.int32()),
        ("road_id", pa.string()),
        ("dist_m", pa.float64()),
    ]
)
