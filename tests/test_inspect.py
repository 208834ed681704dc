"""ncp_control.inspect: neuron order, recorder and replay, the three attribution views, saliency, report."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from ncp_control.cells import WiredCfCCell
from ncp_control.inspect import (
    CURRENTS_UNDEFINED_FOR_CFC,
    Circuit,
    Recording,
    ablation,
    attribution_table,
    circuit_from_policy,
    closed_loop_ablation,
    inspect_circuit,
    integrated_gradients,
    record,
    referenced_files,
    replay,
    synaptic_currents,
    visual_backprop,
    write_table,
)
from ncp_control.policies.core import make_core
from ncp_control.wirings import NCP

torch.set_num_threads(1)

K = 2  # the only command neuron with a synapse onto the motor neuron
INPUTS = 3


class OnePathNCP(NCP):
    """Motor 0; command 1, 2, 3; inter 4, 5. Sensory -> inter 4, 5 -> every command; only command K=2 -> motor.
    Command 1 -> command 3 (a recurrent synapse that still has no path to the motor)."""

    def __init__(self):
        super().__init__(2, 3, 1, sensory_fanout=1, inter_fanout=1, recurrent_command_synapses=0, motor_fanin=1, seed=0)

    def _connect_on_build(self) -> None:
        self._adjacency[:] = 0
        self._sensory_adjacency[:] = 0
        for i in range(INPUTS):
            self._sensory_adjacency[i, 4] = 1 if i != 1 else -1
            self._sensory_adjacency[i, 5] = -1 if i != 2 else 1
        for command in (1, 2, 3):
            self._adjacency[4, command] = 1
            self._adjacency[5, command] = -1 if command != 2 else 1
        self._adjacency[1, 3] = 1
        self._adjacency[K, 0] = 1


class SignalEnv(gym.Env):
    """Vector observations (3,) from a smooth seeded signal; reward -|a - signal|; fixed length. info carries
    lane-keeping keys (road_curvature = the signal) so the plots and closed-loop summaries have them."""

    def __init__(self, length: int = 20, image: tuple[int, int] | None = None):
        self.length = length
        self.image = image
        if image is None:
            self.observation_space = spaces.Box(-5.0, 5.0, (INPUTS,), np.float32)
        else:
            self.observation_space = spaces.Box(0, 255, (*image, 3), np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def _obs(self):
        s = np.sin(0.3 * self.t + self.phase)
        if self.image is None:
            return np.array([s, np.cos(0.3 * self.t + self.phase), 0.5], np.float32)
        frame = np.full((*self.image, 3), 60, np.uint8)
        column = int((s + 1) / 2 * (self.image[1] - 1))
        frame[self.image[0] // 2 :, column] = 250  # a bright line that moves with the signal
        return frame

    def _info(self):
        s = float(np.sin(0.3 * self.t + self.phase))
        return {"road_curvature": s, "lateral_offset_m": 0.1 * s, "is_success": self.t >= self.length}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.phase = 0, float(self.np_random.uniform(0, 6))
        return self._obs(), self._info()

    def step(self, action):
        reward = -abs(float(np.asarray(action).reshape(-1)[0]) - float(np.sin(0.3 * self.t + self.phase)))
        self.t += 1
        return self._obs(), reward, False, self.t >= self.length, self._info()


def _vector_circuit(kind: str, seed: int = 0, cfc_connections: str = "dense") -> Circuit:
    torch.manual_seed(seed)
    wiring = OnePathNCP()
    core = make_core(kind, INPUTS, wiring) if kind == "cfc" else make_core("ltc", INPUTS, wiring, ode_unfolds=6)
    if kind == "cfc" and cfc_connections == "wiring":
        core.cell = WiredCfCCell(None, wiring, recurrent_connections="wiring")
    with torch.no_grad():  # make the drive large enough to matter
        for name, p in core.named_parameters():
            if name.endswith("input_w"):
                p.fill_(2.0)

    def encode(observations, elapsed_seconds=None):
        x = torch.as_tensor(np.asarray(observations), dtype=torch.float32)
        return x, torch.ones(x.shape[0])

    def act(motor):
        return motor.clamp(-1, 1).detach().numpy()

    return Circuit(core, encode, act, nominal_step_seconds=0.05, name=f"hand-{kind}")


@pytest.fixture(scope="module")
def ltc():
    circuit = _vector_circuit("ltc")
    return circuit, record(circuit, SignalEnv(), 2, seed=3)


@pytest.fixture(scope="module")
def cfc():
    circuit = _vector_circuit("cfc")
    return circuit, record(circuit, SignalEnv(), 2, seed=3)


# -- neuron order ----------------------------------------------------------------------------------------------
def test_cfc_state_is_mapped_to_wiring_ids(cfc):
    circuit, rec = cfc
    assert circuit.state_ids.tolist() == [4, 5, 1, 2, 3, 0]  # WiredCfC: [inter, command, motor]
    np.testing.assert_array_equal(rec.states_of("motor"), rec.motor)  # a CfC motor neuron's state is the output
    raw = torch.randn(4, 6)
    ids = circuit.to_ids(raw)
    torch.testing.assert_close(circuit.from_ids(ids), raw)
    # the command layer (layer 1 of the cell) lands on the command ids
    sizes = circuit.cell.layer_sizes
    torch.testing.assert_close(ids[:, circuit.wiring.get_neurons_of_layer(1)], raw[:, sizes[0] : sizes[0] + sizes[1]])
    assert rec.ids_of("command").tolist() == [1, 2, 3] and rec.ids_of("inter").tolist() == [4, 5]


def test_ltc_state_is_in_id_order(ltc):
    circuit, rec = ltc
    assert circuit.state_ids.tolist() == list(range(6))
    cell = circuit.cell
    expected = rec.states[:, :1] * cell.output_w.detach().numpy() + cell.output_b.detach().numpy()
    np.testing.assert_allclose(rec.motor, expected, rtol=1e-6, atol=1e-7)


# -- recorder ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["ltc", "cfc"])
def test_replay_reproduces_recorded_outputs(which, request):
    circuit, rec = request.getfixturevalue(which)
    assert len(rec) == 40 and rec.episode.tolist() == [0] * 20 + [1] * 20
    motor, states = replay(circuit, rec)
    np.testing.assert_allclose(motor, rec.motor, atol=1e-6)
    np.testing.assert_allclose(states, rec.states, atol=1e-6)
    np.testing.assert_allclose(circuit.act(torch.as_tensor(rec.motor)), rec.actions, atol=1e-7)
    motor, _ = replay(circuit, rec, from_observations=True)
    np.testing.assert_allclose(motor, rec.motor, atol=1e-6)
    # the rewards are those of the recorded actions
    assert rec.episodes[0]["return"] == pytest.approx(float(rec.rewards[:20].sum()), rel=1e-5)
    assert np.all(np.isfinite(rec.info["road_curvature"]))


def test_recording_save_load_roundtrip(ltc, tmp_path):
    _, rec = ltc
    rec.save(tmp_path / "r")
    back = Recording.load(tmp_path / "r")
    for name in ("features", "states", "motor", "actions", "rewards", "cell_dt", "episode", "step"):
        np.testing.assert_array_equal(getattr(back, name), getattr(rec, name))
    np.testing.assert_array_equal(back.observations, rec.observations)
    assert back.info.keys() == rec.info.keys() and back.episodes == rec.episodes
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["neurons"] == {"motor": [0], "command": [1, 2, 3], "inter": [4, 5]}
    data = dict(np.load(tmp_path / "r" / "recording.npz"))
    data["states"] = data["states"][:5]
    np.savez(tmp_path / "r" / "recording.npz", **data)
    with pytest.raises(ValueError, match="corrupt"):
        Recording.load(tmp_path / "r")
    with pytest.raises(ValueError, match="not a recording"):
        Recording.load(tmp_path)


# -- attribution -----------------------------------------------------------------------------------------------
def test_every_view_ranks_the_connected_command_neuron_first_ltc(ltc):
    circuit, rec = ltc
    currents = synaptic_currents(circuit, rec)
    effect = ablation(circuit, rec)
    grads = integrated_gradients(circuit, rec, steps=16)
    rows = attribution_table(circuit, currents=currents, ablation_effect=effect, gradients=grads)
    top = rows[0]
    assert (top["neuron"], top["rank"], top["rank_currents"], top["rank_ablation"], top["rank_gradients"]) == (
        K,
        1,
        1,
        1,
        1,
    )
    assert top["current_share"] == pytest.approx(1.0)  # the motor neuron has a single synapse
    assert top["synapse"] == 1
    for row in rows[1:]:
        # currents and gradients through a masked synapse are exact zeros; the ablation compares two forward
        # passes, which an AVX-512 kernel may round differently (see the ablation test below)
        assert row["current_share"] == 0.0 and row["ig_abs_mean"] == 0.0
        assert abs(row["ablation_delta"]) <= 1e-6
    assert np.abs(grads.completeness_error).max() < 1e-3 * max(np.abs(grads.integrated).max(), 1e-6)


def test_every_view_ranks_the_connected_command_neuron_first_cfc(cfc):
    circuit, rec = cfc
    with pytest.raises(ValueError, match="not defined for CfC"):
        synaptic_currents(circuit, rec)
    effect = ablation(circuit, rec)
    grads = integrated_gradients(circuit, rec, steps=16)
    rows = attribution_table(circuit, ablation_effect=effect, gradients=grads)
    assert (rows[0]["neuron"], rows[0]["rank_ablation"], rows[0]["rank_gradients"]) == (K, 1, 1)
    assert rows[0]["current_share"] is None
    assert CURRENTS_UNDEFINED_FOR_CFC.startswith("synaptic currents are not defined")


@pytest.mark.parametrize("kind", ["ltc", "cfc-wiring"])
def test_ablating_a_neuron_without_path_to_the_motor_changes_nothing(kind):
    circuit = _vector_circuit("ltc") if kind == "ltc" else _vector_circuit("cfc", cfc_connections="wiring")
    env = SignalEnv(length=12)
    rec = record(circuit, env, 1, seed=5)
    effect = ablation(circuit, rec, neurons=[1, 3, K])
    # Commands 1 and 3 have no path to the motor: no change beyond float32 rounding. Exactly 0.0 on AVX2, but an
    # AVX-512 kernel may sum in another order (1.5e-8 measured); a real leak past the wiring (the dense CfC below)
    # moves the motor by ~0.09 open loop and the return by ~0.04 closed loop, far above these tolerances.
    np.testing.assert_allclose(effect.delta_motor[:2], 0.0, rtol=0, atol=1e-6)
    assert np.abs(effect.delta_motor[2]).max() > 1e-3  # the connected one matters
    # no baseline given: it is recorded on the ablations' arithmetic path, so "no effect" is zero up to rounding
    closed = closed_loop_ablation(circuit, env, 1, 5, [1, 3])
    np.testing.assert_allclose([row["delta_return"] for row in closed], [0.0, 0.0], rtol=0, atol=1e-5)


def test_dense_cfc_time_gates_leak_past_the_wiring():
    """ncps-compatible wired CfC (recurrent_connections='dense'): the time gates read every unit of the previous
    layer, so silencing an unconnected command neuron does change the motor output (documented behaviour)."""
    circuit = _vector_circuit("cfc")
    rec = record(circuit, SignalEnv(length=12), 1, seed=5)
    assert np.abs(ablation(circuit, rec, neurons=[1]).delta_motor).max() > 0


def test_synaptic_currents_sum_to_the_solver_terms_for_the_motor_neuron(ltc):
    circuit, rec = ltc
    cell = circuit.cell
    per = synaptic_currents(circuit, rec, substeps=True)  # (T, U, N, N)
    features = torch.as_tensor(rec.features)
    before = torch.as_tensor(rec.states_before())
    dt = torch.as_tensor(rec.cell_dt)
    solved = circuit.ltc_substeps(features, before, dt)
    # the sub-step chain ends where the cell's own solver ends (up to float32 rounding: the native kernel
    # computes in double and rounds once per step)
    torch.testing.assert_close(solved.potentials[-1], circuit.core.step(features, before, dt)[1], rtol=1e-5, atol=1e-6)
    c, h = solved.constants, solved.substep_time
    with torch.no_grad():
        for u in range(cell.ode_unfolds):
            v, v_next = solved.potentials[u], solved.potentials[u + 1]
            # rearranged solver update: cm/h (v' - v) - gleak (vleak - v') + eps v' = sum of synaptic currents
            solver_terms = (c.cm / h) * (v_next - v) - c.gleak * (cell.vleak - v_next) + cell.epsilon * v_next
            for neuron in (0, K):  # the motor neuron, and a command neuron for good measure
                total = per.total_into(neuron)[:, u]
                np.testing.assert_allclose(total, solver_terms[:, neuron].numpy(), rtol=1e-4, atol=1e-5)
    mean = synaptic_currents(circuit, rec)
    np.testing.assert_allclose(mean.internal, per.internal.mean(axis=1), rtol=1e-6, atol=1e-7)
    assert np.all(mean.internal[:, 1, 0] == 0) and np.all(mean.internal[:, 3, 0] == 0)  # no synapse, no current


def test_table_files_and_validation(ltc, tmp_path):
    circuit, rec = ltc
    rows = attribution_table(circuit, ablation_effect=ablation(circuit, rec))
    write_table(rows, tmp_path / "t.csv", tmp_path / "t.json", notes={"x": 1})
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert len(lines) == 4 and lines[1].split(",")[2] == str(K)
    assert json.loads((tmp_path / "t.json").read_text())["rows"][0]["neuron"] == K
    with pytest.raises(ValueError, match="at least one view"):
        attribution_table(circuit)
    with pytest.raises(ValueError, match="neurons must be"):
        ablation(circuit, rec, neurons=[99])
    with pytest.raises(ValueError, match="LTC or CfC core"):
        Circuit(make_core("lstm", 3, 4), None, None)


# -- saliency ----------------------------------------------------------------------------------------------------
def test_visual_backprop_finds_the_bright_pixel():
    convs = [torch.nn.Conv2d(1, 2, 3, stride=2, padding=1), torch.nn.Conv2d(2, 2, 3, stride=1, padding=1)]
    for conv in convs:
        torch.nn.init.constant_(conv.weight, 1.0)
        torch.nn.init.zeros_(conv.bias)
    model = torch.nn.Sequential(convs[0], torch.nn.ReLU(), convs[1], torch.nn.ReLU())
    image = torch.zeros(1, 1, 15, 21)
    image[0, 0, 9, 4] = 1.0
    mask = visual_backprop(model, convs, image)
    assert mask.shape == (1, 15, 21) and mask.max() == pytest.approx(1.0)
    row, col = np.unravel_index(mask[0].argmax(), mask[0].shape)
    assert abs(row - 9) <= 2 and abs(col - 4) <= 2
    assert mask[0, 0, 20] == 0.0  # far away: nothing


# -- real policies -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def camera_policy():
    from ncp_control.policies.imitation import ModelConfig, build_model

    config = ModelConfig(kind="ncp-ltc", observation_shape=(16, 32, 3), conv_channels=(4, 4, 4, 4, 8), ode_unfolds=2)
    return build_model(config, seed=0)


def test_imitation_policy_recording_matches_predict(camera_policy):
    circuit = circuit_from_policy(camera_policy)
    assert circuit.kind == "ltc" and circuit.image_encoder is not None
    rec = record(circuit, SignalEnv(length=10, image=(16, 32)), 1, seed=0)
    state, actions = None, []
    for t in range(len(rec)):
        action, state = camera_policy.predict(rec.observations[t], state, np.array([t == 0]))
        actions.append(action)
    np.testing.assert_allclose(np.stack(actions), rec.actions, atol=1e-6)


def test_ppo_policy_recording_matches_predict():
    from sb3_contrib import RecurrentPPO

    from ncp_control.policies.recurrent_ppo import NCPActorCriticPolicy

    env = SignalEnv(length=8)
    for cell in ("ltc", "cfc"):
        model = RecurrentPPO(
            NCPActorCriticPolicy,
            env,
            n_steps=8,
            batch_size=8,
            seed=0,
            device="cpu",
            policy_kwargs=dict(cell=cell, wiring={"type": "AutoNCP", "units": 8, "seed": 1}, dt=0.05),
        )
        circuit = circuit_from_policy(model)
        assert circuit.kind == cell and circuit.motor_size == 1
        rec = record(circuit, env, 1, seed=2)
        state, actions = None, []
        for t in range(len(rec)):
            action, state = model.predict(
                rec.observations[t][None], state=state, episode_start=np.array([t == 0]), deterministic=True
            )
            actions.append(action[0])
        np.testing.assert_allclose(np.stack(actions), rec.actions, atol=1e-5)


@pytest.fixture(scope="module")
def camera_report(camera_policy, tmp_path_factory):
    """A full inspection of the camera policy; ``max_steps=9`` cuts the 12-step episode short."""
    out = tmp_path_factory.mktemp("report")
    circuit = circuit_from_policy(camera_policy)
    summary = inspect_circuit(
        circuit,
        SignalEnv(length=12, image=(16, 32)),
        out,
        episodes=1,
        seed=0,
        max_steps=9,
        ig_steps=4,
        saliency_frames=2,
        gif_steps=6,
    )
    return circuit, summary, out


def test_report_renders_with_every_referenced_file(camera_report):
    circuit, summary, out = camera_report
    report = out / "report.html"
    text = report.read_text()
    refs = referenced_files(report)
    assert {
        "traces.png",
        "wiring.png",
        "attribution_heatmap.png",
        "currents.png",
        "pca.png",
        "saliency.gif",
        "attribution.csv",
    } <= set(refs)
    assert any(r.startswith("saliency/step_") for r in refs)
    for ref in refs:
        assert (out / ref).is_file(), ref
    assert "Which neurons drive each motor output" in text and "<table>" in text
    assert summary["top_driver"]["motor_0"]["overall"] in circuit.driver_ids.tolist()
    assert 0 < summary["pca_explained_variance"][0] <= 1
    Recording.load(out / "recording")
    with pytest.raises(ValueError, match="unknown figures"):
        inspect_circuit(circuit, SignalEnv(), out / "again", figures=("trace",))


def test_report_shows_no_raw_markup_wraps_tables_and_explains_a_cut_recording(camera_report):
    _, summary, out = camera_report
    text = (out / "report.html").read_text()
    body = text.split("<body>", 1)[1]
    assert "**" not in body and "`" not in body and ":func:" not in body
    assert "<strong>Synaptic currents</strong>" in body and "<code>synaptic_currents</code>" in body
    assert body.count("<table>") == body.count("<div class='table-wrap'><table>") >= 1
    assert "recording stopped at 9 steps; the episode continued" in body and "not completed" not in body
    assert "<img src='pca.png'" in body
    (episode,) = Recording.load(out / "recording").episodes
    assert episode["stopped_at_max_steps"] and episode["length"] == 9


def test_report_in_headless_chromium_loads_every_image_without_console_errors(camera_report):
    from ncp_control.inspect.report_check import check_report, chromium_executable, screenshot

    if chromium_executable() is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium, or set NCP_CONTROL_CHROMIUM)")
    _, _, out = camera_report
    seen = check_report(out / "report.html", width=1400)
    assert seen.problems == []
    assert len(seen.images) >= 7 and all(image["width"] > 0 for image in seen.images)
    narrow = check_report(out / "report.html", width=500)  # the wide table scrolls inside its box
    assert narrow.page_width <= narrow.window_width, narrow.problems
    png = screenshot(out / "report.html", out / "screenshot.png", width=1400, height=2000)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_report_check_reports_a_missing_image_a_console_error_and_a_wide_page(tmp_path):
    from ncp_control.inspect.report_check import check_report, chromium_executable

    if chromium_executable() is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium, or set NCP_CONTROL_CHROMIUM)")
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>t</title></head><body><img src='missing.png'>"
        "<div style='width:3000px'>wide</div><script>console.error('boom')</script></body></html>"
    )
    problems = " | ".join(check_report(page, width=800).problems)
    assert "missing.png did not load" in problems and "boom" in problems and "px wide in a 800 px window" in problems


def test_policy_saliency_for_every_imitation_model_matches_the_circuit_view():
    from ncp_control.inspect import policy_saliency, saliency_maps
    from ncp_control.inspect.circuit import circuit_from_policy
    from ncp_control.policies.imitation import ModelConfig, build_model

    frames = np.random.default_rng(0).integers(0, 256, size=(3, 16, 32, 3), dtype=np.uint8)
    for kind in ("ncp-ltc", "ncp-cfc", "lstm", "cnn"):
        policy = build_model(
            ModelConfig(kind, observation_shape=(16, 32, 3), conv_channels=(4, 6, 8, 8, 8), features=16), seed=0
        )
        masks = policy_saliency(policy, batch_size=2)(frames)  # batches of 2: the split must not matter
        assert masks.shape == (3, 16, 32) and masks.min() >= 0.0 and masks.max() == pytest.approx(1.0)
        if kind.startswith("ncp"):
            np.testing.assert_allclose(masks, saliency_maps(circuit_from_policy(policy), frames), atol=1e-6)
    with pytest.raises(ValueError, match="no conv head"):
        policy_saliency(object())


@pytest.mark.parametrize("which", ["ltc", "cfc"])
def test_integrated_gradients_agree_with_captum(which, request):
    """Our batched midpoint-rule IG equals Captum's IntegratedGradients (method riemann_middle) on the same
    one-step function of the driver states, per motor output and recorded step."""
    captum_attr = pytest.importorskip("captum.attr")
    from ncp_control.inspect import attribution as attr

    circuit, rec = request.getfixturevalue(which)
    ours = integrated_gradients(circuit, rec, steps=8)
    drivers = circuit.driver_ids
    features, before, dt = attr.one_step_inputs(circuit, rec)
    actual = attr.actual_driver_states(circuit, rec, drivers)
    baseline = circuit.silence_values[drivers].expand_as(actual)

    def motor(z):  # Captum stacks its path points along the batch axis
        copies = z.shape[0] // features.shape[0]
        rep = lambda t: t.repeat(copies, *([1] * (t.dim() - 1)))  # noqa: E731
        return attr.motor_given_drivers(circuit, rep(features), rep(before), rep(dt), drivers, z)

    for j in range(circuit.motor_size):
        reference = captum_attr.IntegratedGradients(lambda z, j=j: motor(z)[:, j]).attribute(
            actual.clone(), baselines=baseline.clone(), n_steps=8, method="riemann_middle"
        )
        np.testing.assert_allclose(ours.integrated[:, :, j], reference.detach().numpy(), rtol=1e-4, atol=1e-6)
    assert np.abs(ours.integrated).max() > 1e-3  # not a vacuous agreement of zeros


def test_pca_figure_labels_do_not_overlap(ltc):
    from ncp_control.inspect.plots import pca_figure

    _, rec = ltc
    fig, _ = pca_figure(rec)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    scatter, bars, colorbar = fig.axes[0], fig.axes[1], fig.axes[2]
    texts = [colorbar.yaxis.label, bars.yaxis.label, scatter.yaxis.label, scatter.xaxis.label, bars.xaxis.label]
    assert colorbar.yaxis.label.get_text() == "road curvature"
    boxes = [t.get_window_extent(renderer) for t in texts]
    ticks = [t.get_window_extent(renderer) for t in colorbar.get_yticklabels() + bars.get_yticklabels() if t.get_text()]
    for i, box in enumerate(boxes):
        for other in boxes[i + 1 :] + ticks:
            assert not box.overlaps(other), (texts[i].get_text(), other)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_markup_to_html_renders_docstring_markup_and_escapes_the_rest():
    from ncp_control.inspect.report import markup_to_html

    text = (
        "**Currents** (:func:`~ncp_control.inspect.synaptic_currents`,\n   ``I = g(v) * (E - v)``) *before* a<b, 2 * 3"
    )
    assert markup_to_html(text) == (
        "<strong>Currents</strong> (<code>synaptic_currents</code>, "
        "<code>I = g(v) * (E - v)</code>) <em>before</em> a&lt;b, 2 * 3"
    )
