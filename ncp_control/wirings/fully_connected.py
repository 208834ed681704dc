"""``FullyConnected``: every neuron connected to every neuron and every input, random polarities."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import checks
from ._sampling import biased_polarity
from ._validation import check_seed
from .base import Wiring


class FullyConnected(Wiring):
    """All-to-all wiring: each neuron receives a synapse from every neuron and every sensory input.

    Polarities are drawn independently, +1 with probability 2/3 and -1 with probability 1/3, first for the internal
    synapses (row by row: source 0 to destinations 0..units-1, then source 1, ...), then at ``build`` for the sensory
    ones in the same order, from one ``numpy.random.default_rng(erev_init_seed)`` stream: the same matrices as
    ``ncps.wirings.FullyConnected`` with the same arguments.

    Neuron types: ids ``[0, output_dim)`` are "motor", the rest "inter"; one layer.

    Args:
        units: number of neurons, >= 1.
        output_dim: number of motor neurons in ``[1, units]``; ``None`` (default) means ``units``.
        erev_init_seed: seed of the polarity draws, integer in ``[0, 2**32 - 1]`` (default 1111, as ncps).
        self_connections: whether each neuron also synapses onto itself (default True).
    """

    def __init__(
        self,
        units: int,
        output_dim: int | None = None,
        erev_init_seed: int = 1111,
        self_connections: bool = True,
    ) -> None:
        super().__init__(units)
        self.set_output_dim(self.units if output_dim is None else output_dim)
        self._erev_init_seed = check_seed("erev_init_seed", erev_init_seed)
        self._self_connections = checks.boolean("self_connections", self_connections)
        self._rng = np.random.default_rng(self._erev_init_seed)
        for src in range(self.units):
            for dest in range(self.units):
                if src != dest or self._self_connections:
                    self._adjacency[src, dest] = biased_polarity(self._rng)

    @property
    def erev_init_seed(self) -> int:
        return self._erev_init_seed

    @property
    def self_connections(self) -> bool:
        return self._self_connections

    def _connect_on_build(self) -> None:
        input_dim, sensory = self._require_built("build")
        for src in range(input_dim):
            for dest in range(self.units):
                sensory[src, dest] = biased_polarity(self._rng)

    def _init_kwargs(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "output_dim": self.output_dim,
            "erev_init_seed": self._erev_init_seed,
            "self_connections": self._self_connections,
        }
