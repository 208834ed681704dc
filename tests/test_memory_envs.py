"""Velocity-masked envs (tasks that need memory): registration, env checkers, and which entries are kept (checked
against MuJoCo)."""

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import ncp_control.envs  # noqa: F401  (registers the ids)
from ncp_control.envs.masked_velocity import KeepObservationIndices, MaskVelocity, position_indices

torch.set_num_threads(1)  # SB3's checker imports torch; the machine is shared

NOVEL = {
    # NoVel id: (base id, number of kept position entries); PendulumNoVel-v1 zeroes instead (see below)
    "InvertedPendulumNoVel-v5": ("InvertedPendulum-v5", 2),
    "HalfCheetahNoVel-v5": ("HalfCheetah-v5", 8),
    "HopperNoVel-v5": ("Hopper-v5", 5),
}


# Advisory warnings the checkers give for the unmodified base envs too (their spaces are Gymnasium's choice).
INHERITED_ADVICE = (
    "different from the unwrapped version",  # we check the wrapped env on purpose
    "symmetric and normalized",  # Pendulum's [-2, 2] and InvertedPendulum's [-3, 3] actions
    "Box observation space minimum value is -infinity",  # MuJoCo envs' unbounded observations
    "Box observation space maximum value is infinity",
    "'settotalmass' is deprecated",  # Gymnasium 1.2's HalfCheetah XML (ours pass it on as a Python warning)
)


@pytest.mark.parametrize("env_id", sorted([*NOVEL, "PendulumNoVel-v1"]))
def test_gymnasium_and_sb3_env_checkers_pass(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=True)
    unexpected = [str(w.message) for w in caught if not any(a in str(w.message) for a in INHERITED_ADVICE)]
    assert unexpected == []
    env.close()


@pytest.mark.parametrize("env_id", sorted(NOVEL))
def test_observation_is_the_base_envs_position_entries_exactly(env_id):
    base_id, n_kept = NOVEL[env_id]
    novel, base = gym.make(env_id), gym.make(base_id)
    assert novel.observation_space.shape == (n_kept,)
    assert novel.observation_space.dtype == base.observation_space.dtype
    np.testing.assert_array_equal(novel.observation_space.low, base.observation_space.low[:n_kept])
    np.testing.assert_array_equal(novel.observation_space.high, base.observation_space.high[:n_kept])
    obs_novel, _ = novel.reset(seed=3)
    obs_base, _ = base.reset(seed=3)
    np.testing.assert_array_equal(obs_novel, obs_base[:n_kept])
    space = base.action_space
    actions = np.random.default_rng(0).uniform(space.low, space.high, (30, *space.shape))
    for action in actions.astype(base.action_space.dtype):
        obs_novel, reward_novel, term_novel, trunc_novel, _ = novel.step(action)
        obs_base, reward_base, term_base, trunc_base, _ = base.step(action)
        np.testing.assert_array_equal(obs_novel, obs_base[:n_kept])
        assert (reward_novel, term_novel, trunc_novel) == (reward_base, term_base, trunc_base)
        if term_base:
            break


@pytest.mark.parametrize(
    "base_id, skipped, clip",
    [
        ("InvertedPendulum-v5", 0, None),
        ("HalfCheetah-v5", 1, None),
        ("Hopper-v5", 1, 10.0),  # Hopper clips qvel to [-10, 10] in its observation
        ("Walker2d-v5", 1, 10.0),
        ("Swimmer-v5", 2, None),
    ],
)
def test_mujoco_kept_entries_are_qpos_and_dropped_entries_are_qvel(base_id, skipped, clip):
    base = gym.make(base_id)
    masked = MaskVelocity(gym.make(base_id))
    data = masked.unwrapped.data
    n_pos = data.qpos.size - skipped
    assert position_indices(masked.env) == tuple(range(n_pos))
    obs_base, _ = base.reset(seed=1)
    obs_masked, _ = masked.reset(seed=1)
    rng = np.random.default_rng(1)
    for _ in range(20):
        np.testing.assert_array_equal(obs_masked, data.qpos[skipped:])  # the kept entries are positions
        velocity = data.qvel if clip is None else np.clip(data.qvel, -clip, clip)
        np.testing.assert_array_equal(obs_base[n_pos : n_pos + data.qvel.size], velocity)  # dropped = velocities
        action = rng.uniform(base.action_space.low, base.action_space.high).astype(base.action_space.dtype)
        obs_base, *_ = base.step(action)
        obs_masked, *_ = masked.step(action)


def test_pendulum_novel_is_pendulum_with_the_angular_velocity_zeroed_as_in_rl_zoo():
    """rl-zoo's PendulumNoVel-v1: Pendulum-v1's observation times the mask (1, 1, 0); same space, same rewards."""
    novel, base = gym.make("PendulumNoVel-v1"), gym.make("Pendulum-v1")
    assert novel.observation_space == base.observation_space  # Box(3,), Pendulum's bounds
    assert novel.spec.max_episode_steps == base.spec.max_episode_steps == 200
    obs, _ = novel.reset(seed=0)
    obs_base, _ = base.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-2, 2, (200, 1)).astype(np.float32)
    for action in actions:
        theta = novel.unwrapped.state[0]
        np.testing.assert_allclose(obs[:2], [np.cos(theta), np.sin(theta)], rtol=0, atol=1e-7)  # float32 obs
        assert obs[2] == 0.0
        np.testing.assert_array_equal(obs, obs_base * np.array([1, 1, 0], np.float32))
        obs, reward, term, trunc, _ = novel.step(action)
        obs_base, reward_base, term_base, trunc_base, _ = base.step(action)
        assert (reward, term, trunc) == (reward_base, term_base, trunc_base)
    assert trunc  # the 200-step limit ends the episode


REGISTERED = list(ncp_control.envs.REGISTERED_IDS)


@pytest.mark.parametrize("env_id", REGISTERED)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_every_registered_id_rejects_non_finite_actions(env_id, bad):
    assert set(REGISTERED) <= set(gym.registry)
    kwargs = {"image_height": 16, "image_width": 32} if env_id == "LaneKeeping-v0" else {}
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape, env.action_space.dtype)
    action[0] = bad
    with pytest.raises(ValueError, match="finite"):
        env.step(action)
    env.close()


def test_registered_ids_lists_every_id_the_envs_package_registers():
    """ncp_control.envs.REGISTERED_IDS is the whole list (so every id is in the non-finite-action test)."""
    entry_points = {
        k
        for k, spec in gym.registry.items()
        if isinstance(spec.entry_point, str) and spec.entry_point.startswith("ncp_control.envs.")
    }
    assert entry_points == set(REGISTERED)


def test_kwargs_reach_the_base_env_and_change_the_kept_layout():
    env = gym.make("HopperNoVel-v5", exclude_current_positions_from_observation=False, reset_noise_scale=0.1)
    assert env.unwrapped._reset_noise_scale == 0.1
    obs, _ = env.reset(seed=0)
    assert obs.shape == (6,)  # rootx now included
    np.testing.assert_array_equal(obs, env.unwrapped.data.qpos)


def test_max_episode_steps_of_the_novel_id_is_the_only_time_limit():
    env = gym.make("PendulumNoVel-v1", max_episode_steps=250)  # the base Pendulum-v1 limit is 200
    env.reset(seed=0)
    action = np.zeros(1, dtype=np.float32)
    truncations = [env.step(action)[3] for _ in range(250)]
    assert not any(truncations[:-1]) and truncations[-1]


def test_novel_env_pickles_and_continues_identically():
    env = gym.make("InvertedPendulumNoVel-v5")
    env.reset(seed=5)
    clone = pickle.loads(pickle.dumps(env))
    clone.reset(seed=5)
    env.reset(seed=5)
    action = np.array([0.3], dtype=np.float32)
    for _ in range(5):
        np.testing.assert_array_equal(env.step(action)[0], clone.step(action)[0])


def test_spec_round_trip_rebuilds_the_same_env():
    env = gym.make("HalfCheetahNoVel-v5")
    rebuilt = gym.make(env.spec)
    np.testing.assert_array_equal(env.reset(seed=2)[0], rebuilt.reset(seed=2)[0])


def test_keep_observation_indices_on_any_box_env_keeps_order_and_bounds():
    env = KeepObservationIndices(gym.make("CartPole-v1"), [2, 0])
    base = gym.make("CartPole-v1")
    np.testing.assert_array_equal(env.observation_space.low, base.observation_space.low[[2, 0]])
    obs, _ = env.reset(seed=4)
    obs_base, _ = base.reset(seed=4)
    np.testing.assert_array_equal(obs, obs_base[[2, 0]])
    assert env.indices == (2, 0)


@pytest.mark.parametrize(
    "indices, error",
    [([], ValueError), ([4], ValueError), ([-1], ValueError), ([1, 1], ValueError), ([0.5], TypeError)],
)
def test_keep_observation_indices_rejects_bad_indices(indices, error):
    with pytest.raises(error):
        KeepObservationIndices(gym.make("CartPole-v1"), indices)


def test_keep_observation_indices_rejects_non_vector_spaces():
    with pytest.raises(TypeError, match="1-D Box"):
        KeepObservationIndices(gym.make("FrozenLake-v1"), [0])


def test_position_indices_refuses_unknown_layouts():
    with pytest.raises(ValueError, match="KeepObservationIndices"):
        position_indices(gym.make("CartPole-v1"))


def test_a_model_of_the_old_box2_pendulum_novel_gets_an_error_that_says_why():
    from ncp_control.agents.evaluation.episodes import check_spaces_fit

    class OldModel:
        observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)

    with pytest.raises(ValueError, match="earlier Box\\(2,\\) observation need retraining"):
        check_spaces_fit(OldModel(), gym.make("PendulumNoVel-v1"))
