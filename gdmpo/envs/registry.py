"""Environment ids → constructors, so configs and the CLI can name environments as strings."""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from gdmpo.envs.base import NetworkedVecEnv


@dataclass(frozen=True)
class EnvSpec:
    """How to build one registered environment: a constructor and the keywords it is given."""

    env_id: str
    entry_point: Callable[..., NetworkedVecEnv]
    description: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    agents: str = "vehicles"  # what its agents are ("vehicles" or "signals"): a policy serves one kind


_REGISTRY: dict[str, EnvSpec] = {}


def register(env_id: str, entry_point: Callable[..., NetworkedVecEnv], description: str, *, agents: str = "vehicles",
             **kwargs: Any) -> None:
    """Register ``env_id``; ``kwargs`` are defaults that :func:`make` passes to ``entry_point``; ``agents``
    says what its agents are (``vehicles`` or ``signals``), so a mismatched checkpoint is refused early."""
    if env_id in _REGISTRY:
        raise ValueError(f"environment id {env_id!r} is already registered")
    _REGISTRY[env_id] = EnvSpec(env_id, entry_point, description, dict(kwargs), agents)


def registered() -> list[str]:
    """The registered environment ids, sorted."""
    return sorted(_REGISTRY)


def spec(env_id: str) -> EnvSpec:
    """The :class:`EnvSpec` of ``env_id``; unknown ids raise ``KeyError`` naming close matches."""
    try:
        return _REGISTRY[env_id]
    except KeyError:
        close = difflib.get_close_matches(env_id, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"unknown environment id {env_id!r}.{hint} Registered: {', '.join(registered())}") from None


def make(env_id: str, num_envs: int = 1, seed: int | None = None, **kwargs: Any) -> NetworkedVecEnv:
    """Build ``num_envs`` copies of the environment ``env_id`` seeded with ``seed``.

    Keywords override the registered defaults; one the environment does not take is an error that
    lists the ones it does.
    """
    env_spec = spec(env_id)
    options = {**env_spec.kwargs, **kwargs}
    accepted = inspect.signature(env_spec.entry_point).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            valid = sorted(name for name in accepted if name not in ("num_envs", "seed"))
            raise TypeError(f"{env_id}: unknown option(s) {', '.join(unknown)}; valid options: {', '.join(valid)}")
    return env_spec.entry_point(num_envs=num_envs, seed=seed, **options)
