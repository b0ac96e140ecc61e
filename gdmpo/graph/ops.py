"""Sparse graph operations every algorithm needs: κ-hop neighbourhoods and batching.

All of them are tensor operations (sparse matrix products, offset arithmetic), never loops over
nodes, so they stay cheap for graphs of thousands of agents and for large batches of environments.
"""

from __future__ import annotations

import warnings

import torch
from torch_geometric.data import Data


def khop_adjacency(edge_index: torch.Tensor, num_nodes: int, k: int, *, include_self: bool = True) -> torch.Tensor:
    """Sparse 0/1 matrix ``R`` with ``R[i, j] = 1`` iff ``j`` is within ``k`` hops of ``i``.

    Computed as the support of ``(A + I)^k`` with ``k`` sparse products.

    Args:
        edge_index: ``[2, E]`` undirected edges.
        num_nodes: n.
        k: radius (``k >= 0``); ``k = 0`` is the node itself.
        include_self: keep the diagonal (``i`` is in its own neighbourhood ``N_i^k``).

    Returns:
        a coalesced sparse COO float tensor of shape ``[n, n]``.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    eye = torch.arange(num_nodes, device=edge_index.device)
    step_index = torch.cat([edge_index, torch.stack([eye, eye])], dim=1)
    step = _binary_sparse(step_index, num_nodes)
    reach = _binary_sparse(torch.stack([eye, eye]), num_nodes)
    with warnings.catch_warnings():  # torch flags its sparse kernels as beta on every call
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        for _ in range(k):
            reach = _binary_sparse(torch.sparse.mm(reach, step).coalesce().indices(), num_nodes)
    if not include_self:
        index = reach.indices()
        keep = index[0] != index[1]
        reach = _binary_sparse(index[:, keep], num_nodes)
    return reach


def khop_edge_index(edge_index: torch.Tensor, num_nodes: int, k: int, *, include_self: bool = False) -> torch.Tensor:
    """Edge index ``[2, E_k]`` linking every node to every node within ``k`` hops (sorted, unique)."""
    return khop_adjacency(edge_index, num_nodes, k, include_self=include_self).indices()


def khop(graph: Data, k: int, *, include_self: bool = False) -> torch.Tensor:
    """κ-hop edge index of a communication graph; see :func:`khop_edge_index`."""
    return khop_edge_index(graph.edge_index, graph.num_nodes, k, include_self=include_self)


def hop_distances(graph: Data) -> torch.Tensor:
    """``[n, n]`` matrix of shortest-path lengths in hops (``-1`` where unreachable).

    Dense: meant for tests, diagnostics and small graphs, not for hot paths.
    """
    n = graph.num_nodes
    dist = torch.full((n, n), -1, dtype=torch.long)
    dist.fill_diagonal_(0)
    adjacency = torch.zeros(n, n, dtype=torch.bool)
    adjacency[graph.edge_index[0], graph.edge_index[1]] = True
    frontier = torch.eye(n, dtype=torch.bool)
    for hops in range(1, n):
        frontier = (frontier.float() @ adjacency.float() > 0) & (dist < 0)
        if not frontier.any():
            break
        dist[frontier] = hops
    return dist


def batch_edge_index(edge_index: torch.Tensor, num_nodes: int, num_copies: int) -> torch.Tensor:
    """Edge index of ``num_copies`` disjoint copies of a graph; copy ``b`` owns nodes ``[b n, (b+1) n)``.

    This is how a vector of B environments with n agents each is fed to a message-passing network as
    one graph of ``B * n`` nodes, matching observations flattened from ``[B, n, d]`` to ``[B n, d]``.
    """
    offsets = torch.arange(num_copies, device=edge_index.device).repeat_interleave(edge_index.size(1)) * num_nodes
    return edge_index.repeat(1, num_copies) + offsets


def adjacency_t(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """The transposed adjacency as a sparse CSR matrix (row ``i`` lists the sources that send to ``i``).

    Message-passing layers accept it in place of ``edge_index`` and then aggregate with one sparse
    matrix product instead of a gather and a scatter: 2-5x faster forward and backward on CPU for
    batched graphs (measured on 1e5 nodes, 64 features).
    """
    from torch_geometric.utils import to_torch_csr_tensor

    with warnings.catch_warnings():  # torch calls sparse CSR "beta" on every construction
        warnings.simplefilter("ignore", UserWarning)
        return to_torch_csr_tensor(edge_index.flip(0), size=(num_nodes, num_nodes))


def batch_adjacency_t(edge_index: torch.Tensor, num_nodes: int, num_copies: int) -> torch.Tensor:
    """:func:`adjacency_t` of ``num_copies`` disjoint copies of the graph (see :func:`batch_edge_index`)."""
    return adjacency_t(batch_edge_index(edge_index, num_nodes, num_copies), num_nodes * num_copies)


class BatchedGraphs:
    """``(adj_t, batch)`` of ``B`` copies of one graph, built once per ``B`` and device and then reused.

    Training asks for the same few sizes over and over (minibatch, chunk, rollout batch), so the
    sparse adjacency (:func:`batch_adjacency_t`) and the ``batch`` vector naming each node's copy
    are cached; the cache is emptied when it exceeds ``limit`` sizes.
    """

    def __init__(self, num_nodes: int, limit: int = 16) -> None:
        self.num_nodes, self.limit = num_nodes, limit
        self._cache: dict[tuple[int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, edge_index: torch.Tensor, num_copies: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = (num_copies, edge_index.device)
        if key not in self._cache:
            if len(self._cache) >= self.limit:
                self._cache.clear()
            adj_t = batch_adjacency_t(edge_index, self.num_nodes, num_copies)
            batch = torch.arange(num_copies, device=edge_index.device).repeat_interleave(self.num_nodes)
            self._cache[key] = (adj_t, batch)
        return self._cache[key]


def batch_graph(graph: Data, num_copies: int) -> Data:
    """``num_copies`` disjoint copies of ``graph`` as one ``Data`` with a ``batch`` vector."""
    if num_copies < 1:
        raise ValueError(f"num_copies must be >= 1, got {num_copies}")
    n = graph.num_nodes
    out = Data(edge_index=batch_edge_index(graph.edge_index, n, num_copies), num_nodes=n * num_copies)
    out.batch = torch.arange(num_copies).repeat_interleave(n)
    if getattr(graph, "pos", None) is not None:
        out.pos = graph.pos.repeat(num_copies, 1)
    return out


def _binary_sparse(index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    values = torch.ones(index.size(1), device=index.device)
    size = (num_nodes, num_nodes)
    return torch.sparse_coo_tensor(index, values, size, check_invariants=False).coalesce().sign()
