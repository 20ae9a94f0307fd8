"""The flows run each stage once, skip known files, and end red when a delivered file failed."""

from __future__ import annotations

import os

import pytest

from conftest import make_delivery
from etl.ingest import ingest_paths


def test_new_files_are_recognised_by_resolved_path(tmp_path, monkeypatch):
    """A landing folder given as a relative path: known files are skipped (not hashed again)."""
    # Imported here, as in the other tests: flows.pipeline brings Prefect and Dask (~4 s of CPU), which
    # every pytest-xdist worker would otherwise import while collecting.
    from flows.pipeline import new_delivery_files

    make_delivery(tmp_path / "landing")
    monkeypatch.chdir(tmp_path)
    new, known = new_delivery_files("landing", "wh")
    assert len(new) == 2 and known == 0
    ingest_paths(new, "wh")
    new, known = new_delivery_files("landing", "wh")
    assert new == [] and known == 2
    make_delivery(tmp_path / "landing" / "later", seed=3)
    new, known = new_delivery_files("./landing/", "wh")
    assert known == 2 and len(new) == 2 and all("later" in p for p in new)
    ingest_paths(new, "wh")
    # A file changed in place (other content, later mtime) is passed on: the ingest refuses it loudly.
    changed = sorted((tmp_path / "landing").glob("*.zip"))[0]
    make_delivery(tmp_path / "other", seed=5)
    changed.write_bytes(sorted((tmp_path / "other").glob("*.zip"))[0].read_bytes())
    os.utime(changed, None)
    new, known = new_delivery_files("landing", "wh")
    assert new == [str(changed.resolve())] and known == 3
    report = ingest_paths(new, "wh")
    assert report.failed and "--replace" in report.failed[0].message


@pytest.mark.slow
def test_monthly_flow_with_a_corrupt_file_ends_failed_after_publishing(tmp_path, monkeypatch):
    """Good files ingested, every district analysed and published; the run is Failed, naming the bad file."""
    from config.districts import load_district
    from etl.synthetic import generate_delivery
    from flows.pipeline import monthly_pipeline

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    landing = tmp_path / "landing"
    generate_delivery(landing, districts=[load_district("okurayama")], scale=0.1)
    (landing / "OUT1-2_533925_20170930_broken.zip").write_bytes(b"PK\x03\x04 truncated")
    state = monthly_pipeline(
        landing=str(landing),
        warehouse=str(tmp_path / "wh"),
        out_dir=str(tmp_path / "maps"),
        districts=["okurayama"],
        resamples=50,
        return_state=True,
    )
    assert state.is_failed()
    assert "OUT1-2_533925_20170930_broken.zip" in state.message and "could not be ingested" in state.message
    latest = tmp_path / "maps" / "latest"
    assert (latest / "okurayama.html").exists() and (latest / "okurayama_report.html").exists()
    assert os.path.getsize(latest / "okurayama_sheet.pdf") > 10_000
    # The edition is the latest month of the delivery: 大倉山's last monitoring month (June 2019).
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["2019-06", "latest"]


def test_monthly_series_after_the_last_named_period(tmp_path, tiny_network):
    """Months after the last named period: complete ones only, levels with intervals, change vs after."""
    import datetime as dt

    import numpy as np

    from analysis.comparison import compare
    from analysis.figures import analyze
    from analysis.monitoring import latest_month_verdict, monitoring_months, monthly_series
    from analysis.results import load_district_results
    from conftest import AFTER, BEFORE, make_test_district, network, offset, style12_row, write_zip

    rng = np.random.default_rng(1)
    days = {"20170905": 34, "20171110": 25, "20171215": 25, "20180110": 31, "20180131": 25, "20180205": 25}
    for day, mean in days.items():
        lines = []
        for i in range(120):
            lon, lat = offset(rng.uniform(-150, 150), 0.5 if i % 2 else 100.5)  # R1 and A1
            lines.append(
                style12_row(
                    f"{100 + i % 40:012d}",
                    f"{day}08{i // 60:02d}{i % 60:02d}",
                    lon,
                    lat,
                    int(rng.normal(mean if i % 2 else 45, 3)),
                )
            )
        write_zip(tmp_path / "d" / f"{day}.zip", lines)
    ingest_paths([tmp_path / "d"], tmp_path / "wh")
    district = make_test_district(tiny_network)
    months = monitoring_months(tmp_path / "wh", district)
    # December and January are complete (the store holds later days); February is not.
    assert [(m.start, m.end) for m in months] == [
        (dt.date(2017, 12, 1), dt.date(2017, 12, 31)),
        (dt.date(2018, 1, 1), dt.date(2018, 1, 31)),
    ]
    net = network(tiny_network, treated=("R1",), comparison=("A1",))
    analyze(tmp_path / "wh", net, {"before": BEFORE, "after": AFTER})
    compare(tmp_path / "wh", net, {"before": BEFORE, "after": AFTER}, resamples=50)
    series = monthly_series(tmp_path / "wh", district, network=net, resamples=100)
    t = series[(series["indicator"] == "mean") & (series["unit"] == "treated")].set_index("month")
    assert list(t.index) == [dt.date(2017, 12, 1), dt.date(2018, 1, 1)]
    assert (
        t.loc[dt.date(2017, 12, 1), "ci_low"]
        <= t.loc[dt.date(2017, 12, 1), "value"]
        <= t.loc[dt.date(2017, 12, 1), "ci_high"]
    )
    assert t["after_level"].nunique() == 1 and t["change_vs_after"].tolist() == pytest.approx(
        (t["value"] - t["after_level"]).tolist()
    )
    # January mixes a fast day (31 km/h) and a slow one: its mean lies above the after level.
    assert t.loc[dt.date(2018, 1, 1), "value"] > t.loc[dt.date(2017, 12, 1), "value"] + 1.5
    # the DiD row: treated change − comparison change, with its interval
    d = series[(series["indicator"] == "mean") & (series["unit"] == "did")].set_index("month")
    c = series[(series["indicator"] == "mean") & (series["unit"] == "control")].set_index("month")
    assert d["change_vs_after"].tolist() == pytest.approx((t["change_vs_after"] - c["change_vs_after"]).tolist())
    assert (d["change_ci_low"] < d["change_vs_after"]).all() and (d["change_vs_after"] < d["change_ci_high"]).all()
    # January lies above the after level net of the comparison street, but in one month only: not yet a
    # rise (the equivalence verdict needs two consecutive months beyond the margin)
    verdict = latest_month_verdict(series, "mean")
    assert d.loc[dt.date(2018, 1, 1), "change_ci_low"] > 1.0
    assert verdict["month"] == dt.date(2018, 1, 1) and verdict["state"] == "inconclusive"
    stored = load_district_results(tmp_path / "wh", district).monthly
    assert len(stored) == len(series) and set(stored["indicator"]) == set(series["indicator"])
