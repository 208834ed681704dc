"""The files of a PPO run folder and the checkpoints in it, by name (see :mod:`ncp_control.agents.ppo` for the
layout); :mod:`.train` writes them and :mod:`.load` reads them. Imports none of the other modules of
:mod:`ncp_control.agents.ppo`.
"""

from __future__ import annotations

import re
from pathlib import Path

MODEL_FILE = "model.zip"
VECNORMALIZE_FILE = "vecnormalize.pkl"
POLICY_FILE = "policy.pt"
NORMALIZER_FILE = "vecnormalize.npz"
CONFIG_FILE = "config.json"
EVALUATION_FILE = "evaluation.json"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_PREFIX = "model"
_CHECKPOINT_RE = re.compile(rf"^{CHECKPOINT_PREFIX}_(\d+)_steps\.zip$")
_DATA_CHECKPOINT_RE = re.compile(rf"^{CHECKPOINT_PREFIX}_policy_(\d+)_steps\.pt$")


def checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(steps, path)`` of every checkpoint in ``run_dir``, by increasing steps."""
    return _numbered_checkpoints(run_dir, _CHECKPOINT_RE)


def _numbered_checkpoints(run_dir: str | Path, pattern: re.Pattern) -> list[tuple[int, Path]]:
    """``(steps, path)`` of the files in ``run_dir/checkpoints`` whose name ``pattern`` matches (its group 1: the
    step count), by increasing steps."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    found = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = pattern.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def vecnormalize_for(checkpoint: Path) -> Path:
    """SB3's pickled ``VecNormalize`` file saved with the SB3 checkpoint ``checkpoint`` (``model_<N>_steps.zip``)."""
    match = _CHECKPOINT_RE.match(checkpoint.name)
    if match is None:
        raise ValueError(f"{checkpoint.name!r} is not an SB3 checkpoint name ({CHECKPOINT_PREFIX}_<N>_steps.zip)")
    steps = match.group(1)
    return checkpoint.with_name(f"{CHECKPOINT_PREFIX}_vecnormalize_{steps}_steps.pkl")


def data_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(steps, policy file)`` of every checkpoint stored as data (``model_policy_<N>_steps.pt``), by steps."""
    return _numbered_checkpoints(run_dir, _DATA_CHECKPOINT_RE)


def data_checkpoint_paths(folder: Path, steps: int) -> tuple[Path, Path]:
    """The policy weights and normaliser statistics of the data checkpoint at ``steps`` in ``folder``."""
    return (
        folder / f"{CHECKPOINT_PREFIX}_policy_{steps}_steps.pt",
        folder / f"{CHECKPOINT_PREFIX}_vecnormalize_{steps}_steps.npz",
    )


def has_progress(run_dir: str | Path) -> bool:
    """Whether a PPO run folder holds training worth resuming (a checkpoint or a final model)."""
    return bool(checkpoints(run_dir)) or (Path(run_dir) / MODEL_FILE).is_file()
