"""CfC on a layered wiring (e.g. NCP: inter -> command -> motor), one ``CfCCell`` per layer."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from .. import checks
from . import cfc_fast
from ._common import build_wiring, cell_elapsed_time
from .cfc import CfCCell, Mode

RecurrentConnections = Literal["dense", "wiring"]


class WiredCfCCell(nn.Module):
    """A CfC whose units and connections come from a wiring: one CfC layer per wiring layer.

    Layer ``l`` holds the neurons ``wiring.get_neurons_of_layer(l)`` (for NCP: inter, command, motor) and reads
    the previous layer's new state (layer 0 reads the inputs) through the wiring's synapses. The state
    concatenates the layers in that order, ``[inter, command, motor]`` for NCP (the reverse of LTC's neuron
    order); the output is the motor neurons' state.

    ``recurrent_connections`` chooses how a layer reads its own previous state:

    - ``"dense"`` (default; ncps's behaviour, numerically identical to ``ncps.torch.WiredCfCCell``): the heads
      ``ff1``/``ff2`` read the previous layer through the wiring's synapses but every unit of the layer reads
      every unit of the same layer (all-to-all recurrence, ncps issue #53), and the time gates
      ``time_a``/``time_b`` read all inputs and all units of the layer, unmasked.
    - ``"wiring"``: every head, time gates included, reads only the unit's presynaptic neurons in the wiring:
      its synapses from the previous layer (or the inputs) and its recurrent synapses within the layer (for NCP:
      the command layer's ``recurrent_command_synapses``; inter and motor neurons have none, so their new state
      depends on the current inputs only).

    Args:
        input_size: I, number of input features (the wiring is built with it), or None if already built.
        wiring: a wiring (``ncp_control.wirings`` or ``ncps.wirings``).
        mode: CfC mode of every layer: ``"default"``, ``"pure"`` or ``"no_gate"``.
        recurrent_connections: ``"dense"`` or ``"wiring"``, see above.

    Shapes: ``forward(input (B, I), hx (B, N), timespans) -> (output (B, M), state (B, N))``; unbatched
    ``(I,)``/``(N,)`` also accepted.

    Speed: on the CPU in float32/float64 the step runs in a compiled kernel (``cfc_fast.py``) with the same
    numbers as the torch code; elsewhere the torch code runs.
    """

    _has_fast_path = True  # read by cfc_fast.fast_path_available
    _motor_index: Tensor | None  # buffer: motor positions in the state, when they are not one slice

    def __init__(
        self,
        input_size: int | None,
        wiring: Any,
        mode: Mode = "default",
        *,
        recurrent_connections: RecurrentConnections = "dense",
    ):
        super().__init__()
        self._wiring = build_wiring(wiring, input_size, "input_size")
        self.recurrent_connections = checks.choice("recurrent_connections", recurrent_connections, ("dense", "wiring"))
        adjacency = np.asarray(self._wiring.adjacency_matrix)
        self._layer_neurons = [list(self._wiring.get_neurons_of_layer(l)) for l in range(self._wiring.num_layers)]
        self._layers: list[CfCCell] = []
        in_features = int(self._wiring.input_dim)
        for l, neurons in enumerate(self._layer_neurons):
            if l == 0:
                feedforward = np.asarray(self._wiring.sensory_adjacency_matrix)[:, neurons]
            else:
                feedforward = adjacency[np.ix_(self._layer_neurons[l - 1], neurons)]
            recurrent: np.ndarray  # declared wide: numpy's stubs type the two branches' shapes differently
            if self.recurrent_connections == "dense":
                recurrent = np.ones((len(neurons), len(neurons)))
            else:
                recurrent = adjacency[np.ix_(neurons, neurons)]
            cell = CfCCell(
                in_features,
                len(neurons),
                mode,
                backbone_activation="lecun_tanh",
                backbone_units=0,
                backbone_layers=0,
                backbone_dropout=0.0,
                sparsity_mask=np.concatenate([feedforward, recurrent], axis=0),  # (in + H, H) [source, unit]
                mask_time_gates=self.recurrent_connections == "wiring",
            )
            self.register_module(f"layer_{l}", cell)
            self._layers.append(cell)
            in_features = len(neurons)
        # Positions of the motor neurons (ids [0, M)) in the state, in id order.
        order = [n for neurons in self._layer_neurons for n in neurons]
        position = {n: p for p, n in enumerate(order)}
        motor_positions = [position[n] for n in range(self.motor_size)]
        start = motor_positions[0]
        if motor_positions == list(range(start, start + len(motor_positions))):
            self._motor_slice: slice | None = slice(start, start + len(motor_positions))
            self.register_buffer("_motor_index", None)
        else:  # not contiguous: gather
            self._motor_slice = None
            self.register_buffer("_motor_index", torch.as_tensor(motor_positions), persistent=False)

    @property
    def wiring(self) -> Any:
        return self._wiring

    @property
    def state_size(self) -> int:
        """N, number of neurons (the state width)."""
        return int(self._wiring.units)

    @property
    def layer_sizes(self) -> list[int]:
        """Number of units of each layer, in state order."""
        return [len(n) for n in self._layer_neurons]

    @property
    def layer_cells(self) -> list[CfCCell]:
        """The per-layer ``CfCCell`` s, in state order."""
        return list(self._layers)

    @property
    def state_neuron_ids(self) -> list[int]:
        """Wiring neuron id of each state position (e.g. NCP: inter ids, then command, then motor)."""
        return [n for neurons in self._layer_neurons for n in neurons]

    @property
    def num_layers(self) -> int:
        return len(self._layers)

    @property
    def sensory_size(self) -> int:
        return int(self._wiring.input_dim)

    @property
    def motor_size(self) -> int:
        return int(self._wiring.output_dim)

    output_size = motor_size

    @property
    def synapse_count(self) -> int:
        """Number of synapses between neurons in the wiring."""
        return int(np.abs(np.asarray(self._wiring.adjacency_matrix)).sum())

    @property
    def sensory_synapse_count(self) -> int:
        """Number of synapses from inputs to neurons in the wiring."""
        return int(np.abs(np.asarray(self._wiring.sensory_adjacency_matrix)).sum())

    def motor_outputs(self, state: Tensor) -> Tensor:
        """Motor neurons' values (..., M), in id order, from a state (..., N)."""
        if self._motor_slice is not None:
            return state[..., self._motor_slice]
        index = self._motor_index  # a tensor whenever there is no slice
        if index is None:
            raise RuntimeError("WiredCfCCell has neither a motor slice nor a motor index")
        return state.index_select(-1, index)

    def step(self, input: Tensor, hx: Tensor, ts: Tensor) -> Tensor:
        """One update without argument checks: ``input`` (B, I), ``hx`` (B, N), ``ts`` (B, 1) -> new (B, N)."""
        states = torch.split(hx, self.layer_sizes, dim=1)
        x, new = input, []
        for cell, h in zip(self._layers, states):
            x = cell.step(x, h, ts)
            new.append(x)
        return torch.cat(new, dim=1)

    def forward(self, input: Tensor, hx: Tensor, timespans: float | Tensor = 1.0) -> tuple[Tensor, Tensor]:
        """One step.

        Args:
            input: (B, I), or (I,) unbatched.
            hx: (B, N) state in layer order, or (N,) unbatched.
            timespans: elapsed time: a number, or a tensor of shape (B,) or (B, 1); must be >= 0.
        Returns:
            ``(output, state)``: (B, M) motor neurons and (B, N) new state.
        """
        batched = input.dim() == 2
        if (
            batched
            and not torch.is_grad_enabled()
            and input.shape[1] == self.sensory_size
            and hx.shape == (input.shape[0], self.state_size)
        ):
            h = cfc_fast.step_no_grad(self, input, hx, timespans, build=False)  # a policy's step: shortest path
            if h is not None:
                return self.motor_outputs(h), h
        if input.dim() not in (1, 2) or input.shape[-1] != self.sensory_size:
            raise ValueError(
                f"input must have shape (B, {self.sensory_size}) or ({self.sensory_size},), got {tuple(input.shape)}"
            )
        expected = (input.shape[0], self.state_size) if batched else (self.state_size,)
        if tuple(hx.shape) != expected:
            raise ValueError(f"hx must have shape {expected}, got {tuple(hx.shape)}")
        if not batched:
            input, hx = input.unsqueeze(0), hx.unsqueeze(0)
        h = None
        if cfc_fast.fast_path_available(self, input, hx):
            if not (torch.is_grad_enabled() and cfc_fast.needs_autograd(self, input, hx, timespans)):
                h = cfc_fast.step_no_grad(self, input, hx, timespans, build=True)
            if h is None:
                dt = cfc_fast.step_times(timespans, input.shape[0], input)
                h = cfc_fast.cfc_sequence(self, input.unsqueeze(0), hx, dt)[0]
        else:
            h = self.step(input, hx, cell_elapsed_time(timespans, input.shape[0], input, "timespans"))
        out = self.motor_outputs(h)
        if not batched:
            return out[0], h[0]
        return out, h

    def extra_repr(self) -> str:
        return f"layer_sizes={self.layer_sizes}, recurrent_connections={self.recurrent_connections!r}"
