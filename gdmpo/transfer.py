"""Run a trained policy on a graph it never saw: zero-shot, optionally fine-tuned, with a report.

Shared weights make a checkpoint independent of the number of agents: what must match is one agent's
observation layout and action space. :func:`~gdmpo.checkpoints.check_fits` refuses a mismatch with the exact reason;
:func:`transfer` plays the policy on the target, optionally fine-tunes it there, and writes
``report.json`` and ``report.md`` beside the classical controllers run on the same target.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import gymnasium as gym

from gdmpo import config as cfg
from gdmpo.algos import prepare_env
from gdmpo.device import resolve_device
from gdmpo.envs import make, registry
from gdmpo.envs.controllers import reference_policy
from gdmpo.envs.signal_options import lane_feature_count
from gdmpo.graph import from_sumo
from gdmpo.checkpoints import LayoutError, check_fits, check_lane_features, is_movement_policy, load_checkpoint
from gdmpo.evaluation import acting, evaluation_env, restore_agent, run_episodes
from gdmpo.reports import agent_layout, markdown_table, per_agent_line, write_report
from gdmpo.trainer import train


#: a checkpoint cannot drive the target environment (one agent's layout differs)
TransferError = LayoutError


def _target_options(config: cfg.RunConfig, env_id: str | None, net_file: str | None,
                    route_file: str | None, options: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    if net_file is not None:
        env_id = env_id or "atsc"
        extra = {"net_file": str(net_file), **({"route_file": str(route_file)} if route_file else {})}
    else:
        extra = {}
    env_id, base = evaluation_env(config, env_id)
    if extra:  # the target's own network replaces the ones trained on
        base = {key: value for key, value in base.items() if key not in ("networks", "sumocfg", "route_file")}
    return env_id, {**base, **extra, **(options or {})}


def _references(env_id: str, options: dict[str, Any], episodes: int, seed: int, num_envs: int) -> dict[str, dict]:
    """The hand-written controllers ``env_id`` registers, each played on the same episodes."""
    out = {}
    for name in registry.spec(env_id).references:
        with make(env_id, num_envs=num_envs, seed=seed, **options) as env:
            out[name] = run_episodes(env, reference_policy(env, name, seed=seed), episodes, seed=seed)
    return out


def transfer(checkpoint: str | os.PathLike[str], *, env_id: str | None = None, net_file: str | None = None,
             route_file: str | None = None, env_options: dict[str, Any] | None = None, episodes: int = 4,
             finetune_steps: int = 0, seed: int = 0, out: str | os.PathLike[str] | None = None,
             references: bool = True, deterministic: bool = False) -> dict[str, Any]:
    """Play ``checkpoint``'s policy on a target environment (``env_id`` and/or ``net_file``), sampling
    its actions or, with ``deterministic``, taking the most likely one (a signal policy's best phase).

    With ``finetune_steps`` the policy then trains that many real steps on the target (same
    algorithm and hyper-parameters) and is evaluated again. Writes ``report.json`` and
    ``report.md`` into ``out`` (default ``<run dir>/transfer-<target>``) and returns the report.
    """
    state = load_checkpoint(checkpoint)
    config = cfg.from_dict(state["config"], str(checkpoint))
    target_id, options = _target_options(config, env_id, net_file, route_file, env_options)
    target = f"{target_id}" + (f" ({Path(net_file).name})" if net_file else "")
    num_envs = min(episodes, config.env.num_envs)
    out_dir = Path(out) if out else Path(checkpoint).resolve().parents[1] / f"transfer-{target_id}"
    out_dir.mkdir(parents=True, exist_ok=True)
    check_before_building(state, config, target_id, options, target)
    report: dict[str, Any] = {"checkpoint": str(checkpoint), "trained_on": config.env.id, "target": target,
                              "env_options": {k: str(v) for k, v in options.items()}, "deterministic": deterministic}
    device = resolve_device(config.device, fallback=True)
    with prepare_env(config, make(target_id, num_envs=num_envs, seed=seed, device=device, **options)) as env:
        agent = restore_agent(config, env, state, target)
        report["num_agents"] = env.num_agents
        report["layout"] = agent_layout(env.graph)
        report["zero_shot"] = run_episodes(env, acting(agent, deterministic), episodes, seed=seed)
    if finetune_steps > 0:
        tuned = dataclasses.replace(config, env=dataclasses.replace(config.env, id=target_id, options=options,
                                                                    eval_options={}), device=str(device),
                                    init_from=str(checkpoint))
        run_dir = out_dir / "finetune"
        train(tuned, run_dir, finetune_steps, progress=False)
        with prepare_env(tuned, make(target_id, num_envs=num_envs, seed=seed, device=device, **options)) as env:
            agent = restore_agent(tuned, env, load_checkpoint(run_dir / "checkpoints/last.pt"), target)
            played = run_episodes(env, acting(agent, deterministic), episodes, seed=seed)
            report["finetuned"] = {"env_steps": finetune_steps, **played}
    if references:
        report["references"] = _references(target_id, options, episodes, seed, num_envs)
    write_report(out_dir, "report", report, markdown(report))
    report["out"] = str(out_dir)
    return report


def check_before_building(state: dict[str, Any], config: cfg.RunConfig, target_id: str, options: dict[str, Any],
                          target: str) -> None:
    """Refuse a target the checkpoint cannot drive before any simulation starts: other kinds of agents
    (vehicles vs signals), or, for a signal network given as a file, lane or phase counts a flat policy
    was not built for (read from the network file alone)."""
    trained, wanted = registry.spec(config.env.id).agents, registry.spec(target_id).agents
    if trained != wanted:
        raise TransferError(f"checkpoint trained on {config.env.id} drives {trained}; the agents of {target} are "
                            f"{wanted}: refused before building it")
    if wanted != "signals":
        return
    lane_features = lane_feature_count(bool(options.get("observe_wait")), bool(options.get("observe_phase")))
    if is_movement_policy(state):  # any layout fits: only the lane features matter, no network to read
        check_lane_features(state, lane_features, target)
    elif options.get("net_file"):
        graph = from_sumo(options["net_file"], options.get("neighbours", "road"),
                          options.get("neighbour_distance", 1000.0))
        check_fits(state, max(len(x) for x in graph.lanes) * lane_features,
                   gym.spaces.Discrete(max(len(x) for x in graph.phases)), target, lane_features)


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table (one row per policy) with the per-agent returns below it."""
    played = ", argmax" if report.get("deterministic") else ""
    rows = [(f"learned, zero-shot{played}", report["zero_shot"])]
    if "finetuned" in report:
        rows.append((f"learned, fine-tuned {report['finetuned']['env_steps']} steps{played}", report["finetuned"]))
    rows += list(report.get("references", {}).items())
    title = f"Transfer: {report['trained_on']} → {report['target']} ({report['num_agents']} agents)"
    return (markdown_table(title, rows) + "\n" + per_agent_line(report["zero_shot"], report["layout"]["names"])
            + " (zero-shot)\n")
