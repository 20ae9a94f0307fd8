"""Settings: every constant and configurable location of the product, in one place.

Modules import what they need from here; nothing else defines these values. Locations are
read from the environment when set (documented in README, section "Configuration").
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

# --- Coordinates ---------------------------------------------------------------------------
# JGD2011 / Japan Plane Rectangular CS IX: metres, covers Kanagawa and Tokyo. Every length and
# coordinate after ingest (x_m, y_m, radius_m, positions along roads) is in this CRS.
METRIC_CRS = "EPSG:6677"
LONLAT_CRS = "EPSG:4326"

# --- Plausibility of delivered points (etl.validate) ------------------------------------------
# A delivered file holds one 2次メッシュ and day: a point lying farther than this outside its file's
# 2次メッシュ (the mesh in the file name, else the row's 2次メッシュコード) is quarantined, metres.
MESH_MARGIN_M = 1000.0
# A point's GPS時刻 lies on its operation date (運行日) or on one of the this many days after it
# (trips past midnight); any other GPS時刻 is quarantined.
GPS_DAYS_AFTER_OPERATION = 1

# --- Road network ----------------------------------------------------------------------------
# Speed limit (km/h) by OSM highway class when the road carries no maxspeed. Residential
# classes are the 生活道路 that zone-30 policy targets; elsewhere the legal default of 60 km/h
# on general roads (道路交通法施行令 第11条) applies.
LIMIT_BY_HIGHWAY_KMH = {
    "residential": 30,
    "unclassified": 30,
    "living_street": 30,
    "motorway": 100,  # 道路交通法施行令 第27条: the legal maximum on expressways
    "trunk": 60,
    "primary": 60,
    "secondary": 60,
    "tertiary": 60,
}
LEGAL_DEFAULT_LIMIT_KMH = 60  # every other class (links, service roads, roads of unknown class)
# Road classes by OSM highway class, for drawing and wording (maps: 生活道路 / 幹線道路 / 通路) and for the
# label of an unnamed way (「生活道路 #3（名称なし）」). A way whose file gives no `role` is an arterial
# (role 'arterial': drawn and worded as a main road, never in the 生活道路 palette) when its class is here.
ARTERIAL_HIGHWAY_CLASSES: tuple[str, ...] = (
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
    "tertiary",
    "tertiary_link",
)
SERVICE_HIGHWAY_CLASSES: tuple[str, ...] = ("service", "track", "path", "footway", "pedestrian", "cycleway")
# The id of a road feature: the first of these properties a network file has (as text).
ROAD_ID_COLUMNS: tuple[str, ...] = ("road_id", "osm_id", "id")
# An outline made from a network's roads (`etc2calm district new --outline-from-roads`, geo/outline.py):
# the union of the faces enclosed by the roads, grown by this margin, metres — more than the matching
# radius, so the outer roads and the points matched to them lie inside, and every way leaving the area
# crosses the outline once, this far from its junction (a gate).
OUTLINE_FROM_ROADS_MARGIN_M = 25.0
# A 生活道路 (residential street): a limit at or below this, km/h. Used for cut-through, screening
# and the map's 生活道路 wording.
RESIDENTIAL_MAX_LIMIT_KMH = 30
# OSM classes left out of analyses by default: parking aisles and driveways are not streets
# (they would get the legal 60 km/h and clutter every table). Override per district file
# (`exclude_highway = [...]`) or with `etc2calm analyze --exclude-highway`.
EXCLUDED_HIGHWAY_CLASSES: tuple[str, ...] = ("service",)

# --- Matching --------------------------------------------------------------------------------
DEFAULT_RADIUS_M = 20.0  # a point matches the nearest segment within this distance, metres
HEADING_TOLERANCE_DEG = 45.0  # a candidate's bearing must agree with the point's heading within this
MAX_HEADING_GAP_S = 120.0  # a heading from a previous point older than this is unknown
MIN_HEADING_STEP_M = 5.0  # ... or from a previous point closer than this (GPS jitter when standing)
# Points kept around a network when matching: the network's bounding box grown by this margin,
# metres, so that the point before entering and after leaving an area (points ~200 m apart)
# is stored with the trip (cut-through and gate classification).
TRIP_CONTEXT_MARGIN_M = 300.0

# --- Aggregation and statistics --------------------------------------------------------------
P85 = 0.85
# ETC2.0 records 速度 in whole km/h; public material does not say whether the on-board unit rounds or
# truncates (docs/statistics.md). "rounded": a recorded v stands for the class [v - 0.5, v + 0.5);
# "truncated": for [v, v + 1). Percentiles taken from counts of recorded speeds (the cube, per-road
# figures, the bootstrap, monitoring) interpolate within that class (grouped-data percentile); the
# choice moves every such level by 0.5 km/h and leaves every change and difference in differences as is.
SPEED_RECORDING = "rounded"
# Lower bound of the class of a recorded whole km/h minus the recorded value, per SPEED_RECORDING choice.
SPEED_CLASS_OFFSET_KMH = {"rounded": -0.5, "truncated": 0.0}
SPEED_CLASS_WIDTH_KMH = 1.0  # the recorded resolution, km/h
# Passage speeds (a section travel speed, or a mean of a passage's points) are kept at 0.1 km/h.
PASSAGE_SPEED_DECIMALS = 1
# The passage speed an indicator may use; the first is the default, behind passage_mean, passage_p85,
# passage_share and screening: "section", the section travel speed (distance along the street / time
# taken, analysis.points); "mean", the mean of the passage's points' instantaneous speeds (the
# sensitivity indicator passage_spot_mean); "max", their maximum.
PASSAGE_SPEEDS = ("section", "mean", "max")
# Section travel speed (docs/statistics.md): consecutive points of a trip form pairs, Δs the distance along
# the street (beyond its ends: straight to the context point), Δt the time between them. As roadlabo/ETC's
# route performance (src/30_route_performance.py), a pair is dropped when Δt <= 0, |Δs| < SECTION_MIN_STEP_M,
# |Δs| > SECTION_MAX_STEP_M, Δt > SECTION_MAX_GAP_S or Δs/Δt > SECTION_MAX_KMH; a gap or a step over the
# limits, and a reversal of direction along the street (a U-turn), also split a run into two passages.
SECTION_MIN_STEP_M = 1.0
SECTION_MAX_STEP_M = 350.0
SECTION_MAX_GAP_S = 600.0
SECTION_MAX_KMH = 180.0
# A passage has a section travel speed only when its pairs cover at least this much of its street, metres
# (the whole street when shorter, to SECTION_MIN_STEP_M): a trip that begins or ends a few metres into the
# street, or only clips its end at a junction, is timed mostly on the neighbouring road (its context pair)
# and is no traversal of this one. Such passages still count as passages (volume, braking per passage).
SECTION_MIN_COVERED_M = 100.0
# ... and only when its points do not all lie within this of one node of the street (an end or a
# junction), metres (the matching radius): such points may belong to a trip that only crossed the
# junction there on the other road (the matcher assigns them to either road).
SECTION_END_ZONE_M = 20.0
# A context point is not used when the route through the street's node nearest to it is longer than this
# many times the straight distance to the run's end point (plus SECTION_CONTEXT_TOLERANCE_M): the trip
# came another way (it crossed the street at a junction nearer the point). A right-angle turn is 1.41.
SECTION_MAX_DETOUR = 1.5
# A context point (the trip's point just before or after a run on a street, not on it) is taken as reached
# through the street's node nearest to it (a junction or an end) only when it lies no closer to the run's
# end point than to that node, within this tolerance, metres (else it is a GPS stray beside the street,
# and the run is not extended on that side).
SECTION_CONTEXT_TOLERANCE_M = 20.0
# Two roads meet (a junction) where a node of one lies within this of a node of the other in x and in y,
# metres: link ends digitised as one point, up to rounding.
JUNCTION_TOLERANCE_M = 0.5
# Before/after indicators (analysis.bootstrap): of points, and of passages (one vehicle's traversal of one road).
POINT_INDICATORS = ("mean", "p85", "share", "share_plus10")
PASSAGE_INDICATORS = ("passage_mean", "passage_p85", "passage_share")
INDICATORS = POINT_INDICATORS + PASSAGE_INDICATORS
# The column of road_period_stats / group_period_stats that holds each indicator's level.
INDICATOR_COLUMNS = {
    "mean": "mean_kmh",
    "p85": "p85_kmh",
    "share": "share_at_or_over_limit",
    "share_plus10": "share_at_or_over_limit_plus_10",
    "passage_mean": "passage_mean_kmh",
    "passage_p85": "passage_p85_kmh",
    "passage_share": "passage_share_at_or_over_limit",
}
# Indicators that are shares (a fraction 0..1 of points or passages at or over a speed); the others are
# speeds in km/h. maps.wording names them; the map's chooser offers MAP_INDICATORS, in this order (the
# first one stored is shown first).
SHARE_INDICATORS = ("share", "share_plus10", "passage_share")
MAP_INDICATORS = ("passage_share", "share", "p85", "mean")
DEFAULT_RESAMPLES = 1000  # cluster-bootstrap replicates
# A bootstrap interval whose resamples take fewer distinct values than this is flagged `degenerate`
# (a share of 0 or 1, a level that sits on one recorded value): it shows the data's grid, not sampling.
MIN_DISTINCT_RESAMPLES = 3
DEFAULT_SEED = 0
CONFIDENCE = 0.95
# Placebo streets (analysis/placebo.py): the headline claims an effect only if the treated street's
# difference in differences ranks among the largest falls of the district's untreated residential
# streets, p = rank / (n + 1) <= PLACEBO_MAX_P, when there are at least PLACEBO_MIN_STREETS of them
# (with 9 the smallest possible p is 0.1); with fewer, the rank is stated and left out of the rule.
PLACEBO_MIN_STREETS = 9
PLACEBO_MAX_P = 0.1
ADEQUATE_MIN_VEHICLES = 50  # sample adequacy: figures from fewer distinct vehicles are flagged low_sample
# Publication threshold: no public output (map, report, sheet, export) shows a figure, a chart
# or a count derived from fewer distinct vehicles than this.
PUBLIC_MIN_VEHICLES = 10

# --- Publishing (map, report, sheet, export) -------------------------------------------------
PUBLIC_LANGUAGES = ("ja", "en")  # every public label exists in both; Japanese is the default
# Credits printed on every public output; a district file overrides them in its [publication] table.
DEFAULT_PUBLISHER = {"ja": "etc2calm", "en": "etc2calm"}
DEFAULT_SOURCE = {"ja": "出典：ETC2.0プローブ情報（国土交通省）", "en": "Source: ETC2.0 probe data (MLIT, Japan)"}
# The headline's speed indicator (a comparison_results indicator) and its "share of vehicles".
DEFAULT_HEADLINE_SPEED_INDICATOR = "p85"
HEADLINE_SHARE_INDICATOR = "passage_share"  # falls back to the share of points when passages are not stored
# The comparison streets "hardly changed" when their interval includes zero and the change is smaller
# than this (km/h for speeds, percentage points for shares).
NO_CHANGE_KMH = 1.0
NO_CHANGE_POINTS = 3.0
# Monitoring's equivalence verdict (analysis/equivalence.py): the latest month "holds" the after level
# only when its 95 % difference-in-differences interval against the after period lies within ±margin
# (km/h for speeds, percentage points for shares); "rising"/"falling" only when beyond it two months running.
EQUIVALENCE_MARGIN_KMH = 1.0
EQUIVALENCE_MARGIN_POINTS = 3.0
# Pre-period months (the selection's and the parallel trend's data, analysis/pretrend.py): the complete
# calendar months right before the district's before period, at most this many.
PRE_PERIOD_MAX_MONTHS = 12
# Speed classes of published ETC2.0 speed maps (毎日新聞 2016-05-09): <= 30 km/h blue, 30-40 green,
# >= 40 orange/red. Used for every speed layer (mean, 85th percentile) on map and sheet.
SPEED_CLASS_BREAKS_KMH = (30.0, 40.0)
# Traffic-calming devices a district file may place on the map ([[devices]] kind).
DEVICE_KINDS = ("hump", "narrowing")

# --- Behaviour -------------------------------------------------------------------------------
G_MS2 = 9.80665
DEFAULT_BRAKING_THRESHOLD_G = 0.25  # sudden braking (急減速): the order of ETC2.0's recording threshold
HOTSPOT_CELL_M = 25.0  # braking hot spots: square grid cell, metres
HOTSPOT_MIN_EVENTS = 2

# --- Screening (analysis/screening.py: where to calm next) ------------------------------------
# A candidate is a residential road (limit <= RESIDENTIAL_MAX_LIMIT_KMH) with at least this many
# distinct vehicles in the screened period (`etc2calm screen --min-vehicles`); the same minimum
# as the adequacy flag of the before/after comparison.
SCREENING_MIN_VEHICLES = ADEQUATE_MIN_VEHICLES
# Weights (points out of 100) of the score's components; each component is scaled to 0-1 by the
# highest value among the candidates (why these weights: analysis/screening.py and docs/screening.md).
SCREENING_WEIGHTS: dict[str, float] = {
    "share_at_or_over_limit": 25.0,  # share of passages at or over the limit (「30キロ以上の割合」)
    "share_at_or_over_limit_plus_10": 15.0,  # share of passages at or over the limit + 10 km/h
    "p85_over_limit": 10.0,  # 85th percentile passage speed above the limit, km/h (0 when below)
    "braking_per_1000_passages": 20.0,  # sudden braking (急減速) per 1,000 passages
    "cut_through_share": 15.0,  # share of the road's trips that are cut-through (抜け道) trips
    "passages_per_day": 15.0,  # volume: passages per day of the period
}
SCREENING_TOP_N = 10  # candidates printed by `etc2calm screen` (the CSV holds every candidate)
# With an --area polygon, a road is in the area when at least this fraction of its length lies inside.
SCREENING_AREA_MIN_INSIDE = 0.5

# --- Gates (analysis/gates.py: through traffic classified by entry and exit gates) -------------
# A crossing of the outline is named by the gate on the road of the point inside (else the gate
# nearest to where the two points' segment crosses the outline, within this distance, metres).
GATE_SNAP_M = 150.0
# Derived gates: crossings of one road with the outline closer than this are one gate, metres.
GATE_MERGE_M = 30.0
# Time bands of the gate OD table: (name, first hour, end hour) of the trip's first point in the area (JST).
GATE_TIME_BANDS: tuple[tuple[str, int, int], ...] = (
    ("0-7", 0, 7),
    ("7-9", 7, 9),
    ("9-17", 9, 17),
    ("17-19", 17, 19),
    ("19-24", 19, 24),
)
GATE_CLASSES = ("through", "into", "out_of", "internal", "perimeter")

# --- Locations -------------------------------------------------------------------------------
ENV_HOME = "ETC2CALM_HOME"  # folder holding data/ (districts, networks, wards); default: the installed package data
ENV_WAREHOUSE = "ETC2CALM_WAREHOUSE"  # default warehouse folder
ENV_OUTPUT = "ETC2CALM_OUTPUT"  # default output root for maps, reports and sheets
# Folders of district files kept outside the package (one or more, separated by os.pathsep), searched
# before the bundled districts; the Prefect variable of the same role is read by the flows.
ENV_DISTRICTS = "ETC2CALM_DISTRICTS"
PREFECT_DISTRICTS_VARIABLE = "etc2calm_districts"
# '0', 'no', 'false' or 'off' hides the bundled districts (大倉山三丁目, 中山町) from every list and lookup.
ENV_BUNDLED_DISTRICTS = "ETC2CALM_BUNDLED_DISTRICTS"


def data_dir() -> Path:
    """Bundled inputs: ``$ETC2CALM_HOME/data`` when set, else the installed package data."""
    home = os.environ.get(ENV_HOME)
    if home:
        return Path(home) / "data"
    return Path(str(resources.files("etc2calm_data")))


def districts_dir() -> Path:
    """The bundled district files (data/districts/); config.district_files searches the user's folders first."""
    return data_dir() / "districts"


def district_folders_from_env() -> list[Path]:
    """The folders of ``$ETC2CALM_DISTRICTS`` (os.pathsep-separated, empty entries ignored), in order."""
    return [Path(p).expanduser() for p in os.environ.get(ENV_DISTRICTS, "").split(os.pathsep) if p.strip()]


def bundled_districts_enabled() -> bool:
    """False when ``$ETC2CALM_BUNDLED_DISTRICTS`` is 0 / no / false / off."""
    return os.environ.get(ENV_BUNDLED_DISTRICTS, "").strip().lower() not in ("0", "no", "false", "off")


def wards_path() -> Path:
    """Ward outlines (国土数値情報 N03) of the bundled districts."""
    return data_dir() / "wards" / "yokohama_wards_kohoku_midori.geojson"


def default_warehouse() -> Path:
    """``$ETC2CALM_WAREHOUSE``, else ``data/warehouse`` under the working directory."""
    return Path(os.environ.get(ENV_WAREHOUSE) or "data/warehouse")


def default_output_dir() -> Path:
    """``$ETC2CALM_OUTPUT``, else ``build/maps`` under the working directory."""
    return Path(os.environ.get(ENV_OUTPUT) or "build/maps")


# --- Environment variables of the lower rooms ----------------------------------------------------
# Every ETC2CALM_* name the product reads lives in this module (the locations above, these below).
ENV_ID_KEY = "ETC2CALM_ID_KEY"  # the pseudonymisation key itself (etl/pseudonymise.py)
ENV_ID_KEY_FILE = "ETC2CALM_ID_KEY_FILE"  # else the key file (default $XDG_CONFIG_HOME/etc2calm/id_key)
ENV_DASK_SCHEDULER = "ETC2CALM_DASK_SCHEDULER"  # address of an existing Dask scheduler (etl/cluster.py)
ENV_BEHAVIOR_LAYOUT = "ETC2CALM_BEHAVIOR_LAYOUT"  # TOML file of the 挙動履歴 layout (etl/spec.py)
ENV_TEST_CRASH = "ETC2CALM_TEST_CRASH"  # fault injection of the kill tests, read only by etl/_testhooks.py
