"""DMPO: the real-data buffer, model fitting and errors, branched rollouts, and the outer loop."""

import dataclasses

import pytest
import torch
from toy_envs import Drift

import gdmpo
from gdmpo.algos import DMPO, RealBuffer, Rollout, branched_rollout, build_agent, collect
from gdmpo.algos.model_learning import DynamicsEnsemble
from gdmpo.checkpoints import load_checkpoint, save_checkpoint
from gdmpo.config import ModelConfig, NetworkConfig, from_dict
from gdmpo.evaluation import run_episodes


def segment(steps, copies, n=2, d=1, done_at=(), start=0.0):
    """A real segment whose obs count up from ``start`` along time, so positions are easy to check."""
    obs = start + torch.arange(steps, dtype=torch.float32)[:, None, None, None].expand(steps, copies, n, d).clone()
    dones = torch.zeros(steps, copies, dtype=torch.bool)
    for t, b in done_at:
        dones[t, b] = True
    zeros = torch.zeros(steps, copies, n)
    return Rollout(obs, torch.zeros(steps, copies, n, dtype=torch.long), zeros, zeros, zeros, zeros, dones,
                   obs + 1, dones.clone())


def test_buffer_is_fifo_and_holds_out_every_kth_column():
    buffer = RealBuffer(capacity_steps=40, segment_steps=10, holdout_fraction=0.25)
    assert buffer.capacity == 4 and buffer.holdout_every == 4
    for k in range(3):  # 6 columns into 4 slots: the first two are overwritten
        part = segment(10, 2, start=100.0 * k)
        buffer.add(part, part.actions)
    assert len(buffer) == 4 and buffer.num_steps == 40 and buffer.added == 6
    starts = sorted(buffer.data["obs"][:, 0, 0, 0].tolist())
    assert starts == [100.0, 100.0, 200.0, 200.0]
    # every 4th column ever added is held out: column 3, which sits in slot 3
    assert buffer.held_out.tolist() == [False, False, False, True]
    held = buffer.sample(50, held_out=True)
    fit = buffer.sample(50)
    assert held["obs"].shape == (50, 2, 1) and held["actions"].shape == (50, 2)
    assert torch.all(held["next_obs"] == held["obs"] + 1)
    assert set(held["obs"][:, 0, 0].div(100).floor().tolist()) == {1.0}  # slot 3 holds the second segment
    assert fit["obs"].max() >= 200  # the fitting slots hold the newest segment


def test_latest_columns_are_the_newest_segment_even_after_wrapping():
    buffer = RealBuffer(capacity_steps=12, segment_steps=4, holdout_fraction=0.0)  # 3 columns
    for k in range(4):  # the 4th segment of one column overwrites slot 0
        buffer.add(segment(4, 1, start=10.0 * k), torch.zeros(4, 1, 2, dtype=torch.long))
    assert buffer.latest_columns(1).tolist() == [0] and buffer.latest_columns(2).tolist() == [0, 2]
    windows = buffer.windows(2, columns=buffer.latest_columns(1))
    assert windows["obs"][:, 0, 0].tolist() == [30.0, 31.0, 32.0]  # the newest segment's starts


def test_branches_start_from_every_stored_segment():
    buffer = RealBuffer(capacity_steps=60, segment_steps=10, holdout_fraction=0.0)  # 6 columns
    for k in range(3):  # two copies per segment; segment k counts up from 100 k
        part = segment(10, 2, start=100.0 * k)
        buffer.add(part, part.actions)
    torch.manual_seed(0)
    everywhere = buffer.start_states(200)[:, 0, 0].div(100).floor()
    assert set(everywhere.tolist()) == {0.0, 1.0, 2.0}


def test_windows_never_cross_an_episode_end():
    buffer = RealBuffer(capacity_steps=10, segment_steps=10, holdout_fraction=0.0)
    part = segment(10, 1, done_at=[(3, 0)])
    buffer.add(part, part.actions)
    windows = buffer.windows(4, held_out=False)
    # starts 0..6; a window starting at t uses transitions t..t+3 and may end AT step 3 but not span it
    assert windows["obs"][:, 0, 0].tolist() == [0.0, 4.0, 5.0, 6.0]
    assert windows["actions"].shape == (4, 4, 2) and windows["next_obs"].shape == (4, 4, 2, 1)
    assert torch.equal(windows["next_obs"][:, -1, 0, 0], windows["obs"][:, 0, 0] + 4)


def test_buffer_refuses_segments_without_next_states():
    buffer = RealBuffer(20, 10)
    part = segment(10, 1)
    with pytest.raises(ValueError, match="next_obs"):
        buffer.add(Rollout(*[getattr(part, f) for f in ("obs", "actions", "log_probs", "rewards", "values",
                                                         "next_values", "dones")]), part.actions)
    with pytest.raises(ValueError, match="5-step"):
        RealBuffer(20, 5).add(part, part.actions)


def cacc_algorithm(**dmpo):
    config = from_dict({"algo": "dmpo", "env": {"num_envs": 4, "options": {"terminate_on_collision": True}},
                        "rollout_steps": 50, "dmpo": {"rollouts": 32, "horizon": 6, **dmpo}})
    env = gdmpo.make("cacc-catchup", num_envs=4, seed=0, terminate_on_collision=True)
    return DMPO(build_agent(config, env), env, 50, config.model, config.dmpo), env


def test_branched_rollout_shapes_bootstrap_and_restarts():
    torch.manual_seed(0)
    algo, env = cacc_algorithm()
    rollout, _, _ = collect(env, algo.agent, env.reset(), 50)
    algo.buffer.add(rollout, rollout.actions)
    algo.model.update_normalizers(rollout.obs, rollout.next_obs, rollout.rewards)
    start = algo.buffer.start_states(32)
    data = branched_rollout(algo.agent, algo.model, start, 6, algo.buffer, bounds=algo.obs_bounds)
    assert torch.all((data.next_obs >= algo.obs_bounds[0]) & (data.next_obs <= algo.obs_bounds[1]))
    assert data.obs.shape == (6, 32, 8, 5) and data.actions.shape == (6, 32, 8) and data.rewards.shape == (6, 32, 8)
    assert data.dones.shape == (6, 32) and data.next_obs.shape == (6, 32, 8, 5)
    assert torch.equal(data.obs[0], start)
    alive = ~data.dones[:-1, :, None, None]
    assert torch.equal(torch.where(alive, data.obs[1:], 0), torch.where(alive, data.next_obs[:-1], 0))
    # the last step is bootstrapped with V of the state it reached (eq. 7), unless terminal
    final = algo.agent.value(data.next_obs[-1]) * (~data.dones[-1])[:, None]
    assert torch.allclose(data.next_values[-1], final, atol=1e-5)
    # a model that predicts huge increases is held inside the observation space where it is bounded
    with torch.no_grad():
        for member in algo.model.members:
            member.head[-1].bias[:5] += 1e3
    data = branched_rollout(algo.agent, algo.model, start, 2, algo.buffer, bounds=algo.obs_bounds)
    finite = torch.isfinite(algo.obs_bounds[1])
    assert torch.all(data.next_obs[..., finite] == algo.obs_bounds[1][finite])
    # force every rollout to look terminal: each restarts from a real state, none is bootstrapped
    for member in algo.model.members:
        member.head[-1].bias.data[-1] = 50.0
    data = branched_rollout(algo.agent, algo.model, start, 3, algo.buffer)
    assert data.dones.all() and torch.all(data.next_values == 0)
    real = {tuple(s.flatten().tolist()) for s in algo.buffer.data["obs"].flatten(0, 1)}
    assert all(tuple(s.flatten().tolist()) in real for s in data.obs[1].unbind(0))


def test_rollout_step_of_an_agent_ignores_agents_beyond_its_receptive_field():
    """Agent 0 of an 8-chain acts on 1 hop (κ_π) and is predicted from 1 hop (κ_p): agent 5 cannot matter."""
    algo, env = cacc_algorithm()
    rollout, _, _ = collect(env, algo.agent, env.reset(), 50)
    algo.model.update_normalizers(rollout.obs, rollout.next_obs, rollout.rewards)
    start = rollout.obs[10]
    moved = start.clone()
    moved[:, 5] += 1.0
    outs = []
    for s in (start, moved):
        torch.manual_seed(3)
        outs.append(branched_rollout(algo.agent, algo.model, s, 2))
    assert torch.equal(outs[0].next_obs[0, :, 0], outs[1].next_obs[0, :, 0])
    assert torch.equal(outs[0].rewards[0, :, :3], outs[1].rewards[0, :, :3])
    assert not torch.equal(outs[0].next_obs[0, :, 5], outs[1].next_obs[0, :, 5])
    # two steps later the change has travelled: agent 3 (two hops from 5) sees it through its neighbour
    assert not torch.equal(outs[0].next_obs[1, :, 3], outs[1].next_obs[1, :, 3])


def test_ensemble_elites_are_the_members_with_lowest_held_out_error():
    torch.manual_seed(0)
    env = Drift(num_envs=4, horizon=20)
    config = ModelConfig(net=NetworkConfig(hidden=[8, 8]), ensemble_size=3, elites=2, holdout_fraction=0.25,
                         batch_size=16, lr=1e-2)
    model = DynamicsEnsemble(1, env.action_space, config, env.graph.edge_index, 3)
    buffer = RealBuffer(400, 20, 0.25)
    obs = env.reset()
    for _ in range(5):
        actions = torch.rand(20, 4, 3, 1) * 2 - 1
        seg_obs, seg_next, rewards = [], [], []
        for t in range(20):
            nxt, rew, _, _, info = env.step(actions[t])
            seg_obs.append(obs), seg_next.append(info["final_obs"]), rewards.append(rew)
            obs = nxt
        zeros = torch.zeros(20, 4, 3)
        dones = torch.zeros(20, 4, dtype=torch.bool)
        dones[-1] = True
        part = Rollout(torch.stack(seg_obs), actions, zeros, torch.stack(rewards), zeros, zeros, dones,
                       torch.stack(seg_next), torch.zeros(20, 4, dtype=torch.bool))
        buffer.add(part, actions)
        model.update_normalizers(part.obs, part.next_obs, part.rewards)
    model.fit(buffer, 300)
    with torch.no_grad():  # spoil member 0: it must drop out of the elites
        model.members[0].head[-1].bias.add_(5.0)
    errors = model.evaluate(buffer, horizon=10)
    assert set(model.elites.tolist()) == {1, 2}
    assert {"model_state_mse", "model_reward_mse", "model_error_1", "model_error_5", "model_error_T"} <= set(errors)
    assert errors["model_error_1"] < 0.01  # s' = s + a is easy
    assert errors["model_error_1"] <= errors["model_error_T"]
    assert set(model.assign_members(100).tolist()) == {1, 2}


def test_short_dmpo_run_beats_random_on_drift():
    """Drift rewards moving up; 12 short DMPO iterations on mostly model data learn to push +1."""
    torch.manual_seed(0)
    env = Drift(num_envs=8, horizon=10)
    config = from_dict({"algo": "dmpo", "policy_net": {"hidden": [16, 16]}, "value_net": {"hidden": [16, 16]},
                        "ppo": {"reward_scale": 1.0, "gae_lambda": 0.95, "lr_policy": 3e-3, "lr_value": 3e-3},
                        "model": {"net": {"hidden": [16, 16]}, "lr": 3e-3, "batch_size": 32},
                        "dmpo": {"warmup_env_steps": 160, "warmup_model_steps": 300, "model_steps": 50,
                                 "rollouts": 64, "horizon": 5, "inner_updates": 4, "model_data_prob": 1.0}})
    agent = build_agent(config, env)
    algo = DMPO(agent, env, 20, config.model, config.dmpo)
    random = run_episodes(env, lambda o: torch.rand(o.shape[0], 3, 1) * 2 - 1, 16, seed=1)["mean_return"]
    obs = env.reset()
    for _ in range(12):
        result = algo.iteration(env, obs)
        obs = result.obs
    assert result.metrics["model_updates"] == 4 and result.metrics["model_steps"] > 0
    assert algo.env_steps == 12 * 160
    trained = run_episodes(env, lambda o: agent.policy.to_env(agent.act(o, deterministic=True)[0]), 16,
                           seed=1)["mean_return"]
    # random play is worth about 3 agents x (10 x 0.5 start) = 15; always +1 is worth 15 + 3 x 55 = 180
    assert trained > random + 60, (trained, random)


TINY_DMPO = {"algo": "dmpo", "env.num_envs": 2, "rollout_steps": 30, "ppo.epochs": 1,
             "policy_net.hidden": [8], "value_net.hidden": [8], "dmpo.warmup_env_steps": 60,
             "dmpo.warmup_model_steps": 10, "dmpo.model_steps": 5, "dmpo.rollouts": 8, "dmpo.horizon": 4,
             "dmpo.inner_updates": 2, "dmpo.model_data_prob": 1.0}


def train_tiny_dmpo(run, steps: int, **overrides) -> None:
    """A seconds-long DMPO run on the embedded default env: 60 real steps per iteration, 8 x 4 branches."""
    config = from_dict(gdmpo.config.apply_overrides({}, {**TINY_DMPO, **overrides}))
    gdmpo.train(config, run, total_env_steps=steps, progress=False)


def test_dmpo_run_directory_and_resume(tmp_path):
    """metrics.csv counts real and model steps apart, logs model errors and timings; resume restores D^E."""
    run = tmp_path / "run"
    train_tiny_dmpo(run, 300, **{"policy_net.hidden": [8, 8], "value_net.hidden": [8, 8],
                                 "dmpo.warmup_model_steps": 20, "model.holdout_fraction": 0.25})
    import csv

    with open(run / "metrics.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [int(r["env_steps"]) for r in table] == [60, 120, 180, 240, 300]
    assert [int(r["model_steps"]) for r in table] == [2 * 8 * 4 * k for k in range(1, 6)]
    assert all(float(r["time_env"]) > 0 and float(r["time_rollout"]) > 0 for r in table)
    assert table[-1]["model_error_T"] != "" and table[-1]["model_state_mse"] != ""
    assert table[0]["model_return_error_fresh"] == "" and table[-1]["model_return_error_fresh"] != ""  # once fitted
    trainer = gdmpo.Trainer.resume(run)
    assert trainer.algorithm.buffer.added == 10 and trainer.algorithm.model_steps == 320
    summary = trainer.train(total_env_steps=360, progress=False)
    assert summary["env_steps"] == 360


@pytest.mark.parametrize("budget,expected", [(None, 3), (1e-9, 1)])
def test_the_iteration_kl_budget_ends_the_inner_updates_once_the_policy_moved_that_far(tmp_path, budget, expected):
    """With a budget no update can stay under, each iteration runs one inner update, then stops."""
    run = tmp_path / "run"
    train_tiny_dmpo(run, 180, **{"dmpo.inner_updates": 3, "dmpo.model_data_prob": 0.5, "dmpo.iteration_kl": budget})
    import csv

    with open(run / "metrics.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["inner_updates_run"] for r in table] == [str(expected)] * 3
    assert (table[-1]["iteration_kl"] == "") == (budget is None)
    if budget is not None:
        assert float(table[-1]["iteration_kl"]) > budget


def test_drift_is_zero_for_the_collecting_policy_and_grows_with_updates():
    torch.manual_seed(0)
    env = Drift(num_envs=4, horizon=10)
    agent = build_agent(from_dict({"algo": "dmpo", "policy_net": {"hidden": [8]}, "value_net": {"hidden": [8]}}), env)
    rollout, _, _ = collect(env, agent, env.reset(seed=0), 10)
    assert abs(agent.drift(rollout)) < 1e-6  # the same policy: every ratio is 1
    agent.update(rollout)
    assert agent.drift(rollout) > 1e-6


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


@pytest.mark.parametrize("device", DEVICES)
def test_dmpo_trains_evaluates_and_resumes_on_the_configured_device(tmp_path, device):
    """Every tensor of a run follows ``device``: graph matrices, buffer indices, evaluation env, resumed data."""
    run = tmp_path / "run"
    train_tiny_dmpo(run, 120, **{"device": device, "ppo.advantage_hops": 1})
    summary = gdmpo.evaluate(run / "checkpoints/last.pt", episodes=2)
    assert summary["episodes"] == 2
    trainer = gdmpo.Trainer.resume(run)
    assert trainer.agent.reach.device.type == device  # not saved, rebuilt and moved with the networks
    assert "reach" not in trainer.agent.state_dict()
    assert {v.device.type for v in trainer.algorithm.buffer.data.values()} == {device}
    assert trainer.train(total_env_steps=180, progress=False)["env_steps"] == 180
    trainer.close()
    state = load_checkpoint(run / "checkpoints/last.pt")  # as if trained on a GPU this machine lacks
    state["config"]["device"] = f"cuda:{torch.cuda.device_count()}"
    save_checkpoint(state, tmp_path / "elsewhere.pt")
    assert gdmpo.evaluate(tmp_path / "elsewhere.pt", episodes=1)["episodes"] == 1  # plays on the CPU


def fitted_drift_model(members: int = 3) -> tuple:
    """A PPO agent and a ``members``-strong ensemble fitted on Drift (s' = s + a), with its buffer."""
    torch.manual_seed(0)
    env = Drift(num_envs=8, horizon=10)
    config = from_dict({"algo": "dmpo", "policy_net": {"hidden": [16]}, "value_net": {"hidden": [16]},
                        "ppo": {"value_hops": 1},
                        "model": {"net": {"hidden": [16, 16]}, "lr": 3e-3, "batch_size": 32,
                                  "ensemble_size": members, "elites": members, "holdout_fraction": 0.25}})
    agent = build_agent(config, env)
    algo = DMPO(agent, env, 10, config.model, config.dmpo)
    obs = env.reset(seed=0)
    for _ in range(4):
        rollout, obs, _ = collect(env, agent, obs, 10)
        algo.buffer.add(rollout, agent.policy.to_env(rollout.actions))
        algo.model.update_normalizers(rollout.obs, rollout.next_obs, rollout.rewards)
    algo.model.fit(algo.buffer, 300)
    return env, agent, algo


def test_a_branch_stops_where_the_elites_disagree_and_bootstraps_from_the_state_it_reached():
    env, agent, algo = fitted_drift_model()
    model, start = algo.model, algo.buffer.start_states(16)
    members = model.assign_members(16)
    actions = torch.rand(16, 3, 1) * 2 - 1
    pred, spread = model.step_with_spread(start, actions, members)
    plain = model.step(start, actions, members)
    assert torch.allclose(pred.next_obs, plain.next_obs) and torch.allclose(pred.reward, plain.reward)
    assert spread.shape == (16,) and bool((spread >= 0).all())
    torch.manual_seed(1)
    calm = branched_rollout(agent, model, start, 6, algo.buffer, spread_threshold=1e6)
    assert not calm.dones.any()
    with torch.no_grad():  # member 2 now predicts far-off states: every step is in doubt
        model.members[2].head[-1].bias[:1] += 50.0  # the state change only
    _, spread = model.step_with_spread(start, actions, members)
    assert bool((spread > 10).all())
    wild = branched_rollout(agent, model, start, 6, algo.buffer, spread_threshold=1.0)
    assert wild.dones.all() and not wild.terminated.any()
    expected = agent.value(wild.next_obs.reshape(6 * 16, 3, 1)).reshape(6, 16, 3)
    assert torch.allclose(wild.next_values, expected, atol=1e-6)  # not the restarted state's value


def test_model_share_falls_from_tolerance_to_twice_it():
    _, _, algo = fitted_drift_model(members=1)
    algo.config = dataclasses.replace(algo.config, model_data_prob=0.8, return_error_tolerance=0.5)
    assert [algo.model_share(e) for e in (None, 0.2, 0.5, 0.75, 1.0, 3.0)] == pytest.approx([0.8, 0.8, 0.8, 0.4, 0, 0])
    algo.config = dataclasses.replace(algo.config, return_error_tolerance=None)
    assert algo.model_share(3.0) == 0.8


@pytest.mark.parametrize("guard", [True, False])
@pytest.mark.slow  # learning measured over many updates: the slow set
def test_the_return_guard_keeps_the_best_return_after_a_forced_model_error(guard):
    """Learn Drift on model data, then make the model lie (it predicts the negated reward, so pushing
    down looks best). With the guard the policy keeps its return; without it, it unlearns."""
    torch.manual_seed(0)
    env = Drift(num_envs=8, horizon=10)
    config = from_dict({"algo": "dmpo", "policy_net": {"hidden": [16, 16]}, "value_net": {"hidden": [16, 16]},
                        "ppo": {"reward_scale": 1.0, "gae_lambda": 0.95, "lr_policy": 3e-3, "lr_value": 3e-3},
                        "model": {"net": {"hidden": [16, 16]}, "lr": 3e-3, "batch_size": 32,
                                  "holdout_fraction": 0.25},
                        "dmpo": {"warmup_env_steps": 160, "warmup_model_steps": 300, "model_steps": 50,
                                 "rollouts": 64, "horizon": 5, "inner_updates": 4, "model_data_prob": 1.0,
                                 "return_error_tolerance": 0.5 if guard else None}})
    agent = build_agent(config, env)
    algo = DMPO(agent, env, 20, config.model, config.dmpo)

    def score() -> float:
        return run_episodes(env, lambda o: agent.policy.to_env(agent.act(o, deterministic=True)[0]), 16,
                            seed=1)["mean_return"]

    probe = env.reset(seed=5)

    def push() -> float:
        """The policy's mean pre-squash output on fixed states: how hard it pushes up."""
        edge_index, _ = agent.graph_of(probe.size(0))
        with torch.no_grad():
            flat = probe.reshape(-1, 1)
            return float(agent.policy.net(agent.policy.features(flat, edge_index), edge_index).mean())

    obs = env.reset()
    for _ in range(12):
        obs = algo.iteration(env, obs).obs
    learned, pushed = score(), push()
    assert learned > 100, learned  # random play is worth about 15, always +1 about 180
    honest = algo.model.step

    def lying(*args, **kwargs):
        pred = honest(*args, **kwargs)
        pred.reward = -pred.reward
        return pred

    algo.model.step = lying
    shares = []
    for _ in range(8):
        result = algo.iteration(env, obs)
        obs = result.obs
        shares.append(result.metrics["model_share"])
    after = score()
    if guard:
        assert shares == [0.0] * 8 and after > learned - 30, (shares, learned, after)
        assert push() > pushed - 0.1  # real data keep it pushing up
    else:  # the lie is exploitable: unguarded, the policy turns towards pushing down
        assert push() < pushed - 0.5, (pushed, push())


def tiny_drift_dmpo(**dmpo) -> tuple[Drift, DMPO]:
    """A DMPO on 4 copies of Drift (10-step episodes, 10 vector steps per iteration), nets of width 8
    and 3 inner updates on 8 branches of 3 steps: small enough to count every update it makes."""
    torch.manual_seed(0)
    env = Drift(num_envs=4, horizon=10)
    config = from_dict({"algo": "dmpo", "policy_net": {"hidden": [8, 8]}, "value_net": {"hidden": [8, 8]},
                        "model": {"net": {"hidden": [8, 8]}, "batch_size": 16},
                        "dmpo": {"warmup_model_steps": 20, "model_steps": 5, "rollouts": 8, "horizon": 3,
                                 "inner_updates": 3, **dmpo}})
    return env, DMPO(build_agent(config, env), env, 10, config.model, config.dmpo)


def test_the_handoff_waits_for_a_policy_near_its_best_then_runs_dppos_update_without_the_model(monkeypatch):
    """``model_free_after``: before it, and after it while the policy is in a relapse, iterations are
    model-based (model fitted, branched rollouts); from the first iteration at or after it whose last
    ``num_envs`` training episodes average within ``handoff_slack`` x |best| of the best such average,
    each runs exactly one update on the segment as collected and never fits or rolls out the model."""
    handoff = {"warmup_env_steps": 40, "model_data_prob": 1.0, "model_free_after": 80, "handoff_slack": 0.5}
    env, algo = tiny_drift_dmpo(**handoff)
    agent = algo.agent
    # each iteration's 4 finished episodes return this (best -1; the slack admits down to -1.5)
    team_returns = iter([-1.0, -10.0, -10.0, -1.2, -10.0])
    collected, updated, fits = [], [], []
    real_collect = gdmpo.algos.dmpo.collect

    def scripted_collect(*args):
        rollout, obs, log = real_collect(*args)
        log.returns = [next(team_returns)] * 4
        collected.append(rollout)
        return rollout, obs, log

    monkeypatch.setattr(gdmpo.algos.dmpo, "collect", scripted_collect)
    real_update, real_fit = agent.update, algo.model.fit
    monkeypatch.setattr(agent, "update", lambda data: updated.append(data) or real_update(data))
    monkeypatch.setattr(algo.model, "fit", lambda *a: fits.append(algo.env_steps) or real_fit(*a))
    # handoff_entropy widens the policy once, at the hand-over, on the states of the segment just used
    algo.config = dataclasses.replace(algo.config, handoff_entropy=0.7)
    widened = []
    monkeypatch.setattr(agent, "widen_policy", lambda obs, fraction: widened.append((obs, fraction, len(updated))) or 3.0)
    obs = env.reset(seed=0)
    model_updates, temperatures = [], []
    for _ in range(5):  # 40 real steps each: iterations begin at 0, 40, 80, 120 and 160 real steps
        before = len(updated)
        result = algo.iteration(env, obs)
        obs = result.obs
        model_updates.append(result.metrics["model_updates"])
        temperatures.append(result.metrics.get("handoff_temperature"))
        if algo.env_steps > 120:
            assert len(updated) == before + 1 and updated[-1] is collected[-1]  # the segment as collected
            assert result.metrics["model_share"] == 0.0
    assert fits == [40, 80, 120]  # at 80 real steps the policy was in a relapse (-10 < -1.5): no handoff
    assert model_updates == [3, 3, 3, 0, 0]  # handed over at 120 (-1.2) and for good (-10 at 160)
    assert algo.model_steps == 3 * 3 * 8 * 3  # three iterations of 3 updates on 8 branches of 3 steps
    assert temperatures == [None, None, None, 3.0, None]
    assert len(widened) == 1 and widened[0][0] is collected[3].obs and widened[0][1:] == (0.7, len(updated) - 1)
    _, resumed = tiny_drift_dmpo(**handoff)
    resumed.load_state_dict(algo.state_dict())
    assert resumed.handoff.done and resumed.handoff.best == -1.0


def test_a_negative_handoff_is_refused_by_name():
    with pytest.raises(ValueError, match="dmpo.model_free_after"):
        tiny_drift_dmpo(model_free_after=-1)
    with pytest.raises(ValueError, match=r"dmpo.handoff_entropy must be in \(0, 1\]"):
        tiny_drift_dmpo(handoff_entropy=1.5)
    with pytest.raises(ValueError, match="dmpo.handoff_entropy softens categorical policies only"):
        tiny_drift_dmpo(handoff_entropy=0.5)  # Drift's actions are continuous


def test_the_handoff_deadline_hands_over_from_a_relapse_with_the_best_policy_restored(monkeypatch):
    """``handoff_deadline``: a policy that stays in a relapse (-10 against its best -1) keeps DMPO model-
    based past ``model_free_after`` (80) until the deadline (120); the iteration that begins there hands
    over, first loading the weights the agent had when its episodes were best (the first iteration's),
    and stays model-free. The kept weights survive a checkpoint."""
    handoff = {"warmup_env_steps": 40, "model_data_prob": 1.0, "model_free_after": 80, "handoff_slack": 0.5,
               "handoff_deadline": 120}
    env, algo = tiny_drift_dmpo(**handoff)
    agent = algo.agent
    team_returns = iter([-1.0, -10.0, -10.0, -10.0, -10.0])
    real_collect = gdmpo.algos.dmpo.collect
    weights_when_collected = []

    def scripted_collect(*args):
        weights_when_collected.append({k: v.clone() for k, v in agent.state_dict().items()})
        rollout, obs, log = real_collect(*args)
        log.returns = [next(team_returns)] * 4
        return rollout, obs, log

    monkeypatch.setattr(gdmpo.algos.dmpo, "collect", scripted_collect)
    real_update = agent.update
    weights_at_update = []
    monkeypatch.setattr(agent, "update", lambda data: weights_at_update.append(
        {k: v.clone() for k, v in agent.state_dict().items()}) or real_update(data))
    obs = env.reset(seed=0)
    model_updates = []
    for _ in range(5):  # iterations begin at 0, 40, 80, 120 and 160 real steps
        result = algo.iteration(env, obs)
        obs = result.obs
        model_updates.append(result.metrics["model_updates"])
    assert model_updates == [3, 3, 3, 0, 0]  # past 80 in a relapse; forced over at 120, for good
    assert algo.handoff.done and algo.handoff.forced and algo.handoff.best == -1.0
    best = weights_when_collected[0]
    assert any(not torch.equal(best[k], weights_when_collected[3][k]) for k in best)  # it had moved on
    restored = weights_at_update[-2]  # the hand-over's one update starts from the first iteration's weights
    assert all(torch.equal(best[k], restored[k]) for k in best)
    _, resumed = tiny_drift_dmpo(**handoff)
    resumed.load_state_dict(algo.state_dict())
    assert all(torch.equal(best[k], resumed.best_agent[k]) for k in best)


def test_the_handoff_deadline_is_checked_by_name():
    with pytest.raises(ValueError, match="dmpo.handoff_deadline must be >= 0 and needs dmpo.model_free_after"):
        tiny_drift_dmpo(handoff_deadline=100)
    with pytest.raises(ValueError, match="dmpo.handoff_deadline"):
        tiny_drift_dmpo(model_free_after=80, handoff_deadline=-1)
