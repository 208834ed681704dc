"""The native LTC kernel (``ncp_control/cells/ltc_fast.py``) against the pure-torch equations it replaces.

The reference is the same module with the fast path switched off (``fast_path_available`` patched to False), so
both sides share parameters, masks, mappings and elapsed-time handling, and any difference is the kernel's.
float64 comparisons are tight (1e-10); float32 ones use the parity tolerance (1e-5). Speed is measured in
``scripts/bench_cells.py``, not here.
"""

from __future__ import annotations

import threading
import warnings

import pytest
import torch
from torch.autograd import gradcheck

from ncp_control import LTC, CfC, LTCCell, WiredCfCCell, wirings
from ncp_control.cells import MIN_ELAPSED_TIME, cfc_fast, ltc_fast, native
from ncp_control.policies.core import make_core

torch.set_num_threads(1)

needs_kernel = pytest.mark.skipif(
    native.load("ltc_kernel") is None or native.load("cfc_kernel") is None,
    reason="no C compiler: the fast path cannot be built here",
)
pytestmark = needs_kernel


def _ncp():
    return wirings.NCP(4, 3, 2, sensory_fanout=2, inter_fanout=2, recurrent_command_synapses=3, motor_fanin=2, seed=1)


WIRINGS = {
    "ncp": _ncp,
    "autoncp19": lambda: wirings.AutoNCP(19, 1, seed=3),
    "fc6": lambda: wirings.FullyConnected(6, output_dim=2),
    "random7": lambda: wirings.Random(7, output_dim=3, sparsity_level=0.5, random_seed=2),
}


@pytest.fixture
def pure(monkeypatch):
    """A context in which every cell takes the pure-torch path."""

    class _Pure:
        def __enter__(self):
            monkeypatch.setattr(ltc_fast, "fast_path_available", lambda *a, **k: False)
            monkeypatch.setattr(ltc_fast, "try_step_no_grad", lambda *a, **k: None)
            monkeypatch.setattr(cfc_fast, "fast_path_available", lambda *a, **k: False)
            monkeypatch.setattr(cfc_fast, "step_no_grad", lambda *a, **k: None)

        def __exit__(self, *exc):
            monkeypatch.undo()

    return _Pure()


def _grads(module, loss, *tensors):
    module.zero_grad()
    for t in tensors:
        t.grad = None
    loss.backward()
    named = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    return named, [None if t.grad is None else t.grad.clone() for t in tensors]


def _assert_same(a, b, tol):
    torch.testing.assert_close(a, b, atol=tol, rtol=tol)


def _compare_runs(module, run, tensors, pure, tol):
    """``run(module, *tensors) -> tuple of outputs``; compares outputs and every gradient, fast vs pure."""
    results = []
    for ctx in (None, pure):
        leaves = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in tensors]
        if ctx is None:
            outs = run(module, *leaves)
        else:
            with ctx:
                outs = run(module, *leaves)
        g = torch.Generator().manual_seed(7)
        loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outs)
        named, leaf_grads = _grads(module, loss, *[t for t in leaves if t.requires_grad])
        results.append(([o.detach() for o in outs], named, leaf_grads))
    (o1, n1, l1), (o2, n2, l2) = results
    for a, b in zip(o1, o2):
        _assert_same(a, b, tol)
    assert set(n1) == set(n2)
    for name in n1:
        torch.testing.assert_close(n1[name], n2[name], atol=tol, rtol=tol, msg=lambda m, name=name: f"{name}: {m}")
    for a, b in zip(l1, l2):
        _assert_same(a, b, tol)


# ---------------------------------------------------------------------------- the kernel is the default path
def test_fast_path_is_taken_by_default_for_cpu_float_cells():
    cell = LTCCell(_ncp(), 4)
    x, h = torch.randn(3, 4), torch.randn(3, 9)
    assert ltc_fast.fast_path_available(cell, x, h)
    assert native.status()["ltc_kernel"] == "native"
    assert ltc_fast.fast_path_available(cell.double(), x.double(), h.double())
    assert not ltc_fast.fast_path_available(cell.double(), x, h)  # mixed dtypes go to torch


# ---------------------------------------------------------------------------- outputs and gradients
@pytest.mark.parametrize("wiring", sorted(WIRINGS))
@pytest.mark.parametrize("implicit", [True, False])
def test_cell_step_matches_torch_equations_float64(wiring, implicit, pure):
    torch.manual_seed(0)
    cell = LTCCell(WIRINGS[wiring](), 5, ode_unfolds=3, implicit_param_constraints=implicit).double()
    n = cell.state_size
    x, h, dt = torch.randn(4, 5).double(), 0.5 * torch.randn(4, n).double(), (0.1 + torch.rand(4, 1)).double()
    _compare_runs(cell, lambda m, x, h, dt: m(x, h, dt), (x, h, dt), pure, 1e-10)


@pytest.mark.parametrize("input_mapping,output_mapping", [("affine", "affine"), ("linear", "none"), ("none", "linear")])
def test_mappings_match_torch_equations(input_mapping, output_mapping, pure):
    torch.manual_seed(1)
    layer = LTC(5, _ncp(), input_mapping=input_mapping, output_mapping=output_mapping).double()
    x = torch.randn(3, 6, 5).double()
    _compare_runs(layer, lambda m, x: m(x), (x,), pure, 1e-10)


@pytest.mark.parametrize("batch_first,return_sequences", [(True, True), (False, True), (True, False)])
def test_layer_sequence_float32_matches_torch_to_parity_tolerance(batch_first, return_sequences, pure):
    torch.manual_seed(2)
    layer = LTC(32, wirings.AutoNCP(19, 1, seed=4), batch_first=batch_first, return_sequences=return_sequences)
    x = torch.randn(8, 12, 32)
    ts = 0.05 + torch.rand(8, 12)
    if not batch_first:
        x, ts = x.transpose(0, 1), ts.t()  # non-contiguous views on purpose
    _compare_runs(layer, lambda m, x, ts: (lambda y, h: (y, h))(*m(x, timespans=ts)), (x, ts), pure, 1e-5)


def test_mixed_memory_layer_uses_the_kernel_per_step(pure):
    torch.manual_seed(3)
    layer = LTC(5, _ncp(), mixed_memory=True).double()
    x = torch.randn(2, 5, 5).double()
    _compare_runs(layer, lambda m, x: (lambda y, hc: (y, *hc))(*m(x)), (x,), pure, 1e-10)


def test_unbatched_and_no_grad_steps_match():
    torch.manual_seed(4)
    cell = LTCCell(_ncp(), 4, implicit_param_constraints=True)
    x, h = torch.randn(4), torch.randn(9)
    out, new = cell(x, h, 0.3)
    with torch.no_grad():
        out_ng, new_ng = cell(x.unsqueeze(0), h.unsqueeze(0), 0.3)
    assert out.shape == (2,) and new.shape == (9,)
    # two entry points (autograd step, no-grad step): equal up to float32 rounding, which an AVX-512 build of the
    # kernels may order differently; a wrong step is off by far more than this
    torch.testing.assert_close(out_ng[0], out.detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(new_ng[0], new.detach(), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------- elapsed time
@pytest.mark.parametrize("form", ["number", "0d", "(B,)", "(B,1)"])
def test_elapsed_time_forms_match_torch(form, pure):
    torch.manual_seed(5)
    cell = LTCCell(_ncp(), 4, implicit_param_constraints=True).double()
    x, h = torch.randn(3, 4).double(), torch.randn(3, 9).double()
    values = torch.tensor([0.2, 0.7, 1.3], dtype=torch.float64)
    dt = {"number": 0.4, "0d": torch.tensor(0.4, dtype=torch.float64), "(B,)": values, "(B,1)": values.unsqueeze(1)}[
        form
    ]
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            fast = cell(x, h, dt)
            with pure:
                ref = cell(x, h, dt)
        for a, b in zip(fast, ref):
            _assert_same(a.detach(), b.detach(), 1e-12)
    if isinstance(dt, torch.Tensor):  # gradient w.r.t. the elapsed time itself
        _compare_runs(cell, lambda m, x, h, dt: m(x, h, dt), (x, h, dt), pure, 1e-10)


def test_zero_elapsed_time_is_clamped_like_torch(pure):
    torch.manual_seed(6)
    cell = LTCCell(_ncp(), 4).double()
    x, h = torch.randn(3, 4).double(), torch.randn(3, 9).double()
    dt = torch.tensor([0.0, MIN_ELAPSED_TIME / 2, 0.5], dtype=torch.float64)
    _compare_runs(cell, lambda m, x, h, dt: m(x, h, dt), (x, h, dt), pure, 1e-9)
    out, new = cell(x, h, 0.0)
    assert torch.isfinite(new).all()
    torch.testing.assert_close(new[:, :], h, atol=1e-4, rtol=0)  # a tiny step barely moves the state


@pytest.mark.parametrize("bad", [-0.1, float("nan")])
def test_negative_or_nan_elapsed_time_raises(bad):
    cell = LTCCell(_ncp(), 4)
    x, h = torch.randn(2, 4), torch.randn(2, 9)
    with pytest.raises(ValueError, match=">= 0"):
        cell(x, h, bad)
    with torch.no_grad(), pytest.raises(ValueError, match=">= 0"):
        cell(x, h, torch.tensor([0.1, bad]))
    with pytest.raises(ValueError, match=">= 0"):
        LTC(4, _ncp())(torch.randn(2, 3, 4), timespans=torch.tensor([[0.1, bad, 0.2], [0.1, 0.1, 0.1]]))


# ---------------------------------------------------------------------------- masks and constants
def test_masked_synapses_get_exactly_zero_gradient():
    torch.manual_seed(7)
    cell = LTCCell(wirings.AutoNCP(12, 2, seed=1), 6, implicit_param_constraints=True)
    out, h = cell(torch.randn(5, 6), torch.randn(5, 12), 0.5)
    (out.sum() + h.sum()).backward()
    off, s_off = cell.sparsity_mask == 0, cell.sensory_sparsity_mask == 0
    for name in ("w", "erev", "mu", "sigma"):
        assert torch.all(getattr(cell, name).grad[off] == 0), name
        assert getattr(cell, name).grad[~off].abs().sum() > 0, name
    for name in ("sensory_w", "sensory_erev", "sensory_mu", "sensory_sigma"):
        assert torch.all(getattr(cell, name).grad[s_off] == 0), name


def test_cached_constants_follow_in_place_parameter_changes(pure):
    """No-grad steps cache softplus(w) etc.; an optimiser step or load_state_dict must invalidate them."""
    torch.manual_seed(8)
    cell = LTCCell(_ncp(), 4, implicit_param_constraints=True)
    x, h = torch.randn(3, 4), torch.randn(3, 9)
    with torch.no_grad():
        before = cell(x, h, 0.5)[1]
        cell.w.add_(0.7)  # in place, as an optimiser does
        after = cell(x, h, 0.5)[1]
        with pure:
            ref = cell(x, h, 0.5)[1]
        other = LTCCell(_ncp(), 4, implicit_param_constraints=True)
        cell.load_state_dict(other.state_dict())
        loaded = cell(x, h, 0.5)[1]
        expected = other(x, h, 0.5)[1]
    assert not torch.allclose(before, after)
    _assert_same(after, ref, 1e-6)
    assert torch.equal(loaded, expected)


def test_cached_constants_follow_changes_made_through_data(pure):
    """``p.data.mul_()`` leaves autograd's version counter alone; the cached step constants must still follow it,
    and a mask changed through ``.data`` (a new synapse) must rebuild the edge lists."""
    torch.manual_seed(9)
    cell = LTCCell(_ncp(), 4, implicit_param_constraints=True)
    x, h = torch.randn(3, 4), torch.randn(3, 9)

    def fast_and_pure():
        with torch.no_grad():
            fast = cell(x, h, 0.5)
            with pure:
                ref = cell(x, h, 0.5)
        return fast, ref

    before = fast_and_pure()[0]
    for change in (
        lambda: cell.w.data.mul_(3.0),
        lambda: cell.sensory_mu.data.add_(0.4),
        lambda: cell.cm.data.copy_(cell.cm.data * 2),
        lambda: cell.erev.data.neg_(),
    ):
        change()
        fast, ref = fast_and_pure()
        for a, b in zip(fast, ref):
            _assert_same(a, b, 1e-6)
    assert not torch.allclose(before[1], fast[1])
    off = (cell.sparsity_mask == 0).nonzero()[0]
    cell.sparsity_mask.data[off[0], off[1]] = 1.0  # a synapse the cached edge lists do not have
    fast, ref = fast_and_pure()
    for a, b in zip(fast, ref):
        _assert_same(a, b, 1e-6)
    seq = LTC(4, _ncp(), batch_first=True)
    with torch.no_grad():
        seq.rnn_cell(x, h, 0.5)  # caches edges for the sequence path too
        seq.rnn_cell.sparsity_mask.data.zero_()
        got = seq(x.unsqueeze(1), h)[0]
        with pure:
            want = seq(x.unsqueeze(1), h)[0]
    _assert_same(got, want, 1e-6)


def test_cells_with_step_tables_copy_and_pickle():
    """The per-thread step tables hold raw addresses; copies and pickles must not share or carry them."""
    import copy
    import pickle

    torch.manual_seed(10)
    cell = LTCCell(_ncp(), 4, implicit_param_constraints=True)
    x, h = torch.randn(3, 4), torch.randn(3, 9)
    with torch.no_grad():
        expected = cell(x, h, 0.5)[1]
        for other in (copy.deepcopy(cell), pickle.loads(pickle.dumps(cell))):
            with torch.no_grad():
                other.w.mul_(2.0)
            assert torch.equal(cell(x, h, 0.5)[1], expected)
            assert not torch.allclose(other(x, h, 0.5)[1], expected)


def test_no_grad_steps_follow_batch_dtype_and_parameter_swaps(pure):
    """The per-thread step tables are rebuilt or refreshed whenever what they were built for changes."""
    torch.manual_seed(12)
    cell = LTCCell(_ncp(), 4, implicit_param_constraints=True)
    batches = {b: (torch.randn(b, 4), torch.randn(b, 9)) for b in (1, 3, 5)}

    def check():
        for b in (5, 1, 3, 5):  # starts with the batch size of the tables the previous check left
            x, h = (t.to(cell.w.dtype) for t in batches[b])
            with torch.no_grad():
                fast = cell(x, h, 0.3)
                with pure:
                    ref = cell(x, h, 0.3)
            for a, b in zip(fast, ref):
                _assert_same(a, b, 1e-6)

    for _ in range(2):  # alternating batch sizes in one thread
        check()
    cell.double()  # another dtype: other tables
    check()
    cell.float()
    check()
    cell.w.data = cell.w.data + 0.5  # new memory, same version counter
    check()
    cell.sensory_mu = torch.nn.Parameter(cell.sensory_mu.detach() * 1.1)  # a new parameter object
    check()
    cell.sigma = torch.nn.Parameter(cell.sigma.detach().t().contiguous().t())  # not contiguous: general path
    assert not cell.sigma.is_contiguous()
    check()


# ---------------------------------------------------------------------------- the policy core's fused sequence
def test_core_sequence_with_episode_starts_matches_step_loop(pure):
    torch.manual_seed(9)
    core = make_core("ltc", 5, wirings.AutoNCP(12, 2, seed=2)).double()
    x = torch.randn(3, 8, 5).double()
    dt = torch.rand(3, 8).double() * 0.1  # includes values under the core's 1e-3 clamp
    starts = torch.rand(3, 8) < 0.3
    state = torch.randn(3, 12).double()
    run = lambda m, x, state, dt: m.sequence(x, state, dt, starts, return_states=True)  # noqa: E731
    _compare_runs(core, run, (x, state, dt), pure, 1e-10)


def test_gradcheck_through_fused_sequence_with_resets():
    torch.manual_seed(10)
    core = make_core("ltc", 3, _ncp(), ode_unfolds=2).double()
    starts = torch.tensor([[False, True, False], [False, False, True]])
    params = list(core.parameters())  # gradcheck perturbs these in place, and the core reads them
    x = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    s0 = torch.randn(2, 9, dtype=torch.float64, requires_grad=True)
    dt = (0.2 + torch.rand(2, 3, dtype=torch.float64)).requires_grad_(True)

    def f(*tensors):
        return core.sequence(x, s0, dt, starts, return_states=True)

    assert gradcheck(f, (*params, x, s0, dt), eps=1e-6, atol=1e-6, rtol=1e-4)


# ---------------------------------------------------------------------------- threads, unsupported cases, fallback
@pytest.mark.parametrize("make", [LTCCell, WiredCfCCell], ids=["ltc", "wired_cfc"])
def test_concurrent_no_grad_steps_from_threads_are_correct(make):
    """Per-thread step tables: threads with different batch sizes and elapsed times never see each other's."""
    torch.manual_seed(11)
    cell = make(_ncp(), 4) if make is LTCCell else make(4, _ncp())
    inputs = [(torch.randn(b, 4), torch.randn(b, 9), 0.2 + 0.1 * (b % 2)) for b in (1, 3, 5, 8)]
    with torch.no_grad():
        expected = [cell(x, h, dt)[1] for x, h, dt in inputs]
    errors = []

    def work(i):
        x, h, dt = inputs[i]
        with torch.no_grad():
            for _ in range(200):
                if not torch.equal(cell(x, h, dt)[1], expected[i]):
                    errors.append(i)
                    return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_unsupported_dtype_uses_torch_path():
    cell = LTCCell(_ncp(), 4).to(torch.bfloat16)
    x, h = torch.randn(2, 4, dtype=torch.bfloat16), torch.randn(2, 9, dtype=torch.bfloat16)
    assert not ltc_fast.fast_path_available(cell, x, h)
    out, new = cell(x, h, 0.5)
    ref = LTCCell(_ncp(), 4)
    ref.load_state_dict({k: v.float() for k, v in cell.state_dict().items()})
    torch.testing.assert_close(new.float(), ref(x.float(), h.float(), 0.5)[1], atol=0.05, rtol=0.05)


def test_double_backward_is_refused_with_a_clear_error():
    cell = LTCCell(_ncp(), 4).double()
    x = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    out, _ = cell(x, torch.zeros(2, 9, dtype=torch.float64), 0.5)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()


@pytest.fixture
def fresh_native(monkeypatch, tmp_path):
    """Forget the loaded kernels (and the warned flag) before and after, with a private cache directory."""
    monkeypatch.setenv("NCP_CONTROL_CACHE_DIR", str(tmp_path))
    native.forget_loaded()
    yield tmp_path
    monkeypatch.undo()
    native.forget_loaded()


def test_no_compiler_falls_back_to_torch_with_one_warning(fresh_native, monkeypatch):
    monkeypatch.setenv("CC", str(fresh_native / "no-such-compiler"))
    cell = LTCCell(_ncp(), 4)
    x, h = torch.randn(2, 4), torch.randn(2, 9)
    with pytest.warns(RuntimeWarning, match="pure-torch") as record:
        out, new = cell(x, h, 0.5)
        cell(x, h, 0.5)
        LTC(4, _ncp())(torch.randn(1, 3, 4))
    assert len([w for w in record if issubclass(w.category, RuntimeWarning)]) == 1
    assert "no C compiler" in native.status()["ltc_kernel"]
    monkeypatch.delenv("CC")
    native.forget_loaded()
    fast_out, fast_new = cell(x, h, 0.5)  # compiled now, same numbers
    _assert_same(fast_new, new, 1e-6)


def test_pure_torch_env_var_disables_the_kernel_silently(fresh_native, monkeypatch):
    monkeypatch.setenv("NCP_CONTROL_PURE_TORCH", "1")
    cell = LTCCell(_ncp(), 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not ltc_fast.fast_path_available(cell, torch.randn(2, 4))
        cell(torch.randn(2, 4), torch.randn(2, 9), 0.5)
    assert not any(fresh_native.iterdir())  # nothing compiled


def test_compiled_library_is_cached_and_reused(fresh_native, monkeypatch):
    assert native.load("ltc_kernel") is not None
    built = list(fresh_native.glob("ltc_kernel-*.so"))
    assert len(built) == 1
    native.forget_loaded()

    def no_compiler(*a, **k):
        raise AssertionError("the cached library should have been loaded without compiling")

    monkeypatch.setattr(native.subprocess, "run", no_compiler)
    assert native.load("ltc_kernel") is not None


# ---------------------------------------------------------------------------- wired CfC
@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
@pytest.mark.parametrize("recurrent", ["dense", "wiring"])
def test_wired_cfc_layer_matches_torch_equations_float64(mode, recurrent, pure):
    torch.manual_seed(12)
    layer = CfC(5, wirings.AutoNCP(12, 2, seed=1), mode=mode, recurrent_connections=recurrent).double()
    x, h0 = torch.randn(3, 6, 5).double(), torch.randn(3, 12).double()
    ts = (0.2 + torch.rand(3, 6)).double()
    _compare_runs(layer, lambda m, x, h0, ts: m(x, h0, ts), (x, h0, ts), pure, 1e-10)


@pytest.mark.parametrize("form", ["number", "(B,)", "(B,1)"])
def test_wired_cfc_cell_step_float32_and_no_grad(form, pure):
    torch.manual_seed(13)
    cell = WiredCfCCell(32, wirings.AutoNCP(19, 1, seed=2))
    x, h = torch.randn(8, 32), torch.randn(8, 19)
    ts = {"number": 0.7, "(B,)": 0.1 + torch.rand(8), "(B,1)": 0.1 + torch.rand(8, 1)}[form]
    _compare_runs(cell, lambda m, x, h: m(x, h, ts), (x, h), pure, 1e-5)
    with torch.no_grad():
        fast = cell(x, h, ts)
        with pure:
            ref = cell(x, h, ts)
    for a, b in zip(fast, ref):
        _assert_same(a, b, 1e-6)


def test_wired_cfc_mixed_memory_and_batch_layouts(pure):
    torch.manual_seed(14)
    for kwargs in ({"mixed_memory": True}, {"batch_first": False, "return_sequences": False}):
        layer = CfC(4, _ncp(), **kwargs).double()
        x = torch.randn(2, 5, 4).double()
        run = lambda m, x: tuple(  # noqa: E731
            t for o in m(x) for t in (o if isinstance(o, tuple) else (o,))
        )
        _compare_runs(layer, run, (x,), pure, 1e-10)


def test_wired_cfc_core_sequence_with_resets_matches_step_loop(pure):
    torch.manual_seed(15)
    core = make_core("cfc", 5, wirings.AutoNCP(12, 2, seed=2)).double()
    x, dt = torch.randn(3, 8, 5).double(), torch.rand(3, 8).double()
    starts = torch.rand(3, 8) < 0.3
    state = torch.randn(3, 12).double()
    run = lambda m, x, state, dt: m.sequence(x, state, dt, starts, return_states=True)  # noqa: E731
    _compare_runs(core, run, (x, state, dt), pure, 1e-10)


def test_wired_cfc_masked_weights_get_zero_gradient_and_negative_time_raises():
    torch.manual_seed(16)
    cell = WiredCfCCell(4, _ncp(), recurrent_connections="wiring")
    out, h = cell(torch.randn(3, 4), torch.randn(3, 9), 0.5)
    (out.sum() + h.square().sum()).backward()
    for layer in cell.layer_cells:
        off = layer.sparsity_mask == 0
        for head in (layer.ff1, layer.ff2, layer.time_a, layer.time_b):
            assert torch.all(head.weight.grad[off] == 0)
            assert head.weight.grad[~off].abs().sum() > 0
    with pytest.raises(ValueError, match=">= 0"):
        cell(torch.randn(3, 4), torch.randn(3, 9), -1.0)


def test_large_wired_cfc_goes_to_torch_where_blas_is_faster():
    small, large = WiredCfCCell(32, wirings.AutoNCP(19, 1, seed=1)), WiredCfCCell(32, wirings.FullyConnected(64))
    x = torch.randn(2, 32)
    assert cfc_fast.fast_path_available(small, x)
    assert not cfc_fast.fast_path_available(large, x)
    out, h = large(x, torch.zeros(2, 64), 1.0)
    assert torch.isfinite(h).all() and h.abs().sum() > 0


def test_wired_cfc_no_grad_steps_follow_batch_dtype_and_parameter_changes(pure):
    """The wired CfC's per-thread step tables: rebuilt or bypassed whenever what they point at changes."""
    import copy
    import pickle

    torch.manual_seed(17)
    cell = WiredCfCCell(4, _ncp())
    batches = {b: (torch.randn(b, 4), torch.randn(b, 9)) for b in (1, 3, 5)}

    def check(target=cell, ts=0.3):
        for b in (5, 1, 3, 5):
            dtype = target.layer_cells[0].ff1.weight.dtype
            x, h = (t.to(dtype) for t in batches[b])
            with torch.no_grad():
                fast = target(x, h, ts)
                with pure:
                    ref = target(x, h, ts)
            for a, b in zip(fast, ref):
                _assert_same(a, b, 1e-6)

    check()
    check(ts=0.8)  # another number: the table's time buffer is refilled
    check(ts=0.1 + torch.rand(5)[:1].item())
    layer = cell.layer_cells[0]
    layer.ff1.weight.data.mul_(2.0)  # read directly by the kernel: no cache to go stale
    check()
    layer.ff2.weight.data = layer.ff2.weight.data * 0.5  # new memory
    check()
    layer.time_a.bias = torch.nn.Parameter(layer.time_a.bias.detach() + 0.3)  # a new parameter object
    check()
    layer.ff1.weight = torch.nn.Parameter(layer.ff1.weight.detach().t().contiguous().t())  # not contiguous
    assert not layer.ff1.weight.is_contiguous()
    check()
    cell.double()
    check()
    for other in (copy.deepcopy(cell), pickle.loads(pickle.dumps(cell))):
        with torch.no_grad():
            other.layer_cells[1].ff1.weight.mul_(3.0)
        check(other)
    check()
    x, h = batches[3][0].double(), batches[3][1].double()
    with torch.no_grad():
        cell(x, h, 0.3)  # tables for batch 3 exist now
        with pytest.raises(ValueError, match="input must have shape"):
            cell(torch.randn(3, 5, dtype=torch.float64), h, 0.3)
        with pytest.raises(ValueError, match=">= 0"):
            cell(x, h, float("nan"))
        with pytest.raises(ValueError, match=">= 0"):
            cell(x, h, -0.1)
