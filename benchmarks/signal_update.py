"""Wall-clock of one PPO epoch of the phase-competition networks on a signal network's layout.

Training a signal generalist spends most of its time here (on the five-network generalist, 109 lights,
about 75 s of each iteration's 100 s), not in SUMO. The benchmark builds the config's environment once
(for its layout), then times one epoch of policy steps and one of value steps on ``--steps`` random
observations with random allowed phases, one torch thread::

    python benchmarks/signal_update.py [--config configs/atsc-generalist/dppo.yaml] [--steps 720] [--repeats 3]

It prints the layout (lights, largest phase count P, real movements R and real phases Q per copy) and
the best of ``--repeats`` epochs of each kind.
"""

from __future__ import annotations

import argparse
import time

import gdmpo  # first: it sets OpenMP's passive wait policy before torch loads it
import torch

from gdmpo import config as cfg
from gdmpo.algos import build_agent, prepare_env
from gdmpo.algos.buffers import Rollout


def random_rollout(env, steps: int, generator: torch.Generator) -> Rollout:
    """``steps`` random observations of one copy with random allowed phases (log-probs filled later)."""
    n, d = env.num_agents, env.obs_dim
    obs = torch.rand(steps, 1, n, d, generator=generator) * 2
    allowed = env.action_mask.float()
    actions = torch.multinomial(allowed, steps, replacement=True, generator=generator).t()  # [steps, n]
    zeros = torch.zeros(steps, 1, n)
    return Rollout(obs, actions[:, None], zeros.clone(), -torch.rand(steps, 1, n, generator=generator), zeros,
                   zeros.clone(), torch.zeros(steps, 1, dtype=torch.bool))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/atsc-generalist/dppo.yaml")
    parser.add_argument("--steps", type=int, default=720, help="observations per epoch (one iteration's)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = cfg.load(args.config, {})
    env = prepare_env(config, gdmpo.make(config.env.id, num_envs=1, seed=0, **config.env.options))
    try:
        torch.manual_seed(0)
        agent = build_agent(config, env)
    finally:
        env.close()
    structure = agent.policy.movements.structure
    real = structure.real_movements(torch.device("cpu"))
    print(f"{config.env.id}: {structure.num_agents} lights, P = {structure.num_phases}, "
          f"R = {real['agent'].numel()} movements, Q = {real['phase_row'].numel()} phases per copy", flush=True)
    generator = torch.Generator().manual_seed(0)
    rollout = random_rollout(env, args.steps, generator)
    data = rollout.flat()
    with torch.no_grad():  # the collecting policy's log-probabilities, so ratios start at 1
        dist = agent.policy.distribution(data.obs.reshape(-1, env.obs_dim), agent.graph_of(args.steps)[0],
                                         agent._mask(args.steps))
        data.log_probs = agent.policy.log_prob(dist, data.actions.reshape(-1)).reshape(args.steps, -1)
    advantages = torch.randn(args.steps, env.num_agents, generator=generator)
    returns = torch.randn(args.steps, env.num_agents, generator=generator)
    size = max(1, args.steps // agent.config.minibatches)
    batches = list(torch.randperm(args.steps, generator=generator).split(size))
    steps = {"policy": lambda idx: agent._policy_step(data, advantages, idx),
             "value": lambda idx: agent._value_step(data, returns, idx)}
    for name, step in steps.items():
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            for idx in batches:
                step(idx)
            best = min(best, time.perf_counter() - start)
        print(f"{name} epoch ({len(batches)} minibatches of {size} copies): {best:.2f} s", flush=True)


if __name__ == "__main__":
    main()
