"""Public names of a package imported on first use (PEP 562), so importing the package stays light."""

from __future__ import annotations

import importlib
from typing import Any


def lazy_attribute(package: str, table: dict[str, tuple[str, str | None]], name: str) -> Any:
    """``package.<name>``: ``table[name] = (module, attribute)`` imported now (the module itself where the
    attribute is None), else a submodule of ``package`` not imported yet; else ``AttributeError``."""
    if name in table:
        module, attribute = table[name]
        loaded = importlib.import_module(module)
        return loaded if attribute is None else getattr(loaded, attribute)
    try:
        return importlib.import_module(f"{package}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{package}.{name}":
            raise
        raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
