"""The demo: synthetic delivery → ingest → before/after analysis → maps, for every bundled district."""

from __future__ import annotations

import os
import time
from pathlib import Path

from config.districts import bundled_districts
from etc2calm._summary import (
    format_gate_summary,
    format_headline,
    format_monitoring,
    format_pre_period,
    format_published,
    format_screening_summary,
    format_summary,
    published_vs_measured,
    treated_table,
)
from maps.publish import PUBLISHED_FILES


def run_demo(warehouse: Path, delivery: Path, maps_dir: Path, seed: int = 20171005, scale: float = 1.0) -> dict:
    """Generate (deterministically) the synthetic delivery, then run the Prefect flow in ephemeral mode."""
    from etl.synthetic import generate_delivery

    t0 = time.perf_counter()
    print(f"1/3 合成データ (synthetic ETC2.0 delivery) → {delivery}")
    gen = generate_delivery(delivery, seed=seed, scale=scale)
    print(f"    {_describe_generation(gen)}")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The ephemeral API starts in a subprocess; on a busy 2-core machine it can take longer than
    # Prefect's default 20 s.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    from flows.pipeline import monthly_pipeline

    print("2/3 ingest → analyse → publish (Prefect flow monthly-pipeline, ephemeral mode, no server needed)")
    keys = [d.key for d in bundled_districts()]  # the demo's districts, whatever ETC2CALM_DISTRICTS holds
    out = monthly_pipeline(landing=str(delivery), warehouse=str(warehouse), out_dir=str(maps_dir), districts=keys)
    print(f"    ingest: {out['ingest']['summary']}")
    for msg in out["ingest"]["failed"]:
        print(f"    failed: {msg}")
    districts = [d for d in bundled_districts() if d.key in out["districts"]]
    print("3/3 treated street (対策道路), figures from the warehouse:")
    print(format_summary(treated_table(warehouse, districts)))
    print(format_headline(warehouse, districts))
    print(format_published(published_vs_measured(warehouse, districts)))
    print(format_monitoring(warehouse, districts))
    print(format_pre_period(warehouse, districts))
    print(format_screening_summary(warehouse, districts, top=5))
    print(format_gate_summary(warehouse, districts))
    print("maps and reports:")
    print(f"    (this edition: {Path(out['edition']).resolve()}; the stable copy, latest/, below)")
    for d in out["districts"].values():
        for key in PUBLISHED_FILES:
            if d["latest"].get(key):
                print(f"    {Path(d['latest'][key]).resolve()}")
    print(f'warehouse: {warehouse.resolve()} (try: etc2calm sql "SELECT * FROM road_period_stats LIMIT 5")')
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return out


def _describe_generation(gen) -> str:
    if isinstance(gen, dict):
        parts = [f"{k}={v}" for k, v in gen.items() if not isinstance(v, (dict, list))]
        return ", ".join(parts) if parts else str(gen)
    return str(gen)
