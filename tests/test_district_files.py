"""Districts kept outside the package: folders, precedence, every problem at once, `district
new | list | check`, and the outline made from the roads with gates where roads cross it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import shapely

from config.district_files import find_district, find_districts
from config.districts import list_districts, load_district, load_district_file, read_district_file
from conftest import ROOT, assert_one_line_error, cli

OSM = ROOT / "tests" / "data" / "hodogaya_osm_roads.geojson"
BUNDLED = {"okurayama", "nakayama"}
# Interior streets of the blocks the outer roads of the extract enclose (tests/data/hodogaya_generator.toml).
TREATED, CONTROL = "125735160", ("125735195", "125735204")


def district_text(key: str | None = "x", network: str = "roads.geojson", extra: str = "") -> str:
    head = f'key = "{key}"\n' if key else ""
    return (
        f'{head}name_ja = "テスト町"\nnetwork = "{network}"\n[roads]\ntreated = ["{TREATED}"]\n'
        '[[periods]]\nname = "before"\nstart = 2023-05-01\nend = 2023-05-31\n'
        '[[periods]]\nname = "after"\nstart = 2023-11-01\nend = 2023-11-30\n' + extra
    )


def folder_with(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(OSM, path / "roads.geojson")
    for name, text in files.items():
        (path / name).write_text(text, encoding="utf-8")
    return path


def test_user_folders_come_first_and_the_bundled_stay_listed(tmp_path, monkeypatch):
    """ETC2CALM_DISTRICTS (os.pathsep-separated) is searched in order, then the bundled districts; on a
    duplicate key the first folder wins and the other is reported as shadowed; a file without `key`
    is keyed by its stem; ETC2CALM_BUNDLED_DISTRICTS=0 hides the bundled ones."""
    a = folder_with(tmp_path / "a", {"hodogaya.toml": district_text("hodogaya"), "stem.toml": district_text(None)})
    b = folder_with(
        tmp_path / "b", {"other.toml": district_text("hodogaya"), "okurayama.toml": district_text("okurayama")}
    )
    monkeypatch.setenv("ETC2CALM_DISTRICTS", f"{a}{__import__('os').pathsep}{b}")
    found = find_districts()
    keys = [s.key for s in found.found]
    assert keys[:2] == ["hodogaya", "stem"] and set(keys) == {"hodogaya", "stem", "okurayama", "nakayama"}
    assert {(s.key, s.path.parent.name) for s in found.found} >= {("hodogaya", "a"), ("okurayama", "b")}
    shadowed = {(hidden.path.name, winner.path.parent.name) for hidden, winner in found.shadowed}
    assert shadowed == {("other.toml", "a"), ("okurayama.toml", "b")}  # the user's okurayama shadows the bundled one
    assert load_district("okurayama").source_path.parent == b
    assert [d.key for d in list_districts()] == keys
    monkeypatch.setenv("ETC2CALM_BUNDLED_DISTRICTS", "0")
    assert {s.key for s in find_districts().found} == {"hodogaya", "stem", "okurayama"}
    monkeypatch.delenv("ETC2CALM_DISTRICTS")
    monkeypatch.delenv("ETC2CALM_BUNDLED_DISTRICTS")
    assert {s.key for s in find_districts().found} == BUNDLED


def test_a_path_to_a_toml_file_is_a_district(tmp_path, monkeypatch):
    """--district /path/x.toml reads that file (key: its `key`, else its stem); an unknown key names the
    folders searched."""
    monkeypatch.delenv("ETC2CALM_DISTRICTS", raising=False)
    folder = folder_with(tmp_path / "mine", {"hodogaya.toml": district_text(None)})
    d = load_district(str(folder / "hodogaya.toml"))
    assert d.key == "hodogaya" and d.name_ja == "テスト町" and d.treated_roads == (TREATED,)
    assert find_district(str(folder / "hodogaya.toml")) == (folder / "hodogaya.toml").resolve()
    with pytest.raises(ValueError, match=r"unknown district 'hodogaya' \(known: .*okurayama.*searched"):
        load_district("hodogaya")
    with pytest.raises(ValueError, match="does not exist"):
        load_district(str(folder / "missing.toml"))


def test_every_problem_of_a_district_file_is_reported_at_once(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'key = "bad"\nward_jp = "保土ケ谷区"\n[roads]\ncomparison = ["1"]\n'
        '[[periods]]\nname = "before"\nstart = 2023-05-01\nend = "2023-04-31"\n'
        "[screening]\nmin_vehicles = 0\n[publication]\nmin_vehicles = 3\n",
        encoding="utf-8",
    )
    district, problems = read_district_file(bad)
    text = "\n".join(problems)
    for needle in (
        "missing required key 'name_ja'",
        "missing required key 'network'",
        "[roads] treated",
        "unknown key 'ward_jp'",
        "2023-04-31",  # not a date
        "no period 'after'",
        "[screening] min_vehicles",
        "[publication] min_vehicles must be a whole number of at least 10",
    ):
        assert needle in text, (needle, problems)
    with pytest.raises(ValueError) as exc:
        load_district_file(bad)
    message = str(exc.value)
    assert "\n" not in message and "name_ja" in message and "ward_jp" in message and "[roads] treated" in message


def test_generator_parameters_live_apart_from_the_bundled_districts():
    """The bundled district files name their generator parameters' file; the parameters are read from it."""
    for key in BUNDLED:
        d = load_district(key)
        raw = d.source_path.read_text(encoding="utf-8")
        assert "[synthetic" not in raw and f'synthetic = "../synthetic/{key}.toml"' in raw
        assert d.synthetic["trips_per_day"] and d.synthetic["speed"]["treated_kmh"] > 0
        assert "etc2calm/district.py" not in raw  # the header names the module that reads it


def test_district_new_list_and_check(tmp_path, monkeypatch):
    mine, second = tmp_path / "mine", tmp_path / "second"
    monkeypatch.setenv("ETC2CALM_DISTRICTS", f"{mine}{__import__('os').pathsep}{second}")
    args = ["district", "new", "hodogaya", "--roads", OSM, "--treated", TREATED, "--control", ",".join(CONTROL)]
    periods = ["--before", "2023-05-01..2023-05-31", "--after", "2023-11-01..2023-11-30"]
    # Every missing id at once; nothing written.
    proc = cli(*args[:5], "--treated", "nope1", "--control", f"{CONTROL[0]},nope2", *periods)
    assert_one_line_error(proc, "nope1", "nope2")
    assert not mine.exists()
    proc = cli(*args, *periods, "--trial", "2023-10-01..2023-10-31", "--ward", "保土ケ谷区", "--outline-from-roads")
    assert proc.returncode == 0, proc.stderr
    assert (mine / "hodogaya.toml").exists() and (mine / "hodogaya_roads.geojson").read_bytes() == OSM.read_bytes()
    d = load_district("hodogaya")
    assert d.source_path == (mine / "hodogaya.toml").resolve() or d.source_path == mine / "hodogaya.toml"
    assert (
        d.treated_roads == (TREATED,)
        and d.comparison_roads == CONTROL
        and set(d.periods) == {"before", "trial", "after"}
    )
    assert d.ward_ja == "保土ケ谷区" and d.area_path.name == "hodogaya_area.geojson"
    assert json.loads(d.area_path.read_text())["features"][0]["geometry"]["type"] == "Polygon"
    assert not list((ROOT / "data" / "districts").glob("hodogaya*"))  # never into the package
    # Writing into the package's own folder is refused, as is a second district of the same key.
    assert_one_line_error(cli(*args, *periods, "--folder", ROOT / "data" / "districts"), "package")
    assert_one_line_error(cli(*args, *periods), "exists", "--force")
    # list: yours first, then the bundled ones, each with its folder; a shadowed key is warned about.
    folder_with(second, {"okurayama.toml": district_text("okurayama")})
    proc = cli("district", "list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("hodogaya") and "user" in lines[0] and str(mine) in lines[0]
    assert any(line.startswith("nakayama") and "bundled" in line for line in lines)
    assert re.search(r"okurayama.*user.*second", proc.stdout)
    assert "warning" in proc.stderr and "okurayama" in proc.stderr and "first folder wins" in proc.stderr
    # check: ok, then every problem at once after breaking the file.
    proc = cli("district", "check", "hodogaya")
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr
    text = (mine / "hodogaya.toml").read_text(encoding="utf-8")
    broken = text.replace(f'treated = ["{TREATED}"]', 'treated = ["999"]').replace(
        'area = "', 'ward_jp = "x"\narea = "x'
    )
    (mine / "hodogaya.toml").write_text(broken, encoding="utf-8")
    proc = cli("district", "check", str(mine / "hodogaya.toml"))
    assert proc.returncode == 1
    assert "'999' is not in" in proc.stdout and "unknown key 'ward_jp'" in proc.stdout and "area:" in proc.stdout


def test_district_new_needs_a_folder_of_yours(monkeypatch):
    monkeypatch.delenv("ETC2CALM_DISTRICTS", raising=False)
    proc = cli(
        "district", "new", "x", "--roads", OSM, "--treated", TREATED, "--before", "2023-05-01..2023-05-31",
        "--after", "2023-11-01..2023-11-30",
    )  # fmt: skip
    assert_one_line_error(proc, "ETC2CALM_DISTRICTS")


# --- the outline from the roads ----------------------------------------------------------------------


def _grid_with_dangling_ways():
    """A 2 × 2 block grid (streets 100 m apart, metres) with four ways leaving it (each 80 m long) and
    one tree of streets far away (it encloses nothing)."""
    lines = []
    for k in (0.0, 100.0, 200.0):
        lines.append(shapely.LineString([(0, k), (200, k)]))
        lines.append(shapely.LineString([(k, 0), (k, 200)]))
    dangling = [((200, 100), (280, 100)), ((100, 200), (100, 280)), ((0, 100), (-80, 100)), ((100, 0), (100, -80))]
    lines += [shapely.LineString(p) for p in dangling]
    lines.append(shapely.LineString([(1000, 1000), (1100, 1000), (1100, 1100)]))
    return lines, dangling


def test_outline_from_roads_encloses_the_outer_roads_and_dangling_ways_cross_it():
    from geo.outline import outline_from_roads

    lines, dangling = _grid_with_dangling_ways()
    area = outline_from_roads(lines, margin_m=25.0)
    assert area.geom_type == "Polygon"
    grid = shapely.box(0, 0, 200, 200)
    assert area.contains(grid.buffer(24.5)) and not area.contains(grid.buffer(25.5))  # the blocks grown by 25 m
    for (x0, y0), (x1, y1) in dangling:
        crossing = shapely.intersection(shapely.LineString([(x0, y0), (x1, y1)]), area.boundary)
        assert crossing.geom_type == "Point"  # crossed once
        assert shapely.distance(crossing, shapely.Point(x0, y0)) == pytest.approx(25.0, abs=0.01)
    assert not area.intersects(shapely.Point(1050, 1000))  # the tree of streets is not part of it
    with pytest.raises(ValueError, match="enclose no area"):
        outline_from_roads([shapely.LineString([(0, 0), (10, 0)]), shapely.LineString([(10, 0), (10, 10)])])


def test_gates_land_where_roads_cross_the_outline_on_the_real_osm_network():
    """On the 保土ケ谷 extract: one derived gate per way crossing the outline, on that way and on the
    outline; no gate where a way only runs inside; not a hull (gates would sit at the ends of ways)."""
    from analysis.gates import derive_gates
    from geo.network import load_roads
    from geo.outline import outline_from_roads

    roads = load_roads(OSM)
    area = outline_from_roads(roads.geometry.values)
    gates = derive_gates(roads, area)
    assert len(gates) >= 4
    geoms = dict(zip(roads["road_id"], roads.geometry.values, strict=True))
    points = shapely.points(gates["x_m"].to_numpy(), gates["y_m"].to_numpy())
    assert (shapely.distance(points, area.boundary) < 0.01).all()
    assert all(shapely.distance(p, geoms[r]) < 0.01 for p, r in zip(points, gates["road_id"], strict=True))
    crossing = {r for r, g in geoms.items() if not shapely.is_empty(shapely.intersection(g, area.boundary))}
    assert set(gates["road_id"]) == crossing
    ends = np.concatenate([shapely.get_coordinates(shapely.boundary(g)) for g in geoms.values()])
    _, first, counts = np.unique(ends, axis=0, return_index=True, return_counts=True)
    dead_ends = shapely.points(ends[first[counts == 1]])  # where the network stops: a hull's gates would be there
    assert shapely.distance(points[:, None], dead_ends[None, :]).min() > 10
    hull = shapely.convex_hull(shapely.union_all(roads.geometry.values))
    assert area.area < 0.5 * hull.area


def test_one_broken_district_does_not_stop_the_others(tmp_path, monkeypatch):
    """The monthly run (flow and run-monthly share these functions) sets aside a district whose file
    cannot be read or whose stages fail, with a one-line reason, and runs the others."""
    import flows.pipeline as pipeline

    monkeypatch.delenv("ETC2CALM_DISTRICTS", raising=False)
    bad_toml = tmp_path / "broken.toml"
    bad_toml.write_text("key = 'broken\n[periods", encoding="utf-8")  # a careless edit: unterminated string
    files, broken = pipeline.resolve_districts(["okurayama", str(bad_toml), "no_such_district"])
    assert list(files) == ["okurayama"]
    assert set(broken) == {str(bad_toml), "no_such_district"}
    assert all(why and "\n" not in why for why in broken.values())

    def steps(call, warehouse, ref, resamples, seed):
        if "nakayama" in ref:
            raise FileNotFoundError("roads file data/networks/nakayama.geojson is missing\nsecond line")
        return {"match": ref}

    monkeypatch.setattr(pipeline, "analysis_steps", steps)
    files, _ = pipeline.resolve_districts(["okurayama", "nakayama"])
    results, failed = pipeline.run_districts(pipeline.call_plain, "wh", files, 10, 1)
    assert list(results) == ["okurayama"] and results["okurayama"]["match"].endswith("okurayama.toml")
    assert failed == {"nakayama": "FileNotFoundError: roads file data/networks/nakayama.geojson is missing"}
