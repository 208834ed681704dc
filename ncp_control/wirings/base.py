"""``Wiring``: the synapse graph of a wired recurrent cell (numpy only).

A wiring says which neuron feeds which, and with which sign, for ``units`` neurons and ``input_dim`` sensory inputs.
The cells (``ncp_control.cells``) turn it into sparsity masks and the initial reversal potentials of their synapses.

Conventions (the same as ncps 1.0.1, so wirings of either library can be handed to cells of either):

* Neurons have ids ``0 .. units-1``. The first ``output_dim`` ids are the motor neurons: a cell's output is its state
  at those ids. Sensory inputs have their own ids ``0 .. input_dim-1``; they are not neurons of the cell.
* ``adjacency_matrix[src, dest]`` (shape ``(units, units)``, int32) is +1 for an excitatory synapse from neuron
  ``src`` to neuron ``dest``, -1 for an inhibitory one and 0 for none.
* ``sensory_adjacency_matrix[src, dest]`` (shape ``(input_dim, units)``, int32) is the same for synapses from sensory
  input ``src`` to neuron ``dest``; it exists only once the wiring is built (``build(input_dim)``), because the
  number of inputs is usually known only when the wiring meets its first cell.
* Neuron types are "motor", "command" and "inter" (only ``NCP``/``AutoNCP`` have command neurons; other wirings
  call every non-motor neuron "inter"). Sensory inputs have the type "sensory" in graphs and drawings.

Differences from ncps, on purpose:

* ``sensory_synapse_count`` counts the sensory synapses (ncps returns the internal count).
* ``build`` with the input size it was already built with is a no-op (ncps's subclasses draw a second set of sensory
  synapses on top of the first); a different size raises ``ValueError``.
* ``adjacency_matrix`` and ``sensory_adjacency_matrix`` are read-only views: change synapses with ``add_synapse`` /
  ``add_sensory_synapse``, which validate ids and polarity. Copy them (``np.array(w.adjacency_matrix)``,
  ``torch.tensor(...)``) before handing them to code that writes.
* ``get_config()`` is JSON-serialisable, does not touch the random state, and ``Wiring.from_config`` rebuilds the
  exact wiring for every class (ncps's ``NCP`` config cannot be loaded back and reseeds the generator).
* Seeds must be integers in ``[0, 2**32 - 1]``; ``get_graph``/``draw_graph`` are ``to_networkx``/``draw``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .. import checks
from ._validation import check_matrix, check_polarity

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    from matplotlib.axes import Axes
    from torch import Tensor

NeuronType = Literal["motor", "command", "inter"]
NEURON_TYPES: tuple[str, ...] = ("motor", "command", "inter")

# Keys of get_config() that describe state rather than constructor arguments.
_STATE_KEYS = ("class_name", "input_dim", "adjacency_matrix", "sensory_adjacency_matrix")


class Wiring:
    """A hand-made wiring of ``units`` neurons: starts with no synapses; add them with ``add_synapse``.

    Subclasses (``FullyConnected``, ``Random``, ``NCP``, ``AutoNCP``) generate their synapses from a seed.

    Args:
        units: number of neurons (the cell's state size), >= 1.

    Example::

        w = Wiring(3)
        w.set_output_dim(1)          # neuron 0 is the motor neuron
        w.add_synapse(2, 1, +1)      # excitatory synapse from neuron 2 to neuron 1
        w.add_synapse(1, 0, -1)
        w.build(4)                   # four sensory inputs, no sensory synapses yet
        w.add_sensory_synapse(0, 2, +1)

    Subclassing: generate internal synapses in ``__init__`` (write ``self._adjacency``), sensory ones (and any that
    need ``input_dim``) in ``_connect_on_build``, and return the constructor arguments from ``_init_kwargs`` so that
    ``get_config``/``from_config`` round-trip; subclasses register themselves for ``Wiring.from_config`` by class name.
    """

    # Every subclass is registered by its class name so that Wiring.from_config can find it.
    _registry: ClassVar[dict[str, type[Wiring]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Wiring._registry.setdefault(cls.__name__, cls)

    def __init__(self, units: int) -> None:
        self._units = checks.int_in_range("units", units, low=1)
        self._adjacency = np.zeros((self._units, self._units), dtype=np.int32)
        self._sensory_adjacency: np.ndarray | None = None
        self._input_dim: int | None = None
        self._output_dim: int | None = None

    # ------------------------------------------------------------------ sizes
    @property
    def units(self) -> int:
        """Number of neurons."""
        return self._units

    @property
    def state_size(self) -> int:
        """State size of a cell on this wiring (= ``units``)."""
        return self._units

    @property
    def input_dim(self) -> int | None:
        """Number of sensory inputs, or ``None`` before ``build``."""
        return self._input_dim

    @property
    def output_dim(self) -> int | None:
        """Number of motor neurons (the cell's output size), or ``None`` if never set (plain ``Wiring`` only)."""
        return self._output_dim

    @property
    def motor_size(self) -> int | None:
        """Number of motor neurons (= ``output_dim``)."""
        return self._output_dim

    def set_output_dim(self, output_dim: int) -> None:
        """Declare the first ``output_dim`` neurons motor neurons (once; the same value again is a no-op)."""
        output_dim = checks.int_in_range("output_dim", output_dim, 1, self._units, hint="the number of units")
        if self._output_dim is not None and self._output_dim != output_dim:
            raise ValueError(f"output_dim is already {self._output_dim}; it cannot be changed to {output_dim}")
        self._output_dim = output_dim

    def is_built(self) -> bool:
        """Whether ``build(input_dim)`` has been called (the sensory synapses exist)."""
        return self._input_dim is not None

    def build(self, input_dim: int) -> None:
        """Create the sensory synapses for ``input_dim`` inputs (and, for ``NCP``, all internal synapses).

        Building again with the same ``input_dim`` does nothing; a different ``input_dim`` raises ``ValueError``.
        """
        input_dim = checks.int_in_range("input_dim", input_dim, low=1)
        if self._input_dim is not None:
            if input_dim != self._input_dim:
                raise ValueError(
                    f"{type(self).__name__} is already built for {self._input_dim} inputs and cannot be rebuilt for "
                    f"{input_dim}; create a new wiring (same arguments and seed) for the other input size"
                )
            return
        self._input_dim = input_dim
        self._sensory_adjacency = np.zeros((input_dim, self._units), dtype=np.int32)
        self._connect_on_build()

    def _connect_on_build(self) -> None:
        """Hook for subclasses: add the synapses that need ``input_dim``. The plain wiring adds none."""

    # ------------------------------------------------------------------ synapses
    @property
    def adjacency_matrix(self) -> np.ndarray:
        """Internal synapses, int32 ``(units, units)`` indexed ``[src, dest]``, entries -1/0/+1 (read-only view)."""
        return _read_only(self._adjacency)

    @property
    def sensory_adjacency_matrix(self) -> np.ndarray | None:
        """Sensory synapses, int32 ``(input_dim, units)`` ``[src, dest]``, -1/0/+1 (read-only view).

        ``None`` before ``build``.
        """
        return None if self._sensory_adjacency is None else _read_only(self._sensory_adjacency)

    @property
    def synapse_count(self) -> int:
        """Number of synapses between neurons (nonzero entries of ``adjacency_matrix``)."""
        return int(np.count_nonzero(self._adjacency))

    @property
    def sensory_synapse_count(self) -> int:
        """Number of synapses from sensory inputs to neurons (nonzero entries of ``sensory_adjacency_matrix``)."""
        _, sensory = self._require_built("sensory_synapse_count")
        return int(np.count_nonzero(sensory))

    def add_synapse(self, src: int, dest: int, polarity: int) -> None:
        """Set the synapse from neuron ``src`` to neuron ``dest`` to ``polarity`` (-1 or +1), replacing any old one."""
        src = checks.int_in_range("src", src, 0, self._units - 1, hint="a neuron id")
        dest = checks.int_in_range("dest", dest, 0, self._units - 1, hint="a neuron id")
        self._adjacency[src, dest] = check_polarity(polarity)

    def add_sensory_synapse(self, src: int, dest: int, polarity: int) -> None:
        """Set the synapse from sensory input ``src`` to neuron ``dest`` to ``polarity`` (-1 or +1). Needs ``build``."""
        input_dim, sensory = self._require_built("add_sensory_synapse")
        src = checks.int_in_range("src", src, 0, input_dim - 1, hint="a sensory input id")
        dest = checks.int_in_range("dest", dest, 0, self._units - 1, hint="a neuron id")
        sensory[src, dest] = check_polarity(polarity)

    def erev_initializer(self, shape: Sequence[int] | None = None, dtype: DTypeLike | None = None) -> np.ndarray:
        """Initial reversal potentials of the internal synapses: a writable copy of ``adjacency_matrix``.

        Args:
            shape: optional expected shape ``(units, units)`` (checked, for Keras-style initializer calls).
            dtype: optional numpy dtype of the result (default int32).
        Returns:
            ``(units, units)`` array.
        """
        return _initial_values("erev_initializer", self._adjacency, shape, dtype)

    def sensory_erev_initializer(
        self, shape: Sequence[int] | None = None, dtype: DTypeLike | None = None
    ) -> np.ndarray:
        """Initial reversal potentials of the sensory synapses: a writable ``(input_dim, units)`` copy.

        Same arguments as ``erev_initializer``; needs ``build``.
        """
        _, sensory = self._require_built("sensory_erev_initializer")
        return _initial_values("sensory_erev_initializer", sensory, shape, dtype)

    # ------------------------------------------------------------------ neurons and layers
    @property
    def num_layers(self) -> int:
        """Number of neuron layers (1 here; 3 for ``NCP``: inter, command, motor)."""
        return 1

    def get_neurons_of_layer(self, layer_id: int) -> list[int]:
        """Neuron ids of layer ``layer_id`` (0 .. num_layers-1), as a list of ints (ncps's format)."""
        n_layers = self.num_layers
        checks.int_in_range(
            "layer_id", layer_id, 0, n_layers - 1, hint=f"{type(self).__name__} has {n_layers} layer(s)"
        )
        return list(range(self._units))

    def get_type_of_neuron(self, neuron_id: int) -> str:
        """ "motor" for ids below ``output_dim``, otherwise "inter" (every neuron is "inter" if output_dim is unset)."""
        neuron_id = checks.int_in_range("neuron_id", neuron_id, 0, self._units - 1, hint="a neuron id")
        return "motor" if neuron_id < (self._output_dim or 0) else "inter"

    @property
    def neuron_types(self) -> np.ndarray:
        """Type of every neuron: string array of shape ``(units,)`` with entries "motor", "command" or "inter"."""
        return np.array([self.get_type_of_neuron(i) for i in range(self._units)], dtype="<U7")

    def neuron_ids(self, neuron_type: NeuronType) -> np.ndarray:
        """Ids of the neurons of one type ("motor", "command" or "inter"), ascending, int64 array (may be empty)."""
        if neuron_type == "sensory":
            raise ValueError(
                "sensory inputs are not neurons of the cell: their ids are range(input_dim), "
                "indices into the rows of sensory_adjacency_matrix"
            )
        checks.choice("neuron_type", neuron_type, NEURON_TYPES)
        return np.flatnonzero(self.neuron_types == neuron_type)

    # ------------------------------------------------------------------ graph
    def to_networkx(
        self, erev: ArrayLike | Tensor | None = None, sensory_erev: ArrayLike | Tensor | None = None
    ) -> nx.DiGraph:
        """The wiring as a ``networkx.DiGraph`` (needs networkx); see ``ncp_control.wirings.graph.to_networkx``."""
        from .graph import to_networkx

        return to_networkx(self, erev=erev, sensory_erev=sensory_erev)

    def draw(
        self,
        ax: Axes | None = None,
        erev: ArrayLike | Tensor | None = None,
        sensory_erev: ArrayLike | Tensor | None = None,
        **kwargs: Any,
    ) -> Axes:
        """Draw the wiring by layer (needs matplotlib and networkx); see ``ncp_control.wirings.graph.draw``."""
        from .graph import draw

        return draw(self, ax=ax, erev=erev, sensory_erev=sensory_erev, **kwargs)

    # ------------------------------------------------------------------ config
    def _init_kwargs(self) -> dict[str, Any]:
        """Constructor arguments that recreate this wiring before any synapse is edited (JSON types only)."""
        return {"units": self._units, "output_dim": self._output_dim}

    @classmethod
    def _from_init_kwargs(cls, kwargs: dict[str, Any]) -> Wiring:
        """Inverse of ``_init_kwargs``: a fresh wiring, before build. Subclasses take them as constructor arguments."""
        if cls.__init__ is not Wiring.__init__:
            return cls(**kwargs)
        # The plain wiring's constructor takes only units; output_dim goes through set_output_dim.
        wiring = cls(kwargs["units"])
        if kwargs.get("output_dim") is not None:
            wiring.set_output_dim(kwargs["output_dim"])
        return wiring

    @classmethod
    def _init_kwarg_names(cls) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Names ``_from_init_kwargs`` accepts, and the subset it requires."""
        if cls.__init__ is Wiring.__init__:
            return ("units", "output_dim"), ("units",)
        params = [p for name, p in inspect.signature(cls.__init__).parameters.items() if name != "self"]
        required = tuple(p.name for p in params if p.default is inspect.Parameter.empty)
        return tuple(p.name for p in params), required

    def get_config(self) -> dict[str, Any]:
        """Everything needed to rebuild this exact wiring, as JSON-serialisable Python types.

        Keys: ``class_name``, the constructor arguments (e.g. ``seed``), ``input_dim`` (``None`` if not built),
        ``adjacency_matrix`` and ``sensory_adjacency_matrix`` (nested lists; the latter ``None`` if not built).
        Reading the config changes nothing (no reseeding).
        """
        sensory = None if self._sensory_adjacency is None else self._sensory_adjacency.tolist()
        return {
            "class_name": type(self).__name__,
            **self._init_kwargs(),
            "input_dim": self._input_dim,
            "adjacency_matrix": self._adjacency.tolist(),
            "sensory_adjacency_matrix": sensory,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Wiring:
        """Rebuild a wiring from ``get_config()`` output (also after a JSON round trip).

        ``Wiring.from_config`` dispatches on ``config["class_name"]``; a subclass's ``from_config`` also accepts a
        config without ``class_name`` (e.g. the configs ncps writes for ``FullyConnected``, ``Random``, ``AutoNCP``
        and the plain ``Wiring``). The wiring is recreated from its constructor arguments and seed, built if the
        saved one was, and then given the saved matrices, so synapses edited by hand survive the round trip.
        """
        if not isinstance(config, Mapping):
            raise TypeError(f"config must be a mapping (the dict get_config() returns), got {type(config).__name__}")
        config = dict(config)
        class_name = config.pop("class_name", None)
        target = cls
        if class_name is not None:
            if class_name not in Wiring._registry and class_name != "Wiring":
                known = sorted(["Wiring", *Wiring._registry])
                raise ValueError(f"unknown wiring class_name {class_name!r}; known: {known}")
            target = Wiring if class_name == "Wiring" else Wiring._registry[class_name]
            if not issubclass(target, cls):
                raise ValueError(
                    f"config describes a {class_name}, not a {cls.__name__}; load it with Wiring.from_config"
                )
        input_dim = config.pop("input_dim", None)
        adjacency = config.pop("adjacency_matrix", None)
        sensory = config.pop("sensory_adjacency_matrix", None)

        expected, required = target._init_kwarg_names()
        unexpected = sorted(set(config) - set(expected))
        if unexpected:
            raise ValueError(
                f"unexpected keys {unexpected} in a {target.__name__} config; allowed: "
                f"{sorted([*expected, *_STATE_KEYS])}"
            )
        missing = [name for name in required if name not in config]
        if missing:
            raise ValueError(f"a {target.__name__} config needs the keys {missing}")
        wiring = target._from_init_kwargs(config)
        if input_dim is not None:
            wiring.build(input_dim)
        if adjacency is not None:
            wiring._adjacency = check_matrix("adjacency_matrix", adjacency, (wiring.units, wiring.units))
        if sensory is not None:
            if input_dim is None:
                raise ValueError("config has a sensory_adjacency_matrix but no input_dim")
            wiring._sensory_adjacency = check_matrix("sensory_adjacency_matrix", sensory, (input_dim, wiring.units))
        return wiring

    # ------------------------------------------------------------------ helpers
    def _require_built(self, what: str) -> tuple[int, np.ndarray]:
        """``(input_dim, the writable sensory adjacency)`` of a built wiring; ``ValueError`` before ``build``."""
        if self._input_dim is None or self._sensory_adjacency is None:
            raise ValueError(
                f"{what} needs the number of sensory inputs: call build(input_dim) first "
                "(a cell built on this wiring does it for you)"
            )
        return self._input_dim, self._sensory_adjacency

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._init_kwargs().items())
        if self._input_dim is None:
            built = "not built"
        else:
            built = f"built on {self._input_dim} inputs, {self.sensory_synapse_count} sensory synapses"
        return f"{type(self).__name__}({args}) <{self.synapse_count} synapses, {built}>"


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


def _initial_values(what: str, matrix: np.ndarray, shape: Sequence[int] | None, dtype: DTypeLike | None) -> np.ndarray:
    if shape is not None and tuple(shape) != matrix.shape:
        raise ValueError(f"{what}: requested shape {tuple(shape)} but the wiring's matrix has shape {matrix.shape}")
    return np.array(matrix, dtype=matrix.dtype if dtype is None else dtype)
