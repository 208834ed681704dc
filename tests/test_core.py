"""RecurrentCore: parity with the reference cells, exact resets at episode starts, elapsed time, errors."""

import numpy as np
import pytest
import torch
from ncps import torch as ncps_torch
from ncps import wirings as ncps_wirings

from ncp_control.policies.backend import wirings
from ncp_control.policies.core import CfCCore, LSTMCore, LTCCore, RecurrentCore, make_core

torch.set_num_threads(1)


def _core(kind: str, input_size: int = 5, seed: int = 0) -> RecurrentCore:
    torch.manual_seed(seed)
    if kind == "lstm":
        return make_core("lstm", input_size, 7)
    return make_core(kind, input_size, wirings.AutoNCP(12, 3, seed=seed))


KINDS = ["ltc", "cfc", "lstm"]


@pytest.mark.parametrize("kind", KINDS)
def test_initial_state_is_zeros_of_state_size(kind):
    core = _core(kind)
    state = core.initial_state(4)
    assert state.shape == (4, core.state_size)
    assert torch.count_nonzero(state) == 0
    expected_state = {"ltc": 12, "cfc": 12, "lstm": 14}[kind]
    expected_out = {"ltc": 3, "cfc": 3, "lstm": 7}[kind]
    assert (core.state_size, core.output_size) == (expected_state, expected_out)


def test_ltc_matches_reference_layer_with_unit_time():
    """With dt = 1 s and no resets our loop equals ncps's LTC layer run on the same weights."""
    core = _core("ltc")
    ref = ncps_torch.LTC(5, ncps_wirings.AutoNCP(12, 3, seed=0))
    ref.rnn_cell.load_state_dict(core.cell.state_dict())
    x = torch.randn(3, 6, 5)
    out, final = core.sequence(x, core.initial_state(3), 1.0, torch.zeros(3, 6))
    ref_out, ref_final = ref(x)
    torch.testing.assert_close(out, ref_out, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(final, ref_final, rtol=1e-6, atol=1e-6)


def test_wired_cfc_matches_reference_layer_with_unit_time():
    core = _core("cfc")
    ref = ncps_torch.CfC(5, ncps_wirings.AutoNCP(12, 3, seed=0))
    ref.rnn_cell.load_state_dict(core.cell.state_dict())
    x = torch.randn(3, 6, 5)
    out, final = core.sequence(x, core.initial_state(3), 1.0, torch.zeros(3, 6))
    ref_out, ref_final = ref(x)
    torch.testing.assert_close(out, ref_out, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(final, ref_final, rtol=1e-6, atol=1e-6)


def test_lstm_core_matches_torch_lstm_and_packs_h_then_c():
    core = _core("lstm")
    ref = torch.nn.LSTM(5, 7, batch_first=True)
    ref.weight_ih_l0.data.copy_(core.cell.weight_ih)
    ref.weight_hh_l0.data.copy_(core.cell.weight_hh)
    ref.bias_ih_l0.data.copy_(core.cell.bias_ih)
    ref.bias_hh_l0.data.copy_(core.cell.bias_hh)
    x = torch.randn(2, 4, 5)
    out, final = core.sequence(x, core.initial_state(2), 0.05, torch.zeros(2, 4))
    ref_out, (h, c) = ref(x)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(final, torch.cat([h[0], c[0]], dim=1))


@pytest.mark.parametrize("kind", ["ltc", "cfc"])
def test_per_sample_elapsed_time_equals_running_each_sample_alone(kind):
    """dt (B,) is per sample; ncps's layers get this wrong for B > 1 (issues #81-#83), the core must not."""
    core = _core(kind)
    x = torch.randn(3, 5)
    state = torch.randn(3, core.state_size) * 0.1
    dt = torch.tensor([0.02, 0.5, 2.0])
    out, new = core.step(x, state, dt)
    for b in range(3):
        out_b, new_b = core.step(x[b : b + 1], state[b : b + 1], float(dt[b]))
        torch.testing.assert_close(out[b : b + 1], out_b)
        torch.testing.assert_close(new[b : b + 1], new_b)
    # elapsed time matters: a different dt gives a different state
    _, other = core.step(x, state, torch.full((3,), 0.02))
    assert not torch.allclose(other[1:], new[1:])


@pytest.mark.parametrize("kind", KINDS)
def test_sequence_equals_repeated_step(kind):
    core = _core(kind)
    x = torch.randn(2, 5, 5)
    dt = torch.rand(2, 5) + 0.01
    out, final, states = core.sequence(x, core.initial_state(2), dt, torch.zeros(2, 5), return_states=True)
    state = core.initial_state(2)
    for t in range(5):
        o, state = core.step(x[:, t], state, dt[:, t])
        torch.testing.assert_close(out[:, t], o)
        torch.testing.assert_close(states[:, t], state)
    torch.testing.assert_close(final, state)


@pytest.mark.parametrize("kind", KINDS)
def test_state_is_zeroed_exactly_at_episode_starts(kind):
    """A start at step k for sample 0 makes the run from k on identical (bit for bit) to continuing from an exact
    zero state for that sample and from the carried state for sample 1."""
    core = _core(kind)
    x = torch.randn(2, 7, 5)
    dt = torch.full((2, 7), 0.1)
    state0 = torch.randn(2, core.state_size)  # a non-zero carried-over state
    starts = torch.zeros(2, 7, dtype=torch.bool)
    starts[0, 4] = True
    out, final = core.sequence(x, state0, dt, starts)
    head, state_k = core.sequence(x[:, :4], state0, dt[:, :4], torch.zeros(2, 4))
    state_k = state_k.clone()
    state_k[0] = 0.0
    tail, tail_final = core.sequence(x[:, 4:], state_k, dt[:, 4:], torch.zeros(2, 3))
    assert torch.equal(out[:, :4], head)
    assert torch.equal(out[:, 4:], tail)
    assert torch.equal(final, tail_final)
    # and the reset really changed something: without it sample 0 differs
    no_reset, _ = core.sequence(x, state0, dt, torch.zeros(2, 7))
    assert not torch.allclose(no_reset[0, 4:], out[0, 4:])


def test_float_episode_starts_behave_like_bool():
    core = _core("cfc")
    x = torch.randn(2, 4, 5)
    starts = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    state0 = torch.randn(2, core.state_size)
    a, fa = core.sequence(x, state0, 0.1, starts)
    b, fb = core.sequence(x, state0, 0.1, starts.bool())
    assert torch.equal(a, b) and torch.equal(fa, fb)


def test_zero_elapsed_time_is_clamped_so_ltc_gradients_stay_finite():
    """Padded steps carry dt = 0; an unclamped LTC step divides by zero and poisons every gradient."""
    core = _core("ltc")
    x = torch.randn(2, 4, 5)
    dt = torch.zeros(2, 4)
    out, _ = core.sequence(x, core.initial_state(2), dt, torch.zeros(2, 4))
    out.sum().backward()
    assert torch.isfinite(out).all()
    for name, p in core.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), name
    # the clamp is exactly min_elapsed_time
    a, _ = core.step(x[:, 0], core.initial_state(2), 0.0)
    b, _ = core.step(x[:, 0], core.initial_state(2), core.min_elapsed_time)
    assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_number_elapsed_time_gives_exactly_the_tensor_result(dtype):
    """step() hands a number dt to the LTC cell without tensor ops; it must round and clamp like the tensor."""
    core = _core("ltc").to(dtype)
    x, s = torch.randn(4, 5, dtype=dtype), torch.randn(4, 12, dtype=dtype)
    with torch.no_grad():
        for dt in (0.05, 1, 1e-4, 0.0, -2.0, 1 / 3):  # 1e-4, 0 and -2 are clamped to min_elapsed_time
            by_number = core.step(x, s, dt)
            by_tensor = core.step(x, s, torch.full((4,), float(dt), dtype=dtype))
            assert all(torch.equal(a, b) for a, b in zip(by_number, by_tensor)), dt
    with pytest.raises(ValueError, match="NaN"):
        core.step(x, s, float("nan"))


def test_reference_wirings_are_accepted_too():
    """Users coming from ncps can pass an ncps wiring object."""
    core = make_core("cfc", 5, ncps_wirings.AutoNCP(12, 3, seed=0))
    assert (core.state_size, core.output_size) == (12, 3)


def test_int_units_build_dense_cells():
    ltc = make_core("ltc", 4, 6)
    assert isinstance(ltc, LTCCore) and (ltc.state_size, ltc.output_size) == (6, 6)
    cfc = make_core("cfc", 4, 6, mode="no_gate")
    assert isinstance(cfc, CfCCore) and cfc.wiring is None and (cfc.state_size, cfc.output_size) == (6, 6)
    lstm = make_core("lstm", 4, np.int64(6))
    assert isinstance(lstm, LSTMCore) and lstm.state_size == 12
    out, state = cfc.step(torch.randn(2, 4), cfc.initial_state(2), torch.ones(2))
    assert out.shape == (2, 6) and torch.equal(out, state)


def test_ode_unfolds_changes_the_ltc_solution():
    torch.manual_seed(1)
    a = make_core("ltc", 4, wirings.AutoNCP(10, 2, seed=1), ode_unfolds=1)
    torch.manual_seed(1)
    b = make_core("ltc", 4, wirings.AutoNCP(10, 2, seed=1), ode_unfolds=6)
    x = torch.randn(2, 4)
    oa, _ = a.step(x, a.initial_state(2), 1.0)
    ob, _ = b.step(x, b.initial_state(2), 1.0)
    assert not torch.allclose(oa, ob)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        (("gru", 4, 8), {}, ValueError, "kind must be one of"),
        (("ltc", 0, 8), {}, ValueError, "input_size"),
        (("ltc", 4, 0), {}, ValueError, "wiring_or_units"),
        (("ltc", 4, "19"), {}, TypeError, "wiring_or_units"),
        (("cfc", 4, 8), {"ode_unfolds": 3}, ValueError, "ode_unfolds applies only"),
        (("ltc", 4, 8), {"mode": "pure"}, ValueError, "mode applies only"),
        (("cfc", 4, 8), {"mode": "fast"}, ValueError, "mode must be one of"),
        (("ltc", 4, 8), {"ode_unfolds": 0}, ValueError, "ode_unfolds"),
        (("ltc", 4, 8), {"min_elapsed_time": 0.0}, ValueError, "min_elapsed_time"),
        (("lstm", 4, wirings.AutoNCP(10, 2)), {}, TypeError, "hidden size"),
    ],
)
def test_make_core_rejects_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        make_core(*args, **kwargs)


@pytest.mark.parametrize("kind", KINDS)
def test_nan_elapsed_time_is_rejected_in_the_cores_words(kind):
    core = _core(kind)
    x, s = torch.randn(2, 5), core.initial_state(2)
    for dt in (torch.tensor([0.1, float("nan")]), torch.tensor(float("nan")), float("nan")):
        with pytest.raises(ValueError, match="dt contains NaN"):
            core.step(x, s, dt)
        with torch.no_grad(), pytest.raises(ValueError, match="dt contains NaN"):
            core.step(x, s, dt)
    with pytest.raises(ValueError, match="dt contains NaN"):
        core.sequence(x[:, None], s, torch.tensor([[0.1], [float("nan")]]), torch.zeros(2, 1))


def test_step_and_sequence_reject_bad_shapes():
    core = _core("cfc")
    s = core.initial_state(2)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 5\)"):
        core.step(torch.randn(2, 4), s, 0.1)
    with pytest.raises(ValueError, match="state must have shape"):
        core.step(torch.randn(3, 5), s, 0.1)
    with pytest.raises(TypeError, match="state must be a torch.Tensor"):
        core.step(torch.randn(2, 5), s.numpy(), 0.1)
    with pytest.raises(ValueError, match="dt must be a scalar or have shape"):
        core.step(torch.randn(2, 5), s, torch.ones(2, 1))
    with pytest.raises(ValueError, match="NaN"):
        core.step(torch.randn(2, 5), s, torch.tensor([0.1, float("nan")]))
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, 5\)"):
        core.sequence(torch.randn(2, 5), s, 0.1, torch.zeros(2, 1))
    with pytest.raises(ValueError, match="episode_starts must have shape"):
        core.sequence(torch.randn(2, 3, 5), s, 0.1, torch.zeros(2, 4))
