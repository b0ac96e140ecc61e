"""RESCO's delay: what a controller costs the vehicles due in a window, never-entered ones included.

RESCO (Ault & Sharon, 2021) scores a controller by the mean over vehicles of ``timeLoss +
departDelay`` from SUMO's trip information (unfinished trips included: time lost so far). A vehicle
due in the window that a starved entry never lets in has no trip information at all; left out, a
controller that blocks an approach would look better than one that serves it. RESCO charges such a
vehicle its wait, from its intended departure until the window's end, and so does gdmpo.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from typing import Sequence

from gdmpo.graph.sumo import open_xml


def resco_delay(entered_delay: float, entered: int, never_entered_waits: Sequence[float]) -> float:
    """Mean delay (s) per vehicle due in the window.

    Args:
        entered_delay: summed ``timeLoss + departDelay`` (s) of the vehicles that entered the network,
            finished or not.
        entered: how many they are.
        never_entered_waits: per due vehicle that never entered, the window's end minus its intended
            departure (s).
    """
    due = entered + len(never_entered_waits)
    return (entered_delay + sum(never_entered_waits)) / due if due else 0.0


def tripinfo_delay(path: str | os.PathLike[str]) -> tuple[float, int]:
    """``(summed timeLoss + departDelay, vehicles)`` of a SUMO tripinfo file (``--tripinfo-output``,
    with ``--tripinfo-output.write-unfinished`` for the trips still running at the end)."""
    total, count = 0.0, 0
    with open_xml(path) as stream:
        for _, element in ET.iterparse(stream):
            if element.tag == "tripinfo":
                try:
                    total += float(element.get("timeLoss", 0.0)) + float(element.get("departDelay", 0.0))
                except ValueError:
                    raise ValueError(f"{path}: tripinfo {element.get('id')!r} has a timeLoss or departDelay "
                                     "that is not a number") from None
                count += 1
            element.clear()
    return total, count
