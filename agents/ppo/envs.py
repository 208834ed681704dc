"""The environments of a PPO run: the training VecEnv, its ``VecNormalize`` wrapper, the wrappers a policy needs
around the raw env, and the env's step duration.

Imports none of the other modules of :mod:`ncp_control.agents.ppo`: a config is read here as a plain dict.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np


def _make_single_env(
    env_id: str,
    env_kwargs: dict[str, Any],
    timed: bool,
    dt: float | None,
    perturb: tuple[str, ...] = (),
    perturbation_seed: int | None = None,
) -> gym.Env:
    """Top-level (picklable) env factory for SubprocVecEnv workers; imports ``ncp_control.envs`` to register our ids.
    ``perturb``: perturbation specs applied to the raw env, inside the policy's wrappers (so an elapsed-time
    observation reads the perturbed time)."""
    from ncp_control.agents.evaluation.episodes import make_eval_env

    wrappers = policy_env_wrappers(timed, dt)
    if perturb:
        from ncp_control.envs.perturbations import apply_perturbations

        wrappers = (partial(apply_perturbations, specs=list(perturb), seed=perturbation_seed), *wrappers)
    return make_eval_env(env_id, env_kwargs, wrappers, allow_import=True)  # the user's run


def policy_env_wrappers(timed: bool, dt: float | None) -> tuple:
    """The wrappers a policy needs around the raw env: the elapsed-time observation when ``timed``."""
    if not timed:
        return ()
    from ncp_control.policies.elapsed_time import ElapsedTimeObservation

    return (partial(ElapsedTimeObservation, dt=dt),)


def env_step_duration(env_id: str, env_kwargs: dict[str, Any] | None = None) -> float:
    """``env.unwrapped.dt`` of a freshly made env, in seconds.

    Raises:
        ValueError: the env has no positive ``dt`` (then set ``policy_kwargs.dt`` in the config).
    """
    from ncp_control.agents.evaluation.episodes import make_eval_env

    env = make_eval_env(env_id, env_kwargs, allow_import=True)  # called while training: the user's own env id
    try:
        dt = getattr(env.unwrapped, "dt", None)
    finally:
        env.close()
    if dt is None or not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"{env_id} has no positive step duration env.unwrapped.dt; set policy_kwargs.dt in the config")
    return float(dt)


def make_training_env(
    config: dict[str, Any], *, seed: int | None = None, n_envs: int | None = None, perturbed: bool = True
):
    """The (unnormalised) VecEnv for ``config``: Monitor-wrapped copies, Dummy or Subproc, seeded.

    ``perturbed``: apply ``config["perturb"]`` (training under perturbations). Every copy's wrappers get the run's
    seed; their draws differ between copies because each copy is reset with its own seed (``seed + index``, SB3's
    ``VecEnv.seed``), which the wrappers combine with theirs (:mod:`ncp_control.envs.perturbations`)."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    timed = config["elapsed_time"] == "observation"
    perturb = tuple(config.get("perturb", ())) if perturbed else ()
    factory = partial(
        _make_single_env,
        config["env_id"],
        config["env_kwargs"],
        timed,
        config["policy_kwargs"].get("dt"),
        perturb,
        config["seed"],
    )
    vec_cls = SubprocVecEnv if config["vec_env"] == "subproc" else DummyVecEnv
    return make_vec_env(
        factory, n_envs=n_envs or config["n_envs"], seed=config["seed"] if seed is None else seed, vec_env_cls=vec_cls
    )


def normalize_env(venv, config: dict[str, Any], *, training: bool = True):
    """``venv`` in SB3's ``VecNormalize`` as ``config`` asks (``normalize_obs``, ``normalize_reward``; only the
    ``"observation"`` key for ``elapsed_time="observation"``), or ``venv`` itself when it asks for neither.
    ``training=False`` (evaluation): the statistics stay fixed and rewards are not normalised."""
    from stable_baselines3.common.vec_env import VecNormalize

    if not (config["normalize_obs"] or config["normalize_reward"]):
        return venv
    keys = ["observation"] if config["elapsed_time"] == "observation" else None
    return VecNormalize(
        venv,
        training=training,
        norm_obs=config["normalize_obs"],
        norm_reward=config["normalize_reward"] and training,
        norm_obs_keys=keys,
        gamma=config["algo"].get("gamma", 0.99),
    )
