"""Saliency stability under perturbations: SSIM between a policy's saliency maps on clean and perturbed frames.

The NCP paper (Lechner et al. 2020) measures how much a camera policy's attention moves under pixel noise by the
structural similarity (SSIM) between VisualBackProp saliency maps of clean and noisy images. This module holds the
metric (:func:`ssim`) and the protocol (:func:`saliency_stability`); the saliency method is a parameter, any
callable ``frames (T, H, W, 3) uint8 -> maps (T, H, W)``. (VisualBackProp for our conv head is being written in
``ncp_control.inspect``; pass it here once it is on main.)

Protocol: the policy drives episode ``i`` (reset seed ``seed + i``) on the clean env and its frames are recorded;
the same frames are then replayed through the perturbation wrapper with the wrapper seed ``perturbation_seed`` and
reset seed ``seed + i``, so frame ``t`` gets the noise draw that step ``t`` of episode ``i`` gets in
:func:`ncp_control.agents.evaluation.robustness.robustness_sweep` (common random numbers). Each map is scaled to [0, 1] by its maximum
(a map that is zero everywhere stays zero) and SSIM is computed with ``data_range = 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from ncp_control import checks
from ncp_control.envs.perturbations import gaussian_blur, make_perturbation, parse_spec

__all__ = ["ssim", "ssim_map", "perturb_frames", "saliency_stability"]

SSIM_K1 = 0.01  # Wang et al. 2004 constants: C1 = (K1 L)^2, C2 = (K2 L)^2 keep the ratios finite for flat regions
SSIM_K2 = 0.03
SSIM_SIGMA = 1.5  # Gaussian window standard deviation in pixels (Wang et al. 2004)


def ssim_map(
    a: np.ndarray, b: np.ndarray, data_range: float, sigma: float = SSIM_SIGMA, truncate: float = 4.0
) -> np.ndarray:
    """Per-pixel structural similarity of two images (Wang, Bovik, Sheikh & Simoncelli 2004).

    ``((2 mu_a mu_b + C1)(2 cov_ab + C2)) / ((mu_a^2 + mu_b^2 + C1)(var_a + var_b + C2))`` with local means,
    variances and covariance weighted by a Gaussian window of std ``sigma`` (truncated at ``truncate`` sigma,
    mirrored borders; :func:`ncp_control.envs.perturbations.gaussian_blur`, i.e. ``scipy.ndimage.gaussian_filter``),
    ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, ``L = data_range``.

    With ``truncate=3.5`` this is scikit-image's ``structural_similarity(a, b, data_range=L, gaussian_weights=True,
    sigma=sigma, use_sample_covariance=False, full=True)`` map (tested). We keep our own for two reasons:
    scikit-image refuses images smaller than its window (11 pixels at sigma 1.5) and its mean drops a border of
    the window's radius, while :func:`ssim` averages every pixel (the recorded results in
    ``docs/saliency_stability.md`` use this mean with ``truncate=4``).

    Args:
        a, b: (H, W) images of the same shape (any real dtype; computed in float64).
        data_range: ``L``, the range the values can span (1 for maps in [0, 1], 255 for uint8), ``> 0``.
        sigma: window std in pixels, ``> 0``. truncate: window radius in units of sigma.
    Returns:
        (H, W) float64 map, 1 where the images agree locally.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim needs two (H, W) images of one shape, got {a.shape} and {b.shape}")
    checks.positive_real("data_range", data_range)
    checks.positive_real("sigma", sigma)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2

    def window_mean(x: np.ndarray) -> np.ndarray:
        return gaussian_blur(x, sigma, truncate)

    mu_a, mu_b = window_mean(a), window_mean(b)
    var_a = window_mean(a * a) - mu_a * mu_a
    var_b = window_mean(b * b) - mu_b * mu_b
    cov = window_mean(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float, sigma: float = SSIM_SIGMA) -> float:
    """Mean structural similarity of two (H, W) images: the mean of :func:`ssim_map` over all pixels.

    1 for identical images; symmetric; below 1 as structure, contrast or brightness differ.
    """
    return float(ssim_map(a, b, data_range, sigma).mean())  # mean over H and W


class _Replay(gym.Env):
    """Plays back recorded frames: reset gives frame 0, step t gives frame t (reward 0, truncated at the end)."""

    def __init__(self, frames: np.ndarray, observation_space: gym.Space):
        self.frames = frames
        self.observation_space = observation_space
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self.frames[0], {}

    def step(self, action):
        self.t += 1
        return self.frames[self.t], 0.0, False, self.t >= len(self.frames) - 1, {}


def perturb_frames(
    frames: np.ndarray, spec: str, observation_space: gym.Space, episode_seed: int, perturbation_seed: int | None = None
) -> np.ndarray:
    """Apply an observation perturbation to recorded frames with the draws an episode would get.

    Args:
        frames: (T, H, W, C) frames of one episode (frame 0 = the reset observation).
        spec: ``"name:level"`` of an observation perturbation (e.g. ``"pixel_noise:0.316"``).
        observation_space: the env's observation space (the wrappers read its bounds).
        episode_seed: the episode's reset seed.
        perturbation_seed: the wrapper's constructor seed (as in ``robustness_sweep``).
    Returns:
        (T, H, W, C) perturbed frames, frame ``t`` with the draw of step ``t`` of that episode.
    """
    frames = np.asarray(frames)
    env = make_perturbation(_Replay(frames, observation_space), spec, seed=perturbation_seed)
    out = [env.reset(seed=episode_seed)[0]]
    for _ in range(len(frames) - 1):
        out.append(env.step(np.zeros(1, np.float32))[0])
    return np.stack(out)


class _Recorder(gym.ObservationWrapper):
    """Keeps every observation the policy receives (reset and steps), per episode."""

    def __init__(self, env: gym.Env, episodes: list[list[np.ndarray]]):
        super().__init__(env)
        self.episodes = episodes

    def reset(self, **kwargs):
        self.episodes.append([])
        return super().reset(**kwargs)

    def observation(self, observation):
        self.episodes[-1].append(np.array(observation, copy=True))
        return observation


def _unit_scale(maps: np.ndarray) -> np.ndarray:
    """Scale each (H, W) map of (T, H, W) to [0, 1] by its maximum absolute value (all-zero maps stay zero)."""
    peak = np.abs(maps).reshape(len(maps), -1).max(axis=1)  # max over the pixels of each map
    return np.abs(maps) / np.where(peak > 0, peak, 1.0)[:, None, None]


def saliency_stability(
    predictor: Any,
    saliency: Callable[[np.ndarray], np.ndarray],
    env_id: str,
    perturbation: str,
    episodes: int,
    seed: int,
    *,
    perturbation_seed: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    max_frames: int | None = None,
) -> dict[str, Any]:
    """SSIM between saliency maps of clean frames and of the same frames perturbed (see the module docstring).

    Args:
        predictor: a Predictor (see :mod:`ncp_control.agents.evaluation.episodes`) that drives the clean episodes.
        saliency: ``frames (T, H, W, 3) uint8 -> maps (T, H, W)`` (e.g. VisualBackProp of the policy's conv head).
        env_id: a camera env id.
        perturbation: an observation perturbation spec, e.g. ``"pixel_noise:0.316"``.
        episodes: episodes driven (episode ``i`` reset with ``seed + i``).
        seed: seed of the first episode.
        perturbation_seed: wrapper seed (default ``seed``, as in ``robustness_sweep``).
        env_kwargs: ``gym.make`` arguments (e.g. the image size the policy was trained on).
        max_frames: use at most this many frames per episode (the first ones), to bound the cost.
    Returns:
        ``mean_ssim`` (over all frames), ``episode_ssim`` (per-episode means), ``frames`` (count used) and the
        settings.
    """
    from ncp_control.agents.evaluation.episodes import evaluate, make_eval_env

    spec = parse_spec(perturbation)
    recorded: list[list[np.ndarray]] = []
    evaluate(
        predictor,
        env_id,
        episodes,
        seed,
        env_kwargs=dict(env_kwargs or {}),
        wrappers=(lambda env: _Recorder(env, recorded),),
        allow_import=True,
    )  # env_id is the caller's
    space = make_eval_env(env_id, dict(env_kwargs or {}), allow_import=True)
    observation_space = space.observation_space
    space.close()
    pseed = seed if perturbation_seed is None else int(perturbation_seed)
    per_episode, count = [], 0
    for i, frames in enumerate(recorded):
        clean = np.stack(frames)
        noisy = perturb_frames(clean, str(spec), observation_space, seed + i, pseed)
        if max_frames is not None:
            clean, noisy = clean[:max_frames], noisy[:max_frames]
        clean_maps = _unit_scale(np.asarray(saliency(clean), dtype=np.float64))
        noisy_maps = _unit_scale(np.asarray(saliency(noisy), dtype=np.float64))
        if clean_maps.shape != clean.shape[:3]:
            raise ValueError(f"saliency must return (T, H, W) = {clean.shape[:3]} maps, got {clean_maps.shape}")
        scores = [ssim(c, n, data_range=1.0) for c, n in zip(clean_maps, noisy_maps)]
        per_episode.append(float(np.mean(scores)))
        count += len(scores)
    weights = [min(len(f), max_frames or len(f)) for f in recorded]
    return {
        "mean_ssim": float(np.average(per_episode, weights=weights)),  # frame-weighted mean over episodes
        "episode_ssim": per_episode,
        "frames": count,
        "perturbation": str(spec),
        "seed": seed,
        "perturbation_seed": pseed,
    }
