"""Learned signal control trained in place on RESCO's real cities: DPPO and DMPO, RESCO's budget.

    pip install -e ".[scenarios]"
    python benchmarks/real_city_training.py [--maps cologne8 ingolstadt21] [--algos dppo dmpo]
        [--seeds 0 1 2] [--steps 36000] [--episodes 4] [--jobs 2] [--out benchmarks/results/real-cities/training]
        [--set policy_net.prior_score=wave --tag wave]

Each run trains ``configs/atsc/<algo>.yaml`` on ``resco:<map>`` (RESCO's timing, 10 s decisions, 3 s
yellow) for ``--steps`` real decisions (36,000 = RESCO's 100 one-hour episodes), one torch thread per
run and ``--jobs`` runs side by side, then plays its final policy for ``--episodes`` sampled episodes.
Runs live in ``OUT/runs/atsc/<map>-<algo>[-<tag>]-s<seed>/`` (``--set`` changes the configs, ``--tag``
names the variant) and resume where they stopped (kill the command at
any time and start it again). Their ``metrics.csv`` is the learning curve in RESCO's delay
(``episode_resco_delay``, one training episode per row); ``benchmarks/real_cities.py --learned`` plays
the checkpoints greedily and sampled beside the hand-written controllers.
"""

from __future__ import annotations

import argparse

from gdmpo.config import parse_assignments
from gdmpo.envs.sumo.resco import SCENARIOS
from gdmpo.experiments import add_ray_argument, run_jobs


def jobs_for(maps: list[str], algos: list[str], seeds: list[int], steps: int, episodes: int, out: str,
             overrides: dict | None = None, tag: str | None = None) -> list[dict]:
    """Seed-major order: every map and algorithm gets its first seed before any gets a second."""
    suffix = f"-{tag}" if tag else ""
    return [{"env": "atsc", "algo": algo, "name": f"{city}-{algo}{suffix}", "seed": seed, "steps": steps,
             "episodes": episodes, "out": out, "config": f"configs/atsc/{algo}.yaml",
             "overrides": {**(overrides or {}), "env.options.scenario": f"resco:{city}"}}
            for seed in seeds for city in maps for algo in algos]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", nargs="+", default=["cologne8", "ingolstadt21"], choices=list(SCENARIOS))
    parser.add_argument("--algos", nargs="+", default=["dppo", "dmpo"], choices=["dppo", "dmpo"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=36_000, help="real decisions per run (360 per episode)")
    parser.add_argument("--episodes", type=int, default=4, help="sampled evaluation episodes per final policy")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained side by side (one thread each)")
    parser.add_argument("--out", default="benchmarks/results/real-cities/training")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    parser.add_argument("--tag", help="names the variant --set makes (run folders <map>-<algo>-<tag>-s<seed>)")
    add_ray_argument(parser)
    args = parser.parse_args()
    if args.set and not args.tag:
        parser.error("--set changes the runs: name the variant with --tag, so its runs do not resume the plain ones")
    jobs = jobs_for(args.maps, args.algos, args.seeds, args.steps, args.episodes, args.out,
                    parse_assignments(args.set), args.tag)
    run_jobs(jobs, args.jobs, ray=args.ray)


if __name__ == "__main__":
    main()
