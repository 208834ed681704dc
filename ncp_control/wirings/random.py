"""``Random``: a given fraction of all possible synapses, chosen uniformly at random."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import checks
from ._sampling import biased_polarity
from ._validation import check_seed
from .base import Wiring


class Random(Wiring):
    """Random sparse wiring: ``round(units**2 * (1 - sparsity_level))`` internal synapses and, at ``build``,
    ``round(input_dim * units * (1 - sparsity_level))`` sensory synapses, each set chosen uniformly without
    replacement; polarity +1 with probability 2/3, -1 with 1/3.

    The draws come from one ``numpy.random.default_rng(random_seed)`` stream in the order ncps 1.0.1 uses, so the
    matrices equal ``ncps.wirings.Random``'s for the same arguments. ncps draws two polarities per sensory synapse
    and keeps the second; we do the same draws so that the matrices stay identical.
    (Rounding is numpy's round-half-to-even.)

    Neuron types: ids ``[0, output_dim)`` are "motor", the rest "inter"; one layer.

    Args:
        units: number of neurons, >= 1.
        output_dim: number of motor neurons in ``[1, units]``; ``None`` (default) means ``units``.
        sparsity_level: fraction of absent synapses, in ``[0, 1)`` (0 = fully connected).
        random_seed: integer in ``[0, 2**32 - 1]`` (default 1111, as ncps).
    """

    def __init__(
        self,
        units: int,
        output_dim: int | None = None,
        sparsity_level: float = 0.0,
        random_seed: int = 1111,
    ) -> None:
        super().__init__(units)
        self.set_output_dim(self.units if output_dim is None else output_dim)
        self._sparsity_level = checks.real_in_range("sparsity_level", sparsity_level, 0.0, 1.0, high_open=True)
        self._random_seed = check_seed("random_seed", random_seed)
        self._rng = np.random.default_rng(self._random_seed)
        self._fill_random(self._adjacency, draws_per_synapse=1)

    @property
    def sparsity_level(self) -> float:
        return self._sparsity_level

    @property
    def random_seed(self) -> int:
        return self._random_seed

    def _connect_on_build(self) -> None:
        _, sensory = self._require_built("build")
        self._fill_random(sensory, draws_per_synapse=2)

    def _fill_random(self, matrix: np.ndarray, draws_per_synapse: int) -> None:
        """Set ``round(matrix.size * density)`` entries of ``matrix`` (shape ``(n_src, units)``) to random polarities.

        Entries are chosen as flat indices ``src * units + dest`` (the order of ncps's list of (src, dest) pairs).
        """
        n_src, n_dest = matrix.shape
        # Same float expression as ncps ((n_src * n_dest) * density), so the rounding agrees exactly.
        count = int(np.round(n_src * n_dest * (1 - self._sparsity_level)))
        chosen = self._rng.choice(n_src * n_dest, size=count, replace=False)
        for flat in chosen:
            src, dest = divmod(int(flat), n_dest)
            for _ in range(draws_per_synapse):  # the last draw wins, as in ncps
                matrix[src, dest] = biased_polarity(self._rng)

    def _init_kwargs(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "output_dim": self.output_dim,
            "sparsity_level": self._sparsity_level,
            "random_seed": self._random_seed,
        }
