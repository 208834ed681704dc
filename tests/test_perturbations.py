"""Perturbation wrappers: each effect measured on tiny synthetic envs, seeding, common random numbers, parser."""

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
import scipy.ndimage
import torch
from gymnasium.spaces import Box
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from ncp_control.envs.perturbations import (
    PERTURBATIONS,
    ActionDelay,
    ActionNoise,
    BrightnessShift,
    FrozenSensor,
    GaussianBlur,
    IrregularTime,
    ObservationNoise,
    Occlusion,
    PerturbationSpec,
    PixelNoise,
    SensorDropout,
    apply_perturbations,
    gaussian_blur,
    make_perturbation,
    parse_spec,
    parse_sweep,
)

torch.set_num_threads(1)  # SB3's checker imports torch; the machine is shared


class ImageEnv(gym.Env):
    """(H, W, 3) uint8 image env: a grey image whose level follows the action, plus a per-episode random stripe.

    Grey level ``grey + round(60 * a)`` for action ``a`` in [-1, 1]; with ``stripe=True`` one random row (from the
    env's own seeded RNG) is set to 255, so seeded determinism of the inner env is visible. Ends after ``horizon``
    steps. ``dt`` = 0.05 s.
    """

    metadata = {"render_modes": []}
    dt = 0.05

    def __init__(self, height=48, width=96, grey=128, stripe=False, horizon=50):
        self.observation_space = Box(0, 255, (height, width, 3), np.uint8)
        self.action_space = Box(-1.0, 1.0, (1,), np.float32)
        self._grey, self._stripe, self._horizon = grey, stripe, horizon
        self._t = 0
        self._row = 0

    def _obs(self, level):
        image = np.full(self.observation_space.shape, level, dtype=np.uint8)
        if self._stripe:
            image[self._row] = 255
        return image

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        self._row = int(self.np_random.integers(0, self.observation_space.shape[0]))
        return self._obs(self._grey), {}

    def step(self, action):
        self._t += 1
        level = self._grey + int(round(60 * float(np.clip(action[0], -1, 1))))
        return self._obs(level), float(self._t), self._t >= self._horizon, False, {}


class EchoEnv(gym.Env):
    """Vector env that echoes the executed action: obs = (a0 + offset, a1 + offset, t + offset), float64.

    Reward at step t is t, split into ``info["reward_a"] = t / 4`` and ``info["reward_b"] = 3 t / 4``;
    ``info["executed_action"]`` is the action received. Terminates after ``horizon`` steps. With ``info_dt`` the
    step duration goes into ``info["elapsed_time"]`` (and ``dt`` is absent), else ``dt`` is an attribute.
    """

    metadata = {"render_modes": []}

    def __init__(self, low=-10.0, high=10.0, offset=0.0, horizon=100_000, dt=0.1, info_dt=None):
        self.observation_space = Box(-np.inf, np.inf, (3,), np.float64)
        self.action_space = Box(low, high, (2,), np.float64)
        self._offset, self._horizon, self._info_dt = offset, horizon, info_dt
        if info_dt is None and dt is not None:
            self.dt = dt
        self._t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return np.full(3, self._offset), {}

    def step(self, action):
        self._t += 1
        action = np.asarray(action, dtype=np.float64)
        obs = np.array([action[0], action[1], self._t]) + self._offset
        info = {"executed_action": action.copy(), "reward_a": self._t / 4, "reward_b": 3 * self._t / 4}
        if self._info_dt is not None:
            info["elapsed_time"] = self._info_dt
        return obs, float(self._t), self._t >= self._horizon, False, info


def rollout(env, actions, seed):
    """Observations (reset one first), rewards, infos of a rollout with fixed actions."""
    obs, _ = env.reset(seed=seed)
    observations, rewards, infos = [obs], [], []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            break
    return observations, rewards, infos


def image_actions(n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 1)).astype(np.float32)


def echo_actions(n, seed=0, scale=1.0):
    return np.random.default_rng(seed).uniform(-scale, scale, (n, 2))


# ---------------------------------------------------------------------------------------------------------------
# Effects
# ---------------------------------------------------------------------------------------------------------------


def test_pixel_noise_has_variance_sigma_squared_on_a_grey_image():
    sigma = 0.1
    env = PixelNoise(ImageEnv(grey=128), sigma)
    observations, _, _ = rollout(env, np.zeros((20, 1), np.float32), seed=0)
    unit = np.stack(observations).astype(np.float64) / 255.0  # (21, H, W, 3) on the [0, 1] scale
    assert unit.size > 250_000
    # Clipping is negligible 5 sigma away from the bounds; uint8 rounding adds 1 / (12 * 255**2) ~ 1.3e-6.
    assert unit.var() == pytest.approx(sigma**2, rel=0.02)
    assert unit.mean() == pytest.approx(128 / 255, abs=1e-3)


def test_pixel_noise_clips_to_the_image_range_instead_of_wrapping():
    # sigma = 1 on mid-grey 0.5 + 0.5/255: P(x < 0) = P(n < -0.502) and P(x > 1) = P(n > 0.498), about 0.31 each.
    env = PixelNoise(ImageEnv(grey=128), 1.0)
    observations, _, _ = rollout(env, np.zeros((10, 1), np.float32), seed=0)
    pixels = np.stack(observations)
    assert np.mean(pixels == 0) == pytest.approx(0.308, abs=0.01)
    assert np.mean(pixels == 255) == pytest.approx(0.309, abs=0.01)


def test_pixel_noise_draws_every_channel_independently():
    env = PixelNoise(ImageEnv(grey=128), 0.1)
    obs, _ = env.reset(seed=0)
    channels = obs.reshape(-1, 3).astype(np.float64)
    correlation = np.corrcoef(channels.T)  # (3, 3) between colour channels
    assert np.all(np.abs(correlation[np.triu_indices(3, 1)]) < 0.05)


def test_obs_noise_adds_gaussian_noise_of_std_sigma():
    sigma = 0.5
    env = ObservationNoise(EchoEnv(), sigma)
    inner = EchoEnv()
    actions = echo_actions(2000)
    noisy, _, _ = rollout(env, actions, seed=1)
    clean, _, _ = rollout(inner, actions, seed=1)
    noise = np.stack(noisy) - np.stack(clean)  # (2001, 3)
    assert noise.std() == pytest.approx(sigma, rel=0.03)
    assert abs(noise.mean()) < 0.03


def test_obs_noise_stays_inside_bounded_spaces_and_refuses_images():
    env = ObservationNoise(gym.make("Pendulum-v1"), 1.0)  # cos / sin in [-1, 1]
    observations, _, _ = rollout(env, np.zeros((50, 1), np.float32), seed=0)
    assert all(env.observation_space.contains(obs) for obs in observations)
    with pytest.raises(TypeError, match="pixel_noise"):
        ObservationNoise(ImageEnv(), 0.1)


def test_dropout_zeroes_a_fraction_p_of_pixels_with_all_channels_together():
    p = 0.3
    env = SensorDropout(ImageEnv(grey=128), p)
    observations, _, _ = rollout(env, np.zeros((10, 1), np.float32), seed=0)
    pixels = np.stack(observations)  # (11, H, W, 3)
    dropped = pixels == 0
    assert np.all(dropped.all(axis=-1) == dropped.any(axis=-1))  # a pixel's channels drop together
    assert dropped[..., 0].mean() == pytest.approx(p, abs=0.01)
    assert np.all(pixels[~dropped] == 128)  # the rest is untouched


def test_dropout_zeroes_vector_elements_independently_with_probability_p():
    p = 0.25
    env = SensorDropout(EchoEnv(offset=50.0), p)  # inner observations are never 0
    observations, _, _ = rollout(env, echo_actions(4000), seed=0)
    dropped = np.stack(observations) == 0
    assert dropped.mean() == pytest.approx(p, abs=0.01)
    assert 0 < dropped.all(axis=1).mean() < 0.05  # elements drop independently (all three: p**3 ~ 0.016)


def test_dropped_value_is_the_bound_nearest_zero_when_zero_is_outside():
    env = SensorDropout(gym.make("CartPole-v1"), 1.0)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, np.zeros(4))
    bounded = gym.wrappers.TransformObservation(EchoEnv(offset=1.5), lambda obs: obs, Box(1.0, 2.0, (3,), np.float64))
    obs, _ = SensorDropout(bounded, 1.0).reset(seed=0)
    np.testing.assert_array_equal(obs, np.ones(3))  # bounds [1, 2] exclude 0: the nearest bound is used


def test_frozen_sensor_repeats_the_last_delivered_observation():
    p = 0.4
    env = FrozenSensor(EchoEnv(), p)
    observations, _, infos = rollout(env, echo_actions(3000), seed=0)
    frozen = np.array([info["observation_frozen"] for info in infos])
    assert frozen.mean() == pytest.approx(p, abs=0.025)
    for t, info in enumerate(infos, start=1):
        if info["observation_frozen"]:
            np.testing.assert_array_equal(observations[t], observations[t - 1])
        else:
            assert observations[t][2] == t  # a fresh observation carries the current step count
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], frozen.astype(int), [0]]))))[::2]
    assert runs.max() >= 3  # freezes last several steps with the same value


def test_frozen_sensor_at_p_one_repeats_the_reset_observation():
    env = FrozenSensor(EchoEnv(offset=7.0), 1.0)
    observations, _, _ = rollout(env, echo_actions(5), seed=0)
    for obs in observations:
        np.testing.assert_array_equal(obs, np.full(3, 7.0))


@pytest.mark.parametrize("size, patch", [(0.25, (12, 24)), (0.5, (24, 48)), (0.01, (1, 1)), (1.0, (48, 96))])
def test_occlusion_paints_a_patch_of_the_given_size(size, patch):
    env = Occlusion(ImageEnv(grey=128), size)
    assert env.patch_shape == patch
    obs, _ = env.reset(seed=3)
    black = np.all(obs == 0, axis=-1)
    assert black.sum() == patch[0] * patch[1]
    row, col = env.patch_corner
    assert black[row : row + patch[0], col : col + patch[1]].all()
    assert np.all(obs[~black] == 128)


def test_occlusion_patch_stays_for_an_episode_or_moves_every_step():
    per_episode = Occlusion(ImageEnv(), 0.2, resample="episode")
    per_step = Occlusion(ImageEnv(), 0.2, resample="step")
    corners_episode, corners_step, first_corners = set(), set(), set()
    for episode in range(5):
        per_episode.reset(seed=episode)
        per_step.reset(seed=episode)
        first_corners.add(per_episode.patch_corner)
        for _ in range(10):
            per_episode.step(np.zeros(1, np.float32))
            per_step.step(np.zeros(1, np.float32))
            corners_episode.add((episode, per_episode.patch_corner))
            corners_step.add((episode, per_step.patch_corner))
    assert len(corners_episode) == 5  # one corner per episode
    assert len(first_corners) == 5  # ... different between episodes
    assert len(corners_step) > 40  # a new corner (almost) every step


def test_occlusion_validates_options():
    with pytest.raises(ValueError, match="resample"):
        Occlusion(ImageEnv(), 0.2, resample="frame")
    with pytest.raises(ValueError, match="fill"):
        Occlusion(ImageEnv(), 0.2, fill=300)
    with pytest.raises(ValueError, match="image"):
        Occlusion(EchoEnv(), 0.2)


def test_brightness_and_contrast_shift_on_the_unit_scale():
    obs, _ = BrightnessShift(ImageEnv(grey=128), 0.2).reset(seed=0)
    assert np.all(obs == 128 + 51)  # 0.2 * 255 = 51
    obs, _ = BrightnessShift(ImageEnv(grey=200), 0.5).reset(seed=0)
    assert np.all(obs == 255)  # saturates instead of wrapping
    obs, _ = BrightnessShift(ImageEnv(grey=28), 0.0, contrast=0.5).reset(seed=0)
    assert np.all(obs == np.rint(255 * (0.5 * (28 / 255 - 0.5) + 0.5)))  # 78
    obs, _ = BrightnessShift(ImageEnv(grey=28), -0.2).reset(seed=0)
    assert np.all(obs == 0)


def test_blur_matches_scipy_gaussian_filter():
    image = np.random.default_rng(0).uniform(0, 255, (20, 30, 3))
    for sigma in (0.5, 1.0, 2.5):
        ours = gaussian_blur(image, sigma)
        reference = scipy.ndimage.gaussian_filter(image, (sigma, sigma, 0), mode="reflect", truncate=4.0)
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-9)


def test_blur_wrapper_spreads_a_stripe_and_keeps_flat_regions():
    inner = ImageEnv(grey=0, stripe=True)
    clean, _ = inner.reset(seed=0)
    row = int(np.flatnonzero(clean[:, 0, 0])[0])
    assert 0 < row < clean.shape[0] - 1  # precondition of the neighbour check below (seed 0 gives an inner row)
    obs, _ = GaussianBlur(ImageEnv(grey=0, stripe=True), 1.5).reset(seed=0)
    assert obs.dtype == np.uint8
    column = obs[:, 10, 0].astype(float)
    assert 0 < column[row] < 255 and column[row] == column.max()
    assert column[row - 1] > 0 and column[row + 1] > 0  # spread to the neighbouring rows
    assert np.all(obs[:, :, 0] == obs[:, :1, 0])  # a horizontal stripe stays horizontal
    assert column.sum() == pytest.approx(255, abs=3)  # mass conserved up to rounding


def test_action_noise_is_gaussian_and_clipped_to_bounds():
    sigma = 0.3
    env = ActionNoise(EchoEnv(), sigma)
    actions = echo_actions(3000)
    _, _, infos = rollout(env, actions, seed=0)
    executed = np.stack([info["executed_action"] for info in infos])
    noise = executed - actions  # bounds +-10 are never reached
    assert noise.std() == pytest.approx(sigma, rel=0.03)
    clipped = ActionNoise(EchoEnv(low=-1.0, high=1.0), 1.0)
    _, _, infos = rollout(clipped, np.ones((500, 2)), seed=0)
    executed = np.stack([info["executed_action"] for info in infos])
    assert executed.max() == 1.0 and executed.min() >= -1.0 and np.mean(executed == 1.0) > 0.4


@pytest.mark.parametrize("delay", [1, 2, 5])
def test_action_delay_shifts_actions_by_exactly_k(delay):
    env = ActionDelay(EchoEnv(), delay)
    actions = echo_actions(20)
    for episode in range(2):  # the queue restarts with neutral actions at every reset
        _, _, infos = rollout(env, actions, seed=episode)
        executed = np.stack([info["executed_action"] for info in infos])
        np.testing.assert_array_equal(executed[:delay], 0.0)
        np.testing.assert_array_equal(executed[delay:], actions[:-delay])


def test_action_delay_copies_actions_and_clips_the_neutral_action_into_bounds():
    env = ActionDelay(EchoEnv(low=0.5, high=1.0), 1)
    env.reset(seed=0)
    buffer = np.array([0.7, 0.8])
    _, _, _, _, info = env.step(buffer)
    np.testing.assert_array_equal(info["executed_action"], [0.5, 0.5])
    buffer[:] = 0.9  # the caller reuses its buffer
    _, _, _, _, info = env.step(buffer)
    np.testing.assert_array_equal(info["executed_action"], [0.7, 0.8])


def test_action_delay_on_discrete_actions_and_explicit_neutral():
    env = ActionDelay(gym.make("CartPole-v1"), 2)
    assert env.neutral_action == 0
    with pytest.raises(ValueError, match="neutral_action"):
        ActionDelay(gym.make("CartPole-v1"), 2, neutral_action=5)


@pytest.mark.parametrize("info_dt", [None, 0.02])
def test_irregular_time_repeats_actions_sums_rewards_and_reports_true_elapsed_time(info_dt):
    K = 4
    env = IrregularTime(EchoEnv(horizon=10_000, info_dt=info_dt), K)
    dt = 0.1 if info_dt is None else info_dt
    env.reset(seed=0)
    inner_t = 0
    skips = []
    for action in echo_actions(400):
        obs, reward, terminated, truncated, info = env.step(action)
        k = info["frame_skip"]
        skips.append(k)
        assert info["elapsed_time"] == pytest.approx(k * dt, rel=1e-12)
        assert reward == sum(range(inner_t + 1, inner_t + k + 1))  # inner rewards t+1, ..., t+k
        assert info["reward_a"] + info["reward_b"] == pytest.approx(reward)  # named terms still add up
        inner_t += k
        assert obs[2] == inner_t  # the inner env advanced k steps
        np.testing.assert_array_equal(info["executed_action"], action)  # the same action repeated
    counts = np.bincount(skips, minlength=K + 1)[1:]
    assert counts.min() > 70  # k uniform on {1, ..., K}: about 100 each


def test_irregular_time_stops_the_skip_at_termination():
    env = IrregularTime(EchoEnv(horizon=7), 5)
    env.reset(seed=0)
    total, done = 0, False
    while not done:
        _, _, terminated, truncated, info = env.step(np.zeros(2))
        total += info["frame_skip"]
        done = terminated or truncated
    assert total == 7
    assert info["elapsed_time"] == pytest.approx(info["frame_skip"] * 0.1)


def test_irregular_time_needs_a_step_duration():
    env = IrregularTime(EchoEnv(dt=None), 2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="elapsed_time"):
        env.step(np.zeros(2))


# ---------------------------------------------------------------------------------------------------------------
# Neutral levels, seeding, common random numbers
# ---------------------------------------------------------------------------------------------------------------

IMAGE_CAPABLE = [
    "pixel_noise",
    "dropout",
    "frozen",
    "occlusion",
    "brightness",
    "blur",
    "action_delay",
    "irregular_time",
]


@pytest.mark.parametrize("name", sorted(n for n, info in PERTURBATIONS.items() if not info.dynamics))
def test_neutral_level_is_exactly_the_unperturbed_env(name):
    """(The dynamics perturbations act on real physics: tests/test_dynamics.py.)"""
    neutral = PERTURBATIONS[name].neutral
    if name in IMAGE_CAPABLE:
        make_inner, actions = (lambda: ImageEnv(stripe=True, horizon=30)), image_actions(40)
    else:
        make_inner, actions = (lambda: EchoEnv(low=-1.0, high=1.0, horizon=30)), echo_actions(40, scale=2.0)
    wrapped = make_perturbation(make_inner(), f"{name}:{neutral}", seed=0)
    obs_w, rewards_w, _ = rollout(wrapped, actions, seed=11)
    obs_b, rewards_b, _ = rollout(make_inner(), actions, seed=11)
    assert len(obs_w) == len(obs_b) == 31
    for a, b in zip(obs_w, obs_b):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert rewards_w == rewards_b


SEEDED = [name for name, info in PERTURBATIONS.items() if info.seeded]
NONNEUTRAL = {
    "obs_noise": 0.3,
    "pixel_noise": 0.2,
    "dropout": 0.3,
    "frozen": 0.5,
    "occlusion": 0.3,
    "action_noise": 0.5,
    "irregular_time": 3,
}


def _build(name, seed=None, **kwargs):
    """A seeded wrapper on an env that shows its effect in the observation."""
    if name in ("pixel_noise", "occlusion"):
        inner = ImageEnv(stripe=True)
    else:
        inner = EchoEnv(offset=50.0)  # never 0, so dropout is visible
    return make_perturbation(inner, f"{name}:{NONNEUTRAL[name]}", seed=seed, **kwargs)


def _actions_for(env, seed):
    if isinstance(env.unwrapped, ImageEnv):
        return image_actions(30, seed)
    return echo_actions(30, seed)


@pytest.mark.parametrize("name", SEEDED)
def test_same_reset_seed_gives_identical_rollouts_and_another_seed_differs(name):
    env_a, env_b = _build(name), _build(name)
    actions = _actions_for(env_a, 0)
    obs_a, rew_a, _ = rollout(env_a, actions, seed=5)
    obs_b, rew_b, _ = rollout(env_b, actions, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(obs_a, obs_b)) and rew_a == rew_b
    obs_c, rew_c, _ = rollout(env_a, actions, seed=6)
    assert not (all(np.array_equal(a, c) for a, c in zip(obs_a, obs_c)) and rew_a == rew_c)


@pytest.mark.parametrize("name", SEEDED)
def test_explicit_seed_changes_the_draws_for_the_same_reset_seed(name):
    actions = _actions_for(_build(name), 0)
    runs = [rollout(_build(name, seed=s), actions, seed=5)[0] for s in (1, 1, 2)]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not all(np.array_equal(a, c) for a, c in zip(runs[0], runs[2]))


@pytest.mark.parametrize("name", SEEDED)
def test_reset_without_seed_continues_the_stream(name):
    env = _build(name)
    actions = _actions_for(env, 0)
    first, _, _ = rollout(env, actions, seed=5)
    second, _, _ = rollout(env, actions, seed=None)
    again, _, _ = rollout(env, actions, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))


def _perturbation_draws(env, actions, seed):
    """What the perturbation did at each step, measured against the clean inner result."""
    wrapper = env
    env.reset(seed=seed)
    states = [wrapper.rng.bit_generator.state]
    effects = []
    for action in actions:
        if isinstance(wrapper, ActionNoise):
            _, _, _, _, info = env.step(action)
            effects.append(info["executed_action"] - action)
        elif isinstance(wrapper, IrregularTime):
            _, _, _, _, info = env.step(action)
            effects.append(info["frame_skip"])
        elif isinstance(wrapper, FrozenSensor):
            _, _, _, _, info = env.step(action)
            effects.append(info["observation_frozen"])
        elif isinstance(wrapper, Occlusion):
            env.step(action)
            effects.append(wrapper.patch_corner)
        else:
            env.step(action)
            effects.append(None)  # value-level checks: test_observation_noise_values_are_common_across_policies
        states.append(wrapper.rng.bit_generator.state)
    return states, effects


@pytest.mark.parametrize("name", SEEDED)
def test_draws_do_not_depend_on_the_actions(name):
    """Common random numbers: two policies acting differently see the same perturbation draws."""
    env = _build(name)
    actions_1, actions_2 = _actions_for(env, 1), _actions_for(env, 2)
    states_1, effects_1 = _perturbation_draws(_build(name), actions_1, seed=9)
    states_2, effects_2 = _perturbation_draws(_build(name), actions_2, seed=9)
    assert states_1 == states_2  # the RNG advanced identically at every step
    if name == "action_noise":
        np.testing.assert_allclose(effects_1, effects_2, rtol=0, atol=1e-12)
    else:
        assert effects_1 == effects_2


def test_observation_noise_values_are_common_across_policies():
    actions_1, actions_2 = echo_actions(50, 1), echo_actions(50, 2)
    noisy_1, _, _ = rollout(ObservationNoise(EchoEnv(), 0.4), actions_1, seed=3)
    noisy_2, _, _ = rollout(ObservationNoise(EchoEnv(), 0.4), actions_2, seed=3)
    clean_1, _, _ = rollout(EchoEnv(), actions_1, seed=3)
    clean_2, _, _ = rollout(EchoEnv(), actions_2, seed=3)
    np.testing.assert_allclose(
        np.stack(noisy_1) - np.stack(clean_1), np.stack(noisy_2) - np.stack(clean_2), rtol=0, atol=1e-12
    )
    dropout_1, _, _ = rollout(SensorDropout(EchoEnv(offset=50.0), 0.3), actions_1, seed=3)
    dropout_2, _, _ = rollout(SensorDropout(EchoEnv(offset=50.0), 0.3), actions_2, seed=3)
    np.testing.assert_array_equal(np.stack(dropout_1) == 0, np.stack(dropout_2) == 0)


def test_perturbation_stream_is_independent_of_the_env_stream():
    """The wrapper's draws differ from a generator seeded like Gymnasium seeds the env."""
    env = PixelNoise(ImageEnv(), 0.1)
    env.reset(seed=0)
    ours = env.rng.standard_normal(8)
    gym_like = np.random.Generator(np.random.PCG64(np.random.SeedSequence(0))).standard_normal(8)
    assert not np.allclose(ours, gym_like)


def test_stacked_perturbations_draw_from_separate_streams():
    env = apply_perturbations(EchoEnv(), ["obs_noise:0.1", "action_noise:0.1"], seed=0)
    action_noise, obs_noise = env, env.env
    # Same explicit seed and reset seed: only the stream name tells the two generators apart.
    first_action_draws = action_noise.rng_for(7).standard_normal(4)
    first_obs_draws = obs_noise.rng_for(7).standard_normal(4)
    assert not np.allclose(first_action_draws, first_obs_draws)


# ---------------------------------------------------------------------------------------------------------------
# Composition, checkers, pickling
# ---------------------------------------------------------------------------------------------------------------

IMAGE_STACK = [
    "blur:1",
    "brightness:0.1",
    "occlusion:0.2",
    "dropout:0.05",
    "pixel_noise:0.1",
    "frozen:0.2",
    "action_noise:0.1",
    "action_delay:2",
    "irregular_time:3",
]


def test_apply_perturbations_wraps_in_list_order():
    env = apply_perturbations(ImageEnv(), ["blur:1", "pixel_noise:0.1", "action_delay:2"], seed=0)
    assert isinstance(env, ActionDelay)
    assert isinstance(env.env, PixelNoise)
    assert isinstance(env.env.env, GaussianBlur)
    assert env.env.sigma == 0.1 and env.delay == 2


def test_perturbed_image_env_passes_gymnasium_and_sb3_checkers():
    env = apply_perturbations(ImageEnv(stripe=True), IMAGE_STACK, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=True)
    unexpected = [str(w.message) for w in caught if "different from the unwrapped version" not in str(w.message)]
    assert unexpected == []


def test_perturbed_env_pickles_and_continues_identically():
    env = apply_perturbations(ImageEnv(stripe=True), IMAGE_STACK, seed=0)
    env.reset(seed=1)
    clone = pickle.loads(pickle.dumps(env))
    for action in image_actions(20):
        obs_env, rew_env, *_ = env.step(action)
        obs_clone, rew_clone, *_ = clone.step(action)
        np.testing.assert_array_equal(obs_env, obs_clone)
        assert rew_env == rew_clone


# ---------------------------------------------------------------------------------------------------------------
# Parser and validation
# ---------------------------------------------------------------------------------------------------------------


def test_parse_spec_and_sweep():
    assert parse_spec("pixel_noise:0.1") == PerturbationSpec("pixel_noise", 0.1)
    assert parse_spec(" action_delay : 2 ") == PerturbationSpec("action_delay", 2)
    assert isinstance(parse_spec("action_delay:2").level, int)
    assert str(parse_spec("dropout:0.25")) == "dropout:0.25"
    assert parse_spec("irregular_time:1").is_neutral and not parse_spec("irregular_time:2").is_neutral
    assert parse_sweep("pixel_noise:0,0.1,0.2") == ("pixel_noise", (0.0, 0.1, 0.2))
    assert parse_sweep("brightness:-0.2,0,0.2") == ("brightness", (-0.2, 0.0, 0.2))
    assert parse_sweep("action_delay:0") == ("action_delay", (0,))


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(ValueError) as error:
        parse_spec("gaussian:0.1")
    for name in PERTURBATIONS:
        assert name in str(error.value)


@pytest.mark.parametrize(
    "spec",
    [
        "pixel_noise",
        "pixel_noise:",
        "pixel_noise:abc",
        "pixel_noise:-0.1",
        "pixel_noise:nan",
        "pixel_noise:inf",
        "action_delay:1.5",
        "action_delay:-1",
        "dropout:1.5",
        "irregular_time:0",
        "brightness:2",
        "pixel_noise:0.1,0.2",
        ":0.1",
    ],
)
def test_malformed_specs_raise_value_error_with_the_format(spec):
    with pytest.raises(ValueError, match="name:level|must be|several levels|unknown"):
        parse_spec(spec)


@pytest.mark.parametrize("spec", ["pixel_noise:0,0.1,0.1", "pixel_noise:0,,0.1", "action_delay:0,1.5", "blur:"])
def test_malformed_sweeps_raise_value_error(spec):
    with pytest.raises(ValueError):
        parse_sweep(spec)


def test_apply_perturbations_rejects_repeats_and_a_bare_string():
    with pytest.raises(ValueError, match="repeated"):
        apply_perturbations(ImageEnv(), ["pixel_noise:0.1", "pixel_noise:0.2"])
    with pytest.raises(TypeError, match="list"):
        apply_perturbations(ImageEnv(), "pixel_noise:0.1")


def test_wrappers_validate_their_arguments():
    with pytest.raises(ValueError):
        PixelNoise(ImageEnv(), -0.1)
    with pytest.raises(ValueError, match="finite"):
        PixelNoise(EchoEnv(), 0.1)  # unbounded vectors cannot be scaled to [0, 1]
    with pytest.raises(ValueError):
        SensorDropout(ImageEnv(), 1.2)
    with pytest.raises(TypeError):
        ActionDelay(EchoEnv(), 1.5)
    with pytest.raises(TypeError, match="Box action"):
        ActionNoise(gym.make("CartPole-v1"), 0.1)
    with pytest.raises(ValueError, match="seed"):
        PixelNoise(ImageEnv(), 0.1, seed=-1)
    with pytest.raises(ValueError, match="image"):
        GaussianBlur(EchoEnv(), 1.0)
