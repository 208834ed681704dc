"""INTERIM stand-in for ``ncp_control.policies.core`` (owned by the PPO work) until it lands on main.

Implements the agreed ``make_core`` / ``RecurrentCore`` contract on top of ``ncps.torch`` so the imitation code can
be written and tested against the final interface. Delete this file once ``core.py`` is on main.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ncps.torch import LTCCell, WiredCfCCell  # the one private import of the cell library

_MIN_DT = 1e-3  # seconds; an LTC step with dt = 0 divides by zero (FIELD_NOTES padding trap)


class RecurrentCore(nn.Module):
    def __init__(self, kind: str, input_size: int, wiring_or_units, ode_unfolds: int = 6) -> None:
        super().__init__()
        self.kind = kind
        if kind == "ltc":
            self.cell = LTCCell(wiring_or_units, input_size, ode_unfolds=ode_unfolds, implicit_param_constraints=True)
            self.state_size = wiring_or_units.units
            self.output_size = wiring_or_units.output_dim
            self.wiring = wiring_or_units
        elif kind == "cfc":
            self.cell = WiredCfCCell(input_size, wiring_or_units)
            self.state_size = wiring_or_units.units
            self.output_size = wiring_or_units.output_dim
            self.wiring = wiring_or_units
        elif kind == "lstm":
            self.cell = nn.LSTMCell(input_size, int(wiring_or_units))
            self.state_size = 2 * int(wiring_or_units)
            self.output_size = int(wiring_or_units)
            self.wiring = None
        else:
            raise ValueError(f"kind must be 'ltc', 'cfc' or 'lstm', got {kind!r}")

    def initial_state(self, batch_size: int, device=None) -> torch.Tensor:
        return torch.zeros(batch_size, self.state_size, device=device)

    def step(self, x: torch.Tensor, state: torch.Tensor, dt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dt = dt.clamp_min(_MIN_DT).reshape(-1, 1)
        if self.kind == "ltc":
            return self.cell(x, state, dt)
        if self.kind == "cfc":
            return self.cell(x, state, dt)
        h, c = state.chunk(2, dim=1)
        h, c = self.cell(x, (h, c))
        return h, torch.cat([h, c], dim=1)

    def sequence(self, x, state, dt, episode_starts):
        outputs = []
        starts = episode_starts.to(x.dtype)
        for t in range(x.shape[1]):
            state = state * (1.0 - starts[:, t : t + 1])
            out, state = self.step(x[:, t], state, dt[:, t])
            outputs.append(out)
        return torch.stack(outputs, dim=1), state


def make_core(kind: Literal["ltc", "cfc", "lstm"], input_size: int, wiring_or_units, *, ode_unfolds: int = 6):
    return RecurrentCore(kind, input_size, wiring_or_units, ode_unfolds)
