"""Sequence layers ``LTC`` and ``CfC``: unroll a cell over time (drop-ins for ``ncps.torch.LTC`` / ``CfC``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from .. import checks
from . import cfc_fast, ltc_fast
from ._common import is_wiring, sequence_timespans
from .cfc import CfCCell, Mode
from .lstm import LSTMCell
from .ltc import MIN_ELAPSED_TIME, LTCCell, Mapping
from .wired_cfc import RecurrentConnections, WiredCfCCell

State = Tensor | tuple[Tensor, Tensor]

_grad_enabled = torch.is_grad_enabled
_try_ltc_step = ltc_fast.try_step_no_grad
_try_ltc_layer_step = ltc_fast.try_layer_step_no_grad
_cfc_step = cfc_fast.step_no_grad
_try_cfc_layer_step = cfc_fast.try_layer_step_no_grad

#: Without autograd, batched sequences up to this many steps run as a loop of the cell's no-grad step (the
#: cell's per-step fast path); longer ones take the one-call sequence kernel, whose setup then pays off.
SHORT_SEQUENCE = 8


def _fully_connected(units: int) -> Any:
    """The all-to-all wiring used when a layer is given a number of units."""
    from ..wirings import FullyConnected

    return FullyConnected(units)


class _SequenceLayer(nn.Module):
    """Shared unrolling logic: input/state/elapsed-time shapes, mixed memory, sequence vs last output.

    Subclasses set ``state_size`` and implement ``_unroll``.
    """

    if TYPE_CHECKING:  # pragma: no cover

        @property
        def state_size(self) -> int:
            """N, the state size (a property of ``LTC``, an attribute of ``CfC``)."""

    def __init__(self, input_size: int, return_sequences: bool, batch_first: bool, mixed_memory: bool):
        super().__init__()
        self.input_size = checks.positive_int("input_size", input_size)
        self.return_sequences = bool(return_sequences)
        self.batch_first = bool(batch_first)
        self.use_mixed = bool(mixed_memory)

    def _add_memory(self) -> None:
        if self.use_mixed:
            self.lstm = LSTMCell(self.input_size, self.state_size)

    def _unroll(self, x: Tensor, h: Tensor, c: Tensor | None, dt: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """Run the cell over a time-major sequence.

        Args:
            x: (T, B, I) inputs; h: (B, N) state; c: (B, N) LSTM memory or None; dt: (T, B, 1) elapsed times.
        Returns:
            ``(readout, h, c)`` with readout (T, B, O) if ``return_sequences`` else (B, O).
        """
        raise NotImplementedError

    def _cell_step_no_grad(self, x: Tensor, h: Tensor, dt: Any) -> tuple[Tensor, Tensor]:
        """One no-grad cell step ``x`` (B, I), ``h`` (B, N), ``dt`` a number or (B, 1) -> (readout (B, O), h)."""
        raise NotImplementedError

    def _online_step(self, input: Any, hx: Tensor, timespans: Any) -> tuple[Tensor, Tensor] | None:
        """``forward`` for the online call ``y, h = layer(x[:, None], h)`` (no autograd, a number or no elapsed
        time) straight on the cell's step tables, once the first call built them; None where it does not apply."""
        return None

    def _short_no_grad(self, input: Any, hx: Any, timespans: Any) -> tuple[Tensor, Tensor] | None:
        """``forward`` for a short batched sequence (T <= ``SHORT_SEQUENCE``) without autograd, as a loop of the
        cell's own no-grad step (the layer's T = 1 call, ``y, h = ltc(x[:, None], h)``, costs what the cell's step
        costs); None where this does not apply (the general path then checks and runs everything). Written for
        call overhead: this is every step of a policy that uses the layer online."""
        sizes = self._short_sizes or self._cache_short_sizes()  # (I, N)
        shape = input.shape if isinstance(input, Tensor) else ()
        if len(shape) != 3 or shape[2] != sizes[0]:
            return None
        batch_first = self.batch_first
        batch, steps = (shape[0], shape[1]) if batch_first else (shape[1], shape[0])
        if hx is None:
            h = input.new_zeros(batch, sizes[1])
        elif isinstance(hx, Tensor) and hx.shape == (batch, sizes[1]) and hx.dtype is input.dtype:
            h = hx
        else:
            return None
        if timespans is None:
            dt: Any = 1.0
        elif isinstance(timespans, (int, float)) and not isinstance(timespans, bool):
            dt = float(timespans)
        else:
            dt = None
        time_axis = 1 if batch_first else 0
        if steps == 1 and dt is not None:  # the online call; dropping the size-1 time axis is always a view
            out, h = self._cell_step_no_grad(input.view(batch, sizes[0]), h, dt)
            return (out.unsqueeze(time_axis) if self.return_sequences else out), h
        if not 0 < steps <= SHORT_SEQUENCE:
            return None
        times = sequence_timespans(timespans, steps, batch, batch_first, True, input) if dt is None else None
        outputs = []
        for t in range(steps):
            out, h = self._cell_step_no_grad(input.select(time_axis, t), h, dt if times is None else times[t])
            outputs.append(out)
        if not self.return_sequences:
            return outputs[-1], h
        return torch.stack(outputs, dim=time_axis), h

    _short_sizes: tuple[int, int] | None = None  # (I, N), cached on the first short call

    def _cache_short_sizes(self) -> tuple[int, int]:
        self._short_sizes = (self.input_size, self.state_size)
        return self._short_sizes

    def _check_state(self, t: Tensor, name: str, batch: int, batched: bool) -> Tensor:
        expected = (batch, self.state_size) if batched else (self.state_size,)
        if not isinstance(t, Tensor) or tuple(t.shape) != expected:
            got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{name} must have shape {expected} for this input, got {got}")
        return t if batched else t.unsqueeze(0)

    def forward(
        self, input: Tensor, hx: State | None = None, timespans: float | Tensor | None = None
    ) -> tuple[Tensor, State]:
        """Run over a sequence.

        Args:
            input: (B, T, I) if ``batch_first`` else (T, B, I); or (T, I) unbatched. Values are not checked
                (a NaN propagates, as in any torch layer).
            hx: initial state (B, N) (or (N,) unbatched); with ``mixed_memory`` a pair ``(h, c)`` of such
                tensors. None starts from zeros.
            timespans: elapsed time of each step: None (1.0), a number, or per sample and step with shape
                (B, T) / (B, T, 1) if ``batch_first`` else (T, B) / (T, B, 1); (T,) / (T, 1) unbatched.
                Must be >= 0 and not NaN (``ValueError`` otherwise, checked once per call); LTC raises values
                below ``MIN_ELAPSED_TIME`` to it, so zero-length padded steps carry the state over instead of
                giving NaN.
        Returns:
            ``(output, hx)``: output (B, T, O) / (T, B, O) / (T, O) if ``return_sequences`` else (B, O) / (O,);
            hx the final state in the form it was given.
        """
        if not _grad_enabled() and not self.use_mixed:  # stepping online: the cell's fast step
            result = (
                self._online_step(input, hx, timespans)
                if hx.__class__ is Tensor and input.__class__ is Tensor
                else None
            )
            if result is None:
                result = self._short_no_grad(input, hx, timespans)
            if result is not None:
                return result
        if not isinstance(input, Tensor) or input.dim() not in (2, 3) or input.shape[-1] != self.input_size:
            shape = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
            layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
            raise ValueError(f"input must have shape {layout} or (T, I) with I={self.input_size}, got {shape}")
        batched = input.dim() == 3
        if batched:
            x = input.transpose(0, 1) if self.batch_first else input  # (T, B, I)
        else:
            x = input.unsqueeze(1)  # (T, 1, I)
        seq_len, batch = x.shape[0], x.shape[1]
        if seq_len == 0:
            raise ValueError("input has no time steps (T = 0)")
        dt = sequence_timespans(timespans, seq_len, batch, self.batch_first, batched, x)

        if hx is None:
            h = x.new_zeros(batch, self.state_size)
            c = x.new_zeros(batch, self.state_size) if self.use_mixed else None
        elif self.use_mixed:
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise TypeError("with mixed_memory=True, hx must be a pair (h, c) of state tensors")
            h = self._check_state(hx[0], "hx[0]", batch, batched)
            c = self._check_state(hx[1], "hx[1]", batch, batched)
        else:
            if not isinstance(hx, Tensor):
                raise TypeError("with mixed_memory=False, hx must be a tensor")
            h, c = self._check_state(hx, "hx", batch, batched), None

        readout, h, c = self._unroll(x, h, c, dt)

        if batched:
            if self.return_sequences and self.batch_first:
                readout = readout.transpose(0, 1)
        else:
            readout = readout[:, 0] if self.return_sequences else readout[0]
            h = h[0]
            c = c[0] if c is not None else None
        if not self.use_mixed:
            return readout, h
        if c is None:  # _unroll carries the LSTM memory whenever use_mixed
            raise RuntimeError("mixed-memory layer returned no LSTM memory state")
        return readout, (h, c)


class LTC(_SequenceLayer):
    """A liquid time-constant RNN: ``LTCCell`` unrolled over a sequence (drop-in for ``ncps.torch.LTC``).

    Same arguments, defaults, parameter names (``rnn_cell.*``, ``lstm.*``) and outputs as ncps 1.0.1, so
    ``LTC(...).load_state_dict(ncps_ltc.state_dict())`` works when both use the same wiring. Differences:
    per-sample ``timespans`` work for every batch size (ncps #81-#83), zero elapsed time does not give NaN,
    invalid options and shapes raise, masks are buffers checked on load.

    Args:
        input_size: I, number of input features.
        units: a wiring (e.g. ``AutoNCP(19, 1)``), or an int N for a fully connected wiring of N neurons whose
            outputs are all N neurons.
        return_sequences: return the output of every step (else only the last).
        batch_first: inputs are (B, T, I) (else (T, B, I)).
        mixed_memory: run an LSTM memory cell before each LTC step (state becomes a pair ``(h, c)``).
        input_mapping: ``"affine"``, ``"linear"`` or ``"none"`` (see ``LTCCell``).
        output_mapping: ``"affine"``, ``"linear"`` or ``"none"`` (see ``LTCCell``).
        ode_unfolds: solver sub-steps per time step.
        epsilon: added to the solver's denominator.
        implicit_param_constraints: softplus positivity (default here, unlike the bare cell); False needs
            ``apply_weight_constraints()`` after every optimiser step.

    Example::

        rnn = LTC(20, AutoNCP(19, 1))
        y, h = rnn(torch.randn(8, 16, 20))          # y: (8, 16, 1), h: (8, 19)
    """

    def __init__(
        self,
        input_size: int,
        units: Any,
        return_sequences: bool = True,
        batch_first: bool = True,
        mixed_memory: bool = False,
        input_mapping: Mapping = "affine",
        output_mapping: Mapping = "affine",
        ode_unfolds: int = 6,
        epsilon: float = 1e-8,
        implicit_param_constraints: bool = True,
    ):
        super().__init__(input_size, return_sequences, batch_first, mixed_memory)
        self.wiring_or_units = units
        if is_wiring(units):
            wiring = units
        else:
            wiring = _fully_connected(checks.positive_int("units", units))
        self._wiring = wiring
        self.rnn_cell = LTCCell(
            wiring=wiring,
            in_features=input_size,
            input_mapping=input_mapping,
            output_mapping=output_mapping,
            ode_unfolds=ode_unfolds,
            epsilon=epsilon,
            implicit_param_constraints=implicit_param_constraints,
        )
        self._add_memory()

    @property
    def wiring(self) -> Any:
        return self._wiring

    @property
    def state_size(self) -> int:
        return self.rnn_cell.state_size

    @property
    def sensory_size(self) -> int:
        return self.rnn_cell.sensory_size

    @property
    def motor_size(self) -> int:
        return self.rnn_cell.motor_size

    @property
    def output_size(self) -> int:
        return self.rnn_cell.motor_size

    @property
    def synapse_count(self) -> int:
        return self.rnn_cell.synapse_count

    @property
    def sensory_synapse_count(self) -> int:
        return self.rnn_cell.sensory_synapse_count

    def apply_weight_constraints(self) -> None:
        """See ``LTCCell.apply_weight_constraints`` (needed only with ``implicit_param_constraints=False``)."""
        self.rnn_cell.apply_weight_constraints()

    def _online_step(self, input: Any, hx: Tensor, timespans: Any) -> tuple[Tensor, Tensor] | None:
        cell: LTCCell = self._modules["rnn_cell"]  # type: ignore[assignment]  # set in __init__
        return _try_ltc_layer_step(
            cell,
            input,
            hx,
            1.0 if timespans is None else timespans,
            MIN_ELAPSED_TIME,
            self.batch_first,
            self.return_sequences,
        )

    def _cell_step_no_grad(self, x: Tensor, h: Tensor, dt: Any) -> tuple[Tensor, Tensor]:
        cell: LTCCell = self._modules["rnn_cell"]  # type: ignore[assignment]  # set in __init__
        result = _try_ltc_step(cell, x, h, dt, MIN_ELAPSED_TIME)
        return result if result is not None else cell(x, h, dt)  # builds the step tables, or explains

    def _unroll(self, x: Tensor, h: Tensor, c: Tensor | None, dt: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        cell = self.rnn_cell
        if ltc_fast.fast_path_available(cell, x, h, dt):
            return self._unroll_fast(x, h, c, dt)
        consts = cell.constants()
        # The sensory synapses do not depend on the state: evaluate them for all steps at once.
        numerator, denominator = cell.sensory_drive(cell.map_inputs(x), consts)  # (T, B, N) each
        states = []
        for t in range(x.shape[0]):
            if self.use_mixed:
                h, c = self.lstm(x[t], (h, c))
            h = cell.solve(h, (numerator[t], denominator[t]), dt[t], consts)
            if self.return_sequences:
                states.append(h)
        readout = cell.map_outputs(torch.stack(states) if self.return_sequences else h)
        return readout, h, c

    def _unroll_fast(self, x: Tensor, h: Tensor, c: Tensor | None, dt: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """``_unroll`` with the native kernel: the whole sequence in one call (one call per step with an LSTM)."""
        cell, times = self.rnn_cell, dt[..., 0]  # (T, B)
        if not self.use_mixed:
            states, outputs = ltc_fast.ltc_sequence(
                cell, x, h, times, min_dt=MIN_ELAPSED_TIME, batch_major=self.batch_first
            )
            return (outputs if self.return_sequences else outputs[-1]), states[-1], c
        outs = []
        for t in range(x.shape[0]):
            h, c = self.lstm(x[t], (h, c))
            states, outputs = ltc_fast.ltc_sequence(cell, x[t : t + 1], h, times[t : t + 1], min_dt=MIN_ELAPSED_TIME)
            h = states[0]
            outs.append(outputs[0])
        return (torch.stack(outs) if self.return_sequences else outs[-1]), h, c


class CfC(_SequenceLayer):
    """A closed-form continuous-time RNN (drop-in for ``ncps.torch.CfC``).

    Same arguments, defaults, parameter names (``rnn_cell.*``, ``lstm.*``, ``fc.*``) and outputs as ncps 1.0.1.
    Differences: per-sample ``timespans`` work for every batch size; options and shapes are validated; masks are
    buffers checked on load; with a single-layer wiring whose ``output_dim`` is smaller than its units (e.g.
    ``FullyConnected(8, output_dim=2)``) the output is the motor neurons (ncps returns all units, contradicting
    its own ``output_size``); ``recurrent_connections`` (keyword only) selects the wired recurrence.

    Args:
        input_size: I, number of input features.
        units: an int H (a dense CfC with a backbone MLP; output = the H units) or a wiring (``WiredCfCCell``;
            output = the wiring's motor neurons; no backbone).
        proj_size: if given, a linear layer maps the output to this size.
        return_sequences: return the output of every step (else only the last).
        batch_first: inputs are (B, T, I) (else (T, B, I)).
        mixed_memory: run an LSTM memory cell before each CfC step (state becomes a pair ``(h, c)``).
        mode: ``"default"``, ``"pure"`` or ``"no_gate"`` (see ``cfc.py``).
        activation: backbone activation, one of ``ACTIVATIONS`` (dense mode only).
        backbone_units: backbone MLP width (default 128; dense mode only, a ``ValueError`` with a wiring).
        backbone_layers: backbone MLP depth (default 1; dense mode only, a ``ValueError`` with a wiring).
        backbone_dropout: backbone dropout (default 0.0; dense mode only, a ``ValueError`` with a wiring).
        recurrent_connections: wired mode only: ``"dense"`` (ncps: all-to-all within each layer) or
            ``"wiring"`` (follow the wiring's synapses), see ``WiredCfCCell``.
    """

    state_size: int  # H, or the wiring's units

    def __init__(
        self,
        input_size: int,
        units: Any,
        proj_size: int | None = None,
        return_sequences: bool = True,
        batch_first: bool = True,
        mixed_memory: bool = False,
        mode: Mode = "default",
        activation: str = "lecun_tanh",
        backbone_units: int | None = None,
        backbone_layers: int | None = None,
        backbone_dropout: float | None = None,
        *,
        recurrent_connections: RecurrentConnections = "dense",
    ):
        super().__init__(input_size, return_sequences, batch_first, mixed_memory)
        self.wiring_or_units = units
        self.proj_size = proj_size
        if is_wiring(units):
            for name, value in (
                ("backbone_units", backbone_units),
                ("backbone_layers", backbone_layers),
                ("backbone_dropout", backbone_dropout),
            ):
                if value is not None:
                    raise ValueError(f"{name} applies to dense CfC only; a wired CfC (units=<wiring>) has no backbone")
            if activation != "lecun_tanh":
                raise ValueError("activation applies to the backbone of a dense CfC only; a wired CfC has none")
            self.wiring = units
            self.rnn_cell: CfCCell | WiredCfCCell = WiredCfCCell(
                input_size, units, mode, recurrent_connections=recurrent_connections
            )
            self.state_size = self.rnn_cell.state_size
            self.output_size = self.rnn_cell.motor_size
        else:
            if recurrent_connections != "dense":
                raise ValueError("recurrent_connections applies to a wired CfC only (units=<wiring>)")
            self.wiring = None
            self.state_size = checks.positive_int("units", units)
            self.output_size = self.state_size
            self.rnn_cell = CfCCell(
                input_size,
                self.state_size,
                mode,
                activation,
                128 if backbone_units is None else backbone_units,
                1 if backbone_layers is None else backbone_layers,
                0.0 if backbone_dropout is None else backbone_dropout,
            )
        self._add_memory()
        if proj_size is None:
            self.fc: nn.Module = nn.Identity()
        else:
            self.fc = nn.Linear(self.output_size, checks.positive_int("proj_size", proj_size))

    def _online_step(self, input: Any, hx: Tensor, timespans: Any) -> tuple[Tensor, Tensor] | None:
        cell: CfCCell | WiredCfCCell = self._modules["rnn_cell"]  # type: ignore[assignment]  # set in __init__
        if cell.__class__ is not WiredCfCCell:
            return None
        result = _try_cfc_layer_step(
            cell, input, hx, 1.0 if timespans is None else timespans, self.batch_first, self.return_sequences
        )
        if result is None or self.proj_size is None:
            return result
        return self.fc(result[0]), result[1]

    def _cell_step_no_grad(self, x: Tensor, h: Tensor, dt: Any) -> tuple[Tensor, Tensor]:
        cell: CfCCell | WiredCfCCell = self._modules["rnn_cell"]  # type: ignore[assignment]  # set in __init__
        if isinstance(cell, WiredCfCCell):
            new_h = _cfc_step(cell, x, h, dt, build=False)
            out, new_h = (cell.motor_outputs(new_h), new_h) if new_h is not None else cell(x, h, dt)
        else:
            out = new_h = cell(x, h, dt)[1]
        return (out if self.proj_size is None else self.fc(out)), new_h

    def _unroll(self, x: Tensor, h: Tensor, c: Tensor | None, dt: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        cell = self.rnn_cell
        if isinstance(cell, WiredCfCCell) and cfc_fast.fast_path_available(cell, x, h, dt):
            return self._unroll_fast(cell, x, h, c, dt)
        states = []
        for t in range(x.shape[0]):
            if self.use_mixed:
                h, c = self.lstm(x[t], (h, c))
            h = cell.step(x[t], h, dt[t])
            if self.return_sequences:
                states.append(h)
        out = torch.stack(states) if self.return_sequences else h
        if isinstance(cell, WiredCfCCell):
            out = cell.motor_outputs(out)
        return self.fc(out), h, c

    def _unroll_fast(
        self, cell: WiredCfCCell, x: Tensor, h: Tensor, c: Tensor | None, dt: Tensor
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """``_unroll`` for a wired cell (``self.rnn_cell``) with the native kernel: one call per sequence (per step
        with an LSTM)."""
        times = dt[..., 0]  # (T, B)
        if not self.use_mixed:
            states = cfc_fast.cfc_sequence(cell, x, h, times, batch_major=self.batch_first)
            h = states[-1]
        else:
            steps = []
            for t in range(x.shape[0]):
                h, c = self.lstm(x[t], (h, c))
                h = cfc_fast.cfc_sequence(cell, x[t : t + 1], h, times[t : t + 1])[0]
                steps.append(h)
            states = torch.stack(steps)
        out = cell.motor_outputs(states if self.return_sequences else h)
        return self.fc(out), h, c
