"""Checks that a communication graph is one every gdmpo component can rely on.

A communication graph is a ``torch_geometric.data.Data`` with an undirected ``edge_index``
(both directions stored), no self loops, and ``num_nodes`` set. Networks, critics and the
extended advantage all assume this, so a malformed graph is rejected up front with a message that
says what is wrong and where, rather than producing silently wrong sums later.
"""

from __future__ import annotations

import torch
from torch_geometric.data import Data


class GraphError(ValueError):
    """A communication graph (or the file it came from) is malformed."""


def validate_graph(graph: Data, *, allow_isolated: bool = True, source: str | None = None) -> Data:
    """Raise :class:`GraphError` if ``graph`` is not a valid communication graph; return it otherwise.

    Args:
        graph: the graph to check.
        allow_isolated: if False, nodes without any neighbour are an error (agents that could never
            communicate).
        source: where the graph came from (a file name), prefixed to every message.
    """
    where = f"{source}: " if source else ""
    if not isinstance(graph, Data):
        raise GraphError(f"{where}expected a torch_geometric.data.Data, got {type(graph).__name__}")
    n = graph.num_nodes
    if n is None or n <= 0:
        raise GraphError(f"{where}graph has no nodes (num_nodes={n})")
    edge_index = graph.edge_index
    if edge_index is None:
        raise GraphError(f"{where}graph has no edge_index")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise GraphError(f"{where}edge_index must have shape [2, num_edges], got {list(edge_index.shape)}")
    if edge_index.dtype != torch.long:
        raise GraphError(f"{where}edge_index must have dtype torch.long, got {edge_index.dtype}")
    if edge_index.numel() > 0:
        low, high = int(edge_index.min()), int(edge_index.max())
        if low < 0 or high >= n:
            bad = edge_index[:, ((edge_index < 0) | (edge_index >= n)).any(0)][:, 0].tolist()
            raise GraphError(
                f"{where}edge {tuple(bad)} has a node index out of range [0, {n - 1}] (num_nodes={n})"
            )
        loops = edge_index[0] == edge_index[1]
        if loops.any():
            node = int(edge_index[0, loops][0])
            raise GraphError(f"{where}self loop at node {node} ({_name(graph, node)}); remove it")
        missing = _one_directional(edge_index, n)
        if missing is not None:
            u, v = missing
            raise GraphError(
                f"{where}edge {u}->{v} ({_name(graph, u)} -> {_name(graph, v)}) has no reverse edge "
                f"{v}->{u}; communication graphs are undirected (use torch_geometric.utils.to_undirected)"
            )
        if _has_duplicates(edge_index, n):
            raise GraphError(f"{where}edge_index contains duplicate edges (coalesce it first)")
    if not allow_isolated:
        degree = torch.zeros(n, dtype=torch.long)
        if edge_index.numel() > 0:
            degree.index_add_(0, edge_index[0], torch.ones_like(edge_index[0]))
        isolated = (degree == 0).nonzero().flatten()
        if isolated.numel() > 0:
            node = int(isolated[0])
            raise GraphError(
                f"{where}node {node} ({_name(graph, node)}) is isolated: it has no neighbour, and "
                f"{isolated.numel()} node(s) in all are isolated"
            )
    for attr in ("pos", "names"):
        value = getattr(graph, attr, None)
        if value is not None and len(value) != n:
            raise GraphError(f"{where}graph.{attr} has {len(value)} entries but the graph has {n} nodes")
    return graph


def _name(graph: Data, node: int) -> str:
    names = getattr(graph, "names", None)
    return repr(names[node]) if names is not None else f"node {node}"


def _one_directional(edge_index: torch.Tensor, n: int) -> tuple[int, int] | None:
    """Return one edge (u, v) whose reverse (v, u) is absent, or None when the graph is symmetric."""
    keys = edge_index[0] * n + edge_index[1]
    reverse = edge_index[1] * n + edge_index[0]
    present = torch.isin(reverse, keys)
    if bool(present.all()):
        return None
    idx = int((~present).nonzero()[0])
    return int(edge_index[0, idx]), int(edge_index[1, idx])


def _has_duplicates(edge_index: torch.Tensor, n: int) -> bool:
    keys = edge_index[0] * n + edge_index[1]
    return keys.unique().numel() != keys.numel()
