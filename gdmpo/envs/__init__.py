"""Networked environments behind one vectorised API, and the registry that names them.

``gdmpo.make(env_id, num_envs=B, seed=s, **options)`` builds one; ``gdmpo.envs.list()`` names them.
"""

from gdmpo.envs.base import ActionError, NetworkedVecEnv
from gdmpo.envs.cacc import CACCEnv, CACCParams
from gdmpo.envs.registry import EnvSpec, make, register, registered, spec

list = registered  # noqa: A001 - ``gdmpo.envs.list()`` is the documented spelling

register("cacc-catchup", CACCEnv, "CACC Catch-up: 8-vehicle platoon, vehicle 1 starts far behind", scenario="catchup")
register("cacc-slowdown", CACCEnv, "CACC Slow-down: 8-vehicle platoon behind a decelerating leader", scenario="slowdown")

__all__ = [
    "ActionError",
    "CACCEnv",
    "CACCParams",
    "EnvSpec",
    "NetworkedVecEnv",
    "list",
    "make",
    "register",
    "registered",
    "spec",
]
