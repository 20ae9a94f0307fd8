"""The screening map ("where to calm next"): drawn from the stored screening only, both
languages, no network, the publication threshold (maps.public.public_screening), the CLI's
`screen --map` and the published file."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from screening_data import PERIOD, stored_screening

import maps.wording as w
from analysis.results import load_screening
from config.settings import PUBLIC_MIN_VEHICLES as K
from conftest import assert_one_line_error, cli, frame_options, json_after, layer_data, map_features
from maps._embed import VENDORED, vendored_text
from maps.public import SCREENING_SCORE_COLUMNS, public_screening
from maps.publish import PUBLISHED_FILES, write_district_screening_map
from maps.screening_map import render_screening_map, write_screening_map

CREATED = dt.date(2024, 7, 10)
TILE_URLS = (
    "https://cyberjapandata.gsi.go.jp/xyz/pale/",
    "https://maps.gsi.go.jp/",
    "https://tile.openstreetmap.org/",
    "https://www.openstreetmap.org/copyright",
    "https://leafletjs.com",
    "http://www.w3.org/2000/svg",  # the namespace of an inline SVG image, never fetched
)


GREY = ("residential", "main")


def screen_data(page: str) -> dict:
    """What a screening map page shows: its language and titles (the frame's), the candidates (the page
    script's), the grey roads and the area outline (GeoJson layers)."""
    frame = frame_options(page)
    layers = layer_data(page)
    areas = [f["geometry"] for d in layers for f in d.get("features", []) if f["geometry"]["type"].endswith("Polygon")]
    return {
        "lang": frame["lang"],
        "doc_title": frame["doc_title"],
        "candidates": json_after(page, '"candidates":'),
        "roads": {
            "features": [
                f for f in map_features(page) if f.get("properties", {}).get("kind") in ("residential", "main")
            ]
        },
        "area": areas[0] if areas else None,
    }


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    return stored_screening(tmp_path_factory.mktemp("screening_map"))


@pytest.fixture(scope="module")
def page(stored, tmp_path_factory):
    out = write_screening_map(
        stored["wh"],
        "t",
        tmp_path_factory.mktemp("out") / "screening.html",
        area="outline",
        district=stored["district"],
        created=CREATED,
    )
    return out.read_text(encoding="utf-8")


def _rows(stored) -> tuple[pd.Series, pd.DataFrame]:
    run, rows = load_screening(stored["wh"], "t", area="outline")
    assert run is not None and list(rows["road_id"]) == ["R1", "R2", "R3", "R4"]
    return run, rows


# --- the page ---------------------------------------------------------------------------------


def test_opens_without_network(page):
    assert '<meta charset="utf-8">' in page and '<html lang="ja">' in page
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']?(https?:)?//", page)
    assert "E2CScreening.start(" in page and "window.e2c = {" in page and ".e2c-rank-marker" in page  # assets inlined
    own = page
    for url in VENDORED:  # the libraries mention URLs in comments
        own = own.replace(vendored_text(url), "")
    for url in re.findall(r"https?://[^\s\"'<>\\]+", own):
        assert url.startswith(TILE_URLS), url


def test_both_languages(page):
    assert "<title>テスト地区（港北区）生活道路の対策候補</title>" in page
    assert (
        '<span lang="ja">テスト地区（港北区）生活道路の対策候補</span><span lang="en">Test: where to calm next</span>'
        in page
    )
    for ja, en in (
        ("対策を検討する候補の1位は「道路R1」です。", "The first candidate for traffic calming is 道路R1."),
        ("期間：2017年9月5日〜2017年9月6日", "Period: 5 Sep 2017 – 6 Sep 2017"),
        ("候補（上位 4）", "Candidates (top 4)"),
        ("1〜3位", "Rank 1–3"),
        ("その他の生活道路", "Other residential streets"),
        ("対象区域", "Area screened"),
        ("観測車両が 10 台未満の数値は表示しません。", "Figures from fewer than 10 vehicles are not shown."),
        ("合成データ（デモ用）", "Synthetic data (demo)"),
    ):
        assert ja in page and en in page, (ja, en)
    data = screen_data(page)
    assert data["lang"] == "ja" and set(data["doc_title"]) == {"ja", "en"}
    assert [c["rank"] for c in data["candidates"]] == [1, 2, 3, 4]
    assert [c["road_id"] for c in data["candidates"]] == ["R1", "R2", "R3", "R4"]
    for c in data["candidates"]:
        assert (
            "急ブレーキ（1,000通過あたり）" in c["popup"]["ja"]
            and "Sudden braking per 1,000 passages" in c["popup"]["en"]
        )
    # the other roads of the network in grey: the arterial A1 and R5 (too few vehicles to be a candidate), unnamed
    assert sorted(f["properties"]["kind"] for f in data["roads"]["features"]) == ["main", "residential"]
    assert data["area"]["type"] in ("Polygon", "MultiPolygon") and f'"{TILE_URLS[0]}{{z}}/{{x}}/{{y}}.png"' in page


def test_figures_are_the_stored_values_rounded_by_wording(stored, page):
    _, rows = _rows(stored)
    data = {c["road_id"]: c for c in screen_data(page)["candidates"]}
    one = lambda v: w.number(round(float(v), w.DECIMALS) + 0.0)  # noqa: E731
    for r in rows.to_dict("records"):
        c = data[r["road_id"]]
        assert c["score"] == round(r["score"], 1)
        ja, en = c["popup"]["ja"], c["popup"]["en"]
        assert f"スコア {one(r['score'])}（95%信頼区間 {one(r['score_ci_low'])}〜{one(r['score_ci_high'])}）" in ja
        assert f"Score {one(r['score'])} (95% interval {one(r['score_ci_low'])}–{one(r['score_ci_high'])})" in en
        assert f"順位 {r['rank']}位（95%信頼区間 {int(r['rank_ci_low'])}〜{int(r['rank_ci_high'])}位）" in ja
        share = w.fmt_value("share", r["share_at_or_over_limit"])
        assert f"{share}（{w.fmt_value('share', r['share_ci_low'])}〜{w.fmt_value('share', r['share_ci_high'])}）" in ja
        assert f"{w.fmt_value('share', r['share_at_or_over_limit_plus_10'])}（" in ja
        assert f"{w.fmt_value('p85', r['p85_kmh'])}（{w.fmt_value('p85', r['p85_ci_low'])}〜" in ja
        assert f"{one(r['braking_per_1000_passages'])}（{int(r['n_braking_events'])} 件）" in ja
        assert (
            f"{w.fmt_value('share', r['cut_through_share'])}（{int(r['n_trips'])} トリップ中 "
            f"{int(r['n_cut_through'])}）" in ja
        )
        assert f"{w.fmt_count(round(r['passages_per_day']))} 通過/日" in ja
        assert f"観測車両 {w.fmt_count(r['n_vehicles'])} 台・通過 {w.fmt_count(r['n_passages'])} 回" in ja
        for col in ("points_share", "points_braking", "points_cut_through", "points_volume"):
            assert f"[{one(r[col])} 点]" in ja and f"[{one(r[col])} pts]" in en, col
    top = rows.iloc[0]
    assert (
        f"1位のスコアは {one(top['score'])}（95%信頼区間 {one(top['score_ci_low'])}〜{one(top['score_ci_high'])}）"
        in page
    )
    assert f'<span class="e2c-score">{one(top["score"])}</span>' in page


def test_candidate_under_the_threshold_is_absent_and_scores_hidden(stored, tmp_path):
    """A candidate of a run screened with --min-vehicles below the publication threshold is not drawn,
    named or counted, and with something held back no score (relative to it) is shown."""
    run, rows = _rows(stored)
    rows.loc[rows["road_id"] == "R2", "n_vehicles"] = K - 1
    page = render_screening_map(run, rows, tmp_path / "m.html", district=stored["district"], created=CREATED).read_text(
        encoding="utf-8"
    )
    data = screen_data(page)
    assert [c["road_id"] for c in data["candidates"]] == ["R1", "R3", "R4"]
    assert [c["rank"] for c in data["candidates"]] == [1, 3, 4]  # ranks among all candidates
    assert "道路R2" not in page and '"R2"' not in page and "[R2]" not in page
    assert all(c["score"] is None for c in data["candidates"])
    assert 'class="e2c-score"' not in page and " 点]" not in page and " pts]" not in page
    assert "スコアは非公表" in page and "Score not published" in page and "1位のスコアは" not in page
    for col in ("score", "score_ci_low", "score_ci_high"):
        for v in rows[col]:
            assert f"スコア {w.number(round(v, 1))}" not in page
    assert "観測車両が 10 台未満の候補 1 本は表示していません" in page
    assert "対策を検討する候補の1位は「道路R1」です。" in page
    # the first candidate held back: the lead names the highest public one with its rank
    rows.loc[rows["road_id"] == "R1", "n_vehicles"] = np.nan
    page = render_screening_map(run, rows, tmp_path / "m.html", district=stored["district"], created=CREATED).read_text(
        encoding="utf-8"
    )
    assert "公表できる候補の最上位は「道路R3」（3位）です。" in page and "1位は" not in page
    assert "The highest-ranked candidate that can be published is 道路R3 (No. 3)." in page


def test_braking_from_too_few_vehicles_is_withheld(stored, tmp_path):
    run, rows = _rows(stored)
    rows.loc[rows["road_id"] == "R2", "n_braking_vehicles"] = 3  # 10 events, from 3 vehicles
    page = render_screening_map(run, rows, tmp_path / "m.html", created=CREATED).read_text(encoding="utf-8")
    r2 = next(c for c in screen_data(page)["candidates"] if c["road_id"] == "R2")
    rate = w.number(round(float(rows.loc[rows["road_id"] == "R2", "braking_per_1000_passages"].iloc[0]), 1))
    assert "データ不足（10 台未満の車両）" in r2["popup"]["ja"] and "too few data" in r2["popup"]["en"]
    assert rate not in r2["popup"]["ja"] and "10 件" not in r2["popup"]["ja"]
    assert all(c["score"] is None for c in screen_data(page)["candidates"])
    assert "<title>生活道路の対策候補（roads）</title>" in page  # without a district: named by the network file


# --- public_screening: attack-style inputs ----------------------------------------------------------


def _frame(**over) -> pd.DataFrame:
    base = {
        "rank": [1, 2],
        "road_id": ["a", "b"],
        "n_vehicles": [50, 40],
        "n_braking_events": [0, 4],
        "n_braking_vehicles": [0, 20],
        "braking_per_1000_passages": [0.0, 8.0],
        "n_trips": [60, 50],
        "n_cut_through": [12, 0],
        "n_cut_through_vehicles": [12, 0],
        "cut_through_share": [0.2, 0.0],
        **{c: [70.0, 30.0] for c in SCREENING_SCORE_COLUMNS},
    }
    base.update(over)
    return pd.DataFrame(base)


def test_public_screening_everything_public():
    rows = _frame()
    pub, held = public_screening(rows)
    assert held == {"n_hidden": 0, "scores_public": True, "k": K}
    assert pub["braking_public"].all() and pub["cut_through_public"].all()
    assert pub["score"].tolist() == [70.0, 30.0]
    pd.testing.assert_frame_equal(rows, _frame())  # the input is not changed


@pytest.mark.parametrize("vehicles", [[np.nan, 40], [K - 1, 40], [-5, 40], ["9", 40]])
def test_public_screening_hides_candidates_under_the_threshold(vehicles):
    pub, held = public_screening(_frame(n_vehicles=vehicles))
    assert list(pub["road_id"]) == ["b"] and held["n_hidden"] == 1 and not held["scores_public"]
    assert pub[list(SCREENING_SCORE_COLUMNS)].isna().all().all()


def test_public_screening_zero_events_are_public_few_vehicles_are_not():
    # zero events (and zero vehicles behind them) are published as 0; 4 events from 3 vehicles are not
    pub, held = public_screening(_frame(n_braking_vehicles=[0, 3]))
    assert pub["braking_public"].tolist() == [True, False] and not held["scores_public"]
    assert (
        pub.loc[0, "braking_per_1000_passages"] == 0.0
        and pub.loc[1, ["n_braking_events", "braking_per_1000_passages"]].isna().all()
    )
    assert pub["score"].isna().all() and pub["points_braking"].isna().all()
    # cut-through trips of 5 vehicles: count, share and trips withheld
    pub, held = public_screening(_frame(n_cut_through_vehicles=[5, 0]))
    assert pub["cut_through_public"].tolist() == [False, True] and not held["scores_public"]
    assert pub.loc[0, ["n_cut_through", "cut_through_share", "n_trips"]].isna().all()
    # NaN vehicles behind events count as none
    pub, _ = public_screening(_frame(n_braking_vehicles=[0, np.nan]))
    assert pub["braking_public"].tolist() == [True, False]


def test_public_screening_without_the_vehicle_columns():
    """A run stored before the vehicles behind events were: only zero counts are safe to publish."""
    pub, held = public_screening(_frame().drop(columns=["n_braking_vehicles", "n_cut_through_vehicles"]))
    assert pub["braking_public"].tolist() == [True, False] and pub["cut_through_public"].tolist() == [False, True]
    assert not held["scores_public"] and pub["score"].isna().all()


def test_public_screening_of_nothing():
    for rows in (None, pd.DataFrame(), _frame().iloc[:0]):
        pub, held = public_screening(rows)
        assert pub.empty and held["n_hidden"] == 0 and not held["scores_public"]


# --- CLI and publishing ----------------------------------------------------------------------------


def test_screen_map_cli_reads_the_stored_run_and_computes_nothing(stored, tmp_path, monkeypatch):
    import analysis.screening

    def no(*a, **k):
        raise AssertionError("screen --map must not compute")

    # a stored ad-hoc screening (roads:roads, area:area) to draw: stored by `screen` without --map
    args = ["--warehouse", stored["wh"], "--roads", stored["roads"], "--area", stored["area"]]
    proc = cli("screen", *args, "--period", f"{PERIOD.start}..{PERIOD.end}", "--resamples", "30")
    assert proc.returncode == 0, proc.stderr
    monkeypatch.setattr(analysis.screening, "screen", no)
    monkeypatch.setattr(analysis.screening, "screen_district", no)
    out = tmp_path / "maps" / "where.html"
    proc = cli("screen", *args, "--map", out, "--top", "2", "--lang", "en")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    page = out.read_text(encoding="utf-8")
    assert '<html lang="en">' in page and [c["rank"] for c in screen_data(page)["candidates"]] == [1, 2]
    _, rows = load_screening(stored["wh"], "roads:roads", area="area:area")
    assert screen_data(page)["candidates"][0]["score"] == round(rows["score"].iloc[0], 1)
    # Nothing stored for that area or those dates: one line, no traceback.
    other = stored["area"].with_name("other.geojson")
    other.write_bytes(stored["area"].read_bytes())
    for extra, needle in (
        (["--area", other, "--map", tmp_path / "x.html"], "no stored screening of 'roads:roads'"),
        (
            ["--area", stored["area"], "--period", "2018-01-01..2018-01-31", "--map", tmp_path / "x.html"],
            "no stored screening",
        ),
    ):
        proc = cli("screen", "--warehouse", stored["wh"], "--roads", stored["roads"], *extra)
        assert_one_line_error(proc, needle, "etc2calm screen")
        assert proc.returncode == 2
    assert not (tmp_path / "x.html").exists()
    assert_one_line_error(
        cli("screen", *args, "--map", tmp_path / "x.html", "--out", tmp_path / "x.csv"), "--map computes nothing"
    )


def test_published_with_the_district(stored, tmp_path):
    """publish_district's screening file: the district's stored screening of its default before period."""
    assert "screening" in PUBLISHED_FILES
    paths = write_district_screening_map(
        stored["wh"], stored["district"], tmp_path / "t_screening.html", created=CREATED
    )
    assert list(paths) == ["screening"] and "生活道路の対策候補" in Path(paths["screening"]).read_text(encoding="utf-8")
    from dataclasses import replace

    assert (
        write_district_screening_map(stored["wh"], replace(stored["district"], key="nothing"), tmp_path / "n.html")
        == {}
    )
    assert not (tmp_path / "n.html").exists()
