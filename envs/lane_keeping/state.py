"""``LaneKeepingState-v0``: the lane-keeping world observed through a low-dimensional state vector."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import EzPickle

from ncp_control.envs.lane_keeping.world import WORLD_MANUAL, LaneKeepingBase

__all__ = ["LaneKeepingStateEnv"]


class LaneKeepingStateEnv(LaneKeepingBase):
    """Lane keeping from a state vector: the same road and car as ``LaneKeeping-v0``, no rendering.

    **Description.** The twin of the camera env for fast experiments (thousands of steps per second): the policy
    sees the quantities a perfect lane detector would give. Nothing is rendered unless ``render()`` is called with
    ``render_mode="rgb_array"``.

    **Observation space.** ``Box(float32)`` of size ``5 + len(preview_distances)``:

    =====  ==========================================================================  =======  ==============
    index  quantity                                                                    unit     bounds
    =====  ==========================================================================  =======  ==============
    0      lateral offset of the rear-axle midpoint from the lane centre (left +)       m        +-b (1)
    1      heading error: car yaw minus road heading, wrapped                           rad      [-pi, pi]
    2      speed (the nominal one: a ``speed`` dynamics perturbation does not show)     m/s      [0, speed]
    3      last steering command (the previous action after clipping; 0 after reset)    1        [-1, 1]
    4      current front-wheel angle as normalised curvature (lags the commands)        1        [-1.5, 1.5]
    5...   road curvature ``preview_distances[i]`` metres ahead along the road          1/m      +-max_curvature
    =====  ==========================================================================  =======  ==============

    Index 4 is the state of the steering actuator (after rate limit and lag), so the observation is Markov.
    (1) ``b = lateral_offset_bound``: the termination margin plus one step of travel (``speed / control_frequency``),
    the largest offset an observation can show (``lane_width / 2 + 0.5 = 2.25`` m with the defaults; 2.5 m with
    domain randomisation, whose lanes are up to 4 m wide). Values are raw physical units: normalise them
    (e.g. SB3's ``VecNormalize``) before feeding a network.

    **Arguments** (besides the shared ones below): ``preview_distances=(0.0, 5.0, 10.0, 20.0, 30.0)``, metres
    ahead of the car's projection on the centre line (each finite and >= 0).
    """

    def __init__(self, *, preview_distances: Sequence[float] = (0.0, 5.0, 10.0, 20.0, 30.0), **kwargs: Any) -> None:
        try:
            preview = tuple(float(x) for x in preview_distances)
        except (TypeError, ValueError) as err:
            raise TypeError(f"preview_distances must be a sequence of numbers, got {preview_distances!r}") from err
        if not all(math.isfinite(x) and x >= 0 for x in preview):
            raise ValueError(f"preview_distances must be finite and >= 0, got {preview_distances!r}")
        EzPickle.__init__(self, preview_distances=preview, **kwargs)
        super().__init__(**kwargs)
        self._preview = np.asarray(preview, dtype=np.float64)
        n = 5 + len(preview)
        high = np.empty(n, dtype=np.float32)
        high[0] = self.lateral_offset_bound
        high[1] = math.pi
        high[2] = self._speed
        high[3] = 1.0
        high[4] = 1.5  # the servo follows the (bounded) set-point without overshoot; margin for integration error
        high[5:] = self._max_curvature
        low = -high
        low[2] = 0.0
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self._obs = np.empty(n, dtype=np.float32)

    def _observation(self) -> np.ndarray:
        obs = self._obs
        obs[0] = self.lateral_offset()
        obs[1] = self.heading_error()
        obs[2] = self._speed  # the nominal speed (a ``speed`` perturbation is a mismatch the policy is not told)
        obs[3] = self._last_command
        obs[4] = self.steering()
        obs[5:] = self.road.curvature_at(self._s + self._preview)
        return obs.copy()


LaneKeepingStateEnv.__doc__ = (LaneKeepingStateEnv.__doc__ or "") + WORLD_MANUAL  # None under python -OO
