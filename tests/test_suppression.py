"""Every public output applies one suppression: nothing derived from fewer than 10 distinct vehicles.

For each output (map, its layers, report in both languages, sheet in both languages, GeoPackage and
GeoParquet export) a below-threshold fixture is rendered and the output's text is scanned for every
number derived from a suppressed cell: figures, changes, intervals, the difference in differences,
rates, counts (vehicles, points, events, trips), histogram and cumulative-curve charts, hot spots and
cut-through streets, monitoring months (trend chart and table, verdict), gate classes and gate pairs,
screening candidates (the screening map: a candidate, braking and cut-through under the threshold, and
every score relative to them). Three fixtures (and the stored screening of tests/screening_data.py):
- `partial`: the hand-made district with one sparse street (7 / 6 vehicles), a hot spot of 6 vehicles,
  braking on a street by 3 vehicles and a cut-through street of 3 vehicles, next to public figures;
- `below`: the same district with every cell under the threshold (the DiD from 2 treated vehicles);
- a warehouse built from a hand-made delivery with 2 treated and 6 comparison vehicles per period,
  published end to end by publish_district.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

import maps._embed as embed
from config.settings import PUBLIC_MIN_VEHICLES as K
from conftest import (
    AFTER,
    BEFORE,
    bilingual_texts,
    comparisons_from,
    make_gates,
    make_map_district,
    make_map_results,
    make_map_stats,
    make_monthly,
    make_test_district,
    map_features,
    network,
    offset,
    style12_row,
    write_zip,
)
from maps._layers import braking_layer, cut_through_layer, road_layers
from maps.district_map import render_district_map
from maps.district_sheet import render_district_sheet
from maps.export import export_figures
from maps.public import public_results
from maps.report import render_report

SPEED = ("mean_kmh", "p85_kmh", "passage_mean_kmh", "passage_p85_kmh")
SHARE = ("share_at_or_over_limit", "share_at_or_over_limit_plus_10", "passage_share_at_or_over_limit")
COUNTS = ("n_points", "n_vehicles", "n_passages")


# --- what must never appear ----------------------------------------------------------------------


def derived(results, k: int = K) -> tuple[set[str], set[int]]:
    """(decimals, counts) derived from the cells of `results` (engineers' figures) under k vehicles:
    every figure as it would be printed (one decimal; shares in percent) and every count."""
    decimals: set[str] = set()
    counts: set[int] = set()

    def dec(v, factor: float = 1.0) -> None:
        if v is not None and not pd.isna(v) and math.isfinite(float(v)):
            decimals.add(f"{abs(float(v)) * factor:.1f}")

    def cnt(v) -> None:
        if v is not None and not pd.isna(v):
            counts.add(int(v))

    for stats in (results.road_stats, results.group_stats):
        for _, r in stats.iterrows():
            if 0 < (0 if pd.isna(r["n_vehicles"]) else r["n_vehicles"]) < k:
                for c in SPEED:
                    dec(r.get(c))
                for c in SHARE:
                    dec(r.get(c), 100)
                for c in COUNTS:
                    cnt(r.get(c))
    for ind, table in results.comparisons.items():
        factor = 100 if "share" in ind else 1
        for _, r in table.iterrows():
            if min(r["n_vehicles_before"], r["n_vehicles_after"]) < k:
                for c in (
                    "before",
                    "after",
                    "change",
                    "ci_low",
                    "ci_high",
                    "before_ci_low",
                    "before_ci_high",
                    "after_ci_low",
                    "after_ci_high",
                ):
                    dec(r.get(c), factor)
                for c in ("n_vehicles_before", "n_vehicles_after", "n_before", "n_after"):
                    cnt(r[c])
    vehicles = {
        (p, str(rid)): n
        for p, rid, n in zip(
            results.road_stats["period"], results.road_stats["road_id"], results.road_stats["n_vehicles"], strict=True
        )
    }
    for _, r in results.braking.iterrows():
        hidden = vehicles.get((r["period"], str(r["road_id"])), 0) < k or 0 < r["n_vehicles"] < k
        if hidden and r["n_events"] > 0:
            cnt(r["n_events"])
            dec(r["events_per_1000_passages"])
    for _, r in results.hotspots.iterrows():
        if r["n_vehicles"] < k:
            cnt(r["n_events"])
    for _, r in results.cut_through.iterrows():
        if r["n_vehicles"] < k:
            cnt(r["n_trips"])
        if r["n_vehicles"] < k or 0 < r["n_vehicles_cut_through"] < k:
            cnt(r["n_cut_through"])
            dec(r["share_cut_through"], 100)
    for _, r in results.cut_through_streets.iterrows():
        if r["n_vehicles_cut_through"] < k:
            cnt(r["n_cut_through"])
            dec(r["share_cut_through"], 100)
    gates = getattr(results, "gates", None)
    if gates is not None:
        for key, by in (("summary", ["period", "time_band"]), ("od", ["period", "time_band", "gate_class"])):
            for _, g in gates[key].groupby(by):
                small = g[(g["n_vehicles"] > 0) & (g["n_vehicles"] < k)]
                for _, r in small.iterrows():
                    cnt(r["n_trips"])
                    if "share_trips" in r:  # printed as a percentage: looked for with its sign
                        decimals.add(f"{100 * float(r['share_trips']):.1f}%")
                if len(small) > 1:
                    cnt(small["n_trips"].sum())  # the hidden cells together (what a subtraction would give)
    monthly = getattr(results, "monthly", None)
    if monthly is not None:
        small_after = {
            (ind, str(u))
            for ind, t in results.comparisons.items()
            for u, n in zip(t["unit"], t["n_vehicles_after"], strict=True)
            if n < k
        }
        for _, r in monthly.iterrows():
            factor = 100 if "share" in r["indicator"] else 1
            if 0 < r["n_vehicles"] < k:
                for c in ("value", "ci_low", "ci_high", "change_vs_after", "change_ci_low", "change_ci_high"):
                    dec(r[c], factor)
                cnt(r["n"])
                cnt(r["n_vehicles"])
            if (r["indicator"], r["unit"]) in small_after:  # the after level rests on too few vehicles
                for c in ("after_level", "change_vs_after", "change_ci_low", "change_ci_high"):
                    dec(r[c], factor)
    return decimals, counts


def shown_text(page: str) -> str:
    """What a reader of an HTML page sees: text nodes (SVG <text> included), attributes and markup
    dropped, and for a map the texts and figures of its scripts: every tooltip and popup (each
    {'ja', 'en'} text) and the properties of every GeoJson feature (values, counts; not styles or
    geometry)."""
    texts = [t for x in bilingual_texts(page) for t in x.values()]
    props = []
    for f in map_features(page):
        p = dict(f.get("properties") or {})
        for key in ("style", "tip", "popup", "weight"):
            p.pop(key, None)
        props.append(p)
    extra = "\n".join(texts) + "\n" + json.dumps(props, ensure_ascii=False)
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"<[^>]+>", " ", page) + "\n" + extra


def leaks(text: str, results, k: int = K, markup: str = "") -> list[str]:
    """The numbers derived from suppressed cells that `text` (what a reader sees) contains; `markup`:
    the raw HTML, scanned for counts in table cells."""
    return found_in(text, *derived(results, k), markup=markup)


def found_in(
    text: str, decimals: set[str], counts: set[int], markup: str = "", count_forms: tuple[str, ...] = ()
) -> list[str]:
    """The printed forms of `decimals` and `counts` that `text` contains (see leaks); `count_forms`:
    further forms of a count, with {s} for it as printed ('1,234')."""
    found = [d for d in sorted(decimals) if re.search(rf"(?<![\w.]){re.escape(d)}(?!\d)", text)]
    for n in sorted(counts):
        s = f"{n:,}"
        forms = [
            rf"(?<![\w.,]){re.escape(s)} (台|回|件|vehicles|events)",
            rf"[（(]{re.escape(s)}[）)]",
            rf"(?<![\d,]){re.escape(s)} / ",
            rf" / {re.escape(s)}(?![\d,])",
            rf"\"count\": ?{n}\b",
            *(f.replace("{s}", re.escape(s)) for f in count_forms),
        ]
        found += [f"count {s}: {f}" for f in forms if re.search(f, text)]
        found += [
            f"count {s} in a cell"
            for f in (rf"<td>{re.escape(s)}</td>", rf"<b>{re.escape(s)}</b>")
            if markup and re.search(f, markup)
        ]
    return found


# --- fixtures ---------------------------------------------------------------------------------


def below_results(tmp_path):
    """Every cell under the threshold: 6 vehicles per road and period, 2 on the treated street."""
    stats = make_map_stats()
    stats["n_vehicles"] = stats["road_id"].map({"r1": 2, "r2": 6, "r3": 6}).astype(int)
    stats["n_points"] = [13, 11, 41, 43, 17, 19]
    stats["n_passages"] = [5, 4, 23, 22, 9, 8]
    comparisons = comparisons_from(stats)
    braking = pd.DataFrame(
        [("before", "r1", 4, 5, 800.0, 2), ("after", "r2", 3, 22, 1000 * 3 / 22, 3)],
        columns=["period", "road_id", "n_events", "n_passages", "events_per_1000_passages", "n_vehicles"],
    )
    hotspots = pd.DataFrame(
        [("after", 139.6301, 35.5331, 4, 3)], columns=["period", "lon", "lat", "n_events", "n_vehicles"]
    )
    cut = pd.DataFrame(
        [("before", 13, 7, 7 / 13, 6, 5), ("after", 12, 1, 1 / 12, 6, 1)],
        columns=["period", "n_trips", "n_cut_through", "share_cut_through", "n_vehicles", "n_vehicles_cut_through"],
    )
    streets = pd.DataFrame(
        [("after", "r1", 11, 1, 1, 1 / 11), ("after", "r2", 9, 3, 2, 3 / 9)],
        columns=["period", "road_id", "n_trips", "n_cut_through", "n_vehicles_cut_through", "share_cut_through"],
    )
    return make_map_results(
        tmp_path,
        stats=stats,
        comparisons=comparisons,
        braking=braking,
        hotspots=hotspots,
        cut_through=cut,
        cut_through_streets=streets,
    )


@pytest.fixture(params=["partial", "below"])
def case(request, tmp_path):
    results = make_map_results(tmp_path) if request.param == "partial" else below_results(tmp_path)
    # monitoring months: two of them (and, in `below`, the after level itself) under the threshold
    # (the headline indicator, which the trend charts; figures — the DiD rows' too — chosen not to coincide
    # with published ones)
    results.monthly = make_monthly(
        results.comparisons,
        shifts=(-1.4, -5.47, -2.44, 3.77),
        vehicles=[100, 6, 100, 7],
        indicators=("p85",),
        did_offset=-0.41,
        did_half_width=0.6,
    )
    # through traffic by gates: a suppressed class and gate pair (in `below`, every cell)
    district = make_map_district(tmp_path)
    results.gates = make_gates(district)
    if request.param == "below":
        for key in ("summary", "od"):
            results.gates[key]["n_vehicles"] = results.gates[key]["n_vehicles"].clip(upper=6)
    decimals, counts = derived(results)
    assert decimals and counts  # the fixture does hold suppressed cells
    return request.param, district, results


def _without_assets(page: str) -> str:
    """The page minus inlined libraries and assets (Leaflet's and map.js's own numbers)."""
    for part in (
        *(embed.vendored_text(url) for url in embed.VENDORED),
        embed.asset("map.js"),
        embed.asset("map.css"),
        embed.asset("report.css"),
        embed.asset("frame.js"),
        embed.asset("screening.js"),
        embed.asset("screening.css"),
    ):
        page = page.replace(part, "")
    return page


# --- one test per output ---------------------------------------------------------------------


def test_map_shows_nothing_from_too_few_vehicles(case, tmp_path):
    name, district, results = case
    page = render_district_map(district, results, tmp_path / "map.html").read_text(encoding="utf-8")
    assert leaks(shown_text(page), results, markup=_without_assets(page)) == []
    if name == "below":
        roads = [f["properties"] for f in map_features(page) if "road_id" in (f.get("properties") or {})]
        assert roads and all(p["kind"] != "value" and "value" not in p for p in roads)
        assert '"braking":null' in page and '"cut_through":null' in page  # no overlay to switch on
        assert 'data-verdict="suppressed"' in page


def test_map_layers_show_nothing_from_too_few_vehicles(case):
    name, district, results = case
    pub = public_results(results)
    hidden = derived(results)  # what leaks(…, results) looks for, computed once for every tooltip
    for ind in ("passage_share", "share", "p85", "mean"):
        for fc in road_layers(pub, ind).values():
            for f in fc["features"]:
                p = f["properties"]
                if p["road_id"] == "r3" or name == "below":
                    assert p["kind"] != "value" and "value" not in p
                assert found_in(p["tip"]["ja"] + p["tip"]["en"], *hidden) == []
    braking = braking_layer(pub)
    cut = cut_through_layer(pub)
    if name == "below":
        assert braking is None and cut is None
    else:
        assert [f["properties"]["count"] for f in braking["features"]] == [30]
        assert sorted(round(f["properties"]["share"], 2) for f in cut["features"]) == [0.12, 0.35]


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_report_shows_nothing_from_too_few_vehicles(case, tmp_path, lang):
    name, district, results = case
    page = render_report(district, results, tmp_path / "report.html", lang=lang).read_text(encoding="utf-8")
    assert leaks(shown_text(page), results, markup=_without_assets(page)) == []
    assert 'class="chart trend"' in page and page.count('class="m-treated"') == 2  # the two public months only
    assert (
        '<h2 id="gates">' in page and "<table" in page[page.index('<h2 id="gates">') :]
    )  # the gate tables are scanned
    if name == "below":
        answer = page[page.index('id="answer"') : page.index("</section>")]
        assert "<svg" not in answer  # no bar, and no empty axes
        dist = page[page.index("<h2>", page.index("</section>")) :]
        assert 'aria-label="' not in dist.split("</h2>", 3)[2]  # no histogram or cumulative curve
        assert ("差の差 " not in page) if lang == "ja" else ("difference in differences −" not in page)
        assert ("データ不足" if lang == "ja" else "too few") in page


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_sheet_shows_nothing_from_too_few_vehicles(case, tmp_path, lang):
    name, district, results = case
    sheet = render_district_sheet(district, results, tmp_path / "sheet.pdf", lang=lang, png=False)
    assert leaks("\n".join(sheet.texts), results) == []
    assert any("月ごとの推移" in t or "month by month" in t for t in sheet.texts)  # the trend is drawn


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet"])
def test_export_shows_nothing_from_too_few_vehicles(case, tmp_path, suffix):
    name, district, results = case
    stats = results.road_stats.assign(
        period_start=lambda d: d["period"].map({"before": BEFORE.start, "after": AFTER.start}),
        period_end=lambda d: d["period"].map({"before": BEFORE.end, "after": AFTER.end}),
    )
    out = export_figures(results.roads, stats, tmp_path / f"roads{suffix}")
    frames = (
        [gpd.read_parquet(out.path)] if suffix == ".parquet" else [gpd.read_file(out.path, layer=l) for l in out.layers]
    )
    sparse = set(stats.loc[stats["n_vehicles"] < K, "road_id"])
    for df in frames:
        assert leaks(df.drop(columns="geometry").to_csv(), results) == []
        if "period" in df.columns:  # road_periods: one row per road and period
            rows = df[df["road_id"].isin(sparse)]
            assert (rows["public"] == "suppressed").all() and rows[["n_vehicles", "mean_kmh"]].isna().all().all()
        else:
            rows = df[df["road_id"].isin(sparse)]
            assert (rows["before_public"] == "suppressed").all()
            figures = [
                c
                for c in df.columns
                if c.startswith(("before_", "after_", "change_")) and not c.endswith(("_public", "_start", "_end"))
            ]
            assert rows[figures].isna().all().all()


# --- end to end: a warehouse with 2 treated and 6 comparison vehicles per period ---------------


@pytest.fixture(scope="module")
def small_warehouse(tmp_path_factory):
    """Stored results of a delivery with 2 vehicles on R1 (treated) and 6 on A1 (comparison) per period:
    trips crossing the district (cut-through) that brake hard on R1 (inferred braking)."""
    from analysis.comparison import compare
    from analysis.figures import analyze
    from etl.ingest import ingest_paths

    root = tmp_path_factory.mktemp("small")
    import json

    w, e = offset(-200, 0), offset(200, 0)
    wn, en = offset(-200, 100), offset(200, 100)
    (root / "roads.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"road_id": "R1", "name": "生活道路", "highway": "residential"},
                        "geometry": {"type": "LineString", "coordinates": [list(w), list(e)]},
                    },
                    {
                        "type": "Feature",
                        "properties": {"road_id": "A1", "name": "幹線", "highway": "secondary", "maxspeed": "50"},
                        "geometry": {"type": "LineString", "coordinates": [list(wn), list(en)]},
                    },
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    area = root / "area.geojson"
    corners = [offset(-300, -60), offset(300, -60), offset(300, 160), offset(-300, 160)]
    area.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {"type": "Polygon", "coordinates": [[*map(list, corners), list(corners[0])]]},
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    rng = np.random.default_rng(3)
    for day, slow in (("20170905", 0), ("20171110", 9)):
        lines = []
        for v in range(8):  # vehicles 0-1 on R1 (y = 0), 2-7 on A1 (y = 100)
            north = 0 if v < 2 else 100
            for trip in range(4):
                # times a car could keep (every point pair under the section speed's 180 km/h), the hard
                # braking into x = -10 m within 3 s (0.32 g)
                xs, speeds = (-450, -150, -10, 150, 450), (41 - slow, 47 - slow, 13, 37 - slow, 43 - slow)
                for x, sp, sec in zip(xs, speeds, (0, 9, 12, 18, 27), strict=True):
                    lon, lat = offset(x, north + rng.normal(0, 2))
                    t = f"{day}{8 + trip:02d}{v:02d}{sec:02d}"
                    lines.append(style12_row(f"{610000 + v:012d}", t, lon, lat, sp + v % 3, trip_no=trip + 1))
        write_zip(root / "d" / f"OUT1-2_533925_{day}.zip", lines)
    ingest_paths([root / "d"], root / "wh")
    net = network(root / "roads.geojson", treated=("R1",), comparison=("A1",))
    periods = {"before": BEFORE, "after": AFTER}
    analyze(root / "wh", net, periods)
    from geo.network import load_area

    compare(root / "wh", net, periods, area=load_area(area), resamples=50)
    district = make_test_district(root / "roads.geojson", treated=("R1",), comparison=("A1",), area_path=area)
    return root, district


@pytest.mark.slow
def test_every_published_file_of_a_small_warehouse_shows_nothing_from_too_few_vehicles(small_warehouse, tmp_path):
    from analysis.results import load_district_results
    from maps.publish import publish_district

    root, district = small_warehouse
    results = load_district_results(root / "wh", district)  # the engineers' figures, unsuppressed
    rs = results.road_stats.set_index(["road_id", "period"])
    assert rs.loc[("R1", "before"), "n_vehicles"] == 2 and rs.loc[("A1", "after"), "n_vehicles"] == 6
    assert (
        not results.comparisons["mean"].set_index("unit")[["change", "ci_low"]].isna().any().any()
    )  # DiD of 2 vehicles
    assert len(results.distributions) and results.braking["n_events"].sum() > 0
    assert results.cut_through["n_cut_through"].sum() > 0 and len(results.cut_through_streets)
    from analysis.screening import screen_district

    scr = screen_district(root / "wh", district, min_vehicles=1, resamples=20)  # R1 of 2 vehicles a candidate, stored
    assert list(scr.table["road_id"]) == ["R1"] and scr.table["n_vehicles"].tolist() == [2]
    paths = publish_district(root / "wh", district, tmp_path / "out")
    screening = Path(paths["screening"]).read_text(encoding="utf-8")
    assert "公表できる候補はありません。" in screening and '"candidates":[]' in screening
    assert leaks(shown_text(screening), results, markup=_without_assets(screening)) == []
    for key in ("map", "report", "report_en"):
        page = Path(paths[key]).read_text(encoding="utf-8")
        assert leaks(shown_text(page), results, markup=_without_assets(page)) == [], key
    sheet_pub = render_district_sheet(district, results, tmp_path / "s.pdf", png=False)
    assert leaks("\n".join(sheet_pub.texts), results) == []
    for layer in ("roads", "road_periods"):
        df = gpd.read_file(paths["export"], layer=layer)
        assert leaks(df.drop(columns="geometry").to_csv(), results) == [], layer
        figures = [
            c
            for c in df.columns
            if c.endswith(("_kmh", "_limit", "_10", "n_vehicles", "n_points", "n_passages")) and c != "limit_kmh"
        ]
        assert df[figures].isna().all().all(), layer
    report = Path(paths["report"]).read_text(encoding="utf-8")
    assert "差の差 " not in report and "<polyline" not in report  # no DiD sentence, no cumulative curve


# --- the screening map: a stored screening with a candidate, braking and cut-through under the threshold ---

# The screening map's own forms of a count: cut-through trips of trips, passages a day.
SCREENING_COUNT_FORMS = (
    r"(?<![\d,]){s} トリップ中",
    r"トリップ中 {s}(?![\d,])",
    r"(?<![\d,]){s} of [\d,]+ trips",
    r"of {s} trips",
    r"(?<![\d,]){s} 通過/日",
    r"(?<![\d,]){s} passages a day",
)
SCREENING_SHARES = (
    "share_at_or_over_limit",
    "share_ci_low",
    "share_ci_high",
    "share_at_or_over_limit_plus_10",
    "share_plus_10_ci_low",
    "share_plus_10_ci_high",
)
SCREENING_SPEEDS = ("p85_kmh", "p85_ci_low", "p85_ci_high")


def _printed(r, shares=(), decimals=(), counts=()) -> tuple[set[str], set[int]]:
    """The figures of row `r` as the map would print them: shares in percent and other decimals with
    one decimal, counts as whole numbers."""
    dec = {f"{abs(float(r[c])) * 100:.1f}" for c in shares if not pd.isna(r[c])}
    dec |= {f"{abs(float(r[c])):.1f}" for c in decimals if not pd.isna(r[c])}
    return dec, {int(round(float(r[c]))) for c in counts if not pd.isna(r[c])}


@pytest.fixture(scope="module")
def screening(tmp_path_factory):
    """The stored screening of tests/screening_data.py (R1 … R4, 60 vehicles each), edited as a run
    screened with --min-vehicles 5 would store it: R1 from 7 vehicles (figures chosen to be told
    apart), R2's 13 braking events from 3 vehicles, R3's 7 cut-through trips from 4 vehicles."""
    from screening_data import stored_screening

    from analysis.results import load_screening

    st = stored_screening(tmp_path_factory.mktemp("suppression_screening"))
    run, rows = load_screening(st["wh"], "t", area="outline")
    rows = rows.set_index("road_id")
    rows.loc[
        "R1", ["n_vehicles", "n_passages", "passages_per_day", "n_trips", "n_cut_through", "n_cut_through_vehicles"]
    ] = [7, 8, 4, 8, 5, 5]
    rows.loc["R1", list(SCREENING_SHARES) + list(SCREENING_SPEEDS) + ["cut_through_share"]] = [
        0.4123,
        0.3011,
        0.5233,
        0.1357,
        0.0911,
        0.1789,
        38.46,
        37.12,
        41.93,
        0.625,
    ]
    rows.loc["R2", ["n_braking_events", "n_braking_vehicles", "braking_per_1000_passages"]] = [13, 3, 1000 * 13 / 60]
    rows.loc["R3", ["n_cut_through", "n_cut_through_vehicles", "cut_through_share"]] = [7, 4, 7 / 60]
    return st, run, rows.reset_index()


def test_screening_map_shows_nothing_from_too_few_vehicles(screening, tmp_path):
    from maps.screening_map import render_screening_map

    st, run, rows = screening
    page = render_screening_map(run, rows, tmp_path / "screening.html", district=st["district"]).read_text(
        encoding="utf-8"
    )
    by = rows.set_index("road_id")
    hidden_dec, hidden_cnt = _printed(
        by.loc["R1"],
        SCREENING_SHARES + ("cut_through_share",),
        SCREENING_SPEEDS + ("braking_per_1000_passages",),
        ("n_vehicles", "n_passages", "passages_per_day", "n_trips", "n_cut_through"),
    )
    for rid, dec, cnt in (
        ("R2", ("braking_per_1000_passages",), ("n_braking_events",)),
        ("R3", (), ("n_cut_through",)),
    ):
        d, c = _printed(by.loc[rid], ("cut_through_share",) if rid == "R3" else (), dec, cnt)
        hidden_dec, hidden_cnt = hidden_dec | d, hidden_cnt | c
    for _, r in by.iterrows():  # scores and points are relative to every candidate: all withheld
        hidden_dec |= _printed(r, decimals=[c for c in r.index if c.startswith(("score", "points_"))])[0]
    # What public cells print (the same number from a public cell tells nothing).
    public_dec, public_cnt = {"0.0"}, {K}
    for rid in ("R2", "R3", "R4"):
        r = by.loc[rid]
        d, c = _printed(
            r,
            SCREENING_SHARES + (("cut_through_share",) if rid != "R3" else ()),
            SCREENING_SPEEDS + (("braking_per_1000_passages",) if rid != "R2" else ()),
            ("n_vehicles", "n_passages", "passages_per_day", "n_trips")
            + (("n_cut_through",) if rid != "R3" else ())
            + (("n_braking_events",) if rid != "R2" else ()),
        )
        public_dec, public_cnt = public_dec | d, public_cnt | c
    decimals, counts = hidden_dec - public_dec, hidden_cnt - public_cnt
    assert {"41.2", "38.5", "216.7", "11.7", f"{by.loc['R2', 'score']:.1f}"} <= decimals and {7, 8, 4, 5, 13} <= counts
    assert (
        found_in(shown_text(page), decimals, counts, markup=_without_assets(page), count_forms=SCREENING_COUNT_FORMS)
        == []
    )
    assert "道路R1" not in page and "[R1]" not in page and "道路R2" in page and "スコアは非公表" in page
