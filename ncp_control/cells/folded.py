"""Export-only step modules: one step of a trained LTC or wired CfC cell with every parameter transform folded.

A trained cell recomputes softplus, masks and products (``w * erev``, ``sigma * mu``, ...) on every call; an
exported graph should not. These modules take a cell, compute those terms once (in float64, rounded to float32 at
the end) and keep only the state-dependent arithmetic, written as a few dense matrix products over the wiring's
*edges* instead of (B, N, N) broadcasts. Built for ``torch.onnx.export`` (about 50 ONNX nodes for a 6-unfold LTC
step); the numbers equal the cell's to float32 rounding. They are snapshots: retrain the cell, rebuild them.

Notation as in ``ltc_functional.py``: matrices ``[src, dest]``; E synapses (edges) between neurons, Es from the
inputs. For edge e = (s, d): ``act_e = sigmoid(sigma_e * (v_s - mu_e)) = sigmoid(v @ A + c)`` with
``A[s, e] = sigma_e`` and ``c_e = -sigma_e * mu_e``; its numerator and denominator contributions to neuron d are
``act @ Wn`` and ``act @ Wd`` with ``Wn[e, d] = w_e * erev_e`` and ``Wd[e, d] = w_e``.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor, nn

from .ltc import MIN_ELAPSED_TIME, LTCCell
from .wired_cfc import WiredCfCCell


def _f32(array: np.ndarray) -> Tensor:
    return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32)


def _edge_matrices(
    mask: np.ndarray, gain: np.ndarray, offset: np.ndarray, w: np.ndarray, w_erev: np.ndarray, n_dest: int
) -> dict[str, np.ndarray]:
    """The gather (A, c) and scatter (Wn, Wd) matrices of the edges where ``mask`` (S, N) is nonzero; the
    activation of edge (s, d) is ``sigmoid(gain[s, d] * pre_s + offset[s, d])``."""
    src, dest = np.nonzero(mask)  # edges in row-major order, [src, dest]
    n_src, n_edges = mask.shape[0], len(src)
    a = np.zeros((n_src, n_edges))
    a[src, np.arange(n_edges)] = gain[src, dest]
    wn = np.zeros((n_edges, n_dest))
    wd = np.zeros((n_edges, n_dest))
    wn[np.arange(n_edges), dest] = w_erev[src, dest]
    wd[np.arange(n_edges), dest] = w[src, dest]
    return {"a": a, "c": offset[src, dest], "wn": wn, "wd": wd}


class FoldedLTCStep(nn.Module):
    """One step of an :class:`LTCCell` (its input and output mappings included) with constants folded.

    ``forward(x (B, I), v (B, N), dt (B,) elapsed time) -> (outputs (B, M), v' (B, N))``, the cell's
    ``forward`` for per-sample elapsed times (``dt`` raised to ``MIN_ELAPSED_TIME`` as there).

    Args:
        cell: the trained cell.
        time_unit: ``dt`` is given in seconds and the cell's time unit is this many seconds (the division is
            folded into the capacitance).
        min_elapsed_time: lower clamp of the cell time (in cell units; at least ``MIN_ELAPSED_TIME``).
        output_scale, output_shift: (M,) affine map applied after the cell's output mapping, folded into it
            (e.g. a policy's fixed map from motor neurons to the action range).
    """

    # buffers (shapes as at their register_buffer calls)
    gather: Tensor
    gather_bias: Tensor
    scatter_num: Tensor
    scatter_den: Tensor
    sensory_gather: Tensor
    sensory_gather_bias: Tensor
    sensory_num: Tensor
    sensory_den: Tensor
    leak_num: Tensor
    leak_den: Tensor
    cm_unfolds: Tensor
    readout: Tensor
    readout_bias: Tensor

    def __init__(
        self,
        cell: LTCCell,
        time_unit: float = 1.0,
        min_elapsed_time: float = MIN_ELAPSED_TIME,
        output_scale: ArrayLike | None = None,
        output_shift: ArrayLike | None = None,
    ):
        super().__init__()
        if not isinstance(cell, LTCCell):
            raise TypeError(f"FoldedLTCStep needs an ncp_control LTCCell, got {type(cell).__name__}")
        with torch.no_grad():
            k = {name: t.detach().double().cpu().numpy() for name, t in cell.constants()._asdict().items()}
            params = dict(cell.named_parameters(recurse=False))
            n, i_size, m = cell.state_size, cell.sensory_size, cell.motor_size

            def get(name: str, default: np.ndarray) -> np.ndarray:
                return params[name].detach().double().cpu().numpy() if name in params else default

            input_w, input_b = get("input_w", np.ones(i_size)), get("input_b", np.zeros(i_size))
            output_w, output_b = get("output_w", np.ones(m)), get("output_b", np.zeros(m))
            mask = cell.sparsity_mask.detach().cpu().numpy()
            sensory_mask = cell.sensory_sparsity_mask.detach().cpu().numpy()
        self.ode_unfolds = cell.ode_unfolds
        inner = _edge_matrices(mask, k["sigma"], -k["sigma"] * k["mu"], k["w"], k["w_erev"], n)
        # the input mapping folds into the sensory gather: sigma * (x * iw + ib - mu) = (sigma * iw) x + sigma (ib - mu)
        sensory = _edge_matrices(
            sensory_mask,
            k["sensory_sigma"] * input_w[:, None],
            k["sensory_sigma"] * (input_b[:, None] - k["sensory_mu"]),
            k["sensory_w"],
            k["sensory_w_erev"],
            n,
        )
        self.register_buffer("gather", _f32(inner["a"]))  # (N, E)
        self.register_buffer("gather_bias", _f32(inner["c"]))  # (E,)
        self.register_buffer("scatter_num", _f32(inner["wn"]))  # (E, N)
        self.register_buffer("scatter_den", _f32(inner["wd"]))  # (E, N)
        self.register_buffer("sensory_gather", _f32(sensory["a"]))  # (I, Es)
        self.register_buffer("sensory_gather_bias", _f32(sensory["c"]))  # (Es,)
        self.register_buffer("sensory_num", _f32(sensory["wn"]))  # (Es, N)
        self.register_buffer("sensory_den", _f32(sensory["wd"]))  # (Es, N)
        self.register_buffer("leak_num", _f32(k["gleak_vleak"]))  # (N,) gleak * vleak
        self.register_buffer("leak_den", _f32(k["gleak"] + cell.epsilon))  # (N,) gleak + epsilon
        # cm / (dt_units / unfolds) with dt_units = seconds / time_unit: (cm * unfolds * time_unit) / seconds
        self.register_buffer("cm_unfolds", _f32(k["cm"] * cell.ode_unfolds * time_unit))  # (N,)
        self.min_seconds = max(float(min_elapsed_time), MIN_ELAPSED_TIME) * float(time_unit)
        scale = np.ones(m) if output_scale is None else np.asarray(output_scale, np.float64).reshape(m)
        shift = np.zeros(m) if output_shift is None else np.asarray(output_shift, np.float64).reshape(m)
        readout = np.zeros((n, m))
        readout[np.arange(m), np.arange(m)] = output_w * scale  # motor neurons are ids [0, M)
        self.register_buffer("readout", _f32(readout))  # (N, M)
        self.register_buffer("readout_bias", _f32(output_b * scale + shift))  # (M,)

    def forward(self, x: Tensor, v: Tensor, dt: Tensor) -> tuple[Tensor, Tensor]:
        sensory = torch.sigmoid(torch.addmm(self.sensory_gather_bias, x, self.sensory_gather))  # (B, Es)
        cm_t = self.cm_unfolds / dt.clamp_min(self.min_seconds).unsqueeze(-1)  # (B, N)
        num0 = torch.addmm(self.leak_num, sensory, self.sensory_num)  # (B, N) step-invariant numerator terms
        den0 = torch.addmm(self.leak_den, sensory, self.sensory_den) + cm_t  # (B, N) and denominator terms
        for _ in range(self.ode_unfolds):
            act = torch.sigmoid(torch.addmm(self.gather_bias, v, self.gather))  # (B, E)
            v = (torch.addmm(num0, act, self.scatter_num) + cm_t * v) / torch.addmm(den0, act, self.scatter_den)
        return torch.addmm(self.readout_bias, v, self.readout), v


class FoldedWiredCfCStep(nn.Module):
    """One step of a :class:`WiredCfCCell` with masks folded into the weights and each layer's four heads
    (``ff1, ff2, time_a, time_b``; ``ff1`` alone in pure mode) fused into one matrix product.

    ``forward(x (B, I), h (B, N) in layer order, ts (B,)) -> (motor outputs (B, M), h' (B, N))``.
    """

    motor_index: Tensor  # buffer (M,): positions of the motor neurons in the state

    def __init__(self, cell: WiredCfCCell):
        super().__init__()
        if not isinstance(cell, WiredCfCCell):
            raise TypeError(f"FoldedWiredCfCStep needs an ncp_control WiredCfCCell, got {type(cell).__name__}")
        self.sizes = list(cell.layer_sizes)
        layers = cell.layer_cells
        self.mode = layers[0].mode
        self.weights = nn.ParameterList()
        with torch.no_grad():
            for layer in layers:
                heads = layer.effective_heads()  # name -> (weight (H, in + H), bias (H,)), masks applied
                names = ("ff1",) if self.mode == "pure" else ("ff1", "ff2", "time_a", "time_b")
                weight = torch.cat([heads[k][0] for k in names], dim=0).t().contiguous().float()  # (in + H, kH)
                bias = torch.cat([heads[k][1] for k in names]).float()
                self.weights.append(nn.Parameter(weight, requires_grad=False))
                self.weights.append(nn.Parameter(bias, requires_grad=False))
                if self.mode == "pure":
                    self.weights.append(nn.Parameter(layer.w_tau.detach().abs().float(), requires_grad=False))
                    self.weights.append(nn.Parameter(layer.A.detach().float(), requires_grad=False))
        motor = cell.motor_outputs(torch.arange(cell.state_size).float()[None])[0].long()
        self.register_buffer("motor_index", motor)

    def forward(self, x: Tensor, h: Tensor, ts: Tensor) -> tuple[Tensor, Tensor]:
        ts = ts.unsqueeze(-1)  # (B, 1)
        states = torch.split(h, self.sizes, dim=1)
        per_layer = 4 if self.mode == "pure" else 2
        new = []
        for l, (state, size) in enumerate(zip(states, self.sizes)):
            weight, bias = self.weights[per_layer * l], self.weights[per_layer * l + 1]
            heads = torch.addmm(bias, torch.cat([x, state], dim=1), weight)  # (B, kH)
            if self.mode == "pure":
                w_tau, a = self.weights[per_layer * l + 2], self.weights[per_layer * l + 3]
                x = -a * torch.exp(-ts * (w_tau + torch.abs(heads))) * heads + a
            else:
                ff1, ff2, t_a, t_b = torch.split(heads, size, dim=1)
                gate = torch.sigmoid(t_a * ts + t_b)
                ff1, ff2 = torch.tanh(ff1), torch.tanh(ff2)
                x = ff1 + gate * ff2 if self.mode == "no_gate" else ff1 * (1.0 - gate) + gate * ff2
            new.append(x)
        h = torch.cat(new, dim=1)
        return h.index_select(1, self.motor_index), h
