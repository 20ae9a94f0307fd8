"""The demo end to end (small scale): synthetic delivery → Prefect flow (ephemeral) → summary and maps."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from conftest import ETC2CALM


@pytest.mark.slow
def test_demo_end_to_end_small(tmp_path):
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect"))
    args = [
        ETC2CALM,
        "demo",
        "--scale",
        "0.15",
        "--warehouse",
        tmp_path / "wh",
        "--delivery",
        tmp_path / "delivery",
        "--maps",
        tmp_path / "maps",
    ]
    proc = subprocess.run(list(map(str, args)), capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    # Rows conserved, and the injected bad rows ended in quarantine.
    m = re.search(r"rows read (\d+) = stored (\d+) \+ quarantined (\d+) \+ duplicates skipped (\d+)", out)
    assert m and int(m[1]) == int(m[2]) + int(m[3]) + int(m[4]) and int(m[3]) > 0
    for key, name in (("okurayama", "大倉山三丁目"), ("nakayama", "中山町")):
        html = (tmp_path / "maps" / "latest" / f"{key}.html").read_text(encoding="utf-8")
        assert name in html and "合成データ" in html
        assert str((tmp_path / "maps" / "latest" / f"{key}.html").resolve()) in out
        report = (tmp_path / "maps" / "latest" / f"{key}_report.html").read_text(encoding="utf-8")
        assert "差の差" in report and "平均への回帰" in report
    # The summary comes from the warehouse: the treated street is slower after than before.
    assert "DiD" in out
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[1] in ("before", "trial", "after"):
            rows[(parts[0], parts[1])] = float(parts[6])  # mean_kmh column
    assert rows[("大倉山三丁目", "before")] > rows[("大倉山三丁目", "after")] + 4
    assert rows[("中山町", "before")] > rows[("中山町", "after")] + 2
    # Published figures printed beside this run's, from the district files and the warehouse.
    assert "published (district file [[published]]) and measured by this run" in out
    assert re.search(
        r"大倉山三丁目\s+85th percentile speed\s+before\s+published 32\.6 km/h\s+this run \d+\.\d km/h", out
    )
    assert re.search(r"中山町\s+mean speed\s+before→after\s+published -7\.0 km/h\s+this run -\d+\.\d km/h", out)
    # Screening (stored, printed top 5): the treated streets were generated fast and rank first.
    for key in ("okurayama", "nakayama"):
        assert re.search(rf"\({key}\), before [^\n]*\n[^\n]*\n[^\n]*\n\s+1 T1 ", out), key
    assert "through traffic by gates" in out and "busiest through pair" in out
    # the monitoring months the demo generates after each district's last named period, with the map's verdict
    for name in ("中山町", "大倉山三丁目"):
        assert re.search(
            rf"{name}\s+[1-9]\d* month\(s\); In \w+ \d{{4}} the [^\n]* on the treated street was \d+\.\d", out
        ), name
    # Re-running is safe: the same delivery adds nothing.
    again = subprocess.run(list(map(str, args)), capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0
    assert re.search(r"rows read 0 = stored 0", again.stdout) and "files already ingested" in again.stdout
