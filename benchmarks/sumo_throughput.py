"""Simulated seconds per wall-clock second on the 5x5 grid: raw libsumo vs through the environment.

Every setting plays the same signal plan: each light holds a phase for 6 intervals of 5 s, then
switches (so yellow transitions happen).

- bare libsumo: one simulation stepped every 5 s under its own fixed-time programme, reading every
  controlled lane's vehicles and halting count; no signal commands, no trip statistics (a floor).
- simulation in-process: the environment's own per-copy simulation (``ATSCSimulation``: signal
  commands, yellow, wave observation, queue reward, SUMO trip statistics) called directly, without
  worker process, pipe or tensors: the same SUMO work as the environment.
- environment, B = 1, 2, 4: ``atsc-grid5x5`` with B worker processes (aggregate over copies), and
  the seconds one reset of all copies takes (SUMO reloads network and routes; once per episode).

Target from issue 5: the environment adds under 20 % at B = 1. SUMO's own speed on identical work varies
by ±15 % between runs here, so besides the ratio to the in-process run the benchmark reports the
environment's overhead directly: the share of the stepping wall time spent outside the (slowest)
worker's simulation step (pipe round trip, pickling, tensors, bookkeeping).

    python benchmarks/sumo_throughput.py [--seconds 3600] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import time

import torch

import gdmpo
from gdmpo.envs.sumo import shipped_network
from gdmpo.graph import from_sumo
from gdmpo.graph.sumo import sumo_binary


def raw_libsumo(seconds: int, queue: "mp.Queue") -> None:
    """In a fresh process (libsumo holds one simulation per process): sim-seconds per wall second."""
    import libsumo

    net, routes = shipped_network("grid5x5")
    lanes = [lane for agent in from_sumo(net).lanes for lane in agent]
    libsumo.start([sumo_binary("sumo"), "-n", net, "-r", routes, "--seed", "0", "--no-step-log", "true",
                   "--no-warnings", "true", "--time-to-teleport", "600"])
    start = time.perf_counter()
    for t in range(5, seconds + 1, 5):
        libsumo.simulationStep(t)
        for lane in lanes:
            libsumo.lane.getLastStepHaltingNumber(lane)
            for vehicle in libsumo.lane.getLastStepVehicleIDs(lane):
                libsumo.vehicle.getLanePosition(vehicle)
    queue.put(seconds / (time.perf_counter() - start))
    libsumo.close()


def in_process(seconds: int, queue: "mp.Queue") -> None:
    """In a fresh process: the environment's simulation object stepped directly."""
    from gdmpo.envs.sumo.atsc import ATSCSimulation

    with gdmpo.make("atsc-grid5x5", num_envs=1, seed=0, episode_seconds=seconds) as env:
        spec, n = dataclasses.replace(env.simulation_spec, workdir=None), env.num_agents
    simulation = ATSCSimulation(spec)
    # the SUMO seed of copy 0's first episode in an environment made with seed=0: the same traffic
    simulation.reset(int(torch.randint(0, 2**31 - 1, (1,), generator=torch.Generator().manual_seed(0))))
    start = time.perf_counter()
    for k in range(seconds // 5):
        simulation.step([(k // 6) % 2] * n)
    queue.put(seconds / (time.perf_counter() - start))
    simulation.close()


def in_fresh_process(target, seconds: int) -> float:
    queue: mp.Queue = mp.get_context("spawn").Queue()
    process = mp.get_context("spawn").Process(target=target, args=(seconds, queue))
    process.start()
    rate = queue.get()
    process.join()
    return rate


def through_env(seconds: int, workers: int) -> tuple[float, float, float]:
    """(sim-seconds per wall second while stepping, share of the wall time spent outside the slowest
    worker's simulation step, seconds of one reset). The time limit lies past the measured steps, so no
    episode-end reload (timed separately) falls into the stepping figure."""
    with gdmpo.make("atsc-grid5x5", num_envs=workers, seed=0, episode_seconds=seconds + 5) as env:
        env.reset()
        start = time.perf_counter()
        for k in range(seconds // 5):
            env.step(torch.full((workers, env.num_agents), (k // 6) % 2))
        wall = time.perf_counter() - start
        inside = max(env.workers.call("busy_seconds", [()] * workers))
        start = time.perf_counter()
        env.reset()
        return workers * seconds / wall, 1.0 - inside / wall, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    bare = in_fresh_process(raw_libsumo, args.seconds)
    simulation = in_fresh_process(in_process, args.seconds)
    print(f"5x5 grid, {args.seconds} s episodes, {mp.cpu_count()} cores")
    print(f"{'setting':<28}{'sim s / wall s':>16}{'vs in-process':>15}{'overhead':>10}{'reset (s)':>11}")
    print(f"{'bare libsumo':<28}{bare:>16.0f}{bare / simulation:>15.2f}")
    print(f"{'simulation in-process':<28}{simulation:>16.0f}{1.0:>15.2f}")
    for workers in args.workers:
        rate, overhead, reset_s = through_env(args.seconds, workers)
        print(f"{f'environment, B = {workers}':<28}{rate:>16.0f}{rate / simulation:>15.2f}{overhead:>10.1%}"
              f"{reset_s:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
