"""SUMO simulations in worker processes, stepped in parallel behind one call.

libsumo runs one simulation per process, so a vector of ``B`` SUMO environments keeps ``B`` worker
processes, each holding one *simulation object* built from a picklable factory. The environment
sends the same method call to all (or some) workers, then gathers the answers: the simulations
advance at the same time on different cores.

A worker that raises sends the error back (with SUMO's stderr where there is one) and keeps running;
a worker that dies is reported with its exit code and is restarted by the next ``reset``. Workers are
daemon processes, stopped by :meth:`SumoWorkers.close` (also at garbage collection and interpreter
exit), so no SUMO process outlives its environment. A worker also ends on its own within
``PARENT_CHECK_SECONDS`` when its parent dies without closing it (``kill -9``): it waits for requests
in short polls and leaves once its parent process is gone. Workers ignore SIGINT: Ctrl-C in a
terminal reaches the whole process group, and it is the learner that decides to close them.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import traceback
import weakref
from multiprocessing.connection import Connection
from typing import Any, Callable, Sequence


PARENT_CHECK_SECONDS = 1.0
#: longest wait for one worker's answer (s) before it is stopped and reported; ``GDMPO_WORKER_TIMEOUT`` overrides
#: it (loading a large city or stepping a long control interval takes seconds, never many minutes)
DEFAULT_ANSWER_TIMEOUT = 900.0


def answer_timeout() -> float:
    """The answer timeout in seconds: ``GDMPO_WORKER_TIMEOUT`` where set (a positive number), else the default."""
    text = os.environ.get("GDMPO_WORKER_TIMEOUT", "")
    if not text:
        return DEFAULT_ANSWER_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ValueError(f"GDMPO_WORKER_TIMEOUT must be a number of seconds > 0, got {text!r}")
    return value


class SumoError(RuntimeError):
    """A SUMO simulation failed or its worker process died.

    ``str(error)`` is the message (SUMO's own words where it gave some); ``worker_traceback`` holds
    the worker's Python traceback, for debugging.
    """

    def __init__(self, message: str, worker_traceback: str = "") -> None:
        super().__init__(message)
        self.worker_traceback = worker_traceback


def answer(index: int, method: str, status: str, payload: Any) -> Any:
    """A worker's ``(status, payload)`` reply to ``method``: the payload, or its failure as a :class:`SumoError`."""
    if status == "error":
        message, worker_traceback = payload
        raise SumoError(f"SUMO worker {index} failed in {method!r}: {message}", worker_traceback)
    return payload


def _failure(err: BaseException) -> tuple[str, str]:
    """``(message, traceback)`` of an exception raised in the worker, to send to the learner."""
    message = str(err) if isinstance(err, SumoError) else f"{type(err).__name__}: {err}"
    return message.rstrip(), traceback.format_exc()


def _serve(conn: Connection, factory: Callable[..., Any], args: tuple, parent_pid: int) -> None:
    """Worker main loop: build the simulation, then answer ``(method, args)`` requests until ``close``
    or until the parent process is gone."""
    # Ctrl-C and SIGTERM reach the whole process group: the learner handles them and closes its workers
    # (their folders with them); a learner that dies without closing them is noticed below
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    simulation = None
    try:
        simulation = factory(*args)
        conn.send(("ok", None))
        while True:
            while not conn.poll(PARENT_CHECK_SECONDS):
                if os.getppid() != parent_pid:  # re-parented: the learner died without closing us
                    return
            method, call_args = conn.recv()
            if method == "close":
                break
            try:
                conn.send(("ok", getattr(simulation, method)(*call_args)))
            except Exception as err:  # report, keep serving: the env may reset afterwards
                conn.send(("error", _failure(err)))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        pass
    except Exception as err:
        try:
            conn.send(("error", _failure(err)))
        except OSError:
            pass
    finally:
        if simulation is not None and hasattr(simulation, "close"):
            try:
                simulation.close()
            except Exception:
                pass
        conn.close()


class SumoWorkers:
    """One worker process per entry of ``args_per_worker``, worker w serving the simulation built by
    ``factory(*args_per_worker[w])``.

    Args:
        factory: picklable callable that builds the simulation inside the worker.
        args_per_worker: its (picklable) arguments, one tuple per worker: workers may simulate
            different networks.
    """

    def __init__(self, factory: Callable[..., Any], args_per_worker: Sequence[tuple]) -> None:
        self._context = mp.get_context(_start_method())
        self._factory, self._args = factory, list(args_per_worker)
        count = len(self._args)
        self._processes: list[Any] = [None] * count
        self._pipes: list[Connection | None] = [None] * count
        for index in range(count):
            self._start(index)
        self._finalizer = weakref.finalize(self, _shutdown, self._processes, self._pipes)

    def __len__(self) -> int:
        return len(self._processes)

    def _start(self, index: int) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child, self._factory, self._args[index], os.getpid()),
                                        daemon=True, name=f"gdmpo-sumo-{index}")
        process.start()
        child.close()
        self._processes[index], self._pipes[index] = process, parent
        self._receive(index, "start", answer_timeout())

    def alive(self, index: int) -> bool:
        process = self._processes[index]
        return process is not None and process.is_alive()

    def restart_dead(self, indices: Sequence[int]) -> None:
        """Start a fresh worker in place of each dead one among ``indices``."""
        for index in indices:
            if not self.alive(index):
                self._stop(index)
                self._start(index)

    def call(self, method: str, args_per_worker: Sequence[tuple], indices: Sequence[int] | None = None) -> list[Any]:
        """Call ``method`` on the workers ``indices`` (default all) at once; return their results in order."""
        indices = list(range(len(self))) if indices is None else list(indices)
        timeout = answer_timeout()  # read before anything is sent: a bad setting leaves no answer pending
        for index, args in zip(indices, args_per_worker):
            pipe = self._pipes[index]
            if pipe is None or not self.alive(index):
                raise SumoError(f"SUMO worker {index} is not running (exit code "
                                f"{getattr(self._processes[index], 'exitcode', None)}; the environment's next reset() starts a new one)")
            pipe.send((method, args))
        return [self._receive(index, method, timeout) for index in indices]

    def _receive(self, index: int, method: str, timeout: float) -> Any:
        pipe = self._pipes[index]
        try:
            if not pipe.poll(timeout):  # a simulation stuck at full CPU: stop it rather than wait for ever
                self._stop(index)
                raise SumoError(f"SUMO worker {index} did not answer {method!r} within {timeout:g} s and was stopped "
                                "(GDMPO_WORKER_TIMEOUT sets the limit; the environment's next reset() starts a new one)")
            status, payload = pipe.recv()
        except (EOFError, ConnectionResetError, OSError):
            process = self._processes[index]
            process.join(timeout=5)
            raise SumoError(f"SUMO worker {index} died during {method!r} (exit code {process.exitcode}; the "
                            "environment's next reset() starts a new one)") from None
        return answer(index, method, status, payload)

    def _stop(self, index: int) -> None:
        _stop_one(self._processes[index], self._pipes[index])
        self._processes[index], self._pipes[index] = None, None

    def close(self) -> None:
        """Stop every worker (their simulations close first). Safe to call twice."""
        self._finalizer()


def _start_method() -> str:
    """``fork`` where the platform has it: a worker starts at once, without re-importing torch (and
    without re-running the user's script, so no ``__main__`` guard is needed). Workers only run SUMO
    and numpy code, never torch, so the usual fork-after-threads hazards do not reach them."""
    return "fork" if "fork" in mp.get_all_start_methods() else "spawn"


def _stop_one(process: Any, pipe: Connection | None) -> None:
    if pipe is not None:
        try:
            pipe.send(("close", ()))
        except (OSError, BrokenPipeError):
            pass
    if process is not None:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)
    if pipe is not None:
        pipe.close()


def _shutdown(processes: list[Any], pipes: list[Connection | None]) -> None:
    for index, (process, pipe) in enumerate(zip(processes, pipes)):
        _stop_one(process, pipe)
        processes[index], pipes[index] = None, None
