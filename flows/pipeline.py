"""Prefect flows: thin orchestration of ingest → analyse → publish; the work is done by plain functions.

Flows (each also a deployment in prefect.yaml):
- `ingest_new_deliveries`: ingest the files of a landing folder that are not yet in the manifest;
- `analyze_district`: per-road figures for every named period, and the before/after evidence
  (intervals, DiD, braking, cut-through), stored in the warehouse;
- `publish_maps`: the district's map and report (self-contained HTML) from the warehouse;
- `monthly_pipeline`: the three above for every district, as the road bureau schedules it.
Tasks return small summaries (dicts of numbers and paths), never large data.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task

from analysis.figures import analyze_district as analyze_district_periods
from config.districts import list_districts, load_district
from analysis.evidence import evaluate_district
from maps.publish import write_district_map, write_district_sheet
from maps.report import render_report
from etc2calm.summary import treated_summary
from etl.ingest import ingest_paths
from etl.sources import find_delivery_files
from etl.warehouse import connect

DEFAULT_WAREHOUSE = "data/warehouse"
DEFAULT_OUT_DIR = "build/maps"


def new_delivery_files(landing: str, warehouse: str) -> tuple[list[str], int]:
    """Files under `landing` whose path is not yet recorded as ingested in the manifest, and how many are.

    A path check avoids re-reading a month of deliveries; content already ingested under another
    path is still recognised by the ingest itself (SHA-256).
    """
    files = find_delivery_files([landing])
    db = Path(warehouse) / "warehouse.duckdb"
    if not db.exists():
        return [str(f) for f in files], 0
    con = connect(warehouse)
    try:
        done = {r[0] for r in con.execute("SELECT source_path FROM manifest WHERE status = 'ok'").fetchall()}
    finally:
        con.close()
    new = [str(f) for f in files if str(f) not in done]
    return new, len(files) - len(new)


@task(name="find-new-files", retries=2, retry_delay_seconds=10, persist_result=False)
def find_new_files_task(landing: str, warehouse: str) -> tuple[list[str], int]:
    return new_delivery_files(landing, warehouse)


@task(name="ingest", retries=2, retry_delay_seconds=10, persist_result=False)
def ingest_task(paths: list[str], warehouse: str, n_known: int = 0) -> dict:
    report = ingest_paths(paths, warehouse)
    return {
        "summary": report.summary() + (f" ({n_known} files already ingested, not read again)" if n_known else ""),
        "failed": [f.message for f in report.failed],
        "rows_read": report.total("rows_read"),
        "rows_stored": report.total("rows_stored"),
        "rows_quarantined": report.total("rows_quarantined"),
    }


@task(name="analyze-periods", retries=1, retry_delay_seconds=10, persist_result=False)
def analyze_periods_task(warehouse: str, district_key: str) -> list[dict]:
    """Per-road figures for every named period of the district; returns the treated street's rows."""
    district = load_district(district_key)
    result = analyze_district_periods(warehouse, district, dict(district.periods))
    return treated_summary(district, result).to_dict("records")


@task(name="evaluate", retries=1, retry_delay_seconds=10, persist_result=False)
def evidence_task(warehouse: str, district_key: str, resamples: int = 1000, seed: int = 0) -> dict:
    """Before/after with intervals, DiD, braking and cut-through, stored; returns the comparison rows."""
    district = load_district(district_key)
    ev = evaluate_district(warehouse, district, resamples=resamples, seed=seed)
    return {ind: t.to_dict("records") for ind, t in ev.comparisons.items()}


@task(name="publish", retries=1, retry_delay_seconds=10, persist_result=False)
def publish_task(warehouse: str, district_key: str, out_dir: str, resamples: int = 1000, seed: int = 0) -> dict:
    """The district's map and report; returns their paths."""
    district = load_district(district_key)
    out = Path(out_dir)
    ev = evaluate_district(warehouse, district, resamples=resamples, seed=seed, store=False)
    map_path = write_district_map(warehouse, district, out / f"{district.key}.html", evidence=ev)
    report = render_report(district, ev, out / f"{district.key}_report.html")
    sheet = write_district_sheet(warehouse, district, out / f"{district.key}_sheet.pdf")
    return {"map": str(map_path), "report": str(report), "sheet": sheet["pdf"], "sheet_png": sheet["png"]}


@flow(name="ingest-new-deliveries")
def ingest_new_deliveries(landing: str = "data/landing", warehouse: str = DEFAULT_WAREHOUSE) -> dict:
    """Ingest the files of `landing` (recursively) not yet in the warehouse's manifest."""
    new, n_known = find_new_files_task(landing, warehouse)
    return ingest_task(new, warehouse, n_known)


@flow(name="analyze-district")
def analyze_district(district: str, warehouse: str = DEFAULT_WAREHOUSE, resamples: int = 1000, seed: int = 0) -> dict:
    """Figures for every named period and the before/after evidence of one district, stored."""
    return {
        "summary": analyze_periods_task(warehouse, district),
        "comparisons": evidence_task(warehouse, district, resamples, seed),
    }


@flow(name="publish-maps")
def publish_maps(district: str, warehouse: str = DEFAULT_WAREHOUSE, out_dir: str = DEFAULT_OUT_DIR, seed: int = 0) -> dict:
    """Map and report of one district from the warehouse."""
    return publish_task(warehouse, district, out_dir, seed=seed)


@flow(name="monthly-pipeline")
def monthly_pipeline(
    landing: str = "data/landing", warehouse: str = DEFAULT_WAREHOUSE, out_dir: str = DEFAULT_OUT_DIR,
    districts: list[str] | None = None, resamples: int = 1000, seed: int = 0,
) -> dict:  # fmt: skip
    """Ingest what is new, then analyse and publish every district (all bundled districts by default)."""
    ingest = ingest_new_deliveries(landing, warehouse)
    keys = districts or [d.key for d in list_districts()]
    results = {}
    for key in keys:
        results[key] = analyze_district(key, warehouse, resamples, seed)
        results[key].update(publish_maps(key, warehouse, out_dir, seed))
    return {"ingest": ingest, "districts": results}
