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
from gdmpo.checkpoints import LayoutError, check_fits, load_checkpoint, load_weights
from gdmpo.envs.base import NetworkedVecEnv

#: the config sections that shape the agent's networks: they must match for the weights to mean anything
AGENT_SHAPE = ("policy_net", "value_net", "ppo.policy_hops", "ppo.value_hops", "ppo.critic")


def _differences(source: dict[str, Any], target: dict[str, Any], prefixes: tuple[str, ...]) -> list[str]:
    keys = sorted(k for k in source.keys() | target.keys() if k.startswith(prefixes))
    return [f"{key}: {source.get(key)!r} there, {target.get(key)!r} here" for key in keys
            if source.get(key) != target.get(key)]


def initialise(algorithm: Algorithm, env: NetworkedVecEnv, config: cfg.RunConfig) -> list[str]:
    """Load ``config.init_from``'s weights into ``algorithm`` (and its agent) for ``env`` (as the agent sees
    it); what was taken, in words.

    Raises ``FileNotFoundError`` for a missing checkpoint, ``ValueError`` naming the settings that differ
    between the checkpoint's run and this one, and :class:`~gdmpo.checkpoints.LayoutError` (a ValueError)
    naming what of ``env`` the weights do not fit, as evaluation and transfer do.
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
    try:  # same settings, other shapes: other observations or actions
        check_fits(state, env.obs_dim, env.action_space, "this environment", env.lane_features)
        load_weights(algorithm.agent, state["agent"], "its weights do not fit this environment")
        same_model = not _differences(source, target, ("model.hops", "model.net", "model.ensemble_size"))
        return ["policy", "critic"] + (algorithm.initialise_from(state.get("algorithm", {})) if same_model else [])
    except LayoutError as err:
        raise LayoutError(f"init_from: {path}: {err}") from None
