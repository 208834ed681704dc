"""The registry of named perturbations and the ``"name:level"`` spec parser.

:data:`PERTURBATIONS` maps each short name (``"pixel_noise"``, ``"action_delay"``, ...) to its wrapper and level
range; :func:`parse_spec` / :func:`parse_sweep` read specs, :func:`make_perturbation` / :func:`apply_perturbations`
wrap an env in them.

May import: numpy, gymnasium and the wrapper modules of this package.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from ncp_control.envs.perturbations.action_time import ActionDelay, ActionNoise, IrregularTime
from ncp_control.envs.perturbations.dynamics import DynamicsPerturbation
from ncp_control.envs.perturbations.observation import (
    BrightnessShift,
    FrozenSensor,
    GaussianBlur,
    ObservationNoise,
    Occlusion,
    PixelNoise,
    SensorDropout,
)

__all__ = [
    "PerturbationInfo",
    "PerturbationSpec",
    "PERTURBATIONS",
    "parse_spec",
    "parse_sweep",
    "make_perturbation",
    "apply_perturbations",
]


@dataclasses.dataclass(frozen=True)
class PerturbationInfo:
    """One registry entry: how a named perturbation is built from its level."""

    wrapper: type[gym.Wrapper]
    level_arg: str  # the wrapper's keyword argument that receives the level
    level_type: type  # int or float
    neutral: float  # the level at which the wrapper is the identity
    low: float  # smallest valid level
    high: float  # largest valid level
    seeded: bool  # whether the wrapper draws random numbers (takes a seed)
    meaning: str  # one line for docs and error messages
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # further fixed arguments of the wrapper
    dynamics: bool = False  # changes the physics (model mismatch), not the sensors or the action channel
    unit: str = ""  # the level's unit where the wrapper's argument name does not say it (plots, docs)


def _dynamics(param: str, neutral: float, low: float, high: float, unit: str, meaning: str) -> PerturbationInfo:
    return PerturbationInfo(
        DynamicsPerturbation, "level", float, neutral, low, high, False, meaning, {"param": param}, True, unit
    )


PERTURBATIONS: dict[str, PerturbationInfo] = {
    "obs_noise": PerturbationInfo(
        ObservationNoise,
        "sigma",
        float,
        0.0,
        0.0,
        math.inf,
        True,
        "additive Gaussian noise, sigma in observation units (vectors)",
    ),
    "pixel_noise": PerturbationInfo(
        PixelNoise,
        "sigma",
        float,
        0.0,
        0.0,
        math.inf,
        True,
        "Gaussian pixel noise, sigma on images scaled to [0, 1] (variance sigma**2), clipped",
    ),
    "dropout": PerturbationInfo(
        SensorDropout,
        "p",
        float,
        0.0,
        0.0,
        1.0,
        True,
        "each element (image: pixel) reads 0 with probability p",
    ),
    "frozen": PerturbationInfo(
        FrozenSensor,
        "p",
        float,
        0.0,
        0.0,
        1.0,
        True,
        "with probability p per step the last observation repeats",
    ),
    "occlusion": PerturbationInfo(
        Occlusion,
        "size",
        float,
        0.0,
        0.0,
        1.0,
        True,
        "random black patch, side = size * image side, placed once per episode",
    ),
    "brightness": PerturbationInfo(
        BrightnessShift,
        "shift",
        float,
        0.0,
        -1.0,
        1.0,
        False,
        "additive brightness shift on images in [0, 1]",
    ),
    "blur": PerturbationInfo(GaussianBlur, "sigma", float, 0.0, 0.0, math.inf, False, "Gaussian blur, sigma in pixels"),
    "action_noise": PerturbationInfo(
        ActionNoise,
        "sigma",
        float,
        0.0,
        0.0,
        math.inf,
        True,
        "additive Gaussian action noise, clipped to bounds",
    ),
    "action_delay": PerturbationInfo(
        ActionDelay,
        "delay",
        int,
        0,
        0,
        math.inf,
        False,
        "the env executes the action from k steps earlier",
    ),
    "irregular_time": PerturbationInfo(
        IrregularTime,
        "max_skip",
        int,
        1,
        1,
        math.inf,
        True,
        "each step repeats the action k ~ U{1..K} times; info['elapsed_time'] is the true time",
    ),
    # dynamics (model mismatch): lane keeping
    "steering_gain": _dynamics(
        "steering_gain",
        1.0,
        0.0,
        5.0,
        "multiplier",
        "lane keeping: multiplier on the commanded curvature (0: no steering)",
    ),
    "steering_bias": _dynamics(
        "steering_bias", 0.0, -0.1, 0.1, "1/m", "lane keeping: curvature added to the command, 1/m (left positive)"
    ),
    "steering_lag": _dynamics(
        "steering_lag",
        1.0,
        0.1,
        50.0,
        "multiplier",
        "lane keeping: multiplier on the steering filter's time constant (0.1 s)",
    ),
    "speed": _dynamics("speed", 1.0, 0.5, 2.0, "multiplier", "lane keeping: multiplier on the car's speed (10 m/s)"),
    "crosswind": _dynamics(
        "crosswind",
        0.0,
        -5.0,
        5.0,
        "m/s",
        "lane keeping: lateral drift perpendicular to the heading, m/s (left positive)",
    ),
    "crosswind_gusts": _dynamics(
        "crosswind_gusts",
        0.0,
        0.0,
        5.0,
        "m/s",
        "lane keeping: std of gusting lateral drift, m/s (2 s correlation time)",
    ),
    # dynamics (model mismatch): Gymnasium's MuJoCo envs
    "mass": _dynamics("mass", 1.0, 0.1, 10.0, "multiplier", "MuJoCo: multiplier on every body's mass and inertia"),
    "friction": _dynamics(
        "friction", 1.0, 0.0, 10.0, "multiplier", "MuJoCo: multiplier on every geom's sliding friction"
    ),
    "actuator_gain": _dynamics(
        "actuator_gain", 1.0, 0.0, 10.0, "multiplier", "MuJoCo: multiplier on every actuator's force"
    ),
}

_FORMAT_HELP = (
    "a perturbation spec is 'name:level' (e.g. 'pixel_noise:0.1', 'action_delay:2'); "
    f"valid names: {', '.join(PERTURBATIONS)}"
)


@dataclasses.dataclass(frozen=True)
class PerturbationSpec:
    """A named perturbation at one level, e.g. ``PerturbationSpec("pixel_noise", 0.1)``; ``str()`` gives the spec."""

    name: str
    level: float | int

    def __post_init__(self) -> None:
        info = _lookup(self.name)
        level = self.level
        if info.level_type is int:
            if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
                raise ValueError(f"{self.name} takes an integer level, got {level!r}; {_FORMAT_HELP}")
            level = int(level)
        else:
            if isinstance(level, bool) or not isinstance(level, (int, float, np.integer, np.floating)):
                raise ValueError(f"{self.name} takes a real level, got {level!r}; {_FORMAT_HELP}")
            level = float(level)
        if not (math.isfinite(level) and info.low <= level <= info.high):
            raise ValueError(f"{self.name} level must be in [{info.low}, {info.high}], got {level}")
        object.__setattr__(self, "level", level)

    @property
    def is_neutral(self) -> bool:
        """Whether this level leaves the env unperturbed."""
        return self.level == PERTURBATIONS[self.name].neutral

    def __str__(self) -> str:
        return f"{self.name}:{self.level}"


def _lookup(name: str) -> PerturbationInfo:
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; {_FORMAT_HELP}")
    return PERTURBATIONS[name]


def _parse_level(name: str, text: str) -> float | int:
    info = _lookup(name)
    text = text.strip()
    try:
        return int(text) if info.level_type is int else float(text)
    except ValueError:
        kind = "an integer" if info.level_type is int else "a number"
        raise ValueError(f"{name} level must be {kind}, got {text!r}; {_FORMAT_HELP}") from None


def _split(spec: str) -> tuple[str, str]:
    if not isinstance(spec, str):
        raise TypeError(f"a perturbation spec must be a str, got {spec!r}; {_FORMAT_HELP}")
    name, sep, levels = spec.partition(":")
    name = name.strip()
    if not sep or not levels.strip():
        raise ValueError(f"malformed perturbation spec {spec!r}; {_FORMAT_HELP}")
    _lookup(name)
    return name, levels


def parse_spec(spec: str | PerturbationSpec) -> PerturbationSpec:
    """Parse ``"name:level"`` (e.g. ``"pixel_noise:0.1"``); a ``PerturbationSpec`` is returned as is.

    Raises:
        ValueError: unknown name (the message lists the valid ones), missing, malformed or out-of-range level.
    """
    if isinstance(spec, PerturbationSpec):
        return spec
    name, level = _split(spec)
    if "," in level:
        raise ValueError(f"{spec!r} lists several levels; use parse_sweep for sweeps. {_FORMAT_HELP}")
    return PerturbationSpec(name, _parse_level(name, level))


def parse_sweep(spec: str) -> tuple[str, tuple[float | int, ...]]:
    """Parse ``"name:l1,l2,..."`` (e.g. ``"pixel_noise:0,0.1,0.2"``) into ``(name, levels)``.

    A single level is a sweep of one. Raises ``ValueError`` like :func:`parse_spec`, and for empty or repeated
    levels.
    """
    name, levels_text = _split(spec)
    levels = tuple(PerturbationSpec(name, _parse_level(name, part)).level for part in levels_text.split(","))
    if len(set(levels)) != len(levels):
        raise ValueError(f"repeated level in sweep {spec!r}")
    return name, levels


def make_perturbation(env: gym.Env, spec: str | PerturbationSpec, seed: int | None = None, **kwargs: Any) -> gym.Env:
    """Wrap ``env`` in one perturbation. ``kwargs`` go to the wrapper (e.g. ``resample="step"`` for occlusion).

    ``seed`` is the wrapper's own seed (combined with reset seeds); deterministic wrappers ignore it.
    """
    spec = parse_spec(spec)
    info = PERTURBATIONS[spec.name]
    if info.seeded:
        kwargs["seed"] = seed
    return info.wrapper(env, **{info.level_arg: spec.level}, **info.options, **kwargs)


def apply_perturbations(env: gym.Env, specs: Sequence[str | PerturbationSpec], seed: int | None = None) -> gym.Env:
    """Wrap ``env`` in the perturbations ``specs`` in list order: the first is applied first (innermost).

    Example: ``apply_perturbations(env, ["blur:1", "pixel_noise:0.1"], seed=0)`` blurs, then adds noise.
    Each name may appear once (two wrappers of one kind would draw the same numbers). Every seeded wrapper gets
    ``seed``; their streams differ by name.

    Raises:
        ValueError: a malformed spec, an unknown name, or a repeated name.
    """
    if isinstance(specs, str):
        raise TypeError(f"specs must be a list of specs, got the str {specs!r}; wrap it in a list")
    parsed = [parse_spec(spec) for spec in specs]
    names = [spec.name for spec in parsed]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"each perturbation may appear once, repeated: {repeated}")
    for spec in parsed:
        env = make_perturbation(env, spec, seed=seed)
    return env
