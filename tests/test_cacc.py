"""CACC dynamics, reward and API checked against values worked out by hand."""

import math

import pytest
import torch

import gdmpo
from gdmpo.envs import ActionError, CACCParams
from gdmpo.envs.cacc import ovm_speed

P = CACCParams()


def make(num_envs=1, **kw):
    kw.setdefault("dtype", torch.float64)
    env = gdmpo.make(kw.pop("env_id", "cacc-catchup"), num_envs=num_envs, seed=0, **kw)
    env.reset()
    return env


def full(shape, value):
    return torch.full(shape, value, dtype=torch.float64)


def set_state(env, headway, speed):
    env.headway[:] = torch.as_tensor(headway, dtype=env.dtype)
    env.speed[:] = torch.as_tensor(speed, dtype=env.dtype)


def test_ovm_equilibrium_and_shape():
    h = torch.tensor([0.0, 5.0, 20.0, 30.0, 35.0, 50.0], dtype=torch.float64)
    v = ovm_speed(h, P)
    assert v[0] == 0 and v[1] == 0  # at or below h_stop
    assert v[2] == pytest.approx(15.0)  # V(h*) = v*: 15 (1 - cos(pi/2))
    assert v[3] == pytest.approx(15 * (1 + math.sqrt(3) / 2))  # 15 (1 - cos(5 pi / 6))
    assert v[4] == 30 and v[5] == 30


def test_platoon_at_equilibrium_stays_there_with_zero_reward():
    env = make(2)
    set_state(env, full((2, 8), 20.0), full((2, 8), 15.0))
    for action in range(4):
        for _ in range(50):
            _, reward, *_ = env.step(torch.full((2, 8), action))
            assert torch.allclose(env.headway, torch.tensor(20.0, dtype=torch.float64))
            assert torch.allclose(env.speed, torch.tensor(15.0, dtype=torch.float64))
            assert torch.allclose(reward, torch.zeros(2, 8, dtype=torch.float64))


def test_trapezoid_headway_update_and_acceleration_clip():
    env = make()
    headway = full((1, 8), 20.0)
    headway[0, 0] = 30.0  # vehicle 1 far behind the leader (V(30) ≈ 27.99 m/s)
    set_state(env, headway, full((1, 8), 15.0))
    actions = torch.zeros(1, 8, dtype=torch.long)
    actions[0, 0] = 1  # alpha = 0.5: u = 0.5 (27.99 - 15) = 6.5, clipped to 2.5
    env.step(actions)
    assert env.speed[0, 0] == pytest.approx(15.25)
    assert env.accel[0, 0] == pytest.approx(2.5)
    # h' = 30 + 0.05 (15 + 15 - 15 - 15.25) = 29.9875
    assert env.headway[0, 0] == pytest.approx(29.9875)
    # vehicle 2 sees its leader speed up: h' = 20 + 0.05 (15 + 15.25 - 15 - 15) = 20.0125
    assert env.headway[0, 1] == pytest.approx(20.0125)


def test_speed_clipped_to_bounds_and_applied_acceleration_recomputed():
    # With the benchmark gains u <= (alpha + beta)(v_max - v) never overshoots; strong gains do.
    env = make(gains=((0.0, 0.0), (20.0, 0.0)))
    headway = full((1, 8), 20.0)
    headway[0, 0], headway[0, 1] = 60.0, 2.0  # vehicle 1 wants v_max, vehicle 2 wants to stop
    speed = full((1, 8), 15.0)
    speed[0, 0], speed[0, 1] = 29.9, 0.1
    set_state(env, headway, speed)
    env.step(torch.ones(1, 8, dtype=torch.long))
    assert env.speed[0, 0] == pytest.approx(30.0)  # u = 20 (30 - 29.9) = 2: 29.9 + 0.2 clipped to v_max
    assert env.accel[0, 0] == pytest.approx(1.0)  # (30 - 29.9) / 0.1
    assert env.speed[0, 1] == pytest.approx(0.0)  # u = 20 (0 - 0.1) = -2: 0.1 - 0.2 clipped to 0
    assert env.accel[0, 1] == pytest.approx(-1.0)


def test_reward_terms_and_train_shaping_switch():
    for shaping, expected in ((True, -144.0 - 5 * 4.0), (False, -144.0)):
        env = make(train_shaping=shaping)
        headway = full((1, 8), 20.0)
        headway[0, 3] = 8.0  # (8 - 20)^2 = 144; shaping 5 min(8 - 10, 0)^2 = 20
        set_state(env, headway, full((1, 8), 15.0))
        _, reward, *_ = env.step(torch.zeros(1, 8, dtype=torch.long))
        assert reward[0, 3].item() == pytest.approx(expected)
        assert reward[0, 0].item() == pytest.approx(0.0)
    env = make(train_shaping=False)
    speed = full((1, 8), 15.0)
    speed[0, 7] = 17.0  # last vehicle: nobody behind it, action 0 keeps its speed
    set_state(env, full((1, 8), 20.0), speed)
    _, reward, *_ = env.step(torch.zeros(1, 8, dtype=torch.long))
    h7 = 20 + 0.05 * (15 + 15 - 17 - 17)
    assert reward[0, 7].item() == pytest.approx(-((h7 - 20) ** 2) - 4.0)


def test_collision_penalty_until_episode_end():
    env = make(2, train_shaping=False)
    headway = full((2, 8), 20.0)
    headway[0, 2] = 1.5
    speed = full((2, 8), 15.0)
    speed[0, 2] = 25.0  # closes 1 m in one step: h' = 1.5 + 0.05 (15 + 15 - 25 - 25) = 0.5 < h_min
    set_state(env, headway, speed)
    zeros = torch.zeros(2, 8, dtype=torch.long)
    _, reward, *_ = env.step(zeros)
    assert torch.equal(reward[0], torch.full((8,), -1000.0, dtype=torch.float64))
    assert bool(env.collided[0]) and not bool(env.collided[1])
    assert torch.allclose(reward[1], torch.zeros(8, dtype=torch.float64))
    total = reward.clone()
    for t in range(2, 601):
        _, reward, _, truncated, info = env.step(zeros)
        total += reward
        assert torch.equal(reward[0], torch.full((8,), -1000.0, dtype=torch.float64)), t
    assert bool(truncated.all())
    assert info["episode_return"][0].item() == pytest.approx(-1000.0 * 8 * 600)
    assert torch.allclose(info["episode_return"], total.sum(1))
    assert not env.collided.any()  # the new episode starts clean


def test_terminate_on_collision_charges_the_same_return():
    env = make(2, train_shaping=False, terminate_on_collision=True)
    headway = full((2, 8), 20.0)
    headway[0, 2] = 1.5
    speed = full((2, 8), 15.0)
    speed[0, 2] = 25.0
    set_state(env, headway, speed)
    zeros = torch.zeros(2, 8, dtype=torch.long)
    env.step(zeros)  # step 1: no collision yet in copy 1; copy 0 collides at step 1
    env.reset()
    set_state(env, headway, speed)
    env.t[:] = 10  # collide at the 11th step: 590 steps left, this one included
    _, reward, terminated, truncated, info = env.step(zeros)
    assert terminated.tolist() == [True, False] and not truncated.any()
    assert torch.equal(reward[0], torch.full((8,), -1000.0 * 590, dtype=torch.float64))
    assert env.t[0] == 0 and not env.collided[0]  # auto-reset
    assert env.t[1] == 11


def test_episode_is_600_steps_truncated_not_terminated():
    env = make(3)
    actions = torch.zeros(3, 8, dtype=torch.long)
    for t in range(1, 601):
        obs, reward, terminated, truncated, info = env.step(actions)
        assert not terminated.any()
        assert bool(truncated.all()) == (t == 600)
        assert info["episode_length"][0].item() == t
    assert torch.isfinite(info["episode_return"]).all()
    assert env.t.tolist() == [0, 0, 0]
    assert not torch.equal(obs, info["final_obs"])  # auto-reset happened; final obs kept in info


def test_nominal_starts_and_observation():
    env = make(start="nominal")
    obs = env.observe()
    assert env.headway[0, 0] == pytest.approx(40.0)
    # vehicle 1 at h = 40, v = 15: V(40) = 30 → clip(3, -2, 2) = 2; (40 + 0 - 20) / 20 = 1
    assert obs[0, 0].tolist() == pytest.approx([0.0, 0.0, 2.0, 1.0, 0.0])
    assert obs[0, 1:].abs().max() < 1e-12
    slow = make(env_id="cacc-slowdown", start="nominal")
    assert torch.allclose(slow.speed, torch.tensor(30.0, dtype=torch.float64))
    # numpy.linspace(30, 15, 300): steps of -15/299; step 299 is exactly v* = 15
    assert slow.leader_speed(torch.tensor([0, 1, 298, 299, 300, 450])).tolist() == pytest.approx(
        [30.0, 30.0 - 15 / 299, 15.0 + 15 / 299, 15.0, 15.0, 15.0], abs=1e-12)
    obs = slow.observe()
    assert obs[0, :, 0].tolist() == pytest.approx([1.0] * 8)  # (30 - 15) / 15


def test_random_starts_follow_the_benchmark():
    env = gdmpo.make("cacc-catchup", num_envs=256, seed=1)
    env.reset()
    first = env.headway[:, 0] / P.h_target
    assert first.min() >= 1.5 and first.max() < 2.5 and first.std() > 0.2
    assert torch.all(env.headway[:, 1:] == P.h_target)
    slow = gdmpo.make("cacc-slowdown", num_envs=256, seed=1)
    slow.reset()
    factor = slow.speed[:, 0] / P.v_target
    assert factor.min() >= 1.5 and factor.max() < 2.5
    assert torch.equal(slow.speed, slow.speed[:, :1].expand(-1, 8))


def rollout(env_id, seed, steps=700):
    env = gdmpo.make(env_id, num_envs=4, seed=seed)
    gen = torch.Generator().manual_seed(123)
    trajectory = [env.reset()]
    for _ in range(steps):
        obs, reward, *_ = env.step(torch.randint(4, (4, 8), generator=gen))
        trajectory += [obs, reward]
    return trajectory


@pytest.mark.parametrize("env_id", ["cacc-catchup", "cacc-slowdown"])
def test_same_seed_same_trajectory(env_id):
    a, b, c = rollout(env_id, 7), rollout(env_id, 7), rollout(env_id, 8)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_reset_seed_reproduces():
    env = gdmpo.make("cacc-catchup", num_envs=5)
    first = env.reset(seed=3)
    env.step(torch.zeros(5, 8, dtype=torch.long))
    assert torch.equal(env.reset(seed=3), first)


@pytest.mark.parametrize(
    "actions,message",
    [
        (torch.zeros(2, 7, dtype=torch.long), "shape \\[num_envs, num_agents\\] = \\[2, 8\\]"),
        (torch.zeros(2, 8), "integer"),
        (torch.full((2, 8), 4), "\\[0, 3\\]"),
        (torch.full((2, 8), -1), "\\[0, 3\\]"),
    ],
)
def test_bad_actions_are_rejected(actions, message):
    env = make(2)
    with pytest.raises(ActionError, match=message):
        env.step(actions)


def test_api_surface():
    env = gdmpo.make("cacc-slowdown", num_envs=3, seed=0)
    assert env.num_agents == 8 and env.obs_dim == 5 and env.max_episode_steps == 600
    assert env.graph.num_nodes == 8 and env.graph.edge_index.shape == (2, 14)
    assert env.action_space.n == 4 and env.observation_space.shape == (5,)
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(torch.zeros(3, 8, dtype=torch.long))
    obs = env.reset()
    assert obs.shape == (3, 8, 5) and obs.dtype == torch.float32
    obs, reward, terminated, truncated, info = env.step(torch.zeros(3, 8, dtype=torch.long))
    assert reward.shape == (3, 8) and terminated.shape == (3,) and truncated.shape == (3,)
    assert info["final_obs"].shape == (3, 8, 5) and info["episode_return"].isnan().all()
    assert "cacc-catchup" in gdmpo.envs.list()
    with pytest.raises(KeyError, match="Did you mean 'cacc-catchup'"):
        gdmpo.make("cacc-catchp")
    with pytest.raises(TypeError, match="unknown CACC parameter"):
        gdmpo.make("cacc-catchup", num_vehicle=3)
    big = gdmpo.make("cacc-catchup", num_envs=2, num_vehicles=16)
    assert big.reset().shape == (2, 16, 5) and big.graph.num_nodes == 16
