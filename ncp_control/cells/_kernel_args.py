"""Argument checks at the entry of the native kernels: shapes, dtypes, devices, strides.

The C kernels trust the sizes and addresses they are given; a tensor of the wrong size makes them read or write out
of bounds, and a tensor of another dtype is read as the wrong type. Every Python path into them checks its
arguments here first (``ValueError`` with what was expected), so that no call from Python can do either.
These checks are cheap comparisons of shapes and dtypes (a few microseconds per call).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def check_tensor(name: str, t: object, shape: Sequence[int], dtype: torch.dtype, where: str) -> None:
    """``t`` must be a CPU tensor of exactly ``shape`` and ``dtype`` (``ValueError`` saying which is wrong)."""
    if not isinstance(t, Tensor):
        raise ValueError(f"{where}: {name} must be a tensor, got {type(t).__name__}")
    if t.dtype is not dtype:
        raise ValueError(
            f"{where}: {name} has dtype {t.dtype}, expected {dtype} (the cell's parameters' dtype); "
            "convert it with .to(dtype)"
        )
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{where}: {name} has shape {tuple(t.shape)}, expected {tuple(shape)}")
    if not t.is_cpu:
        raise ValueError(f"{where}: {name} is on {t.device}; the native kernels run on the CPU")


def check_sequence_args(
    where: str, x: Tensor, h0: Tensor, dt: Tensor, reset: Tensor | None, *, inputs: int, state: int, dtype: torch.dtype
) -> tuple[int, int]:
    """Check the arguments of a whole-sequence kernel call; returns ``(T, B)``.

    x: (T, B, inputs); h0: (B, state); dt: (T, B); reset: None or (T, B) bool; all CPU and of ``dtype`` (reset
    bool). T and B must be >= 1.
    """
    try:  # the common case in one expression; anything off takes the detailed checks below, which explain
        T, B, width = x.shape
        if (
            width == inputs
            and T >= 1
            and B >= 1
            and x.dtype is dtype
            and h0.dtype is dtype
            and dt.dtype is dtype
            and h0.shape == (B, state)
            and dt.shape == (T, B)
            and x.is_cpu
            and h0.is_cpu
            and dt.is_cpu
            and (reset is None or (reset.dtype is torch.bool and reset.shape == (T, B) and reset.is_cpu))
        ):
            return T, B
    except (AttributeError, TypeError, ValueError):
        pass
    if not isinstance(x, Tensor) or x.dim() != 3:
        raise ValueError(
            f"{where}: x must be a (T, B, {inputs}) tensor, got "
            f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}"
        )
    T, B = int(x.shape[0]), int(x.shape[1])
    if T < 1 or B < 1:
        raise ValueError(f"{where}: x has shape {tuple(x.shape)}; T and B must be >= 1")
    check_tensor("x", x, (T, B, inputs), dtype, where)
    check_tensor("h0", h0, (B, state), dtype, where)
    check_tensor("dt", dt, (T, B), dtype, where)
    if reset is not None:
        check_tensor("reset", reset, (T, B), torch.bool, where)
    return T, B


def shapes_match(tensors: Sequence[Tensor | None], shapes: Sequence[tuple[int, ...]], dtype: torch.dtype) -> bool:
    """True when every tensor exists, is on the CPU, has ``dtype`` and its shape (the quick test before the
    detailed :func:`check_parameters`, which says what is wrong)."""
    return all(
        t is not None and t.shape == s and t.dtype is dtype and t.is_cpu for t, s in zip(tensors, shapes)
    ) and len(tensors) == len(shapes)


def check_parameters(
    where: str, named: Sequence[tuple[str, Tensor | None, Sequence[int] | None]], dtype: torch.dtype
) -> None:
    """Each ``(name, tensor, shape)``: a CPU tensor of ``shape`` and ``dtype``; ``shape=None`` means the tensor must
    be absent (None) for this configuration, a tensor of ``None`` with a shape means it is missing."""
    for name, t, shape in named:
        if shape is None:
            continue
        if t is None:
            raise ValueError(f"{where}: the cell has no {name}, which the kernel needs")
        check_tensor(f"the cell's {name}", t, shape, dtype, where)
