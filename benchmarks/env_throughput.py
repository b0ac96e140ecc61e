"""Agent-steps per second of the vectorised CACC environment for B in {1, 64, 1024}.

Run: ``python benchmarks/env_throughput.py [--env cacc-catchup] [--seconds 3]``. Actions are drawn
uniformly at random once per step (their cost is included, as a policy's would be). Prints one row per
B; the issue's target is >= 2e6 agent-steps/s at B = 1024 on a 2-core machine.
"""

from __future__ import annotations

import argparse
import time

import torch

import gdmpo


def measure(env_id: str, num_envs: int, seconds: float) -> tuple[float, int]:
    """Return (agent-steps per second, steps taken) of random actions for about ``seconds``."""
    env = gdmpo.make(env_id, num_envs=num_envs, seed=0)
    env.reset()
    gen = torch.Generator().manual_seed(0)
    shape = (num_envs, env.num_agents)
    for _ in range(20):  # warm-up
        env.step(torch.randint(env.action_space.n, shape, generator=gen))
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            env.step(torch.randint(env.action_space.n, shape, generator=gen))
        steps += 50
    elapsed = time.perf_counter() - start
    env.close()
    return steps * num_envs * env.num_agents / elapsed, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="cacc-catchup")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64, 1024])
    args = parser.parse_args()
    print(f"{args.env}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'B':>6} {'env steps/s':>12} {'agent-steps/s':>14}")
    for num_envs in args.batch:
        rate, _ = measure(args.env, num_envs, args.seconds)
        env_rate = rate / num_envs / gdmpo.make(args.env).num_agents
        print(f"{num_envs:>6} {env_rate:>12.0f} {rate:>14.3e}")


if __name__ == "__main__":
    main()
