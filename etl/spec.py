"""Declarative layout of the delivered ETC2.0 files: one place that readers, validation and docs use.

様式1-2 (走行履歴, position history) is headerless CSV with 33 columns. The layout follows
what public code that reads real deliveries establishes (../shared/reference/etc2-formats.md);
a corrected specification sheet changes this table, not the readers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One column of a delivered file."""

    index: int  # 0-based position in the headerless CSV
    name: str  # identifier used in the warehouse
    name_ja: str  # name on the specification sheet
    type: str  # warehouse type after parsing: str, int, float, timestamp, date
    unit: str = ""
    low: float | None = None  # allowed range (inclusive), checked at ingest when set
    high: float | None = None
    meaning: str = ""


FORMAT_1_2 = "様式1-2"

# fmt: off
STYLE_1_2_COLUMNS: tuple[Column, ...] = (
    Column(0,  "rsu_id",              "RSU-IDコード",          "str",  meaning="roadside unit that collected the record"),
    Column(1,  "received_at_raw",     "受信時刻",              "str",  meaning="time received (format unverified, kept as text)"),
    Column(2,  "operation_date",      "運行日",                "date", meaning="operation date YYYYMMDD"),
    Column(3,  "operation_id",        "運行ID1",               "str",  meaning="operation ID; replaced by a keyed hash (vehicle_key) on ingest, never stored"),
    Column(4,  "vehicle_type",        "自動車の種別",          "int",  low=0, high=15, meaning="0 軽二輪, 1 大型, 2 普通, 3 小型, 4 軽自動車"),
    Column(5,  "vehicle_use",         "自動車の用途",          "int",  low=0, high=15, meaning="0 未使用, 1 乗用, 2 貨物, 3 特殊, 4 乗合"),
    Column(6,  "gps_time",            "GPS時刻",               "timestamp", unit="JST", meaning="YYYYMMDDhhmmss; 12-digit YYYYMMDDhhmm padded with 00 seconds"),
    Column(7,  "serial_no",           "通し番号",              "int",  meaning="serial number"),
    Column(8,  "trip_no",             "トリップ番号",          "int",  meaning="trip number within the operation"),
    Column(9,  "trip_start_raw",      "トリップの起点時刻",    "str",  meaning="trip start time"),
    Column(10, "trip_end_raw",        "トリップの終点時刻",    "str",  meaning="trip end time"),
    Column(11, "trip_completeness",   "トリップの端点の完全性", "str", meaning="trip endpoint completeness (codes unknown)"),
    Column(12, "trip_endpoint_flag",  "トリップ起終点フラグ",  "str",  meaning="0 trip start, 1 trip end, 2 intermediate (inferred)"),
    Column(13, "tag_no",              "タグ番号",              "str",  meaning="tag number"),
    Column(14, "lon",                 "経度",                  "float", unit="degree", low=120.0, high=150.0, meaning="longitude, JGD2011 (≈WGS84)"),
    Column(15, "lat",                 "緯度",                  "float", unit="degree", low=20.0, high=50.0, meaning="latitude, JGD2011 (≈WGS84)"),
    Column(16, "recording_condition", "蓄積条件",              "str",  meaning="recording condition (codes unknown)"),
    Column(17, "road_type_code",      "道路種別コード",        "str",  meaning="road type code (list unknown)"),
    Column(18, "speed_kmh",           "速度",                  "float", unit="km/h", low=0.0, high=180.0, meaning="instantaneous speed"),
    Column(19, "altitude_raw",        "高度",                  "str",  meaning="altitude"),
    Column(20, "matching_flag",       "マッチングフラグ",      "str",  meaning="provider's map-matching flag"),
    Column(21, "matched_lon_raw",     "マッチング後経度",      "str",  unit="degree", meaning="longitude after the provider's map matching"),
    Column(22, "matched_lat_raw",     "マッチング後緯度",      "str",  unit="degree", meaning="latitude after the provider's map matching"),
    Column(23, "drm_version",         "DRMバージョン",         "str",  meaning="DRM road database version"),
    Column(24, "mesh_code",           "2次メッシュコード",     "str",  meaning="secondary mesh code (6 digits)"),
    Column(25, "drm_entry_node",      "流入ノード",            "str",  meaning="DRM entry node"),
    Column(26, "drm_exit_node",       "流出ノード",            "str",  meaning="DRM exit node"),
    Column(27, "distance_from_entry_raw", "流入ノードからの距離", "str", meaning="distance from the entry node"),
    Column(28, "confirmed_flag",      "確定フラグ",            "str",  meaning="confirmed flag"),
    Column(29, "census_section_no",   "交通調査基本区間番号",  "str",  meaning="road traffic census basic section number"),
    Column(30, "direction_code",      "上り・下りコード",      "str",  meaning="direction code (up/down)"),
    Column(31, "administrator_code",  "管理者コード",          "str",  meaning="road administrator code"),
    Column(32, "updated_at_raw",      "更新日時",              "str",  meaning="update timestamp"),
)
# fmt: on

STYLE_1_2_N_COLUMNS = len(STYLE_1_2_COLUMNS)
assert STYLE_1_2_N_COLUMNS == 33
assert [c.index for c in STYLE_1_2_COLUMNS] == list(range(33))

# The columns the warehouse keeps typed; the remaining raw codes are kept as text.
STYLE_1_2_BY_NAME = {c.name: c for c in STYLE_1_2_COLUMNS}


def column_index(name: str) -> int:
    """0-based CSV position of a 様式1-2 column, by warehouse name."""
    try:
        return STYLE_1_2_BY_NAME[name].index
    except KeyError:
        raise ValueError(f"unknown 様式1-2 column {name!r}") from None
