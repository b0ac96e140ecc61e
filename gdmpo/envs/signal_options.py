"""What a traffic-signal policy reads and how its lights are timed: :class:`SignalOptions`, plain data
without torch or SUMO, so the registry, evaluation and transfer can name them without building an
environment (:class:`~gdmpo.envs.sumo.atsc.ATSCEnv` is the environment that takes them)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

#: timing presets, ``(control_interval, yellow_seconds)``: gdmpo's own (NSC's grid) and RESCO's real maps
TIMINGS = {"default": (5, 2), "resco": (10, 3)}


def check_positive(name: str, value: object) -> None:
    """Refuse an ATSC option that must be a finite number > 0, naming it."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"atsc option {name} must be a number > 0, got {value!r}")


def check_yellow(control_interval: int, yellow_seconds: int) -> None:
    """Refuse a yellow time that leaves no green in the control interval."""
    if not 0 <= yellow_seconds < control_interval:
        raise ValueError(f"yellow_seconds must be in [0, control_interval={control_interval}), got {yellow_seconds}")


def resolve_timing(timing: str, control_interval: int | None, yellow_seconds: int | None) -> tuple[int, int]:
    """``(control_interval, yellow_seconds)`` of a timing preset, either overridden where given."""
    if timing not in TIMINGS:
        raise ValueError(f"timing must be one of {', '.join(TIMINGS)}, got {timing!r}")
    interval, yellow = TIMINGS[timing]
    interval = interval if control_interval is None else control_interval
    yellow = yellow if yellow_seconds is None else yellow_seconds
    check_yellow(interval, yellow)
    return interval, yellow


#: marks the :class:`SignalOptions` that set what a signal policy reads and how its actions play out
OBSERVED = {"observed": True}


@dataclass(frozen=True)
class SignalOptions:
    """How every light of an ATSC environment is timed, observed and rewarded: the options all its
    networks share (see :class:`ATSCEnv` for each)."""

    control_interval: int = field(default=TIMINGS["default"][0], metadata=OBSERVED)
    yellow_seconds: int = field(default=TIMINGS["default"][1], metadata=OBSERVED)
    wave_distance: float = field(default=50.0, metadata=OBSERVED)
    wave_scale: float = field(default=5.0, metadata=OBSERVED)
    obs_clip: float = field(default=2.0, metadata=OBSERVED)
    observe_wait: bool = field(default=False, metadata=OBSERVED)
    observe_phase: bool = field(default=False, metadata=OBSERVED)
    wait_scale: float = field(default=60.0, metadata=OBSERVED)
    max_halting: int = 10
    wait_weight: float = 0.0
    teleport_seconds: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_halting", "wave_distance", "wave_scale", "obs_clip", "wait_scale"):
            check_positive(name, getattr(self, name))
        check_yellow(self.control_interval, self.yellow_seconds)

    @property
    def lane_features(self) -> int:
        """Features observed per lane (:func:`lane_feature_count`)."""
        return lane_feature_count(self.observe_wait, self.observe_phase)


#: the options that set what a signal policy reads and how its actions play out (``timing`` and the
#: observed :class:`SignalOptions`): a policy carries them to every network it transfers to (a target's
#: own options still override them); the signal environments register them as ``carried_options``
OBSERVATION_OPTIONS = ("timing", *(f.name for f in fields(SignalOptions) if f.metadata.get("observed")))


def lane_feature_count(observe_wait: bool, observe_phase: bool = False) -> int:
    """Features observed per lane: the wave; the first vehicle's waiting time with ``observe_wait``;
    whether the lane has green now with ``observe_phase``."""
    return 1 + int(observe_wait) + int(observe_phase)
