"""Reading a run's ``metrics.csv`` back: every reader checks it is one, and a damaged file is named.

The trainer appends one row per iteration; plots, summaries and ``--resume`` read it again. A file that
was edited, truncated or replaced must give an error naming the file, the row and the column, never a
bare ``KeyError``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence


class MetricsFileError(ValueError):
    """``metrics.csv`` is not a gdmpo metrics table, or one of its values is not a number."""


def read_rows(path: Path, needed: Sequence[str] = ("iteration", "env_steps")) -> list[dict[str, str]]:
    """The rows of ``path`` as dicts, after checking its header holds the ``needed`` columns."""
    with Path(path).open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [column for column in needed if column not in header]
        if missing:
            shown = ", ".join(header[:6]) + (", ..." if len(header) > 6 else "") if header else "empty"
            raise MetricsFileError(f"{path}: not a gdmpo metrics table (no {', '.join(missing)} column; header: "
                                   f"{shown}); it was damaged or replaced: restore it, or start a new run")
        return list(reader)


def number(path: Path, index: int, row: dict[str, str], column: str) -> float:
    """``row[column]`` as a float; ``index`` is the row's position among the data rows (0-based)."""
    value = row.get(column)
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MetricsFileError(f"{path}: line {index + 2}: {column} is {value!r}, not a number; the file was "
                               "damaged: restore it, or start a new run") from None
