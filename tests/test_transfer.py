"""Transfer: a checkpoint trained on one graph runs on another; mismatched layouts are refused."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

import gdmpo
from gdmpo import config as cfg
from gdmpo.transfer import TransferError, transfer

FAST = {"episode_seconds": 60, "trip_period": 0.5}


def make_grid(size: int, out: Path) -> Path:
    """A grid with the shipped grids' junction layout, made by graphs/make_grid.py."""
    spec = importlib.util.spec_from_file_location("make_grid", Path(__file__).parents[1] / "graphs/make_grid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_grid(size, out)[0]


def short_run(tmp_path, base: str, overrides: dict) -> str:
    config = cfg.load(base, overrides)
    gdmpo.train(config, tmp_path / "run", progress=False)
    return str(tmp_path / "run/checkpoints/last.pt")


def test_policy_trained_on_2x2_runs_on_3x3_and_is_fine_tuned(tmp_path):
    small, large = make_grid(2, tmp_path), make_grid(3, tmp_path)
    checkpoint = short_run(tmp_path, "configs/atsc-grid5x5/dppo.yaml", {
        "env.id": "atsc", "env.num_envs": 1, "env.options": {"net_file": str(small), **FAST},
        "rollout_steps": 12, "total_env_steps": 24, "policy_net.hidden": [16], "value_net.hidden": [16]})
    report = transfer(checkpoint, net_file=str(large), env_options=FAST, episodes=1, finetune_steps=12,
                      out=tmp_path / "report")
    assert report["num_agents"] == 9 and report["target"].startswith("atsc")
    assert len(report["zero_shot"]["agent_returns"][0]) == 9 and "traffic" in report["zero_shot"]
    assert "finetuned" in report and set(report["references"]) == {"fixed-time", "max-pressure", "greedy"}
    saved = json.loads((tmp_path / "report/report.json").read_text())
    assert saved["zero_shot"]["mean_return"] == pytest.approx(report["zero_shot"]["mean_return"])
    table = (tmp_path / "report/report.md").read_text()
    assert "learned, zero-shot" in table and "max-pressure" in table and "greedy" in table and "delay" in table


def test_platoon_policy_runs_on_a_longer_platoon(tmp_path):
    checkpoint = short_run(tmp_path, "configs/cacc-catchup/dppo.yaml", {"total_env_steps": 600})
    report = transfer(checkpoint, env_options={"num_vehicles": 16}, episodes=2, out=tmp_path / "r", references=False)
    assert report["num_agents"] == 16 and len(report["zero_shot"]["agent_returns"][0]) == 16


def test_continuous_checkpoint_is_refused_on_a_discrete_task(tmp_path):
    checkpoint = short_run(tmp_path, "configs/ring-attenuation/dppo.yaml", {
        "env.num_envs": 1, "env.options": {"horizon": 10}, "rollout_steps": 10, "total_env_steps": 10})
    with pytest.raises(TransferError, match="cannot switch action kinds"):
        transfer(checkpoint, env_id="cacc-catchup", episodes=1, out=tmp_path / "r")
    # a checkpoint whose agents observed 3 features cannot read the ring's 2
    state = torch.load(checkpoint, weights_only=True)
    state["spaces"]["obs_dim"] = 3
    torch.save(state, tmp_path / "changed.pt")
    with pytest.raises(TransferError, match="3 observation features per agent; ring-attenuation gives 2"):
        transfer(tmp_path / "changed.pt", env_options={"horizon": 10}, episodes=1, out=tmp_path / "r2",
                 references=False)
