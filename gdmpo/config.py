"""Typed run configuration: the one place that knows every knob and its default.

A run is described by a YAML file whose sections mirror :class:`RunConfig`::

    algo: dppo
    env: {id: cacc-catchup, num_envs: 8, options: {start: random}}
    ppo: {lr_policy: 3.0e-4, value_hops: 2}
    total_env_steps: 200000

Omitted keys keep the defaults below, which are DPPO on CACC Catch-up with the paper's settings
(DMPO paper, Table I); a bare ``gdmpo train`` runs them with ``EMBEDDED_DEFAULT`` on top. Unknown keys and
values of the wrong type are errors that name the key and the file. Configs are plain dataclasses,
so they pickle and travel to worker processes unchanged.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Callable, Literal, Sequence, Union

import yaml

from gdmpo.device import check_device_name


class ConfigError(ValueError):
    """A configuration file or override is malformed."""


@dataclass
class EnvConfig:
    """Which environment, how many copies, and its options (passed to ``gdmpo.make``)."""

    id: str = "cacc-catchup"
    num_envs: int = 8
    options: dict[str, Any] = field(default_factory=dict)
    eval_options: dict[str, Any] = field(default_factory=dict)  # applied on top of options by `gdmpo eval`


#: what a bare ``gdmpo train`` sets beyond the defaults, as ``configs/cacc-catchup/dppo.yaml`` does: a
#: collision's one-step charge clipped (measured there, 3 seeds at 1e5 steps: final -1.8e4 ± 1.1e3 with,
#: -3.3e4 ± 1.6e4 without)
EMBEDDED_DEFAULT: dict[str, Any] = {"ppo": {"reward_clip": 100.0}}


def default_env() -> EnvConfig:
    """The embedded default's environment (used when a config has no ``env`` section at all)."""
    return EnvConfig("cacc-catchup", 8, {"terminate_on_collision": True}, {"train_shaping": False})


@dataclass
class NetworkConfig:
    """A κ-hop message-passing network: ``hidden[0]`` wide graph layers, then an MLP of ``hidden[1:]``."""

    hidden: list[int] = field(default_factory=lambda: [64, 64])
    activation: Literal["tanh", "relu", "elu", "silu"] = "tanh"
    aggr: Literal["mean", "sum", "max"] = "mean"
    residual: bool = False
    layer_norm: bool = False
    degree_feature: bool = False
    # "movements" (traffic signals): read a junction as the set of its movements, score phases by
    # competition (gdmpo.nn.signals); its weights fit any lane and phase count. "flat": one vector per agent.
    input: Literal["flat", "movements"] = "flat"
    # movements only: how a phase pools the movements it serves. "mean": their mean embedding; "sum": their
    # sum over the junction's mean green count per phase, so phases that serve more movements weigh more
    # (max-pressure compares sums) while the scale stays the same on junctions of every size.
    phase_pooling: Literal["mean", "sum"] = "mean"
    # movements only: each phase's logit adds this learned weight (its initial value) times the phase's
    # pressure, the sum over its green movements of the queue feature upstream minus downstream: the
    # policy starts as a soft max-pressure controller and learns corrections. None: no pressure term.
    pressure_prior: float | None = None
    # movements only: the hand-written score the prior term adds (weighted by pressure_prior). "pressure":
    # max-pressure's, as above; "wave": greedy's (RESCO's max-wave), the sum over the incoming lanes a phase
    # gives green (each lane once) of the vehicles queued or approaching on them.
    prior_score: Literal["pressure", "wave"] = "pressure"


@dataclass
class PPOConfig:
    """Decentralized PPO with extended advantages (eq. 7-10 of the paper, PPO clip objective)."""

    gamma: float = 0.99
    gae_lambda: float = 0.95  # paper: 0.5 for CACC; measured here it plateaus on Catch-up (see configs/)
    clip: float = 0.2
    epochs: int = 10
    minibatches: int = 4
    target_kl: float | None = 0.0075  # stop the epoch loop once mean KL > kl_stop_factor * target_kl
    kl_stop_factor: float = 1.5
    entropy_coef: float = 0.0
    value_coef: float = 1.0
    max_grad_norm: float = 0.5
    lr_policy: float = 3e-4
    lr_value: float = 3e-4
    policy_hops: int = 1  # κ_π
    value_hops: int = 2  # κ_v
    advantage_hops: int | None = None  # neighbourhood of the extended advantage; None: value_hops
    critic: Literal["local", "central"] = "local"
    normalize_advantage: bool = True
    reward_scale: float = 0.01  # rewards are multiplied by this for learning; metrics stay raw
    reward_clip: float | None = None  # learning rewards (after reward_scale) clipped to [-c, c]; None: no clip
    value_norm: bool = True  # critic regresses running-normalised returns
    chunk_nodes: int = 16384  # nodes per forward/backward pass within a minibatch (speed only; 0: whole minibatch)
    # matrix products of policy and critic: "bfloat16" (several x faster where native: AMX CPUs, recent
    # GPUs), "float32", or "auto" (bfloat16 where native); weights, log-probs and losses stay float32
    precision: Literal["float32", "bfloat16", "auto"] = "float32"


def _model_net() -> NetworkConfig:
    return NetworkConfig(hidden=[16, 16])


@dataclass
class ModelConfig:
    """The local dynamics model p(s'_i, r_i | s_{N_i^{κ_p}}, a_i) of DMPO and how it is fitted."""

    hops: int = 1  # κ_p
    net: NetworkConfig = field(default_factory=_model_net)  # paper Table I: [16, 16] for CACC and Flow
    lr: float = 3e-4
    batch_size: int = 256  # real time steps (whole graphs of n agents) per gradient step
    reward_weight: float = 10.0  # loss = state MSE + reward_weight * reward MSE (+ termination BCE)
    reward_transform: Literal["none", "symlog"] = "none"  # symlog: fit sign(r) log(1 + |r|) (wide reward ranges)
    ensemble_size: int = 1  # K members, each fitted on its own minibatches
    elites: int | None = None  # members used in rollouts, best by held-out error; None: all
    holdout_fraction: float = 0.1  # share of real trajectories kept out of fitting to measure the error


@dataclass
class DMPOConfig:
    """The outer loop of the paper's Algorithm 1: real data, model fitting, branched rollouts."""

    buffer_size: int = 9000  # real time steps kept in D^E (the authors keep 15 episodes of 600)
    warmup_env_steps: int = 30000  # real steps collected before the first policy update (authors: 50 episodes)
    warmup_model_steps: int = 20000  # model gradient steps once warm-up data are in
    model_steps: int = 250  # model gradient steps per iteration after warm-up
    rollouts: int = 2048  # M branched rollouts per model-data update
    horizon: int = 25  # T steps per branched rollout
    model_data_prob: float = 0.5  # chance that an inner update uses model data (else the latest real data)
    inner_updates: int = 10  # PPO updates per iteration
    spread_threshold: float | None = None  # stop a branch where the elites disagree beyond this; null: never
    return_error_tolerance: float | None = None  # lower model_data_prob when model returns err more; null: off
    iteration_kl: float | None = None  # end an iteration's inner updates once the policy moved this far; null: off
    # from this many real steps on, each iteration is DPPO's (one update on the fresh segment, no model):
    # model-based early, model-free fine-tuning late; null: never
    model_free_after: int | None = None
    # ... and only once the mean of the last num_envs training episodes is within this x |best| of the
    # best such mean so far (never from a relapse)
    handoff_slack: float = 0.5
    # from this many real steps on, hand over even from a relapse, restoring the policy and critic that
    # had the best such mean (a map where model-based updates degrade the policy never gets back near
    # its best, and would stay model-based to the end); null: wait for a policy near its best
    handoff_deadline: int | None = None
    # at the hand-over, soften the (categorical) policy until its mean entropy on the fresh segment's
    # states is this fraction of the largest possible, so that the model-free updates explore again
    # (ten PPO updates per real segment leave it nearly deterministic); null: leave it as it is
    handoff_entropy: float | None = None


@dataclass
class IC3NetConfig:
    """IC3Net (Singh et al., 2019): LSTM width of each agent; the action head is ``policy_net`` on top."""

    hidden: int = 64  # LSTM state and message width


@dataclass
class IA2CConfig:
    """IA2C (NSC benchmark): the spatial discount α of the rewards an agent learns from.

    Agent i learns from Σ_j α^{d(i,j)} r_j (d: hops): 0 is fully independent, 1 the sum over all
    connected agents. The rest of IA2C's knobs are the ``ppo`` section's (``gamma``, ``gae_lambda``,
    learning rates, ``entropy_coef``, ...); its ``epochs``, ``minibatches`` and KL stop do not apply.
    """

    spatial_discount: float = 0.9


@dataclass
class RunConfig:
    """Everything that defines a training run."""

    algo: Literal["dppo", "cppo", "dmpo", "ic3net", "ia2c"] = "dppo"
    env: EnvConfig = field(default_factory=default_env)  # a config's `env` section replaces it whole
    policy_net: NetworkConfig = field(default_factory=NetworkConfig)
    value_net: NetworkConfig = field(default_factory=NetworkConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    model: ModelConfig = field(default_factory=ModelConfig)  # dmpo only
    dmpo: DMPOConfig = field(default_factory=DMPOConfig)  # dmpo only
    ic3net: IC3NetConfig = field(default_factory=IC3NetConfig)  # ic3net only
    ia2c: IA2CConfig = field(default_factory=IA2CConfig)  # ia2c only
    total_env_steps: int = 100_000
    rollout_steps: int = 75  # vector steps per iteration; env steps per iteration = rollout_steps * num_envs
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | cuda:N | auto (a GPU when there is one); see gdmpo.device
    threads: int | None = None  # torch CPU threads; null: the CPUs this process may use (gdmpo.threads)
    init_from: str | None = None  # a checkpoint whose trained weights a fresh run starts from (gdmpo.finetune)


def to_dict(config: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


#: knobs measured and retired (no gain; their results stay in benchmarks/results/exploration/paper-variants/README.md),
#: with the value that meant "off": configs saved before keep loading with it, any other value is refused
RETIRED = {("ppo", "lr_anneal"): False, ("dmpo", "fresh_update"): False, ("dmpo", "branch_from_newest"): None,
           ("", "eval_episodes"): 0}


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def _non_negative(value: float) -> bool:
    return math.isfinite(value) and value >= 0


def _at_least(low: int) -> Callable[[Any], bool]:
    return lambda value: value >= low


#: value ranges, checked after the types: ``key: (check, what it must be)``; null values (off) pass
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "env.num_envs": (_at_least(1), ">= 1"),
    "total_env_steps": (_at_least(0), ">= 0"),
    "rollout_steps": (_at_least(1), ">= 1"),
    "threads": (_at_least(1), ">= 1 or null (the CPUs this process may use)"),
    "ppo.gamma": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "ppo.gae_lambda": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "ppo.clip": (_positive, "> 0"),
    "ppo.epochs": (_at_least(1), ">= 1"),
    "ppo.minibatches": (_at_least(1), ">= 1"),
    "ppo.target_kl": (_positive, "> 0 or null (off)"),
    "ppo.kl_stop_factor": (_positive, "> 0"),
    "ppo.entropy_coef": (_non_negative, ">= 0"),
    "ppo.value_coef": (_positive, "> 0"),
    "ppo.max_grad_norm": (_positive, "> 0"),
    "ppo.lr_policy": (_non_negative, "a finite number >= 0 (0 freezes the policy)"),
    "ppo.lr_value": (_non_negative, "a finite number >= 0 (0 freezes the critic)"),
    "ppo.policy_hops": (_at_least(0), ">= 0"),
    "ppo.value_hops": (_at_least(0), ">= 0"),
    "ppo.advantage_hops": (_at_least(0), ">= 0 or null (value_hops)"),
    "ppo.reward_scale": (_positive, "a finite number > 0"),
    "ppo.reward_clip": (_positive, "> 0 or null (no clip)"),
    "ppo.chunk_nodes": (_at_least(0), ">= 0 (0: whole minibatch)"),
    "model.hops": (_at_least(0), ">= 0"),
    "model.lr": (_non_negative, "a finite number >= 0"),
    "model.batch_size": (_at_least(1), ">= 1"),
    "model.reward_weight": (_non_negative, ">= 0"),
    "model.ensemble_size": (_at_least(1), ">= 1"),
    "model.elites": (_at_least(1), ">= 1 or null (all members)"),
    "model.holdout_fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "ic3net.hidden": (_at_least(1), ">= 1"),
    "ia2c.spatial_discount": (lambda v: 0 <= v <= 1, "in [0, 1]"),
}
#: every network's layer widths must be >= 1
NETWORK_SECTIONS = ("policy_net", "value_net", "model.net")


def check_ranges(config: RunConfig, source: str) -> None:
    """A :class:`ConfigError` naming the first key whose value is out of its range (see :data:`RANGES`)."""
    for key, (ok, wanted) in RANGES.items():
        value = _lookup(config, key)
        if value is not None and not ok(value):
            raise ConfigError(f"{source}: {key} must be {wanted}, got {value!r}")
    for section in NETWORK_SECTIONS:
        widths = _lookup(config, f"{section}.hidden")
        if not widths or any(w < 1 for w in widths):
            raise ConfigError(f"{source}: {section}.hidden must be a non-empty list of widths >= 1, got {widths!r}")


def _lookup(config: Any, key: str) -> Any:
    for part in key.split("."):
        config = getattr(config, part)
    return config


def from_dict(data: dict[str, Any], source: str = "<dict>") -> RunConfig:
    """Build a :class:`RunConfig` from nested dicts, checking every key, type and range."""
    config = _build(RunConfig, _without_retired(data, source), source, prefix="")
    problem = check_device_name(config.device)
    if problem:
        raise ConfigError(f"{source}: {problem}")
    check_ranges(config, source)
    return config


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing what a run config never needs and what hides mistakes or hangs:
    duplicate keys (the last would silently win) and aliases (a few lines of them expand without bound)."""

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConfigError(f"line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not accepted "
                              "in a run config; write the value out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # noqa: ANN001 - PyYAML's signature
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                continue
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(f"line {line}: duplicate key {key!r} (first at line {seen[key]}); "
                                  "the earlier one would be silently ignored")
            seen[key] = line
        return super().construct_mapping(node, deep)


def read_yaml(text: str, source: str) -> Any:
    """Parse YAML text with :class:`StrictLoader`; any problem is a :class:`ConfigError` naming ``source``."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {err}") from None


def load(path: str | PathLike[str], overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a YAML run config and apply dotted ``overrides`` (``{"ppo.lr_policy": 1e-3}``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    data = read_yaml(path.read_text(), str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    if not overrides:
        return from_dict(data, str(path))
    from_dict(data, str(path))  # the file alone must be valid: its errors name the file ...
    return from_dict(apply_overrides(data, overrides), "--set")  # ... so any error now is an override's


def parse_value(text: str, what: str, exponent_numbers: bool = True) -> Any:
    """A command-line value parsed as YAML (``3``, ``0.5``, ``1e-4``, ``true``, ``[64, 64]``, ``{a: 1}``, else
    the text itself); text that is not YAML is a :class:`ConfigError` naming ``what`` (e.g. ``--set ppo.lr_policy``).
    The one syntax of ``--set``, ``--grid`` and ``--option`` in the CLI and the benchmarks (``--grid`` keeps
    ``1e-4`` as typed, ``exponent_numbers=False``: it names the sweep's run folders, and config checks read it
    as a number)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        problem = str(getattr(err, "problem", None) or err).splitlines()[0]
        raise ConfigError(f"{what}: {text!r} is not a YAML value ({problem}); quote text, close brackets") from None
    if exponent_numbers and isinstance(value, str) and _EXPONENT_NUMBER.match(value):  # YAML 1.1 reads 1e-4 as text
        return float(value)
    return value


_EXPONENT_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def parse_assignments(pairs: Sequence[str], what: str = "--set") -> dict[str, Any]:
    """Turn ``key=value`` strings into a dict, values parsed by :func:`parse_value` (``3``, ``0.5``, ``true``):
    ``--set`` and ``--option`` of the ``gdmpo`` command and of every benchmark."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"gdmpo: {what} expects key=value, got {pair!r}")
        out[key.strip()] = parse_value(value, f"{what} {key.strip()}")
    return out


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict as dotted keys (``{"ppo": {"gamma": 0.99}}`` → ``{"ppo.gamma": 0.99}``), the
    form ``--set`` names keys in; an empty section leaves no key."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any], source: str = "--set") -> dict[str, Any]:
    """Return a copy of ``data`` with each dotted key set (``env.options.start`` creates sub-dicts)."""
    out = _deep_copy(data)
    for dotted, value in overrides.items():
        node = out
        *parents, leaf = dotted.split(".")
        for key in parents:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{source}: cannot set {dotted!r}: {key!r} is not a section")
            node = child
        node[leaf] = value
    return out


def save(config: RunConfig, path: str | PathLike[str]) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


# ---------------------------------------------------------------------------- checking
def _without_retired(data: Any, source: str) -> Any:
    """``data`` without retired keys set to their "off" value; a retired key set otherwise is an error."""
    if not isinstance(data, dict):
        return data
    data = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()}
    for (section, key), off in RETIRED.items():
        holder = data if not section else data.get(section)
        if not isinstance(holder, dict) or key not in holder:
            continue
        name = f"{section}.{key}" if section else key
        if holder[key] != off:
            raise ConfigError(f"{source}: {name} was retired (measured no gain: benchmarks/results/exploration/paper-variants/"
                              f"README.md); remove it")
        del holder[key]
    return data


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{source}: unknown key {prefix}{unknown[0]!r}; valid keys here: {', '.join(sorted(names))}")
    values = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, source, f"{prefix}{name}.")
        else:
            values[name] = _check(hint, value, source, f"{prefix}{name}")
    return cls(**values)


def _check(hint: Any, value: Any, source: str, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        for option in args:
            try:
                return _check(option, value, source, key)
            except ConfigError:
                continue
        raise ConfigError(f"{source}: {key} must be {_describe(hint)}, got {value!r}")
    if hint is type(None):
        if value is None:
            return None
    elif origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{source}: {key} must be one of {', '.join(map(repr, args))}, got {value!r}")
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint in (bool, str):
        if isinstance(value, hint):
            return value
    elif origin is list:
        if isinstance(value, (list, tuple)):
            return [_check(args[0], item, source, f"{key}[{i}]") for i, item in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            return dict(value)
    elif hint is Any:
        return value
    raise ConfigError(f"{source}: {key} must be {_describe(hint)}, got {value!r}")


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    if hint is type(None):
        return "null"
    if origin is list:
        return f"a list of {_describe(args[0])}"
    if origin is dict:
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data
