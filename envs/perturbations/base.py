"""Building blocks of the perturbation wrappers: space helpers, [0, 1] scaling, seeding.

:class:`Seeded` is the mixin every random wrapper inherits: one ``numpy.random.Generator`` per wrapper, reseeded
from ``(seed, reset seed)`` (the package docstring, :mod:`ncp_control.envs.perturbations`, says how).
These names serve the wrapper modules of this package; they are not re-exported by it.

May import: numpy, gymnasium, the standard library and :mod:`ncp_control.checks` (the argument checks the
wrappers use); nothing else of this package.
"""

from __future__ import annotations

import zlib

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box

from ncp_control import checks

__all__ = [
    "SEED_TAG",
    "box_observation_space",
    "finite_bounds",
    "is_channel_last_image",
    "require_image",
    "to_space_dtype",
    "UnitScale",
    "Seeded",
]

# Tag in every perturbation seed sequence's spawn key: keeps our streams apart from seed sequences built from the
# same integer seed elsewhere (Gymnasium seeds the env with SeedSequence(seed), which has no spawn key).
SEED_TAG = 0x4E4350  # "NCP"


# --------------------------------------------------------------------------------------------------------------
# Space helpers
# --------------------------------------------------------------------------------------------------------------


def box_observation_space(env: gym.Env, who: str) -> Box:
    """``env``'s observation space, which must be a ``Box`` (``who`` names the wrapper in the error)."""
    space = env.observation_space
    if not isinstance(space, Box):
        raise TypeError(f"{who} needs a Box observation space, got {space!r}")
    return space


def finite_bounds(space: Box, who: str) -> tuple[np.ndarray, np.ndarray]:
    """Bounds as float64 arrays of the observation shape; they must be finite and ``low < high``."""
    low = np.broadcast_to(space.low, space.shape).astype(np.float64)
    high = np.broadcast_to(space.high, space.shape).astype(np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
        raise ValueError(
            f"{who} scales observations to [0, 1] by the space bounds, which must be finite with low < high "
            f"(an image Box, e.g. uint8 in [0, 255]); got {space!r}. Use obs_noise for unbounded vectors."
        )
    return low, high


def is_channel_last_image(space: Box) -> bool:
    """An (H, W, C) uint8 Box, the convention of SB3's ``is_image_space`` and of our camera env."""
    return len(space.shape) == 3 and space.dtype == np.uint8


def require_image(space: Box, who: str) -> None:
    """Raise ``ValueError`` unless ``space`` has an image shape, (H, W) or (H, W, C)."""
    if len(space.shape) not in (2, 3):
        raise ValueError(f"{who} needs an image observation of shape (H, W) or (H, W, C), got {space.shape}")


def to_space_dtype(values: np.ndarray, space: Box) -> np.ndarray:
    """Cast float values to the space's dtype; integer dtypes are rounded to nearest (ties to even) first."""
    if np.issubdtype(space.dtype, np.integer):
        values = np.rint(values)
    return values.astype(space.dtype, copy=False)


class UnitScale:
    """Maps observations of a bounded Box to [0, 1] and back (``x01 = (x - low) / (high - low)``).

    Works in ``dtype`` = float32 for uint8/float32 spaces (ample for 8-bit images, twice as fast as float64) and
    float64 for wider dtypes; uniform bounds are kept as scalars so the maps broadcast cheaply.
    """

    def __init__(self, space: Box, who: str):
        self._space = space
        low, high = finite_bounds(space, who)
        self.dtype = np.result_type(space.dtype, np.float32)
        if np.all(low == low.flat[0]) and np.all(high == high.flat[0]):
            low, high = low.flat[0], high.flat[0]
        self._low = np.asarray(low, dtype=self.dtype)
        self._range = np.asarray(high - low, dtype=self.dtype)

    def to_unit(self, observation: np.ndarray) -> np.ndarray:
        """``observation`` scaled to [0, 1] by the bounds, a new array of ``dtype``."""
        unit = np.subtract(observation, self._low, dtype=self.dtype)
        unit /= self._range
        return unit

    def from_unit(self, unit: np.ndarray) -> np.ndarray:
        """Clip to [0, 1], map back to the bounds, cast (rounding for integer dtypes). Overwrites ``unit``."""
        np.clip(unit, 0.0, 1.0, out=unit)
        unit *= self._range
        unit += self._low
        return to_space_dtype(unit, self._space)


# --------------------------------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------------------------------


class Seeded:
    """Mixin: one RNG per wrapper, reseeded from ``(seed, reset seed)`` on ``reset(seed=...)``.

    Subclasses set ``_stream`` (their registry name) and call ``_init_rng(seed)`` in ``__init__``.
    """

    _stream: str

    def _init_rng(self, seed: int | None) -> None:
        self._seed = checks.seed("seed", seed, optional=True)
        self._rng = self.rng_for(None)

    @property
    def rng(self) -> np.random.Generator:
        """The generator the wrapper draws its perturbations from now (replaced on ``reset(seed=...)``)."""
        return self._rng

    def rng_for(self, reset_seed: int | None) -> np.random.Generator:
        """A fresh generator as this wrapper gets it on ``reset(seed=reset_seed)`` (None: the one it starts with): a
        function of the wrapper's own seed, ``reset_seed`` and its stream name, so that stacked wrappers never share
        draws; OS entropy when neither seed is set."""
        if self._seed is None and reset_seed is None:
            sequence = np.random.SeedSequence()  # fresh OS entropy until a seed is given
        else:
            # Flags keep (seed=s, no reset seed) and (no seed, reset seed=s) apart.
            entropy = [int(self._seed is not None), self._seed or 0, int(reset_seed is not None), reset_seed or 0]
            salt = zlib.crc32(self._stream.encode("ascii"))
            sequence = np.random.SeedSequence(entropy, spawn_key=(SEED_TAG, salt))
        return np.random.Generator(np.random.PCG64(sequence))

    def _reseed(self, reset_seed: int | None) -> None:
        if reset_seed is not None:
            self._rng = self.rng_for(checks.seed("reset seed", reset_seed))
