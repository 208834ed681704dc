"""Names that run folders written before the single ``ncp_control`` namespace (versions up to 0.1) may hold.

Up to 0.1 the distribution installed top-level ``agents`` and ``envs`` packages, and a run's ``config.json``
could name them: an env id ``"envs:LaneKeeping-v0"``, an expert ``"agents.experts:PurePursuitExpert"``.
They now live under :mod:`ncp_control.agents` and :mod:`ncp_control.envs`. :func:`current_name` rewrites such a
name to today's, as text (nothing is imported here), so that an old run folder loads as it did and a top-level
``agents`` or ``envs`` package of another distribution is never imported in our place.
"""

from __future__ import annotations

__all__ = ["LEGACY_MODULES", "current_module", "current_name"]

#: Module names of versions up to 0.1 that a run folder, a study spec or a user's ``--env``/``--expert`` may
#: name, and where that code lives now.
LEGACY_MODULES: dict[str, str] = {
    "envs": "ncp_control.envs",
    "envs.lane_keeping": "ncp_control.envs.lane_keeping.camera",
    "envs.lane_keeping_state": "ncp_control.envs.lane_keeping.state",
    "envs.lane_world": "ncp_control.envs.lane_keeping.world",
    "envs.memory": "ncp_control.envs.masked_velocity",
    "envs.perturbations": "ncp_control.envs.perturbations",
    "agents.experts": "ncp_control.agents.imitation.experts",
}


def current_module(module: str) -> str:
    """``module`` itself, or today's name when it is one of :data:`LEGACY_MODULES`."""
    return LEGACY_MODULES.get(module, module)


def current_name(name: str) -> str:
    """``"module:Name"`` with a legacy module renamed (``"envs:LaneKeeping-v0"`` -> ``"ncp_control.envs:..."``);
    a plain id or name without ``":"`` is returned unchanged."""
    module, sep, rest = name.partition(":")
    if not sep:
        return name
    return f"{current_module(module)}:{rest}"
