"""Graph views of a wiring: a ``networkx.DiGraph`` and a layered matplotlib drawing.

networkx and matplotlib are imported inside the functions, so ``ncp_control.wirings`` stays numpy-only at import.

Node names: ``"sensory_<i>"`` for sensory input ``i`` (``i`` in ``range(input_dim)``) and ``"neuron_<j>"`` for neuron
``j`` (``j`` in ``range(units)``), as in ncps's ``get_graph``. Node attributes: ``type`` ("sensory", "inter",
"command" or "motor") and ``index`` (``i`` or ``j``).

Edge attributes (one edge per nonzero entry of the adjacency matrices):

* ``initial_polarity``: the wiring's polarity, -1 or +1.
* ``weight``: the trained reversal potential if ``erev``/``sensory_erev`` is given, else ``float(initial_polarity)``.
* ``polarity``: ``+1 if weight >= 0 else -1``, i.e. the trained polarity; training can flip a synapse's sign, and
  ``polarity != initial_polarity`` marks the flipped ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    from matplotlib.axes import Axes
    from torch import Tensor

    from .base import Wiring

# Drawing columns, left to right; types a wiring does not have are skipped.
LAYER_ORDER = ("sensory", "inter", "command", "motor")
NODE_COLORS = {"sensory": "tab:olive", "inter": "tab:blue", "command": "tab:purple", "motor": "tab:orange"}
EDGE_COLORS = {1: "tab:green", -1: "tab:red"}


def _as_numpy(name: str, values: ArrayLike | Tensor, shape: tuple[int, ...]) -> np.ndarray:
    """Trained values (numpy array, nested list or torch tensor, no torch import needed) as a float64 array."""
    if hasattr(values, "detach"):  # a torch tensor, possibly requiring grad or on a GPU
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have the shape of the wiring's matrix {shape}, got {array.shape}")
    return array


def to_networkx(
    wiring: Wiring, erev: ArrayLike | Tensor | None = None, sensory_erev: ArrayLike | Tensor | None = None
) -> nx.DiGraph:
    """The wiring as a ``networkx.DiGraph`` (see the module docstring for names and attributes).

    Args:
        wiring: any wiring; if it is not built the graph has no sensory nodes.
        erev: optional trained reversal potentials of the internal synapses, ``(units, units)`` ``[src, dest]``
            (e.g. ``ltc_cell.erev``); only entries where the wiring has a synapse are read.
        sensory_erev: optional trained sensory reversal potentials, ``(input_dim, units)``; needs a built wiring.
    Returns:
        ``networkx.DiGraph``.
    """
    import networkx as nx

    units = wiring.units
    adjacency = wiring.adjacency_matrix
    weights = adjacency.astype(np.float64) if erev is None else _as_numpy("erev", erev, (units, units))

    graph = nx.DiGraph()
    types = wiring.neuron_types
    input_dim, sensory = wiring.input_dim, wiring.sensory_adjacency_matrix  # both None before build
    if input_dim is not None:
        graph.add_nodes_from((f"sensory_{i}", {"type": "sensory", "index": i}) for i in range(input_dim))
    graph.add_nodes_from((f"neuron_{j}", {"type": str(types[j]), "index": j}) for j in range(units))

    if sensory is not None:
        shape = sensory.shape
        sensory_weights = (
            sensory.astype(np.float64) if sensory_erev is None else _as_numpy("sensory_erev", sensory_erev, shape)
        )
        _add_edges(graph, "sensory", sensory, sensory_weights)
    elif sensory_erev is not None:
        raise ValueError("sensory_erev was given but the wiring is not built: call wiring.build(input_dim) first")
    _add_edges(graph, "neuron", adjacency, weights)
    return graph


def _add_edges(graph: nx.DiGraph, src_prefix: str, adjacency: np.ndarray, weights: np.ndarray) -> None:
    for src, dest in zip(*np.nonzero(adjacency)):
        weight = float(weights[src, dest])
        graph.add_edge(
            f"{src_prefix}_{src}",
            f"neuron_{dest}",
            initial_polarity=int(adjacency[src, dest]),
            weight=weight,
            polarity=1 if weight >= 0 else -1,
        )


def layered_layout(wiring: Wiring, include_sensory: bool = True) -> dict[str, np.ndarray]:
    """Node positions for ``to_networkx(wiring)``: one column per type (sensory | inter | command | motor), nodes of a
    column centred vertically in id order (lowest id at the top). Returns ``{node name: array (2,) = (x, y)}``."""
    types = wiring.neuron_types
    columns: dict[str, list[str]] = {t: [] for t in LAYER_ORDER}
    input_dim = wiring.input_dim  # None before build
    if include_sensory and input_dim is not None:
        columns["sensory"] = [f"sensory_{i}" for i in range(input_dim)]
    for j in range(wiring.units):
        columns[str(types[j])].append(f"neuron_{j}")
    present = [t for t in LAYER_ORDER if columns[t]]
    tallest = max(len(columns[t]) for t in present)
    positions = {}
    for x, neuron_type in enumerate(present):
        names = columns[neuron_type]
        for k, name in enumerate(names):
            # Spread over [-1, 1] in units of the tallest column; a single node sits at y = 0.
            y = ((len(names) - 1) / 2 - k) / max(tallest - 1, 1) * 2
            positions[name] = np.array([float(x), y])
    return positions


def draw(
    wiring: Wiring,
    ax: Axes | None = None,
    erev: ArrayLike | Tensor | None = None,
    sensory_erev: ArrayLike | Tensor | None = None,
    *,
    include_sensory: bool = True,
    with_labels: bool = False,
    node_size: float = 120.0,
    legend: bool = True,
) -> Axes:
    """Draw the wiring by layer: sensory | inter | command | motor, green excitatory and red inhibitory synapses.

    With trained ``erev``/``sensory_erev`` (shapes as in ``to_networkx``) edge colours show the trained polarity and
    edge widths grow with ``|erev|``.

    Args:
        wiring: the wiring to draw.
        ax: matplotlib Axes; a new figure is created if ``None``.
        include_sensory: draw the sensory inputs and their synapses (needs a built wiring to have any).
        with_labels: write node names.
        node_size: matplotlib marker area of the nodes.
        legend: add a legend of node types and polarities.
    Returns:
        The matplotlib Axes drawn on.
    """
    import matplotlib.pyplot as plt
    import networkx as nx
    from matplotlib.lines import Line2D

    graph = to_networkx(wiring, erev=erev, sensory_erev=sensory_erev)
    if not include_sensory:
        graph.remove_nodes_from([n for n, t in graph.nodes(data="type") if t == "sensory"])
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 6))
    positions = layered_layout(wiring, include_sensory=include_sensory)

    present_types = [t for t in LAYER_ORDER if any(d == t for _, d in graph.nodes(data="type"))]
    for neuron_type in present_types:
        nodes = [n for n, t in graph.nodes(data="type") if t == neuron_type]
        nx.draw_networkx_nodes(
            graph, positions, nodelist=nodes, node_color=NODE_COLORS[neuron_type], node_size=node_size, ax=ax
        )
    trained = erev is not None or sensory_erev is not None
    for polarity, color in EDGE_COLORS.items():
        edges = [(u, v) for u, v, p in graph.edges(data="polarity") if p == polarity]
        if not edges:
            continue
        widths = [0.5 + min(abs(graph.edges[e]["weight"]), 3.0) if trained else 0.8 for e in edges]
        nx.draw_networkx_edges(
            graph,
            positions,
            edgelist=edges,
            edge_color=color,
            width=widths,
            alpha=0.6,
            node_size=node_size,
            arrows=True,
            arrowsize=6,
            ax=ax,
        )
    if with_labels:
        nx.draw_networkx_labels(graph, positions, font_size=6, ax=ax)
    if legend:
        handles = [
            Line2D([], [], marker="o", linestyle="", color=NODE_COLORS[t], label=f"{t} ({_count(graph, t)})")
            for t in present_types
        ]
        prefix = "trained " if trained else ""
        handles += [
            Line2D([], [], color=EDGE_COLORS[1], label=f"{prefix}excitatory"),
            Line2D([], [], color=EDGE_COLORS[-1], label=f"{prefix}inhibitory"),
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_axis_off()
    ax.set_title(f"{type(wiring).__name__}: {wiring.units} neurons, {graph.number_of_edges()} synapses")
    return ax


def _count(graph: nx.DiGraph, neuron_type: str) -> int:
    return sum(1 for _, t in graph.nodes(data="type") if t == neuron_type)
