"""gdmpo: decentralized model-based multi-agent RL (DMPO) and its baselines on networked systems."""

__version__ = "0.1.0"

from gdmpo.threads import set_passive_wait_policy

set_passive_wait_policy()  # before torch loads OpenMP (see gdmpo.threads)

from gdmpo import graph  # noqa: E402 - the version is set first for modules that record it
from gdmpo.envs import make
from gdmpo.evaluation import evaluate_checkpoint as evaluate
from gdmpo.trainer import Trainer, train

__all__ = ["Trainer", "__version__", "evaluate", "graph", "make", "train"]
