"""The figures behind docs/scaling.md: what one learner consumes and what one SUMO worker produces.

Measured on the 5x5 grid (``atsc-grid5x5``, DPPO's shipped config):

1. learner update throughput: agent-steps per second through one PPO update (10 epochs) of a real
   segment, with ``--threads`` torch threads;
2. one SUMO worker's speed: simulated seconds per wall second of one copy stepped through the
   environment (local process worker), and per light;
3. the round trip of one vector step's call, without SUMO: an echo simulation answering with arrays
   of the 5x5 grid's shapes, behind local process workers and behind Ray actors (local Ray), B copies.

From them it prints, on paper, how many SUMO workers one learner can keep busy on a network of
``--lights`` signals (assuming SUMO's cost grows with the number of lights, as measured per light here).

    python benchmarks/scaling.py [--threads 1] [--copies 1 4] [--lights 1024]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import gdmpo
from gdmpo import config as cfg
from gdmpo.algos import build_algorithm, prepare_env
from gdmpo.algos.collect import collect
from gdmpo.envs.sumo.workers import SumoWorkers
from gdmpo.threads import configure_threads


class EchoSimulation:
    """Answers like an ATSC simulation of ``agents`` lights (obs ``[agents, width]``, rewards), doing nothing."""

    def __init__(self, agents: int, width: int) -> None:
        self.obs = np.zeros((agents, width), dtype=np.float32)
        self.reward = np.zeros(agents, dtype=np.float32)

    def step(self, actions: list) -> tuple:
        return self.obs, self.reward, 0.0


def learner_throughput(threads: int, repeats: int = 3) -> dict[str, float]:
    """Agent-steps per second through PPO updates of one real 5x5 segment (the shipped DPPO config)."""
    config = cfg.load("configs/atsc-grid5x5/dppo.yaml", {"threads": threads})
    configure_threads(threads)
    env = prepare_env(config, gdmpo.make(config.env.id, num_envs=config.env.num_envs, seed=0))
    try:
        algorithm = build_algorithm(config, env)
        start = time.perf_counter()
        rollout, _, _ = collect(env, algorithm.agent, env.reset(), config.rollout_steps)
        collect_s = time.perf_counter() - start
    finally:
        env.close()
    samples = rollout.num_steps * rollout.num_envs * env.num_agents
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        algorithm.agent.update(rollout)
        times.append(time.perf_counter() - start)
    update_s = float(np.median(times))
    return {"agent_steps": samples, "update_s": update_s, "update_agent_steps_per_s": samples / update_s,
            "collect_s": collect_s, "copies": rollout.num_envs}


def sumo_worker_speed(steps: int = 360) -> dict[str, float]:
    """Simulated seconds per wall second of one copy of the 5x5 grid through the environment."""
    with gdmpo.make("atsc-grid5x5", num_envs=1, seed=0) as env:
        env.reset()
        generator = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        for _ in range(steps):
            env.step(torch.randint(0, 2, (1, env.num_agents), generator=generator))
        wall = time.perf_counter() - start
        interval, lights = env.control_interval, env.num_agents
    simulated = steps * interval
    return {"sim_s_per_s": simulated / wall, "lights": lights, "wall_per_step_ms": 1e3 * wall / steps,
            "light_steps_per_s": steps * lights / wall}


def call_round_trip(kind: str, copies: int, calls: int = 2000) -> float:
    """Milliseconds per ``call("step")`` of ``copies`` echo workers (process or Ray actors)."""
    if kind == "ray":
        from gdmpo.envs.sumo.ray_workers import RaySumoWorkers

        workers = RaySumoWorkers(EchoSimulation, [(25, 12)] * copies, cpus_per_worker=0)
    else:
        workers = SumoWorkers(EchoSimulation, [(25, 12)] * copies)
    try:
        actions = [([0] * 25,)] * copies
        for _ in range(50):  # warm up
            workers.call("step", actions)
        start = time.perf_counter()
        for _ in range(calls):
            workers.call("step", actions)
        return 1e3 * (time.perf_counter() - start) / calls
    finally:
        workers.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the learner")
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--lights", type=int, default=1024, help="network size for the on-paper estimate")
    args = parser.parse_args(argv)

    learner = learner_throughput(args.threads)
    print(f"learner: PPO update (10 epochs) of {learner['agent_steps']} agent-steps in {learner['update_s']:.2f} s = "
          f"{learner['update_agent_steps_per_s']:.0f} agent-steps/s ({args.threads} thread(s))")
    worker = sumo_worker_speed()
    print(f"one SUMO worker, 5x5 grid ({worker['lights']} lights): {worker['sim_s_per_s']:.0f} simulated s per s, "
          f"{worker['wall_per_step_ms']:.1f} ms per 5 s control step, {worker['light_steps_per_s']:.0f} light-steps/s")
    overhead = {}
    for kind in ("process", "ray"):
        for copies in args.copies:
            overhead[kind, copies] = call_round_trip(kind, copies)
            print(f"{kind:>7} workers, B={copies}: {overhead[kind, copies]:.3f} ms per vector step call (no SUMO)")
    from gdmpo.distributed import require_ray

    require_ray().shutdown()

    # on paper: a network of L lights, SUMO's cost per light as measured on the 5x5 grid
    lights = args.lights
    step_s = lights / worker["light_steps_per_s"]  # wall seconds of one control step of the big network
    produced = lights / (step_s + overhead["ray", 1] / 1e3)  # agent-steps per s one Ray worker delivers
    consumed = learner["update_agent_steps_per_s"]
    print(f"on paper, {lights} lights: one SUMO worker steps the network in {step_s * 1e3:.0f} ms "
          f"({5 / step_s:.1f} simulated s per s) and delivers {produced:.0f} agent-steps/s over Ray; "
          f"the learner's update consumes {consumed:.0f} agent-steps/s, so {consumed / produced:.1f} worker(s) "
          f"balance one update of equal size (collection and update alternate: B workers collect "
          f"B x as fast, the update does not)")


if __name__ == "__main__":
    main()
