"""Perturbation wrappers for robustness evaluation, a registry of them, and a spec parser.

Every wrapper is a ``gymnasium.Wrapper`` usable on any env whose spaces it supports (vector or image ``Box``
observations, ``Box`` actions), and they compose by nesting. Evaluation code names them with short specs::

    env = apply_perturbations(gym.make("LaneKeeping-v0"), ["pixel_noise:0.316", "action_delay:2"], seed=0)
    levels = parse_sweep("pixel_noise:0,0.1,0.2")   # -> ("pixel_noise", (0.0, 0.1, 0.2))

=================  ===============  ========  ==========================================================
name               class            neutral   level
=================  ===============  ========  ==========================================================
``obs_noise``      ObservationNoise 0         sigma of additive Gaussian noise, observation units
``pixel_noise``    PixelNoise       0         sigma on images scaled to [0, 1] (variance sigma**2)
``dropout``        SensorDropout    0         probability p that an element (image: a pixel) reads 0
``frozen``         FrozenSensor     0         probability p per step that the last observation repeats
``occlusion``      Occlusion        0         patch side as a fraction of the image side
``brightness``     BrightnessShift  0         additive shift on images scaled to [0, 1]
``blur``           GaussianBlur     0         Gaussian blur sigma in pixels
``action_noise``   ActionNoise      0         sigma of additive Gaussian noise, action units
``action_delay``   ActionDelay      0         delay k in steps (int)
``irregular_time`` IrregularTime    1         maximum frame skip K (int): k ~ U{1..K} per step
=================  ===============  ========  ==========================================================

**Dynamics** (model mismatch, :mod:`.dynamics`; :class:`DynamicsPerturbation` sets a physics parameter at every
reset through the env's ``set_params``):

=====================  ========  =====================================================================  ==========
name                   neutral   level                                                                  range
=====================  ========  =====================================================================  ==========
``steering_gain``      1         lane keeping: multiplier on the commanded curvature (0: no steering)   [0, 5]
``steering_bias``      0         lane keeping: curvature added to the command, 1/m (left positive)      +-0.1
``steering_lag``       1         lane keeping: multiplier on the steering time constant (0.1 s)         [0.1, 50]
``speed``              1         lane keeping: multiplier on the speed (10 m/s)                         [0.5, 2]
``crosswind``          0         lane keeping: lateral drift, m/s, perpendicular to the heading         +-5
``crosswind_gusts``    0         lane keeping: std of gusting lateral drift, m/s (2 s correlation)      [0, 5]
``mass``               1         MuJoCo envs: multiplier on every body's mass and inertia               [0.1, 10]
``friction``           1         MuJoCo envs: multiplier on every geom's sliding friction               [0, 10]
``actuator_gain``      1         MuJoCo envs: multiplier on every actuator's force                      [0, 10]
=====================  ========  =====================================================================  ==========

At the neutral level every wrapper returns the inner env's observations, rewards and actions unchanged.

**Seeding and common random numbers.** Each random wrapper owns a ``numpy.random.Generator``. It is seeded from
``(seed, reset seed)`` whenever ``reset(seed=...)`` is called, where ``seed`` is the optional constructor argument;
the seed sequence carries a spawn key made from the wrapper's registry name, so its stream differs from the inner
env's ``np_random`` (seeded by Gymnasium from the reset seed alone) and from the other wrappers' streams.
``reset()`` without a seed continues the stream. Draws never depend on actions or observations: each step draws
the same number of values of the same shape (noise for the full observation or action shape, a full mask, one
patch position, one skip length), so the same seeds give the same perturbation at step ``t`` of every policy's
episode, as robustness comparisons with common random numbers require.

**Modules.** :mod:`.base` (argument checks, space helpers, [0, 1] scaling, the :class:`~.base.Seeded` mixin),
:mod:`.observation` (observation wrappers and :func:`gaussian_blur`), :mod:`.action_time` (action and time
wrappers), :mod:`.dynamics` (:class:`MujocoParams`, :class:`DynamicsPerturbation`), :mod:`.registry`
(:data:`PERTURBATIONS`, spec parsing, :func:`apply_perturbations`). Import the public
names from this package.

May import: numpy, scipy, gymnasium, mujoco and the standard library; never torch.
"""

from ncp_control.envs.perturbations.action_time import ActionDelay, ActionNoise, IrregularTime
from ncp_control.envs.perturbations.dynamics import DynamicsPerturbation, MujocoParams
from ncp_control.envs.perturbations.observation import (
    BrightnessShift,
    FrozenSensor,
    GaussianBlur,
    ObservationNoise,
    Occlusion,
    PixelNoise,
    SensorDropout,
    gaussian_blur,
)
from ncp_control.envs.perturbations.registry import (
    PERTURBATIONS,
    PerturbationInfo,
    PerturbationSpec,
    apply_perturbations,
    make_perturbation,
    parse_spec,
    parse_sweep,
)

__all__ = [
    "ObservationNoise",
    "PixelNoise",
    "SensorDropout",
    "FrozenSensor",
    "Occlusion",
    "BrightnessShift",
    "GaussianBlur",
    "ActionNoise",
    "ActionDelay",
    "IrregularTime",
    "DynamicsPerturbation",
    "MujocoParams",
    "PerturbationInfo",
    "PerturbationSpec",
    "PERTURBATIONS",
    "parse_spec",
    "parse_sweep",
    "make_perturbation",
    "apply_perturbations",
    "gaussian_blur",
]
