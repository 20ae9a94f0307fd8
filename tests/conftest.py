"""Shared fixtures: hand-made 様式1-2 rows and a tiny road network with known geometry."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from config.districts import District, Period

BEFORE = Period("before", dt.date(2017, 9, 1), dt.date(2017, 9, 30))
AFTER = Period("after", dt.date(2017, 11, 1), dt.date(2017, 11, 30))

# A small area in 港北区 (near 大倉山三丁目), lon/lat degrees.
LON0, LAT0 = 139.6270, 35.5210
# Degrees per metre at this latitude (good to ~0.1 % over a few hundred metres).
DEG_LAT_PER_M = 1 / 110_950.0
DEG_LON_PER_M = 1 / 90_690.0


def style12_row(
    operation_id: str, gps_time: str, lon: float, lat: float, speed, *, op_date: str | None = None,
    vehicle_type: int = 2, vehicle_use: int = 1, trip_no: int = 1, mesh: str = "533925",
) -> str:  # fmt: skip
    """One 33-field 様式1-2 line (no newline)."""
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
    f[24] = mesh
    return ",".join(f)


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
            {"type": "Feature", "properties": {"road_id": "R1", "name": "生活道路", "highway": "residential"},
             "geometry": {"type": "LineString", "coordinates": [list(w), list(e)]}},
            {"type": "Feature", "properties": {"road_id": "A1", "name": "幹線", "highway": "secondary", "maxspeed": "50"},
             "geometry": {"type": "LineString", "coordinates": [list(wn), list(en)]}},
        ],
    }  # fmt: skip
    path = tmp_path / "tiny_roads.geojson"
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    return path


def network(path, key: str = "t", treated=(), comparison=(), radius_m: float = 20.0, exclude_highway=("service",)):
    """A road network prepared for matching (analysis.matchstage.Network) with roles."""
    from analysis.matchstage import prepare_network

    return prepare_network(path, key, radius_m=radius_m, treated=tuple(treated), comparison=tuple(comparison),
                           exclude_highway=exclude_highway)  # fmt: skip


def make_test_district(network_path, key: str = "t", treated=("R1",), comparison=("A1",), area_path=None, periods=None) -> District:
    """A District over a test network (periods BEFORE / AFTER unless given)."""
    periods = periods or {"before": BEFORE, "after": AFTER}
    return District(
        key=key, name_ja="テスト地区", name_en="Test", ward_ja="港北区", ward_code="14109", center_lat=35.52,
        center_lon=139.62, network_path=Path(network_path), synthetic_network=True, periods=periods,
        default_before="before", default_after="after", treated_roads=tuple(treated), comparison_roads=tuple(comparison),
        source_path=Path(network_path), area_path=area_path,
    )  # fmt: skip


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


def expected(speeds, vids, limit):
    return {
        "n_points": len(speeds),
        "n_vehicles": len(vids),
        "mean_kmh": speeds.mean(),
        "p85_kmh": np.percentile(speeds, 85),  # numpy's default: linear interpolation
        "share_at_or_over_limit": (speeds >= limit).mean(),
    }
