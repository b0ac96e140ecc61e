"""Several road networks as one environment: generated networks, the disjoint union, routing of
actions to each network's simulation, combined traffic figures, and a generalist trained on them."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import gdmpo
from gdmpo import config as cfg
from gdmpo.envs.controllers import MaxPressurePolicy
from gdmpo.envs.sumo import ATSCSimulation
from gdmpo.envs.sumo.networks import NetworkOptions, irregular_network, network_parts, resolve_entry
from gdmpo.transfer import transfer

GRID3 = str(Path(__file__).parents[1] / "graphs/grid3x3.net.xml")
FAST = {"episode_seconds": 30, "trip_period": 1.0}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("networks")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GDMPO_CACHE", str(folder))
        yield folder


def test_generated_networks_are_cached_whole(cache):
    net = irregular_network(5)
    stamp = net.stat().st_mtime_ns
    assert net.parent == cache and irregular_network(5).stat().st_mtime_ns == stamp  # made once
    assert [p.name for p in cache.iterdir()] == ["irregular5.net.xml"]  # no private folder left behind
    entry = resolve_entry({"spider": 4, "circles": 2, "trip_period": 3.0}, "networks[0]")
    assert entry == {"trip_period": 3.0, "net_file": str(cache / "spider4x2.net.xml"), "name": "spider4x2"}


@pytest.mark.parametrize("entry, words", [
    ({"grid": 3, "speed": 2}, "unknown key(s) speed"),
    ({"grid": 3, "irregular": 2}, "exactly one network"),
    ({"grid": "big"}, "grid takes a whole number"),
    ({"irregular": 2, "circles": 2}, "circles is a spider network's setting"),
    ("grid3", "a network entry is a mapping"),
])
def test_bad_network_entries_are_named(entry, words):
    with pytest.raises(ValueError, match="networks\\[1\\]") as err:
        resolve_entry(entry, "networks[1]")
    assert words in str(err.value)


def test_networks_and_a_net_file_together_are_refused():
    with pytest.raises(ValueError, match="give the network as net_file or as networks, not both"):
        network_parts([{"grid": 3}], NetworkOptions(net_file=GRID3), 60)
    with pytest.raises(FileNotFoundError, match=r"networks\[1\] \(nowhere\): nowhere.net.xml: no such SUMO network"):
        network_parts([{"grid": 3}, {"net_file": "nowhere.net.xml"}], NetworkOptions(), 60)


def test_union_keeps_networks_apart_and_routes_each_its_actions(cache):
    spider = {"spider": 4, "circles": 2}
    with gdmpo.make("atsc", num_envs=2, seed=0, networks=[{"net_file": GRID3}, spider], **FAST) as env:
        n0, n1 = env.part_sizes
        assert n0 == 9 and env.num_agents == n0 + n1 and env.network_names == ["grid3x3", "spider4x2"]
        assert env.graph.names[0] == "grid3x3/" + sorted(env.graph.names[:n0])[0].split("/")[1]
        crossing = (env.graph.edge_index < n0).sum(0) == 1
        assert not crossing.any()  # no neighbour across networks
        out_node = env.signal_structure.out_node
        assert ((out_node[:n0] < n0) | (out_node[:n0] == -1)).all() and ((out_node[n0:] >= n0) | (out_node[n0:] == -1)).all()
        obs = env.reset()
        assert obs.shape == (2, n0 + n1, env.obs_dim)
        last = env.action_mask.sum(1) - 1  # every light its last phase
        env.step(last.expand(2, -1))
        states = env.workers.call("tls_states", [()] * 4)  # copy 0: grid, spider; copy 1: grid, spider
        phases = env.graph.phases
        expected = [[phases[i][-1] for i in range(n0)], [phases[i][-1] for i in range(n0, n0 + n1)]]
        assert states == expected * 2


def test_max_pressure_on_the_union_is_max_pressure_on_each_network(cache):
    with gdmpo.make("atsc", num_envs=1, seed=0, networks=[{"net_file": GRID3}, {"irregular": 5}], **FAST) as env:
        union = MaxPressurePolicy(env)
        n0 = env.part_sizes[0]
        graphs = [gdmpo.graph.from_sumo(GRID3), gdmpo.graph.from_sumo(irregular_network(5))]
        alone = []
        for graph, rows in zip(graphs, (slice(0, n0), slice(n0, None))):
            view = SimpleNamespace(graph=graph, num_agents=graph.num_nodes, obs_dim=env.obs_dim,
                                   action_space=SimpleNamespace(n=env.max_phases), action_mask=env.action_mask[rows])
            alone.append(MaxPressurePolicy(view))
        obs = torch.rand(3, env.num_agents, env.obs_dim, generator=torch.Generator().manual_seed(0)) * 2
        separate = torch.cat([alone[0](obs[:, :n0]), alone[1](obs[:, n0:])], dim=1)
        assert torch.equal(union(obs), separate)


def test_traffic_figures_of_several_networks_weigh_each_by_its_vehicles():
    a = {"delay": 10.0, "trip_time": 50.0, "departed": 10.0, "arrived": 5.0, "delay_completed": 4.0, "throughput": 300.0}
    b = {"delay": 20.0, "trip_time": 70.0, "departed": 30.0, "arrived": 15.0, "delay_completed": 8.0, "throughput": 900.0}
    both = ATSCSimulation.combine_metrics([a, b])
    assert both == {"delay": 17.5, "trip_time": 65.0, "departed": 40.0, "arrived": 20.0, "delay_completed": 7.0,
                    "throughput": 1200.0}  # (10·10 + 20·30) / 40, (4·5 + 8·15) / 20, sums
    assert ATSCSimulation.combine_metrics([a]) == a and ATSCSimulation.combine_metrics([{}, {}]) == {}


TINY_DMPO = {"dmpo.buffer_size": 24, "dmpo.warmup_env_steps": 6, "dmpo.warmup_model_steps": 2, "dmpo.model_steps": 2,
             "dmpo.rollouts": 4, "dmpo.horizon": 2, "dmpo.inner_updates": 2, "dmpo.model_data_prob": 1.0,
             "model.net.hidden": [8]}


@pytest.mark.parametrize("algo", ["dppo", "dmpo"])
def test_a_generalist_trains_on_a_union_and_runs_zero_shot_on_another_network(tmp_path, cache, algo):
    config = cfg.load(f"configs/atsc-generalist/{algo}.yaml", {
        "env.options": {"networks": [{"net_file": GRID3}, {"spider": 4, "circles": 2, "trip_period": 2.0}], **FAST},
        "rollout_steps": 6, "total_env_steps": 12, "policy_net.hidden": [8], "value_net.hidden": [8],
        **(TINY_DMPO if algo == "dmpo" else {})})
    gdmpo.train(config, tmp_path / "run", progress=False)
    if algo == "dmpo":  # the second iteration learned from branched rollouts of the union's model
        with open(tmp_path / "run/metrics.csv", newline="") as handle:
            assert int(list(csv.DictReader(handle))[-1]["model_updates"]) == 2
    report = transfer(tmp_path / "run/checkpoints/last.pt", net_file=str(irregular_network(5)), episodes=1,
                      out=tmp_path / "target", references=False, env_options={"episode_seconds": 30})
    assert report["num_agents"] == gdmpo.graph.from_sumo(irregular_network(5)).num_nodes
    assert report["zero_shot"]["traffic"]["departed"] > 0
