"""ONNX export: every run kind, parity with torch predict over closed-loop episodes, the torch-free runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from ncp_control.agents import ppo  # noqa: E402
from ncp_control.agents.cli import main  # noqa: E402
from ncp_control.agents.evaluation.episodes import evaluate, make_eval_env  # noqa: E402
from ncp_control.agents.export.writer import METADATA_KEYS, export_run  # noqa: E402
from ncp_control.agents.runs.load import load_run  # noqa: E402
from ncp_control.deploy import OnnxPolicy  # noqa: E402
from ncp_control.policies.imitation import MODEL_KINDS, ModelConfig, build_model  # noqa: E402
from tests.imitation_synthetic import ENV_ID as TINY_LANE  # noqa: E402  (registers TinyLane-v0)

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5  # max |action difference| allowed at any step
PPO_FAST = {
    "n_envs": 2,
    "progress_bar": False,
    "checkpoint_freq": 0,
    "eval_episodes": 1,
    "algo": {"n_steps": 32, "batch_size": 64, "n_epochs": 1},
}
SMALL_CONV = {"channels": [4, 4, 4, 4, 4], "features": 8}


def _ppo_run(root: Path, env_id: str, policy: str, **extra) -> Path:
    overrides = json.loads(json.dumps(PPO_FAST))
    if policy == "lstm":
        overrides["policy_kwargs"] = {"lstm_hidden_size": 8}
    ppo.merge_config(overrides, extra)
    config = ppo.resolve_config(env_id, policy, timesteps=64, seed=0, overrides=overrides)
    run = root / f"{env_id}_{policy}"
    ppo.train(config, run, evaluate_at_end=False)  # a few PPO updates: trained weights, not the init
    return run


def _bc_run(root: Path, env_id: str, kind: str, shape, env_kwargs: dict, seed: int = 0) -> Path:
    """An imitation run folder written as train-bc writes it (config.json + model.pt), with seeded weights."""
    config = ModelConfig(
        kind=kind,
        observation_shape=shape,
        features=8,
        conv_channels=(4, 4, 4, 4, 8),
        lstm_units=8,
        cnn_hidden=8,
        step_seconds=0.05 if env_id != TINY_LANE else 0.1,
    )
    run = root / f"bc_{env_id}_{kind}"
    run.mkdir(parents=True)
    torch.save(build_model(config, seed=seed).state_dict(), run / "model.pt")
    (run / "config.json").write_text(
        json.dumps(
            {
                "kind": "bc",
                "env_id": env_id,
                "policy": kind,
                "seed": seed,
                "model": config.to_dict(),
                "training": {"env_kwargs": env_kwargs},
            }
        )
    )
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export_runs")
    capped = {"env_kwargs": {"max_episode_steps": 100}}  # shorter episodes keep the outcome tests fast
    found = {f"ppo-{p}": _ppo_run(root, "PendulumNoVel-v1", p, **capped) for p in ("ltc", "cfc", "lstm", "mlp")}
    camera = {"normalize_obs": False, "policy_kwargs": {"features_extractor_kwargs": SMALL_CONV}}
    for p in ("ltc", "cfc"):  # the NCP policies' conv head; SB3 transposes the frames to (3, H, W)
        found[f"ppo-camera-{p}"] = _ppo_run(root, TINY_LANE, p, **camera)
    big = {"normalize_obs": False, "env_kwargs": {"height": 40, "width": 40}}  # NatureCNN needs >= 36 pixels
    for p in ("lstm", "mlp"):
        found[f"ppo-camera-{p}"] = _ppo_run(root, TINY_LANE, p, **big)
    for kind in MODEL_KINDS:
        found[f"bc-{kind}"] = _bc_run(root, TINY_LANE, kind, (16, 32, 3), {})
    # the real MuJoCo camera env, episodes capped at 60 steps to stay fast
    found["bc-lane-ncp-ltc"] = _bc_run(
        root, "LaneKeeping-v0", "ncp-ltc", (32, 64, 3), {"image_height": 32, "image_width": 64, "max_episode_steps": 60}
    )
    for run in found.values():
        export_run(run, run / "policy.onnx")
    return found


def _lockstep(run: Path, seed: int, max_steps: int = 200) -> tuple[float, int]:
    """Drive one episode with the ONNX policy; torch predicts on the same observations with its own state.
    Returns the largest |action difference| and the number of steps."""
    loaded = load_run(run)
    torch_policy, exported = loaded.predictor, OnnxPolicy(run / "policy.onnx")
    env = make_eval_env(loaded.env_id, loaded.env_kwargs, getattr(torch_policy, "env_wrappers", ()))
    obs, _ = env.reset(seed=seed)
    state_t = state_o = None
    start = np.ones(1, bool)
    worst, steps = 0.0, 0
    try:
        while steps < max_steps:
            a_t, state_t = torch_policy.predict(obs[None], state=state_t, episode_start=start, deterministic=True)
            a_o, state_o = exported.predict(obs[None], state_o, episode_start=start)
            assert a_o.dtype == np.float32 and a_o.shape == np.asarray(a_t).shape
            worst = max(worst, float(np.abs(np.asarray(a_t) - a_o).max()))
            start[:] = False
            obs, _, terminated, truncated, _ = env.step(a_o[0])
            steps += 1
            if terminated or truncated:
                break
    finally:
        env.close()
    return worst, steps


RUN_NAMES = [
    *(f"ppo-{p}" for p in ("ltc", "cfc", "lstm", "mlp")),
    *(f"ppo-camera-{p}" for p in ("ltc", "cfc", "lstm", "mlp")),
    *(f"bc-{k}" for k in MODEL_KINDS),
    "bc-lane-ncp-ltc",
]


@pytest.mark.parametrize("name", RUN_NAMES)
def test_onnx_runtime_matches_torch_predict_over_a_closed_loop_episode(runs, name):
    worst, steps = _lockstep(runs[name], seed=7)
    assert steps >= 10  # a whole episode (to termination, truncation or 200 steps)
    assert worst <= TOLERANCE, f"{name}: max |Δaction| {worst:.2e} over {steps} steps"


@pytest.mark.parametrize(
    "name", ["ppo-ltc", "ppo-cfc", "ppo-lstm", "ppo-mlp", "bc-lstm", "bc-ncp-cfc", "bc-lane-ncp-ltc"]
)
def test_same_episode_outcomes_in_a_batch_with_resets(runs, name):
    """``evaluate`` with 2 envs for 3 episodes (dynamic batch, per-row resets): same lengths, crashes, successes."""
    loaded = load_run(runs[name])
    kwargs = {"env_kwargs": loaded.env_kwargs, "n_envs": 2}
    reference = evaluate(loaded.predictor, loaded.env_id, 3, 100, **kwargs)
    exported = evaluate(OnnxPolicy(runs[name] / "policy.onnx"), loaded.env_id, 3, 100, **kwargs)
    assert exported["lengths"] == reference["lengths"]
    assert exported["crashes"] == reference["crashes"]
    assert exported.get("successes") == reference.get("successes")
    np.testing.assert_allclose(exported["returns"], reference["returns"], rtol=1e-4, atol=1e-4)


def test_graph_contract_inputs_outputs_metadata(runs):
    lane = onnx.load(str(runs["bc-lane-ncp-ltc"] / "policy.onnx"))
    onnx.checker.check_model(lane)
    assert max(o.version for o in lane.opset_import if o.domain in ("", "ai.onnx")) >= 17
    inputs = {i.name: i.type.tensor_type for i in lane.graph.input}
    assert list(inputs) == ["observation", "state", "elapsed_time"]
    assert inputs["observation"].elem_type == onnx.TensorProto.UINT8  # camera frames stay uint8
    assert inputs["observation"].shape.dim[0].dim_param  # dynamic batch
    assert [d.dim_value for d in inputs["observation"].shape.dim[1:]] == [32, 64, 3]
    assert [o.name for o in lane.graph.output] == ["action", "state_out"]
    meta = {p.key: json.loads(p.value) for p in lane.metadata_props}
    assert set(METADATA_KEYS) <= set(meta)
    assert meta["env_id"] == "LaneKeeping-v0" and meta["env_kwargs"]["image_height"] == 32
    assert meta["state_size"] == 19 and meta["nominal_step_seconds"] == 0.05
    assert meta["wiring"]["class_name"] == "NCP" and meta["wiring"]["inter_neurons"] == 12
    assert meta["observation_space"]["low"] == 0 and meta["observation_space"]["high"] == 255  # uniform: one number
    env = make_eval_env("LaneKeeping-v0", {"image_height": 32, "image_width": 64})
    env.close()
    assert OnnxPolicy(runs["bc-lane-ncp-ltc"] / "policy.onnx").observation_space == env.observation_space
    types = [n["type"] for n in meta["neurons"]]
    assert types.count("motor") == 1 and types.count("command") == 6 and types.count("inter") == 12
    cfc = {p.key: json.loads(p.value) for p in onnx.load(str(runs["ppo-cfc"] / "policy.onnx")).metadata_props}
    assert cfc["neurons"][-1]["type"] == "motor"  # a wired CfC's state order is [inter, command, motor]
    mlp = onnx.load(str(runs["ppo-mlp"] / "policy.onnx"))
    assert [i.name for i in mlp.graph.input] == ["observation", "state", "elapsed_time"]


def test_folded_ncp_step_is_small(runs):
    """The NCP-LTC state policy's step stays a small graph (ORT costs ~1.5-2 µs per node)."""
    nodes = [n.op_type for n in onnx.load(str(runs["ppo-ltc"] / "policy.onnx")).graph.node if n.op_type != "Constant"]
    assert len(nodes) <= 90, nodes


def test_onnx_policy_semantics(runs):
    policy = OnnxPolicy(runs["ppo-ltc"] / "policy.onnx")
    obs = np.random.default_rng(0).normal(size=(3, *policy.observation_shape)).astype(np.float32)
    a0, s0 = policy.predict(obs, None, np.ones(3, bool))
    a1, s1 = policy.predict(obs, s0, np.array([True, False, False]))
    np.testing.assert_allclose(a1[0], a0[0], rtol=0, atol=1e-7)  # row 0 was reset: as a fresh start
    assert not np.allclose(s1[1:], s0[1:])
    single, _ = policy.predict(obs[0])
    assert single.shape == (1,)
    stateless = OnnxPolicy(runs["bc-cnn"] / "policy.onnx")
    assert stateless.predict(np.zeros((2, 16, 32, 3), np.uint8))[1] is None
    with pytest.raises(ValueError, match="observation must have shape"):
        policy.predict(np.zeros((2, 7), np.float32))
    with pytest.raises(ValueError, match="state must have shape"):
        policy.predict(obs, np.zeros((2, policy.state_size), np.float32))


def test_errors_name_the_file(tmp_path, runs, capsys):
    with pytest.raises(ValueError, match="does not exist"):
        OnnxPolicy(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.onnx"):
        OnnxPolicy(tmp_path / "junk.onnx")
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "p.onnx")]) == 2
    assert "no config.json" in capsys.readouterr().err
    timed = _ppo_run(tmp_path, "PendulumNoVel-v1", "cfc", elapsed_time="observation")
    with pytest.raises(ValueError, match="elapsed_time='observation'"):
        export_run(timed, tmp_path / "timed.onnx")


def test_run_exported_without_torch(runs, tmp_path):
    """The runtime and the run-exported command work in a process that never imports torch."""
    out = tmp_path / "metrics.json"
    code = (
        "import sys\n"
        "from ncp_control.agents.cli import main\n"
        f"rc = main(['run-exported', {str(runs['ppo-ltc'] / 'policy.onnx')!r}, '--episodes', '2', '--seed', '3',"
        f" '--json', {str(out)!r}])\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('torch-free ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "torch-free ok" in done.stdout
    metrics = json.loads(out.read_text())
    loaded = load_run(runs["ppo-ltc"])
    reference = evaluate(loaded.predictor, loaded.env_id, 2, 3, env_kwargs=loaded.env_kwargs)
    assert metrics["lengths"] == reference["lengths"] and metrics["episodes"] == 2
    np.testing.assert_allclose(metrics["returns"], reference["returns"], rtol=1e-4)


def test_the_runtime_module_needs_numpy_and_onnxruntime_only(runs):
    code = (
        "import sys, numpy as np\n"
        "from ncp_control.deploy import OnnxPolicy\n"
        f"policy = OnnxPolicy({str(runs['bc-lane-ncp-ltc'] / 'policy.onnx')!r})\n"
        "action, state = policy.predict(np.zeros((2, 32, 64, 3), np.uint8), None, np.ones(2, bool))\n"
        "assert action.shape == (2, 1) and state.shape == (2, 19)\n"
        "heavy = [m for m in ('torch', 'gymnasium', 'stable_baselines3', 'mujoco') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_cli_export_prints_a_summary(runs, tmp_path, capsys):
    out = tmp_path / "again.onnx"
    assert main(["export", str(runs["bc-ncp-cfc"]), "--out", str(out)]) == 0
    assert "ncp-cfc" in capsys.readouterr().out and out.stat().st_size > 1000
