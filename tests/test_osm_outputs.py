"""Real OSM networks on the outputs: unnamed ways by class and number, arterials as main roads,
limits by road class, role labels and framing, the headline's indicator said once, the analyze CSV, the
compare flags, the edition name, and the CLI's constraints stated in --help."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re

import duckdb
import pandas as pd
import pytest

import maps.wording as w
from config.districts import Publication
from conftest import (
    ROOT,
    assert_one_line_error,
    cli,
    make_delivery,
    make_map_district,
    make_map_results,
    make_map_roads,
    make_map_stats,
    offset,
    page_text,
    style12_row,
    write_zip,
)
from maps import _palette as palette
from maps._layers import label_points, limit_note, road_layers
from maps.district_map import district_map
from maps.headline import headline
from maps.public import public_results

OSM = ROOT / "tests" / "data" / "hodogaya_osm_roads.geojson"


def osm_like_roads():
    """The hand-made streets, r3 and r4 unnamed as most OSM ways are, r4 a tertiary road at 60 km/h."""
    roads = make_map_roads()
    roads.loc[roads["road_id"].isin(["r3", "r4"]), ["name", "name_en"]] = ""
    roads.loc[roads["road_id"] == "r4", ["highway", "limit_kmh", "role"]] = ["tertiary", 60.0, "arterial"]
    return roads


def osm_like_results(tmp_path):
    stats = make_map_stats()
    r4 = stats[stats["road_id"] == "r2"].assign(road_id="r4", limit_kmh=60.0, p85_kmh=58.0, n_vehicles=300)
    return make_map_results(tmp_path, stats=pd.concat([stats, r4], ignore_index=True), roads=osm_like_roads())


def test_unnamed_ways_are_named_by_class_and_number_everywhere():
    from geo.network import load_roads

    roads = load_roads(OSM)
    labels = w.road_labels(roads)
    unnamed = roads[roads["name"] == ""]
    assert len(unnamed) > 50
    texts = [labels[r]["ja"] for r in unnamed["road_id"]]
    assert all(re.fullmatch(r"(生活道路|幹線道路|通路|道路) #\d+（名称なし）", t) for t in texts)
    assert len(set(texts)) == len(texts)  # one number per way of a class
    assert labels["175568539"] == {"ja": "国道1号", "en": "国道1号"}  # a named way keeps its name
    assert re.fullmatch(r"Residential street #\d+ \(unnamed\)", labels["125735160"]["en"])
    # The same labels whichever classes are left out (service ways are numbered apart).
    everything = w.road_labels(load_roads(OSM, exclude_highway=None))
    assert all(everything[r] == labels[r] for r in labels if not labels[r]["ja"].startswith("通路"))


def test_arterials_are_drawn_and_worded_as_main_roads(tmp_path):
    pub = public_results(osm_like_results(tmp_path))
    for key, fc in road_layers(pub, "p85").items():
        feats = {f["properties"]["road_id"]: f["properties"] for f in fc["features"]}
        assert feats["r4"]["style"]["color"] == palette.ARTERIAL_COLOR, key  # not the speed classes
        assert "value" in feats["r4"]  # its figures are there, in its tooltip
        assert feats["r1"]["style"]["color"] != palette.ARTERIAL_COLOR
        assert (
            "幹線道路 #1（名称なし）" in feats["r4"]["tip"]["ja"]
            and "Main road #1 (unnamed)" in feats["r4"]["tip"]["en"]
        )
        assert "生活道路 #1（名称なし）" in feats["r3"]["tip"]["ja"]
    assert limit_note(pub, "ja") == "制限速度：生活道路 30 km/h、幹線道路 60 km/h"
    assert limit_note(pub, "en") == "Speed limits: residential streets 30 km/h, main roads 60 km/h"
    page = page_text(district_map(make_map_district(tmp_path), osm_like_results(tmp_path)).get_root().render())
    assert w.t("legend_arterial", "ja") in page


def test_role_labels_may_move_along_their_street_and_the_map_fits_the_district(tmp_path):
    from shapely.geometry import box, mapping

    from maps._layers import fit_bounds, focus_bounds

    district = make_map_district(tmp_path)
    roads = make_map_roads()
    labels = label_points(district, roads.to_crs("EPSG:4326"))
    assert {lab["road_id"] for lab in labels} == {"r1", "r2"}
    for lab in labels:
        assert len(lab["candidates"]) >= 5 and [lab["lat"], lab["lon"]] == pytest.approx(lab["candidates"][0])
    # A network reaching far beyond a small outline: the map opens on the outline and its surroundings.
    lon, lat = 139.63, 35.533
    outline = mapping(box(lon + 0.0008, lat + 0.0008, lon + 0.0012, lat + 0.0012))
    roads = roads.assign(role=["treated", "residential", "residential", "residential"])  # r1 (south) in focus
    (s, west), (n, east) = fit_bounds(roads.to_crs("EPSG:4326"), outline)
    assert west > lon - 1e-9 and east < lon + 0.002 + 1e-9  # never beyond the roads here …
    assert (n - s) < 0.0019  # … and not the whole network's extent: the outline and its streets
    focus = focus_bounds(roads.to_crs("EPSG:4326"))
    assert s <= focus[0][0] and n >= focus[1][0]  # the treated and comparison streets stay in view
    assert fit_bounds(roads, None) == fit_bounds(roads)


def test_the_headline_indicator_is_said_once(tmp_path):
    """headline_indicator = "passage_share": the share of vehicles is the headline's figure, not repeated,
    and the report draws its chart once."""
    from maps.report import render_report

    district = dataclasses.replace(
        make_map_district(tmp_path), publication=Publication(headline_indicator="passage_share")
    )
    results = make_map_results(tmp_path, district=district)
    head = headline(district, public_results(results))
    text = head.text("ja")
    assert text.count("通過した車の割合") == 1, text
    report = render_report(district, results, tmp_path / "r.html").read_text(encoding="utf-8")
    assert report.count('aria-label="30 km/h 以上で通過した車の割合（対策前・対策後）"') == 1
    assert report.count('<svg class="chart"') >= 1


def test_analyze_csv_has_class_and_name_roles_first_then_vehicles(tmp_path, tiny_network):
    make_delivery(tmp_path / "delivery")
    assert cli("ingest", "--warehouse", tmp_path / "wh", tmp_path / "delivery").returncode == 0
    out = tmp_path / "roads.csv"
    proc = cli(
        "analyze", "--warehouse", tmp_path / "wh", "--roads", tiny_network, "--before", "2017-09-01..2017-09-30",
        "--after", "2017-11-01..2017-11-30", "--out", out,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert list(rows[0])[:5] == ["road_id", "road_name", "name", "highway", "role"]
    assert [(r["road_id"], r["highway"], r["name"]) for r in rows[::2]] == [
        ("R1", "residential", "生活道路"),
        ("A1", "secondary", "幹線"),
    ]  # R1 has more vehicles than A1 (two points in four on R1, one on A1)
    assert [r["period"] for r in rows[:2]] == ["before", "after"]
    # Roles first, whatever the vehicles: with --treated, compare's report, and the analyze table itself.
    from etc2calm.cli import analyze_table

    stats = pd.DataFrame(
        {
            "road_id": ["a", "b", "c", "a", "b", "c"],
            "role": ["", "comparison", "treated"] * 2,
            "period": ["before"] * 3 + ["after"] * 3,
            "n_vehicles": [500, 20, 10, 400, 30, 5],
        }
    )
    for col in ("road_name", "period_start", "period_end", "n_points", "mean_kmh", "p85_kmh", "limit_kmh"):
        stats[col] = 0
    for col in ("share_at_or_over_limit", "share_at_or_over_limit_plus_10", "n_passages", "passage_mean_kmh"):
        stats[col] = 0
    for col in ("passage_p85_kmh", "passage_share_at_or_over_limit", "passage_spot_mean_kmh"):
        stats[col] = 0
    roads = pd.DataFrame({"road_id": ["a", "b", "c"], "name": ["", "", "x"], "highway": ["residential"] * 3})
    roads["limit_kmh"], roads["role"] = 30.0, ["", "comparison", "treated"]
    table = analyze_table(stats, roads, ["before", "after"])
    assert list(zip(table["road_id"], table["period"], strict=True)) == [
        ("c", "before"), ("c", "after"), ("b", "before"), ("b", "after"), ("a", "before"), ("a", "after"),
    ]  # fmt: skip
    assert list(table["name"])[::2] == ["x", "生活道路 #2（名称なし）", "生活道路 #1（名称なし）"]


def test_compare_takes_before_and_after_like_analyze_and_reports_on_a_network(tmp_path, tiny_network):
    make_delivery(tmp_path / "delivery")
    wh = tmp_path / "wh"
    assert cli("ingest", "--warehouse", wh, tmp_path / "delivery").returncode == 0
    base = ["compare", "--warehouse", wh, "--roads", tiny_network, "--treated", "R1", "--control", "A1"]
    base += ["--resamples", "50"]
    flags = ["--before", "2017-09-01..2017-09-30", "--after", "2017-11-01..2017-11-30"]
    periods = ["--period", "before=2017-09-01..2017-09-30", "--period", "after=2017-11-01..2017-11-30"]
    a = cli(*base, *flags, "--out", tmp_path / "a.csv", "--report", tmp_path / "report.html")
    b = cli(*base, *periods, "--out", tmp_path / "b.csv")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "tiny_roads" in report and "差の差" in report
    assert_one_line_error(cli(*base, *flags, "--period", "before=2017-09-01..2017-09-30"), "--before and --period")
    assert_one_line_error(cli(*base, "--before", "2017-09-01..2017-09-30"), "--after")


@pytest.mark.parametrize(
    "args, needles",
    [
        (["compare", "-h"], ["--treated is required", "--before A..B --after A..B", "--report"]),
        (["publish", "-h"], ["computed first"]),
        (["district", "new", "-h"], ["never into the package", "required"]),
        (["screen", "-h"], ["[screening] min_vehicles"]),
        (["run-monthly", "-h"], ["no Prefect server"]),
        (["gates", "-h"], ["outline"]),
    ],
)
def test_help_states_every_constraint(args, needles):
    proc = cli(*args)
    text = re.sub(r"\s+", " ", proc.stdout)
    assert proc.returncode == 0
    for needle in needles:
        assert needle in text, (needle, text)


def test_editions_are_named_after_the_last_complete_month(tmp_path, monkeypatch):
    """A delivery of November with a spill-over day into December is the November edition; with only
    part of a month, the latest month with points."""
    import flows.pipeline as pipeline
    from etl.warehouse import point_days
    from flows.pipeline import edition_name

    lon, lat = offset(0, 0)
    days = {"full": ("20231101", "20231115", "20231130", "20231201"), "partial": ("20231201", "20231202")}
    for name, dates in days.items():
        for d in dates:
            write_zip(
                tmp_path / name / f"OUT1-2_533925_{d}.zip", [style12_row("000000000001", f"{d}120000", lon, lat, 30)]
            )
        assert cli("ingest", "--warehouse", tmp_path / f"wh-{name}", tmp_path / name).returncode == 0
    assert edition_name(str(tmp_path / "wh-full")) == "2023-11"
    assert edition_name(str(tmp_path / "wh-partial")) == "2023-12"
    # the days come from the snapshot (no point read); they are the points' days, and asking the points
    # (a store that does not record its days) names the same editions
    for name in days:
        wh = tmp_path / f"wh-{name}"
        con = duckdb.connect(str(wh / "warehouse.duckdb"), read_only=True)
        in_points = {r[0] for r in con.execute("SELECT DISTINCT operation_date FROM probe_points").fetchall()}
        con.close()
        assert point_days(wh) == in_points == {dt.date(int(d[:4]), int(d[4:6]), int(d[6:])) for d in days[name]}
    monkeypatch.setattr(pipeline, "point_days", lambda _: None)
    assert edition_name(str(tmp_path / "wh-full")) == "2023-11"
    assert edition_name(str(tmp_path / "wh-partial")) == "2023-12"
