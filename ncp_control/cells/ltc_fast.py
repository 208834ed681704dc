"""Fast LTC: whole sequences in one native call (``native/ltc_kernel.c``), forward and hand-derived backward.

The kernel computes exactly the equations of ``ltc_functional.py`` (same outputs and gradients up to float
rounding, tested to 1e-5 against ncps and to gradcheck precision in float64), but

- on synapse edge lists instead of dense (N, N) masks (an AutoNCP(19) has ~50 of 361 possible synapses);
- with the positivity transform, masks and products with ``erev`` computed once per call, not once per step;
- without per-operation dispatch: all steps, unfolds and the backward pass run in C;
- saving only the potentials at the start of every unfold ((T, K, B, N) floats) and recomputing activations in
  the backward pass, so it needs far less memory than autograd's dense (B, N, N) activations per unfold.

:func:`ltc_sequence` is used by ``LTCCell.forward``, the ``LTC`` layer and ``LTCCore.sequence`` whenever
:func:`fast_path_available` says so: CPU tensors, float32 or float64, a compiled kernel (see ``native.py``),
no ``torch.func`` transform active. Everything else (CUDA, half precision, double backward, no compiler,
``NCP_CONTROL_PURE_TORCH=1``) uses the pure-torch path, which computes the same function. Double backward
(gradients of gradients) is not supported by the fast path: it raises; use ``NCP_CONTROL_PURE_TORCH=1``.
"""

from __future__ import annotations

import array
import ctypes
import operator
import struct
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import native
from ._common import PlanCache
from ._kernel_args import check_parameters, check_sequence_args, check_tensor, shapes_match

if TYPE_CHECKING:  # pragma: no cover
    from .ltc import LTCCell

_MAPPING_CODE = {"none": 0, "linear": 1, "affine": 2}
# Parameter names in the order the kernel's pointer table expects them (see P_* in ltc_kernel.c).
_PARAMS = ("gleak", "vleak", "cm", "w", "erev", "mu", "sigma")
_SENSORY = ("sensory_w", "sensory_erev", "sensory_mu", "sensory_sigma")
_MAPS = ("input_w", "input_b", "output_w", "output_b")
_N_DIMS, _N_PTRS = 26, 50
_BAD_TIME, _NO_MEMORY, _STALE = 2, 1, 3
# Indices of the cached constants and their snapshot in the kernel's pointer table (P_CONSTS, P_SNAP).
_P_CONSTS, _P_SNAP = 48, 49


def _library() -> ctypes.CDLL | None:
    lib = native.load("ltc_kernel")
    if lib is not None and not hasattr(lib, "_ncp_ready"):
        for fn in ("ltc_forward_f32", "ltc_forward_f64", "ltc_backward_f32", "ltc_backward_f64"):
            f = getattr(lib, fn)
            f.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_double, ctypes.c_double)
            f.restype = ctypes.c_int
        for fn in ("ltc_consts_f32", "ltc_consts_f64", "ltc_snapshot_f32", "ltc_snapshot_f64"):
            f = getattr(lib, fn)
            f.argtypes = (ctypes.c_void_p, ctypes.c_void_p)
            f.restype = ctypes.c_int
        for fn in ("ltc_step_f32", "ltc_step_f64"):
            f = getattr(lib, fn)
            f.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
            f.restype = ctypes.c_int
        setattr(lib, "_ncp_ready", True)  # noqa: B010 (a mark of our own: CDLL declares no such attribute)
    return lib


_FAST_DTYPES = (torch.float32, torch.float64)


def fast_path_available(cell: LTCCell, *tensors: Tensor) -> bool:
    """True if the native kernel can run ``cell`` on ``tensors`` (all on the CPU, one float32/float64 dtype)."""
    if not getattr(cell, "_has_fast_path", False):  # e.g. an ncps cell swapped in by policies/backend.py
        return False
    w = cell._parameters["w"]
    if w is None:
        return False
    dtype = w.dtype
    if dtype not in _FAST_DTYPES or not w.is_cpu:
        return False
    for t in tensors:
        if t.dtype is not dtype or not t.is_cpu:
            return False
    if _functorch_active():  # vmap/grad from torch.func: autograd.Function lacks rules
        return False
    lib = _loaded("ltc_kernel", False)  # fast check once loaded
    if lib is False:
        lib = _library()
    return lib is not None


_functorch_active = torch._C._are_functorch_transforms_active
_loaded = native.loaded


def _expected(cell: LTCCell) -> tuple[list[str], list[tuple[int, ...]]]:
    """Names of the tensors the kernel reads for this cell (parameters, then the two masks) and their shapes."""
    key = (cell.state_size, cell.sensory_size, cell.motor_size, cell._input_mapping, cell._output_mapping)
    cached = cell.__dict__.get("_fast_expected")
    if cached is not None and cached[0] == key:
        return cached[1]
    N, I, M, inp, outp = key
    shapes = {
        "gleak": (N,),
        "vleak": (N,),
        "cm": (N,),
        "w": (N, N),
        "erev": (N, N),
        "mu": (N, N),
        "sigma": (N, N),
        **{n: (I, N) for n in _SENSORY},
    }
    if inp != "none":
        shapes["input_w"] = (I,)
    if inp == "affine":
        shapes["input_b"] = (I,)
    if outp != "none":
        shapes["output_w"] = (M,)
    if outp == "affine":
        shapes["output_b"] = (M,)
    shapes.update(sparsity_mask=(N, N), sensory_sparsity_mask=(I, N))
    result = (list(shapes), list(shapes.values()))
    cell.__dict__["_fast_expected"] = (key, result)
    return result


def _check_cell(cell: LTCCell, dtype: torch.dtype, where: str) -> None:
    """The cell's parameters and masks have the shapes the kernel's tables are sized for, and one dtype."""
    names, shapes = _expected(cell)
    params, buffers = cell._parameters, cell._buffers
    tensors = [params[n] if n in params else buffers.get(n) for n in names]
    if shapes_match(tensors, shapes, dtype) and isinstance(cell.ode_unfolds, int) and cell.ode_unfolds >= 1:
        return
    if not isinstance(cell.ode_unfolds, int) or cell.ode_unfolds < 1:
        raise ValueError(f"{where}: ode_unfolds must be a positive int, got {cell.ode_unfolds!r}")
    if dtype not in _FAST_DTYPES:
        raise ValueError(f"{where}: the native kernel runs float32 or float64 cells, not {dtype}")
    check_parameters(where, list(zip(names, tensors, shapes)), dtype)


def _edges(cell: LTCCell) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(src, dst) int32 index lists of the internal and sensory synapses, sorted by destination; cached with a
    copy of the masks they come from, compared by value (so that also a change through ``.data`` is seen)."""
    masks = (cell.sparsity_mask.detach(), cell.sensory_sparsity_mask.detach())
    cached = cell.__dict__.get("_fast_edges")
    if cached is not None and all(
        a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b) for a, b in zip(cached[0], masks)
    ):
        return cached[1]
    lists = []
    for m in masks:
        dst_src = torch.nonzero(m.t() != 0)  # (E, 2) rows (dest, src), ordered by dest
        lists += [dst_src[:, 1].to(torch.int32).contiguous(), dst_src[:, 0].to(torch.int32).contiguous()]
    edges = (lists[0], lists[1], lists[2], lists[3])
    cell.__dict__["_fast_edges"] = (tuple(m.clone() for m in masks), edges)
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
        self.dims = [
            T,
            B,
            N,
            I,
            M,
            cell.ode_unfolds,
            self.edges[0].numel(),
            self.edges[2].numel(),
            _MAPPING_CODE[cell._input_mapping],
            _MAPPING_CODE[cell._output_mapping],
            int(cell._implicit_param_constraints),
        ] + [0] * 15

    def pointers(
        self,
        x: Tensor,
        h0: Tensor,
        dt: Tensor,
        reset: Tensor | None,
        params: Sequence[Tensor | None],
        states: Tensor,
        out: Tensor | None,
        saved: Tensor | None,
    ) -> list[int | None]:
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
        return [
            _ptr(x),
            _ptr(h0),
            _ptr(dt),
            _ptr(reset),
            _ptr(g),
            _ptr(v),
            _ptr(c),
            _ptr(w),
            _ptr(e),
            _ptr(mu),
            _ptr(s),
            _ptr(m),
            _ptr(sw),
            _ptr(se),
            _ptr(smu),
            _ptr(ss),
            _ptr(sm),
            _ptr(iw),
            _ptr(ib),
            _ptr(ow),
            _ptr(ob),
            _ptr(src),
            _ptr(dst),
            _ptr(ssrc),
            _ptr(sdst),
            _ptr(states),
            _ptr(out),
            _ptr(saved),
        ]

    def call(self, kind: str, ptrs: list[int | None]) -> None:
        fn = getattr(_library(), f"ltc_{kind}_{self.suffix}")
        table = [0 if p is None else p for p in ptrs] + [0] * (_N_PTRS - len(ptrs))
        # array.array builds the tables ~10x faster than ctypes arrays; they live until the call returns
        d, q = array.array("q", self.dims), array.array("Q", table)
        status = fn(d.buffer_info()[0], q.buffer_info()[0], self.epsilon, self.min_dt)
        if status == _BAD_TIME:
            raise ValueError("elapsed_time must be >= 0 and not NaN everywhere (elapsed time between steps)")
        if status == _NO_MEMORY:
            raise MemoryError("the LTC kernel could not allocate its work space")


def _params(cell: LTCCell) -> list[Tensor | None]:
    # _parameters is the source of truth (torch.func.functional_call swaps tensors there)
    get = cell._parameters.get
    return [get(n) for n in _PARAMS + _SENSORY + _MAPS]


def _run_forward(
    spec: _Spec, x: Tensor, h0: Tensor, dt: Tensor, reset: Tensor | None, params: Sequence[Tensor | None], save: bool
) -> tuple[Tensor, Tensor, Tensor | None, Sequence[Tensor | None]]:
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
    def forward(
        ctx: Any, spec: _Spec, x: Tensor, h0: Tensor, dt: Tensor, reset: Tensor | None, *params: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        states, out, saved, cparams = _run_forward(spec, x, h0, dt, reset, params, save=True)
        ctx.spec, ctx.reset, ctx.cparams = spec, reset, cparams
        ctx.save_for_backward(x, h0, dt, states, saved)
        return states, out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g_states: Tensor | None, g_out: Tensor | None) -> tuple[Tensor | None, ...]:
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
        p.requires_grad for p in cell._parameters.values() if p is not None
    )


def ltc_sequence(
    cell: LTCCell,
    x: Tensor,
    h0: Tensor,
    dt: Tensor,
    reset: Tensor | None = None,
    *,
    min_dt: float,
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

    Raises:
        ValueError: a tensor of the wrong shape, dtype (all must have the cell's dtype; ``reset`` bool) or device,
            or a cell whose parameters do not have the shapes its wiring implies.
    """
    w = cell._parameters["w"]
    if w is None:
        raise ValueError("ltc_sequence: the cell has no w, which the kernel needs")
    dtype = w.dtype
    _check_cell(cell, dtype, "ltc_sequence")
    check_sequence_args("ltc_sequence", x, h0, dt, reset, inputs=cell.sensory_size, state=cell.state_size, dtype=dtype)
    if x.stride(-1) != 1:
        x = x.contiguous()
    if h0.stride(-1) != 1:
        h0 = h0.contiguous()
    spec = _Spec(cell, x.shape[0], x.shape[1], float(min_dt), batch_major)
    params = _params(cell)
    if torch.is_grad_enabled() and (
        x.requires_grad
        or h0.requires_grad
        or dt.requires_grad
        or any(p is not None and p.requires_grad for p in params)
    ):
        return _LTCSequence.apply(spec, x, h0, dt, reset, *params)
    states, out, _, _ = _run_forward(spec, x, h0, dt, reset, params, save=False)
    return states, out


class _StepPlan:
    """Prebuilt tables for no-grad single steps of one cell at one batch size and dtype (one per thread).

    Building the kernel's tables costs more than the kernel does at small batch sizes, so they are kept, and a
    call passes only what changes (five addresses, three strides, three numbers) packed into one small array by
    a single ``struct.pack_into``. The sequence-invariant terms (softplus of the weights, ``w * erev``, ...) are
    cached too, with a snapshot of the values they come from that the kernel compares, bit for bit, before every
    step (``sync_snapshot`` in ``ltc_kernel.c``): any change of a parameter's or mask's contents recomputes them,
    also one made through ``.data`` (which autograd's version counters do not see). In Python only the tensors'
    addresses are compared (:meth:`current_key`): a new tensor (``.data = ...``, ``load_state_dict`` with
    ``assign=True``, ``torch.func.functional_call``) re-points the tables.
    """

    __slots__ = (
        "batch",
        "dtype",
        "edges",
        "masks",
        "dims",
        "ptrs",
        "call",
        "step",
        "snapshot",
        "consts",
        "snap",
        "get_params",
        "get_masks",
        "slots",
        "key",
        "dims_addr",
        "ptrs_addr",
        "call_addr",
        "n_state",
        "n_out",
        "x_shape",
        "h_shape",
    )

    def __init__(self, cell: LTCCell, batch: int, dtype: torch.dtype):
        spec = _Spec(cell, 1, batch, 0.0)
        self.batch, self.dtype, self.edges, self.masks = batch, dtype, spec.edges, spec.masks
        N, I, M, E, ES = spec.dims[2], spec.dims[3], spec.dims[4], spec.dims[6], spec.dims[7]
        self.n_state, self.n_out = N, M
        self.x_shape, self.h_shape = (batch, I), (batch, N)
        self.dims = (ctypes.c_int64 * _N_DIMS)(*spec.dims)
        self.dims[19], self.dims[21] = N, M  # the outputs are fresh contiguous (B, N) and (B, M) tensors
        self.ptrs = (ctypes.c_void_p * _N_PTRS)()
        self.call = (ctypes.c_int64 * 11)()
        self.dims_addr, self.ptrs_addr = ctypes.addressof(self.dims), ctypes.addressof(self.ptrs)
        self.call_addr = ctypes.addressof(self.call)
        self.consts = torch.empty(5 * E + 5 * ES + 3 * N, dtype=torch.float64)
        self.snap = torch.empty(N * N + I * N + 4 * E + 4 * ES + 3 * N, dtype=dtype)
        lib = _library()
        self.step = getattr(lib, f"ltc_step_{spec.suffix}")
        self.snapshot = getattr(lib, f"ltc_snapshot_{spec.suffix}")
        src, dst, ssrc, sdst = self.edges
        for i, t in zip((21, 22, 23, 24), (src, dst, ssrc, sdst)):
            self.ptrs[i] = t.data_ptr()
        self.ptrs[_P_CONSTS] = self.consts.data_ptr()
        self.ptrs[_P_SNAP] = self.snap.data_ptr()
        # the parameters this cell has (the mappings may be absent), and where their addresses go in the table
        order = dict(zip(_PARAMS + _SENSORY + _MAPS, (4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 17, 18, 19, 20)))
        names = [n for n in order if cell._parameters.get(n) is not None]
        self.slots = [11, 16] + [order[n] for n in names]  # the masks first
        self.get_masks = operator.itemgetter("sparsity_mask", "sensory_sparsity_mask")
        self.get_params = operator.itemgetter(*names)
        self.key: tuple | None = None

    def current_key(self, cell: LTCCell) -> tuple:
        """Addresses of the masks and the parameters (KeyError or TypeError if one was deleted or set to None)."""
        return (*map(_data_ptr, self.get_masks(cell._buffers) + self.get_params(cell._parameters)),)

    def refresh(self, cell: LTCCell, key: tuple) -> None:
        """Point the tables at the current masks and parameters and recompute the cached constants."""
        tensors = self.get_masks(cell._buffers) + self.get_params(cell._parameters)
        for t in tensors:
            if not t.is_contiguous() or t.dtype != self.dtype or not t.is_cpu:
                raise _Unsupported
        _check_cell(cell, self.dtype, "ltc_step_no_grad")  # sizes the tables were built for
        for i, t in zip(self.slots, tensors):
            self.ptrs[i] = t.data_ptr()
        if self.snapshot(self.dims_addr, self.ptrs_addr) != 0:
            raise MemoryError("the LTC kernel could not compute its constants")
        self.key = key


_data_ptr = Tensor.data_ptr
# five addresses, three strides, then elapsed time, epsilon and min_dt as doubles (see ltc_step in ltc_kernel.c)
_pack_call = struct.Struct("@5Q3q3d").pack_into
_get_ident = threading.get_ident


class _Unsupported(Exception):
    """A configuration the prebuilt step tables do not cover (falls back to ``ltc_sequence``)."""


_NO_PLANS: dict = {}


def _plan_for(cell: LTCCell, batch: int, dtype: torch.dtype, rebuild: bool = False) -> _StepPlan:
    """This thread's step plan for ``cell``, pointing at the current parameters (a new one with ``rebuild``).

    Raises ``_Unsupported`` where the tables do not apply (a parameter deleted, non-contiguous or of another dtype).
    """
    plans = cell.__dict__.get("_step_plans")
    if plans is None:
        plans = cell.__dict__["_step_plans"] = PlanCache()
    plan = None if rebuild else plans.get(_get_ident())
    try:
        if plan is not None and plan.batch == batch and plan.dtype is dtype:
            key = plan.current_key(cell)
            if key == plan.key:
                return plan
            if key[:2] != plan.key[:2]:
                plan = None  # other masks: other edge lists
        else:
            plan = None
        if plan is None:
            plan = plans[_get_ident()] = _StepPlan(cell, batch, dtype)
            key = plan.current_key(cell)
    except (KeyError, TypeError):  # a parameter or mask deleted or set to None since the cell was built
        raise _Unsupported from None
    plan.refresh(cell, key)
    return plan


def try_step_no_grad(
    cell: LTCCell, x: Tensor, h: Tensor, elapsed_time: Any, min_dt: float
) -> tuple[Tensor, Tensor] | None:
    """:func:`ltc_step_no_grad` if this thread has step tables for ``cell`` at the shapes and dtype of ``x`` (B, I)
    and ``h`` (B, N) that still point at its tensors, with both on the CPU; else None (the caller takes the
    general path, which checks and explains everything).

    This is the whole per-step cost of a policy in an environment loop, so it checks only what can change
    between two such calls; everything else was checked when the tables were built.
    """
    plan = _live_plan(cell, x.shape, x, h)
    return None if plan is None else _run_step(plan, cell, x, h, elapsed_time, min_dt)


def _live_plan(cell: LTCCell, x_shape: Any, x: Tensor, h: Tensor) -> _StepPlan | None:
    """This thread's step tables for ``cell`` if they were built for inputs of ``x_shape`` (B, I), ``h``'s shape
    and both tensors' dtype, on the CPU, and still point at the cell's tensors; else None."""
    plan = cell.__dict__.get("_step_plans", _NO_PLANS).get(_get_ident())
    if (
        plan is None
        or x_shape != plan.x_shape
        or h.shape != plan.h_shape
        or x.dtype is not plan.dtype
        or h.dtype is not plan.dtype
        or not x.is_cpu
        or not h.is_cpu
        or _functorch_active()
    ):
        return None
    try:
        if (*map(_data_ptr, plan.get_masks(cell._buffers) + plan.get_params(cell._parameters)),) != plan.key:
            return None
    except (KeyError, TypeError):
        return None
    return plan


def try_layer_step_no_grad(
    cell: LTCCell, input: Tensor, h: Tensor, elapsed_time: Any, min_dt: float, batch_first: bool, return_sequences: bool
) -> tuple[Tensor, Tensor] | None:
    """The ``LTC`` layer's online call, ``y, h = ltc(x[:, None], h)`` without autograd, straight on this thread's
    step tables: ``input`` (B, 1, I) if ``batch_first`` else (1, B, I), ``h`` (B, N), ``elapsed_time`` a number.

    The kernel reads the input through its batch stride (no view) and writes the output in the layer's shape
    ((B, 1, M) / (1, B, M) with ``return_sequences``, else (B, M)), so the layer's step costs what the cell's costs.
    Returns None wherever :func:`try_step_no_grad` would, and also for any other input layout, a tensor elapsed
    time, or a step the kernel refuses (a mask changed through ``.data``, a negative or NaN time): the caller then
    takes the general path, which rebuilds or explains.
    """
    shape = input.shape
    if len(shape) != 3 or not isinstance(elapsed_time, (int, float)) or isinstance(elapsed_time, bool):
        return None
    batch, steps = (shape[0], shape[1]) if batch_first else (shape[1], shape[0])
    plan = _live_plan(cell, (batch, shape[2]), input, h) if steps == 1 else None
    if plan is None:
        return None
    x_strides, h_strides = input.stride(), h.stride()
    if x_strides[2] != 1 or h_strides[1] != 1:
        return None
    new_h = input.new_empty(batch, plan.n_state)
    if return_sequences:
        out = input.new_empty((batch, 1, plan.n_out) if batch_first else (1, batch, plan.n_out))
    else:
        out = input.new_empty(batch, plan.n_out)
    _pack_call(
        plan.call,
        0,
        input.data_ptr(),
        h.data_ptr(),
        0,
        new_h.data_ptr(),
        out.data_ptr(),
        x_strides[0 if batch_first else 1],
        h_strides[0],
        0,
        float(elapsed_time),
        cell._epsilon,
        min_dt,
    )
    if plan.step(plan.dims_addr, plan.ptrs_addr, plan.call_addr):
        return None
    return out, new_h


def ltc_step_no_grad(cell: LTCCell, x: Tensor, h: Tensor, elapsed_time: Any, *, min_dt: float) -> tuple[Tensor, Tensor]:
    """One step without autograd at the lowest call overhead (what a policy does in every environment step).

    Args:
        x: (B, I) inputs; h: (B, N) potentials; elapsed_time: a number, or a tensor of shape (), (B,) or (B, 1).
    Returns:
        ``(outputs (B, M), next potentials (B, N))``, the same numbers as :func:`ltc_sequence` with T = 1; both
        are new tensors (nothing is reused between calls).

    Raises:
        ValueError: ``x`` or ``h`` of the wrong shape, dtype or device (see :func:`ltc_sequence`).
    """
    w = cell._parameters["w"]
    if w is None:
        raise ValueError("ltc_step_no_grad: the cell has no w, which the kernel needs")
    dtype = w.dtype
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise ValueError(f"ltc_step_no_grad: x must be a (B, {cell.sensory_size}) tensor")
    check_tensor("x", x, (x.shape[0], cell.sensory_size), dtype, "ltc_step_no_grad")
    check_tensor("h", h, (x.shape[0], cell.state_size), dtype, "ltc_step_no_grad")
    try:
        plan = _plan_for(cell, x.shape[0], x.dtype)
    except _Unsupported:
        dt = as_step_times(elapsed_time, x.shape[0], x)
        states, out = ltc_sequence(cell, x.unsqueeze(0), h, dt, min_dt=min_dt)
        return out[0], states[0]
    return _run_step(plan, cell, x, h, elapsed_time, min_dt)


def _run_step(
    plan: _StepPlan, cell: LTCCell, x: Tensor, h: Tensor, elapsed_time: Any, min_dt: float
) -> tuple[Tensor, Tensor]:
    batch = x.shape[0]
    x_strides, h_strides = x.stride(), h.stride()
    if x_strides[1] != 1:
        x = x.contiguous()
        x_strides = x.stride()
    if h_strides[1] != 1:
        h = h.contiguous()
        h_strides = h.stride()
    if isinstance(elapsed_time, (int, float)):
        dt_ptr, dt_stride, dt_number = 0, 0, float(elapsed_time)
    else:
        dt = as_step_times(elapsed_time, batch, x)  # (1, B)
        dt_ptr, dt_stride, dt_number = dt.data_ptr(), dt.stride(1), 0.0
    new_h = x.new_empty(batch, plan.n_state)  # (separate int arguments parse fastest)
    out = x.new_empty(batch, plan.n_out)
    _pack_call(
        plan.call,
        0,
        x.data_ptr(),
        h.data_ptr(),
        dt_ptr,
        new_h.data_ptr(),
        out.data_ptr(),
        x_strides[0],
        h_strides[0],
        dt_stride,
        dt_number,
        cell._epsilon,
        min_dt,
    )
    status = plan.step(plan.dims_addr, plan.ptrs_addr, plan.call_addr)
    if status:
        if status == _STALE:  # a mask's contents changed (through .data): new edge lists, then the step again
            cell.__dict__.pop("_fast_edges", None)
            try:
                plan = _plan_for(cell, batch, x.dtype, rebuild=True)
            except _Unsupported:
                states, outputs = ltc_sequence(
                    cell, x.unsqueeze(0), h, as_step_times(elapsed_time, batch, x), min_dt=min_dt
                )
                return outputs[0], states[0]
            return _run_step(plan, cell, x, h, elapsed_time, min_dt)
        if status == _BAD_TIME:
            raise ValueError("elapsed_time must be >= 0 and not NaN everywhere (elapsed time between steps)")
        raise MemoryError("the LTC kernel could not allocate its work space")
    return out, new_h


def as_step_times(elapsed_time: Any, batch: int, ref: Tensor) -> Tensor:
    """A cell's ``elapsed_time`` (number, 0-d, (B,) or (B, 1)) as a (1, B) view for :func:`ltc_sequence`.

    No value check here: the kernel rejects negative and NaN times.
    """
    ts = elapsed_time
    if not isinstance(ts, Tensor) or ts.dtype is not ref.dtype or ts.device != ref.device:
        ts = torch.as_tensor(ts, dtype=ref.dtype, device=ref.device)
    if ts.dim() == 0:
        return ts.reshape(1, 1).expand(1, batch)
    if ts.shape == (batch,):
        return ts.unsqueeze(0)
    if ts.shape == (batch, 1):
        return ts.t()
    raise ValueError(f"elapsed_time must be a number or have shape ({batch},) or ({batch}, 1), got {tuple(ts.shape)}")
