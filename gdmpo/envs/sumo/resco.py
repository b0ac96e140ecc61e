"""RESCO's real-city scenarios by name, read from the installed ``sumo-rl`` package.

RESCO (Ault & Sharon, NeurIPS 2021 Datasets and Benchmarks) publishes eight SUMO scenarios: parts of
Cologne (1, 3 and 8 lights) and Ingolstadt (1, 7 and 21 lights) with their measured demand, and two
synthetic 4x4 networks. Their licences (some non-commercial) keep them out of gdmpo: they come with the
``sumo-rl`` package (``pip install -e ".[scenarios]"``), and gdmpo reads them where it installed them.

``scenario: resco:cologne8`` (an ATSC option) names one; it runs from its own ``.sumocfg``, whose window
is RESCO's. ``timing: resco`` (10 s decisions, 3 s yellow) is RESCO's own timing on them.
"""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from gdmpo.graph.sumo import open_xml

PREFIX = "resco:"


@dataclass(frozen=True)
class RescoScenario:
    """One RESCO map: its folder and configuration in ``sumo_rl/nets/RESCO``, RESCO's window (s)."""

    name: str
    config: str  # the .sumocfg's file name in the map's folder
    begin: float
    end: float
    source: str


_COLOGNE = "TAPAS Cologne (Uppoor et al.), 07:00-08:00"
_INGOLSTADT = "InTAS Ingolstadt (Lobo et al.), 16:00-17:00"
_SYNTHETIC = "synthetic (RESCO), 1 h"
SCENARIOS = {
    s.name: s for s in (
        RescoScenario("cologne1", "cologne1.sumocfg", 25200, 28800, _COLOGNE),
        RescoScenario("cologne3", "cologne3.sumocfg", 25200, 28800, _COLOGNE),
        RescoScenario("cologne8", "cologne8.sumocfg", 25200, 28800, _COLOGNE),
        RescoScenario("ingolstadt1", "ingolstadt1.sumocfg", 57600, 61200, _INGOLSTADT),
        RescoScenario("ingolstadt7", "ingolstadt7.sumocfg", 57600, 61200, _INGOLSTADT),
        RescoScenario("ingolstadt21", "ingolstadt21.sumocfg", 57600, 61200, _INGOLSTADT),
        RescoScenario("grid4x4", "grid4x4.sumocfg", 0, 3600, _SYNTHETIC),
        RescoScenario("arterial4x4", "arterial4x4.sumocfg", 0, 3600, _SYNTHETIC),
    )
}


def is_named_scenario(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def resco_folder() -> Path:
    """``sumo_rl/nets/RESCO`` of the installed sumo-rl, found without importing it (its import needs
    ``SUMO_HOME``). Raises ``ModuleNotFoundError`` naming the extra to install when it is absent."""
    spec = importlib.util.find_spec("sumo_rl")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = Path(location) / "nets" / "RESCO"
        if folder.is_dir():
            return folder
    raise ModuleNotFoundError("the RESCO scenarios come with the sumo-rl package, which is not installed: "
                              "pip install -e \".[scenarios]\" (or pip install sumo-rl)")


def lookup(name: str) -> RescoScenario:
    """The RESCO map ``name`` (``cologne8`` or ``resco:cologne8``); an unknown name lists the eight."""
    key = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if key not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; the RESCO scenarios are "
                         + ", ".join(PREFIX + known for known in SCENARIOS))
    return SCENARIOS[key]


def sumocfg(name: str) -> str:
    """The ``.sumocfg`` of scenario ``name`` in the installed sumo-rl (its window is RESCO's)."""
    scenario = lookup(name)
    config = resco_folder() / scenario.name / scenario.config
    if not config.is_file():
        raise FileNotFoundError(f"{config}: the installed sumo-rl lacks RESCO's {scenario.name} scenario")
    return str(config)


def light_count(name: str) -> int:
    """How many traffic lights (``tlLogic`` ids) the map's network has, read without sumolib."""
    net = Path(sumocfg(name)).parent / f"{lookup(name).name}.net.xml"
    with open_xml(net) as stream:
        return len({element.get("id") for _, element in ET.iterparse(stream) if element.tag == "tlLogic"})
