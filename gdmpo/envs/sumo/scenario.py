"""What a user brings, turned into one SUMO run's start arguments: network, routes, time window, demand.

Real scenarios start at the hour they model (07:00 = 25 200 s is common) and come as a ``.net.xml``
with one or more route files, or as a ``.sumocfg`` that names them and the window. A
:class:`Scenario` holds the resolved result:

    SUMO starts at ``begin`` → the network's own signal programmes run for ``warmup_seconds`` →
    the agents control from ``control_start = begin + warmup`` for ``episode_seconds`` (until ``end``).

A ``.sumocfg`` runs as SUMO runs it: SUMO is started with ``-c`` on the user's file, so every input it
names is honoured (additional files with vehicle types, signal programmes, detectors; step length;
teleport and routing options; ``.gz`` files; paths relative to the configuration's folder; either root
element, ``<configuration>`` or ``<sumoConfiguration>``). gdmpo overrides only what it owns: the time
window, the seed, the demand scale and the outputs (every output and log the configuration names is
switched off, so nothing is written beside the user's files). A file the configuration names but that
is missing is refused when the scenario is made, naming the configuration and the entry.

Explicit options override what a ``.sumocfg`` says. The window, the demand ``scale`` and the files are
set here only: passing ``--begin``, ``--end``, ``--scale``, ``-n``, ``-r`` or ``-c`` through
``sumo_options`` is refused with the option to use instead. A window that ends before the route files'
first departure is refused when the environment is made, naming both.
"""

from __future__ import annotations

import gzip
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from gdmpo.graph.sumo import open_xml, refuse_declarations

#: SUMO options a scenario owns, and the gdmpo option to use instead
OWNED_OPTIONS = {"--begin": "begin", "-b": "begin", "--end": "end or episode_seconds", "-e": "end or episode_seconds",
                 "--scale": "scale", "-n": "net_file", "--net-file": "net_file", "-r": "route_file",
                 "--route-files": "route_file", "-c": "sumocfg", "--configuration-file": "sumocfg"}
_DEPARTING = ("vehicle", "trip", "flow", "person", "personFlow", "container")
#: root elements SUMO accepts for a configuration file
CONFIG_ROOTS = ("configuration", "sumoConfiguration")
#: configuration entries that name input files, checked to exist when the scenario is made
_INPUT_FILES = {"net-file": "net_file", "route-files": "route_files", "additional-files": "additional_files"}
#: configuration entries that write files besides the ``*-output`` ones: switched off by gdmpo
_WRITING = ("log", "log-file", "message-log", "save-configuration", "save-template", "save-schema",
            "save-state.files", "netstate-dump", "ndump")
#: outputs gdmpo always sets itself (its error log; trip statistics without a file)
_OWN_OUTPUTS = ("error-log", "tripinfo-output")


@dataclass(frozen=True)
class Scenario:
    """One scenario's resolved inputs (see the module doc); times in simulated seconds."""

    net_file: str
    route_files: tuple[str, ...]  # empty: random trips are generated per episode
    begin: float = 0.0
    warmup_seconds: float = 0.0
    episode_seconds: float = 3600.0
    scale: float = 1.0
    sumocfg: str | None = None  # SUMO starts from this configuration (``-c``) when set
    additional_files: tuple[str, ...] = ()  # the configuration's additional files (absolute)
    config_options: tuple[str, ...] = ()  # every option the configuration sets
    silenced_outputs: tuple[str, ...] = ()  # the configuration's output and log options, switched off

    @property
    def control_start(self) -> float:
        return self.begin + self.warmup_seconds

    @property
    def end(self) -> float:
        return self.control_start + self.episode_seconds

    def window(self) -> str:
        return (f"{self.begin:g}-{self.end:g} s" + (f" (control from {self.control_start:g} s)"
                                                    if self.warmup_seconds else ""))

    def sets(self, option: str) -> bool:
        """Whether the scenario's configuration sets SUMO ``option`` (e.g. ``step-length``)."""
        return option in self.config_options

    def sumo_args(self, route_files: Sequence[str] | None = None) -> list[str]:
        """SUMO's start arguments: the configuration (``-c``) when there is one, ``-n`` and ``-r``,
        ``--begin``, ``--scale``, and the configuration's outputs switched off (``route_files``
        replaces the scenario's routes)."""
        routes = list(self.route_files if route_files is None else route_files)
        config = ["-c", self.sumocfg] if self.sumocfg else []
        silenced = [arg for option in self.silenced_outputs for arg in (f"--{option}", os.devnull)]
        if self.sumocfg and "random" in self.config_options:
            silenced += ["--random", "false"]  # the seed is gdmpo's
        return [*config, "-n", self.net_file, *(["-r", ",".join(routes)] if routes else []),
                "--begin", f"{self.begin:g}", "--scale", f"{self.scale:g}", *silenced]


def make_scenario(net_file: str | os.PathLike[str] | None = None,
                  route_file: str | os.PathLike[str] | Sequence[str] | None = None,
                  sumocfg: str | os.PathLike[str] | None = None, begin: float | None = None,
                  end: float | None = None, episode_seconds: float | None = None, warmup_seconds: float = 0.0,
                  scale: float = 1.0, sumo_options: Sequence[str] = ()) -> Scenario:
    """Resolve a scenario from explicit options and an optional ``.sumocfg`` (explicit ones win).

    ``route_file`` may be one path, a comma-separated string or a list. Give ``end`` or
    ``episode_seconds`` (default 3600 s of control), not both.
    """
    for option in sumo_options:
        name = str(option).split("=")[0]
        if name in OWNED_OPTIONS:
            raise ValueError(f"sumo_options: {name} is set by gdmpo; use the environment option "
                             f"{OWNED_OPTIONS[name]!r} instead")
    from_cfg = read_sumocfg(sumocfg) if sumocfg is not None else {}
    net = net_file if net_file is not None else from_cfg.get("net_file")
    if net is None:
        raise ValueError("a scenario needs net_file (or a sumocfg that names one)")
    if not Path(net).is_file():
        raise FileNotFoundError(f"{net}: no such SUMO network file")
    refuse_declarations(net, "SUMO network")
    routes = _route_list(route_file) if route_file is not None else from_cfg.get("route_files", [])
    for route in routes:
        if not Path(route).is_file():
            raise FileNotFoundError(f"{route}: no such route file")
        refuse_declarations(route, "route file")
    for additional in from_cfg.get("additional_files", []):
        refuse_declarations(additional, "additional file")
    start = float(begin if begin is not None else from_cfg.get("begin", 0.0))
    if end is None and episode_seconds is None and "end" in from_cfg:
        end = from_cfg["end"]
    if end is not None and episode_seconds is not None:
        raise ValueError("give end or episode_seconds, not both")
    if warmup_seconds < 0 or scale <= 0:
        raise ValueError(f"warmup_seconds must be >= 0 and scale > 0, got {warmup_seconds} and {scale}")
    seconds = float(end) - start - warmup_seconds if end is not None else float(episode_seconds or 3600)
    if seconds <= 0:
        raise ValueError(f"the control window is empty: begin {start:g} s + warm-up {warmup_seconds:g} s "
                         f"reaches end {end} s")
    config = {}
    if sumocfg is not None:
        config = {"sumocfg": str(Path(sumocfg).resolve()), "additional_files": tuple(from_cfg["additional_files"]),
                  "config_options": tuple(from_cfg["options"]), "silenced_outputs": tuple(from_cfg["outputs"])}
    scenario = Scenario(str(Path(net).resolve()), tuple(str(Path(r).resolve()) for r in routes), start,
                        float(warmup_seconds), seconds, float(scale), **config)
    first = first_departure(scenario.route_files)
    if first is not None and first >= scenario.end:
        raise ValueError(f"no vehicle departs in the window {scenario.window()}: the route files' first departure "
                         f"is at {first:g} s ({first / 3600:.2f} h); set begin (or a sumocfg's <begin>) to it")
    return scenario


def read_sumocfg(path: str | os.PathLike[str]) -> dict:
    """What gdmpo needs of a ``.sumocfg``: ``net_file``, ``route_files``, ``additional_files`` (paths made
    absolute, relative ones from the configuration's folder, each checked to exist), ``begin`` and
    ``end``, ``options`` (every option it sets) and ``outputs`` (those that write files)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such SUMO configuration file")
    refuse_declarations(path, "SUMO configuration")
    try:
        with open_xml(path) as stream:
            root = ET.parse(stream).getroot()
    except (ET.ParseError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .sumocfg ({err})") from None
    if root.tag not in CONFIG_ROOTS:
        raise ValueError(f"{path}: not a .sumocfg: its root element is <{root.tag}>, not <configuration> "
                         "or <sumoConfiguration>")
    options: dict[str, str] = {}
    for element in root.iter():
        if element is not root and len(element) == 0:  # an option; sections (<input>, <time>...) hold them
            value = element.get("value", (element.text or "").strip())
            options[element.tag] = value
    out: dict = {"options": sorted(options), "additional_files": [],
                 "outputs": sorted(name for name in options if (name.endswith("-output") or name in _WRITING)
                                and name not in _OWN_OUTPUTS)}
    for option, key in _INPUT_FILES.items():
        if option not in options:
            continue
        files = [name.strip() for name in options[option].split(",") if name.strip()]
        resolved = [path.parent / name for name in files]
        for name, full in zip(files, resolved):
            if not full.is_file():
                raise FileNotFoundError(f"{path}: <{option}> names {name}, which does not exist ({full})")
        out[key] = [str(full) for full in resolved]
    if "net_file" in out:
        out["net_file"] = out["net_file"][0]
    for key in ("begin", "end"):
        if key in options:
            out[key] = _seconds(options[key], path, key)
    return out


def first_departure(route_files: Sequence[str]) -> float | None:
    """The earliest departure the route files announce, from each file's first departing element
    (SUMO requires route files sorted by departure), or None when it cannot tell."""
    times = []
    for route in route_files:
        try:
            with open_xml(route) as stream:
                for _, element in ET.iterparse(stream, events=("start",)):
                    if element.tag in _DEPARTING:
                        text = element.get("depart", element.get("begin"))
                        if text is not None:
                            try:
                                times.append(float(text))
                            except ValueError:  # "triggered" and the like
                                pass
                        break
        except (ET.ParseError, EOFError, gzip.BadGzipFile) as err:
            raise ValueError(f"{route}: not a readable route file ({err})") from None
    return min(times) if times else None


def _route_list(route_file: str | os.PathLike[str] | Sequence[str]) -> list[str]:
    if isinstance(route_file, (str, os.PathLike)):
        return [r.strip() for r in str(route_file).split(",") if r.strip()]
    return [str(r) for r in route_file]


def _seconds(text: str, path: Path, key: str) -> float:
    """SUMO times are seconds or ``[[D:]H:]M:S``."""
    try:
        parts = [float(part) for part in text.split(":")]
        if len(parts) > 4:
            raise ValueError
        return sum(value * unit for value, unit in zip(reversed(parts), (1, 60, 3600, 86400)))
    except ValueError:
        raise ValueError(f"{path}: <{key}> must be a time in seconds, got {text!r}") from None
