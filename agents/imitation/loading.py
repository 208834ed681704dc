"""Loading a trained imitation run's model as a Predictor (:func:`load_predictor`).

The weights come from ``model.pt`` (written at the end of training) or, for an interrupted run, from the model in
the last ``checkpoint.pt``; both are read weights-only (tensors and plain data, never code).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ncp_control.agents.imitation.checkpoints import checkpoint_part
from ncp_control.agents.runs.files import load_tensors
from ncp_control.agents.runs.load import read_config
from ncp_control.policies.imitation import ModelConfig, SequencePolicy, build_model

__all__ = ["load_predictor"]


def load_predictor(run_dir: str | os.PathLike, config: Mapping[str, Any] | None = None) -> SequencePolicy:
    """Rebuild the trained model of a ``bc`` run folder (``model.pt``, else the last ``checkpoint.pt``).

    ``config`` is the run's parsed ``config.json`` (read from ``run_dir`` when None). The result is a Predictor
    (:class:`~ncp_control.policies.imitation.SequencePolicy` in eval mode): ``predict(frames (N, H, W, 3) uint8,
    state, episode_start (N,)) -> (actions (N, A), state)``. This is the ``"bc"`` entry of
    :data:`ncp_control.agents.runs.load.LOADERS`.

    Raises:
        ValueError: not a ``bc`` run folder, no weights, or weights that do not fit the stored model.
    """
    run_dir = Path(run_dir)
    if config is None:
        config = read_config(run_dir)
    if config.get("kind") != "bc" or "model" not in config:
        raise ValueError(f"{run_dir} is not an imitation (kind 'bc') run: kind={config.get('kind')!r}")
    model = build_model(ModelConfig.from_dict(config["model"]))
    if (run_dir / "model.pt").is_file():
        path = run_dir / "model.pt"
        state = load_tensors(path, "model weights")
    elif (run_dir / "checkpoint.pt").is_file():
        path = run_dir / "checkpoint.pt"
        state = checkpoint_part(load_tensors(path, "checkpoint"), "model", path)
    else:
        raise ValueError(f"{run_dir} has neither model.pt nor checkpoint.pt; train it first")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict (names -> tensors)")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(
            f"the weights in {path} do not fit the model in config.json: {' '.join(str(error).split())[:300]}"
        ) from error
    model.eval()
    return model
