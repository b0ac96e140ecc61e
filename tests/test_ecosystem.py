"""gdmpo's environments through the MARL field's shared interfaces: PettingZoo's Parallel API."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gdmpo

pettingzoo_test = pytest.importorskip("pettingzoo.test", reason="pip install 'gdmpo[pettingzoo]'")
from gdmpo.ecosystem.pettingzoo import GdmpoParallelEnv, parallel_env  # noqa: E402

#: short episodes, so the API test sees episodes end
SHORT = {"atsc": {"episode_seconds": 60}, "atsc-generalist": {"episode_seconds": 60},
         "ring-attenuation": {"horizon": 40}, "figure-eight": {"horizon": 40}}


def options_for(env_id: str) -> dict:
    options = dict(SHORT.get("atsc" if env_id.startswith("atsc") else env_id, {}))
    if env_id == "atsc":
        from gdmpo.envs.sumo.atsc import shipped_network

        options["net_file"], options["route_file"] = shipped_network("grid3x3")
    return options


@pytest.mark.parametrize("env_id", gdmpo.envs.list())
def test_every_environment_passes_pettingzoos_parallel_api_test(env_id, tmp_path, monkeypatch):
    monkeypatch.setenv("GDMPO_CACHE", str(tmp_path))
    env = parallel_env(env_id, seed=0, **options_for(env_id))
    try:
        pettingzoo_test.parallel_api_test(env, num_cycles=60)
    finally:
        env.close()


def test_agents_spaces_mask_and_graph_follow_the_gdmpo_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GDMPO_CACHE", str(tmp_path))
    env = parallel_env("atsc-grid3x3", seed=0, episode_seconds=60)
    try:
        inner = env.env
        assert env.possible_agents == [str(name) for name in inner.graph.names] and len(env.possible_agents) == 9
        space = env.observation_space(env.possible_agents[0])
        assert all(env.observation_space(a) is space for a in env.possible_agents)  # one shared network fits all
        obs, infos = env.reset(seed=3)
        for i, agent in enumerate(env.possible_agents):
            assert obs[agent]["action_mask"].tolist() == inner.action_mask[i].int().tolist()
            assert obs[agent]["observation"].dtype == np.float32
        edges = inner.graph.edge_index
        first = env.possible_agents[0]
        assert sorted(env.neighbours[first]) == sorted(env.possible_agents[v] for v in edges[1][edges[0] == 0].tolist())
        assert env.state().shape == (9 * inner.obs_dim,)
        assert np.array_equal(env.state()[: inner.obs_dim], obs[first]["observation"])
    finally:
        env.close()


def test_the_last_step_is_delivered_then_the_episode_is_over():
    """CACC Catch-up, one copy: the step at the time limit returns its rewards and observations with
    truncation set for every agent; the same actions through gdmpo give the same rewards."""
    env = parallel_env("cacc-catchup", seed=0)
    reference = gdmpo.make("cacc-catchup", num_envs=1, seed=0)
    obs, _ = env.reset(seed=7)
    ref_obs = reference.reset(seed=7)
    assert np.allclose(obs["agent_0"]["observation"], ref_obs[0, 0].numpy())
    steps = 0
    while env.agents:
        actions = {agent: 1 for agent in env.agents}  # the same option for every vehicle, every step
        obs, rewards, terminations, truncations, _ = env.step(actions)
        ref = reference.step(torch.ones(1, reference.num_agents, dtype=torch.long))
        steps += 1
        assert np.allclose([rewards[a] for a in env.possible_agents], ref[1][0].numpy())
    assert steps == reference.max_episode_steps
    assert all(truncations.values()) and not any(terminations.values())
    assert np.allclose(obs["agent_0"]["observation"], ref[4]["final_obs"][0, 0].numpy())  # not a reset observation
    with pytest.raises(RuntimeError, match="after the episode ended; call reset"):
        env.step(actions)
    with pytest.raises(ValueError, match="a PettingZoo environment is one copy"):
        GdmpoParallelEnv(gdmpo.make("cacc-catchup", num_envs=2, seed=0))


# ---------------------------------------------------------------- TorchRL: one batched environment, one agent group


@pytest.fixture
def torchrl_env():
    pytest.importorskip("torchrl", reason="pip install 'gdmpo[torchrl]'")
    from gdmpo.ecosystem.torchrl import batched_env

    made = []

    def build(env_id: str, num_envs: int, **options):
        made.append(batched_env(env_id, num_envs=num_envs, seed=0, **options))
        return made[-1]

    yield build
    for env in made:
        env.close()


@pytest.mark.parametrize("env_id, options", [("cacc-catchup", {}), ("ring-attenuation", {"horizon": 20}),
                                             ("atsc-generalist", {"episode_seconds": 60})])
def test_torchrl_env_passes_check_env_specs_and_keeps_the_agents_in_one_group(torchrl_env, env_id, options, tmp_path,
                                                                              monkeypatch):
    from torchrl.envs.utils import check_env_specs

    monkeypatch.setenv("GDMPO_CACHE", str(tmp_path))
    env = torchrl_env(env_id, 3, **options)
    check_env_specs(env)  # random actions within the action mask: the generalist's lights have 2-6 phases
    td = env.reset()
    assert td["agents", "observation"].shape == (3, env.n_agents, env.env.obs_dim)
    if env_id == "atsc-generalist":
        assert torch.equal(td["agents", "action_mask"][0], env.env.action_mask)


def test_torchrl_partial_resets_restart_only_the_masked_copies(torchrl_env):
    env = torchrl_env("ring-attenuation", 2, horizon=5)
    td = env.reset()
    for _ in range(5):
        td = env.step(td.set(("agents", "action"), env.action_spec.zero()[("agents", "action")]))["next"]
    assert td["done"].all() and td["agents", "truncated"].all() and not td["agents", "terminated"].any()
    before = td["agents", "observation"].clone()
    fresh = env.reset(td.clone().set("_reset", torch.tensor([[True], [False]])))
    assert not torch.equal(fresh["agents", "observation"][0], before[0])  # copy 0 restarted
    assert torch.equal(fresh["agents", "observation"][1], before[1])      # copy 1 kept where it ended
    # a rollout across episode ends: each copy restarts on its own, 3 episodes of 5 steps each
    env2 = torchrl_env("ring-attenuation", 2, horizon=5)
    rollout = env2.rollout(15, break_when_any_done=False)
    assert rollout["next", "done"].squeeze(-1).sum(1).tolist() == [3, 3]
    assert rollout["next", "agents", "reward"].shape == (2, 15, 22, 1)



# ---------------------------------------------------------------- BenchMARL: its algorithms on gdmpo's tasks
@pytest.mark.parametrize("task, algorithm, config", [
    ("CACC_CATCHUP", "MappoConfig", None),
    ("ATSC_GRID5X5", "IppoConfig", {"env_id": "atsc-grid5x5", "options": {"episode_seconds": 60}}),
])
def test_benchmarl_trains_its_algorithms_on_gdmpo_tasks(tmp_path, monkeypatch, task, algorithm, config):
    benchmarl_algorithms = pytest.importorskip("benchmarl.algorithms", reason="pip install 'gdmpo[benchmarl]'")
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig

    from gdmpo.ecosystem.benchmarl import GdmpoTask

    monkeypatch.setenv("GDMPO_CACHE", str(tmp_path / "cache"))
    experiment_config = ExperimentConfig.get_from_yaml()
    for key, value in {"max_n_frames": 480, "on_policy_collected_frames_per_batch": 240,
                       "on_policy_n_envs_per_worker": 2, "on_policy_n_minibatch_iters": 1,
                       "on_policy_minibatch_size": 120, "evaluation": False, "loggers": [], "create_json": False,
                       "checkpoint_interval": 0, "render": False, "save_folder": str(tmp_path)}.items():
        setattr(experiment_config, key, value)
    gdmpo_task = getattr(GdmpoTask, task).get_task(config)
    experiment = Experiment(task=gdmpo_task, algorithm_config=getattr(benchmarl_algorithms, algorithm).get_from_yaml(),
                            model_config=MlpConfig.get_from_yaml(), critic_model_config=MlpConfig.get_from_yaml(),
                            seed=0, config=experiment_config)
    experiment.run()
    assert experiment.total_frames == 480 and experiment.n_iters_performed == 2
    env = gdmpo_task.get_env_fun(1, False, 0, "cpu")()
    try:  # discrete actions come with their mask (the lights' real phases; all of CACC's options)
        assert gdmpo_task.action_mask_spec(env) is not None
        assert list(gdmpo_task.observation_spec(env)["agents"].keys()) == ["observation"]
    finally:
        env.close()
