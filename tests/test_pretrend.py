"""Regression to the mean and selection: screening selects on the months before the
before period when the warehouse holds them (else on the before period, saying so), and the months
before the before period show treated and comparison streets' trend against the before level."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from analysis.bootstrap import point_indicators
from analysis.pretrend import pre_period_months, pre_period_series, screening_period
from analysis.results import load_screening
from analysis.screening import screen_district
from conftest import make_test_district, network, offset, q, style12_row, write_zip
from etl.ingest import ingest_paths


def deliver(root, days: dict[str, tuple[float, float]], seed=3):
    """One ZIP per day: 120 points of 40 vehicles, half on R1 around the first speed, half on A1
    around the second (whole km/h). Returns {day: (R1 speeds, A1 speeds)}."""
    rng = np.random.default_rng(seed)
    truth = {}
    for day, (r1, a1) in days.items():
        lines, speeds = [], {0: [], 1: []}
        for i in range(120):
            on_a1 = i % 2
            lon, lat = offset(rng.uniform(-150, 150), 100.5 if on_a1 else 0.5)
            v = int(round(rng.normal(a1 if on_a1 else r1, 3)))
            speeds[on_a1].append(v)
            lines.append(style12_row(f"{100 + i % 40:012d}", f"{day}08{i // 60:02d}{i % 60:02d}", lon, lat, v))
        write_zip(root / f"{day}.zip", lines)
        truth[day] = (np.array(speeds[0], float), np.array(speeds[1], float))
    return truth


def test_pre_period_months_are_the_contiguous_months_right_before(tmp_path, tiny_network):
    deliver(tmp_path / "d", {"20170610": (30, 45), "20170810": (31, 45), "20170905": (33, 45)})
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    district = make_test_district(tiny_network)  # before = September 2017
    # August is held; July is not, so June (before the gap) is not a pre-period month
    assert [(m.start, m.end) for m in pre_period_months(tmp_path / "wh", district)] == [
        (dt.date(2017, 8, 1), dt.date(2017, 8, 31))
    ]
    period, basis = screening_period(tmp_path / "wh", district)
    assert basis == "pre_period" and (period.start, period.end) == (dt.date(2017, 8, 1), dt.date(2017, 8, 31))
    assert pre_period_months(tmp_path / "wh", district, max_months=0) == []


def test_without_earlier_months_screening_uses_the_before_period_and_says_so(tmp_path, tiny_network):
    deliver(tmp_path / "d", {"20170905": (33, 45)})
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    district = make_test_district(tiny_network)
    period, basis = screening_period(tmp_path / "wh", district)
    assert basis == "before_period" and period == district.period("before")
    res = screen_district(tmp_path / "wh", district, min_vehicles=10, resamples=20)
    assert res.basis == "before_period" and any("screened on the before period itself" in n for n in res.notes)
    run, _ = load_screening(tmp_path / "wh", district.key)
    assert run["basis"] == "before_period"
    assert pre_period_series(tmp_path / "wh", district, network=network(tiny_network, treated=("R1",),
                                                                        comparison=("A1",))).empty  # fmt: skip


@pytest.mark.slow
def test_pre_period_series_against_the_before_period(tmp_path, tiny_network):
    """August against September: the treated street R1 was 2 km/h slower in August, the comparison A1 the
    same; levels, changes and the DiD equal an independent computation on the delivered speeds."""
    truth = deliver(tmp_path / "d", {"20170810": (31, 45), "20170905": (33, 45), "20171110": (26, 45)})
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    district = make_test_district(tiny_network)
    net = network(tiny_network, treated=("R1",), comparison=("A1",))
    s = pre_period_series(tmp_path / "wh", district, network=net, resamples=200)
    assert set(s["month"]) == {dt.date(2017, 8, 1)} and set(s["unit"]) == {"treated", "control", "did"}
    m = s[s["indicator"] == "mean"].set_index("unit")
    aug, sep = truth["20170810"], truth["20170905"]
    assert m.loc["treated", "value"] == pytest.approx(aug[0].mean())
    assert m.loc["treated", "before_level"] == pytest.approx(sep[0].mean())
    change_t, change_c = aug[0].mean() - sep[0].mean(), aug[1].mean() - sep[1].mean()
    assert m.loc["did", "change_vs_before"] == pytest.approx(change_t - change_c)
    assert m.loc["did", "change_ci_low"] < change_t - change_c < m.loc["did", "change_ci_high"]
    p = s[s["indicator"] == "p85"].set_index("unit")
    assert p.loc["treated", "value"] == pytest.approx(point_indicators(aug[0], 30.0, aug[0])["p85"])
    # stored, and the screening of the district selects on August
    assert q(tmp_path / "wh", "SELECT count(*) FROM pre_period_series WHERE district = 't'")[0][0] == len(s)
    res = screen_district(tmp_path / "wh", district, min_vehicles=10, resamples=20)
    assert res.basis == "pre_period" and res.period.start == dt.date(2017, 8, 1)
