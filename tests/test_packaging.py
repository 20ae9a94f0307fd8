"""`pip install .` (not only -e) works: the installed package finds its bundled data without the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_install_finds_bundled_data(tmp_path):
    target = tmp_path / "site"
    src = tmp_path / "src"  # a copy: building never writes into the checkout
    shutil.copytree(
        ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "warehouse", "__pycache__", "*.egg-info")
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    code = (
        "import config.settings as s, maps, pathlib; from config.districts import list_districts;"
        "d = list_districts(); print(s.data_dir());"
        "print(sorted(x.key for x in d)); print(all(x.network_path.exists() and x.area_path.exists() for x in d));"
        "print(s.wards_path().exists() and all(x.synthetic['speed'] for x in d));"
        "print((pathlib.Path(maps.__file__).parent / 'vendor' / 'leaflet' / 'leaflet.js').exists())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ETC2CALM_HOME", "PYTHONPATH")}
    env["PYTHONPATH"] = str(target)  # the installed copy, ahead of the editable checkout
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    data_dir, keys, networks, wards, leaflet = out.stdout.splitlines()
    assert (
        Path(data_dir).is_relative_to(target)
        and not Path(data_dir).is_relative_to(src)
        and keys == "['nakayama', 'okurayama']"
    )
    assert networks == wards == leaflet == "True"
    # ETC2CALM_HOME points the installed package at another data folder.
    home = tmp_path / "home"
    (home / "data" / "districts").mkdir(parents=True)
    env["ETC2CALM_HOME"] = str(home)
    out = subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.districts_dir())"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert out.stdout.strip() == str(home / "data" / "districts")
