"""Action and time perturbations: action noise, action delay, irregular time steps.

These wrappers change what the env executes (the action, or how many inner steps one step takes), never what
the agent observes; the random ones draw from their own seeded stream (see the package docstring).

May import: numpy, gymnasium and :mod:`ncp_control.envs.perturbations.base`.
"""

from __future__ import annotations

import collections
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box, Discrete

from ncp_control import checks
from ncp_control.envs.perturbations.base import Seeded

__all__ = ["ActionNoise", "ActionDelay", "IrregularTime"]


class ActionNoise(gym.ActionWrapper, gym.utils.RecordConstructorArgs, Seeded):
    """Additive Gaussian action noise (``action_noise``): the env executes ``clip(a + sigma * n, low, high)``.

    ``n ~ N(0, I)`` is drawn for the full action shape every step. ``sigma`` is in action units (for actions in
    [-1, 1], sigma 0.1 is 5% of the range).

    Args:
        env: env with a ``Box`` action space.
        sigma: standard deviation, ``>= 0``; 0 passes actions through unchanged (not even clipped).
        seed: optional seed, combined with the reset seed (see :mod:`ncp_control.envs.perturbations`).
    """

    _stream = "action_noise"

    def __init__(self, env: gym.Env, sigma: float, seed: int | None = None):
        if not isinstance(env.action_space, Box):
            raise TypeError(f"ActionNoise needs a Box action space, got {env.action_space!r}")
        self.sigma = checks.non_negative_real("sigma", sigma)
        gym.utils.RecordConstructorArgs.__init__(self, sigma=sigma, seed=seed)
        gym.ActionWrapper.__init__(self, env)
        self._init_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self._reseed(seed)
        return self.env.reset(seed=seed, options=options)

    def action(self, action: np.ndarray) -> np.ndarray:
        """``action``: shape of the action space -> the noisy action the env executes."""
        space = self.action_space
        if not isinstance(space, Box):  # checked in __init__; narrows the type
            raise TypeError(f"ActionNoise needs a Box action space, got {space!r}")
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
        self.delay = checks.non_negative_int("delay", delay)
        gym.utils.RecordConstructorArgs.__init__(self, delay=delay, neutral_action=neutral_action)
        gym.Wrapper.__init__(self, env)
        if neutral_action is None:
            neutral_action = _neutral_action(env.action_space) if self.delay > 0 else None
        elif not env.action_space.contains(neutral_action):
            raise ValueError(f"neutral_action {neutral_action!r} is not in the action space {env.action_space!r}")
        self._neutral = neutral_action
        self._queue: collections.deque[Any] = collections.deque()

    @property
    def neutral_action(self) -> Any:
        """The action executed for the first ``delay`` steps of an episode (None when ``delay`` is 0 and none was
        given)."""
        return self._neutral

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self._queue = collections.deque([self._neutral] * self.delay)
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if self.delay == 0:
            return self.env.step(action)
        self._queue.append(np.array(action, copy=True))  # copy: callers may reuse their action buffer
        return self.env.step(self._queue.popleft())


class IrregularTime(gym.Wrapper, gym.utils.RecordConstructorArgs, Seeded):
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
        seed: optional seed, combined with the reset seed (see :mod:`ncp_control.envs.perturbations`).
    """

    _stream = "irregular_time"

    def __init__(self, env: gym.Env, max_skip: int, seed: int | None = None):
        self.max_skip = checks.positive_int("max_skip", max_skip)
        gym.utils.RecordConstructorArgs.__init__(self, max_skip=max_skip, seed=seed)
        gym.Wrapper.__init__(self, env)
        self._init_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
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

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        skip = int(self._rng.integers(1, self.max_skip + 1))  # k in [1, K]
        total_reward = 0.0
        elapsed = 0.0
        reward_terms: dict[str, float] = {}
        for executed in range(1, skip + 1):  # noqa: B007 (read after the loop: the frames actually run)
            observation, reward, terminated, truncated, info = self.env.step(action)
            total_reward += float(reward)
            elapsed += self._inner_dt(info)
            for key, value in info.items():
                if key.startswith("reward_") and isinstance(value, (int, float, np.integer, np.floating)):
                    reward_terms[key] = reward_terms.get(key, 0.0) + float(value)
            if terminated or truncated:
                break
        info = {**info, **reward_terms, "elapsed_time": elapsed, "frame_skip": executed}
        # a single frame keeps the inner reward object (type and value) unchanged
        step_reward: SupportsFloat = reward if skip == 1 else total_reward
        return observation, step_reward, terminated, truncated, info
