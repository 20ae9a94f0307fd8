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

# --- Road network ----------------------------------------------------------------------------
# Speed limit (km/h) by OSM highway class when the road carries no maxspeed. Residential
# classes are the 生活道路 that zone-30 policy targets; elsewhere the legal default of 60 km/h
# on general roads (道路交通法施行令 第11条) applies.
LIMIT_BY_HIGHWAY_KMH = {"residential": 30, "unclassified": 30, "living_street": 30}
LEGAL_DEFAULT_LIMIT_KMH = 60
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
SPEED_BIN_KMH = 1.0  # histogram bin: speed rounded to the nearest km/h (ETC2.0 speeds are whole km/h)
P85 = 0.85
# Passage speeds (a mean of a passage's points, or a section speed) are kept at 0.1 km/h.
PASSAGE_SPEED_DECIMALS = 1
PASSAGE_SPEEDS = ("mean", "max", "section")  # the passage speed an indicator may use; the first is the default
# Before/after indicators (analysis.evaluation): of points, and of passages (one vehicle's traversal of one road).
POINT_INDICATORS = ("mean", "p85", "share", "share_plus10")
PASSAGE_INDICATORS = ("passage_mean", "passage_p85", "passage_share")
INDICATORS = POINT_INDICATORS + PASSAGE_INDICATORS
DEFAULT_RESAMPLES = 1000  # cluster-bootstrap replicates
DEFAULT_SEED = 0
CONFIDENCE = 0.95
ADEQUATE_MIN_VEHICLES = 50  # sample adequacy: figures from fewer distinct vehicles are flagged low_sample
# Publication threshold: no public output (map, report, sheet, export) shows a figure, a chart
# or a count derived from fewer distinct vehicles than this.
PUBLIC_MIN_VEHICLES = 10

# --- Behaviour -------------------------------------------------------------------------------
G_MS2 = 9.80665
DEFAULT_BRAKING_THRESHOLD_G = 0.25  # sudden braking (急減速): the order of ETC2.0's recording threshold
HOTSPOT_CELL_M = 25.0  # braking hot spots: square grid cell, metres
HOTSPOT_MIN_EVENTS = 2

# --- Locations -------------------------------------------------------------------------------
ENV_HOME = "ETC2CALM_HOME"  # folder holding data/ (districts, networks, wards); default: the installed package data
ENV_WAREHOUSE = "ETC2CALM_WAREHOUSE"  # default warehouse folder
ENV_OUTPUT = "ETC2CALM_OUTPUT"  # default output root for maps, reports and sheets


def data_dir() -> Path:
    """Bundled inputs: ``$ETC2CALM_HOME/data`` when set, else the installed package data."""
    home = os.environ.get(ENV_HOME)
    if home:
        return Path(home) / "data"
    return Path(str(resources.files("etc2calm_data")))


def districts_dir() -> Path:
    return data_dir() / "districts"


def wards_path() -> Path:
    """Ward outlines (国土数値情報 N03) of the bundled districts."""
    return data_dir() / "wards" / "yokohama_wards_kohoku_midori.geojson"


def default_warehouse() -> Path:
    """``$ETC2CALM_WAREHOUSE``, else ``data/warehouse`` under the working directory."""
    return Path(os.environ.get(ENV_WAREHOUSE) or "data/warehouse")


def default_output_dir() -> Path:
    """``$ETC2CALM_OUTPUT``, else ``build/maps`` under the working directory."""
    return Path(os.environ.get(ENV_OUTPUT) or "build/maps")
