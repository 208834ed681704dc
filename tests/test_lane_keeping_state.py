"""LaneKeepingState-v0 and the shared lane-keeping world (car model, reward, termination, validation)."""

import math
import pickle
import warnings

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import ncp_control.envs  # noqa: F401  (registers the ids)

ID = "LaneKeepingState-v0"
INFO_KEYS = {
    "lateral_offset_m",
    "heading_error_rad",
    "road_curvature",
    "distance_m",
    "is_success",
    "elapsed_time",
    "steering",
    "crosswind_mps",
}
REWARD_KEYS = ("reward_progress", "reward_lateral", "reward_heading")


def rollout(env, seed, n, actions=None):
    """Seeded rollout of up to n steps (random actions from a seeded action space unless given); resets on end."""
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    trace = [obs]
    for k in range(n):
        action = env.action_space.sample() if actions is None else actions[k]
        obs, reward, terminated, truncated, info = env.step(action)
        trace += [obs, np.float64(reward), np.float64(terminated)]
        if terminated or truncated:
            obs, info = env.reset()
            trace.append(obs)
    return trace


def test_gymnasium_and_sb3_check_env():
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(gym.make(ID).unwrapped, skip_render_check=False)
        sb3_check_env(gym.make(ID), warn=True)


def test_same_seed_same_episode_bit_for_bit():
    a = rollout(gym.make(ID), seed=3, n=300)
    b = rollout(gym.make(ID), seed=3, n=300)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    c = rollout(gym.make(ID), seed=4, n=300)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_domain_randomization_is_seeded_and_changes_the_road_look():
    env = gym.make(ID, domain_randomization=True)
    widths = set()
    for seed in range(4):
        env.reset(seed=seed)
        widths.add(env.unwrapped.road.lane_width)
    assert len(widths) == 4 and all(3.0 <= w <= 4.0 for w in widths)
    env.reset(seed=11)
    look = env.unwrapped.appearance
    env.reset(seed=11)
    assert env.unwrapped.appearance == look


def test_pickle_round_trip():
    env = gym.make(ID, speed=12.0, preview_distances=(0.0, 7.0))
    clone = pickle.loads(pickle.dumps(env))
    assert clone.unwrapped.speed == 12.0
    assert clone.observation_space.shape == (7,)
    for x, y in zip(rollout(env, seed=5, n=50), rollout(clone, seed=5, n=50)):
        np.testing.assert_array_equal(x, y)


def test_reward_terms_sum_exactly_and_info_keys():
    env = gym.make(ID)
    obs, info = env.reset(seed=0)
    assert set(info) == INFO_KEYS and info["elapsed_time"] == 0.0 and info["distance_m"] == 0.0
    env.action_space.seed(0)
    for _ in range(200):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert set(info) == INFO_KEYS | set(REWARD_KEYS)
        total = 0.0
        for key in REWARD_KEYS:  # the documented order
            total += info[key]
        assert total == reward
        assert info["reward_lateral"] <= 0.0 and info["reward_heading"] <= 0.0
        assert info["elapsed_time"] == pytest.approx(0.05)
        if terminated or truncated:
            obs, info = env.reset()


def test_observation_matches_semantic_accessors_and_info():
    env = gym.make(ID, preview_distances=(0.0, 10.0, 30.0))
    base = env.unwrapped
    obs, info = env.reset(seed=2)
    for _ in range(80):
        obs, reward, terminated, truncated, info = env.step(np.array([0.3 * math.sin(base.data.time)], np.float32))
        assert obs[0] == pytest.approx(info["lateral_offset_m"], abs=1e-6) == pytest.approx(base.lateral_offset())
        assert obs[1] == pytest.approx(info["heading_error_rad"], abs=1e-6)
        assert obs[2] == pytest.approx(10.0)
        assert obs[4] == pytest.approx(info["steering"], abs=1e-6)
        s = base.arc_length()
        np.testing.assert_allclose(obs[5:], base.road.curvature_at(s + np.array([0.0, 10.0, 30.0])), atol=1e-7)
        assert info["road_curvature"] == pytest.approx(obs[5], abs=1e-7)
        if terminated:
            break
    assert np.any(obs[5:] != 0.0)  # reached the curves


def test_car_moves_at_constant_speed_along_a_circle_of_the_commanded_curvature():
    env = gym.make(ID, max_lateral_offset=1e6, road_length=1000.0)  # never terminates by leaving the lane
    base = env.unwrapped
    env.reset(seed=0)
    action = np.array([0.5], np.float32)
    for _ in range(60):  # 3 s: the steering has settled (rate limit, lag)
        env.step(action)
    assert base.steering() == pytest.approx(0.5, abs=1e-3)
    x0, y0, yaw0 = base.car_pose()
    for _ in range(20):  # 1 s
        env.step(action)
    x1, y1, yaw1 = base.car_pose()
    travelled = 10.0 * 1.0
    assert yaw1 - yaw0 == pytest.approx(0.5 * 0.1 * travelled, rel=1e-3)  # kappa * distance
    chord = 2.0 / (0.5 * 0.1) * math.sin(0.5 * 0.5 * 0.1 * travelled)
    assert math.hypot(x1 - x0, y1 - y0) == pytest.approx(chord, rel=1e-3)
    warnings_count = [base.data.warning[i].number for i in range(len(base.data.warning))]
    assert sum(warnings_count) == 0


def test_steering_has_rate_limit_and_lag():
    env = gym.make(ID, max_lateral_offset=1e6, max_steering_rate=0.5, steering_time_constant=0.1)
    base = env.unwrapped
    env.reset(seed=0)
    max_angle_change = 0.5 * 0.05  # rad per control step
    wheel = []
    for _ in range(30):
        env.step(np.array([1.0], np.float32))
        wheel.append(math.atan(base.steering() * base.wheelbase * base.max_steering_curvature))
    steps = np.diff([0.0] + wheel)
    assert np.all(steps <= max_angle_change + 1e-9)  # never faster than the rate limit
    assert wheel[0] < 0.5 * max_angle_change  # lag: the first step moves less than half the allowed change
    target = math.atan(base.wheelbase * base.max_steering_curvature)
    assert wheel[9] < target - 0.05  # still turning after 0.5 s
    assert wheel[-1] == pytest.approx(target, abs=2e-3)  # there after 1.5 s


def test_long_random_rollout_no_nan_no_mujoco_warnings():
    env = gym.make(ID)
    base = env.unwrapped
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    episodes = 0
    for _ in range(10_000):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert np.all(np.isfinite(obs)) and math.isfinite(reward)
        assert env.observation_space.contains(obs)
        if terminated or truncated:
            episodes += 1
            obs, _ = env.reset()
        for i in range(len(base.data.warning)):
            assert base.data.warning[i].number == 0, mujoco.mjtWarning(i).name
    assert episodes > 20  # random steering leaves the lane


@pytest.mark.parametrize("bad", [np.array([np.nan], np.float32), np.array([np.inf], np.float32), [-np.inf]])
def test_non_finite_actions_raise(bad):
    env = gym.make(ID).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(bad)


@pytest.mark.parametrize("bad", [np.zeros(2, np.float32), np.zeros((1, 1), np.float32), []])
def test_wrong_shape_actions_raise(bad):
    env = gym.make(ID).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(bad)


def test_non_numeric_action_raises_type_error():
    env = gym.make(ID).unwrapped
    env.reset(seed=0)
    with pytest.raises(TypeError):
        env.step(["left"])


def test_huge_actions_are_clipped():
    big = rollout(gym.make(ID), seed=1, n=40, actions=[np.array([1e9 * (-1) ** (k // 10)]) for k in range(40)])
    unit = rollout(gym.make(ID), seed=1, n=40, actions=[np.array([1.0 * (-1) ** (k // 10)]) for k in range(40)])
    for x, y in zip(big, unit):
        np.testing.assert_array_equal(x, y)


def test_leaving_the_lane_terminates_without_success():
    env = gym.make(ID)
    env.reset(seed=0)
    for _ in range(200):
        obs, reward, terminated, truncated, info = env.step(np.array([1.0], np.float32))  # hard left
        if terminated:
            break
    assert terminated and not truncated and info["is_success"] is False
    assert info["lateral_offset_m"] > env.unwrapped.road.lane_width / 2
    assert info["reward_lateral"] == -0.5


def test_custom_lateral_margin():
    env = gym.make(ID, max_lateral_offset=0.5)
    env.reset(seed=0)
    for _ in range(200):
        obs, reward, terminated, truncated, info = env.step(np.array([1.0], np.float32))
        if terminated:
            break
    assert 0.5 < info["lateral_offset_m"] < 1.0


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(speed=-1.0), ValueError),
        (dict(speed=float("nan")), ValueError),
        (dict(speed="fast"), TypeError),
        (dict(render_mode="rgb"), ValueError),
        (dict(render_camera="top"), ValueError),
        (dict(max_curvature=0.2), ValueError),
        (dict(domain_randomization=1), TypeError),
        (dict(preview_distances=(-1.0,)), ValueError),
        (dict(lateral_weight=-0.1), ValueError),
        (dict(render_height=0), ValueError),
    ],
)
@pytest.mark.filterwarnings("ignore:.*render_mode.*:UserWarning")  # gymnasium's own notice before our ValueError
def test_bad_arguments_raise(kwargs, error):
    with pytest.raises(error):
        gym.make(ID, **kwargs)


def test_render_rgb_array_chase_view():
    env = gym.make(ID, render_mode="rgb_array", render_height=60, render_width=80)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (60, 80, 3) and frame.dtype == np.uint8
    assert frame.std() > 10  # not a blank image
    env.close()
    env.close()  # idempotent
    assert env.unwrapped._renderer is None
