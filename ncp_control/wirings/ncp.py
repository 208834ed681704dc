"""Neural Circuit Policy wirings: ``NCP`` (explicit sizes and fan-outs) and ``AutoNCP`` (sizes from a budget).

An NCP (Lechner et al. 2020) is a four-layer feed-forward circuit with recurrence in one layer::

    sensory inputs --sensory_fanout--> inter --inter_fanout--> command --motor_fanin--> motor
                                                              (recurrent command synapses)

Neuron ids: motor ``[0, M)``, command ``[M, M+C)``, inter ``[M+C, N)`` (as ncps). Layers for the cells:
0 = inter, 1 = command, 2 = motor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import checks
from ._sampling import fair_polarity, sample_distinct, uniform_index
from ._validation import check_seed
from .base import Wiring


class NCP(Wiring):
    """Neural Circuit Policy wiring with explicit layer sizes and connectivity.

    All synapses are created by ``build(input_dim)`` (before it, ``adjacency_matrix`` is all zeros), from one
    ``numpy.random.RandomState(seed)`` stream in ncps 1.0.1's order, so the matrices equal ``ncps.wirings.NCP``'s:

    1. sensory -> inter: each input synapses onto ``sensory_fanout`` distinct inter neurons; every inter neuron that
       got none then receives ``clip(input_dim * sensory_fanout // inter_neurons, 1, input_dim)`` distinct inputs.
    2. inter -> command: each inter neuron onto ``inter_fanout`` distinct command neurons; every command neuron left
       without input receives ``clip(inter_neurons * inter_fanout // command_neurons, 1, command_neurons)`` distinct
       inter neurons (ncps's upper bound; it never exceeds ``inter_neurons``).
    3. command -> command: ``recurrent_command_synapses`` draws of (source, destination, polarity) with replacement;
       a repeated pair overwrites the earlier one, so there can be fewer recurrent synapses than draws, and
       self-synapses are possible.
    4. command -> motor: each motor neuron receives ``motor_fanin`` distinct command neurons; every command neuron
       left without a motor target synapses onto ``clip(motor_neurons * motor_fanin // command_neurons, 1,
       motor_neurons)`` distinct motor neurons.

    Every polarity is -1 or +1 with probability 1/2. So there is no sensory->command, sensory->motor or inter->motor
    synapse, every neuron has an input and (except motor neurons) an output, and every neuron is reachable from
    the sensory inputs.

    Args:
        inter_neurons: number of inter neurons (layer 0), >= 1.
        command_neurons: number of command neurons (layer 1), >= 1.
        motor_neurons: number of motor neurons (layer 2, the output size), >= 1.
        sensory_fanout: inter neurons per sensory input, in ``[1, inter_neurons]``.
        inter_fanout: command neurons per inter neuron, in ``[1, command_neurons]``.
        recurrent_command_synapses: number of recurrent command synapse draws, >= 0.
        motor_fanin: command neurons per motor neuron, in ``[1, command_neurons]``.
        seed: integer in ``[0, 2**32 - 1]`` (default 22222, as ncps).

    Example (the lane-keeping network of the NCP paper, ~250 synapses on 32 inputs)::

        NCP(12, 6, 1, sensory_fanout=6, inter_fanout=4, recurrent_command_synapses=6, motor_fanin=6)
    """

    def __init__(
        self,
        inter_neurons: int,
        command_neurons: int,
        motor_neurons: int,
        sensory_fanout: int,
        inter_fanout: int,
        recurrent_command_synapses: int,
        motor_fanin: int,
        seed: int = 22222,
    ) -> None:
        n_inter = checks.int_in_range("inter_neurons", inter_neurons, low=1)
        n_command = checks.int_in_range("command_neurons", command_neurons, low=1)
        n_motor = checks.int_in_range("motor_neurons", motor_neurons, low=1)
        super().__init__(n_inter + n_command + n_motor)
        self.set_output_dim(n_motor)
        self._num_inter = n_inter
        self._num_command = n_command
        self._num_motor = n_motor
        self._sensory_fanout = checks.int_in_range(
            "sensory_fanout", sensory_fanout, 1, n_inter, hint="the number of inter neurons"
        )
        self._inter_fanout = checks.int_in_range(
            "inter_fanout", inter_fanout, 1, n_command, hint="the number of command neurons"
        )
        self._recurrent_command_synapses = checks.int_in_range(
            "recurrent_command_synapses", recurrent_command_synapses, low=0
        )
        self._motor_fanin = checks.int_in_range(
            "motor_fanin", motor_fanin, 1, n_command, hint="the number of command neurons"
        )
        self._seed = check_seed("seed", seed)
        self._rng = np.random.RandomState(self._seed)

    # ------------------------------------------------------------------ read-only arguments
    @property
    def num_inter_neurons(self) -> int:
        return self._num_inter

    @property
    def num_command_neurons(self) -> int:
        return self._num_command

    @property
    def num_motor_neurons(self) -> int:
        return self._num_motor

    @property
    def sensory_fanout(self) -> int:
        return self._sensory_fanout

    @property
    def inter_fanout(self) -> int:
        return self._inter_fanout

    @property
    def recurrent_command_synapses(self) -> int:
        return self._recurrent_command_synapses

    @property
    def motor_fanin(self) -> int:
        return self._motor_fanin

    @property
    def seed(self) -> int:
        return self._seed

    # ------------------------------------------------------------------ neurons and layers
    @property
    def num_layers(self) -> int:
        return 3

    def _layer_ranges(self) -> tuple[range, range, range]:
        """Neuron ids of (inter, command, motor)."""
        m, c = self._num_motor, self._num_command
        return range(m + c, self.units), range(m, m + c), range(0, m)

    def get_neurons_of_layer(self, layer_id: int) -> list[int]:
        """Layer 0: inter neurons, 1: command neurons, 2: motor neurons (lists of ids)."""
        layer_id = checks.int_in_range("layer_id", layer_id, 0, 2, hint="NCP layers: 0 inter, 1 command, 2 motor")
        return list(self._layer_ranges()[layer_id])

    def get_type_of_neuron(self, neuron_id: int) -> str:
        """ "motor" for ids ``[0, M)``, "command" for ``[M, M+C)``, "inter" for ``[M+C, units)``."""
        neuron_id = checks.int_in_range("neuron_id", neuron_id, 0, self.units - 1, hint="a neuron id")
        if neuron_id < self._num_motor:
            return "motor"
        if neuron_id < self._num_motor + self._num_command:
            return "command"
        return "inter"

    # ------------------------------------------------------------------ generation
    # The fallback counts use ncps's expression int(a * b / c) (true division, then truncation).
    def _connect_on_build(self) -> None:
        inter, command, motor = (np.array(r) for r in self._layer_ranges())
        input_dim, sensory_adjacency = self._require_built("build")
        sensory = np.arange(input_dim)
        n_sensory, n_inter, n_command, n_motor = len(sensory), len(inter), len(command), len(motor)

        # 1. sensory -> inter
        self._connect_layers(
            sensory_adjacency,
            pickers=sensory,
            candidates=inter,
            picks=self._sensory_fanout,
            fallback=_clip(int(n_sensory * self._sensory_fanout / n_inter), 1, n_sensory),
            pickers_are_sources=True,
        )
        # 2. inter -> command (the fallback's upper bound is the command count, as in ncps)
        self._connect_layers(
            self._adjacency,
            pickers=inter,
            candidates=command,
            picks=self._inter_fanout,
            fallback=_clip(int(n_inter * self._inter_fanout / n_command), 1, n_command),
            pickers_are_sources=True,
        )
        # 3. command -> command, drawn with replacement
        for _ in range(self._recurrent_command_synapses):
            src = command[uniform_index(self._rng, n_command)]
            dest = command[uniform_index(self._rng, n_command)]
            self._adjacency[src, dest] = fair_polarity(self._rng)
        # 4. command -> motor: here the motor neurons (destinations) pick their command sources
        self._connect_layers(
            self._adjacency,
            pickers=motor,
            candidates=command,
            picks=self._motor_fanin,
            fallback=_clip(int(n_motor * self._motor_fanin / n_command), 1, n_motor),
            pickers_are_sources=False,
        )

    def _connect_layers(
        self,
        matrix: np.ndarray,
        pickers: np.ndarray,
        candidates: np.ndarray,
        picks: int,
        fallback: int,
        pickers_are_sources: bool,
    ) -> None:
        """Connect two layers: each picker (ascending) picks ``picks`` distinct candidates; then each candidate that
        nobody picked (ascending) picks ``fallback`` distinct pickers. One polarity is drawn right after each pick.

        ``matrix`` is indexed ``[src, dest]``; sources are the pickers if ``pickers_are_sources`` else the candidates.
        """

        def connect(picker: int, candidate: int) -> None:
            src, dest = (picker, candidate) if pickers_are_sources else (candidate, picker)
            matrix[src, dest] = fair_polarity(self._rng)

        picked = set()
        for picker in pickers:
            for candidate in sample_distinct(self._rng, candidates, picks):
                picked.add(int(candidate))
                connect(picker, candidate)
        for candidate in candidates:
            if int(candidate) not in picked:
                for picker in sample_distinct(self._rng, pickers, fallback):
                    connect(picker, candidate)

    # ------------------------------------------------------------------ config
    def _init_kwargs(self) -> dict[str, Any]:
        return {
            "inter_neurons": self._num_inter,
            "command_neurons": self._num_command,
            "motor_neurons": self._num_motor,
            "sensory_fanout": self._sensory_fanout,
            "inter_fanout": self._inter_fanout,
            "recurrent_command_synapses": self._recurrent_command_synapses,
            "motor_fanin": self._motor_fanin,
            "seed": self._seed,
        }

    @classmethod
    def _from_init_kwargs(cls, kwargs: dict[str, Any]) -> Wiring:
        if cls is NCP and isinstance(kwargs.get("inter_neurons"), list):
            raise ValueError(
                "this looks like an ncps NCP config (neuron-id lists, seed None): ncps does not save the seed, so "
                "the wiring cannot be recreated from it; construct NCP(...) with the original arguments and seed"
            )
        return super()._from_init_kwargs(kwargs)


class AutoNCP(NCP):
    """An ``NCP`` sized from a neuron budget, as ``ncps.wirings.AutoNCP`` (same layers and matrices for the same
    arguments).

    With ``density = 1 - sparsity_level`` and ``k = units - output_size`` inter and command neurons:
    ``command = max(int(0.4 k), 1)``, ``inter = k - command``, ``sensory_fanout = max(int(inter density), 1)``,
    ``inter_fanout = motor_fanin = max(int(command density), 1)``, ``recurrent_command_synapses =
    max(int(2 command density), 1)``. E.g. ``AutoNCP(19, 1)``: 11 inter, 7 command, 1 motor.

    Args:
        units: total number of neurons, >= 4.
        output_size: number of motor neurons, in ``[1, units - 3]`` (at least one inter and one command neuron and
            ncps's margin of one more).
        sparsity_level: in ``[0, 1]``; 0 is the densest NCP, 1 gives fan-outs of one. ncps refuses values below 0.1
            (its docstring says 0.0 is allowed); we accept them.
        seed: integer in ``[0, 2**32 - 1]`` (default 22222, as ncps).
    """

    def __init__(self, units: int, output_size: int, sparsity_level: float = 0.5, seed: int = 22222) -> None:
        units = checks.int_in_range("units", units, low=4)
        output_size = checks.int_in_range(
            "output_size", output_size, 1, units - 3, hint=f"fewer than units - 2 = {units - 2}, as ncps requires"
        )
        sparsity_level = checks.real_in_range("sparsity_level", sparsity_level, 0.0, 1.0)
        self._output_size = output_size
        self._sparsity_level = sparsity_level
        # The same float expressions as ncps, so int() truncates identically.
        density = 1.0 - sparsity_level
        inter_and_command = units - output_size
        command = max(int(0.4 * inter_and_command), 1)
        inter = inter_and_command - command
        super().__init__(
            inter,
            command,
            output_size,
            sensory_fanout=max(int(inter * density), 1),
            inter_fanout=max(int(command * density), 1),
            recurrent_command_synapses=max(int(command * density * 2), 1),
            motor_fanin=max(int(command * density), 1),
            seed=seed,
        )

    @property
    def output_size(self) -> int:
        return self._output_size

    @property
    def sparsity_level(self) -> float:
        return self._sparsity_level

    def _init_kwargs(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "output_size": self._output_size,
            "sparsity_level": self._sparsity_level,
            "seed": self.seed,
        }


def _clip(value: int, low: int, high: int) -> int:
    return int(min(max(value, low), high))
