"""Perturbation wrappers for robustness evaluation, a registry of them, and a spec parser.

Every wrapper is a ``gymnasium.Wrapper`` usable on any env whose spaces it supports (vector or image ``Box``
observations, ``Box`` actions), and they compose by nesting. Evaluation code names them with short specs::

    env = apply_perturbations(gym.make("LaneKeeping-v0"), ["pixel_noise:0.316", "action_delay:2"], seed=0)
    levels = parse_sweep("pixel_noise:0,0.1,0.2")   # -> ("pixel_noise", (0.0, 0.1, 0.2))

=================  ===============  ========  ==========================================================
name               class            neutral   level
=================  ===============  ========  ==========================================================
``obs_noise``      ObservationNoise 0         sigma of additive Gaussian noise, observation units
``pixel_noise``    PixelNoise       0         sigma on images scaled to [0, 1] (variance sigma**2)
``dropout``        SensorDropout    0         probability p that an element (image: a pixel) reads 0
``frozen``         FrozenSensor     0         probability p per step that the last observation repeats
``occlusion``      Occlusion        0         patch side as a fraction of the image side
``brightness``     BrightnessShift  0         additive shift on images scaled to [0, 1]
``blur``           GaussianBlur     0         Gaussian blur sigma in pixels
``action_noise``   ActionNoise      0         sigma of additive Gaussian noise, action units
``action_delay``   ActionDelay      0         delay k in steps (int)
``irregular_time`` IrregularTime    1         maximum frame skip K (int): k ~ U{1..K} per step
=================  ===============  ========  ==========================================================

At the neutral level every wrapper returns the inner env's observations, rewards and actions unchanged.

**Seeding and common random numbers.** Each random wrapper owns a ``numpy.random.Generator``. It is seeded from
``(seed, reset seed)`` whenever ``reset(seed=...)`` is called, where ``seed`` is the optional constructor argument;
the seed sequence carries a spawn key made from the wrapper's registry name, so its stream differs from the inner
env's ``np_random`` (seeded by Gymnasium from the reset seed alone) and from the other wrappers' streams.
``reset()`` without a seed continues the stream. Draws never depend on actions or observations: each step draws
the same number of values of the same shape (noise for the full observation or action shape, a full mask, one
patch position, one skip length), so the same seeds give the same perturbation at step ``t`` of every policy's
episode, as robustness comparisons with common random numbers require.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import math
import zlib
from collections.abc import Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box, Discrete

__all__ = [
    "ObservationNoise",
    "PixelNoise",
    "SensorDropout",
    "FrozenSensor",
    "Occlusion",
    "BrightnessShift",
    "GaussianBlur",
    "ActionNoise",
    "ActionDelay",
    "IrregularTime",
    "PerturbationInfo",
    "PerturbationSpec",
    "PERTURBATIONS",
    "parse_spec",
    "parse_sweep",
    "make_perturbation",
    "apply_perturbations",
    "gaussian_blur",
]

# Tag in every perturbation seed sequence's spawn key: keeps our streams apart from seed sequences built from the
# same integer seed elsewhere (Gymnasium seeds the env with SeedSequence(seed), which has no spawn key).
_SEED_TAG = 0x4E4350  # "NCP"


# --------------------------------------------------------------------------------------------------------------
# Validation and space helpers
# --------------------------------------------------------------------------------------------------------------


def _check_real(name: str, value: Any, low: float, high: float = math.inf) -> float:
    """Return ``value`` as a float after checking it is a finite real in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a finite number in [{low}, {high}], got {value}")
    return value


def _check_int(name: str, value: Any, low: int) -> int:
    """Return ``value`` as an int after checking it is an integer ``>= low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value}")
    return int(value)


def _check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    return _check_int("seed", seed, 0)


def _box_observation_space(env: gym.Env, who: str) -> Box:
    space = env.observation_space
    if not isinstance(space, Box):
        raise TypeError(f"{who} needs a Box observation space, got {space!r}")
    return space


def _finite_bounds(space: Box, who: str) -> tuple[np.ndarray, np.ndarray]:
    """Bounds as float64 arrays of the observation shape; they must be finite and ``low < high``."""
    low = np.broadcast_to(space.low, space.shape).astype(np.float64)
    high = np.broadcast_to(space.high, space.shape).astype(np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
        raise ValueError(
            f"{who} scales observations to [0, 1] by the space bounds, which must be finite with low < high "
            f"(an image Box, e.g. uint8 in [0, 255]); got {space!r}. Use obs_noise for unbounded vectors."
        )
    return low, high


def _is_channel_last_image(space: Box) -> bool:
    """An (H, W, C) uint8 Box, the convention of SB3's ``is_image_space`` and of our camera env."""
    return len(space.shape) == 3 and space.dtype == np.uint8


def _require_image(space: Box, who: str) -> None:
    if len(space.shape) not in (2, 3):
        raise ValueError(f"{who} needs an image observation of shape (H, W) or (H, W, C), got {space.shape}")


def _to_space_dtype(values: np.ndarray, space: Box) -> np.ndarray:
    """Cast float values to the space's dtype; integer dtypes are rounded to nearest (ties to even) first."""
    if np.issubdtype(space.dtype, np.integer):
        values = np.rint(values)
    return values.astype(space.dtype, copy=False)


class _UnitScale:
    """Maps observations of a bounded Box to [0, 1] and back (``x01 = (x - low) / (high - low)``).

    Works in ``dtype`` = float32 for uint8/float32 spaces (ample for 8-bit images, twice as fast as float64) and
    float64 for wider dtypes; uniform bounds are kept as scalars so the maps broadcast cheaply.
    """

    def __init__(self, space: Box, who: str):
        self._space = space
        low, high = _finite_bounds(space, who)
        self.dtype = np.result_type(space.dtype, np.float32)
        if np.all(low == low.flat[0]) and np.all(high == high.flat[0]):
            low, high = low.flat[0], high.flat[0]
        self._low = np.asarray(low, dtype=self.dtype)
        self._range = np.asarray(high - low, dtype=self.dtype)

    def to_unit(self, observation: np.ndarray) -> np.ndarray:
        unit = np.subtract(observation, self._low, dtype=self.dtype)
        unit /= self._range
        return unit

    def from_unit(self, unit: np.ndarray) -> np.ndarray:
        """Clip to [0, 1], map back to the bounds, cast (rounding for integer dtypes). Overwrites ``unit``."""
        np.clip(unit, 0.0, 1.0, out=unit)
        unit *= self._range
        unit += self._low
        return _to_space_dtype(unit, self._space)


# --------------------------------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------------------------------


class _Seeded:
    """Mixin: one RNG per wrapper, reseeded from ``(seed, reset seed)`` on ``reset(seed=...)``.

    Subclasses set ``_stream`` (their registry name) and call ``_init_rng(seed)`` in ``__init__``.
    """

    _stream: str

    def _init_rng(self, seed: int | None) -> None:
        self._seed = _check_seed(seed)
        self._rng = self._make_rng(None)

    def _make_rng(self, reset_seed: int | None) -> np.random.Generator:
        if self._seed is None and reset_seed is None:
            sequence = np.random.SeedSequence()  # fresh OS entropy until a seed is given
        else:
            # Flags keep (seed=s, no reset seed) and (no seed, reset seed=s) apart.
            entropy = [
                int(self._seed is not None), self._seed or 0, int(reset_seed is not None), reset_seed or 0
            ]
            salt = zlib.crc32(self._stream.encode("ascii"))
            sequence = np.random.SeedSequence(entropy, spawn_key=(_SEED_TAG, salt))
        return np.random.Generator(np.random.PCG64(sequence))

    def _reseed(self, reset_seed: int | None) -> None:
        if reset_seed is not None:
            self._rng = self._make_rng(_check_int("reset seed", reset_seed, 0))


# --------------------------------------------------------------------------------------------------------------
# Observation perturbations
# --------------------------------------------------------------------------------------------------------------


class _ObservationPerturbation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs, _Seeded):
    """Base: reseeds before the inner reset, then perturbs every observation (the reset one too)."""

    _stream = "observation"

    def __init__(self, env: gym.Env, seed: int | None, **record: Any):
        gym.utils.RecordConstructorArgs.__init__(self, seed=seed, **record)
        gym.ObservationWrapper.__init__(self, env)
        self._init_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
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
        seed: optional seed, combined with the reset seed (see the module docstring).
    """

    _stream = "obs_noise"

    def __init__(self, env: gym.Env, sigma: float, seed: int | None = None):
        space = _box_observation_space(env, "ObservationNoise")
        if not np.issubdtype(space.dtype, np.floating):
            raise TypeError(
                f"ObservationNoise needs a floating-point Box, got dtype {space.dtype}; use PixelNoise "
                "('pixel_noise') for images."
            )
        self.sigma = _check_real("sigma", sigma, 0.0)
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
        seed: optional seed, combined with the reset seed (see the module docstring).
    """

    _stream = "pixel_noise"

    def __init__(self, env: gym.Env, sigma: float, seed: int | None = None):
        space = _box_observation_space(env, "PixelNoise")
        self._scale = _UnitScale(space, "PixelNoise")
        self.sigma = _check_real("sigma", sigma, 0.0)
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
        seed: optional seed, combined with the reset seed (see the module docstring).
    """

    _stream = "dropout"

    def __init__(self, env: gym.Env, p: float, seed: int | None = None):
        space = _box_observation_space(env, "SensorDropout")
        self.p = _check_real("p", p, 0.0, 1.0)
        super().__init__(env, seed, p=p)
        if _is_channel_last_image(space):
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


class FrozenSensor(gym.Wrapper, gym.utils.RecordConstructorArgs, _Seeded):
    """Frozen sensor (``frozen``): with probability ``p`` per step the agent receives again the observation it
    was last given, instead of the new one.

    The whole observation freezes at once (one camera or sensor bus stalls). A freeze can last several steps in
    a row (the repeated value is the last *delivered* one, so it stays the same). The reset observation is always
    fresh. One uniform number is drawn per step. ``info["observation_frozen"]`` says whether this step's
    observation is a repeat.

    Args:
        env: any env.
        p: freeze probability per step in [0, 1]; 0 is the identity.
        seed: optional seed, combined with the reset seed (see the module docstring).
    """

    _stream = "frozen"

    def __init__(self, env: gym.Env, p: float, seed: int | None = None):
        self.p = _check_real("p", p, 0.0, 1.0)
        gym.utils.RecordConstructorArgs.__init__(self, p=p, seed=seed)
        gym.Wrapper.__init__(self, env)
        self._init_rng(seed)
        self._last: Any = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._reseed(seed)
        observation, info = self.env.reset(seed=seed, options=options)
        self._last = copy.deepcopy(observation)  # the inner env may reuse its observation buffer
        return observation, info

    def step(self, action: Any):
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
        seed: optional seed, combined with the reset seed (see the module docstring).
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
        space = _box_observation_space(env, "Occlusion")
        _require_image(space, "Occlusion")
        self.size = _check_real("size", size, 0.0, 1.0)
        if resample not in ("episode", "step"):
            raise ValueError(f"resample must be 'episode' or 'step', got {resample!r}")
        fill = _check_real("fill", fill, -math.inf)
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
        height, width = self.observation_space.shape[:2]
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
        space = _box_observation_space(env, "BrightnessShift")
        self._scale = _UnitScale(space, "BrightnessShift")
        self.shift = _check_real("shift", shift, -1.0, 1.0)
        self.contrast = _check_real("contrast", contrast, 0.0)
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
        space = _box_observation_space(env, "GaussianBlur")
        _require_image(space, "GaussianBlur")
        self.sigma = _check_real("sigma", sigma, 0.0)
        gym.utils.RecordConstructorArgs.__init__(self, sigma=sigma)
        gym.ObservationWrapper.__init__(self, env)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """``observation``: (H, W) or (H, W, C) image -> blurred, same shape/dtype."""
        if self.sigma == 0.0:
            return observation
        space = self.observation_space
        work = np.result_type(space.dtype, np.float32)  # float32 for uint8 images
        blurred = np.clip(gaussian_blur(observation, self.sigma, dtype=work), space.low, space.high)
        return _to_space_dtype(blurred, space)


# --------------------------------------------------------------------------------------------------------------
# Action and time perturbations
# --------------------------------------------------------------------------------------------------------------


class ActionNoise(gym.ActionWrapper, gym.utils.RecordConstructorArgs, _Seeded):
    """Additive Gaussian action noise (``action_noise``): the env executes ``clip(a + sigma * n, low, high)``.

    ``n ~ N(0, I)`` is drawn for the full action shape every step. ``sigma`` is in action units (for actions in
    [-1, 1], sigma 0.1 is 5% of the range).

    Args:
        env: env with a ``Box`` action space.
        sigma: standard deviation, ``>= 0``; 0 passes actions through unchanged (not even clipped).
        seed: optional seed, combined with the reset seed (see the module docstring).
    """

    _stream = "action_noise"

    def __init__(self, env: gym.Env, sigma: float, seed: int | None = None):
        if not isinstance(env.action_space, Box):
            raise TypeError(f"ActionNoise needs a Box action space, got {env.action_space!r}")
        self.sigma = _check_real("sigma", sigma, 0.0)
        gym.utils.RecordConstructorArgs.__init__(self, sigma=sigma, seed=seed)
        gym.ActionWrapper.__init__(self, env)
        self._init_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._reseed(seed)
        return self.env.reset(seed=seed, options=options)

    def action(self, action: np.ndarray) -> np.ndarray:
        """``action``: shape of the action space -> the noisy action the env executes."""
        space = self.action_space
        noise = self._rng.standard_normal(space.shape)
        if self.sigma == 0.0:
            return action
        noisy = np.clip(np.asarray(action, dtype=np.float64) + self.sigma * noise, space.low, space.high)
        return noisy.astype(space.dtype)


def _neutral_action(space: gym.Space) -> Any:
    if isinstance(space, Box):
        return np.clip(np.zeros(space.shape), space.low, space.high).astype(space.dtype)
    if isinstance(space, Discrete):
        return space.start
    raise TypeError(f"no default neutral action for {space!r}; pass neutral_action explicitly")


class ActionDelay(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Action delay (``action_delay``): at step ``t`` the env executes the action given at step ``t - k``.

    For the first ``k`` steps of an episode the env executes the neutral action (``Box``: zeros, clipped into
    the bounds; ``Discrete``: its first action; otherwise pass ``neutral_action``). Deterministic.

    Args:
        env: any env.
        delay: ``k >= 0`` steps; 0 is the identity.
        neutral_action: the action executed before the first delayed one arrives.
    """

    def __init__(self, env: gym.Env, delay: int, neutral_action: Any = None):
        self.delay = _check_int("delay", delay, 0)
        gym.utils.RecordConstructorArgs.__init__(self, delay=delay, neutral_action=neutral_action)
        gym.Wrapper.__init__(self, env)
        if neutral_action is None:
            neutral_action = _neutral_action(env.action_space) if self.delay > 0 else None
        elif not env.action_space.contains(neutral_action):
            raise ValueError(f"neutral_action {neutral_action!r} is not in the action space {env.action_space!r}")
        self._neutral = neutral_action
        self._queue: collections.deque[Any] = collections.deque()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._queue = collections.deque([self._neutral] * self.delay)
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any):
        if self.delay == 0:
            return self.env.step(action)
        self._queue.append(np.array(action, copy=True))  # copy: callers may reuse their action buffer
        return self.env.step(self._queue.popleft())


class IrregularTime(gym.Wrapper, gym.utils.RecordConstructorArgs, _Seeded):
    """Irregular time (``irregular_time``): each step repeats the action ``k ~ U{1, ..., K}`` times.

    One ``k`` is drawn per step. The rewards of the inner steps are summed; if an inner step terminates or
    truncates, the skip stops there and that step's flags are returned. The returned ``info`` is the last inner
    step's, except: ``info["elapsed_time"]`` is the true elapsed seconds, the sum over the executed inner steps of
    their ``info["elapsed_time"]`` when present, else of ``env.unwrapped.dt`` (so ``k * dt`` for a full skip);
    every numeric ``info["reward_*"]`` term is summed over the inner steps, so named reward terms still add up to
    the reward; ``info["frame_skip"]`` is the number of inner steps executed.

    A ``TimeLimit`` inside this wrapper (``apply_perturbations(gym.make(id), ...)``) counts inner steps.

    Args:
        env: any env with ``info["elapsed_time"]`` or ``env.unwrapped.dt``.
        max_skip: ``K >= 1``; 1 gives the inner env's observations and rewards unchanged.
        seed: optional seed, combined with the reset seed (see the module docstring).
    """

    _stream = "irregular_time"

    def __init__(self, env: gym.Env, max_skip: int, seed: int | None = None):
        self.max_skip = _check_int("max_skip", max_skip, 1)
        gym.utils.RecordConstructorArgs.__init__(self, max_skip=max_skip, seed=seed)
        gym.Wrapper.__init__(self, env)
        self._init_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._reseed(seed)
        return self.env.reset(seed=seed, options=options)

    def _inner_dt(self, info: dict[str, Any]) -> float:
        if "elapsed_time" in info:
            return float(info["elapsed_time"])
        dt = getattr(self.env.unwrapped, "dt", None)
        if dt is None:
            raise ValueError(
                "IrregularTime needs the inner step duration: the env must put 'elapsed_time' in info or have "
                f"an unwrapped 'dt' attribute; {self.env.unwrapped!r} has neither."
            )
        return float(dt)

    def step(self, action: Any):
        skip = int(self._rng.integers(1, self.max_skip + 1))  # k in [1, K]
        total_reward = 0.0
        elapsed = 0.0
        reward_terms: dict[str, float] = {}
        for executed in range(1, skip + 1):
            observation, reward, terminated, truncated, info = self.env.step(action)
            total_reward += float(reward)
            elapsed += self._inner_dt(info)
            for key, value in info.items():
                if key.startswith("reward_") and isinstance(value, (int, float, np.integer, np.floating)):
                    reward_terms[key] = reward_terms.get(key, 0.0) + float(value)
            if terminated or truncated:
                break
        info = {**info, **reward_terms, "elapsed_time": elapsed, "frame_skip": executed}
        if skip == 1:
            total_reward = reward  # keep the inner reward object (type and value) unchanged
        return observation, total_reward, terminated, truncated, info


# --------------------------------------------------------------------------------------------------------------
# Registry and spec parsing
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PerturbationInfo:
    """One registry entry: how a named perturbation is built from its level."""

    wrapper: type[gym.Wrapper]
    level_arg: str  # the wrapper's keyword argument that receives the level
    level_type: type  # int or float
    neutral: float  # the level at which the wrapper is the identity
    low: float  # smallest valid level
    high: float  # largest valid level
    seeded: bool  # whether the wrapper draws random numbers (takes a seed)
    meaning: str  # one line for docs and error messages


PERTURBATIONS: dict[str, PerturbationInfo] = {
    "obs_noise": PerturbationInfo(
        ObservationNoise, "sigma", float, 0.0, 0.0, math.inf, True,
        "additive Gaussian noise, sigma in observation units (vectors)",
    ),
    "pixel_noise": PerturbationInfo(
        PixelNoise, "sigma", float, 0.0, 0.0, math.inf, True,
        "Gaussian pixel noise, sigma on images scaled to [0, 1] (variance sigma**2), clipped",
    ),
    "dropout": PerturbationInfo(
        SensorDropout, "p", float, 0.0, 0.0, 1.0, True, "each element (image: pixel) reads 0 with probability p",
    ),
    "frozen": PerturbationInfo(
        FrozenSensor, "p", float, 0.0, 0.0, 1.0, True, "with probability p per step the last observation repeats",
    ),
    "occlusion": PerturbationInfo(
        Occlusion, "size", float, 0.0, 0.0, 1.0, True,
        "random black patch, side = size * image side, placed once per episode",
    ),
    "brightness": PerturbationInfo(
        BrightnessShift, "shift", float, 0.0, -1.0, 1.0, False, "additive brightness shift on images in [0, 1]",
    ),
    "blur": PerturbationInfo(GaussianBlur, "sigma", float, 0.0, 0.0, math.inf, False, "Gaussian blur, sigma in pixels"),
    "action_noise": PerturbationInfo(
        ActionNoise, "sigma", float, 0.0, 0.0, math.inf, True, "additive Gaussian action noise, clipped to bounds",
    ),
    "action_delay": PerturbationInfo(
        ActionDelay, "delay", int, 0, 0, math.inf, False, "the env executes the action from k steps earlier",
    ),
    "irregular_time": PerturbationInfo(
        IrregularTime, "max_skip", int, 1, 1, math.inf, True,
        "each step repeats the action k ~ U{1..K} times; info['elapsed_time'] is the true time",
    ),
}

_FORMAT_HELP = (
    "a perturbation spec is 'name:level' (e.g. 'pixel_noise:0.1', 'action_delay:2'); "
    f"valid names: {', '.join(PERTURBATIONS)}"
)


@dataclasses.dataclass(frozen=True)
class PerturbationSpec:
    """A named perturbation at one level, e.g. ``PerturbationSpec("pixel_noise", 0.1)``; ``str()`` gives the spec."""

    name: str
    level: float | int

    def __post_init__(self) -> None:
        info = _lookup(self.name)
        level = self.level
        if info.level_type is int:
            if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
                raise ValueError(f"{self.name} takes an integer level, got {level!r}; {_FORMAT_HELP}")
            level = int(level)
        else:
            if isinstance(level, bool) or not isinstance(level, (int, float, np.integer, np.floating)):
                raise ValueError(f"{self.name} takes a real level, got {level!r}; {_FORMAT_HELP}")
            level = float(level)
        if not (math.isfinite(level) and info.low <= level <= info.high):
            raise ValueError(f"{self.name} level must be in [{info.low}, {info.high}], got {level}")
        object.__setattr__(self, "level", level)

    @property
    def is_neutral(self) -> bool:
        """Whether this level leaves the env unperturbed."""
        return self.level == PERTURBATIONS[self.name].neutral

    def __str__(self) -> str:
        return f"{self.name}:{self.level}"


def _lookup(name: str) -> PerturbationInfo:
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; {_FORMAT_HELP}")
    return PERTURBATIONS[name]


def _parse_level(name: str, text: str) -> float | int:
    info = _lookup(name)
    text = text.strip()
    try:
        return int(text) if info.level_type is int else float(text)
    except ValueError:
        kind = "an integer" if info.level_type is int else "a number"
        raise ValueError(f"{name} level must be {kind}, got {text!r}; {_FORMAT_HELP}") from None


def _split(spec: str) -> tuple[str, str]:
    if not isinstance(spec, str):
        raise TypeError(f"a perturbation spec must be a str, got {spec!r}; {_FORMAT_HELP}")
    name, sep, levels = spec.partition(":")
    name = name.strip()
    if not sep or not levels.strip():
        raise ValueError(f"malformed perturbation spec {spec!r}; {_FORMAT_HELP}")
    _lookup(name)
    return name, levels


def parse_spec(spec: str | PerturbationSpec) -> PerturbationSpec:
    """Parse ``"name:level"`` (e.g. ``"pixel_noise:0.1"``); a ``PerturbationSpec`` is returned as is.

    Raises:
        ValueError: unknown name (the message lists the valid ones), missing, malformed or out-of-range level.
    """
    if isinstance(spec, PerturbationSpec):
        return spec
    name, level = _split(spec)
    if "," in level:
        raise ValueError(f"{spec!r} lists several levels; use parse_sweep for sweeps. {_FORMAT_HELP}")
    return PerturbationSpec(name, _parse_level(name, level))


def parse_sweep(spec: str) -> tuple[str, tuple[float | int, ...]]:
    """Parse ``"name:l1,l2,..."`` (e.g. ``"pixel_noise:0,0.1,0.2"``) into ``(name, levels)``.

    A single level is a sweep of one. Raises ``ValueError`` like :func:`parse_spec`, and for empty or repeated
    levels.
    """
    name, levels_text = _split(spec)
    levels = tuple(PerturbationSpec(name, _parse_level(name, part)).level for part in levels_text.split(","))
    if len(set(levels)) != len(levels):
        raise ValueError(f"repeated level in sweep {spec!r}")
    return name, levels


def make_perturbation(env: gym.Env, spec: str | PerturbationSpec, seed: int | None = None, **kwargs: Any) -> gym.Env:
    """Wrap ``env`` in one perturbation. ``kwargs`` go to the wrapper (e.g. ``resample="step"`` for occlusion).

    ``seed`` is the wrapper's own seed (combined with reset seeds); deterministic wrappers ignore it.
    """
    spec = parse_spec(spec)
    info = PERTURBATIONS[spec.name]
    if info.seeded:
        kwargs["seed"] = seed
    return info.wrapper(env, **{info.level_arg: spec.level}, **kwargs)


def apply_perturbations(
    env: gym.Env, specs: Sequence[str | PerturbationSpec], seed: int | None = None
) -> gym.Env:
    """Wrap ``env`` in the perturbations ``specs`` in list order: the first is applied first (innermost).

    Example: ``apply_perturbations(env, ["blur:1", "pixel_noise:0.1"], seed=0)`` blurs, then adds noise.
    Each name may appear once (two wrappers of one kind would draw the same numbers). Every seeded wrapper gets
    ``seed``; their streams differ by name.

    Raises:
        ValueError: a malformed spec, an unknown name, or a repeated name.
    """
    if isinstance(specs, str):
        raise TypeError(f"specs must be a list of specs, got the str {specs!r}; wrap it in a list")
    parsed = [parse_spec(spec) for spec in specs]
    names = [spec.name for spec in parsed]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"each perturbation may appear once, repeated: {repeated}")
    for spec in parsed:
        env = make_perturbation(env, spec, seed=seed)
    return env

