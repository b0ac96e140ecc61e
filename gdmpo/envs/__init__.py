"""Networked environments behind one vectorised API, and the registry that names them.

``gdmpo.make(env_id, num_envs=B, seed=s, **options)`` builds one; ``gdmpo.envs.list()`` names them.
"""

from gdmpo.envs.base import ActionError, NetworkedVecEnv
from gdmpo.envs.cacc import CACCEnv, CACCParams
from gdmpo.envs.registry import EnvSpec, make, register, registered, spec
from gdmpo.envs.sumo import ATSCEnv, SumoError, VehicleEnv, atsc_generalist, atsc_grid, figure_eight, ring_attenuation

list = registered  # noqa: A001 - ``gdmpo.envs.list()`` is the documented spelling

register("cacc-catchup", CACCEnv, "CACC Catch-up: 8-vehicle platoon, vehicle 1 starts far behind", scenario="catchup")
register("cacc-slowdown", CACCEnv, "CACC Slow-down: 8-vehicle platoon behind a decelerating leader", scenario="slowdown")
register("atsc", ATSCEnv, "Traffic signal control on SUMO for any .net.xml (options: net_file=, route_file=, sumocfg=, begin=, warmup_seconds=, scale=)",
         agents="signals")
for _size in (3, 5, 10):
    register(f"atsc-grid{_size}x{_size}", atsc_grid(_size),
             f"Traffic signal control on the {_size}x{_size} grid (graphs/) with its peak-hour flows", agents="signals")
register("atsc-generalist", atsc_generalist, "Traffic signal control on five networks at once (3x3 and 4x4 grids, two "
         "irregular, a spider; 109 lights of 2-6 phases), to train policies for networks they never saw", agents="signals")
register("ring-attenuation", ring_attenuation, "SUMO ring of 220-270 m, 22 vehicles as agents damping stop-and-go waves")
register("figure-eight", figure_eight, "SUMO figure eight (radius 30 m, one crossing), 14 vehicles as agents")

__all__ = [
    "ATSCEnv",
    "ActionError",
    "CACCEnv",
    "CACCParams",
    "EnvSpec",
    "NetworkedVecEnv",
    "VehicleEnv",
    "list",
    "make",
    "register",
    "registered",
    "SumoError",
    "spec",
]
