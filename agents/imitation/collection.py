"""Driving episodes to collect data: the env, the expert, steering noise and :func:`rollout`.

:func:`make_env` builds an env by id (after registering this project's ids); :func:`resolve_expert` finds the
privileged expert that labels every frame (:data:`EXPERTS` by env id, :data:`EXPERT_FACTORIES` by name; only these
are imported when the name comes from a run's ``config.json``); :func:`rollout` drives one road and records it as an
:class:`~ncp_control.agents.imitation.demonstrations.Episode`: the expert alone, with :class:`SteeringNoise` added to
what is executed (the demonstrations), or a learner that the expert overrides with probability ``beta`` (DAgger).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from ncp_control.agents.imitation.demonstrations import Episode
from ncp_control.agents.runs.legacy import current_name
from ncp_control.policies.imitation import SequencePolicy

__all__ = [
    "EXPERTS",
    "EXPERT_FACTORIES",
    "LANE_INFO_KEYS",
    "make_env",
    "resolve_expert",
    "SteeringNoise",
    "rollout",
    "measure_step_seconds",
]

#: env id -> ``"module:factory"``; ``factory(env)`` returns a zero-argument callable giving the expert's action
#: (shape of the action space) for the env's current state, read from privileged simulator state.
EXPERTS: dict[str, str] = {"LaneKeeping-v0": "ncp_control.agents.imitation.experts:PurePursuitExpert"}
#: The project's own experts by name (``--expert pure-pursuit``); only these (and the values of :data:`EXPERTS`)
#: are imported when the name comes from a run's ``config.json`` (see :func:`resolve_expert`).
EXPERT_FACTORIES: dict[str, str] = {"pure-pursuit": "ncp_control.agents.imitation.experts:PurePursuitExpert"}

#: The lane-keeping ``info`` entries recorded with each frame (those of them the env reports).
LANE_INFO_KEYS: tuple[str, ...] = ("lateral_offset_m", "heading_error_rad", "road_curvature", "distance_m")


def make_env(env_id: str, env_kwargs: Mapping[str, Any] | None = None, max_episode_steps: int | None = None) -> gym.Env:
    """``gym.make`` after importing :mod:`ncp_control.envs` (which registers our ids)."""
    import ncp_control.envs  # noqa: F401  (registers LaneKeeping-v0 and friends)

    kwargs = dict(env_kwargs or {})
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps
    return gym.make(current_name(env_id), **kwargs)


def resolve_expert(
    env_id: str, expert: str | None = None, *, allow_import: bool = False
) -> Callable[[gym.Env], Callable[[], np.ndarray]]:
    """The expert factory for ``env_id``: ``expert`` (a name in :data:`EXPERT_FACTORIES` or ``"module:name"``), or
    the one registered in :data:`EXPERTS` for ``env_id`` when ``expert`` is None.

    Only the project's own experts (the values of :data:`EXPERTS` / :data:`EXPERT_FACTORIES`) are imported by
    default: a ``"module:name"`` read from a run's ``config.json`` must not import code. ``allow_import=True``
    (the user named the expert on the command line or in code) lifts that.

    Raises:
        ValueError: no expert registered for ``env_id``, a malformed spec, or an unregistered spec without
            ``allow_import``.
    """
    spec = expert if expert is not None else EXPERTS.get(env_id)
    if spec is None:
        raise ValueError(
            f"no expert registered for {env_id!r} (known: {sorted(EXPERTS)}); pass expert='module:factory'"
        )
    spec = current_name(EXPERT_FACTORIES.get(spec, spec))
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expert must look like 'package.module:factory', got {spec!r}")
    registered = set(EXPERTS.values()) | set(EXPERT_FACTORIES.values())
    if spec not in registered and not allow_import:
        raise ValueError(
            f"expert {spec!r} is not one of the project's experts ({sorted(EXPERT_FACTORIES)}) and was not named by "
            "you: a run's config.json cannot make this program import code. If you trust it, name it on the "
            f"command line: --expert {spec}"
        )
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise ValueError(
            f"expert {spec!r} cannot be found ({error}); give 'package.module:factory' of an importable "
            "module, or leave it out for the env's registered expert"
        ) from error


@dataclass(frozen=True)
class SteeringNoise:
    """Temporally correlated noise added to executed actions: ``e_t = rho * e_{t-1} + sqrt(1 - rho^2) * std * N(0, 1)``."""

    std: float
    rho: float

    def __post_init__(self) -> None:
        if self.std < 0 or not 0 <= self.rho < 1:
            raise ValueError(f"noise needs std >= 0 and 0 <= rho < 1, got std={self.std}, rho={self.rho}")


def rollout(
    env: gym.Env,
    expert: Callable[[], np.ndarray],
    road_seed: int,
    *,
    learner: SequencePolicy | None = None,
    beta: float = 1.0,
    noise: SteeringNoise | None = None,
    rng: np.random.Generator | None = None,
    step_seconds: float,
) -> Episode:
    """Drive one episode on road ``road_seed`` and record it.

    Each step the expert labels the frame; with a ``learner`` its action is computed every step (so its
    recurrent state always advances) and executed unless a ``beta`` coin (probability ``beta``) picks the expert's.
    Without a learner the expert always executes. ``noise`` is added to the executed action (then clipped to the
    action space). ``rng`` drives the coin and the noise.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    rng = rng if rng is not None else np.random.default_rng(road_seed)
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        raise TypeError(f"rollout needs a Box action space, got {space!r}")
    low, high = space.low, space.high
    obs, info = env.reset(seed=int(road_seed))
    frames: list[np.ndarray] = []
    labels, executed, learned, dts = [], [], [], []
    infos: dict[str, list[float]] = {k: [] for k in LANE_INFO_KEYS if k in info}
    state, dt, eps = None, float(step_seconds), np.zeros(space.shape, np.float64)
    while True:
        label = np.asarray(expert(), np.float32).reshape(space.shape)
        action = label
        if learner is not None:
            out, state = learner.predict(obs[None], state, np.array([len(frames) == 0]), elapsed_time=dt)
            learned.append(out[0])
            if rng.random() >= beta:
                action = out[0]
        else:
            learned.append(np.full(space.shape, np.nan, np.float32))
        if noise is not None and noise.std > 0:
            eps = noise.rho * eps + np.sqrt(1.0 - noise.rho**2) * noise.std * rng.standard_normal(eps.shape)
            action = action + eps
        action = np.clip(action, low, high).astype(np.float32)
        frames.append(obs)
        labels.append(label)
        executed.append(action)
        dts.append(dt)
        for key in infos:
            infos[key].append(float(info[key]))
        obs, _, terminated, truncated, info = env.step(action)
        dt = float(info.get("elapsed_time", step_seconds)) or float(step_seconds)
        if terminated or truncated:
            break
    return Episode(
        observations=np.stack(frames).astype(np.uint8),
        actions=np.stack(labels).astype(np.float32),
        executed=np.stack(executed).astype(np.float32),
        learner_actions=np.stack(learned).astype(np.float32),
        dt=np.asarray(dts, np.float32),
        info={k: np.asarray(v, np.float32) for k, v in infos.items()},
        road_seed=int(road_seed),
        success=bool(info.get("is_success", False)),
    )


def measure_step_seconds(env: gym.Env) -> float:
    """The env's elapsed time per step, read from one step's ``info["elapsed_time"]`` (else ``env.unwrapped.dt``)."""
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(env.action_space.shape, env.action_space.dtype))
    value = info.get("elapsed_time", getattr(env.unwrapped, "dt", None))
    if value is None or not float(value) > 0:
        raise ValueError("cannot tell the env's step duration: info['elapsed_time'] and env.unwrapped.dt are missing")
    return float(value)
