"""Checkpoints: tensors and plain data only, one writer and one reader for every caller.

A checkpoint is a dict of tensors, numbers, strings, lists, tuples and dicts (weights, optimiser
states, the real-data buffer, counters, RNG states, the config as plain data). It is read with
``torch.load(weights_only=True)``, whose unpickler rebuilds only those types: a crafted file cannot
run code, it is refused (:class:`CheckpointError`). Checkpoints of format 1 held numpy's RNG state
as an array; those arrays, and nothing else, are allowed when reading them.

Writing is atomic (a temporary file, then a rename): a run killed, or a disk that fills up, while a
checkpoint is written leaves the previous checkpoint intact.
"""

from __future__ import annotations

import errno
import os
import pickle
import re
import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from gdmpo.envs.base import action_layout

FORMAT = 2
_reconstruct = (getattr(np, "_core", None) or np.core).multiarray._reconstruct
#: numpy's RNG state in format-1 checkpoints: uint32 array reconstruction only, nothing callable besides
_LEGACY_NUMPY = [np.ndarray, np.dtype, np.dtypes.UInt32DType, (_reconstruct, "numpy.core.multiarray._reconstruct"),
                 (_reconstruct, "numpy._core.multiarray._reconstruct")]
LOW_DISK_BYTES = 64 * 2**20


class CheckpointError(ValueError):
    """A checkpoint cannot be read, is not a gdmpo checkpoint, or could not be written."""


class LayoutError(ValueError):
    """A checkpoint's policy cannot drive an environment: one agent's observation or action layout differs."""


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``state`` to ``path`` atomically; on failure the previous file stays as it was.

    Raises:
        CheckpointError: the write failed (the message says when the disk is full).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        tmp.unlink(missing_ok=True)
        free = shutil.disk_usage(path.parent).free
        full = getattr(err, "errno", None) == errno.ENOSPC or free < LOW_DISK_BYTES
        reason = f"the disk is full ({free / 2**20:.0f} MiB free)" if full else f"{type(err).__name__}: {err}"
        kept = " the previous checkpoint there is intact" if path.exists() else " nothing was written"
        raise CheckpointError(f"{path}: could not save the checkpoint, {reason};{kept}") from None


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write a small text file (a result, a summary) so a reader never sees half of it."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by gdmpo without ever running code from it.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable, truncated, not a gdmpo checkpoint, or holding anything besides
            tensors and plain data (such a file is refused before any of it runs).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        with torch.serialization.safe_globals(_LEGACY_NUMPY):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        blocked = re.search(r"GLOBAL ([\w.]+)", str(err))
        if blocked is not None:
            raise CheckpointError(f"{path}: refused: the file holds objects other than tensors and plain data "
                                  f"(it asks for {blocked.group(1)}); loading it could run code, so nothing in it "
                                  "was run") from None
        detail = re.search(r"WeightsUnpickler error: \s*(.+)", str(err))
        raise CheckpointError(f"{path}: not a readable gdmpo checkpoint "
                              f"({detail.group(1) if detail else _first_line(err)})") from None
    except Exception as err:  # a truncated or foreign file
        raise CheckpointError(f"{path}: not a readable gdmpo checkpoint ({type(err).__name__}: "
                              f"{_first_line(err)})") from None
    if not isinstance(state, dict) or "agent" not in state or "config" not in state:
        raise CheckpointError(f"{path}: not a gdmpo checkpoint (no 'agent' and 'config' entries)")
    broken = non_finite_tensors(state["agent"])
    if broken:
        raise CheckpointError(f"{path}: refused: {len(broken)} of the policy's tensors hold NaN or infinite values "
                              f"({', '.join(broken[:3])}{', ...' if len(broken) > 3 else ''}); a policy with them "
                              "would play meaningless actions")
    return state


def non_finite_tensors(tree: Any, prefix: str = "") -> list[str]:
    """The names (dotted paths) of the floating-point tensors in ``tree`` (nested dicts and lists, e.g. a
    ``state_dict``) that hold a NaN or an infinity."""
    if isinstance(tree, torch.Tensor):
        return [prefix.rstrip(".") or "<tensor>"] if tree.is_floating_point() and not bool(torch.isfinite(tree).all()) else []
    if isinstance(tree, dict):
        return [name for key, value in tree.items() for name in non_finite_tensors(value, f"{prefix}{key}.")]
    if isinstance(tree, (list, tuple)):
        return [name for k, value in enumerate(tree) for name in non_finite_tensors(value, f"{prefix}{k}.")]
    return []


def load_weights(module: torch.nn.Module, weights: dict[str, Any], what: str) -> None:
    """Load a checkpoint's ``weights`` into ``module``, or raise :class:`LayoutError` saying ``what`` does not
    fit and torch's first reason (the first tensor whose shape or name differs)."""
    try:
        module.load_state_dict(weights)
    except RuntimeError as err:
        reasons = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise LayoutError(f"{what}: {reasons[1] if len(reasons) > 1 else reasons[0]}") from None


def stored_action(state: dict[str, Any]) -> dict[str, Any] | None:
    """The action layout (:func:`gdmpo.envs.base.action_layout`) a checkpoint was trained with; checkpoints
    written before gdmpo stored it as data hold the space's ``repr`` (``Discrete(5)``, ``Box(...)``)."""
    spaces = state.get("spaces") or {}
    if isinstance(spaces.get("action"), dict):
        return spaces["action"]
    text = spaces.get("action_space")
    if not isinstance(text, str) or not text:
        return None
    discrete = re.fullmatch(r"Discrete\((\d+)\)", text)
    if discrete:
        return {"kind": "discrete", "n": int(discrete.group(1))}
    return {"kind": "continuous", "repr": text}


def describe_action(layout: dict[str, Any]) -> str:
    """An action layout as a person reads it: ``Discrete(5)``, or a Box's bounds and shape."""
    if layout["kind"] == "discrete":
        return f"Discrete({layout['n']})"
    return layout.get("repr") or f"Box({layout['low']}, {layout['high']}, {tuple(layout['shape'])})"


def same_actions(trained: dict[str, Any], target: gym.spaces.Space) -> bool:
    """Whether ``target`` offers exactly the actions a policy trained with layout ``trained`` chooses from."""
    if "repr" in trained:  # an older checkpoint: compare as it was written
        return trained["repr"] == repr(target)
    return trained == action_layout(target)


def check_fits(state: dict[str, Any], obs_dim: int, action_space: gym.spaces.Space, target: str,
               lane_features: int | None = None) -> None:
    """Raise :class:`LayoutError` unless one agent's observation and actions fit the checkpoint's policy.

    A ``movements`` policy (traffic signals, :mod:`gdmpo.nn.signals`) fits any signal network whose
    lanes carry the same features (``lane_features``), whatever its lane and phase counts; any other
    policy needs the same observation size and action space.
    """
    source = state["config"]["env"]["id"]
    trained_obs = (state.get("spaces") or {}).get("obs_dim")
    trained = stored_action(state)
    wanted = action_layout(action_space)
    if trained is not None and trained["kind"] != wanted["kind"]:
        raise LayoutError(f"checkpoint trained on {source} with action space {describe_action(trained)}; {target} has "
                          f"{wanted['kind']} actions {action_space}: a policy cannot switch action kinds")
    if is_movement_policy(state):
        check_lane_features(state, lane_features, target)
        return
    if trained is not None and not same_actions(trained, action_space):
        raise LayoutError(f"checkpoint trained on {source} with action space {describe_action(trained)}; {target} has "
                          f"{action_space!r} (for traffic lights: the same largest phase count is needed, or "
                          "a policy with policy_net.input: movements)")
    if trained_obs is not None and trained_obs != obs_dim:
        raise LayoutError(f"checkpoint trained on {source} with {trained_obs} observation features per agent; "
                          f"{target} gives {obs_dim} (for traffic lights: the same largest lane count, or a "
                          "policy with policy_net.input: movements)")


def check_lane_features(state: dict[str, Any], lane_features: int | None, target: str) -> None:
    """Raise :class:`LayoutError` unless a movement policy's target has signals whose lanes carry the
    features it was trained on (the only thing such a policy needs to fit)."""
    source = state["config"]["env"]["id"]
    trained_lanes = (state.get("spaces") or {}).get("lane_features")
    if lane_features is None:
        raise LayoutError(f"checkpoint trained on {source} drives traffic signals; {target} has none")
    if trained_lanes is not None and trained_lanes != lane_features:
        raise LayoutError(f"checkpoint trained on {source} reads {trained_lanes} feature(s) per lane; {target} "
                          f"gives {lane_features} (env options observe_wait and observe_phase must match)")


def is_movement_policy(state: dict[str, Any]) -> bool:
    """Whether the checkpoint's policy reads junctions as movement sets (fits any signal layout)."""
    return ((state["config"].get("policy_net") or {}).get("input") or "flat") == "movements"


def numpy_rng_state() -> dict[str, Any]:
    """numpy's global RNG state as a tensor and plain numbers (no arrays in checkpoints)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def restore_numpy_rng(state: Any) -> None:
    """Inverse of :func:`numpy_rng_state`; also takes the tuple that format-1 checkpoints stored."""
    if isinstance(state, dict):
        keys = state["keys"].numpy().astype(np.uint32)
        state = (state["name"], keys, state["pos"], state["has_gauss"], state["cached_gaussian"])
    np.random.set_state(state)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
