"""Elapsed time as part of the observation, for environments whose step duration varies.

Liquid cells integrate an ODE over the time that passed since the previous observation. When an environment's
step duration is constant, the policy takes it as a number (``dt`` in :class:`~ncp_control.policies.recurrent_ppo.
NCPActorCriticPolicy`). When it varies (frame skips, the ``irregular_time`` perturbation), the environment reports
it in ``info["elapsed_time"]`` and :class:`ElapsedTimeObservation` turns the observation into a dictionary::

    {"observation": <the original observation>, "elapsed_time": float32 array of shape (1,), seconds}

The policy recognises this dictionary and feeds ``elapsed_time`` to the cell step by step. Normalise only the
``"observation"`` key (``VecNormalize(venv, norm_obs_keys=["observation"])``): time is not a feature to
standardise, and a constant column would be normalised to zero.

This module imports no torch.
"""

from __future__ import annotations

from typing import TypeGuard

import gymnasium as gym
import numpy as np
from gymnasium import spaces

OBSERVATION_KEY = "observation"
ELAPSED_TIME_KEY = "elapsed_time"


class ElapsedTimeObservation(gym.Wrapper):
    """Adds the seconds since the previous observation to each observation.

    Args:
        env: any environment with a ``Box`` observation space.
        dt: the nominal step duration in seconds, used after ``reset`` and whenever ``info`` has no
            ``"elapsed_time"``. ``None`` reads ``env.unwrapped.dt``.

    Observation space: ``Dict({"observation": env.observation_space, "elapsed_time": Box(0, inf, (1,), float32)})``.

    Raises:
        TypeError: the observation space is not a ``Box``.
        ValueError: no positive ``dt`` is given and the environment has none.
    """

    def __init__(self, env: gym.Env, dt: float | None = None):
        super().__init__(env)
        if not isinstance(env.observation_space, spaces.Box):
            raise TypeError(
                f"ElapsedTimeObservation needs a Box observation space, got {type(env.observation_space).__name__}"
            )
        if dt is None:
            dt = getattr(env.unwrapped, "dt", None)
        if dt is None or not np.isfinite(dt) or dt <= 0:
            raise ValueError(f"a positive step duration dt (seconds) is needed: pass dt=..., got {dt!r}")
        self._dt = float(dt)
        self.observation_space = spaces.Dict(
            {
                OBSERVATION_KEY: env.observation_space,
                ELAPSED_TIME_KEY: spaces.Box(0.0, np.inf, shape=(1,), dtype=np.float32),
            }
        )

    def _wrap(self, observation, elapsed: float) -> dict:
        return {OBSERVATION_KEY: observation, ELAPSED_TIME_KEY: np.array([elapsed], dtype=np.float32)}

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        return self._wrap(observation, self._dt), info

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        elapsed = float(info.get(ELAPSED_TIME_KEY, self._dt))
        return self._wrap(observation, elapsed), reward, terminated, truncated, info


def is_timed_space(space: spaces.Space) -> TypeGuard[spaces.Dict]:
    """True for the dictionary space :class:`ElapsedTimeObservation` produces (exactly those two keys)."""
    return isinstance(space, spaces.Dict) and set(space.spaces) == {OBSERVATION_KEY, ELAPSED_TIME_KEY}
