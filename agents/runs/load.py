"""Run folders: load any trained run (PPO or imitation) as a Predictor.

Every training command writes ``RUN_DIR/config.json`` with at least ``kind`` (``"ppo"``, ``"rllib"`` or ``"bc"``),
``env_id``, ``policy`` and ``seed``. :func:`load_run` reads it and dispatches on ``kind`` to the loader registered
in :data:`LOADERS` (``"module:function"``, called as ``function(run_dir, config) -> Predictor``).

Loading runs nothing from the folder: the loaders read JSON, weights-only torch files and plain-array ``.npz``
(see :mod:`ncp_control.agents.runs.files`), and the code they run is this project's, chosen by ``kind`` from :data:`LOADERS`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ncp_control.agents.runs.files import read_json_object  # noqa: F401  (re-exported: the one JSON reader of run folders)
from ncp_control.agents.runs.legacy import current_name

#: kind -> "module:function" loading a run of that kind; the function takes (run_dir, config).
LOADERS: dict[str, str] = {
    "ppo": "ncp_control.agents.ppo:load_predictor",
    "bc": "ncp_control.agents.imitation:load_predictor",
    "rllib": "ncp_control.agents.rllib:load_predictor",
}

_REQUIRED_KEYS = ("kind", "env_id", "policy", "seed")


@dataclass(frozen=True)
class LoadedRun:
    """A loaded run: its folder, its ``config.json`` and the model as a Predictor (see ``ncp_control.agents.evaluation.episodes``)."""

    run_dir: Path
    config: dict[str, Any]
    predictor: Any

    @property
    def env_id(self) -> str:
        return self.config["env_id"]

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """The ``gym.make`` arguments the run was trained with (:func:`training_env_kwargs`)."""
        return training_env_kwargs(self.config)


def training_env_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """The ``gym.make`` arguments a run was trained with, from its ``config.json``: ``config["env_kwargs"]`` (PPO
    runs) or ``config["training"]["env_kwargs"]`` (imitation runs); empty when there are none."""
    kwargs = config.get("env_kwargs")
    if kwargs is None:
        kwargs = config.get("training", {}).get("env_kwargs")
    return dict(kwargs or {})


def read_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``RUN_DIR/config.json`` as a dict.

    Raises:
        ValueError: the folder does not exist, has no config, or the config is not valid JSON / lacks the
            required keys (``kind``, ``env_id``, ``policy``, ``seed``).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run folder {run_dir} does not exist")
    path = run_dir / "config.json"
    if not path.is_file():
        raise ValueError(f"{run_dir} is not a run folder: it has no config.json")
    config = read_json_object(path, "run config")
    missing = [k for k in _REQUIRED_KEYS if k not in config]
    if missing:
        raise ValueError(f"{path} lacks required keys {missing}")
    _rename_legacy_modules(config)
    return config


def load_run(run_dir: str | os.PathLike) -> LoadedRun:
    """Load a run folder's model as a Predictor.

    Raises:
        ValueError: bad folder or config (see :func:`read_config`), or an unknown ``kind`` (allowed: the keys of
            :data:`LOADERS`).
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    kind = config["kind"]
    if kind not in LOADERS:
        raise ValueError(f"unknown run kind {kind!r} in {run_dir / 'config.json'}; known kinds: {sorted(LOADERS)}")
    module_name, function_name = LOADERS[kind].split(":")
    loader = getattr(importlib.import_module(module_name), function_name)
    try:
        predictor = loader(run_dir, config)
    except (ValueError, OSError):
        raise
    except Exception as error:  # torch / zip / pickle errors of a truncated or corrupt file name no file
        files = ", ".join(sorted(p.name for p in run_dir.iterdir() if p.suffix in (".pt", ".zip", ".pkl"))) or "none"
        raise ValueError(
            f"cannot load the model of run {run_dir} (model files: {files}): {type(error).__name__}: "
            f"{error}; a file may be truncated or corrupt: restore it, or train the run again"
        ) from error
    return LoadedRun(run_dir=run_dir, config=config, predictor=predictor)


def _rename_legacy_modules(config: dict[str, Any]) -> None:
    """Module names written by versions up to 0.1 (``"envs:LaneKeeping-v0"``, ``"agents.experts:..."``), in
    memory only, to today's (:mod:`ncp_control.agents.runs.legacy`)."""
    for section in (config, config.get("training")):
        if not isinstance(section, dict):
            continue
        for key in ("env_id", "expert"):
            if isinstance(section.get(key), str):
                section[key] = current_name(section[key])
