"""Make the synthetic signalised grids of the ATSC task with SUMO's own netconvert.

The paper's 5x5 grid (Chu et al.; spec/environments.md): intersections 200 m apart with traffic
lights, 75 m stubs at the border, east-west streets of 2 lanes at 20 m/s, north-south avenues of one
lane at 11 m/s. Every intersection controls Chu et al.'s 12 links (right, straight and left turn per
approach: an avenue's single lane carries all three, a street's right lane turns right or goes
straight and its left lane turns left) with their 5 green phases, each followed by 2 s of yellow in
the fixed-time programme. The same layout at any size serves transfer (3x3, 10x10). Each network comes with its
peak-hour flow file: four time-variant flow groups of 3 origin-destination pairs between border edges,
groups 1-2 (west->east, north->south) from t = 0 and groups 3-4 (the opposite directions) from
t = 900 s, volumes changing every 5 minutes.

    python graphs/make_grid.py --size 5            # graphs/grid5x5.net.xml + graphs/grid5x5.rou.xml
    python graphs/make_grid.py --size 3 --size 10

The networks depend only on the arguments: running the script again rewrites identical files.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

SPACING, STUB = 200.0, 75.0
STREET = {"numLanes": 2, "speed": 20.0}  # east-west
AVENUE = {"numLanes": 1, "speed": 11.0}  # north-south
VEHICLE = '<vType id="car" length="5" accel="5" decel="10" minGap="2.5" maxSpeed="20"/>'
# (start s, ratios per 5 minutes, share of the peak) per flow group, spec/environments.md
SCHEDULES = [(0, (0.4, 0.7, 0.9, 1.0, 0.75, 0.5, 0.25), 0.6), (0, (0.4, 0.7, 0.9, 1.0, 0.75, 0.5, 0.25), 1.0),
             (900, (0.3, 0.8, 0.9, 1.0, 0.8, 0.6, 0.2), 0.6), (900, (0.3, 0.8, 0.9, 1.0, 0.8, 0.6, 0.2), 1.0)]
PEAKS = (1100.0, 1100.0, 925.0, 925.0)  # veh/h: groups 1-2 and 3-4
# Chu et al.'s green phases over SUMO's link order (approaches clockwise from north, right -> left turn):
# links 0-2 north, 3-5 east, 6-8 south, 9-11 west.
PHASES = ("GGgrrrGGgrrr", "rrrGrGrrrGrG", "rrrGGrrrrGGr", "rrrGGGrrrrrr", "rrrrrrrrrGGG")
# The fixed-time programme: green seconds per phase (the avenues' only phase gets the longest share,
# the one-approach phases the shortest), each followed by 2 s of yellow; a 90 s cycle.
FIXED_GREEN, YELLOW = (33, 10, 25, 5, 7), 2


def node_id(col: int, row: int) -> str:
    return f"J{col}_{row}"


def plain_network(size: int) -> tuple[str, str]:
    """Plain nodes and edges XML of a ``size`` x ``size`` grid with border stubs."""
    nodes, edges = [], []
    for col in range(size):
        for row in range(size):
            nodes.append(f'<node id="{node_id(col, row)}" x="{col * SPACING}" y="{row * SPACING}" type="traffic_light"/>')
    far = (size - 1) * SPACING + STUB
    for i in range(size):
        nodes += [f'<node id="W{i}" x="{-STUB}" y="{i * SPACING}" type="priority"/>',
                  f'<node id="E{i}" x="{far}" y="{i * SPACING}" type="priority"/>',
                  f'<node id="S{i}" x="{i * SPACING}" y="{-STUB}" type="priority"/>',
                  f'<node id="N{i}" x="{i * SPACING}" y="{far}" type="priority"/>']

    def road(a: str, b: str, kind: dict) -> None:
        for u, v in ((a, b), (b, a)):
            edges.append(f'<edge id="{u}-{v}" from="{u}" to="{v}" numLanes="{kind["numLanes"]}" speed="{kind["speed"]}"/>')

    for row in range(size):
        road(f"W{row}", node_id(0, row), STREET)
        for col in range(size - 1):
            road(node_id(col, row), node_id(col + 1, row), STREET)
        road(node_id(size - 1, row), f"E{row}", STREET)
    for col in range(size):
        road(f"S{col}", node_id(col, 0), AVENUE)
        for row in range(size - 1):
            road(node_id(col, row), node_id(col, row + 1), AVENUE)
        road(node_id(col, size - 1), f"N{col}", AVENUE)
    return "<nodes>\n" + "\n".join(nodes) + "\n</nodes>\n", "<edges>\n" + "\n".join(edges) + "\n</edges>\n"


def neighbour(col: int, row: int, heading: str, size: int) -> str:
    """The node next to intersection (col, row) towards ``heading`` (a border stub node at the edge)."""
    dc, dr = {"N": (0, 1), "E": (1, 0), "S": (0, -1), "W": (-1, 0)}[heading]
    c, r = col + dc, row + dr
    if 0 <= c < size and 0 <= r < size:
        return node_id(c, r)
    return {"N": f"N{col}", "S": f"S{col}", "E": f"E{row}", "W": f"W{row}"}[heading]


def connections(size: int) -> str:
    """Plain connections: 3 links per approach (right, straight, left), 12 per intersection."""
    turn = {"N": ("W", "S", "E"), "E": ("N", "W", "S"), "S": ("E", "N", "W"), "W": ("S", "E", "N")}
    # an approach from ``side`` heads the opposite way; its right/straight/left exits lead to these sides
    items = []
    for col in range(size):
        for row in range(size):
            here = node_id(col, row)
            for side in ("N", "E", "S", "W"):
                into = f"{neighbour(col, row, side, size)}-{here}"
                right, straight, left = (f"{here}-{neighbour(col, row, exit_side, size)}" for exit_side in turn[side])
                street = side in "EW"  # 2 lanes: lane 0 right + straight, lane 1 left
                lane_left = 1 if street else 0
                left_to = 1 if not street else 0  # a left turn from an avenue enters the street's left lane
                items += [f'<connection from="{into}" to="{right}" fromLane="0" toLane="0"/>',
                          f'<connection from="{into}" to="{straight}" fromLane="0" toLane="0"/>',
                          f'<connection from="{into}" to="{left}" fromLane="{lane_left}" toLane="{left_to}"/>']
    return "<connections>\n" + "\n".join(items) + "\n</connections>\n"


def programmes(size: int) -> str:
    """The fixed-time programme of every light: each of the 5 phases, then 2 s of yellow."""
    phases = []
    for k, state in enumerate(PHASES):
        following = PHASES[(k + 1) % len(PHASES)]
        yellow = "".join("y" if c in "Gg" and t == "r" else c for c, t in zip(state, following))
        phases += [f'<phase duration="{FIXED_GREEN[k]}" state="{state}"/>', f'<phase duration="{YELLOW}" state="{yellow}"/>']
    logics = [f'<tlLogic id="{node_id(col, row)}" type="static" programID="0" offset="0">\n  '
              + "\n  ".join(phases) + "\n</tlLogic>" for col in range(size) for row in range(size)]
    return "<tlLogics>\n" + "\n".join(logics) + "\n</tlLogics>\n"


def flows(size: int) -> str:
    """The peak-hour schedule: 4 groups x 3 O-D pairs x 7 five-minute volumes."""
    lanes = sorted({0, size // 2, size - 1}) if size >= 3 else list(range(size))
    lanes = (lanes * 3)[:3]
    pairs = [[(f"W{r}-{node_id(0, r)}", f"{node_id(size - 1, r)}-E{r}") for r in lanes],      # west -> east
             [(f"N{c}-{node_id(c, size - 1)}", f"{node_id(c, 0)}-S{c}") for c in lanes],      # north -> south
             [(f"E{r}-{node_id(size - 1, r)}", f"{node_id(0, r)}-W{r}") for r in lanes],      # east -> west
             [(f"S{c}-{node_id(c, 0)}", f"{node_id(c, size - 1)}-N{c}") for c in lanes]]      # south -> north
    items = []
    for group, ((start, ratios, share), peak, group_pairs) in enumerate(zip(SCHEDULES, PEAKS, pairs), start=1):
        for k, ratio in enumerate(ratios):
            begin, end = start + 300 * k, start + 300 * (k + 1)
            for p, (origin, destination) in enumerate(group_pairs):
                volume = peak * share * ratio / len(group_pairs)
                items.append((begin, f'<flow id="f{group}_{p}_{k}" type="car" begin="{begin}" end="{end}" '
                                     f'from="{origin}" to="{destination}" vehsPerHour="{volume:.1f}" '
                                     f'departPos="random_free" departLane="best" departSpeed="max"/>'))
    items.sort(key=lambda item: item[0])
    return "<routes>\n" + VEHICLE + "\n" + "\n".join(text for _, text in items) + "\n</routes>\n"


def make_grid(size: int, out_dir: Path) -> tuple[Path, Path]:
    """Write ``grid{size}x{size}.net.xml`` (netconvert) and ``.rou.xml`` into ``out_dir``."""
    from gdmpo.graph.sumo import sumo_binary

    out_dir.mkdir(parents=True, exist_ok=True)
    net = out_dir / f"grid{size}x{size}.net.xml"
    with tempfile.TemporaryDirectory() as tmp:
        nodes, edges = plain_network(size)
        (Path(tmp) / "grid.nod.xml").write_text(nodes)
        (Path(tmp) / "grid.edg.xml").write_text(edges)
        (Path(tmp) / "grid.con.xml").write_text(connections(size))
        (Path(tmp) / "grid.tll.xml").write_text(programmes(size))
        subprocess.run([sumo_binary("netconvert"), "-n", str(Path(tmp) / "grid.nod.xml"),
                        "-e", str(Path(tmp) / "grid.edg.xml"), "-x", str(Path(tmp) / "grid.con.xml"),
                        "-i", str(Path(tmp) / "grid.tll.xml"), "-o", str(net), "--no-turnarounds", "true",
                        "--tls.default-type", "static", "--tls.yellow.time", "2", "--output.street-names", "false",
                        "--no-internal-links", "false"], check=True, capture_output=True, text=True)
    routes = out_dir / f"grid{size}x{size}.rou.xml"
    routes.write_text(flows(size))
    return net, routes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, action="append", help="grid side (repeatable); default 3, 5, 10")
    parser.add_argument("--out", default=str(Path(__file__).parent))
    args = parser.parse_args()
    for size in args.size or [3, 5, 10]:
        net, routes = make_grid(size, Path(args.out))
        print(f"wrote {net} and {routes}")


if __name__ == "__main__":
    main()
