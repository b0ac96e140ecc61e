"""Real cities: gdmpo's controllers on RESCO's eight maps, beside RESCO's published figures.

    pip install -e ".[scenarios]"          # RESCO's maps come with sumo-rl
    python benchmarks/real_cities.py [--maps cologne8 ingolstadt21 ...] [--policies fixed-time max-pressure greedy]
        [--timings resco default] [--episodes 2] [--out benchmarks/results/real-cities]
    python benchmarks/real_cities.py --summary-only

Each cell (map, timing, controller) plays ``--episodes`` one-hour episodes in the map's own window
(``resco:<map>``, RESCO's ``.sumocfg``), each with its own SUMO seed, and writes
``runs/<map>/<timing>/<controller>.json`` with every episode's traffic figures. A cell whose file
exists is skipped, so the command resumes where it stopped. ``summary.md`` and ``summary.csv`` are then
rebuilt from all run files, with RESCO's published figures beside gdmpo's.

Delay is RESCO's (``resco_delay``: mean over vehicles of timeLoss + departDelay, vehicles due in the
window that never entered charged their wait until its end). Timings: ``resco`` is RESCO's on its real
maps (10 s decisions, 3 s yellow), ``default`` gdmpo's own (5 s, 2 s).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from pathlib import Path

import gdmpo
from gdmpo.envs.controllers import reference_policy
from gdmpo.envs.sumo.resco import SCENARIOS
from gdmpo.evaluation import run_episodes

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


def mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def summarise(out: Path) -> str:
    """``summary.csv`` (one row per cell) and ``summary.md`` from every run file under ``out/runs``."""
    cells = [json.loads(path.read_text()) for path in sorted((out / "runs").glob("*/*/*.json"))]
    order = {name: k for k, name in enumerate(SCENARIOS)}
    cells.sort(key=lambda c: (order.get(c["map"], 99), TIMINGS.index(c["timing"]) if c["timing"] in TIMINGS else 9,
                              c["controller"]))
    rows = []
    for cell in cells:
        row = {"map": cell["map"], "timing": cell["timing"], "controller": cell["controller"],
               "trained_on": cell.get("trained_on", ""), "episodes": len(cell["episodes"])}
        for key in FIGURES:
            row[key], row[f"{key}_std"] = mean_std([e[key] for e in cell["episodes"]])
        published = RESCO_PUBLISHED.get(cell["map"], {}).get(cell["controller"]) if cell["timing"] == "resco" else None
        row["resco_published_delay"] = published
        rows.append(row)
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["map"])
        writer.writeheader()
        writer.writerows(rows)
    lines = ["# Real cities: controllers on RESCO's maps", "",
             "RESCO delay: mean over vehicles due in the window of timeLoss + departDelay (s), never-inserted "
             "vehicles charged their wait until the window's end. Mean ± std over episodes (SUMO seeds). "
             "`resco` timing: 10 s decisions, 3 s yellow; `default`: 5 s, 2 s. "
             "RESCO published: its own figures at its timing (blank: not transcribed).", "",
             "| map | timing | controller | episodes | RESCO delay (s) | RESCO published (s) | delay, departed (s) "
             "| trip time (s) | left in network | never inserted | arrived |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        published = "" if r["resco_published_delay"] is None else f"{r['resco_published_delay']:.1f}"
        name = r["controller"] + (f" (trained on {r['trained_on']})" if r["trained_on"] else "")
        lines.append(f"| {r['map']} | {r['timing']} | {name} | {r['episodes']} | "
                     f"{r['resco_delay']:.1f} ± {r['resco_delay_std']:.1f} | {published} | {r['delay']:.1f} | "
                     f"{r['trip_time']:.1f} | {r['in_network']:.0f} | {r['waiting_to_insert']:.0f} | {r['arrived']:.0f} |")
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--policies", nargs="+", default=list(POLICIES))
    parser.add_argument("--timings", nargs="+", default=list(TIMINGS), choices=list(TIMINGS))
    parser.add_argument("--episodes", type=int, default=2, help="episodes (SUMO seeds) per cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/real-cities")
    parser.add_argument("--summary-only", action="store_true", help="rebuild the summary from the run files")
    args = parser.parse_args()
    out = Path(args.out)
    if not args.summary_only:
        todo = [(c, t, p) for c in args.maps for t in args.timings for p in args.policies]
        for k, (city, timing, policy) in enumerate(todo, 1):
            path = cell_path(out, city, timing, policy)
            if path.is_file():
                print(f"[{k}/{len(todo)}] {city} {timing} {policy}: done already", flush=True)
                continue
            result = play_cell(city, timing, policy, args.episodes, args.seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".json.part")
            partial.write_text(json.dumps(result, indent=1))
            partial.replace(path)  # a cell is written whole or not at all
            delays = ", ".join(f"{e['resco_delay']:.1f}" for e in result["episodes"])
            print(f"[{k}/{len(todo)}] {city} {timing} {policy}: RESCO delay {delays} s "
                  f"({result['seconds']:.0f} s)", flush=True)
    print(summarise(out), end="")


if __name__ == "__main__":
    main()
