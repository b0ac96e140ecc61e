"""Communication graphs: builders, validation, κ-hop neighbourhoods and batching.

A communication graph is a ``torch_geometric.data.Data`` with an undirected ``edge_index`` (both
directions, no self loops), ``num_nodes``, and optionally ``pos`` ``[n, 2]`` and ``names``.
"""

from gdmpo.graph.builders import chain, from_edge_list, from_edges, from_networkx, grid, ring, to_networkx
from gdmpo.graph.ops import (
    BatchedGraphs,
    adjacency_t,
    batch_adjacency_t,
    batch_edge_index,
    batch_graph,
    hop_distances,
    khop,
    khop_adjacency,
    khop_edge_index,
)
from gdmpo.graph.sumo import from_sumo
from gdmpo.graph.validation import GraphError, validate_graph

__all__ = [
    "BatchedGraphs",
    "GraphError",
    "adjacency_t",
    "batch_adjacency_t",
    "batch_edge_index",
    "batch_graph",
    "chain",
    "from_edge_list",
    "from_edges",
    "from_networkx",
    "from_sumo",
    "grid",
    "hop_distances",
    "khop",
    "khop_adjacency",
    "khop_edge_index",
    "ring",
    "to_networkx",
    "validate_graph",
]
