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

import array
import ctypes
import threading
import weakref
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
# Indices into the kernel's tables (D_* and P_* in ltc_kernel.c) used from Python.
_D_X_SB, _D_H_SB, _D_DT_SB = 12, 13, 15
_P_X, _P_H0, _P_DT, _P_PARAMS, _P_STATES, _P_OUT, _P_CONSTS = 0, 1, 2, 4, 25, 26, 48


def _library() -> ctypes.CDLL | None:
    lib = _native.load("ltc_kernel")
    if lib is not None and not hasattr(lib, "_ncp_ready"):
        for fn in ("ltc_forward_f32", "ltc_forward_f64", "ltc_backward_f32", "ltc_backward_f64"):
            f = getattr(lib, fn)
            f.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_double, ctypes.c_double)
            f.restype = ctypes.c_int
        for fn in ("ltc_consts_f32", "ltc_consts_f64"):
            f = getattr(lib, fn)
            f.argtypes = (ctypes.c_void_p, ctypes.c_void_p)
            f.restype = ctypes.c_int
        lib._ncp_ready = True
    return lib


_FAST_DTYPES = (torch.float32, torch.float64)


def fast_path_available(cell: LTCCell, *tensors: Tensor) -> bool:
    """True if the native kernel can run ``cell`` on ``tensors`` (all on the CPU, one float32/float64 dtype)."""
    if not getattr(cell, "_has_fast_path", False):  # e.g. an ncps cell swapped in by policies/_backend.py
        return False
    w = cell._parameters["w"]
    dtype = w.dtype
    if dtype not in _FAST_DTYPES or not w.is_cpu:
        return False
    for t in tensors:
        if t.dtype != dtype or not t.is_cpu:
            return False
    if torch._C._are_functorch_transforms_active():  # vmap/grad from torch.func: autograd.Function lacks rules
        return False
    lib = _native._libraries.get("ltc_kernel", False)  # fast check once loaded
    if lib is False:
        lib = _library()
    return lib is not None


def _mask_key(cell: LTCCell) -> tuple:
    m, sm = cell._buffers["sparsity_mask"], cell._buffers["sensory_sparsity_mask"]
    return (m.data_ptr(), m._version, sm.data_ptr(), sm._version)


def _edges(cell: LTCCell) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(src, dst) int32 index lists of the internal and sensory synapses, sorted by destination; cached."""
    masks = (cell.sparsity_mask, cell.sensory_sparsity_mask)
    key = _mask_key(cell)
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

    __slots__ = ("cell", "dims", "edges", "masks", "epsilon", "min_dt", "suffix", "batch_major")

    def __init__(self, cell: LTCCell, T: int, B: int, min_dt: float, batch_major: bool = False):
        self.cell = cell
        self.batch_major = batch_major
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
        ptrs = [0 if p is None else p for p in ptrs] + [0] * (_N_PTRS - len(ptrs))
        # array.array builds the tables ~10x faster than ctypes arrays; they live until the call returns
        d, q = array.array("q", self.dims), array.array("Q", ptrs)
        status = fn(d.buffer_info()[0], q.buffer_info()[0], self.epsilon, self.min_dt)
        if status == _BAD_TIME:
            raise ValueError("elapsed_time must be >= 0 and not NaN everywhere (elapsed time between steps)")
        if status == _NO_MEMORY:
            raise MemoryError("the LTC kernel could not allocate its work space")


def _params(cell: LTCCell) -> list[Tensor | None]:
    # _parameters is the source of truth (torch.func.functional_call swaps tensors there)
    get = cell._parameters.get
    return [get(n) for n in _PARAMS + _SENSORY + _MAPS]


def _run_forward(spec: _Spec, x, h0, dt, reset, params, save: bool):
    T, B, N, M, K = spec.dims[0], spec.dims[1], spec.dims[2], spec.dims[4], spec.dims[5]
    params = [p if p is None else p.detach().contiguous() for p in params]
    if spec.batch_major:  # (B, T, .) memory seen through (T, B, .) views
        states, out = x.new_empty(B, T, N).transpose(0, 1), x.new_empty(B, T, M).transpose(0, 1)
    else:
        states, out = x.new_empty(T, B, N), x.new_empty(T, B, M)
    saved = x.new_empty(T * K * N * B, dtype=torch.float64) if save else None  # the kernel works in double
    spec.call("forward", spec.pointers(x, h0, dt, reset, params, states, out, saved))
    return states, out, saved, params


class _LTCSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec, x, h0, dt, reset, *params):
        states, out, saved, cparams = _run_forward(spec, x, h0, dt, reset, params, save=True)
        ctx.spec, ctx.reset, ctx.cparams = spec, reset, cparams
        ctx.save_for_backward(x, h0, dt, states, saved)
        return states, out

    @staticmethod
    @once_differentiable
    def backward(ctx, g_states, g_out):
        x, h0, dt, states, saved = ctx.saved_tensors
        spec, params = ctx.spec, ctx.cparams
        T, B, N, I = spec.dims[0], spec.dims[1], spec.dims[2], spec.dims[3]
        needs = ctx.needs_input_grad
        d = spec.dims
        ptrs = spec.pointers(x, h0, dt, ctx.reset, params, states, None, saved)
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


def needs_autograd(cell: LTCCell, *tensors: Any) -> bool:
    """True if a call must record a graph (grad mode on and a parameter or one of ``tensors`` requires grad)."""
    if not torch.is_grad_enabled():
        return False
    return any(isinstance(t, Tensor) and t.requires_grad for t in tensors) or any(
        p.requires_grad for p in cell._parameters.values() if p is not None)


def ltc_sequence(
    cell: LTCCell, x: Tensor, h0: Tensor, dt: Tensor, reset: Tensor | None = None, *, min_dt: float,
    batch_major: bool = False,
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
        batch_major: lay the results out batch-first in memory (so that ``.transpose(0, 1)`` of them is
            contiguous); their shape is (T, B, .) either way.
    Returns:
        ``(states, outputs)``: (T, B, N) potentials after every step and (T, B, M) mapped motor outputs.
    """
    if x.stride(-1) != 1:
        x = x.contiguous()
    if h0.stride(-1) != 1:
        h0 = h0.contiguous()
    if reset is not None and reset.dtype != torch.bool:
        raise TypeError("reset must be a bool tensor")
    spec = _Spec(cell, x.shape[0], x.shape[1], min_dt, batch_major)
    params = _params(cell)
    if torch.is_grad_enabled() and (x.requires_grad or h0.requires_grad or dt.requires_grad
                                    or any(p is not None and p.requires_grad for p in params)):
        return _LTCSequence.apply(spec, x, h0, dt, reset, *params)
    states, out, _, _ = _run_forward(spec, x, h0, dt, reset, params, save=False)
    return states, out


class _StepPlan:
    """Prebuilt ctypes tables for no-grad single steps of one cell at one batch size (one per thread).

    Building the tables costs more than the kernel does at small batch sizes, so they are kept and only the
    pointers that change are rewritten. The sequence-invariant terms are cached too, keyed on the parameters'
    addresses and version counters (an optimiser step or ``load_state_dict`` bumps the version).
    """

    def __init__(self, cell: LTCCell, batch: int, dtype: torch.dtype):
        spec = _Spec(cell, 1, batch, 0.0)
        self.batch, self.dtype, self.edges = batch, dtype, spec.edges
        self.suffix = spec.suffix
        self.masks = spec.masks
        self.dims = (ctypes.c_int64 * _N_DIMS)(*spec.dims)
        self.ptrs = (ctypes.c_void_p * _N_PTRS)()
        self.dt_value = (ctypes.c_float if dtype == torch.float32 else ctypes.c_double)()
        self.dt_address = ctypes.addressof(self.dt_value)
        self.param_key: list | None = None
        self.mask_key = _mask_key(cell)
        n_consts = 5 * spec.dims[6] + 5 * spec.dims[7] + 3 * spec.dims[2]
        self.consts = torch.empty(n_consts, dtype=torch.float64)
        lib = _library()
        self.forward = getattr(lib, f"ltc_forward_{self.suffix}")
        self.fill_consts = getattr(lib, f"ltc_consts_{self.suffix}")
        src, dst, ssrc, sdst = self.edges
        for i, t in zip((11, 16, 21, 22, 23, 24), (self.masks[0], self.masks[1], src, dst, ssrc, sdst)):
            self.ptrs[i] = t.data_ptr()
        self.ptrs[_P_CONSTS] = self.consts.data_ptr()

    def refresh(self, params: list[Tensor | None]) -> None:
        """Point the tables at ``params`` and recompute the cached constants if any parameter changed."""
        key = [0 if p is None else p.data_ptr() for p in params]
        key += [0 if p is None else p._version for p in params]
        if key == self.param_key:
            return
        for p in params:
            if p is not None and not p.is_contiguous():
                raise _Unsupported
        order = (4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 17, 18, 19, 20)  # P_GLEAK ... P_OUT_B, skipping masks
        for i, ptr in zip(order, key):
            self.ptrs[i] = ptr or None
        if self.fill_consts(self.dims, self.ptrs) != 0:
            raise MemoryError("the LTC kernel could not compute its constants")
        self.param_key = key


class _Unsupported(Exception):
    """A configuration the prebuilt step tables do not cover (falls back to ``ltc_sequence``)."""


_threads = threading.local()


def ltc_step_no_grad(
    cell: LTCCell, x: Tensor, h: Tensor, elapsed_time: Any, *, min_dt: float
) -> tuple[Tensor, Tensor]:
    """One step without autograd at the lowest call overhead (what a policy does in every environment step).

    Args:
        x: (B, I) inputs; h: (B, N) potentials; elapsed_time: a number, or a tensor of shape (), (B,) or (B, 1).
    Returns:
        ``(outputs (B, M), next potentials (B, N))``, the same numbers as :func:`ltc_sequence` with T = 1.
    """
    plans = getattr(_threads, "plans", None)
    if plans is None:
        plans = _threads.plans = weakref.WeakKeyDictionary()
    batch = x.shape[0]
    plan = plans.get(cell)
    if plan is None or plan.batch != batch or plan.dtype != x.dtype or plan.mask_key != _mask_key(cell):
        plan = plans[cell] = _StepPlan(cell, batch, x.dtype)
    try:
        plan.refresh(_params(cell))
    except _Unsupported:
        states, out = ltc_sequence(cell, x.unsqueeze(0), h, as_step_times(elapsed_time, batch, x), min_dt=min_dt)
        return out[0], states[0]
    if x.stride(-1) != 1:
        x = x.contiguous()
    if h.stride(-1) != 1:
        h = h.contiguous()
    dims, ptrs = plan.dims, plan.ptrs
    dims[_D_X_SB], dims[_D_H_SB] = x.stride(0), h.stride(0)
    ptrs[_P_X], ptrs[_P_H0] = x.data_ptr(), h.data_ptr()
    if isinstance(elapsed_time, (int, float)):
        plan.dt_value.value = elapsed_time
        ptrs[_P_DT] = plan.dt_address
        dims[_D_DT_SB] = 0
    else:
        dt = as_step_times(elapsed_time, batch, x)  # (1, B)
        ptrs[_P_DT] = dt.data_ptr()
        dims[_D_DT_SB] = dt.stride(1)
    new_h = torch.empty_like(h, memory_format=torch.contiguous_format)
    out = x.new_empty(batch, int(dims[4]))
    ptrs[_P_STATES], ptrs[_P_OUT] = new_h.data_ptr(), out.data_ptr()
    dims[18], dims[19], dims[20], dims[21] = 0, new_h.stride(0), 0, out.stride(0)
    status = plan.forward(dims, ptrs, cell._epsilon, min_dt)
    if status == _BAD_TIME:
        raise ValueError("elapsed_time must be >= 0 and not NaN everywhere (elapsed time between steps)")
    if status == _NO_MEMORY:
        raise MemoryError("the LTC kernel could not allocate its work space")
    return out, new_h


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
