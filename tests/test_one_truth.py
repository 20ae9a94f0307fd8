"""One truth: `analyze` and `compare` read the same matched points through the one reader and the one
filter, so they agree on every figure for every filter combination, including a period without a
Japanese public holiday (where a holiday lookup that finds none must not drop every weekday point)."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pytest

from analysis.comparison import compare
from analysis.figures import analyze
from analysis.filters import PointFilter
from config.districts import Period
from conftest import network, offset, style12_row, write_zip
from etl.ingest import ingest_paths

# September 2017 holds 敬老の日 (Mon 18th) and 秋分の日 (Sat 23rd); 2017-11-06..11-17 holds no public holiday.
BEFORE = Period("before", dt.date(2017, 9, 11), dt.date(2017, 9, 24))
AFTER = Period("after", dt.date(2017, 11, 6), dt.date(2017, 11, 17))
FILTERS = [
    PointFilter(hours, days, vehicle, direction)
    for hours, days, vehicle, direction in itertools.product(
        [None, (7, 9)], ["all", "weekday", "holiday"], ["all", "large", "passenger"], ["all", "forward", "backward"]
    )
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, tiny_network_module):
    """Trips along R1 (both directions) and A1 on every day of both periods, at all hours, of several classes."""
    root = tmp_path_factory.mktemp("one_truth")
    rng = np.random.default_rng(3)
    lines = []
    for period, mean in ((BEFORE, 33), (AFTER, 26)):
        day = period.start
        while day <= period.end:
            for v in range(24):
                east = v % 2 == 0
                xs = (-150, -75, 0, 75, 150) if east else (150, 75, 0, -75, -150)
                north = 0.5 if v % 3 else 100.5  # a third of the trips on A1
                hour = 6 + v % 5  # 6:00-10:59
                speed = rng.normal(mean if north < 50 else 44, 5)
                for k, x in enumerate(xs):
                    lon, lat = offset(x, north)
                    lines.append(
                        style12_row(
                            f"{700000 + v + 100 * (day.day % 4):012d}",
                            f"{day:%Y%m%d}{hour:02d}{v:02d}{k * 9:02d}",
                            lon,
                            lat,
                            int(round(speed + rng.normal(0, 3))),
                            vehicle_type=(1, 2, 4)[(v // 2) % 3],
                            vehicle_use=(1, 2)[v % 2],
                        )
                    )
            day += dt.timedelta(days=1)
    write_zip(root / "d" / "points.zip", lines)
    ingest_paths([root / "d"], root / "wh")
    return root / "wh"


@pytest.fixture(scope="module")
def tiny_network_module(tmp_path_factory):
    import json

    w, e = offset(-200, 0), offset(200, 0)
    wn, en = offset(-200, 100), offset(200, 100)
    fc = {
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
    }
    path = tmp_path_factory.mktemp("net") / "tiny_roads.geojson"
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.slow  # 54 filter combinations × (analyze + compare)
def test_analyze_and_compare_agree_for_every_filter(warehouse, tiny_network_module):
    net = network(tiny_network_module, treated=("R1",), comparison=("A1",))
    periods = {"before": BEFORE, "after": AFTER}
    seen_weekday_after = False
    for flt in FILTERS:
        a = analyze(warehouse, net, periods, point_filter=flt, store=False)
        ev = compare(warehouse, net, periods, point_filter=flt, resamples=10, store=False)
        roads = a.road_stats.set_index(["road_id", "period"])
        groups = a.group_stats.set_index(["road_group", "period"])
        for indicator, column in (
            ("mean", "mean_kmh"),
            ("p85", "p85_kmh"),
            ("share", "share_at_or_over_limit"),
            ("passage_share", "passage_share_at_or_over_limit"),
            ("passage_p85", "passage_p85_kmh"),
        ):
            c = ev.comparisons[indicator].set_index("unit")
            n_col = "n_passages" if indicator.startswith("passage") else "n_points"
            for unit, stats, key in (
                ("R1", roads, "R1"),
                ("A1", roads, "A1"),
                ("treated", groups, "treated"),
                ("control", groups, "comparison"),
            ):
                for period in ("before", "after"):
                    row, cmp = stats.loc[(key, period)], c.loc[unit]
                    where = f"{flt.describe_ja()} {unit} {period} {indicator}"
                    assert cmp[f"n_{period}"] == row[n_col], where
                    assert cmp[f"n_vehicles_{period}"] == row["n_vehicles"], where
                    if row[n_col]:
                        assert cmp[period] == pytest.approx(row[column], rel=1e-12, abs=1e-12), where
                    else:
                        assert np.isnan(cmp[period]) and np.isnan(row[column]), where
        if flt.days == "weekday" and flt == PointFilter(days="weekday"):
            seen_weekday_after = roads.loc[("R1", "after"), "n_points"] > 0
    assert seen_weekday_after, "weekdays of a period without a public holiday must be found"


def test_the_filters_really_cut(warehouse, tiny_network_module):
    """The combinations above are not vacuous: each filter keeps a different, non-empty share of R1's points."""
    net = network(tiny_network_module, treated=("R1",), comparison=("A1",))
    n = {}
    for flt in (
        PointFilter(),
        PointFilter(days="weekday"),
        PointFilter(days="holiday"),
        PointFilter(hours=(7, 9)),
        PointFilter(vehicle="large"),
        PointFilter(direction="forward"),
        PointFilter(direction="backward"),
    ):
        s = analyze(warehouse, net, {"before": BEFORE, "after": AFTER}, point_filter=flt, store=False).road_stats
        n[flt.describe_ja()] = s.set_index(["road_id", "period"])["n_points"].to_dict()
    full = n[PointFilter().describe_ja()]
    for name, counts in n.items():
        assert counts[("R1", "before")] > 0, name
    assert n["平日・全車種"][("R1", "before")] + n["土休日・全車種"][("R1", "before")] == full[("R1", "before")]
    assert n["土休日・全車種"][("R1", "after")] > 0  # the weekends of the holiday-free period
    assert n["平日・全車種"][("R1", "after")] > 0
    fwd, bwd = n["全日・全車種・順方向"][("R1", "before")], n["全日・全車種・逆方向"][("R1", "before")]
    assert 0 < fwd < full[("R1", "before")] and 0 < bwd < full[("R1", "before")]
