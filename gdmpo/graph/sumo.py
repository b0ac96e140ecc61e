"""Communication graphs of traffic-signal agents read from a SUMO road network (``.net.xml``).

Every traffic light (a ``tlLogic``, which may drive several joined junctions) is one agent. Which lights
are neighbours is a rule (``neighbours=``):

- ``"road"`` (default): from each road that leaves or enters a light, follow that road through unlit
  junctions (straight on, as SUMO's connections say; a bend with one way on is followed too) until it
  meets a light, within ``max_distance`` metres. Side streets are not followed, so a light's degree is
  at most the number of roads at its junction: on real cities this is the benchmarks' local graph.
- ``"any-path"``: any walk along edges (either direction) through unlit junctions that reaches another
  light before a third one. In a city the side streets join almost everything, so this gives nearly
  complete graphs; it is kept for grids and for comparison.
Each node keeps what a signal controller needs to know about itself:

- ``names``: the traffic-light ids, in agent order (sorted, so the order is reproducible);
- ``junctions``: the junction ids each light drives; ``pos: [n, 2]`` their mean position (m);
- ``lanes``: the incoming lanes each light controls, ordered by their first link index, and
  ``lane_lengths`` their lengths (m);
- ``phases``: the green phases of its programme (state strings without yellow), ``green_seconds``
  their durations in that programme, and ``programs`` the programme id used;
- ``links``: per signal link (the positions of a state string) its ``(incoming lane, outgoing lane)``;
- ``approaches``: per light and incoming lane, the lanes upstream of it that lie within
  ``approach_distance`` of its stop line, as ``(lane, metres from that lane's end to the stop line)``.
  Real networks split roads at unsignalised nodes, so a light's incoming lane may be a few metres long
  (Ingolstadt has one of 0.8 m) and the queue waiting for the light stands on the lanes before it; they
  are followed back through unsignalised junctions only.
"""

from __future__ import annotations

import gzip
import os
import shutil
import xml.etree.ElementTree as ET
from xml.sax import SAXParseException
from collections import deque
from pathlib import Path
from typing import IO

import torch
from torch_geometric.data import Data

from gdmpo.graph.builders import from_edges
from gdmpo.graph.validation import GraphError


def sumo_binary(name: str) -> str:
    """Path of a SUMO program (``sumo``, ``netgenerate``, ``netconvert``...) from the eclipse-sumo wheel or PATH."""
    try:
        import sumo

        candidate = Path(sumo.SUMO_HOME) / "bin" / name
        if candidate.is_file():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"SUMO program {name!r} not found: install the eclipse-sumo wheel (pip install eclipse-sumo)")
    return found


def open_xml(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open an XML file for reading, gunzipped when it is gzip-compressed (SUMO reads both)."""
    with open(path, "rb") as raw:
        magic = raw.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


class UnsafeXMLError(ValueError):
    """An XML input declares a DOCTYPE or an entity, which could make a parser read other files or
    expand without bound; SUMO's inputs never need either."""


_DECLARATIONS = (b"<!doctype", b"<!entity")


def refuse_declarations(path: str | os.PathLike[str], role: str = "file") -> None:
    """Raise :class:`UnsafeXMLError` if the XML file ``path`` (plain or gzip) declares a DOCTYPE or an
    ENTITY anywhere in it: the whole file is scanned in chunks, not only its head."""
    chunk_size, overlap, offset, tail = 1 << 20, len(max(_DECLARATIONS, key=len)) - 1, 0, b""
    try:
        with open_xml(path) as stream:
            while chunk := stream.read(chunk_size):
                window = (tail + chunk).lower()
                for declaration in _DECLARATIONS:
                    at = window.find(declaration)
                    if at >= 0:
                        name = declaration[2:].decode().upper()
                        raise UnsafeXMLError(
                            f"{path}: this {role} declares {name} (byte {offset - len(tail) + at}); gdmpo does "
                            f"not pass XML with DOCTYPE or ENTITY declarations to SUMO (they can read other files "
                            f"or expand without bound): remove the declaration")
                tail, offset = window[-overlap:], offset + len(chunk)
    except (EOFError, gzip.BadGzipFile) as err:
        raise ValueError(f"{path}: not a readable {role} ({err})") from None


#: a light's signal programme as SUMO runs it: ``(programme id, [(state, duration s), ...])``
Programme = tuple[str, list[tuple[str, float]]]


def is_green_phase(state: str) -> bool:
    """A phase that gives some link right of way and is not a transition (no yellow, no red-yellow)."""
    return any(c in "Gg" for c in state) and not any(c in "yYu" for c in state)


def _check_network_root(path: Path) -> None:
    """Refuse, by its first element, a file that is not a SUMO network (empty, not XML, a route file...)."""
    if path.stat().st_size == 0:
        raise GraphError(f"{path}: not a SUMO network: the file is empty")
    try:
        with open_xml(path) as stream:
            _, root = next(ET.iterparse(stream, events=("start",)))
    except StopIteration:
        raise GraphError(f"{path}: not a SUMO network: it holds no XML element") from None
    except (ET.ParseError, EOFError, gzip.BadGzipFile) as err:
        raise GraphError(f"{path}: not a SUMO network: not readable XML ({err})") from None
    if root.tag != "net":
        hint = {"routes": " (a route file? pass it as route_file)", "configuration": " (a .sumocfg?)"}.get(root.tag, "")
        raise GraphError(f"{path}: not a SUMO network: its root element is <{root.tag}>, not <net>{hint}")


NEIGHBOUR_RULES = ("road", "any-path")


def from_sumo(net_file: str | os.PathLike[str], neighbours: str = "road", max_distance: float = 1000.0,
              programmes: dict[str, Programme] | None = None, approach_distance: float = 50.0) -> Data:
    """Read the signal agents of a SUMO network and link those a road joins (see the module doc).

    Args:
        net_file: a SUMO ``.net.xml`` (or ``.net.xml.gz``).
        neighbours: the neighbour rule, ``"road"`` or ``"any-path"``.
        max_distance: with ``"road"``, the longest road walk (m) that still links two lights.
        programmes: per light, the programme SUMO actually runs (after additional files, see
            :func:`gdmpo.envs.sumo.programmes.loaded_programmes`); default: the net file's own.
        approach_distance: how far upstream of each stop line ``approaches`` reach (m).

    Raises:
        FileNotFoundError: the file does not exist.
        GraphError: the file is not a readable SUMO network, has no traffic lights, or has a light
            that controls no lane or has no green phase; the message names the file and the light.
    """
    import sumolib

    if neighbours not in NEIGHBOUR_RULES:
        raise ValueError(f"neighbours must be one of {', '.join(NEIGHBOUR_RULES)}, got {neighbours!r}")
    if max_distance <= 0:
        raise ValueError(f"max_distance must be > 0 m, got {max_distance}")
    path = Path(net_file)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such SUMO network file")
    refuse_declarations(path, "SUMO network")
    _check_network_root(path)
    try:
        net = sumolib.net.readNet(str(path), withPrograms=True)
    except (ET.ParseError, SAXParseException, ValueError, KeyError, AttributeError, IndexError) as err:
        raise GraphError(f"{path}: not a readable SUMO network ({type(err).__name__}: {err})") from None
    lights = sorted(net.getTrafficLights(), key=lambda tls: tls.getID())
    if not lights:
        raise GraphError(f"{path}: the network has no traffic lights, so there are no signal agents")
    names, junctions, lanes, phases, programs, positions = [], [], [], [], [], []
    durations, link_lanes, lengths = [], [], []
    owner: dict[str, int] = {}  # junction id -> agent index
    for index, tls in enumerate(lights):
        tls_id = tls.getID()
        links = sorted(tls.getConnections(), key=lambda link: link[2])
        if not links:
            raise GraphError(f"{path}: traffic light {tls_id!r} controls no lane")
        incoming: list[str] = []
        incoming_lengths: list[float] = []
        for in_lane, _, _ in links:
            if in_lane.getID() not in incoming:
                incoming.append(in_lane.getID())
                incoming_lengths.append(float(in_lane.getLength()))
        nodes = sorted({in_lane.getEdge().getToNode().getID() for in_lane, _, _ in links})
        if programmes is not None and tls_id in programmes:
            program_id, states = programmes[tls_id]
        elif tls.getPrograms():
            program_id, program = sorted(tls.getPrograms().items())[0]
            states = [(p.state, float(p.duration)) for p in program.getPhases()]
        else:
            program_id, states = None, []
        green = [(state, seconds) for state, seconds in states if is_green_phase(state)]
        greens = [state for state, _ in green]
        if not greens:
            where = f"programme {program_id!r}" if programmes is not None and tls_id in programmes else "programme"
            raise GraphError(f"{path}: traffic light {tls_id!r} has no {where} with a green phase")
        for node in nodes:
            owner[node] = index
        coords = torch.tensor([net.getNode(node).getCoord()[:2] for node in nodes], dtype=torch.float32)
        names.append(tls_id)
        junctions.append(nodes)
        lanes.append(incoming)
        lengths.append(incoming_lengths)
        phases.append(greens)
        programs.append(program_id)
        positions.append(coords.mean(0))
        durations.append([seconds for _, seconds in green])
        by_index: dict[int, tuple[str, str]] = {}
        for in_lane, out_lane, link_index in links:
            by_index.setdefault(link_index, (in_lane.getID(), out_lane.getID()))
        link_lanes.append([by_index.get(k, ("", "")) for k in range(len(greens[0]))])
    approaches = [[_upstream(net.getLane(lane), owner, approach_distance) for lane in own] for own in lanes]
    if neighbours == "road":
        edges = sorted(_along_roads(net, junctions, owner, max_distance))
    else:
        edges = sorted(_road_neighbours(net, junctions, owner))
    graph = from_edges(edges, len(names), pos=torch.stack(positions), names=names)
    graph.junctions, graph.lanes, graph.phases, graph.programs = junctions, lanes, phases, programs
    graph.green_seconds, graph.links, graph.lane_lengths = durations, link_lanes, lengths
    graph.approaches = approaches
    graph.source, graph.neighbour_rule = str(path), neighbours
    return graph


def _upstream(lane, owner: dict[str, int], distance: float) -> list[tuple[str, float]]:
    """Lanes that feed ``lane`` through unsignalised junctions and end within ``distance`` of its stop
    line, with the metres from each one's end to that stop line (junction interiors not counted)."""
    found: list[tuple[str, float]] = []
    frontier, seen = [(lane, lane.getLength())], {lane.getID()}
    while frontier:
        current, offset = frontier.pop()
        if offset >= distance or current.getEdge().getFromNode().getID() in owner:
            continue  # far enough, or the lanes before it wait at another light
        for before in current.getIncoming():
            if before.getID() not in seen and not before.getID().startswith(":"):
                seen.add(before.getID())
                found.append((before.getID(), offset))
                frontier.append((before, offset + before.getLength()))
    return sorted(found)


def _along_roads(net, junctions: list[list[str]], owner: dict[str, int], max_distance: float) -> set[tuple[int, int]]:
    """Pairs of lights one road joins: each road at a light is followed, straight on through unlit
    junctions, to the first light it meets (``"road"`` rule; see the module doc)."""
    pairs: set[tuple[int, int]] = set()
    for agent, nodes in enumerate(junctions):
        own = set(nodes)
        for node_id in nodes:
            node = net.getNode(node_id)
            starts = [(edge, True) for edge in node.getOutgoing()] + [(edge, False) for edge in node.getIncoming()]
            for edge, forward in starts:
                far = edge.getToNode() if forward else edge.getFromNode()
                if far.getID() in own:
                    continue  # an edge inside the light's own cluster
                other = _follow_road(edge, forward, owner, max_distance)
                if other is not None and other != agent:
                    pairs.add((min(agent, other), max(agent, other)))
    return pairs


def _follow_road(edge, forward: bool, owner: dict[str, int], max_distance: float) -> int | None:
    """The light at the end of the road that starts with ``edge`` (walked with or against its
    direction), or None when the road ends, turns off, or runs past ``max_distance``."""
    walked, visited = 0.0, set()
    while edge.getID() not in visited:
        visited.add(edge.getID())
        walked += edge.getLength()
        if walked > max_distance:
            return None
        node = edge.getToNode() if forward else edge.getFromNode()
        if node.getID() in owner:
            return owner[node.getID()]
        edge = _continuation(edge, forward)
        if edge is None:
            return None
    return None


def _continuation(edge, forward: bool):
    """The edge that continues ``edge`` straight on through its far junction, or None.

    Forward: the outgoing edge SUMO connects with direction ``s``; backward: the incoming edge whose
    connection to ``edge`` is ``s``. A junction with exactly one way on besides turning back (a bend,
    a geometry node) continues that way whatever its direction.
    """
    if forward:
        node, back = edge.getToNode(), edge.getFromNode()
        options = [(out, {c.getDirection() for c in conns}) for out, conns in edge.getOutgoing().items()]
    else:
        node, back = edge.getFromNode(), edge.getToNode()
        options = [(inc, {c.getDirection() for c in inc.getOutgoing().get(edge, [])}) for inc in node.getIncoming()]
        options = [(inc, dirs) for inc, dirs in options if dirs]
    ways = [(e, dirs) for e, dirs in options if (e.getToNode() if forward else e.getFromNode()) != back]
    straight = [e for e, dirs in ways if "s" in dirs]
    if len(straight) == 1:
        return straight[0]
    if len(ways) == 1:
        return ways[0][0]
    return None


def _road_neighbours(net, junctions: list[list[str]], owner: dict[str, int]) -> set[tuple[int, int]]:
    """Pairs of agents joined by roads whose inner junctions carry no light (breadth-first per agent)."""
    pairs: set[tuple[int, int]] = set()
    for agent, nodes in enumerate(junctions):
        seen = set(nodes)
        queue = deque(nodes)
        while queue:
            node = net.getNode(queue.popleft())
            for edge in [*node.getOutgoing(), *node.getIncoming()]:
                for other in (edge.getFromNode().getID(), edge.getToNode().getID()):
                    if other in seen:
                        continue
                    seen.add(other)
                    if other in owner:
                        if owner[other] != agent:
                            pairs.add((min(agent, owner[other]), max(agent, owner[other])))
                    else:
                        queue.append(other)
    return pairs


def union_of_networks(graphs: list[Data], labels: list[str]) -> Data:
    """The disjoint union of signal graphs of :func:`from_sumo`: one graph whose lights are each
    network's in turn, no edge between networks.

    Light, junction and lane ids become ``<label>/<id>`` (two networks may use the same ids), positions
    are shifted so the networks sit side by side (plots), ``parts`` lists ``(label, first light, count)``.
    """
    if len(graphs) != len(labels) or len(set(labels)) != len(labels):
        raise ValueError(f"one distinct label per network, got {labels} for {len(graphs)} networks")
    edges, positions, offset, shift, parts = [], [], 0, 0.0, []
    lists: dict[str, list] = {key: [] for key in ("names", "junctions", "lanes", "phases", "programs",
                                                  "green_seconds", "links", "lane_lengths", "approaches")}
    for graph, label in zip(graphs, labels):
        def tag(name: str) -> str:
            return f"{label}/{name}" if name else name

        n = graph.num_nodes
        edges.append(graph.edge_index + offset)
        pos = graph.pos.clone()
        pos[:, 0] += shift - pos[:, 0].min()
        positions.append(pos)
        shift = float(pos[:, 0].max()) + 200.0
        lists["names"] += [tag(name) for name in graph.names]
        lists["junctions"] += [[tag(j) for j in own] for own in graph.junctions]
        lists["lanes"] += [[tag(lane) for lane in own] for own in graph.lanes]
        lists["links"] += [[(tag(a), tag(b)) for a, b in own] for own in graph.links]
        lists["approaches"] += [[[(tag(u), offset) for u, offset in lane] for lane in own] for own in graph.approaches]
        for key in ("phases", "programs", "green_seconds", "lane_lengths"):
            lists[key] += list(getattr(graph, key))
        parts.append((label, offset, n))
        offset += n
    union = Data(edge_index=torch.cat(edges, dim=1), num_nodes=offset, pos=torch.cat(positions))
    for key, value in lists.items():
        setattr(union, key, value)
    union.source = ", ".join(graph.source for graph in graphs)
    union.neighbour_rule = graphs[0].neighbour_rule
    union.parts = parts
    return union
