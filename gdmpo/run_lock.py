"""One writer per run directory: an advisory lock held for as long as a run writes there.

The lock is ``fcntl.flock`` on ``RUN_DIR/.lock``. The kernel drops it when its holder exits, however
it exits (``kill -9`` included), so a stale lock cannot exist: the next run simply takes it. The file
also records who holds it (pid, host, start time, command) so a refused writer can say so.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


class RunLockedError(RuntimeError):
    """Another live process writes to this run directory."""


class RunLock:
    """Hold the lock of ``run_dir`` (created if needed) until :meth:`release` or process exit."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.path = Path(run_dir) / ".lock"
        self._fd: int | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(self.path)
            os.close(fd)
            raise RunLockedError(f"{self.path.parent} is in use by another gdmpo run ({holder}); wait for it to "
                                 "finish, stop it, or pick another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                 "command": " ".join(sys.argv)[:300]}).encode())
        os.fsync(fd)
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the directory up (safe to call twice). The file stays; an unlocked file means nothing."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.release()


@dataclass(frozen=True)
class Skipped:
    """The result of a job :class:`SkipLocked` did not run: ``reason`` names the directory and its holder."""

    reason: str


class SkipLocked:
    """``fn(job)``, or :class:`Skipped` where another live process holds the job's run directory.

    A map over many runs (a process pool, Ray tasks) then goes on with the others instead of stopping at
    the first locked one, so two commands, or machines on a shared disk, can work through one set of
    runs. ``__wrapped__`` names ``fn``, as ``functools.wraps`` would, for whoever must ship it.
    """

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.__wrapped__ = fn

    def __call__(self, job: Any) -> Any:
        try:
            return self.__wrapped__(job)
        except RunLockedError as error:
            return Skipped(str(error))


def _describe(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "holder unknown"
    return (f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started {info.get('started', '?')}: "
            f"{info.get('command', '?')}")
