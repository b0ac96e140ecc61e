"""Traffic signal control on real SUMO: sizes and masks, yellow transitions, queue reward, seeding, shutdown."""

import os
import signal
from types import SimpleNamespace

import pytest
import torch
from test_sumo_graph import netgenerate_grid

import gdmpo
from gdmpo.envs import SumoError
from gdmpo.envs.sumo import ATSCSimulation, yellow_state
from gdmpo.envs.sumo.atsc import green_lanes
from gdmpo.envs.signal_options import SignalOptions
from gdmpo.envs.sumo.lane_reads import VARIABLES, LaneReader
from gdmpo.evaluation import evaluation_env

FAST = {"episode_seconds": 60, "trip_period": 0.5}


@pytest.fixture(scope="module")
def grid3(tmp_path_factory):
    return netgenerate_grid(tmp_path_factory.mktemp("atsc"), 3)


def random_phases(env, generator):
    return torch.stack([torch.multinomial(env.action_mask.float(), 1, generator=generator).squeeze(1)
                        for _ in range(env.num_envs)])


def test_signal_options_are_checked_where_made_and_a_policy_carries_only_what_it_reads():
    with pytest.raises(ValueError, match="atsc option wave_scale must be a number > 0, got 0"):
        SignalOptions(wave_scale=0)
    with pytest.raises(ValueError, match=r"yellow_seconds must be in \[0, control_interval=10\), got 10"):
        SignalOptions(control_interval=10, yellow_seconds=10)
    assert SignalOptions(observe_wait=True, observe_phase=True).lane_features == 3
    carried = gdmpo.envs.spec("atsc-grid5x5").carried_options
    assert {"timing", "control_interval", "observe_phase", "wave_distance"} <= set(carried)
    assert not {"wait_weight", "max_halting", "teleport_seconds"} & set(carried)  # reward and SUMO: the target's own
    trained = SimpleNamespace(env=SimpleNamespace(id="atsc-grid5x5", options={
        "timing": "resco", "observe_phase": True, "wait_weight": 0.1, "scenario": "resco:cologne8"}))
    assert evaluation_env(trained, "atsc") == ("atsc", {"timing": "resco", "observe_phase": True})
    assert evaluation_env(trained, "cacc-catchup") == ("cacc-catchup", {})  # other agents: nothing carried
    # the controllers a transfer report plays beside the policy, by what the agents are
    assert gdmpo.envs.spec("atsc").references == ("fixed-time", "max-pressure", "greedy")
    assert gdmpo.envs.spec("ring-attenuation").references == ("idm",) and gdmpo.envs.spec("cacc-catchup").references == ()


def test_yellow_only_where_right_of_way_is_lost():
    assert yellow_state("GGgrrrGGgrrr", "rrrGGGrrrGGG") == "yyyrrryyyrrr"
    assert yellow_state("GGrr", "GrGr") == "Gyrr"  # a link that stays green stays green
    assert yellow_state("rrGG", "rrGG") == "rrGG"


def test_sizes_and_masks_follow_each_junction(grid3):
    with gdmpo.make("atsc", num_envs=1, seed=0, net_file=str(grid3), **FAST) as env:
        graph = env.graph
        assert env.num_agents == 9 and env.obs_dim == 4 and env.max_episode_steps == 12
        assert env.lane_mask.sum(1).tolist() == [len(lanes) for lanes in graph.lanes]
        assert sorted(env.lane_mask.sum(1).tolist()) == [2, 2, 2, 2, 3, 3, 3, 3, 4]  # corners, sides, centre
        assert env.action_mask.sum(1).tolist() == [len(p) for p in graph.phases]
        obs = env.reset()
        assert obs.shape == (1, 9, 4)
        for _ in range(6):
            obs, reward, _, _, _ = env.step(random_phases(env, torch.Generator().manual_seed(0)))
        assert torch.all(obs[0][~env.lane_mask] == 0)  # padding lanes stay empty
        assert torch.all((obs >= 0) & (obs <= 2)) and torch.all(reward <= 0)
        short = (env.action_mask.sum(1) < env.max_phases).nonzero()
        bad = torch.zeros(1, 9, dtype=torch.long)
        if len(short):  # a junction with fewer phases than the largest refuses the padded ones
            bad[0, short[0, 0]] = env.max_phases - 1
            with pytest.raises(gdmpo.envs.ActionError, match="phases; got phase"):
                env.step(bad)
        bad[0, 0] = 99
        with pytest.raises(gdmpo.envs.ActionError, match="must lie in"):
            env.step(bad)


def test_phase_change_shows_yellow_then_the_new_phase_and_reward_counts_halting(grid3):
    with gdmpo.make("atsc", num_envs=1, seed=0, net_file=str(grid3), **FAST) as env:
        spec = env.simulation_spec
    sim = ATSCSimulation(spec)
    try:
        sim.reset(seed=3)
        for _ in range(10):  # let queues form at the red approaches
            sim.step([0] * 9)
        seen = []
        advance = sim._advance
        sim._advance = lambda seconds: (seen.append((seconds, sim.tls_states())), advance(seconds))
        second = [min(1, len(p) - 1) for p in spec.phases]  # switch every light that has a second phase
        obs, reward = sim.step(second)
        (yellow_s, during_yellow), (green_s, during_green) = seen
        assert (yellow_s, green_s) == (2, 3)
        assert during_yellow == [yellow_state(p[0], p[k]) for p, k in zip(spec.phases, second)]
        assert during_green == [p[k] for p, k in zip(spec.phases, second)] == sim.tls_states()
        assert any("y" in state for state in during_yellow)
        lane = sim.sim.lane
        expected = [-sum(min(lane.getLastStepHaltingNumber(l), 10) for l in lanes) for lanes in spec.lanes]
        assert reward.tolist() == expected and min(expected) < 0
        wave = [[min(sum(1 for v in lane.getLastStepVehicleIDs(l)
                         if lane.getLength(l) - sim.sim.vehicle.getLanePosition(v) <= 50) / 5, 2) for l in lanes]
                for lanes in spec.lanes]
        assert all(abs(obs[i, k] - w) < 1e-6 for i, row in enumerate(wave) for k, w in enumerate(row))
    finally:
        sim.close()


def test_green_lanes_of_each_phase():
    # links: 0 a→c, 1 b→x, 2 a→y, 3 (an unused position with no lane)
    links = [("a", "c"), ("b", "x"), ("a", "y"), ("", "")]
    assert green_lanes(["a", "b"], links, ["GrGr", "rgrr", "rrrG"]) == {"GrGr": [0], "rgrr": [1], "rrrG": []}
    assert green_lanes(["a", "b"], links, ["GGrr"]) == {"GGrr": [0, 1]}


def test_observe_phase_flags_the_lanes_the_shown_phase_serves(grid3):
    with gdmpo.make("atsc", num_envs=1, seed=0, net_file=str(grid3), observe_phase=True, **FAST) as env:
        graph, lanes = env.graph, env.max_lanes
        assert env.obs_dim == 2 * lanes and env.lane_features == 2

        def expected(choice):  # [n, lanes]: 1 where a green link of the light's chosen phase starts
            flags = torch.zeros(env.num_agents, lanes)
            for i, (own, links, phases) in enumerate(zip(graph.lanes, graph.links, graph.phases)):
                for m, c in enumerate(phases[choice[i]]):
                    if c in "Gg":
                        flags[i, own.index(links[m][0])] = 1.0
            return flags

        obs = env.reset()
        assert torch.equal(obs[0, :, lanes:], expected([0] * env.num_agents))  # every light starts on phase 0
        second = torch.tensor([[min(1, len(p) - 1) for p in graph.phases]])
        obs = env.step(second)[0]
        assert torch.equal(obs[0, :, lanes:], expected(second[0].tolist()))
        assert torch.all(obs[0, :, lanes:][~env.lane_mask] == 0) and obs[0, :, lanes:].sum() > 0


def test_same_seed_same_traffic(grid3):
    def trace(seed):
        with gdmpo.make("atsc", num_envs=2, seed=seed, net_file=str(grid3), **FAST) as env:
            env.reset()
            gen = torch.Generator().manual_seed(1)
            return torch.stack([env.step(random_phases(env, gen))[0] for _ in range(8)])

    a, b, c = trace(5), trace(5), trace(6)
    assert torch.equal(a, b) and a.sum() > 0
    assert not torch.equal(a, c)


def test_dead_sumo_is_reported_then_reset_recovers_and_close_leaves_no_process(grid3):
    env = gdmpo.make("atsc", num_envs=2, seed=0, net_file=str(grid3), **FAST)
    env.reset()
    processes = list(env.workers._processes)
    os.kill(processes[1].pid, signal.SIGKILL)
    processes[1].join(timeout=10)
    with pytest.raises(SumoError, match="worker 1"):
        env.step(torch.zeros(2, 9, dtype=torch.long))
    env.reset()
    env.step(torch.zeros(2, 9, dtype=torch.long))
    processes = list(env.workers._processes)
    env.close()
    env.close()
    assert not any(p.is_alive() for p in processes)
    with pytest.raises(FileNotFoundError, match="nowhere.rou.xml"):
        gdmpo.make("atsc", net_file=str(grid3), route_file="nowhere.rou.xml")


def test_shipped_5x5_grid_with_peak_hour_flows():
    with gdmpo.make("atsc-grid5x5", num_envs=1, seed=0, episode_seconds=600) as env:
        assert env.num_agents == 25 and env.graph.edge_index.size(1) == 2 * 40
        assert env.max_episode_steps == 120
        env.reset()
        for _ in range(40):  # 200 s of the schedule: flows 1-2 are on the roads
            obs, reward, _, _, _ = env.step(torch.zeros(1, 25, dtype=torch.long))
        figures = env.traffic_metrics()[0]
        assert figures["in_network"] > 10 and obs.sum() > 0
        assert figures["arrived"] > 0 and figures["waiting_time"] >= 0
        assert figures["trip_time"] + figures["insertion_delay"] >= figures["delay"] >= figures["insertion_delay"]
        assert figures["departed"] == figures["arrived"] + figures["in_network"]
        for _ in range(80):  # to the end of the 600 s episode: its figures are kept through the reset
            env.step(torch.zeros(1, 25, dtype=torch.long))
        assert env.episode_traffic[0]["arrived"] >= figures["arrived"]


def test_classical_controllers_follow_their_rules():
    from gdmpo.envs.controllers import FixedTimePolicy, MaxPressurePolicy, RandomPolicy

    with gdmpo.make("atsc-grid3x3", num_envs=2, seed=0, episode_seconds=60) as env:
        graph = env.graph
        # fixed time: the programme's greens (33, 10, 25, 5, 7 s) become 7, 2, 5, 1, 1 intervals of 5 s
        assert graph.green_seconds[4] == [33.0, 10.0, 25.0, 5.0, 7.0]
        fixed = FixedTimePolicy(env)
        obs = torch.zeros(2, 9, env.obs_dim)
        plan = [fixed(obs)[0, 4].item() for _ in range(20)]
        assert plan == [0] * 7 + [1] * 2 + [2] * 5 + [3, 4] + [0] * 4
        # max pressure: vehicles waiting only on one incoming lane of the centre light → a phase that
        # gives that lane green, in every copy
        pressure = MaxPressurePolicy(env)
        centre = graph.names.index("J1_1")
        lane = 0
        obs = torch.zeros(2, 9, env.obs_dim)
        obs[:, centre, lane] = 2.0
        choice = pressure(obs)[:, centre]
        in_lane = graph.lanes[centre][lane]
        for phase in choice.tolist():
            state = graph.phases[centre][phase]
            assert any(signal in "Gg" and graph.links[centre][k][0] == in_lane for k, signal in enumerate(state))
        # random play never picks a padded phase
        rand = RandomPolicy(env, seed=0)
        picks = torch.stack([rand(obs) for _ in range(50)])
        assert torch.all(env.action_mask[torch.arange(9), picks])


def test_max_pressure_breaks_exact_ties_by_phase_order_not_float_noise():
    from types import SimpleNamespace

    import gymnasium as gym

    from gdmpo.envs.controllers import MaxPressurePolicy

    # light 0: lanes a, b, d; links a→c (c: light 1's lane), b→x, d→y; phase 0 serves d, phase 1 serves a and b
    graph = SimpleNamespace(lanes=[["a", "b", "d"], ["c"]], links=[[("a", "c"), ("b", "x"), ("d", "y")], [("c", "z")]],
                            phases=[["rrG", "GGr"], ["G"]], green_seconds=[[10.0, 10.0], [10.0]])
    for extra in (0, 3):  # trailing features (e.g. observe_phase) must not change the choice
        env = SimpleNamespace(graph=graph, num_agents=2, obs_dim=3 + extra, action_space=gym.spaces.Discrete(2),
                              action_mask=torch.tensor([[True, True], [True, False]]))
        obs = torch.zeros(1, 2, 3 + extra)
        obs[0, 0, :3] = torch.tensor([0.2, 0.4, 0.4])  # phase 1: (0.2 - c) + 0.4; phase 0: 0.4
        obs[0, 1, 0] = 0.2  # c: so both phases have pressure 0.4 exactly (float32 sums give 0.40000004)
        assert MaxPressurePolicy(env)(obs)[0, 0] == 0  # a tie: the first phase
        obs[0, 1, 0] = 0.0  # now phase 1 has 0.6
        assert MaxPressurePolicy(env)(obs)[0, 0] == 1


def test_traci_backend_gives_the_same_traffic_as_libsumo(grid3):
    def trace(backend):
        with gdmpo.make("atsc", num_envs=1, seed=2, net_file=str(grid3), backend=backend, **FAST) as env:
            env.reset()
            gen = torch.Generator().manual_seed(0)
            return torch.stack([torch.cat([o.flatten(), r.flatten()]) for o, r, *_ in
                                (env.step(random_phases(env, gen)) for _ in range(6))])

    assert torch.equal(trace("traci"), trace("libsumo"))


class FakeVehicles:
    """The vehicle domain of a SUMO module, answering subscriptions from a fixed table."""

    def __init__(self, table):
        self.table, self.subscribed = table, []

    def getIDList(self):
        return tuple(self.table)

    def subscribe(self, vehicle, variables):
        self.subscribed.append(vehicle)

    def getAllSubscriptionResults(self):  # like SUMO after a load: stale answers for vehicles gone
        self.last = {**getattr(self, "last", {}), **{v: self.table[v] for v in self.subscribed if v in self.table}}
        return {v: dict(zip(VARIABLES, values)) for v, values in self.last.items()}


def test_lane_reader_counts_by_hand():
    # lights 0 and 1 share lane "b" (slot 1 of light 0, slot 0 of light 1); lanes 100 m and 60 m long
    table = {"v1": ("a", 95.0, 0.0, 12.0),  # 5 m before a's stop line, halting, waited 12 s: a's first vehicle
             "v2": ("a", 40.0, 8.0, 0.0),  # 60 m before it: outside the 50 m wave, moving
             "v3": ("a", 50.0, 0.05, 3.0),  # exactly 50 m before it: inside; 0.05 m/s counts as halting
             "v4": ("b", 30.0, 0.0, 7.0),  # b's first vehicle
             "v5": (":J0_0", 1.0, 0.0, 99.0),  # inside a junction: no lane of ours
             "v6": ("", 0.0, 0.0, 99.0)}  # teleporting
    sim = SimpleNamespace(vehicle=FakeVehicles(table))
    reader = LaneReader(sim, [["a", "b"], ["b"]], [[100.0, 60.0], [60.0]], max_lanes=3, wave_distance=50.0)
    counts = reader.read()
    assert counts.near.tolist() == [[2, 1, 0], [1, 0, 0]]
    assert counts.halting.tolist() == [[2, 1, 0], [1, 0, 0]]
    assert counts.first_wait.tolist() == [[12, 7, 0], [7, 0, 0]]
    assert sorted(sim.vehicle.subscribed) == sorted(table)
    table["v7"] = ("b", 59.0, 0.0, 1.0)  # a newcomer becomes b's first vehicle; nobody is subscribed twice
    counts = reader.read()
    assert counts.first_wait.tolist() == [[12, 1, 0], [1, 0, 0]] and len(sim.vehicle.subscribed) == 7
    del table["v1"]  # gone, though still answered for: no longer counted
    counts = reader.read()
    assert counts.near.tolist() == [[1, 2, 0], [2, 0, 0]] and counts.first_wait.tolist() == [[3, 1, 0], [1, 0, 0]]


def test_lane_reader_sees_the_queue_on_the_lanes_before_a_short_stub_by_hand():
    # light 0's lane "s" is a 2 m stub; "u" (40 m, ends 2 m before s's stop line) and "w" (30 m, ends 42 m
    # before it) feed it through unsignalised nodes; "u" also feeds the light's lane "t"
    table = {"v1": ("s", 1.0, 0.0, 4.0),  # 1 m before the stop line: the first vehicle
             "v2": ("u", 30.0, 0.0, 9.0),  # 2 + (40 - 30) = 12 m before it: near, halting
             "v3": ("w", 2.0, 5.0, 0.0),  # 42 + (30 - 2) = 70 m: beyond the 50 m wave, moving
             "v4": ("w", 25.0, 0.0, 2.0)}  # 42 + 5 = 47 m: near, halting
    sim = SimpleNamespace(vehicle=FakeVehicles(table), lane=SimpleNamespace(getLength={"u": 40.0, "w": 30.0}.get))
    approaches = [[[("u", 2.0), ("w", 42.0)], [("u", 0.0)]]]
    reader = LaneReader(sim, [["s", "t"]], [[2.0, 60.0]], max_lanes=2, wave_distance=50.0, approaches=approaches)
    counts = reader.read()
    assert counts.near.tolist() == [[3, 1]]  # s: v1, v2, v4; t: v2 (40 - 30 = 10 m before t's stop line)
    assert counts.halting.tolist() == [[3, 1]]
    assert counts.first_wait.tolist() == [[4, 9]]  # t's nearest vehicle is v2, on u
    del table["v1"]
    assert reader.read().first_wait.tolist() == [[9, 9]]  # now s's nearest is v2 too


def test_short_incoming_lanes_get_their_upstream_approach_from_the_network(tmp_path):
    import subprocess

    from gdmpo.graph import from_sumo
    from gdmpo.graph.sumo import sumo_binary

    # W -(100 m)- P (priority node) -(3 m)- C (light): the light's west lane is a 3 m stub
    (tmp_path / "n.nod.xml").write_text('<nodes><node id="C" x="0" y="0" type="traffic_light"/>'
                                        '<node id="P" x="-3" y="0" type="priority"/><node id="W" x="-103" y="0"/>'
                                        '<node id="E" x="200" y="0"/><node id="N" x="0" y="200"/></nodes>')
    (tmp_path / "n.edg.xml").write_text('<edges><edge id="WP" from="W" to="P" numLanes="1"/>'
                                        '<edge id="PC" from="P" to="C" numLanes="1"/>'
                                        '<edge id="EC" from="E" to="C" numLanes="1"/><edge id="NC" from="N" to="C" numLanes="1"/>'
                                        '<edge id="CE" from="C" to="E" numLanes="1"/></edges>')
    subprocess.run([sumo_binary("netconvert"), "-n", "n.nod.xml", "-e", "n.edg.xml", "-o", "t.net.xml",
                    "--no-internal-links", "--geometry.remove", "false"], cwd=tmp_path, check=True, capture_output=True)
    graph = from_sumo(tmp_path / "t.net.xml")
    approaches = dict(zip(graph.lanes[0], graph.approaches[0]))
    stub = graph.lane_lengths[0][graph.lanes[0].index("PC_0")]
    assert stub < 10 and approaches["PC_0"] == [("WP_0", pytest.approx(stub))]
    assert approaches["EC_0"] == [] and approaches["NC_0"] == []  # long lanes: nothing upstream needed


def test_the_first_observation_of_a_later_episode_holds_none_of_the_last_ones_vehicles(grid3):
    with gdmpo.make("atsc", num_envs=1, seed=0, net_file=str(grid3), observe_wait=True, **FAST) as env:
        spec = env.simulation_spec
    sim = ATSCSimulation(spec)
    try:
        sim.reset(seed=3)
        for _ in range(10):
            obs, _ = sim.step([0] * 9)
        assert obs.sum() > 0 and sim.sim.vehicle.getIDCount() > 0
        obs, reward = sim.reset(seed=4)  # SUMO reloads: no vehicle has departed at t = 0
        assert sim.sim.vehicle.getIDCount() == 0
        assert obs.sum() == 0 and reward.sum() == 0
    finally:
        sim.close()


def test_waiting_time_observation_and_reward_match_per_lane_calls(grid3):
    options = {"observe_wait": True, "wait_weight": 0.1, **FAST}
    with gdmpo.make("atsc", num_envs=1, seed=0, net_file=str(grid3), **options) as env:
        spec, lanes = env.simulation_spec, env.max_lanes
    sim = ATSCSimulation(spec)
    try:
        sim.reset(seed=3)
        for _ in range(10):
            obs, reward = sim.step([0] * 9)
        lane, vehicle = sim.sim.lane, sim.sim.vehicle

        def first_wait(l):  # waiting time of the vehicle nearest the stop line
            ids = lane.getLastStepVehicleIDs(l)
            return vehicle.getWaitingTime(max(ids, key=vehicle.getLanePosition)) if ids else 0.0

        waits = [[first_wait(l) for l in own] for own in spec.lanes]
        assert max(map(max, waits)) > 0  # queues have formed at the red approaches
        for i, own in enumerate(spec.lanes):
            halting = sum(min(lane.getLastStepHaltingNumber(l), 10) for l in own)
            assert reward[i] == pytest.approx(-halting - 0.1 * sum(waits[i]), rel=1e-6)
            for k, wait in enumerate(waits[i]):
                assert obs[i, lanes + k] == pytest.approx(min(wait / 60, 2), rel=1e-6)
    finally:
        sim.close()
