"""Wirings: who connects to whom in a wired LTC/CfC cell (numpy only; networkx/matplotlib only when drawing).

Drop-in for ``ncps.wirings`` (1.0.1): the same classes, constructor signatures, defaults, neuron order and, for the
same arguments and seed, the same adjacency matrices. See ``base.py`` for the conventions and for what differs from
ncps (correct ``sensory_synapse_count``, loadable configs, idempotent ``build``, validated arguments).

    from ncp_control.wirings import AutoNCP, NCP, Wiring

    wiring = AutoNCP(19, 1)                     # 11 inter, 7 command, 1 motor neuron
    wiring.build(32)                            # 32 sensory inputs
    wiring.neuron_ids("command")                # array([1, 2, 3, 4, 5, 6, 7])
    config = wiring.get_config()                # JSON-serialisable
    assert Wiring.from_config(config).get_config() == config
    graph = wiring.to_networkx()                # networkx.DiGraph with node "type" and edge "polarity"
"""

from .base import NEURON_TYPES, NeuronType, Wiring
from .fully_connected import FullyConnected
from .graph import layered_layout
from .ncp import NCP, AutoNCP
from .random import Random

__all__ = [
    "NEURON_TYPES",
    "AutoNCP",
    "FullyConnected",
    "NCP",
    "NeuronType",
    "Random",
    "Wiring",
    "layered_layout",
]
