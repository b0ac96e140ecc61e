"""Fine-tuning (``init_from``): a fresh run starts from another run's weights, or says why it cannot."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import gdmpo
from gdmpo import config as cfg
from gdmpo.checkpoints import LayoutError, check_fits, load_checkpoint
from gdmpo.envs.base import action_layout
from gdmpo.cli import main
from gdmpo.trainer import Trainer

SMALL = {"env.num_envs": 2, "rollout_steps": 20, "ppo.epochs": 1, "policy_net.hidden": [8], "value_net.hidden": [8],
         "model.net.hidden": [8], "dmpo.warmup_env_steps": 20, "dmpo.warmup_model_steps": 10,
         "dmpo.model_steps": 5, "dmpo.rollouts": 4, "dmpo.horizon": 3}


def run(tmp_path, name: str, steps: int = 40, **extra) -> str:
    config = cfg.from_dict(cfg.apply_overrides({}, {**SMALL, **extra}))
    gdmpo.train(config, tmp_path / name, total_env_steps=steps, progress=False)
    return str(tmp_path / name / "checkpoints/last.pt")


def same(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_dmpo_starts_from_a_dppo_run_with_its_policy_and_critic_and_a_fresh_model(tmp_path):
    source = run(tmp_path, "dppo")
    config = cfg.from_dict(cfg.apply_overrides({}, {**SMALL, "algo": "dmpo", "seed": 3, "init_from": source}))
    fresh = Trainer(config, tmp_path / "tuned")
    try:
        assert fresh.initialised_from == ["policy", "critic"]  # a DPPO run has no model to give
        assert same(fresh.agent.state_dict(), load_checkpoint(source)["agent"])
    finally:
        fresh.close()


def test_dmpo_from_dmpo_takes_the_model_too_and_resuming_does_not_reload(tmp_path):
    source = run(tmp_path, "dmpo", steps=60, algo="dmpo")
    saved = load_checkpoint(source)
    config = cfg.from_dict(cfg.apply_overrides({}, {**SMALL, "algo": "dmpo", "init_from": source}))
    tuned = Trainer(config, tmp_path / "tuned")
    try:
        assert tuned.initialised_from == ["policy", "critic", "dynamics model"]
        assert same(tuned.algorithm.model.state_dict(), saved["algorithm"]["model"])
        assert tuned.algorithm.env_steps == 0 and len(tuned.algorithm.buffer) == 0  # its data stays behind
        tuned.train(20, progress=False)
    finally:
        tuned.close()
    resumed = Trainer.resume(tmp_path / "tuned")  # continues its own weights, not the source's again
    try:
        assert resumed.initialised_from == []
        assert not same(resumed.agent.state_dict(), saved["agent"])
    finally:
        resumed.close()


def test_other_networks_are_refused_by_setting_before_any_weight_loads(tmp_path):
    source = run(tmp_path, "small")
    config = cfg.from_dict(cfg.apply_overrides({}, {**SMALL, "policy_net.hidden": [16], "init_from": source}))
    with pytest.raises(ValueError, match=r"policy_net.hidden: \[8\] there, \[16\] here"):
        Trainer(config, tmp_path / "other")
    assert not (tmp_path / "other").exists()  # a failed start leaves nothing behind
    config = cfg.from_dict(cfg.apply_overrides({}, {**SMALL, "init_from": str(tmp_path / "missing.pt")}))
    with pytest.raises(FileNotFoundError, match="init_from: .*missing.pt: no such checkpoint"):
        Trainer(config, tmp_path / "missing")


def test_weights_that_do_not_fit_the_environment_are_refused_naming_what_differs(tmp_path):
    source = run(tmp_path, "four-gains")  # CACC's four (alpha, beta) pairs: Discrete(4)
    two_gains = {**SMALL, "init_from": source, "env.options": {"gains": [[0.0, 0.0], [0.5, 0.5]]}}
    with pytest.raises(LayoutError, match=r"init_from: .*four-gains.*Discrete\(4\).*Discrete\(2\)"):
        Trainer(cfg.from_dict(cfg.apply_overrides({}, two_gains)), tmp_path / "two-gains")
    assert not (tmp_path / "two-gains").exists()


def test_cli_init_from_says_what_it_took(tmp_path, capsys):
    source = run(tmp_path, "dppo")
    sets = [f"--set={key}={value}" for key, value in SMALL.items()]
    assert main(["train", "--init-from", source, "--steps", "20", "--out", str(tmp_path / "cli"), "--no-progress",
                 *sets]) == 0
    assert f"fine-tuning from {source}: policy, critic" in capsys.readouterr().out
    assert cfg.load(tmp_path / "cli/config.yaml").init_from == source


def test_checkpoints_store_actions_as_data_and_older_ones_still_fit():
    config = {"env": {"id": "ring-attenuation"}, "policy_net": {}}
    box = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
    assert action_layout(box) == {"kind": "continuous", "shape": [1], "low": [-1.0], "high": [1.0]}
    state = {"config": config, "spaces": {"obs_dim": 2, "action": action_layout(box), "lane_features": None}}
    check_fits(state, 2, box, "a ring")
    with pytest.raises(LayoutError, match=r"action space Box\(\[-1.0\], \[1.0\], \(1,\)\); a figure eight has Box"):
        check_fits(state, 2, gym.spaces.Box(-3.0, 3.0, (1,), dtype=np.float32), "a figure eight")
    with pytest.raises(LayoutError, match="cannot switch action kinds"):
        check_fits(state, 2, gym.spaces.Discrete(4), "a platoon")
    # written before the layout was data: the space's repr
    older = {"config": config, "spaces": {"obs_dim": 5, "action_space": "Discrete(4)"}}
    check_fits(older, 5, gym.spaces.Discrete(4), "a platoon")
    with pytest.raises(LayoutError, match=r"Discrete\(4\); a grid has Discrete\(3\)"):
        check_fits(older, 5, gym.spaces.Discrete(3), "a grid")
    check_fits({"config": config, "spaces": {"obs_dim": 2, "action_space": repr(box)}}, 2, box, "a ring")
