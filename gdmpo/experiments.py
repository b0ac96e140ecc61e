"""Experiments as data: a list of jobs (config, overrides, seed, budget) trained by one runner, then summarised.

The benchmark drivers in ``benchmarks/`` are thin: they build jobs, call :func:`run_jobs` (local processes
or Ray, :func:`gdmpo.distributed.run_each`; the same path as ``gdmpo sweep``) and write their tables with
:func:`write_summary`. What several of them measure lives here too: the thresholds a learning curve must
reach and the real steps it takes (:func:`steps_to_threshold`).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from gdmpo import config as cfg
from gdmpo.distributed import run_each
from gdmpo.plot import read_curve
from gdmpo.resources import config_path
from gdmpo.run_lock import SkipLocked, Skipped
from gdmpo.sweep import finish_run

#: team-return thresholds for "steps to reach": about a tenth of the way from random play to the best
#: policies measured here (CACC: no collision; ring and figure eight: well above the stop-and-go
#: baseline; the 5x5 grid: better than max-pressure's -1 057)
THRESHOLDS = {"cacc-catchup": -1.0e5, "cacc-slowdown": -3.0e5, "ring-attenuation": 200.0,
              "figure-eight": 1.5e5, "atsc-grid5x5": -1.0e3}


def steps_to_threshold(run_dir: str | Path, threshold: float, window: int = 3) -> float:
    """First real env step at which the mean of the last ``window`` logged returns reaches ``threshold``
    (NaN if it never does)."""
    steps, returns = read_curve(run_dir)
    for i in range(len(returns)):
        if i + 1 >= window and np.mean(returns[i + 1 - window:i + 1]) >= threshold:
            return float(steps[i])
    return float("nan")


def run_dir_of(out: str | Path, env: str, name: str, seed: int) -> Path:
    """Where a benchmark keeps the run of ``name`` on ``env`` with ``seed``: ``OUT/runs/ENV/NAME-sSEED``."""
    return Path(out) / "runs" / env / f"{name}-s{seed}"


def train_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train ``job['config']`` (a file, or a shipped config by name; default the shipped ``<env>/<algo>``) on
    ``job['env']`` with ``job['overrides']`` for ``job['steps']`` real steps, then evaluate
    (:func:`gdmpo.sweep.finish_run`: a run with ``result.json`` is returned as it is, a stopped one resumes
    from its checkpoint).

    Runs in a worker process with one torch thread, so ``--jobs`` workers share the cores evenly.
    """
    run_dir = run_dir_of(job["out"], job["env"], job["name"], job["seed"])
    path = config_path(job.get("config", f"{job['env']}/{job['algo']}"))
    config = cfg.load(path, {"seed": job["seed"], "env.id": job["env"], "threads": job.get("threads", 1),
                             **job.get("overrides", {})})
    result = finish_run({"config": cfg.to_dict(config), "run_dir": str(run_dir), "steps": job["steps"],
                         "episodes": job["episodes"], "seed": job["seed"]})
    return {**job, **result}


def run_jobs(jobs: list[dict[str, Any]], workers: int, fn: Callable[[dict[str, Any]], dict[str, Any]] = train_one,
             ray: str | None = None) -> list[dict[str, Any]]:
    """Run ``fn`` (default :func:`train_one`) on every job and print each as it finishes: in a pool of
    ``workers`` local processes, or, with ``ray`` (a cluster address, or ``"local"``), as Ray tasks
    (the path of ``gdmpo sweep``; a task whose process dies is retried, and resumes where ``fn`` can).

    A run that another process is training (its directory's lock is held: a second command, or another
    machine on a shared disk) is skipped with a line saying who holds it, so several commands can work
    through one set of runs; the others still run. Stopping the benchmark (Ctrl-C or SIGTERM) stops the
    training processes too: they would otherwise run on, orphaned, and skew every timing taken afterwards
    on the machine.
    """
    start = time.perf_counter()
    results = []

    def say(line: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s] {line}", flush=True)

    if ray is None:
        runner = run_each(SkipLocked(fn), jobs, processes=workers)
    else:
        cpus = max(int(job.get("threads", 1)) for job in jobs) if jobs else 1
        runner = run_each(SkipLocked(fn), jobs, address=None if ray == "local" else ray, cpus_per_item=cpus)
    for result in runner:
        if isinstance(result, Skipped):
            say(f"skipped: {result.reason}")
            continue
        results.append(result)
        say(f"{result['env']} {result['name']} seed {result['seed']}: final return {result['final_return']:.4g} "
            f"({result['train_s']:.0f} s)")
    return results


def write_curves(results: list[dict[str, Any]], path: Path) -> None:
    """One CSV of every run's learning curve: env, algo, seed, env_steps, episode_return."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["env", "algo", "seed", "env_steps", "episode_return"])
        for r in sorted(results, key=lambda r: (r["env"], r["name"], r["seed"])):
            for step, value in zip(*read_curve(r["run_dir"])):
                writer.writerow([r["env"], r["name"], r["seed"], int(step), value])


def write_summary(lines: list[str], out: Path) -> None:
    """Print the summary table and keep it as ``summary.md``."""
    table = "\n".join(lines)
    (out / "summary.md").write_text(table + "\n")
    print(table)


def parse_algo_assignments(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["dmpo:dmpo.rollouts=512"]`` → ``{"dmpo": {"dmpo.rollouts": 512}}``: ``--set`` for one algorithm of
    several, values parsed as every ``--set`` is (:func:`gdmpo.config.parse_assignments`)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        algo, sep, assignment = item.partition(":")
        if not sep or not algo or "=" not in assignment:
            raise SystemExit(f"--set {item!r}: expected ALGO:KEY=VALUE")
        out.setdefault(algo, {}).update(cfg.parse_assignments([assignment]))
    return out


def add_run_arguments(parser: argparse.ArgumentParser, steps: int = 100_000) -> None:
    """The options every learning benchmark shares: budget, seeds, evaluation, parallel jobs, output."""
    parser.add_argument("--steps", type=int, default=steps, help="real env steps per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=16, help="evaluation episodes per final policy")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained in parallel (one thread each)")
    parser.add_argument("--out", default=None)
    add_ray_argument(parser)


def add_ray_argument(parser: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]``: run the jobs as Ray tasks, locally or on the cluster at ADDRESS."""
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="run the jobs as Ray tasks: on a local Ray, or on the cluster at ADDRESS")
