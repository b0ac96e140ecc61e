"""The benchmark drivers are scripts (``python benchmarks/<name>.py``), not a package: tests load one by its
path to check its functions, without putting ``benchmarks/`` on ``sys.path``."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


@functools.cache
def load(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as the module ``benchmarks_<name>`` (loaded once)."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look their module up by name
    spec.loader.exec_module(module)
    return module
