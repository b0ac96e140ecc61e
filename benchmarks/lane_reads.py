"""Reading a signal network's lanes: one subscription read per control step against per-lane calls.

Drives one copy of a signal task (in this process) under random phases for ``--episodes`` episodes
(the later ones start with SUMO's reload, as training does) and, after every reset and control step,
reads the observation and reward twice: with the environment's own read (vehicle subscriptions,
``gdmpo.envs.sumo.lane_reads``) and with the per-lane calls it replaced (each lane's vehicles and
halting count, each vehicle's position, the first vehicle's waiting time). It prints both times per
control step and the largest difference between the two readings (0 expected).

    python benchmarks/lane_reads.py [--env atsc-grid5x5] [--steps 100] [--episodes 2] [--seed 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import gdmpo
from gdmpo.envs.sumo.atsc import ATSCSimulation
from gdmpo.threads import configure_threads

OPTIONS = {"observe_wait": True, "observe_phase": True, "wait_weight": 0.01}  # every part of the read


def per_lane_read(sim: ATSCSimulation) -> tuple[np.ndarray, np.ndarray]:
    """The observation and reward read lane by lane, vehicle by vehicle (the reference)."""
    spec, signals, lane_api, vehicle_api = sim.spec, sim.spec.signals, sim.sim.lane, sim.sim.vehicle
    lanes = spec.max_lanes
    obs = np.zeros((len(spec.lanes), 3 * lanes), dtype=np.float32)
    reward = np.zeros(len(spec.lanes), dtype=np.float32)
    for i, (own, lengths) in enumerate(zip(spec.lanes, spec.lane_lengths)):
        obs[i, [2 * lanes + k for k in spec.green_lanes[i][sim.current[i]]]] = 1.0
        for k, (lane, length) in enumerate(zip(own, lengths)):
            vehicles = lane_api.getLastStepVehicleIDs(lane)
            positions = [vehicle_api.getLanePosition(v) for v in vehicles]
            near = sum(1 for p in positions if length - p <= signals.wave_distance)
            wait = vehicle_api.getWaitingTime(vehicles[int(np.argmax(positions))]) if vehicles else 0.0
            obs[i, k] = min(near / signals.wave_scale, signals.obs_clip)
            obs[i, lanes + k] = min(wait / signals.wait_scale, signals.obs_clip)
            reward[i] -= min(lane_api.getLastStepHaltingNumber(lane), signals.max_halting) + signals.wait_weight * wait
    return obs, reward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="atsc-grid5x5")
    parser.add_argument("--steps", type=int, default=100, help="control steps per episode")
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    configure_threads(1)
    with gdmpo.make(args.env, num_envs=1, seed=0, **OPTIONS) as env:
        spec = env.simulation_spec
    sim = ATSCSimulation(spec)
    rng = np.random.default_rng(args.seed)
    seconds = {"subscriptions": 0.0, "per-lane calls": 0.0}
    worst_obs = worst_reward = 0.0
    try:
        for episode in range(args.episodes):
            obs, reward = sim.reset(args.seed + episode)
            ref_obs, ref_reward = per_lane_read(sim)
            worst_obs = max(worst_obs, float(np.abs(obs - ref_obs).max()))
            worst_reward = max(worst_reward, float(np.abs(reward - ref_reward).max()))
            for _ in range(args.steps):
                sim.step([int(rng.integers(len(phases))) for phases in spec.phases])
                start = time.perf_counter()
                obs, reward = sim._read_lanes()
                middle = time.perf_counter()
                ref_obs, ref_reward = per_lane_read(sim)
                seconds["subscriptions"] += middle - start
                seconds["per-lane calls"] += time.perf_counter() - middle
                worst_obs = max(worst_obs, float(np.abs(obs - ref_obs).max()))
                worst_reward = max(worst_reward, float(np.abs(reward - ref_reward).max()))
        vehicles = sim.sim.vehicle.getIDCount()
    finally:
        sim.close()
    ms = {key: 1e3 * value / (args.steps * args.episodes) for key, value in seconds.items()}
    print(f"{args.env}: {len(spec.phases)} lights, {vehicles} vehicles at the end, {args.episodes} episodes of "
          f"{args.steps} control steps")
    print(f"read per control step: subscriptions {ms['subscriptions']:.3f} ms, per-lane calls "
          f"{ms['per-lane calls']:.3f} ms ({ms['per-lane calls'] / ms['subscriptions']:.1f}x)")
    print(f"largest difference: observation {worst_obs:.3g}, reward {worst_reward:.3g}")


if __name__ == "__main__":
    main()
