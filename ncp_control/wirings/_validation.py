"""Argument checks of the wiring classes that are about wirings (seeds, polarities, adjacency matrices).

The general checks (integers in a range, fractions, booleans) are those of :mod:`ncp_control.checks`, whose
exception policy these follow: ``TypeError`` for a value of the wrong kind and ``ValueError`` for a value of the
right kind outside its allowed range; the message names the argument, the allowed values and what was given.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike

from .. import checks

# numpy.random.RandomState accepts integer seeds in [0, 2**32 - 1]; we use the same range for every wiring so a seed
# that works for one class works for all and is always a plain JSON integer.
MAX_SEED = 2**32 - 1


def check_seed(name: str, value: object) -> int:
    """Return an integer seed in ``[0, 2**32 - 1]`` (``None`` is refused: a wiring must be reproducible)."""
    if value is None:
        raise checks.ArgumentTypeError(
            f"{name} must be an integer in [0, {MAX_SEED}]; None (an unseeded wiring) cannot be reproduced or saved"
        )
    return checks.int_in_range(name, value, 0, MAX_SEED)  # what checks.seed does with high, typed int


def check_polarity(value: object) -> int:
    """Return a synapse polarity as the ``int`` -1 (inhibitory) or +1 (excitatory)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or value not in (-1, 1):
        raise ValueError(f"polarity must be -1 (inhibitory) or +1 (excitatory), got {value!r}")
    return -1 if value == -1 else 1


def check_matrix(name: str, value: ArrayLike, shape: tuple[int, int]) -> np.ndarray:
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
