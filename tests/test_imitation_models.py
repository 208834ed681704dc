"""Imitation sequence models: carried state across windows, predict semantics, parameter counts, config round trip."""

import json

import numpy as np
import pytest
import torch

from ncp_control.policies.imitation import (
    MODEL_KINDS,
    ModelConfig,
    NCPShape,
    build_model,
    format_parameter_table,
    parameter_counts,
)

torch.set_num_threads(1)

SHAPE = (16, 32, 3)
SMALL = dict(observation_shape=SHAPE, conv_channels=(4, 6, 8, 8, 8), features=16, step_seconds=0.1)


def _model(kind, **kwargs):
    return build_model(ModelConfig(kind, **{**SMALL, **kwargs}), seed=0)


def _frames(t, b=1, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (b, t, *SHAPE), dtype=np.uint8)


@pytest.mark.parametrize("kind", ["ncp-ltc", "ncp-cfc", "lstm"])
def test_state_is_carried_across_window_boundaries(kind):
    """Stepping with predict == one forward over 40 frames == three 16-frame windows with the state carried;
    zeroing the state at each window boundary gives different actions (so the check can fail)."""
    model = _model(kind)
    frames = _frames(40)
    dt = torch.full((1, 40), 0.1)
    starts = torch.zeros(1, 40, dtype=torch.bool)
    starts[0, 0] = True
    with torch.no_grad():
        full, _ = model(torch.from_numpy(frames), model.initial_state(1), dt, starts)
        windows, resets, state = [], [], model.initial_state(1)
        for k in range(0, 40, 16):
            out, state = model(torch.from_numpy(frames[:, k : k + 16]), state, dt[:, k : k + 16], starts[:, k : k + 16])
            windows.append(out)
            fresh, _ = model(
                torch.from_numpy(frames[:, k : k + 16]),
                model.initial_state(1),
                dt[:, k : k + 16],
                starts[:, k : k + 16],
            )
            resets.append(fresh)
    stepped, h = [], None
    for t in range(40):
        action, h = model.predict(frames[:, t], h, np.array([t == 0]))
        stepped.append(action)
    stepped = np.stack(stepped, axis=1)  # (1, 40, 1)
    np.testing.assert_allclose(stepped, full.clamp(-1, 1).numpy(), atol=1e-5)
    np.testing.assert_allclose(torch.cat(windows, 1).numpy(), full.numpy(), atol=1e-5)
    after_boundary = slice(16, 20)
    assert np.abs(torch.cat(resets, 1).numpy()[:, after_boundary] - full.numpy()[:, after_boundary]).max() > 1e-4


def test_episode_start_resets_the_state_in_predict():
    model = _model("ncp-ltc")
    frames = _frames(6)
    _, h = model.predict(frames[:, 0], None, np.array([True]))
    for t in range(1, 5):
        _, h = model.predict(frames[:, t], h, np.array([False]))
    restarted, _ = model.predict(frames[:, 5], h, np.array([True]))
    fresh, _ = model.predict(frames[:, 5], None, np.array([True]))
    carried, _ = model.predict(frames[:, 5], h, np.array([False]))
    np.testing.assert_allclose(restarted, fresh, atol=1e-6)
    assert np.abs(carried - fresh).max() > 1e-5


def test_predict_batches_envs_independently_and_accepts_one_frame():
    model = _model("lstm")
    frames = _frames(1, b=3)[:, 0]  # (3, H, W, 3)
    actions, state = model.predict(frames)
    assert actions.shape == (3, 1) and state.shape == (3, model.state_size) and state.dtype == np.float32
    single, _ = model.predict(frames[1])
    assert single.shape == (1,)
    np.testing.assert_allclose(single, actions[1], atol=1e-6)
    assert np.all(np.abs(actions) <= 1.0)


def test_cnn_is_memoryless_and_returns_no_state():
    model = _model("cnn")
    frames = _frames(3)
    a0, state = model.predict(frames[:, 0])
    assert state is None and model.state_size == 0
    model.predict(frames[:, 1])
    a2, _ = model.predict(frames[:, 0], None, np.array([False]))
    np.testing.assert_allclose(a0, a2)


def test_elapsed_time_reaches_the_cells():
    """The cores see elapsed time in nominal frames: a doubled gap changes an LTC's output."""
    model = _model("ncp-ltc")
    frames = _frames(2)
    _, h = model.predict(frames[:, 0], None, np.array([True]))
    nominal, _ = model.predict(frames[:, 1], h, elapsed_time=0.1)
    default, _ = model.predict(frames[:, 1], h)
    slow, _ = model.predict(frames[:, 1], h, elapsed_time=0.2)
    np.testing.assert_allclose(nominal, default)
    assert np.abs(slow - nominal).max() > 1e-5


def test_parameter_counts_match_closed_forms():
    ltc = parameter_counts(_model("ncp-ltc", features=32, conv_channels=(4, 6, 8, 8, 8)))
    # paper NCP on 32 inputs: 250 synapses; LTC: 4 per synapse (w, sigma, mu, erev) + 3 per neuron
    # (gleak, vleak, cm) + affine output map (2 x 1 motor); no input map behind the conv head's dense layer
    assert ltc["synapses"] == 250 and ltc["neurons"] == 19
    assert ltc["recurrent"] == 4 * 250 + 3 * 19 + 2 == 1059
    affine = parameter_counts(_model("ncp-ltc", features=32, conv_channels=(4, 6, 8, 8, 8), ltc_input_mapping="affine"))
    assert affine["recurrent"] == ltc["recurrent"] + 2 * 32
    assert ltc["recurrent_stored"] > ltc["recurrent"]  # dense tensors include masked-out synapses
    assert ltc["readout"] == 0
    lstm = parameter_counts(_model("lstm", features=32, conv_channels=(4, 6, 8, 8, 8)))
    assert lstm["recurrent"] == 4 * 64 * (32 + 64) + 2 * 4 * 64  # torch.nn.LSTMCell: two bias vectors
    assert lstm["readout"] == 64 + 1
    cnn = parameter_counts(_model("cnn", features=32, conv_channels=(4, 6, 8, 8, 8)))
    assert cnn["recurrent"] == 0 and cnn["readout"] == 32 * 64 + 64 + 64 + 1
    for row in (ltc, lstm, cnn):
        assert row["total"] == row["conv"] + row["recurrent"] + row["readout"]
    table = format_parameter_table([ltc, lstm, cnn])
    assert table.splitlines()[0].startswith("| model | conv | recurrent")
    assert "| ncp-ltc |" in table and "1,059" in table


def test_model_config_round_trips_through_json():
    config = ModelConfig("ncp-cfc", **SMALL, ncp=NCPShape(seed=7))
    again = ModelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    a, b = build_model(config, seed=1), build_model(again, seed=1)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="ncp-gru"), "model kind must be one of"),
        (dict(kind="lstm", observation_shape=(16, 32)), r"\(H, W, 3\)"),
        (dict(kind="ncp-ltc", action_size=2), "motor neurons are its actions"),
        (dict(kind="lstm", lstm_units=0), "lstm_units must be a positive int"),
        (dict(kind="lstm", step_seconds=0.0), "step_seconds must be positive"),
    ],
)
def test_bad_model_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(**{**SMALL, **kwargs})


def test_unknown_config_key_raises():
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({**ModelConfig("cnn", **SMALL).to_dict(), "hidden": 3})


def test_predict_rejects_wrong_shapes():
    model = _model("ncp-ltc")
    with pytest.raises(ValueError, match="observation must be"):
        model.predict(np.zeros((2, 32, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="episode_start must have shape"):
        model.predict(np.zeros((2, *SHAPE), np.uint8), None, np.array([True]))


def test_declared_spaces_match_the_config():
    model = _model("ncp-cfc")
    assert model.observation_space.shape == SHAPE and model.observation_space.dtype == np.uint8
    assert model.action_space.shape == (1,) and float(model.action_space.low[0]) == -1.0


def test_every_kind_builds_and_runs():
    for kind in MODEL_KINDS:
        model = _model(kind)
        out, state = model(
            torch.from_numpy(_frames(5, b=2)), model.initial_state(2), torch.full((2, 5), 0.1), torch.zeros(2, 5)
        )
        assert out.shape == (2, 5, 1) and state.shape == (2, model.state_size)
        assert torch.isfinite(out).all()
