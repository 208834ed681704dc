"""Gymnasium environments for ncp-control (no torch import here).

Importing this package registers the environment ids with Gymnasium:

- ``LaneKeeping-v0``: forward camera image -> steering (MuJoCo, headless EGL rendering).
- ``LaneKeepingState-v0``: the same road and car, low-dimensional observation, no rendering.
- ``PendulumNoVel-v1``: Pendulum-v1 with the angular velocity zeroed, the same env as rl-baselines3-zoo's id of
  that name (``rl_zoo3.import_envs``). When rl-zoo registered it first, its registration is kept; when rl-zoo is
  imported after this package, it replaces ours (Gymnasium warns "Overriding environment"): either way the env
  is the same (``tests/test_rl_zoo.py``), except that rl-zoo's does not reject non-finite actions.
- ``InvertedPendulumNoVel-v5``, ``HalfCheetahNoVel-v5``, ``HopperNoVel-v5``: velocity entries dropped (positions
  only); rl-zoo registers none of these.

Every id raises ``ValueError`` on a NaN/inf action.
"""

import os
from typing import Any

# Headless rendering on machines without a display: MuJoCo reads MUJOCO_GL at import time.
os.environ.setdefault("MUJOCO_GL", "egl")

from gymnasium.envs.registration import register, registry  # noqa: E402


def _register(id: str, **kwargs: Any) -> None:
    if id not in registry:  # idempotent under reloads
        register(id=id, **kwargs)


#: The ids this package registers.
REGISTERED_IDS = (
    "LaneKeeping-v0",
    "LaneKeepingState-v0",
    "PendulumNoVel-v1",
    "InvertedPendulumNoVel-v5",
    "HalfCheetahNoVel-v5",
    "HopperNoVel-v5",
)

_register(
    id="LaneKeeping-v0", entry_point="ncp_control.envs.lane_keeping.camera:LaneKeepingEnv", max_episode_steps=1000
)
_register(
    id="LaneKeepingState-v0",
    entry_point="ncp_control.envs.lane_keeping.state:LaneKeepingStateEnv",
    max_episode_steps=1000,
)
_register(
    id="PendulumNoVel-v1", entry_point="ncp_control.envs.masked_velocity:make_pendulum_novel", max_episode_steps=200
)
_register(
    id="InvertedPendulumNoVel-v5",
    entry_point="ncp_control.envs.masked_velocity:make_inverted_pendulum_novel",
    max_episode_steps=1000,
)
_register(
    id="HalfCheetahNoVel-v5",
    entry_point="ncp_control.envs.masked_velocity:make_half_cheetah_novel",
    max_episode_steps=1000,
)
_register(id="HopperNoVel-v5", entry_point="ncp_control.envs.masked_velocity:make_hopper_novel", max_episode_steps=1000)
