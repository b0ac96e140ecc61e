"""gdmpo: decentralized model-based multi-agent RL (DMPO) and its baselines on networked systems.

The public names below are imported on first use, so ``import gdmpo`` (and the ``gdmpo`` command's
``--help``, ``envs`` and argument errors) answers without importing torch.
"""

from __future__ import annotations

from typing import Any

from gdmpo._lazy import lazy_attribute
from gdmpo._version import __version__
from gdmpo.threads import set_passive_wait_policy

set_passive_wait_policy()  # before torch loads OpenMP (see gdmpo.threads)

#: public name -> (module, attribute); a module itself where the attribute is None
_LAZY = {"graph": ("gdmpo.graph", None), "make": ("gdmpo.envs", "make"),
         "evaluate": ("gdmpo.evaluation", "evaluate_checkpoint"), "Trainer": ("gdmpo.trainer", "Trainer"),
         "train": ("gdmpo.trainer", "train")}


def __getattr__(name: str) -> Any:
    return lazy_attribute(__name__, _LAZY, name)


__all__ = ["Trainer", "__version__", "evaluate", "graph", "make", "train"]
