"""Figures a person reads: learning curves across runs and seeds, and road networks with their agents."""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from gdmpo.config import flatten
from gdmpo.metrics_file import number, read_rows


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed), imported on first use so
    that importing gdmpo stays light."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_curve(run_dir: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(env_steps, episode_return)`` of the iterations that finished episodes (rows with ``episodes`` 0
    repeat the last return and are left out)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory of gdmpo train, or one whose first iteration has "
                                f"not finished (no metrics.csv)")
    steps, returns = [], []
    for k, row in enumerate(read_rows(path, ("env_steps", "episode_return"))):
        if row["episode_return"] and (not row.get("episodes") or number(path, k, row, "episodes") > 0):
            steps.append(number(path, k, row, "env_steps"))
            returns.append(number(path, k, row, "episode_return"))
    return np.asarray(steps), np.asarray(returns)


def read_metric(run_dir: str | os.PathLike[str], column: str) -> tuple[np.ndarray, np.ndarray]:
    """``(env_steps, value)`` of the iterations that logged ``column`` (e.g. DMPO's ``model_state_mse``,
    empty before its models train); a run that never logs the column gives two empty arrays."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory of gdmpo train (no metrics.csv)")
    rows = [(k, row) for k, row in enumerate(read_rows(path, ("env_steps",))) if row.get(column)]
    return (np.asarray([number(path, k, r, "env_steps") for k, r in rows]),
            np.asarray([number(path, k, r, column) for k, r in rows]))


def group_runs(run_dirs: Sequence[str | os.PathLike[str]]) -> dict[str, list[Path]]:
    """Group runs whose resolved configs differ only by seed; label each group readably.

    A label is ``algo on env``, followed by the settings that tell it apart from other groups of the
    same algorithm and environment (``ppo.value_hops=3``). A key that a run's config lacks counts as
    null: a run saved before a knob existed ran without it, as the knob's null default does.
    """
    configs = {}
    for run_dir in run_dirs:
        path = Path(run_dir) / "config.yaml"
        if not path.is_file():
            raise FileNotFoundError(f"{run_dir}: not a run directory of gdmpo train (it has no config.yaml and "
                                    "metrics.csv)")
        flat = flatten(yaml.safe_load(path.read_text()))
        flat.pop("seed", None)
        configs[Path(run_dir)] = flat
    keys = set().union(*configs.values())
    configs = {run_dir: {key: flat.get(key) for key in keys} for run_dir, flat in configs.items()}
    groups: dict[str, list[Path]] = defaultdict(list)
    for run_dir, flat in configs.items():
        groups[repr(sorted(flat.items(), key=lambda kv: kv[0]))].append(run_dir)
    labelled: dict[str, list[Path]] = {}
    for dirs in groups.values():
        flat = configs[dirs[0]]
        base = f"{flat['algo']} on {flat['env.id']}"
        rivals = [configs[d[0]] for d in groups.values()
                  if d is not dirs and configs[d[0]]["algo"] == flat["algo"] and configs[d[0]]["env.id"] == flat["env.id"]]
        differing = sorted({k for other in rivals for k in flat if other.get(k) != flat[k]})
        label = base + (" (" + ", ".join(f"{k}={flat[k]}" for k in differing) + ")" if differing else "")
        labelled[label] = dirs
    return labelled


def aggregate(curves: list[tuple[np.ndarray, np.ndarray]], points: int = 100) -> tuple[np.ndarray, ...]:
    """Interpolate each curve on a common grid of env steps; return ``(grid, mean, low, high)``.

    The spread is min-max across runs; with a single run it is empty (low = high = mean).
    """
    curves = [(s, r) for s, r in curves if len(s) > 0]
    if not curves:
        raise ValueError("no run has a finished episode to plot")
    start = max(s[0] for s, _ in curves)
    stop = min(s[-1] for s, _ in curves)
    if stop <= start:
        grid = curves[0][0]
        return grid, curves[0][1], curves[0][1], curves[0][1]
    grid = np.linspace(start, stop, points)
    values = np.stack([np.interp(grid, s, r) for s, r in curves])
    return grid, values.mean(0), values.min(0), values.max(0)


def plot_runs(run_dirs: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str],
              title: str | None = None) -> Path:
    """Draw one curve per group of runs (mean across seeds, min-max band) and save it as PNG."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, dirs in sorted(group_runs(run_dirs).items()):
        grid, mean, low, high = aggregate([read_curve(d) for d in dirs])
        line, = ax.plot(grid, mean, label=f"{label} ({len(dirs)} run{'s' * (len(dirs) > 1)})")
        if len(dirs) > 1:
            ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("team return per episode")
    ax.set_title(title or "training curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, output)


def plot_road_network(net_file: str | os.PathLike[str], output: str | os.PathLike[str], graph=None) -> Path:
    """Draw a SUMO network's roads (grey) with its signal agents and communication links over them."""
    import sumolib

    from gdmpo.graph import from_sumo

    plt = pyplot()

    graph = from_sumo(net_file) if graph is None else graph
    net = sumolib.net.readNet(str(net_file))
    fig, ax = plt.subplots(figsize=(7, 7))
    for edge in net.getEdges():
        shape = np.asarray(edge.getShape())
        ax.plot(shape[:, 0], shape[:, 1], color="0.75", linewidth=0.6 + 0.6 * edge.getLaneNumber(), zorder=1)
    pos = graph.pos.numpy()
    for u, v in graph.edge_index.t().tolist():
        if u < v:
            ax.plot(pos[[u, v], 0], pos[[u, v], 1], color="tab:blue", linewidth=1.2, zorder=2)
    ax.scatter(pos[:, 0], pos[:, 1], s=40, color="tab:red", zorder=3, label="signal agents")
    if graph.num_nodes <= 100:
        for index, ((x, y), name) in enumerate(zip(pos, graph.names)):
            ax.annotate(short_label(name, index), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_aspect("equal")
    ax.set_title(f"{Path(net_file).name}: {graph.num_nodes} agents, {graph.edge_index.size(1) // 2} links")
    ax.legend(loc="best", fontsize=8)
    return _save(fig, output)


def short_label(name: str, index: int, limit: int = 16) -> str:
    """A junction id fit for a drawing: as is when short, else the agent index (SUMO's joined clusters
    have ids of hundreds of characters, which would squeeze the figure to a thumbnail)."""
    return name if len(name) <= limit else f"#{index}"


def agent_map_values(report: dict, against: str | None = None, source: str = "report") -> np.ndarray:
    """``[n]`` what the agent map colours: the mean per-agent return of the learned policy (an eval report,
    or a transfer report's zero-shot run), or with ``against`` its difference from that reference
    controller's on the same episodes (a transfer report's ``references``): negative where it loses."""
    summary = report.get("zero_shot", report)  # transfer reports: the zero-shot run
    if "layout" not in report or "agent_returns" not in summary:
        raise ValueError(f"{source}: not an eval or transfer report (needs 'layout' and 'agent_returns')")
    values = np.asarray(summary["agent_returns"], dtype=float).mean(0)
    if against is not None:
        references = report.get("references") or {}
        if against not in references:
            raise ValueError(f"{source}: no {against!r} reference to compare with (it has: "
                             f"{', '.join(references) or 'none; make it with gdmpo transfer'})")
        values = values - np.asarray(references[against]["agent_returns"], dtype=float).mean(0)
    return values


def plot_agent_map(report_file: str | os.PathLike[str], output: str | os.PathLike[str],
                   title: str | None = None, against: str | None = None) -> Path:
    """Draw the agents at their positions, coloured by mean per-agent return (an eval or transfer report),
    or with ``against`` by the learned return minus that reference controller's (red where it loses)."""
    import json

    plt = pyplot()

    report = json.loads(Path(report_file).read_text())
    values = agent_map_values(report, against, str(report_file))
    pos = np.asarray(report["layout"]["pos"], dtype=float)
    if len(values) != len(pos):
        raise ValueError(f"{report_file}: {len(values)} agent returns but {len(pos)} positions")
    fig, ax = plt.subplots(figsize=(7, 6))
    for u, v in report["layout"]["edges"]:
        ax.plot(pos[[u, v], 0], pos[[u, v], 1], color="0.7", linewidth=1.0, zorder=1)
    if against is None:
        points = ax.scatter(pos[:, 0], pos[:, 1], c=values, cmap="viridis", s=max(20, 4000 / len(pos)), zorder=2)
        label, what = "mean return per agent", "return per agent"
    else:
        bound = float(np.abs(values).max()) or 1.0
        points = ax.scatter(pos[:, 0], pos[:, 1], c=values, cmap="RdYlGn", vmin=-bound, vmax=bound,
                            s=max(20, 4000 / len(pos)), zorder=2, edgecolors="0.3", linewidths=0.5)
        label, what = f"learned minus {against}, mean return per agent", f"learned vs {against} per agent"
    fig.colorbar(points, ax=ax, label=label)
    ax.tick_params(axis="x", labelrotation=30)  # road networks' coordinates are long numbers
    ax.set_aspect("equal")
    ax.set_title(title or f"{report.get('env', report.get('target', ''))}: {what}")
    return _save(fig, output)


def plot_profiles(checkpoint: str | os.PathLike[str], output: str | os.PathLike[str],
                  vehicles: Sequence[int] | None = None, seed: int = 0) -> Path:
    """Headway and speed of selected vehicles over one episode of a trained policy (the paper's Fig. 7),
    played by :func:`gdmpo.evaluation.vehicle_profiles`.

    Also writes the full profiles as ``<output>.csv`` (step, time, vehicle, headway, speed).
    """
    from gdmpo.evaluation import vehicle_profiles

    plt = pyplot()

    profiles = vehicle_profiles(checkpoint, seed)
    headways, speeds, n = profiles["headway"], profiles["speed"], profiles["headway"].shape[1]
    chosen = list(vehicles) if vehicles else sorted({0, n // 2, n - 1})
    if any(not 0 <= v < n for v in chosen):
        raise ValueError(f"vehicles must be agent indices in [0, {n - 1}], got {chosen}")
    time = np.arange(len(headways)) * profiles["dt"]
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with Path(output).with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "time_s", "vehicle", "headway_m", "speed_mps"])
        for k in range(len(time)):
            writer.writerows([k, f"{time[k]:.2f}", i, f"{headways[k, i]:.4f}", f"{speeds[k, i]:.4f}"] for i in range(n))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True)
    for i in chosen:
        top.plot(time, headways[:, i], label=f"vehicle {i}")
        bottom.plot(time, speeds[:, i], label=f"vehicle {i}")
    top.set_ylabel("headway (m)")
    bottom.set_ylabel("speed (m/s)")
    bottom.set_xlabel("time (s)")
    top.legend(fontsize=8)
    top.set_title(f"{profiles['env']}: {profiles['algo']} policy, seed {seed}")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return _save(fig, output)


def _save(fig, output: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as PNG (creating the folder) and release it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return output
