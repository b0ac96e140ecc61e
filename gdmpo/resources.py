"""Files shipped with gdmpo: the grid networks (``graphs/``) and the example run configs (``configs/``).

In a source checkout (or an editable install) they are the repository's top-level folders; a wheel
carries the same files as package data under ``gdmpo/_data/``. Everything that reads a shipped file
finds it here, so both installs behave the same from any working directory.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
#: where a wheel puts the shipped folders, then where a source checkout has them
_PLACES = (_PACKAGE / "_data", _PACKAGE.parent)
SHIPPED_FOLDERS = ("graphs", "configs")


def shipped_folder(name: str) -> Path:
    """The folder ``graphs`` or ``configs`` as installed (the first place that has it)."""
    if name not in SHIPPED_FOLDERS:
        raise ValueError(f"gdmpo ships {' and '.join(SHIPPED_FOLDERS)}, not {name!r}")
    for place in _PLACES:
        if (place / name).is_dir():
            return place / name
    raise FileNotFoundError(f"gdmpo's shipped {name}/ folder is missing from {_PACKAGE} (and from the source "
                            "checkout above it): reinstall gdmpo")


def config_path(name: str | Path) -> Path:
    """A run config by file path, or by shipped name: ``cacc-catchup/dmpo`` (or ``.../dmpo.yaml``) is
    ``configs/cacc-catchup/dmpo.yaml`` as shipped. A path that exists wins over a shipped name."""
    path = Path(name)
    if path.is_file():
        return path
    configs = shipped_folder("configs")
    shipped = configs / (path if path.suffix in (".yaml", ".yml") else path.with_suffix(".yaml"))
    if not path.is_absolute() and len(path.parts) == 2 and shipped.is_file():
        return shipped
    names = sorted(str(p.relative_to(configs).with_suffix("")) for p in configs.glob("*/*.yaml"))
    raise FileNotFoundError(f"{name}: no such config file, nor a shipped config (shipped: {', '.join(names)})")
