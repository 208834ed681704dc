"""A tiny synthetic camera lane-keeping env for the imitation tests (numpy rendering, no MuJoCo).

It has the ``LaneKeeping-v0`` interface the imitation code relies on: uint8 (H, W, 3) frames, one action in
[-1, 1] (normalised curvature), ``info`` with ``lateral_offset_m``, ``heading_error_rad``, ``road_curvature``,
``distance_m``, ``is_success``, ``elapsed_time``, and a road determined by the reset seed. The car follows
kinematic unicycle error dynamics around a road of piecewise-constant curvature; the frame is a bird's-eye strip
ahead of the car with the two lane edges drawn white on grey, so offset, heading and curvature are all visible.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import register, registry

ENV_ID = "TinyLane-v0"


class TinyLaneEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, height: int = 16, width: int = 32, road_length_m: float = 40.0, dt: float = 0.1):
        self.observation_space = spaces.Box(0, 255, (height, width, 3), np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._h, self._w = height, width
        self._length = road_length_m
        self.dt = dt
        self._speed = 5.0  # m/s
        self._max_curvature = 0.15  # 1/m at action 1
        self._half_lane = 1.75  # m
        self._view_m = 8.0  # metres ahead shown in the frame
        self._half_view_m = 4.0  # metres left/right of the car shown

    # --- road
    def _curvature_at(self, s: float) -> float:
        i = min(int(s // self._segment), len(self._curvatures) - 1)
        return float(self._curvatures[i])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        rng = self.np_random
        self._segment = 8.0
        n = int(np.ceil(self._length / self._segment)) + 2
        self._curvatures = rng.uniform(-0.08, 0.08, n) * (rng.random(n) < 0.7)
        self._curvatures[0] = 0.0
        self._s = 0.0
        self._y = float(rng.uniform(-0.3, 0.3))
        self._psi = float(rng.uniform(-0.05, 0.05))
        return self._render(), self._info(False, 0.0)

    def _info(self, success: bool, elapsed: float) -> dict:
        return {
            "lateral_offset_m": self._y,
            "heading_error_rad": self._psi,
            "road_curvature": self._curvature_at(self._s),
            "distance_m": self._s,
            "is_success": success,
            "elapsed_time": elapsed,
        }

    def _render(self) -> np.ndarray:
        img = np.full((self._h, self._w, 3), 90, np.uint8)
        cols = np.arange(self._w)
        for r in range(self._h):
            d = (self._h - r) / self._h * self._view_m  # metres ahead of this row
            kappa = self._curvature_at(self._s + d)
            centre = -self._y - self._psi * d + 0.5 * kappa * d * d  # road centre, car frame (m, left positive)
            for edge in (centre - self._half_lane, centre + self._half_lane):
                c = (edge + self._half_view_m) / (2 * self._half_view_m) * (self._w - 1)
                img[r, np.abs(cols - c) < 0.75] = 255
        return img

    def step(self, action):
        a = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        kappa_cmd = a * self._max_curvature
        kappa_road = self._curvature_at(self._s)
        v, dt = self._speed, self.dt
        self._psi += v * (kappa_cmd - kappa_road) * dt
        self._y += v * np.sin(self._psi) * dt
        self._s += v * np.cos(self._psi) * dt
        departed = abs(self._y) > self._half_lane
        success = (not departed) and self._s >= self._length
        reward = v * dt - 0.1 * abs(self._y)
        return self._render(), reward, bool(departed or success), False, self._info(success, dt)

    def expert_action(self) -> np.ndarray:
        """Privileged state feedback: track the road curvature and steer the offset and heading to zero."""
        kappa = self._curvature_at(self._s + 1.0) - 0.12 * self._y - 0.6 * self._psi
        return np.array([np.clip(kappa / self._max_curvature, -1.0, 1.0)], np.float32)


def make_expert(env: gym.Env):
    """Expert factory in the form ``ncp_control.agents.imitation`` expects: env -> (() -> action)."""
    unwrapped = env.unwrapped
    return unwrapped.expert_action


if ENV_ID not in registry:
    register(id=ENV_ID, entry_point="tests.imitation_synthetic:TinyLaneEnv", max_episode_steps=200)
