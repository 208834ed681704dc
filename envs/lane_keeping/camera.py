"""``LaneKeeping-v0``: keep a car in its lane from a forward (dash) camera image."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import EzPickle

from ncp_control.envs.lane_keeping.scene import CAR_GROUP
from ncp_control.envs.lane_keeping.world import WORLD_MANUAL, LaneKeepingBase, check_size

__all__ = ["LaneKeepingEnv"]


class LaneKeepingEnv(LaneKeepingBase):
    """Lane keeping from a dash camera (MuJoCo, headless EGL rendering).

    **Description.** A car drives at constant speed along a procedurally generated two-lane road; the policy steers
    it from the image of a camera mounted on the roof (1.45 m high, pitched 12 degrees down, 45 degree vertical
    field of view) and must stay in the right lane to the end of the road. The car's own body is not drawn in the
    observation. Rendering is headless EGL (Mesa software rendering on machines without a GPU) without shadows,
    skybox or multisampling: about 0.4-0.6 ms per 64x128 step on one core (``scripts/bench_envs.py``). The env
    sets ``MUJOCO_GL=egl`` and ``LP_NUM_THREADS=0`` (render in the calling thread) unless they are already set.

    **Observation space.** ``Box(0, 255, (image_height, image_width, 3), uint8)``: RGB, row 0 at the top, channels
    last (SB3's ``CnnPolicy`` transposes it itself).

    =========  =======================================  ===============
    axis       meaning                                  default size
    =========  =======================================  ===============
    0          image row, top to bottom                 64
    1          image column, left to right              128
    2          R, G, B                                  3
    =========  =======================================  ===============

    **Arguments** (besides the shared ones below): ``image_height=64``, ``image_width=128`` (pixels, 8-2048).
    At 64x128 the lane lines are visible up to the horizon (``docs/data/envs/lane_keeping_dashcam.png``); the NCP paper
    used 78x200.

    Example::

        import gymnasium as gym, envs
        env = gym.make("LaneKeeping-v0", domain_randomization=True)
        obs, info = env.reset(seed=0)       # obs: (64, 128, 3) uint8
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    """

    def __init__(self, *, image_height: int = 64, image_width: int = 128, **kwargs: Any) -> None:
        image_height = check_size("image_height", image_height)
        image_width = check_size("image_width", image_width)
        EzPickle.__init__(self, image_height=image_height, image_width=image_width, **kwargs)
        super().__init__(observation_camera=(image_height, image_width), **kwargs)
        self._image_size = (image_height, image_width)
        self.observation_space = gym.spaces.Box(0, 255, shape=(image_height, image_width, 3), dtype=np.uint8)

    def _observation(self) -> np.ndarray:
        return self._render_camera_image(self._dashcam, *self._image_size, (CAR_GROUP,))


LaneKeepingEnv.__doc__ = (LaneKeepingEnv.__doc__ or "") + WORLD_MANUAL  # None under python -OO
