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

import pytest

from conftest import q

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
    proc = subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _run_deployment(deployment: str, params: dict, env) -> tuple[str, str]:
    """Start a run of `deployment`, let one process worker take it, and check it completed.
    Returns (flow run id, the worker's output)."""
    run_out = _run([PREFECT, "deployment", "run", deployment, "--params", json.dumps(params)], env)
    flow_run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", run_out)
    assert flow_run_id, run_out
    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", "etc2calm-process", "--run-once"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        worker_out, _ = worker.communicate(timeout=900)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    state = _run([PREFECT, "flow-run", "inspect", flow_run_id[1]], env)
    assert "state_type=StateType.COMPLETED" in state, worker_out[-4000:]
    return flow_run_id[1], worker_out


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
    with open(home / "server.log", "w") as log:  # the server keeps its own copy of the descriptor
        server = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
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
    _run_deployment("monthly-pipeline/monthly-all-districts", params, env)
    # What the deployment produced: stored points, figures and the district's map and report.
    wh = tmp_path / "wh"
    [(n_points,)] = q(wh, "SELECT count(*) FROM probe_points")
    [(n_stats,)] = q(wh, "SELECT count(*) FROM road_period_stats WHERE district = 'okurayama'")
    [(n_did,)] = q(wh, "SELECT count(*) FROM comparison_results WHERE district = 'okurayama' AND unit = 'did'")
    assert n_points > 1000 and n_stats > 0 and n_did > 0
    from config.districts import load_district
    from etl.synthetic import monitoring_periods

    district = load_district("okurayama")
    last = max([p.end for p in district.periods.values()] + [p.end for p in monitoring_periods(district)])
    editions = sorted(p.name for p in (tmp_path / "maps").iterdir())
    assert editions == [
        f"{last:%Y-%m}",
        "latest",
    ]  # the latest month of the delivery (monitoring months too), and the stable copy
    for folder in editions:
        assert "大倉山三丁目" in (tmp_path / "maps" / folder / "okurayama.html").read_text(encoding="utf-8")
        assert "差の差" in (tmp_path / "maps" / folder / "okurayama_report.html").read_text(encoding="utf-8")


def _raw_ids(delivery: Path) -> set[str]:
    """Every raw 運行ID (field 4 of 様式1-2) of a generated delivery."""
    import zipfile

    ids = set()
    for z in delivery.rglob("*.zip"):
        with zipfile.ZipFile(z) as zf:
            for name in zf.namelist():
                for line in zf.read(name).decode("cp932").splitlines():
                    fields = line.split(",")
                    if len(fields) > 3 and fields[3].strip():
                        ids.add(fields[3].strip())
    return ids


def test_dask_deployment_runs_on_a_local_cluster_and_keeps_key_and_ids_out_of_prefect(
    prefect_server, tmp_path, monkeypatch
):
    """monthly-all-districts-dask through the real server and a process worker, its tasks on a Dask
    LocalCluster started here; the key reaches only the Dask workers (a key file in their environment)."""
    import logging

    from distributed import Client, LocalCluster

    from etl.pseudonymise import key_fingerprint

    key = "dask-workers-key-file-0123456789abcdef"
    key_file = tmp_path / "secret" / "id_key"
    key_file.parent.mkdir()
    key_file.write_text(key)
    # The flow-run process gets no key at all (a key file it created would show up here).
    env = {k: v for k, v in prefect_server.items() if k != "ETC2CALM_ID_KEY"}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "flow_config")
    landing = tmp_path / "landing"
    _run([ETC2CALM, "generate", landing, "--scale", "0.05", "--district", "okurayama"], env)
    raw_ids = _raw_ids(landing)
    assert len(raw_ids) > 100
    worker_env = {
        k: prefect_server[k] for k in ("PREFECT_HOME", "PREFECT_API_URL", "PREFECT_LOGGING_LEVEL", "ETC2CALM_HOME")
    }
    worker_env.update(
        ETC2CALM_ID_KEY_FILE=str(key_file),
        PYTHONPATH=os.environ.get("PYTHONPATH", str(ROOT)),
        XDG_CONFIG_HOME=str(tmp_path / "dask_config"),
    )
    monkeypatch.delenv("ETC2CALM_ID_KEY")  # the tests' key: the workers must not inherit it
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
        env=worker_env,
    )
    client = Client(cluster)
    try:
        assert all(v is None for v in client.run(os.environ.get, "ETC2CALM_ID_KEY").values())
        subprocess.run(
            [PREFECT, "work-pool", "create", "etc2calm-process", "--type", "process"],
            env=env,
            capture_output=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )  # exists after the other test
        for name, value in (
            ("etc2calm_warehouse", tmp_path / "wh"),
            ("etc2calm_output_root", tmp_path / "maps"),
            ("etc2calm_dask_scheduler", cluster.scheduler_address),
        ):
            _run([PREFECT, "variable", "set", name, str(value), "--overwrite"], env)
        out = _run([PREFECT, "--no-prompt", "deploy", "--name", "monthly-all-districts-dask"], env)
        assert "monthly-all-districts-dask" in out
        params = {"landing": str(landing), "districts": ["okurayama"], "resamples": 100}
        flow_run_id, worker_out = _run_deployment("monthly-pipeline-dask/monthly-all-districts-dask", params, env)
        # The tasks ran on the cluster, and so did their partition-parallel work.
        prefixes = set(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes)))
        assert {"stage", "match_and_write", "month_part", "range_cube", "month_rows"} <= prefixes, prefixes
        assert any(p.startswith(("ingest", "match", "compare")) for p in prefixes), prefixes
        logs = _run([PREFECT, "flow-run", "logs", flow_run_id], env)
    finally:
        client.close()
        cluster.close()
    wh = tmp_path / "wh"
    [(n_points,)] = q(wh, "SELECT count(*) FROM probe_points")
    [(n_stats,)] = q(wh, "SELECT count(*) FROM road_period_stats WHERE district = 'okurayama'")
    [(fingerprint,)] = q(wh, "SELECT value FROM warehouse_info WHERE name = 'key_fingerprint'")
    assert n_points > 1000 and n_stats > 0 and fingerprint == key_fingerprint(key.encode())
    assert (tmp_path / "maps" / "latest" / "okurayama.html").exists()
    assert not (tmp_path / "flow_config" / "etc2calm").exists()  # the flow process never needed a key
    # Neither the key nor any raw 運行ID in the Prefect database (and its journal) or the logs.
    home = Path(prefect_server["PREFECT_HOME"])
    blobs = {p.name: p.read_bytes() for p in home.rglob("*") if p.is_file() and ".db" in p.name}
    assert any(n.endswith(".db") for n in blobs), list(blobs)
    blobs["flow-run logs"] = logs.encode()
    blobs["worker output"] = worker_out.encode()
    for name, data in blobs.items():
        assert key.encode() not in data, name
        leaked = [i for i in raw_ids if i.encode() in data]
        assert not leaked, f"{name}: raw IDs {leaked[:3]}"


def test_deployment_runs_a_district_kept_outside_the_package(prefect_server, tmp_path):
    """A district declared with `etc2calm district new` in a folder of the user's (not the
    package, not ETC2CALM_HOME) runs through the deployment monthly-all-districts, the folder given by
    the Prefect variable etc2calm_districts; the flow honours the district's screening minimum and
    names the edition after the last complete month (the delivery spills over into 2023-12-01)."""
    data = ROOT / "tests" / "data"
    env = {k: v for k, v in prefect_server.items() if k not in ("ETC2CALM_DISTRICTS", "ETC2CALM_BUNDLED_DISTRICTS")}
    landing, districts = tmp_path / "landing", tmp_path / "my-districts"
    _run([ETC2CALM, "generate", landing, "--district", data / "hodogaya_generator.toml", "--scale", "0.3"], env)
    _run(
        [
            ETC2CALM, "district", "new", "hodogaya", "--folder", districts,
            "--roads", data / "hodogaya_osm_roads.geojson",
            "--treated", "125735160", "--control", "125735195,125735204",
            "--before", "2023-05-01..2023-05-31", "--after", "2023-11-01..2023-11-30", "--name-ja", "保土ケ谷区岩崎町",
            "--outline-from-roads", "--min-vehicles", "20",
        ],
        env,
    )  # fmt: skip
    subprocess.run(
        [PREFECT, "work-pool", "create", "etc2calm-process", "--type", "process"],
        env=env,
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )  # exists after the other tests
    for name, value in (
        ("etc2calm_warehouse", tmp_path / "wh"),
        ("etc2calm_output_root", tmp_path / "maps"),
        ("etc2calm_districts", districts),
    ):
        _run([PREFECT, "variable", "set", name, str(value), "--overwrite"], env)
    _run([PREFECT, "--no-prompt", "deploy", "--name", "monthly-all-districts"], env)
    params = {"landing": str(landing), "districts": ["hodogaya"], "resamples": 100}
    _run_deployment("monthly-pipeline/monthly-all-districts", params, env)
    wh, maps = tmp_path / "wh", tmp_path / "maps"
    assert sorted(p.name for p in maps.iterdir()) == ["2023-11", "latest"]
    for name in ("hodogaya.html", "hodogaya_report.html", "hodogaya_sheet.pdf", "hodogaya_screening.html"):
        assert (maps / "latest" / name).is_file(), name
    assert "保土ケ谷区岩崎町" in (maps / "latest" / "hodogaya.html").read_text(encoding="utf-8")
    [(min_vehicles, n_candidates)] = q(
        wh, "SELECT min_vehicles, n_candidates FROM screening_runs WHERE district = 'hodogaya'"
    )
    assert min_vehicles == 20 and n_candidates > 0
    [(n_gates,)] = q(wh, "SELECT count(*) FROM district_gates WHERE district = 'hodogaya'")
    assert n_gates >= 4
    assert not list((ROOT / "data" / "districts").glob("hodogaya*"))
