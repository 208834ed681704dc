"""Tests of ncp_control.wirings: parity with ncps 1.0.1, NCP structure, config round trip, errors, graphs."""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
from collections import deque
from pathlib import Path

import matplotlib
import ncps.wirings as ref
import numpy as np
import pytest

from ncp_control.wirings import NCP, AutoNCP, FullyConnected, Random, Wiring, layered_layout

matplotlib.use("Agg")

INPUT_DIMS = (1, 3, 17)
PAPER_NCP = dict(
    inter_neurons=12,
    command_neurons=6,
    motor_neurons=1,
    sensory_fanout=6,
    inter_fanout=4,
    recurrent_command_synapses=6,
    motor_fanin=6,
)


def _random_ncp_args(rng: np.random.Generator) -> dict:
    """Random valid NCP arguments, small enough to be fast, varied enough to hit every fallback branch."""
    inter, command, motor = (int(v) for v in rng.integers(1, 13, size=3))
    return dict(
        inter_neurons=inter,
        command_neurons=command,
        motor_neurons=motor,
        sensory_fanout=int(rng.integers(1, inter + 1)),
        inter_fanout=int(rng.integers(1, command + 1)),
        recurrent_command_synapses=int(rng.integers(0, 3 * command + 1)),
        motor_fanin=int(rng.integers(1, command + 1)),
        seed=int(rng.integers(0, 2**32)),
    )


NCP_SWEEP = [_random_ncp_args(np.random.default_rng(i)) for i in range(120)]


def _same_wiring(ours: Wiring, theirs: ref.Wiring) -> None:
    """Every matrix and every piece of the shared interface agree."""
    np.testing.assert_array_equal(ours.adjacency_matrix, theirs.adjacency_matrix)
    assert ours.adjacency_matrix.dtype == np.int32
    assert ours.is_built() == theirs.is_built()
    if theirs.is_built():
        np.testing.assert_array_equal(ours.sensory_adjacency_matrix, theirs.sensory_adjacency_matrix)
        np.testing.assert_array_equal(ours.sensory_erev_initializer(), theirs.sensory_erev_initializer())
        # ncps's own property counts the internal synapses; ours counts the sensory matrix.
        assert ours.sensory_synapse_count == int(np.abs(theirs.sensory_adjacency_matrix).sum())
    assert (ours.units, ours.input_dim, ours.output_dim) == (theirs.units, theirs.input_dim, theirs.output_dim)
    assert ours.synapse_count == theirs.synapse_count
    assert ours.num_layers == theirs.num_layers
    for layer in range(ours.num_layers):
        assert ours.get_neurons_of_layer(layer) == list(theirs.get_neurons_of_layer(layer))
    assert [ours.get_type_of_neuron(i) for i in range(ours.units)] == [
        theirs.get_type_of_neuron(i) for i in range(theirs.units)
    ]
    np.testing.assert_array_equal(ours.erev_initializer(), theirs.erev_initializer())


# ---------------------------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("units", [1, 2, 5, 13])
@pytest.mark.parametrize("seed", [0, 1, 1111, 987654321])
@pytest.mark.parametrize("self_connections", [True, False])
def test_fully_connected_matches_ncps(units, seed, self_connections):
    for output_dim in sorted({None, 1, units}, key=str):
        kwargs = dict(output_dim=output_dim, erev_init_seed=seed, self_connections=self_connections)
        ours, theirs = FullyConnected(units, **kwargs), ref.FullyConnected(units, **kwargs)
        _same_wiring(ours, theirs)
        for input_dim in INPUT_DIMS[:2]:
            ours, theirs = FullyConnected(units, **kwargs), ref.FullyConnected(units, **kwargs)
            ours.build(input_dim)
            theirs.build(input_dim)
            _same_wiring(ours, theirs)


@pytest.mark.parametrize("units", [1, 3, 8, 20])
@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.75, 0.9, 0.99])
@pytest.mark.parametrize("seed", [0, 1111, 424242])
def test_random_matches_ncps(units, sparsity, seed):
    for input_dim in INPUT_DIMS:
        kwargs = dict(output_dim=max(1, units // 2), sparsity_level=sparsity, random_seed=seed)
        ours, theirs = Random(units, **kwargs), ref.Random(units, **kwargs)
        _same_wiring(ours, theirs)
        ours.build(input_dim)
        theirs.build(input_dim)
        _same_wiring(ours, theirs)


@pytest.mark.parametrize("index", range(len(NCP_SWEEP)))
def test_ncp_matches_ncps(index):
    args = NCP_SWEEP[index]
    for input_dim in INPUT_DIMS:
        ours, theirs = NCP(**args), ref.NCP(**args)
        _same_wiring(ours, theirs)
        ours.build(input_dim)
        theirs.build(input_dim)
        _same_wiring(ours, theirs)


def test_ncp_default_seed_and_paper_network_match_ncps():
    kwargs = {k: v for k, v in PAPER_NCP.items()}
    ours, theirs = NCP(**kwargs), ref.NCP(**kwargs)
    ours.build(32)
    theirs.build(32)
    _same_wiring(ours, theirs)


@pytest.mark.parametrize("units", [4, 5, 8, 19, 32, 64])
@pytest.mark.parametrize("sparsity", [0.1, 0.3, 0.5, 0.77, 0.9, 1.0])
def test_autoncp_matches_ncps(units, sparsity):
    for output_size in sorted({1, 2, units // 3, units - 3} - {0}):
        if output_size > units - 3:
            continue
        for seed, input_dim in [(22222, 32), (0, 1), (31337, 5)]:
            ours = AutoNCP(units, output_size, sparsity_level=sparsity, seed=seed)
            theirs = ref.AutoNCP(units, output_size, sparsity_level=sparsity, seed=seed)
            ours.build(input_dim)
            theirs.build(input_dim)
            _same_wiring(ours, theirs)


def test_autoncp_default_split():
    wiring = AutoNCP(19, 1)
    assert [len(wiring.neuron_ids(t)) for t in ("inter", "command", "motor")] == [11, 7, 1]
    assert (wiring.num_inter_neurons, wiring.num_command_neurons, wiring.num_motor_neurons) == (11, 7, 1)
    wiring.build(32)
    # ncps reports 46 here for the sensory count too (its internal count); the sensory matrix has 160.
    assert (wiring.synapse_count, wiring.sensory_synapse_count) == (46, 160)


@pytest.mark.slow
def test_ncp_and_autoncp_match_ncps_large_sweep():
    rng = np.random.default_rng(2024)
    for _ in range(1500):
        args = _random_ncp_args(rng)
        input_dim = int(rng.integers(1, 40))
        ours, theirs = NCP(**args), ref.NCP(**args)
        ours.build(input_dim)
        theirs.build(input_dim)
        _same_wiring(ours, theirs)
    for _ in range(1000):
        units = int(rng.integers(4, 80))
        output_size = int(rng.integers(1, units - 2))
        sparsity = float(rng.uniform(0.1, 1.0))
        seed = int(rng.integers(0, 2**32))
        input_dim = int(rng.integers(1, 40))
        ours, theirs = AutoNCP(units, output_size, sparsity, seed), ref.AutoNCP(units, output_size, sparsity, seed)
        ours.build(input_dim)
        theirs.build(input_dim)
        _same_wiring(ours, theirs)


# ---------------------------------------------------------------------------------------------------- build
def test_build_is_idempotent_and_refuses_another_size():
    for make in (lambda: FullyConnected(4), lambda: Random(5, 2, 0.5), lambda: NCP(**PAPER_NCP), lambda: AutoNCP(9, 2)):
        wiring = make()
        assert not wiring.is_built() and wiring.sensory_adjacency_matrix is None and wiring.input_dim is None
        wiring.build(7)
        before = wiring.get_config()
        wiring.build(7)  # ncps would draw a second set of sensory synapses here
        assert wiring.get_config() == before
        with pytest.raises(ValueError, match="already built for 7 inputs"):
            wiring.build(8)
        assert wiring.get_config() == before


def test_matrices_are_read_only_and_initializers_are_copies():
    wiring = AutoNCP(8, 2)
    wiring.build(3)
    with pytest.raises(ValueError):
        wiring.adjacency_matrix[0, 0] = 1
    with pytest.raises(ValueError):
        wiring.sensory_adjacency_matrix[0, 0] = 1
    erev = wiring.erev_initializer()
    erev[:] = 5
    assert set(np.unique(wiring.adjacency_matrix)) <= {-1, 0, 1}
    assert wiring.erev_initializer(shape=(8, 8), dtype=np.float32).dtype == np.float32
    assert wiring.sensory_erev_initializer().shape == (3, 8)


def test_add_synapse_and_counts_on_a_hand_made_wiring():
    wiring = Wiring(3)
    assert wiring.output_dim is None and set(wiring.neuron_types) == {"inter"}
    wiring.set_output_dim(1)
    wiring.set_output_dim(1)  # same value again: no-op
    wiring.add_synapse(2, 1, 1)
    wiring.add_synapse(1, 0, -1)
    wiring.add_synapse(1, 0, np.int64(1))  # replaces the inhibitory one
    assert wiring.synapse_count == 2 and wiring.adjacency_matrix[1, 0] == 1
    wiring.build(4)
    assert wiring.sensory_synapse_count == 0
    wiring.add_sensory_synapse(3, 2, -1)
    assert wiring.sensory_synapse_count == 1 and wiring.sensory_adjacency_matrix[3, 2] == -1
    assert list(wiring.neuron_types) == ["motor", "inter", "inter"]
    np.testing.assert_array_equal(wiring.neuron_ids("motor"), [0])
    assert wiring.neuron_ids("command").size == 0


# ---------------------------------------------------------------------------------------------------- NCP structure
def _ncp_structure(wiring: NCP) -> None:
    inter, command, motor = (wiring.neuron_ids(t) for t in ("inter", "command", "motor"))
    adj, sens = wiring.adjacency_matrix, wiring.sensory_adjacency_matrix
    n = wiring.units
    assert set(np.unique(adj)) <= {-1, 0, 1} and set(np.unique(sens)) <= {-1, 0, 1}
    # Ids: motor first, then command, then inter.
    np.testing.assert_array_equal(np.concatenate([motor, command, inter]), np.arange(n))
    # Sensory inputs reach inter neurons only.
    assert not sens[:, command].any() and not sens[:, motor].any()
    # The only internal blocks are inter->command, command->command and command->motor.
    allowed = np.zeros((n, n), dtype=bool)
    allowed[np.ix_(inter, command)] = True
    allowed[np.ix_(command, command)] = True
    allowed[np.ix_(command, motor)] = True
    assert not adj[~allowed].any(), "synapse outside inter->command, command->command, command->motor"
    # Fan-outs and fan-ins at least as asked (fallback synapses for otherwise unconnected neurons come on top).
    assert (np.count_nonzero(sens, axis=1) >= wiring.sensory_fanout).all()  # per sensory input, over neurons
    assert (np.count_nonzero(adj[np.ix_(inter, command)], axis=1) >= wiring.inter_fanout).all()
    assert (np.count_nonzero(adj[np.ix_(command, motor)], axis=0) >= wiring.motor_fanin).all()  # per motor neuron
    # Every inter neuron has a sensory input, every command neuron an inter input and a motor output.
    assert (np.count_nonzero(sens[:, inter], axis=0) >= 1).all()
    assert (np.count_nonzero(adj[np.ix_(inter, command)], axis=0) >= 1).all()
    assert (np.count_nonzero(adj[np.ix_(command, motor)], axis=1) >= 1).all()
    # Recurrent command synapses: at most the number of draws (repeated pairs overwrite), at least one if drawn.
    recurrent = np.count_nonzero(adj[np.ix_(command, command)])
    assert min(1, wiring.recurrent_command_synapses) <= recurrent <= wiring.recurrent_command_synapses
    # Every neuron is reachable from the sensory inputs (breadth-first search over both matrices).
    reached = np.zeros(n, dtype=bool)
    queue = deque(np.flatnonzero(sens.any(axis=0)))
    reached[list(queue)] = True
    while queue:
        for dest in np.flatnonzero(adj[queue.popleft()]):
            if not reached[dest]:
                reached[dest] = True
                queue.append(dest)
    assert reached.all(), f"unreachable neurons {np.flatnonzero(~reached)}"


@pytest.mark.parametrize("index", range(0, len(NCP_SWEEP), 3))
def test_ncp_structure_random_configs(index):
    for input_dim in INPUT_DIMS:
        wiring = NCP(**NCP_SWEEP[index])
        wiring.build(input_dim)
        _ncp_structure(wiring)


def test_ncp_fanouts_exact_when_no_fallback_is_needed():
    # A fan-out equal to the target population reaches every target, so no fallback synapse is added.
    wiring = NCP(5, 4, 3, sensory_fanout=5, inter_fanout=4, recurrent_command_synapses=0, motor_fanin=4, seed=7)
    wiring.build(6)
    inter, command, motor = (wiring.neuron_ids(t) for t in ("inter", "command", "motor"))
    assert (np.count_nonzero(wiring.sensory_adjacency_matrix, axis=1) == 5).all()
    assert (np.count_nonzero(wiring.adjacency_matrix[np.ix_(inter, command)], axis=1) == 4).all()
    assert (np.count_nonzero(wiring.adjacency_matrix[np.ix_(command, motor)], axis=0) == 4).all()
    assert wiring.synapse_count == 5 * 4 + 3 * 4 and wiring.sensory_synapse_count == 6 * 5


def test_ncp_fallback_connects_every_neuron():
    # One sensory input with fan-out 1 leaves 9 of 10 inter neurons unpicked; the fallback gives each one input.
    wiring = NCP(10, 8, 2, sensory_fanout=1, inter_fanout=1, recurrent_command_synapses=3, motor_fanin=1, seed=3)
    wiring.build(1)
    _ncp_structure(wiring)
    assert wiring.sensory_synapse_count == 10


@pytest.mark.parametrize("units,output_size,sparsity", [(19, 1, 0.5), (8, 5, 0.1), (40, 4, 0.0), (64, 10, 1.0)])
def test_autoncp_structure(units, output_size, sparsity):
    for seed in range(5):
        wiring = AutoNCP(units, output_size, sparsity, seed)
        wiring.build(12)
        assert wiring.units == units and wiring.output_dim == output_size
        _ncp_structure(wiring)


def test_paper_ncp_synapse_count():
    wiring = NCP(**PAPER_NCP)
    wiring.build(32)
    assert wiring.sensory_synapse_count == 32 * 6  # 192 picks over 12 inter neurons reach them all here
    assert wiring.synapse_count + wiring.sensory_synapse_count == 250  # paper: 253
    for seed in range(30):
        wiring = NCP(**PAPER_NCP, seed=seed)
        wiring.build(32)
        # 192 sensory + 48 inter->command + 6 command->motor + up to 6 distinct recurrent pairs
        assert 247 <= wiring.synapse_count + wiring.sensory_synapse_count <= 252


# ---------------------------------------------------------------------------------------------------- neuron types
def test_neuron_types_and_layers_ncp():
    wiring = NCP(4, 3, 2, 2, 2, 3, 2)
    assert list(wiring.neuron_types) == ["motor"] * 2 + ["command"] * 3 + ["inter"] * 4
    np.testing.assert_array_equal(wiring.neuron_ids("motor"), [0, 1])
    np.testing.assert_array_equal(wiring.neuron_ids("command"), [2, 3, 4])
    np.testing.assert_array_equal(wiring.neuron_ids("inter"), [5, 6, 7, 8])
    assert [wiring.get_neurons_of_layer(i) for i in range(3)] == [[5, 6, 7, 8], [2, 3, 4], [0, 1]]
    assert (wiring.state_size, wiring.motor_size) == (9, 2)


def test_neuron_types_other_wirings():
    assert list(FullyConnected(4, 1).neuron_types) == ["motor", "inter", "inter", "inter"]
    assert set(FullyConnected(3).neuron_types) == {"motor"}
    assert list(Random(3, 2, 0.5).neuron_types) == ["motor", "motor", "inter"]
    assert FullyConnected(4).get_neurons_of_layer(0) == [0, 1, 2, 3]


# ---------------------------------------------------------------------------------------------------- config
ALL_WIRINGS = [
    lambda: Wiring(4),
    lambda: FullyConnected(5, 2, erev_init_seed=3, self_connections=False),
    lambda: FullyConnected(3),
    lambda: Random(6, 3, sparsity_level=0.3, random_seed=9),
    lambda: Random(4),
    lambda: NCP(**PAPER_NCP),
    lambda: NCP(3, 4, 2, 1, 2, 0, 3, seed=123),
    lambda: AutoNCP(19, 1),
    lambda: AutoNCP(10, 3, sparsity_level=0.25, seed=0),
]


@pytest.mark.parametrize("make", ALL_WIRINGS)
@pytest.mark.parametrize("built", [False, True])
def test_config_round_trip_through_json(make, built):
    wiring = make()
    if built:
        wiring.build(7)
    config = wiring.get_config()
    assert wiring.get_config() == config  # reading the config changes nothing
    text = json.dumps(config)
    loaded = Wiring.from_config(json.loads(text))
    assert type(loaded) is type(wiring)
    assert json.dumps(loaded.get_config()) == text
    assert type(wiring).from_config(json.loads(text)).get_config() == config
    if not built:
        # An unbuilt wiring loads with the same random state: building both gives the same wiring.
        wiring.build(5)
        loaded.build(5)
    np.testing.assert_array_equal(loaded.adjacency_matrix, wiring.adjacency_matrix)
    np.testing.assert_array_equal(loaded.sensory_adjacency_matrix, wiring.sensory_adjacency_matrix)
    assert loaded.get_config() == wiring.get_config()


@pytest.mark.parametrize("make", ALL_WIRINGS[1::2])
def test_pickle_and_deepcopy_keep_the_wiring_and_its_random_state(make):
    wiring = make()
    for clone in (pickle.loads(pickle.dumps(wiring)), copy.deepcopy(wiring)):
        clone.build(6)
        wiring_copy = copy.deepcopy(wiring)
        wiring_copy.build(6)
        assert clone.get_config() == wiring_copy.get_config()


def test_get_config_does_not_reseed_before_build():
    wiring, fresh = NCP(**PAPER_NCP), NCP(**PAPER_NCP)
    wiring.get_config()
    wiring.build(32)
    fresh.build(32)
    assert wiring.get_config() == fresh.get_config()


def test_config_keeps_hand_edited_synapses():
    wiring = AutoNCP(12, 2, seed=5)
    wiring.build(4)
    wiring.add_synapse(0, 0, -1)  # motor self-synapse: never generated by an NCP
    wiring.add_sensory_synapse(0, 1, 1)  # sensory -> motor
    loaded = Wiring.from_config(json.loads(json.dumps(wiring.get_config())))
    assert loaded.adjacency_matrix[0, 0] == -1 and loaded.sensory_adjacency_matrix[0, 1] == 1
    assert loaded.get_config() == wiring.get_config()


def test_ncps_configs_load_where_ncps_can_save_them():
    for ours_cls, theirs in [
        (FullyConnected, ref.FullyConnected(6, 2, erev_init_seed=4)),
        (Random, ref.Random(6, 2, sparsity_level=0.4, random_seed=4)),
        (AutoNCP, ref.AutoNCP(12, 3, sparsity_level=0.6, seed=4)),
    ]:
        loaded = ours_cls.from_config(theirs.get_config())
        loaded.build(5)
        theirs.build(5)
        _same_wiring(loaded, theirs)
    base = ref.Wiring(3)
    base.set_output_dim(1)
    base.build(2)
    base.add_synapse(0, 2, -1)
    base.add_sensory_synapse(1, 0, 1)
    _same_wiring(Wiring.from_config(base.get_config()), base)
    # ncps's NCP config has neuron-id lists and seed None: refused with an explanation.
    with pytest.raises(ValueError, match="ncps does not save the seed"):
        NCP.from_config(ref.NCP(**PAPER_NCP).get_config())


# ---------------------------------------------------------------------------------------------------- errors
def _built_ncp():
    wiring = NCP(**PAPER_NCP)
    wiring.build(4)
    return wiring


ERROR_CASES = [
    # (description, callable, exception type, message pattern)
    ("units 0", lambda: Wiring(0), ValueError, r"units must be an integer >= 1"),
    ("units float", lambda: Wiring(2.5), TypeError, r"units must be an integer"),
    ("units bool", lambda: FullyConnected(True), TypeError, r"units must be an integer"),
    ("output_dim too big", lambda: FullyConnected(3, 4), ValueError, r"output_dim must be an integer in \[1, 3\]"),
    ("output_dim 0", lambda: Random(3, 0), ValueError, r"output_dim must be an integer in \[1, 3\]"),
    ("output_dim changed", lambda: FullyConnected(3, 2).set_output_dim(1), ValueError, r"already 2"),
    (
        "seed negative",
        lambda: FullyConnected(3, erev_init_seed=-1),
        ValueError,
        r"erev_init_seed must be .*\[0, 4294967295\]",
    ),
    ("seed None", lambda: Random(3, random_seed=None), TypeError, r"None .* cannot be reproduced"),
    ("seed too big", lambda: NCP(**PAPER_NCP, seed=2**32), ValueError, r"seed must be an integer in \[0, 4294967295\]"),
    ("self_connections int", lambda: FullyConnected(3, self_connections=1), TypeError, r"True or False"),
    ("sparsity 1", lambda: Random(3, sparsity_level=1.0), ValueError, r"sparsity_level must be in \[0.0, 1.0\)"),
    ("sparsity negative", lambda: Random(3, sparsity_level=-0.1), ValueError, r"\[0.0, 1.0\)"),
    ("sparsity nan", lambda: Random(3, sparsity_level=float("nan")), ValueError, r"\[0.0, 1.0\)"),
    ("sparsity str", lambda: Random(3, sparsity_level="0.5"), TypeError, r"real number"),
    ("inter 0", lambda: NCP(0, 3, 1, 1, 1, 1, 1), ValueError, r"inter_neurons must be an integer >= 1"),
    ("command 0", lambda: NCP(3, 0, 1, 1, 1, 1, 1), ValueError, r"command_neurons must be an integer >= 1"),
    ("motor 0", lambda: NCP(3, 3, 0, 1, 1, 1, 1), ValueError, r"motor_neurons must be an integer >= 1"),
    ("inter float", lambda: NCP(3.0, 3, 1, 1, 1, 1, 1), TypeError, r"inter_neurons must be an integer"),
    (
        "sensory_fanout > inter",
        lambda: NCP(3, 3, 1, 4, 1, 1, 1),
        ValueError,
        r"sensory_fanout .*\[1, 3\] \(the number of inter neurons\)",
    ),
    (
        "sensory_fanout 0",
        lambda: NCP(3, 3, 1, 0, 1, 1, 1),
        ValueError,
        r"sensory_fanout must be an integer in \[1, 3\]",
    ),
    (
        "inter_fanout > command",
        lambda: NCP(3, 2, 1, 1, 3, 1, 1),
        ValueError,
        r"inter_fanout .*\[1, 2\] \(the number of command",
    ),
    ("inter_fanout 0", lambda: NCP(3, 2, 1, 1, 0, 1, 1), ValueError, r"inter_fanout must be an integer in \[1, 2\]"),
    ("motor_fanin > command", lambda: NCP(3, 2, 1, 1, 1, 1, 3), ValueError, r"motor_fanin .*\[1, 2\]"),
    ("motor_fanin 0", lambda: NCP(3, 2, 1, 1, 1, 1, 0), ValueError, r"motor_fanin must be an integer in \[1, 2\]"),
    ("recurrent negative", lambda: NCP(3, 2, 1, 1, 1, -1, 1), ValueError, r"recurrent_command_synapses .*>= 0"),
    ("autoncp output too big", lambda: AutoNCP(10, 8), ValueError, r"output_size must be an integer in \[1, 7\]"),
    ("autoncp output 0", lambda: AutoNCP(10, 0), ValueError, r"output_size must be an integer in \[1, 7\]"),
    ("autoncp units 3", lambda: AutoNCP(3, 1), ValueError, r"units must be an integer >= 4"),
    (
        "autoncp sparsity",
        lambda: AutoNCP(10, 2, sparsity_level=1.5),
        ValueError,
        r"sparsity_level must be in \[0.0, 1.0\]",
    ),
    ("build 0", lambda: FullyConnected(3).build(0), ValueError, r"input_dim must be an integer >= 1"),
    ("build tuple", lambda: FullyConnected(3).build((None, 4)), TypeError, r"input_dim must be an integer"),
    ("polarity 0", lambda: Wiring(3).add_synapse(0, 1, 0), ValueError, r"polarity must be -1 .* or \+1"),
    ("polarity 2", lambda: Wiring(3).add_synapse(0, 1, 2), ValueError, r"polarity must be -1"),
    ("polarity True", lambda: Wiring(3).add_synapse(0, 1, True), ValueError, r"polarity must be -1"),
    ("src out of range", lambda: Wiring(3).add_synapse(3, 1, 1), ValueError, r"src must be an integer in \[0, 2\]"),
    ("dest negative", lambda: Wiring(3).add_synapse(0, -1, 1), ValueError, r"dest must be an integer in \[0, 2\]"),
    ("sensory before build", lambda: Wiring(3).add_sensory_synapse(0, 1, 1), ValueError, r"call build\(input_dim\)"),
    (
        "sensory src range",
        lambda: _built_ncp().add_sensory_synapse(4, 0, 1),
        ValueError,
        r"src must be an integer in \[0, 3\]",
    ),
    ("sensory polarity", lambda: _built_ncp().add_sensory_synapse(0, 0, -2), ValueError, r"polarity must be -1"),
    ("sensory count unbuilt", lambda: NCP(**PAPER_NCP).sensory_synapse_count, ValueError, r"build\(input_dim\)"),
    ("sensory erev unbuilt", lambda: NCP(**PAPER_NCP).sensory_erev_initializer(), ValueError, r"build"),
    ("erev shape", lambda: Wiring(3).erev_initializer(shape=(3, 4)), ValueError, r"shape \(3, 3\)"),
    ("layer out of range", lambda: NCP(**PAPER_NCP).get_neurons_of_layer(3), ValueError, r"layer_id .*\[0, 2\]"),
    (
        "layer of base",
        lambda: Wiring(3).get_neurons_of_layer(1),
        ValueError,
        r"layer_id must be an integer in \[0, 0\]",
    ),
    ("neuron id", lambda: NCP(**PAPER_NCP).get_type_of_neuron(19), ValueError, r"neuron_id .*\[0, 18\]"),
    ("neuron type typo", lambda: Wiring(3).neuron_ids("motors"), ValueError, r"one of \('motor', 'command', 'inter'\)"),
    ("neuron type sensory", lambda: Wiring(3).neuron_ids("sensory"), ValueError, r"not neurons"),
    ("config not dict", lambda: Wiring.from_config([1]), TypeError, r"mapping"),
    (
        "config class",
        lambda: Wiring.from_config({"class_name": "Foo", "units": 3}),
        ValueError,
        r"unknown wiring class_name 'Foo'",
    ),
    (
        "config wrong class",
        lambda: NCP.from_config(FullyConnected(3).get_config()),
        ValueError,
        r"describes a FullyConnected",
    ),
    (
        "config extra key",
        lambda: Wiring.from_config({**Random(3).get_config(), "foo": 1}),
        ValueError,
        r"unexpected keys \['foo'\]",
    ),
    (
        "config missing key",
        lambda: Wiring.from_config({"class_name": "AutoNCP", "units": 9}),
        ValueError,
        r"needs the keys \['output_size'\]",
    ),
    (
        "config matrix shape",
        lambda: Wiring.from_config({**Wiring(3).get_config(), "adjacency_matrix": [[0]]}),
        ValueError,
        r"shape \(3, 3\)",
    ),
    (
        "config matrix values",
        lambda: Wiring.from_config({**Wiring(2).get_config(), "adjacency_matrix": [[0, 2], [0, 0]]}),
        ValueError,
        r"-1, 0 or \+1",
    ),
    (
        "config sensory no input_dim",
        lambda: Wiring.from_config({**Wiring(2).get_config(), "sensory_adjacency_matrix": [[0, 1]]}),
        ValueError,
        r"no input_dim",
    ),
    (
        "graph erev shape",
        lambda: _built_ncp().to_networkx(erev=np.zeros((3, 3))),
        ValueError,
        r"erev must have the shape .*\(19, 19\)",
    ),
    (
        "graph sensory erev unbuilt",
        lambda: Wiring(2).to_networkx(sensory_erev=np.zeros((1, 2))),
        ValueError,
        r"not built",
    ),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_error_cases(case):
    _, call, exception, pattern = case
    with pytest.raises(exception, match=pattern):
        call()


# ---------------------------------------------------------------------------------------------------- graph
def test_networkx_graph_types_and_polarity():
    wiring = AutoNCP(19, 1)
    wiring.build(32)
    graph = wiring.to_networkx()
    types = dict(graph.nodes(data="type"))
    assert sum(t == "sensory" for t in types.values()) == 32
    assert [types[f"neuron_{i}"] for i in range(19)] == list(wiring.neuron_types)
    assert graph.nodes["sensory_5"]["index"] == 5 and graph.nodes["neuron_7"]["index"] == 7
    assert graph.number_of_edges() == wiring.synapse_count + wiring.sensory_synapse_count
    for src, dest, data in graph.edges(data=True):
        j = graph.nodes[dest]["index"]
        i = graph.nodes[src]["index"]
        matrix = wiring.sensory_adjacency_matrix if src.startswith("sensory") else wiring.adjacency_matrix
        assert data["polarity"] == data["initial_polarity"] == matrix[i, j] == data["weight"]
        assert (types[src], types[dest]) in {
            ("sensory", "inter"),
            ("inter", "command"),
            ("command", "command"),
            ("command", "motor"),
        }


def test_networkx_graph_uses_trained_polarity():
    wiring = NCP(**PAPER_NCP)
    wiring.build(8)
    rng = np.random.default_rng(0)
    erev = wiring.erev_initializer(dtype=np.float64) * rng.uniform(0.5, 2.0, size=(19, 19))
    sensory_erev = wiring.sensory_erev_initializer(dtype=np.float64)
    src, dest = np.argwhere(wiring.adjacency_matrix != 0)[0]
    erev[src, dest] *= -0.3  # training flipped this synapse's sign
    erev[wiring.adjacency_matrix == 0] = 7.0  # values where there is no synapse are ignored
    s_src, s_dest = np.argwhere(wiring.sensory_adjacency_matrix != 0)[-1]
    sensory_erev[s_src, s_dest] = -sensory_erev[s_src, s_dest]
    graph = wiring.to_networkx(erev=erev, sensory_erev=sensory_erev.tolist())
    assert graph.number_of_edges() == wiring.synapse_count + wiring.sensory_synapse_count
    flipped = [(u, v) for u, v, d in graph.edges(data=True) if d["polarity"] != d["initial_polarity"]]
    assert sorted(flipped) == sorted([(f"neuron_{src}", f"neuron_{dest}"), (f"sensory_{s_src}", f"neuron_{s_dest}")])
    edge = graph.edges[f"neuron_{src}", f"neuron_{dest}"]
    assert edge["weight"] == pytest.approx(erev[src, dest]) and edge["polarity"] == -wiring.adjacency_matrix[src, dest]


def test_networkx_graph_accepts_torch_parameters():
    torch = pytest.importorskip("torch")
    wiring = AutoNCP(8, 2)
    wiring.build(3)
    erev = torch.nn.Parameter(-torch.tensor(wiring.erev_initializer(dtype=np.float32)))  # requires grad
    graph = wiring.to_networkx(erev=erev)
    internal = [d for u, v, d in graph.edges(data=True) if u.startswith("neuron")]
    assert internal and all(d["polarity"] == -d["initial_polarity"] for d in internal)


def test_unbuilt_graph_has_no_sensory_nodes():
    graph = FullyConnected(3, 1).to_networkx()
    assert sorted(graph.nodes) == ["neuron_0", "neuron_1", "neuron_2"] and graph.number_of_edges() == 9


def test_layered_layout_columns():
    wiring = NCP(**PAPER_NCP)
    wiring.build(5)
    positions = layered_layout(wiring)
    xs = {t: {positions[f"neuron_{i}"][0] for i in wiring.neuron_ids(t)} for t in ("inter", "command", "motor")}
    assert {positions[f"sensory_{i}"][0] for i in range(5)} == {0.0}
    assert (xs["inter"], xs["command"], xs["motor"]) == ({1.0}, {2.0}, {3.0})
    assert positions["neuron_0"][1] == 0.0  # a single motor neuron is centred
    assert set(layered_layout(wiring, include_sensory=False)) == {f"neuron_{i}" for i in range(19)}


def test_draw_produces_a_figure():
    import matplotlib.pyplot as plt

    wiring = AutoNCP(12, 2)
    wiring.build(6)
    ax = wiring.draw()
    assert ax.figure is not None and "AutoNCP" in ax.get_title()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:4] == ["sensory (6)", "inter (6)", "command (4)", "motor (2)"]
    plt.close(ax.figure)

    fig, ax = plt.subplots()
    erev = -wiring.erev_initializer(dtype=np.float64)
    assert wiring.draw(ax=ax, erev=erev, include_sensory=False, with_labels=True) is ax
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "inter (6)" and "trained excitatory" in labels
    fig.canvas.draw()  # renders without error
    plt.close(fig)


def test_import_is_numpy_only():
    code = (
        "import sys, ncp_control.wirings as w; w.AutoNCP(19, 1).build(3); "
        "print(sorted(m for m in ('networkx', 'matplotlib', 'torch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout
    assert out.strip() == "[]"


def test_autoncp_accepts_the_dense_end_ncps_refuses():
    # ncps's docstring allows sparsity 0.0 but its check refuses values below 0.1; ours accepts [0, 1].
    with pytest.raises(ValueError):
        ref.AutoNCP(10, 2, sparsity_level=0.0)
    wiring = AutoNCP(10, 2, sparsity_level=0.0)
    assert (wiring.sensory_fanout, wiring.inter_fanout, wiring.motor_fanin) == (5, 3, 3)  # full fan-outs
    wiring.build(4)
    assert wiring.sensory_synapse_count == 4 * 5
