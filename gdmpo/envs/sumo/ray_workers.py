"""SUMO simulations on Ray actors: :class:`~gdmpo.envs.sumo.workers.SumoWorkers`' interface, cluster-wide.

``env.options.workers: ray`` puts each copy's simulation in a Ray actor instead of a local process.
The actors are spread over the cluster's nodes (Ray's ``SPREAD`` strategy); each answers the same
``(method, args)`` calls as a process worker, so the environment cannot tell the two apart and,
under one seed, both give the same trajectories.

Failures read as they do with processes: an exception inside the simulation comes back as a
:class:`SumoError` with SUMO's words, and the actor keeps serving; an actor that dies (its process
killed, its node lost) is reported with the tail of its SUMO error log, read on the node it ran on,
and is replaced by the next ``reset``. Actors belong to the learner: they end with :meth:`close`,
and Ray ends them with the learner's process if it dies first.

Every node must see the network and route files at the paths the environment was given (a shared
filesystem, or the same checkout on every node).
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any, Callable, Sequence

from gdmpo.distributed import cluster_cpus, connect, ship_by_value
from gdmpo.envs.sumo.workers import SumoError, _failure, answer, answer_timeout

START_TIMEOUT_S = 300.0  # a SUMO simulation that cannot be built in this long is reported as stuck


class SimulationActor:
    """One simulation inside a Ray actor (the actor-side twin of ``workers._serve``)."""

    def __init__(self, factory: Callable[..., Any], args: tuple) -> None:
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as process workers: the learner decides when to stop
        self.simulation = None
        self.failure: tuple[str, str] | None = None
        try:
            self.simulation = factory(*args)
        except Exception as err:  # reported by where(), so the learner raises it as a SumoError
            self.failure = _failure(err)

    def where(self) -> tuple[str, int, str | None, tuple[str, str] | None]:
        """``(node id, process id, path of SUMO's error log, start failure or None)``."""
        import os

        import ray

        return (ray.get_runtime_context().get_node_id(), os.getpid(), getattr(self.simulation, "error_log", None),
                self.failure)

    def run(self, method: str, args: tuple) -> tuple[str, Any]:
        try:
            return "ok", getattr(self.simulation, method)(*args)
        except Exception as err:  # report, keep serving: the env may reset afterwards
            return "error", _failure(err)

    def close(self) -> None:
        if self.simulation is not None and hasattr(self.simulation, "close"):
            self.simulation.close()
        self.simulation = None


def _log_tail(path: str) -> str:
    """The end of a SUMO error log, read on the node that wrote it."""
    try:
        return Path(path).read_text()[-2000:]
    except OSError:
        return ""


class RaySumoWorkers:
    """One Ray actor per entry of ``args_per_worker``, actor w serving the simulation built by
    ``factory(*args_per_worker[w])`` on some node.

    Args:
        factory, args_per_worker: as for :class:`~gdmpo.envs.sumo.workers.SumoWorkers`.
        cpus_per_worker: the Ray ``num_cpus`` of each actor (fractions allowed); the cluster must offer
            ``count × cpus_per_worker`` CPUs, checked before any actor starts.
        address: the cluster to join when not connected yet (None: ``RAY_ADDRESS`` or a local one).
    """

    def __init__(self, factory: Callable[..., Any], args_per_worker: Sequence[tuple], cpus_per_worker: float = 1.0,
                 address: str | None = None) -> None:
        count = len(args_per_worker)
        ray = connect(address)
        needed, offered = count * cpus_per_worker, cluster_cpus()
        if needed > offered:
            raise SumoError(f"{count} SUMO actors x {cpus_per_worker:g} CPU need {needed:g} CPUs but the Ray cluster "
                            f"offers {offered:g}: add nodes, or lower env.options.worker_cpus (e.g. "
                            f"{offered / count:.2g})")
        ship_by_value(factory)
        self._actor_class = ray.remote(SimulationActor).options(
            num_cpus=cpus_per_worker, scheduling_strategy="SPREAD", max_restarts=0)
        self._factory, self._args = factory, list(args_per_worker)
        self._actors: list[Any] = [None] * count
        self._nodes: list[str | None] = [None] * count
        self._pids: list[int | None] = [None] * count
        self._logs: list[str | None] = [None] * count
        for index in range(count):
            self._start(index)
        self._finalizer = weakref.finalize(self, _shutdown, self._actors)

    def __len__(self) -> int:
        return len(self._actors)

    @property
    def nodes(self) -> list[str | None]:
        """The Ray node id each copy's simulation runs on."""
        return list(self._nodes)

    @property
    def pids(self) -> list[int | None]:
        """The process id of each copy's actor (on its node)."""
        return list(self._pids)

    def _start(self, index: int) -> None:
        import ray

        actor = self._actor_class.remote(self._factory, self._args[index])
        self._actors[index] = actor
        try:
            node, pid, log, failure = ray.get(actor.where.remote(), timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise SumoError(f"SUMO actor {index} did not start within {START_TIMEOUT_S:.0f} s (is the Ray cluster "
                            "short of CPUs for it?)") from None
        except ray.exceptions.RayActorError as err:
            raise SumoError(f"SUMO actor {index} died while starting: {_death_reason(err)}") from None
        self._nodes[index], self._pids[index], self._logs[index] = node, pid, log
        if failure is not None:
            answer(index, "start", "error", failure)

    def alive(self, index: int) -> bool:
        """Whether actor ``index`` answers (one round trip: only asked at resets, never per step)."""
        import ray

        actor = self._actors[index]
        if actor is None:
            return False
        try:
            ray.get(actor.where.remote(), timeout=30)
            return True
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
            return False

    def restart_dead(self, indices: Sequence[int]) -> None:
        """Start a fresh actor in place of each dead one among ``indices``."""
        for index in indices:
            if not self.alive(index):
                _kill(self._actors[index])
                self._start(index)

    def call(self, method: str, args_per_worker: Sequence[tuple], indices: Sequence[int] | None = None) -> list[Any]:
        """Call ``method`` on the actors ``indices`` (default all) at once; return their results in order."""
        import ray

        indices = list(range(len(self))) if indices is None else list(indices)
        timeout = answer_timeout()
        refs = []
        for index, args in zip(indices, args_per_worker):
            if self._actors[index] is None:
                raise SumoError(f"SUMO actor {index} is not running (the environment's next reset() starts a new one)")
            refs.append(self._actors[index].run.remote(method, args))
        try:
            answers = ray.get(refs, timeout=timeout)  # one wait for all: the actors run at the same time
        except ray.exceptions.RayActorError:
            answers = None
        except ray.exceptions.GetTimeoutError:
            late = [index for index, ref in zip(indices, refs) if not ray.wait([ref], timeout=0)[0]]
            for index in late:  # stuck simulations: stop them rather than wait for ever
                _kill(self._actors[index])
                self._actors[index] = None
            raise SumoError(f"SUMO actor(s) {', '.join(map(str, late))} did not answer {method!r} within {timeout:g} s "
                            "and were stopped (GDMPO_WORKER_TIMEOUT sets the limit; the environment's next reset() "
                            "starts new ones)") from None
        results = []
        for position, index in enumerate(indices):
            try:
                status, payload = answers[position] if answers is not None else ray.get(refs[position])
            except ray.exceptions.RayActorError as err:
                raise SumoError(self._death_message(index, method, err)) from None
            results.append(answer(index, method, status, payload))
        return results

    def _death_message(self, index: int, method: str, err: Exception) -> str:
        """What to tell when actor ``index`` died: Ray's reason and SUMO's log, read on the actor's node."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        message = (f"SUMO actor {index} on Ray node {(self._nodes[index] or '?')[:12]} died during {method!r} "
                   f"({_death_reason(err)}; the environment's next reset() starts a new one)")
        log = self._logs[index]
        if log and self._nodes[index]:
            reader = ray.remote(_log_tail).options(
                num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(self._nodes[index], soft=False))
            try:
                tail = ray.get(reader.remote(log), timeout=30).strip()
            except Exception:  # the node itself may be gone
                tail = ""
            message += f". SUMO's error log ({log}): {' '.join(tail.split()) if tail else '(empty)'}"
        return message

    def close(self) -> None:
        """Close every simulation, then end the actors. Safe to call twice."""
        self._finalizer()


def _death_reason(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return next((line for line in lines if "died" in line.lower() or "exit" in line.lower()), lines[0] if lines else "")


def _kill(actor: Any) -> None:
    if actor is None:
        return
    import ray

    try:
        ray.kill(actor)
    except Exception:  # already gone, or Ray itself is shutting down
        pass


def _shutdown(actors: list[Any]) -> None:
    try:
        import ray

        if not ray.is_initialized():
            return
        closing = [actor.close.remote() for actor in actors if actor is not None]
        ray.wait(closing, num_returns=len(closing), timeout=10)  # SUMO closes cleanly where it can
    except Exception:
        pass
    for index, actor in enumerate(actors):
        _kill(actor)
        actors[index] = None

