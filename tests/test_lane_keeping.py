"""LaneKeeping-v0: the dash-camera env (the world itself is tested in test_lane_keeping_state.py)."""

import math
import pickle
import warnings

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import ncp_control.envs  # noqa: F401  (registers the ids)

ID = "LaneKeeping-v0"


def rollout(env, seed, n):
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    trace = [obs]
    for _ in range(n):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trace += [obs, np.float64(reward)]
        if terminated or truncated:
            obs, info = env.reset()
            trace.append(obs)
    return trace


def bright_columns(image, rows):
    """Mean column of lane-line pixels (bright, unsaturated) in the given rows of an (H, W, 3) image."""
    band = image[rows].astype(np.int32)  # (R, W, 3)
    line = band.min(axis=2) > 180  # all channels bright: white paint (min over RGB, axis 2)
    cols = np.nonzero(line)[1]
    return cols


def test_gymnasium_and_sb3_check_env():
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(gym.make(ID).unwrapped)
        gym_check_env(gym.make(ID, render_mode="rgb_array").unwrapped, skip_render_check=False)
        sb3_check_env(gym.make(ID), warn=True)


def test_observation_is_a_dash_camera_view_of_the_road():
    env = gym.make(ID)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 128, 3) and obs.dtype == np.uint8
    sky = obs[:8].reshape(-1, 3).mean(axis=0)  # mean over the top rows' pixels
    assert sky[2] > sky[0] + 20  # blue sky on top
    bottom = obs[-8:].reshape(-1, 3).mean(axis=0)
    assert abs(bottom[0] - bottom[2]) < 15 and bottom.mean() < 120  # grey asphalt below, no red car hood
    assert bright_columns(obs, slice(40, 64)).size > 10  # lane lines are visible
    obs2, *_ = env.step(np.zeros(1, np.float32))
    assert not np.array_equal(obs, obs2)  # the view moves with the car


def test_lines_shift_in_the_image_when_the_car_shifts_in_the_lane():
    """Move the car 0.5 m left of the lane centre: the lane lines move right in the image."""
    env = gym.make(ID)
    base = env.unwrapped
    env.reset(seed=0)
    columns = []
    for offset in (-0.5, 0.0, 0.5):
        x, y = base.road.point_at(12.0, base.lane_center_offset + offset)
        base.data.qpos[base._qx], base.data.qpos[base._qy], base.data.qpos[base._qyaw] = x, y, 0.0
        mujoco.mj_forward(base.model, base.data)
        image = base._observation()
        columns.append(bright_columns(image, slice(44, 64)).mean())
    assert columns[0] < columns[1] - 3 < columns[2] - 6


def test_same_seed_same_images_bit_for_bit():
    a = rollout(gym.make(ID), seed=3, n=40)
    b = rollout(gym.make(ID), seed=3, n=40)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("domain_randomization", [False, True])
def test_reused_env_draws_the_same_frames_as_a_fresh_one(domain_randomization):
    """The road meshes, colours and sky are rewritten in place at reset: nothing of the previous road survives."""
    used = gym.make(ID, domain_randomization=domain_randomization)
    used.reset(seed=1)
    for _ in range(5):
        used.step(np.array([0.2], np.float32))
    obs_used, _ = used.reset(seed=2)
    obs_fresh, _ = gym.make(ID, domain_randomization=domain_randomization).reset(seed=2)
    np.testing.assert_array_equal(obs_used, obs_fresh)


def test_domain_randomization_changes_the_look_of_the_same_seed():
    plain = gym.make(ID).reset(seed=5)[0]
    randomized = [gym.make(ID, domain_randomization=True).reset(seed=s)[0] for s in (5, 6)]
    assert not np.array_equal(plain, randomized[0])
    assert not np.array_equal(randomized[0], randomized[1])


def test_pickle_round_trip():
    env = gym.make(ID, image_height=48, image_width=96)
    clone = pickle.loads(pickle.dumps(env))
    assert clone.observation_space.shape == (48, 96, 3)
    for x, y in zip(rollout(env, seed=5, n=20), rollout(clone, seed=5, n=20)):
        np.testing.assert_array_equal(x, y)


def _continues_identically(env, clone, steps: int, rng) -> None:
    for _ in range(steps):
        action = rng.uniform(-0.4, 0.4, 1).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        obs_c, reward_c, terminated_c, truncated_c, info_c = clone.step(action)
        np.testing.assert_array_equal(obs, obs_c)
        assert (reward, terminated, truncated, info) == (reward_c, terminated_c, truncated_c, info_c)


@pytest.mark.parametrize("env_id", [ID, "LaneKeepingState-v0"])
@pytest.mark.parametrize("steps_before", [0, 9])
def test_pickle_mid_episode_continues_identically(env_id, steps_before):
    """Right after reset (was AttributeError '_s_start') and mid-episode, with domain randomisation (roadside
    objects, textures, camera pose): the clone and the original step to the same observations and infos, the
    TimeLimit counter included, and the next reset draws the same road."""
    kwargs = {"image_height": 32, "image_width": 64} if env_id == ID else {}
    env = gym.make(env_id, domain_randomization=True, max_episode_steps=20, **kwargs)
    env.reset(seed=11)
    rng = np.random.default_rng(0)
    for _ in range(steps_before):
        env.step(rng.uniform(-0.4, 0.4, 1).astype(np.float32))
    clone = pickle.loads(pickle.dumps(env))
    _continues_identically(env, clone, 20 - steps_before - 1, rng)
    *_, truncated, _ = env.step(np.zeros(1, np.float32))
    assert truncated and clone.step(np.zeros(1, np.float32))[3]
    np.testing.assert_array_equal(env.reset()[0], clone.reset()[0])  # the env's RNG travelled too


def test_short_random_rollout_no_nan_no_mujoco_warnings():
    env = gym.make(ID)
    base = env.unwrapped
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(500):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and math.isfinite(reward)
        if terminated or truncated:
            obs, _ = env.reset()
    assert all(base.data.warning[i].number == 0 for i in range(len(base.data.warning)))


def test_hostile_actions():
    env = gym.make(ID).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan], np.float32))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, np.float32))
    obs, reward, *_ = env.step(np.array([-1e9]))
    assert env.last_command() == -1.0 and math.isfinite(reward)


def test_render_chase_and_dashcam_frames():
    env = gym.make(ID, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    chase = env.render()
    assert chase.shape == (240, 320, 3) and chase.dtype == np.uint8
    rgb = chase.astype(np.int32)
    red = rgb[..., 0] - np.maximum(rgb[..., 1], rgb[..., 2]) > 50  # the red car seen from behind
    assert red.sum() > 1000
    dash = gym.make(ID, render_mode="rgb_array", render_camera="dashcam", render_height=64, render_width=128)
    obs2, _ = dash.reset(seed=0)
    np.testing.assert_array_equal(dash.render(), obs2)  # the dashcam render is the observation
    env.close()
    assert env.unwrapped._renderer is None
    env.reset(seed=0)  # a closed env renders again after reset (a new renderer is made)
    env.close()


def test_render_without_mode_warns_and_returns_none():
    env = gym.make(ID).unwrapped
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


@pytest.mark.parametrize("kwargs", [dict(image_height=4), dict(image_width=64.0), dict(image_height=True)])
def test_bad_image_size_raises(kwargs):
    with pytest.raises(ValueError):
        gym.make(ID, **kwargs)


def test_several_envs_in_one_process_render_independently():
    """Each env owns a GL context (as in SB3's DummyVecEnv): interleaved steps give the same frames as alone."""
    alone = rollout(gym.make(ID), seed=7, n=15)
    others = [gym.make(ID, domain_randomization=True) for _ in range(2)]
    env = gym.make(ID)
    obs, _ = env.reset(seed=7)
    env.action_space.seed(7)
    for k, other in enumerate(others):
        other.reset(seed=k)
    trace = [obs]
    for _ in range(15):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        trace += [obs, np.float64(reward)]
        for other in others:
            other.step(other.action_space.sample())
        if terminated or truncated:
            trace.append(env.reset()[0])
    others[0].close()  # closing one env leaves the others working
    for x, y in zip(alone, trace):
        np.testing.assert_array_equal(x, y)
    assert others[1].step(np.zeros(1, np.float32))[0].shape == (64, 128, 3)


def test_record_video_writes_an_episode_with_the_video_extra(tmp_path):
    """The [video] extra: Gymnasium's RecordVideo (moviepy) records the chase camera."""
    pytest.importorskip("moviepy", reason="moviepy is in the [video] extra")
    from gymnasium.wrappers import RecordVideo

    env = RecordVideo(
        gym.make("LaneKeepingState-v0", render_mode="rgb_array", render_height=96, render_width=128),
        str(tmp_path / "videos"),
        episode_trigger=lambda episode: True,
    )
    env.reset(seed=0)
    for _ in range(10):
        env.step(np.zeros(1, np.float32))
    env.close()
    (video,) = (tmp_path / "videos").glob("*.mp4")
    assert video.stat().st_size > 1000


def test_a_fresh_process_can_render_then_build_an_optimizer():
    """PyPI's CUDA builds of torch bundle Triton, which crashed the process (SIGSEGV) when torch first imported it
    (the first optimiser: torch.optim -> torch._dynamo -> triton) after a lane-keeping env had rendered through
    Mesa; the demo did exactly that. The renderer loads Triton first (envs/lane_keeping/render.py). In a fresh
    process, because in this one torch._dynamo is likely imported already."""
    import os
    import subprocess
    import sys

    code = (
        "import gymnasium as gym, ncp_control.envs, torch\n"
        "env = gym.make('LaneKeeping-v0', image_height=32, image_width=64)\n"
        "env.reset(seed=0); env.step(env.action_space.sample())\n"
        "torch.optim.Adam([torch.zeros(2, requires_grad=True)])\n"
        "import torch._dynamo\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")},
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr[-3000:])
