"""Signal agents and their road neighbours read from SUMO networks built by SUMO's own tools."""

import subprocess

import pytest
import torch

from gdmpo import graph as G
from gdmpo.graph.sumo import sumo_binary


def netgenerate_grid(tmp_path, number):
    out = tmp_path / f"grid{number}.net.xml"
    subprocess.run([sumo_binary("netgenerate"), "--grid", "--grid.number", str(number), "--grid.length", "200",
                    "--grid.attach-length", "0", "--default-junction-type", "traffic_light", "-o", str(out)],
                   check=True, capture_output=True)
    return out


def netconvert(tmp_path, nodes, edges):
    """Build a network from plain nodes ``(id, x, y, type)`` and edges ``(from, to)`` (both directions)."""
    nod = tmp_path / "plain.nod.xml"
    edg = tmp_path / "plain.edg.xml"
    nod.write_text("<nodes>" + "".join(f'<node id="{i}" x="{x}" y="{y}" type="{t}"/>' for i, x, y, t in nodes)
                   + "</nodes>")
    edg.write_text("<edges>" + "".join(f'<edge id="{a}_{b}" from="{a}" to="{b}" numLanes="1" speed="13.9"/>'
                                       f'<edge id="{b}_{a}" from="{b}" to="{a}" numLanes="1" speed="13.9"/>'
                                       for a, b in edges) + "</edges>")
    out = tmp_path / "plain.net.xml"
    subprocess.run([sumo_binary("netconvert"), "-n", str(nod), "-e", str(edg), "-o", str(out)], check=True,
                   capture_output=True)
    return out


@pytest.mark.parametrize("number", [2, 3])
def test_all_lit_grid_gives_the_grid_graph(tmp_path, number):
    graph = G.from_sumo(netgenerate_grid(tmp_path, number))
    assert graph.num_nodes == number * number
    # netgenerate names columns A, B, C and rows 0, 1, 2: neighbours differ by one step in one of them
    expected = set()
    for i, a in enumerate(graph.names):
        for j, b in enumerate(graph.names):
            if abs(ord(a[0]) - ord(b[0])) + abs(int(a[1:]) - int(b[1:])) == 1:
                expected.add((i, j))
    assert set(map(tuple, graph.edge_index.t().tolist())) == expected
    G.validate_graph(graph)
    centre = graph.names.index("B1") if number == 3 else 0
    assert len(graph.lanes[centre]) == (4 if number == 3 else 2)
    assert all(lane.split("_")[0].endswith(graph.names[centre]) for lane in graph.lanes[centre])
    # lanes run from the neighbouring junction (200 m away) to this one, less the junction areas
    assert all(150 < length <= 200 for length in graph.lane_lengths[centre])
    assert [len(x) for x in graph.lane_lengths] == [len(x) for x in graph.lanes]
    assert all(G.sumo.is_green_phase(p) for phases in graph.phases for p in phases)
    assert torch.allclose(graph.pos[graph.names.index("A0")], torch.tensor([0.0, 0.0]))


def test_roads_through_unlit_junctions_link_lights(tmp_path):
    """L1 - m - L2 - L3 with m unlit: L1~L2 through m, L2~L3 directly, never L1~L3 (L2 is in between)."""
    nodes = [("L1", 0, 0, "traffic_light"), ("m", 150, 0, "priority"), ("L2", 300, 0, "traffic_light"),
             ("L3", 500, 0, "traffic_light"), ("n1", 0, 200, "priority"), ("n2", 300, 200, "priority"),
             ("n3", 500, 200, "priority"), ("s2", 300, -200, "priority")]
    edges = [("L1", "m"), ("m", "L2"), ("L2", "L3"), ("L1", "n1"), ("L2", "n2"), ("L3", "n3"), ("L2", "s2"),
             ("m", "n2")]
    graph = G.from_sumo(netconvert(tmp_path, nodes, edges))
    assert graph.names == ["L1", "L2", "L3"]
    assert set(map(tuple, graph.edge_index.t().tolist())) == {(0, 1), (1, 0), (1, 2), (2, 1)}


def test_broken_networks_are_reported_with_file_and_light(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.net.xml"):
        G.from_sumo(tmp_path / "missing.net.xml")
    garbage = tmp_path / "garbage.net.xml"
    garbage.write_text("<net><edge id='a'")
    with pytest.raises(G.GraphError, match="garbage.net.xml: not a readable SUMO network"):
        G.from_sumo(garbage)
    unlit = netconvert(tmp_path, [("a", 0, 0, "priority"), ("b", 100, 0, "priority"), ("c", 100, 100, "priority")],
                       [("a", "b"), ("b", "c")])
    with pytest.raises(G.GraphError, match="plain.net.xml: the network has no traffic lights"):
        G.from_sumo(unlit)
    ghost = tmp_path / "ghost.net.xml"
    text = netgenerate_grid(tmp_path, 2).read_text()
    ghost.write_text(text.replace("</net>", '<tlLogic id="ghost" type="static" programID="0" offset="0">'
                                  '<phase duration="30" state="G"/></tlLogic></net>'))
    with pytest.raises(G.GraphError, match="ghost.net.xml: traffic light 'ghost' controls no lane"):
        G.from_sumo(ghost)


def test_graph_command_prints_agents_and_draws_the_network(tmp_path, capsys):
    from gdmpo.cli import main

    net = netgenerate_grid(tmp_path, 2)
    assert main(["graph", str(net), "--png", str(tmp_path / "net.png")]) == 0
    out = capsys.readouterr().out
    assert "4 signal agents, 4 links" in out and "A0: neighbours A1, B0" in out
    assert (tmp_path / "net.png").stat().st_size > 10_000
    assert main(["graph", str(tmp_path / "none.net.xml")]) == 2
    assert "none.net.xml: no such SUMO network file" in capsys.readouterr().err


def maze_between_arterials(tmp_path):
    """Two lit arterials (A at y = 0, B at y = 400, lights every 200 m) joined only by a maze of unlit
    side streets that leave them between the lights."""
    nodes = [(f"A{k}", 200 * k, 0, "traffic_light") for k in range(3)]
    nodes += [(f"B{k}", 200 * k, 400, "traffic_light") for k in range(3)]
    nodes += [(f"a{k}", 200 * k + 100, 0, "priority") for k in range(2)]  # side-street mouths on A
    nodes += [(f"b{k}", 200 * k + 100, 400, "priority") for k in range(2)]
    nodes += [("Aw", -150, 0, "priority"), ("Ae", 550, 0, "priority"), ("Bw", -150, 400, "priority"),
              ("Be", 550, 400, "priority")]
    nodes += [(f"m{i}{j}", 100 + 200 * i, 130 * (j + 1), "priority") for i in range(2) for j in range(2)]
    edges = [("Aw", "A0"), ("A0", "a0"), ("a0", "A1"), ("A1", "a1"), ("a1", "A2"), ("A2", "Ae"),
             ("Bw", "B0"), ("B0", "b0"), ("b0", "B1"), ("B1", "b1"), ("b1", "B2"), ("B2", "Be"),
             ("a0", "m00"), ("m00", "m01"), ("m01", "b0"), ("a1", "m10"), ("m10", "m11"), ("m11", "b1"),
             ("m00", "m10"), ("m01", "m11")]
    return netconvert(tmp_path, nodes, edges)


def test_road_rule_follows_roads_not_side_streets(tmp_path):
    net = maze_between_arterials(tmp_path)
    road = G.from_sumo(net)
    names = road.names
    pairs = {tuple(sorted((names[u], names[v]))) for u, v in road.edge_index.t().tolist()}
    assert pairs == {("A0", "A1"), ("A1", "A2"), ("B0", "B1"), ("B1", "B2")}
    assert road.neighbour_rule == "road"
    anywhere = G.from_sumo(net, neighbours="any-path")
    wide = {tuple(sorted((names[u], names[v]))) for u, v in anywhere.edge_index.t().tolist()}
    assert pairs < wide and ("A1", "B1") in wide  # through the maze, every light reaches the other arterial
    short = G.from_sumo(net, max_distance=150)  # lights 200 m apart are out of reach
    assert short.edge_index.size(1) == 0
    with pytest.raises(ValueError, match="neighbours must be one of"):
        G.from_sumo(net, neighbours="nearest")


def test_road_rule_on_irregular_generated_networks(tmp_path):
    """netgenerate's random networks with guessed lights: the road rule never links more lights than a
    junction has roads, never more than the any-path rule, and keeps every linked pair joined by roads."""
    for seed in (1, 2):
        out = tmp_path / f"rand{seed}.net.xml"
        subprocess.run([sumo_binary("netgenerate"), "--rand", "--rand.iterations", "80", "--seed", str(seed),
                        "--tls.guess", "--tls.guess.threshold", "20", "-o", str(out)], check=True, capture_output=True)
        road, anywhere = G.from_sumo(out), G.from_sumo(out, neighbours="any-path")
        assert road.num_nodes > 5
        import sumolib

        net = sumolib.net.readNet(str(out))
        degree = torch.bincount(road.edge_index[0], minlength=road.num_nodes)
        for i, nodes in enumerate(road.junctions):
            roads = {e.getID() for n in nodes for e in [*net.getNode(n).getIncoming(), *net.getNode(n).getOutgoing()]}
            assert degree[i] <= len(roads)
        road_pairs = set(map(tuple, road.edge_index.t().tolist()))
        assert road_pairs <= set(map(tuple, anywhere.edge_index.t().tolist()))
        G.validate_graph(road)


def test_drawing_a_network_with_very_long_junction_ids_stays_readable(tmp_path, capsys):
    """SUMO's joined clusters have ids of hundreds of characters: the drawing labels them by index (so
    the axes are not squeezed to make room for the text); the text listing keeps the full ids."""
    from gdmpo.cli import main
    from gdmpo.plot import short_label

    assert short_label("J0_1", 3) == "J0_1" and short_label("cluster_" + "x" * 200, 7) == "#7"

    long = ["cluster_" + "_".join(f"{k}{i:03d}" for i in range(40)) for k in "ABC"]
    nodes = [(long[k], 200 * k, 0, "traffic_light") for k in range(3)] + [("W", -200, 0, "priority"),
                                                                          ("E", 600, 0, "priority")]
    net = netconvert(tmp_path, nodes, [("W", long[0]), (long[0], long[1]), (long[1], long[2]), (long[2], "E")])
    assert main(["graph", str(net), "--png", str(tmp_path / "city.png")]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in long) and "neighbours per agent: 1: 2 agents, 2: 1 agent" in listing
    assert (tmp_path / "city.png").stat().st_size > 1000
