"""Traffic signals on any network: learned policies beside the classical controllers.

Run on the shipped 5x5 grid, on your own network, or on an irregular one generated here::

    python benchmarks/atsc_grid.py [--env atsc-grid5x5] [--algos dppo dmpo] [--steps 30000] [--seeds 0]
        [--episodes 4] [--set dmpo:dmpo.rollouts=256 ...] [--jobs 2] [--out DIR]
    python benchmarks/atsc_grid.py --net city.net.xml --routes a.rou.xml b.rou.xml [--option begin=25200 ...]
    python benchmarks/atsc_grid.py --sumocfg city.sumocfg [--option warmup_seconds=300 ...]
    python benchmarks/atsc_grid.py --irregular 7     # netgenerate --rand --tls.guess, randomTrips demand

Trains each algorithm with ``configs/atsc-grid5x5/<algo>.yaml`` for ``--steps`` real control steps, then
plays its final policy and the fixed-time and max-pressure controllers for ``--episodes`` episodes on
the same seeds. Writes ``runs/``, ``curves.csv``, ``<env>.png`` and ``summary.md`` into ``--out``
(default ``benchmarks/results/exploration/atsc/<name>``). The table leads with the figures no policy can game by
leaving vehicles stuck: delay and trip time over all vehicles (unfinished ones with their time so
far), vehicles left in or waiting to enter the network, and throughput.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import gdmpo
from gdmpo.config import parse_assignments
from gdmpo.envs.controllers import reference_policy
from gdmpo.envs.sumo.networks import irregular_scenario
from gdmpo.evaluation import run_episodes
from gdmpo.experiments import add_run_arguments, parse_algo_assignments, run_jobs, write_curves, write_summary
from gdmpo.plot import plot_runs

CONTROLLERS = ("fixed-time", "max-pressure", "greedy")


def evaluate_controller(env_id: str, name: str, episodes: int, seed: int, num_envs: int, options: dict) -> dict:
    """Team return and SUMO traffic figures of a classical controller."""
    with gdmpo.make(env_id, num_envs=num_envs, seed=seed, **options) as env:
        start = time.perf_counter()
        summary = run_episodes(env, reference_policy(env, name, seed=seed), episodes, seed=seed)
    return {"name": name, "final_return": summary["mean_return"], "std": summary["std_return"],
            "traffic": summary["traffic"], "seconds": time.perf_counter() - start}


COLUMNS = ("delay", "trip_time", "waiting_time", "left", "throughput", "arrived")
HEADER = ("| policy | delay, all vehicles (s) | trip time, all vehicles (s) | waiting (s) | vehicles left at the end "
          "| throughput (veh/h) | arrived | team return | note |")


def row(name: str, returns: list[float], traffic: list[dict], note: str) -> str:
    figures = [{**t, "left": t["in_network"] + t["waiting_to_insert"]} for t in traffic]
    mean = {key: np.mean([t[key] for t in figures]) for key in COLUMNS}
    return (f"| {name} | {mean['delay']:.1f} | {mean['trip_time']:.1f} | {mean['waiting_time']:.1f} | "
            f"{mean['left']:.0f} | {mean['throughput']:.0f} | {mean['arrived']:.0f} | "
            f"{np.mean(returns):.5g} ± {np.std(returns):.2g} | {note} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="atsc-grid5x5")
    parser.add_argument("--net", help="a SUMO .net.xml of your own (with --routes, or random trips)")
    parser.add_argument("--routes", nargs="+", help="its route files")
    parser.add_argument("--sumocfg", help="a .sumocfg naming network, routes, begin and end")
    parser.add_argument("--irregular", type=int, metavar="SEED", help="generate an irregular network and demand")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="environment option, e.g. begin=25200, warmup_seconds=300, scale=1.5 (repeatable)")
    parser.add_argument("--algos", nargs="+", default=["dppo", "dmpo"])
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="ALGO:KEY=VALUE")
    add_run_arguments(parser, steps=30_000)
    parser.set_defaults(seeds=[0], episodes=4)
    args = parser.parse_args()
    options = parse_assignments(args.option, "--option")
    name = args.env
    if args.irregular is not None:
        name = f"irregular{args.irregular}"
        options.update(irregular_scenario(args.irregular, Path(args.out or f"benchmarks/results/exploration/atsc/{name}")))
    elif args.net or args.sumocfg:
        name = Path(args.net or args.sumocfg).name.split(".")[0]
        options.update({"net_file": args.net} if args.net else {"sumocfg": args.sumocfg})
        if args.routes:
            options["route_file"] = [str(Path(r).resolve()) for r in args.routes]
    env_id = "atsc" if options.get("net_file") or options.get("sumocfg") else args.env
    out = Path(args.out or f"benchmarks/results/exploration/atsc/{name}")
    sets = parse_algo_assignments(args.sets)
    jobs = [{"env": env_id, "algo": a, "name": a, "seed": s, "steps": args.steps, "episodes": args.episodes,
             "out": str(out), "overrides": {"env.options": options, **sets.get(a, {})},
             "config": f"configs/atsc-grid5x5/{a}.yaml"} for a in args.algos for s in args.seeds]
    results = run_jobs(jobs, args.jobs, ray=args.ray)
    write_curves(results, out / "curves.csv")
    plot_runs([r["run_dir"] for r in results], out / f"{name}.png", title=f"{name}: return vs control steps")

    lines = [f"{name}: learned policies after {args.steps} real control steps (seeds {args.seeds}) and "
             f"classical controllers; {args.episodes} evaluation episodes each, seed 1000 + training seed.",
             f"environment {env_id} with options {options}" if options else "", ""]
    for algo, overrides in sets.items():
        lines.append(f"overrides for {algo}: {overrides}")
    lines += ["", HEADER, "|" + " --- |" * 9]
    for algo in args.algos:
        mine = [r for r in results if r["algo"] == algo]
        lines.append(row(algo, [r["final_return"] for r in mine], [r["traffic"] for r in mine],
                         f"train {np.mean([r['train_s'] for r in mine]):.0f} s"))
    for controller in CONTROLLERS:
        found = [evaluate_controller(env_id, controller, args.episodes, 1000 + s, min(args.episodes, 2), options)
                 for s in args.seeds]
        lines.append(row(controller, [f["final_return"] for f in found], [f["traffic"] for f in found], "reference"))
    write_summary(lines, out)


if __name__ == "__main__":
    main()
