"""gdmpo: decentralized model-based multi-agent RL (DMPO) and its baselines on networked systems."""

from gdmpo import graph
from gdmpo.envs import make

__version__ = "0.1.0"

__all__ = ["__version__", "graph", "make"]
