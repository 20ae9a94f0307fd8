"""A hand-made district with a known screening answer and known gate classes (shared by test_screening
and test_gates).

Local metres east / north of (LON0, LAT0). The area is the box x -50..450, y -50..300. Six east-west
roads run from x = -250 to 650, so each crosses the outline twice (a derived gate on its west and
east side): R1 … R5 (residential, 30 km/h) at y = 0, 50, 100, 150, 200, and the arterial A1
(50 km/h) at y = 250. Every trip of a road is one vehicle's trip on one day:

    origin point → two points on the road (x = 60 and 4 s later) → destination point

A cut-through trip starts about 30 m west of the road's west end (outside the area) and ends at
x = 700 (outside); another trip starts there too but ends inside the area (x = 300, 25 m north of
its road, off every road). Every trip drives at its passage speed from its origin to its last point
on the road (the origin placed so that the times are whole seconds, under 350 m before the first
road point), so the passage's section travel speed is the plan's passage speed — the mean
of the two road points' recorded speeds, give or take 0.3 km/h (the pair to the destination, over
350 m or a stray beside the road, is not used); a braking trip drops from 44 to 8 km/h in 4 s (0.255 G, over the 0.25 G
threshold), a passage of 26 km/h.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from config.districts import Period
from conftest import offset, style12_row, write_zip

PERIOD = Period("before", dt.date(2017, 9, 5), dt.date(2017, 9, 6), "対策前")
DAYS = ("20170905", "20170906")
ROAD_Y = {"R1": 0.0, "R2": 50.0, "R3": 100.0, "R4": 150.0, "R5": 200.0, "A1": 250.0}
AREA_BOX = (-50.0, -50.0, 450.0, 300.0)


@dataclass
class RoadPlan:
    """The trips of one road: speeds (a pair per trip), which trips brake, which are cut-through."""

    speeds: list[tuple[int, int]]
    cut_through: list[bool]
    braking: list[bool] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.speeds)

    @property
    def passage_kmh(self) -> list[float]:
        """Each trip's passage speed, km/h: the mean of its two recorded speeds, plus -0.3 … +0.3 km/h so
        that passage speeds are continuous as travel speeds are (not seven tied values)."""
        return [(a + b) / 2 + 0.1 * ((3 * i) % 7 - 3) for i, (a, b) in enumerate(self.speeds)]


def _slow(n: int, n_cut: int, n_brake: int = 0) -> RoadPlan:
    """10 % of passages at 32 km/h, the others at 26 km/h (n_brake of them by braking from 44 to 8)."""
    speeds, brake = [], []
    for i in range(n):
        if i % 10 == 0:
            speeds.append((32, 32)), brake.append(False)
        elif sum(brake) < n_brake:
            speeds.append((44, 8)), brake.append(True)
        else:
            speeds.append((26, 26)), brake.append(False)
    return RoadPlan(speeds, [i < n_cut for i in range(n)], brake)


def plans() -> dict[str, RoadPlan]:
    """R1 fast; R2 like R4 but braking; R3 like R4 but cut-through; R4 slow; R5 fast with too few
    vehicles (20); A1 an arterial (not residential)."""
    r1 = [(24, 24)] * 30 + [(36, 36)] * 24 + [(42, 42)] * 6
    return {
        "R1": RoadPlan(r1, [i % 2 == 0 for i in range(60)], [False] * 60),
        "R2": _slow(60, 12, n_brake=10),
        "R3": _slow(60, 54),
        "R4": _slow(60, 12),
        "R5": RoadPlan([(45, 45)] * 20, [True] * 20, [False] * 20),
        "A1": RoadPlan([(55, 55)] * 60, [True] * 60, [False] * 60),
    }


def write_network(path: Path) -> Path:
    feats = []
    for rid, y in ROAD_Y.items():
        props = {"road_id": rid, "name": f"道路{rid}", "highway": "residential" if rid.startswith("R") else "primary"}
        if rid == "A1":
            props["maxspeed"] = "50"
        feats.append(
            {
                "type": "Feature",
                "properties": props,
                "geometry": {"type": "LineString", "coordinates": [list(offset(-250, y)), list(offset(650, y))]},
            }
        )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False), encoding="utf-8")
    return path


def write_area(path: Path, box: tuple[float, float, float, float] = AREA_BOX) -> Path:
    x0, y0, x1, y1 = box
    ring = [
        list(offset(x0, y0)),
        list(offset(x1, y0)),
        list(offset(x1, y1)),
        list(offset(x0, y1)),
        list(offset(x0, y0)),
    ]
    fc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}],
    }
    path.write_text(json.dumps(fc), encoding="utf-8")
    return path


def write_delivery(root: Path) -> dict[str, RoadPlan]:
    """One ZIP per day with every trip of `plans()`; returns the plans."""
    p = plans()
    lines = {d: [] for d in DAYS}
    for k, (rid, plan) in enumerate(p.items()):
        y = ROAD_Y[rid]
        for i in range(plan.n):
            day = DAYS[i % 2]
            vid = f"{k + 1:02d}{i:010d}"
            t0 = dt.datetime.strptime(day, "%Y%m%d") + dt.timedelta(hours=7, minutes=2 * i + k)
            a, b = plan.speeds[i]
            v = plan.passage_kmh[i] / 3.6  # the passage's speed, m/s: from the origin to the last road point
            t_in = round(340.0 / v)  # about 340 m (under 350 m: a usable pair) to the first road point
            x2 = 60.0 + 4 * v
            dest = (700.0, y) if plan.cut_through[i] else (300.0, y + 25.0)
            steps = [(0, 60.0 - t_in * v, y, a), (t_in, 60.0, y, a), (t_in + 4, x2, y, b), (t_in + 64, *dest, b)]
            for s, east, north, v in steps:
                lon, lat = offset(east, north)
                lines[day].append(
                    style12_row(vid, (t0 + dt.timedelta(seconds=s)).strftime("%Y%m%d%H%M%S"), lon, lat, v)
                )
    for day in DAYS:
        write_zip(root / f"OUT1-2_533925_{day}.zip", lines[day])
    return p


def stored_screening(root: Path, resamples: int = 40) -> dict:
    """The fixture's delivery ingested into root/'wh' and screened (stored) under the test district
    (network key 't', area 'outline' = the area box, period PERIOD), as the monthly flow stores a
    district's screening; returns the paths and that district (for the screening map's tests)."""
    import pytest

    from analysis.screening import screen_district
    from conftest import make_test_district
    from etl.ingest import ingest_paths

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ETC2CALM_ID_KEY", "test-key-not-secret")
        plans = write_delivery(root / "delivery")
        ingest_paths([root / "delivery"], root / "wh")
    roads, area = write_network(root / "roads.geojson"), write_area(root / "area.geojson")
    district = make_test_district(roads, key="t", area_path=area, periods={"before": PERIOD})
    screen_district(root / "wh", district, resamples=resamples)
    return {"root": root, "wh": root / "wh", "plans": plans, "roads": roads, "area": area, "district": district}
