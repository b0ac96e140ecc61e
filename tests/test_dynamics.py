"""The local dynamics model: locality (κ_p hops of states, own action only) and one-step accuracy."""

import gymnasium as gym
import torch

import gdmpo
from gdmpo import graph as G
from gdmpo.config import NetworkConfig
from gdmpo.nn.dynamics import LocalDynamicsModel


def test_prediction_depends_on_khop_states_and_own_action_only():
    torch.manual_seed(0)
    data = G.chain(9)
    dist = G.hop_distances(data)
    for hops in (1, 2):
        model = LocalDynamicsModel(3, gym.spaces.Discrete(4), hops, NetworkConfig(hidden=[16, 16]))
        obs, actions = torch.randn(9, 3), torch.randint(4, (9,))
        base = model.predict(obs, actions, data.edge_index)
        for other in range(9):
            changed = obs.clone()
            changed[other] += 3.0
            moved = (model.predict(changed, actions, data.edge_index).next_obs[4] - base.next_obs[4]).abs().max()
            assert bool(moved > 1e-6) == bool(dist[4, other] <= hops)
            flipped = actions.clone()
            flipped[other] = (actions[other] + 1) % 4
            pred = model.predict(obs, flipped, data.edge_index)
            assert bool((pred.reward[4] - base.reward[4]).abs() > 1e-6) == (other == 4)


def cacc_transitions(num_envs, steps, seed):
    """Transitions of CACC Catch-up under random β-gain actions (2 or 3), which rarely collide."""
    env = gdmpo.make("cacc-catchup", num_envs=num_envs, seed=seed, train_shaping=False)
    gen = torch.Generator().manual_seed(seed)
    obs = env.reset()
    data = {"obs": [], "actions": [], "next_obs": [], "rewards": []}
    for _ in range(steps):
        actions = 2 + torch.randint(2, (num_envs, 8), generator=gen)
        next_obs, reward, _, _, info = env.step(actions)
        data["obs"].append(obs)
        data["actions"].append(actions)
        data["next_obs"].append(info["final_obs"])
        data["rewards"].append(reward)
        obs = next_obs
    return {k: torch.cat(v) for k, v in data.items()}, env.graph


def test_model_learns_cacc_one_step_dynamics():
    torch.manual_seed(0)
    train, graph = cacc_transitions(16, 150, seed=0)
    test, _ = cacc_transitions(8, 100, seed=1)
    model = LocalDynamicsModel(5, gym.spaces.Discrete(4), 1, NetworkConfig(hidden=[32, 32]))
    flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in train.items()}
    model.update_normalizers(flat["obs"], flat["next_obs"], flat["rewards"])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    samples = train["obs"].size(0)
    for step in range(600):
        idx = torch.randint(samples, (64,))
        edge_index = G.batch_edge_index(graph.edge_index, 8, 64)
        loss, _ = model.loss(train["obs"][idx].reshape(-1, 5), train["actions"][idx].reshape(-1),
                             train["next_obs"][idx].reshape(-1, 5), train["rewards"][idx].reshape(-1), edge_index)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    m = test["obs"].size(0)
    edge_index = G.batch_edge_index(graph.edge_index, 8, m)
    pred = model.predict(test["obs"].reshape(-1, 5), test["actions"].reshape(-1), edge_index)
    target = test["next_obs"].reshape(-1, 5)
    model_mse = (pred.next_obs - target).pow(2).mean()
    unchanged_mse = (test["obs"].reshape(-1, 5) - target).pow(2).mean()
    assert model_mse < 0.25 * unchanged_mse, (float(model_mse), float(unchanged_mse))
    rewards = test["rewards"].reshape(-1)
    reward_mse = (pred.reward - rewards).pow(2).mean()
    assert reward_mse < 0.1 * rewards.var(), (float(reward_mse), float(rewards.var()))


def test_continuous_actions_are_scaled_and_unbounded_spaces_refused():
    import pytest

    model = LocalDynamicsModel(2, gym.spaces.Box(-3.0, 1.0, (1,)), 1, NetworkConfig(hidden=[8, 8]))
    assert model.encode_action(torch.tensor([[-3.0], [-1.0], [1.0]])).flatten().tolist() == [-1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="finite bounds"):
        LocalDynamicsModel(2, gym.spaces.Box(-float("inf"), 1.0, (1,)), 1, NetworkConfig())
