"""Observation perturbations: noise, dropout, frozen frames, occlusion, brightness and blur.

Each wrapper changes what the agent observes, never the inner env; the random ones draw from their own seeded
stream (:class:`~ncp_control.envs.perturbations.base.Seeded`, see the package docstring).

May import: numpy, scipy (``gaussian_blur``, imported when called), gymnasium and
:mod:`ncp_control.envs.perturbations.base`.
"""

from __future__ import annotations

import copy
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np

from ncp_control import checks
from ncp_control.envs.perturbations.base import (
    Seeded,
    UnitScale,
    box_observation_space,
    is_channel_last_image,
    require_image,
    to_space_dtype,
)

__all__ = [
    "ObservationNoise",
    "PixelNoise",
    "SensorDropout",
    "FrozenSensor",
    "Occlusion",
    "BrightnessShift",
    "GaussianBlur",
    "gaussian_blur",
]


class _ObservationPerturbation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs, Seeded):
    """Base: reseeds before the inner reset, then perturbs every observation (the reset one too)."""

    _stream = "observation"

    def __init__(self, env: gym.Env, seed: int | None, **record: Any):
        gym.utils.RecordConstructorArgs.__init__(self, seed=seed, **record)
        gym.ObservationWrapper.__init__(self, env)
        self._init_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self._reseed(seed)
        observation, info = self.env.reset(seed=seed, options=options)
        self._on_reset()
        return self.observation(observation), info

    def _on_reset(self) -> None:
        """Per-episode draws (called after the inner reset, before the first observation is perturbed)."""


class ObservationNoise(_ObservationPerturbation):
    """Additive Gaussian noise on a real-valued ``Box`` observation (``obs_noise``).

    ``obs' = clip(obs + sigma * n, low, high)`` with ``n ~ N(0, I)`` drawn for the full observation shape every
    reset and step; the clip keeps ``obs'`` in the observation space (a no-op for unbounded entries).

    Args:
        env: env with a floating-point ``Box`` observation of any shape. Integer (image) observations raise
            ``TypeError``: use :class:`PixelNoise`.
        sigma: standard deviation in observation units, ``>= 0``; 0 is the identity.
        seed: optional seed, combined with the reset seed (see :mod:`ncp_control.envs.perturbations`).
    """

    _stream = "obs_noise"

    def __init__(self, env: gym.Env, sigma: float, seed: int | None = None):
        space = box_observation_space(env, "ObservationNoise")
        if not np.issubdtype(space.dtype, np.floating):
            raise TypeError(
                f"ObservationNoise needs a floating-point Box, got dtype {space.dtype}; use PixelNoise "
                "('pixel_noise') for images."
            )
        self.sigma = checks.non_negative_real("sigma", sigma)
        super().__init__(env, seed, sigma=sigma)
        self._low, self._high = space.low, space.high

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """``observation``: inner observation, shape of the space -> perturbed, same shape and dtype."""
        noise = self._rng.standard_normal(self.observation_space.shape)
        if self.sigma == 0.0:
            return observation
        noisy = np.clip(observation + self.sigma * noise, self._low, self._high)
        return noisy.astype(self.observation_space.dtype)


class PixelNoise(_ObservationPerturbation):
    """Gaussian pixel noise, the NCP paper's protocol (``pixel_noise``).

    The image is scaled to [0, 1] by the space bounds (``x / 255`` for uint8), ``sigma * n`` is added with
    ``n ~ N(0, 1)`` independently for every pixel and channel (noise variance ``sigma**2``), the result is clipped
    to [0, 1] and mapped back to the observation dtype (uint8: ``rint(255 * x)``). The paper's noise variances
    0.1, 0.2, 0.3 are ``sigma = sqrt(variance)`` = 0.316, 0.447, 0.548. For uint8 and float32 images the noise
    is drawn and added in float32 (about 0.5 ms per 64x128x3 frame, ``scripts/bench_perturbations.py``).

    Args:
        env: env with a ``Box`` observation with finite bounds (any shape; usually uint8 (H, W, 3)).
        sigma: noise standard deviation on the [0, 1] scale, ``>= 0``; 0 is the identity.
        seed: optional seed, combined with the reset seed (see :mod:`ncp_control.envs.perturbations`).
    """

    _stream = "pixel_noise"

    def __init__(self, env: gym.Env, sigma: float, seed: int | None = None):
        space = box_observation_space(env, "PixelNoise")
        self._scale = UnitScale(space, "PixelNoise")
        self.sigma = checks.non_negative_real("sigma", sigma)
        super().__init__(env, seed, sigma=sigma)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """``observation``: image, shape of the space (e.g. (H, W, 3) uint8) -> noisy image, same shape/dtype."""
        noise = self._rng.standard_normal(self.observation_space.shape, dtype=self._scale.dtype)
        if self.sigma == 0.0:
            return observation
        noise *= self.sigma
        noise += self._scale.to_unit(observation)
        return self._scale.from_unit(noise)


class SensorDropout(_ObservationPerturbation):
    """Sensor dropout: each element reads 0 with probability ``p`` (``dropout``), independently every step.

    For a channel-last uint8 image (H, W, C) the decision is per pixel: all C channels of a dropped pixel read 0
    (a dead pixel is black); for any other ``Box`` it is per element. The mask is drawn for the full shape every
    reset and step. Where 0 lies outside an element's bounds, the dropped value is the bound nearest to 0.

    Args:
        env: env with a ``Box`` observation.
        p: drop probability in [0, 1]; 0 is the identity.
        seed: optional seed, combined with the reset seed (see :mod:`ncp_control.envs.perturbations`).
    """

    _stream = "dropout"

    def __init__(self, env: gym.Env, p: float, seed: int | None = None):
        space = box_observation_space(env, "SensorDropout")
        self.p = checks.probability("p", p)
        super().__init__(env, seed, p=p)
        if is_channel_last_image(space):
            self._mask_shape = (*space.shape[:2], 1)  # one decision per pixel, broadcast over channels
        else:
            self._mask_shape = space.shape
        self._dropped_value = np.clip(np.zeros(space.shape), space.low, space.high).astype(space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """``observation``: shape of the space -> same shape/dtype with dropped elements set to 0."""
        dropped = self._rng.random(self._mask_shape) < self.p
        if self.p == 0.0:
            return observation
        return np.where(dropped, self._dropped_value, observation).astype(self.observation_space.dtype)


class FrozenSensor(gym.Wrapper, gym.utils.RecordConstructorArgs, Seeded):
    """Frozen sensor (``frozen``): with probability ``p`` per step the agent receives again the observation it
    was last given, instead of the new one.

    The whole observation freezes at once (one camera or sensor bus stalls). A freeze can last several steps in
    a row (the repeated value is the last *delivered* one, so it stays the same). The reset observation is always
    fresh. One uniform number is drawn per step. ``info["observation_frozen"]`` says whether this step's
    observation is a repeat.

    Args:
        env: any env.
        p: freeze probability per step in [0, 1]; 0 is the identity.
        seed: optional seed, combined with the reset seed (see :mod:`ncp_control.envs.perturbations`).
    """

    _stream = "frozen"

    def __init__(self, env: gym.Env, p: float, seed: int | None = None):
        self.p = checks.probability("p", p)
        gym.utils.RecordConstructorArgs.__init__(self, p=p, seed=seed)
        gym.Wrapper.__init__(self, env)
        self._init_rng(seed)
        self._last: Any = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self._reseed(seed)
        observation, info = self.env.reset(seed=seed, options=options)
        self._last = copy.deepcopy(observation)  # the inner env may reuse its observation buffer
        return observation, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        frozen = bool(self._rng.random() < self.p)
        if frozen:
            observation = copy.deepcopy(self._last)
        else:
            self._last = copy.deepcopy(observation)
        info = {**info, "observation_frozen": frozen}
        return observation, reward, terminated, truncated, info


class Occlusion(_ObservationPerturbation):
    """Occlusion (``occlusion``): a rectangular patch of the image is painted with ``fill``.

    The patch is ``round(size * H)`` by ``round(size * W)`` pixels (``size`` is the fraction of each side, so the
    area fraction is about ``size**2``; a nonzero size gives at least one pixel per side), over all channels. Its
    top-left corner is uniform over the positions where the patch fits inside the image, drawn once per episode
    at reset (``resample="episode"``, a smudge on the lens) or at every reset and step (``resample="step"``).

    Args:
        env: env with an image ``Box`` observation of shape (H, W) or (H, W, C).
        size: patch side as a fraction of the image side, in [0, 1]; 0 is the identity.
        resample: ``"episode"`` or ``"step"``.
        fill: value painted into the patch, in observation units, inside the space bounds (default 0: black).
        seed: optional seed, combined with the reset seed (see :mod:`ncp_control.envs.perturbations`).
    """

    _stream = "occlusion"

    def __init__(
        self,
        env: gym.Env,
        size: float,
        resample: Literal["episode", "step"] = "episode",
        fill: float = 0.0,
        seed: int | None = None,
    ):
        space = box_observation_space(env, "Occlusion")
        require_image(space, "Occlusion")
        self.size = checks.real_in_range("size", size, 0.0, 1.0)
        if resample not in ("episode", "step"):
            raise ValueError(f"resample must be 'episode' or 'step', got {resample!r}")
        fill = checks.real_in_range("fill", fill)
        if not (np.all(space.low <= fill) and np.all(fill <= space.high)):
            raise ValueError(f"fill must lie inside the observation bounds, got {fill}")
        super().__init__(env, seed, size=size, resample=resample, fill=fill)
        self.resample = resample
        self._fill = np.asarray(fill).astype(space.dtype)
        height, width = space.shape[:2]
        if self.size == 0.0:
            self.patch_shape = (0, 0)
        else:
            self.patch_shape = (max(1, round(self.size * height)), max(1, round(self.size * width)))
        self._corner = (0, 0)

    def _draw_corner(self) -> None:
        height, width = box_observation_space(self, "Occlusion").shape[:2]
        patch_h, patch_w = self.patch_shape
        # integers(0, n) draws from [0, n): the last valid corner is H - patch_h.
        self._corner = (
            int(self._rng.integers(0, height - patch_h + 1)),
            int(self._rng.integers(0, width - patch_w + 1)),
        )

    def _on_reset(self) -> None:
        if self.resample == "episode":
            self._draw_corner()

    @property
    def patch_corner(self) -> tuple[int, int]:
        """(row, column) of the top-left pixel of the current patch."""
        return self._corner

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """``observation``: (H, W) or (H, W, C) image -> the same with the patch painted."""
        if self.resample == "step":
            self._draw_corner()
        if self.size == 0.0:
            return observation
        occluded = np.array(observation, copy=True)
        row, col = self._corner
        occluded[row : row + self.patch_shape[0], col : col + self.patch_shape[1]] = self._fill
        return occluded


class BrightnessShift(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Brightness and contrast shift (``brightness``), deterministic.

    On the image scaled to [0, 1] by the space bounds: ``x' = clip(contrast * (x - 0.5) + 0.5 + shift, 0, 1)``,
    then mapped back to the observation dtype (uint8: rounded). ``shift=0, contrast=1`` is the identity.

    Args:
        env: env with a ``Box`` observation with finite bounds (usually a uint8 image).
        shift: additive brightness change on the [0, 1] scale, in [-1, 1].
        contrast: contrast factor around mid-grey, ``>= 0`` (0 gives a uniform grey image).
    """

    def __init__(self, env: gym.Env, shift: float, contrast: float = 1.0):
        space = box_observation_space(env, "BrightnessShift")
        self._scale = UnitScale(space, "BrightnessShift")
        self.shift = checks.real_in_range("shift", shift, -1.0, 1.0)
        self.contrast = checks.non_negative_real("contrast", contrast)
        gym.utils.RecordConstructorArgs.__init__(self, shift=shift, contrast=contrast)
        gym.ObservationWrapper.__init__(self, env)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """``observation``: shape of the space -> shifted, same shape/dtype."""
        if self.shift == 0.0 and self.contrast == 1.0:
            return observation
        unit = self._scale.to_unit(observation)
        unit -= 0.5
        unit *= self.contrast
        unit += 0.5 + self.shift
        return self._scale.from_unit(unit)


def gaussian_blur(image: np.ndarray, sigma: float, truncate: float = 4.0, dtype: Any = np.float64) -> np.ndarray:
    """Gaussian blur over the first two axes of ``image``: ``scipy.ndimage.gaussian_filter`` with ``sigma`` on
    height and width, 0 on channels, mirrored borders (``mode="reflect"``: the edge pixel repeated).

    Args:
        image: (H, W) or (H, W, C) array of any real dtype.
        sigma: standard deviation in pixels, ``> 0``.
        truncate: the kernel reaches ``int(truncate * sigma + 0.5)`` pixels on each side.
        dtype: floating dtype of the result (scipy computes in float64).

    Returns:
        (H, W[, C]) blurred image of ``dtype``.
    """
    from scipy import ndimage

    image = np.asarray(image, dtype=dtype)
    sigmas = (sigma, sigma) + (0,) * (image.ndim - 2)  # no blur across channels
    return ndimage.gaussian_filter(image, sigmas, mode="reflect", truncate=truncate, output=dtype)


class GaussianBlur(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Gaussian blur of the image (``blur``), deterministic (a defocused lens).

    ``scipy.ndimage.gaussian_filter`` (:func:`gaussian_blur`) over height and width, channels separately, mirrored borders,
    kernel radius ``int(4 * sigma + 0.5)`` pixels; integer images are rounded back to their dtype.

    Args:
        env: env with an image ``Box`` observation (H, W) or (H, W, C).
        sigma: blur standard deviation in pixels, ``>= 0``; 0 is the identity.
    """

    def __init__(self, env: gym.Env, sigma: float):
        space = box_observation_space(env, "GaussianBlur")
        require_image(space, "GaussianBlur")
        self.sigma = checks.non_negative_real("sigma", sigma)
        gym.utils.RecordConstructorArgs.__init__(self, sigma=sigma)
        gym.ObservationWrapper.__init__(self, env)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """``observation``: (H, W) or (H, W, C) image -> blurred, same shape/dtype."""
        if self.sigma == 0.0:
            return observation
        space = box_observation_space(self, "GaussianBlur")
        work = np.result_type(space.dtype, np.float32)  # float32 for uint8 images
        blurred = np.clip(gaussian_blur(observation, self.sigma, dtype=work), space.low, space.high)
        return to_space_dtype(blurred, space)
