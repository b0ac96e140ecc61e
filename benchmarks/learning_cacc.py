"""DPPO and CPPO on CACC Catch-up and Slow-down, 3 seeds each, next to the constant-action policies.

Run: ``python benchmarks/learning_cacc.py [--steps 60000] [--seeds 0 1 2] [--jobs 2] [--out DIR]``.

Trains every (env, algo, seed) with ``configs/<env>/<algo>.yaml`` for ``--steps`` real env steps,
evaluates each final policy for ``--episodes`` episodes without the training-only shaping term, and
writes into ``--out`` (default ``benchmarks/results/learning_cacc``):

- ``runs/<env>/<algo>-s<seed>/``: the run directories (metrics.csv, checkpoints, TensorBoard);
- ``curves.csv``: env, algo, seed, env_steps, episode_return of every run;
- ``<env>.png``: return vs env steps, mean and min-max band across seeds (``gdmpo plot``);
- ``summary.md``: the table printed at the end.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import gdmpo
from gdmpo.envs.controllers import ConstantPolicy
from gdmpo.evaluation import run_episodes
from gdmpo.experiments import add_run_arguments, run_jobs, write_curves, write_summary
from gdmpo.plot import plot_runs

ENVS = ("cacc-catchup", "cacc-slowdown")
ALGOS = ("dppo", "cppo")


def constant_returns(env_id: str, episodes: int) -> dict[int, float]:
    out = {}
    for action in range(4):
        env = gdmpo.make(env_id, num_envs=8, seed=1000, train_shaping=False)
        out[action] = run_episodes(env, ConstantPolicy(env, action), episodes, seed=1000)["mean_return"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    add_run_arguments(parser, steps=60_000)
    args = parser.parse_args()
    out = Path(args.out or "benchmarks/results/learning_cacc")
    jobs = [{"env": e, "algo": a, "name": a, "seed": s, "steps": args.steps, "episodes": args.episodes,
             "out": str(out)} for e in args.envs for a in ALGOS for s in args.seeds]
    results = run_jobs(jobs, args.jobs, ray=args.ray)

    write_curves(results, out / "curves.csv")

    lines = [f"Team return (no training shaping), mean ± std over seeds {args.seeds}, {args.steps} env steps, "
             f"{args.episodes} evaluation episodes per policy.", "",
             "| env | policy | return |", "| --- | --- | --- |"]
    for env_id in args.envs:
        dirs = [r["run_dir"] for r in results if r["env"] == env_id]
        plot_runs(dirs, out / f"{env_id}.png", title=f"{env_id}: DPPO vs CPPO")
        for algo in ALGOS:
            finals = np.array([r["final_return"] for r in results if r["env"] == env_id and r["algo"] == algo])
            lines.append(f"| {env_id} | {algo} | {finals.mean():.4g} ± {finals.std():.2g} |")
        for action, value in constant_returns(env_id, args.episodes).items():
            lines.append(f"| {env_id} | constant action {action} | {value:.4g} |")
    write_summary(lines, out)
    print(f"curves: {out / 'curves.csv'}, plots: {', '.join(str(out / f'{e}.png') for e in args.envs)}")


if __name__ == "__main__":
    main()
