"""Random draws that reproduce ncps 1.0.1's wirings bit for bit.

ncps draws every polarity with a separate scalar call, so the stream of random numbers depends on the exact
sequence of calls, not only on their results. These helpers make the same calls on the same generator types
(``numpy.random.Generator`` for ``FullyConnected``/``Random``, the legacy ``numpy.random.RandomState`` for
``NCP``/``AutoNCP``) in our own terms; ``tests/test_wirings.py`` checks the resulting matrices against ncps.

Note for maintainers: a single vectorised call (``rng.integers(3, size=n)``) consumes the bit stream differently
from ``n`` scalar calls (numpy packs two 32-bit draws into one 64-bit word only within one call), so the loops
over scalar draws in the wiring classes are deliberate.
"""

from __future__ import annotations

import numpy as np

# Generator-based wirings pick a polarity uniformly from (-1, +1, +1): excitatory with probability 2/3.
_BIASED_POLARITIES = (-1, 1, 1)
# RandomState-based wirings (NCP) pick uniformly from (-1, +1).
_FAIR_POLARITIES = (-1, 1)


def biased_polarity(rng: np.random.Generator) -> int:
    """One polarity, -1 with probability 1/3 and +1 with probability 2/3 (one scalar draw from ``rng``)."""
    return _BIASED_POLARITIES[int(rng.integers(len(_BIASED_POLARITIES)))]


def fair_polarity(rng: np.random.RandomState) -> int:
    """One polarity, -1 or +1 with probability 1/2 each (one scalar draw from ``rng``)."""
    return _FAIR_POLARITIES[int(rng.randint(len(_FAIR_POLARITIES)))]


def uniform_index(rng: np.random.RandomState, n: int) -> int:
    """One index drawn uniformly from ``range(n)``."""
    return int(rng.randint(n))


def sample_distinct(rng: np.random.Generator | np.random.RandomState, ids: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct entries of the 1-D array ``ids``, in the random order ``rng.choice(..., replace=False)`` gives.

    Works for both generator types; the draw depends only on ``len(ids)`` and ``k``, not on the id values.
    """
    return ids[rng.choice(len(ids), size=k, replace=False)]
