"""Argument checks shared by the wiring classes.

Every check raises ``TypeError`` for a value of the wrong kind and ``ValueError`` for a value of the right kind
outside its allowed range; the message names the argument, the allowed values and what was given.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

# numpy.random.RandomState accepts integer seeds in [0, 2**32 - 1]; we use the same range for every wiring so a seed
# that works for one class works for all and is always a plain JSON integer.
MAX_SEED = 2**32 - 1


def check_int(name: str, value, low: int | None = None, high: int | None = None, why: str = "") -> int:
    """Return ``value`` as a Python ``int`` after checking that it is an integer in ``[low, high]``.

    ``bool`` is rejected although it subclasses ``int``: ``NCP(True, ...)`` is almost certainly a mistake.
    ``why`` is appended to the range message (e.g. "the number of inter neurons").
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            allowed = f">= {low}"
        elif low is None:
            allowed = f"<= {high}"
        else:
            allowed = f"in [{low}, {high}]"
        suffix = f" ({why})" if why else ""
        raise ValueError(f"{name} must be an integer {allowed}{suffix}, got {value}")
    return value


def check_seed(name: str, value) -> int:
    """Return an integer seed in ``[0, 2**32 - 1]`` (``None`` is refused: a wiring must be reproducible)."""
    if value is None:
        raise TypeError(
            f"{name} must be an integer in [0, {MAX_SEED}]; None (an unseeded wiring) cannot be reproduced or saved"
        )
    return check_int(name, value, 0, MAX_SEED)


def check_fraction(name: str, value, low: float, high: float, high_inclusive: bool) -> float:
    """Return ``value`` as a Python ``float`` in ``[low, high]`` or ``[low, high)``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    above = value > high if high_inclusive else value >= high
    if not math.isfinite(value) or value < low or above:
        bracket = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must be in [{low}, {high}{bracket}, got {value}")
    return value


def check_bool(name: str, value) -> bool:
    """Return ``value`` as a Python ``bool``; integers such as 0/1 are refused to catch swapped arguments."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} of type {type(value).__name__}")
    return bool(value)


def check_polarity(value) -> int:
    """Return a synapse polarity as the ``int`` -1 (inhibitory) or +1 (excitatory)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or value not in (-1, 1):
        raise ValueError(f"polarity must be -1 (inhibitory) or +1 (excitatory), got {value!r}")
    return int(value)


def check_matrix(name: str, value, shape: tuple[int, int]) -> np.ndarray:
    """Return ``value`` as a fresh int32 array of ``shape`` whose entries are all in {-1, 0, +1}."""
    try:
        array = np.array(value)
    except (TypeError, ValueError) as error:  # ragged nested lists
        raise ValueError(f"{name} must be a {shape[0]}x{shape[1]} matrix of -1/0/+1 entries: {error}") from None
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if array.size and not (np.issubdtype(array.dtype, np.number) and np.isin(array, (-1, 0, 1)).all()):
        raise ValueError(f"{name} entries must be -1, 0 or +1")
    return array.astype(np.int32)
