"""The paper's Fig. 4 at 1e5 real steps: DMPO, DPPO, CPPO and IC3Net (and IA2C) on the five tasks, 3 seeds.

Run (resumable: stop it at any time, run the same command again)::

    python benchmarks/paper.py [--envs cacc-catchup ...] [--algos dmpo dppo ...] [--seeds 0 1 2]
        [--steps 100000] [--episodes 16] [--jobs 1] [--out benchmarks/results/paper] [--summary-only]

Each run trains ``configs/<env>/<algo>.yaml`` for ``--steps`` real environment steps into
``<out>/runs/<env>/<algo>-s<seed>/``. Commit a run directory once it has ``result.json``: its
``result.json``, ``metrics.csv`` and ``config.yaml`` are small, and a later sitting in a fresh clone then
counts the run as finished and rebuilds the summary with it; checkpoints and TensorBoard files stay local
(``.gitignore``). A run with ``result.json`` is finished and skipped; one with a checkpoint resumes from
it (on the machine that holds the checkpoint). When a run
finishes, its final policy is evaluated for ``--episodes`` episodes without the training-only reward
shaping, and ``result.json`` records that return with the run's training wall-clock.

Then, from every finished run under ``<out>`` (this command's or an earlier one's), it writes into
``<out>``: ``curves.csv`` (return vs real env steps per run), ``fig4.png`` (one panel per task, mean and
min-max band over seeds per algorithm), ``fig6.png`` where the 5x5 grid has runs (its curves beside
DMPO's model error, the paper's Fig. 6) and ``summary.md`` (final return mean ± std over seeds, wall-
clock, the real steps each algorithm's smoothed training curve needs to reach the task's threshold, and
the DPPO/DMPO step ratio).
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from gdmpo import config as cfg
from gdmpo.config import parse_assignments
from gdmpo.experiments import (
    THRESHOLDS, add_ray_argument, run_dir_of, run_jobs, steps_to_threshold, write_curves, write_summary,
)
from gdmpo.plot import aggregate, pyplot, read_curve, read_metric
from gdmpo.sweep import RESULT_FILE, finish_run, recorded_result
from gdmpo.threads import available_cpus

ENVS = ("cacc-catchup", "cacc-slowdown", "ring-attenuation", "figure-eight", "atsc-grid5x5")
ALGOS = ("dmpo", "dppo", "cppo", "ic3net")


def last_and_best(run_dir: str, window: int = 3) -> tuple[float, float]:
    """``(last, best)`` of the means of ``window`` consecutive logged training returns: a run whose last
    mean sits far below its best collapsed late (DMPO's failure mode when the policy exploits its model)."""
    _, returns = read_curve(run_dir)
    if len(returns) < window:
        return math.nan, math.nan
    means = np.convolve(returns, np.ones(window) / window, mode="valid")
    return float(means[-1]), float(means.max())


def runs_without_directory(curves: Path, results: list[dict[str, Any]]) -> list[str]:
    """``env/algo-s<seed>`` of the runs ``curves`` lists that ``results`` (the finished run directories
    here) lack: rewriting the result files without them would drop their figures."""
    if not curves.exists():
        return []
    with curves.open(newline="") as handle:
        listed = {(row["env"], row["algo"], int(row["seed"])) for row in csv.DictReader(handle)}
    here = {(r["env"], r["name"], int(r["seed"])) for r in results}
    return [f"{env}/{algo}-s{seed}" for env, algo, seed in sorted(listed - here)]


def plural(count: int, noun: str) -> str:
    """``"1 run"``, ``"2 runs"``: a count with its noun."""
    return f"{count} {noun}{'s' * (count != 1)}"


def machines_line(results: list[dict[str, Any]]) -> str:
    """Which processors the runs finished on (``result.json``'s ``machine``), with the runs of each: a
    seed's trajectory and a run's wall-clock depend on the machine, so a table mixing machines says so."""
    counts: dict[str, int] = {}
    for r in results:
        machine = r.get("machine") or "not recorded (runs made before results named their machine)"
        counts[machine] = counts.get(machine, 0) + 1
    return "Machines: " + "; ".join(f"{machine}: {plural(count, 'run')}"
                                    for machine, count in sorted(counts.items())) + "."


def step_ratio_line(dppo: float, dmpo: float, budget: int) -> str:
    """The DPPO / DMPO ratio of real steps to the threshold (NaN: not reached). Where only one of the two
    reaches it, the other needs more than the ``budget`` of real steps, so the ratio is a bound, not NaN."""
    head = "DPPO / DMPO real steps to threshold: "
    if not (math.isnan(dppo) or math.isnan(dmpo)):
        return head + f"{dppo / dmpo:.2f}"
    if not math.isnan(dmpo):
        return head + f"more than {budget / dmpo:.2f} (DPPO did not reach it in {budget:.0e} real steps)"
    if not math.isnan(dppo):
        return head + f"less than {dppo / budget:.2f} (DMPO did not reach it in {budget:.0e} real steps)"
    return head + f"neither reached it in {budget:.0e} real steps"


def summary_lines(results: list[dict[str, Any]], steps: int) -> list[str]:
    lines = [f"# Paper runs: {steps:.0e} real env steps per run", "",
             "Final return: the last policy, evaluated for 16 episodes without training-only reward shaping "
             "(mean ± std over seeds). Steps to threshold: first real step at which the mean of three logged "
             "training returns reaches the task's threshold (mean over the seeds that reach it). Wall-clock: "
             "training time of one run (mean over seeds; the machines are named below). Training return, last / best: "
             "the last and the best mean of three consecutive logged training returns, per seed (training "
             "episodes, with any training-only shaping): a last far below the best is a late collapse.", "",
             machines_line(results), ""]
    for env in sorted({r["env"] for r in results}):
        rows = [r for r in results if r["env"] == env]
        threshold = THRESHOLDS.get(env, math.nan)
        lines += [f"## {env} (threshold {threshold:g})", "",
                  "| algorithm | seeds | final return | steps to threshold (seeds reaching it) | wall-clock per run "
                  "| training return, last / best per seed |",
                  "| --- | --- | --- | --- | --- | --- |"]
        reach: dict[str, float] = {}
        for algo in sorted({r["name"] for r in rows}):
            runs = sorted((r for r in rows if r["name"] == algo), key=lambda r: r["seed"])
            finals = np.array([r["final_return"] for r in runs])
            hits = [s for s in (steps_to_threshold(r["run_dir"], threshold) for r in runs) if not math.isnan(s)]
            reach[algo] = float(np.mean(hits)) if hits else math.nan
            lines.append(f"| {algo} | {', '.join(str(r['seed']) for r in runs)} | {finals.mean():.4g} ± "
                         f"{finals.std():.3g} | {reach[algo]:.3g} ({len(hits)}/{len(runs)}) | "
                         f"{np.mean([r['train_s'] for r in runs]):.0f} s | "
                         + ", ".join("{:.3g} / {:.3g}".format(*last_and_best(r["run_dir"])) for r in runs) + " |")
        if "dmpo" in reach and "dppo" in reach:
            lines += ["", step_ratio_line(reach["dppo"], reach["dmpo"], steps)]
        lines += traffic_lines(rows)
        lines.append("")
    return lines


def _band(ax, curves: list[tuple[np.ndarray, np.ndarray]], label: str) -> None:
    """Mean over runs and the min-max band on ``ax``, in the algorithm's own colour in every panel;
    nothing where no run logged a point yet."""
    curves = [c for c in curves if len(c[0])]
    if curves:
        grid, mean, low, high = aggregate(curves)
        color = f"C{ALGOS.index(label) if label in ALGOS else len(ALGOS)}"
        ax.plot(grid, mean, label=label, color=color)
        ax.fill_between(grid, low, high, color=color, alpha=0.2)


def traffic_lines(rows: list[dict[str, Any]]) -> list[str]:
    """For signal tasks: the final policy's mean delay and trip time per vehicle (every vehicle, unfinished
    ones included), mean ± std over seeds, per algorithm; nothing for tasks without traffic figures."""
    rows = [r for r in rows if (r.get("traffic") or {}).get("delay") is not None]
    if not rows:
        return []
    lines = ["", "Final policy's traffic (s per vehicle, all vehicles, mean ± std over seeds):"]
    for algo in sorted({r["name"] for r in rows}):
        mine = [r["traffic"] for r in rows if r["name"] == algo]
        delay, trip = np.array([t["delay"] for t in mine]), np.array([t["trip_time"] for t in mine])
        lines.append(f"- {algo}: delay {delay.mean():.1f} ± {delay.std():.1f}, trip time {trip.mean():.1f} ± "
                     f"{trip.std():.1f} ({plural(len(mine), 'seed')})")
    return lines


def plot_fig4(results: list[dict[str, Any]], path: Path) -> None:
    """One panel per task: return vs real env steps, mean and min-max band over seeds per algorithm."""
    plt = pyplot()
    envs = sorted({r["env"] for r in results})
    fig, axes = plt.subplots(1, len(envs), figsize=(4.2 * len(envs), 3.4), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for algo in sorted({r["name"] for r in results if r["env"] == env}):
            _band(ax, [read_curve(r["run_dir"]) for r in results if r["env"] == env and r["name"] == algo], algo)
        ax.set_title(env)
        ax.set_xlabel("real env steps")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("team return per episode")
    handles = {label: handle for ax in axes[0] for handle, label in zip(*ax.get_legend_handles_labels())}
    axes[0][-1].legend(handles.values(), handles.keys(), fontsize=8)  # every algorithm, whichever panel has it
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_fig6(results: list[dict[str, Any]], path: Path, env: str = "atsc-grid5x5") -> bool:
    """The paper's Fig. 6 where ``env`` has finished runs: (a) return vs real env steps per algorithm, (b)
    DMPO's held-out one-step state MSE of its models vs real env steps (mean and min-max over seeds).
    Returns whether it drew the figure."""
    runs = [r for r in results if r["env"] == env]
    if not runs:
        return False
    plt = pyplot()
    fig, (curves, error) = plt.subplots(1, 2, figsize=(8.6, 3.4))
    for algo in sorted({r["name"] for r in runs}):
        _band(curves, [read_curve(r["run_dir"]) for r in runs if r["name"] == algo], algo)
    errors = [read_metric(r["run_dir"], "model_state_mse") for r in runs if r["name"] == "dmpo"]
    _band(error, errors, "dmpo")
    if not any(len(steps) for steps, _ in errors):
        error.text(0.5, 0.5, "no finished DMPO run yet", ha="center", va="center", transform=error.transAxes)
    curves.set(title=f"(a) {env}: training return", xlabel="real env steps", ylabel="team return per episode")
    error.set(title="(b) DMPO model error", xlabel="real env steps", ylabel="one-step state MSE (held out)")
    for ax in (curves, error):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    parser.add_argument("--algos", nargs="+", default=list(ALGOS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (threads are split between them)")
    parser.add_argument("--out", default="benchmarks/results/paper")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for every run (a variant: give it its own --out)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per run (default: cores / jobs)")
    add_ray_argument(parser)
    parser.add_argument("--summary-only", action="store_true", help="only rewrite the files from finished runs")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    threads = args.threads or max(1, available_cpus() // args.jobs)
    overrides = parse_assignments(args.set)
    jobs = []
    for env, algo, seed in ((e, a, s) for e in args.envs for a in args.algos for s in args.seeds):
        config = cfg.load(f"configs/{env}/{algo}.yaml", {**overrides, "seed": seed, "threads": threads})
        jobs.append({"config": cfg.to_dict(config), "run_dir": str(run_dir_of(out, env, algo, seed)), "seed": seed,
                     "steps": args.steps, "episodes": args.episodes, "threads": threads,
                     "labels": {"env": env, "name": algo}})
    done = [j for j in jobs if recorded_result(j["run_dir"]) is not None]
    todo = [] if args.summary_only else [j for j in jobs if j not in done]
    print(f"{len(done)} of {len(jobs)} runs finished; {len(todo)} to run", flush=True)
    if todo:
        run_jobs(todo, args.jobs, finish_run, ray=args.ray)
    # every finished run under --out, not only this command's: tasks run in separate sittings share the files
    results = [{**recorded_result(path.parent), "run_dir": str(path.parent)}  # where the run is now
               for path in sorted((out / "runs").glob(f"*/*/{RESULT_FILE}"))]
    lost = runs_without_directory(out / "curves.csv", results)
    if lost:
        print(f"{len(lost)} run(s) in {out / 'curves.csv'} have no finished run directory here (made in a sitting "
              f"whose run files were not kept), e.g. {lost[0]}: the result files are left as they are. Rerun "
              "those runs, or delete curves.csv to write files of the runs here only.", flush=True)
    elif results:
        write_curves(results, out / "curves.csv")
        plot_fig4(results, out / "fig4.png")
        plot_fig6(results, out / "fig6.png")
        write_summary(summary_lines(results, args.steps), out)
    return results


if __name__ == "__main__":
    main()
