"""The κ-layer message-passing network shared by all agents.

Each :class:`NeighbourLayer` lets a node see its one-hop neighbours, so ``hops`` of them give agent
``i`` an output that depends exactly on the inputs of ``N_i^κ`` (its κ-hop neighbourhood) — the
locality every DMPO component is built on. Weights are shared across nodes, so a trained network
runs unchanged on graphs of any size, and a batch of ``B`` environments is simply a graph of ``B n``
nodes (``gdmpo.graph.batch_edge_index``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import spmm

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "silu": nn.SiLU}


class NeighbourLayer(MessagePassing):
    """One hop: ``x_i' = W_self x_i + W_nbr · aggr_{j ∈ N(i)} x_j + b``.

    Shapes: ``x: [num_nodes, in_dim]``, ``edge_index: [2, num_edges]`` → ``[num_nodes, out_dim]``.
    ``edge_index`` may also be the sparse transposed adjacency of ``gdmpo.graph.adjacency_t``, which
    aggregates with one sparse matrix product (the fast path for large batches).

    The two weights are one ``Linear`` on ``[x_i, aggr_j x_j]`` (``lin.weight = [W_self | W_nbr]``):
    one matrix product instead of two and a sum, which is most of this layer's time on the narrow
    inputs of these networks. Weights saved as ``lin_self`` / ``lin_neighbour`` still load.
    """

    def __init__(self, in_dim: int, out_dim: int, aggr: str = "mean") -> None:
        super().__init__(aggr=aggr)
        # each half initialised as its own in_dim-wide Linear, drawn in the order the two-Linear layer
        # drew them: a seed gives the same initial network as before the fusion
        own, neighbour = nn.Linear(in_dim, out_dim), nn.Linear(in_dim, out_dim, bias=False)
        self.lin = nn.Linear(2 * in_dim, out_dim, device="meta").to_empty(device=own.weight.device)
        with torch.no_grad():
            self.lin.weight.copy_(torch.cat([own.weight, neighbour.weight], dim=1))
            self.lin.bias.copy_(own.bias)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        aggregated = self.propagate(edge_index, x=x)
        return self.lin(torch.cat([x, aggregated.to(x.dtype)], dim=-1))

    def message(self, x_j: torch.Tensor) -> torch.Tensor:
        return x_j

    def message_and_aggregate(self, adj_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.aggr == "max":  # no sparse-product max with gradients: fall back to gather/scatter
            index = adj_t.to_sparse_coo().indices()
            return self.aggr_module(x[index[1]], index[0], dim_size=x.size(0))
        return spmm(adj_t, x.to(adj_t.dtype), reduce=self.aggr)  # sparse products take float32 only

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        weight_self, weight_nbr = prefix + "lin_self.weight", prefix + "lin_neighbour.weight"
        if weight_self in state_dict:  # the two-Linear layout of earlier checkpoints
            state_dict[prefix + "lin.weight"] = torch.cat([state_dict.pop(weight_self),
                                                           state_dict.pop(weight_nbr)], dim=1)
            state_dict[prefix + "lin.bias"] = state_dict.pop(prefix + "lin_self.bias")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class KHopNetwork(nn.Module):
    """A per-node MLP whose first ``hops`` layers are neighbour layers: output i depends on ``N_i^hops`` only.

    Layout for ``hidden = [h_1, ..., h_L]``: ``max(L, hops)`` hidden layers, the first ``hops`` of them
    :class:`NeighbourLayer` s and the rest ``Linear``, each followed by the activation, then
    ``Linear(out_dim)``. So ``hidden = [64, 64]`` with ``hops = 1`` is the paper's three-layer
    [64, 64] MLP whose first layer also reads the neighbours; extra hops repeat the last width.
    With ``hops = 0`` it is a plain per-node MLP; with ``out_dim = None`` it returns the last
    hidden layer (an embedding).

    Args:
        in_dim: input features per node.
        out_dim: output features per node, or None for the embedding.
        hops: κ, the receptive field in hops.
        hidden: hidden widths.
        activation: ``tanh``, ``relu``, ``elu`` or ``silu``.
        aggr: neighbour aggregation, ``mean`` (degree-independent scale), ``sum`` or ``max``.
        residual: add a layer's input to its output where the widths match.
        layer_norm: normalise after each neighbour layer.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int | None,
        hops: int,
        hidden: Sequence[int] = (64, 64),
        activation: str = "tanh",
        aggr: str = "mean",
        residual: bool = False,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        if hops < 0:
            raise ValueError(f"hops must be >= 0, got {hops}")
        if not hidden:
            raise ValueError("hidden must name at least one width")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        widths = list(hidden) + [hidden[-1]] * max(0, hops - len(hidden))
        self.hops, self.residual = hops, residual
        self.layers = nn.ModuleList()
        self.norms = nn.ModuleList()
        w_in = in_dim
        for k, w_out in enumerate(widths):
            graph_layer = k < hops
            self.layers.append(NeighbourLayer(w_in, w_out, aggr) if graph_layer else nn.Linear(w_in, w_out))
            self.norms.append(nn.LayerNorm(w_out) if graph_layer and layer_norm else nn.Identity())
            w_in = w_out
        self.act = ACTIVATIONS[activation]()
        self.out = nn.Linear(w_in, out_dim) if out_dim is not None else nn.Identity()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``x: [num_nodes, in_dim]``, ``edge_index: [2, num_edges]`` → ``[num_nodes, out_dim]``.

        The output is float32 even where the layers computed in bfloat16 (:mod:`gdmpo.precision`):
        log-probabilities, values and losses are always taken in float32.
        """
        h = x
        for k, (layer, norm) in enumerate(zip(self.layers, self.norms)):
            out = self.act(norm(layer(h, edge_index) if k < self.hops else layer(h)))
            h = h + out if self.residual and out.shape == h.shape else out
        return self.out(h).float()


def degree_feature(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """``[num_nodes, 1]`` node degree / 4: a per-node feature that does not tie a network to one graph.

    ``edge_index`` is ``[2, E]`` or a sparse CSR transposed adjacency (:func:`gdmpo.graph.adjacency_t`).
    """
    if edge_index.layout == torch.sparse_csr:
        return (edge_index.crow_indices().diff().float() / 4.0).unsqueeze(-1)
    degree = torch.zeros(num_nodes, device=edge_index.device)
    degree.index_add_(0, edge_index[0], torch.ones(edge_index.size(1), device=edge_index.device))
    return (degree / 4.0).unsqueeze(-1)
