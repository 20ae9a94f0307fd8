"""The synthetic generator lands on the published figures, measured through the pipeline.

The delivery is generated, ingested and matched by the product's own code; the figures are those of
the treated street T1 (every point the pipeline matches to it, pooled over the period):

- 大倉山三丁目: 85th percentile of point speeds 32.6 ± 1 km/h in September 2017, within 23.8-25.6 km/h
  after the permanent installation (March 2019); share of passages at >= 30 km/h 19 ± 3 % before,
  within 3.9-6.5 % after; during the trial roughly 10 km/h lower and half the share (published:
  "speed down about 10 km/h, vehicles at 30 km/h or more halved").
- 中山町: mean point speed -7 ± 1 km/h from before to after.

Scales: the after share's band (3.9-6.5 %) is ±1.3 points wide; its sampling error (vehicles
clustered) is ~0.4 points at 大倉山's full demo volume (~3,600 passages with a section travel speed
in March 2019), so 大倉山 runs at scale 1.0 (named periods only, ~270,000 rows). 中山町's mean change has an
error of ~0.2 km/h at scale 0.5 against a ±1 km/h band. Checked with seeds 20171005 and 1-5
(bench/calibrate.py --seed S); the test uses the demo's seed.
"""

from __future__ import annotations

import pytest

from analysis.figures import analyze_district
from config.districts import load_district
from etl.ingest import ingest_paths
from etl.synthetic import generate_delivery

pytestmark = pytest.mark.slow

SEED = 20171005  # the demo's
SCALES = {"okurayama": 1.0, "nakayama": 0.5}


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """{district: {period: {p85, mean, passage_share, n_passages}}} of the treated street, as the product
    stores it (group_period_stats of `analyze`: the figures `compare` and the publications show)."""
    root = tmp_path_factory.mktemp("calibration")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ETC2CALM_ID_KEY", "test-key-not-secret")
        for key, scale in SCALES.items():
            generate_delivery(
                root / "delivery" / key, districts=[load_district(key)], seed=SEED, scale=scale, monitoring=False
            )
        report = ingest_paths([root / "delivery"], root / "wh", progress=False)
        assert not report.failed
        out = {}
        for key in SCALES:
            g = analyze_district(root / "wh", load_district(key)).group_stats
            t = g[g["road_group"] == "treated"].set_index("period")
            out[key] = {
                name: {
                    "p85": r["p85_kmh"],
                    "mean": r["mean_kmh"],
                    "passage_share": r["passage_share_at_or_over_limit"],
                    "n_passages": r["n_passages"],
                }
                for name, r in t.iterrows()
            }
    return out


def test_okurayama_85th_percentile_as_published(measured):
    m = measured["okurayama"]
    assert 31.6 <= m["before"]["p85"] <= 33.6, m["before"]
    assert 23.8 <= m["after"]["p85"] <= 25.6, m["after"]


def test_okurayama_share_of_passages_at_30_as_published(measured):
    m = measured["okurayama"]
    # resolves the ±1.3-point band: ~3,600 passages with a travel speed in March 2019 (a passage
    # of one point near a junction has none), sampling error ~0.4 points clustered by vehicle
    assert m["before"]["n_passages"] >= 3000 and m["after"]["n_passages"] >= 3000
    assert 0.16 <= m["before"]["passage_share"] <= 0.22, m["before"]
    assert 0.039 <= m["after"]["passage_share"] <= 0.065, m["after"]


def test_okurayama_trial_about_10_kmh_slower_and_half_the_share(measured):
    m = measured["okurayama"]
    assert -12.0 <= m["trial"]["p85"] - m["before"]["p85"] <= -8.0, m
    assert 0.4 <= m["trial"]["passage_share"] / m["before"]["passage_share"] <= 0.6, m


def test_nakayama_mean_down_7_kmh(measured):
    m = measured["nakayama"]
    assert -8.0 <= m["after"]["mean"] - m["before"]["mean"] <= -6.0, m
