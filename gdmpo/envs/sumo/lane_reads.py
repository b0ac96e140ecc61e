"""What every incoming lane of a signalised network holds now, read with one SUMO call per control step.

One call per lane (its vehicles, its halting count, then each vehicle's position) makes a control
step's reads grow with lanes times vehicles in Python. Instead every vehicle is subscribed once, when
first seen, to its lane, position, speed and waiting time; a read then fetches all of them in one
call and sums them per lane with numpy. The Python work left is one pass over the vehicles' answers.

A lane's *approach* is the lane and, where it is shorter than the wave distance, the lanes upstream of
it through unsignalised junctions (``graph.approaches``): a vehicle on one counts for the lane it feeds
at its distance to that lane's stop line, so a light whose incoming lane is a short stub still sees the
queue in front of it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from traci.constants import VAR_LANE_ID, VAR_LANEPOSITION, VAR_SPEED, VAR_WAITING_TIME  # libsumo's codes too

VARIABLES = (VAR_LANE_ID, VAR_LANEPOSITION, VAR_SPEED, VAR_WAITING_TIME)
HALTING_SPEED = 0.1  # m/s: SUMO counts a vehicle below this speed as halting (lane.getLastStepHaltingNumber)


class LaneCounts(NamedTuple):
    """Per light and lane slot, ``[n, max_lanes]`` (padding slots 0), over the lane's approach:
    vehicles within ``wave_distance`` of the stop line, halting vehicles, and the waiting time (s) of
    the vehicle nearest the stop line."""

    near: np.ndarray
    halting: np.ndarray
    first_wait: np.ndarray


class LaneReader:
    """Reads :class:`LaneCounts` for the incoming ``lanes [n][k]`` of ``n`` lights through ``sim``
    (the libsumo or TraCI module of a running simulation).

    A lane listed by two lights is read once and copied to both slots. ``approaches [n][k]`` lists the
    upstream lanes of lane k of light i with their distance to its stop line (default none).
    """

    def __init__(self, sim: Any, lanes: list[list[str]], lane_lengths: list[list[float]], max_lanes: int,
                 wave_distance: float, approaches: list[list[list[tuple[str, float]]]] | None = None) -> None:
        self.sim = sim
        self.shape = (len(lanes), max_lanes)
        self.index: dict[str, int] = {}  # lane ID -> unique lane number
        slot, slot_lane, lengths = [], [], {}
        for i, (own, own_lengths) in enumerate(zip(lanes, lane_lengths)):
            for k, (lane, length) in enumerate(zip(own, own_lengths)):
                slot_lane.append(self.index.setdefault(lane, len(self.index)))
                slot.append(i * max_lanes + k)
                lengths[lane] = length
        self.slot = np.array(slot, dtype=np.int64)  # flat index i * max_lanes + k of each real lane slot
        self.slot_lane = np.array(slot_lane, dtype=np.int64)  # the unique lane number read into it
        self.length = np.array([lengths[lane] for lane in self.index])  # by unique lane number
        self.wave_distance = wave_distance
        self.known: set[str] = set()
        self.upstream_lengths: dict[str, float] = {}  # read from SUMO when first needed
        self.upstream: dict[str, list[tuple[int, float]]] = {}  # upstream lane -> [(lane number it feeds, offset)]
        for own, own_approaches in zip(lanes, approaches or []):
            for lane, approach in zip(own, own_approaches):
                for before, offset in approach:
                    fed = (self.index[lane], float(offset))
                    if before not in self.index and fed not in self.upstream.setdefault(before, []):
                        self.upstream[before].append(fed)

    def reset(self) -> None:
        """Forget who is subscribed: after a ``load`` every vehicle is new (SUMO still answers for the
        last episode's vehicles until the first step, which :meth:`read` ignores)."""
        self.known = set()

    def _subscribe_new_vehicles(self, present: set[str]) -> None:
        for vehicle in present - self.known:
            self.sim.vehicle.subscribe(vehicle, VARIABLES)
        self.known = present  # vehicles that left are unsubscribed by SUMO itself

    def read(self) -> LaneCounts:
        """The counts of every lane slot now."""
        present = self.sim.vehicle.getIDList()
        self._subscribe_new_vehicles(set(present))
        results = self.sim.vehicle.getAllSubscriptionResults()
        # only vehicles in the network now: right after a load SUMO still answers for the last episode's
        answers = [results[v] for v in present if v in results]
        lane = np.fromiter((self.index.get(a[VAR_LANE_ID], -1) for a in answers), np.int64, len(answers))
        on = lane >= 0  # vehicles on an incoming lane (not inside a junction, on an exit or teleporting)
        lane = lane[on]
        position, speed, wait = (np.fromiter((a[var] for a in answers), np.float64, len(answers))[on]
                                 for var in VARIABLES[1:])
        distance = self.length[lane] - position  # to the stop line
        if self.upstream:  # vehicles before a short lane count for it, at their distance to its stop line
            lane, distance, speed, wait = self._add_upstream(answers, lane, distance, speed, wait)
        lanes = len(self.index)
        near = np.bincount(lane, weights=distance <= self.wave_distance, minlength=lanes)
        halting = np.bincount(lane, weights=speed < HALTING_SPEED, minlength=lanes)
        first_wait = np.zeros(lanes)
        order = np.lexsort((-distance, lane))  # by lane, then nearest last: each lane's last is its first vehicle
        last = np.flatnonzero(np.r_[lane[order][1:] != lane[order][:-1], True]) if len(order) else order
        first_wait[lane[order[last]]] = wait[order[last]]
        return LaneCounts(*(self._to_slots(per_lane) for per_lane in (near, halting, first_wait)))

    def _add_upstream(self, answers: list, lane: np.ndarray, distance: np.ndarray, speed: np.ndarray,
                      wait: np.ndarray) -> tuple[np.ndarray, ...]:
        """The arrays with one more row per (vehicle on an upstream lane, lane it feeds)."""
        rows = [(fed, offset + self._upstream_length(a) - a[VAR_LANEPOSITION], a[VAR_SPEED], a[VAR_WAITING_TIME])
                for a in answers for fed, offset in self.upstream.get(a[VAR_LANE_ID], ())]
        if not rows:
            return lane, distance, speed, wait
        extra = np.array(rows, dtype=np.float64)
        return (np.concatenate([lane, extra[:, 0].astype(np.int64)]), np.concatenate([distance, extra[:, 1]]),
                np.concatenate([speed, extra[:, 2]]), np.concatenate([wait, extra[:, 3]]))

    def _upstream_length(self, answer: dict) -> float:
        lane = answer[VAR_LANE_ID]
        if lane not in self.upstream_lengths:
            self.upstream_lengths[lane] = float(self.sim.lane.getLength(lane))
        return self.upstream_lengths[lane]

    def _to_slots(self, per_lane: np.ndarray) -> np.ndarray:
        out = np.zeros(self.shape[0] * self.shape[1])
        out[self.slot] = per_lane[self.slot_lane]
        return out.reshape(self.shape)
