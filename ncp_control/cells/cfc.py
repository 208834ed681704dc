"""Closed-form continuous-time (CfC) cell, numerically identical to ``ncps.torch.CfCCell`` 1.0.1.

Hasani et al. 2022, "Closed-form continuous-time neural networks". With ``x = backbone([input, h])``::

    default:  h' = tanh(ff1(x)) * (1 - g) + g * tanh(ff2(x)),   g = sigmoid(time_a(x) * t + time_b(x))
    no_gate:  h' = tanh(ff1(x)) + g * tanh(ff2(x))
    pure:     h' = A - A * exp(-t * (|w_tau| + |ff1(x)|)) * ff1(x)     (direct solution of the LTC-like ODE)
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import checks
from ._common import cell_elapsed_time, check_loaded_masks

Mode = Literal["default", "pure", "no_gate"]
MODES = ("default", "pure", "no_gate")


class LeCunTanh(nn.Module):
    """LeCun's scaled tanh, ``1.7159 * tanh(0.666 * x)`` (constants as in ncps)."""

    def forward(self, x: Tensor) -> Tensor:
        return 1.7159 * torch.tanh(0.666 * x)


#: Backbone activations by name.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "lecun_tanh": LeCunTanh,
}


def cfc_update(
    mode: str,
    ff1: Tensor,
    ts: Tensor,
    ff2: Tensor | None = None,
    t_a: Tensor | None = None,
    t_b: Tensor | None = None,
    w_tau: Tensor | None = None,
    A: Tensor | None = None,
) -> Tensor:
    """The CfC closed-form state update from the heads' pre-activations.

    Args:
        mode: ``"default"``, ``"no_gate"`` or ``"pure"``.
        ff1: (B, H) pre-activation of the first head.
        ts: (B, 1) elapsed time per sample.
        ff2, t_a, t_b: (B, H) pre-activations of the second head and the time gate (not in pure mode).
        w_tau, A: (1, H) pure-mode parameters.
    Returns:
        (B, H) new hidden state.
    """
    if mode == "pure":
        if w_tau is None or A is None:
            raise TypeError("cfc_update: pure mode needs w_tau and A")
        return -A * torch.exp(-ts * (torch.abs(w_tau) + torch.abs(ff1))) * ff1 + A
    if ff2 is None or t_a is None or t_b is None:
        raise TypeError(f"cfc_update: mode {mode!r} needs ff2, t_a and t_b")
    gate = torch.sigmoid(t_a * ts + t_b)
    ff1, ff2 = torch.tanh(ff1), torch.tanh(ff2)
    if mode == "no_gate":
        return ff1 + gate * ff2
    return ff1 * (1.0 - gate) + gate * ff2


class CfCCell(nn.Module):
    """A closed-form continuous-time cell (one step).

    Drop-in for ``ncps.torch.CfCCell`` (same arguments, parameter names and outputs). Differences: the mask is a
    buffer and loading a state dict with another mask raises; ``ts`` may differ per sample; arguments are
    validated. As in ncps, ``backbone_dropout`` acts after the second and later backbone layers only, so with
    ``backbone_layers=1`` it has no effect (a warning says so); this keeps ncps's state-dict keys.

    Args:
        input_size: I, number of input features.
        hidden_size: H, number of units (the output is the whole state).
        mode: ``"default"``, ``"pure"`` or ``"no_gate"`` (see the module docstring).
        backbone_activation: one of ``ACTIVATIONS``.
        backbone_units: width of each backbone layer.
        backbone_layers: number of backbone layers (0: the heads read ``[input, h]`` directly).
        backbone_dropout: dropout probability in [0, 1).
        sparsity_mask: optional ±1/0 array (I + H, H) indexed [source, unit] (sources: inputs then units); the
            heads ``ff1``/``ff2`` only read the sources it marks (needs ``backbone_layers=0``). Stored as the
            (H, I + H) buffer ``sparsity_mask``, as ncps does.
        mask_time_gates: also mask ``time_a``/``time_b`` (ncps never does; used by ``WiredCfCCell`` in
            ``recurrent_connections="wiring"`` mode).

    Shapes: ``forward(input (B, I) or (I,), hx (B, H) or (H,), ts) -> (h (B, H), h (B, H))``.
    """

    sparsity_mask: Tensor | None  # buffer, (H, I + H)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        mode: Mode = "default",
        backbone_activation: str = "lecun_tanh",
        backbone_units: int = 128,
        backbone_layers: int = 1,
        backbone_dropout: float = 0.0,
        sparsity_mask: Any = None,
        *,
        mask_time_gates: bool = False,
    ):
        super().__init__()
        self.input_size = checks.positive_int("input_size", input_size)
        self.hidden_size = checks.positive_int("hidden_size", hidden_size)
        self.mode = checks.choice("mode", mode, MODES)
        activation = ACTIVATIONS[checks.choice("backbone_activation", backbone_activation, ACTIVATIONS)]
        if (
            isinstance(backbone_layers, bool)
            or not isinstance(backbone_layers, (int, np.integer))
            or backbone_layers < 0
        ):
            raise ValueError(f"backbone_layers must be an int >= 0, got {backbone_layers!r}")
        self.backbone_layers = int(backbone_layers)
        if not 0.0 <= float(backbone_dropout) < 1.0:
            raise ValueError(f"backbone_dropout must be in [0, 1), got {backbone_dropout}")

        self.backbone = None
        if self.backbone_layers > 0:
            backbone_units = checks.positive_int("backbone_units", backbone_units)
            if backbone_dropout > 0.0 and self.backbone_layers == 1:
                warnings.warn(
                    "backbone_dropout has no effect with backbone_layers=1 (as in ncps: dropout follows "
                    "the second and later backbone layers only)",
                    stacklevel=2,
                )
            # Same module layout (hence state-dict keys) as ncps.
            layers: list[nn.Module] = [nn.Linear(self.input_size + self.hidden_size, backbone_units), activation()]
            for _ in range(1, self.backbone_layers):
                layers += [nn.Linear(backbone_units, backbone_units), activation()]
                if backbone_dropout > 0.0:
                    layers.append(nn.Dropout(backbone_dropout))
            self.backbone = nn.Sequential(*layers)
            head_in = backbone_units
        else:
            head_in = self.input_size + self.hidden_size

        if sparsity_mask is None:
            self.register_buffer("sparsity_mask", None)
        else:
            if self.backbone_layers > 0:
                raise ValueError("sparsity_mask needs backbone_layers=0 (the mask indexes [input, hidden] sources)")
            mask = np.abs(np.asarray(sparsity_mask))
            if mask.shape != (head_in, self.hidden_size):
                raise ValueError(
                    f"sparsity_mask must have shape ({head_in}, {self.hidden_size}) [source, unit], got {mask.shape}"
                )
            self.register_buffer("sparsity_mask", torch.as_tensor(np.ascontiguousarray(mask.T), dtype=torch.float32))
        self._mask_time_gates = bool(mask_time_gates)
        if self._mask_time_gates and sparsity_mask is None:
            raise ValueError("mask_time_gates=True needs a sparsity_mask")

        self.ff1 = nn.Linear(head_in, self.hidden_size)
        if self.mode == "pure":
            self.w_tau = nn.Parameter(torch.zeros(1, self.hidden_size))
            self.A = nn.Parameter(torch.ones(1, self.hidden_size))
        else:
            self.ff2 = nn.Linear(head_in, self.hidden_size)
            self.time_a = nn.Linear(head_in, self.hidden_size)
            self.time_b = nn.Linear(head_in, self.hidden_size)
        self.init_weights()

    def init_weights(self) -> None:
        """Xavier-uniform for every trainable matrix (ncps's scheme, including pure mode's (1, H) ``w_tau, A``)."""
        for p in self.parameters():
            if p.dim() == 2 and p.requires_grad:
                nn.init.xavier_uniform_(p)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        check_loaded_masks(self, state_dict, prefix, ("sparsity_mask",))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _head(self, layer: nn.Linear, x: Tensor, masked: bool) -> Tensor:
        if masked and self.sparsity_mask is not None:
            return F.linear(x, layer.weight * self.sparsity_mask, layer.bias)
        return layer(x)

    def effective_heads(self) -> dict[str, tuple[Tensor, Tensor]]:
        """Each head's ``(weight (H, in + H), bias (H,))`` as ``step`` applies it (mask included): ``ff1`` and,
        outside pure mode, ``ff2``, ``time_a``, ``time_b``. For exporters; needs ``backbone_layers=0``."""
        if self.backbone is not None:
            raise ValueError("effective_heads needs a cell without backbone (backbone_layers=0)")
        names = ("ff1",) if self.mode == "pure" else ("ff1", "ff2", "time_a", "time_b")
        masked = {"ff1": True, "ff2": True, "time_a": self._mask_time_gates, "time_b": self._mask_time_gates}
        heads = {}
        for name in names:
            layer = getattr(self, name)
            weight = (
                layer.weight * self.sparsity_mask if masked[name] and self.sparsity_mask is not None else layer.weight
            )
            heads[name] = (weight.detach(), layer.bias.detach())
        return heads

    def step(self, input: Tensor, hx: Tensor, ts: Tensor) -> Tensor:
        """One update without argument checks: ``input`` (B, I), ``hx`` (B, H), ``ts`` (B, 1) -> (B, H)."""
        x = torch.cat([input, hx], dim=1)
        if self.backbone is not None:
            x = self.backbone(x)
        ff1 = self._head(self.ff1, x, True)
        if self.mode == "pure":
            return cfc_update("pure", ff1, ts, w_tau=self.w_tau, A=self.A)
        gates = self._mask_time_gates
        return cfc_update(
            self.mode,
            ff1,
            ts,
            ff2=self._head(self.ff2, x, True),
            t_a=self._head(self.time_a, x, gates),
            t_b=self._head(self.time_b, x, gates),
        )

    def forward(self, input: Tensor, hx: Tensor, ts: float | Tensor = 1.0) -> tuple[Tensor, Tensor]:
        """One step.

        Args:
            input: (B, I), or (I,) unbatched.
            hx: (B, H), or (H,) unbatched.
            ts: elapsed time: a number, or a tensor of shape (B,) or (B, 1); must be >= 0.
        Returns:
            ``(h, h)``: the new state twice (output and state, as ncps).
        """
        batched = input.dim() == 2
        if input.dim() not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(
                f"input must have shape (B, {self.input_size}) or ({self.input_size},), got {tuple(input.shape)}"
            )
        expected = (input.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        if tuple(hx.shape) != expected:
            raise ValueError(f"hx must have shape {expected}, got {tuple(hx.shape)}")
        if not batched:
            input, hx = input.unsqueeze(0), hx.unsqueeze(0)
        h = self.step(input, hx, cell_elapsed_time(ts, input.shape[0], input, "ts"))
        if not batched:
            h = h[0]
        return h, h

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, mode={self.mode!r}"
