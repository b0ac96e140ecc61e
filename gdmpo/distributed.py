"""Running jobs side by side: Ray, the one distributed engine gdmpo builds on, or local processes.

Ray is an optional dependency (``pip install gdmpo[ray]``). Two things use it: ``gdmpo sweep`` and the
benchmarks, which run whole training runs as tasks (:func:`run_each`: Ray tasks, or without Ray a pool of
local processes), and ``env.options.workers: ray``, which places SUMO simulations on Ray actors
(:mod:`gdmpo.envs.sumo.ray_workers`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Iterator, Sequence

from gdmpo.threads import available_cpus


class RayUnavailableError(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached."""


def require_ray() -> Any:
    """The ``ray`` module, or a clear error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RayUnavailableError("this needs Ray, an optional dependency: pip install 'gdmpo[ray]'") from None
    return ray


def connect(address: str | None = None) -> Any:
    """Join the Ray cluster at ``address`` (or ``RAY_ADDRESS``), or start a local one sized to this machine.

    Inside a Ray task or actor, and after an earlier call, the running connection is used as it is.
    Returns the ``ray`` module.
    """
    ray = require_ray()
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address:
            check_reachable(address)
            ray.init(address=address, **options)
        else:  # RAY_ADDRESS, when set, is honoured by ray.init itself
            if not os.environ.get("RAY_ADDRESS"):
                options["num_cpus"] = available_cpus()
            ray.init(**options)
    except ConnectionError as err:
        raise RayUnavailableError(f"could not reach the Ray cluster at {address or 'RAY_ADDRESS'}: {err}") from None
    except Exception as err:
        if "AuthToken" not in str(err) and "Authentication" not in type(err).__name__:
            raise
        raise RayUnavailableError(f"the Ray cluster at {address or 'RAY_ADDRESS'} refused this process's token: "
                                  "set RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN, or "
                                  "~/.ray/auth_token) here as on its nodes (docs/scaling.md)") from None
    return ray


#: seconds to wait for a cluster's head node to accept a connection before giving up
CONNECT_TIMEOUT_SECONDS = 10.0


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
    """Fail within ``timeout`` seconds where nothing accepts connections at ``host:port`` (or
    ``ray://host:port``); Ray itself would retry for minutes, deaf to Ctrl-C and SIGTERM. ``auto`` and
    other forms are left to Ray."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as err:
        reason = "timed out" if isinstance(err, socket.timeout) else (err.strerror or str(err))
        raise RayUnavailableError(f"could not reach the Ray cluster at {address} ({reason} after waiting up to "
                                  f"{timeout:g} s for its head node): start it with `ray start --head` there, or "
                                  "check the address and port") from None


def cluster_cpus() -> float:
    """CPUs the connected cluster offers in all (its nodes' ``CPU`` resources)."""
    return float(require_ray().cluster_resources().get("CPU", 0.0))


def ship_by_value(fn: Callable[..., Any]) -> None:
    """Let Ray workers run ``fn`` (a function or class) even where its module is not importable there
    (a benchmark script): its module is then pickled with it instead of imported by name. A wrapper
    (``__wrapped__``, as ``functools.wraps`` and :class:`gdmpo.run_lock.SkipLocked` set) ships what it wraps."""
    while fn is not None:
        module = sys.modules.get(fn.__module__)
        if module is not None and fn.__module__ != "__main__" and not fn.__module__.startswith("gdmpo"):
            require_ray().cloudpickle.register_pickle_by_value(module)
        fn = getattr(fn, "__wrapped__", None)


def map_unordered(fn: Callable[[Any], Any], items: Sequence[Any], cpus_per_item: float = 1.0,
                  retries: int = 2) -> Iterator[Any]:
    """Run ``fn(item)`` for every item as Ray tasks on the connected cluster; yield each result as it
    finishes.

    A task whose worker process dies (a killed process, a lost node) is run again up to ``retries``
    times; ``fn`` is expected to resume its own work (training runs resume from their checkpoints).
    An exception raised by ``fn`` itself is not retried: it is raised here.
    """
    ray = require_ray()
    ship_by_value(fn)

    def task(item: Any) -> Any:  # Ray makes tasks of functions only; fn may be any callable
        return fn(item)

    remote = ray.remote(task).options(num_cpus=cpus_per_item, max_retries=retries, retry_exceptions=False)
    pending = [remote.remote(item) for item in items]
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        for ref in pending:  # stopped early (an error, Ctrl-C): do not leave runs going on the cluster
            ray.cancel(ref, force=True)


def map_processes(fn: Callable[[Any], Any], items: Sequence[Any], workers: int) -> Iterator[Any]:
    """Run ``fn(item)`` for every item in ``workers`` local processes; yield each result as it finishes.

    Stopping early (an error, Ctrl-C, SIGTERM) stops the processes too: they would otherwise train on,
    orphaned, and skew every timing taken afterwards on the machine. ``fn`` must be importable by name
    (the processes are spawned).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # not multiprocessing.Pool: its daemonic workers could not start the SUMO worker processes
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
    try:
        for future in as_completed([pool.submit(fn, item) for item in items]):
            yield future.result()
    except BaseException:
        for process in list(getattr(pool, "_processes", {}).values()):  # the executor offers no public kill
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        signal.signal(signal.SIGTERM, previous)


def run_each(fn: Callable[[Any], Any], items: Sequence[Any], *, processes: int | None = None,
             address: str | None = None, cpus_per_item: float = 1.0, retries: int = 2) -> Iterator[Any]:
    """The one runner of sweeps and benchmarks: ``fn(item)`` for every item, each result as it finishes.

    With ``processes`` in that many local processes (no Ray needed); otherwise as Ray tasks on the
    cluster at ``address`` (None: ``RAY_ADDRESS``, else a local Ray), ``cpus_per_item`` CPUs each and
    ``retries`` reruns of a task whose process died (:func:`map_unordered`).
    """
    if processes is not None:
        yield from map_processes(fn, items, processes)
        return
    connect(address)
    yield from map_unordered(fn, items, cpus_per_item, retries)
