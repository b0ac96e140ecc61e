"""Real cities: gdmpo's controllers on RESCO's eight maps, beside RESCO's published figures.

    pip install -e ".[scenarios]"          # RESCO's maps come with sumo-rl
    python benchmarks/real_cities.py [--maps cologne8 ingolstadt21 ...] [--policies fixed-time max-pressure greedy]
        [--timings resco default] [--episodes 2] [--out benchmarks/results/real-cities]
    python benchmarks/real_cities.py --learned RUN_DIR [RUN_DIR ...] [--play argmax sampled] [--episodes 4]
    python benchmarks/real_cities.py --curves benchmarks/results/real-cities/training
    python benchmarks/real_cities.py --summary-only

Each cell (map, timing, controller) plays ``--episodes`` one-hour episodes in the map's own window
(``resco:<map>``, RESCO's ``.sumocfg``), each with its own SUMO seed, and writes
``runs/<map>/<timing>/<controller>.json`` with every episode's traffic figures. A cell whose file
holds ``--episodes`` episodes is skipped, so the command resumes where it stopped (and plays a cell
again with more episodes when asked for them). ``summary.md`` and ``summary.csv`` are then
rebuilt from all run files, with RESCO's published figures beside gdmpo's.

``--learned`` plays trained policies (run directories of ``gdmpo train``, ``benchmarks/real_city_training.py``
or ``benchmarks/real_city_finetune.py``): a policy trained on a RESCO map plays that map ("in place", or
fine-tuned there from a generalist), any other (a generalist) plays every ``--maps`` map zero-shot; each run and play mode is one cell
(``<algo>-<trained>-s<seed>-<play>.json``), and the summary pools the seeds of a row. ``--curves``
turns the training runs' ``metrics.csv`` (``episode_resco_delay``, one training episode per iteration)
into ``learning.md``/``learning.csv``/``learning.png``: per run, the training episodes it needed until
five in a row averaged greedy's delay or less, and its best five-episode mean.

Delay is RESCO's (``resco_delay``: mean over vehicles of timeLoss + departDelay, vehicles due in the
window that never entered charged their wait until its end). Timings: ``resco`` is RESCO's on its real
maps (10 s decisions, 3 s yellow), ``default`` gdmpo's own (5 s, 2 s).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import time
from pathlib import Path

import gdmpo
from gdmpo import config as cfg
from gdmpo.checkpoints import load_checkpoint
from gdmpo.envs.controllers import reference_policy
from gdmpo.envs.sumo.resco import SCENARIOS
from gdmpo.evaluation import evaluate_checkpoint, run_episodes
from gdmpo.plot import pyplot, read_metric

POLICIES = ("fixed-time", "max-pressure", "greedy")
TIMINGS = ("resco", "default")
#: figures kept per episode and shown in the summary
FIGURES = ("resco_delay", "delay", "trip_time", "in_network", "waiting_to_insert", "arrived")
#: RESCO's published delay (s; mean of the last 10 of 100 episodes, its own data, 10 s / 3 s timing):
#: the maps for which the figures were transcribed (issue 33); other maps are left blank, not guessed
RESCO_PUBLISHED = {
    "cologne8": {"fixed-time": 65.1, "greedy": 21.9, "max-pressure": 39.6, "IDQN": 22.3, "IPPO": 22.5},
    "ingolstadt21": {"fixed-time": 137.6, "greedy": 69.1, "max-pressure": 112.8, "IDQN": 86.2, "IPPO": 397.0},
}


#: decisions per one-hour episode at RESCO's timing, and the in-place budget (RESCO's 100 episodes)
EPISODE_STEPS = 360
IN_PLACE_EPISODES = 100


def cell_path(out: Path, city: str, timing: str, policy: str) -> Path:
    return out / "runs" / city / timing / f"{policy}.json"


def play_cell(city: str, timing: str, policy: str, episodes: int, seed: int) -> dict:
    """Every episode's figures of one controller on one map at one timing (copies run side by side)."""
    start = time.perf_counter()
    with gdmpo.make("atsc", num_envs=min(episodes, 2), seed=seed, scenario=f"resco:{city}", timing=timing) as env:
        summary = run_episodes(env, reference_policy(env, policy, seed=seed), episodes, seed=seed)
        lights = env.num_agents
    return {"map": city, "timing": timing, "controller": policy, "lights": lights, "seed": seed,
            "episodes": [{key: t[key] for key in FIGURES} for t in summary["episode_traffic"]],
            "returns": summary["returns"], "seconds": time.perf_counter() - start}


def trained_on(config: cfg.RunConfig) -> str:
    """What a policy was trained on, as the tables name it: ``resco:<map>``, or the environment id and,
    for a list of networks, their kinds (a generalist)."""
    options = config.env.options
    if options.get("scenario"):
        return str(options["scenario"])
    if options.get("sumocfg") or options.get("net_file"):
        return Path(str(options.get("sumocfg") or options["net_file"])).name
    networks = options.get("networks")
    if networks:
        entries = [entry for entry in networks if isinstance(entry, dict)]
        kinds = ", ".join(sorted({next(iter(e)) for e in entries} - {"scenario"}))
        cities = [str(e["scenario"]).removeprefix("resco:") for e in entries if "scenario" in e]
        return f"{config.env.id} ({len(networks)} networks: {kinds}" + (f"; {', '.join(cities)}" if cities else "") + ")"
    return config.env.id


def seen_maps(trained_on_label: str) -> set[str]:
    """The RESCO maps a policy was trained on, read from its :func:`trained_on` label (before any fine-tuning)."""
    generalist = trained_on_label.split(", then ")[0]
    if generalist.startswith("resco:"):
        return {generalist.removeprefix("resco:")}
    named = generalist.partition("; ")[2].rstrip(")")
    return {name.strip() for name in named.split(",") if name.strip()}


#: a run folder of real_city_training.py: ``<map>-<algo>[-<variant tag>]-s<seed>``
RUN_NAME = re.compile(r"^(?P<city>[^-]+)-(?P<algo>[a-z0-9]+)(?:-(?P<tag>.+))?-s(?P<seed>\d+)$")


def run_name(run_dir: Path) -> dict[str, str] | None:
    """``{city, algo, tag, seed}`` of a training run's folder name (``tag`` "" for the shipped config)."""
    match = RUN_NAME.match(run_dir.name)
    return None if match is None else {**match.groupdict(), "tag": match["tag"] or ""}


def variant(algo: str, run_dir: Path, separator: str = "-") -> str:
    """``algo`` and the run's variant tag, if it has one: ``dppo-wave`` (``separator`` between them)."""
    parts = run_name(run_dir)
    return algo + (f"{separator}{parts['tag']}" if parts and parts["tag"] else "")


def controller_name(config: cfg.RunConfig, run_dir: Path, play: str) -> str:
    """``DPPO, argmax``; a variant's tag follows the algorithm: ``DPPO wave, argmax``."""
    return f"{variant(config.algo.upper(), run_dir, ' ')}, {play}"


def play_learned(run_dir: Path, config: cfg.RunConfig, steps: int, label: str, city: str, play: str, episodes: int,
                 seed: int) -> dict:
    """Every episode's figures of a trained policy on one map at RESCO's timing; ``label`` says what it
    was trained on ("in place" or :func:`trained_on`)."""
    start = time.perf_counter()
    summary = evaluate_checkpoint(run_dir / "checkpoints" / "last.pt", episodes=episodes, seed=seed,
                                  deterministic=play == "argmax", env_id="atsc",
                                  env_options={"scenario": f"resco:{city}", "timing": "resco"})
    return {"map": city, "timing": "resco", "controller": controller_name(config, run_dir, play),
            "trained_on": label, "training_seed": config.seed,
            "checkpoint_env_steps": steps,
            "run_dir": str(run_dir), "seed": seed, "lights": len(summary["agent_returns"][0]),
            "episodes": [{key: t[key] for key in FIGURES} for t in summary["episode_traffic"]],
            "returns": summary["returns"], "seconds": time.perf_counter() - start}


def learned_cells(run_dirs: list[Path], maps: list[str], plays: list[str]) -> list[tuple]:
    """``(run_dir, config, checkpoint's real steps, label, map, play, cell file name)`` for every trained
    policy: its own map ("in place"), or, trained elsewhere (a generalist), every one of ``maps``."""
    cells = []
    for run_dir in run_dirs:
        state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
        config = cfg.from_dict(state["config"], str(run_dir))
        steps = int(state["counters"]["env_steps"])  # which policy a cell played
        source = trained_on(config)
        own = source.removeprefix("resco:") if source.startswith("resco:") else None
        label, tag = ("in place", "inplace") if own else (source, config.env.id)
        if config.init_from:  # fine-tuned here from a policy trained elsewhere
            start = cfg.from_dict(load_checkpoint(config.init_from)["config"], config.init_from)
            episodes = steps // config.rollout_steps  # one iteration = one episode in configs/atsc
            label, tag = f"{trained_on(start)}, then {episodes} episodes here", f"finetune{episodes}"
        algo = variant(config.algo, run_dir)
        for city in [own] if own else maps:
            for play in plays:
                cells.append((run_dir, config, steps, label, city, play,
                              Path(f"{algo}-{tag}-s{config.seed}-{play}.json")))
    return cells


def mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def summarise(out: Path) -> str:
    """``summary.csv`` (one row per cell) and ``summary.md`` from every run file under ``out/runs``."""
    groups: dict[tuple, list[dict]] = {}  # the seeds of one trained row are pooled
    for path in sorted((out / "runs").glob("*/*/*.json")):
        cell = json.loads(path.read_text())
        key = (cell["map"], cell["timing"], cell["controller"], cell.get("trained_on", ""))
        groups.setdefault(key, []).append(cell)
    order = {name: k for k, name in enumerate(SCENARIOS)}
    hand_written = {name: k for k, name in enumerate(POLICIES)}
    keys = sorted(groups, key=lambda k: (order.get(k[0], 99), TIMINGS.index(k[1]) if k[1] in TIMINGS else 9,
                                         hand_written.get(k[2], 9), k[3], k[2]))
    rows = []
    for key in keys:
        cells = groups[key]
        episodes = [e for cell in cells for e in cell["episodes"]]
        seeds = {cell["training_seed"] for cell in cells if "training_seed" in cell}
        trained = [cell["checkpoint_env_steps"] // EPISODE_STEPS for cell in cells if "checkpoint_env_steps" in cell]
        row = {"map": key[0], "timing": key[1], "controller": key[2], "trained_on": key[3],
               "training_seeds": len(seeds), "episodes": len(episodes),
               "trained_episodes": min(trained) if trained else None}
        for name in FIGURES:
            row[name], row[f"{name}_std"] = mean_std([e[name] for e in episodes])
        row["resco_published_delay"] = RESCO_PUBLISHED.get(key[0], {}).get(key[2]) if key[1] == "resco" else None
        rows.append(row)
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["map"])
        writer.writeheader()
        writer.writerows(rows)
    lines = ["# Real cities: controllers on RESCO's maps", "",
             "RESCO delay: mean over vehicles due in the window of timeLoss + departDelay (s), never-inserted "
             "vehicles charged their wait until the window's end. Mean ± std over episodes (SUMO seeds). "
             "`resco` timing: 10 s decisions, 3 s yellow; `default`: 5 s, 2 s. "
             "RESCO published: its own figures at its timing (blank: not transcribed). Learned rows pool "
             "their training seeds (seeds × episodes); `argmax` plays each light's most likely phase, "
             "`sampled` draws it.", "",
             "| map | timing | controller | episodes | RESCO delay (s) | RESCO published (s) | delay, departed (s) "
             "| trip time (s) | left in network | never inserted | arrived |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        published = "" if r["resco_published_delay"] is None else f"{r['resco_published_delay']:.1f}"
        name = r["controller"] + ("" if not r["trained_on"] else " (in place)" if r["trained_on"] == "in place"
                                  else f" (trained on {r['trained_on']})")
        count = f"{r['training_seeds']} × {r['episodes'] // r['training_seeds']}" if r["training_seeds"] else r["episodes"]
        lines.append(f"| {r['map']} | {r['timing']} | {name} | {count} | "
                     f"{r['resco_delay']:.1f} ± {r['resco_delay_std']:.1f} | {published} | {r['delay']:.1f} | "
                     f"{r['trip_time']:.1f} | {r['in_network']:.0f} | {r['waiting_to_insert']:.0f} | {r['arrived']:.0f} |")
    published_learned = [(city, name, delay) for city, figures in RESCO_PUBLISHED.items()
                         for name, delay in figures.items() if name not in POLICIES]
    if published_learned:
        lines += ["", "RESCO's published learned controllers (its own runs, same timing and delay):", "",
                  "| map | controller | RESCO delay (s) |", "| --- | --- | --- |"]
        lines += [f"| {city} | {name} | {delay:.1f} |" for city, name, delay in published_learned]
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    (out / "overview.md").write_text(overview(rows))
    return text


def overview_column(row: dict) -> str | None:
    """Which column of the overview a summary row fills (argmax play at RESCO's timing only)."""
    if row["timing"] != "resco":
        return None
    if row["controller"] in POLICIES:
        return row["controller"]
    algo, _, play = row["controller"].partition(", ")
    label = row["trained_on"]
    if play != "argmax" or (" " in algo and label == "in place"):  # sampled play, in-place variants: summary.md
        return None
    algo = algo.split()[0]  # a generalist's run tag (``loo``) is said by what it was trained on
    if label == "in place":
        return f"{algo} in place"
    if ", then " in label:
        return f"{algo} fine-tuned {label.rsplit(', then ', 1)[1].split()[0]}"
    if row["map"] in seen_maps(label):
        return None  # a generalist on a map it was trained on: neither zero-shot nor left out
    return f"{algo} generalist, leave-out" if seen_maps(label) else f"{algo} generalist, zero-shot"


def overview(rows: list[dict]) -> str:
    """One line per map: every controller's RESCO delay (argmax, mean over seeds and episodes) side by side,
    with the vehicles never inserted where any were left out."""
    cells: dict[str, dict[str, str]] = {}
    learned: list[str] = []
    for row in rows:
        column = overview_column(row)
        if column is None:
            continue
        if column not in POLICIES and column not in learned:
            learned.append(column)
        notes = [f"{row['waiting_to_insert']:.0f} never inserted"] if row["waiting_to_insert"] >= 10 else []
        trained = row["trained_episodes"]  # None: cells from before cells recorded their checkpoint
        if column.endswith("in place") and trained is not None and trained < IN_PLACE_EPISODES:
            notes.append(f"after {trained} of {IN_PLACE_EPISODES} episodes")
        cells.setdefault(row["map"], {})[column] = f"{row['resco_delay']:.1f}" + (f" ({'; '.join(notes)})" if notes else "")

    def order(column: str) -> tuple:  # in place, generalists, then fine-tuning by budget; DPPO before DMPO
        algo, _, kind = column.partition(" ")
        tuned = kind.startswith("fine-tuned")
        budget = int(kind.rsplit(" ", 1)[1]) if tuned else 0
        return (tuned, "generalist" in kind, "" if tuned else kind, algo != "DPPO", budget)

    columns = list(POLICIES) + sorted(learned, key=order)
    generalists = sorted({row["trained_on"] for row in rows if row["trained_on"] not in ("", "in place")})
    lines = ["# Real cities at a glance: RESCO delay (s), argmax play, RESCO's timing", "",
             "Mean over training seeds and episodes (SUMO seeds); every controller plays the same hours. "
             "Fine-tuned N: the generalist trained N more episodes on the map. RESCO's published figures are "
             "its own runs (blank: not transcribed). Details, spreads and sampled play: `summary.md`.", "",
             "| map | " + " | ".join(columns) + " | RESCO greedy | RESCO best learned |",
             "| --- |" + " --- |" * (len(columns) + 2)]
    for city in [c for c in SCENARIOS if c in cells]:
        published = RESCO_PUBLISHED.get(city, {})
        learned_published = {k: v for k, v in published.items() if k not in POLICIES}
        best = min(learned_published.items(), key=lambda kv: kv[1]) if learned_published else None
        lines.append(f"| {city} | " + " | ".join(cells[city].get(c, "") for c in columns) + " | "
                     f"{published.get('greedy', '')} | {'' if best is None else f'{best[0]} {best[1]}'} |")
    lines += ["", "Generalists (what each was trained on):", ""] + [f"- {label}" for label in generalists
                                                                     if ", then " not in label]
    return "\n".join(lines) + "\n"


def first_reach(delays: list[float], target: float, window: int = 5) -> int | None:
    """The training episode (1-based) that ends the first ``window`` episodes in a row whose mean delay
    is ``target`` or less; None if none does."""
    for end in range(window, len(delays) + 1):
        if sum(delays[end - window:end]) / window <= target:
            return end
    return None


def best_window(delays: list[float], window: int = 5) -> float:
    """The lowest mean delay over ``window`` training episodes in a row (all of them if fewer)."""
    window = min(window, len(delays))
    return min(sum(delays[k:k + window]) / window for k in range(len(delays) - window + 1))


def learning_curves(training: Path, out: Path, window: int = 5) -> str:
    """``learning.csv`` (every training episode's delay), ``learning.md`` (episodes to greedy's delay,
    best delay, wall-clock per run) and ``learning.png`` from the runs under ``training/runs/atsc`` and, as
    ``<algo> fine-tuned``, under ``training/runs/finetune`` (:mod:`real_city_finetune`)."""
    greedy, greedy_episodes = {}, set()
    for path in (out / "runs").glob("*/resco/greedy.json"):
        cell = json.loads(path.read_text())
        greedy[cell["map"]] = mean_std([e["resco_delay"] for e in cell["episodes"]])[0]
        greedy_episodes.add(len(cell["episodes"]))
    runs = [(p, "") for p in sorted((training / "runs" / "atsc").glob("*-s*")) if (p / "metrics.csv").is_file()]
    finetuned: dict[str, Path] = {}  # each fine-tuning's longest budget holds all its episodes
    for p in sorted((training / "runs" / "finetune").glob("e*/*-s*")):
        if (p / "metrics.csv").is_file():
            finetuned[p.name] = p
    runs += [(p, " fine-tuned") for p in finetuned.values()]
    rows, curves = [], []
    for run, kind in runs:
        parts = run_name(run)
        if parts is None:
            continue
        city, seed, algo = parts["city"], parts["seed"], variant(parts["algo"], run) + kind
        _, delays = read_metric(run, "episode_resco_delay")
        _, wall = read_metric(run, "wall_s")
        if len(delays) == 0:
            continue
        delays = delays.tolist()
        curves += [(city, algo, seed, k + 1, d) for k, d in enumerate(delays)]
        target = greedy.get(city)
        reached = first_reach(delays, target, window) if target is not None else None
        rows.append({"map": city, "algo": algo, "seed": int(seed), "episodes": len(delays),
                     "greedy_delay": target, "episodes_to_greedy": reached,
                     "first_delay": delays[0], "best_delay": best_window(delays, window),
                     "last_delay": best_window(delays[-window:], window), "wall_s": float(wall[-1])})
    with (out / "learning.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["map", "algo", "seed", "episode", "resco_delay"])
        writer.writerows(curves)
    lines = ["# Real cities: learning in place, RESCO delay per training episode", "",
             f"Each training episode is one simulated hour at RESCO's timing, played by the sampling policy. "
             f"Episodes to greedy: the episode that ends the first {window} in a row whose mean RESCO delay is "
             f"greedy's (this benchmark's, {' or '.join(map(str, sorted(greedy_episodes))) or 'no'} episodes) or less; "
             f"best and last: {window}-episode means.", "",
             "| map | algo | seed | episodes run | greedy (s) | episodes to greedy | first episode (s) | best (s) "
             "| last (s) | wall-clock (min) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        target = "" if r["greedy_delay"] is None else f"{r['greedy_delay']:.1f}"
        reached = "not reached" if r["episodes_to_greedy"] is None else str(r["episodes_to_greedy"])
        lines.append(f"| {r['map']} | {r['algo']} | {r['seed']} | {r['episodes']} | {target} | {reached} | "
                     f"{r['first_delay']:.1f} | {r['best_delay']:.1f} | {r['last_delay']:.1f} | {r['wall_s'] / 60:.0f} |")
    text = "\n".join(lines) + "\n"
    (out / "learning.md").write_text(text)
    plot_learning(curves, greedy, out / "learning.png")
    return text


def plot_learning(curves: list[tuple], greedy: dict[str, float], path: Path) -> None:
    """One panel per map: each run's RESCO delay per training episode, greedy's as a dashed line."""
    cities = sorted({c[0] for c in curves}, key=lambda c: list(SCENARIOS).index(c) if c in SCENARIOS else 99)
    if not cities:
        return
    plt = pyplot()
    fig, axes = plt.subplots(1, len(cities), figsize=(5 * len(cities), 3.6), squeeze=False)
    colours = {"dppo": "tab:blue", "dmpo": "tab:red"}
    for ax, city in zip(axes[0], cities):
        runs = sorted({(c[1], c[2]) for c in curves if c[0] == city})
        for algo, seed in runs:
            points = [(c[3], c[4]) for c in curves if c[0] == city and c[1] == algo and c[2] == seed]
            name, _, kind = algo.partition(" ")  # "dmpo fine-tuned": from a generalist
            base, _, variant = name.partition("-")
            ax.plot(*zip(*points), color=colours.get(base, "tab:grey"), alpha=0.8, lw=1,
                    ls="--" if kind else ":" if variant else "-",
                    label=algo.upper() if seed == min(s for a, s in runs if a == algo) else None)
        if city in greedy:
            ax.axhline(greedy[city], color="black", ls="--", lw=1, label="greedy")
        ax.set(title=city, xlabel="training episode (1 h simulated)", ylabel="RESCO delay (s)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--policies", nargs="+", default=list(POLICIES))
    parser.add_argument("--timings", nargs="+", default=list(TIMINGS), choices=list(TIMINGS))
    parser.add_argument("--episodes", type=int, default=2, help="episodes (SUMO seeds) per cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/real-cities")
    parser.add_argument("--learned", nargs="+", type=Path, default=[], metavar="RUN_DIR",
                        help="trained runs to play (their checkpoints/last.pt) instead of the hand-written controllers")
    parser.add_argument("--play", nargs="+", default=["argmax", "sampled"], choices=["argmax", "sampled"])
    parser.add_argument("--curves", type=Path, default=None, metavar="TRAINING",
                        help="write learning.md/csv/png from the runs of real_city_training.py under TRAINING")
    parser.add_argument("--summary-only", action="store_true", help="rebuild the summary from the run files")
    args = parser.parse_args()
    out = Path(args.out)
    if args.learned and not args.summary_only:
        todo = learned_cells(args.learned, args.maps, args.play)
        for k, (run_dir, config, steps, label, city, play, name) in enumerate(todo, 1):
            path = out / "runs" / city / "resco" / name
            if is_current(path, steps, args.episodes):
                print(f"[{k}/{len(todo)}] {city} {name.stem}: done already", flush=True)
                continue
            write_cell(path, play_learned(run_dir, config, steps, label, city, play, args.episodes, args.seed),
                       f"[{k}/{len(todo)}]")
    elif args.curves is not None:
        print(learning_curves(args.curves, out), end="")
    elif not args.summary_only:
        todo = [(c, t, p) for c in args.maps for t in args.timings for p in args.policies]
        for k, (city, timing, policy) in enumerate(todo, 1):
            path = cell_path(out, city, timing, policy)
            if path.is_file() and len(json.loads(path.read_text())["episodes"]) >= args.episodes:
                print(f"[{k}/{len(todo)}] {city} {timing} {policy}: done already", flush=True)
                continue
            write_cell(path, play_cell(city, timing, policy, args.episodes, args.seed), f"[{k}/{len(todo)}]")
    print(summarise(out), end="")


def is_current(path: Path, checkpoint_env_steps: int, episodes: int) -> bool:
    """Whether the cell at ``path`` played this checkpoint (same real steps trained) for enough episodes: a
    run trained further since, or a cell from before cells recorded it, is played again."""
    if not path.is_file():
        return False
    cell = json.loads(path.read_text())
    return cell.get("checkpoint_env_steps") == checkpoint_env_steps and len(cell["episodes"]) >= episodes


def write_cell(path: Path, result: dict, counter: str) -> None:
    """Write one cell whole or not at all, and print its delays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.part")
    partial.write_text(json.dumps(result, indent=1))
    partial.replace(path)
    delays = ", ".join(f"{e['resco_delay']:.1f}" for e in result["episodes"])
    print(f"{counter} {result['map']} {result['timing']} {result['controller']}"
          f"{' (' + result['trained_on'] + ')' if result.get('trained_on') else ''}: RESCO delay {delays} s "
          f"({result['seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
