"""INTERIM stand-in for ``agents.evaluation.evaluate`` (owned by the PPO work) until it lands on main.

Same signature and lane-keeping metrics as the contract; single env, no wrappers beyond ``wrappers``. Delete this
file once ``agents/evaluation.py`` is on main.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np


def evaluate(
    predictor: Any,
    env_id: str,
    episodes: int,
    seed: int,
    *,
    env_kwargs: dict | None = None,
    wrappers: Sequence[Callable[[gym.Env], gym.Env]] = (),
    n_envs: int = 1,
    deterministic: bool = True,
) -> dict:
    env = gym.make(env_id, **(env_kwargs or {}))
    for wrap in wrappers:
        env = wrap(env)
    returns, lengths, successes, lateral, distance, smooth = [], [], [], [], [], []
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        state, start, total, steps, prev, offsets, jumps = None, True, 0.0, 0, None, [], []
        while True:
            action, state = predictor.predict(obs[None], state, np.array([start]), deterministic=deterministic)
            action = np.asarray(action)[0]
            start = False
            if prev is not None:
                jumps.append(float(np.abs(action - prev).mean()))
            prev = action
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            steps += 1
            offsets.append(abs(float(info.get("lateral_offset_m", 0.0))))
            if terminated or truncated:
                break
        returns.append(total)
        lengths.append(steps)
        successes.append(bool(info.get("is_success", False)))
        lateral.append(float(np.mean(offsets)))
        distance.append(float(info.get("distance_m", 0.0)))
        smooth.append(float(np.mean(jumps)) if jumps else 0.0)
    env.close()
    km = max(sum(distance) / 1000.0, 1e-9)  # avoid dividing by zero when nothing moved
    return {
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "episodes": episodes,
        "returns": returns,
        "lengths": lengths,
        "successes": successes,
        "completion_rate": float(np.mean(successes)),
        "mean_abs_lateral_m": float(np.mean(lateral)),
        "departures_per_km": float(sum(not s for s in successes) / km),
        "steering_smoothness": float(np.mean(smooth)),
    }
