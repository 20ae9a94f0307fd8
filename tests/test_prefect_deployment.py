"""Integration: a real Prefect server on 127.0.0.1, deployments from prefect.yaml, a process worker.

Starts everything it needs in its own process group and PREFECT_HOME, and stops it afterwards.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PREFECT = str(BIN / "prefect")
ETC2CALM = str(BIN / "etc2calm")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(args, env, timeout=300, cwd=ROOT):
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect_home")
    port = _free_port()
    env = dict(
        os.environ,
        PREFECT_HOME=str(home),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        ETC2CALM_HOME=str(ROOT),
        ETC2CALM_ID_KEY="integration-test-key",
    )
    log = open(home / "server.log", "w")
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Prefect server did not start:\n{(home / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
        yield env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def test_deployment_runs_through_process_worker(prefect_server, tmp_path):
    env = prefect_server
    landing = tmp_path / "landing"
    _run([ETC2CALM, "generate", landing, "--scale", "0.05", "--district", "okurayama"], env)
    _run([PREFECT, "work-pool", "create", "etc2calm-process", "--type", "process"], env)
    # Locations are configuration: Prefect variables, not deployment parameters.
    _run([PREFECT, "variable", "set", "etc2calm_warehouse", str(tmp_path / "wh")], env)
    _run([PREFECT, "variable", "set", "etc2calm_output_root", str(tmp_path / "maps")], env)
    out = _run([PREFECT, "--no-prompt", "deploy", "--all"], env)
    assert "monthly-all-districts" in out
    params = {"landing": str(landing), "districts": ["okurayama"], "resamples": 100}
    run_out = _run([PREFECT, "deployment", "run", "monthly-pipeline/monthly-all-districts", "--params", json.dumps(params)], env)
    flow_run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", run_out)
    assert flow_run_id, run_out
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", "etc2calm-process", "--run-once"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        worker_out, _ = worker.communicate(timeout=900)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    state = _run([PREFECT, "flow-run", "inspect", flow_run_id[1]], env)
    assert "state_type=StateType.COMPLETED" in state, worker_out[-4000:]
    # What the deployment produced: stored points, figures and the district's map and report.
    con = duckdb.connect(str(tmp_path / "wh" / "warehouse.duckdb"), read_only=True)
    try:
        n_points = con.execute("SELECT count(*) FROM probe_points").fetchall()[0][0]
        n_stats = con.execute("SELECT count(*) FROM road_period_stats WHERE district = 'okurayama'").fetchall()[0][0]
        n_did = con.execute("SELECT count(*) FROM comparison_results WHERE district = 'okurayama' AND unit = 'did'").fetchall()[0][0]
    finally:
        con.close()
    assert n_points > 1000 and n_stats > 0 and n_did > 0
    from config.districts import load_district
    from etl.synthetic import monitoring_periods

    district = load_district("okurayama")
    last = max([p.end for p in district.periods.values()] + [p.end for p in monitoring_periods(district)])
    editions = sorted(p.name for p in (tmp_path / "maps").iterdir())
    assert editions == [f"{last:%Y-%m}", "latest"]  # the latest month of the delivery (monitoring months too), and the stable copy
    for folder in editions:
        assert "大倉山三丁目" in (tmp_path / "maps" / folder / "okurayama.html").read_text(encoding="utf-8")
        assert "差の差" in (tmp_path / "maps" / folder / "okurayama_report.html").read_text(encoding="utf-8")
