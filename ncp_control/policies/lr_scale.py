"""Per-parameter-group learning-rate multipliers that survive SB3's learning-rate schedule.

SB3 sets every parameter group's ``lr`` to the schedule's value before each update
(``stable_baselines3.common.utils.update_learning_rate``), so a group cannot simply be given its own ``lr``.
Instead a group carries ``lr_scale`` and :func:`scaled_optimizer_class` makes a subclass of the optimizer whose
``step`` multiplies each group's ``lr`` by it for the duration of the step. Under Adam, whose step is about ``lr``
per parameter whatever the gradient's size, this is what a parameter of ``lr_scale`` times the size would get:
the LTC cell's parameters (sigmoid slopes of 3-8, reversal potentials of ±1, capacitances, ...) need steps about
ten times larger than a 1e-3 policy learning rate gives (ncps trains LTCs at 1e-2) while the MLPs around them
learn best at the usual rate.
"""

from __future__ import annotations

from typing import Any

import torch

from .. import checks

LR_SCALE_KEY = "lr_scale"

_CLASSES: dict[type, type] = {}


def check_lr_scale(name: str, value: Any) -> float:
    """``value`` as a positive finite float (:func:`ncp_control.checks.positive_real`)."""
    return checks.positive_real(name, value, hint="a multiplier of the learning rate")


def scaled_optimizer_class(base: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """A subclass of ``base`` whose ``step`` uses ``lr * group["lr_scale"]`` for groups that set ``lr_scale``.

    The ``lr`` stored in each group stays the schedule's value (what SB3 writes and logs); the state dict carries
    ``lr_scale`` with the groups, so a saved optimizer loads with its scales. One class per ``base`` (cached).
    """
    if not (isinstance(base, type) and issubclass(base, torch.optim.Optimizer)):
        raise TypeError(f"optimizer_class must be a torch.optim.Optimizer subclass, got {base!r}")
    if getattr(base, "_scales_lr", False):
        return base
    cls = _CLASSES.get(base)
    if cls is None:

        def step(self, closure=None):
            saved = [group["lr"] for group in self.param_groups]
            for group in self.param_groups:
                scale = group.get(LR_SCALE_KEY, 1.0)
                if scale != 1.0:
                    group["lr"] = group["lr"] * scale
            try:
                return base.step(self, closure)
            finally:
                for group, lr in zip(self.param_groups, saved):
                    group["lr"] = lr

        cls = type(
            f"LRScaled{base.__name__}",
            (base,),
            {
                "step": step,
                "_scales_lr": True,
                "__module__": __name__,
                "__doc__": f"{base.__name__} with per-group lr_scale.",
            },
        )
        _CLASSES[base] = cls
    return cls
