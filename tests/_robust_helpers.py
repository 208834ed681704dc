"""Tiny env and predictors for the robustness tests (no MuJoCo, no torch); importable by worker processes.

Use the env as ``"tests._robust_helpers:Probe-v0"`` so that spawned workers import this module and register it.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import register, registry


class ProbeEnv(gym.Env):
    """A constant grey (4, 4, 3) uint8 image whose grey level depends on the reset seed; reward = executed action.

    Actions in [-10, 10] (wide, so no clipping in the tests); truncated after ``length`` steps. With ``lane=True``
    it reports lane-keeping info: lateral offset = running sum of the actions, 1 m per step, and it terminates
    without success (a crash) when |offset| > ``limit``; success at the last step otherwise.
    """

    metadata = {"render_modes": []}

    def __init__(self, length: int = 6, lane: bool = False, limit: float = 1.0):
        self.observation_space = spaces.Box(0, 255, (4, 4, 3), np.uint8)
        self.action_space = spaces.Box(-10.0, 10.0, (1,), np.float32)
        self.length, self.lane, self.limit = length, lane, limit
        self.dt = 0.1

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.y = 0, 0.0
        self.grey = int(self.np_random.integers(60, 200))
        return np.full((4, 4, 3), self.grey, np.uint8), {}

    def step(self, action):
        a = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        self.t += 1
        self.y += a
        info, terminated = {}, False
        done = self.t >= self.length
        if self.lane:
            crashed = abs(self.y) > self.limit
            terminated = crashed or done
            info = {"lateral_offset_m": self.y, "distance_m": float(self.t), "is_success": bool(done and not crashed)}
        obs = np.full((4, 4, 3), self.grey, np.uint8)
        return obs, a, terminated, done and not terminated, info


class MeanPixel:
    """Predictor: action = gain * (mean pixel / 255 - 0.5) + offset (per env copy); no state."""

    observation_space = spaces.Box(0, 255, (4, 4, 3), np.uint8)
    action_space = spaces.Box(-10.0, 10.0, (1,), np.float32)

    def __init__(self, offset: float = 0.0, gain: float = 1.0):
        self.offset, self.gain = offset, gain

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        mean = np.asarray(observation, dtype=np.float64).reshape(len(observation), -1).mean(axis=1)  # over pixels
        return (self.gain * (mean / 255.0 - 0.5) + self.offset)[:, None].astype(np.float32), None


class Unpicklable(MeanPixel):
    def __reduce__(self):
        raise TypeError("this predictor cannot be pickled")


def write_untrained_bc_run(out: Path, kind: str = "cnn", seed: int = 0, height: int = 16, width: int = 32) -> Path:
    """A ``bc`` run folder (config.json + model.pt) holding an untrained model for ``TinyLane-v0`` (``height`` x
    ``width`` images; sizes other than the default 16x32 are stored as the run's training ``env_kwargs``)."""
    import torch

    from ncp_control.policies.imitation import ModelConfig, build_model

    config = ModelConfig(
        kind=kind,
        observation_shape=(height, width, 3),
        conv_channels=(4, 4, 4, 4, 4),
        features=8,
        cnn_hidden=8,
        step_seconds=0.1,
    )
    model = build_model(config, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(
        json.dumps(
            {
                "kind": "bc",
                "env_id": "TinyLane-v0",
                "policy": kind,
                "seed": seed,
                "model": config.to_dict(),
                "training": {"env_kwargs": {} if (height, width) == (16, 32) else {"height": height, "width": width}},
            }
        )
    )
    torch.save(model.state_dict(), out / "model.pt")
    return out


for _id, _kwargs in (("Probe-v0", {}), ("ProbeLane-v0", {"lane": True})):
    if _id not in registry:
        register(id=_id, entry_point="tests._robust_helpers:ProbeEnv", kwargs=_kwargs)
