"""Shared fixtures: hand-made 様式1-2 rows and a tiny road network with known geometry."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

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
