"""Prefect flows: thin orchestration of ingest → analyse → map; the work is done by plain functions."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task

from etc2calm.analysis import analyze_district
from etc2calm.district import list_districts, load_district
from etc2calm.evidence import evaluate_district
from etc2calm.report import render_report
from etc2calm.publish import write_district_map
from etc2calm.summary import treated_summary
from etl.ingest import ingest_paths


@task(name="ingest", retries=2, retry_delay_seconds=10, persist_result=False)
def ingest_task(paths: list[str], warehouse: str) -> dict:
    report = ingest_paths(paths, warehouse)
    return {
        "summary": report.summary(),
        "failed": [f.message for f in report.failed],
        "rows_read": report.total("rows_read"),
        "rows_stored": report.total("rows_stored"),
        "rows_quarantined": report.total("rows_quarantined"),
    }


@task(name="analyze-district", retries=1, retry_delay_seconds=10, persist_result=False)
def analyze_task(warehouse: str, district_key: str, maps_dir: str) -> dict:
    """Analyse every named period of the district, then write its map from the same figures."""
    district = load_district(district_key)
    result = analyze_district(warehouse, district, dict(district.periods))
    map_path = write_district_map(warehouse, district, Path(maps_dir) / f"{district.key}.html", result=result)
    return {"summary": treated_summary(district, result).to_dict("records"), "map": str(map_path)}


@task(name="evaluate-district", retries=1, retry_delay_seconds=10, persist_result=False)
def evidence_task(warehouse: str, district_key: str, out_dir: str, resamples: int = 1000, seed: int = 0) -> dict:
    """Before/after with intervals, DiD, braking and cut-through; writes the district report."""
    district = load_district(district_key)
    ev = evaluate_district(warehouse, district, resamples=resamples, seed=seed)
    report = render_report(district, ev, Path(out_dir) / f"{district.key}_report.html")
    headline = {ind: t.to_dict("records") for ind, t in ev.comparisons.items()}
    return {"report": str(report), "comparisons": headline}


@flow(name="district-pipeline")
def district_pipeline(
    delivery: list[str], warehouse: str = "data/warehouse", districts: list[str] | None = None,
    maps_dir: str = "build/maps",
) -> dict:  # fmt: skip
    """Ingest a delivery, then analyse and map each district (all bundled districts by default)."""
    ingest = ingest_task(delivery, warehouse)
    keys = districts or [d.key for d in list_districts()]
    results = {}
    for key in keys:
        results[key] = analyze_task(warehouse, key, maps_dir)
        results[key]["evidence"] = evidence_task(warehouse, key, maps_dir)
    return {"ingest": ingest, "districts": results}
