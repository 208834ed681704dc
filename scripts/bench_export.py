"""Latency of one control step (B1, one thread): the exported ONNX policy in ONNX Runtime vs torch ``predict`` vs
the native cell step vs the same policy stepped with ncps 1.0.1's cell, all measured interleaved in one run.

Two policies: the NCP-LTC PPO state policy (the ``ltc`` preset on PendulumNoVel-v1: 32-unit tanh layer, then
the 19-neuron AutoNCP LTC, 6 unfolds) and the camera policy (an imitation ``ncp-ltc`` run: conv head + the NCP
paper's 19-neuron LTC). Each repeat times every variant once (ORT, torch predict, native cell, ncps, ...), so drift
hits all; the table shows medians of the wall time and of the thread's CPU time per call (on a shared machine the
wall time includes waiting for a core). The ncps variant holds the same weights (checked against ours first).

Usage::

    python scripts/bench_export.py --camera-run runs/demo --json docs/data/deploy/bench_export.json
    python scripts/bench_export.py --quick       # fewer repeats

Without ``--ppo-run`` a PPO run is trained for 256 steps in a temporary folder (latency does not depend on the
weights); without ``--camera-run`` a demo-shaped imitation run with seeded weights is written there.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Settings:
    ppo_run: str = ""
    """PPO run folder with policy 'ltc' (default: train one for 256 steps in a temporary folder)."""
    camera_run: str = ""
    """imitation run folder with model 'ncp-ltc' (default: a demo-shaped run with seeded weights)."""
    repeats: int = 15
    """timed rounds (each times every variant once); medians are reported."""
    min_round_s: float = 0.1
    """each timing repeats the call until this much time has passed."""
    quick: bool = False
    """5 repeats of 0.05 s."""
    json: str = ""
    """write the results to this JSON file."""
    machine: str = "2-core VM, shared"
    """machine description stored in the JSON."""


def _per_call(fn, min_s: float) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this thread) per call, repeating ``fn`` for at least ``min_s`` of wall time."""
    fn()
    n, start, cpu = 0, time.perf_counter(), time.thread_time()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_s:
            return elapsed / n, (time.thread_time() - cpu) / n


def _interleaved(variants: dict, s: Settings) -> tuple[dict[str, float], dict[str, float]]:
    """Medians over ``repeats`` rounds (every variant once per round) of the wall time and of the thread's CPU
    time per call. On a shared machine the wall time includes waiting for a core; CPU time does not (it still
    includes cache misses caused by the neighbours), so it shows the cost of the call itself."""
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(s.repeats):
        for name, fn in variants.items():
            w, c = _per_call(fn, s.min_round_s)
            wall[name].append(w)
            cpu[name].append(c)
    return (
        {name: statistics.median(t) for name, t in wall.items()},
        {name: statistics.median(t) for name, t in cpu.items()},
    )


def _ppo_run(folder: Path) -> Path:
    from ncp_control.agents import ppo

    overrides = {
        "n_envs": 1,
        "progress_bar": False,
        "checkpoint_freq": 0,
        "algo": {"n_steps": 128, "batch_size": 64, "n_epochs": 1},
    }
    config = ppo.resolve_config("PendulumNoVel-v1", "ltc", timesteps=256, seed=0, overrides=overrides)
    ppo.train(config, folder / "ppo_ltc", evaluate_at_end=False)
    return folder / "ppo_ltc"


def _camera_run(folder: Path) -> Path:
    from ncp_control.policies.imitation import ModelConfig, build_model

    config = ModelConfig(kind="ncp-ltc", observation_shape=(32, 64, 3), conv_channels=(12, 18, 24, 32, 8))
    run = folder / "camera_ncp_ltc"
    run.mkdir()
    torch.save(build_model(config, seed=0).state_dict(), run / "model.pt")
    (run / "config.json").write_text(
        json.dumps(
            {
                "kind": "bc",
                "env_id": "LaneKeeping-v0",
                "policy": "ncp-ltc",
                "seed": 0,
                "model": config.to_dict(),
                "training": {"env_kwargs": {"image_height": 32, "image_width": 64}},
            }
        )
    )
    return run


def _ncps_cell(cell, wiring_factory, input_mapping: str):
    """ncps's LTCCell with our cell's weights (checked on random inputs). The policy cores build their LTC cells
    with softplus positivity (``implicit_param_constraints=True``) and the given input mapping."""
    import ncps.torch as ncps_torch

    ref = ncps_torch.LTCCell(
        wiring_factory(),
        in_features=cell.sensory_size,
        input_mapping=input_mapping,
        ode_unfolds=cell.ode_unfolds,
        implicit_param_constraints=True,
    )
    ref.load_state_dict(cell.state_dict(), strict=False)
    x, h = torch.randn(3, cell.sensory_size), torch.randn(3, cell.state_size) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(ref(x, h, 1.0)[1], cell(x, h, 1.0)[1], atol=1e-5, rtol=1e-5)
    return ref


def _variants_ppo(run: Path) -> tuple[dict, dict]:
    import ncps.wirings as ncps_wirings

    from ncp_control.agents.export.writer import export_run
    from ncp_control.agents.runs.load import load_run
    from ncp_control.deploy import OnnxPolicy

    onnx_path = run / "policy_bench.onnx"
    meta = export_run(run, onnx_path)
    exported, predictor = OnnxPolicy(onnx_path), load_run(run).predictor
    policy = predictor.policy
    norm = predictor.obs_normalization()
    core = policy.actor_core
    spec = policy.wiring_spec
    ref_cell = _ncps_cell(
        core.cell, lambda: ncps_wirings.AutoNCP(spec["units"], core.output_size, seed=spec["seed"]), "affine"
    )  # make_core's default for the PPO actor
    obs = np.zeros((1, *exported.observation_shape), np.float32)
    state, start = np.zeros((1, exported.state_size), np.float32), np.zeros(1, bool)
    dt = np.full(1, meta["nominal_step_seconds"], np.float32)
    x_cell, h = torch.zeros(1, core.cell.sensory_size), torch.zeros(1, core.state_size)
    low, high = torch.as_tensor(policy.action_space.low), torch.as_tensor(policy.action_space.high)
    sb3_state = predictor.predict(obs, None, np.ones(1, bool))[1]

    def ncps_policy_step():  # the same policy, its cell replaced by ncps's: normalise, MLP, cell, action map, clip
        with torch.no_grad():
            o = torch.as_tensor(
                np.clip((obs - norm["mean"]) / np.sqrt(norm["var"] + norm["epsilon"]), -norm["clip"], norm["clip"])
            ).float()
            motor, _ = ref_cell(policy.actor_mlp(policy.features_extractor(o)), h, 1.0)
            return torch.max(torch.min(policy.action_net(motor), high), low).numpy()

    def native_cell_step():
        with torch.no_grad():
            core.cell(x_cell, h, 1.0)

    variants = {
        "onnxruntime step": lambda: exported.step(obs, state, dt),
        "onnxruntime OnnxPolicy.predict": lambda: exported.predict(obs, state, start),
        "torch predict (SB3, native cell)": lambda: predictor.predict(obs, sb3_state, start, deterministic=True),
        "native cell step only (ours, C kernel)": native_cell_step,
        "ncps policy step (same weights)": ncps_policy_step,
    }
    return variants, {"nodes": _node_count(onnx_path), "state_size": exported.state_size}


def _variants_camera(run: Path) -> tuple[dict, dict]:
    import ncps.wirings as ncps_wirings

    from ncp_control.agents.export.writer import export_run
    from ncp_control.agents.runs.load import load_run
    from ncp_control.deploy import OnnxPolicy

    onnx_path = run / "policy_bench.onnx"
    export_run(run, onnx_path)
    exported, model = OnnxPolicy(onnx_path), load_run(run).predictor
    shape = model.config.ncp
    ref_cell = _ncps_cell(
        model.core.cell,
        lambda: ncps_wirings.NCP(
            shape.inter_neurons,
            shape.command_neurons,
            shape.motor_neurons,
            shape.sensory_fanout,
            shape.inter_fanout,
            shape.recurrent_command_synapses,
            shape.motor_fanin,
            seed=shape.seed,
        ),
        model.config.ltc_input_mapping,
    )
    frame = np.random.default_rng(0).integers(0, 256, (1, *exported.observation_shape), dtype=np.uint8)
    state, start = np.zeros((1, exported.state_size), np.float32), np.zeros(1, bool)
    dt = np.full(1, exported.nominal_step_seconds, np.float32)
    h = torch.zeros(1, model.core.state_size)
    x_cell = torch.zeros(1, model.core.cell.sensory_size)
    torch_state = model.predict(frame, None, np.ones(1, bool))[1]

    def ncps_policy_step():
        with torch.no_grad():
            motor, _ = ref_cell(model.conv(torch.as_tensor(frame)), h, 1.0)
            return motor.clamp(-1.0, 1.0).numpy()

    def native_cell_step():
        with torch.no_grad():
            model.core.cell(x_cell, h, 1.0)

    variants = {
        "onnxruntime step": lambda: exported.step(frame, state, dt),
        "onnxruntime OnnxPolicy.predict": lambda: exported.predict(frame, state, start),
        "torch predict (native cell)": lambda: model.predict(frame, torch_state, start),
        "native cell step only (ours, C kernel)": native_cell_step,
        "ncps policy step (conv head + ncps cell)": ncps_policy_step,
    }
    return variants, {
        "nodes": _node_count(onnx_path),
        "state_size": exported.state_size,
        "observation_shape": list(exported.observation_shape),
    }


def _node_count(path: Path) -> int:
    import onnx

    return sum(1 for n in onnx.load(str(path)).graph.node if n.op_type != "Constant")


def _report(title: str, measured: tuple[dict[str, float], dict[str, float]], info: dict) -> dict:
    wall, cpu = measured
    ort_wall, ort_cpu = wall["onnxruntime step"], cpu["onnxruntime step"]
    print(f"\n## {title}  ({info['nodes']} ONNX nodes)")
    print(f"{'variant':44s} {'wall':>11s} {'vs ORT':>7s} {'CPU':>11s} {'vs ORT':>7s}")
    for name in wall:
        print(
            f"{name:44s} {wall[name] * 1e6:8.1f} us {wall[name] / ort_wall:6.1f}x {cpu[name] * 1e6:8.1f} us "
            f"{cpu[name] / ort_cpu:6.1f}x"
        )
    ncps_name = next(n for n in wall if n.startswith("ncps"))
    return {
        **info,
        "wall_seconds_per_step": wall,
        "cpu_seconds_per_step": cpu,
        "ncps_over_ort_wall": wall[ncps_name] / ort_wall,
        "ncps_over_ort_cpu": cpu[ncps_name] / ort_cpu,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for f in dataclasses.fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        if f.type in (bool, "bool"):
            parser.add_argument(flag, action="store_true", help=f"{f.name}")
        else:
            parser.add_argument(flag, type=type(f.default), default=f.default)
    s = Settings(**vars(parser.parse_args(argv)))
    if s.quick:
        s = dataclasses.replace(s, repeats=5, min_round_s=0.05)
    torch.set_num_threads(1)
    import onnxruntime

    print(
        f"# bench_export  {date.today()}  python {platform.python_version()}  torch {torch.__version__}  "
        f"onnxruntime {onnxruntime.__version__}  threads=1  batch=1"
    )
    with tempfile.TemporaryDirectory() as tmp:
        ppo_run = Path(s.ppo_run) if s.ppo_run else _ppo_run(Path(tmp))
        camera_run = Path(s.camera_run) if s.camera_run else _camera_run(Path(tmp))
        variants, info = _variants_ppo(ppo_run)
        ppo = _report("NCP-LTC PPO state policy (PendulumNoVel-v1)", _interleaved(variants, s), info)
        variants, info = _variants_camera(camera_run)
        camera = _report("camera policy (imitation ncp-ltc)", _interleaved(variants, s), info)
        for run in (ppo_run, camera_run):
            (run / "policy_bench.onnx").unlink(missing_ok=True)
    print(
        f"\ngoal: exported NCP-LTC state policy >= 10x faster than its ncps step: "
        f"{ppo['ncps_over_ort_wall']:.1f}x (wall), {ppo['ncps_over_ort_cpu']:.1f}x (CPU)"
    )
    print(
        f"goal: camera policy under 1 ms per frame in ONNX Runtime: "
        f"{camera['wall_seconds_per_step']['onnxruntime step'] * 1e3:.3f} ms (wall), "
        f"{camera['cpu_seconds_per_step']['onnxruntime step'] * 1e3:.3f} ms (CPU)"
    )
    if s.json:
        Path(s.json).write_text(
            json.dumps(
                {
                    "date": str(date.today()),
                    "machine": s.machine,
                    "torch": torch.__version__,
                    "onnxruntime": onnxruntime.__version__,
                    "threads": 1,
                    "batch": 1,
                    "command": "python scripts/bench_export.py " + " ".join(sys.argv[1:]),
                    "ppo_run": str(s.ppo_run or "trained 256 steps in a temporary folder"),
                    "camera_run": str(s.camera_run or "demo-shaped, seeded weights"),
                    "ppo_state_policy": ppo,
                    "camera_policy": camera,
                },
                indent=1,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
