"""Environment ids → constructors, so configs and the CLI can name environments as strings.

An entry point is a callable or a ``"module:attribute"`` string imported only when the environment is
made, so listing or checking ids (``gdmpo envs``, ``gdmpo --help``) never imports torch or SUMO.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Union

if TYPE_CHECKING:
    from gdmpo.envs.base import NetworkedVecEnv

EntryPoint = Union[Callable[..., "NetworkedVecEnv"], str]


class OptionError(TypeError):
    """An environment option it does not take (a TypeError, as for any unknown keyword argument)."""


@dataclass(frozen=True)
class EnvSpec:
    """How to build one registered environment: a constructor and the keywords it is given."""

    env_id: str
    entry_point: EntryPoint
    description: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    agents: str = "vehicles"  # what its agents are ("vehicles" or "signals"): a policy serves one kind
    #: options a policy trained here keeps when it plays another environment with the same kind of agents
    #: (what it reads and how its actions play out)
    carried_options: tuple[str, ...] = ()
    #: hand-written controllers (:func:`gdmpo.envs.controllers.reference_policy` names) a learned policy
    #: is compared with on it
    references: tuple[str, ...] = ()

    def constructor(self) -> Callable[..., "NetworkedVecEnv"]:
        """The entry point, imported first where it is a ``"module:attribute"`` string."""
        if callable(self.entry_point):
            return self.entry_point
        module, _, attribute = self.entry_point.partition(":")
        try:
            return getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as err:
            raise ImportError(f"{self.env_id}: its entry point {self.entry_point!r} cannot be imported ({err})") from err


_REGISTRY: dict[str, EnvSpec] = {}


def register(env_id: str, entry_point: EntryPoint, description: str, *, agents: str = "vehicles",
             carried_options: tuple[str, ...] = (), references: tuple[str, ...] = (), **kwargs: Any) -> None:
    """Register ``env_id``; ``entry_point`` is a callable or ``"module:attribute"`` (imported at :func:`make`);
    ``kwargs`` are defaults that :func:`make` passes to it; ``agents`` says what its agents are
    (``vehicles`` or ``signals``), so a mismatched checkpoint is refused early; ``carried_options`` are
    the options a policy trained here takes along to another environment of that kind; ``references`` the
    hand-written controllers reports compare a learned policy with."""
    if env_id in _REGISTRY:
        raise ValueError(f"environment id {env_id!r} is already registered")
    if not callable(entry_point) and (not isinstance(entry_point, str) or ":" not in entry_point):
        raise TypeError(f"{env_id}: entry_point must be a callable or 'module:attribute', got {entry_point!r}")
    _REGISTRY[env_id] = EnvSpec(env_id, entry_point, description, dict(kwargs), agents, tuple(carried_options),
                                tuple(references))


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


def make(env_id: str, num_envs: int = 1, seed: int | None = None, **kwargs: Any) -> "NetworkedVecEnv":
    """Build ``num_envs`` copies of the environment ``env_id`` seeded with ``seed``.

    Keywords override the registered defaults; one the environment does not take is an error that
    lists the ones it does.
    """
    env_spec = spec(env_id)
    options = {**env_spec.kwargs, **kwargs}
    constructor = env_spec.constructor()
    accepted = inspect.signature(constructor).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            valid = sorted(name for name in accepted if name not in ("num_envs", "seed"))
            raise OptionError(f"{env_id}: unknown option(s) {', '.join(unknown)}; valid options: {', '.join(valid)}")
    return constructor(num_envs=num_envs, seed=seed, **options)
