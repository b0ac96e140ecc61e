import networkx as nx
import pytest
import torch
from torch_geometric.data import Batch, Data

from gdmpo import graph as G
from gdmpo.graph import GraphError


def edge_set(data: Data) -> set[tuple[int, int]]:
    return set(map(tuple, data.edge_index.t().tolist()))


def test_chain_ring_grid_edges():
    assert edge_set(G.chain(4)) == {(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)}
    assert edge_set(G.ring(4)) == edge_set(G.chain(4)) | {(3, 0), (0, 3)}
    grid = G.grid(2, 3)  # 0 1 2 / 3 4 5
    assert grid.num_nodes == 6
    assert edge_set(grid) == {(a, b) for u, v in [(0, 1), (1, 2), (3, 4), (4, 5), (0, 3), (1, 4), (2, 5)]
                              for a, b in [(u, v), (v, u)]}
    assert grid.pos[5].tolist() == [2.0, 1.0]
    degree = torch.bincount(G.grid(5, 5).edge_index[0], minlength=25)
    assert sorted(degree.tolist()).count(4) == 9 and sorted(degree.tolist()).count(2) == 4


@pytest.mark.parametrize("builder,arg", [(G.chain, 0), (G.ring, 2), (G.chain, 2.5)])
def test_builders_reject_bad_sizes(builder, arg):
    with pytest.raises(GraphError, match="must be an integer"):
        builder(arg)


def test_from_networkx_keeps_names_and_positions():
    nxg = nx.Graph()
    nxg.add_node("a", pos=(0.0, 0.0))
    nxg.add_node("b", pos=(1.0, 0.0))
    nxg.add_node("c", pos=(2.0, 1.0))
    nxg.add_edges_from([("a", "b"), ("b", "c")])
    data = G.from_networkx(nxg)
    assert data.names == ["a", "b", "c"]
    assert data.pos.tolist() == [[0, 0], [1, 0], [2, 1]]
    assert edge_set(data) == {(0, 1), (1, 0), (1, 2), (2, 1)}
    back = G.to_networkx(data)
    assert set(back.edges) == {(0, 1), (1, 2)}
    with pytest.raises(GraphError, match="undirected"):
        G.from_networkx(nx.DiGraph([(0, 1)]))
    with pytest.raises(GraphError, match="self loop"):
        G.from_networkx(nx.Graph([(0, 1), (1, 1)]))


def test_from_edge_list_file(tmp_path):
    path = tmp_path / "net.txt"
    path.write_text("# junctions\nA B\nB C  # main road\n\nD\n")
    data = G.from_edge_list(path)
    assert data.names == ["A", "B", "C", "D"]
    assert edge_set(data) == {(0, 1), (1, 0), (1, 2), (2, 1)}
    G.validate_graph(data)  # isolated D is fine by default
    with pytest.raises(GraphError, match="node 3 \\('D'\\) is isolated"):
        G.validate_graph(data, allow_isolated=False)


@pytest.mark.parametrize("text,message", [("A B C\n", ":1: expected 'u v'"), ("A B\nC C\n", ":2: self loop"),
                                          ("# nothing\n", "empty")])
def test_from_edge_list_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(GraphError, match=message) as err:
        G.from_edge_list(path)
    assert "bad.txt" in str(err.value)


def test_missing_edge_list_file(tmp_path):
    with pytest.raises(GraphError, match="no such edge-list file"):
        G.from_edge_list(tmp_path / "absent.txt")


@pytest.mark.parametrize(
    "edge_index,num_nodes,message",
    [
        ([[0, 3], [3, 0]], 3, "out of range"),
        ([[0, 1, 1], [1, 0, 1]], 2, "self loop at node 1"),
        ([[0, 1, 1], [1, 0, 2]], 3, "edge 1->2 .* no reverse edge 2->1"),
        ([[0, 1, 0, 1], [1, 0, 1, 0]], 2, "duplicate"),
        ([[0.0, 1.0], [1.0, 0.0]], 2, "dtype"),
        ([[0, 1]], 2, "shape"),
    ],
)
def test_validator_messages(edge_index, num_nodes, message):
    bad = Data(edge_index=torch.tensor(edge_index), num_nodes=num_nodes)
    with pytest.raises(GraphError, match=message):
        G.validate_graph(bad, source="my.net")


def test_validator_checks_names_length():
    data = G.chain(3)
    data.names = ["a", "b"]
    with pytest.raises(GraphError, match="names has 2 entries but the graph has 3 nodes"):
        G.validate_graph(data)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [0, 1, 2, 3, 4])
def test_khop_matches_shortest_paths(seed, k):
    nxg = nx.connected_watts_strogatz_graph(30, 4, 0.3, seed=seed)
    data = G.from_networkx(nxg)
    lengths = dict(nx.all_pairs_shortest_path_length(nxg))
    for include_self in (True, False):
        got = edge_set(Data(edge_index=G.khop(data, k, include_self=include_self)))
        want = {(i, j) for i in range(30) for j, d in lengths[i].items() if d <= k and (include_self or i != j)}
        assert got == want


def test_khop_adjacency_is_binary_and_hop_distances():
    data = G.chain(5)
    reach = G.khop_adjacency(data.edge_index, 5, 2).to_dense()
    assert torch.equal(reach.unique(), torch.tensor([0.0, 1.0]))
    dist = G.hop_distances(data)
    assert dist[0].tolist() == [0, 1, 2, 3, 4]
    assert torch.equal(reach > 0, dist <= 2)
    two_parts = G.from_edges([(0, 1)], 3)
    assert G.hop_distances(two_parts)[0, 2] == -1


def test_batch_graph_matches_pyg_batch():
    data = G.grid(2, 2)
    batched = G.batch_graph(data, 3)
    reference = Batch.from_data_list([Data(edge_index=data.edge_index, num_nodes=4) for _ in range(3)])
    assert torch.equal(batched.edge_index, reference.edge_index)
    assert torch.equal(batched.batch, reference.batch)
    assert batched.num_nodes == 12
    assert batched.pos.shape == (12, 2)
    G.validate_graph(batched)


def test_batched_graphs_are_built_once_per_size():
    g = G.chain(4)
    graphs = G.BatchedGraphs(4)
    adj_t, batch = graphs(g.edge_index, 3)
    assert graphs(g.edge_index, 3)[0] is adj_t
    assert batch.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert torch.equal(adj_t.to_dense(), G.batch_adjacency_t(g.edge_index, 4, 3).to_dense())
