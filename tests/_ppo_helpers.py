"""Tiny environments for the PPO tests (fast, no MuJoCo)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class CueRecall(gym.Env):
    """A memory task: a cue c in {-1, +1} is visible only at t = 0.

    Observation (2,): ``[c, 1]`` at t = 0, ``[0, 0]`` afterwards. Action (1,) in [-1, 1]. Reward ``-|a - c|`` at
    t >= 1 (0 at t = 0); the episode is truncated after ``length`` steps. A memory-less policy sees the same
    observation whatever the cue and cannot beat a return of ``-(length - 1)`` on average (E|a - c| >= 1 for any
    fixed a); a policy that remembers the cue reaches 0. ``dt`` = 0.1 s.
    """

    metadata = {"render_modes": []}

    def __init__(self, length: int = 5):
        self.length = length
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.dt = 0.1

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.cue = float(self.np_random.choice([-1.0, 1.0]))
        return np.array([self.cue, 1.0], np.float32), {}

    def step(self, action):
        a = float(np.clip(np.asarray(action).reshape(-1)[0], -1.0, 1.0))
        reward = 0.0 if self.t == 0 else -abs(a - self.cue)
        self.t += 1
        return np.zeros(2, np.float32), reward, False, self.t >= self.length, {}


class Counter(gym.Env):
    """Deterministic bookkeeping env: observation = [t / 10, seed-dependent constant], reward = 1 per step,
    episode truncated after ``length`` steps. Reports lane-keeping info keys when ``lane=True``: the car
    'drives' 2 m per step with lateral offset ``action``; the episode succeeds when ``succeed`` is true,
    otherwise it terminates (a departure) at the last step."""

    def __init__(self, length: int = 4, lane: bool = False, succeed: bool = True):
        self.length, self.lane, self.succeed = length, lane, succeed
        self.observation_space = spaces.Box(-10.0, 10.0, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.dt = 0.05

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.c = float(self.np_random.uniform(-1, 1))
        return np.array([0.0, self.c], np.float32), {}

    def step(self, action):
        self.t += 1
        done = self.t >= self.length
        info = {}
        terminated = False
        if self.lane:
            info = {
                "lateral_offset_m": float(np.asarray(action).reshape(-1)[0]),
                "distance_m": 2.0 * self.t,
                "is_success": bool(done and self.succeed),
            }
            terminated = done and not self.succeed
        return np.array([self.t / 10, self.c], np.float32), 1.0, terminated, done and not terminated, info


def register_test_envs() -> None:
    """Register ``CueRecall-v0``, ``Counter-v0``, ``CounterLane-v0`` and ``CounterLaneFail-v0`` (idempotent)."""
    for env_id, entry, kwargs in (
        ("CueRecall-v0", CueRecall, {}),
        ("Counter-v0", Counter, {}),
        ("CounterLane-v0", Counter, {"lane": True}),
        ("CounterLaneFail-v0", Counter, {"lane": True, "succeed": False}),
    ):
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry, kwargs=kwargs)
