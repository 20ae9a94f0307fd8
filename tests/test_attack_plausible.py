"""Implausible time and place are quarantined, never stored.

A delivered file holds one 2次メッシュ and day. A point more than MESH_MARGIN_M outside its file's mesh
(the mesh in the file name; for a file without one, the row's 2次メッシュコード) and a GPS時刻 off the
operation date and the day after it are quarantined with their reason, in the first, middle and last
record of a file, on the typed and on the text path; both counts are in the ingest summary and in
the quarantine view. The project's own generators deliver what real deliveries hold: the points of
one mesh per file, so they keep every row under these rules.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import config.settings as settings
from conftest import cli, q, style12_row, write_zip
from etl.ingest import ingest_paths
from etl.mesh import mesh2_code
from etl.synthetic import generate_bench_delivery

# 2次メッシュ 533924: latitude 35.5 .. 35.58333, longitude 139.5 .. 139.625 (JIS X 0410).
SOUTH, WEST, NORTH, EAST = 35.5, 139.5, 35.5 + 1 / 12, 139.625
M_PER_DEG = 6_371_000 * math.pi / 180
MARGIN_M = 1000.0  # the default margin (config.settings.MESH_MARGIN_M)


def test_default_margin_is_one_km():
    assert getattr(settings, "MESH_MARGIN_M", None) == MARGIN_M


def pt(i: int) -> tuple[float, float]:
    """A point well inside mesh 533924 (lon, lat)."""
    return 139.55 + i * 0.0005, 35.54


def line(i, lon=None, lat=None, gps=None, op="20180105", mesh="533924", vid=None) -> str:
    lo, la = pt(i)
    return style12_row(
        vid or f"{100 + i:012d}",
        gps or f"20180105{8 + i // 60:02d}{i % 60:02d}00",
        lo if lon is None else lon,
        la if lat is None else lat,
        30,
        op_date=op,
        mesh=mesh,
    )


def east_of_mesh(metres: float) -> float:
    """The longitude `metres` east of the mesh's east edge, at latitude 35.54."""
    return EAST + metres / (M_PER_DEG * math.cos(math.radians(35.54)))


def reasons(wh) -> dict[int, str]:
    return dict(q(wh, "SELECT line_no, reason FROM quarantine"))


def stored_lines(wh) -> list[int]:
    return [r[0] for r in q(wh, "SELECT line_no FROM probe_points ORDER BY 1")]


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("path", ["typed", "text"])
def test_point_outside_its_file_mesh_is_quarantined(tmp_path, where, path):
    """The reported case: 121 E, 21 N (inside the specification's ranges) in a file of mesh 533924;
    a point 1.5 km outside the mesh too; one 0.5 km outside is within the margin and stored."""
    lines = [line(i) for i in range(9)]
    lines[4] = line(4, lon=east_of_mesh(500))  # within the 1 km margin
    at = {"first": 0, "middle": 5, "last": 8}[where]
    lines[at] = line(at, lon=121.0, lat=21.0)
    far = 7 if where != "last" else 1
    lines[far] = line(far, lon=east_of_mesh(1500))
    if path == "text":  # an x anywhere sends the payload through the text path
        lines[2] = lines[2].replace("RSU0001", "RSUx001")
    write_zip(tmp_path / "d" / "OUT1-2_533924_20180105.zip", lines)
    rep = ingest_paths([tmp_path / "d"], tmp_path / "wh")
    assert reasons(tmp_path / "wh") == {at + 1: "outside_mesh", far + 1: "outside_mesh"}
    assert stored_lines(tmp_path / "wh") == [i + 1 for i in range(9) if i not in (at, far)]
    assert rep.total("rows_outside_mesh") == 2 and rep.total("rows_quarantined") == 2


def test_margin_is_a_distance_from_the_mesh(tmp_path):
    """Just inside and just outside the margin, east and at a corner (where each axis alone is within it)."""
    m = MARGIN_M
    d_lat = m * 0.8 / M_PER_DEG
    corner_lon = east_of_mesh(m * 0.8)
    lines = [
        line(0, lon=east_of_mesh(m * 0.99)),
        line(1, lon=east_of_mesh(m * 1.01)),
        line(2, lon=corner_lon, lat=NORTH + d_lat),  # 0.8 km east and 0.8 km north: 1.13 km away
        line(3, lon=139.56, lat=SOUTH - m * 0.99 / M_PER_DEG),
        line(4, lon=139.56, lat=SOUTH - m * 1.01 / M_PER_DEG),
    ]
    write_zip(tmp_path / "d" / "OUT1-2_533924_20180105.zip", lines)
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    assert reasons(tmp_path / "wh") == {2: "outside_mesh", 3: "outside_mesh", 5: "outside_mesh"}
    assert stored_lines(tmp_path / "wh") == [1, 4]


def test_file_without_a_mesh_in_its_name_is_judged_by_the_mesh_column(tmp_path):
    lines = [
        line(0),  # in 533924, says 533924
        line(1, lon=121.0, lat=21.0),  # says 533924, lies south of Taiwan
        line(2, mesh="533925", lon=139.70, lat=35.55),  # in 533925, says so: another mesh is fine here
        line(3, mesh=""),  # no mesh to judge the place by
        line(4, mesh="539999"),  # not a 2次メッシュ code
        line(5, mesh="533925"),  # in 533924, says 533925: 6.6 km west of it
    ]
    write_zip(tmp_path / "d" / "delivery.zip", lines)
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    assert reasons(tmp_path / "wh") == {2: "outside_mesh", 4: "outside_mesh", 5: "outside_mesh", 6: "outside_mesh"}
    assert stored_lines(tmp_path / "wh") == [1, 3]


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_gps_time_off_the_operation_day_is_quarantined(tmp_path, where):
    """The reported case (GPS時刻 in 2099 in a file of 2018), and the edges of the window: the
    operation date and the day after it (trips past midnight)."""
    at = {"first": 0, "middle": 3, "last": 7}[where]
    lines = [line(i) for i in range(8)]
    lines[at] = line(at, gps="20990105120000")
    others = [i for i in (1, 2, 4, 5, 6) if i != at][:4]
    lines[others[0]] = line(others[0], gps="20180106235959")  # past midnight: stored
    lines[others[1]] = line(others[1], gps="20180107000000")  # two days later
    lines[others[2]] = line(others[2], gps="20180104235959")  # before the operation date
    lines[others[3]] = line(others[3], gps="20180105000000")  # its first second: stored
    write_zip(tmp_path / "d" / "OUT1-2_533924_20180105.zip", lines)
    rep = ingest_paths([tmp_path / "d"], tmp_path / "wh")
    bad = {at + 1, others[1] + 1, others[2] + 1}
    assert reasons(tmp_path / "wh") == dict.fromkeys(bad, "gps_time_outside_operation_day")
    assert stored_lines(tmp_path / "wh") == sorted(set(range(1, 9)) - bad)
    assert rep.total("rows_outside_day") == 3


def test_operation_dates_differing_inside_a_file_are_each_judged(tmp_path):
    lines = [line(0, op="20180105"), line(1, op="20180104"), line(2, op="20180103"), line(3, op="20180106")]
    write_zip(tmp_path / "d" / "OUT1-2_533924_20180105.zip", lines)
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    # gps 2018-01-05: on op date 01-05, the day after 01-04; two days after 01-03; before 01-06
    assert reasons(tmp_path / "wh") == {3: "gps_time_outside_operation_day", 4: "gps_time_outside_operation_day"}


def test_both_counts_in_the_summary_and_the_quarantine_view(tmp_path):
    lines = [line(i) for i in range(6)]
    lines[1] = line(1, lon=121.0, lat=21.0)
    lines[2] = line(2, gps="20990105120000")
    lines[3] = line(3, lon=east_of_mesh(3000))
    write_zip(tmp_path / "d" / "OUT1-2_533924_20180105.zip", lines)
    p = cli("ingest", "--warehouse", tmp_path / "wh", tmp_path / "d")
    assert p.returncode == 0, p.stderr
    assert "rows read 6 = stored 3 + quarantined 3" in p.stdout
    assert "2 outside their 2次メッシュ" in p.stdout and "1 with GPS時刻 off the operation day" in p.stdout
    got = dict(q(tmp_path / "wh", "SELECT reason, count(*) FROM quarantine GROUP BY ALL"))
    assert got == {"outside_mesh": 2, "gps_time_outside_operation_day": 1}
    raw = q(tmp_path / "wh", "SELECT raw_text FROM quarantine WHERE line_no = 2")[0][0]
    assert raw.split(",")[14:16] == ["121.0000000", "21.0000000"] and "000000000101" not in raw


# --- the generators deliver one 2次メッシュ and day per file ---------------------------------------


def _points(zip_path: Path):
    text = zipfile.ZipFile(zip_path).read("data.csv").decode("cp932")
    rows = [r.split(",") for r in text.split("\r\n") if r]
    rows = [r for r in rows if len(r) == 33]
    lon = np.array([float(r[14]) for r in rows])
    lat = np.array([float(r[15]) for r in rows])
    timed = [r for r in rows if len(r[6]) == 14]
    # the parsed times as numpy datetimes (pandas' parser: strptime row by row took seconds on 240 000 rows)
    gps = pd.to_datetime([r[6] for r in timed], format="%Y%m%d%H%M%S").to_numpy()
    op = pd.to_datetime([r[2] for r in timed], format="%Y%m%d").to_numpy()
    return lon, lat, gps, op, [r[3] for r in rows]


def _within_two_days(gps, op) -> bool:
    """Every GPS時刻 on its operation date or the day after: 0 <= GPS時刻 - 運行日 < 2 days."""
    gap = gps - op
    return bool(((gap >= np.timedelta64(0, "s")) & (gap < np.timedelta64(2, "D"))).all())


def test_bench_generator_files_hold_the_points_of_their_mesh_and_day(tmp_path):
    gen = generate_bench_delivery(tmp_path / "d", rows=240_000, rows_per_file=3_000, workers=1)
    files = sorted((tmp_path / "d").rglob("*.zip"))
    assert gen["files"] == len(files) == 80 and gen["rows"] == 240_000
    meshes, vehicles_in = set(), {}
    for f in files:
        mesh = int(f.name.split("_")[1])
        lon, lat, gps, op, ids = _points(f)
        assert len(lon) == 3_000
        assert (mesh2_code(lat, lon) == mesh).all(), f.name
        assert len(gps) == len(op) and _within_two_days(gps, op), f.name
        meshes.add(mesh)
        for v in set(ids):
            vehicles_in.setdefault(v, set()).add(mesh)
    assert len(meshes) == 3
    # a vehicle crossing from one mesh into another is split across their files
    assert sum(len(m) > 1 for m in vehicles_in.values()) > 100
    rep = ingest_paths([tmp_path / "d"], tmp_path / "wh")
    assert rep.total("rows_stored") == 240_000 and rep.total("rows_quarantined") == 0


@pytest.mark.slow
def test_demo_generator_files_hold_the_points_of_their_mesh_and_day(tmp_path):
    from config.districts import list_districts
    from etl.synthetic import generate_delivery

    gen = generate_delivery(tmp_path / "d", districts=list_districts(), scale=0.05, bad_row_rate=0.0)
    for f in sorted((tmp_path / "d").rglob("*.zip")):
        mesh = int(f.name.split("_")[1])
        lon, lat, gps, op, _ = _points(f)
        assert (mesh2_code(lat, lon) == mesh).all(), f.name
        assert len(gps) == len(op) and _within_two_days(gps, op), f.name
    rep = ingest_paths([tmp_path / "d"], tmp_path / "wh")
    assert rep.total("rows_stored") == gen["rows"] and rep.total("rows_quarantined") == 0
