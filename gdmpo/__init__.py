"""gdmpo: decentralized model-based multi-agent RL (DMPO) and its baselines on networked systems.

The public names below are imported on first use, so ``import gdmpo`` (and the ``gdmpo`` command's
``--help``, ``envs`` and argument errors) answers without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from gdmpo._version import __version__
from gdmpo.threads import set_passive_wait_policy

set_passive_wait_policy()  # before torch loads OpenMP (see gdmpo.threads)

#: public name -> (module, attribute); a module itself where the attribute is None
_LAZY = {"graph": ("gdmpo.graph", None), "make": ("gdmpo.envs", "make"),
         "evaluate": ("gdmpo.evaluation", "evaluate_checkpoint"), "Trainer": ("gdmpo.trainer", "Trainer"),
         "train": ("gdmpo.trainer", "train")}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        return _submodule(name)
    module, attribute = _LAZY[name]
    loaded = importlib.import_module(module)
    return loaded if attribute is None else getattr(loaded, attribute)



def _submodule(name: str) -> Any:
    """``gdmpo.<name>`` for a subpackage not imported yet (as eager imports used to provide)."""
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


__all__ = ["Trainer", "__version__", "evaluate", "graph", "make", "train"]
