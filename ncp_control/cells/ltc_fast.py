"""Fast LTC: whole sequences in one native call (``native/ltc_kernel.c``), forward and hand-derived backward.

The kernel computes exactly the equations of ``ltc_functional.py`` (same outputs and gradients up to float
rounding, tested to 1e-5 against ncps and to gradcheck precision in float64), but

- on synapse edge lists instead of dense (N, N) masks (an AutoNCP(19) has ~50 of 361 possible synapses);
- with the positivity transform, masks and products with ``erev`` computed once per call, not once per step;
- without per-operation dispatch: all steps, unfolds and the backward pass run in C;
- saving only the potentials at the start of every unfold ((T, K, B, N) floats) and recomputing activations in
  the backward pass, so it needs far less memory than autograd's dense (B, N, N) activations per unfold.

:func:`ltc_sequence` is used by ``LTCCell.forward``, the ``LTC`` layer and ``LTCCore.sequence`` whenever
:func:`fast_path_available` says so: CPU tensors, float32 or float64, a compiled kernel (see ``_native.py``),
no ``torch.func`` transform active. Everything else (CUDA, half precision, double backward, no compiler,
``NCP_CONTROL_PURE_TORCH=1``) uses the pure-torch path, which computes the same function. Double backward
(gradients of gradients) is not supported by the fast path: it raises; use ``NCP_CONTROL_PURE_TORCH=1``.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import _native

if TYPE_CHECKING:  # pragma: no cover
    from .ltc import LTCCell

_MAPPING_CODE = {"none": 0, "linear": 1, "affine": 2}
# Parameter names in the order the kernel's pointer table expects them (see P_* in ltc_kernel.c).
_PARAMS = ("gleak", "vleak", "cm", "w", "erev", "mu", "sigma")
_SENSORY = ("sensory_w", "sensory_erev", "sensory_mu", "sensory_sigma")
_MAPS = ("input_w", "input_b", "output_w", "output_b")
_N_DIMS, _N_PTRS = 26, 49
_BAD_TIME, _NO_MEMORY = 2, 1


def _library() -> ctypes.CDLL | None:
    lib = _native.load("ltc_kernel")
    if lib is not None and not hasattr(lib, "_ncp_ready"):
        for fn in ("ltc_forward_f32", "ltc_forward_f64", "ltc_backward_f32", "ltc_backward_f64"):
            f = getattr(lib, fn)
            f.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_double, ctypes.c_double)
            f.restype = ctypes.c_int
        lib._ncp_ready = True
    return lib


def fast_path_available(cell: LTCCell, *tensors: Tensor) -> bool:
    """True if the native kernel can run ``cell`` on ``tensors`` (all on the CPU, one float32/float64 dtype)."""
    dtype = cell.w.dtype
    if dtype not in (torch.float32, torch.float64) or cell.w.device.type != "cpu":
        return False
    for t in tensors:
        if t.dtype != dtype or t.device.type != "cpu":
            return False
    if torch._C._are_functorch_transforms_active():  # vmap/grad from torch.func: autograd.Function lacks rules
        return False
    return _library() is not None


def _edges(cell: LTCCell) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(src, dst) int32 index lists of the internal and sensory synapses, sorted by destination; cached."""
    masks = (cell.sparsity_mask, cell.sensory_sparsity_mask)
    key = tuple((m.data_ptr(), m._version, tuple(m.shape)) for m in masks)
    cached = cell.__dict__.get("_fast_edges")
    if cached is not None and cached[0] == key:
        return cached[1]
    lists = []
    for m in masks:
        dst_src = torch.nonzero(m.detach().t() != 0)  # (E, 2) rows (dest, src), ordered by dest
        lists += [dst_src[:, 1].to(torch.int32).contiguous(), dst_src[:, 0].to(torch.int32).contiguous()]
    edges = tuple(lists)
    cell.__dict__["_fast_edges"] = (key, edges)
    return edges


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


class _Spec:
    """Everything the kernel needs besides the differentiable tensors (sizes, options, masks, edges)."""

    __slots__ = ("cell", "dims", "edges", "masks", "epsilon", "min_dt", "suffix")

    def __init__(self, cell: LTCCell, T: int, B: int, min_dt: float):
        self.cell = cell
        self.edges = _edges(cell)
        self.masks = (cell.sparsity_mask.contiguous(), cell.sensory_sparsity_mask.contiguous())
        self.epsilon = cell._epsilon
        self.min_dt = min_dt
        self.suffix = "f32" if cell.w.dtype == torch.float32 else "f64"
        N, I, M = cell.state_size, cell.sensory_size, cell.motor_size
        self.dims = [T, B, N, I, M, cell.ode_unfolds, self.edges[0].numel(), self.edges[2].numel(),
                     _MAPPING_CODE[cell._input_mapping], _MAPPING_CODE[cell._output_mapping],
                     int(cell._implicit_param_constraints)] + [0] * 15

    def pointers(self, x, h0, dt, reset, params, states, out, saved) -> list:
        """The forward part of the kernel's pointer table; sets the strides in ``dims``."""
        d = self.dims
        d[11], d[12] = x.stride(0), x.stride(1)
        d[13] = h0.stride(0)
        d[14], d[15] = dt.stride(0), dt.stride(1)
        if reset is not None:
            d[16], d[17] = reset.stride(0), reset.stride(1)
        d[18], d[19] = states.stride(0), states.stride(1)
        if out is not None:
            d[20], d[21] = out.stride(0), out.stride(1)
        g, v, c, w, e, mu, s, sw, se, smu, ss, iw, ib, ow, ob = params
        src, dst, ssrc, sdst = self.edges
        m, sm = self.masks
        return [_ptr(x), _ptr(h0), _ptr(dt), _ptr(reset), _ptr(g), _ptr(v), _ptr(c), _ptr(w), _ptr(e), _ptr(mu),
                _ptr(s), _ptr(m), _ptr(sw), _ptr(se), _ptr(smu), _ptr(ss), _ptr(sm), _ptr(iw), _ptr(ib), _ptr(ow),
                _ptr(ob), _ptr(src), _ptr(dst), _ptr(ssrc), _ptr(sdst), _ptr(states), _ptr(out), _ptr(saved)]

    def call(self, kind: str, ptrs: list) -> None:
        fn = getattr(_library(), f"ltc_{kind}_{self.suffix}")
        ptrs = ptrs + [None] * (_N_PTRS - len(ptrs))
        status = fn((ctypes.c_int64 * _N_DIMS)(*self.dims), (ctypes.c_void_p * _N_PTRS)(*ptrs),
                    self.epsilon, self.min_dt)
        if status == _BAD_TIME:
            raise ValueError("elapsed_time must be >= 0 and not NaN everywhere (elapsed time between steps)")
        if status == _NO_MEMORY:
            raise MemoryError("the LTC kernel could not allocate its work space")


def _params(cell: LTCCell) -> list[Tensor | None]:
    return [getattr(cell, n, None) for n in _PARAMS + _SENSORY + _MAPS]


def _run_forward(spec: _Spec, x, h0, dt, reset, params, save: bool):
    T, B, N, M, K = spec.dims[0], spec.dims[1], spec.dims[2], spec.dims[4], spec.dims[5]
    params = [p if p is None else p.detach().contiguous() for p in params]
    states = x.new_empty(T, B, N)
    out = x.new_empty(T, B, M)
    saved = x.new_empty(T * K * N * B, dtype=torch.float64) if save else None  # the kernel works in double
    spec.call("forward", spec.pointers(x, h0, dt, reset, params, states, out, saved))
    return states, out, saved, params


class _LTCSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec, x, h0, dt, reset, *params):
        states, out, saved, cparams = _run_forward(spec, x, h0, dt, reset, params, save=True)
        ctx.spec, ctx.saved, ctx.reset, ctx.cparams = spec, saved, reset, cparams
        ctx.save_for_backward(x, h0, dt, states)
        return states, out

    @staticmethod
    @once_differentiable
    def backward(ctx, g_states, g_out):
        x, h0, dt, states = ctx.saved_tensors
        spec, params = ctx.spec, ctx.cparams
        T, B, N, I = spec.dims[0], spec.dims[1], spec.dims[2], spec.dims[3]
        needs = ctx.needs_input_grad
        d = spec.dims
        ptrs = spec.pointers(x, h0, dt, ctx.reset, params, states, None, ctx.saved)
        if g_states is not None:
            g_states = g_states if g_states.stride(-1) == 1 else g_states.contiguous()
            d[22], d[23] = g_states.stride(0), g_states.stride(1)
        if g_out is not None:
            g_out = g_out if g_out.stride(-1) == 1 else g_out.contiguous()
            d[24], d[25] = g_out.stride(0), g_out.stride(1)
        gx = x.new_empty(T, B, I) if needs[1] else None
        gh0 = x.new_empty(B, N) if needs[2] else None
        gdt = x.new_empty(T, B) if needs[3] else None
        grads = [None if p is None else torch.zeros_like(p) for p in params]
        ptrs += [_ptr(g_states), _ptr(g_out), _ptr(gx), _ptr(gh0), _ptr(gdt)] + [_ptr(g) for g in grads]
        spec.call("backward", ptrs)
        return (None, gx, gh0, gdt, None, *(g if needs[5 + i] else None for i, g in enumerate(grads)))


def ltc_sequence(
    cell: LTCCell, x: Tensor, h0: Tensor, dt: Tensor, reset: Tensor | None = None, *, min_dt: float
) -> tuple[Tensor, Tensor]:
    """Run ``cell`` over a time-major sequence with the native kernel (check ``fast_path_available`` first).

    Args:
        cell: the LTC cell (its parameters, masks and options are used).
        x: (T, B, I) raw inputs (the input mapping is applied here); any strides with the last one 1.
        h0: (B, N) initial potentials.
        dt: (T, B) elapsed time per step and sample, any strides (an expanded scalar is fine); must be >= 0
            (``ValueError`` otherwise); values below ``min_dt`` are raised to it.
        reset: optional (T, B) bool: where true the state is set to zero before that step.
        min_dt: lower clamp of the elapsed time.
    Returns:
        ``(states, outputs)``: (T, B, N) potentials after every step and (T, B, M) mapped motor outputs.
    """
    if x.stride(-1) != 1:
        x = x.contiguous()
    if h0.stride(-1) != 1:
        h0 = h0.contiguous()
    if reset is not None and reset.dtype != torch.bool:
        raise TypeError("reset must be a bool tensor")
    spec = _Spec(cell, x.shape[0], x.shape[1], min_dt)
    params = _params(cell)
    if torch.is_grad_enabled() and (x.requires_grad or h0.requires_grad or dt.requires_grad
                                    or any(p is not None and p.requires_grad for p in params)):
        return _LTCSequence.apply(spec, x, h0, dt, reset, *params)
    states, out, _, _ = _run_forward(spec, x, h0, dt, reset, params, save=False)
    return states, out


def as_step_times(elapsed_time: Any, batch: int, ref: Tensor) -> Tensor:
    """A cell's ``elapsed_time`` (number, 0-d, (B,) or (B, 1)) as a (1, B) view for :func:`ltc_sequence`.

    No value check here: the kernel rejects negative and NaN times.
    """
    ts = torch.as_tensor(elapsed_time, dtype=ref.dtype, device=ref.device)
    if ts.dim() == 0:
        return ts.reshape(1, 1).expand(1, batch)
    if ts.shape == (batch,):
        return ts.unsqueeze(0)
    if ts.shape == (batch, 1):
        return ts.t()
    raise ValueError(f"elapsed_time must be a number or have shape ({batch},) or ({batch}, 1), got {tuple(ts.shape)}")
