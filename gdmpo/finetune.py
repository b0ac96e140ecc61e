"""Fine-tuning: a fresh run that starts from another run's trained weights (``init_from`` in its config).

A traffic engineer takes the generalist, or a policy trained on another city, and trains it on their own
network for a few episodes. The run takes the checkpoint's policy and critic (its agent, value normaliser
included) and, where both runs learn a dynamics model with the same settings (DMPO from DMPO), the model
too; optimisers, buffers and counters start afresh. The networks must be the same ones: the settings that
shape them are compared before any weight is loaded, so a mismatch names the setting, not a tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gdmpo import config as cfg
from gdmpo.algos.base import Algorithm
from gdmpo.checkpoints import load_checkpoint

#: the config sections that shape the agent's networks: they must match for the weights to mean anything
AGENT_SHAPE = ("policy_net", "value_net", "ppo.policy_hops", "ppo.value_hops", "ppo.critic")


def _differences(source: dict[str, Any], target: dict[str, Any], prefixes: tuple[str, ...]) -> list[str]:
    keys = sorted(k for k in source.keys() | target.keys() if k.startswith(prefixes))
    return [f"{key}: {source.get(key)!r} there, {target.get(key)!r} here" for key in keys
            if source.get(key) != target.get(key)]


def initialise(algorithm: Algorithm, config: cfg.RunConfig) -> list[str]:
    """Load ``config.init_from``'s weights into ``algorithm`` (and its agent); what was taken, in words.

    Raises ``FileNotFoundError`` for a missing checkpoint and ``ValueError`` naming the settings (or the
    weights) that differ between the checkpoint's run and this one.
    """
    path = Path(str(config.init_from))
    if not path.is_file():
        raise FileNotFoundError(f"init_from: {path}: no such checkpoint")
    state = load_checkpoint(path)
    source = cfg.flatten(cfg.to_dict(cfg.from_dict(state["config"], str(path))))
    target = cfg.flatten(cfg.to_dict(config))
    differ = _differences(source, target, AGENT_SHAPE)
    if differ:
        raise ValueError(f"init_from: {path} was trained with other networks ({'; '.join(differ[:4])}); "
                         "fine-tuning needs the same policy_net, value_net and hops")
    try:
        algorithm.agent.load_state_dict(state["agent"])
    except RuntimeError as err:  # same settings, other shapes: other observations or actions
        first = str(err).strip().splitlines()[-1].strip()
        raise ValueError(f"init_from: {path}: its weights do not fit this environment ({first})") from None
    taken = ["policy", "critic"]
    if not _differences(source, target, ("model.hops", "model.net", "model.ensemble_size")):
        try:
            taken += algorithm.initialise_from(state.get("algorithm", {}))
        except RuntimeError as err:
            first = str(err).strip().splitlines()[-1].strip()
            raise ValueError(f"init_from: {path}: its dynamics model does not fit this environment ({first})") from None
    return taken
