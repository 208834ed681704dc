"""The LTC and CfC layers' short no-grad sequences (T <= 8, e.g. ``y, h = ltc(x[:, None], h)``) take the cells'
per-step fast path and give the sequence path's numbers."""

from __future__ import annotations

import pytest
import torch

from ncp_control import LTC, CfC, wirings
from ncp_control.cells import cfc_fast, layers, ltc_fast

torch.set_num_threads(1)


def _layer(cls, batch_first=True, return_sequences=True, **kwargs):
    torch.manual_seed(0)
    return cls(6, wirings.AutoNCP(10, 2, seed=1), batch_first=batch_first, return_sequences=return_sequences, **kwargs)


def _inputs(steps, batch_first, batch=4):
    g = torch.Generator().manual_seed(steps)
    x = torch.randn((batch, steps, 6) if batch_first else (steps, batch, 6), generator=g)
    h = 0.3 * torch.randn(batch, 10, generator=g)
    times = 0.5 + torch.rand((batch, steps) if batch_first else (steps, batch), generator=g)
    return x, h, times


@pytest.mark.parametrize("cls", [LTC, CfC])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("steps", [1, 3, layers.SHORT_SEQUENCE])
def test_short_no_grad_sequence_equals_the_sequence_path(cls, batch_first, return_sequences, steps):
    layer = _layer(cls, batch_first, return_sequences)
    x, h, times = _inputs(steps, batch_first)
    for timespans in (None, 0.7, times, times.unsqueeze(-1)):
        for hx in (None, h):
            reference = layer(x, hx, timespans)  # grad enabled: the general (sequence kernel) path
            with torch.no_grad():
                fast = layer(x, hx, timespans)
            assert fast[0].shape == reference[0].shape and fast[1].shape == reference[1].shape
            torch.testing.assert_close(fast[0], reference[0].detach(), atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(fast[1], reference[1].detach(), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cls, module, name", [(LTC, ltc_fast, "ltc_sequence"), (CfC, cfc_fast, "cfc_sequence")])
def test_short_no_grad_sequences_never_call_the_sequence_kernel(monkeypatch, cls, module, name):
    layer = _layer(cls)
    x, h, _ = _inputs(layers.SHORT_SEQUENCE + 1, True)
    with torch.no_grad():
        long_y, _ = layer(x, h)
        layer(x[:, :1], h)  # builds the step tables

    def forbidden(*args, **kwargs):
        raise AssertionError(f"{name} called")

    monkeypatch.setattr(module, name, forbidden)
    with torch.no_grad():
        y, state = layer(x[:, :1], h)
        for t in range(1, 4):
            y, state = layer(x[:, t : t + 1], state)  # the online call, one step at a time
        y8, _ = layer(x[:, : layers.SHORT_SEQUENCE], h)
        torch.testing.assert_close(y8, long_y[:, : layers.SHORT_SEQUENCE])
        with pytest.raises(AssertionError, match=name):
            layer(x, h)  # T = 9: the one-call sequence kernel


@pytest.mark.parametrize("cls", [LTC, CfC])
def test_short_no_grad_path_keeps_the_checks(cls):
    layer = _layer(cls)
    x, h, times = _inputs(2, True)
    with torch.no_grad():
        with pytest.raises(ValueError, match="hx must have shape"):
            layer(x, h[:, :3])
        with pytest.raises(ValueError, match=">= 0"):
            layer(x, h, -times)
        with pytest.raises(ValueError, match=">= 0"):
            layer(x, h, float("nan"))
        with pytest.raises(ValueError, match="input must have shape"):
            layer(x[..., :3], h)


def test_dense_cfc_and_mixed_memory_layers_still_work_without_grad():
    torch.manual_seed(0)
    dense = CfC(6, 8, proj_size=3)
    mixed = LTC(6, wirings.AutoNCP(10, 2, seed=1), mixed_memory=True)
    x = torch.randn(2, 3, 6)
    for layer in (dense, mixed):
        reference = layer(x)
        with torch.no_grad():
            fast = layer(x)
        torch.testing.assert_close(fast[0], reference[0].detach(), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cls", [LTC, CfC])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_online_step_takes_the_tables_and_equals_the_sequence_path(monkeypatch, cls, batch_first, return_sequences):
    layer = _layer(cls, batch_first, return_sequences, **({"proj_size": 3} if cls is CfC else {}))
    x, h, _ = _inputs(6, batch_first)
    reference, ref_state = layer(x, h, 0.7)  # grad enabled: the sequence kernel
    with torch.no_grad():
        first = x[:, :1] if batch_first else x[:1]
        layer(first, h, 0.7)  # builds the step tables

        def forbidden(*args, **kwargs):
            raise AssertionError("the online call left the step tables")

        monkeypatch.setattr(layer, "_short_no_grad", forbidden)
        state, outputs = h, []
        for t in range(6):  # slices of a longer sequence: strided inputs, read through their batch stride
            step = x[:, t : t + 1] if batch_first else x[t : t + 1]
            y, state = layer(step, state, 0.7)
            outputs.append(y)
    time_axis = 1 if batch_first else 0
    expected_shape = ((4, 1, 3) if batch_first else (1, 4, 3)) if return_sequences else (4, 3)
    if cls is LTC:
        expected_shape = expected_shape[:-1] + (2,)
    assert outputs[0].shape == expected_shape
    got = torch.cat(outputs, dim=time_axis) if return_sequences else outputs[-1]
    torch.testing.assert_close(got, reference.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(state, ref_state.detach(), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cls", [LTC, CfC])
def test_online_step_keeps_the_checks_and_follows_changed_weights(cls):
    layer = _layer(cls)
    x, h, _ = _inputs(1, True)
    with torch.no_grad():
        layer(x, h)  # builds the step tables
        for bad in (-1.0, float("nan")):
            with pytest.raises(ValueError, match=">= 0"):
                layer(x, h, bad)
        with pytest.raises(ValueError, match="hx must have shape"):
            layer(x, h[:, :3])
        with pytest.raises(ValueError, match="input must have shape"):
            layer(x[..., :3], h)
        before = layer(x, h)[0]
        cell = layer.rnn_cell
        weight = cell.w if cls is LTC else cell.layer_cells[0].ff1.weight
        weight.data.mul_(1.5)  # in place: the same address
        after = layer(x, h)[0]
    reference = layer(x, h)[0].detach()  # grad enabled: the sequence kernel
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, reference, atol=1e-6, rtol=1e-5)


def test_online_ltc_step_follows_a_mask_changed_through_data():
    layer = _layer(LTC)
    x, h, _ = _inputs(1, True)
    cell = layer.rnn_cell
    mask_name = next(name for name, _ in cell.named_buffers() if "mask" in name and "sensory" not in name)
    mask = getattr(cell, mask_name)
    with torch.no_grad():
        layer(x, h)
        off = (mask != 0).nonzero()[0]
        mask.data[tuple(off)] = 0  # remove a synapse in place
        online = layer(x, h)[0]
    torch.testing.assert_close(online, layer(x, h)[0].detach(), atol=1e-6, rtol=1e-5)
