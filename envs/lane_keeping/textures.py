"""Procedural greyscale textures for the lane-keeping world's asphalt and ground (numpy only).

Each texture is a seamless (tileable) ``(size, size, 3)`` uint8 image, drawn from its own fixed seed, so every
process builds the same pixels. The textures are near white (values 150-255): MuJoCo multiplies a texture by its
material's ``rgba``, so the randomised colour of the asphalt or ground stays in charge and the texture only adds
structure. Texture axis 1 (``u``) runs across the road, axis 0 (``v``) along it (the road mesh's texture
coordinates are its lateral and arc-length coordinates, see ``ncp_control.envs.lane_keeping.world``); the ground is mapped in world
x/y.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["ASPHALT_TEXTURES", "GROUND_TEXTURES", "TEXTURE_SIZE", "make_texture"]

TEXTURE_SIZE = 64  # texels per side; small textures sample faster in software rendering and 64x128 frames show no more


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Periodic value noise: a ``cells`` x ``cells`` grid of uniform [0, 1) values, bilinearly interpolated to
    ``(size, size)`` with wrap-around so the tile is seamless."""
    grid = rng.random((cells, cells))
    t = np.arange(size) * cells / size
    i0 = np.floor(t).astype(int)
    f = t - i0
    i1 = (i0 + 1) % cells
    rows = grid[i0] * (1 - f)[:, None] + grid[i1] * f[:, None]  # interpolate along axis 0
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i1] * f[None, :]  # then along axis 1


def _grain(rng: np.random.Generator, size: int) -> np.ndarray:
    """Fine asphalt grain: independent texel noise."""
    return 1.0 - 0.3 * rng.random((size, size))


def _patches(rng: np.random.Generator, size: int) -> np.ndarray:
    """Repaired asphalt: large smooth darker and lighter patches over fine grain."""
    return 0.75 + 0.2 * _smooth_noise(rng, size, 4) + 0.05 * rng.random((size, size))


def _speckle(rng: np.random.Generator, size: int) -> np.ndarray:
    """Chip seal: a dark base with sparse bright stones."""
    base = 0.7 + 0.1 * rng.random((size, size))
    return np.where(rng.random((size, size)) < 0.06, 1.0, base)


def _streaks(rng: np.random.Generator, size: int) -> np.ndarray:
    """Worn lanes: streaks along the road (constant along axis 0) at random lateral positions, a distractor that
    runs parallel to the lane lines."""
    across = 0.7 + 0.3 * _smooth_noise(rng, size, 8)[0]  # one row of periodic noise, across the road
    return across[None, :] * (0.95 + 0.05 * rng.random((size, size)))


def _meadow(rng: np.random.Generator, size: int) -> np.ndarray:
    """Grass: fine noise over gentle blotches."""
    return 0.7 + 0.15 * _smooth_noise(rng, size, 8) + 0.15 * rng.random((size, size))


def _fields(rng: np.random.Generator, size: int) -> np.ndarray:
    """Farmland: blocks of different brightness (nearest-neighbour upsampled 4x4 cells) with grain."""
    cells = rng.uniform(0.6, 1.0, (4, 4))
    blocks = cells.repeat(size // 4, axis=0).repeat(size // 4, axis=1)
    return blocks * (0.9 + 0.1 * rng.random((size, size)))


def _furrows(rng: np.random.Generator, size: int) -> np.ndarray:
    """Ploughed soil: parallel rows (8 per tile) with noise."""
    rows = 0.8 + 0.2 * np.cos(2 * np.pi * 8 * np.arange(size) / size)
    return rows[:, None] * (0.85 + 0.15 * rng.random((size, size)))


_Generator = Callable[[np.random.Generator, int], np.ndarray]
ASPHALT_TEXTURES: dict[str, _Generator] = {
    "grain": _grain,
    "patches": _patches,
    "speckle": _speckle,
    "streaks": _streaks,
}
GROUND_TEXTURES: dict[str, _Generator] = {"meadow": _meadow, "fields": _fields, "furrows": _furrows}
_SEEDS = {name: k for k, name in enumerate([*ASPHALT_TEXTURES, *GROUND_TEXTURES])}


def make_texture(name: str, size: int = TEXTURE_SIZE) -> np.ndarray:
    """The texture called ``name`` (a key of :data:`ASPHALT_TEXTURES` or :data:`GROUND_TEXTURES`).

    Returns:
        ``(size, size, 3)`` uint8 greyscale RGB, values in [150, 255]; the same pixels on every call.
    """
    generator = ASPHALT_TEXTURES.get(name) or GROUND_TEXTURES.get(name)
    if generator is None:
        raise ValueError(f"unknown texture {name!r}; choose one of {sorted(_SEEDS)}")
    if not (isinstance(size, int) and size >= 8 and size % 4 == 0):
        raise ValueError(f"size must be an integer >= 8 divisible by 4, got {size!r}")
    value = generator(np.random.default_rng(1000 + _SEEDS[name]), size)  # (size, size) in about [0.6, 1]
    grey = np.clip(np.round(255.0 * value), 150, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)
