"""CPU threads that never oversubscribe the cores nor spin on them.

Two habits of PyTorch's CPU defaults hurt on small shared machines, measured on this project's 2-core
machines: OpenMP's *active* wait policy makes an idle thread spin for its partner, so with any other
busy process on the cores (the learner's own SUMO workers, a second run) 2 threads ran 2.6x *slower*
than 1; and the default thread count is the machine's cores, not the ones this process may use
(CPU affinity, a container's CPU quota).

- ``OMP_WAIT_POLICY=PASSIVE`` is set when gdmpo is imported, unless the user set it: OpenMP reads it
  once, when torch loads its runtime, so it only takes effect if gdmpo is imported before torch (the
  ``gdmpo`` command always is; in a script, ``import gdmpo`` first). It is a trade-off, measured here
  on a DMPO update (M = 1024, T = 25, 10 epochs, 2 threads): idle machine 3.8 s passive vs 2.9 s
  active; with one busy process beside it 6.2 s passive vs 13.1 s active (and 8.4 / 28.9 s with
  libgomp spin counts of 1e4 / 1e5). Passive never collapses; on a machine of your own, with nothing
  else running, ``OMP_WAIT_POLICY=ACTIVE`` buys back about 1.3x.
- :func:`configure_threads` sets torch's intra-op threads to the CPUs this process may actually use
  (``threads: null`` in a run config), or to the number the config names.
- Small work runs on one thread (:func:`single_thread`, :func:`threads_for`): waking a sleeping partner
  costs more than it saves on small tensors. Measured on the shipped Catch-up DMPO config, idle
  machine (``benchmarks/dmpo_iteration.py --config configs/cacc-catchup/dmpo.yaml --threads 1|2``):
  the 600-step real episode took 0.50 s on 1 thread and 1.16 s on 2, the model fit 0.89 vs 2.00 s, a PPO
  update on the real episode (1,200 rows per minibatch) 0.21 vs 0.41 s, while the update on model data
  (12,800 rows) gained only 1.1x; at the paper's M = 2048 (102,400 rows) 2 threads gain 1.6-1.8x. So a
  training iteration runs on one thread and only PPO updates of at least ``PARALLEL_MIN_ROWS`` rows per
  minibatch use the configured threads.
- Independent work runs side by side (:func:`side_by_side`): a PPO update's policy steps and critic
  steps share only their (read-only) data, so with two threads each runs its own loop on one core,
  with no synchronisation per operation at all. Same results bit for bit, and measured on the shipped
  Catch-up DMPO config (12,800 rows per minibatch, where two threads per operation gained only 1.1x)
  1.4-1.9x faster than the two loops in turn.
"""

from __future__ import annotations

import math
import os
import platform
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TypeVar

WAIT_POLICY_VARIABLE = "OMP_WAIT_POLICY"
PARALLEL_MIN_ROWS = 16384  # rows (agent-samples) per minibatch from which a PPO update uses every thread
_configured: int | None = None  # the count configure_threads set (None: torch's own)
First = TypeVar("First")
Second = TypeVar("Second")


def set_passive_wait_policy() -> None:
    """Make OpenMP threads sleep instead of spinning while they wait (unless the user chose otherwise)."""
    os.environ.setdefault(WAIT_POLICY_VARIABLE, "PASSIVE")


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup (container) CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def cpuinfo_field(name: str) -> str:
    """The first ``name`` line of ``/proc/cpuinfo`` (e.g. ``"model name"``, ``"flags"``), without its key;
    ``""`` where there is none (not Linux, or no such field)."""
    try:
        with open("/proc/cpuinfo") as handle:
            return next((line.split(":", 1)[1].strip() for line in handle
                         if line.startswith(name) and ":" in line), "")
    except OSError:
        return ""


def machine_description() -> str:
    """The processor and the CPUs this process may use, e.g. ``"AMD EPYC 7B13, 2 CPUs"``: recorded with a
    run's result, since a seed's trajectory and a run's wall-clock both depend on the machine."""
    model = cpuinfo_field("model name") or platform.processor() or platform.machine() or "unknown processor"
    return f"{model}, {available_cpus()} CPUs"


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads`` (None: :func:`available_cpus`); returns the number set."""
    import torch

    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1 or null (all available CPUs), got {threads}")
    global _configured
    count = available_cpus() if threads is None else threads
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    _configured = count
    return count


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if before != count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def single_thread() -> AbstractContextManager[None]:
    """Run the block on one torch thread (small work: a training iteration's collection, model fit,
    rollouts), whatever :func:`configure_threads` chose."""
    return _torch_threads(1)


def _configured_threads() -> int:
    """The threads :func:`configure_threads` chose, else torch's current count."""
    import torch

    return _configured if _configured is not None else torch.get_num_threads()


def threads_for(rows: int) -> AbstractContextManager[None]:
    """Run the block on the configured threads if it works on at least ``PARALLEL_MIN_ROWS`` rows at
    a time, else on one."""
    return _torch_threads(_configured_threads() if rows >= PARALLEL_MIN_ROWS else 1)


def in_turn(first: Callable[[], First], second: Callable[[], Second]) -> tuple[First, Second]:
    """``(first(), second())``, one after the other (for work that shares state)."""
    return first(), second()


_stop = threading.local()  # the stop event of side_by_side's helper thread


def side_by_side(first: Callable[[], First], second: Callable[[], Second]) -> tuple[First, Second]:
    """``(first(), second())``, run at the same time when two or more threads are configured.

    ``first`` runs on the calling thread and ``second`` on a helper thread, each with half the torch
    threads of the block it is called in (at least one: inside :func:`threads_for` of small work, one
    each) — torch releases the GIL inside its operations. They must not share mutable state: the
    results then equal the sequential ones exactly. With one thread configured they run in turn.
    If ``first`` raises, ``second`` is asked to stop (:func:`stop_requested` turns true on its
    thread) and the error is raised once it has.
    """
    import torch

    if _configured_threads() < 2:
        return in_turn(first, second)
    each = max(1, torch.get_num_threads() // 2)
    outcome: dict[str, object] = {}

    def run_second() -> None:
        _stop.flag = stop
        try:
            with _torch_threads(each):
                outcome["value"] = second()
        except BaseException as error:  # handed to the caller below
            outcome["error"] = error

    stop = threading.Event()
    helper = threading.Thread(target=run_second, name="gdmpo-side-by-side", daemon=True)
    with _torch_threads(each):
        helper.start()
        try:
            first_result = first()
        except BaseException:
            stop.set()
            helper.join()
            raise
        helper.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return first_result, outcome["value"]  # type: ignore[return-value]


def stop_requested() -> bool:
    """Whether the :func:`side_by_side` work running on this thread should end early (its partner failed)."""
    flag = getattr(_stop, "flag", None)
    return flag is not None and flag.is_set()


def _cgroup_quota() -> float | None:
    """CPUs allowed by cgroup v2 ``cpu.max`` (or v1 ``cfs_quota_us``), or None when unlimited."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None
