"""Stage fingerprints: a stage of the monthly flow whose inputs did not change does nothing.

Each stage the flow runs per district (analyze, compare, gates, screen, monitor, publish) is
keyed by a fingerprint of everything its stored result depends on:

- the district's files: its TOML, its road network and its outline (contents);
- the committed point store (`_snapshot.json`: generation and commit, which every ingest that
  changes anything replaces) and the district's stored matches (match_state: fingerprint,
  source token and folder of every month);
- the stage's parameters (resamples, seed, …) and the versions that already mark derived tables
  (MATCH_VERSION, DERIVED_SCHEMA_VERSION: a new layout drops stage_runs with the other tables);
- the product's own code and bundled files (`code_digest`: every file of the packages that compute
  and publish, settings and wording included), so an upgrade or an edited constant is never
  answered with a result the old code made, even when nobody bumped a version;
- the ETC2CALM_* environment variables of the process (fault hooks for tests and the secret
  pseudonymisation key aside: a key never enters a recorded digest);
- for publishing, the fingerprints and times of the district's other stages, and the folder.

`run_stage` runs the stage only when no run of it with that fingerprint is recorded in
stage_runs (and, for a stage that writes files, its files are all there); otherwise it returns
the summary recorded with that run. Every function that stores a stage's tables forgets that
stage's record of the district (`forget_stage`, inside its transaction), so an ad-hoc run of
`etc2calm analyze` with other periods makes the next flow run analyse again.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np

from config.districts import District
from etl.schema import DERIVED_SCHEMA_VERSION, MATCH_VERSION
from etl.warehouse import WarehouseMissing, connect, read_snapshot

STAGES = ("analyze", "compare", "gates", "screen", "monitor", "publish")
# The packages whose code and bundled files make a stage's results (flows and the CLI only orchestrate).
CODE_PACKAGES = ("config", "etl", "geo", "analysis", "maps")


@functools.cache
def code_digest() -> str:
    """sha256 of every file of CODE_PACKAGES (relative path and contents; caches and compiled
    files left out), computed once per process."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for package in CODE_PACKAGES:
        for f in sorted((root / package).rglob("*")):
            if not f.is_file() or "__pycache__" in f.parts or f.suffix in (".pyc", ".nbi", ".nbc"):
                continue
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def environment_digest() -> list[list[str]]:
    """The process's ETC2CALM_* environment variables (name, value), fault hooks for tests and the
    pseudonymisation key aside."""
    return sorted(
        [k, v] for k, v in os.environ.items() if k.startswith("ETC2CALM_") and "TEST" not in k and "KEY" not in k
    )


def _file_digest(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return "missing"


def district_digest(district: District) -> str:
    """sha256 of the district's definition: its TOML file, road network and outline (contents)."""
    parts = [_file_digest(p) for p in (district.source_path, district.network_path, district.area_path)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def store_digest(con: duckdb.DuckDBPyConnection, warehouse: Path, district_key: str) -> str:
    """sha256 of the committed point store's identity and of the district's stored matches."""
    snap = read_snapshot(Path(warehouse)) or {}
    rows = con.execute(
        "SELECT year, month, fingerprint, source_token, folder FROM match_state WHERE district = ? ORDER BY ALL",
        [district_key],
    ).fetchall()
    text = json.dumps([snap.get("generation"), snap.get("commit"), [list(map(str, r)) for r in rows]])
    return hashlib.sha256(text.encode()).hexdigest()


def stage_fingerprint(
    con: duckdb.DuckDBPyConnection, warehouse: Path, district: District, stage: str, params: dict
) -> str:
    """The fingerprint of one stage of one district (see the module docstring)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r} (one of {', '.join(STAGES)})")
    key = {
        "stage": stage,
        "params": params,
        "versions": [MATCH_VERSION, DERIVED_SCHEMA_VERSION],
        "code": code_digest(),
        "environment": environment_digest(),
        "district": district_digest(district),
        "store": store_digest(con, warehouse, district.key),
    }
    if stage == "publish":
        key["upstream"] = [
            list(map(str, r))
            for r in con.execute(
                "SELECT stage, fingerprint, finished_at FROM stage_runs WHERE district = ? AND stage != 'publish' "
                "ORDER BY stage",
                [district.key],
            ).fetchall()
        ]
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _recorded(con: duckdb.DuckDBPyConnection, district_key: str, stage: str) -> tuple[str, str] | None:
    row = con.execute(
        "SELECT fingerprint, summary FROM stage_runs WHERE district = ? AND stage = ?", [district_key, stage]
    ).fetchone()
    return None if row is None else (row[0], row[1])


def forget_stage(con: duckdb.DuckDBPyConnection, district_key: str, stage: str) -> None:
    """Drop the record of a stage's last run for the district (its stored tables are being replaced)."""
    con.execute("DELETE FROM stage_runs WHERE district = ? AND stage = ?", [district_key, stage])


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, dt.date | dt.datetime | Path):
        return str(value)
    raise TypeError(f"cannot record {type(value).__name__} in a stage summary")


def _files_present(summary) -> bool:
    """Every path among the values of a file-writing stage's summary exists."""
    if not isinstance(summary, dict):
        return True
    return all(Path(v).exists() for v in summary.values() if isinstance(v, str) and v)


def _lookup(warehouse: Path, district: District, stage: str, params: dict):
    """(fingerprint, the recorded summary when that run is current else None)."""
    try:
        con = connect(warehouse, read_only=True)
    except WarehouseMissing:
        return None, None
    try:
        fp = stage_fingerprint(con, warehouse, district, stage, params)
        rec = _recorded(con, district.key, stage)
    except duckdb.CatalogException:  # a warehouse without the tables yet
        return None, None
    finally:
        con.close()
    if rec is None or rec[0] != fp:
        return fp, None
    summary = json.loads(rec[1])
    return fp, (summary if stage != "publish" or _files_present(summary) else None)


def run_stage(warehouse: str | Path, district: District, stage: str, params: dict, fn: Callable[[], object]):
    """Run `fn` (the stage, which stores its results) unless a run with the same fingerprint is
    recorded; returns fn's summary (JSON-able: numbers, text, lists, dicts), or the recorded one.
    Records the run after `fn` returns (a failed stage records nothing)."""
    warehouse = Path(warehouse)
    fp, summary = _lookup(warehouse, district, stage, params)
    if summary is not None:
        return summary
    out = fn()
    text = json.dumps(out, default=_json_default)
    con = connect(warehouse, create=False)
    try:
        fp = stage_fingerprint(con, warehouse, district, stage, params)  # the inputs as the stage saw them
        forget_stage(con, district.key, stage)
        con.execute("INSERT INTO stage_runs VALUES (?, ?, ?, ?, ?)", [district.key, stage, fp, text, dt.datetime.now()])
    finally:
        con.close()
    return json.loads(text)
