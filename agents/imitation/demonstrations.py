"""Demonstrations on disk: a folder of recorded episodes with a manifest (:class:`Demonstrations`).

A folder with ``manifest.json`` and one ``episode_NNNNNN.npz`` per episode. The manifest holds
``format`` (``"ncp-control/demonstrations"``), ``version`` (1), ``env_id``, ``env_kwargs``,
``observation_shape``, ``action_shape``, ``info_keys``, ``rounds_complete`` and one entry per episode:
``file``, ``steps``, ``road_seed``, ``round``, ``beta``, ``success``, ``bytes`` and ``sha256`` of the file.
Each ``.npz`` holds ``observations`` (T, H, W, 3) uint8, ``actions`` (T, A) float32 expert labels,
``executed`` (T, A) float32 actions applied to the env, ``learner_actions`` (T, A) float32 (NaN where no
learner ran), ``dt`` (T,) float32 seconds elapsed before each frame, and ``info_<key>`` (T,) float32 for each
info key, the info that came with each frame. Loading checks size, checksum and shapes against the manifest
and raises :class:`DatasetError` (a ``ValueError``) on any mismatch. Episodes from held-out roads are refused
(:func:`~ncp_control.agents.imitation.seeds.check_training_seed`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ncp_control.agents.imitation.seeds import check_training_seed
from ncp_control.agents.runs.files import read_json_object, temporary_path, write_json_atomic

__all__ = ["DatasetError", "Episode", "Demonstrations", "MANIFEST_NAME"]

_FORMAT = "ncp-control/demonstrations"
_VERSION = 1
#: The manifest's file name inside a demonstrations folder (its presence marks the folder as created).
MANIFEST_NAME = "manifest.json"


class DatasetError(ValueError):
    """A demonstrations folder is missing, truncated, corrupt or does not match what was asked for."""


@dataclass
class Episode:
    """One recorded episode; ``T`` frames, actions of length ``A``.

    Attributes:
        observations: (T, H, W, 3) uint8 frames the policy saw.
        actions: (T, A) float32 expert labels for those frames.
        executed: (T, A) float32 actions applied to the env after each frame.
        learner_actions: (T, A) float32 learner outputs (NaN where no learner ran).
        dt: (T,) float32 seconds elapsed before each frame (the first is the env's nominal step).
        info: name -> (T,) float32, the env info that came with each frame.
        road_seed: reset seed of the road.
        success: whether the episode ended by reaching the end of the road.
    """

    observations: np.ndarray
    actions: np.ndarray
    executed: np.ndarray
    learner_actions: np.ndarray
    dt: np.ndarray
    info: dict[str, np.ndarray]
    road_seed: int
    success: bool

    @property
    def steps(self) -> int:
        return int(self.observations.shape[0])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json_atomic(path: Path, data: Any) -> None:
    write_json_atomic(path, data, indent=1, sort_keys=False)


def _episode_path(root: Path, name: Any, manifest: Path) -> Path:
    """``root / name`` for a manifest's episode file name, refusing any name that could reach outside ``root``.

    Raises:
        DatasetError: ``name`` is not a plain relative file name (absolute, contains ``..``, a separator or a
            drive), or resolves (through a symlink) to somewhere outside ``root``.
    """
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or os.path.isabs(name)
        or Path(name).name != name
    ):
        raise DatasetError(
            f"{manifest} names the episode file {name!r}: episode files must be plain file names "
            "inside the demonstrations folder; the manifest was crafted or damaged"
        )
    path = root / name
    real_root = root.resolve()
    if path.resolve().parent != real_root:
        raise DatasetError(
            f"{manifest}: episode file {name!r} resolves to {path.resolve()}, outside {real_root} "
            "(a symlink?); refusing to read or delete it"
        )
    return path


class Demonstrations:
    """A folder of recorded episodes with a manifest (format in the module docstring).

    Use :meth:`create` for a new folder and :meth:`open` for an existing one.
    """

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = Path(root)
        self._manifest = manifest

    # -- construction
    @classmethod
    def create(
        cls,
        root: str | os.PathLike,
        *,
        env_id: str,
        env_kwargs: Mapping[str, Any] | None,
        observation_shape: Sequence[int],
        action_shape: Sequence[int],
        info_keys: Sequence[str],
    ) -> Demonstrations:
        root = Path(root)
        if (root / MANIFEST_NAME).exists():
            raise DatasetError(f"{root} already holds demonstrations; open it with Demonstrations.open")
        root.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": _FORMAT,
            "version": _VERSION,
            "env_id": env_id,
            "env_kwargs": dict(env_kwargs or {}),
            "observation_shape": [int(s) for s in observation_shape],
            "action_shape": [int(s) for s in action_shape],
            "info_keys": list(info_keys),
            "rounds_complete": [],
            "episodes": [],
        }
        _write_json_atomic(root / MANIFEST_NAME, manifest)
        return cls(root, manifest)

    @classmethod
    def open(
        cls,
        root: str | os.PathLike,
        *,
        env_id: str | None = None,
        observation_shape: Sequence[int] | None = None,
        action_shape: Sequence[int] | None = None,
    ) -> Demonstrations:
        """Open a folder; the optional arguments must match the manifest (else :class:`DatasetError`)."""
        root = Path(root)
        path = root / MANIFEST_NAME
        if not path.is_file():
            raise DatasetError(f"no demonstrations at {root}: {MANIFEST_NAME} is missing")
        try:
            manifest = read_json_object(path, "demonstrations manifest")
        except ValueError as exc:
            raise DatasetError(f"{exc}; the folder is corrupt") from exc
        if manifest.get("format") != _FORMAT or manifest.get("version") != _VERSION:
            raise DatasetError(
                f"{path} is not a {_FORMAT} v{_VERSION} manifest "
                f"(format={manifest.get('format')!r}, version={manifest.get('version')!r})"
            )
        expected = {"env_id": env_id, "observation_shape": observation_shape, "action_shape": action_shape}
        for key, want in expected.items():
            if want is None:
                continue
            want = want if isinstance(want, str) else [int(s) for s in want]
            if manifest[key] != want:
                raise DatasetError(
                    f"demonstrations at {root} were recorded with {key}={manifest[key]}, expected {want}"
                )
        episodes = manifest.get("episodes")
        if not isinstance(episodes, list) or not all(isinstance(e, dict) for e in episodes):
            raise DatasetError(f"{path} is corrupt: 'episodes' must be a list of objects")
        for entry in episodes:
            _episode_path(root, entry.get("file"), path)
        return cls(root, manifest)

    # -- reading
    @property
    def env_id(self) -> str:
        return self._manifest["env_id"]

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return dict(self._manifest["env_kwargs"])

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return tuple(self._manifest["observation_shape"])

    @property
    def action_shape(self) -> tuple[int, ...]:
        return tuple(self._manifest["action_shape"])

    @property
    def info_keys(self) -> tuple[str, ...]:
        return tuple(self._manifest["info_keys"])

    @property
    def entries(self) -> list[dict[str, Any]]:
        """Manifest entries, one per episode (copies)."""
        return [dict(e) for e in self._manifest["episodes"]]

    @property
    def rounds_complete(self) -> list[int]:
        return list(self._manifest["rounds_complete"])

    @property
    def road_seeds(self) -> list[int]:
        return [int(e["road_seed"]) for e in self._manifest["episodes"]]

    @property
    def total_steps(self) -> int:
        return sum(int(e["steps"]) for e in self._manifest["episodes"])

    def __len__(self) -> int:
        return len(self._manifest["episodes"])

    def load(self, index: int) -> Episode:
        """Load and validate episode ``index`` (raises :class:`DatasetError` if truncated, corrupt or mismatched)."""
        entry = self._manifest["episodes"][index]
        path = _episode_path(self.root, entry["file"], self.root / MANIFEST_NAME)
        if not path.is_file():
            raise DatasetError(f"episode file {path} listed in the manifest is missing")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise DatasetError(
                f"episode file {path} is truncated or was modified: {size} bytes on disk, {entry['bytes']} in the manifest"
            )
        if _sha256(path) != entry["sha256"]:
            raise DatasetError(f"episode file {path} is corrupt: its checksum does not match the manifest")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as exc:  # zipfile / pickle errors of a damaged file
            raise DatasetError(f"episode file {path} cannot be read ({type(exc).__name__}: {exc})") from exc
        steps = int(entry["steps"])
        shapes = {
            "observations": (steps, *self.observation_shape),
            "actions": (steps, *self.action_shape),
            "executed": (steps, *self.action_shape),
            "learner_actions": (steps, *self.action_shape),
            "dt": (steps,),
            **{f"info_{k}": (steps,) for k in self.info_keys},
        }
        for key, shape in shapes.items():
            if key not in arrays:
                raise DatasetError(f"episode file {path} has no array {key!r}; it does not match the manifest")
            if arrays[key].shape != shape:
                raise DatasetError(
                    f"episode file {path}: {key} has shape {arrays[key].shape}, the manifest implies {shape}"
                )
        if arrays["observations"].dtype != np.uint8:
            raise DatasetError(f"episode file {path}: observations must be uint8, got {arrays['observations'].dtype}")
        return Episode(
            observations=arrays["observations"],
            actions=arrays["actions"].astype(np.float32),
            executed=arrays["executed"].astype(np.float32),
            learner_actions=arrays["learner_actions"].astype(np.float32),
            dt=arrays["dt"].astype(np.float32),
            info={k: arrays[f"info_{k}"].astype(np.float32) for k in self.info_keys},
            road_seed=int(entry["road_seed"]),
            success=bool(entry["success"]),
        )

    def load_all(self) -> list[Episode]:
        return [self.load(i) for i in range(len(self))]

    # -- writing
    def append(self, episode: Episode, *, round_index: int, beta: float) -> dict[str, Any]:
        """Write ``episode`` as the next file and record it in the manifest (refuses held-out road seeds)."""
        check_training_seed(episode.road_seed)
        steps = episode.steps
        if steps < 1:
            raise ValueError("cannot store an empty episode")
        if episode.observations.shape[1:] != self.observation_shape or episode.observations.dtype != np.uint8:
            raise DatasetError(
                f"episode observations {episode.observations.shape} {episode.observations.dtype} do not match "
                f"the folder's (T, {', '.join(map(str, self.observation_shape))}) uint8"
            )
        missing = set(self.info_keys) - set(episode.info)
        if missing:
            raise DatasetError(f"episode lacks info keys {sorted(missing)} recorded by this folder")
        name = f"episode_{len(self):06d}.npz"
        path = self.root / name
        arrays = {
            "observations": episode.observations,
            "actions": np.asarray(episode.actions, np.float32).reshape(steps, *self.action_shape),
            "executed": np.asarray(episode.executed, np.float32).reshape(steps, *self.action_shape),
            "learner_actions": np.asarray(episode.learner_actions, np.float32).reshape(steps, *self.action_shape),
            "dt": np.asarray(episode.dt, np.float32).reshape(steps),
            **{f"info_{k}": np.asarray(episode.info[k], np.float32).reshape(steps) for k in self.info_keys},
        }
        tmp = temporary_path(path)
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]  # numpy's stub fears a key "allow_pickle"
        os.replace(tmp, path)
        entry = {
            "file": name,
            "steps": steps,
            "road_seed": int(episode.road_seed),
            "round": int(round_index),
            "beta": float(beta),
            "success": bool(episode.success),
            "bytes": path.stat().st_size,
            "sha256": _sha256(path),
        }
        self._manifest["episodes"].append(entry)
        _write_json_atomic(self.root / MANIFEST_NAME, self._manifest)
        return dict(entry)

    def mark_round_complete(self, round_index: int) -> None:
        if round_index not in self._manifest["rounds_complete"]:
            self._manifest["rounds_complete"].append(int(round_index))
            _write_json_atomic(self.root / MANIFEST_NAME, self._manifest)

    def discard_incomplete_round(self, round_index: int) -> int:
        """Delete the episodes of ``round_index`` if that round was not marked complete; returns how many."""
        if round_index in self._manifest["rounds_complete"]:
            return 0
        keep: list[dict[str, Any]] = []
        drop: list[dict[str, Any]] = []
        for entry in self._manifest["episodes"]:
            (drop if entry["round"] == round_index else keep).append(entry)
        if any(e["round"] > round_index for e in keep):
            raise DatasetError(f"cannot discard round {round_index}: later rounds were recorded after it")
        paths = [_episode_path(self.root, e["file"], self.root / MANIFEST_NAME) for e in drop]  # all checked first
        self._manifest["episodes"] = keep
        _write_json_atomic(self.root / MANIFEST_NAME, self._manifest)
        for path in paths:
            path.unlink(missing_ok=True)
        return len(drop)
