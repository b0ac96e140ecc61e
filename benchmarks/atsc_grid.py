"""Traffic signals on the 5x5 grid: learned policies beside the classical controllers.

Run: ``python benchmarks/atsc_grid.py [--env atsc-grid5x5] [--algos dppo dmpo] [--steps 30000]
[--seeds 0] [--episodes 4] [--set dmpo:dmpo.rollouts=256 ...] [--jobs 2] [--out DIR]``.

Trains each algorithm with ``configs/atsc-grid5x5/<algo>.yaml`` (on ``--env``) for ``--steps`` real control steps, then
plays its final policy and the fixed-time and max-pressure controllers for ``--episodes`` episodes
on the same seeds. Writes ``runs/``, ``curves.csv``, ``<env>.png`` and ``summary.md`` (team return,
SUMO's mean trip time, delay and waiting time per completed trip) into ``--out`` (default
``benchmarks/results/atsc/<env>``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import add_run_arguments, run_jobs, write_curves, write_summary
from sample_efficiency import parse_sets

import gdmpo
from gdmpo.envs.controllers import reference_policy
from gdmpo.evaluation import run_episodes
from gdmpo.plot import plot_runs

CONTROLLERS = ("fixed-time", "max-pressure")


def evaluate_controller(env_id: str, name: str, episodes: int, seed: int, num_envs: int) -> dict:
    """Team return and SUMO trip statistics of a classical controller."""
    with gdmpo.make(env_id, num_envs=num_envs, seed=seed) as env:
        start = time.perf_counter()
        summary = run_episodes(env, reference_policy(env, name, seed=seed), episodes, seed=seed)
    return {"name": name, "final_return": summary["mean_return"], "std": summary["std_return"],
            "traffic": summary["traffic"], "seconds": time.perf_counter() - start}


def row(name: str, returns: list[float], traffic: list[dict], note: str) -> str:
    mean = {key: np.mean([t[key] for t in traffic]) for key in ("trip_time", "delay", "waiting_time", "arrived")}
    return (f"| {name} | {np.mean(returns):.5g} ± {np.std(returns):.2g} | {mean['trip_time']:.1f} | "
            f"{mean['delay']:.1f} | {mean['waiting_time']:.1f} | {mean['arrived']:.0f} | {note} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="atsc-grid5x5")
    parser.add_argument("--algos", nargs="+", default=["dppo", "dmpo"])
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="ALGO:KEY=VALUE")
    add_run_arguments(parser, steps=30_000)
    parser.set_defaults(seeds=[0], episodes=4)
    args = parser.parse_args()
    out = Path(args.out or f"benchmarks/results/atsc/{args.env}")
    sets = parse_sets(args.sets)
    jobs = [{"env": args.env, "algo": a, "name": a, "seed": s, "steps": args.steps, "episodes": args.episodes,
             "out": str(out), "overrides": sets.get(a, {}), "config": f"configs/atsc-grid5x5/{a}.yaml"}
            for a in args.algos for s in args.seeds]
    results = run_jobs(jobs, args.jobs)
    write_curves(results, out / "curves.csv")
    plot_runs([r["run_dir"] for r in results], out / f"{args.env}.png", title=f"{args.env}: return vs control steps")

    lines = [f"{args.env}: learned policies after {args.steps} real control steps (seeds {args.seeds}) and "
             f"classical controllers; {args.episodes} evaluation episodes each, seed 1000 + training seed.", ""]
    for algo, overrides in sets.items():
        lines.append(f"overrides for {algo}: {overrides}")
    lines += ["", "| policy | team return | trip time, all vehicles (s) | delay, all vehicles (s) | waiting (s) | arrived | note |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for algo in args.algos:
        mine = [r for r in results if r["algo"] == algo]
        lines.append(row(algo, [r["final_return"] for r in mine], [r["traffic"] for r in mine],
                         f"train {np.mean([r['train_s'] for r in mine]):.0f} s"))
    for name in CONTROLLERS:
        found = [evaluate_controller(args.env, name, args.episodes, 1000 + s, min(args.episodes, 2)) for s in args.seeds]
        lines.append(row(name, [f["final_return"] for f in found], [f["traffic"] for f in found], "reference"))
    write_summary(lines, out)


if __name__ == "__main__":
    main()
