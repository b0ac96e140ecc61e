"""Signal networks of any shape: movement sets, phase competition, transfer across phase and lane counts."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import pytest
import torch
from torch import nn

import gdmpo
from gdmpo import config as cfg
from gdmpo.config import NetworkConfig
from gdmpo.graph import batch_edge_index, from_edges
from gdmpo.envs.sumo.networks import irregular_network
from gdmpo.graph.sumo import from_sumo
from gdmpo.nn.signals import MovementCritic, MovementEncoder, PhaseCompetitionPolicy, SignalStructure
from gdmpo.transfer import TransferError, transfer

FAST = {"episode_seconds": 60, "trip_period": 0.5}


def two_lights() -> SimpleNamespace:
    """Light 0: lanes a, b; links a→c, b→x, a→y; phases GrG, rGr. Light 1: lane c; link c→z; phase G.

    Link a→c ends on c, which light 1 observes: that movement sees light 1's lane c downstream.
    """
    return SimpleNamespace(lanes=[["a", "b"], ["c"]], links=[[("a", "c"), ("b", "x"), ("a", "y")], [("c", "z")]],
                           phases=[["GrG", "rGr"], ["G"]])


def test_structure_maps_movements_to_lanes_downstream_lanes_and_phases():
    s = SignalStructure.from_graph(two_lights(), lanes=2)
    assert s.in_lane.tolist() == [[0, 1, 0], [0, 0, 0]]
    assert s.out_node.tolist() == [[1, -1, -1], [-1, -1, -1]] and s.out_lane.tolist() == [[0, -1, -1], [-1, -1, -1]]
    assert s.movement_mask.tolist() == [[True, True, True], [True, False, False]]
    assert s.phase_movements.tolist() == [[[1, 0, 1], [0, 1, 0]], [[1, 0, 0], [0, 0, 0]]]


def test_movement_features_read_own_lane_and_downstream_lane_in_each_copy():
    encoder = MovementEncoder(lane_features=2, width=4, activation="tanh")
    encoder.bind(SignalStructure.from_graph(two_lights(), lanes=2))
    captured = {}
    encoder.embed.register_forward_hook(lambda module, inputs, out: captured.update(x=inputs[0]))
    # obs feature-major [wave lane0, wave lane1, wait lane0, wait lane1]; 2 copies x 2 lights
    obs = torch.tensor([[1., 2., 10., 20.], [3., 0., 30., 0.], [5., 6., 50., 60.], [7., 0., 70., 0.]])
    movements, summary = encoder(obs)
    x = captured["x"]  # only real movements are embedded: per copy light 0's three, then light 1's one
    assert x.shape == (8, 5) and movements.shape == (8, 4) and summary.shape == (4, 4)
    assert x[0].tolist() == [1, 10, 3, 30, 1]   # a→c: lane a of light 0, lane c of light 1, observed
    assert x[1].tolist() == [2, 20, 0, 0, 0]    # b→x: x is nobody's lane
    assert x[4].tolist() == [5, 50, 7, 70, 1]   # second copy reads the second copy's light 1
    assert x[7].tolist() == [7, 70, 0, 0, 0]
    assert torch.allclose(summary[1], movements[3])  # light 1 has one real movement
    assert torch.allclose(summary[2], movements[4:7].mean(0))  # light 0 of the second copy: three


@pytest.mark.parametrize("pooling", ["mean", "sum"])
def test_phases_pool_the_movements_they_serve(pooling):
    policy = PhaseCompetitionPolicy(1, gym.spaces.Discrete(2), hops=1, net=NetworkConfig(hidden=[4], phase_pooling=pooling))
    policy.bind(SignalStructure.from_graph(two_lights(), lanes=2))
    e, _ = policy.movements(torch.rand(4, 2))  # two copies; per copy a→c, b→x, a→y of light 0, c→z of light 1
    served = policy.serve(e, copies=2)  # per copy: light 0's phases GrG and rGr, then light 1's one phase
    # light 0: phase GrG serves movements 0 and 2, rGr serves 1 (mean green count 1.5); light 1: one phase
    for copy in range(2):
        m = e[4 * copy: 4 * copy + 4]
        if pooling == "mean":
            expected = [(m[0] + m[2]) / 2, m[1], m[3]]
        else:  # totals over the junction's mean count: phases of one junction compare sums
            expected = [(m[0] + m[2]) / 1.5, m[1] / 1.5, m[3]]
        for got, want in zip(served[3 * copy: 3 * copy + 3], expected):
            assert torch.allclose(got, want, atol=1e-6)


def test_phase_scores_are_the_scorer_on_pooled_movements_and_context_zero_on_padded_phases():
    torch.manual_seed(0)
    policy = PhaseCompetitionPolicy(1, gym.spaces.Discrete(2), hops=1, net=NetworkConfig(hidden=[4]))
    policy.bind(SignalStructure.from_graph(two_lights(), lanes=2))
    nn.init.normal_(policy.score[-1].weight)  # scores far from 0, so a wrong row would show
    obs, edges = torch.rand(4, 2), from_edges([(0, 1), (2, 3)], 4).edge_index  # two copies
    logits = policy.outputs(obs, edges)
    movements, summary = policy.movements(obs)
    context = policy.context(summary, edges)
    served = policy.serve(movements, copies=2)  # rows: (light 0: 2 phases, light 1: 1 phase) per copy
    owner = [0, 0, 1, 2, 2, 3]
    naive = policy.score(torch.cat([served, context[owner]], dim=-1)).squeeze(-1)
    assert torch.allclose(logits[[0, 0, 1, 2, 2, 3], [0, 1, 0, 0, 1, 0]], naive, atol=1e-6)
    assert logits[1, 1] == 0 and logits[3, 1] == 0  # light 1 has one phase: its padded one is not scored


def test_pressure_prior_adds_max_pressure_scores_to_the_logits():
    net = NetworkConfig(hidden=[4], pressure_prior=0.5)
    policy = PhaseCompetitionPolicy(1, gym.spaces.Discrete(2), hops=1, net=net)
    policy.bind(SignalStructure.from_graph(two_lights(), lanes=2))
    nn.init.zeros_(policy.score[-1].weight)  # the learned part scores 0: only the prior is left
    # queues: light 0 lanes a = 3, b = 1; light 1 lane c = 2. Movements a→c, a→y (phase GrG), b→x (rGr), c→z
    # pressures by hand: GrG (3 - 2) + (3 - 0) = 4, rGr 1 - 0 = 1 (x, y, z unobserved: 0); light 1: 2 - 0 = 2
    logits = policy.outputs(torch.tensor([[3., 1.], [2., 0.]]), from_edges([(0, 1)], 2).edge_index)
    assert torch.allclose(logits, torch.tensor([[2.0, 0.5], [1.0, 0.0]]))
    assert dict(policy.named_parameters())["pressure_weight"].requires_grad  # the weight is learned
    plain = PhaseCompetitionPolicy(1, gym.spaces.Discrete(2), hops=1, net=NetworkConfig(hidden=[4]))
    assert "pressure_weight" not in dict(plain.named_parameters())  # off by default: old checkpoints load


def test_wave_prior_adds_greedys_scores_counting_each_green_lane_once():
    net = NetworkConfig(hidden=[4], pressure_prior=0.5, prior_score="wave")
    policy = PhaseCompetitionPolicy(1, gym.spaces.Discrete(2), hops=1, net=net)
    policy.bind(SignalStructure.from_graph(two_lights(), lanes=2))
    nn.init.zeros_(policy.score[-1].weight)
    # waves: light 0 lanes a = 3, b = 1; light 1 lane c = 2. GrG gives lane a green through two movements
    # (a→c, a→y): greedy counts a once, 3 (not 6, and c downstream is not subtracted); rGr: b = 1; light 1: 2
    obs = torch.tensor([[3., 1.], [2., 0.], [0., 4.], [1., 0.]])  # two copies
    logits = policy.outputs(obs, from_edges([(0, 1), (2, 3)], 4).edge_index)
    assert torch.allclose(logits, torch.tensor([[1.5, 0.5], [1.0, 0.0], [0.0, 2.0], [0.5, 0.0]]))


def test_soften_divides_every_phase_score_including_the_pressure_prior():
    """DMPO's hand-over widens the policy; with a phase-competition policy it crashed (no ``net.out``)."""
    torch.manual_seed(0)
    policy = PhaseCompetitionPolicy(1, gym.spaces.Discrete(2), hops=1, net=NetworkConfig(hidden=[4], pressure_prior=0.5))
    policy.bind(SignalStructure.from_graph(two_lights(), lanes=2))
    nn.init.normal_(policy.score[-1].weight)  # a learned part that is not ~0
    obs, edges = torch.tensor([[3., 1.], [2., 0.]]), from_edges([(0, 1)], 2).edge_index
    before = policy.outputs(obs, edges)
    policy.soften(4.0)
    assert torch.allclose(policy.outputs(obs, edges), before / 4.0, atol=1e-6)
    assert float(policy.pressure_weight) == 0.125


def test_one_set_of_weights_scores_phases_on_junctions_of_any_shape():
    net = NetworkConfig(hidden=[8, 8])
    torch.manual_seed(0)
    policy = PhaseCompetitionPolicy(1, gym.spaces.Discrete(2), hops=1, net=net)
    small = SignalStructure.from_graph(two_lights(), lanes=2)
    policy.bind(small)
    edges = from_edges([(0, 1)], 2).edge_index
    logits = policy.outputs(torch.rand(2, 2), edges)
    assert logits.shape == (2, 2)
    big = SimpleNamespace(lanes=[["a", "b", "c"]], links=[[("a", "p"), ("b", "q"), ("c", "r"), ("c", "s")]],
                          phases=[["GrrG", "rGrr", "rrGr", "GGrr"]])
    clone = PhaseCompetitionPolicy(1, gym.spaces.Discrete(4), hops=1, net=net)
    clone.load_state_dict(policy.state_dict())    # no weight is sized by lanes or phases
    clone.bind(SignalStructure.from_graph(big, lanes=3))
    dist = clone.distribution(torch.rand(3, 3), batch_edge_index(from_edges([], 1).edge_index, 1, 3))
    assert dist.probs.shape == (3, 4)
    # a phase serving the same movements as another gets the same score
    same = SimpleNamespace(lanes=[["a"]], links=[[("a", "p")]], phases=[["G", "G"]])
    clone.bind(SignalStructure.from_graph(same, lanes=1))
    out = clone.outputs(torch.rand(1, 1), from_edges([], 1).edge_index)
    assert out[0, 0] == out[0, 1]
    critic = MovementCritic(1, hops=2, net=net)
    critic.bind(small)
    assert critic(torch.rand(4, 2), batch_edge_index(edges, 2, 2), torch.tensor([0, 0, 1, 1])).shape == (4,)


def test_a_grid_policy_drives_a_network_with_other_phase_and_lane_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("GDMPO_CACHE", str(tmp_path))
    target = irregular_network(7)  # junctions of 2 to 5 phases and 6 to 10 lanes
    graph = from_sumo(target)
    assert {len(p) for p in graph.phases} != {5} and {len(lanes) for lanes in graph.lanes} != {6}
    base = {"env.id": "atsc-grid3x3", "env.num_envs": 1, "env.options": FAST, "rollout_steps": 12,
            "total_env_steps": 24, "policy_net.hidden": [16], "value_net.hidden": [16]}
    config = cfg.load("configs/atsc-grid5x5/dppo.yaml", {**base, "policy_net.input": "movements",
                                                          "value_net.input": "movements"})
    gdmpo.train(config, tmp_path / "movements", progress=False)
    report = transfer(tmp_path / "movements/checkpoints/last.pt", net_file=str(target), env_options=FAST,
                      episodes=1, finetune_steps=12, references=False, out=tmp_path / "report")
    assert report["num_agents"] == graph.num_nodes and "finetuned" in report
    # the same training with flat inputs cannot drive it, and says what to use instead
    gdmpo.train(cfg.load("configs/atsc-grid5x5/dppo.yaml", base), tmp_path / "flat", progress=False)
    monkeypatch.setattr(gdmpo, "make", no_simulation)  # refused from the network file, before any simulation
    with pytest.raises(TransferError, match="policy_net.input: movements"):
        transfer(tmp_path / "flat/checkpoints/last.pt", net_file=str(target), env_options=FAST, episodes=1,
                 references=False, out=tmp_path / "refused")


def no_simulation(*args, **kwargs):
    raise AssertionError("a refused target must not be built")


def test_movement_networks_need_a_signal_environment_and_matching_lane_features(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="policy_net.input 'movements' needs a traffic-signal environment"):
        gdmpo.train(cfg.load("configs/cacc-catchup/dppo.yaml", {"policy_net.input": "movements"}), tmp_path / "a",
                    total_env_steps=0, progress=False)
    config = cfg.load("configs/atsc-grid5x5/dppo.yaml", {
        "env.id": "atsc-grid3x3", "env.num_envs": 1, "env.options": FAST, "rollout_steps": 12,
        "total_env_steps": 12, "policy_net.input": "movements", "policy_net.hidden": [8], "value_net.hidden": [8]})
    gdmpo.train(config, tmp_path / "run", progress=False)
    monkeypatch.setattr(gdmpo, "make", no_simulation)
    with pytest.raises(TransferError, match="reads 1 feature.s. per lane; .* gives 2"):
        transfer(tmp_path / "run/checkpoints/last.pt", net_file=str(Path(__file__).parents[1] / "graphs/grid3x3.net.xml"),
                 env_options={**FAST, "observe_wait": True}, episodes=1, references=False, out=tmp_path / "r")
    with pytest.raises(TransferError, match="drives signals; the agents of ring-attenuation are vehicles: refused "
                                            "before building it"):
        transfer(tmp_path / "run/checkpoints/last.pt", env_id="ring-attenuation", episodes=1, references=False,
                 out=tmp_path / "r2")


@pytest.mark.parametrize("score, controller", [("pressure", "max-pressure"), ("wave", "greedy")])
def test_prior_alone_picks_its_controllers_phases(tmp_path, monkeypatch, score, controller):
    from gdmpo.algos import build_agent, prepare_env
    from gdmpo.envs.controllers import reference_policy

    monkeypatch.setenv("GDMPO_CACHE", str(tmp_path))
    config = cfg.load("configs/atsc-generalist/dppo.yaml", {
        "env.id": "atsc", "env.options": {**FAST, "net_file": str(irregular_network(7))},
        "policy_net.pressure_prior": 1.0, "policy_net.prior_score": score})
    env = prepare_env(config, gdmpo.make(config.env.id, num_envs=2, seed=0, **config.env.options))
    try:
        policy = build_agent(config, env).policy
        nn.init.zeros_(policy.score[-1].weight)  # nothing learned yet: the prior alone
        reference = reference_policy(env, controller)
        obs, _ = env.reset(seed=0)
        for _ in range(6):  # queues build up under random phases
            obs = env.step(torch.randint(0, 2, (2, env.num_agents)))[0]
        logits = policy.outputs(obs.reshape(-1, env.obs_dim), policy_edges(env)).detach()
        logits = logits.masked_fill(~env.action_mask.repeat(2, 1), float("-inf")).reshape(2, env.num_agents, -1)
        top2 = logits.topk(2, dim=-1).values
        clear = top2[..., 0] > top2[..., 1] + 1e-4  # lights whose best phase is unique
        assert clear.sum() >= 10
        assert torch.equal(logits.argmax(-1)[clear], reference(obs)[clear])
    finally:
        env.close()


def policy_edges(env) -> torch.Tensor:
    return batch_edge_index(env.graph.edge_index, env.num_agents, env.num_envs)


def test_a_policy_carries_its_observation_options_to_other_signal_networks(tmp_path, monkeypatch):
    monkeypatch.setenv("GDMPO_CACHE", str(tmp_path))
    config = cfg.load("configs/atsc-grid5x5/dppo.yaml", {
        "env.id": "atsc-grid3x3", "env.num_envs": 1, "env.options": {**FAST, "observe_phase": True},
        "rollout_steps": 12, "total_env_steps": 12, "policy_net.input": "movements", "value_net.input": "movements",
        "policy_net.hidden": [8], "value_net.hidden": [8]})
    gdmpo.train(config, tmp_path / "run", progress=False)
    # the target is named without observe_phase: it comes from the checkpoint, so the lanes fit
    report = transfer(tmp_path / "run/checkpoints/last.pt", net_file=str(irregular_network(7)), env_options=FAST,
                      episodes=1, references=False, out=tmp_path / "report")
    assert report["env_options"]["observe_phase"] == "True" and report["deterministic"] is False
    # argmax play: the report says so, and it is what evaluating the checkpoint deterministically gives
    from gdmpo.evaluation import evaluate_checkpoint

    argmax = transfer(tmp_path / "run/checkpoints/last.pt", net_file=str(irregular_network(7)), env_options=FAST,
                      episodes=1, references=False, out=tmp_path / "argmax", deterministic=True, seed=3)
    again = evaluate_checkpoint(tmp_path / "run/checkpoints/last.pt", episodes=1, seed=3, deterministic=True,
                                env_id="atsc", num_envs=1, env_options={**FAST, "observe_phase": True,
                                                                         "net_file": str(irregular_network(7))})
    assert argmax["deterministic"] and argmax["zero_shot"]["returns"] == again["returns"]
    # evaluation on another signal network takes the checkpoint's observation options too
    carried = evaluate_checkpoint(tmp_path / "run/checkpoints/last.pt", episodes=1, seed=3, deterministic=True,
                                  env_id="atsc", num_envs=1, env_options={**FAST, "net_file": str(irregular_network(7))})
    assert carried["returns"] == again["returns"]
    assert "learned, zero-shot, argmax" in (tmp_path / "argmax/report.md").read_text()
    with pytest.raises(TransferError, match="reads 2 feature.s. per lane; .* gives 1"):  # unless the target says no
        transfer(tmp_path / "run/checkpoints/last.pt", net_file=str(irregular_network(7)),
                 env_options={**FAST, "observe_phase": False}, episodes=1, references=False, out=tmp_path / "r")
