"""IC3Net: gated messages over the graph, recurrent state through rollouts, PPO on the joint action."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch
from toy_envs import Drift

import gdmpo
from gdmpo import config as cfg
import gdmpo.algos
from gdmpo.algos import build_agent, collect, prepare_env
from gdmpo.algos.ic3net import IC3NetPolicy
from gdmpo.config import NetworkConfig
from gdmpo.graph import chain


def augmented(obs_dim: int, hidden: int, nodes: int, gates: list[float], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    rows = torch.randn(nodes, obs_dim + 2 * hidden, generator=g)
    return torch.cat([rows, torch.tensor(gates)[:, None]], dim=1)


def test_a_closed_gate_sends_nothing_and_messages_travel_one_hop():
    torch.manual_seed(0)
    policy = IC3NetPolicy(3, gym.spaces.Discrete(2), 8, NetworkConfig(hidden=[16]))
    edge_index = chain(4).edge_index
    d, width = 3, 8
    closed = augmented(d, width, 4, [1.0, 0.0, 1.0, 1.0])
    changed = closed.clone()
    changed[1, d:d + width] += 5.0  # agent 1's hidden state differs, but its gate is closed
    h_closed, _ = policy.recur(closed, edge_index)
    h_changed, _ = policy.recur(changed, edge_index)
    assert torch.allclose(h_closed[[0, 2]], h_changed[[0, 2]])  # neighbours of 1 hear nothing
    assert not torch.allclose(h_closed[1], h_changed[1])  # its own state still matters
    opened = closed.clone()
    opened[:, -1] = 1.0
    opened_changed = opened.clone()
    opened_changed[1, d:d + width] += 5.0
    h_open, _ = policy.recur(opened, edge_index)
    h_open_changed, _ = policy.recur(opened_changed, edge_index)
    assert not torch.allclose(h_open[0], h_open_changed[0]) and not torch.allclose(h_open[2], h_open_changed[2])
    assert torch.allclose(h_open[3], h_open_changed[3])  # two hops away: nothing within one step


def ic3net_config(**extra) -> cfg.RunConfig:
    return cfg.from_dict({"algo": "ic3net", "ic3net": {"hidden": 8}, "policy_net": {"hidden": [16]},
                          "value_net": {"hidden": [16]}, "ppo": {"value_hops": 1}, **extra})


def test_recurrent_state_is_carried_then_reset_at_episode_ends():
    config = ic3net_config()
    env = prepare_env(config, Drift(num_envs=2, horizon=3))
    agent = build_agent(config, env)
    assert env.obs_dim == 1 + 2 * 8 + 1
    obs = env.reset(seed=0)
    assert torch.all(obs[..., 1:] == 0)  # fresh episodes start with empty memory
    rollout, obs, log = collect(env, agent, obs, 3)
    memory = rollout.obs[..., 1:]
    assert torch.all(memory[0] == 0) and memory[1].abs().sum() > 0 and memory[2].abs().sum() > 0
    assert torch.all(rollout.dones[2]) and torch.all(obs[..., 1:] == 0)  # the time limit cleared it
    assert rollout.next_obs[2, ..., 1:].abs().sum() > 0  # the state reached is kept for bootstrapping
    gates = rollout.actions[..., -1]
    assert torch.equal(memory[1, ..., -1], gates[0])  # the gate chosen at t is broadcast at t + 1
    assert 0.0 <= env.pop_comm_fraction() <= 1.0
    # PPO on the joint (action, gate): the ratio starts at exactly 1
    fresh = agent.reevaluate(rollout)
    assert torch.allclose(fresh.log_probs, rollout.log_probs, atol=1e-5)


def test_ic3net_learns_a_drift_task_and_logs_its_communication(tmp_path):
    """Each agent's state moves by its action (in [-1, 1]) and is its reward: a random policy earns
    about the starting states' sum, pushing every state up earns far more (see tests/toy_envs.py)."""
    config = ic3net_config(total_env_steps=0, rollout_steps=16,
                           ppo={"value_hops": 1, "lr_policy": 3e-3, "lr_value": 3e-3, "epochs": 4, "target_kl": None})
    env = prepare_env(config, Drift(num_envs=8, horizon=8))
    learner = gdmpo.algos.build_algorithm(config, env)
    obs = env.reset(seed=0)
    returns, fractions = [], []
    for _ in range(25):
        result = learner.iteration(env, obs)
        obs = result.obs
        returns.append(sum(result.episodes.returns) / len(result.episodes.returns))
        fractions.append(result.metrics["comm_fraction"])
    assert all(0.0 <= f <= 1.0 for f in fractions)
    first, last = sum(returns[:3]) / 3, sum(returns[-3:]) / 3
    assert last > first + 20, (first, last)  # the maximum gain over random is about 3 x 36 = 108


@pytest.mark.slow  # learning measured over many updates: the slow set
def test_ic3net_improves_over_random_on_catchup(tmp_path):
    """The shipped Catch-up config with a 32-wide LSTM (for CI time) stops colliding within 24k steps;
    random play collides in almost every episode (about -3e6, see test_learning.py)."""
    config = cfg.load("configs/cacc-catchup/ic3net.yaml", {"ic3net.hidden": 32})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these small layers run ~1.5x faster on one thread than on two
    try:
        gdmpo.train(config, tmp_path / "run", total_env_steps=24_000, progress=False)
    finally:
        torch.set_num_threads(threads)
    header = (tmp_path / "run/metrics.csv").read_text().splitlines()[0].split(",")
    assert "comm_fraction" in header
    trained = gdmpo.evaluate(tmp_path / "run/checkpoints/last.pt", episodes=16, seed=1,
                             env_options={"train_shaping": True})
    assert trained["mean_return"] > -1.0e6, trained["mean_return"]


def test_ic3net_refuses_an_unprepared_environment():
    with pytest.raises(TypeError, match="prepare_env"):
        build_agent(ic3net_config(), Drift())
