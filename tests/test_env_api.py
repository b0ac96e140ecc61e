"""The shared vector API: continuous-action checks and auto-reset bookkeeping on a tiny env."""

import pytest
import torch
from toy_envs import Drift

from gdmpo.envs import ActionError


def test_box_actions_checked():
    env = Drift()
    env.reset()
    env.step(torch.zeros(2, 3))  # [B, n] accepted for 1-d actions
    with pytest.raises(ActionError, match="NaN"):
        env.step(torch.full((2, 3, 1), float("nan")))
    with pytest.raises(ActionError, match="floating-point"):
        env.step(torch.zeros(2, 3, 1, dtype=torch.long))
    with pytest.raises(ActionError, match="\\[2, 3, 1\\]"):
        env.step(torch.zeros(2, 4, 1))


def test_auto_reset_reports_final_obs_and_returns():
    env = Drift(horizon=3)
    start = env.reset(seed=5)
    ones = torch.ones(2, 3, 1)
    rewards = []
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(ones)
        rewards.append(reward)
    assert bool(truncated.all()) and bool(info["done"].all())
    assert torch.allclose(info["final_obs"], start + 3)
    per_agent = torch.stack(rewards).sum(0)
    assert torch.allclose(info["episode_agent_return"], per_agent)
    assert torch.allclose(info["episode_return"], per_agent.sum(1))
    assert not torch.allclose(obs, info["final_obs"])  # the returned obs starts the next episode
    obs, reward, *_ , info = env.step(ones)
    assert info["episode_length"].tolist() == [1, 1] and info["episode_return"].isnan().all()


def test_autoreset_is_declared_and_can_be_turned_off_for_wrappers_that_reset_copies():
    from gymnasium.vector import AutoresetMode

    env = Drift(horizon=2)
    assert env.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    env.autoreset = False
    assert env.metadata["autoreset_mode"] is AutoresetMode.DISABLED
    start = env.reset(seed=1)
    ones = torch.ones(2, 3, 1)
    env.step(ones)
    obs, _, _, truncated, info = env.step(ones)  # the horizon ends both copies
    assert bool(truncated.all()) and torch.equal(obs, info["final_obs"]) and torch.allclose(obs, start + 2)
    with pytest.raises(RuntimeError, match=r"copies \[0, 1\] finished .* call reset_copies"):
        env.step(ones)
    fresh = env.reset_copies(torch.tensor([False, True]))  # copy 1 only: copy 0 stays finished, its rows kept
    assert torch.equal(fresh[0], obs[0]) and bool((fresh[1] < 1).all())
    with pytest.raises(RuntimeError, match=r"copies \[0\] finished"):
        env.step(ones)
    env.reset_copies()  # the finished ones
    _, _, _, _, info = env.step(ones)
    assert info["episode_length"].tolist() == [1, 1] and info["episode_return"].isnan().all()


def test_context_manager_closes():
    closed = []

    class Closing(Drift):
        def close(self):
            closed.append(True)

    with Closing() as env:
        env.reset()
    assert closed == [True]


def test_a_second_thread_inside_step_is_refused_not_interleaved():
    import threading

    env = Drift()
    env.reset()
    inside, release = threading.Event(), threading.Event()
    real_step = env._step

    def slow_step(actions):  # the first thread stays inside step() until told
        inside.set()
        release.wait(5)
        return real_step(actions)

    env._step = slow_step
    worker = threading.Thread(target=env.step, args=(torch.zeros(2, 3, 1),))
    worker.start()
    inside.wait(5)
    try:
        with pytest.raises(RuntimeError, match=r"Drift.step\(\) called while another thread is inside .* give each "
                                               r"thread its own"):
            env.step(torch.zeros(2, 3, 1))
        with pytest.raises(RuntimeError, match=r"Drift.reset\(\) called while another thread"):
            env.reset()
    finally:
        release.set()
        worker.join()
    env._step = real_step
    env.step(torch.zeros(2, 3, 1))  # free again once the first call returned


def test_a_worker_that_does_not_answer_in_time_is_stopped_and_named(monkeypatch):
    import time

    from toy_envs import Sleeper

    from gdmpo.envs.sumo.workers import SumoError, SumoWorkers

    monkeypatch.setenv("GDMPO_WORKER_TIMEOUT", "1")
    workers = SumoWorkers(Sleeper, [(), ()])
    try:
        assert workers.call("nap", [(0.1,), (0.1,)]) == [0.1, 0.1]
        start = time.perf_counter()
        with pytest.raises(SumoError, match=r"SUMO worker 1 did not answer 'nap' within 1 s and was stopped"):
            workers.call("nap", [(0.1,), (60.0,)])
        assert time.perf_counter() - start < 20 and not workers.alive(1) and workers.alive(0)
        monkeypatch.setenv("GDMPO_WORKER_TIMEOUT", "soon")
        with pytest.raises(ValueError, match="GDMPO_WORKER_TIMEOUT must be a number of seconds > 0, got 'soon'"):
            workers.call("nap", [(0.1,)], [0])
        monkeypatch.setenv("GDMPO_WORKER_TIMEOUT", "5")
        assert workers.call("nap", [(0.2,)], [0]) == [0.2]  # nothing was left pending: answers stay in step
    finally:
        workers.close()
