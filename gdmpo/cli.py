"""The ``gdmpo`` command: parses arguments, calls the library, prints results.

Errors print as one line, ``gdmpo: error: ...`` (exit code 2), never as a traceback; ``--debug`` (or
``GDMPO_DEBUG=1``) shows the traceback instead, with a SUMO worker's own traceback where there is one.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

import gdmpo
from gdmpo.config import parse_assignments
from gdmpo.envs import registry

# Each command imports what it needs (torch, SUMO, the trainer) itself: --help, `gdmpo envs` and argument
# errors answer without them (tests/test_trainer.py checks that torch stays unimported).


def cmd_envs(args: argparse.Namespace) -> int:
    for env_id in registry.registered():
        print(f"{env_id:<20} {registry.spec(env_id).description}")
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    from gdmpo.envs.controllers import reference_policy
    from gdmpo.evaluation import run_episodes

    options = parse_assignments(args.option, "--option")
    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    if args.num_envs is not None and args.num_envs < 1:
        raise ValueError(f"--num-envs must be >= 1, got {args.num_envs}")
    num_envs = args.num_envs or min(args.episodes, 4)  # no copy runs an episode nobody asked for
    with gdmpo.make(args.env_id, num_envs=num_envs, seed=args.seed, **options) as env:
        policy = reference_policy(env, args.policy, seed=args.seed)
        summary = run_episodes(env, policy, args.episodes, seed=args.seed)
    summary.pop("agent_returns")
    if args.json:
        print(json.dumps({"env": args.env_id, "policy": args.policy, **summary}))
    else:
        print(f"{args.env_id} with policy {args.policy}: team return {summary['mean_return']:.1f} "
              f"± {summary['std_return']:.1f} over {args.episodes} episode(s) "
              f"(per-step mean {summary['mean_step_return']:.2f})")
        _print_traffic(summary)
    return 0


def cmd_scenarios(args: argparse.Namespace) -> int:
    from gdmpo.envs.sumo import resco

    try:
        folder = resco.resco_folder()
    except ModuleNotFoundError as err:
        folder, missing = None, str(err)
    print(f"{'scenario':<20} {'lights':>6}  {'window (s)':<13}  source")
    for name, scenario in resco.SCENARIOS.items():
        lights = resco.light_count(name) if folder else "-"
        window = f"{scenario.begin:g}-{scenario.end:g}"
        print(f"{resco.PREFIX + name:<20} {lights:>6}  {window:<13}  {scenario.source}")
    print(f"files: {folder}" if folder else f"files: not installed ({missing})")
    print("use: --set env.id=atsc --set env.options.scenario=resco:cologne8 (RESCO's timing: env.options.timing=resco)")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from collections import Counter

    from gdmpo.envs.sumo.programmes import signal_graph
    from gdmpo.plot import short_label

    graph, net_file = signal_graph(args.net_file, args.neighbours, args.max_distance)
    neighbours = [[] for _ in range(graph.num_nodes)]
    for u, v in graph.edge_index.t().tolist():
        neighbours[u].append(graph.names[v])
    degrees = Counter(len(n) for n in neighbours)
    print(f"{args.net_file}: {graph.num_nodes} signal agents, {graph.edge_index.size(1) // 2} links "
          f"({args.neighbours} neighbour rule)")
    print("neighbours per agent: " + ", ".join(f"{d}: {degrees[d]} agent{'s' * (degrees[d] != 1)}"
                                                for d in sorted(degrees)))
    for i, name in enumerate(graph.names):
        label = name if short_label(name, i) == name else f"{short_label(name, i)} {name}"
        print(f"{label}: neighbours {', '.join(neighbours[i]) or '-'}; {len(graph.lanes[i])} incoming lanes "
              f"({' '.join(graph.lanes[i])}); {len(graph.phases[i])} green phases ({' '.join(graph.phases[i])})")
    if args.png:
        from gdmpo.plot import plot_road_network

        print(f"wrote {plot_road_network(net_file, args.png, graph)}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from gdmpo import config as cfg
    from gdmpo.resources import config_path
    from gdmpo.trainer import Trainer, TrainingDiverged, default_run_dir, resume_hint

    if args.steps is not None and args.steps < 0:
        raise ValueError(f"--steps must be >= 0, got {args.steps}")
    if args.resume:
        if args.config or args.set or args.seed is not None or args.out or args.init_from:
            raise SystemExit("gdmpo: --resume continues a run as it was configured; drop CONFIG, --set, --seed, "
                             "--out, --init-from")
        trainer = Trainer.resume(args.resume)
    else:
        overrides = parse_assignments(args.set)
        if args.seed is not None:
            overrides["seed"] = args.seed
        if args.init_from:
            overrides["init_from"] = args.init_from
        if args.config:
            config = cfg.load(config_path(args.config), overrides)
        else:  # the embedded default: DPPO on CACC Catch-up, the recipe of configs/cacc-catchup/dppo.yaml
            config = cfg.from_dict(cfg.apply_overrides(cfg.EMBEDDED_DEFAULT, overrides), "--set")
        trainer = Trainer(config, args.out or default_run_dir(config))
    print(f"run directory: {trainer.run_dir}", flush=True)
    if trainer.initialised_from:
        print(f"fine-tuning from {trainer.config.init_from}: {', '.join(trainer.initialised_from)}", flush=True)
    try:
        summary = trainer.train(args.steps, progress=not args.no_progress)
    except Exception as err:  # what the run kept, and how to go on once the cause is fixed
        if not isinstance(err, TrainingDiverged):  # its message says it already
            err.gdmpo_hint = resume_hint(trainer)  # type: ignore[attr-defined]
        raise
    finally:
        trainer.close()
    print(f"done: {summary['env_steps']} env steps in {summary['wall_s']:.1f} s, "
          f"last return {summary['last_return']:.1f}, best {summary['best_return']:.1f}; "
          f"metrics in {trainer.run_dir / 'metrics.csv'}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from gdmpo.resources import config_path
    from gdmpo.sweep import parse_grid, run_sweep

    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    out = args.out or str(Path("runs") / "sweeps" / Path(args.config).stem)
    if args.processes is not None and (args.processes < 1 or args.address):
        raise ValueError("--processes runs trials locally without Ray: a number >= 1, and no --address")
    run_sweep(config_path(args.config), args.seeds, parse_grid(args.grid), out, steps=args.steps,
              episodes=args.episodes, address=args.address, cpus_per_trial=args.cpus_per_trial,
              processes=args.processes)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from gdmpo.evaluation import evaluate_checkpoint
    from gdmpo.reports import markdown_table, per_agent_line, write_report

    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    summary = evaluate_checkpoint(args.checkpoint, episodes=args.episodes, seed=args.seed,
                                  deterministic=args.deterministic, env_id=args.env,
                                  env_options=parse_assignments(args.option, "--option"))
    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parents[1] / "eval"
    title = f"{Path(args.checkpoint).name} on {summary['env']} ({len(summary['layout']['names'])} agents)"
    table = markdown_table(title, [("learned" + (" (deterministic)" if args.deterministic else ""), summary)])
    json_path, md_path = write_report(out, f"eval-{summary['env']}", summary,
                                      table + "\n" + per_agent_line(summary, summary["layout"]["names"]) + "\n")
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k not in ("agent_returns", "layout")}))
    else:
        print(f"{summary['env']}: team return {summary['mean_return']:.1f} ± {summary['std_return']:.1f} "
              f"over {summary['episodes']} episode(s){' (deterministic)' if args.deterministic else ''}")
        _print_traffic(summary)
        if summary["options"]:
            print("environment options: " + ", ".join(f"{k}={v}" for k, v in sorted(summary["options"].items())))
        if summary["withheld_options"]:
            print(f"not applied from the checkpoint: {', '.join(summary['withheld_options'])} "
                  "(pass them again with --option to use them)")
        print(f"report: {json_path}, {md_path}")
    return 0


def _print_traffic(summary: dict[str, Any]) -> None:
    """The SUMO traffic figures of a summary, where the environment has them."""
    if "traffic" in summary:
        print("traffic (mean per episode): "
              + ", ".join(f"{key} {value:.1f}" for key, value in summary["traffic"].items()))


def cmd_transfer(args: argparse.Namespace) -> int:
    from gdmpo.transfer import transfer

    report = transfer(args.checkpoint, env_id=args.env, net_file=args.net, route_file=args.routes,
                      env_options=parse_assignments(args.option, "--option"), episodes=args.episodes,
                      finetune_steps=args.finetune_steps, seed=args.seed, out=args.out,
                      deterministic=args.deterministic)
    print((Path(report["out"]) / "report.md").read_text(), end="")
    print(f"report: {report['out']}/report.json, report.md")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from gdmpo import plot

    if args.agent_map:
        print(f"wrote {plot.plot_agent_map(args.agent_map, args.output, args.title, args.against)}")
    elif args.profiles:
        print(f"wrote {plot.plot_profiles(args.profiles, args.output, args.vehicles, seed=args.seed)}")
    elif args.run_dirs:
        print(f"wrote {plot.plot_runs(args.run_dirs, args.output, args.title)}")
    else:
        raise ValueError("gdmpo plot needs RUN_DIRs, --agent-map REPORT.json or --profiles CHECKPOINT")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gdmpo", description=__doc__)
    parser.add_argument("--version", action="version", version=f"gdmpo {gdmpo.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors (also GDMPO_DEBUG=1)")
    commands = parser.add_subparsers(dest="command", required=True)

    envs = commands.add_parser("envs", help="list the registered environment ids")
    envs.set_defaults(func=cmd_envs)

    train = commands.add_parser("train", help="train from a YAML config (default: DPPO on CACC Catch-up)")
    train.add_argument("config", nargs="?", help="a YAML file, or a shipped config by name (cacc-catchup/dmpo, "
                                                 "atsc/dppo: configs/<env>/<algo>.yaml); omitted: the embedded default")
    train.add_argument("--steps", type=int, help="total real environment steps (overrides the config)")
    train.add_argument("--seed", type=int)
    train.add_argument("--out", help="run directory (default: runs/<env>/<algo>-s<seed>-<time>)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set ppo.lr_policy=1e-3 (repeatable)")
    train.add_argument("--init-from", metavar="CHECKPOINT",
                       help="fine-tune: start from a checkpoint's policy and critic (and DMPO's model)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its checkpoints/last.pt")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    sweep = commands.add_parser("sweep", help="train every seed x override combination as Ray tasks (resumable)")
    sweep.add_argument("config", help="YAML run config, or a shipped config by name (cacc-catchup/dmpo)")
    sweep.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    sweep.add_argument("--grid", nargs="+", default=[], metavar="KEY=V1,V2",
                       help="values to sweep, e.g. --grid ppo.lr_policy=3e-4,1e-3 model.hops=1,2")
    sweep.add_argument("--steps", type=int, help="real env steps per trial (default: the config's)")
    sweep.add_argument("--episodes", type=int, default=16, help="evaluation episodes of each final policy")
    sweep.add_argument("--out", help="sweep directory (default runs/sweeps/<config name>)")
    sweep.add_argument("--address", help="join this Ray cluster (default: RAY_ADDRESS, else a local Ray)")
    sweep.add_argument("--cpus-per-trial", type=int, default=1, help="Ray CPUs and torch threads per trial")
    sweep.add_argument("--processes", type=int, help="run the trials in this many local processes, without Ray")
    sweep.set_defaults(func=cmd_sweep)

    evaluate = commands.add_parser("eval", help="team return of a trained checkpoint")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--episodes", type=int, default=10)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--deterministic", action="store_true", help="take the most likely action")
    evaluate.add_argument("--env", help="evaluate on another registered environment")
    evaluate.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                          help="environment option override (repeatable)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--out", help="report directory for eval-<env>.json/.md (default: RUN_DIR/eval)")
    evaluate.set_defaults(func=cmd_eval)

    plot = commands.add_parser("plot", help="learning curves of runs; per-agent return maps; vehicle profiles")
    plot.add_argument("run_dirs", nargs="*", help="runs: return vs env steps (mean and spread across seeds)")
    plot.add_argument("-o", "--output", required=True, help="PNG file to write")
    plot.add_argument("--title")
    plot.add_argument("--agent-map", metavar="REPORT_JSON",
                      help="an eval/transfer report: the graph coloured by each agent's return")
    plot.add_argument("--against", metavar="CONTROLLER",
                      help="--agent-map of a transfer report: colour by the learned return minus this reference's "
                           "(greedy, max-pressure, fixed-time): red where the learned policy loses")
    plot.add_argument("--profiles", metavar="CHECKPOINT",
                      help="vehicle tasks: headway and speed of --vehicles over one episode (paper Fig. 7)")
    plot.add_argument("--vehicles", type=int, nargs="+", default=None, help="agent indices (default: 3 spread)")
    plot.add_argument("--seed", type=int, default=0)
    plot.set_defaults(func=cmd_plot)

    graph = commands.add_parser("graph", help="the signal agents of a SUMO network, their neighbours, lanes, phases")
    graph.add_argument("net_file", help="a SUMO .net.xml, a .sumocfg (its programmes as SUMO loads them) "
                                        "or a named scenario (resco:cologne8)")
    graph.add_argument("--png", help="also draw the roads with the communication graph over them")
    graph.add_argument("--neighbours", choices=["road", "any-path"], default="road",
                       help="neighbour rule: the first light along each road (default) or any path through unlit junctions")
    graph.add_argument("--max-distance", type=float, default=1000.0, help="road rule: longest road walk (m)")
    graph.set_defaults(func=cmd_graph)

    transfer = commands.add_parser(
        "transfer", help="run a trained policy on another graph (zero-shot, optionally fine-tuned), write a report")
    transfer.add_argument("checkpoint")
    transfer.add_argument("--env", help="target environment id (default: the checkpoint's, or atsc with --net)")
    transfer.add_argument("--net", help="target SUMO .net.xml (traffic lights)")
    transfer.add_argument("--routes", help="its route/flow file (default: random trips)")
    transfer.add_argument("--episodes", type=int, default=4)
    transfer.add_argument("--finetune-steps", type=int, default=0)
    transfer.add_argument("--seed", type=int, default=0)
    transfer.add_argument("--deterministic", action="store_true", help="take each agent's most likely action")
    transfer.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                          help="target environment option, e.g. --option num_vehicles=16 (repeatable)")
    transfer.add_argument("--out", help="report directory (default: RUN_DIR/transfer-<env>)")
    transfer.set_defaults(func=cmd_transfer)

    scenarios = commands.add_parser("scenarios", help="list the named real-city scenarios (RESCO's, from sumo-rl)")
    scenarios.set_defaults(func=cmd_scenarios)

    rollout = commands.add_parser(
        "rollout", help="play a reference policy (random, constant action, signal or vehicle controllers), print returns")
    rollout.add_argument("env_id", nargs="?", default="cacc-catchup")
    rollout.add_argument("--policy", default="random",
                         help="random | constant:K | fixed-time | max-pressure | greedy | idm | constant-speed[:V] "
                              "(default: random)")
    rollout.add_argument("--episodes", type=int, default=4)
    rollout.add_argument("--num-envs", type=int, default=None, help="copies run at once (default: min(episodes, 4))")
    rollout.add_argument("--seed", type=int, default=0)
    rollout.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                         help="environment option, e.g. --option start=nominal (repeatable)")
    rollout.add_argument("--json", action="store_true", help="print one JSON object")
    rollout.set_defaults(func=cmd_rollout)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, Slurm, systemd, ``docker stop``), delivered as Ctrl-C is: the run stops at once,
    closes its simulators and says how to resume."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("GDMPO_DEBUG", "") not in ("", "0")
    previous = signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() else None
    try:
        return args.func(args)
    except _interruptions() as err:
        terminated = isinstance(err, Terminated) or isinstance(err.__context__, Terminated)
        message = str(err) or "interrupted"  # the trainer's says what is saved and how to resume
        if terminated:
            message = "terminated (SIGTERM)" + message.removeprefix("interrupted")
        print(f"gdmpo: {message}", file=sys.stderr)
        return 143 if terminated else 130  # the shell's codes for the two signals
    except BrokenPipeError:  # the reader went away (`gdmpo graph ... | head`): nothing left to say
        sys.stderr.close()
        return 0
    except Exception as err:
        if debug:
            worker_traceback = getattr(err, "worker_traceback", "")
            if worker_traceback:
                print(f"in the SUMO worker:\n{worker_traceback}", file=sys.stderr)
            raise
        print(f"gdmpo: error: {_message(err)}", file=sys.stderr)
        hint = getattr(err, "gdmpo_hint", None)
        if hint:
            print(f"gdmpo: {hint}", file=sys.stderr)
        if not _expected(err):
            print("gdmpo: this looks like a bug in gdmpo; rerun with --debug for the traceback", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interruptions() -> tuple[type[BaseException], ...]:
    """Ctrl-C, and the trainer's own interruption where a command loaded the trainer (evaluated when an
    error is being matched, so commands that never train never import it)."""
    trainer = sys.modules.get("gdmpo.trainer")
    return (KeyboardInterrupt,) if trainer is None else (KeyboardInterrupt, trainer.TrainingInterrupted)


#: built-in errors that describe bad input in their own words; beside them, every exception class gdmpo
#: defines (a SUMO failure, a locked run, a diverged run, ...) is expected. Anything else is a bug.
EXPECTED_ERRORS = (KeyError, ValueError, OSError)


def _expected(err: BaseException) -> bool:
    return isinstance(err, EXPECTED_ERRORS) or any(kind.__module__.startswith("gdmpo.") for kind in type(err).__mro__)


def _message(err: BaseException) -> str:
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    if isinstance(err, OSError) and err.filename and str(err.filename) not in str(err.strerror or ""):
        return f"{err.filename}: {err.strerror or err}"
    return str(err) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
