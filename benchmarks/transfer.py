"""Transfer: one shared-weight policy on graphs it never saw, beside the classical controllers.

Run: ``python benchmarks/transfer.py [--train-on atsc-grid3x3 | --config CONFIG] [--steps 20000] [--set KEY=VALUE ...]
[--checkpoint CKPT] [--targets atsc-grid5x5 atsc-grid10x10] [--grids 32] [--irregular 3 5 7] [--episodes 2]
[--cacc CKPT] [--ring CKPT] [--out DIR]``.

Traffic signals: trains DPPO (``configs/atsc-grid5x5/dppo.yaml`` with the ``--set`` overrides, e.g.
``policy_net.input=movements value_net.input=movements`` for a policy that fits any junction) on
``--train-on``, or the ``--config`` as it is (e.g. the generalist's ``configs/atsc-generalist/dppo.yaml``),
for ``--steps`` control steps unless ``--checkpoint`` is given, then plays it zero-shot on every
``--targets`` environment, every generated ``--grids`` N x N grid (the shipped grids' layout and flows)
and every ``--irregular`` network (``netgenerate --rand`` with guessed lights and random trips, by
seed; :mod:`gdmpo.envs.sumo.networks`, cached), next to fixed-time and max-pressure on the
same demand and seeds. Vehicles (optional): a Catch-up checkpoint (``--cacc``) on
platoons of 16 and 32, a ring checkpoint (``--ring``) on 30 and 40 vehicles at the training density.
Each transfer writes its ``report.json``/``report.md`` under ``--out`` (default
``benchmarks/results/transfer``); ``summary.md`` collects the tables of every report there (the signal
policy's, and the vehicle checkpoints'): registered tasks by size, then generated grids, irregular networks
and vehicle tasks. ``--summary-only`` rebuilds it from the reports alone.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from gdmpo import config as cfg
from gdmpo.config import parse_assignments
from gdmpo.experiments import write_summary
from gdmpo.trainer import resume_or_start
from gdmpo.transfer import markdown, transfer

RING_DENSITY = 22 / 245.0  # vehicles per metre of the training rings (mean of 220-270 m)
VEHICLE_TASK = re.compile(r"(cacc|ring)-\d+")  # the folders of --cacc and --ring transfers


def train_signals(env_id: str, steps: int, out: Path, overrides: dict, config_path: str | None = None) -> Path:
    """Train a signal policy (``config_path`` as it is, or the 5x5 DPPO config on ``env_id``); resumable."""
    if config_path:
        config = cfg.load(config_path, overrides)
        run_dir = out / "runs" / f"{config.algo}-{Path(config_path).parent.name}"
    else:
        config = cfg.load("configs/atsc-grid5x5/dppo.yaml", {"env.id": env_id, **overrides})
        run_dir = out / "runs" / f"dppo-{env_id}"
    trainer = resume_or_start(config, run_dir)  # a stopped training continues, a finished one is reused
    try:
        trainer.train(steps, progress=True)
    finally:
        trainer.close()
    return run_dir / "checkpoints/last.pt"


def signal_targets(args: argparse.Namespace, out: Path) -> list[tuple[str, dict]]:
    """``(name, transfer keywords)`` of every signal network to play on."""
    from gdmpo.envs.sumo.networks import grid_files, irregular_scenario

    jobs = [(target, {"env_id": target}) for target in args.targets]
    for size in args.grids:
        net, routes = grid_files(size)
        jobs.append((f"grid{size}x{size}", {"net_file": str(net), "route_file": str(routes)}))
    for seed in args.irregular:
        files = irregular_scenario(seed, out / "networks")
        jobs.append((f"irregular{seed}", files))
    return jobs


def vehicle_targets(args: argparse.Namespace) -> list[tuple[str, str, dict]]:
    jobs = []
    if args.cacc:
        jobs += [(args.cacc, f"cacc-{n}", {"num_vehicles": n}) for n in (16, 32)]
    if args.ring:
        for n in (30, 40):
            length = n / RING_DENSITY
            jobs.append((args.ring, f"ring-{n}", {"num_vehicles": n, "length_range": (0.9 * length, 1.1 * length)}))
    return jobs


def report_order(name: str, report: dict[str, Any]) -> tuple:
    """Where a report goes in ``summary.md``: registered tasks (by size), generated grids (by size), irregular
    networks (by seed), then vehicle tasks."""
    if match := re.fullmatch(r"grid(\d+)x\1", name):
        return (1, int(match[1]), name)
    if match := re.fullmatch(r"(?:.*-)?irregular(\d+)", name):
        return (2, int(match[1]), name)
    if VEHICLE_TASK.fullmatch(name):
        return (3, report["num_agents"], name)
    return (0, report["num_agents"], name)


def summary_lines(out: Path, checkpoint: str | None = None) -> list[str]:
    """``summary.md`` of the reports directly under ``out``: the signal policy's (``checkpoint``, or the one
    they all share) and the vehicle tasks'."""
    reports = {path.parent.name: json.loads(path.read_text()) for path in out.glob("*/report.json")}
    vehicles = {name for name in reports if VEHICLE_TASK.fullmatch(name)}
    played = {reports[name]["checkpoint"] for name in reports if name not in vehicles}
    if checkpoint is None:
        if len(played) > 1:
            raise SystemExit(f"{out}: reports of several signal policies ({', '.join(sorted(played))}); "
                             "name one with --checkpoint")
        checkpoint = played.pop() if played else ""
    chosen = [name for name in reports if name in vehicles or reports[name]["checkpoint"] == checkpoint]
    if not chosen:
        raise SystemExit(f"{out}: no report.json of {checkpoint or 'any policy'} in its folders")
    tables = [markdown(reports[name]) for name in sorted(chosen, key=lambda name: report_order(name, reports[name]))]
    return [f"checkpoint: {checkpoint}", "", *tables]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-on", default="atsc-grid3x3")
    parser.add_argument("--config", help="train this config instead (e.g. configs/atsc-generalist/dppo.yaml)")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides of the trained config")
    parser.add_argument("--grids", type=int, nargs="*", default=[], help="generated N x N grids to play on")
    parser.add_argument("--irregular", type=int, nargs="*", default=[], help="seeds of irregular networks to play on")
    parser.add_argument("--checkpoint", help="a trained signal policy (skips training)")
    parser.add_argument("--targets", nargs="*", default=["atsc-grid5x5", "atsc-grid10x10"],
                        help="registered signal tasks to play on (none: only --grids and --irregular)")
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--deterministic", action="store_true", help="play the learned policy's most likely actions")
    parser.add_argument("--cacc", help="a Catch-up checkpoint to run on 16 and 32 vehicles")
    parser.add_argument("--ring", help="a ring-attenuation checkpoint to run on 30 and 40 vehicles")
    parser.add_argument("--out", default="benchmarks/results/transfer")
    parser.add_argument("--summary-only", action="store_true",
                        help="rebuild summary.md from the reports under --out, playing nothing")
    args = parser.parse_args()
    out = Path(args.out)
    if args.summary_only:
        write_summary(summary_lines(out, args.checkpoint), out)
        return
    checkpoint = (Path(args.checkpoint) if args.checkpoint
                  else train_signals(args.train_on, args.steps, out, parse_assignments(args.set), args.config))
    for name, where in signal_targets(args, out):
        report = transfer(checkpoint, episodes=args.episodes, out=out / name, seed=1000,
                          deterministic=args.deterministic, **where)
        print(markdown(report), flush=True)
    for source, name, options in vehicle_targets(args):
        report = transfer(source, env_options=options, episodes=args.episodes, out=out / name, seed=1000)
        print(markdown(report), flush=True)
    write_summary(summary_lines(out, str(checkpoint)), out)


if __name__ == "__main__":
    main()
