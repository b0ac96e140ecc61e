"""Shared by the learning benchmarks: train one (env, algo, seed) job in a worker, gather curves."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

from gdmpo import config as cfg
from gdmpo.plot import read_curve
from gdmpo.distributed import run_each
from gdmpo.run_lock import SkipLocked, Skipped
from gdmpo.sweep import finish_run


def run_dir_of(out: str | Path, env: str, name: str, seed: int) -> Path:
    """Where a benchmark keeps the run of ``name`` on ``env`` with ``seed``: ``OUT/runs/ENV/NAME-sSEED``."""
    return Path(out) / "runs" / env / f"{name}-s{seed}"


def train_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train ``job['config']`` (default ``configs/<env>/<algo>.yaml``) on ``job['env']`` with ``job['overrides']``
    for ``job['steps']`` real steps, then evaluate (:func:`gdmpo.sweep.finish_run`: a run with
    ``result.json`` is returned as it is, a stopped one resumes from its checkpoint).

    Runs in a worker process with one torch thread, so ``--jobs`` workers share the cores evenly.
    """
    run_dir = run_dir_of(job["out"], job["env"], job["name"], job["seed"])
    path = job.get("config", f"configs/{job['env']}/{job['algo']}.yaml")
    config = cfg.load(path, {"seed": job["seed"], "env.id": job["env"], "threads": job.get("threads", 1),
                             **job.get("overrides", {})})
    result = finish_run({"config": cfg.to_dict(config), "run_dir": str(run_dir), "steps": job["steps"],
                         "episodes": job["episodes"], "seed": job["seed"]})
    return {**job, **result}


def write_curves(results: list[dict[str, Any]], path: Path) -> None:
    """One CSV of every run's learning curve: env, algo, seed, env_steps, episode_return."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["env", "algo", "seed", "env_steps", "episode_return"])
        for r in sorted(results, key=lambda r: (r["env"], r["name"], r["seed"])):
            for step, value in zip(*read_curve(r["run_dir"])):
                writer.writerow([r["env"], r["name"], r["seed"], int(step), value])


def add_run_arguments(parser, steps: int = 100_000) -> None:
    """The options every learning benchmark shares: budget, seeds, evaluation, parallel jobs, output."""
    parser.add_argument("--steps", type=int, default=steps, help="real env steps per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=16, help="evaluation episodes per final policy")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained in parallel (one thread each)")
    parser.add_argument("--out", default=None)
    add_ray_argument(parser)


def add_ray_argument(parser) -> None:
    """``--ray [ADDRESS]``: run the jobs as Ray tasks, locally or on the cluster at ADDRESS."""
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="run the jobs as Ray tasks: on a local Ray, or on the cluster at ADDRESS")


def parse_value(text: str) -> Any:
    """A ``--set`` value, parsed as the ``gdmpo`` command parses it (:func:`gdmpo.config.parse_value`)."""
    return cfg.parse_value(text, "--set")


def run_jobs(jobs: list[dict[str, Any]], workers: int, fn=train_one, ray: str | None = None) -> list[dict[str, Any]]:
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

    def report(result: dict[str, Any] | Skipped) -> None:
        if isinstance(result, Skipped):
            say(f"skipped: {result.reason}")
            return
        results.append(result)
        say(f"{result['env']} {result['name']} seed {result['seed']}: final return {result['final_return']:.4g} "
            f"({result['train_s']:.0f} s)")

    if ray is None:
        runner = run_each(SkipLocked(fn), jobs, processes=workers)
    else:
        cpus = max(int(job.get("threads", 1)) for job in jobs) if jobs else 1
        runner = run_each(SkipLocked(fn), jobs, address=None if ray == "local" else ray, cpus_per_item=cpus)
    for result in runner:
        report(result)
    return results


def write_summary(lines: list[str], out: Path) -> None:
    """Print the summary table and keep it as ``summary.md``."""
    table = "\n".join(lines)
    (out / "summary.md").write_text(table + "\n")
    print(table)
