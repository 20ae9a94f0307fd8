"""The CLI contract, in this process and as the installed script: ingest, analyze, map, sql, and one-line errors."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

import pytest

from conftest import ETC2CALM, assert_one_line_error, cli, expected, make_delivery, write_zip


def run(*args, cwd=None):
    """The installed `etc2calm` script in a subprocess (the entry point as users run it)."""
    return subprocess.run([ETC2CALM, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture
def ingested(tmp_path):
    truth = make_delivery(tmp_path / "delivery")
    proc = cli("ingest", "--warehouse", tmp_path / "wh", tmp_path / "delivery")
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "wh", truth, proc


def test_ingest_reports_counts(ingested):
    _, _, proc = ingested
    # 2 files × (240 points + 1 outside the periods); no bad rows.
    assert "rows read 482 = stored 482 + quarantined 0" in proc.stdout


@pytest.mark.slow
def test_ingest_bad_file_exits_nonzero_after_ingesting_the_rest(tmp_path):
    make_delivery(tmp_path / "d")
    (tmp_path / "d" / "OUT1-2_533925_20170906.zip").write_bytes(b"PK\x05\x06truncated")
    proc = run("ingest", "--warehouse", tmp_path / "wh", tmp_path / "d")
    assert proc.returncode != 0
    assert "OUT1-2_533925_20170906.zip" in proc.stderr and "Traceback" not in proc.stderr
    assert "2 ingested" in proc.stdout and "1 failed" in proc.stdout
    out = run("sql", "--warehouse", tmp_path / "wh", "--csv", "SELECT count(*) AS n FROM probe_points")
    assert out.stdout.splitlines() == ["n", "482"]


def test_ingest_quarantine_exits_zero(tmp_path):
    write_zip(tmp_path / "d" / "a.zip", ["only,three,fields"])
    proc = cli("ingest", "--warehouse", tmp_path / "wh", tmp_path / "d")
    assert proc.returncode == 0
    assert "quarantined 1" in proc.stdout
    out = cli("sql", "--warehouse", tmp_path / "wh", "--csv", "SELECT line_no, reason FROM quarantine")
    assert out.stdout.splitlines() == ["line_no,reason", "1,field_count"]


def test_analyze_roads_csv(ingested, tiny_network, tmp_path):
    wh, truth, _ = ingested
    out = tmp_path / "out" / "stats.csv"
    proc = cli(
        "analyze",
        "--warehouse",
        wh,
        "--roads",
        tiny_network,
        "--before",
        "2017-09-01..2017-09-30",
        "--after",
        "2017-11-01..2017-11-30",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    required = {
        "road_id",
        "period",
        "n_points",
        "n_vehicles",
        "mean_kmh",
        "p85_kmh",
        "share_at_or_over_limit",
        "limit_kmh",
    }
    assert required <= set(rows[0])
    assert {(r["road_id"], r["period"]) for r in rows} == {
        ("R1", "before"),
        ("R1", "after"),
        ("A1", "before"),
        ("A1", "after"),
    }
    for r in rows:
        speeds, vids = truth[r["period"]][r["road_id"]]
        exp = expected(speeds, vids, float(r["limit_kmh"]))
        assert int(r["n_points"]) == exp["n_points"] and int(r["n_vehicles"]) == exp["n_vehicles"]
        assert float(r["mean_kmh"]) == pytest.approx(exp["mean_kmh"])
        assert float(r["p85_kmh"]) == pytest.approx(exp["p85_kmh"])
        assert float(r["share_at_or_over_limit"]) == pytest.approx(exp["share_at_or_over_limit"])


def test_analyze_period_bounds_are_inclusive(ingested, tiny_network, tmp_path):
    wh, truth, _ = ingested
    out = tmp_path / "s.csv"
    # One-day periods on exactly the delivery days.
    proc = cli(
        "analyze",
        "--warehouse",
        wh,
        "--roads",
        tiny_network,
        "--before",
        "2017-09-05..2017-09-05",
        "--after",
        "2017-11-10..2017-11-10",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {(r["road_id"], r["period"]): r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert int(rows[("R1", "after")]["n_points"]) == len(truth["after"]["R1"][0])


def test_sql_table_and_read_only(ingested):
    wh, _, _ = ingested
    proc = cli("sql", "--warehouse", wh, "SELECT count(*) AS n FROM probe_points")
    assert proc.returncode == 0 and "482" in proc.stdout
    assert_one_line_error(cli("sql", "--warehouse", wh, "DELETE FROM manifest"), "read-only")
    assert_one_line_error(cli("sql", "--warehouse", wh, "SELECT * FROM no_such_table"), "SQL error")


def _map_data(path: Path) -> str:
    """A map page with folium's random element ids numbered (layers, figures, overlays, headline: all of it)."""
    from conftest import normalised

    return normalised(path.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_map_command_publishes_what_the_pipeline_publishes(tmp_path):
    """`etc2calm map` draws the stored results, exactly as the flow's publish step (cut-through layer included);
    `publish` writes the report and sheet in both languages; `export --district` every period and the devices."""
    from config.districts import load_district
    from etl.synthetic import generate_delivery
    from maps.publish import publish_district

    wh = tmp_path / "wh"
    generate_delivery(tmp_path / "d", districts=[load_district("okurayama")], scale=0.15)
    assert run("ingest", "--warehouse", wh, tmp_path / "d").returncode == 0
    assert_one_line_error(
        run("map", "--warehouse", wh, "--district", "okurayama", "--out", tmp_path / "early.html"),
        "no stored results",
        "etc2calm analyze",
    )
    for cmd in ("analyze", "compare"):
        proc = run(cmd, "--warehouse", wh, "--district", "okurayama", "--out", tmp_path / f"{cmd}.csv")
        assert proc.returncode == 0, proc.stderr
    out = tmp_path / "maps" / "okurayama.html"
    proc = run("map", "--warehouse", wh, "--district", "okurayama", "--out", out)
    assert proc.returncode == 0, proc.stderr
    html = out.read_text(encoding="utf-8")
    assert "大倉山三丁目" in html and "合成データ" in html and "抜け道ルート" in html
    flow = publish_district(wh, load_district("okurayama"), tmp_path / "flow")
    assert _map_data(out) == _map_data(Path(flow["map"]))
    proc = run("publish", "--warehouse", wh, "--district", "okurayama", "--out", tmp_path / "pub", "--lang", "en")
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "pub" / "okurayama_report.en.html").read_text(encoding="utf-8")
    assert (
        '<html lang="en">' in report
        and 'id="headline"' in report
        and (tmp_path / "pub" / "okurayama_sheet.en.pdf").exists()
    )
    assert not (tmp_path / "pub" / "okurayama_report.html").exists()  # only the languages asked for
    proc = run("export", "--warehouse", wh, "--district", "okurayama", "--out", tmp_path / "okurayama.gpkg")
    assert proc.returncode == 0, proc.stderr
    import geopandas as gpd
    import pyogrio

    assert [name for name, _ in pyogrio.list_layers(tmp_path / "okurayama.gpkg")] == [
        "roads",
        "road_periods",
        "devices",
    ]
    roads = gpd.read_file(tmp_path / "okurayama.gpkg", layer="roads")
    assert {"before_mean_kmh", "after_mean_kmh", "change_mean_kmh", "before_public"} <= set(roads.columns)
    assert len(gpd.read_file(tmp_path / "okurayama.gpkg", layer="devices")) == len(load_district("okurayama").devices)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["ingest", "/no/such/delivery"], "no such file"),
        (["analyze", "--district", "atlantis"], "unknown district 'atlantis'"),
        (["analyze", "--district", "okurayama", "--before", "2017-09-30..2017-09-01"], "bad date range"),
        (["analyze", "--district", "okurayama", "--before", "September"], "bad date range"),
        (["map", "--district", "atlantis"], "unknown district"),
        (
            ["analyze", "--district", "okurayama", "--period", "a=2017-09-01..2017-09-30", "--period", "a=trial"],
            "--period a is given twice",
        ),
        (["analyze", "--district", "okurayama", "--radius", "nan"], "positive number of metres"),
        (["analyze", "--district", "okurayama", "--out", "."], "is a folder"),
        (["compare", "--district", "okurayama", "--out", "/tmp"], "is a folder"),
    ],
)
def test_user_mistakes_one_line(tmp_path, args, needle):
    proc = cli(*args[:1], "--warehouse", tmp_path / "wh", *args[1:])
    assert_one_line_error(proc, needle)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["compare", "-h"],
        ["analyze", "-h"],
        ["ingest", "-h"],
        ["screen", "-h"],
        ["export", "-h"],
        ["match", "-h"],
    ],
)
def test_help_texts_print(args):
    """Every help text renders (a literal % in a help string crashes argparse unless doubled)."""
    proc = cli(*args)
    assert proc.returncode == 0 and "usage: etc2calm" in proc.stdout and "Traceback" not in proc.stderr


def test_user_mistake_from_the_installed_script(tmp_path):
    """The console script itself: one line, no traceback, non-zero exit."""
    assert_one_line_error(run("analyze", "--warehouse", tmp_path / "wh", "--district", "atlantis"), "unknown district")


def test_analyze_roads_requires_periods(tmp_path, tiny_network):
    proc = cli("analyze", "--warehouse", tmp_path / "wh", "--roads", tiny_network)
    assert_one_line_error(proc, "--before is required")


def test_sql_without_warehouse(tmp_path):
    assert_one_line_error(cli("sql", "--warehouse", tmp_path / "none", "SELECT 1"), "no warehouse")


def test_analyze_named_periods_and_filters(ingested, tiny_network, tmp_path):
    wh, truth, _ = ingested
    out = tmp_path / "f.csv"
    # The hand-made points run 7:00–10:59, 60 an hour, half of them on R1: 7-8 keeps 30 per day.
    proc = cli(
        "analyze",
        "--warehouse",
        wh,
        "--roads",
        tiny_network,
        "--period",
        "sep=2017-09-01..2017-09-30",
        "--period",
        "nov=2017-11-01..2017-11-30",
        "--hours",
        "7-8",
        "--days",
        "weekday",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {(r["road_id"], r["period"]): r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert set(rows) == {("R1", "sep"), ("R1", "nov"), ("A1", "sep"), ("A1", "nov")}
    assert int(rows[("R1", "sep")]["n_points"]) == 30 and int(rows[("R1", "nov")]["n_points"]) == 30
    assert rows[("R1", "sep")]["filter"].startswith("7時〜8時")
    # 2017-09-05 and 2017-11-10 are weekdays: a holiday filter keeps nothing.
    proc = cli(
        "analyze",
        "--warehouse",
        wh,
        "--roads",
        tiny_network,
        "--before",
        "2017-09-01..2017-09-30",
        "--after",
        "2017-11-01..2017-11-30",
        "--days",
        "holiday",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    assert all(int(r["n_points"]) == 0 for r in csv.DictReader(out.open(encoding="utf-8")))
    assert "0 points matched in period before" in proc.stderr and "0 points matched in period after" in proc.stderr
    # Filtered figures are not stored over the published ones.
    out2 = cli("sql", "--warehouse", wh, "--csv", "SELECT count(*) AS n FROM road_period_stats")
    assert out2.stdout.splitlines() == ["n", "0"]
