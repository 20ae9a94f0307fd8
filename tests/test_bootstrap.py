"""Before/after statistics: exact replicate figures, effect recovery, interval coverage, DiD, flags,
the grouped-data percentile of recorded whole km/h and degenerate intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.bootstrap import GroupData, compare_periods, compare_periods_all, point_indicators, replicate_indicators
from conftest import grouped_percentile
from geo.aggregate import grouped_quantile, quantile_from_hist


def clustered_points(rng, *, n_vehicles=120, effect_treated=0.0, effect_control=0.0, base=32.0):
    """Vehicles with their own speed level (strong clustering), passing roads T and C before and after."""
    rows = []
    level = rng.normal(0, 4, n_vehicles)  # per-vehicle offset, km/h
    for period, et, ec in (("before", 0.0, 0.0), ("after", effect_treated, effect_control)):
        for v in range(n_vehicles):
            for unit, eff, b in (("T", et, base), ("C", ec, base - 3)):
                k = rng.integers(1, 6)  # passages of this vehicle in this period
                speeds = np.round(b + eff + level[v] + rng.normal(0, 3, k))
                rows.extend((unit, period, f"v{v}", s, 30.0) for s in speeds)
    return pd.DataFrame(rows, columns=["unit", "period", "vehicle", "speed_kmh", "limit_kmh"])


@settings(max_examples=60, deadline=None)
@given(
    speeds=st.lists(st.integers(0, 80), min_size=1, max_size=60),
    data=st.data(),
)
def test_replicate_equals_expanded_sample(speeds, data):
    """A replicate's figures equal the raw indicators of the sample it stands for (vehicles repeated)."""
    n = len(speeds)
    vehicles = np.array(data.draw(st.lists(st.integers(0, 7), min_size=n, max_size=n)))
    w = np.array(data.draw(st.lists(st.integers(0, 3), min_size=8, max_size=8)), dtype=float)
    speeds = np.array(speeds, dtype=float)
    g = GroupData(vehicles, speeds, np.full(n, 30.0))
    rep = replicate_indicators(g, w[None, :])
    expanded = np.concatenate([speeds[vehicles == v] for v in range(8) for _ in range(int(w[v]))] or [np.array([])])
    exp = point_indicators(expanded, 30.0)
    for k in ("mean", "p85", "share", "share_plus10"):
        if len(expanded) == 0:
            assert np.isnan(rep[k][0])
        else:
            assert rep[k][0] == pytest.approx(exp[k])


def test_injected_effect_recovered_inside_interval():
    rng = np.random.default_rng(42)
    pts = clustered_points(rng, effect_treated=-7.0)
    out = compare_periods(pts, treated=["T"], control=["C"], indicator="mean", resamples=400, seed=1).set_index("unit")
    t = out.loc["treated"]
    assert t["ci_low"] <= -7.0 <= t["ci_high"]
    assert t["ci_high"] < 0  # clearly a decrease
    assert t["change"] == pytest.approx(t["after"] - t["before"])
    c = out.loc["control"]
    assert c["ci_low"] <= 0.0 <= c["ci_high"]


def test_no_effect_interval_covers_zero_in_most_replications():
    covered = 0
    for seed in range(50):
        rng = np.random.default_rng(1000 + seed)
        pts = clustered_points(rng, n_vehicles=60)
        out = compare_periods(pts, treated=["T"], control=["C"], indicator="mean", resamples=200, seed=seed)
        t = out.set_index("unit").loc["treated"]
        covered += t["ci_low"] <= 0.0 <= t["ci_high"]
    assert covered >= 45  # at least 90 % of 50


def test_did_recovers_treated_only_effect_when_controls_change_too():
    rng = np.random.default_rng(7)
    # A city-wide drift of +2 km/h on every street; the treatment takes 7 km/h off the treated one.
    pts = clustered_points(rng, effect_treated=-7.0 + 2.0, effect_control=2.0)
    out = compare_periods(pts, treated=["T"], control=["C"], indicator="mean", resamples=400, seed=3).set_index("unit")
    did = out.loc["did"]
    assert did["ci_low"] <= -7.0 <= did["ci_high"]
    assert did["change"] == pytest.approx(out.loc["treated", "change"] - out.loc["control", "change"])
    # The naive before/after on the treated street alone is off by the drift.
    assert out.loc["treated", "change"] == pytest.approx(-5.0, abs=1.0)


@pytest.mark.parametrize("indicator", ["p85", "share", "share_plus10"])
def test_other_indicators(indicator):
    rng = np.random.default_rng(5)
    pts = clustered_points(rng, effect_treated=-8.0)
    out = compare_periods(pts, treated=["T"], control=["C"], indicator=indicator, resamples=200, seed=0).set_index(
        "unit"
    )
    t = out.loc["treated"]
    assert t["ci_high"] < 0
    if indicator == "share_plus10":  # nobody at limit + 10 after: a share of 0, its interval [0, 0], flagged
        assert t["after"] == 0 and t["after_ci_low"] == t["after_ci_high"] == 0 and t["degenerate"]
        assert t["ci_low"] < t["change"] < t["ci_high"]  # the change's own interval still brackets it
    else:  # the estimate strictly inside its interval (not part of the degenerate flag: a real check)
        assert not t["degenerate"]
        assert t["ci_low"] < t["change"] < t["ci_high"]
        assert t["before_ci_low"] < t["before"] < t["before_ci_high"]
        assert t["after_ci_low"] < t["after"] < t["after_ci_high"]
    speeds = pts.query("unit == 'T' and period == 'before'")["speed_kmh"].to_numpy()
    exp_before = grouped_percentile(speeds) if indicator == "p85" else point_indicators(speeds, 30.0)[indicator]
    assert t["before"] == pytest.approx(exp_before)


def test_rows_and_flags():
    rng = np.random.default_rng(9)
    pts = clustered_points(rng, n_vehicles=30)
    pts2 = pts.assign(unit=pts["unit"].replace({"C": "C1"}))
    pts2 = pd.concat([pts2, pts[pts["unit"] == "C"].assign(unit="C2")])
    out = compare_periods(pts2, treated=["T"], control=["C1", "C2"], resamples=50, seed=0, min_vehicles=50)
    assert out["unit"].tolist() == ["T", "C1", "C2", "treated", "control", "did"]
    assert (out["flag"] == "low_sample").all()  # 30 vehicles < 50
    assert out.loc[out["unit"] == "T", "n_vehicles_before"].item() == 30
    with pytest.raises(ValueError, match="unknown indicator"):
        compare_periods(pts, treated=["T"], control=["C"], indicator="median")


def test_reproducible_with_seed():
    rng = np.random.default_rng(2)
    pts = clustered_points(rng, n_vehicles=40)
    a = compare_periods(pts, treated=["T"], control=["C"], resamples=100, seed=5)
    b = compare_periods(pts, treated=["T"], control=["C"], resamples=100, seed=5)
    pd.testing.assert_frame_equal(a, b)


def test_intervals_do_not_depend_on_the_pseudonymisation_key():
    """The same delivery pseudonymised under another key (other vehicle ids, other sort order) gives the
    same intervals: vehicles enter the resampling in the order of their first point, not of their ids."""
    rng = np.random.default_rng(4)
    pts = clustered_points(rng, n_vehicles=50, effect_treated=-4.0)
    # A first point per row: time and position unrelated to the vehicle's name.
    pts["gps_us"] = rng.permutation(len(pts)) * 1_000_000
    pts["x_m"], pts["y_m"] = rng.normal(0, 100, len(pts)), rng.normal(0, 100, len(pts))
    other_key = {v: f"{h:016x}" for v, h in zip(pts["vehicle"].unique(), rng.permutation(10**6)[:50], strict=True)}
    a = compare_periods_all(pts, treated=["T"], control=["C"], resamples=100, seed=9)
    b = compare_periods_all(
        pts.assign(vehicle=pts["vehicle"].map(other_key)), treated=["T"], control=["C"], resamples=100, seed=9
    )
    for ind in a:
        pd.testing.assert_frame_equal(a[ind], b[ind])
    # Without the first-point columns the order falls back to the ids, and the intervals then differ.
    c = compare_periods_all(
        pts.drop(columns=["gps_us"]).assign(vehicle=pts["vehicle"].map(other_key)),
        treated=["T"],
        control=["C"],
        resamples=100,
        seed=9,
    )
    assert c["mean"]["ci_low"].tolist() != a["mean"]["ci_low"].tolist()


def test_passage_indicators_resample_vehicles():
    """Passage samples (one per traversal) are resampled with the same vehicles as the points."""
    rng = np.random.default_rng(6)
    pts = clustered_points(rng, n_vehicles=80, effect_treated=-6.0)
    passages = pts.groupby(["unit", "period", "vehicle"], as_index=False).agg(
        speed_kmh=("speed_kmh", "mean"), limit_kmh=("limit_kmh", "first")
    )
    out = compare_periods_all(
        pts,
        treated=["T"],
        control=["C"],
        indicators=("passage_share", "passage_mean", "mean", "passage_p85"),
        passages=passages,
        resamples=200,
        seed=1,
    )
    t = out["passage_mean"].set_index("unit").loc["treated"]
    exp = passages.query("unit == 'T' and period == 'before'")["speed_kmh"]
    assert t["before"] == pytest.approx(exp.mean()) and t["n_before"] == len(exp)
    assert t["ci_low"] <= -6.0 <= t["ci_high"]
    s = out["passage_share"].set_index("unit").loc["treated"]
    assert s["before"] == pytest.approx((exp >= 30).mean())
    # passage speeds are continuous: their p85 is the plain sample quantile (numpy's linear), not grouped
    p = out["passage_p85"].set_index("unit").loc["treated"]
    assert p["before"] == pytest.approx(np.percentile(exp, 85))
    assert out["mean"].set_index("unit").loc["treated", "n_vehicles_before"] == t["n_vehicles_before"] == 80
    with pytest.raises(ValueError, match="need the passages"):
        compare_periods_all(pts, treated=["T"], control=["C"], indicators=("passage_share",))


# --- the grouped-data percentile of recorded whole km/h ----------------------------------------


@pytest.mark.parametrize("offset", [-0.5, 0.0])
def test_grouped_percentile_equals_the_jittered_expanded_sample(offset):
    """Independent check: spread each recorded v uniformly over its class [v + offset, v + offset + 1)
    and take np.percentile of that expanded sample; the grouped-data percentile of the counts is the
    same within 0.01 km/h (rounded recording: offset -0.5; truncated: 0)."""
    recording = "rounded" if offset == -0.5 else "truncated"
    rng = np.random.default_rng(3)
    for _ in range(2):
        values = np.arange(8, 61, dtype=float)
        counts = rng.poisson(400_000 * np.exp(-(((values - rng.uniform(25, 40)) / rng.uniform(4, 9)) ** 2)))
        expanded = np.repeat(values, counts) + offset + rng.uniform(0.0, 1.0, counts.sum())
        # the same, jittered evenly (stratified): each class's f values at (i + 0.5) / f of its width
        even = np.repeat(values + offset, counts) + np.concatenate([(np.arange(c) + 0.5) / c for c in counts])
        for q in (0.5, 0.85, 0.95):
            for ref in (np.percentile(expanded, 100 * q), np.percentile(np.sort(even), 100 * q)):
                assert grouped_quantile(values, counts, q, recording) == pytest.approx(ref, abs=0.01)
            # the sparse (per-group) form and the class-by-class loop give the same number
            sparse = quantile_from_hist(np.zeros(len(values), np.int64), values, counts, 1, q, recording)[0]
            assert sparse == pytest.approx(grouped_quantile(values, counts, q, recording), abs=1e-9)
            assert sparse == pytest.approx(grouped_percentile(np.repeat(values, counts), q, offset), abs=1e-9)


def test_grouped_percentile_is_not_the_bin_value():
    """With thousands of tied whole-km/h speeds the plain quantile is a recorded value; the grouped one
    moves with the counts inside the class (okurayama's example: 32 km/h vs 32.34)."""
    values = np.array([30.0, 31.0, 32.0, 33.0])
    a = grouped_quantile(values, np.array([500, 1500, 3500, 500]))
    b = grouped_quantile(values, np.array([500, 1500, 3600, 400]))
    assert a == pytest.approx(31.5 + (0.85 * 6000 - 2000) / 3500) and b == pytest.approx(31.5 + 3100 / 3600)
    assert np.percentile(np.repeat(values, [500, 1500, 3500, 500]), 85) == 32.0
    assert np.percentile(np.repeat(values, [500, 1500, 3600, 400]), 85) == 32.0


@settings(max_examples=60, deadline=None)
@given(speeds=st.lists(st.integers(0, 80), min_size=1, max_size=60), data=st.data())
def test_grouped_replicate_equals_expanded_sample(speeds, data):
    """A replicate's grouped p85 (points: recorded whole km/h given as p85_kmh) equals the grouped-data
    percentile of the sample it stands for, computed class by class."""
    n = len(speeds)
    vehicles = np.array(data.draw(st.lists(st.integers(0, 7), min_size=n, max_size=n)))
    w = np.array(data.draw(st.lists(st.integers(0, 3), min_size=8, max_size=8)), dtype=float)
    speeds = np.array(speeds, dtype=float)
    g = GroupData(vehicles, speeds, np.full(n, 30.0), speeds)
    rep = replicate_indicators(g, w[None, :])
    expanded = np.concatenate([speeds[vehicles == v] for v in range(8) for _ in range(int(w[v]))] or [np.array([])])
    if len(expanded) == 0:
        assert np.isnan(rep["p85"][0])
    else:
        assert rep["p85"][0] == pytest.approx(grouped_percentile(expanded))
        assert point_indicators(expanded, 30.0, expanded)["p85"] == pytest.approx(grouped_percentile(expanded))


def rounded_clustered_points(rng, *, n_vehicles, base, effect=0.0):
    """Vehicles with their own persistent level; true speeds continuous, recorded rounded to whole km/h;
    a treated road T (shifted by `effect`, a whole number: rounding keeps the shift) and a control C."""
    rows = []
    level = rng.normal(0, 4, n_vehicles)
    for period, eff in (("before", 0.0), ("after", effect)):
        for v in range(n_vehicles):
            for unit, e in (("T", eff), ("C", 0.0)):
                k = rng.integers(1, 6)
                speeds = np.round(base + e + level[v] + rng.normal(0, 3, k))
                rows.extend((unit, period, f"v{v}", s, 30.0) for s in speeds)
    return pd.DataFrame(rows, columns=["unit", "period", "vehicle", "speed_kmh", "limit_kmh"])


@pytest.mark.slow
def test_p85_intervals_of_rounded_clustered_speeds_cover_and_hold_their_estimate():
    """Simulation: rounded speeds of clustered vehicles (the demo's situation). The 95 % interval of the
    treated p85 change covers the true change (-7 km/h: the population shifted by a whole 7 km/h) in at
    least 93 % of runs, and the estimates (change, before and after levels) lie strictly inside their
    intervals in at least 99 % of runs (the old bin-value percentile sat on its interval's end)."""
    runs, covered, inside = 300, 0, 0
    for i in range(runs):
        rng = np.random.default_rng(20_000 + i)
        pts = rounded_clustered_points(rng, n_vehicles=150, base=32.0, effect=-7.0)
        t = compare_periods(pts, treated=["T"], control=["C"], indicator="p85", resamples=300, seed=i)
        t = t.set_index("unit").loc["treated"]
        covered += t["ci_low"] <= -7.0 <= t["ci_high"]
        inside += bool(
            t["ci_low"] < t["change"] < t["ci_high"]
            and t["before_ci_low"] < t["before"] < t["before_ci_high"]
            and t["after_ci_low"] < t["after"] < t["after_ci_high"]
        )
    assert covered / runs >= 0.93, covered
    assert inside / runs >= 0.99, inside


def test_degenerate_intervals_are_flagged_never_widened():
    """A share of 0 (no one at or over limit + 10) and a level sitting on one recorded value carry the
    degenerate flag; their intervals are as the resamples give them (not widened), and every
    interval without the flag holds its estimate strictly inside."""
    rng = np.random.default_rng(11)
    pts = clustered_points(rng, n_vehicles=80, effect_treated=-6.0)
    pts.loc[pts["unit"] == "C", "speed_kmh"] = 20.0  # the control road: every record 20 km/h
    out = compare_periods_all(
        pts, treated=["T"], control=["C"], indicators=("p85", "share_plus10", "mean"), resamples=200, seed=2
    )
    c = out["share_plus10"].set_index("unit").loc["control"]
    assert c["before"] == 0 and c["degenerate"] and c["ci_low"] == c["ci_high"] == 0.0
    cp = out["mean"].set_index("unit").loc["control"]
    assert cp["degenerate"] and cp["before_ci_low"] == cp["before_ci_high"] == 20.0
    for table in out.values():
        for r in table[~table["degenerate"]].itertuples():
            assert r.ci_low < r.change < r.ci_high, r
            if r.unit != "did":
                assert r.before_ci_low < r.before < r.before_ci_high and r.after_ci_low < r.after < r.after_ci_high


def test_degenerate_means_fewer_than_three_distinct_resampled_values_only():
    """The flag is the resamples' number of distinct values, nothing else: values
    that differ only by floating-point summation order are one value; an estimate at an end of an
    interval with many distinct values is not flagged (that is checked on the stored results)."""
    from analysis.bootstrap import degenerate_interval

    assert degenerate_interval(np.array([70.0, 70.0 + 1e-13, 70.0 - 1e-13, 70.0]))
    assert degenerate_interval(np.array([0.0, 0.0, 1.0, np.nan]))
    assert not degenerate_interval(np.array([70.0, 70.0, 70.0, 71.5, 72.0]))


@pytest.mark.parametrize(("n", "resamples", "chunk"), [(1, 10, 3), (7, 50, 7), (500, 999, 64), (3000, 130, 64)])
def test_weights_drawn_by_blocks_are_the_draws_of_one_call(n, resamples, chunk):
    from analysis.bootstrap import bootstrap_weights_t

    one_call = np.random.default_rng(9).multinomial(n, np.full(n, 1.0 / n), size=resamples)
    got = bootstrap_weights_t(n, resamples, 9, chunk=chunk)
    assert got.shape == (n, resamples) and got.flags.c_contiguous
    np.testing.assert_array_equal(got, one_call.T.astype(float))
    assert (got.sum(axis=0) == n).all()


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_indicators_of_counted_rows_are_those_of_the_expanded_points(data):
    """Rows standing for n identical points (the month-by-month reduction) give the figures of the
    points written out one by one, the grouped p85 included; the replicates too."""
    k = data.draw(st.integers(1, 12))
    speeds = np.array(data.draw(st.lists(st.integers(0, 90), min_size=k, max_size=k)), dtype=float)
    n = np.array(data.draw(st.lists(st.integers(1, 9), min_size=k, max_size=k)))
    vehicles = np.array(data.draw(st.lists(st.integers(0, 4), min_size=k, max_size=k)))
    limit = 30.0
    want = point_indicators(np.repeat(speeds, n), limit, np.repeat(speeds, n))
    got = point_indicators(speeds, limit, speeds, n)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-12, nan_ok=True), key
    weights = np.random.default_rng(1).multinomial(5, np.full(5, 0.2), size=20).astype(float)
    expanded = GroupData(
        np.repeat(vehicles, n), np.repeat(speeds, n), np.full(int(n.sum()), limit), np.repeat(speeds, n)
    )
    counted = GroupData(vehicles, speeds, np.full(k, limit), speeds, n)
    a, b = replicate_indicators(expanded, weights), replicate_indicators(counted, weights)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-12, err_msg=key)
