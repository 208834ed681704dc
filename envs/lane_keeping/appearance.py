"""The look of the lane-keeping world and its domain randomisation.

:class:`Appearance` holds what domain randomisation changes (lane and line width, road curvature scale, colours,
light, dash-camera pose, textures); its defaults are the fixed look. :data:`DR_ELEMENTS` names the elements the
``domain_randomization`` argument can randomise, and :func:`episode_look` draws one episode's look from the episode's
look stream, apart from the road's and the start pose's random numbers.

May import: numpy, the standard library and :mod:`~ncp_control.envs.lane_keeping.textures`; never mujoco,
gymnasium or torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ncp_control.envs.lane_keeping.textures import ASPHALT_TEXTURES, GROUND_TEXTURES

__all__ = ["DR_ELEMENTS", "Appearance", "check_dr_elements", "episode_look"]

DR_ELEMENTS = ("geometry", "colours", "lighting", "camera", "textures", "objects")


@dataclass(frozen=True)
class Appearance:
    """What domain randomisation changes; the defaults are the fixed look without it.

    Colours are RGBA in [0, 1]; ``sun_dir`` is the light direction (world
    frame); ``camera_height``/``camera_pitch`` are offsets of the dash camera (m, rad, pitch down positive);
    ``asphalt_texture``/``ground_texture`` name a texture of ``ncp_control.envs.lane_keeping.textures`` (None: plain colour).
    :data:`ELEMENTS` says which fields each element of :data:`DR_ELEMENTS` randomises (``"objects"`` is not a
    field: roadside objects are an ``ncp_control.envs.lane_keeping.roadside.RoadsideLayout`` drawn after the road)."""

    LANE_WIDTH_RANGE = (3.0, 4.0)  # m, drawn under domain randomisation (a class constant, not a field)

    lane_width: float = 3.5
    curvature_scale: float = 1.0
    line_width: float = 0.2
    asphalt: tuple[float, ...] = (0.30, 0.30, 0.32, 1.0)
    edge_line: tuple[float, ...] = (0.95, 0.95, 0.95, 1.0)
    centre_line: tuple[float, ...] = (0.95, 0.95, 0.95, 1.0)
    ground: tuple[float, ...] = (0.30, 0.45, 0.22, 1.0)
    sky: tuple[float, ...] = (0.60, 0.72, 0.88, 1.0)
    sun_diffuse: float = 0.6
    sun_dir: tuple[float, float, float] = (0.3, 0.2, -1.0)
    ambient: float = 0.35
    camera_height: float = 0.0
    camera_pitch: float = 0.0
    asphalt_texture: str | None = None
    ground_texture: str | None = None

    ELEMENTS = {  # fields randomised by each element of DR_ELEMENTS (a class constant, not a field)
        "geometry": ("lane_width", "curvature_scale", "line_width"),
        "colours": ("asphalt", "edge_line", "centre_line", "ground", "sky"),
        "lighting": ("sun_diffuse", "sun_dir", "ambient"),
        "camera": ("camera_height", "camera_pitch"),
        "textures": ("asphalt_texture", "ground_texture"),
        "objects": (),
    }

    @classmethod
    def random(cls, rng: np.random.Generator) -> Appearance:
        """Draw a random look (see the ``domain_randomization`` argument)."""
        grey = rng.uniform(0.15, 0.45)
        asphalt = tuple(np.clip(grey + rng.uniform(-0.03, 0.03, 3), 0, 1)) + (1.0,)
        white = rng.uniform(0.75, 1.0)
        edge = (white, white, white * rng.uniform(0.9, 1.0), 1.0)
        if rng.random() < 0.3:  # yellow centre line
            centre = (rng.uniform(0.8, 1.0), rng.uniform(0.65, 0.85), rng.uniform(0.0, 0.2), 1.0)
        else:
            centre = edge
        hue = rng.uniform(0, 1)  # 0 -> green, 1 -> dry brown
        ground = (0.25 + 0.25 * hue, 0.45 - 0.1 * hue, 0.18 + 0.05 * hue)
        ground = tuple(np.clip(np.asarray(ground) * rng.uniform(0.7, 1.2), 0, 1)) + (1.0,)
        azimuth = rng.uniform(0, 2 * math.pi)
        elevation = rng.uniform(0.3, 1.3)  # rad above the horizon
        sun_dir = (
            -math.cos(elevation) * math.cos(azimuth),
            -math.cos(elevation) * math.sin(azimuth),
            -math.sin(elevation),
        )
        return cls(
            lane_width=rng.uniform(*cls.LANE_WIDTH_RANGE),
            curvature_scale=rng.uniform(0.6, 1.0),
            line_width=rng.uniform(0.12, 0.25),
            asphalt=asphalt,
            edge_line=edge,
            centre_line=centre,
            ground=ground,
            sky=tuple(np.clip(np.array([0.60, 0.72, 0.88]) * rng.uniform(0.8, 1.1, 3) + rng.uniform(-0.15, 0.1), 0, 1))
            + (1.0,),
            sun_diffuse=rng.uniform(0.3, 0.8),
            sun_dir=sun_dir,
            ambient=rng.uniform(0.2, 0.5),
            camera_height=rng.uniform(-0.1, 0.1),
            camera_pitch=math.radians(rng.uniform(-2.0, 2.0)),
            # drawn last so that adding textures did not change the earlier draws of a seed
            asphalt_texture=(None, *ASPHALT_TEXTURES)[rng.integers(len(ASPHALT_TEXTURES) + 1)],
            ground_texture=(None, *GROUND_TEXTURES)[rng.integers(len(GROUND_TEXTURES) + 1)],
        )

    def restricted(self, elements: frozenset[str], default: Appearance) -> Appearance:
        """This look with the fields of the elements not in ``elements`` taken from ``default``."""
        fixed = {
            name: getattr(default, name)
            for element, names in self.ELEMENTS.items()
            if element not in elements
            for name in names
        }
        return dataclasses.replace(self, **fixed)


def check_dr_elements(value: Any) -> frozenset[str]:
    """``domain_randomization`` as the set of randomised elements (True: all of DR_ELEMENTS, False: none)."""
    if isinstance(value, bool):
        return frozenset(DR_ELEMENTS) if value else frozenset()
    if not isinstance(value, (tuple, list, set, frozenset)) or not all(isinstance(v, str) for v in value):
        raise TypeError(
            f"domain_randomization must be a bool or a collection of names from {DR_ELEMENTS}, got {value!r}"
        )
    unknown = sorted(set(value) - set(DR_ELEMENTS))
    if unknown:
        raise ValueError(f"unknown domain_randomization element(s) {unknown}; choose from {DR_ELEMENTS}")
    return frozenset(value)


def episode_look(look_seed: int, elements: frozenset[str], default: Appearance) -> tuple[Appearance, int | None]:
    """One episode's look and the seed of its roadside objects.

    Args:
        look_seed: the episode's look stream seed (drawn by the env from the episode seed).
        elements: the randomised elements (:func:`check_dr_elements`); empty: ``default``, no random draws.
        default: the fixed look, whose fields the elements not in ``elements`` keep.

    Returns:
        ``(look, roadside_seed)``; ``roadside_seed`` is None unless ``"objects"`` is randomised.
    """
    if not elements:
        return default, None
    look_rng = np.random.default_rng(look_seed)
    look = Appearance.random(look_rng).restricted(elements, default)
    roadside_seed = None
    if "objects" in elements:
        roadside_seed = int(look_rng.integers(0, 2**63 - 1))  # after the appearance's draws
    return look, roadside_seed
