"""Recurrent cores: one interface over LTC, CfC and LSTM cells with a flat per-sample state.

PPO policies, imitation models and inspection tools all drive a recurrent network the same way: one step at a
time while acting (carrying the state between environment steps) and over whole sequences while training
(resetting the state where an episode starts). :class:`RecurrentCore` is that interface; :func:`make_core` builds
one for a cell kind.

Conventions shared by every core:

- The state of one sample is a flat vector of ``state_size`` floats, so that it can be stored in rollout buffers
  and passed through ``predict`` like any other array. An LSTM's ``(h, c)`` is packed as ``cat([h, c])``.
- Elapsed time ``dt`` is in seconds, one value per sample and step. It is clamped below at ``min_elapsed_time``
  (default 1e-3 s) before it reaches the cell: padded steps of a recurrent rollout buffer carry ``dt = 0``, and an
  LTC step divides by ``dt`` (``cm / dt``), which turns the whole minibatch's gradients into NaN even though the
  padded steps are masked out of the loss. The LSTM core ignores ``dt``.
- ``sequence`` zeroes the state *before* step ``t`` wherever ``episode_starts[:, t]`` is true; the zeroing is exact
  (``torch.where``), not a multiplication.

Example::

    >>> from ncp_control.policies.core import make_core
    >>> from ncp_control.policies.backend import wirings
    >>> core = make_core("cfc", input_size=8, wiring_or_units=wirings.AutoNCP(19, 2))
    >>> state = core.initial_state(4)                        # (4, 19)
    >>> out, state = core.step(torch.randn(4, 8), state, torch.full((4,), 0.05))
    >>> out.shape                                            # motor neurons
    torch.Size([4, 2])
"""

from __future__ import annotations

import math
from typing import Literal, cast

import torch
from torch import nn

from .. import checks
from ..cells import cfc_fast, ltc_fast
from ..cells.ltc import LTCCell
from .backend import cells, wirings

CoreKind = Literal["ltc", "cfc", "lstm"]
CfCMode = Literal["default", "pure", "no_gate"]
InputMapping = Literal["affine", "linear", "none"]

#: Smallest elapsed time (seconds) a cell ever sees; see the module docstring (padding trap).
DEFAULT_MIN_ELAPSED_TIME = 1e-3


class RecurrentCore(nn.Module):
    """A recurrent cell behind a flat-state interface (abstract; build one with :func:`make_core`).

    Attributes:
        kind: ``"ltc"``, ``"cfc"`` or ``"lstm"``.
        input_size: number of input features F.
        state_size: length S of the flat per-sample state vector.
        output_size: number of outputs O per step (motor neurons for a wired cell, hidden units otherwise).
        min_elapsed_time: lower clamp of ``dt`` in seconds.
    """

    kind: str
    #: ``cell_step`` also accepts dt as a Python number (the same value as the clamped tensor; see ``step``)
    _number_dt = False
    #: ``cell_step`` raises the NaN error itself (saves ``step`` two tensor ops on every call)
    _cell_rejects_nan = False

    def __init__(self, input_size: int, state_size: int, output_size: int, min_elapsed_time: float):
        super().__init__()
        checks.positive_int("input_size", input_size)
        checks.positive_int("state_size", state_size)
        checks.positive_int("output_size", output_size)
        checks.positive_real("min_elapsed_time", min_elapsed_time, hint="seconds")
        self.input_size = int(input_size)
        self.state_size = int(state_size)
        self.output_size = int(output_size)
        self.min_elapsed_time = float(min_elapsed_time)

    # -- the one method a subclass implements -------------------------------------------------------------------
    def cell_step(
        self, x: torch.Tensor, state: torch.Tensor, dt: torch.Tensor | float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance the cell one step, without the checks and the clamp of :meth:`step` (which calls it, as
        :meth:`sequence` does step by step where no fused kernel runs). x: (B, F), state: (B, S), dt: (B, 1)
        already clamped (or, where ``_number_dt`` is set, a number already clamped) -> ((B, O), (B, S))."""
        raise NotImplementedError

    # -- public interface ---------------------------------------------------------------------------------------
    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The state at an episode start: zeros of shape (batch_size, state_size), float32 (or the core's dtype)."""
        checks.positive_int("batch_size", batch_size)
        if device is None:
            device = self._device()
        return torch.zeros(batch_size, self.state_size, device=device, dtype=self._dtype())

    def step(self, x: torch.Tensor, state: torch.Tensor, dt: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        """One step for a batch.

        Args:
            x: inputs, (B, F).
            state: flat states, (B, S).
            dt: elapsed time since the previous step in seconds, (B,) or a scalar for the whole batch.

        Returns:
            ``(output, new_state)`` with output (B, O) and new_state (B, S).
        """
        shape = x.shape
        if len(shape) != 2 or shape[1] != self.input_size:
            raise ValueError(f"x must have shape (B, {self.input_size}), got {tuple(shape)}")
        batch = shape[0]
        if not (isinstance(state, torch.Tensor) and state.shape == (batch, self.state_size)):
            self._check_state(state, batch)  # raises with the details
        if self._number_dt and isinstance(dt, (int, float)):
            number = _clamped_number(dt, self.min_elapsed_time, x.dtype)
            if number is not None:  # the same value the tensor path below gives the cell, without tensor ops
                return self.cell_step(x, state, number)
        dt = self._elapsed_time(dt, (batch,), x, check_nan=not self._cell_rejects_nan)
        return self.cell_step(x, state, dt.unsqueeze(-1))

    def sequence(
        self,
        x: torch.Tensor,
        state: torch.Tensor,
        dt: torch.Tensor | float,
        episode_starts: torch.Tensor,
        *,
        return_states: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """Run over sequences, zeroing the state before every step that starts an episode.

        Args:
            x: inputs, (B, T, F).
            state: states before the first step, (B, S).
            dt: elapsed time in seconds per sample and step, (B, T), or a scalar.
            episode_starts: (B, T) bool or 0/1 floats; where true the state is set to zero *before* that step.
            return_states: also return the state after every step.

        Returns:
            ``(outputs, final_state)`` with outputs (B, T, O) and final_state (B, S); with ``return_states``
            a third item, the states after each step (B, T, S).
        """
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"x must have shape (B, T, {self.input_size}), got {tuple(x.shape)}")
        batch, steps = x.shape[0], x.shape[1]
        self._check_state(state, batch)
        dt = self._elapsed_time(dt, (batch, steps), x)
        if tuple(episode_starts.shape) != (batch, steps):
            raise ValueError(
                f"episode_starts must have shape (B, T) = {(batch, steps)}, got {tuple(episode_starts.shape)}"
            )
        starts = episode_starts.to(device=x.device).bool()
        outputs, states = self._cell_sequence(x, state, dt, starts)
        if return_states:
            return outputs, states[:, -1], states
        return outputs, states[:, -1]

    def _cell_sequence(
        self, x: torch.Tensor, state: torch.Tensor, dt: torch.Tensor, starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Step by step over time. x: (B, T, F), state: (B, S), dt: (B, T) clamped, starts: (B, T) bool ->
        (outputs (B, T, O), states after each step (B, T, S)). Subclasses may fuse the loop."""
        if x.shape[1] == 1:  # one step (acting in an environment): no loop, no stacking
            state = state.masked_fill(starts, 0.0)  # exact reset; (B, 1) broadcast over the state axis
            out, state = self.cell_step(x[:, 0], state, dt)
            return out.unsqueeze(1), state.unsqueeze(1)
        zeros = torch.zeros_like(state)
        outputs, states = [], []
        for t in range(x.shape[1]):
            state = torch.where(starts[:, t, None], zeros, state)  # exact reset, broadcast over the state axis
            out, state = self.cell_step(x[:, t], state, dt[:, t, None])
            outputs.append(out)
            states.append(state)
        return torch.stack(outputs, dim=1), torch.stack(states, dim=1)

    # -- helpers ------------------------------------------------------------------------------------------------
    def _device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def _dtype(self) -> torch.dtype:
        p = next(self.parameters(), None)
        return p.dtype if p is not None else torch.float32

    def _check_state(self, state: torch.Tensor, batch: int) -> None:
        if not isinstance(state, torch.Tensor):
            raise TypeError(f"state must be a torch.Tensor of shape (B, {self.state_size}), got {type(state).__name__}")
        if tuple(state.shape) != (batch, self.state_size):
            raise ValueError(f"state must have shape (B, S) = {(batch, self.state_size)}, got {tuple(state.shape)}")

    def _elapsed_time(
        self, dt: torch.Tensor | float, shape: tuple[int, ...], like: torch.Tensor, check_nan: bool = True
    ) -> torch.Tensor:
        """dt as a tensor of ``shape`` on ``like``'s device/dtype, clamped below at ``min_elapsed_time``.
        ``ValueError`` for NaN unless ``check_nan`` is False (the clamp keeps NaN)."""
        if not isinstance(dt, torch.Tensor) or dt.dtype is not like.dtype or dt.device != like.device:
            dt = torch.as_tensor(dt, dtype=like.dtype, device=like.device)
        if dt.dim() == 0:
            dt = dt.expand(shape)
        elif dt.shape != shape:
            raise ValueError(
                f"dt must be a scalar or have shape {shape} (seconds per sample and step), got {tuple(dt.shape)}"
            )
        dt = dt.clamp_min(self.min_elapsed_time)  # keeps NaN; no -inf is left, so the sum is NaN only for a NaN
        if check_nan and math.isnan(dt.sum().detach()):  # (detached: reading a number from a graph would warn)
            raise ValueError("dt contains NaN; elapsed times must be finite seconds")
        return dt

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, input_size={self.input_size}, state_size={self.state_size}, output_size={self.output_size}"


class LTCCore(RecurrentCore):
    """Liquid time-constant cell (fused semi-implicit Euler, ``ode_unfolds`` steps per call) on a wiring.

    Positivity of conductances and capacitances is by softplus (``implicit_param_constraints=True``), so no
    clipping after optimiser steps is needed. Outputs are the motor neurons through the cell's affine output map.
    State: the membrane potentials of all ``wiring.units`` neurons, in the wiring's neuron order.
    """

    kind = "ltc"

    def __init__(
        self,
        input_size: int,
        wiring,
        *,
        ode_unfolds: int = 6,
        input_mapping: str = "affine",
        min_elapsed_time: float = DEFAULT_MIN_ELAPSED_TIME,
    ):
        checks.positive_int("ode_unfolds", ode_unfolds)
        super().__init__(input_size, wiring.units, wiring.output_dim, min_elapsed_time)
        self.wiring = wiring
        self.cell = cells.LTCCell(
            wiring,
            in_features=input_size,
            ode_unfolds=ode_unfolds,
            input_mapping=cast(InputMapping, input_mapping),  # the cell checks the value
            implicit_param_constraints=True,
        )
        # our cell takes a number as elapsed time and rounds it like a tensor (ncps's cell would not round it)
        self._number_dt = self._cell_rejects_nan = isinstance(self.cell, LTCCell)

    def cell_step(self, x, state, dt):
        try:
            return self.cell(x, state, dt)
        except ValueError as exc:  # our cell rejects NaN times: say it in the core's words
            if self._cell_rejects_nan and isinstance(dt, torch.Tensor) and bool(torch.isnan(dt).any()):
                raise ValueError("dt contains NaN; elapsed times must be finite seconds") from exc
            raise

    def _cell_sequence(self, x, state, dt, starts):
        """The whole sequence in one native call when the fast LTC kernel applies (see ``cells/ltc_fast.py``)."""
        if x.shape[1] == 1 or not ltc_fast.fast_path_available(self.cell, x, state, dt):
            return super()._cell_sequence(x, state, dt, starts)  # one step: the cell call is the fast path
        # time-major views; the kernel takes strides, so nothing is copied
        states, outputs = ltc_fast.ltc_sequence(
            self.cell, x.transpose(0, 1), state, dt.t(), starts.t(), min_dt=cells.MIN_ELAPSED_TIME, batch_major=True
        )
        return outputs.transpose(0, 1), states.transpose(0, 1)


class CfCCore(RecurrentCore):
    """Closed-form continuous-time cell: wired (``WiredCfCCell``, outputs = motor neurons) or dense (``CfCCell``
    with its default 128-unit backbone, outputs = all units). The wired cell's state order is
    [inter, command, motor] (the reverse of LTC's); outputs are the last ``output_size`` state entries.
    """

    kind = "cfc"

    def __init__(
        self,
        input_size: int,
        wiring_or_units,
        *,
        mode: CfCMode = "default",
        min_elapsed_time: float = DEFAULT_MIN_ELAPSED_TIME,
    ):
        checks.choice("mode", mode, CfCMode)
        if _is_wiring(wiring_or_units):
            wiring = wiring_or_units
            cell: cells.WiredCfCCell | cells.CfCCell = cells.WiredCfCCell(input_size, wiring, mode=mode)
            state_size, output_size = wiring.units, wiring.output_dim
        else:
            wiring = None
            state_size = output_size = int(wiring_or_units)
            cell = cells.CfCCell(input_size, state_size, mode=mode)
        super().__init__(input_size, state_size, output_size, min_elapsed_time)
        self.wiring = wiring
        self.cell = cell

    def cell_step(self, x, state, dt):
        return self.cell(x, state, dt)

    def _cell_sequence(self, x, state, dt, starts):
        """The whole sequence in one native call for a wired cell (see ``cells/cfc_fast.py``)."""
        if self.wiring is None or x.shape[1] == 1 or not cfc_fast.fast_path_available(self.cell, x, state, dt):
            return super()._cell_sequence(x, state, dt, starts)  # one step: the cell call is the fast path
        states = cfc_fast.cfc_sequence(self.cell, x.transpose(0, 1), state, dt.t(), starts.t(), batch_major=True)
        states = states.transpose(0, 1)  # (B, T, N), contiguous
        return self.cell.motor_outputs(states), states


class LSTMCore(RecurrentCore):
    """A standard ``torch.nn.LSTMCell``; state = ``cat([h, c])`` (S = 2 * hidden_size), output = h. Ignores dt."""

    kind = "lstm"

    def __init__(self, input_size: int, hidden_size: int, *, min_elapsed_time: float = DEFAULT_MIN_ELAPSED_TIME):
        super().__init__(input_size, 2 * hidden_size, hidden_size, min_elapsed_time)
        self.hidden_size = int(hidden_size)
        self.cell = nn.LSTMCell(input_size, hidden_size)

    def cell_step(self, x, state, dt):
        h, c = state.split(self.hidden_size, dim=1)
        h, c = self.cell(x, (h, c))
        return h, torch.cat([h, c], dim=1)


def make_core(
    kind: CoreKind,
    input_size: int,
    wiring_or_units,
    *,
    ode_unfolds: int | None = None,
    input_mapping: str | None = None,
    mode: CfCMode | None = None,
    min_elapsed_time: float = DEFAULT_MIN_ELAPSED_TIME,
) -> RecurrentCore:
    """Build a :class:`RecurrentCore`.

    Args:
        kind: ``"ltc"``, ``"cfc"`` or ``"lstm"``.
        input_size: number of input features F.
        wiring_or_units: a wiring (``NCP``, ``AutoNCP``, ``FullyConnected``, ...; built here for ``input_size``, so
            pass an unbuilt one or one built for the same size) or an int. For ``"ltc"`` an int n means a
            fully connected wiring of n neurons, all of them outputs; for ``"cfc"`` a dense ``CfCCell`` of n units;
            for ``"lstm"`` the hidden size (an LSTM takes no wiring).
        ode_unfolds: LTC solver steps per call (default 6). Only for ``"ltc"``.
        input_mapping: LTC per-input map before the synapses, ``"affine"`` (default), ``"linear"`` or ``"none"``
            (use ``"none"`` behind a layer that is already affine, such as a conv head's dense output). Only for
            ``"ltc"``.
        mode: CfC variant, ``"default"``, ``"pure"`` or ``"no_gate"`` (default ``"default"``). Only for ``"cfc"``.
        min_elapsed_time: lower clamp of dt in seconds (default 1e-3).

    Raises:
        ValueError: unknown kind or mode, non-positive sizes, an option given for a kind that has no such option.
        TypeError: a wiring for ``"lstm"``, or ``wiring_or_units`` that is neither a wiring nor an int.
    """
    checks.choice("kind", kind, CoreKind)
    checks.positive_int("input_size", input_size)
    is_wiring = _is_wiring(wiring_or_units)
    if not is_wiring:
        checks.positive_int("wiring_or_units", wiring_or_units, hint="or a wiring, e.g. AutoNCP(19, 2)")
    if ode_unfolds is not None and kind != "ltc":
        raise ValueError(f"ode_unfolds applies only to kind='ltc', not {kind!r}")
    if input_mapping is not None and kind != "ltc":
        raise ValueError(f"input_mapping applies only to kind='ltc', not {kind!r}")
    if mode is not None and kind != "cfc":
        raise ValueError(f"mode applies only to kind='cfc', not {kind!r}")
    if kind == "ltc":
        wiring = wiring_or_units if is_wiring else wirings.FullyConnected(wiring_or_units)
        return LTCCore(
            input_size,
            wiring,
            ode_unfolds=6 if ode_unfolds is None else ode_unfolds,
            input_mapping="affine" if input_mapping is None else input_mapping,
            min_elapsed_time=min_elapsed_time,
        )
    if kind == "cfc":
        return CfCCore(
            input_size, wiring_or_units, mode="default" if mode is None else mode, min_elapsed_time=min_elapsed_time
        )
    if is_wiring:
        raise TypeError("kind='lstm' takes a hidden size (int), not a wiring")
    return LSTMCore(input_size, wiring_or_units, min_elapsed_time=min_elapsed_time)


def _clamped_number(dt, min_elapsed_time: float, dtype: torch.dtype) -> float | None:
    """``dt`` clamped below at ``min_elapsed_time``, as a number that a float32/float64 cell rounds to exactly
    ``torch.as_tensor(dt, dtype=dtype).clamp_min(min_elapsed_time)`` (rounding to nearest is monotonic, so
    clamping before or after it gives the same value); None for other dtypes. ``ValueError`` for NaN."""
    if dtype is not torch.float32 and dtype is not torch.float64:
        return None
    value = float(dt)
    if math.isnan(value):
        raise ValueError("dt contains NaN; elapsed times must be finite seconds")
    return min_elapsed_time if value < min_elapsed_time else value


def _is_wiring(obj) -> bool:
    """A wiring object: ours or ncps's (both have the same interface; the cells validate the rest)."""
    return isinstance(obj, wirings.Wiring) or all(
        hasattr(obj, a) for a in ("units", "output_dim", "build", "adjacency_matrix", "sensory_adjacency_matrix")
    )
