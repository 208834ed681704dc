"""Export a trained run (PPO or imitation) to ONNX: one control step per call, the loop stays in the host.

Contract (also in ``docs/deploy.md``)::

    inputs   observation   (B, *env observation shape)  the env's dtype (uint8 camera frames stay uint8)
             state         (B, S) float32               zeros at an episode start
             elapsed_time  (B,)   float32               seconds since the previous observation
    outputs  action        (B, A) float32               predict(..., deterministic=True), clipped to the action space
             state_out     (B, S) float32

The batch dimension is dynamic; the graph uses standard ONNX operators (opset 17) and passes ``onnx.checker``.
The model's ``metadata_props`` hold JSON values (:data:`METADATA_KEYS`) that :class:`ncp_control.deploy.OnnxPolicy`
reads: the spaces, the state size, the nominal step, the env id and kwargs, the wiring and its neurons.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

#: Format of the metadata written here; OnnxPolicy refuses newer ones.
FORMAT_VERSION = 1
OPSET = 17
METADATA_KEYS = (
    "format_version",
    "run_kind",
    "policy",
    "env_id",
    "env_kwargs",
    "observation_space",
    "action_space",
    "state_size",
    "recurrent",
    "nominal_step_seconds",
    "wiring",
    "neurons",
)


def _require(module: str, what: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ValueError(f"{what} needs the {module} package: pip install 'ncp-control[onnx]'")


def space_to_json(space) -> dict[str, Any]:
    """A Box space as JSON (``type``, ``shape``, ``dtype``, ``low``, ``high``; a bound that is the same in every
    dimension is one number; infinities as the strings ``"inf"``/``"-inf"``)."""
    from gymnasium import spaces

    if not isinstance(space, spaces.Box):
        raise ValueError(f"export supports Box observation and action spaces only, got {space}")

    def values(a):
        flat = np.asarray(a, np.float64).ravel()
        out = [float(v) if np.isfinite(v) else ("inf" if v > 0 else "-inf") for v in flat]
        return out[0] if len(out) and np.all(flat == flat[0]) else out

    return {
        "type": "Box",
        "shape": list(space.shape),
        "dtype": str(space.dtype),
        "low": values(space.low),
        "high": values(space.high),
    }


def export_run(run_dir: str | Path, out: str | Path) -> dict[str, Any]:
    """Write ``out`` (ONNX) for the run in ``run_dir``; return its metadata.

    Raises:
        ValueError: a run this exporter does not support (non-Box spaces, dictionary observations), or a
            folder that is not a run (see ``ncp_control.agents.runs.load.load_run``).
    """
    import torch

    from ncp_control.agents.runs.load import load_run

    _require("onnx", "export")
    loaded = load_run(run_dir)
    step, env_space, metadata = build_step(loaded)
    step.eval()
    state_size = metadata["state_size"]
    example = (
        torch.as_tensor(env_space.sample()[None].repeat(2, axis=0)),
        torch.zeros(2, state_size),
        torch.full((2,), float(metadata["nominal_step_seconds"])),
    )
    model = _to_onnx(step, example)
    for key in METADATA_KEYS:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(metadata[key])
    model.doc_string = f"ncp-control policy exported from {Path(run_dir).resolve()}"
    import onnx

    onnx.checker.check_model(model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return metadata


def _to_onnx(step, example):
    """Trace ``step`` with the legacy (TorchScript) exporter: it keeps every named input and adds no runtime
    dependency; the dynamo exporter gives the same graph here but takes ~10x longer."""
    import onnx
    import torch

    names = ["observation", "state", "elapsed_time"]
    outputs = ["action", "state_out"]
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(
            step,
            example,
            buffer,
            input_names=names,
            output_names=outputs,
            opset_version=OPSET,
            dynamic_axes={n: {0: "batch"} for n in names + outputs},
            do_constant_folding=True,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    _keep_unused_inputs(model, names, example)
    return model


def _keep_unused_inputs(model, names, example) -> None:
    """The tracer drops inputs the graph does not read (``elapsed_time`` of an LSTM, MLP or CNN); put them back
    (unused graph inputs are valid ONNX) so that every exported policy has the same three inputs, in order."""
    import onnx
    from onnx import helper

    present = {i.name: i for i in model.graph.input}
    if all(n in present for n in names):
        return
    to_onnx = {
        "float32": onnx.TensorProto.FLOAT,
        "uint8": onnx.TensorProto.UINT8,
        "float64": onnx.TensorProto.DOUBLE,
        "int64": onnx.TensorProto.INT64,
    }
    inputs = []
    for name, tensor in zip(names, example):
        if name in present:
            inputs.append(present[name])
        else:
            shape = ["batch", *tensor.shape[1:]]
            inputs.append(helper.make_tensor_value_info(name, to_onnx[str(tensor.dtype).replace("torch.", "")], shape))
    del model.graph.input[:]
    model.graph.input.extend(inputs)


def build_step(loaded) -> tuple[Any, Any, dict[str, Any]]:
    """The step module (``ncp_control.agents.export.steps``), the env's observation space and the metadata for a loaded run."""
    from ncp_control.agents.evaluation.episodes import make_eval_env

    env = make_eval_env(loaded.env_id, loaded.env_kwargs, getattr(loaded.predictor, "env_wrappers", ()))
    try:
        env_space, action_space = env.observation_space, env.action_space
        env_dt = getattr(env.unwrapped, "dt", None)
    finally:
        env.close()
    if not hasattr(env_space, "shape") or isinstance(getattr(env_space, "spaces", None), dict):
        raise ValueError(
            f"{loaded.run_dir}: export supports Box observations only; dictionary observations (PPO "
            "runs with elapsed_time='observation') are not exportable yet"
        )
    base = {
        "format_version": FORMAT_VERSION,
        "run_kind": loaded.config["kind"],
        "policy": loaded.config["policy"],
        "env_id": loaded.env_id,
        "env_kwargs": loaded.env_kwargs,
        "observation_space": space_to_json(env_space),
        "action_space": space_to_json(action_space),
    }
    if loaded.config["kind"] == "bc":
        step, extra = _imitation_step(loaded.predictor)
    else:
        step, extra = _ppo_step(loaded.predictor, env_space, action_space, env_dt)
    return step, env_space, {**base, **extra}


def _imitation_step(model):
    from ncp_control.agents.export.steps import ImitationStep

    core = model.core
    extra = {
        "state_size": int(core.state_size) if core is not None else 1,
        "recurrent": core is not None,
        "nominal_step_seconds": float(model.config.step_seconds),
        **_wiring_metadata(core),
    }
    return ImitationStep(model), extra


def _ppo_step(predictor, env_space, action_space, env_dt):
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

    from ncp_control.agents.export import steps
    from ncp_control.policies.recurrent_ppo import NCPActorCriticPolicy

    policy = predictor.policy
    normalization = predictor.obs_normalization()
    args = (policy, env_space, action_space, normalization)
    if isinstance(policy, NCPActorCriticPolicy):
        core = policy.actor_core
        return steps.NCPPPOStep(*args), {
            "state_size": int(core.state_size),
            "recurrent": True,
            "nominal_step_seconds": float(policy.dt),
            **_wiring_metadata(core),
        }
    nominal = float(env_dt) if env_dt else 1.0
    if isinstance(policy, RecurrentActorCriticPolicy):
        lstm = policy.lstm_actor
        return steps.LSTMPPOStep(*args), {
            "state_size": 2 * lstm.num_layers * lstm.hidden_size,
            "recurrent": True,
            "nominal_step_seconds": nominal,
            "wiring": None,
            "neurons": None,
        }
    return steps.MLPPPOStep(*args), {
        "state_size": 1,
        "recurrent": False,
        "nominal_step_seconds": nominal,
        "wiring": None,
        "neurons": None,
    }


def _wiring_metadata(core) -> dict[str, Any]:
    """``wiring``: the wiring's config; ``neurons``: for each state position, the neuron id and type (motor /
    command / inter), so inspection names carry over. None for cores without a wiring."""
    wiring = getattr(core, "wiring", None)
    if wiring is None:
        return {"wiring": None, "neurons": None}
    ids = list(getattr(core.cell, "state_neuron_ids", range(wiring.units)))  # CfC: [inter, command, motor]
    neurons = [{"id": int(i), "type": str(wiring.get_type_of_neuron(int(i)))} for i in ids]
    try:
        config = json.loads(json.dumps(wiring.get_config(), default=_jsonable))
    except (TypeError, ValueError, AttributeError):
        config = {"type": type(wiring).__name__, "units": int(wiring.units)}
    return {"wiring": config, "neurons": neurons}


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
