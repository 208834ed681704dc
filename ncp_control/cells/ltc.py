"""Liquid time-constant (LTC) cell on a wiring, numerically identical to ``ncps.torch.LTCCell`` 1.0.1."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import checks
from . import ltc_fast
from ._common import abs_mask, build_wiring, cell_elapsed_time, check_loaded_masks
from .ltc_functional import LTCConstants, ltc_constants, ltc_sensory_drive, ltc_unfold

Mapping = Literal["affine", "linear", "none"]
MAPPINGS = ("affine", "linear", "none")

#: Initialisation ranges ``(low, high)`` of the uniformly initialised LTC parameters (ncps's values). ``erev``
#: and ``sensory_erev`` start at the wiring's ±1 polarities; mapping weights at 1 and biases at 0.
LTC_INIT_RANGES = MappingProxyType(
    {
        "gleak": (0.001, 1.0),
        "vleak": (-0.2, 0.2),
        "cm": (0.4, 0.6),
        "w": (0.001, 1.0),
        "sigma": (3.0, 8.0),
        "mu": (0.3, 0.8),
        "sensory_w": (0.001, 1.0),
        "sensory_sigma": (3.0, 8.0),
        "sensory_mu": (0.3, 0.8),
    }
)

#: Elapsed times below this (in particular 0, e.g. on padded steps) are raised to it. The solver divides the
#: capacitance by the step length, so a zero step would give 0/0 = NaN outputs and gradients; a tiny positive step
#: gives the correct limit (the state is carried over almost unchanged).
MIN_ELAPSED_TIME = 1e-6

# Parameters made positive by softplus (implicit) or clipped by ``apply_weight_constraints`` (explicit).
_POSITIVE = ("w", "sensory_w", "cm", "gleak")


class LTCCell(nn.Module):
    """A liquid time-constant cell: one step of the LTC ODE on the synapses of a wiring.

    Drop-in for ``ncps.torch.LTCCell`` (same arguments, defaults, parameter and buffer names, outputs), with
    these differences: the masks are buffers (not frozen parameters) and loading a state dict with other masks
    raises; ``elapsed_time`` may differ per sample; mappings, sizes and elapsed times are validated.

    Neuron ids follow the wiring: motor neurons ``[0, M)`` come first, and the output is their potential
    passed through the output mapping.

    Args:
        wiring: a wiring (``ncp_control.wirings`` or ``ncps.wirings``); built in place with ``in_features``.
        in_features: number of input features I; None if ``wiring`` is already built.
        input_mapping: ``"affine"`` (per-feature weight and bias), ``"linear"`` (weight only) or ``"none"``.
        output_mapping: the same choices, applied to the M motor potentials.
        ode_unfolds: semi-implicit Euler sub-steps per call.
        epsilon: added to the solver's denominator (guards explicit-constraint mode where it may reach 0).
        implicit_param_constraints: True makes ``w, sensory_w, cm, gleak`` positive by softplus; False (ncps's
            cell default) uses them raw, and ``apply_weight_constraints()`` must be called after every optimiser
            step to clip them at 0.

    Shapes: ``forward(inputs (B, I) or (I,), states (B, N) or (N,), elapsed_time) -> (outputs (B, M), (B, N))``.

    Speed: on the CPU in float32/float64 the step runs in a compiled kernel (``ltc_fast.py``) with the same
    numbers as the torch code here; elsewhere (CUDA, other dtypes, no C compiler) the torch code runs.
    """

    _has_fast_path = True  # read by ltc_fast.fast_path_available
    sparsity_mask: Tensor  # buffers (0/1 masks, [src, dest])
    sensory_sparsity_mask: Tensor

    def __init__(
        self,
        wiring: Any,
        in_features: int | None = None,
        input_mapping: Mapping = "affine",
        output_mapping: Mapping = "affine",
        ode_unfolds: int = 6,
        epsilon: float = 1e-8,
        implicit_param_constraints: bool = False,
    ):
        super().__init__()
        self._wiring = build_wiring(wiring, in_features, "in_features")
        self._input_mapping = checks.choice("input_mapping", input_mapping, MAPPINGS)
        self._output_mapping = checks.choice("output_mapping", output_mapping, MAPPINGS)
        self._ode_unfolds = checks.positive_int("ode_unfolds", ode_unfolds)
        self._epsilon = checks.non_negative_real("epsilon", epsilon)
        self._implicit_param_constraints = bool(implicit_param_constraints)
        self._allocate_parameters()

    # ------------------------------------------------------------------ construction
    def _allocate_parameters(self) -> None:
        n, i, m = self.state_size, self.sensory_size, self.motor_size
        shapes = {
            "gleak": (n,),
            "vleak": (n,),
            "cm": (n,),
            "sigma": (n, n),
            "mu": (n, n),
            "w": (n, n),
            "sensory_sigma": (i, n),
            "sensory_mu": (i, n),
            "sensory_w": (i, n),
        }
        for name, shape in shapes.items():
            low, high = LTC_INIT_RANGES[name]
            self.register_parameter(name, nn.Parameter(torch.empty(shape).uniform_(low, high)))
        self.erev = nn.Parameter(torch.as_tensor(np.asarray(self._wiring.erev_initializer()), dtype=torch.float32))
        self.sensory_erev = nn.Parameter(
            torch.as_tensor(np.asarray(self._wiring.sensory_erev_initializer()), dtype=torch.float32)
        )
        self.register_buffer("sparsity_mask", abs_mask(self._wiring.adjacency_matrix))
        self.register_buffer("sensory_sparsity_mask", abs_mask(self._wiring.sensory_adjacency_matrix))
        if self._input_mapping in ("affine", "linear"):
            self.input_w = nn.Parameter(torch.ones(i))
        if self._input_mapping == "affine":
            self.input_b = nn.Parameter(torch.zeros(i))
        if self._output_mapping in ("affine", "linear"):
            self.output_w = nn.Parameter(torch.ones(m))
        if self._output_mapping == "affine":
            self.output_b = nn.Parameter(torch.zeros(m))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        check_loaded_masks(self, state_dict, prefix, ("sparsity_mask", "sensory_sparsity_mask"))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ sizes
    @property
    def wiring(self) -> Any:
        """The wiring this cell was built on."""
        return self._wiring

    @property
    def state_size(self) -> int:
        """N, the number of neurons."""
        return int(self._wiring.units)

    @property
    def sensory_size(self) -> int:
        """I, the number of input features."""
        return int(self._wiring.input_dim)

    @property
    def motor_size(self) -> int:
        """M, the number of motor (output) neurons."""
        return int(self._wiring.output_dim)

    output_size = motor_size

    @property
    def ode_unfolds(self) -> int:
        return self._ode_unfolds

    @property
    def epsilon(self) -> float:
        """The constant added to the solver's denominator."""
        return self._epsilon

    @property
    def synapse_count(self) -> int:
        """Number of synapses between neurons."""
        return int(self.sparsity_mask.sum())

    @property
    def sensory_synapse_count(self) -> int:
        """Number of synapses from inputs to neurons (ncps reports the internal count here)."""
        return int(self.sensory_sparsity_mask.sum())

    # ------------------------------------------------------------------ math, in pieces the layer reuses
    def _positive(self, x: Tensor) -> Tensor:
        return F.softplus(x) if self._implicit_param_constraints else x

    def constants(self) -> LTCConstants:
        """Sequence-invariant terms (compute once per forward call, not once per step)."""
        params = {name: p for name, p in self.named_parameters(recurse=False)}
        return ltc_constants(params, self.sparsity_mask, self.sensory_sparsity_mask, self._positive)

    def map_inputs(self, inputs: Tensor) -> Tensor:
        """Input mapping of ``inputs`` (..., I)."""
        if self._input_mapping in ("affine", "linear"):
            inputs = inputs * self.input_w
        if self._input_mapping == "affine":
            inputs = inputs + self.input_b
        return inputs

    def map_outputs(self, states: Tensor) -> Tensor:
        """Output mapping of the motor neurons of ``states`` (..., N) -> (..., M)."""
        out = states[..., : self.motor_size]
        if self._output_mapping in ("affine", "linear"):
            out = out * self.output_w
        if self._output_mapping == "affine":
            out = out + self.output_b
        return out

    def sensory_drive(self, mapped_inputs: Tensor, constants: LTCConstants) -> tuple[Tensor, Tensor]:
        """Sensory synapse terms for mapped inputs (..., I) -> two (..., N) tensors (see ``ltc_sensory_drive``)."""
        return ltc_sensory_drive(mapped_inputs, constants)

    def solve(
        self, states: Tensor, drive: tuple[Tensor, Tensor], elapsed_time: Tensor, constants: LTCConstants
    ) -> Tensor:
        """One ODE step from ``states`` (B, N) with sensory ``drive`` and ``elapsed_time`` (B, 1) -> (B, N).

        Elapsed times below ``MIN_ELAPSED_TIME`` are raised to it.
        """
        dt = elapsed_time.clamp_min(MIN_ELAPSED_TIME)
        return ltc_unfold(states, drive[0], drive[1], dt, constants, self._ode_unfolds, self._epsilon)

    # ------------------------------------------------------------------ public API
    def apply_weight_constraints(self) -> None:
        """Clip ``w, sensory_w, cm, gleak`` at 0 in place (explicit mode only; a no-op with softplus)."""
        if not self._implicit_param_constraints:
            with torch.no_grad():
                for name in _POSITIVE:
                    getattr(self, name).clamp_(min=0.0)

    def forward(self, inputs: Tensor, states: Tensor, elapsed_time: float | Tensor = 1.0) -> tuple[Tensor, Tensor]:
        """Advance the neurons by one step.

        Args:
            inputs: (B, I), or (I,) unbatched.
            states: (B, N) potentials, or (N,) unbatched.
            elapsed_time: step length: a number, or a tensor of shape (B,) or (B, 1) (one per sample); must
                be >= 0 (values below ``MIN_ELAPSED_TIME`` are raised to it).
        Returns:
            ``(outputs, next_states)``: (B, M) mapped motor potentials and (B, N) potentials (no batch
            dimension if the input had none).
        """
        if not torch.is_grad_enabled():  # a policy's environment step: the shortest path first
            result = ltc_fast.try_step_no_grad(self, inputs, states, elapsed_time, MIN_ELAPSED_TIME)
            if result is not None:
                return result
        sizes = self._sizes or self._cache_sizes()
        in_shape = inputs.shape
        # the common case first, compared cheaply; anything else is checked (with clear errors) in _check_shapes
        batched = len(in_shape) == 2 and in_shape[1] == sizes[0] and states.shape == (in_shape[0], sizes[1])
        if not batched:
            batched = self._check_shapes(inputs, states)
            if not batched:
                inputs, states = inputs.unsqueeze(0), states.unsqueeze(0)
        if ltc_fast.fast_path_available(self, inputs, states):  # native kernel; elapsed times checked there
            if torch.is_grad_enabled() and ltc_fast.needs_autograd(self, inputs, states, elapsed_time):
                dt = ltc_fast.as_step_times(elapsed_time, inputs.shape[0], inputs)
                seq_states, seq_outputs = ltc_fast.ltc_sequence(
                    self, inputs.unsqueeze(0), states, dt, min_dt=MIN_ELAPSED_TIME
                )
                next_states, outputs = seq_states[0], seq_outputs[0]
            else:
                outputs, next_states = ltc_fast.ltc_step_no_grad(
                    self, inputs, states, elapsed_time, min_dt=MIN_ELAPSED_TIME
                )
        else:
            dt = cell_elapsed_time(elapsed_time, inputs.shape[0], inputs, "elapsed_time")
            consts = self.constants()
            next_states = self.solve(states, self.sensory_drive(self.map_inputs(inputs), consts), dt, consts)
            outputs = self.map_outputs(next_states)
        if not batched:
            return outputs[0], next_states[0]
        return outputs, next_states

    _sizes: tuple[int, int] | None = None  # (I, N), cached on first use by forward

    def _cache_sizes(self) -> tuple[int, int]:
        self._sizes = (self.sensory_size, self.state_size)
        return self._sizes

    def _check_shapes(self, inputs: Tensor, states: Tensor) -> bool:
        """Validate the shapes of a step's arguments; True if batched, False if unbatched; ValueError otherwise."""
        batched = inputs.dim() == 2
        if inputs.dim() not in (1, 2) or inputs.shape[-1] != self.sensory_size:
            raise ValueError(
                f"inputs must have shape (B, {self.sensory_size}) or ({self.sensory_size},), got {tuple(inputs.shape)}"
            )
        expected = (inputs.shape[0], self.state_size) if batched else (self.state_size,)
        if tuple(states.shape) != expected:
            raise ValueError(f"states must have shape {expected}, got {tuple(states.shape)}")
        return batched

    def extra_repr(self) -> str:
        return (
            f"units={self.state_size}, in_features={self.sensory_size}, motor={self.motor_size}, "
            f"ode_unfolds={self._ode_unfolds}, input_mapping={self._input_mapping!r}, "
            f"output_mapping={self._output_mapping!r}, "
            f"implicit_param_constraints={self._implicit_param_constraints}"
        )
