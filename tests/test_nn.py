"""Receptive field, permutation equivariance and size independence of the shared networks."""

import gymnasium as gym
import networkx as nx
import pytest
import torch

from gdmpo import graph as G
from gdmpo.config import NetworkConfig
from gdmpo.nn import CentralCritic, GraphCritic, GraphPolicy, KHopNetwork, NeighbourLayer


def test_neighbour_layer_by_hand():
    layer = NeighbourLayer(1, 1, aggr="mean")
    with torch.no_grad():
        layer.lin.weight.copy_(torch.tensor([[2.0, 10.0]]))  # [W_self | W_nbr]
        layer.lin.bias.fill_(0.5)
    x = torch.tensor([[1.0], [2.0], [4.0]])
    out = layer(x, G.chain(3).edge_index)  # node 1 sees mean(1, 4) = 2.5
    assert out.flatten().tolist() == pytest.approx([2 + 0.5 + 20, 4 + 0.5 + 25, 8 + 0.5 + 20])
    # weights saved in the earlier two-Linear layout load into the fused one
    old = {"lin_self.weight": torch.tensor([[2.0]]), "lin_self.bias": torch.tensor([0.5]),
           "lin_neighbour.weight": torch.tensor([[10.0]])}
    again = NeighbourLayer(1, 1, aggr="mean")
    again.load_state_dict(old)
    assert torch.equal(again(x, G.chain(3).edge_index), out)


@pytest.mark.parametrize("hops", [0, 1, 2, 3])
@pytest.mark.parametrize("aggr", ["mean", "sum", "max"])
def test_receptive_field_is_exactly_k_hops(hops, aggr):
    torch.manual_seed(0)
    data = G.chain(9)
    dist = G.hop_distances(data)
    net = KHopNetwork(3, 2, hops, hidden=(16, 16), aggr=aggr, residual=True, layer_norm=True)
    x = torch.randn(9, 3)
    base = net(x, data.edge_index)
    centre = 4
    for other in range(9):
        changed = x.clone()
        changed[other] += 5.0
        moved = (net(changed, data.edge_index)[centre] - base[centre]).abs().max() > 1e-6
        assert bool(moved) == bool(dist[centre, other] <= hops), (other, int(dist[centre, other]))


def test_permutation_equivariance():
    torch.manual_seed(1)
    data = G.from_networkx(nx.connected_watts_strogatz_graph(12, 4, 0.3, seed=3))
    net = KHopNetwork(4, 3, 2)
    x = torch.randn(12, 4)
    perm = torch.randperm(12)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(12)
    relabelled = inverse[data.edge_index]  # node perm[k] of the old graph is node k of the new one
    assert torch.allclose(net(x[perm], relabelled), net(x, data.edge_index)[perm], atol=1e-5)


def test_same_weights_run_on_graphs_of_any_size():
    net_cfg = NetworkConfig(hidden=[32, 32], degree_feature=True)
    policy = GraphPolicy(5, gym.spaces.Discrete(4), 1, net_cfg)
    critic = GraphCritic(5, 2, net_cfg)
    central = CentralCritic(5, net_cfg)
    for data in (G.chain(8), G.grid(4, 4), G.ring(40)):
        obs = torch.randn(data.num_nodes, 5)
        batch = torch.zeros(data.num_nodes, dtype=torch.long)
        actions, logp = policy.act(obs, data.edge_index)
        assert actions.shape == (data.num_nodes,) and logp.shape == (data.num_nodes,)
        assert critic(obs, data.edge_index, batch).shape == (data.num_nodes,)
        assert central(obs, data.edge_index, batch).shape == (data.num_nodes,)


def test_central_critic_sees_every_agent_of_its_copy_only():
    torch.manual_seed(0)
    central = CentralCritic(2, NetworkConfig(hidden=[16, 16]))
    data = G.batch_graph(G.chain(6), 2)  # two copies of a 6-chain
    obs = torch.randn(12, 2)
    base = central(obs, data.edge_index, data.batch)
    changed = obs.clone()
    changed[5] += 3.0  # far end of copy 0
    out = central(changed, data.edge_index, data.batch)
    assert (out[:6] - base[:6]).abs().min() > 1e-6  # every agent of copy 0 is affected, even node 0
    assert torch.allclose(out[6:], base[6:])  # copy 1 is not


def test_action_masks_and_continuous_bounds():
    torch.manual_seed(0)
    data = G.chain(3)
    policy = GraphPolicy(2, gym.spaces.Discrete(5), 1, NetworkConfig())
    mask = torch.tensor([[True, True, False, False, False], [True] * 5, [False, False, False, False, True]])
    for _ in range(20):
        actions, _ = policy.act(torch.randn(3, 2), data.edge_index, action_mask=mask)
        assert actions[0] in (0, 1) and actions[2] == 4
    box = gym.spaces.Box(-3.0, 3.0, (1,))
    gaussian = GraphPolicy(2, box, 1, NetworkConfig())
    obs = torch.randn(3, 2) * 100
    dist = gaussian.distribution(obs, data.edge_index)
    assert dist.mean.abs().max() <= 3.0  # means squashed into the bounds
    samples = gaussian.to_env(torch.tensor([[-10.0], [0.5], [10.0]]))
    assert samples.flatten().tolist() == [-3.0, 0.5, 3.0]
    with pytest.raises(ValueError, match="finite bounds"):
        GraphPolicy(2, gym.spaces.Box(-float("inf"), float("inf"), (1,)), 1, NetworkConfig())
