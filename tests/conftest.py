"""Shared fixtures: hand-made 様式1-2 rows and a tiny road network with known geometry."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from analysis.filters import ALL_POINTS_FILTER
from config.districts import District, Period

ROOT = Path(__file__).resolve().parents[1]
# The bundled districts, networks and wards of the checkout under test (not of another installed copy).
os.environ.setdefault("ETC2CALM_HOME", str(ROOT))
# Prefect's ephemeral API (a flow run without a server) gets 180 s to start, set before Prefect is
# imported: its default of 20 s timed out on a loaded 2-core machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# Under pytest-xdist (`make test-fast`, `-n 2`) each worker gets its own Prefect home: two workers' flow
# runs on one ephemeral SQLite database would wait on its lock ("database is locked").
if os.environ.get("PYTEST_XDIST_WORKER"):
    _prefect_home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect")
    os.environ["PREFECT_HOME"] = str(_prefect_home / f"xdist-{os.environ['PYTEST_XDIST_WORKER']}")

BEFORE = Period("before", dt.date(2017, 9, 1), dt.date(2017, 9, 30))
AFTER = Period("after", dt.date(2017, 11, 1), dt.date(2017, 11, 30))

# A small area in 港北区 (near 大倉山三丁目), lon/lat degrees.
LON0, LAT0 = 139.6270, 35.5210
# Degrees per metre at this latitude (good to ~0.1 % over a few hundred metres).
DEG_LAT_PER_M = 1 / 110_950.0
DEG_LON_PER_M = 1 / 90_690.0


def style12_row(
    operation_id: str,
    gps_time: str,
    lon: float,
    lat: float,
    speed,
    *,
    op_date: str | None = None,
    vehicle_type: int = 2,
    vehicle_use: int = 1,
    trip_no: int = 1,
    mesh: str | None = None,
) -> str:
    """One 33-field 様式1-2 line (no newline); its 2次メッシュコード is that of its position unless given."""
    f = [""] * 33
    f[0] = "RSU0001"
    f[1] = gps_time
    f[2] = op_date or gps_time[:8]
    f[3] = operation_id
    f[4] = str(vehicle_type)
    f[5] = str(vehicle_use)
    f[6] = gps_time
    f[7] = "1"
    f[8] = str(trip_no)
    f[12] = "2"
    f[14] = f"{lon:.7f}"
    f[15] = f"{lat:.7f}"
    f[18] = str(speed)
    f[21] = f"{lon:.7f}"
    f[22] = f"{lat:.7f}"
    f[24] = _mesh_of(lon, lat) if mesh is None else mesh
    return ",".join(f)


def _mesh_of(lon, lat) -> str:
    from etl.mesh import mesh2_code

    try:
        return str(int(mesh2_code(float(lat), float(lon))))
    except (TypeError, ValueError):  # a position that is no number or outside the mesh area: any code
        return "533925"


def write_zip(path: Path, lines: list[str], encoding: str = "cp932", newline: str = "\r\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.csv", (newline.join(lines) + newline).encode(encoding))
    return path


def offset(east_m: float, north_m: float) -> tuple[float, float]:
    """lon, lat of a point east_m / north_m metres from (LON0, LAT0)."""
    return LON0 + east_m * DEG_LON_PER_M, LAT0 + north_m * DEG_LAT_PER_M


@pytest.fixture(autouse=True)
def id_key(monkeypatch, tmp_path):
    """Tests never touch the user's key file: a fixed key through the environment."""
    monkeypatch.setenv("ETC2CALM_ID_KEY", "test-key-not-secret")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return "test-key-not-secret"


@pytest.fixture
def tiny_network(tmp_path) -> Path:
    """Two parallel east-west roads 100 m apart: R1 (residential, 30 km/h), A1 (maxspeed 50)."""
    w, e = offset(-200, 0), offset(200, 0)
    wn, en = offset(-200, 100), offset(200, 100)
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"road_id": "R1", "name": "生活道路", "highway": "residential"},
                "geometry": {"type": "LineString", "coordinates": [list(w), list(e)]},
            },
            {
                "type": "Feature",
                "properties": {"road_id": "A1", "name": "幹線", "highway": "secondary", "maxspeed": "50"},
                "geometry": {"type": "LineString", "coordinates": [list(wn), list(en)]},
            },
        ],
    }
    path = tmp_path / "tiny_roads.geojson"
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    return path


def network(path, key: str = "t", treated=(), comparison=(), radius_m: float = 20.0, exclude_highway=("service",)):
    """A road network prepared for matching (analysis.network.Network) with roles."""
    from analysis.network import prepare_network

    return prepare_network(
        path,
        key,
        radius_m=radius_m,
        treated=tuple(treated),
        comparison=tuple(comparison),
        exclude_highway=exclude_highway,
    )


def make_test_district(
    network_path, key: str = "t", treated=("R1",), comparison=("A1",), area_path=None, periods=None
) -> District:
    """A District over a test network (periods BEFORE / AFTER unless given)."""
    periods = periods or {"before": BEFORE, "after": AFTER}
    return District(
        key=key,
        name_ja="テスト地区",
        name_en="Test",
        ward_ja="港北区",
        ward_code="14109",
        center_lat=35.52,
        center_lon=139.62,
        network_path=Path(network_path),
        synthetic_network=True,
        periods=periods,
        default_before="before",
        default_after="after",
        treated_roads=tuple(treated),
        comparison_roads=tuple(comparison),
        source_path=Path(network_path),
        area_path=area_path,
    )


def make_delivery(root, seed=11):
    """Points on R1 (y≈0 m), on A1 (y≈100 m), far from both, and outside both periods.

    Returns the expected truth, computed here from the generated values only.
    """
    rng = np.random.default_rng(seed)
    truth = {}
    files = {}
    for label, day, mean in (("before", "20170905", 33.0), ("after", "20171110", 24.0)):
        lines = []
        r1_speed, r1_vid, a1_speed, a1_vid = [], [], [], []
        for i in range(240):
            vid = f"{rng.integers(1, 40):012d}"
            east = rng.uniform(-190, 190)
            t = f"{day}{7 + i // 60:02d}{i % 60:02d}{rng.integers(0, 60):02d}"
            kind = i % 4
            if kind in (0, 1):  # on R1, a few metres of GPS noise
                speed = int(np.clip(round(rng.normal(mean, 5)), 0, 180))
                lon, lat = offset(east, rng.normal(0, 3))
                r1_speed.append(speed), r1_vid.append(vid)
            elif kind == 2:  # on A1
                speed = int(round(rng.normal(45, 6)))
                lon, lat = offset(east, 100 + rng.normal(0, 3))
                a1_speed.append(speed), a1_vid.append(vid)
            else:  # 50 m from both roads: matched to neither (radius 20 m)
                speed = 50
                lon, lat = offset(east, 50 + rng.uniform(-5, 5))
            lines.append(style12_row(vid, t, lon, lat, speed))
        # Inside the area but a day outside the period: must not count.
        lon, lat = offset(0, 0)
        outside = "20171001120000" if label == "before" else "20171201120000"
        lines.append(style12_row("000000009999", outside, lon, lat, 99))
        files[label] = write_zip(root / f"OUT1-2_533925_{day}.zip", lines)
        truth[label] = {"R1": (np.array(r1_speed), set(r1_vid)), "A1": (np.array(a1_speed), set(a1_vid))}
    return truth


def grouped_percentile(speeds, q=0.85, lower_offset=-0.5):
    """The grouped-data percentile of whole-km/h speeds, written out class by class (the test's own
    computation, independent of geo.aggregate): a recorded v stands for [v + lower_offset, v +
    lower_offset + 1) (-0.5: rounded speeds, 0: truncated); P = L + (q N - F) / f in the first class
    whose cumulative count F + f reaches q N."""
    speeds = np.asarray(speeds, dtype=float)
    target = q * len(speeds)
    below = 0
    values, counts = np.unique(speeds, return_counts=True)  # the classes in order, and their counts
    for v, f in zip(values.tolist(), counts.tolist(), strict=True):
        if below + f >= target - 1e-9:
            return v + lower_offset + (target - below) / f
        below += f
    return float("nan")


def expected(speeds, vids, limit):
    return {
        "n_points": len(speeds),
        "n_vehicles": len(vids),
        "mean_kmh": speeds.mean(),
        "p85_kmh": grouped_percentile(speeds),  # whole km/h recorded: the grouped-data percentile
        "share_at_or_over_limit": (speeds >= limit).mean(),
    }


# --- Publishing fixtures: stored results built by hand (maps, report, sheet, export) -------------

MAP_LON, MAP_LAT = 139.6300, 35.5330
ROAD_DEG = 0.002  # length of the hand-made roads, degrees


def make_map_district(tmp_path: Path, devices=(), area_path=None) -> District:
    """A District with two labelled periods, one treated road r1 and one comparison road r2."""
    return District(
        key="testdistrict",
        name_ja="テスト町一丁目",
        name_en="Test-cho 1",
        ward_ja="港北区",
        ward_code="14109",
        center_lat=MAP_LAT,
        center_lon=MAP_LON,
        network_path=tmp_path / "network.geojson",
        synthetic_network=True,
        periods={
            "before": Period("before", dt.date(2023, 4, 1), dt.date(2023, 6, 30), "整備前"),
            "after": Period("after", dt.date(2024, 4, 1), dt.date(2024, 6, 30), "整備後"),
        },
        default_before="before",
        default_after="after",
        treated_roads=("r1",),
        comparison_roads=("r2",),
        source_path=tmp_path / "testdistrict.toml",
        area_path=area_path,
        ward_en="Kohoku Ward",
        devices=tuple(devices),
    )


def make_map_roads():
    """Four small streets: treated r1, comparison r2, a sparse one r3 (under 10 vehicles) and r4 without stats."""
    import geopandas as gpd
    from shapely.geometry import LineString

    d, lon, lat = ROAD_DEG, MAP_LON, MAP_LAT
    rows = [
        ("r1", "桜通り", "Sakura-dori", "treated", LineString([(lon, lat), (lon + d, lat)])),
        ("r2", "楓通り", "Kaede-dori", "comparison", LineString([(lon, lat + d), (lon + d, lat + d)])),
        ("r3", "ひっそり小路", "", "residential", LineString([(lon, lat), (lon, lat + d)])),
        ("r4", "名無し坂", "", "residential", LineString([(lon + d, lat), (lon + d, lat + d)])),
    ]
    gdf = gpd.GeoDataFrame(
        [
            dict(road_id=r, name=n, name_en=e, highway="residential", limit_kmh=30.0, role=ro, geometry=g)
            for r, n, e, ro, g in rows
        ],
        crs="EPSG:4326",
    )
    return gdf.to_crs("EPSG:6677")  # as analysis.results.load_district_results holds them


STATS_COLUMNS = [
    "road_id",
    "period",
    "n_points",
    "n_vehicles",
    "mean_kmh",
    "p85_kmh",
    "share_at_or_over_limit",
    "share_at_or_over_limit_plus_10",
    "n_passages",
    "passage_mean_kmh",
    "passage_p85_kmh",
    "passage_share_at_or_over_limit",
]


def make_map_stats():
    """Stored figures of r1–r3 in both periods; r3 has 7 / 6 vehicles and distinctive figures."""
    import pandas as pd

    rows = [
        # road, period, n_points, n_vehicles, mean, p85, share, share+10, n_passages, p_mean, p_p85, p_share
        ("r1", "before", 900, 120, 31.2, 38.4, 0.42, 0.11, 300, 30.6, 37.1, 0.384),
        ("r1", "after", 800, 110, 24.9, 29.5, 0.19, 0.02, 280, 24.4, 28.6, 0.061),
        ("r2", "before", 700, 95, 29.0, 34.0, 0.35, 0.05, 250, 28.7, 33.2, 0.301),
        ("r2", "after", 720, 97, 29.4, 34.3, 0.38, 0.06, 260, 29.1, 33.9, 0.326),
        ("r3", "before", 31, 7, 47.7, 53.3, 0.873, 0.571, 9, 46.6, 52.4, 0.777),
        ("r3", "after", 29, 6, 46.1, 52.2, 0.861, 0.514, 8, 45.3, 51.8, 0.743),
    ]
    df = pd.DataFrame(rows, columns=STATS_COLUMNS)
    df["limit_kmh"] = 30.0
    return df


_CMP = {
    "mean": "mean_kmh",
    "p85": "p85_kmh",
    "share": "share_at_or_over_limit",
    "share_plus10": "share_at_or_over_limit_plus_10",
    "passage_mean": "passage_mean_kmh",
    "passage_p85": "passage_p85_kmh",
    "passage_share": "passage_share_at_or_over_limit",
}


def comparisons_from(stats, treated=("r1",), control=("r2",), half_width=None, flags=None):
    """comparison_results per indicator as the comparison stores them, from per-road figures: pooled units take
    the single road's figures, intervals are change ± half_width (km/h, or fraction for shares)."""
    import numpy as np
    import pandas as pd

    half_width = half_width or {}
    flags = flags or {}
    by = stats.set_index(["road_id", "period"])
    out = {}
    for ind, col in _CMP.items():
        hw = half_width.get(ind, 0.6 if col.endswith("_kmh") else 0.04)
        rows = []
        for unit, road in [
            *((r, r) for r in treated),
            *((r, r) for r in control),
            ("treated", treated[0]),
            ("control", control[0]),
        ]:
            b, a = by.loc[(road, "before")], by.loc[(road, "after")]
            lw = 0.7 * hw  # the levels' own intervals (narrower than the change's)
            rows.append(
                dict(
                    unit=unit,
                    indicator=ind,
                    before=b[col],
                    after=a[col],
                    change=a[col] - b[col],
                    ci_low=a[col] - b[col] - hw,
                    ci_high=a[col] - b[col] + hw,
                    n_before=b["n_points"],
                    n_after=a["n_points"],
                    n_vehicles_before=b["n_vehicles"],
                    n_vehicles_after=a["n_vehicles"],
                    flag=flags.get(unit, ""),
                    before_ci_low=b[col] - lw,
                    before_ci_high=b[col] + lw,
                    after_ci_low=a[col] - lw,
                    after_ci_high=a[col] + lw,
                )
            )
        t, c = rows[-2], rows[-1]
        did = t["change"] - c["change"]
        rows.append(
            dict(
                unit="did",
                indicator=ind,
                before=np.nan,
                after=np.nan,
                change=did,
                ci_low=did - 1.4 * hw,
                ci_high=did + 1.4 * hw,
                n_before=t["n_before"] + c["n_before"],
                n_after=t["n_after"] + c["n_after"],
                n_vehicles_before=min(t["n_vehicles_before"], c["n_vehicles_before"]),
                n_vehicles_after=min(t["n_vehicles_after"], c["n_vehicles_after"]),
                flag=flags.get("did", ""),
                before_ci_low=np.nan,
                before_ci_high=np.nan,
                after_ci_low=np.nan,
                after_ci_high=np.nan,
            )
        )
        out[ind] = pd.DataFrame(rows)
    return out


def make_map_results(
    tmp_path=None,
    *,
    stats=None,
    roads=None,
    district=None,
    comparisons=None,
    hotspots=None,
    cut_through=None,
    cut_through_streets=None,
    braking=None,
    distributions=None,
    braking_source="points",
    treated="r1",
    control="r2",
):
    """analysis.results.DistrictResults of the hand-made district (as load_district_results returns them)."""
    import pandas as pd

    from analysis.results import DistrictResults

    district = district or make_map_district(Path(tmp_path or "."))
    stats = make_map_stats() if stats is None else stats
    roads = make_map_roads() if roads is None else roads
    treated_rows = stats[stats["road_id"] == treated].assign(road_group="treated")
    control_rows = stats[stats["road_id"] == control].assign(road_group="comparison")
    groups = pd.concat([treated_rows, control_rows], ignore_index=True).drop(columns="road_id")
    if distributions is None:
        rows = []
        for unit, _road in (("r1", "r1"), ("r2", "r2"), ("treated", "r1"), ("control", "r2")):
            for period, centre in (("before", 31), ("after", 25)):
                for b in range(centre - 8, centre + 9):
                    rows.append(dict(unit=unit, period=period, speed_bin_kmh=float(b), n_points=20 - abs(b - centre)))
        distributions = pd.DataFrame(rows)
    if braking is None:
        braking = pd.DataFrame(
            [
                ("before", "r1", 14, 300, 1000 * 14 / 300, 12),
                ("after", "r1", 3, 280, 1000 * 3 / 280, 3),
                ("before", "r2", 0, 250, 0.0, 0),
                ("after", "r2", 11, 260, 1000 * 11 / 260, 11),
                ("before", "r3", 2, 9, 1000 * 2 / 9, 2),
                ("after", "r3", 1, 8, 125.0, 1),
            ],
            columns=["period", "road_id", "n_events", "n_passages", "events_per_1000_passages", "n_vehicles"],
        )
    if hotspots is None:
        hotspots = pd.DataFrame(
            [
                ("before", MAP_LON + 0.0003, MAP_LAT + 0.0001, 12, 12),
                ("after", MAP_LON + 0.0001, MAP_LAT + ROAD_DEG, 30, 25),
                ("after", MAP_LON + ROAD_DEG - 0.0001, MAP_LAT + ROAD_DEG - 0.0004, 7, 6),
            ],
            columns=["period", "lon", "lat", "n_events", "n_vehicles"],
        )
    if cut_through is None:
        cut_through = pd.DataFrame(
            [("before", 410, 120, 120 / 410, 150, 60), ("after", 380, 95, 95 / 380, 140, 48)],
            columns=["period", "n_trips", "n_cut_through", "share_cut_through", "n_vehicles", "n_vehicles_cut_through"],
        )
    if cut_through_streets is None:
        cut_through_streets = pd.DataFrame(
            [
                ("after", "r1", 200, 70, 40, 0.35),
                ("after", "r2", 150, 18, 12, 0.12),
                ("after", "r3", 9, 3, 3, 0.333),
            ],
            columns=["period", "road_id", "n_trips", "n_cut_through", "n_vehicles_cut_through", "share_cut_through"],
        )
    return DistrictResults(
        district_key=district.key,
        filter=ALL_POINTS_FILTER,
        periods={k: district.periods[k] for k in ("before", "after")},
        roads=roads,
        road_stats=stats,
        group_stats=groups,
        comparisons=comparisons or comparisons_from(stats, treated=(treated,), control=(control,)),
        distributions=distributions,
        braking=braking,
        hotspots=hotspots,
        cut_through=cut_through,
        cut_through_streets=cut_through_streets,
        resamples=1000,
        seed=0,
        min_vehicles=50,
        threshold_g=0.25,
        braking_source=braking_source,
        radius_m=20.0,
        computed_at=dt.datetime(2024, 7, 1, 9, 0),
        network_current=True,
    )


def square(lon: float, lat: float, r: float):
    from shapely.geometry import Polygon

    return Polygon([(lon - r, lat - r), (lon + r, lat - r), (lon + r, lat + r), (lon - r, lat + r)])


def write_area(path: Path, lon: float = MAP_LON + 0.001, lat: float = MAP_LAT + 0.001, r: float = 0.0015) -> Path:
    from shapely.geometry import mapping

    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {}, "geometry": mapping(square(lon, lat, r))}],
            }
        ),
        encoding="utf-8",
    )
    return path


def fabricated_stats(roads) -> pd.DataFrame:  # noqa: F821
    """Deterministic figures for a bundled network: every 5th road under 10 vehicles, every 7th without 'after'."""
    import pandas as pd

    rows = []
    for i, rid in enumerate(roads["road_id"].astype(str)):
        for period, drop in (("before", 0.0), ("after", 6.0)):
            if period == "after" and i % 7 == 3 and i % 5 != 2:
                continue
            nveh = 4 if i % 5 == 2 else 40 + 3 * i
            mean = 24 + (i * 37 % 13) - drop * (i % 2)
            share = min(0.95, max(0.0, (mean - 20) / 20))
            rows.append(
                dict(
                    road_id=rid,
                    period=period,
                    n_points=nveh * 3,
                    n_vehicles=nveh,
                    mean_kmh=mean,
                    p85_kmh=mean + 6,
                    share_at_or_over_limit=share,
                    share_at_or_over_limit_plus_10=share / 4,
                    n_passages=nveh * 2,
                    passage_mean_kmh=mean - 0.5,
                    passage_p85_kmh=mean + 5,
                    passage_share_at_or_over_limit=share * 0.9,
                    limit_kmh=30.0,
                )
            )
    return pd.DataFrame(rows)


def fabricated_results(district):
    """DistrictResults over a bundled district's network with fabricated_stats (no warehouse needed)."""
    import pandas as pd

    from analysis.network import assign_roles
    from geo.network import load_roads

    roads = assign_roles(load_roads(district.network_path), district.treated_roads, district.comparison_roads)
    stats = fabricated_stats(roads)
    t, c = district.treated_roads[0], district.comparison_roads[0]
    return make_map_results(
        district=district,
        stats=stats,
        roads=roads,
        treated=t,
        control=c,
        hotspots=pd.DataFrame(columns=["period", "lon", "lat", "n_events", "n_vehicles"]),
        braking=pd.DataFrame(
            columns=["period", "road_id", "n_events", "n_passages", "events_per_1000_passages", "n_vehicles"]
        ),
        cut_through_streets=pd.DataFrame(
            columns=["period", "road_id", "n_trips", "n_cut_through", "n_vehicles_cut_through", "share_cut_through"]
        ),
        distributions=pd.DataFrame(columns=["unit", "period", "speed_bin_kmh", "n_points"]),
    )


MONTHS = tuple(dt.date(2024, m, 1) for m in (7, 8, 9, 10))


def make_monthly(
    comparisons,
    shifts=(0.2, -0.3, 0.1, 0.3),
    months=MONTHS,
    vehicles=None,
    half_width=0.8,
    indicators=None,
    did_half_width=0.5,
    did_offset=-0.1,
):
    """monthly_series rows as analysis.monitoring stores them, from a fixture's comparison_results: every
    indicator, treated, control and did, one row per month. The treated street's month i sits shifts[i]
    (km/h, or percentage points for shares) from its after level with a change interval ± half_width (a
    little wider every month); the comparison streets sit 0.1 − 0.8 · shifts[i] from theirs; the did row
    holds the difference of the two changes (1.8 · shifts[i] − 0.1, or + did_offset) with an interval ± did_half_width
    (as much wider every month). vehicles: n_vehicles per month (default 100). indicators: only these
    (default: every one of `comparisons`)."""
    import pandas as pd

    vehicles = vehicles or [100] * len(months)
    rows = []
    for ind, table in comparisons.items():
        if indicators is not None and ind not in indicators:
            continue
        scale = 0.01 if "share" in ind else 1.0
        t = table.set_index(table["unit"].astype(str))
        for unit in ("treated", "control"):
            after = float(t.loc[unit, "after"])
            for i, month in enumerate(months):
                d = (shifts[i] if unit == "treated" else 0.1 - 0.8 * shifts[i]) * scale
                hw = half_width * (1 + 0.13 * i) * scale
                rows.append(
                    dict(
                        month=month,
                        indicator=ind,
                        unit=unit,
                        value=after + d,
                        ci_low=after + d - hw / 2,
                        ci_high=after + d + hw / 2,
                        n=vehicles[i] * 3 + 2,
                        n_vehicles=vehicles[i],
                        after_level=after,
                        change_vs_after=d,
                        change_ci_low=d - hw,
                        change_ci_high=d + hw,
                        flag="low_sample" if vehicles[i] < 50 else "",
                    )
                )
        for i, month in enumerate(months):
            did = (1.8 * shifts[i] + did_offset) * scale
            hw = did_half_width * (1 + 0.13 * i) * scale
            rows.append(
                dict(
                    month=month,
                    indicator=ind,
                    unit="did",
                    value=float("nan"),
                    ci_low=float("nan"),
                    ci_high=float("nan"),
                    n=vehicles[i] * 6 + 4,
                    n_vehicles=vehicles[i],
                    after_level=float("nan"),
                    change_vs_after=did,
                    change_ci_low=did - hw,
                    change_ci_high=did + hw,
                    flag="low_sample" if vehicles[i] < 50 else "",
                )
            )
    return pd.DataFrame(rows)


GATE_BANDS = ("0-7", "7-9", "9-17", "17-19", "19-24")
# Whole-day classes (trips, distinct vehicles) per period: after has 4 internal trips of 3 vehicles (suppressed).
GATE_CLASS_ROWS = {
    "before": {
        "through": (410, 150),
        "into": (220, 90),
        "out_of": (230, 95),
        "internal": (0, 0),
        "perimeter": (140, 60),
    },
    "after": {
        "through": (352, 130),
        "into": (231, 88),
        "out_of": (226, 91),
        "internal": (4, 3),
        "perimeter": (187, 72),
    },
}
# Through pairs (entry, exit) → (trips, vehicles), whole day; G3 → G2 before: 5 trips of 4 vehicles (suppressed).
GATE_OD_ROWS = {
    "before": {("G1", "G2"): (200, 80), ("G2", "G1"): (150, 60), ("G1", "G3"): (55, 25), ("G3", "G2"): (5, 4)},
    "after": {("G1", "G2"): (170, 70), ("G2", "G1"): (140, 55), ("G3", "G1"): (42, 20)},
}


def make_gates(district) -> dict:
    """analysis.results.load_gates of the hand-made district: three gates, the class summary of both
    periods (whole day and five time bands; the 7-9 band of after has a through cell of 8 trips, 5
    vehicles) and the through pairs (whole day)."""
    import pandas as pd

    d, lon, lat = ROAD_DEG, MAP_LON, MAP_LAT
    gates = pd.DataFrame(
        [
            ("G1", "桜通り 西側", "r1", "derived", lon - 0.0002, lat),
            ("G2", "桜通り 東側", "r1", "derived", lon + d + 0.0002, lat),
            ("G3", "楓通り 北側", "r2", "derived", lon + d / 2, lat + d + 0.0002),
        ],
        columns=["gate_id", "gate_name", "road_id", "source", "lon", "lat"],
    ).assign(district=district.key)
    summary, od = [], []
    for key, classes in GATE_CLASS_ROWS.items():
        p = district.periods[key]
        base = dict(
            district=district.key, period=key, period_start=pd.Timestamp(p.start), period_end=pd.Timestamp(p.end)
        )
        total = sum(n for n, _ in classes.values())
        for cls, (n, v) in classes.items():
            summary.append(
                {**base, "time_band": "all", "gate_class": cls, "n_trips": n, "share_trips": n / total, "n_vehicles": v}
            )
        for i, band in enumerate(GATE_BANDS):  # each band: a fifth of the day, shifted a little per band
            cells = {
                cls: (max(round(n / 5) + (i if cls == "through" else 0), 0), max(round(v / 4), 0))
                for cls, (n, v) in classes.items()
            }
            if key == "after" and band == "7-9":
                cells["through"] = (8, 5)
            band_total = sum(n for n, _ in cells.values())
            for cls, (n, v) in cells.items():
                summary.append(
                    {
                        **base,
                        "time_band": band,
                        "gate_class": cls,
                        "n_trips": n,
                        "share_trips": n / band_total,
                        "n_vehicles": v,
                    }
                )
        for (a, b), (n, v) in GATE_OD_ROWS[key].items():
            od.append(
                {
                    **base,
                    "time_band": "all",
                    "gate_class": "through",
                    "entry_gate": a,
                    "exit_gate": b,
                    "n_trips": n,
                    "n_vehicles": v,
                }
            )
        od.append(
            {
                **base,
                "time_band": "all",
                "gate_class": "into",
                "entry_gate": "G3",
                "exit_gate": "",
                "n_trips": classes["into"][0],
                "n_vehicles": classes["into"][1],
            }
        )
    return {"gates": gates, "summary": pd.DataFrame(summary), "od": pd.DataFrame(od)}


def cli_in_process(*args) -> subprocess.CompletedProcess:
    """`etc2calm.cli.main(args)` in this process, as a CompletedProcess: the same parser, commands and
    error handling as the installed script without an interpreter start-up (~0.8 s) per call. Tests
    of the script itself, of kills and of other environments run it in a subprocess."""
    from etc2calm.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse errors and --help
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(["etc2calm", *map(str, args)], code or 0, out.getvalue(), err.getvalue())


ETC2CALM = str(Path(sys.executable).parent / "etc2calm")  # the installed console script


def cli(*args, env=None) -> subprocess.CompletedProcess:
    """The CLI in this process; with another environment (keys), the installed script in a subprocess."""
    if env is None:
        return cli_in_process(*args)
    return subprocess.run([ETC2CALM, *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


def q(wh, sql: str) -> list[tuple]:
    """Rows of a query on a warehouse's database, opened read-only (as a plain DuckDB user would)."""
    import duckdb

    con = duckdb.connect(str(Path(wh) / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def assert_one_line_error(proc, *needles) -> None:
    """A user mistake: non-zero exit, no traceback, one line on stderr containing every needle."""
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


# --- map pages (folium) ------------------------------------------------------------------------------

_BILINGUAL = re.compile(r'\{\s*"(?:ja|en)":\s*"(?:[^"\\]|\\.)*",\s*"(?:ja|en)":\s*"(?:[^"\\]|\\.)*"\s*\}')


def layer_data(page: str) -> list[dict]:
    """The data of every folium GeoJson layer of a map page (the JSON of its `_add({...})` call)."""
    return [json.loads(x) for x in re.findall(r"_add\((\{.*?\})\);\n", page, flags=re.S)]


def json_after(page: str, marker: str):
    """The JSON value that follows the first `marker` in a page (e.g. the options of a page script)."""
    return json.JSONDecoder().raw_decode(page, page.index(marker) + len(marker))[0]


def frame_options(page: str) -> dict:
    """The options maps._elements.Frame gave the page's frame (texts, bounds, language)."""
    return json.JSONDecoder().raw_decode(page, re.search(r"E2CFrame\.create\(map_[0-9a-f]+, ", page).end())[0]


def page_text(page: str) -> str:
    """A map page with the escapes of its scripts' JSON strings undone (folium writes the layers'
    data as ASCII JSON: Japanese as \\uXXXX, '<' as \\u003c, '"' as \\")."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page).replace('\\"', '"')


def bilingual_texts(page: str) -> list[dict]:
    """Every {'ja': …, 'en': …} text of a page's scripts: tooltips, popups, titles."""
    return [json.loads(x) for x in _BILINGUAL.findall(page)]


def map_features(page: str) -> list[dict]:
    """The features of every GeoJson layer of a map page."""
    return [f for d in layer_data(page) for f in d.get("features", [])]


_ELEMENT_ID = re.compile(r"\b([a-z][a-z0-9_]*?)_[0-9a-f]{32}(?![0-9a-f])")


def normalised(page: str) -> str:
    """A folium page with its random element ids (<kind>_<32 hex digits>) numbered in order of first
    appearance: two renderings of the same map compare equal."""
    seen: dict[str, str] = {}

    def name(m: re.Match) -> str:
        return seen.setdefault(m.group(0), f"{m.group(1)}_{len(seen)}")

    return _ELEMENT_ID.sub(name, page)
