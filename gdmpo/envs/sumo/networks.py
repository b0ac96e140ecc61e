"""Road networks made on demand: grids of any size, irregular (``netgenerate --rand``) and spider
(``netgenerate --spider``) networks with traffic lights, for training over a distribution of networks.

Each is generated once into a cache folder (``$GDMPO_CACHE`` or ``~/.cache/gdmpo/networks``) and
reused: files are written in a private folder and moved into place, the network last, so a crash or a
second process generating the same network never leaves a half-written file behind.

A *network entry* (``env.options.networks`` of :class:`~gdmpo.envs.sumo.atsc.ATSCEnv`) names one
network and its demand::

    {grid: 4}                          # 4 x 4 grid with the shipped grids' peak-hour flows
    {irregular: 11, trip_period: 2.5}  # netgenerate --rand, seed 11; random trips every 2.5 s
    {spider: 5, circles: 3}            # netgenerate --spider, 5 arms, 3 rings (a 5-phase centre)
    {net_file: my.net.xml, route_file: my.rou.xml}
    {sumocfg: my_city.sumocfg}         # run as SUMO runs it (additional files, programmes...)
    {scenario: resco:cologne8}         # a named scenario (gdmpo.envs.sumo.resco)

Generated irregular and spider networks come without routes: their demand is random trips, drawn
anew each episode from the episode's seed (``trip_period`` seconds apart), so the policy never sees
the same traffic twice. Every entry may also set ``scale`` (SUMO's demand scale) and ``name``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from gdmpo.envs.sumo.scenario import Scenario, make_scenario
from gdmpo.envs.sumo.workers import SumoError
from gdmpo.graph.sumo import sumo_binary
from gdmpo.resources import shipped_folder

KINDS = ("grid", "irregular", "spider", "net_file", "sumocfg", "scenario")


@dataclass(frozen=True)
class NetworkOptions:
    """One network's files, time window and demand: an ATSC environment's own options, or one
    ``networks`` entry's on top of them (see :class:`~gdmpo.envs.sumo.atsc.ATSCEnv`)."""

    net_file: str | None = None
    route_file: Any = None  # one path, several (a list or comma-separated) or None: random trips
    sumocfg: str | None = None
    begin: float | None = None
    end: float | None = None
    warmup_seconds: float = 0.0
    scale: float = 1.0
    trip_period: float = 2.0  # seconds between random trips, where there are no routes

    def scenario(self, episode_seconds: float | None, sumo_options: Sequence[str] = ()) -> Scenario:
        """The :class:`~gdmpo.envs.sumo.scenario.Scenario` these options describe."""
        return make_scenario(net_file=self.net_file, route_file=self.route_file, sumocfg=self.sumocfg,
                             begin=self.begin, end=self.end, episode_seconds=episode_seconds,
                             warmup_seconds=self.warmup_seconds, scale=self.scale, sumo_options=sumo_options)


#: the options naming a network's files (an entry names its own; the environment's are not inherited)
FILE_OPTIONS = ("net_file", "route_file", "sumocfg")
#: options an entry may set besides its kind; everything else is the environment's, shared by all parts
PER_NETWORK = (*(f.name for f in fields(NetworkOptions) if f.name not in ("net_file", "sumocfg")), "name", "circles")


class NetworkPart(NamedTuple):
    """One network an ATSC environment simulates: its name (light names are prefixed with it in a
    union), its resolved scenario and its random-trip period."""

    name: str
    scenario: Scenario
    trip_period: float


def cache_dir() -> Path:
    """Where generated networks are kept: ``$GDMPO_CACHE`` or ``~/.cache/gdmpo/networks``."""
    return Path(os.environ.get("GDMPO_CACHE", Path.home() / ".cache" / "gdmpo" / "networks"))


def _publish(made: dict[str, Path], folder: Path) -> None:
    """Move freshly made files into ``folder``, the ``net`` file last (its presence means complete)."""
    for key in sorted(made, key=lambda k: k == "net"):
        os.replace(made[key], folder / made[key].name)


def _generate(name: str, make: Any) -> Path:
    """``folder / name.net.xml``, made by ``make(private_folder)`` unless cached already."""
    folder = cache_dir()
    net = folder / f"{name}.net.xml"
    if not net.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=f".{name}-") as private:
            _publish(make(Path(private)), folder)
    return net


def grid_files(size: int) -> tuple[Path, Path]:
    """``(net, routes)`` of the ``size`` x ``size`` grid with its peak-hour flows: shipped in ``graphs/``
    or made (once, into the cache) by the shipped ``graphs/make_grid.py``."""
    graphs = shipped_folder("graphs")
    shipped = graphs / f"grid{size}x{size}.net.xml"
    if shipped.is_file():
        return shipped, shipped.with_name(f"grid{size}x{size}.rou.xml")
    script = graphs / "make_grid.py"
    if not script.is_file():
        raise FileNotFoundError(f"{script}: needed to make a {size}x{size} grid; reinstall gdmpo")

    def make(private: Path) -> dict[str, Path]:
        spec = importlib.util.spec_from_file_location("make_grid", script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        net, routes = module.make_grid(size, private)
        return {"net": Path(net), "routes": Path(routes)}

    net = _generate(f"grid{size}x{size}", make)
    return net, net.with_name(f"grid{size}x{size}.rou.xml")


def _netgenerate(args: list[str], out: Path) -> None:
    result = subprocess.run([sumo_binary("netgenerate"), *args, "--tls.guess", "--tls.guess.threshold", "25",
                             "--default.lanenumber", "2", "-o", str(out)], capture_output=True, text=True)
    if result.returncode != 0 or not out.is_file():
        raise SumoError(f"netgenerate {' '.join(args)} failed: {result.stderr.strip()[-1000:]}")


def irregular_network(seed: int) -> Path:
    """An irregular network (``netgenerate --rand``, seed ``seed``, lights guessed at busy junctions)."""
    def make(private: Path) -> dict[str, Path]:
        net = private / f"irregular{seed}.net.xml"
        _netgenerate(["--rand", "--rand.iterations", "60", "--seed", str(seed), "--rand.min-distance", "150"], net)
        return {"net": net}

    return _generate(f"irregular{seed}", make)


def spider_network(arms: int, circles: int = 3) -> Path:
    """A spider web (``netgenerate --spider``): ``arms`` roads meet at a centre light with ``arms``-way
    phases, ``circles`` rings of 2- and 3-phase lights around it."""
    def make(private: Path) -> dict[str, Path]:
        net = private / f"spider{arms}x{circles}.net.xml"
        _netgenerate(["--spider", "--spider.arm-number", str(arms), "--spider.circle-number", str(circles),
                      "--spider.space-radius", "120"], net)
        return {"net": net}

    return _generate(f"spider{arms}x{circles}", make)


def run_random_trips(net: str | os.PathLike[str], seed: int, trips: Path, routes: Path, period: float,
                     begin: float, end: float, options: Sequence[str] = ("--fringe-factor", "10")) -> None:
    """Write random trips between edges of ``net``, one every ``period`` s from ``begin`` to ``end``
    (SUMO's ``randomTrips.py``; same seed, same trips): the validated ``trips`` and their ``routes``.
    ``options`` are further randomTrips options (default: trips start and end mostly at the fringe).
    It runs in ``trips``' folder, where it leaves helper files (give each caller its own)."""
    import sumo

    tool = Path(sumo.SUMO_HOME) / "tools" / "randomTrips.py"
    cmd = [sys.executable, str(tool), "-n", str(net), "-o", str(trips), "--route-file", str(routes),
           "--seed", str(seed), "--begin", f"{begin:g}", "--end", f"{end:g}", "--period", f"{period:g}",
           *options, "--validate"]
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "SUMO_HOME": sumo.SUMO_HOME},
                            cwd=trips.parent)
    if result.returncode != 0 or not trips.exists():
        raise SumoError(f"randomTrips failed for {net}: {result.stderr[-2000:]}")


def random_trips(net: Path, seed: int, out: Path, period: float = 2.0, end: float = 3600.0) -> Path:
    """A fixed route file of random trips on ``net`` in ``out`` (made once; same seed, same trips)."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    routes = out / f"{net.name.removesuffix('.net.xml')}.rou.xml"
    if not routes.is_file():
        with tempfile.TemporaryDirectory(dir=out) as private:
            made = Path(private) / routes.name
            run_random_trips(net, seed, Path(private) / "trips.xml", made, period, 0.0, end)
            os.replace(made, routes)
    return routes


def irregular_scenario(seed: int, out: Path) -> dict[str, str]:
    """The ``net_file`` and ``route_file`` options of an irregular network (:func:`irregular_network`, cached)
    with a fixed random-trips demand written into ``out`` (:func:`random_trips`)."""
    net = irregular_network(seed)
    return {"net_file": str(net), "route_file": str(random_trips(net, seed, out))}


def resolve_entry(entry: dict[str, Any], where: str) -> dict[str, Any]:
    """The :class:`~gdmpo.envs.sumo.atsc.ATSCEnv` options of one network entry (files generated if
    needed) plus its ``name``. ``where`` names the entry in error messages (e.g. ``networks[2]``)."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: a network entry is a mapping such as {{grid: 4}}, got {entry!r}")
    kinds = [k for k in KINDS if k in entry]
    unknown = sorted(set(entry) - set(KINDS) - set(PER_NETWORK))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; an entry takes one of {', '.join(KINDS)} "
                         f"and optionally {', '.join(PER_NETWORK)}")
    if len(kinds) != 1:
        raise ValueError(f"{where}: name exactly one network ({', '.join(KINDS)}), got {kinds or 'none'}")
    kind = kinds[0]
    options = {k: entry[k] for k in PER_NETWORK if k in entry and k not in ("name", "circles")}
    if "circles" in entry and kind != "spider":
        raise ValueError(f"{where}: circles is a spider network's setting")
    if kind in ("grid", "irregular", "spider"):
        value = entry[kind]
        if not isinstance(value, int) or isinstance(value, bool) or value < (2 if kind != "irregular" else 0):
            raise ValueError(f"{where}: {kind} takes a whole number ({'seed' if kind == 'irregular' else 'size'}), "
                             f"got {value!r}")
    if kind == "grid":
        net, routes = grid_files(entry["grid"])
        name = f"grid{entry['grid']}x{entry['grid']}"
        options = {"route_file": str(routes), **options}
    elif kind == "irregular":
        net, name = irregular_network(entry["irregular"]), f"irregular{entry['irregular']}"
    elif kind == "spider":
        circles = int(entry.get("circles", 3))
        net, name = spider_network(entry["spider"], circles), f"spider{entry['spider']}x{circles}"
    elif kind == "scenario":
        from gdmpo.envs.sumo import resco

        name = resco.lookup(str(entry[kind])).name
        return {**options, "sumocfg": resco.sumocfg(str(entry[kind])), "name": str(entry.get("name", name))}
    else:
        name = Path(entry[kind]).name.split(".")[0]
        return {**options, kind: str(entry[kind]), "name": str(entry.get("name", name))}
    return {**options, "net_file": str(net), "name": str(entry.get("name", name))}


def network_parts(networks: list[dict[str, Any]] | None, own: NetworkOptions, episode_seconds: float | None,
                  sumo_options: Sequence[str] = ()) -> list[NetworkPart]:
    """Each network an ATSC environment simulates: ``own`` alone, or the ``networks`` entries, for which
    ``own`` gives the defaults every entry may override (its files must then come from the entries)."""

    def part(options: NetworkOptions, name: str) -> NetworkPart:
        period = float(options.trip_period)
        if period <= 0:
            raise ValueError(f"{name}: trip_period must be > 0 s, got {period}")
        return NetworkPart(name, options.scenario(episode_seconds, sumo_options), period)

    if networks is None:
        name = Path(own.net_file or own.sumocfg or "network").name.split(".")[0]
        return [part(own, name)]
    if not isinstance(networks, (list, tuple)) or not networks:
        raise ValueError(f"networks: a non-empty list of network entries, got {networks!r}")
    given = [key for key in FILE_OPTIONS if getattr(own, key) is not None]
    if given:
        raise ValueError(f"give the network as {' or '.join(given)} or as networks, not both")
    parts, seen = [], {}
    for index, entry in enumerate(networks):
        resolved = resolve_entry(entry, f"networks[{index}]")
        name = resolved.pop("name")
        seen[name] = seen.get(name, 0) + 1
        name = name if seen[name] == 1 else f"{name}-{seen[name]}"  # the same network twice, other demand
        try:
            parts.append(part(replace(own, **resolved), name))
        except (ValueError, FileNotFoundError) as err:
            raise type(err)(f"networks[{index}] ({name}): {err}") from None
    return parts


#: the training distribution of ``atsc-generalist``: grids of two sizes with their peak-hour flows, two
#: irregular networks and a spider web with a 6-arm centre, the last three with random trips drawn anew
#: every episode at three rates; 109 lights, junctions of 2 to 6 phases and 6 to 12 lanes
GENERALIST_NETWORKS = (
    {"grid": 3, "scale": 1.3},
    {"grid": 4},
    {"irregular": 12, "trip_period": 2.0},
    {"irregular": 13, "trip_period": 3.0},
    {"spider": 6, "trip_period": 2.5},
)
