"""Gate classification on hand-made trips (every class, entry and exit gates, time bands, OD), derived and
declared gates, and the stored tables of a small warehouse."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from screening_data import PERIOD, ROAD_Y, write_area, write_delivery, write_network

from analysis.comparison import compare
from analysis.figures import analyze
from analysis.gates import (
    class_summary,
    classify_trips,
    crossings,
    declared_gates,
    derive_gates,
    evaluate_gates,
    gate_od,
)
from analysis.results import load_district_results
from analysis.screening import screen
from config.districts import load_district_file
from config.settings import GATE_CLASSES
from conftest import make_test_district, network, offset
from etl.ingest import ingest_paths
from etl.warehouse import connect
from geo.network import load_area

AREA = shapely.box(0, 0, 100, 100)
ROADS = gpd.GeoDataFrame(
    {"road_id": ["N", "S", "E", "W", "P"], "name": ["北の道", "南の道", "東の道", "西の道", "外周道路"]},
    geometry=[
        shapely.LineString([(50, 50), (50, 200)]),
        shapely.LineString([(50, -100), (50, 50)]),
        shapely.LineString([(50, 50), (200, 50)]),
        shapely.LineString([(-100, 50), (50, 50)]),
        shapely.LineString([(-100, -20), (200, -20)]),
    ],
)
ROAD_IDS = ROADS["road_id"].to_numpy(object)
N, S, E, W, P, OFF = 0, 1, 2, 3, 4, -1
T0 = dt.datetime(2017, 9, 5, 6, 59, 50)


def trips_points(spec: dict[int, tuple[int, list[tuple[float, float, int]]]]) -> pd.DataFrame:
    """{trip: (vehicle, [(x, y, road index)])} → stored points, 40 s apart from T0 (trip k starts k hours later)."""
    rows = []
    for trip, (vehicle, steps) in spec.items():
        for seq, (x, y, road) in enumerate(steps):
            t = T0 + dt.timedelta(hours=trip - 1, seconds=40 * seq)
            rows.append(
                {
                    "trip_id": trip,
                    "seq": seq,
                    "vehicle_id": vehicle,
                    "gps_time": t,
                    "hour": t.hour,
                    "day_type": 0,
                    "x_m": x,
                    "y_m": y,
                    "road_idx": road,
                }
            )
    return pd.DataFrame(rows)


def ends_of(points: pd.DataFrame) -> pd.DataFrame:
    g = points.sort_values(["trip_id", "seq"]).groupby("trip_id")
    return pd.DataFrame(
        {
            "origin_x_m": g["x_m"].first(),
            "origin_y_m": g["y_m"].first(),
            "dest_x_m": g["x_m"].last(),
            "dest_y_m": g["y_m"].last(),
        }
    ).reset_index()


def test_derived_gates_where_roads_cross_the_outline():
    g = derive_gates(ROADS, AREA)
    assert g["gate_id"].tolist() == ["G01", "G02", "G03", "G04"]  # clockwise from north
    assert g["road_id"].tolist() == ["N", "E", "S", "W"]
    assert g["gate_name"].tolist() == ["北の道 北側", "東の道 東側", "南の道 南側", "西の道 西側"]
    assert g[["x_m", "y_m"]].to_numpy().tolist() == [[50, 100], [100, 50], [50, 0], [0, 50]]
    assert (g["source"] == "derived").all()
    # A road crossing one side twice close together is one gate.
    wiggle = gpd.GeoDataFrame(
        {"road_id": ["X"], "name": ["x"]}, geometry=[shapely.LineString([(80, 150), (80, 99), (90, 101), (90, 150)])]
    )
    assert len(derive_gates(wiggle, AREA)) == 1


GATES = derive_gates(ROADS, AREA)  # G01 N (50,100), G02 E (100,50), G03 S (50,0), G04 W (0,50)


def test_every_gate_class_with_entry_and_exit_gates():
    spec = {
        1: (11, [(-80, 50, W), (20, 50, W), (80, 50, E), (150, 50, E)]),  # through: in at W, out at E
        2: (12, [(50, 180, N), (50, 60, N)]),  # into, through the north gate
        3: (13, [(50, 40, S), (50, -60, S)]),  # out of, through the south gate
        4: (14, [(30, 50, W), (70, 50, E)]),  # internal
        5: (15, [(-50, -20, P), (150, -20, P)]),  # perimeter: on the network, never inside
        6: (
            11,
            [(-80, 50, W), (20, 50, W), (50, 150, N), (50, 80, N), (90, 50, E), (160, 50, E)],
        ),  # W in, N out, N in, E out
        7: (17, [(60, 150, OFF), (90, 50, E)]),  # into: crosses nearer the N gate, but its inside point is on E
        8: (18, [(-50, 70, OFF), (20, 70, OFF)]),  # never on the network: not a trip of the district
        9: (19, [(-80, 50, W), (20, 50, W)]),  # into, but its 様式1-3 destination lies outside: through, exit unseen
    }
    pts = trips_points(spec)
    ends = ends_of(pts)
    ends.loc[ends["trip_id"] == 9, ["dest_x_m", "dest_y_m"]] = [500.0, 500.0]
    ends = ends[ends["trip_id"] != 4]  # no ends delivered for trip 4: its first and last stored points stand in
    t = classify_trips(pts, ends, AREA, GATES, ROAD_IDS).set_index("trip_id")
    assert sorted(t.index) == [1, 2, 3, 4, 5, 6, 7, 9]
    assert t["gate_class"].to_dict() == {
        1: "through",
        2: "into",
        3: "out_of",
        4: "internal",
        5: "perimeter",
        6: "through",
        7: "into",
        9: "through",
    }
    assert set(t["gate_class"]) == set(GATE_CLASSES)
    assert t[["entry_gate", "exit_gate"]].apply(tuple, axis=1).to_dict() == {
        1: ("G04", "G02"),
        2: ("G01", ""),
        3: ("", "G03"),
        4: ("", ""),
        5: ("", ""),
        6: ("G04", "G02"),
        7: ("G02", ""),
        9: ("G04", "?"),
    }
    assert t["n_crossings"].to_dict() == {1: 2, 2: 1, 3: 1, 4: 0, 5: 0, 6: 4, 7: 1, 9: 1}
    # Time band: of the first point inside (trip 1 starts 06:59:50 outside, is inside at 07:00:30);
    # perimeter trips: of their first point on the network.
    assert t.loc[1, "time_band"] == "7-9" and t.loc[1, "first_time"] == pd.Timestamp("2017-09-05 07:00:30")
    assert t.loc[3, "time_band"] == "7-9" and t.loc[5, "time_band"] == "9-17"
    assert t.loc[2, "first_time"] == pd.Timestamp("2017-09-05 08:00:30")
    # A crossing away from every gate: '?' (snapping distance 10 m; trip 7 crosses 25 m from G01, 56 m from G02).
    c = crossings(pts[pts["trip_id"] == 7], AREA, GATES, ROAD_IDS, snap_m=10.0)
    assert (
        c["gate_id"].tolist() == ["?"]
        and c["x_m"].item() == pytest.approx(75.0)
        and c["y_m"].item() == pytest.approx(100.0)
    )


def test_gate_od_and_class_summary():
    spec = {
        1: (11, [(-80, 50, W), (20, 50, W), (80, 50, E), (150, 50, E)]),
        2: (11, [(-80, 50, W), (20, 50, W), (80, 50, E), (150, 50, E)]),  # the same vehicle, an hour later (08:00)
        3: (13, [(-80, 50, W), (20, 50, W), (80, 50, E), (150, 50, E)]),  # 09:00: band 9-17
        4: (14, [(50, 180, N), (50, 60, N)]),  # 10:00
        5: (15, [(-50, -20, P), (150, -20, P)]),  # 11:00
    }
    pts = trips_points(spec)
    t = classify_trips(pts, ends_of(pts), AREA, GATES, ROAD_IDS)
    od = gate_od(t).set_index(["time_band", "gate_class", "entry_gate", "exit_gate"])
    assert od.loc[("all", "through", "G04", "G02"), "n_trips"] == 3
    assert od.loc[("all", "through", "G04", "G02"), "n_vehicles"] == 2  # vehicle 11 twice
    assert od.loc[("7-9", "through", "G04", "G02"), ["n_trips", "n_vehicles"]].tolist() == [2, 1]
    assert od.loc[("9-17", "through", "G04", "G02"), "n_trips"] == 1
    assert od.loc[("9-17", "into", "G01", ""), "n_trips"] == 1
    assert od.loc[("9-17", "perimeter", "", ""), "n_trips"] == 1
    assert od.xs("all")["n_trips"].sum() == len(t) == 5
    assert od.drop(index="all", level="time_band")["n_trips"].sum() == len(t)
    s = class_summary(t).set_index(["time_band", "gate_class"])
    assert len(s) == 6 * len(GATE_CLASSES)  # every band and class, zeros included
    assert s.loc[("all", "through"), "n_trips"] == 3 and s.loc[("all", "through"), "share_trips"] == pytest.approx(0.6)
    assert s.loc[("all", "internal"), "n_trips"] == 0 and s.loc[("all", "through"), "n_vehicles"] == 2
    assert s.xs("all")["share_trips"].sum() == pytest.approx(1.0)
    assert np.isnan(s.loc[("19-24", "through"), "share_trips"])  # no trips in the band


def test_declared_gates_from_the_district_file(tmp_path):
    roads = write_network(tmp_path / "roads.geojson")
    write_area(tmp_path / "area.geojson")
    lon, lat = offset(-50, 0)
    (a_lon, a_lat), (b_lon, b_lat) = offset(450, 40), offset(450, 60)
    toml = tmp_path / "x.toml"
    toml.write_text(
        f"""key = "x"\nname_ja = "テスト"\nname_en = "X"\ncenter = {{ lat = 35.52, lon = 139.62 }}
network = "roads.geojson"\narea = "area.geojson"\n[roads]\ntreated = ["R1"]\n
[[periods]]\nname = "before"\nstart = 2017-09-05\nend = 2017-09-06\n
[[periods]]\nname = "after"\nstart = 2017-11-01\nend = 2017-11-02\n
[[gates]]\nid = "W1"\nname_ja = "西口"\npoint = {{ lat = {lat}, lon = {lon} }}\n
[[gates]]\nid = "E2"\nname_ja = "東口"\nline = [[{a_lon}, {a_lat}], [{b_lon}, {b_lat}]]\n""",
        encoding="utf-8",
    )
    d = load_district_file(toml)
    assert [g.id for g in d.gates] == ["W1", "E2"]
    g = declared_gates(d, network(roads)).set_index("gate_id")
    assert g.loc["W1", "road_id"] == "R1" and g.loc["E2", "road_id"] == "R2"  # the nearest road
    assert g.loc["E2", "gate_name"] == "東口" and (g["source"] == "declared").all()
    bad = toml.read_text(encoding="utf-8").replace('id = "E2"', 'id = "W1"')
    toml.write_text(bad, encoding="utf-8")
    with pytest.raises(ValueError, match="unique"):
        load_district_file(toml)


def test_gates_stored_for_a_district(tmp_path):
    """End to end on the screening scenario: cut-through trips go gate to gate along their road, the
    others enter at the road's west gate and end inside; arterial trips are through traffic too."""
    plans = write_delivery(tmp_path / "delivery")
    ingest_paths([tmp_path / "delivery"], tmp_path / "wh")
    roads, area = write_network(tmp_path / "roads.geojson"), write_area(tmp_path / "area.geojson")
    district = make_test_district(
        roads, treated=("R1",), comparison=("R4",), area_path=area, periods={"before": PERIOD, "after": PERIOD}
    )
    res = evaluate_gates(tmp_path / "wh", district, {"before": PERIOD})
    gates = res.gates.set_index("gate_id")
    assert len(gates) == 2 * len(ROAD_Y)  # each road crosses the outline on its west and east side
    west = {r: gates.index[(gates["road_id"] == r) & gates["gate_name"].str.endswith("西側")].item() for r in ROAD_Y}
    east = {r: gates.index[(gates["road_id"] == r) & gates["gate_name"].str.endswith("東側")].item() for r in ROAD_Y}
    t = res.trips["before"]
    assert len(t) == sum(p.n for p in plans.values())
    expected = {"through": sum(sum(p.cut_through) for p in plans.values())}
    expected["into"] = len(t) - expected["through"]
    assert t["gate_class"].value_counts().to_dict() == expected
    od = res.od["before"]
    whole = od[od["time_band"] == "all"].set_index(["gate_class", "entry_gate", "exit_gate"])["n_trips"]
    for rid, p in plans.items():
        assert whole.get(("through", west[rid], east[rid]), 0) == sum(p.cut_through)
        assert whole.get(("into", west[rid], ""), 0) == p.n - sum(p.cut_through)
    con = connect(tmp_path / "wh", read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM district_gates WHERE district = 't'").fetchone()[0] == len(gates)
        assert con.execute("SELECT count(*) FROM gate_trips WHERE period = 'before'").fetchone()[0] == len(t)
        n = con.execute("SELECT sum(n_trips) FROM gate_od WHERE time_band = 'all'").fetchone()[0]
        s = con.execute("SELECT gate_class, n_trips FROM gate_class_summary WHERE time_band = 'all'").fetchall()
    finally:
        con.close()
    assert n == len(t) and dict(s) == {**dict.fromkeys(GATE_CLASSES, 0), **expected}
    # Publishing reads them (and the district's latest screening) with the district's other results.
    net = network(roads, treated=("R1",), comparison=("R4",))
    analyze(tmp_path / "wh", net, {"before": PERIOD, "after": PERIOD})
    compare(tmp_path / "wh", net, {"before": PERIOD, "after": PERIOD}, resamples=20)
    screen(tmp_path / "wh", net, PERIOD, area=load_area(area), area_label="outline", resamples=20)
    results = load_district_results(tmp_path / "wh", district)
    assert len(results.gates["gates"]) == len(gates) and results.gates["summary"]["n_trips"].sum() == 2 * len(
        t
    )  # the bands, and all
    assert results.gates["od"].query("time_band == 'all'")["n_trips"].sum() == len(t)
    assert results.screening["road_id"].tolist() == ["R1", "R2", "R3", "R4"]
