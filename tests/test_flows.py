"""The flows run each stage once, skip known files, and end red when a delivered file failed."""

from __future__ import annotations

import os

import pytest

from conftest import make_delivery
from etl.ingest import ingest_paths
from flows.pipeline import new_delivery_files


def test_new_files_are_recognised_by_resolved_path(tmp_path, monkeypatch):
    """A landing folder given as a relative path: known files are skipped (not hashed again)."""
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
    state = monthly_pipeline(landing=str(landing), warehouse=str(tmp_path / "wh"), out_dir=str(tmp_path / "maps"),
                             districts=["okurayama"], resamples=50, return_state=True)  # fmt: skip
    assert state.is_failed()
    assert "OUT1-2_533925_20170930_broken.zip" in state.message and "could not be ingested" in state.message
    assert (tmp_path / "maps" / "okurayama.html").exists() and (tmp_path / "maps" / "okurayama_report.html").exists()
    assert os.path.getsize(tmp_path / "maps" / "okurayama_sheet.pdf") > 10_000
