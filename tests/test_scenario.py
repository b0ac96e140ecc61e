"""Real-city scenarios: time windows, .sumocfg files, several route files, demand scale, honest traffic metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import gdmpo
from gdmpo.envs.sumo.scenario import first_departure, make_scenario, read_sumocfg

NET = Path("graphs/grid3x3.net.xml").resolve()
ROUTES = Path("graphs/grid3x3.rou.xml").resolve()
MORNING = 25200  # 07:00


def shifted_routes(tmp_path: Path, offset: int, name: str = "morning.rou.xml", keep: str = "") -> Path:
    """The shipped 3x3 flows moved ``offset`` seconds later (a route file that models a morning);
    ``keep`` keeps only the flows whose id starts with it."""
    text = ROUTES.read_text()
    text = re.sub(r'(begin|end)="(\d+(?:\.\d+)?)"', lambda m: f'{m.group(1)}="{float(m.group(2)) + offset:g}"', text)
    if keep:
        text = "\n".join(line for line in text.splitlines() if "<flow" not in line or f'id="{keep}' in line)
    if keep == "f2":  # the vehicle type is defined once, in the first file
        text = "\n".join(line for line in text.splitlines() if "<vType" not in line)
    out = tmp_path / name
    out.write_text(text)
    return out


def test_a_window_before_the_first_departure_is_refused_with_both_times(tmp_path):
    routes = shifted_routes(tmp_path, MORNING)
    assert first_departure([str(routes)]) == MORNING
    with pytest.raises(ValueError, match=r"no vehicle departs in the window 0-3600 s.*first departure is at 25200 s"):
        gdmpo.make("atsc", net_file=str(NET), route_file=str(routes))


def test_the_morning_window_with_a_warm_up_runs_the_traffic(tmp_path):
    routes = shifted_routes(tmp_path, MORNING)
    with gdmpo.make("atsc", num_envs=1, seed=0, net_file=str(NET), route_file=str(routes), begin=MORNING,
                    warmup_seconds=60, episode_seconds=120) as env:
        assert env.max_episode_steps == 24 and env.scenario.control_start == MORNING + 60
        env.reset()
        for _ in range(24):
            env.step(torch.zeros(1, 9, dtype=torch.long))
        figures = env.traffic_metrics()[0]
    assert figures["departed"] > 5 and figures["delay"] > 0


def test_sumocfg_gives_network_routes_and_window_and_options_override_it(tmp_path):
    early, late = shifted_routes(tmp_path, MORNING, "a.rou.xml", "f1"), shifted_routes(tmp_path, MORNING, "b.rou.xml", "f2")
    cfg = tmp_path / "city.sumocfg"
    cfg.write_text(f'<configuration><input><net-file value="{NET}"/><route-files value="a.rou.xml,b.rou.xml"/>'
                   f'</input><time><begin value="7:00:00"/><end value="{MORNING + 300}"/></time></configuration>')
    assert read_sumocfg(cfg)["begin"] == MORNING
    scenario = make_scenario(sumocfg=cfg)
    assert scenario.route_files == (str(early), str(late)) and scenario.begin == MORNING
    assert scenario.episode_seconds == 300
    assert make_scenario(sumocfg=cfg, episode_seconds=100).episode_seconds == 100  # explicit options win
    with gdmpo.make("atsc", num_envs=1, seed=0, sumocfg=str(cfg), warmup_seconds=100) as env:
        assert env.max_episode_steps == 40  # (300 - 100) s of control in 5 s steps
        env.reset()
        for _ in range(12):
            env.step(torch.zeros(1, 9, dtype=torch.long))
        both = env.traffic_metrics()[0]["departed"]
    with gdmpo.make("atsc", num_envs=1, seed=0, net_file=str(NET), route_file=str(early), begin=MORNING,
                    warmup_seconds=100, episode_seconds=200) as env:
        env.reset()
        for _ in range(12):
            env.step(torch.zeros(1, 9, dtype=torch.long))
        one = env.traffic_metrics()[0]["departed"]
    assert both > one > 0  # the second route file's flows are on the roads too


def test_demand_scale_and_refused_sumo_options():
    def departed(scale: float) -> float:
        with gdmpo.make("atsc", num_envs=1, seed=0, net_file=str(NET), route_file=str(ROUTES), episode_seconds=200,
                        scale=scale) as env:
            env.reset()
            for _ in range(20):
                env.step(torch.zeros(1, 9, dtype=torch.long))
            return env.traffic_metrics()[0]["departed"]

    assert departed(2.0) > 1.5 * departed(1.0)
    with pytest.raises(ValueError, match="--begin is set by gdmpo; use the environment option 'begin'"):
        gdmpo.make("atsc", net_file=str(NET), route_file=str(ROUTES), sumo_options=["--begin", "100"])


def test_delay_counts_the_vehicles_a_policy_leaves_stuck():
    """Holding every light on its first phase starves the cross streets: fewer vehicles finish, and
    those still queued count in the all-vehicle delay, so it is worse than max-pressure's."""
    from gdmpo.envs.controllers import reference_policy

    figures = {}
    for name in ("constant:0", "max-pressure"):
        with gdmpo.make("atsc", num_envs=1, seed=0, net_file=str(NET), route_file=str(ROUTES),
                        episode_seconds=600) as env:
            policy = reference_policy(env, name, seed=0)
            obs = env.reset()
            for _ in range(env.max_episode_steps - 1):
                obs, *_ = env.step(policy(obs))
            figures[name] = env.traffic_metrics()[0]
    stuck, served = figures["constant:0"], figures["max-pressure"]
    assert stuck["in_network"] + stuck["waiting_to_insert"] > served["in_network"] + served["waiting_to_insert"]
    assert stuck["delay"] > served["delay"] and stuck["throughput"] < served["throughput"]
    assert served["departed"] == served["arrived"] + served["in_network"]


def test_an_episode_in_which_nothing_departs_is_an_error_naming_the_window():
    from gdmpo.envs import SumoError

    with gdmpo.make("atsc", num_envs=1, seed=0, net_file=str(NET), route_file=str(ROUTES), episode_seconds=20,
                    scale=0.0001) as env:  # the flows start at 0 s, but almost no demand is left
        env.reset()
        with pytest.raises(SumoError, match=r"no vehicle departed in the window 0-20 s from grid3x3.rou.xml"):
            for _ in range(env.max_episode_steps):
                env.step(torch.zeros(1, 9, dtype=torch.long))
