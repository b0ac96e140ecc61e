"""Run a policy for whole episodes and summarise team returns."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

import torch

from gdmpo import config as cfg
from gdmpo.algos import PPO, build_agent, prepare_env
from gdmpo.checkpoints import check_fits, load_checkpoint, load_weights
from gdmpo.device import resolve_device
from gdmpo.envs import make, registry
from gdmpo.envs.base import NetworkedVecEnv
from gdmpo.reports import agent_layout

Policy = Callable[[torch.Tensor], torch.Tensor]


def run_episodes(env: NetworkedVecEnv, policy: Policy, episodes: int, seed: int | None = None) -> dict:
    """Play ``policy`` until ``episodes`` episodes have finished across the env's copies.

    Returns a summary with the team return of each episode (``returns``), their ``mean_return`` and
    ``std_return`` (population std), the per-step mean (team return / episode length), the
    per-agent returns ``[episodes, n]``, and for traffic environments ``traffic``: the episodes' mean
    trip time, delay and waiting time (s) and trips completed (``episode_traffic``: each episode's).

    With a ``seed`` the policy's own sampling is seeded too (torch's RNG, restored afterwards), so the
    same checkpoint, environment and seed give the same figures in any process, at any point of it.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    device = torch.device(env.device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        if seed is not None:
            torch.manual_seed(seed)
        return _play(env, policy, episodes, seed)


def _play(env: NetworkedVecEnv, policy: Policy, episodes: int, seed: int | None) -> dict:
    obs = env.reset(seed=seed)
    returns: list[float] = []
    lengths: list[int] = []
    agent_returns: list[torch.Tensor] = []
    traffic: list[dict[str, float]] = []
    with torch.no_grad():
        while len(returns) < episodes:
            obs, _, _, _, info = env.step(policy(obs))
            done = info["done"]
            if bool(done.any()):
                returns += info["episode_return"][done].tolist()
                lengths += info["episode_length"][done].tolist()
                agent_returns.append(info["episode_agent_return"][done].cpu())
                traffic += [f for f in env.episode_figures(done.nonzero(as_tuple=True)[0].tolist()) if f]
    returns, lengths = returns[:episodes], lengths[:episodes]
    mean = sum(returns) / episodes
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / episodes)
    extra = {}
    if traffic:
        traffic = traffic[:episodes]
        extra["traffic"] = {key: sum(t[key] for t in traffic) / len(traffic) for key in traffic[0]}
        extra["episode_traffic"] = traffic
    return {
        "episodes": episodes,
        "mean_return": mean,
        "std_return": std,
        "mean_step_return": sum(r / n for r, n in zip(returns, lengths)) / episodes,
        "returns": returns,
        "agent_returns": torch.cat(agent_returns)[:episodes].tolist(),
        **extra,
    }


#: options a checkpoint's saved config does not apply by itself: they hand SUMO arbitrary arguments (which
#: can write files anywhere), pick how simulators start, or reach a cluster; pass them again to use them
PASS_THROUGH_OPTIONS = ("sumo_options", "backend", "workers", "worker_cpus")


def withheld_options(config: cfg.RunConfig) -> list[str]:
    """The :data:`PASS_THROUGH_OPTIONS` that ``config`` (read from a checkpoint) sets and that are not applied."""
    return sorted(key for key in {**config.env.options, **config.env.eval_options} if key in PASS_THROUGH_OPTIONS)


def evaluation_env(config: cfg.RunConfig, env_id: str | None = None) -> tuple[str, dict[str, Any]]:
    """``(env_id, options)`` to evaluate ``config``'s policy on: its own environment with the
    ``eval_options`` (e.g. no training-only reward shaping), or ``env_id`` when that names another, with
    the trained options its environment registers as carried (what a signal policy reads) when both have
    the same kind of agents. ``config``
    comes from a checkpoint, which anyone may have written: :data:`PASS_THROUGH_OPTIONS` are left out."""
    if env_id is None or env_id == config.env.id:
        options = {**config.env.options, **config.env.eval_options}
        return config.env.id, {key: value for key, value in options.items() if key not in PASS_THROUGH_OPTIONS}
    source, target = registry.spec(config.env.id), registry.spec(env_id)
    if source.agents == target.agents:
        trained = config.env.options  # e.g. another signal network: the policy reads it as it was trained to
        return env_id, {key: trained[key] for key in source.carried_options if key in trained}
    return env_id, {}


def restore_agent(config: cfg.RunConfig, env: NetworkedVecEnv, state: dict[str, Any], target: str) -> PPO:
    """``config``'s agent for ``env`` (after ``prepare_env``) with the weights of checkpoint ``state``, in
    eval mode. Raises :class:`~gdmpo.checkpoints.LayoutError` naming what differs when they cannot fit."""
    check_fits(state, env.obs_dim, env.action_space, target, env.lane_features)
    agent = build_agent(config, env)
    load_weights(agent, state["agent"], f"the checkpoint's weights do not fit {target}")
    return agent.eval()


def acting(agent: PPO, deterministic: bool = False) -> Policy:
    """The agent as a policy ``obs -> actions`` that ``env.step`` takes."""

    def policy(obs: torch.Tensor) -> torch.Tensor:
        return agent.policy.to_env(agent.act(obs, deterministic)[0])

    return policy


def evaluate_checkpoint(path: str | os.PathLike[str], episodes: int = 10, seed: int = 0, deterministic: bool = False,
                        env_id: str | None = None, num_envs: int | None = None,
                        env_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Play a trained policy and summarise its team return (see :func:`run_episodes`).

    The environment is :func:`evaluation_env`'s; ``env_options`` override its options.
    """
    with restored(path, seed, num_envs, episodes, env_id, env_options) as (config, env, agent, env_id, options):
        summary = run_episodes(env, acting(agent, deterministic), episodes, seed=seed)
        layout = agent_layout(env.graph)
    return {"checkpoint": str(path), "env": env_id, "deterministic": deterministic, **summary, "layout": layout,
            "options": options, "withheld_options": [k for k in withheld_options(config) if k not in options]}


@contextmanager
def restored(path: str | os.PathLike[str], seed: int, num_envs: int | None = None, max_copies: int = 1,
             env_id: str | None = None, env_options: dict[str, Any] | None = None
             ) -> Iterator[tuple[cfg.RunConfig, NetworkedVecEnv, PPO, str, dict[str, Any]]]:
    """A checkpoint's agent restored in :func:`evaluation_env`'s environment (``env_options`` on top), with
    ``num_envs`` copies (default: its training copies, at most ``max_copies``): ``(config, env, agent,
    env_id, options)``, the environment closed on leaving."""
    state = load_checkpoint(path)
    config = cfg.from_dict(state["config"], str(path))
    env_id, options = evaluation_env(config, env_id)
    options.update(env_options or {})
    num_envs = num_envs or min(max_copies, config.env.num_envs)
    device = resolve_device(config.device, fallback=True)  # a GPU-trained policy also plays on a CPU
    with prepare_env(config, make(env_id, num_envs=num_envs, seed=seed, device=device, **options)) as env:
        yield config, env, restore_agent(config, env, state, env_id), env_id, options


def vehicle_profiles(checkpoint: str | os.PathLike[str], seed: int = 0) -> dict:
    """One episode of a trained vehicle policy (CACC, ring, figure-eight), recorded step by step:
    ``headway`` and ``speed`` ``[steps, n]`` (m, m/s) before each step, ``dt`` (s), ``env`` and ``algo``."""
    with restored(checkpoint, seed, num_envs=1) as (config, env, agent, env_id, _):
        if registry.spec(env_id).agents != "vehicles":
            raise ValueError(f"{env_id} has no vehicles: profiles are for CACC, ring and figure-eight")
        policy = acting(agent)
        obs, headways, speeds = env.reset(seed=seed), [], []
        for _ in range(env.max_episode_steps):
            headway, speed = env.vehicle_states()
            headways.append(headway[0])
            speeds.append(speed[0])
            obs, _, _, _, info = env.step(policy(obs))
            if bool(info["done"][0]):
                break
        dt = float(env.dt)
    return {"headway": torch.stack(headways).numpy(), "speed": torch.stack(speeds).numpy(), "dt": dt,
            "env": config.env.id, "algo": config.algo}
