"""gdmpo's tasks for BenchMARL: its MAPPO, IPPO, QMIX, ... on gdmpo's environments, batched.

    from benchmarl.algorithms import MappoConfig
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig
    from gdmpo.ecosystem.benchmarl import GdmpoTask

    Experiment(task=GdmpoTask.CACC_CATCHUP.get_task(), algorithm_config=MappoConfig.get_from_yaml(),
               model_config=MlpConfig.get_from_yaml(), critic_model_config=MlpConfig.get_from_yaml(),
               seed=0, config=ExperimentConfig.get_from_yaml()).run()

Each task is one registered environment id with its options (``get_task(config={"env_id": ..., "options":
{...}})`` for any other); BenchMARL steps the :mod:`gdmpo.ecosystem.torchrl` environment, whose copies run
as one batch (as VMAS does), and reads the agents' action masks where they have them.
"""

from __future__ import annotations

from typing import Any, Callable

from gdmpo.ecosystem.torchrl import GROUP, batched_env

try:
    from benchmarl.environments.common import Task, TaskClass
except ModuleNotFoundError as err:  # pragma: no cover - exercised only without BenchMARL
    raise ModuleNotFoundError("gdmpo.ecosystem.benchmarl needs BenchMARL: pip install benchmarl") from err

#: each task's default configuration: the environment id and its options
DEFAULTS: dict[str, dict[str, Any]] = {
    "CACC_CATCHUP": {"env_id": "cacc-catchup", "options": {}},
    "CACC_SLOWDOWN": {"env_id": "cacc-slowdown", "options": {}},
    "ATSC_GRID5X5": {"env_id": "atsc-grid5x5", "options": {}},
}


class GdmpoTaskClass(TaskClass):
    """One gdmpo environment as a BenchMARL task (config: ``env_id`` and ``options``)."""

    def get_env_fun(self, num_envs: int, continuous_actions: bool, seed: int | None, device: Any) -> Callable:
        env_id, options = self.config["env_id"], dict(self.config.get("options", {}))
        return lambda: batched_env(env_id, num_envs=num_envs, seed=seed, device=device, **options)

    def supports_continuous_actions(self) -> bool:
        return self.config["env_id"] in ("ring-attenuation", "figure-eight")

    def supports_discrete_actions(self) -> bool:
        return not self.supports_continuous_actions()

    def max_steps(self, env) -> int:
        return int(env.env.max_episode_steps)

    def has_render(self, env) -> bool:
        return False

    def group_map(self, env) -> dict[str, list[str]]:
        return env.group_map

    def observation_spec(self, env):
        spec = env.full_observation_spec_unbatched.clone()
        if "action_mask" in spec[GROUP].keys():
            del spec[(GROUP, "action_mask")]
        return spec

    def action_mask_spec(self, env):
        spec = env.full_observation_spec_unbatched.clone()
        if "action_mask" not in spec[GROUP].keys():
            return None
        del spec[(GROUP, "observation")]
        return spec

    def info_spec(self, env):
        return None

    def state_spec(self, env):
        return None

    def action_spec(self, env):
        return env.full_action_spec_unbatched

    @staticmethod
    def env_name() -> str:
        return "gdmpo"


class GdmpoTask(Task):
    """gdmpo's tasks; ``get_task()`` gives the default configuration of :data:`DEFAULTS`."""

    CACC_CATCHUP = None
    CACC_SLOWDOWN = None
    ATSC_GRID5X5 = None

    @staticmethod
    def associated_class():
        return GdmpoTaskClass

    def get_task(self, config: dict[str, Any] | None = None) -> GdmpoTaskClass:
        return GdmpoTaskClass(name=self.name, config=config if config is not None else dict(DEFAULTS[self.name]))
