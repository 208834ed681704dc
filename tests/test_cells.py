"""Behaviour of the cells on their own: gradients, closed forms, masks, elapsed time, state dicts, validation."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

from ncp_control import LTC, CfC, CfCCell, LTCCell, WiredCfCCell, wirings
from ncp_control.cells import MIN_ELAPSED_TIME

torch.set_num_threads(1)


def small_ncp():
    return wirings.NCP(4, 3, 2, sensory_fanout=2, inter_fanout=2, recurrent_command_synapses=3, motor_fanin=2, seed=1)


def random_wiring(units=5, output_dim=2, seed=3):
    return wirings.Random(units, output_dim=output_dim, sparsity_level=0.4, random_seed=seed)


def empty_wiring(units, output_dim, input_dim):
    """A wiring without any synapse (neurons only leak)."""
    w = wirings.Wiring(units)
    w.set_output_dim(output_dim)
    w.build(input_dim)
    return w


def _gradcheck_module(module, *inputs, timespans=None, fast_mode=False):
    """gradcheck (float64) w.r.t. every parameter of ``module``, every input and ``timespans`` (a keyword)."""
    module = module.double()
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for _, p in module.named_parameters()]
    inputs = [t.double().requires_grad_(True) for t in inputs + ((timespans,) if timespans is not None else ())]
    n_args = len(names) + len(inputs) - (timespans is not None)

    def f(*tensors):
        kwargs = {"timespans": tensors[-1]} if timespans is not None else {}
        out = torch.func.functional_call(
            module, dict(zip(names, tensors[: len(names)])), tuple(tensors[len(names) : n_args]), kwargs
        )
        flat = []
        for o in out if isinstance(out, tuple) else (out,):
            flat.extend(o if isinstance(o, tuple) else (o,))
        return tuple(flat)

    assert gradcheck(f, tuple(params + inputs), eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=fast_mode)


# ---------------------------------------------------------------------------- gradcheck (float64)
@pytest.mark.parametrize("implicit", [True, False])
def test_ltc_cell_gradcheck(implicit):
    torch.manual_seed(0)
    cell = LTCCell(random_wiring(), 3, ode_unfolds=3, implicit_param_constraints=implicit)
    _gradcheck_module(cell, torch.randn(2, 3), 0.3 * torch.randn(2, 5), 0.2 + torch.rand(2, 1))


@pytest.mark.parametrize("mode", ["default", "pure", "no_gate"])
def test_cfc_cell_gradcheck(mode):
    torch.manual_seed(1)
    cell = CfCCell(3, 4, mode, backbone_units=6, backbone_layers=2)
    _gradcheck_module(cell, torch.randn(2, 3), torch.randn(2, 4), 0.2 + torch.rand(2, 1))


@pytest.mark.parametrize("recurrent", ["dense", "wiring"])
def test_wired_cfc_cell_gradcheck(recurrent):
    torch.manual_seed(2)
    cell = WiredCfCCell(3, small_ncp(), recurrent_connections=recurrent)
    _gradcheck_module(cell, torch.randn(2, 3), torch.randn(2, 9), 0.2 + torch.rand(2, 1))


def test_layers_gradcheck_with_mixed_memory_and_per_sample_time():
    """Whole layers (fast mode: random directional derivatives; the cells above are checked entry by entry)."""
    torch.manual_seed(3)
    ltc = LTC(3, random_wiring(), mixed_memory=True, ode_unfolds=2)
    _gradcheck_module(ltc, torch.randn(2, 3, 3), timespans=0.2 + torch.rand(2, 3), fast_mode=True)
    cfc = CfC(3, small_ncp(), mixed_memory=True, proj_size=2)
    _gradcheck_module(cfc, torch.randn(2, 3, 3), timespans=0.2 + torch.rand(2, 3), fast_mode=True)


# ---------------------------------------------------------------------------- closed forms
def test_ltc_without_synapses_is_the_semi_implicit_leak_update():
    torch.manual_seed(4)
    unfolds, dt = 3, 0.7
    cell = LTCCell(
        empty_wiring(3, 3, 2),
        2,
        input_mapping="none",
        output_mapping="none",
        ode_unfolds=unfolds,
        implicit_param_constraints=False,
    ).double()
    v0 = torch.tensor([[0.9, -0.4, 0.1]], dtype=torch.float64)
    out, v = cell(torch.randn(1, 2, dtype=torch.float64), v0, dt)
    cm, gl, vl = cell.cm.tolist(), cell.gleak.tolist(), cell.vleak.tolist()
    for n in range(3):
        expected = v0[0, n].item()
        for _ in range(unfolds):  # by hand: (cm/h * v + gl * vl) / (cm/h + gl), h = dt / unfolds
            a = cm[n] / (dt / unfolds)
            expected = (a * expected + gl[n] * vl[n]) / (a + gl[n] + 1e-8)
        assert v[0, n].item() == pytest.approx(expected, abs=1e-12)
    torch.testing.assert_close(out, v)  # output mapping "none", all neurons are motor


def test_ltc_without_synapses_tends_to_exponential_leak_with_many_unfolds():
    cell = LTCCell(empty_wiring(2, 2, 1), 1, ode_unfolds=2000, implicit_param_constraints=False).double()
    v0, dt = torch.tensor([[1.0, -1.0]], dtype=torch.float64), 1.5
    _, v = cell(torch.zeros(1, 1, dtype=torch.float64), v0, dt)
    tau = cell.cm / cell.gleak
    exact = cell.vleak + (v0 - cell.vleak) * torch.exp(-dt / tau)  # dv/dt = gleak/cm (vleak - v)
    torch.testing.assert_close(v, exact, atol=2e-3, rtol=0)
    assert not torch.allclose(v, v0, atol=1e-2)  # it did move


# ---------------------------------------------------------------------------- masks
def test_masks_are_buffers_in_the_state_dict_not_parameters():
    ltc, cfc = LTC(3, small_ncp()), CfC(3, small_ncp())
    params = dict(ltc.named_parameters()) | dict(cfc.named_parameters())
    assert not any("sparsity_mask" in n for n in params)
    assert {"rnn_cell.sparsity_mask", "rnn_cell.sensory_sparsity_mask"} <= set(ltc.state_dict())
    assert {f"rnn_cell.layer_{i}.sparsity_mask" for i in range(3)} <= set(cfc.state_dict())


def test_ltc_masked_synapses_get_zero_gradient():
    torch.manual_seed(5)
    ltc = LTC(3, small_ncp(), implicit_param_constraints=True)
    out, h = ltc(torch.randn(4, 6, 3), timespans=0.5 + torch.rand(4, 6))
    (out.sum() + h.pow(2).sum()).backward()
    cell = ltc.rnn_cell
    for prefix, mask in (("", cell.sparsity_mask), ("sensory_", cell.sensory_sparsity_mask)):
        for name in ("w", "sigma", "mu", "erev"):
            grad = getattr(cell, prefix + name).grad
            assert torch.all(grad[mask == 0] == 0), prefix + name
            assert torch.count_nonzero(grad[mask == 1]) > 0.9 * mask.sum(), prefix + name


@pytest.mark.parametrize("recurrent", ["dense", "wiring"])
def test_wired_cfc_masked_connections_get_zero_gradient(recurrent):
    torch.manual_seed(6)
    cfc = CfC(3, small_ncp(), recurrent_connections=recurrent)
    out, h = cfc(torch.randn(4, 6, 3), 0.5 * torch.randn(4, 9))
    (out.sum() + h.pow(2).sum()).backward()
    for layer in cfc.rnn_cell.layer_cells:
        masked = ["ff1", "ff2"] + (["time_a", "time_b"] if recurrent == "wiring" else [])
        for head in ("ff1", "ff2", "time_a", "time_b"):
            grad = getattr(layer, head).weight.grad
            if head in masked:
                assert torch.all(grad[layer.sparsity_mask == 0] == 0), head
            else:  # ncps's time gates are dense
                assert torch.count_nonzero(grad[layer.sparsity_mask == 0]) > 0, head


def _layer_jacobian(cell, l):
    """d new_state[layer l] / d old_state[layer l] for a WiredCfCCell, (H_l, H_l) [dest, src]."""
    sizes = cell.layer_sizes
    start = sum(sizes[:l])
    x, hx = torch.randn(1, cell.sensory_size), torch.randn(1, cell.state_size)
    jac = torch.autograd.functional.jacobian(lambda h: cell(x, h)[1], hx)[0, :, 0]  # (N, N) [dest, src]
    return jac[start : start + sizes[l], start : start + sizes[l]]


def test_wired_cfc_recurrence_dense_by_default_and_follows_the_wiring_on_request():
    torch.manual_seed(7)
    wiring = small_ncp()
    dense = WiredCfCCell(3, wiring)
    follow = WiredCfCCell(3, wiring, recurrent_connections="wiring")
    command = wiring.get_neurons_of_layer(1)
    adjacency = torch.tensor(wiring.adjacency_matrix)[command][:, command].abs()  # [src, dest]
    assert 0 < adjacency.sum() < adjacency.numel()
    assert torch.all(_layer_jacobian(dense, 1) != 0)  # ncps: all-to-all (#53)
    jac = _layer_jacobian(follow, 1)
    assert torch.all(jac[adjacency.t() == 0] == 0)
    assert torch.all(jac[adjacency.t() == 1] != 0)
    assert torch.all(_layer_jacobian(follow, 0) == 0)  # NCP inter neurons have no recurrent synapses


def test_wired_cfc_state_order_and_motor_output():
    wiring = small_ncp()
    cell = WiredCfCCell(3, wiring)
    assert cell.state_neuron_ids == wiring.get_neurons_of_layer(0) + wiring.get_neurons_of_layer(
        1
    ) + wiring.get_neurons_of_layer(2)
    out, h = cell(torch.randn(2, 3), torch.zeros(2, 9))
    torch.testing.assert_close(out, h[:, -2:])  # motor neurons are the last layer


# ---------------------------------------------------------------------------- elapsed time
def _models(seed):
    torch.manual_seed(seed)
    return {
        "ltc_fc4": LTC(3, 4, mixed_memory=True),  # B == units: ncps is silently wrong here
        "ltc_ncp": LTC(3, small_ncp()),
        "cfc_dense": CfC(3, 4, backbone_units=8),
        "cfc_wired": CfC(3, small_ncp(), mode="no_gate"),
    }


@pytest.mark.parametrize("name", ["ltc_fc4", "ltc_ncp", "cfc_dense", "cfc_wired"])
@pytest.mark.parametrize("layout", ["BT", "BT1", "TB", "TB1"])
def test_batched_timespans_equal_running_each_sample_alone(name, layout):
    model = _models(8)[name]
    model.batch_first = layout.startswith("B")
    x, ts = torch.randn(4, 5, 3), 0.1 + 2 * torch.rand(4, 5)
    if not model.batch_first:
        x, ts = x.transpose(0, 1), ts.t()
    ts_in = ts.unsqueeze(-1) if layout.endswith("1") else ts
    out, _ = model(x, timespans=ts_in)
    bdim = 0 if model.batch_first else 1
    for b in range(4):
        out_b, _ = model(x.select(bdim, b), timespans=ts.select(bdim, b))  # unbatched (T, C), (T,)
        torch.testing.assert_close(out.select(bdim, b), out_b, atol=1e-6, rtol=1e-6)
    # per-sample time matters: a different elapsed time for sample 0 changes sample 0 only
    ts2 = ts_in.clone()
    ts2.select(bdim, 0).mul_(3.0)
    out2, _ = model(x, timespans=ts2)
    assert not torch.allclose(out2.select(bdim, 0), out.select(bdim, 0))
    torch.testing.assert_close(out2.narrow(bdim, 1, 3), out.narrow(bdim, 1, 3))


def test_scalar_timespans_equal_constant_tensor():
    model = _models(9)["ltc_ncp"]
    x = torch.randn(2, 4, 3)
    torch.testing.assert_close(model(x, timespans=0.3)[0], model(x, timespans=torch.full((2, 4), 0.3))[0])
    torch.testing.assert_close(model(x)[0], model(x, timespans=torch.tensor(1.0))[0])


def test_zero_elapsed_time_keeps_the_ltc_state_and_gives_finite_gradients():
    torch.manual_seed(10)
    ltc = LTC(3, small_ncp())
    x, h0 = torch.randn(2, 4, 3), 0.5 * torch.randn(2, 9)
    ts = torch.tensor([[1.0, 0.0, 0.0, 1.0]] * 2)  # padded steps with dt = 0
    out, h = ltc(x, h0, ts)
    (out.sum() + h.sum()).backward()
    assert torch.isfinite(out).all() and torch.isfinite(h).all()
    assert all(torch.isfinite(p.grad).all() for p in ltc.parameters())
    # a zero step carries the state over (up to the MIN_ELAPSED_TIME sub-step)
    _, h1 = ltc(x[:, :1], h0, ts[:, :1])
    _, h3 = ltc(x[:, :3], h0, ts[:, :3])
    torch.testing.assert_close(h3, h1, atol=1e-4, rtol=0)
    cell = ltc.rnn_cell
    torch.testing.assert_close(cell(x[:, 0], h0, 0.0)[1], cell(x[:, 0], h0, MIN_ELAPSED_TIME)[1])


# ---------------------------------------------------------------------------- shapes and state dicts
def test_unbatched_equals_batch_of_one_and_hx_round_trips():
    for model in _models(11).values():
        x = torch.randn(5, 3)
        out, hx = model(x)
        out_b, hx_b = model(x.unsqueeze(0))
        torch.testing.assert_close(out, out_b[0])
        state = hx if isinstance(hx, tuple) else (hx,)
        assert all(s.dim() == 1 for s in state)
        out2, _ = model(x, hx)  # the returned state is accepted back
        assert out2.shape == out.shape


def test_return_last_output_only():
    torch.manual_seed(12)
    ltc = LTC(3, small_ncp(), return_sequences=False)
    ltc_seq = LTC(3, small_ncp())
    ltc_seq.load_state_dict(ltc.state_dict())
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(ltc(x)[0], ltc_seq(x)[0][:, -1])


def test_state_dict_round_trip_and_mismatched_masks_raise():
    torch.manual_seed(13)
    a = LTC(3, wirings.AutoNCP(10, 2, seed=1))
    b = LTC(3, wirings.AutoNCP(10, 2, seed=1))
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 4, 3)
    torch.testing.assert_close(a(x)[0], b(x)[0], atol=0, rtol=0)
    other = LTC(3, wirings.AutoNCP(10, 2, seed=2))
    with pytest.raises(ValueError, match="different wiring"):
        other.load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="different wiring"):
        CfC(3, wirings.AutoNCP(10, 2, seed=2)).load_state_dict(CfC(3, wirings.AutoNCP(10, 2, seed=1)).state_dict())
    # the wiring-following recurrence is another architecture than ncps's dense one
    with pytest.raises(ValueError, match="different wiring"):
        CfC(3, small_ncp(), recurrent_connections="wiring").load_state_dict(CfC(3, small_ncp()).state_dict())


def test_mismatched_masks_from_ncps_raise():
    ncps_torch = pytest.importorskip("ncps.torch")
    ncps_wirings = pytest.importorskip("ncps.wirings")
    ref = ncps_torch.LTC(3, ncps_wirings.AutoNCP(10, 2, seed=1))
    with pytest.raises(ValueError, match="sparsity_mask.*different wiring"):
        LTC(3, wirings.AutoNCP(10, 2, seed=3)).load_state_dict(ref.state_dict())


def test_explicit_constraints_clip_at_zero():
    ltc = LTC(3, small_ncp(), implicit_param_constraints=False)
    with torch.no_grad():
        ltc.rnn_cell.w.fill_(-1.0)
        ltc.rnn_cell.vleak.fill_(-1.0)
    ltc.apply_weight_constraints()
    assert torch.all(ltc.rnn_cell.w == 0)
    assert torch.all(ltc.rnn_cell.vleak == -1.0)  # not a constrained parameter


# ---------------------------------------------------------------------------- validation
INVALID = [
    (lambda: LTC(3, 4, input_mapping="afine"), ValueError, "input_mapping"),
    (lambda: LTC(3, 4, output_mapping="relu"), ValueError, "output_mapping"),
    (lambda: LTCCell(small_ncp(), 3, ode_unfolds=0), ValueError, "ode_unfolds"),
    (lambda: LTCCell(small_ncp()), ValueError, "in_features"),
    (lambda: LTC(3, "ncp"), TypeError, "units"),
    (lambda: LTC(0, 4), ValueError, "input_size"),
    (lambda: CfC(3, 4, mode="gated"), ValueError, "mode"),
    (lambda: CfC(3, 4, activation="sigmoid"), ValueError, "backbone_activation"),
    (lambda: CfC(3, small_ncp(), backbone_units=8), ValueError, "backbone_units"),
    (lambda: CfC(3, small_ncp(), activation="relu"), ValueError, "activation"),
    (lambda: CfC(3, 4, recurrent_connections="wiring"), ValueError, "recurrent_connections"),
    (lambda: CfC(3, small_ncp(), recurrent_connections="sparse"), ValueError, "recurrent_connections"),
    (lambda: CfC(3, 4, backbone_dropout=1.0), ValueError, "backbone_dropout"),
    (lambda: CfC(3, 4, backbone_layers=-1), ValueError, "backbone_layers"),
    (lambda: CfCCell(3, 4, sparsity_mask=torch.ones(7, 4).numpy()), ValueError, "backbone_layers=0"),
    (lambda: CfCCell(3, 4, backbone_layers=0, sparsity_mask=torch.ones(4, 4).numpy()), ValueError, "shape"),
]


@pytest.mark.parametrize("make,error,match", INVALID)
def test_invalid_construction_raises(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_dropout_without_effect_warns():
    with pytest.warns(UserWarning, match="no effect"):
        CfC(3, 4, backbone_dropout=0.3)


@pytest.mark.parametrize("name", ["ltc_fc4", "cfc_wired"])
def test_invalid_call_raises(name):
    model = _models(14)[name]
    x = torch.randn(2, 5, 3)
    n = model.state_size
    mixed = model.use_mixed
    cases = [
        (lambda: model(torch.randn(2, 5, 4)), ValueError, "input must have shape"),
        (lambda: model(torch.randn(2, 5, 3, 1)), ValueError, "input must have shape"),
        (
            lambda: model(x, torch.zeros(3, n) if not mixed else (torch.zeros(3, n), torch.zeros(3, n))),
            ValueError,
            "must have shape",
        ),
        (
            lambda: model(x, torch.zeros(2, n + 1) if not mixed else (torch.zeros(2, n), torch.zeros(2, n + 1))),
            ValueError,
            "must have shape",
        ),
        (lambda: model(x, timespans=torch.ones(5, 2)), ValueError, "timespans must"),
        (lambda: model(x, timespans=torch.ones(2, 5, 2)), ValueError, "timespans must"),
        (lambda: model(x, timespans=-0.1), ValueError, ">= 0"),
        (lambda: model(x, timespans=torch.full((2, 5), math.nan)), ValueError, "NaN"),
    ]
    if mixed:
        cases.append((lambda: model(x, torch.zeros(2, n)), TypeError, "pair"))
    else:
        cases.append((lambda: model(x, (torch.zeros(2, n), torch.zeros(2, n))), TypeError, "tensor"))
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()


def test_invalid_cell_call_raises():
    cell = LTCCell(small_ncp(), 3)
    with pytest.raises(ValueError, match="inputs must have shape"):
        cell(torch.randn(2, 4), torch.zeros(2, 9))
    with pytest.raises(ValueError, match="states must have shape"):
        cell(torch.randn(2, 3), torch.zeros(2, 8))
    with pytest.raises(ValueError, match="elapsed_time must"):
        cell(torch.randn(2, 3), torch.zeros(2, 9), torch.ones(3))
    with pytest.raises(ValueError, match=">= 0"):
        CfCCell(3, 4)(torch.randn(2, 3), torch.zeros(2, 4), torch.tensor([1.0, -1.0]))
