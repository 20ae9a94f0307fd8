"""Stage fingerprints (analysis/stages.py): a stage runs again whenever anything its result depends
on changes, and only then. Each test changes one input the way a user or an upgrade would."""

from __future__ import annotations

import json
import os
import shutil

import pytest

import analysis.stages as stages
from analysis.stages import forget_stage, run_stage
from conftest import make_delivery, make_test_district, offset, style12_row, write_zip
from etl.ingest import ingest_paths
from etl.warehouse import connect


@pytest.fixture
def setup(tmp_path, tiny_network):
    make_delivery(tmp_path / "delivery")
    ingest_paths([tmp_path / "delivery"], tmp_path / "wh")
    net = tmp_path / "net" / "roads.geojson"
    net.parent.mkdir()
    shutil.copy(tiny_network, net)
    return tmp_path / "wh", make_test_district(net)


class Counter:
    def __init__(self, summary=None):
        self.calls, self.summary = 0, summary if summary is not None else {"n": 1}

    def __call__(self):
        self.calls += 1
        return self.summary


def test_unchanged_inputs_run_once_and_return_the_recorded_summary(setup):
    wh, district = setup
    fn = Counter({"rows": 3, "months": ["2017-09"]})
    first = run_stage(wh, district, "analyze", {"seed": 1}, fn)
    second = run_stage(wh, district, "analyze", {"seed": 1}, fn)
    assert fn.calls == 1
    assert first == second == {"rows": 3, "months": ["2017-09"]}


def test_changed_parameters_run_again(setup):
    wh, district = setup
    fn = Counter()
    run_stage(wh, district, "compare", {"resamples": 100, "seed": 1}, fn)
    run_stage(wh, district, "compare", {"resamples": 200, "seed": 1}, fn)
    run_stage(wh, district, "compare", {"resamples": 200, "seed": 2}, fn)
    assert fn.calls == 3


def test_an_edited_network_file_runs_again(setup):
    wh, district = setup
    fn = Counter()
    run_stage(wh, district, "analyze", {}, fn)
    fc = json.loads(district.network_path.read_text(encoding="utf-8"))
    fc["features"][0]["properties"]["maxspeed"] = "20"  # the bureau lowers a limit
    district.network_path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    run_stage(wh, district, "analyze", {}, fn)
    assert fn.calls == 2


def test_a_new_delivery_runs_again(setup, tmp_path):
    wh, district = setup
    fn = Counter()
    run_stage(wh, district, "analyze", {}, fn)
    lon, lat = offset(0, 0)
    write_zip(
        tmp_path / "more" / "OUT1-2_533925_20171111.zip", [style12_row("000000000777", "20171111090000", lon, lat, 31)]
    )
    report = ingest_paths([tmp_path / "more"], wh)
    assert report.total("rows_stored") == 1
    run_stage(wh, district, "analyze", {}, fn)
    assert fn.calls == 2


def test_the_same_delivery_again_changes_nothing(setup, tmp_path):
    wh, district = setup
    fn = Counter()
    run_stage(wh, district, "analyze", {}, fn)
    ingest_paths([tmp_path / "delivery"], wh)  # already in the warehouse: nothing committed
    run_stage(wh, district, "analyze", {}, fn)
    assert fn.calls == 1


def test_changed_code_or_environment_runs_again(setup, monkeypatch):
    wh, district = setup
    fn = Counter()
    run_stage(wh, district, "gates", {}, fn)
    monkeypatch.setattr(stages, "code_digest", lambda: "an upgraded release")  # a new version of the code
    run_stage(wh, district, "gates", {}, fn)
    assert fn.calls == 2
    monkeypatch.setenv("ETC2CALM_BEHAVIOR_LAYOUT", "other")
    run_stage(wh, district, "gates", {}, fn)
    assert fn.calls == 3
    monkeypatch.setenv("ETC2CALM_ID_KEY", "a-secret-never-recorded")
    run_stage(wh, district, "gates", {}, fn)
    assert fn.calls == 3  # the key does not enter the fingerprint


def test_the_code_digest_follows_the_files(tmp_path, monkeypatch):
    before = stages.code_digest()
    assert len(before) == 64 and before == stages.code_digest()
    fake = tmp_path / "analysis" / "stages.py"
    for package in stages.CODE_PACKAGES:
        (tmp_path / package).mkdir(exist_ok=True)
        (tmp_path / package / "m.py").write_text("X = 1\n")
    fake.write_text("")
    monkeypatch.setattr(stages, "__file__", str(fake))
    stages.code_digest.cache_clear()
    try:
        a = stages.code_digest()
        (tmp_path / "geo" / "m.py").write_text("X = 2\n")  # one constant edited
        stages.code_digest.cache_clear()
        assert stages.code_digest() != a
    finally:
        monkeypatch.undo()
        stages.code_digest.cache_clear()
    assert stages.code_digest() == before


def test_a_failed_stage_records_nothing(setup):
    wh, district = setup

    def broken():
        raise OSError("disk full")

    with pytest.raises(OSError):
        run_stage(wh, district, "screen", {}, broken)
    fn = Counter()
    run_stage(wh, district, "screen", {}, fn)
    assert fn.calls == 1


def test_results_stored_by_another_command_run_the_stage_again(setup):
    wh, district = setup
    fn = Counter()
    run_stage(wh, district, "monitor", {}, fn)
    con = connect(wh)
    try:
        forget_stage(con, district.key, "monitor")  # what every function storing the stage's tables does
    finally:
        con.close()
    run_stage(wh, district, "monitor", {}, fn)
    assert fn.calls == 2


def test_publish_runs_again_when_a_published_file_is_gone(setup, tmp_path):
    wh, district = setup
    page = tmp_path / "out" / "t.html"

    def publish():
        page.parent.mkdir(exist_ok=True)
        page.write_text("map")
        return {"map": str(page)}

    calls = []
    for _ in range(2):
        run_stage(wh, district, "publish", {"out_dir": str(page.parent)}, lambda: calls.append(1) or publish())
    assert len(calls) == 1
    os.remove(page)  # someone cleaned the edition folder
    run_stage(wh, district, "publish", {"out_dir": str(page.parent)}, lambda: calls.append(1) or publish())
    assert len(calls) == 2 and page.exists()


def test_publish_runs_again_after_an_upstream_stage_ran(setup, tmp_path):
    wh, district = setup
    out = {"map": str(tmp_path / "t.html")}
    (tmp_path / "t.html").write_text("map")
    fn = Counter(out)
    run_stage(wh, district, "analyze", {}, Counter())
    run_stage(wh, district, "publish", {}, fn)
    run_stage(wh, district, "analyze", {"seed": 9}, Counter())  # new figures stored
    run_stage(wh, district, "publish", {}, fn)
    assert fn.calls == 2


def test_unknown_stage_is_a_clear_error(setup):
    wh, district = setup
    with pytest.raises(ValueError, match="unknown stage"):
        run_stage(wh, district, "anlyze", {}, Counter())
