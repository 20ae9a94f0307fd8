"""`etc2calm compare` contract, stored comparison tables, and suppression of small cells in public outputs."""

from __future__ import annotations

import csv
import re
import subprocess

import numpy as np
import pytest

from analysis.comparison import compare
from analysis.figures import analyze
from analysis.filters import PointFilter
from analysis.results import load_district_results
from conftest import AFTER, BEFORE, ETC2CALM, make_delivery, make_test_district, network, offset, style12_row, write_zip
from etl.ingest import ingest_paths
from maps.report import public_comparison, render_report

COLUMNS = [
    "unit",
    "indicator",
    "before",
    "after",
    "change",
    "ci_low",
    "ci_high",
    "n_vehicles_before",
    "n_vehicles_after",
    "flag",
    "degenerate",
]
PERIODS = {"before": BEFORE, "after": AFTER}


def run(*args):
    return subprocess.run([ETC2CALM, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture
def warehouse(tmp_path):
    truth = make_delivery(tmp_path / "delivery")
    ingest_paths([tmp_path / "delivery"], tmp_path / "wh")
    return tmp_path / "wh", truth


@pytest.mark.slow
def test_compare_cli_contract(warehouse, tiny_network, tmp_path):
    wh, truth = warehouse
    out = tmp_path / "cmp.csv"
    proc = run(
        "compare",
        "--warehouse",
        wh,
        "--roads",
        tiny_network,
        "--treated",
        "R1",
        "--control",
        "A1",
        "--period",
        "before=2017-09-01..2017-09-30",
        "--period",
        "after=2017-11-01..2017-11-30",
        "--indicator",
        "mean",
        "--resamples",
        "300",
        "--seed",
        "4",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert list(rows[0]) == COLUMNS
    # the placebo rows: no untreated residential street here, so the treated street is rank 1 of 1
    assert [r["unit"] for r in rows] == ["R1", "A1", "treated", "control", "did", "placebo_rank", "placebo_p"]
    by = {r["unit"]: r for r in rows}
    r1_before, r1_after = truth["before"]["R1"][0].mean(), truth["after"]["R1"][0].mean()
    assert float(by["R1"]["before"]) == pytest.approx(r1_before)
    assert float(by["R1"]["after"]) == pytest.approx(r1_after)
    assert float(by["R1"]["change"]) == pytest.approx(r1_after - r1_before)
    assert float(by["R1"]["ci_low"]) < float(by["R1"]["change"]) < float(by["R1"]["ci_high"])
    assert int(by["R1"]["n_vehicles_before"]) == len(truth["before"]["R1"][1])
    a1 = truth["after"]["A1"][0].mean() - truth["before"]["A1"][0].mean()
    assert float(by["did"]["change"]) == pytest.approx(r1_after - r1_before - a1)
    assert by["did"]["before"] == "" and by["did"]["after"] == ""
    assert all(r["flag"] == "low_sample" for r in rows[:5])  # fewer than 50 vehicles in this small delivery
    assert (by["placebo_rank"]["change"], by["placebo_p"]["change"]) == ("1.0", "1.0")
    assert by["placebo_rank"]["flag"] == by["placebo_p"]["flag"] == "few_placebo"
    assert {r["degenerate"] for r in rows[:5]} <= {"True", "False"}
    # Same seed, same intervals.
    out2 = tmp_path / "cmp2.csv"
    run(
        "compare",
        "--warehouse",
        wh,
        "--roads",
        tiny_network,
        "--treated",
        "R1",
        "--control",
        "A1",
        "--period",
        "before=2017-09-01..2017-09-30",
        "--period",
        "after=2017-11-01..2017-11-30",
        "--resamples",
        "300",
        "--seed",
        "4",
        "--out",
        out2,
    )
    assert out.read_text() == out2.read_text()


@pytest.mark.slow
def test_compare_errors(tmp_path, tiny_network):
    proc = run("compare", "--warehouse", tmp_path / "wh", "--roads", tiny_network, "--treated", "R1")
    assert proc.returncode != 0 and "--period before" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("compare", "--warehouse", tmp_path / "wh", "--district", "okurayama", "--period", "during")
    assert proc.returncode != 0 and "bad --period" in proc.stderr


def test_filters_change_the_sample(warehouse, tiny_network):
    wh, truth = warehouse
    net = network(tiny_network, treated=("R1",), comparison=("A1",))
    full = compare(wh, net, PERIODS, resamples=50, store=False)
    morning = compare(wh, net, PERIODS, resamples=50, store=False, point_filter=PointFilter.parse("7-8"))
    # The hand-made points run from 7:00 to 10:59 (60 per hour): 7-8 keeps a quarter of them.
    n_full = full.distributions.query("unit == 'R1' and period == 'before'")["n_points"].sum()
    assert full.comparisons["mean"].set_index("unit").loc["R1", "n_before"] == n_full
    n_7 = morning.distributions.query("unit == 'R1' and period == 'before'")["n_points"].sum()
    assert n_full == len(truth["before"]["R1"][0]) and 0 < n_7 < n_full / 2


def test_public_outputs_suppress_small_cells(tmp_path, tiny_network):
    """A1 carries points from 3 vehicles only: figures never appear in the public report."""
    lines = []
    rng = np.random.default_rng(0)
    for day, mean in (("20170905", 33), ("20171110", 25)):
        for i in range(300):
            vid = f"{rng.integers(1, 60):012d}" if i % 10 else f"{900000 + i % 3:012d}"
            east = rng.uniform(-150, 150)
            north = 0.0 if i % 10 else 100.0  # every tenth point on A1, from 3 vehicles
            lon, lat = offset(east, north + rng.normal(0, 2))
            speed = 87 if north else int(rng.normal(mean, 4))
            lines.append(style12_row(vid, f"{day}08{i // 60:02d}{i % 60:02d}", lon, lat, speed))
        write_zip(tmp_path / "d" / f"{day}.zip", lines)
        lines = []
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    net = network(tiny_network, treated=("R1",), comparison=("A1",))
    analyze(tmp_path / "wh", net, PERIODS)
    ev = compare(tmp_path / "wh", net, PERIODS, resamples=50)
    engineers = ev.comparisons["mean"].set_index("unit")
    assert engineers.loc["A1", "before"] == pytest.approx(87.0)  # the engineers' table keeps it, flagged
    assert engineers.loc["A1", "flag"] == "low_sample"
    public = public_comparison(ev.comparisons["mean"]).set_index("unit")
    assert public.loc["A1", "flag"] == "suppressed" and np.isnan(public.loc["A1", "before"])
    district = make_test_district(tiny_network)
    results = load_district_results(tmp_path / "wh", district)
    page = render_report(district, results, tmp_path / "report.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", " ", page)  # the words and numbers a reader sees (SVG coordinates are not figures)
    assert "87.0" not in text and "+62" not in text and "データ不足" in text
    assert "テスト地区" in page and "平均への回帰" in page and "合成データ" in page
    r1 = engineers.loc["R1"]
    assert f"{r1['before']:.1f} km/h" in page  # the treated road's figures are public


def test_braking_from_behaviour_events_and_map_layers(tmp_path, tiny_network):
    """Delivered 挙動履歴 events are used (not inferred ones), counted per road, and reach the map layers."""
    make_delivery(tmp_path / "delivery")
    events = []
    for i in range(12):  # 12 vehicles brake hard at the same spot of R1 in the before period
        lon, lat = offset(50 + (i % 3), 1.0)
        f = [""] * 18
        f[1], f[2], f[6], f[7], f[8] = (
            "20170905",
            f"{700000 + i:012d}",
            f"201709050{8 + i % 2}1500",
            f"{lon:.7f}",
            f"{lat:.7f}",
        )
        f[9], f[14], f[15] = "4", "22", "-0.35"
        events.append(",".join(f))
    lon, lat = offset(-100, 0)
    f = [""] * 18
    f[1], f[2], f[6], f[7], f[8], f[14], f[15] = (
        "20171110",
        f"{800000:012d}",
        "20171110081500",
        f"{lon:.7f}",
        f"{lat:.7f}",
        "20",
        "-0.3",
    )
    events.append(",".join(f))
    write_zip(tmp_path / "events" / "behavior.zip", events)
    ingest_paths([tmp_path / "delivery"], tmp_path / "wh")
    ingest_paths([tmp_path / "events"], tmp_path / "wh", fmt="behavior")
    net = network(tiny_network, treated=("R1",), comparison=("A1",))
    analyze(tmp_path / "wh", net, PERIODS)
    ev = compare(tmp_path / "wh", net, PERIODS, resamples=50)
    assert ev.braking_source == "behavior_events"
    b = ev.braking.set_index(["period", "road_id"])
    assert b.loc[("before", "R1"), "n_events"] == 12 and b.loc[("after", "R1"), "n_events"] == 1
    assert b.loc[("before", "R1"), "events_per_1000_passages"] == pytest.approx(
        1000 * 12 / b.loc[("before", "R1"), "n_passages"]
    )
    hot = ev.hotspots[ev.hotspots["period"] == "before"]
    assert hot["n_events"].tolist() == [12] and hot["n_vehicles"].tolist() == [12]

    from maps._layers import braking_layer
    from maps.public import public_results

    ev = load_district_results(tmp_path / "wh", make_test_district(tiny_network))  # publishing reads what is stored
    braking = braking_layer(public_results(ev), period="before")
    assert braking is not None and [f["properties"]["count"] for f in braking["features"]] == [12]
    assert braking_layer(public_results(ev), period="after") is None  # one event: no hot spot, nothing published
    assert braking_layer(public_results(ev, 13), period="before") is None  # 12 vehicles < 13: suppressed


def test_cut_through_uses_style_1_3_origins(tmp_path, tiny_network):
    """A trip crossing the area counts as cut-through from its points, unless 様式1-3 puts its origin inside."""
    import shapely

    lines = []
    for v in range(20):  # 20 vehicles cross R1's area west → east, starting and ending outside
        for k, east in enumerate((-400, -100, 0, 100, 400)):
            lon, lat = offset(east, 0)
            lines.append(style12_row(f"{500000 + v:012d}", f"201709050{8}{v:02d}{k * 10:02d}", lon, lat, 30))
    write_zip(tmp_path / "d" / "points.zip", lines)
    trips13 = []
    for v in range(5):  # for 5 of them the trip table says: origin inside the area
        f = [""] * 18
        o_lon, o_lat = offset(0, 10)
        d_lon, d_lat = offset(800, 0)
        f[0], f[1], f[2], f[7] = "20170905", f"{500000 + v:012d}", "1", "1"
        f[11], f[12], f[13], f[14] = f"{o_lon:.7f}", f"{o_lat:.7f}", f"{d_lon:.7f}", f"{d_lat:.7f}"
        trips13.append(",".join(f))
    write_zip(tmp_path / "t" / "OUT1-3_20170905.zip", trips13)
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    ingest_paths([tmp_path / "t"], tmp_path / "wh")
    from geo.network import load_roads

    roads = load_roads(tiny_network)
    r1 = roads.loc[roads["road_id"] == "R1"].geometry.item()
    area = shapely.box(*r1.buffer(150).bounds)  # the district: 150 m around R1; the trips run 400 m beyond
    ev = compare(
        tmp_path / "wh",
        network(tiny_network, treated=("R1",), comparison=("A1",)),
        PERIODS,
        area=area,
        resamples=20,
        store=False,
    )
    c = ev.cut_through.set_index("period").loc["before"]
    assert c["n_trips"] == 20 and c["n_cut_through"] == 15


def test_direction_filter_separates_the_two_directions(tmp_path, tiny_network):
    """Eastbound (along R1's digitisation) at 40 km/h, westbound at 20 km/h: each direction alone."""
    lines = []
    for day in ("20170905", "20171110"):
        for v in range(12):
            east = v % 2 == 0
            xs = [-150, -75, 0, 75, 150] if east else [150, 75, 0, -75, -150]
            for k, x in enumerate(xs):
                lon, lat = offset(x, 0.5)
                t = f"{day}08{v:02d}{k * 8:02d}"
                lines.append(style12_row(f"{300000 + v:012d}", t, lon, lat, 40 if east else 20))
    write_zip(tmp_path / "d" / "dir.zip", lines)
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    net = network(tiny_network, treated=("R1",), comparison=("A1",))
    fwd = compare(
        tmp_path / "wh", net, PERIODS, point_filter=PointFilter(direction="forward"), resamples=20, store=False
    )
    bwd = compare(
        tmp_path / "wh", net, PERIODS, point_filter=PointFilter(direction="backward"), resamples=20, store=False
    )
    both = compare(tmp_path / "wh", net, PERIODS, resamples=20, store=False)
    f, b, a = (e.comparisons["mean"].set_index("unit").loc["R1"] for e in (fwd, bwd, both))
    assert f["before"] == 40 and b["before"] == 20
    assert f["n_vehicles_before"] == 6 and b["n_vehicles_before"] == 6
    assert a["n_vehicles_before"] == 12 and 20 < a["before"] < 40  # first points (heading unknown) count too


def test_report_states_the_parameters_used(warehouse, tiny_network, tmp_path):
    """The report's method note prints the radius, minimum vehicles, resamples and seed of the stored run."""
    wh, _ = warehouse
    net = network(tiny_network, treated=("R1",), comparison=("A1",), radius_m=30.0)
    analyze(wh, net, PERIODS)
    compare(wh, net, PERIODS, resamples=120, seed=7, min_vehicles=20)
    results = load_district_results(wh, make_test_district(tiny_network))
    assert (results.radius_m, results.min_vehicles, results.resamples, results.seed) == (30.0, 20, 120, 7)
    page = render_report(make_test_district(tiny_network), results, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "30 m 以内" in page and "20台未満" in page and "120回" in page and "乱数シード 7" in page
    assert "20 m 以内" not in page and "50台未満" not in page


def test_results_of_an_earlier_derived_schema_are_never_served(warehouse, tiny_network):
    """Figures stored under an earlier DERIVED_SCHEMA_VERSION (an earlier definition, e.g. the bin-value
    85th percentile before the grouped-data percentile) are not read back by any publisher, even through read-only
    connections that cannot drop them; the next read-write connection drops them for recomputation."""
    import duckdb

    from analysis.results import ResultsMissing, load_comparisons, load_group_stats
    from etl.schema import DERIVED_SCHEMA_VERSION
    from etl.warehouse import connect

    wh, _ = warehouse
    net = network(tiny_network, treated=("R1",), comparison=("A1",))
    analyze(wh, net, PERIODS)
    compare(wh, net, PERIODS, resamples=20)
    district = make_test_district(tiny_network)
    assert load_district_results(wh, district).comparisons and load_comparisons(wh, "t")
    con = duckdb.connect(str(wh / "warehouse.duckdb"))
    con.execute("UPDATE schema_version SET derived = ?", [DERIVED_SCHEMA_VERSION - 1])
    con.close()
    with pytest.raises(ResultsMissing, match="earlier version"):
        load_district_results(wh, district)
    assert load_comparisons(wh, "t") == {} and load_group_stats(wh, "t").empty
    connect(wh).close()  # a read-write connection drops the outdated tables
    with pytest.raises(ResultsMissing, match="no stored results"):
        load_district_results(wh, district)
