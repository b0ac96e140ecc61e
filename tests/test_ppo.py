"""GAE, extended advantages, bootstrapping and the PPO update, against values worked out by hand."""

import dataclasses
import math

import pytest
import torch
from toy_envs import Drift

import gdmpo
from gdmpo import graph as G
from gdmpo.algos import build_agent, collect, extended_advantage, gae
from gdmpo.config import RunConfig, from_dict


def test_gae_by_hand():
    gamma, lam = 0.9, 0.5
    rewards = torch.tensor([1.0, 2.0, 3.0]).reshape(3, 1, 1)
    values = torch.full((3, 1, 1), 0.5)
    next_values = torch.tensor([0.5, 0.5, 0.0]).reshape(3, 1, 1)  # terminated at t = 2
    dones = torch.tensor([False, False, True]).reshape(3, 1)
    adv = gae(rewards, values, next_values, dones, gamma, lam).flatten().tolist()
    # δ = [1 + .45 - .5, 2 + .45 - .5, 3 - .5] = [.95, 1.95, 2.5]; A2 = 2.5, A1 = 1.95 + .45 A2, A0 = .95 + .45 A1
    assert adv == pytest.approx([0.95 + 0.45 * 3.075, 3.075, 2.5])
    # An episode ends at t = 1 (truncated, bootstrapped with 0.7): no credit flows back across it.
    next_values = torch.tensor([0.5, 0.7, 0.0]).reshape(3, 1, 1)
    dones = torch.tensor([False, True, True]).reshape(3, 1)
    adv = gae(rewards, values, next_values, dones, gamma, lam).flatten().tolist()
    assert adv == pytest.approx([0.95 + 0.45 * 2.13, 2 + 0.63 - 0.5, 2.5])


def test_extended_advantage_sums_khop_neighbourhood():
    data = G.chain(4)
    adv = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 0.0, 0.0]])
    one_hop = G.khop_adjacency(data.edge_index, 4, 1)
    assert extended_advantage(adv, one_hop).tolist() == [[3, 6, 9, 7], [1, 1, 0, 0]]
    two_hop = G.khop_adjacency(data.edge_index, 4, 2)
    assert extended_advantage(adv, two_hop).tolist() == [[6, 10, 10, 9], [1, 1, 1, 0]]  # node 2 reaches all four
    assert extended_advantage(adv, None).tolist() == [[10] * 4, [1] * 4]
    batched = extended_advantage(adv.reshape(2, 1, 4).expand(2, 3, 4), one_hop)
    assert batched.shape == (2, 3, 4) and batched[0, 2].tolist() == [3, 6, 9, 7]


def drift_agent(env):
    config = from_dict({"env": {"id": "cacc-catchup"}, "ppo": {"value_norm": False, "reward_scale": 1.0}})
    return build_agent(config, env)


def test_collect_bootstraps_truncation_but_not_termination():
    torch.manual_seed(0)
    env = Drift(num_envs=4, horizon=3)
    agent = drift_agent(env)
    obs = env.reset()
    rollout, _, log = collect(env, agent, obs, 7)
    assert rollout.obs.shape == (7, 4, 3, 1) and rollout.rewards.shape == (7, 4, 3)
    assert rollout.dones[:, 0].tolist() == [False, False, True, False, False, True, False]
    assert len(log.returns) == 8 and len(log.lengths) == 8 and set(log.lengths) == {3}
    # At the time limit the successor value is V(final obs), not V(first obs of the next episode).
    final_obs = rollout.obs[2] + agent.policy.to_env(rollout.actions[2])
    assert torch.allclose(rollout.next_values[2], agent.value(final_obs), atol=1e-6)
    assert not torch.allclose(rollout.next_values[2], rollout.values[3])
    assert torch.allclose(rollout.next_values[0], rollout.values[1])
    # Termination: no bootstrap at all.
    env = Drift(num_envs=64, horizon=50, terminate_above=1.2)
    rollout, _, _ = collect(env, agent, env.reset(), 10)
    terminated_steps = rollout.dones & (rollout.obs + agent.policy.to_env(rollout.actions) > 1.2).flatten(2).any(2)
    assert terminated_steps.any()
    assert torch.all(rollout.next_values[terminated_steps] == 0)


def test_ppo_update_moves_policy_towards_advantageous_actions():
    torch.manual_seed(0)
    env = gdmpo.make("cacc-catchup", num_envs=4, seed=0)
    config = RunConfig()
    agent = build_agent(config, env)
    rollout, _, _ = collect(env, agent, env.reset(), 20)
    # Rewrite the rewards: action 3 is worth +1, every other action -1 (per agent, immediate).
    rollout.rewards = torch.where(rollout.actions == 3, 1.0, -1.0) / config.ppo.reward_scale
    before = agent.policy.distribution(rollout.obs[0].reshape(-1, 5), agent.graph_of(4)[0]).probs[:, 3].mean()
    stats = agent.update(rollout)
    after = agent.policy.distribution(rollout.obs[0].reshape(-1, 5), agent.graph_of(4)[0]).probs[:, 3].mean()
    assert after > before + 0.02
    assert stats.policy_epochs >= 1 and stats.value_loss > 0


def test_kl_early_stop_halts_policy_epochs():
    torch.manual_seed(0)
    env = gdmpo.make("cacc-catchup", num_envs=4, seed=0)
    config = from_dict({"ppo": {"lr_policy": 0.05, "target_kl": 0.0001, "epochs": 10}})
    agent = build_agent(config, env)
    rollout, _, _ = collect(env, agent, env.reset(), 20)
    stats = agent.update(rollout)
    assert stats.policy_epochs < 10


def test_cppo_and_dppo_are_one_code_path():
    env = gdmpo.make("cacc-catchup", num_envs=2, seed=0)
    dppo = build_agent(from_dict({"algo": "dppo"}), env)
    cppo = build_agent(from_dict({"algo": "cppo"}), env)
    assert type(dppo) is type(cppo)
    assert type(dppo.critic).__name__ == "GraphCritic" and type(cppo.critic).__name__ == "CentralCritic"
    assert dppo.reach is not None and cppo.reach is None  # κ_v-hop vs team advantage


@pytest.mark.parametrize("continuous", [False, True])
def test_first_minibatch_ratio_is_one_for_both_action_kinds(continuous):
    """Log-probabilities recomputed in the update match those at collection (ratio 1, KL 0, no clipping)."""
    torch.manual_seed(0)
    env = Drift(num_envs=4, horizon=5) if continuous else gdmpo.make("cacc-catchup", num_envs=4, seed=0)
    agent = build_agent(from_dict({"ppo": {"epochs": 1, "minibatches": 1, "lr_policy": 0.0}}), env)
    rollout, _, _ = collect(env, agent, env.reset(), 6)
    stats = agent.update(rollout)
    assert abs(stats.approx_kl) < 1e-6 and stats.clip_fraction == 0.0
    same = agent.reevaluate(rollout)
    assert torch.allclose(same.log_probs, rollout.log_probs, atol=1e-5)


def test_bfloat16_precision_keeps_log_probs_values_and_weights_float32(monkeypatch):
    from gdmpo import config as cfg
    from gdmpo import precision

    config = cfg.load("configs/cacc-catchup/dppo.yaml", {"ppo.precision": "bfloat16", "ppo.epochs": 1})
    env = gdmpo.make("cacc-catchup", num_envs=2, seed=0)
    agent = build_agent(config, env)
    rollout, _, _ = collect(env, agent, env.reset(), 5)
    assert rollout.log_probs.dtype == torch.float32 and rollout.values.dtype == torch.float32
    before = [p.detach().clone() for p in agent.policy.parameters()]
    agent.update(rollout)
    assert all(p.dtype == torch.float32 for p in agent.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.policy.parameters()))
    # the same weights in float32 give log-probabilities within bfloat16's resolution
    exact = dataclasses.replace(agent.config, precision="float32")
    with_bf16 = agent.reevaluate(rollout).log_probs
    agent.config = exact
    assert torch.allclose(agent.reevaluate(rollout).log_probs, with_bf16, atol=0.05)
    monkeypatch.setattr(precision, "native_bfloat16", lambda device_type="cpu": False)
    assert precision.resolve("auto") is None and precision.resolve("bfloat16") is torch.bfloat16
    with pytest.raises(ValueError, match="precision must be one of float32, bfloat16, auto"):
        precision.resolve("half")


def test_reward_clip_bounds_learning_rewards_after_scaling():
    from gdmpo import config as cfg
    from gdmpo.algos import Rollout

    config = cfg.load("configs/cacc-catchup/dppo.yaml", {"ppo.reward_clip": 100.0, "ppo.gae_lambda": 1.0})
    env = gdmpo.make("cacc-catchup", num_envs=1, seed=0)
    agent = build_agent(config, env)
    n = env.num_agents
    rewards = torch.zeros(1, 1, n)
    rewards[0, 0, 0], rewards[0, 0, 1] = -6e5, -250.0  # a collision's whole charge; an ordinary step
    zeros = torch.zeros(1, 1, n)
    rollout = Rollout(torch.zeros(1, 1, n, env.obs_dim), torch.zeros(1, 1, n, dtype=torch.long), zeros, rewards,
                      zeros, zeros, torch.ones(1, 1, dtype=torch.bool))
    _, returns = agent.advantages(rollout)
    assert returns[0, 0, 0].item() == -100.0    # -6e5 x 0.01 = -6000, clipped to -100
    assert returns[0, 0, 1].item() == -2.5      # -250 x 0.01, inside the clip


@pytest.mark.parametrize("kl_stop", [False, True])
def test_policy_and_critic_loops_side_by_side_give_the_same_update_as_in_turn(monkeypatch, kl_stop):
    import gdmpo.threads as threads

    torch.manual_seed(0)
    env = gdmpo.make("cacc-catchup", num_envs=4, seed=0)
    config = from_dict({"ppo": {"lr_policy": 0.05 if kl_stop else 3e-4, "epochs": 4}})
    agent = build_agent(config, env)
    rollout, _, _ = collect(env, agent, env.reset(), 20)
    start = {k: v.clone() for k, v in agent.state_dict().items()}
    results = []
    for configured in (1, 2):  # one thread: in turn; two: the critic's loop on a helper thread
        monkeypatch.setattr(threads, "_configured", configured)
        fresh = build_agent(config, env)  # fresh optimisers, the same weights and return statistics
        fresh.load_state_dict(start)
        stats = fresh.update(rollout, torch.Generator().manual_seed(3))
        results.append((stats, fresh.state_dict()))
    (stats_1, weights_1), (stats_2, weights_2) = results
    assert stats_1 == stats_2 and (stats_1.policy_epochs < 4) == kl_stop
    assert all(torch.equal(weights_1[k], weights_2[k]) for k in weights_1)
    assert not all(torch.equal(start[k], weights_1[k]) for k in start)


def test_a_critic_that_shares_the_policys_weights_is_updated_in_turn():
    from gdmpo.algos.ppo import PPO
    from gdmpo.nn import GraphCritic

    env = gdmpo.make("cacc-catchup", num_envs=2, seed=0)
    agent = build_agent(RunConfig(), env)
    assert agent.loops_side_by_side
    critic = GraphCritic(env.obs_dim, 1, RunConfig().value_net)
    critic.net.layers[0] = agent.policy.net.layers[0]  # a shared first layer: both loops would train it
    shared = PPO(agent.policy, critic, agent.config, env.graph.edge_index, env.num_agents, 1)
    assert not shared.loops_side_by_side


def test_widening_the_policy_reaches_the_entropy_asked_for_and_keeps_each_states_best_action():
    """Logits [2 ln 3, 0, 0, 0] in every state: divided by 2 they give probabilities (1/2, 1/6, 1/6, 1/6),
    entropy ln(12) / 2, which is ln(12) / ln(16) of the largest, ln 4. Asked for that fraction, the
    temperature is 2; a policy already that wide is left as it is (temperature 1)."""
    env = gdmpo.make("cacc-catchup", num_envs=2, seed=0)
    agent = build_agent(from_dict({"algo": "dppo"}), env)
    out = agent.policy.net.out
    obs = torch.randn(5, 2, env.num_agents, env.obs_dim)
    fraction = math.log(12) / math.log(16)
    with torch.no_grad():
        out.weight.zero_()
        out.bias.copy_(torch.tensor([2 * math.log(3), 0.0, 0.0, 0.0]))
    assert agent.widen_policy(obs, fraction) == pytest.approx(2.0, rel=1e-5)  # float32 entropies
    probs = agent.policy.distribution(obs.reshape(-1, env.obs_dim), agent.graph_of(10)[0]).probs
    assert torch.allclose(probs, torch.tensor([1 / 2, 1 / 6, 1 / 6, 1 / 6]).expand_as(probs), atol=1e-6)
    # a trained-looking policy: each state's most likely action is the same after widening
    torch.manual_seed(0)
    with torch.no_grad():
        out.weight.normal_(0.0, 3.0)
    edge_index = agent.graph_of(10)[0]
    before = agent.policy.outputs(obs.reshape(-1, env.obs_dim), edge_index).argmax(-1)
    temperature = agent.widen_policy(obs, 0.8)
    dist = agent.policy.distribution(obs.reshape(-1, env.obs_dim), edge_index)
    assert temperature > 1 and dist.entropy().mean().item() == pytest.approx(0.8 * math.log(4), rel=1e-6)
    assert torch.equal(dist.probs.argmax(-1), before)
    weights = out.weight.clone()
    assert agent.widen_policy(obs, 0.5) == 1.0 and torch.equal(out.weight, weights)  # already wider
