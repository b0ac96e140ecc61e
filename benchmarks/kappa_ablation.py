"""The paper's Fig. 5: DMPO with κ in {1, 2, 3, 4}: return vs real env steps, and model error vs κ.

Run: ``python benchmarks/kappa_ablation.py [--env cacc-catchup] [--kappas 1 2 3 4] [--vary both]
[--steps 100000] [--seeds 0 1 2] [--set dmpo.rollouts=512 ...] [--jobs 2] [--out DIR]
[--summary-only [--finished-only]]``.

``--vary value`` changes the extended critic's and advantage's radius κ_v (the κ of the paper's
Table I), ``model`` the dynamics model's κ_p, ``both`` (default) the two together. Writes the run
directories, ``curves.csv``, ``<env>.png`` (one curve per κ) and ``summary.md`` (final return, steps
to ``--threshold``, and the model's last held-out one-step state MSE and T-step open-loop error).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from gdmpo.config import parse_assignments
from gdmpo.experiments import (
    THRESHOLDS, add_run_arguments, run_dir_of, run_jobs, steps_to_threshold, write_curves, write_summary,
)
from gdmpo.plot import plot_runs, read_curve, read_metric
from gdmpo.sweep import recorded_result

KEYS = {"value": ("ppo.value_hops",), "model": ("model.hops",), "both": ("ppo.value_hops", "model.hops")}


def last_model_errors(run_dir: str) -> tuple[float, float]:
    """The last logged ``model_state_mse`` and ``model_error_T`` of a DMPO run."""
    _, state_mse = read_metric(run_dir, "model_state_mse")
    _, error_T = read_metric(run_dir, "model_error_T")
    return (float(state_mse[-1]) if len(state_mse) else float("nan"),
            float(error_T[-1]) if len(error_T) else float("nan"))


def return_at(run_dir: str, steps: float, window: int = 3) -> tuple[float, float]:
    """``(last real step logged, mean of the last ``window`` training returns logged up to ``steps``)``:
    runs cut short compare at the step count they all reached."""
    logged, returns = read_curve(run_dir)
    upto = returns[logged <= steps][-window:]
    return float(logged[-1]) if len(logged) else 0.0, float(np.mean(upto)) if len(upto) else float("nan")


def final_return_of(run_dir: Path) -> float:
    """The final evaluation a finished run recorded (``result.json``), NaN while it is unfinished."""
    recorded = recorded_result(run_dir)
    return float(recorded["final_return"]) if recorded is not None else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="cacc-catchup")
    parser.add_argument("--kappas", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--vary", choices=sorted(KEYS), default="both")
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--summary-only", action="store_true",
                        help="summarise the run directories under --out, finished or not, without training")
    parser.add_argument("--finished-only", action="store_true",
                        help="with --summary-only: only the runs that finished (recorded their final evaluation)")
    add_run_arguments(parser)
    args = parser.parse_args()
    out = Path(args.out or f"benchmarks/results/kappa-ablation/{args.env}")
    threshold = THRESHOLDS.get(args.env, 0.0) if args.threshold is None else args.threshold
    common = parse_assignments(args.sets)
    jobs = [{"env": args.env, "algo": "dmpo", "name": f"dmpo-kappa{k}", "kappa": k, "seed": s, "steps": args.steps,
             "episodes": args.episodes, "out": str(out), "overrides": {**common, **{key: k for key in KEYS[args.vary]}}}
            for k in args.kappas for s in args.seeds]
    if args.summary_only:  # unfinished runs have no final evaluation: compare them at a common step
        found = [{**job, "run_dir": str(run_dir_of(out, job["env"], job["name"], job["seed"]))} for job in jobs]
        results = [{**r, "final_return": final_return_of(Path(r["run_dir"]))} for r in found
                   if (Path(r["run_dir"]) / "metrics.csv").is_file() and len(read_curve(r["run_dir"])[0])]
        if args.finished_only:
            results = [r for r in results if not np.isnan(r["final_return"])]
        if not results:
            raise SystemExit(f"no run under {out} has logged an episode yet")
    else:
        results = run_jobs(jobs, args.jobs, ray=args.ray)
    common_steps = min(return_at(r["run_dir"], np.inf)[0] for r in results)
    write_curves(results, out / "curves.csv")
    plot_runs([r["run_dir"] for r in results], out / f"{args.env}.png", title=f"{args.env}: DMPO, κ ({args.vary})")
    lines = [f"{args.env}: DMPO, κ varies {', '.join(KEYS[args.vary])}; {args.steps} real env steps, seeds "
             f"{args.seeds}, threshold {threshold:g}; common overrides {common}", "",
             f"Training return at {common_steps:.0f} real steps: mean of the last three logged returns up to "
             "there (every run reached it).", "",
             "| κ | final return | training return at the common step | env steps to threshold | model one-step MSE "
             "| model T-step MSE |", "| --- | --- | --- | --- | --- | --- |"]
    for k in args.kappas:
        mine = [r for r in results if r["kappa"] == k]
        if not mine:
            continue
        finals = np.array([r["final_return"] for r in mine])
        hits = [h for h in (steps_to_threshold(r["run_dir"], threshold) for r in mine) if not np.isnan(h)]
        errors = np.array([last_model_errors(r["run_dir"]) for r in mine])
        at = np.array([return_at(r["run_dir"], common_steps)[1] for r in mine])
        final = "unfinished" if np.isnan(finals).all() else f"{np.nanmean(finals):.4g} ± {np.nanstd(finals):.2g}"
        lines.append(f"| {k} | {final} | {at.mean():.4g} ± {at.std():.2g} | "
                     f"{np.mean(hits) if hits else float('nan'):.4g} ({len(hits)}/{len(mine)}) | "
                     f"{np.nanmean(errors[:, 0]):.4g} | {np.nanmean(errors[:, 1]):.4g} |")
    write_summary(lines, out)


if __name__ == "__main__":
    main()
