"""Transfer: one shared-weight policy on graphs it never saw, beside the classical controllers.

Run: ``python benchmarks/transfer.py [--train-on atsc-grid3x3] [--steps 20000] [--checkpoint CKPT]
[--targets atsc-grid5x5 atsc-grid10x10] [--episodes 2] [--cacc CKPT] [--ring CKPT] [--out DIR]``.

Traffic signals: trains DPPO (``configs/atsc-grid5x5/dppo.yaml``) on ``--train-on`` for ``--steps``
control steps unless ``--checkpoint`` is given, then plays it zero-shot on every ``--targets`` grid
next to fixed-time and max-pressure. Vehicles (optional): a Catch-up checkpoint (``--cacc``) on
platoons of 16 and 32, a ring checkpoint (``--ring``) on 30 and 40 vehicles at the training density.
Each transfer writes its ``report.json``/``report.md`` under ``--out`` (default
``benchmarks/results/transfer``); ``summary.md`` collects the tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import write_summary

import gdmpo
from gdmpo import config as cfg
from gdmpo.transfer import markdown, transfer

RING_DENSITY = 22 / 245.0  # vehicles per metre of the training rings (mean of 220-270 m)


def train_signals(env_id: str, steps: int, out: Path) -> Path:
    config = cfg.load("configs/atsc-grid5x5/dppo.yaml", {"env.id": env_id})
    run_dir = out / "runs" / f"dppo-{env_id}"
    gdmpo.train(config, run_dir, total_env_steps=steps, progress=True)
    return run_dir / "checkpoints/last.pt"


def vehicle_targets(args: argparse.Namespace) -> list[tuple[str, str, dict]]:
    jobs = []
    if args.cacc:
        jobs += [(args.cacc, f"cacc-{n}", {"num_vehicles": n}) for n in (16, 32)]
    if args.ring:
        for n in (30, 40):
            length = n / RING_DENSITY
            jobs.append((args.ring, f"ring-{n}", {"num_vehicles": n, "length_range": (0.9 * length, 1.1 * length)}))
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-on", default="atsc-grid3x3")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--checkpoint", help="a trained signal policy (skips training)")
    parser.add_argument("--targets", nargs="+", default=["atsc-grid5x5", "atsc-grid10x10"])
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--cacc", help="a Catch-up checkpoint to run on 16 and 32 vehicles")
    parser.add_argument("--ring", help="a ring-attenuation checkpoint to run on 30 and 40 vehicles")
    parser.add_argument("--out", default="benchmarks/results/transfer")
    args = parser.parse_args()
    out = Path(args.out)
    checkpoint = Path(args.checkpoint) if args.checkpoint else train_signals(args.train_on, args.steps, out)
    tables = []
    for target in args.targets:
        report = transfer(checkpoint, env_id=target, episodes=args.episodes, out=out / target, seed=1000)
        tables.append(markdown(report))
        print(tables[-1], flush=True)
    for source, name, options in vehicle_targets(args):
        report = transfer(source, env_options=options, episodes=args.episodes, out=out / name, seed=1000)
        tables.append(markdown(report))
        print(tables[-1], flush=True)
    write_summary([f"checkpoint: {checkpoint}", "", *tables], out)


if __name__ == "__main__":
    main()
