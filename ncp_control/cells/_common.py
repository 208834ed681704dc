"""Shared plumbing for the cells: elapsed-time handling, wiring masks (argument checks: :mod:`ncp_control.checks`).

Nothing here is specific to LTC or CfC; the math lives in ``ltc_functional.py`` and ``cfc.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .. import checks


def is_wiring(obj: Any) -> bool:
    """Duck-typed test for a wiring object (``ncp_control.wirings`` or ``ncps.wirings``)."""
    return all(hasattr(obj, a) for a in ("adjacency_matrix", "build", "is_built", "units", "output_dim"))


def build_wiring(wiring: Any, input_size: int | None, arg_name: str) -> Any:
    """Build ``wiring`` for ``input_size`` inputs (in place, as ncps does) and check it is usable.

    Args:
        wiring: a wiring object; ``wiring.build(input_size)`` is called when ``input_size`` is given.
        input_size: number of input features, or None if the wiring is already built.
        arg_name: name of the input-size argument, for the error message.
    """
    if not is_wiring(wiring):
        raise TypeError(f"expected a wiring (e.g. ncp_control.wirings.AutoNCP(19, 1)), got {type(wiring).__name__}")
    if input_size is not None:
        wiring.build(checks.positive_int(arg_name, input_size))
    if not wiring.is_built():
        raise ValueError(
            f"the wiring's number of inputs is unknown: pass {arg_name}=<number of input features> "
            "or call wiring.build(input_dim) first"
        )
    return wiring


def abs_mask(matrix: Any) -> Tensor:
    """Float32 0/1 mask ``|matrix|`` of a ±1/0 adjacency matrix (shape preserved, [src, dest])."""
    return torch.as_tensor(np.abs(np.asarray(matrix)), dtype=torch.float32)


def check_loaded_masks(module: nn.Module, state_dict: dict, prefix: str, names: Iterable[str]) -> None:
    """Raise if a state dict carries wiring masks different from ``module``'s own buffers.

    ncps silently replaces its masks (frozen parameters) on load, which leaves the module's wiring object out
    of sync with the weights. We refuse instead: masks are part of the architecture, not of the weights.

    Args:
        module: the module being loaded into; its buffers ``names`` are the expected masks.
        state_dict: the dict given to ``load_state_dict``.
        prefix: the module's key prefix in ``state_dict``.
        names: buffer names holding masks.
    """
    for name in names:
        key = prefix + name
        own = getattr(module, name, None)
        if key not in state_dict or own is None:
            continue
        incoming = torch.as_tensor(state_dict[key]).detach().to("cpu", torch.float64)
        expected = own.detach().to("cpu", torch.float64)
        if incoming.shape != expected.shape:
            raise ValueError(
                f"state_dict entry {key!r} has shape {tuple(incoming.shape)} but this module's wiring gives "
                f"{tuple(expected.shape)}: the weights were made for a different wiring. Build the module with "
                "the same wiring (same class, arguments and seed) before loading."
            )
        if not torch.equal(incoming, expected):
            differing = int((incoming != expected).sum())
            raise ValueError(
                f"state_dict entry {key!r} differs from this module's wiring mask in {differing} of "
                f"{expected.numel()} entries: the weights were made for a different wiring. Build the module "
                "with the same wiring (same class, arguments and seed) before loading."
            )


def check_nonnegative_times(times: Tensor, name: str) -> None:
    """Raise if ``times`` holds a NaN or a negative value (one host sync; call once per forward)."""
    if not bool((times >= 0).all()):  # NaN compares False, so NaN fails too
        raise ValueError(f"{name} must be >= 0 and not NaN everywhere (elapsed time between steps)")


def cell_elapsed_time(elapsed_time: float | Tensor, batch: int, ref: Tensor, name: str) -> Tensor:
    """Elapsed time given to a single cell step as a ``(B, 1)`` tensor.

    Args:
        elapsed_time: a number, a 0-d tensor, or a tensor of shape ``(B,)`` or ``(B, 1)``.
        batch: the batch size B.
        ref: a tensor whose dtype and device the result takes.
        name: argument name for error messages.
    Returns:
        ``(B, 1)`` tensor (an expanded view where possible).
    """
    ts = torch.as_tensor(elapsed_time, dtype=ref.dtype, device=ref.device)
    if ts.dim() == 0:
        ts = ts.reshape(1, 1).expand(batch, 1)
    elif ts.shape == (batch,):
        ts = ts.unsqueeze(-1)
    elif ts.shape != (batch, 1):
        raise ValueError(f"{name} must be a number or have shape ({batch},) or ({batch}, 1), got {tuple(ts.shape)}")
    check_nonnegative_times(ts, name)
    return ts


def sequence_timespans(
    timespans: float | Tensor | None, seq_len: int, batch: int, batch_first: bool, batched: bool, ref: Tensor
) -> Tensor:
    """Elapsed times of a sequence as a time-major ``(T, B, 1)`` tensor.

    Accepted shapes (T steps, B samples), checked against the input, never guessed:

    - None (every step lasts 1.0), a number or a 0-d tensor (every step lasts that long);
    - batched input: ``(B, T)`` or ``(B, T, 1)`` if ``batch_first`` else ``(T, B)`` or ``(T, B, 1)``;
    - unbatched input: ``(T,)`` or ``(T, 1)``.

    Args:
        ref: a tensor whose dtype and device the result takes.
    """
    if timespans is None:
        return torch.ones(seq_len, batch, 1, dtype=ref.dtype, device=ref.device)
    ts = torch.as_tensor(timespans, dtype=ref.dtype, device=ref.device)
    if ts.dim() == 0:
        ts = ts.reshape(1, 1, 1).expand(seq_len, batch, 1)
    else:
        lead: tuple[int, ...]
        if batched:
            lead = (batch, seq_len) if batch_first else (seq_len, batch)
        else:
            lead = (seq_len,)
        if ts.shape == lead:
            ts = ts.unsqueeze(-1)
        elif ts.shape != lead + (1,):
            raise ValueError(
                f"timespans must be a number or have shape {lead} or {lead + (1,)} "
                f"(matching the input's leading dimensions), got {tuple(ts.shape)}"
            )
        if not batched:
            ts = ts.unsqueeze(1)  # (T, 1, 1)
        elif batch_first:
            ts = ts.transpose(0, 1)  # (B, T, 1) -> (T, B, 1)
    check_nonnegative_times(ts, "timespans")
    return ts


class PlanCache(dict[int, Any]):
    """A cell's prebuilt kernel tables by thread id (kept in ``cell.__dict__``). Copies and pickles of the cell
    start empty: the tables hold raw addresses that only mean something for the original cell's tensors.
    Adding a plan drops the plans of threads that have ended (their ids are no longer in ``threading.enumerate()``),
    so a cell used from many short-lived threads does not keep their tables."""

    __slots__ = ()

    def __setitem__(self, thread_id: int, plan: Any) -> None:
        if self:
            alive = {t.ident for t in threading.enumerate()}
            for dead in [k for k in self if k not in alive]:
                del self[dead]
        super().__setitem__(thread_id, plan)

    def __reduce__(self) -> tuple[type[PlanCache], tuple[()]]:
        return (PlanCache, ())

    def __deepcopy__(self, memo: dict[int, Any]) -> PlanCache:
        return PlanCache()

    def __copy__(self) -> PlanCache:
        return PlanCache()
