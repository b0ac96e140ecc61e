"""Sample efficiency, the paper's claim: DMPO, DPPO, CPPO, IC3Net and IA2C with the same real env-step budget.

Run: ``python benchmarks/sample_efficiency.py --env cacc-catchup [--steps 100000] [--seeds 0 1 2]
[--threshold -1e5] [--set dmpo:dmpo.rollouts=512 ...] [--jobs 2] [--out DIR]``.

Each algorithm trains with ``configs/<env>/<algo>.yaml`` (plus ``--set algo:key=value`` overrides,
printed with the results) for ``--steps`` real environment steps. Model transitions are not counted.
Writes into ``--out`` (default ``benchmarks/results/sample_efficiency/<env>``):

- ``runs/<env>/<algo>-s<seed>/``: run directories (metrics.csv with model errors and timings for DMPO);
- ``curves.csv``: return vs real env steps of every run; ``<env>.png``: mean and band over seeds;
- ``summary.md``: per algorithm, the final evaluated return and the real env steps its smoothed
  training curve needs to reach ``--threshold`` (mean over the seeds that reach it), with the ratio
  DPPO / DMPO.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from gdmpo.experiments import (
    THRESHOLDS, add_run_arguments, parse_algo_assignments, run_jobs, steps_to_threshold, write_curves, write_summary,
)
from gdmpo.plot import plot_runs

ALGOS = ("dmpo", "dppo", "cppo", "ic3net", "ia2c")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="cacc-catchup")
    parser.add_argument("--algos", nargs="+", default=list(ALGOS))
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="ALGO:KEY=VALUE")
    add_run_arguments(parser)
    args = parser.parse_args()
    out = Path(args.out or f"benchmarks/results/sample_efficiency/{args.env}")
    threshold = THRESHOLDS.get(args.env, 0.0) if args.threshold is None else args.threshold
    sets = parse_algo_assignments(args.sets)
    jobs = [{"env": args.env, "algo": a, "name": a, "seed": s, "steps": args.steps, "episodes": args.episodes,
             "out": str(out), "overrides": sets.get(a, {})} for a in args.algos for s in args.seeds]
    results = run_jobs(jobs, args.jobs, ray=args.ray)
    write_curves(results, out / "curves.csv")
    plot_runs([r["run_dir"] for r in results], out / f"{args.env}.png", title=f"{args.env}: return vs real env steps")

    lines = [f"{args.env}: {args.steps} real env steps, seeds {args.seeds}, threshold {threshold:g} "
             f"(mean of 3 consecutive logged training returns); final return = {args.episodes} evaluation "
             f"episodes without training shaping.", ""]
    for algo, overrides in sets.items():
        lines.append(f"overrides for {algo}: {overrides}")
    lines += ["", "| algo | final return | env steps to threshold | seeds reaching it | train time (s) |",
              "| --- | --- | --- | --- | --- |"]
    reach: dict[str, float] = {}
    for algo in args.algos:
        mine = [r for r in results if r["algo"] == algo]
        finals = np.array([r["final_return"] for r in mine])
        hits = [steps_to_threshold(r["run_dir"], threshold) for r in mine]
        reached = [h for h in hits if not np.isnan(h)]
        reach[algo] = float(np.mean(reached)) if reached else float("nan")
        lines.append(f"| {algo} | {finals.mean():.4g} ± {finals.std():.2g} | {reach[algo]:.4g} | "
                     f"{len(reached)}/{len(mine)} | {np.mean([r['train_s'] for r in mine]):.0f} |")
    if "dmpo" in reach and "dppo" in reach:
        ratio = reach["dppo"] / reach["dmpo"]
        lines += ["", f"env steps to threshold, DPPO / DMPO: {ratio:.2f}"
                  + (" (a side never reached it)" if np.isnan(ratio) else "")]
    write_summary(lines, out)
    print(f"curves: {out / 'curves.csv'}, plot: {out / (args.env + '.png')}")


if __name__ == "__main__":
    main()
