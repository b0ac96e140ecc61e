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


class SumoSimulation:
    """One SUMO run inside a worker process: backend, private work directory, error log, start/close.

    ``spec`` is a picklable dict; it must hold ``backend`` (``libsumo`` or ``traci``) and may hold
    ``workdir`` (the folder in which to make this simulation's own directory).
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        if spec["backend"] == "libsumo":
            import libsumo as sim
        elif spec["backend"] == "traci":
            import traci as sim
        else:
            raise ValueError(f"backend must be 'libsumo' or 'traci', got {spec['backend']!r}")
        self.sim = sim
        root = spec.get("workdir")
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
    """``B`` copies of a SUMO task, one worker process each, stepped in parallel.

    Subclasses set their spaces and graph, then call :meth:`_start_workers` with the picklable spec
    their :class:`SumoSimulation` class is built from. ``episode_traffic[b]`` keeps the
    :meth:`SumoSimulation.metrics` of copy b's last finished episode.
    """

    simulation_class: type[SumoSimulation]

    def _start_workers(self, spec: dict[str, Any], workers: str = "process", worker_cpus: float = 1.0) -> None:
        """Start one worker per copy: a local process (``workers="process"``) or a Ray actor (``"ray"``,
        ``worker_cpus`` Ray CPUs each), both behind the same interface."""
        check_worker_kind(workers)
        self._tmp = tempfile.TemporaryDirectory(prefix="gdmpo-sumo-")  # workers' files; gone at close()
        spec["workdir"] = self._tmp.name  # where it exists: a Ray actor on another node uses its own temp dir
        self.simulation_spec = spec  # what each worker's simulation is built from (picklable)
        if workers == "ray":
            from gdmpo.envs.sumo.ray_workers import RaySumoWorkers

            self.workers = RaySumoWorkers(self.num_envs, self.simulation_class, (spec,), worker_cpus)
        else:
            self.workers = SumoWorkers(self.num_envs, self.simulation_class, (spec,))
        self._obs = torch.zeros(self.num_envs, self.num_agents, self.obs_dim, device=self.device)
        self.episode_traffic: list[dict[str, float]] = [{} for _ in range(self.num_envs)]

    def _reset_envs(self, mask: torch.Tensor) -> torch.Tensor:
        indices = mask.nonzero(as_tuple=True)[0].tolist()
        finished = [i for i in indices if self._episode_length is not None and self._episode_length[i] > 0
                    and self.workers.alive(i)]
        for index, figures in zip(finished, self.workers.call("metrics", [()] * len(finished), finished)):
            self.episode_traffic[index] = figures
        self.workers.restart_dead(indices)
        seeds = torch.randint(0, 2**31 - 1, (len(indices),), generator=self._generator).tolist()
        results = self.workers.call("reset", [(s,) for s in seeds], indices)
        for index, result in zip(indices, results):
            self._obs[index] = torch.tensor(result[0], device=self.device)  # a copy: Ray hands read-only arrays
        return self._obs.clone()

    def _step_workers(self, actions: list) -> tuple[torch.Tensor, torch.Tensor, list[tuple]]:
        """Send each copy its row of ``actions``; return stacked ``obs [B, n, d]``, ``reward [B, n]``
        and, per copy, whatever else its simulation's ``step`` returned."""
        results = self.workers.call("step", [(row,) for row in actions])
        obs = torch.from_numpy(np.stack([r[0] for r in results])).to(self.device)
        reward = torch.from_numpy(np.stack([r[1] for r in results])).to(self.device)
        self._obs = obs.clone()
        return obs, reward, [tuple(r[2:]) for r in results]

    def traffic_metrics(self) -> list[dict[str, float]]:
        """Per copy, the current episode's figures (see :meth:`SumoSimulation.metrics`)."""
        return self.workers.call("metrics", [()] * self.num_envs)

    def close(self) -> None:
        if hasattr(self, "workers"):
            self.workers.close()
            self._tmp.cleanup()
