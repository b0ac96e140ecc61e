"""Networked environments behind one vectorised API, and the registry that names them.

``gdmpo.make(env_id, num_envs=B, seed=s, **options)`` builds one; ``gdmpo.envs.list()`` names them.
Entry points are imported when an environment is made (and the classes below when first named), so
importing this package, listing ids or checking one costs no torch or SUMO import.
"""

from __future__ import annotations

from typing import Any

from gdmpo._lazy import lazy_attribute

from gdmpo.envs.registry import EnvSpec, make, register, registered, spec
from gdmpo.envs.signal_options import OBSERVATION_OPTIONS

list = registered  # noqa: A001 - ``gdmpo.envs.list()`` is the documented spelling

#: what every traffic-signal environment registers: the options its policies carry, the controllers they face
_SIGNALS = {"carried_options": OBSERVATION_OPTIONS, "references": ("fixed-time", "max-pressure", "greedy")}

register("cacc-catchup", "gdmpo.envs.cacc:CACCEnv", "CACC Catch-up: 8-vehicle platoon, vehicle 1 starts far behind",
         scenario="catchup")
register("cacc-slowdown", "gdmpo.envs.cacc:CACCEnv", "CACC Slow-down: 8-vehicle platoon behind a decelerating leader",
         scenario="slowdown")
register("atsc", "gdmpo.envs.sumo.atsc:ATSCEnv", "Traffic signal control on SUMO for any .net.xml (options: net_file=, "
         "route_file=, sumocfg=, begin=, warmup_seconds=, scale=)", agents="signals", **_SIGNALS)
for _size in (3, 5, 10):
    register(f"atsc-grid{_size}x{_size}", "gdmpo.envs.sumo.atsc:atsc_shipped",
             f"Traffic signal control on the {_size}x{_size} grid (graphs/) with its peak-hour flows", agents="signals",
             **_SIGNALS,
             shipped=f"grid{_size}x{_size}")
register("atsc-generalist", "gdmpo.envs.sumo.atsc:atsc_generalist", "Traffic signal control on five networks at once "
         "(3x3 and 4x4 grids, two irregular, a spider; 109 lights of 2-6 phases), to train policies for networks "
         "they never saw", agents="signals", **_SIGNALS)
register("ring-attenuation", "gdmpo.envs.sumo.vehicles:ring_attenuation",
         "SUMO ring of 220-270 m, 22 vehicles as agents damping stop-and-go waves", references=("idm",))
register("figure-eight", "gdmpo.envs.sumo.vehicles:figure_eight",
         "SUMO figure eight (radius 30 m, one crossing), 14 vehicles as agents", references=("idm",))

#: public names imported on first use: ``from gdmpo.envs import ATSCEnv`` works as before
_LAZY = {name: (module, name) for module, names in {
    "gdmpo.envs.base": ("ActionError", "NetworkedVecEnv"), "gdmpo.envs.cacc": ("CACCEnv", "CACCParams"),
    "gdmpo.envs.sumo": ("ATSCEnv", "SumoError", "VehicleEnv", "atsc_generalist", "atsc_grid", "figure_eight",
                        "ring_attenuation")}.items() for name in names}


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _LAZY, name)


__all__ = ["ATSCEnv", "ActionError", "CACCEnv", "CACCParams", "EnvSpec", "NetworkedVecEnv", "VehicleEnv", "list", "make",
           "register", "registered", "SumoError", "spec"]
