"""Builders for communication graphs: chains, rings, grids, networkx graphs and edge-list files.

Every builder returns a validated ``torch_geometric.data.Data`` with an undirected, coalesced
``edge_index`` (both directions, sorted), ``num_nodes``, and where meaningful node positions
``pos: [n, 2]`` and node ``names`` (a list of strings, one per node).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Hashable, Sequence

import networkx as nx
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, to_undirected

from gdmpo.graph.validation import GraphError, validate_graph


def from_edges(
    edges: torch.Tensor | Sequence[tuple[int, int]],
    num_nodes: int,
    *,
    pos: torch.Tensor | None = None,
    names: Sequence[str] | None = None,
) -> Data:
    """Make a communication graph from undirected edges given once each (either direction).

    Args:
        edges: ``[2, E]`` tensor or a sequence of ``(u, v)`` pairs of node indices.
        num_nodes: number of nodes (agents); nodes without edges are allowed here.
        pos: optional ``[num_nodes, 2]`` node coordinates (for plots).
        names: optional node names.
    """
    edge_index = torch.as_tensor(edges, dtype=torch.long)
    if edge_index.numel() == 0:
        edge_index = edge_index.reshape(2, 0)
    elif edge_index.dim() == 2 and edge_index.size(0) != 2 and edge_index.size(1) == 2:
        edge_index = edge_index.t()
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise GraphError(f"edges must be [2, E] or a list of (u, v) pairs, got shape {list(edge_index.shape)}")
    if edge_index.numel() > 0 and (edge_index.min() < 0 or edge_index.max() >= num_nodes):
        raise GraphError(f"an edge refers to a node outside [0, {num_nodes - 1}]")
    loops = edge_index[0] == edge_index[1]
    if loops.any():
        raise GraphError(f"self loop at node {int(edge_index[0, loops][0])}; agents are not their own neighbours")
    edge_index = coalesce(to_undirected(edge_index, num_nodes=num_nodes), num_nodes=num_nodes)
    data = Data(edge_index=edge_index, num_nodes=num_nodes)
    if pos is not None:
        data.pos = torch.as_tensor(pos, dtype=torch.float32)
    if names is not None:
        data.names = [str(name) for name in names]
    return validate_graph(data)


def chain(n: int) -> Data:
    """A path 0 - 1 - ... - (n-1): a platoon where each vehicle talks to the one ahead and behind."""
    _check_count("chain", n, minimum=1)
    idx = torch.arange(n - 1)
    pos = torch.stack([torch.arange(n, dtype=torch.float32), torch.zeros(n)], dim=1)
    return from_edges(torch.stack([idx, idx + 1]), n, pos=pos)


def ring(n: int) -> Data:
    """A cycle 0 - 1 - ... - (n-1) - 0: vehicles on a closed road."""
    _check_count("ring", n, minimum=3)
    idx = torch.arange(n)
    angle = 2 * torch.pi * idx.float() / n
    pos = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return from_edges(torch.stack([idx, (idx + 1) % n]), n, pos=pos)


def grid(rows: int, cols: int) -> Data:
    """A ``rows x cols`` lattice, node ``r * cols + c`` at position (c, r): a grid of intersections."""
    _check_count("grid rows", rows, minimum=1)
    _check_count("grid cols", cols, minimum=1)
    ids = torch.arange(rows * cols).reshape(rows, cols)
    horizontal = torch.stack([ids[:, :-1].flatten(), ids[:, 1:].flatten()])
    vertical = torch.stack([ids[:-1, :].flatten(), ids[1:, :].flatten()])
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    pos = torch.stack([c.flatten(), r.flatten()], dim=1).float()
    return from_edges(torch.cat([horizontal, vertical], dim=1), rows * cols, pos=pos)


def from_networkx(graph: nx.Graph, *, pos_attr: str = "pos") -> Data:
    """Convert an undirected networkx graph; node order is ``list(graph.nodes)``.

    Node names are ``str(node)``; a node attribute ``pos_attr`` holding (x, y) becomes ``pos`` when
    every node has it. Directed graphs are rejected: direction has no meaning for communication.
    """
    if graph.is_directed():
        raise GraphError("from_networkx expects an undirected graph; call graph.to_undirected() first")
    nodes: list[Hashable] = list(graph.nodes)
    if not nodes:
        raise GraphError("from_networkx: the graph has no nodes")
    index = {node: i for i, node in enumerate(nodes)}
    edges = [(index[u], index[v]) for u, v in graph.edges if u != v]
    if len(edges) != graph.number_of_edges():
        loop = next(u for u, v in graph.edges if u == v)
        raise GraphError(f"from_networkx: self loop at node {loop!r}; agents are not their own neighbours")
    positions = [graph.nodes[node].get(pos_attr) for node in nodes]
    pos = torch.tensor(positions, dtype=torch.float32) if all(p is not None for p in positions) else None
    return from_edges(torch.tensor(edges, dtype=torch.long).reshape(-1, 2).t(), len(nodes),
                      pos=pos, names=[str(node) for node in nodes])


def to_networkx(graph: Data) -> nx.Graph:
    """The inverse of :func:`from_networkx` (integer node labels, ``name`` and ``pos`` attributes)."""
    out = nx.Graph()
    names = getattr(graph, "names", None)
    pos = getattr(graph, "pos", None)
    for i in range(graph.num_nodes):
        attrs = {}
        if names is not None:
            attrs["name"] = names[i]
        if pos is not None:
            attrs["pos"] = tuple(pos[i].tolist())
        out.add_node(i, **attrs)
    out.add_edges_from(graph.edge_index.t().tolist())
    return out


def from_edge_list(path: str | PathLike[str]) -> Data:
    """Read an edge-list file: one ``u v`` pair of node names per line, each edge once.

    ``#`` starts a comment; a line with a single name declares a node that may have no edges. Nodes
    are numbered in order of first appearance. Errors name the file and line at fault.
    """
    path = Path(path)
    if not path.is_file():
        raise GraphError(f"{path}: no such edge-list file")
    index: dict[str, int] = {}
    edges: list[tuple[int, int]] = []
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        tokens = raw.split("#", 1)[0].split()
        if not tokens:
            continue
        if len(tokens) > 2:
            raise GraphError(f"{path}:{lineno}: expected 'u v' or a single node name, got {raw.strip()!r}")
        ids = [index.setdefault(token, len(index)) for token in tokens]
        if len(ids) == 2:
            if ids[0] == ids[1]:
                raise GraphError(f"{path}:{lineno}: self loop {tokens[0]} - {tokens[1]}")
            edges.append((ids[0], ids[1]))
    if not index:
        raise GraphError(f"{path}: the edge list is empty")
    names = list(index)
    return from_edges(torch.tensor(edges, dtype=torch.long).reshape(-1, 2).t(), len(names), names=names)


def _check_count(what: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or value < minimum:
        raise GraphError(f"{what} must be an integer >= {minimum}, got {value!r}")
