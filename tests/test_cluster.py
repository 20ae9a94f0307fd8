"""Where partition-parallel work runs (etl.cluster), one switch: the same CLI commands with and without
`--dask-local 2` store the same tables, bit for bit; a worker killed mid-ingest loses and doubles
nothing; workers with another ID key are refused."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import duckdb
import pytest

from conftest import ETC2CALM
from etl.warehouse import connect

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
KEY = "dask-equivalence-key-0123456789"

# Columns that record when or how long something ran, or name files after the commit that wrote
# them (a commit id holds the time): excluded from the comparison. Everything else must be equal.
VOLATILE = {
    "ingested_at",
    "computed_at",
    "matched_at",
    "updated_at",
    "started_at",
    "finished_at",
    "seconds",
    "source_token",
    "folder",
}
TABLES = {
    "ingest": ["probe_points", "point_duplicates", "quarantine", "manifest"],
    "analyze": [
        "match_state",
        "matched_points",
        "road_period_stats",
        "group_period_stats",
        "road_speed_histogram",
        "link_hour_stats",
        "link_hour_histogram",
        "analysis_runs",
    ],
    "compare": [
        "comparison_results",
        "comparison_histogram",
        "evidence_runs",
        "braking_per_road",
        "braking_hotspots",
        "cut_through_summary",
        "cut_through_streets",
    ],
    "screen": ["screening_results", "screening_runs"],
}


def _env(**extra) -> dict:
    return dict(os.environ, ETC2CALM_HOME=str(ROOT), ETC2CALM_ID_KEY=KEY, PYTHONPATH=str(ROOT), **extra)


def _cli(*args, env=None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [ETC2CALM, *map(str, args)],
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    return proc


def _rows(warehouse: Path, table: str):
    con = connect(warehouse, read_only=True)
    try:
        cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        keep = ", ".join(f'"{c}"' for c in cols if c not in VOLATILE)
        return con.sql(f"SELECT {keep} FROM {table}").to_arrow_table()
    finally:
        con.close()


def assert_same_tables(a: Path, b: Path, tables: list[str]) -> dict[str, int]:
    """Every row of every table equal in both warehouses (a multiset comparison, both ways, exact values)."""
    counts = {}
    for table in tables:
        ta, tb = _rows(a, table), _rows(b, table)
        assert ta.schema == tb.schema, table
        con = duckdb.connect()
        con.register("ta", ta)
        con.register("tb", tb)
        only_a = con.execute("SELECT count(*) FROM (SELECT * FROM ta EXCEPT ALL SELECT * FROM tb)").fetchone()[0]
        only_b = con.execute("SELECT count(*) FROM (SELECT * FROM tb EXCEPT ALL SELECT * FROM ta)").fetchone()[0]
        con.close()
        assert (ta.num_rows, only_a, only_b) == (tb.num_rows, 0, 0), (
            f"{table}: {ta.num_rows} vs {tb.num_rows} rows, {only_a} only without Dask, {only_b} only with"
        )
        counts[table] = ta.num_rows
    return counts


@pytest.fixture(scope="module")
def delivery(tmp_path_factory):
    from config.districts import load_district
    from etl.synthetic import generate_delivery

    root = tmp_path_factory.mktemp("dask_cli")
    generate_delivery(root / "d", districts=[load_district("okurayama")], scale=0.05)
    (root / "d" / "OUT1-2_533925_20170930_broken.zip").write_bytes(b"PK\x03\x04 truncated")
    return root


@pytest.mark.parametrize("switch", [["--dask-local", "2"]])
def test_cli_with_and_without_dask_stores_identical_tables(delivery, switch):
    local, dask = delivery / "wh_local", delivery / "wh_dask"
    steps = [
        ("ingest", ["ingest", "--warehouse", "{wh}", delivery / "d"], 1),  # exit 1: the broken file is named
        ("analyze", ["analyze", "--warehouse", "{wh}", "--district", "okurayama", "--period", "trial=trial"], 0),
        ("compare", ["compare", "--warehouse", "{wh}", "--district", "okurayama", "--resamples", "200"], 0),
        ("screen", ["screen", "--warehouse", "{wh}", "--district", "okurayama", "--resamples", "200"], 0),
    ]
    for name, args, status in steps:
        outs = []
        for wh, extra in ((local, []), (dask, switch)):
            proc = _cli(*[wh if a == "{wh}" else a for a in args], *extra)
            assert proc.returncode == status, f"{name} {extra}:\n{proc.stdout}\n{proc.stderr}"
            outs.append(proc.stdout.replace(str(wh), "WH"))
        assert outs[0] == outs[1], name  # what is printed is the same too
        counts = assert_same_tables(local, dask, TABLES[name])
        assert all(
            n > 0
            for t, n in counts.items()
            if t not in ("point_duplicates", "cut_through_summary", "cut_through_streets", "braking_hotspots")
        ), counts


def test_scheduler_switch_errors_are_one_line(tmp_path):
    proc = _cli(
        "ingest", "--warehouse", tmp_path / "wh", "--scheduler", "tcp://127.0.0.1:9", "--dask-local", "2", tmp_path
    )
    assert proc.returncode == 2 and "not allowed with" in proc.stderr
    proc = _cli("ingest", "--warehouse", tmp_path / "wh", "--dask-local", "0", tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("etc2calm: error: --dask-local needs at least 1")
    env = _env(ETC2CALM_DASK_SCHEDULER="tcp://127.0.0.1:9")
    proc = subprocess.run(
        [ETC2CALM, "ingest", "--warehouse", str(tmp_path / "wh"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2 and "cannot reach the Dask scheduler tcp://127.0.0.1:9" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture
def bench_delivery(tmp_path):
    from etl.synthetic import generate_bench_delivery

    generate_bench_delivery(tmp_path / "d", rows=300_000, rows_per_file=15_000, workers=1)
    return tmp_path


def _local_cluster(n=2, env=None):
    import logging

    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.CRITICAL,
        env=env or {},
    )
    return cluster, Client(cluster)


def test_worker_killed_mid_ingest_loses_and_doubles_nothing(bench_delivery, monkeypatch):
    from etl.ingest import ingest_paths

    monkeypatch.setenv("ETC2CALM_ID_KEY", KEY)
    root = bench_delivery
    ref = ingest_paths([root / "d"], root / "wh_ref", workers=1)
    assert not ref.failed
    cluster, client = _local_cluster(2)
    killed: list[tuple[str, int, list]] = []

    def killer():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            busy = {w: ks for w, ks in client.processing().items() if any(str(k).startswith("stage-") for k in ks)}
            staged = list((root / "wh_dask" / "_staging").glob("*/*/points/*.parquet"))
            if busy and staged:  # a staging task is running and has written part of its output
                pids = client.run(os.getpid)
                worker = sorted(busy)[0]
                os.kill(pids[worker], signal.SIGKILL)
                killed.append((worker, pids[worker], list(busy[worker])))
                return
            time.sleep(0.05)

    try:
        t = threading.Thread(target=killer, daemon=True)
        t.start()
        report = ingest_paths([root / "d"], root / "wh_dask", client=client)
        t.join(5)
        assert killed, "no worker was killed while it staged"
        # The killed worker's task ran again elsewhere (or on its restarted process): nothing failed.
        assert not report.failed and report.summary() == ref.summary()
        assert len(client.run(os.getpid)) >= 1
    finally:
        client.close()
        cluster.close()
    counts = assert_same_tables(root / "wh_ref", root / "wh_dask", TABLES["ingest"])
    assert counts["probe_points"] == ref.total("rows_stored") > 250_000
    con = connect(root / "wh_dask", read_only=True)
    try:  # no point twice (the staged output of the killed task was written again, not added)
        n, distinct = con.execute(
            "SELECT count(*), count(DISTINCT (file_id, member, line_no)) FROM probe_points"
        ).fetchone()
        files = con.execute("SELECT count(*), count(DISTINCT file_id) FROM manifest WHERE status = 'ok'").fetchone()
    finally:
        con.close()
    assert n == distinct and files[0] == files[1] == 20
    assert not (root / "wh_dask" / "_staging").exists()


def test_workers_with_another_key_are_refused_and_nothing_is_committed(tmp_path, monkeypatch):
    from conftest import make_delivery
    from etl.ingest import ingest_paths
    from etl.pseudonymise import KeyMismatch

    make_delivery(tmp_path / "d")
    monkeypatch.setenv("ETC2CALM_ID_KEY", KEY)
    cluster, client = _local_cluster(1, env={"ETC2CALM_ID_KEY": "another-worker-key-0123456789"})
    try:
        with pytest.raises(KeyMismatch, match="is not the ingest's") as err:
            ingest_paths([tmp_path / "d"], tmp_path / "wh", client=client)
    finally:
        client.close()
        cluster.close()
    assert KEY not in str(err.value) and "another-worker-key" not in str(err.value)
    con = connect(tmp_path / "wh", read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM manifest").fetchone()[0] == 0
    finally:
        con.close()
