"""docs/districts.md takes a new user from a road file and a delivery to a published
district in at most ten commands. This test runs exactly the commands of its walkthrough block, one by one,
as the installed `etc2calm` script, on the real OpenStreetMap extract of 保土ケ谷 (tests/data, ODbL) with a
synthetic delivery driven over its ways (tests/data/hodogaya_generator.toml), then checks what each
produced: the district file outside the package, the bundled districts still listed, gates where roads
cross the outline, a screening that ranks candidates, and the published map, report, sheet and screening
map reading well (no raw OSM ids, no ward outline needed). Then the monthly run without Prefect."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, page_text, q

ETC2CALM = str(Path(sys.executable).parent / "etc2calm")
DOC = ROOT / "docs" / "districts.md"
OSM = ROOT / "tests" / "data" / "hodogaya_osm_roads.geojson"
GENERATOR = ROOT / "tests" / "data" / "hodogaya_generator.toml"


def walkthrough() -> list[str]:
    """The command lines of docs/districts.md's walkthrough block (the ```sh block after its marker)."""
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- walkthrough.*?-->\s*```sh\n(.*?)```", text, flags=re.S)
    assert block, "docs/districts.md has no walkthrough block"
    return [line.strip() for line in block[1].splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_walkthrough_is_at_most_ten_commands():
    commands = walkthrough()
    assert 0 < len(commands) <= 10
    assert all(c.startswith(("etc2calm ", "export ")) for c in commands)
    assert commands[0].startswith("export ETC2CALM_DISTRICTS=")  # the district file lives outside the package
    verbs = [c.split()[1] for c in commands if c.startswith("etc2calm ")]
    assert {"ingest", "district", "publish"} <= set(verbs)


def _expand(text: str, env: dict[str, str]) -> str:
    return re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: env[m[1] or m[2]], text)


@pytest.fixture(scope="module")
def delivery(tmp_path_factory) -> Path:
    """A synthetic 様式1-2 delivery for May and November 2023 (and a spill-over day, 2023-12-01) on the ways
    of the 保土ケ谷 extract."""
    out = tmp_path_factory.mktemp("hodogaya") / "delivery"
    proc = subprocess.run(
        [ETC2CALM, "generate", str(out), "--district", str(GENERATOR), "--scale", "0.5", "--seed", "26"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def walked(delivery, tmp_path_factory):
    """The walkthrough run command by command in a fresh folder holding the road file and the delivery."""
    work = tmp_path_factory.mktemp("work")
    shutil.copyfile(OSM, work / OSM.name)
    shutil.copytree(delivery, work / "delivery")
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if k not in ("ETC2CALM_DISTRICTS", "ETC2CALM_BUNDLED_DISTRICTS")}
    env.update(HOME=str(home), ETC2CALM_ID_KEY="walkthrough-key-0123456789", XDG_CONFIG_HOME=str(home / ".config"))
    outputs = []
    for line in walkthrough():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            env[name] = _expand(value, env)
            continue
        args = [_expand(a, env) for a in shlex.split(line)]
        proc = subprocess.run([ETC2CALM, *args[1:]], cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
        outputs.append((args[1:3], proc))
    return work, env, home, outputs


def _out(walked, *verb) -> subprocess.CompletedProcess:
    return next(p for args, p in walked[3] if tuple(args[: len(verb)]) == verb)


@pytest.mark.slow
def test_the_district_lives_outside_the_package_and_the_bundled_ones_stay_listed(walked):
    work, env, home, _ = walked
    folder = home / "etc2calm-districts"
    assert (folder / "hodogaya.toml").is_file() and (folder / "hodogaya_roads.geojson").is_file()
    assert (folder / "hodogaya_area.geojson").is_file()
    assert sorted(p.name for p in (ROOT / "data" / "districts").glob("*.toml")) == ["nakayama.toml", "okurayama.toml"]
    listed = _out(walked, "district", "list").stdout
    assert re.search(r"^hodogaya\s+user\s+保土ケ谷区岩崎町", listed, flags=re.M)
    assert re.search(r"^okurayama\s+bundled", listed, flags=re.M) and re.search(
        r"^nakayama\s+bundled", listed, flags=re.M
    )
    assert "ok" in _out(walked, "district", "check").stdout
    # district new counted the points of the streets it was given (the delivery drives over them).
    counts = re.findall(
        r"(before|after)\s+(treated|comparison)\s+(\d+)\s+([\d,]+) points\s+([\d,]+) vehicles",
        _out(walked, "district", "new").stdout,
    )
    assert len(counts) == 6 and all(int(n.replace(",", "")) > 50 for *_, n, _v in counts)


@pytest.mark.slow
def test_the_analyze_csv_names_every_road_and_lists_the_roles_first(walked):
    work = walked[0]
    csv = pd.read_csv(work / "roads.csv", dtype={"road_id": str})
    assert {"highway", "name"} <= set(csv.columns)
    order = csv.drop_duplicates("road_id")
    # --roads has no roles: every road is an 'other' one, by vehicles (most first).
    vehicles = csv.groupby("road_id", sort=False)["n_vehicles"].max().reindex(order["road_id"]).fillna(0).to_numpy()
    assert (vehicles[:-1] >= vehicles[1:]).all()
    assert csv["name"].str.contains(r"^生活道路 #\d+（名称なし）$").any() and not csv["name"].eq("").any()
    assert set(csv["highway"]) >= {"unclassified", "tertiary"}
    treated = csv[csv["road_id"] == "125735160"]
    assert len(treated) == 2 and (treated["n_vehicles"] > 50).all()


@pytest.mark.slow
def test_gates_land_where_the_roads_cross_the_outline_and_through_traffic_is_seen(walked):
    import shapely

    from config.districts import load_district
    from geo.network import load_area, load_roads

    work, env, home, _ = walked
    wh = work / "wh"
    district_file = home / "etc2calm-districts" / "hodogaya.toml"
    area = load_area(load_district(str(district_file)).area_path)
    roads = load_roads(OSM)
    geoms = dict(zip(roads["road_id"], roads.geometry.values, strict=True))
    gates = q(wh, "SELECT gate_id, road_id, x_m, y_m FROM district_gates WHERE district = 'hodogaya'")
    assert len(gates) >= 4
    for gate_id, road_id, x, y in gates:
        point = shapely.Point(x, y)
        assert point.distance(area.boundary) < 0.01 and point.distance(geoms[road_id]) < 0.01, gate_id
    shares = dict(
        q(
            wh,
            "SELECT gate_class, share_trips FROM gate_class_summary WHERE district = 'hodogaya' AND period = 'before' "
            "AND time_band = 'all'",
        )
    )
    assert 0.05 < shares["through"] < 0.95 and shares["internal"] < 0.5  # not the artefacts of a hull
    assert "through" in _out(walked, "gates").stdout


@pytest.mark.slow
def test_screening_ranks_candidates_with_the_districts_minimum(walked):
    wh = walked[0] / "wh"
    sql = "SELECT min_vehicles, n_candidates FROM screening_runs WHERE district = 'hodogaya' ORDER BY computed_at DESC"
    [(min_vehicles, n_candidates), *_] = q(wh, sql)
    assert min_vehicles == 20 and n_candidates >= 3
    out = _out(walked, "screen").stdout
    assert re.search(r"\d+ ranked", out) and "生活道路 #" in out  # unnamed candidates by their label


@pytest.mark.slow
def test_the_published_district_reads_well(walked):
    maps = walked[0] / "maps"
    names = {p.name for p in maps.iterdir()}
    assert {
        "hodogaya.html",
        "hodogaya_report.html",
        "hodogaya_report.en.html",
        "hodogaya_sheet.pdf",
        "hodogaya_sheet.png",
        "hodogaya_sheet.en.pdf",
        "hodogaya.gpkg",
        "hodogaya_screening.html",
    } <= names
    page = page_text((maps / "hodogaya.html").read_text(encoding="utf-8"))
    assert "<title>保土ケ谷区岩崎町 生活道路の速度</title>" in page  # the ward is not repeated
    assert "区の境界" not in page  # the bundled wards file has no 保土ケ谷区: no ward outline, no error
    assert "生活道路 #" in page and "（名称なし）" in page
    assert "幹線道路" in page  # arterials worded as such (legend, tooltips, limits)
    screening = page_text((maps / "hodogaya_screening.html").read_text(encoding="utf-8"))
    lead = re.search(r"候補の1位は「([^」]+)」です", screening)
    assert lead and not lead[1].isdigit(), "the screening headline names a raw OSM id"
    report = (maps / "hodogaya_report.html").read_text(encoding="utf-8")
    assert "差の差" in report and "生活道路 #" in report


@pytest.mark.slow
def test_the_monthly_run_without_prefect(walked):
    """`etc2calm run-monthly --district KEY`: the flow's stages without a Prefect server or API: no
    Prefect output, no traceback; its edition is the last complete month (the spill-over day of
    December does not name it)."""
    work, env, _, _ = walked
    proc = subprocess.run(
        [
            ETC2CALM,
            "run-monthly",
            "--district",
            "hodogaya",
            "--warehouse",
            "wh",
            "--out",
            "monthly",
            "--resamples",
            "50",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "prefect" not in (proc.stdout + proc.stderr).lower()
    assert sorted(p.name for p in (work / "monthly").iterdir()) == ["2023-11", "latest"]
    assert (work / "monthly" / "latest" / "hodogaya.html").is_file()
    [(days,)] = q(work / "wh", "SELECT count(*) FROM probe_points WHERE operation_date >= DATE '2023-12-01'")
    assert days > 0  # the delivery does reach into December
