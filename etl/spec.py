"""Declarative layouts of the delivered ETC2.0 files: the one place readers, validation and docs come from.

Every delivered format is a `Layout`: an ordered tuple of `Column`s (0-based CSV index, warehouse
name, name on the specification sheet, type, unit, allowed range, required or not, meaning).

* The readers (`etl.validate.read_payload`) take the column count, the header names and the
  types from here.
* The validation rules (`etl.validate.validation_rules`) are generated from here: for every
  required column `missing_<name>`, for every time/date column `bad_<name>`, for every numeric
  column `<name>_not_numeric` and, where a range is given, `<name>_out_of_range`.
* The documentation (docs/warehouse.md by `python -m etc2calm.docs`, and the column comments of
  the DuckDB views) is generated from here.

A corrected specification sheet changes this table, not the readers
(see ../shared/reference/etc2-formats.md for what is confirmed and what is inferred).

Types: `str` (text, trimmed, empty = NULL), `int8` / `int32` / `int64` (integers; a fractional
value is `not_numeric`), `float` (DOUBLE), `date` (`YYYYMMDD`), `timestamp` (`YYYYMMDDhhmmss`, or
12-digit `YYYYMMDDhhmm` padded with 00 seconds; JST wall-clock, no time zone stored), `id`
(operation ID: replaced by its HMAC pseudonym `vehicle_key` + `vehicle_id`, never stored raw).

挙動履歴 (behaviour history) has no public layout: its default below is an assumption built from
the few positions public code uses; a deployment overrides it with a TOML file
(`ETC2CALM_BEHAVIOR_LAYOUT=/path/layout.toml` or `etc2calm ingest --behavior-layout FILE`), and a
file whose column count does not match is rejected with both counts named, never guessed.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from config.settings import ENV_BEHAVIOR_LAYOUT


@dataclass(frozen=True)
class Column:
    """One column of a delivered file."""

    index: int  # 0-based position in the CSV
    name: str  # identifier used in the warehouse
    name_ja: str  # name on the specification sheet
    type: str  # str, int8, int32, int64, float, date, timestamp, id
    unit: str = ""
    low: float | None = None  # allowed range (inclusive), checked at ingest when set
    high: float | None = None
    required: bool = False  # an empty value quarantines the row (missing_<name>)
    meaning: str = ""

    @property
    def numeric(self) -> bool:
        return self.type in ("int8", "int32", "int64", "float")

    @property
    def sql_type(self) -> str:
        return {
            "str": "VARCHAR",
            "int8": "TINYINT",
            "int32": "INTEGER",
            "int64": "BIGINT",
            "float": "DOUBLE",
            "date": "DATE",
            "timestamp": "TIMESTAMP",
            "id": "VARCHAR",
        }[self.type]


@dataclass(frozen=True)
class Layout:
    """A delivered format: its columns, how to recognise it, which columns are checked first."""

    key: str  # 1-2 | 1-3 | behavior
    name: str  # 様式1-2 ...
    table: str  # warehouse view it feeds
    columns: tuple[Column, ...]
    name_markers: tuple[str, ...] = ()  # substrings of a file name that identify the format
    header_markers: tuple[str, ...] = ()  # a first line containing one of these is a header row
    check_first: tuple[str, ...] = ()  # columns whose rules come first (the row's reason is the first failing rule)
    time_column: str = ""  # partitions year / month come from this column
    description: str = ""
    extra_widths: tuple[int, ...] = field(default=())  # other accepted column counts (1-3 with trailing columns)
    # Plausibility rules (etl.validate), for layouts of positions: (lon, lat) columns checked against the
    # 2次メッシュ of the file (else of `mesh_column`), and (time, date) columns: the time on the date or after.
    position: tuple[str, str] = ()
    mesh_column: str = ""
    time_on_date: tuple[str, str] = ()

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    def by_name(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise ValueError(f"unknown {self.name} column {name!r}")

    def check_order(self) -> list[Column]:
        first = [self.by_name(n) for n in self.check_first]
        return first + [c for c in self.columns if c.name not in self.check_first]


FORMAT_1_2 = "様式1-2"
FORMAT_1_3 = "様式1-3"
FORMAT_BEHAVIOR = "挙動履歴"

# fmt: off
STYLE_1_2_COLUMNS: tuple[Column, ...] = (
    Column(0,  "rsu_id",              "RSU-IDコード",          "str",   meaning="roadside unit that collected the record"),
    Column(1,  "received_at",         "受信時刻",              "timestamp", unit="JST", meaning="time the record was received (format inferred: YYYYMMDDhhmmss)"),
    Column(2,  "operation_date",      "運行日",                "date",  required=True, meaning="operation date YYYYMMDD"),
    Column(3,  "operation_id",        "運行ID1",               "id",    required=True, meaning="operation ID; replaced by vehicle_key / vehicle_id (HMAC-SHA-256) on ingest, never stored"),
    Column(4,  "vehicle_type",        "自動車の種別",          "int8",  low=0, high=15, required=True, meaning="0 軽二輪, 1 大型, 2 普通, 3 小型, 4 軽自動車 (5-15 undefined)"),
    Column(5,  "vehicle_use",         "自動車の用途",          "int8",  low=0, high=15, required=True, meaning="0 未使用, 1 乗用, 2 貨物, 3 特殊, 4 乗合"),
    Column(6,  "gps_time",            "GPS時刻",               "timestamp", unit="JST", required=True, meaning="YYYYMMDDhhmmss; 12-digit YYYYMMDDhhmm padded with 00 seconds"),
    Column(7,  "serial_no",           "通し番号",              "int64", meaning="serial number of the record within the operation"),
    Column(8,  "trip_no",             "トリップ番号",          "int32", low=0, required=True, meaning="trip number within the operation"),
    Column(9,  "trip_start",          "トリップの起点時刻",    "timestamp", unit="JST", meaning="trip start time"),
    Column(10, "trip_end",            "トリップの終点時刻",    "timestamp", unit="JST", meaning="trip end time"),
    Column(11, "trip_completeness",   "トリップの端点の完全性", "int8", meaning="trip endpoint completeness (codes unknown)"),
    Column(12, "trip_endpoint_flag",  "トリップ起終点フラグ",  "int8",  low=0, high=9, meaning="0 trip start, 1 trip end, 2 intermediate point (inferred)"),
    Column(13, "tag_no",              "タグ番号",              "int64", meaning="tag number"),
    Column(14, "lon",                 "経度",                  "float", unit="degree", low=120.0, high=150.0, required=True, meaning="longitude, JGD2011 (≈WGS84), as recorded"),
    Column(15, "lat",                 "緯度",                  "float", unit="degree", low=20.0, high=50.0, required=True, meaning="latitude, JGD2011 (≈WGS84), as recorded"),
    Column(16, "recording_condition", "蓄積条件",              "int8",  meaning="recording condition (codes unknown)"),
    Column(17, "road_type_code",      "道路種別コード",        "int8",  meaning="road type code (list unknown; public readers keep 0 and 1)"),
    Column(18, "speed_kmh",           "速度",                  "float", unit="km/h", low=0.0, high=180.0, required=True, meaning="instantaneous speed"),
    Column(19, "altitude_m",          "高度",                  "float", unit="m", meaning="altitude"),
    Column(20, "matching_flag",       "マッチングフラグ",      "int8",  meaning="provider's map-matching flag"),
    Column(21, "matched_lon",         "マッチング後経度",      "float", unit="degree", low=120.0, high=150.0, meaning="longitude after the provider's map matching"),
    Column(22, "matched_lat",         "マッチング後緯度",      "float", unit="degree", low=20.0, high=50.0, meaning="latitude after the provider's map matching"),
    Column(23, "drm_version",         "DRMバージョン",         "str",   meaning="DRM road database version"),
    Column(24, "mesh_code",           "2次メッシュコード",     "str",   meaning="secondary mesh code as delivered (6 digits)"),
    Column(25, "drm_entry_node",      "流入ノード",            "int64", meaning="DRM entry node"),
    Column(26, "drm_exit_node",       "流出ノード",            "int64", meaning="DRM exit node"),
    Column(27, "distance_from_entry_m", "流入ノードからの距離", "float", unit="m (unit inferred)", meaning="distance from the entry node"),
    Column(28, "confirmed_flag",      "確定フラグ",            "int8",  meaning="confirmed flag"),
    Column(29, "census_section_no",   "交通調査基本区間番号",  "int64", meaning="road traffic census basic section number"),
    Column(30, "direction_code",      "上り・下りコード",      "int8",  meaning="direction code (up/down)"),
    Column(31, "administrator_code",  "管理者コード",          "int8",  meaning="road administrator code"),
    Column(32, "updated_at",          "更新日時",              "timestamp", unit="JST", meaning="update timestamp"),
)

# 様式1-3 (起終点, one row per trip): positions 0, 1, 2, 7, 11-15 are established by public code;
# the others are kept as text under neutral names until a specification sheet names them.
STYLE_1_3_COLUMNS: tuple[Column, ...] = (
    Column(0,  "operation_date",  "運行日",        "date",  required=True, meaning="operation date YYYYMMDD (join key)"),
    Column(1,  "operation_id",    "運行ID",        "id",    required=True, meaning="operation ID; replaced by vehicle_key / vehicle_id (join key)"),
    Column(2,  "n_trips",         "トリップ数",    "int32", low=0, meaning="number of trips of the operation"),
    Column(3,  "col_3",           "(不明3)",       "str",   meaning="not publicly documented, kept as text"),
    Column(4,  "col_4",           "(不明4)",       "str",   meaning="not publicly documented, kept as text"),
    Column(5,  "col_5",           "(不明5)",       "str",   meaning="not publicly documented, kept as text"),
    Column(6,  "col_6",           "(不明6)",       "str",   meaning="not publicly documented, kept as text"),
    Column(7,  "trip_no",         "トリップ番号",  "int32", low=0, required=True, meaning="trip number (join key)"),
    Column(8,  "trip_start",      "起点時刻",      "timestamp", unit="JST", meaning="trip start time (position inferred)"),
    Column(9,  "trip_end",        "終点時刻",      "timestamp", unit="JST", meaning="trip end time (position inferred)"),
    Column(10, "col_10",          "(不明10)",      "str",   meaning="not publicly documented, kept as text"),
    Column(11, "origin_lon",      "起点経度",      "float", unit="degree", low=120.0, high=150.0, meaning="origin longitude"),
    Column(12, "origin_lat",      "起点緯度",      "float", unit="degree", low=20.0, high=50.0, meaning="origin latitude"),
    Column(13, "dest_lon",        "終点経度",      "float", unit="degree", low=120.0, high=150.0, meaning="destination longitude"),
    Column(14, "dest_lat",        "終点緯度",      "float", unit="degree", low=20.0, high=50.0, meaning="destination latitude"),
    Column(15, "trip_distance",   "距離",          "float", unit="unknown (as delivered)", low=0.0, meaning="trip distance"),
    Column(16, "col_16",          "(不明16)",      "str",   meaning="not publicly documented, kept as text"),
    Column(17, "col_17",          "(不明17)",      "str",   meaning="not publicly documented, kept as text"),
)

# 挙動履歴: DOCUMENTED DEFAULT, an assumption. Public code places only 2, 6, 7, 8, 9 and 14; the
# acceleration columns 15-17 are placed by assumption. Override with a layout TOML file.
BEHAVIOR_DEFAULT_COLUMNS: tuple[Column, ...] = (
    Column(0,  "col_0",           "(不明0)",       "str",   meaning="not publicly documented, kept as text"),
    Column(1,  "operation_date",  "運行日",        "date",  required=True, meaning="operation date (assumed position)"),
    Column(2,  "operation_id",    "運行ID",        "id",    required=True, meaning="vehicle / operation ID; replaced by vehicle_key / vehicle_id"),
    Column(3,  "col_3",           "(不明3)",       "str",   meaning="not publicly documented, kept as text"),
    Column(4,  "col_4",           "(不明4)",       "str",   meaning="not publicly documented, kept as text"),
    Column(5,  "col_5",           "(不明5)",       "str",   meaning="not publicly documented, kept as text"),
    Column(6,  "event_time",      "発生時刻",      "timestamp", unit="JST", required=True, meaning="time of the event YYYYMMDDhhmmss"),
    Column(7,  "lon",             "経度",          "float", unit="degree", low=120.0, high=150.0, required=True, meaning="longitude"),
    Column(8,  "lat",             "緯度",          "float", unit="degree", low=20.0, high=50.0, required=True, meaning="latitude"),
    Column(9,  "heading_code",    "方位",          "int32", meaning="heading (possibly a 16-point code; as delivered)"),
    Column(10, "col_10",          "(不明10)",      "str",   meaning="not publicly documented, kept as text"),
    Column(11, "col_11",          "(不明11)",      "str",   meaning="not publicly documented, kept as text"),
    Column(12, "col_12",          "(不明12)",      "str",   meaning="not publicly documented, kept as text"),
    Column(13, "col_13",          "(不明13)",      "str",   meaning="not publicly documented, kept as text"),
    Column(14, "speed_kmh",       "速度",          "float", unit="km/h", low=0.0, high=180.0, meaning="speed at the event"),
    Column(15, "accel_long",      "前後加速度",    "float", unit="as delivered (assumed position)", meaning="longitudinal acceleration"),
    Column(16, "accel_lat",       "左右加速度",    "float", unit="as delivered (assumed position)", meaning="lateral acceleration"),
    Column(17, "yaw_rate",        "ヨー角速度",    "float", unit="as delivered (assumed position)", meaning="yaw rate"),
)
# fmt: on

STYLE_1_2 = Layout(
    key="1-2",
    name=FORMAT_1_2,
    table="probe_points",
    columns=STYLE_1_2_COLUMNS,
    name_markers=("OUT1-2",),
    check_first=("gps_time", "operation_date", "operation_id"),
    time_column="operation_date",
    position=("lon", "lat"),
    mesh_column="mesh_code",
    time_on_date=("gps_time", "operation_date"),
    description="走行履歴 (position history): headerless, one row per recorded point",
)
STYLE_1_3 = Layout(
    key="1-3",
    name=FORMAT_1_3,
    table="trips",
    columns=STYLE_1_3_COLUMNS,
    name_markers=("OUT1-3",),
    header_markers=("運行日", "運行ID", "トリップ"),
    check_first=("operation_date", "operation_id"),
    time_column="operation_date",
    description="起終点 (one row per trip), with or without a header row; joins probe_points on (operation_date, vehicle_key, trip_no)",
)
BEHAVIOR_DEFAULT = Layout(
    key="behavior",
    name=FORMAT_BEHAVIOR,
    table="behavior_events",
    columns=BEHAVIOR_DEFAULT_COLUMNS,
    name_markers=("挙動", "BEHAVIOR", "OUT2"),
    header_markers=("運行ID", "発生時刻"),
    check_first=("event_time", "operation_date", "operation_id"),
    time_column="operation_date",
    description="挙動履歴 (sudden acceleration / deceleration events): DEFAULT LAYOUT IS AN ASSUMPTION, configure it",
)

STYLE_1_2_N_COLUMNS = len(STYLE_1_2_COLUMNS)
assert STYLE_1_2_N_COLUMNS == 33
assert [c.index for c in STYLE_1_2_COLUMNS] == list(range(33))
assert [c.index for c in STYLE_1_3_COLUMNS] == list(range(18))
STYLE_1_2_BY_NAME = {c.name: c for c in STYLE_1_2_COLUMNS}


def column_index(name: str) -> int:
    """0-based CSV position of a 様式1-2 column, by warehouse name."""
    return STYLE_1_2.by_name(name).index


def load_behavior_layout(path: str | Path | None = None) -> Layout:
    """The 挙動履歴 layout: from a TOML file (argument, else $ETC2CALM_BEHAVIOR_LAYOUT), else the default.

    The file lists every column in order::

        [[column]]
        name = "event_time"      # warehouse name
        name_ja = "発生時刻"
        type = "timestamp"       # str, int8, int32, int64, float, date, timestamp, id
        unit = "JST"             # optional; low / high / required / meaning optional too

    It must contain `operation_id`, `operation_date`, `event_time`, `lon` and `lat`.
    """
    path = path or os.environ.get(ENV_BEHAVIOR_LAYOUT)
    if not path:
        return BEHAVIOR_DEFAULT
    with open(path, "rb") as fh:
        doc = tomllib.load(fh)
    cols = []
    for i, c in enumerate(doc.get("column", [])):
        cols.append(
            Column(
                i,
                c["name"],
                c.get("name_ja", c["name"]),
                c.get("type", "str"),
                c.get("unit", ""),
                c.get("low"),
                c.get("high"),
                bool(c.get("required", False)),
                c.get("meaning", ""),
            )
        )
    names = {c.name for c in cols}
    missing = {"operation_id", "operation_date", "event_time", "lon", "lat"} - names
    if missing:
        raise ValueError(f"behaviour layout {path}: missing columns {', '.join(sorted(missing))}")
    return replace(BEHAVIOR_DEFAULT, columns=tuple(cols))


def layouts(behavior_layout: str | Path | None = None) -> dict[str, Layout]:
    return {"1-2": STYLE_1_2, "1-3": STYLE_1_3, "behavior": load_behavior_layout(behavior_layout)}
