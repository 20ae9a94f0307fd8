"""Screening on a hand-made district with a known answer: candidates, components, score, ranking, CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from screening_data import AREA_BOX, PERIOD, write_area, write_delivery, write_network

from analysis.results import load_screening
from analysis.screening import COMPONENTS, POINTS_COLUMNS, RESULT_COLUMNS, score_candidates, screen
from config.settings import RESIDENTIAL_MAX_LIMIT_KMH, SCREENING_WEIGHTS
from conftest import (
    cli,  # etc2calm.cli.main in this process
    network,
)
from etl.ingest import ingest_paths
from geo.network import load_area

CANDIDATES = ["R1", "R2", "R3", "R4"]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    root = tmp_path_factory.mktemp("screening")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ETC2CALM_ID_KEY", "test-key-not-secret")
        plans = write_delivery(root / "delivery")
        ingest_paths([root / "delivery"], root / "wh")
    return {
        "root": root,
        "wh": root / "wh",
        "plans": plans,
        "roads": write_network(root / "roads.geojson"),
        "area": write_area(root / "area.geojson"),
    }


def expected_components(plans, roads=CANDIDATES, days: int = 2) -> pd.DataFrame:
    """The components computed here from the generated trips only (not by the product)."""
    rows = []
    for rid in roads:
        p = plans[rid]
        v = np.array(p.passage_kmh)
        limit = RESIDENTIAL_MAX_LIMIT_KMH
        rows.append(
            {
                "road_id": rid,
                "n_passages": p.n,
                "n_vehicles": p.n,
                "share_at_or_over_limit": np.mean(v >= limit),
                "share_at_or_over_limit_plus_10": np.mean(v >= limit + 10),
                "p85_kmh": np.percentile(v, 85),
                "p85_over_limit": max(np.percentile(v, 85) - limit, 0.0),
                "braking_per_1000_passages": 1000.0 * sum(p.braking) / p.n,
                "cut_through_share": np.mean(p.cut_through),
                "passages_per_day": p.n / days,
            }
        )
    return pd.DataFrame(rows).set_index("road_id")


def expected_scores(comp: pd.DataFrame, weights=SCREENING_WEIGHTS, without=()) -> pd.DataFrame:
    """Points per component: 100 · w · x / (best candidate's x) / (sum of the weights used)."""
    used = {c: w for c, w in weights.items() if c not in without}
    total = sum(used.values())
    pts = pd.DataFrame(index=comp.index)
    for c, w in used.items():
        top = comp[c].max()
        pts[c] = 100 * w * (comp[c] / top if top > 0 else 0.0) / total
    return pts.assign(score=pts.sum(axis=1))


def test_ranking_and_components_on_a_fixture_with_a_known_answer(scenario):
    net = network(scenario["roads"])
    res = screen(scenario["wh"], net, PERIOD, area=load_area(scenario["area"]), area_label="outline", resamples=200)
    t = res.table.set_index("road_id")
    # Candidates: the residential roads with >= 50 vehicles; R5 (20 vehicles) is left out, A1 is an arterial.
    assert list(res.table["road_id"]) == ["R1", "R2", "R3", "R4"]
    assert list(res.table["rank"]) == [1, 2, 3, 4]
    assert res.low_sample[["road_id", "n_vehicles"]].values.tolist() == [["R5", 20]]
    assert res.n_residential == 5 and res.cut_through_available and res.braking_source == "points"
    exp = expected_components(scenario["plans"])
    for col in exp.columns:
        assert t.loc[CANDIDATES, col].to_numpy(float) == pytest.approx(exp[col].to_numpy(float)), col
    score = expected_scores(exp)
    for c in COMPONENTS:
        assert t.loc[CANDIDATES, POINTS_COLUMNS[c]].to_numpy() == pytest.approx(score[c].to_numpy()), c
    assert t.loc[CANDIDATES, "score"].to_numpy() == pytest.approx(score["score"].to_numpy())
    assert t["score"].to_numpy() == pytest.approx(t[list(POINTS_COLUMNS.values())].sum(axis=1).to_numpy())
    # Braking and cut-through rank as documented: R2 and R3 equal R4 in every other component, and rank above it.
    same = ["share_at_or_over_limit", "share_at_or_over_limit_plus_10", "p85_kmh", "passages_per_day"]
    assert (t.loc["R2", same] == t.loc["R4", same]).all() and (t.loc["R3", same] == t.loc["R4", same]).all()
    assert t.loc["R2", "braking_per_1000_passages"] > 0 == t.loc["R4", "braking_per_1000_passages"]
    assert t.loc["R3", "cut_through_share"] > t.loc["R4", "cut_through_share"]
    # The vehicles behind braking events and cut-through trips, for publishing's threshold (one vehicle a trip here).
    assert (
        t.loc["R2", "n_braking_vehicles"] == t.loc["R2", "n_braking_events"] == 10
        and t.loc["R4", "n_braking_vehicles"] == 0
    )
    assert (t.loc[CANDIDATES, "n_cut_through_vehicles"] == t.loc[CANDIDATES, "n_cut_through"]).all()
    assert t.loc["R3", "n_cut_through_vehicles"] == 54
    assert t.loc["R2", "rank"] < t.loc["R4", "rank"] and t.loc["R3", "rank"] < t.loc["R4", "rank"]
    # Intervals (cluster bootstrap over vehicles) bracket the shares and p85.
    for v, lo, hi in (
        ("share_at_or_over_limit", "share_ci_low", "share_ci_high"),
        ("p85_kmh", "p85_ci_low", "p85_ci_high"),
        ("share_at_or_over_limit_plus_10", "share_plus_10_ci_low", "share_plus_10_ci_high"),
    ):
        assert (t[lo] <= t[v] + 1e-12).all() and (t[v] <= t[hi] + 1e-12).all(), v
        # ... strictly, unless flagged degenerate (resamples on fewer than 3 values: a share of 0 or 1)
        ok = ~t["degenerate"].astype(bool)
        assert ((t[lo] < t[v]) & (t[v] < t[hi]))[ok].all(), v
    assert t.loc["R1", "share_ci_low"] < t.loc["R1", "share_ci_high"]
    assert (
        t.loc["R1", "rank_ci_low"] == 1
        and (t["rank_ci_low"] <= t["rank"]).all()
        and (t["rank"] <= t["rank_ci_high"]).all()
    )
    # Stored, and read back as stored.
    run, stored = load_screening(scenario["wh"], net.key)
    assert run["n_candidates"] == 4 and run["n_low_sample"] == 1 and run["area"] == "outline"
    assert list(stored["road_id"]) == list(res.table["road_id"])
    assert stored["degenerate"].tolist() == res.table["degenerate"].tolist() and run["basis"] == "given"
    assert stored["score"].to_numpy() == pytest.approx(res.table["score"].to_numpy())


def test_bootstrap_with_unit_weights_reproduces_every_component(scenario, monkeypatch):
    """A replicate that keeps every vehicle once gives the point estimates: the replicate path (braking,
    cut-through, volume, scaling) computes the same score as the estimate."""
    import analysis.screening as screening

    monkeypatch.setattr(screening, "bootstrap_weights", lambda n, r, seed: np.ones((r, n)))
    res = screen(
        scenario["wh"], network(scenario["roads"]), PERIOD, area=load_area(scenario["area"]), resamples=10, store=False
    )
    t = res.table
    assert t["score_ci_low"].to_numpy() == pytest.approx(t["score"].to_numpy())
    assert t["score_ci_high"].to_numpy() == pytest.approx(t["score"].to_numpy())
    assert t["p85_ci_low"].to_numpy() == pytest.approx(t["p85_kmh"].to_numpy())
    assert (t["rank_ci_low"] == t["rank"]).all() and (t["rank_ci_high"] == t["rank"]).all()


def test_fewer_vehicles_allowed_and_no_area(scenario):
    """--min-vehicles 10 makes R5 (20 vehicles, every passage at 45 km/h) a candidate; without an area the
    cut-through term is left out and the other weights are rescaled to 100."""
    res = screen(scenario["wh"], network(scenario["roads"]), PERIOD, min_vehicles=10, resamples=50, store=False)
    t = res.table.set_index("road_id")
    assert list(res.table["road_id"][:1]) == ["R5"] and len(res.low_sample) == 0 and not res.cut_through_available
    assert t["cut_through_share"].isna().all() and (t["points_cut_through"] == 0).all()
    exp = expected_components(scenario["plans"], ["R1", "R2", "R3", "R4", "R5"])
    score = expected_scores(exp, without=("cut_through_share",))
    assert t.loc[exp.index, "score"].to_numpy() == pytest.approx(score["score"].to_numpy())
    assert any("cut-through left out" in n for n in res.notes)


def test_area_polygon_selects_the_roads_inside(scenario, tmp_path):
    """Only roads with at least half their length inside the polygon are candidates; cut-through is judged
    against the polygon; the figures are those of the whole roads (the network's own matches)."""
    small = write_area(tmp_path / "south.geojson", (AREA_BOX[0], AREA_BOX[1], AREA_BOX[2], 90.0))  # R1, R2
    net = network(scenario["roads"])
    res = screen(scenario["wh"], net, PERIOD, area=load_area(small), area_label="area:south", resamples=50, store=False)
    assert sorted(res.table["road_id"]) == ["R1", "R2"] and res.n_residential == 2
    exp = expected_components(scenario["plans"], ["R1", "R2"])
    t = res.table.set_index("road_id").loc[["R1", "R2"]]
    assert t["cut_through_share"].to_numpy() == pytest.approx(exp["cut_through_share"].to_numpy())
    assert t["score"].to_numpy() == pytest.approx(expected_scores(exp)["score"].to_numpy())


def test_score_formula_by_hand():
    comp = pd.DataFrame(
        {
            "road_id": ["a", "b", "c"],
            "share_at_or_over_limit": [0.2, 0.1, 0.0],
            "share_at_or_over_limit_plus_10": [0.0, 0.0, 0.0],
            "p85_over_limit": [2.0, 0.0, 1.0],
            "braking_per_1000_passages": [0.0, 5.0, 0.0],
            "cut_through_share": [np.nan] * 3,
            "passages_per_day": [10.0, 40.0, 20.0],
        }
    )
    t = score_candidates(comp).set_index("road_id")
    k = 100 / 85  # cut-through (15) unavailable: the other 85 points rescaled to 100
    assert t.loc["a", "score"] == pytest.approx(k * (25 + 0 + 10 + 0 + 15 * 10 / 40))
    assert t.loc["b", "score"] == pytest.approx(k * (25 * 0.5 + 20 + 15))
    assert t.loc["c", "score"] == pytest.approx(k * (10 * 0.5 + 15 * 0.5))
    assert list(t.sort_values("rank").index) == ["b", "a", "c"]
    assert (t["points_share_plus_10"] == 0).all()  # 0 for every candidate: no points, no division by zero


def test_screen_cli_writes_the_ranking_csv(scenario, tmp_path):
    out = tmp_path / "ranking.csv"
    proc = cli(
        "screen",
        "--warehouse",
        scenario["wh"],
        "--roads",
        scenario["roads"],
        "--area",
        scenario["area"],
        "--period",
        f"{PERIOD.start}..{PERIOD.end}",
        "--top",
        "2",
        "--resamples",
        "100",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    assert "left out: R5 (20 vehicles)" in proc.stdout and "wrote 4 rows" in proc.stdout
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert list(rows[0])[:4] == ["rank", "road_id", "road_name", "score"] and list(rows[0]) == RESULT_COLUMNS
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4] and [r["road_id"] for r in rows] == CANDIDATES
    assert rows[0]["road_name"] == "道路R1"
    run_row, stored = load_screening(scenario["wh"], "roads:roads", area=f"area:{Path(scenario['area']).stem}")
    assert run_row["area_path"] == str(Path(scenario["area"]).resolve())  # what a map of the ranking needs
    assert run_row["network_path"] == str(Path(scenario["roads"]).resolve())
    assert [float(r["score"]) for r in rows] == pytest.approx(stored["score"].tolist())
    # Mistakes are one line, without a traceback.
    for args, msg in (
        (["--area", scenario["area"]], "--area needs a road network"),
        (["--roads", scenario["roads"]], "--roads needs --period"),
    ):
        proc = cli("screen", "--warehouse", scenario["wh"], *args)
        assert proc.returncode == 2 and msg in proc.stderr and "Traceback" not in proc.stderr


def test_braking_from_behaviour_events(tmp_path):
    """Where the delivery has 挙動履歴, its events are the braking (not inferred ones), also those of
    vehicles with no point on the road, and they move the road up."""
    from conftest import offset, write_zip

    write_delivery(tmp_path / "delivery")
    events = []
    for i in range(6):  # six vehicles never seen in the points brake hard on R4 (y = 150)
        lon, lat = offset(200 + i, 150.5)
        f = [""] * 18
        f[1], f[2], f[6], f[7], f[8] = (
            "20170905",
            f"{990000 + i:012d}",
            f"2017090508{i:02d}00",
            f"{lon:.7f}",
            f"{lat:.7f}",
        )
        f[9], f[14], f[15] = "4", "22", "-0.35"
        events.append(",".join(f))
    write_zip(tmp_path / "events" / "behavior.zip", events)
    ingest_paths([tmp_path / "delivery"], tmp_path / "wh")
    ingest_paths([tmp_path / "events"], tmp_path / "wh", fmt="behavior")
    roads, area = write_network(tmp_path / "roads.geojson"), write_area(tmp_path / "area.geojson")
    res = screen(tmp_path / "wh", network(roads), PERIOD, area=load_area(area), resamples=100, store=False)
    t = res.table.set_index("road_id")
    assert res.braking_source == "behavior_events"
    assert t.loc["R4", "n_braking_events"] == 6 and t.loc["R4", "braking_per_1000_passages"] == pytest.approx(100.0)
    assert t.loc["R2", "n_braking_events"] == 0  # its inferred decelerations are not used when events are delivered
    assert list(res.table["road_id"]) == ["R1", "R4", "R3", "R2"]
    assert t["score_ci_low"].notna().all() and (t.loc["R4", "score_ci_low"] < t.loc["R4", "score_ci_high"])
