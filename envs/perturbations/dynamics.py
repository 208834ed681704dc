"""Dynamics perturbations: model mismatch, where the world differs from the one a policy trained in.

The sensor and action wrappers of this package change what a policy sees or what the env executes; these change
the physics. Each acts through a ``get_params()`` / ``set_params(**params)`` pair in the manner of RRLS (robust
MuJoCo envs whose physics parameters are read and set through the env):

- the lane-keeping envs have the pair on ``env.unwrapped``
  (:meth:`ncp_control.envs.lane_keeping.world.LaneKeepingBase.set_params`: ``steering_gain``, ``steering_bias``,
  ``steering_lag``, ``speed``, ``crosswind``, ``crosswind_gusts``);
- Gymnasium's MuJoCo envs (Hopper, HalfCheetah, InvertedPendulum, ... and the NoVel ids built on them) get it from
  :class:`MujocoParams`, a wrapper that keeps a copy of the model's nominal fields and writes ``mass``, ``friction``
  and ``actuator_gain`` as multipliers of them (so levels never compound, and level 1 writes the nominal values
  back, bit for bit).

:class:`DynamicsPerturbation` sets one parameter at every reset (before the inner reset, so the whole episode runs
under it), records the parameters in force in ``info["dynamics"]``, and sets the nominal value back when closed.
These perturbations draw no random numbers of their own: ``crosswind_gusts`` draws from the episode seed inside
the env, the same gusts for every policy on a seed.

May import: numpy, mujoco, gymnasium, :mod:`ncp_control.checks`; never torch.
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import mujoco
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

from ncp_control import checks

__all__ = [
    "LANE_KEEPING_PARAMS",
    "MUJOCO_PARAMS",
    "MUJOCO_RANGES",
    "MujocoParams",
    "DynamicsPerturbation",
    "params_holder",
]

#: Dynamics parameters of the lane-keeping envs (``LaneKeepingBase.set_params``).
LANE_KEEPING_PARAMS = ("steering_gain", "steering_bias", "steering_lag", "speed", "crosswind", "crosswind_gusts")
#: Dynamics parameters of MuJoCo envs (:class:`MujocoParams`), at their nominal values: multipliers.
MUJOCO_PARAMS: dict[str, float] = {"mass": 1.0, "friction": 1.0, "actuator_gain": 1.0}
#: Their valid ranges (inclusive).
MUJOCO_RANGES: dict[str, tuple[float, float]] = {
    "mass": (0.1, 10.0),
    "friction": (0.0, 10.0),
    "actuator_gain": (0.0, 10.0),
}


class ParamsHolder(Protocol):
    def get_params(self) -> dict[str, float]: ...

    def set_params(self, **params: float) -> None: ...


class MujocoParams(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """``get_params()`` / ``set_params(mass=..., friction=..., actuator_gain=...)`` for a Gymnasium MuJoCo env.

    Each parameter multiplies the model's nominal fields, copied when the wrapper is made:

    - ``mass``: every body's mass and rotational inertia (a uniformly denser robot, same shape);
    - ``friction``: the sliding friction of every geom (MuJoCo combines a contact's two geoms by their maximum, so
      the floor and the feet both scale);
    - ``actuator_gain``: every actuator's force per unit of control (``actuator_gainprm[:, 0]`` and the position
      and velocity terms ``actuator_biasprm[:, 1:3]``, so motors and servos alike).

    MuJoCo's derived constants are recomputed (``mj_setConst``) after each change. Values hold until set again
    (resets keep them); ``close()`` writes the nominal model back.

    Raises:
        TypeError: the env is not one of Gymnasium's MuJoCo envs (a ``gymnasium.envs.mujoco.MujocoEnv``; the
            lane-keeping envs simulate with MuJoCo too, but their car is kinematic: they have parameters of
            their own).
    """

    def __init__(self, env: gym.Env):
        model = getattr(env.unwrapped, "model", None)
        if not (isinstance(env.unwrapped, MujocoEnv) and isinstance(model, mujoco.MjModel)):
            raise TypeError(
                f"mass, friction and actuator_gain apply to Gymnasium's MuJoCo envs (Hopper, HalfCheetah, "
                f"InvertedPendulum and their NoVel ids); {_env_name(env)} is not one"
            )
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self._model = model
        self._nominal = {
            "body_mass": model.body_mass.copy(),
            "body_inertia": model.body_inertia.copy(),
            "geom_friction": model.geom_friction.copy(),
            "actuator_gainprm": model.actuator_gainprm.copy(),
            "actuator_biasprm": model.actuator_biasprm.copy(),
        }
        self._params = dict(MUJOCO_PARAMS)
        self._scratch = mujoco.MjData(model)  # mj_setConst works in a data of its own: the episode's is untouched

    def get_params(self) -> dict[str, float]:
        """The multipliers now in force."""
        return dict(self._params)

    def set_params(self, **params: float) -> None:
        """Set multipliers by name (the others keep theirs).

        Raises:
            ValueError: an unknown name (the message lists the valid ones) or a value outside its range.
        """
        self._params.update(checks.named_reals("dynamics parameter", params, MUJOCO_RANGES, owner="MuJoCo envs"))
        self._write()

    def _write(self) -> None:
        model, nominal, p = self._model, self._nominal, self._params
        model.body_mass[:] = nominal["body_mass"] * p["mass"]
        model.body_inertia[:] = nominal["body_inertia"] * p["mass"]
        model.geom_friction[:] = nominal["geom_friction"]
        model.geom_friction[:, 0] *= p["friction"]
        model.actuator_gainprm[:] = nominal["actuator_gainprm"]
        model.actuator_gainprm[:, 0] *= p["actuator_gain"]
        model.actuator_biasprm[:] = nominal["actuator_biasprm"]
        model.actuator_biasprm[:, 1:3] *= p["actuator_gain"]
        mujoco.mj_setConst(model, self._scratch)

    def close(self) -> None:
        self._params = dict(MUJOCO_PARAMS)
        self._write()
        super().close()


def _env_name(env: gym.Env) -> str:
    spec = env.unwrapped.spec
    return spec.id if spec is not None else type(env.unwrapped).__name__


def params_holder(env: gym.Env, param: str) -> tuple[gym.Env, ParamsHolder]:
    """``(env, holder)``: the object whose ``set_params`` sets ``param`` for ``env`` and the env to wrap next
    (``env`` itself, or ``env`` in a new :class:`MujocoParams` when ``param`` is a MuJoCo parameter and the
    chain has none yet).

    Raises:
        ValueError: ``param`` does not fit the env (a lane-keeping parameter on a MuJoCo task, or the reverse).
    """
    if param in LANE_KEEPING_PARAMS:
        unwrapped = env.unwrapped
        if not (hasattr(unwrapped, "set_params") and param in unwrapped.get_params()):  # type: ignore[attr-defined]
            raise ValueError(
                f"{param} applies to the lane-keeping envs (LaneKeeping-v0, LaneKeepingState-v0); "
                f"{_env_name(env)} is not one (its dynamics perturbations: mass, friction, actuator_gain "
                "where it is a MuJoCo env)"
            )
        return env, unwrapped  # type: ignore[return-value]
    if param not in MUJOCO_PARAMS:
        raise ValueError(f"unknown dynamics parameter {param!r}")
    inner: gym.Env = env
    while isinstance(inner, gym.Wrapper):
        if isinstance(inner, MujocoParams):
            return env, inner
        inner = inner.env
    try:
        wrapped = MujocoParams(env)
    except TypeError as error:
        raise ValueError(str(error)) from None
    return wrapped, wrapped


class DynamicsPerturbation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Sets one dynamics parameter to ``level`` at every reset, before the inner reset (the registry's
    ``steering_gain``, ..., ``mass``, ``friction``, ``actuator_gain``); ``info["dynamics"]`` holds every
    parameter in force after each reset and step; ``close()`` sets the parameter back to its nominal value.

    Args:
        env: a lane-keeping env for the lane-keeping parameters, a Gymnasium MuJoCo env for the others.
        level: the parameter's value (validated by the env's ``set_params``).
        param: the parameter's name.

    Raises:
        ValueError: a parameter that does not fit the env, or a level outside its range.
    """

    def __init__(self, env: gym.Env, level: float, param: str):
        gym.utils.RecordConstructorArgs.__init__(self, level=level, param=param)
        env, self._holder = params_holder(env, param)
        gym.Wrapper.__init__(self, env)
        self.param = param
        self.level = level
        self._nominal = self._holder.get_params()[param]
        self._holder.set_params(**{param: level})  # validates the level now, not at the first reset
        self._holder.set_params(**{param: self._nominal})

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self._holder.set_params(**{self.param: self.level})
        obs, info = self.env.reset(seed=seed, options=options)
        info["dynamics"] = self._holder.get_params()
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["dynamics"] = self._holder.get_params()
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        self._holder.set_params(**{self.param: self._nominal})
        super().close()
