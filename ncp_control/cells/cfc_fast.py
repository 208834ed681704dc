"""Fast wired CfC: whole sequences of a ``WiredCfCCell`` in one native call (``native/cfc_kernel.c``).

Same equations as ``cfc.py``/``wired_cfc.py`` (outputs and gradients tested against them; the state between
steps and between layers keeps the caller's dtype, as in torch), but all layers, steps and the backward pass run
in C, skipping masked weights. Used by ``WiredCfCCell.forward``, the wired ``CfC`` layer and ``CfCCore.sequence``
when :func:`fast_path_available` says so (CPU, float32/float64, a compiled kernel, at most ``MAX_HEAD_WEIGHTS``
head weights); otherwise the torch code runs.
The dense ``CfCCell`` (with a backbone MLP) stays in torch: its matrix products are already efficient there.
Double backward is not supported by the fast path (it raises).
"""

from __future__ import annotations

import array
import ctypes
import operator
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import native
from ._common import PlanCache, cell_elapsed_time
from ._kernel_args import check_parameters, check_sequence_args, check_tensor, shapes_match

if TYPE_CHECKING:  # pragma: no cover
    from .wired_cfc import WiredCfCCell

_MODES = {"default": 0, "no_gate": 1, "pure": 2}
_N_FIXED_DIMS, _N_FIXED_PTRS, _PER_LAYER = 18, 9, 11
_FAST_DTYPES = (torch.float32, torch.float64)


def _library() -> ctypes.CDLL | None:
    lib = native.load("cfc_kernel")
    if lib is not None and not hasattr(lib, "_ncp_ready"):
        for fn in ("cfc_forward_f32", "cfc_forward_f64", "cfc_backward_f32", "cfc_backward_f64"):
            f = getattr(lib, fn)
            f.argtypes = (ctypes.c_void_p, ctypes.c_void_p)
            f.restype = ctypes.c_int
        setattr(lib, "_ncp_ready", True)  # noqa: B010 (a mark of our own: CDLL declares no such attribute)
    return lib


#: Largest sum over layers of units x head inputs (H * (in + H)) sent to the kernel. Its head products are plain
#: loops; above this size (measured: AutoNCP(128), FullyConnected(64) with 32 inputs) torch's BLAS is faster.
MAX_HEAD_WEIGHTS = 5000


def fast_path_available(cell: WiredCfCCell, *tensors: Tensor) -> bool:
    """True if the native kernel can run ``cell`` on ``tensors`` (all on the CPU, one float32/float64 dtype) and
    the cell is small enough for it to win (``MAX_HEAD_WEIGHTS``)."""
    if not getattr(cell, "_has_fast_path", False):
        return False
    small = cell.__dict__.get("_fast_small")
    if small is None:
        small = cell.__dict__["_fast_small"] = (
            sum(layer.hidden_size * layer.ff1.weight.shape[1] for layer in cell._layers) <= MAX_HEAD_WEIGHTS
        )
    if not small:
        return False
    w = cell._layers[0].ff1.weight
    dtype = w.dtype
    if dtype not in _FAST_DTYPES or not w.is_cpu:
        return False
    for t in tensors:
        if t.dtype != dtype or not t.is_cpu:
            return False
    if torch._C._are_functorch_transforms_active():
        return False
    lib = native.loaded("cfc_kernel", False)
    if lib is False:
        lib = _library()
    return lib is not None


def needs_autograd(cell: WiredCfCCell, *tensors: Any) -> bool:
    """True if a call must record a graph (grad mode on and a parameter or one of ``tensors`` requires grad)."""
    if not torch.is_grad_enabled():
        return False
    return any(isinstance(t, Tensor) and t.requires_grad for t in tensors) or any(
        p.requires_grad for p in cell.parameters()
    )


#: The kernel keeps per-layer tables on its stack for at most this many layers.
MAX_LAYERS = 64
_STATUS_INVALID = 2


def _check_cell(cell: WiredCfCCell, dtype: torch.dtype, where: str) -> None:
    """Layer sizes add up to the state, every head has the (H, in + H) shape the kernel indexes with, every layer
    has the parameters its mode needs, one dtype throughout, at most :data:`MAX_LAYERS` layers."""
    layers = cell._layers
    structure = (cell.sensory_size, cell.state_size, tuple((l.hidden_size, l.mode, l._mask_time_gates) for l in layers))
    cached = cell.__dict__.get("_fast_expected")
    if cached is not None and cached[0] == structure:
        shapes, mask_shapes = cached[1]
        masks = [layer._buffers.get("sparsity_mask") for layer in layers]
        if shapes_match(
            [p for p, s in zip(_layer_params(cell), shapes) if s is not None],
            [s for s in shapes if s is not None],
            dtype,
        ) and all(m is not None and m.shape == s and m.is_cpu for m, s in zip(masks, mask_shapes)):
            return
    _check_cell_in_detail(cell, dtype, where)
    cell.__dict__["_fast_expected"] = (structure, _expected_shapes(cell))


def _expected_shapes(cell: WiredCfCCell) -> tuple[list[tuple[int, ...] | None], list[tuple[int, int]]]:
    """Per layer, in :func:`_layer_params` order, the shape the kernel needs (None: not read in this mode), and
    the masks' shapes."""
    shapes: list[tuple[int, ...] | None] = []
    mask_shapes: list[tuple[int, int]] = []
    inputs = cell.sensory_size
    for layer in cell._layers:
        H, pure = layer.hidden_size, layer.mode == "pure"
        K = inputs + H
        for head in ("ff1", "ff2", "time_a", "time_b"):
            needed = head == "ff1" or not pure
            shapes += [(H, K), (H,)] if needed else [None, None]
        shapes += [(1, H), (1, H)] if pure else [None, None]
        mask_shapes.append((H, K))
        inputs = H
    return shapes, mask_shapes


def _check_cell_in_detail(cell: WiredCfCCell, dtype: torch.dtype, where: str) -> None:
    layers = cell._layers
    if not 1 <= len(layers) <= MAX_LAYERS:
        raise ValueError(
            f"{where}: the native CfC kernel takes 1 to {MAX_LAYERS} layers, this cell has "
            f"{len(layers)}; use NCP_CONTROL_PURE_TORCH=1 for deeper wirings"
        )
    if dtype not in _FAST_DTYPES:
        raise ValueError(f"{where}: the native kernel runs float32 or float64 cells, not {dtype}")
    if any(l.mode != layers[0].mode or l._mask_time_gates != layers[0]._mask_time_gates for l in layers):
        raise ValueError(f"{where}: every layer must have layer 0's mode and time-gate masking")
    if sum(l.hidden_size for l in layers) != cell.state_size:
        raise ValueError(
            f"{where}: the layers' sizes add up to {sum(l.hidden_size for l in layers)}, the cell's "
            f"state_size is {cell.state_size}"
        )
    shapes, mask_shapes = _expected_shapes(cell)
    names = [
        f"layer_{l}.{n}"
        for l in range(len(layers))
        for n in (
            "ff1.weight",
            "ff1.bias",
            "ff2.weight",
            "ff2.bias",
            "time_a.weight",
            "time_a.bias",
            "time_b.weight",
            "time_b.bias",
            "w_tau",
            "A",
        )
    ]
    check_parameters(where, list(zip(names, _layer_params(cell), shapes)), dtype)
    for l, (layer, shape) in enumerate(zip(layers, mask_shapes)):
        mask = layer._buffers.get("sparsity_mask")
        if not isinstance(mask, Tensor) or tuple(mask.shape) != shape or not mask.is_cpu:
            raise ValueError(f"{where}: layer {l}'s sparsity_mask must be a CPU {shape} tensor")


def _layer_params(cell: WiredCfCCell) -> list[Tensor | None]:
    """Per layer: ff1.w, ff1.b, ff2.w, ff2.b, time_a.w, time_a.b, time_b.w, time_b.b, w_tau, A (None if absent)."""
    out: list[Tensor | None] = []
    for layer in cell._layers:
        for head in ("ff1", "ff2", "time_a", "time_b"):
            lin = layer._modules.get(head)
            out += [None, None] if lin is None else [lin._parameters["weight"], lin._parameters["bias"]]
        out += [layer._parameters.get("w_tau"), layer._parameters.get("A")]
    return out


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _dims(
    cell: WiredCfCCell,
    x: Tensor,
    h0: Tensor,
    dt: Tensor,
    reset: Tensor | None,
    states: Tensor,
    g_states: Tensor | None = None,
) -> list[int]:
    layers = cell._layers
    d = [
        x.shape[0],
        x.shape[1],
        len(layers),
        cell.sensory_size,
        cell.state_size,
        _MODES[layers[0].mode],
        int(layers[0]._mask_time_gates),
        x.stride(0),
        x.stride(1),
        h0.stride(0),
        dt.stride(0),
        dt.stride(1),
        states.stride(0),
        states.stride(1),
        0,
        0,
        0,
        0,
    ]
    if g_states is not None:
        d[14], d[15] = g_states.stride(0), g_states.stride(1)
    if reset is not None:
        d[16], d[17] = reset.stride(0), reset.stride(1)
    return d + [layer.hidden_size for layer in layers]


def _masks(cell: WiredCfCCell) -> list[Tensor]:
    masks = []
    for layer in cell._layers:
        mask = layer._buffers["sparsity_mask"]
        if mask is None:  # _check_cell refuses such a cell first
            raise ValueError("the native CfC kernel needs every layer's sparsity_mask")
        masks.append(mask.contiguous())
    return masks


def _pointers(
    cell: WiredCfCCell,
    x: Tensor,
    h0: Tensor,
    dt: Tensor,
    reset: Tensor | None,
    states: Tensor,
    params: Sequence[Tensor | None],
    masks: Sequence[Tensor],
    grads: Sequence[Tensor | None] | None = None,
    g_states: Tensor | None = None,
    gx: Tensor | None = None,
    gh0: Tensor | None = None,
    gdt: Tensor | None = None,
) -> list[int | None]:
    ptrs = [_ptr(x), _ptr(h0), _ptr(dt), _ptr(reset), _ptr(states), _ptr(g_states), _ptr(gx), _ptr(gh0), _ptr(gdt)]
    for l, mask in enumerate(masks):
        p = params[10 * l : 10 * l + 10]
        ptrs += [_ptr(t) for t in p[:8]] + [_ptr(mask)] + [_ptr(t) for t in p[8:]]
    if grads is not None:
        for l in range(len(cell._layers)):
            g = grads[10 * l : 10 * l + 10]
            ptrs += [_ptr(t) for t in g[:8]] + [None] + [_ptr(t) for t in g[8:]]
    return ptrs


def _call(kind: str, dtype: torch.dtype, dims: list[int], ptrs: list[int | None]) -> None:
    fn = getattr(_library(), f"cfc_{kind}_{'f32' if dtype == torch.float32 else 'f64'}")
    # array.array builds the tables ~10x faster than ctypes arrays; they live until the call returns
    d, q = array.array("q", dims), array.array("Q", [0 if x is None else x for x in ptrs])
    status = fn(d.buffer_info()[0], q.buffer_info()[0])
    if status == _STATUS_INVALID:
        raise ValueError(f"the CfC kernel takes at most {MAX_LAYERS} layers")
    if status != 0:
        raise MemoryError("the CfC kernel could not allocate its work space")


def _forward(
    cell: WiredCfCCell,
    x: Tensor,
    h0: Tensor,
    dt: Tensor,
    reset: Tensor | None,
    params: Sequence[Tensor | None],
    batch_major: bool,
) -> tuple[Tensor, Sequence[Tensor | None], list[Tensor]]:
    T, B, N = x.shape[0], x.shape[1], cell.state_size
    params = [p if p is None or p.is_contiguous() else p.contiguous() for p in params]  # only addresses are read
    states = x.new_empty(B, T, N).transpose(0, 1) if batch_major else x.new_empty(T, B, N)
    masks = [m.to(x.dtype) for m in _masks(cell)]  # kept alive for the call (no copy when already right)
    _call(
        "forward",
        x.dtype,
        _dims(cell, x, h0, dt, reset, states),
        _pointers(cell, x, h0, dt, reset, states, params, masks),
    )
    return states, params, masks


class _CfCSequence(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        cell: WiredCfCCell,
        batch_major: bool,
        x: Tensor,
        h0: Tensor,
        dt: Tensor,
        reset: Tensor | None,
        *params: Tensor | None,
    ) -> Tensor:
        states, cparams, masks = _forward(cell, x, h0, dt, reset, params, batch_major)
        ctx.cell, ctx.reset, ctx.cparams, ctx.masks = cell, reset, cparams, masks
        ctx.save_for_backward(x, h0, dt, states)
        return states

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g_states: Tensor) -> tuple[Tensor | None, ...]:
        x, h0, dt, states = ctx.saved_tensors
        cell, params, needs = ctx.cell, ctx.cparams, ctx.needs_input_grad
        if g_states.stride(-1) != 1:
            g_states = g_states.contiguous()
        T, B, N = x.shape[0], x.shape[1], cell.state_size
        gx = x.new_empty(T, B, x.shape[2]) if needs[2] else None
        gh0 = x.new_empty(B, N) if needs[3] else None
        gdt = x.new_empty(T, B) if needs[4] else None
        grads = [None if p is None else torch.empty_like(p) for p in params]
        dims = _dims(cell, x, h0, dt, ctx.reset, states, g_states)
        _call(
            "backward",
            x.dtype,
            dims,
            _pointers(cell, x, h0, dt, ctx.reset, states, params, ctx.masks, grads, g_states, gx, gh0, gdt),
        )
        return (None, None, gx, gh0, gdt, None, *(g if needs[6 + i] else None for i, g in enumerate(grads)))


def cfc_sequence(
    cell: WiredCfCCell, x: Tensor, h0: Tensor, dt: Tensor, reset: Tensor | None = None, *, batch_major: bool = False
) -> Tensor:
    """Run a wired CfC over a time-major sequence with the native kernel (check ``fast_path_available`` first).

    Args:
        x: (T, B, I) inputs (any strides, the last one 1); h0: (B, N) state in layer order; dt: (T, B) elapsed
            times (any strides, an expanded scalar is fine); reset: optional (T, B) bool, state zeroed before
            those steps; batch_major: lay the result out batch-first in memory.
    Returns:
        (T, B, N) states after every step.

    Raises:
        ValueError: a tensor of the wrong shape, dtype (all must have the cell's dtype; ``reset`` bool) or device,
            more than :data:`MAX_LAYERS` layers, or parameters whose shapes do not match the layer sizes.
    """
    dtype = cell._layers[0].ff1.weight.dtype if len(cell._layers) else torch.float32
    _check_cell(cell, dtype, "cfc_sequence")
    check_sequence_args("cfc_sequence", x, h0, dt, reset, inputs=cell.sensory_size, state=cell.state_size, dtype=dtype)
    if x.stride(-1) != 1:
        x = x.contiguous()
    if h0.stride(-1) != 1:
        h0 = h0.contiguous()
    params = _layer_params(cell)
    if torch.is_grad_enabled() and (
        x.requires_grad
        or h0.requires_grad
        or dt.requires_grad
        or any(p is not None and p.requires_grad for p in params)
    ):
        return _CfCSequence.apply(cell, batch_major, x, h0, dt, reset, *params)
    return _forward(cell, x, h0, dt, reset, params, batch_major)[0]


class _StepPlan:
    """Prebuilt kernel tables for no-grad single steps of one wired CfC at one batch size and dtype (per thread).

    Building the tables costs more than a small cell's step, so they are kept and a call fills in only the
    addresses and strides of its inputs, state and result. The kernel reads the parameters directly (nothing is
    cached from their values), so only their addresses are compared before a step (:meth:`current_key`).
    """

    __slots__ = (
        "batch",
        "dtype",
        "dims",
        "ptrs",
        "fn",
        "dims_addr",
        "ptrs_addr",
        "key",
        "tensors_of",
        "n_state",
        "dt",
        "dt_value",
        "masks",
        "x_shape",
        "h_shape",
    )

    def __init__(self, cell: WiredCfCCell, batch: int, dtype: torch.dtype):
        _check_cell(cell, dtype, "step_no_grad")
        self.batch, self.dtype, self.n_state = batch, dtype, cell.state_size
        self.x_shape, self.h_shape = (batch, cell.sensory_size), (batch, cell.state_size)
        params = _layer_params(cell)
        masks = _masks(cell)
        for t in params + masks:
            if t is not None and (not t.is_contiguous() or t.dtype != dtype or not t.is_cpu):
                raise _Unsupported
        self.masks = masks  # kept alive: their addresses are in the table
        x = torch.empty(1, batch, cell.sensory_size, dtype=dtype)
        h = torch.empty(batch, cell.state_size, dtype=dtype)
        self.dt = torch.empty(1, batch, dtype=dtype)  # holds a number elapsed time
        self.dt_value: float | None = None
        dims = _dims(cell, x, h, self.dt, None, torch.empty(1, batch, cell.state_size, dtype=dtype))
        self.dims = (ctypes.c_int64 * len(dims))(*dims)
        ptrs = _pointers(cell, x, h, self.dt, None, h, params, masks)
        self.ptrs = (ctypes.c_void_p * len(ptrs))(*ptrs)
        self.dims_addr, self.ptrs_addr = ctypes.addressof(self.dims), ctypes.addressof(self.ptrs)
        self.fn = getattr(_library(), f"cfc_forward_{'f32' if dtype == torch.float32 else 'f64'}")
        self.tensors_of = _tensor_getter(cell)
        self.key = self.current_key(cell)

    def number_dt(self, value: float) -> Tensor:
        """The (1, B) elapsed-time table filled with the number ``value`` (refilled only when it changes)."""
        if value != self.dt_value:
            self.dt.fill_(value)
            self.dt_value = value
        return self.dt

    def run(self, x: Tensor, x_batch_stride: int, h: Tensor, dt: Tensor) -> tuple[Tensor, int]:
        """One step of ``x`` (read through ``x_batch_stride``, last stride 1) from ``h`` (last stride 1) with
        ``dt`` (1, B): fills in the tables' addresses and strides and calls the kernel. Returns the new (B, N)
        state and the kernel's status (0: done)."""
        new_h = x.new_empty(self.batch, self.n_state)
        d, p = self.dims, self.ptrs
        p[0], p[1], p[2], p[4] = x.data_ptr(), h.data_ptr(), dt.data_ptr(), new_h.data_ptr()
        d[8], d[9], d[11] = x_batch_stride, h.stride(0), dt.stride(1)
        return new_h, self.fn(self.dims_addr, self.ptrs_addr)

    def current_key(self, cell: WiredCfCCell) -> tuple:
        """Addresses of the parameters and masks (a parameter set to None gives 0)."""
        try:
            tensors = self.tensors_of(cell)
        except (KeyError, AttributeError):  # a head or mask deleted or set to None: never the tables' key
            return (-1,)
        try:
            return (*map(_data_ptr, tensors),)  # type: ignore[arg-type]  # a None raises TypeError: handled below
        except TypeError:  # a parameter set to None
            return tuple([0 if t is None else t.data_ptr() for t in tensors])


def _tensor_getter(cell: WiredCfCCell) -> Callable[[WiredCfCCell], list[Tensor | None]]:
    """A function returning the parameters and masks of ``cell`` (the current objects, looked up every time
    through the modules that hold them, so that a replaced head or parameter is seen). The heads are those each
    layer had when the tables were built (what the kernel reads); one deleted since raises ``KeyError``."""
    heads = ("ff1", "ff2", "time_a", "time_b")
    getters = []
    for layer in cell._layers:
        names = [h for h in heads if layer._modules.get(h) is not None]
        getters.append(operator.itemgetter(*names, names[0]) if names else (lambda mods: ()))
    count = len(getters)

    def tensors(c: WiredCfCCell) -> list[Tensor | None]:
        layers = c._layers
        if len(layers) != count:
            raise KeyError("the cell's layers changed")
        out = []
        for layer, get in zip(layers, getters):
            found = get(layer._modules)
            for lin in found[:-1] if found else ():  # (the last item repeats the first: always a tuple)
                out += lin._parameters.values()
            out += layer._parameters.values()
            out.append(layer._buffers["sparsity_mask"])
        return out

    return tensors


class _Unsupported(Exception):
    """Tables cannot be built for this cell (a parameter non-contiguous, of another dtype, ...)."""


_get_ident = threading.get_ident
_data_ptr = Tensor.data_ptr
_NO_PLANS: dict = {}


def _plan_for(cell: WiredCfCCell, batch: int, dtype: torch.dtype) -> _StepPlan:
    plans = cell.__dict__.get("_step_plans")
    if plans is None:
        plans = cell.__dict__["_step_plans"] = PlanCache()
    plan = plans.get(_get_ident())
    if plan is None or plan.batch != batch or plan.dtype is not dtype or plan.current_key(cell) != plan.key:
        plan = plans[_get_ident()] = _StepPlan(cell, batch, dtype)
    return plan


def step_no_grad(cell: WiredCfCCell, x: Tensor, h: Tensor, timespans: Any, *, build: bool) -> Tensor | None:
    """One no-grad step with prebuilt tables: the new (B, N) state, or None where the tables do not apply.

    With ``build`` the tables are made (after ``fast_path_available`` said yes); without it only existing tables
    for this thread, batch size and dtype that still point at the cell's tensors are used (the cheap check a
    policy's environment loop needs).
    """
    batch = x.shape[0]
    if build:
        dtype = cell._layers[0].ff1.weight.dtype
        if x.dim() != 2:
            raise ValueError(f"step_no_grad: x must be a (B, {cell.sensory_size}) tensor, got {tuple(x.shape)}")
        check_tensor("x", x, (batch, cell.sensory_size), dtype, "step_no_grad")
        check_tensor("h", h, (batch, cell.state_size), dtype, "step_no_grad")
        try:
            plan = _plan_for(cell, batch, x.dtype)
        except _Unsupported:
            return None
    else:
        plan = cell.__dict__.get("_step_plans", _NO_PLANS).get(_get_ident())
        if (
            plan is None
            or x.shape != plan.x_shape
            or h.shape != plan.h_shape
            or x.dtype is not plan.dtype
            or h.dtype is not plan.dtype
            or not x.is_cpu
            or not h.is_cpu
            or torch._C._are_functorch_transforms_active()
            or plan.current_key(cell) != plan.key
        ):
            return None
    if isinstance(timespans, (int, float)) and not isinstance(timespans, bool):
        if timespans != plan.dt_value:
            if not timespans >= 0:  # NaN fails too
                raise ValueError("timespans must be >= 0 and not NaN everywhere (elapsed time between steps)")
        dt = plan.number_dt(timespans)
    else:
        dt = step_times(timespans, batch, x)  # (1, B), checked
    if x.stride(1) != 1:
        x = x.contiguous()
    if h.stride(1) != 1:
        h = h.contiguous()
    new_h, status = plan.run(x, x.stride(0), h, dt)
    if status:
        raise (
            ValueError(f"the CfC kernel takes at most {MAX_LAYERS} layers")
            if status == _STATUS_INVALID
            else MemoryError("the CfC kernel could not allocate its work space")
        )
    return new_h


def try_layer_step_no_grad(
    cell: WiredCfCCell, input: Tensor, h: Tensor, timespans: Any, batch_first: bool, return_sequences: bool
) -> tuple[Tensor, Tensor] | None:
    """The wired ``CfC`` layer's online call, ``y, h = cfc(x[:, None], h)`` without autograd, straight on this
    thread's step tables: ``input`` (B, 1, I) if ``batch_first`` else (1, B, I), ``h`` (B, N), ``timespans`` a
    number. Returns ``(motor outputs in the layer's shape, new state)`` (before the layer's projection), or None
    wherever :func:`step_no_grad` without ``build`` would, for any other layout, a tensor time, or a negative or
    NaN time (the caller's general path explains)."""
    plan = cell.__dict__.get("_step_plans", _NO_PLANS).get(_get_ident())
    if plan is None or not isinstance(timespans, (int, float)) or isinstance(timespans, bool) or not timespans >= 0:
        return None
    shape = input.shape
    if len(shape) != 3:
        return None
    batch, steps = (shape[0], shape[1]) if batch_first else (shape[1], shape[0])
    if (
        steps != 1
        or (batch, shape[2]) != plan.x_shape
        or h.shape != plan.h_shape
        or input.dtype is not plan.dtype
        or h.dtype is not plan.dtype
        or not input.is_cpu
        or not h.is_cpu
        or torch._C._are_functorch_transforms_active()
        or plan.current_key(cell) != plan.key
    ):
        return None
    x_strides, h_strides = input.stride(), h.stride()
    if x_strides[2] != 1 or h_strides[1] != 1:
        return None
    new_h, status = plan.run(input, x_strides[0 if batch_first else 1], h, plan.number_dt(timespans))
    if status:
        return None
    motor = cell._motor_slice
    if motor is None:  # motor neurons not contiguous in the state: gather
        out = cell.motor_outputs(new_h)
        return (out.unsqueeze(1 if batch_first else 0) if return_sequences else out), new_h
    n, m = plan.n_state, motor.stop - motor.start  # one view op in the layer's shape
    if not return_sequences:
        return new_h.as_strided((batch, m), (n, 1), motor.start), new_h
    if batch_first:
        return new_h.as_strided((batch, 1, m), (n, n, 1), motor.start), new_h
    return new_h.as_strided((1, batch, m), (batch * n, n, 1), motor.start), new_h


def step_times(ts: Any, batch: int, ref: Tensor) -> Tensor:
    """A cell's elapsed time (number, 0-d, (B,) or (B, 1)) as a (1, B) view, checked (>= 0, not NaN)."""
    if isinstance(ts, (int, float)) and not isinstance(ts, bool):
        if not ts >= 0:  # NaN fails too
            raise ValueError("timespans must be >= 0 and not NaN everywhere (elapsed time between steps)")
        return ref.new_full((1, 1), ts).expand(1, batch)
    return cell_elapsed_time(ts, batch, ref, "timespans").t()
