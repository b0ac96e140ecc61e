"""IA2C: spatially discounted rewards, one plain actor-critic step per batch, learning on a toy task and Catch-up."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from toy_envs import Drift

import gdmpo
from gdmpo import config as cfg
from gdmpo.algos import IA2C, build_agent, build_algorithm, collect, spatial_discount
from gdmpo.envs.controllers import RandomPolicy
from gdmpo.evaluation import run_episodes
from gdmpo.graph import chain, from_edges
from gdmpo.transfer import transfer

ENVS = ("cacc-catchup", "cacc-slowdown", "ring-attenuation", "figure-eight", "atsc-grid5x5")


def test_spatial_discount_by_hand():
    # chain 0-1-2-3 with alpha = 0.5: W[i, j] = 0.5^|i - j|
    w = spatial_discount(chain(4).edge_index, 4, 0.5)
    assert w[0].tolist() == [1.0, 0.5, 0.25, 0.125]
    assert w[2].tolist() == [0.25, 0.5, 1.0, 0.5]
    assert torch.equal(spatial_discount(chain(4).edge_index, 4, 0.0), torch.eye(4))  # fully independent
    # two components {0, 1} and {2}: the unreachable agent never contributes, even with alpha = 1
    two = from_edges([(0, 1)], num_nodes=3)
    assert spatial_discount(two.edge_index, 3, 1.0).tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    with pytest.raises(ValueError, match="spatial_discount"):
        spatial_discount(chain(4).edge_index, 4, 1.5)


def ia2c_config(**extra) -> cfg.RunConfig:
    base = {"algo": "ia2c", "policy_net": {"hidden": [16]}, "value_net": {"hidden": [16]},
            "ppo": {"value_hops": 1, "reward_scale": 1.0, "entropy_coef": 0.01, "max_grad_norm": 1e9,
                    "normalize_advantage": False, "value_norm": False},
            "ia2c": {"spatial_discount": 0.5}}
    return cfg.from_dict(cfg.apply_overrides(base, extra))


def test_one_update_is_the_actor_critic_gradient_on_discounted_rewards():
    """The policy gradient of an IA2C update equals −∇[mean(A_i log π(a_i)) + c_H mean(H)], with A_i
    from each agent's own GAE on r̃ = W r: no clipping, no extended advantage, one step."""
    torch.manual_seed(0)
    config = ia2c_config()
    env = Drift(num_envs=4, horizon=5)
    learner = build_algorithm(config, env)
    assert isinstance(learner, IA2C)
    agent = learner.agent
    assert agent.config.epochs == 1 and agent.config.minibatches == 1 and agent.config.target_kl is None
    rollout, _, _ = collect(env, agent, env.reset(seed=0), 5)
    w = spatial_discount(env.graph.edge_index, 3, 0.5)
    from dataclasses import replace

    discounted = replace(rollout, rewards=torch.einsum("ij,tbj->tbi", w, rollout.rewards))
    own_adv, _ = agent.advantages(discounted)  # advantage_hops = 0: the extended sum is the identity
    t, b, n = rollout.rewards.shape
    edge_index, _ = agent.graph_of(t * b)
    dist = agent.policy.distribution(rollout.obs.reshape(t * b * n, 1), edge_index)
    logp = agent.policy.log_prob(dist, rollout.actions.reshape(t * b * n, 1))
    loss = -(own_adv.reshape(-1) * logp).mean() - 0.01 * agent.policy.entropy(dist).mean()
    expected = torch.autograd.grad(loss, list(agent.policy.parameters()))
    captured = []
    agent.policy_optimizer.step = lambda: captured.append([p.grad.clone() for p in agent.policy.parameters()])
    learner.agent.update(discounted)
    assert len(captured) == 1  # one gradient step per batch
    for got, want in zip(captured[0], expected):
        assert torch.allclose(got, want, atol=1e-6)


@pytest.mark.slow  # learning measured over many updates: the slow set
def test_ia2c_learns_the_drift_task():
    """Drift (tests/toy_envs.py): random play earns about 15 per episode, always +1 about 180."""
    torch.manual_seed(0)
    config = ia2c_config(**{"ppo.lr_policy": 1e-2, "ppo.lr_value": 1e-2, "ppo.normalize_advantage": True})
    env = Drift(num_envs=8, horizon=10)
    learner = build_algorithm(config, env)
    obs = env.reset(seed=0)
    for _ in range(150):
        obs = learner.iteration(env, obs).obs
    agent = learner.agent
    trained = run_episodes(env, lambda o: agent.policy.to_env(agent.act(o, deterministic=True)[0]), 16,
                           seed=1)["mean_return"]
    random = run_episodes(env, lambda o: torch.rand(o.shape[0], 3, 1) * 2 - 1, 16, seed=1)["mean_return"]
    assert trained > random + 60, (trained, random)


@pytest.mark.slow  # learning measured over many updates: the slow set
def test_ia2c_improves_over_random_on_catchup(tmp_path):
    """The shipped config stops colliding within 4e4 real steps; random play collides (about -3e6)."""
    config = cfg.load("configs/cacc-catchup/ia2c.yaml")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gdmpo.train(config, tmp_path / "run", total_env_steps=40_000, progress=False)
    finally:
        torch.set_num_threads(threads)
    trained = gdmpo.evaluate(tmp_path / "run/checkpoints/last.pt", episodes=16, seed=1,
                             env_options={"train_shaping": True})
    env = gdmpo.make("cacc-catchup", num_envs=8, seed=1)
    random = run_episodes(env, RandomPolicy(env, seed=1), 16, seed=1)
    assert trained["mean_return"] > 0.2 * random["mean_return"], (trained["mean_return"], random["mean_return"])
    # the same checkpoint runs on a longer platoon (transfer), like every other algorithm's
    report = transfer(tmp_path / "run/checkpoints/last.pt", env_options={"num_vehicles": 12}, episodes=2,
                      out=tmp_path / "transfer")
    assert report["num_agents"] == 12


@pytest.mark.parametrize("env_id", ENVS)
def test_every_environment_has_an_ia2c_config(env_id):
    config = cfg.load(Path("configs") / env_id / "ia2c.yaml")
    assert config.algo == "ia2c" and config.env.id == env_id
    assert 0.0 <= config.ia2c.spatial_discount <= 1.0


def test_ia2c_with_a_central_critic_is_refused():
    with pytest.raises(ValueError, match="local"):
        build_agent(ia2c_config(**{"ppo.critic": "central"}), Drift())
