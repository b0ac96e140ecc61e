"""A wheel install works like a source checkout: shipped networks and configs are package data.

Builds the wheel from this checkout, installs it (without dependencies) into an empty folder, and runs
gdmpo from another working directory with only that folder and the dependencies on the path.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_package_and_shipped_config_folder():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "gdmpo").rglob("__init__.py")}
    folders = {f"gdmpo._data.configs.{p.name}" for p in (ROOT / "configs").iterdir() if p.is_dir()}
    assert packages | folders | {"gdmpo._data.graphs", "gdmpo._data.configs"} == listed


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    wheels, target = tmp_path_factory.mktemp("wheels"), tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT),  # as a user builds it
                    "-w", str(wheels)], check=True, capture_output=True)
    wheel = next(wheels.glob("gdmpo-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "gdmpo/_data/graphs/grid5x5.net.xml" in names and "gdmpo/_data/configs/cacc-catchup/dmpo.yaml" in names
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    return target


def run_installed(target: Path, cwd: Path, script: str) -> str:
    """``script`` in a fresh interpreter that imports gdmpo from ``target`` (checked), not this checkout."""
    guard = (f"import gdmpo, pathlib; assert pathlib.Path(gdmpo.__file__).is_relative_to({str(target)!r}), "
             "gdmpo.__file__\n")
    env = {"PYTHONPATH": str(target), "PATH": str(Path(sys.executable).parent), "OMP_NUM_THREADS": "1",
           "GDMPO_CACHE": str(cwd / "cache"), "HOME": str(cwd)}
    result = subprocess.run([sys.executable, "-c", guard + script], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_installed_wheel_makes_every_registered_environment_from_any_directory(installed_wheel, tmp_path):
    out = run_installed(installed_wheel, tmp_path, """
import gdmpo
from gdmpo.envs.sumo.atsc import shipped_network
for env_id in gdmpo.envs.list():
    options = {"episode_seconds": 60} if env_id.startswith("atsc") else {}
    if env_id == "atsc":  # any network: the shipped 3x3 grid as the wheel holds it
        options["net_file"], options["route_file"] = shipped_network("grid3x3")
    with gdmpo.make(env_id, num_envs=1, seed=0, **options) as env:
        env.reset(seed=0)
        print(env_id, env.num_agents)
""")
    made = dict(line.split() for line in out.splitlines())
    assert set(made) == {"atsc", "atsc-generalist", "atsc-grid3x3", "atsc-grid5x5", "atsc-grid10x10", "cacc-catchup",
                         "cacc-slowdown", "figure-eight", "ring-attenuation"}
    assert made["atsc"] == "9" and made["atsc-grid5x5"] == "25" and made["atsc-generalist"] == "109"


def test_the_installed_wheel_trains_a_shipped_config_by_name(installed_wheel, tmp_path):
    out = run_installed(installed_wheel, tmp_path, """
from gdmpo.cli import main
raise SystemExit(main(["train", "cacc-catchup/dppo", "--steps", "600", "--out", "run", "--no-progress",
                       "--set", "rollout_steps=600", "--set", "env.num_envs=1"]))
""")
    assert "done: 600 env steps" in out and (tmp_path / "run/metrics.csv").is_file()
