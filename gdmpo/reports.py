"""Evaluation reports a person can read: JSON for tools, a Markdown table for people.

A report row is an evaluation summary (:func:`gdmpo.evaluation.run_episodes`); the table shows team
return, per-step return and, for traffic, SUMO's figures. Reports also carry the agents' layout
(positions and links), so ``gdmpo plot --agent-map`` can colour the graph by per-agent return.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import networkx as nx
import torch
from torch_geometric.data import Data

from gdmpo.graph import to_networkx


def agent_layout(graph: Data) -> dict[str, Any]:
    """Positions ``[n, 2]`` (the network's own where it has them, else a deterministic drawing),
    links (each once) and names of a communication graph."""
    edges = sorted({(min(a, b), max(a, b)) for a, b in graph.edge_index.t().tolist()})
    pos = getattr(graph, "pos", None)
    if pos is not None:
        points = torch.as_tensor(pos, dtype=torch.float64).tolist()
    elif graph.num_nodes > 1:
        drawn = nx.kamada_kawai_layout(to_networkx(graph))
        points = [[float(drawn[i][0]), float(drawn[i][1])] for i in range(graph.num_nodes)]
    else:
        points = [[0.0, 0.0]]
    names = list(getattr(graph, "names", [str(i) for i in range(graph.num_nodes)]))
    return {"pos": points, "edges": [list(e) for e in edges], "names": names}


#: column names of the traffic figures in reports (see ``ATSCSimulation.metrics``); others keep their key
TRAFFIC_LABELS = {
    "delay": "delay (s, departed vehicles)",
    "resco_delay": "RESCO delay (s, never-inserted charged)",
    "trip_time": "trip time (s)",
    "waiting_time": "waiting (s)",
    "in_network": "left in network",
    "waiting_to_insert": "never inserted",
}


def markdown_table(title: str, rows: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """One row per named summary: traffic figures where present, led by those that count every vehicle
    (delay, trip time), then team return ± std and per-step return."""
    traffic_keys = list(dict.fromkeys(k for _, r in rows for k in r.get("traffic", {})))  # the environment's order
    header = ["policy", *(TRAFFIC_LABELS.get(k, k) for k in traffic_keys), "team return", "per-step"]
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, r in rows:
        traffic = [f"{r.get('traffic', {}).get(k, math.nan):.1f}" for k in traffic_keys]
        cells = [name, *traffic, f"{r['mean_return']:.5g} ± {r['std_return']:.2g}", f"{r['mean_step_return']:.4g}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def per_agent_line(summary: dict[str, Any], names: Sequence[str] | None = None) -> str:
    """The mean return of each agent over the summary's episodes, as one readable line."""
    means = torch.tensor(summary["agent_returns"], dtype=torch.float64).mean(0).tolist()
    names = names or [str(i) for i in range(len(means))]
    return "Per-agent return (mean over episodes): " + ", ".join(f"{n}: {v:.4g}" for n, v in zip(names, means))


def write_report(out_dir: str | os.PathLike[str], stem: str, report: dict[str, Any], table: str) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` into ``out_dir``; return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=1))
    md_path.write_text(table)
    return json_path, md_path
