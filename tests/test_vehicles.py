"""Ring Attenuation and Figure Eight on SUMO: track geometry, observations, rewards, identity, shutdown."""

from __future__ import annotations

import math

import pytest
import torch

import gdmpo
from gdmpo.envs.controllers import reference_policy
from gdmpo.envs.sumo.vehicles import VehicleSimulation, VehicleSpec, figure_eight_track, ring_track


def positions(obs: torch.Tensor, length: float) -> torch.Tensor:
    return obs[..., 1].double() * length


def test_tracks_have_the_specified_lengths():
    assert ring_track(243.5).length == pytest.approx(243.5, abs=1e-3)
    eight = figure_eight_track(30.0)
    assert eight.length == pytest.approx(4 * 30 + 3 * math.pi * 30, abs=1e-3)  # ≈ 402.7 m
    assert eight.locate(eight.length + 31.0) == (1, pytest.approx(1.0))  # 1 m into the upper loop


def test_ring_length_vehicle_count_and_even_spacing():
    with gdmpo.make("ring-attenuation", num_envs=2, seed=3, horizon=5) as env:
        assert env.num_agents == 22 and env.graph.num_nodes == 22 and env.graph.edge_index.shape[1] == 44
        env.reset()
        lengths = []
        for _ in range(15):  # 3 episodes of 5 steps: every reset draws a new ring
            *_, info = env.step(torch.zeros(2, 22, 1))
            if info["done"].any():
                lengths += [t["track_length"] for t in env.episode_traffic]
        assert len(lengths) == 6 and all(220 <= x <= 270 for x in lengths) and len(set(lengths)) > 1
        # at the start, vehicle i + 1 is L / n ahead of vehicle i (± the 1 m jitter on each)
        obs = env.reset()
        length = env.traffic_metrics()[0]["track_length"]
        gaps = (positions(obs[0], length).roll(-1) - positions(obs[0], length)) % length
        assert torch.all((gaps - length / 22).abs() <= 2.0 + 1e-3)
        assert torch.all(obs[..., 0] == 0)  # at rest


def test_observations_in_range_and_identity_kept_under_random_driving():
    with gdmpo.make("figure-eight", num_envs=1, seed=0) as env:
        policy = reference_policy(env, "random", seed=0)
        obs = env.reset()
        order = obs[0, :, 1].argsort()
        for _ in range(300):
            obs, reward, *_ = env.step(policy(obs))
            assert obs.min() >= 0 and obs.max() <= 1
            assert torch.all(reward <= 20)
        # one lane, no overtaking: the cyclic order of the vehicles along the track never changes
        now = obs[0, :, 1].argsort()
        shift = (now == order[0]).nonzero().item()
        assert torch.equal(now.roll(-shift), order)
        assert env.traffic_metrics()[0]["collisions"] == 0


def test_ring_reward_is_maximal_at_the_target_speed_with_zero_action():
    """Three vehicles on a 260 m ring speed up by 1 m/s² for 20 s, then hold 20 m/s: each agent's reward
    is then 4 (20 − 0) / (20 · 3) − 0 = 4/3, the largest value the reward can take."""
    with gdmpo.make("ring-attenuation", num_envs=1, seed=0, num_vehicles=3, length_range=(260, 260)) as env:
        env.reset()
        for _ in range(200):
            obs, reward, *_ = env.step(torch.ones(1, 3, 1))
        assert reward[0] == pytest.approx(torch.full((3,), 4 / 3 - 4 / 3), abs=1e-4)  # 20 m/s, |a| = 1
        obs, reward, *_ = env.step(torch.zeros(1, 3, 1))
        assert obs[0, :, 0] * 30 == pytest.approx(torch.full((3,), 20.0), abs=1e-3)
        assert reward[0] == pytest.approx(torch.full((3,), 4 / 3), abs=1e-4)
        obs, slower, *_ = env.step(torch.full((1, 3, 1), -0.5))
        assert torch.all(slower < reward)


def test_same_seed_same_traffic():
    def trace() -> torch.Tensor:
        with gdmpo.make("ring-attenuation", num_envs=2, seed=11) as env:
            policy = reference_policy(env, "random", seed=1)
            obs = env.reset()
            rows = []
            for _ in range(30):
                obs, reward, *_ = env.step(policy(obs))
                rows.append(torch.cat([obs.flatten(), reward.flatten()]))
            return torch.stack(rows)

    assert torch.equal(trace(), trace())


def test_idm_reference_makes_stop_and_go_waves_and_close_stops_workers():
    env = gdmpo.make("ring-attenuation", num_envs=1, seed=0, horizon=1500, length_range=(260, 260))
    policy = reference_policy(env, "idm")
    obs = env.reset()
    for _ in range(1500):
        obs, *_ = env.step(policy(obs))
    figures = env.episode_traffic[0]
    assert figures["speed_std"] > 0.5 and figures["collisions"] == 0  # waves: speeds spread, no crash
    assert figures["mean_speed"] < 8  # far below the 20 m/s target
    processes = list(env.workers._processes)
    env.close()
    env.close()
    assert not any(p.is_alive() for p in processes)


def test_a_vehicle_removed_by_sumo_is_reported_not_dropped():
    spec = VehicleSpec(track="ring", num_vehicles=6, length_range=(230.0, 230.0), max_accel=1.0, horizon=100,
                       dt=0.1, reward="ring", start_jitter=0.0, backend="traci")
    simulation = VehicleSimulation(spec)
    try:
        simulation.reset(0)
        obs, reward, lost = simulation.step([0.5] * 6)
        assert not lost
        simulation.sim.vehicle.remove("v2")
        after, reward, lost = simulation.step([0.5] * 6)
        assert lost and after.shape == (6, 2)
        assert (after[2] == obs[2]).all() and reward[2] == 0 and reward[3] != 0
        assert simulation.metrics()["vehicles_lost"] == 1
    finally:
        simulation.close()


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="do not fit"):
        gdmpo.make("ring-attenuation", num_vehicles=40, length_range=(220, 270))
    with pytest.raises(ValueError, match="track must be"):
        gdmpo.make("ring-attenuation", track="oval")
    with gdmpo.make("figure-eight") as env, pytest.raises(ValueError, match="constant speed"):
        reference_policy(env, "constant-speed:45")
