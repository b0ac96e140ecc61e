"""What every SUMO environment shares: the per-copy simulation's life cycle and the vector of workers.

A SUMO environment is two classes. A :class:`SumoSimulation` subclass lives in a worker process and
drives one SUMO run (``reset(seed)`` and ``step(actions)`` return numpy arrays); a
:class:`SumoVecEnv` subclass lives in the learner's process, keeps one worker per copy
(:class:`~gdmpo.envs.sumo.workers.SumoWorkers`), validates actions and turns answers into tensors.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gdmpo.envs.base import NetworkedVecEnv
from gdmpo.envs.sumo.workers import SumoError, SumoWorkers
from gdmpo.graph.sumo import sumo_binary


def timed_step(step):
    """Decorate a simulation's ``step`` to add its wall time to ``step_seconds``."""

    def wrapper(self, *args):
        start = time.perf_counter()
        try:
            return step(self, *args)
        finally:
            self.step_seconds += time.perf_counter() - start

    wrapper.__doc__, wrapper.__name__ = step.__doc__, step.__name__
    return wrapper


BACKENDS = ("libsumo", "traci")


@dataclass(frozen=True, kw_only=True)
class SimulationSpec:
    """What a worker builds its :class:`SumoSimulation` from: plain, picklable, read-only data (it
    crosses process and machine boundaries). Each task's spec adds its own fields."""

    backend: str = "libsumo"  # libsumo (fast, in-process) or traci (a SUMO subprocess)
    sumo_options: tuple[str, ...] = ()  # extra SUMO command-line options
    workdir: str | None = None  # the folder in which the simulation makes its own directory

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be 'libsumo' or 'traci', got {self.backend!r}")


class SumoSimulation:
    """One SUMO run inside a worker process: backend, private work directory, error log, start/close."""

    def __init__(self, spec: SimulationSpec) -> None:
        self.spec = spec
        if spec.backend == "libsumo":
            import libsumo as sim
        else:
            import traci as sim
        self.sim = sim
        root = spec.workdir
        self.workdir = tempfile.mkdtemp(prefix="gdmpo-sumo-worker-", dir=root if root and os.path.isdir(root) else None)
        self.error_log = os.path.join(self.workdir, "sumo-errors.log")
        self.running = False
        self.step_seconds = 0.0  # wall time spent inside step() (benchmarks: the environment's overhead)

    def busy_seconds(self) -> float:
        """Seconds this simulation has spent in :meth:`step` since it was built."""
        return self.step_seconds

    def start(self, args: list[str]) -> None:
        """Start SUMO with ``args`` (or reload the running one: much faster than a restart)."""
        args = [*args, "--no-step-log", "true", "--no-warnings", "true", "--error-log", self.error_log]
        try:
            if self.running:
                self.sim.load(args)
            else:
                self.sim.start([sumo_binary("sumo"), *args])
                self.running = True
        except Exception as err:
            self.running = False
            named = {"-n": "network", "-r": "routes", "-c": "configuration"}
            files = ", ".join(f"{named[flag]} {value}" for flag, value in zip(args, args[1:]) if flag in named)
            said = " ".join((self.stderr().strip() or str(err)).split())
            raise SumoError(f"SUMO could not start ({files}): {said}") from None

    def stderr(self) -> str:
        """The tail of SUMO's error log (for error messages)."""
        try:
            return Path(self.error_log).read_text()[-2000:]
        except OSError:
            return ""

    def metrics(self) -> dict[str, float]:
        """Figures of the episode so far for reports (none by default)."""
        return {}

    @staticmethod
    def combine_metrics(parts: list[dict[str, float]]) -> dict[str, float]:
        """One copy's figures from those of its parts (simulations of one copy); a single part's as they are."""
        if len(parts) != 1:
            raise NotImplementedError("this simulation has no rule to combine the figures of several parts")
        return parts[0]

    def close(self) -> None:
        if self.running:
            try:
                self.sim.close()
            except Exception:
                pass
            self.running = False
        shutil.rmtree(self.workdir, ignore_errors=True)


WORKER_KINDS = ("process", "ray")


def check_worker_kind(workers: str) -> None:
    """Refuse an unknown ``env.options.workers`` before anything is built."""
    if workers not in WORKER_KINDS:
        raise ValueError(f"workers must be one of {', '.join(WORKER_KINDS)}, got {workers!r}")


class SumoVecEnv(NetworkedVecEnv):
    """``B`` copies of a SUMO task, stepped in parallel by worker processes.

    Subclasses set their spaces and graph, then call :meth:`_start_workers` with the picklable spec
    their :class:`SumoSimulation` class is built from. A copy may also be made of several *parts*,
    separate simulations (e.g. different road networks) whose agents follow one another in the
    copy's agent axis: one spec per part, one worker per copy and part (worker ``b·K + k`` runs part
    k of copy b). ``episode_traffic[b]`` keeps copy b's last finished episode's figures
    (:meth:`SumoSimulation.metrics`, its parts' combined by :meth:`SumoSimulation.combine_metrics`).
    """

    simulation_class: type[SumoSimulation]

    def _start_workers(self, specs: SimulationSpec | list[SimulationSpec], workers: str = "process",
                       worker_cpus: float = 1.0, part_sizes: list[int] | None = None) -> None:
        """Start one worker per copy and part: a local process (``workers="process"``) or a Ray actor
        (``"ray"``, ``worker_cpus`` Ray CPUs each), both behind the same interface. ``part_sizes``:
        the agents of each part (default: one part holding all agents)."""
        check_worker_kind(workers)
        specs = [specs] if isinstance(specs, SimulationSpec) else list(specs)
        self.part_sizes = list(part_sizes) if part_sizes is not None else [self.num_agents]
        if len(self.part_sizes) != len(specs) or sum(self.part_sizes) != self.num_agents:
            raise ValueError(f"{len(specs)} simulation specs for parts of {self.part_sizes} agents "
                             f"({self.num_agents} in all)")
        self._part_bounds = np.cumsum([0, *self.part_sizes]).tolist()
        self._tmp = tempfile.TemporaryDirectory(prefix="gdmpo-sumo-")  # workers' files; gone at close()
        # where it exists: a Ray actor on another node uses its own temp dir
        specs = [replace(spec, workdir=self._tmp.name) for spec in specs]
        self.simulation_specs = specs  # what each part's simulation is built from (picklable)
        self.simulation_spec = specs[0]
        args = [(specs[k],) for _ in range(self.num_envs) for k in range(len(specs))]
        if workers == "ray":
            from gdmpo.envs.sumo.ray_workers import RaySumoWorkers

            self.workers = RaySumoWorkers(self.simulation_class, args, worker_cpus)
        else:
            self.workers = SumoWorkers(self.simulation_class, args)
        self._obs = torch.zeros(self.num_envs, self.num_agents, self.obs_dim, device=self.device)
        self.episode_traffic: list[dict[str, float]] = [{} for _ in range(self.num_envs)]

    @property
    def num_parts(self) -> int:
        return len(self.part_sizes)

    def _workers_of(self, copies: list[int]) -> list[int]:
        """The worker indices of ``copies``' parts, copy by copy."""
        k = self.num_parts
        return [b * k + part for b in copies for part in range(k)]

    def _per_copy(self, answers: list[Any]) -> list[list[Any]]:
        """Worker answers (copy by copy, part by part) grouped per copy."""
        k = self.num_parts
        return [answers[i:i + k] for i in range(0, len(answers), k)]

    def _reset_envs(self, mask: torch.Tensor) -> torch.Tensor:
        indices = mask.nonzero(as_tuple=True)[0].tolist()
        finished = [i for i in indices if self._episode_length is not None and self._episode_length[i] > 0
                    and all(self.workers.alive(w) for w in self._workers_of([i]))]
        workers = self._workers_of(finished)
        figures = self.workers.call("metrics", [()] * len(workers), workers)
        for index, parts in zip(finished, self._per_copy(figures)):
            self.episode_traffic[index] = self.simulation_class.combine_metrics(parts)
        workers = self._workers_of(indices)
        self.workers.restart_dead(workers)
        seeds = torch.randint(0, 2**31 - 1, (len(workers),), generator=self._generator,
                              device=self._generator.device).tolist()
        results = self.workers.call("reset", [(s,) for s in seeds], workers)
        for index, parts in zip(indices, self._per_copy(results)):  # copies: Ray hands read-only arrays
            self._obs[index] = torch.tensor(np.concatenate([part[0] for part in parts]), device=self.device)
        return self._obs.clone()

    def _step_workers(self, actions: list) -> tuple[torch.Tensor, torch.Tensor, list[tuple]]:
        """Send each worker its part of its copy's row of ``actions``; return ``obs [B, n, d]`` and
        ``reward [B, n]`` (parts joined along the agent axis) and, per worker, whatever else its
        simulation's ``step`` returned."""
        bounds = self._part_bounds
        args = [(row[bounds[k]:bounds[k + 1]],) for row in actions for k in range(self.num_parts)]
        results = self.workers.call("step", args)
        copies = self._per_copy(results)
        obs = torch.from_numpy(np.stack([np.concatenate([r[0] for r in parts]) for parts in copies]))
        reward = torch.from_numpy(np.stack([np.concatenate([r[1] for r in parts]) for parts in copies]))
        self._obs = obs.to(self.device)
        return self._obs.clone(), reward.to(self.device), [tuple(r[2:]) for r in results]

    def episode_figures(self, copies: list[int]) -> list[dict[str, float]]:
        """The traffic figures of the episode each of ``copies`` finished last."""
        return [self.episode_traffic[i] for i in copies]

    def traffic_metrics(self) -> list[dict[str, float]]:
        """Per copy, the current episode's figures (see :meth:`SumoSimulation.metrics`)."""
        answers = self.workers.call("metrics", [()] * len(self.workers))
        return [self.simulation_class.combine_metrics(parts) for parts in self._per_copy(answers)]

    def close(self) -> None:
        if hasattr(self, "workers"):
            self.workers.close()
            self._tmp.cleanup()
        super().close()
