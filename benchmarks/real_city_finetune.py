"""Fine-tuning a generalist on a real city it never saw: DPPO and DMPO, after 5, 10 and 20 episodes.

    pip install -e ".[scenarios]"
    python benchmarks/real_city_finetune.py --generalist RUN_DIR/checkpoints/last.pt
        [--maps cologne8 ingolstadt21] [--algos dppo dmpo] [--seeds 0] [--budgets 5 10 20]
        [--out benchmarks/results/real-cities/training]
    python benchmarks/real_cities.py --learned benchmarks/results/real-cities/training/runs/finetune/*/* --play argmax

Each run starts from the generalist's weights (``init_from``: policy and critic; DMPO also takes its
dynamics model when the generalist has one, otherwise it learns one from the city's first episode) and
trains ``configs/atsc/<algo>.yaml`` on ``resco:<map>`` for the smallest budget; the next budget copies
that run and continues it, so the 20-episode policy is the 10-episode one trained 10 episodes more.
Runs live in ``OUT/runs/finetune/e<budget>/<map>-<algo>-s<seed>/`` and resume where they stopped;
``metrics.csv`` holds each training episode's RESCO delay. DMPO uses the model from the second episode
(``dmpo.warmup_env_steps``: one episode), as a few-episode budget asks.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from gdmpo import config as cfg
from gdmpo.envs.sumo.resco import SCENARIOS
from gdmpo.plot import read_metric
from gdmpo.trainer import Trainer, resume_or_start

#: decisions per one-hour episode at RESCO's timing (10 s each): one training iteration of configs/atsc
EPISODE_STEPS = 360
#: what fine-tuning changes in configs/atsc/<algo>.yaml: DMPO may branch from its model after one episode
FINETUNE_OVERRIDES = {"dppo": {}, "dmpo": {"dmpo.warmup_env_steps": EPISODE_STEPS}}


def stage_dir(out: Path, budget: int, city: str, algo: str, seed: int) -> Path:
    return out / "runs" / "finetune" / f"e{budget:02d}" / f"{city}-{algo}-s{seed}"


def finished(run_dir: Path, steps: int) -> bool:
    """Whether the run's last checkpoint holds ``steps`` real steps (read from metrics.csv's last row)."""
    if not (run_dir / "metrics.csv").is_file() or not (run_dir / "checkpoints" / "last.pt").is_file():
        return False
    logged, _ = read_metric(run_dir, "env_steps")
    return len(logged) > 0 and logged[-1] >= steps


def fine_tune(generalist: Path, city: str, algo: str, seed: int, budgets: list[int], out: Path) -> None:
    """Bring every budget's run of (``city``, ``algo``, ``seed``) to its number of episodes, in order."""
    config = cfg.load(f"configs/atsc/{algo}.yaml", {"seed": seed, "threads": 1, "init_from": str(generalist),
                                                    "env.options.scenario": f"resco:{city}",
                                                    **FINETUNE_OVERRIDES[algo]})
    previous: Path | None = None
    for budget in sorted(budgets):
        run_dir, steps = stage_dir(out, budget, city, algo, seed), budget * EPISODE_STEPS
        if not finished(run_dir, steps):
            if previous is not None and not (run_dir / "checkpoints" / "last.pt").exists():
                shutil.rmtree(run_dir, ignore_errors=True)
                shutil.copytree(previous, run_dir, ignore=shutil.ignore_patterns(".lock"))
            start = time.perf_counter()
            trainer = Trainer.resume(run_dir) if (run_dir / "checkpoints" / "last.pt").exists() \
                else resume_or_start(config, run_dir)
            try:
                trainer.train(steps, progress=False)
            finally:
                trainer.close()
            print(f"{city} {algo} s{seed}: {budget} episodes in {run_dir} "
                  f"({time.perf_counter() - start:.0f} s this stage)", flush=True)
        previous = run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generalist", required=True, type=Path, help="the checkpoint to start from")
    parser.add_argument("--maps", nargs="+", default=["cologne8", "ingolstadt21"], choices=list(SCENARIOS))
    parser.add_argument("--algos", nargs="+", default=["dppo", "dmpo"], choices=sorted(FINETUNE_OVERRIDES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[5, 10, 20], help="training episodes on the city")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/real-cities/training"))
    args = parser.parse_args()
    if not args.generalist.is_file():
        parser.error(f"--generalist {args.generalist}: no such checkpoint")
    if min(args.budgets) < 1:
        parser.error("--budgets are numbers of episodes, each >= 1")
    for seed in args.seeds:
        for city in args.maps:
            for algo in args.algos:
                fine_tune(args.generalist, city, algo, seed, args.budgets, args.out)


if __name__ == "__main__":
    main()
