"""Sweeps: every seed x every combination of config overrides, each trial a normal run, run on Ray.

A sweep is data: a config, seeds, and a grid ``{"ppo.lr_policy": [3e-4, 1e-3], ...}``. Each
(configuration, seed) pair is a *trial*, trained into ``OUT/<configuration>/s<seed>/`` as ``gdmpo train``
would (``config.yaml``, ``metrics.csv``, checkpoints), so ``gdmpo plot`` / ``eval`` / ``transfer`` read
it. Trials run as Ray tasks, on a local Ray instance or on a cluster (``address``).

Re-running a sweep is safe and cheap: a trial with ``result.json`` is finished and skipped, one with a
checkpoint resumes from it (a trial whose process is killed is also retried by Ray, and resumes).
At the end ``OUT/summary.md`` gives each configuration's final return (mean ± std over seeds) and
``OUT/curves.png`` its learning curves.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gdmpo import config as cfg
from gdmpo.checkpoints import atomic_write_text
from gdmpo.plot import pyplot
from gdmpo.run_lock import SkipLocked, Skipped
from gdmpo.threads import machine_description


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: a configuration (its ``label`` and ``overrides``) with one seed."""

    label: str
    overrides: dict[str, Any]
    seed: int
    run_dir: Path


def parse_grid(pairs: Sequence[str]) -> dict[str, list[Any]]:
    """``["ppo.lr_policy=3e-4,1e-3", "policy_net.hidden=[64,64],[128,128]"]`` → ``{key: [values]}``
    (values parsed as YAML; commas inside brackets belong to the value)."""
    grid: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ValueError(f"--grid expects key=value1,value2,..., got {pair!r}")
        grid[key.strip()] = [cfg.parse_value(v, f"--grid {key.strip()}", exponent_numbers=False)  # labels as typed
                             for v in _top_level_split(values)]
    return grid


def _top_level_split(text: str) -> list[str]:
    """Split on commas outside brackets: ``"[64,64],[128,128]"`` → ``["[64,64]", "[128,128]"]``."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    return [*parts, text[start:]]


def configurations(grid: dict[str, list[Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every combination of the grid's values: ``(label, overrides)``; ``("base", {})`` for no grid."""
    if not grid:
        return [("base", {})]
    keys = list(grid)
    out = []
    for values in itertools.product(*(grid[k] for k in keys)):
        overrides = dict(zip(keys, values))
        out.append((",".join(f"{k}={v}" for k, v in overrides.items()), overrides))
    return out


def plan(out: str | os.PathLike[str], seeds: Sequence[int], grid: dict[str, list[Any]]) -> list[Trial]:
    """The trials of a sweep, configuration-major, with their run directories under ``out``."""
    return [Trial(label, overrides, seed, Path(out) / label.replace("/", "_") / f"s{seed}")
            for label, overrides in configurations(grid) for seed in seeds]


RESULT_FILE = "result.json"  # a run's final evaluation, written last: a run that has one is finished


def recorded_result(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The result a finished run recorded (:data:`RESULT_FILE` in ``run_dir``), or None while it is not."""
    path = Path(run_dir) / RESULT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def finish_run(job: dict[str, Any]) -> dict[str, Any]:
    """Bring one run to ``job['steps']`` real steps, evaluate its final policy once, record ``result.json``.

    ``job`` holds ``config`` (a run config as a dict), ``run_dir``, ``steps``, ``episodes`` and ``seed``;
    ``labels`` (copied into the result) and ``cwd`` (where relative paths in the config resolve) are
    optional. A run with ``result.json`` is returned as it is; one with a checkpoint resumes from it.
    """
    from gdmpo.evaluation import evaluate_checkpoint
    from gdmpo.trainer import resume_or_start

    if job.get("cwd") and os.path.isdir(job["cwd"]):
        os.chdir(job["cwd"])  # a Ray worker starts elsewhere; relative paths mean the sweep's directory
    directory = Path(job["run_dir"])
    recorded = recorded_result(directory)
    if recorded is not None:
        return recorded
    start = time.perf_counter()
    trainer = resume_or_start(cfg.from_dict(job["config"], str(directory / "config.yaml")), directory)
    try:
        summary = trainer.train(job["steps"], progress=False)
    finally:
        trainer.close()
    evaluation = evaluate_checkpoint(directory / "checkpoints/last.pt", episodes=job["episodes"],
                                     seed=1000 + job["seed"])
    result = {**job.get("labels", {}), "seed": job["seed"], "run_dir": str(directory),
              "env_steps": summary["env_steps"], "train_s": summary["wall_s"],
              "final_return": evaluation["mean_return"], "final_std": evaluation["std_return"],
              "traffic": evaluation.get("traffic"), "session_s": time.perf_counter() - start,
              "machine": machine_description()}
    atomic_write_text(directory / RESULT_FILE, json.dumps(result, indent=1))
    return result


def run_sweep(config_path: str | os.PathLike[str], seeds: Sequence[int], grid: dict[str, list[Any]],
              out: str | os.PathLike[str], steps: int | None = None, episodes: int = 16,
              address: str | None = None, cpus_per_trial: int = 1, retries: int = 2,
              processes: int | None = None) -> list[dict[str, Any]]:
    """Run every trial not finished yet on Ray (or, with ``processes``, in that many local processes: no
    Ray needed), then write ``summary.md`` and ``curves.png`` into ``out``.

    Every configuration is built and checked here first, so a bad key or value fails before any trial
    starts. A trial that another process is running (a second sweep over the same ``out``) is skipped
    with a line saying who holds it. Returns the results of all finished trials, finished now or before.
    """
    from gdmpo.distributed import cluster_cpus, connect, run_each

    out = Path(out).resolve()
    trials = plan(out, seeds, grid)
    jobs = []
    for trial in trials:
        config = cfg.load(config_path, {**trial.overrides, "seed": trial.seed, "threads": cpus_per_trial})
        jobs.append({"config": cfg.to_dict(config), "run_dir": str(trial.run_dir), "seed": trial.seed,
                     "steps": steps if steps is not None else config.total_env_steps, "episodes": episodes,
                     "labels": {"env": config.env.id, "name": trial.label}, "cwd": os.getcwd()})
    todo = [job for job in jobs if recorded_result(job["run_dir"]) is None]
    print(f"sweep {config_path}: {len(trials)} trials ({len(trials) - len(todo)} finished before), "
          f"results in {out}", flush=True)
    if todo:
        if processes is None:
            connect(address)
            print(f"Ray cluster: {cluster_cpus():g} CPUs, {cpus_per_trial} per trial", flush=True)
        else:
            print(f"{processes} local processes, {cpus_per_trial} torch threads per trial", flush=True)
        start = time.perf_counter()
        runner = run_each(SkipLocked(finish_run), todo, processes=processes, address=address,
                          cpus_per_item=cpus_per_trial, retries=retries)
        for count, result in enumerate(runner, 1):
            what = (f"skipped: {result.reason}" if isinstance(result, Skipped) else
                    f"{result['name']} seed {result['seed']}: final return {result['final_return']:.4g} "
                    f"({result['env_steps']} steps, {result['train_s']:.0f} s training)")
            print(f"[{time.perf_counter() - start:6.0f} s] {count}/{len(todo)} {what}", flush=True)
    results = []
    for job in jobs:
        recorded = recorded_result(job["run_dir"])
        if recorded is not None:  # read where the run is now: a sweep folder copied elsewhere still reports
            results.append({**recorded, "run_dir": job["run_dir"]})
    write_report(results, out)
    return results


def summary_lines(results: list[dict[str, Any]]) -> list[str]:
    """The sweep's table: one row per configuration, final return mean ± std over its seeds."""
    lines = ["# Sweep results", "",
             "Final return: the last policy of each run, evaluated without training-only reward shaping; "
             "mean ± std over seeds.", "",
             "| configuration | env | seeds | final return | per seed | training time per run |",
             "| --- | --- | --- | --- | --- | --- |"]
    for label in dict.fromkeys(r["name"] for r in results):
        runs = sorted((r for r in results if r["name"] == label), key=lambda r: r["seed"])
        finals = np.array([r["final_return"] for r in runs])
        lines.append(f"| {label} | {runs[0]['env']} | {', '.join(str(r['seed']) for r in runs)} | "
                     f"{finals.mean():.4g} ± {finals.std():.3g} | {', '.join(f'{f:.4g}' for f in finals)} | "
                     f"{np.mean([r['train_s'] for r in runs]):.0f} s |")
    return lines


def write_report(results: list[dict[str, Any]], out: Path) -> None:
    """``summary.md`` (printed too) and ``curves.png`` (mean and min-max band over seeds per configuration)."""
    text = "\n".join(summary_lines(results)) + "\n"
    atomic_write_text(out / "summary.md", text)
    print(text, end="")
    plot_curves(results, out / "curves.png")
    print(f"wrote {out / 'summary.md'} and {out / 'curves.png'}")


def plot_curves(results: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()

    from gdmpo.plot import aggregate, read_curve

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label in dict.fromkeys(r["name"] for r in results):
        curves = [c for c in (read_curve(r["run_dir"]) for r in results if r["name"] == label) if len(c[0])]
        if not curves:
            continue
        grid, mean, low, high = aggregate(curves)
        line, = ax.plot(grid, mean, label=f"{label} ({len(curves)} seeds)")
        ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("real env steps")
    ax.set_ylabel("team return per episode")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["Trial", "parse_grid", "configurations", "plan", "finish_run", "run_sweep", "write_report"]
