"""The ``gdmpo`` command: parses arguments, calls the library, prints results."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

import yaml

import gdmpo
from gdmpo.envs import registry
from gdmpo.envs.controllers import reference_policy
from gdmpo.evaluate import run_episodes


def parse_assignments(pairs: Sequence[str], what: str = "--set") -> dict[str, Any]:
    """Turn ``key=value`` strings into a dict, values parsed as YAML scalars (``3``, ``0.5``, ``true``)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"gdmpo: {what} expects key=value, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def cmd_envs(args: argparse.Namespace) -> int:
    for env_id in registry.registered():
        print(f"{env_id:<20} {registry.spec(env_id).description}")
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    options = parse_assignments(args.option, "--option")
    with gdmpo.make(args.env_id, num_envs=args.num_envs, seed=args.seed, **options) as env:
        policy = reference_policy(env, args.policy, seed=args.seed)
        summary = run_episodes(env, policy, args.episodes, seed=args.seed)
    summary.pop("agent_returns")
    if args.json:
        print(json.dumps({"env": args.env_id, "policy": args.policy, **summary}))
    else:
        print(f"{args.env_id} with policy {args.policy}: team return {summary['mean_return']:.1f} "
              f"± {summary['std_return']:.1f} over {args.episodes} episode(s) "
              f"(per-step mean {summary['mean_step_return']:.2f})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gdmpo", description=__doc__)
    parser.add_argument("--version", action="version", version=f"gdmpo {gdmpo.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    envs = commands.add_parser("envs", help="list the registered environment ids")
    envs.set_defaults(func=cmd_envs)

    rollout = commands.add_parser("rollout", help="play a reference policy (random, constant:K) and print returns")
    rollout.add_argument("env_id", nargs="?", default="cacc-catchup")
    rollout.add_argument("--policy", default="random", help="random | constant:K (default: random)")
    rollout.add_argument("--episodes", type=int, default=4)
    rollout.add_argument("--num-envs", type=int, default=4)
    rollout.add_argument("--seed", type=int, default=0)
    rollout.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                         help="environment option, e.g. --option start=nominal (repeatable)")
    rollout.add_argument("--json", action="store_true", help="print one JSON object")
    rollout.set_defaults(func=cmd_rollout)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (KeyError, ValueError, TypeError, FileNotFoundError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"gdmpo: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
