"""One training loop that every algorithm plugs into, with a self-describing run directory.

A run directory holds:

- ``config.yaml``: the resolved configuration;
- ``metrics.csv``: one row per iteration (``iteration, env_steps, episode_return, episodes, wall_s,
  steps_per_s``, then the algorithm's own figures: losses, and for DMPO model steps, model errors and
  the time spent in each phase; then the environment's per-episode figures, ``episode_<name>``, the mean
  over the iteration's finished episodes, e.g. ``episode_resco_delay`` on traffic signals);
  ``env_steps`` counts real transitions only; ``episode_return`` is the mean team return of the
  episodes that finished during the iteration, and on an iteration where none did (long episodes
  span several) the last such mean again, with ``episodes`` 0 to say so;
- ``tb/``: TensorBoard event files of the same figures;
- ``checkpoints/last.pt`` and ``checkpoints/best.pt``, written atomically (write, then rename), so a
  run killed at any moment resumes from its last finished iteration (:meth:`Trainer.resume`);
  tensors and plain data only (:mod:`gdmpo.checkpoints`);
- ``.lock``: held while a run writes there (:mod:`gdmpo.run_lock`), so a second writer is refused.

Ctrl-C (SIGINT) stops a run between two operations: the last finished iteration's checkpoint is
already on disk, and :class:`TrainingInterrupted` says how to resume it.
"""

from __future__ import annotations

import csv
import math
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gdmpo import config as cfg
from gdmpo._version import __version__
from gdmpo.algos import PPO, Algorithm, build_algorithm, prepare_env
from gdmpo.checkpoints import (FORMAT, load_checkpoint, non_finite_tensors, numpy_rng_state, restore_numpy_rng,
                               save_checkpoint)
from gdmpo.config import RunConfig
from gdmpo.device import resolve_device
from gdmpo.envs import make
from gdmpo.envs.base import NetworkedVecEnv
from gdmpo.finetune import initialise
from gdmpo.metrics_file import number, read_rows
from gdmpo.run_lock import RunLock
from gdmpo.threads import configure_threads, single_thread

#: columns every run writes; the algorithm appends its own (``Algorithm.metric_names``)
BASE_COLUMNS = ("iteration", "env_steps", "episode_return", "episodes", "wall_s", "steps_per_s")


@dataclass
class Counters:
    iteration: int = 0
    env_steps: int = 0
    wall_s: float = 0.0
    best_return: float = -math.inf
    last_return: float = math.nan  # mean return of the latest iteration that finished episodes


class TrainingInterrupted(Exception):
    """Training was stopped by Ctrl-C (SIGINT); the message says what is saved and how to resume."""


class TrainingDiverged(RuntimeError):
    """The policy's weights became NaN or infinite; training stopped before saving them."""


class Trainer:
    """Train ``config`` into ``run_dir`` (created if needed). Use :meth:`resume` to continue a run.

    The run directory is locked while the trainer lives (released by :meth:`close`). A trainer that
    fails to start removes the directory it created, so a failed ``gdmpo train`` leaves nothing behind.
    """

    def __init__(self, config: RunConfig, run_dir: str | os.PathLike[str], *, _resuming: bool = False) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.checkpoint_dir = self.run_dir / "checkpoints"
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise FileExistsError(f"{self.run_dir}: exists and is not a directory; pick another --out")
        created = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.env: NetworkedVecEnv | None = None
        self._lock: RunLock | None = None
        try:
            self._lock = RunLock(self.run_dir)
            if not _resuming and ((self.run_dir / "metrics.csv").exists() or (self.checkpoint_dir / "last.pt").exists()):
                raise FileExistsError(f"{self.run_dir} already holds a run; use --resume to continue it or pick --out")
            self.checkpoint_dir.mkdir(exist_ok=True)
            configure_threads(config.threads)
            seed_everything(config.seed)
            self.env = prepare_env(config, make(config.env.id, num_envs=config.env.num_envs, seed=config.seed,
                                                      device=resolve_device(config.device), **config.env.options))
            self.algorithm: Algorithm = build_algorithm(config, self.env)
            self.agent: PPO = self.algorithm.agent
            #: what a fine-tuning run took from ``config.init_from`` (policy, critic, dynamics model)
            self.initialised_from = initialise(self.algorithm, self.env, config) if config.init_from and not _resuming else []
            self.figure_names = tuple(self.env.episode_figure_names)
            self.columns = [*BASE_COLUMNS, *self.algorithm.metric_names, *(f"episode_{k}" for k in self.figure_names)]
            self.counters = Counters()
            self._saved_counters = Counters()  # what checkpoints/last.pt holds
            self._writer = None
            # a fresh run that fails before its first iteration leaves nothing behind (the same --out works again)
            self._fresh, self._discard = not _resuming, False
            if not _resuming:
                cfg.save(config, self.run_dir / "config.yaml")
        except BaseException:
            self.close()
            if created:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            raise

    # ------------------------------------------------------------------ resume
    @classmethod
    def resume(cls, run_dir: str | os.PathLike[str]) -> "Trainer":
        """Continue the run in ``run_dir`` from ``checkpoints/last.pt``.

        Restores weights, optimiser states, value normaliser, RNG states and counters, and drops the
        rows of ``metrics.csv`` written after that checkpoint, so no row is missing or repeated.
        Episodes that were in flight at the checkpoint start afresh.
        """
        run_dir = Path(run_dir)
        last = run_dir / "checkpoints" / "last.pt"
        if not last.is_file():
            raise FileNotFoundError(f"{last}: no checkpoint to resume from")
        state = load_checkpoint(last)
        config = cfg.from_dict(state["config"], str(last))
        check_config_unchanged(run_dir / "config.yaml", config, last)
        trainer = cls(config, run_dir, _resuming=True)
        try:
            trainer.agent.load_state_dict(state["agent"])
            trainer.algorithm.load_state_dict(state["algorithm"])
            trainer.counters = Counters(**state["counters"])
            trainer._saved_counters = Counters(**state["counters"])
            restore_rng(state["rng"], trainer.env)
            _truncate_metrics(run_dir / "metrics.csv", trainer.counters.iteration, trainer.columns)
        except BaseException:
            trainer.close()
            raise
        return trainer

    # ------------------------------------------------------------------ the loop
    def train(self, total_env_steps: int | None = None, progress: bool = True) -> dict[str, Any]:
        """Iterate collect → update until ``total_env_steps`` real environment steps (default: config)."""
        total = self.config.total_env_steps if total_env_steps is None else total_env_steps
        if total < 0:
            raise ValueError(f"the number of env steps to train must be >= 0, got {total}")
        if not (self.checkpoint_dir / "last.pt").exists():  # resumable from the very start
            self.save_checkpoint(self.checkpoint_dir / "last.pt")
        bar = _progress_bar(total, self.counters.env_steps, progress)
        try:
            obs = self.env.reset()
            while self.counters.env_steps < total:
                start = time.perf_counter()
                with single_thread():  # small work; large PPO updates take the configured threads
                    result = self.algorithm.iteration(self.env, obs)
                obs, episodes = result.obs, result.episodes
                elapsed = time.perf_counter() - start
                self.counters.iteration += 1
                self.counters.env_steps += result.env_steps
                self.counters.wall_s += elapsed
                mean_return = float(np.mean(episodes.returns)) if episodes.returns else math.nan
                if episodes.returns:
                    self.counters.last_return = mean_return
                last_return = self.counters.last_return
                row = {
                    "iteration": self.counters.iteration,
                    "env_steps": self.counters.env_steps,
                    "episode_return": "" if math.isnan(last_return) else last_return,
                    "episodes": len(episodes.returns),
                    "wall_s": round(self.counters.wall_s, 3),
                    "steps_per_s": round(result.env_steps / elapsed, 1),
                    **{key: _rounded(value) for key, value in result.metrics.items()},
                    **_mean_figures(episodes.figures, self.figure_names),
                }
                broken = non_finite_tensors(self.agent.state_dict())
                if broken:  # stop before the checkpoint: last.pt keeps the last finite policy
                    kept = (f"nothing was kept ({self.run_dir} is removed)" if self._nothing_finished else
                            f"{self.checkpoint_dir / 'last.pt'} keeps iteration {self._saved_counters.iteration}")
                    raise TrainingDiverged(
                        f"iteration {self.counters.iteration}: training diverged: {len(broken)} of the policy's "
                        f"tensors hold NaN or infinite values ({', '.join(broken[:3])}); "
                        f"lower the learning rates or the reward scale. {kept}")
                self._log(row)
                improved = not math.isnan(mean_return) and mean_return > self.counters.best_return
                if improved:
                    self.counters.best_return = mean_return
                self.save_checkpoint(self.checkpoint_dir / "last.pt")
                if improved:
                    self.save_checkpoint(self.checkpoint_dir / "best.pt")
                if bar is not None:
                    bar.update(result.env_steps)
                    bar.set_postfix(ret=f"{last_return:.4g}", sps=f"{row['steps_per_s']:.0f}")
        except Exception:
            self._discard = self._nothing_finished
            raise
        except KeyboardInterrupt:
            raise TrainingInterrupted(f"interrupted; {resume_hint(self)}") from None
        finally:
            if bar is not None:
                bar.close()
            if self._writer is not None:
                self._writer.close()
        return {"run_dir": str(self.run_dir), "iterations": self.counters.iteration,
                "env_steps": self.counters.env_steps, "last_return": self.counters.last_return,
                "best_return": self.counters.best_return, "wall_s": self.counters.wall_s}

    @property
    def _nothing_finished(self) -> bool:
        """A fresh run whose checkpoint still holds iteration 0: failing now, it leaves nothing worth keeping."""
        return self._fresh and self._saved_counters.iteration == 0

    def close(self) -> None:
        """Stop the environment's workers and unlock the run directory (safe to call twice); a fresh run
        that failed before its first iteration is removed."""
        if self.env is not None:
            self.env.close()
        if self._lock is not None:
            self._lock.release()
        if getattr(self, "_discard", False):
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self._discard = False

    # ------------------------------------------------------------------ output
    def _log(self, row: dict[str, Any]) -> None:
        path = self.run_dir / "metrics.csv"
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, restval="")
            if new:
                writer.writeheader()
            writer.writerow(row)
            handle.flush()
            os.fsync(handle.fileno())
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter  # slow import, only when logging

            self._writer = SummaryWriter(str(self.run_dir / "tb"))
        for key, value in row.items():
            if key not in ("iteration", "env_steps") and value != "":
                self._writer.add_scalar(key, float(value), row["env_steps"])

    def save_checkpoint(self, path: Path) -> None:
        """Everything needed to resume or evaluate, written to a temporary file then renamed."""
        state = {
            "format": FORMAT,
            "gdmpo_version": __version__,
            "config": cfg.to_dict(self.config),
            "agent": self.agent.state_dict(),
            "algorithm": self.algorithm.state_dict(),
            "counters": self.counters.__dict__.copy(),
            "rng": capture_rng(self.env),
            "spaces": self.env.agent_interface,
        }
        save_checkpoint(state, path)
        if path.name == "last.pt":
            self._saved_counters = Counters(**state["counters"])


def train(config: RunConfig, run_dir: str | os.PathLike[str], total_env_steps: int | None = None,
          progress: bool = True) -> dict[str, Any]:
    """Train ``config`` into ``run_dir`` and return a summary (see :meth:`Trainer.train`).

    A config with ``init_from`` starts from that checkpoint's trained weights (:mod:`gdmpo.finetune`).
    """
    trainer = Trainer(config, run_dir)
    try:
        return trainer.train(total_env_steps, progress)
    finally:
        trainer.close()


def resume_hint(trainer: Trainer) -> str:
    """What ``checkpoints/last.pt`` holds and the command that continues from it ("" where a failed fresh
    run left nothing)."""
    if trainer._discard:  # removed at close(): nothing to resume
        return ""
    saved = trainer._saved_counters
    return (f"{trainer.checkpoint_dir / 'last.pt'} holds iteration {saved.iteration} ({saved.env_steps} env steps); "
            f"continue with: gdmpo train --resume {trainer.run_dir}")


def check_config_unchanged(path: Path, config: RunConfig, checkpoint: Path) -> None:
    """Refuse to resume where ``config.yaml`` no longer describes the checkpoint's run: edited since, or
    the checkpoint is another run's. Resuming would log rows under a file that says otherwise."""
    if not path.is_file():
        return
    written = cfg.flatten(cfg.to_dict(cfg.load(path)))
    saved = cfg.flatten(cfg.to_dict(config))
    changed = sorted(key for key in written.keys() | saved.keys() if written.get(key) != saved.get(key))
    if changed:
        shown = "; ".join(f"{key}: {saved.get(key)!r} in the checkpoint, {written.get(key)!r} in config.yaml"
                          for key in changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
        raise ValueError(f"{path} does not describe {checkpoint} ({shown}). --resume continues a run as it was "
                         "configured: restore config.yaml (or the checkpoint), or start a new run with the edited "
                         f"config: gdmpo train {path} --out NEW_RUN_DIR")


def resume_or_start(config: RunConfig, run_dir: str | os.PathLike[str]) -> Trainer:
    """The trainer of ``run_dir``: resumed from its last checkpoint where it has one (a stopped or
    finished run), else a fresh one of ``config``."""
    if (Path(run_dir) / "checkpoints" / "last.pt").exists():
        return Trainer.resume(run_dir)
    return Trainer(config, run_dir)


def default_run_dir(config: RunConfig, root: str | os.PathLike[str] = "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(root) / config.env.id / f"{config.algo}-s{config.seed}-{stamp}"


# ---------------------------------------------------------------------------- RNG plumbing
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def capture_rng(env: NetworkedVecEnv) -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": numpy_rng_state(), "torch": torch.get_rng_state(),
            "env": env._generator.get_state()}


def restore_rng(state: dict[str, Any], env: NetworkedVecEnv) -> None:
    random.setstate(state["python"])
    restore_numpy_rng(state["numpy"])
    torch.set_rng_state(state["torch"])
    env._generator.set_state(state["env"])


def _rounded(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def _mean_figures(figures: list[dict[str, float]], names: tuple[str, ...]) -> dict[str, Any]:
    """``episode_<name>``: the mean of each figure over the iteration's finished episodes ("" if none)."""
    found = [f for f in figures if f]
    return {f"episode_{name}": _rounded(sum(f[name] for f in found) / len(found)) if found else ""
            for name in names}


def _truncate_metrics(path: Path, iteration: int, columns: list[str]) -> None:
    """Keep the header and the rows of iterations ``<= iteration`` (atomically)."""
    if not path.exists():
        return
    rows = read_rows(path, ("iteration",))
    kept = [row for k, row in enumerate(rows) if number(path, k, row, "iteration") <= iteration]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(kept)
    os.replace(tmp, path)


def _progress_bar(total: int, done: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="step", desc="env steps", dynamic_ncols=True, mininterval=0.5)
