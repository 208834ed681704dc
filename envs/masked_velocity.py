"""Velocity-masked (positions only) variants of Gymnasium control envs: tasks that need memory.

A feed-forward policy that sees only positions cannot tell how fast the system moves; a recurrent policy can
infer velocities from the history of positions. This module provides

- :class:`KeepObservationIndices`: a generic wrapper that keeps chosen entries of a 1-D ``Box`` observation
  (usable on any such env);
- :class:`ZeroObservationIndices`: a wrapper that sets chosen entries to zero and keeps the observation's shape
  (what rl-baselines3-zoo's ``MaskVelocityWrapper`` does);
- :class:`RejectNonFiniteActions`: raises ``ValueError`` on NaN/inf actions (the base envs would pass them into
  the physics and return NaN observations);
- :func:`position_indices` and :class:`MaskVelocity`: the position entries of Gymnasium's ``Pendulum-v1`` and of
  the v5 MuJoCo envs whose observation is ``qpos[skipped:]`` followed by ``qvel``;
- the factories behind the registered ids ``PendulumNoVel-v1``, ``InvertedPendulumNoVel-v5``,
  ``HalfCheetahNoVel-v5`` and ``HopperNoVel-v5``.

``PendulumNoVel-v1`` is the same env as rl-baselines3-zoo's id of that name (``rl_zoo3.import_envs``):
``Pendulum-v1`` with the angular velocity **zeroed**, observation ``Box(3,)``, so that rl-zoo's published scores
compare like for like (until 2026-11-28 ours dropped the entry: ``Box(2,)``). The MuJoCo ids are ours only (rl-zoo
registers none of them) and **drop** the velocity entries. Which entries are kept (default keyword arguments of the
base envs; Gymnasium 1.x documentation tables, checked against the MuJoCo model's ``data.qpos`` / ``data.qvel`` in
``tests/test_memory_envs.py``):

======================== ===== =========================================================== ===========================
id                       base  kept observation entries (all positions)                    dropped (velocities)
======================== ===== =========================================================== ===========================
PendulumNoVel-v1         3     0 ``cos(theta)``, 1 ``sin(theta)``                          2 ``theta_dot`` (zeroed, kept
                                                                                           as entry 2 = 0, as rl-zoo)
InvertedPendulumNoVel-v5 4     0 cart position (slider), 1 pole angle (hinge)              2, 3 (``qvel``)
HalfCheetahNoVel-v5      17    0-7: ``qpos[1:]`` = rootz, rooty, bthigh, bshin, bfoot,     8-16 (``qvel``, 9 entries)
                               fthigh, fshin, ffoot (rootx is excluded by the base env)
HopperNoVel-v5           11    0-4: ``qpos[1:]`` = rootz, rooty, thigh, leg, foot          5-10 (``qvel``, 6 entries,
                               (rootx is excluded by the base env)                         clipped to ±10 by the base)
======================== ===== =========================================================== ===========================

For the MuJoCo envs the indices are not hard-coded: they are read from the base env's
``observation_structure`` (Gymnasium v5), so keyword arguments that change the layout
(``exclude_current_positions_from_observation=False`` adds ``rootx`` as entry 0) still keep exactly the
positions. Pendulum's ``cos``/``sin`` pair is the angle, kept as the base env encodes it (as rl-zoo's
``PendulumNoVel-v1`` does).

Every registered id raises ``ValueError`` on a non-finite action (:class:`RejectNonFiniteActions`).

May import: numpy, gymnasium (and its MuJoCo envs), :mod:`ncp_control.checks`; never torch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.pendulum import PendulumEnv
from gymnasium.spaces import Box

from ncp_control import checks

__all__ = [
    "KeepObservationIndices",
    "ZeroObservationIndices",
    "RejectNonFiniteActions",
    "MaskVelocity",
    "position_indices",
    "make_pendulum_novel",
    "make_inverted_pendulum_novel",
    "make_half_cheetah_novel",
    "make_hopper_novel",
]


class KeepObservationIndices(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Keep only the given entries of a 1-D ``Box`` observation, in the given order.

    Args:
        env: an env whose observation space is a 1-D ``Box`` of shape ``(D,)``.
        indices: entries to keep, each in ``[0, D)``, no repeats, at least one. Negative indices are not
            accepted (say what you mean).

    Observation space: ``Box(low[indices], high[indices], (len(indices),), dtype)`` of the inner space; the
    observation is ``obs[indices]`` (a copy, bit-identical values).
    """

    def __init__(self, env: gym.Env, indices: Sequence[int]):
        space = env.observation_space
        if not isinstance(space, Box) or len(space.shape) != 1:
            raise TypeError(
                f"KeepObservationIndices needs a 1-D Box observation space, got {space!r}; "
                "flatten the observation first (gymnasium.wrappers.FlattenObservation)."
            )
        kept = checks.indices("indices", indices, space.shape[0], what="observation entry")
        gym.utils.RecordConstructorArgs.__init__(self, indices=kept)
        gym.ObservationWrapper.__init__(self, env)
        self._indices = np.asarray(kept, dtype=np.intp)
        self.observation_space = Box(low=space.low[self._indices], high=space.high[self._indices], dtype=space.dtype)  # type: ignore[arg-type,unused-ignore]  # Gymnasium 1.2 types dtype as a scalar type

    @property
    def indices(self) -> tuple[int, ...]:
        """The kept entries of the inner observation, in output order."""
        return tuple(int(i) for i in self._indices)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """``observation``: (D,) inner observation -> (len(indices),) kept entries."""
        return np.asarray(observation)[self._indices]


class ZeroObservationIndices(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Set the given entries of a 1-D ``Box`` observation to zero; the observation keeps its shape and bounds.

    This is rl-baselines3-zoo's ``MaskVelocityWrapper`` (the observation times a 0/1 mask, so a negative entry
    becomes ``-0.0`` exactly as there) for any index set.

    Args:
        env: an env whose observation space is a 1-D ``Box`` of shape ``(D,)``.
        indices: entries to zero, each in ``[0, D)``, no repeats, at least one.
    """

    def __init__(self, env: gym.Env, indices: Sequence[int]):
        space = env.observation_space
        if not isinstance(space, Box) or len(space.shape) != 1:
            raise TypeError(f"ZeroObservationIndices needs a 1-D Box observation space, got {space!r}.")
        kept = checks.indices("indices", indices, space.shape[0], what="observation entry")
        gym.utils.RecordConstructorArgs.__init__(self, indices=kept)
        gym.ObservationWrapper.__init__(self, env)
        self._mask = np.ones(space.shape, dtype=space.dtype)
        self._mask[list(kept)] = 0
        self._indices = kept

    @property
    def indices(self) -> tuple[int, ...]:
        """The zeroed entries."""
        return self._indices

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """``observation``: (D,) -> (D,) with the chosen entries multiplied by 0."""
        return observation * self._mask


class RejectNonFiniteActions(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Raise ``ValueError`` when an action holds NaN or inf, before it reaches the inner env.

    Gymnasium's Pendulum and MuJoCo envs pass such actions into the dynamics (``np.clip`` keeps NaN) and return
    NaN observations from then on; a failing policy is easier to find at the step that produced the bad action.
    """

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        values = np.asarray(action)
        if values.dtype.kind in "fc" and not np.isfinite(values).all():
            raise ValueError(
                f"action must be finite, got {action!r}; NaN/inf actions are rejected "
                "(check the policy's outputs and its observation normalisation)"
            )
        return self.env.step(action)


# Gymnasium v5 MuJoCo envs whose `_get_obs` is `concatenate(qpos[skipped_qpos:], qvel)` and whose
# `observation_structure` says how many qpos entries come first (checked against `data.qpos` in the tests).
_QPOS_FIRST_ENVS = ("InvertedPendulumEnv", "HalfCheetahEnv", "HopperEnv", "Walker2dEnv", "SwimmerEnv")


def position_indices(env: gym.Env) -> tuple[int, ...]:
    """The observation entries of ``env`` that are positions (no velocities).

    Supported: Gymnasium's ``Pendulum-v1`` (``(0, 1)``: cos and sin of the angle) and the v5 MuJoCo envs
    ``InvertedPendulum``, ``HalfCheetah``, ``Hopper``, ``Walker2d``, ``Swimmer``, whose observation begins with
    the ``observation_structure["qpos"]`` position entries followed by ``qvel``.

    Raises:
        ValueError: for any other env; use :class:`KeepObservationIndices` with explicit indices there.
    """
    base = env.unwrapped
    if isinstance(base, PendulumEnv):
        return (0, 1)
    name = type(base).__name__
    structure = getattr(base, "observation_structure", None)
    if name in _QPOS_FIRST_ENVS and isinstance(structure, dict) and "qpos" in structure:
        return tuple(range(int(structure["qpos"])))
    raise ValueError(
        f"position_indices does not know the observation layout of {name}; supported: PendulumEnv, "
        f"{', '.join(_QPOS_FIRST_ENVS)} (Gymnasium v5). Use KeepObservationIndices(env, indices) instead."
    )


class MaskVelocity(KeepObservationIndices):
    """Keep only the position entries of a supported env (see :func:`position_indices`)."""

    def __init__(self, env: gym.Env):
        # Record no kwargs (the first RecordConstructorArgs call wins), so `gym.make(env.spec)` rebuilds it.
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env, position_indices(env))


def _make_base(base_id: str, kwargs: dict[str, Any]) -> gym.Env:
    """``gymnasium.make(base_id, **kwargs)`` without its time limit, env checker and order enforcing.

    The registered NoVel id adds those around our wrapper; keeping them inside too would nest a second
    ``TimeLimit`` that ignores a ``max_episode_steps`` given for the NoVel id.
    """
    spec = dataclasses.replace(gym.spec(base_id), max_episode_steps=None, order_enforce=False, disable_env_checker=True)
    return gym.make(spec, **kwargs)


#: Pendulum-v1's angular velocity entry, zeroed in ``PendulumNoVel-v1`` (rl-zoo's ``velocity_indices``).
PENDULUM_VELOCITY_INDEX = 2


def make_pendulum_novel(**kwargs: Any) -> gym.Env:
    """``Pendulum-v1`` observing ``(cos(theta), sin(theta), 0)``: the angular velocity zeroed as in rl-zoo's
    ``PendulumNoVel-v1``; ``kwargs`` go to its constructor."""
    base = _make_base("Pendulum-v1", kwargs)
    return RejectNonFiniteActions(ZeroObservationIndices(base, [PENDULUM_VELOCITY_INDEX]))


@contextlib.contextmanager
def _mujoco_warnings_as_python() -> Iterator[None]:
    """MuJoCo's warnings while a model compiles as Python ``RuntimeWarning``s instead of its default, which also
    appends them to ``MUJOCO_LOG.TXT`` in the working folder (Gymnasium 1.2's HalfCheetah XML sets the deprecated
    ``settotalmass``, so every ``gym.make`` would write that file into the user's folder). The previous handler is
    restored after."""
    import mujoco

    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(lambda message: warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2))
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


def _make_mujoco_novel(base_id: str, kwargs: dict[str, Any]) -> gym.Env:
    with _mujoco_warnings_as_python():
        return RejectNonFiniteActions(MaskVelocity(_make_base(base_id, kwargs)))


def make_inverted_pendulum_novel(**kwargs: Any) -> gym.Env:
    """``InvertedPendulum-v5`` observing cart position and pole angle only; ``kwargs`` go to its constructor."""
    return _make_mujoco_novel("InvertedPendulum-v5", kwargs)


def make_half_cheetah_novel(**kwargs: Any) -> gym.Env:
    """``HalfCheetah-v5`` observing ``qpos`` (minus rootx by default) only; ``kwargs`` go to its constructor."""
    return _make_mujoco_novel("HalfCheetah-v5", kwargs)


def make_hopper_novel(**kwargs: Any) -> gym.Env:
    """``Hopper-v5`` observing ``qpos`` (minus rootx by default) only; ``kwargs`` go to its constructor."""
    return _make_mujoco_novel("Hopper-v5", kwargs)
