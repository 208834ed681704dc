"""How a PPO policy initialises its LTC actor (the cell's own defaults stay ncps's; see ``cells/ltc.py``).

At ncps's initialisation an LTC circuit on AutoNCP(19) barely moves its motor neuron with its input: a motor
potential is a conductance-weighted average of reversal potentials (±1) and leak potentials (±0.2) over three
layers of synapses, so its variation over N(0, 1) observations is a few hundredths, and the cell's output map
starts at weight 1. Adam moves every parameter by about the learning rate per update, so ``output_w`` can grow by
only ~1 over a 100k-step PPO run; the policy gradient reaching the circuit stays small for most of the run.
``scripts/diagnose_ltc_init.py`` prints these quantities (action spread, input-to-action gain, time constants in
environment steps, per-layer spread) for the ncps initialisation and for the choices below. Measured there: the
untrained actor also answers mostly to the *previous* observation (its three layers of ~0.4-0.7-step time
constants delay it), where the CfC actor answers mostly to the current one.

:class:`LTCActorInit` changes only the *initial values* of some LTC parameters after the cell is built; the cell,
its equations and its parameter set are unchanged, so saved models load as before and the cells' parity with ncps
holds.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from .. import checks
from ..cells.ltc import LTCCell

#: Unit steps from a zero state to the resting state when centring the output (see ``_resting_state``).
_SETTLE_STEPS = 50


@dataclass(frozen=True)
class LTCActorInit:
    """Initial values of an LTC actor's parameters that differ from ncps's (``None``: keep ncps's).

    Ranges are of the *effective* (positive, after softplus) values, drawn uniformly; the cell's clock runs in
    units of the environment step (``time_unit`` = ``dt`` by default), so ``cm`` over the total conductance is a
    time constant in environment steps.
    """

    output_gain: float | None = None
    """Initial ``output_w`` of the motor map (ncps: 1). The action mean is ``centre + half_width * output``."""
    gleak: tuple[float, float] | None = None
    """Range of the initial leak conductances (ncps: softplus of U(0.001, 1), i.e. 0.69-1.31)."""
    cm: tuple[float, float] | None = None
    """Range of the initial membrane capacitances (ncps: softplus of U(0.4, 0.6), i.e. 0.91-1.04)."""
    centre_output: bool = False
    """Set ``output_b`` so that the output is 0 (the action the Box centre) at the resting state for the mean
    input (ncps: ``output_b`` = 0, and the resting motor potential times the gain is an action offset)."""

    @classmethod
    def from_spec(cls, spec: Any) -> LTCActorInit:
        """``None`` (the package default, :data:`DEFAULT_LTC_ACTOR_INIT`), ``"ncps"`` (ncps's initialisation)
        or a dict of the fields above (missing fields: ncps's values).

        Raises:
            ValueError: another string, unknown keys, non-positive gain, a range that is not ``[low, high]`` with
                ``0 < low <= high``.
        """
        if spec is None:
            return DEFAULT_LTC_ACTOR_INIT
        if isinstance(spec, LTCActorInit):
            return spec
        if spec == "ncps":
            return NCPS_LTC_ACTOR_INIT
        if not isinstance(spec, dict):
            raise ValueError(f"ltc_init must be None, 'ncps' or a dict with keys {_FIELDS}, got {spec!r}")
        unknown = set(spec) - set(_FIELDS)
        if unknown:
            raise ValueError(f"ltc_init does not take {sorted(unknown)}; allowed keys: {list(_FIELDS)}")
        gain = spec.get("output_gain")
        if gain is not None:
            checks.positive_real("ltc_init.output_gain", gain)
        ranges = {name: _check_range(f"ltc_init.{name}", spec.get(name)) for name in ("gleak", "cm")}
        centre = spec.get("centre_output", False)
        if not isinstance(centre, bool):
            raise ValueError(f"ltc_init.centre_output must be true or false, got {centre!r}")
        return cls(output_gain=None if gain is None else float(gain), centre_output=centre, **ranges)

    def to_spec(self) -> dict[str, Any]:
        """The JSON-friendly dict that :meth:`from_spec` reads back (ranges as lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def apply(
        self, cell: LTCCell, rest_input: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> None:
        """Overwrite the initial values of ``cell``'s parameters in place (a freshly built cell with softplus
        constraints, as the policy builds it).

        Args:
            cell: the actor's LTC cell.
            rest_input: (1, I) the cell's input for the mean observation (needed with ``centre_output``).
            generator: random source of the ranges (default: torch's global one, which SB3 seeds).

        Raises:
            ValueError: the cell does not use softplus constraints (ranges are of softplus values).
        """
        if (self.gleak or self.cm) and not getattr(cell, "_implicit_param_constraints", False):
            raise ValueError("LTCActorInit ranges need a cell with implicit_param_constraints=True (softplus)")
        with torch.no_grad():
            if self.output_gain is not None:
                cell.output_w.fill_(self.output_gain)
            for name in ("gleak", "cm"):
                bounds = getattr(self, name)
                if bounds is not None:
                    param = getattr(cell, name)
                    values = torch.empty_like(param).uniform_(*bounds, generator=generator)
                    param.copy_(_inverse_softplus(values))
            if self.centre_output:
                if rest_input is None:
                    raise ValueError("centre_output needs the cell's input for the mean observation (rest_input)")
                cell.output_b.sub_(cell(rest_input, _resting_state(cell, rest_input))[0].reshape(-1))


def _resting_state(cell: LTCCell, rest_input: torch.Tensor, steps: int = _SETTLE_STEPS) -> torch.Tensor:
    """(1, N) state after ``steps`` unit steps from zero with a constant input (time constants at init are below
    a few steps, so this is the resting state to within rounding)."""
    state = torch.zeros(1, cell.state_size, dtype=rest_input.dtype)
    for _ in range(steps):
        state = cell(rest_input, state, 1.0)[1]
    return state


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """x with softplus(x) = y for y > 0: log(expm1(y)), written stably for large y."""
    return y + torch.log(-torch.expm1(-y))


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_range(name: str, value) -> tuple[float, float] | None:
    if value is None:
        return None
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(_is_number(v) for v in value)
        or not (0 < value[0] <= value[1] < math.inf)
    ):
        raise ValueError(f"{name} must be [low, high] with 0 < low <= high, got {value!r}")
    return float(value[0]), float(value[1])


_FIELDS = tuple(f.name for f in fields(LTCActorInit))

#: ncps's initialisation (nothing overwritten).
NCPS_LTC_ACTOR_INIT = LTCActorInit()

#: What ``NCPActorCriticPolicy(cell="ltc")`` uses unless told otherwise: ncps's initialisation. An output gain of 4
#: (the CfC actor's action spread) learned *slower* on PendulumNoVel-v1 in the runs of docs/ppo.md ("The LTC
#: actor's initialisation"), so no change is the default until one is shown to help across seeds.
DEFAULT_LTC_ACTOR_INIT = NCPS_LTC_ACTOR_INIT
