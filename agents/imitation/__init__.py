"""Recurrent imitation learning for camera lane keeping: demonstrations, sequence BC with truncated BPTT, DAgger.

The NCP paper (Lechner et al. 2020) trains its camera-to-steering circuit by imitation on 16-frame sequences. This
module does the same for any env with the ``LaneKeeping-v0`` interface (uint8 frames, one steering action in
[-1, 1], lane-keeping ``info``), for the four models of :mod:`ncp_control.policies.imitation`.

Pipeline (:func:`train`)
    1. **Demonstrations** (round 0): the privileged expert drives ``demo_episodes`` training roads with
       temporally correlated steering noise added to what is *executed* (labels stay the clean expert action),
       so the data contains drifts and their recoveries.
    2. **Sequence BC**: each epoch deals the episodes (shuffled) into ``batch_size`` parallel streams and cuts the
       streams into ``window``-frame windows (truncated BPTT): the hidden state is carried, detached, from one
       window to the next of the same stream and zeroed where an episode starts, so the model is trained in the
       same carried-state regime it is evaluated in. Loss: mean squared error to the expert action, optionally
       weighted by ``1 + curve_weight * |target|`` (the paper's emphasis on curves). Adam, with the conv head at
       ``lr * conv_lr_scale``; gradient norm clipped.
    3. **DAgger** rounds ``r = 1..dagger_rounds``: on fresh training roads the learner drives, executing the
       expert's action instead with probability ``beta_r = beta0 * beta_decay ** (r - 1)`` per step; the expert
       labels every visited frame; the learner's recurrent state advances on every step, including the steps the
       expert executed. The labelled episodes are added to the dataset and training continues on the aggregate.

Road seeds
    Training roads use reset seeds in ``[0, TRAIN_SEED_LIMIT)``; held-out evaluation roads use seeds
    ``>= HELDOUT_SEED_START`` (= ``TRAIN_SEED_LIMIT`` = 1,000,000). :class:`Demonstrations` refuses to store an
    episode from a held-out road and :func:`evaluate_heldout` refuses a training seed.

Demonstrations on disk (:class:`Demonstrations`)
    A folder with ``manifest.json`` and one ``episode_NNNNNN.npz`` per episode. The manifest holds
    ``format`` (``"ncp-control/demonstrations"``), ``version`` (1), ``env_id``, ``env_kwargs``,
    ``observation_shape``, ``action_shape``, ``info_keys``, ``rounds_complete`` and one entry per episode:
    ``file``, ``steps``, ``road_seed``, ``round``, ``beta``, ``success``, ``bytes`` and ``sha256`` of the file.
    Each ``.npz`` holds ``observations`` (T, H, W, 3) uint8, ``actions`` (T, A) float32 expert labels,
    ``executed`` (T, A) float32 actions applied to the env, ``learner_actions`` (T, A) float32 (NaN where no
    learner ran), ``dt`` (T,) float32 seconds elapsed before each frame, and ``info_<key>`` (T,) float32 for each
    info key, the info that came with each frame. Loading checks size, checksum and shapes against the manifest
    and raises :class:`DatasetError` (a ``ValueError``) on any mismatch.

Run folder (``out``)
    ``config.json`` (``kind="bc"``, ``env_id``, ``policy``, ``seed``, ``model``, ``training``), ``demonstrations/``,
    ``checkpoint.pt`` (after every epoch: model, optimiser, progress), ``model.pt`` (final weights; both read with
    ``torch.load(weights_only=True)``: tensors and plain data, never code),
    ``progress.jsonl`` (one record per epoch). ``train(..., resume=True)`` continues from the checkpoint and
    gives the same weights as an uninterrupted run (epoch shuffles are seeded by ``(seed, round, epoch)``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ncp_control.policies.conv import PAPER_CHANNELS
from ncp_control.policies.imitation import MODEL_KINDS, ModelConfig, SequencePolicy, build_model

from ncp_control.agents.evaluation.episodes import evaluate
from ncp_control.agents.runs.files import (append_line, load_tensors, read_json_object, save_tensors, temporary_path,
                           write_json_atomic)
from ncp_control.agents.runs.load import read_config
from ncp_control.agents.runs.legacy import current_name

__all__ = [
    "TRAIN_SEED_LIMIT",
    "HELDOUT_SEED_START",
    "EXPERTS",
    "EXPERT_FACTORIES",
    "PRESETS",
    "PRESET_ENV_KWARGS",
    "DatasetError",
    "Episode",
    "Demonstrations",
    "BCConfig",
    "preset_config",
    "training_road_seeds",
    "heldout_road_seeds",
    "make_env",
    "resolve_expert",
    "rollout",
    "beta_schedule",
    "train",
    "load_policy",
    "evaluate_heldout",
]

#: Training road seeds are drawn from ``[0, TRAIN_SEED_LIMIT)``.
TRAIN_SEED_LIMIT = 1_000_000
#: Held-out evaluation roads use reset seeds from here on (disjoint from every training seed).
HELDOUT_SEED_START = TRAIN_SEED_LIMIT

#: env id -> ``"module:factory"``; ``factory(env)`` returns a zero-argument callable giving the expert's action
#: (shape of the action space) for the env's current state, read from privileged simulator state.
EXPERTS: dict[str, str] = {"LaneKeeping-v0": "ncp_control.agents.imitation.experts:PurePursuitExpert"}
#: The project's own experts by name (``--expert pure-pursuit``); only these (and the values of :data:`EXPERTS`)
#: are imported when the name comes from a run's ``config.json`` (see :func:`resolve_expert`).
EXPERT_FACTORIES: dict[str, str] = {"pure-pursuit": "ncp_control.agents.imitation.experts:PurePursuitExpert"}

LANE_INFO_KEYS: tuple[str, ...] = ("lateral_offset_m", "heading_error_rad", "road_curvature", "distance_m")

_FORMAT = "ncp-control/demonstrations"
_VERSION = 1
_MANIFEST = "manifest.json"


class DatasetError(ValueError):
    """A demonstrations folder is missing, truncated, corrupt or does not match what was asked for."""


# ----------------------------------------------------------------------------------------------- road seeds


def training_road_seeds(seed: int, round_index: int, count: int) -> list[int]:
    """``count`` distinct training road seeds for data round ``round_index`` of a run seeded ``seed``.

    Drawn from ``[0, TRAIN_SEED_LIMIT)`` by a generator seeded with ``(seed, round_index)``, so reruns and resumed
    runs see the same roads.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    rng = np.random.default_rng([int(seed), int(round_index), 0x5EED])
    return [int(s) for s in rng.choice(TRAIN_SEED_LIMIT, size=count, replace=False)]


def heldout_road_seeds(start: int, count: int) -> list[int]:
    """The held-out road seeds ``start, start + 1, ..., start + count - 1``; ``start`` must be ``>= HELDOUT_SEED_START``."""
    if start < HELDOUT_SEED_START:
        raise ValueError(
            f"held-out road seeds start at {HELDOUT_SEED_START:,}; seed {start} is a training road seed"
        )
    return list(range(start, start + count))


def _check_training_seed(road_seed: int) -> None:
    if not 0 <= road_seed < TRAIN_SEED_LIMIT:
        raise ValueError(
            f"road seed {road_seed} is outside the training range [0, {TRAIN_SEED_LIMIT:,}); "
            "held-out roads must never enter training data"
        )


# ----------------------------------------------------------------------------------------- demonstrations


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
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name \
            or "\0" in name or os.path.isabs(name) or Path(name).name != name:
        raise DatasetError(f"{manifest} names the episode file {name!r}: episode files must be plain file names "
                           "inside the demonstrations folder; the manifest was crafted or damaged")
    path = root / name
    real_root = root.resolve()
    if path.resolve().parent != real_root:
        raise DatasetError(f"{manifest}: episode file {name!r} resolves to {path.resolve()}, outside {real_root} "
                           "(a symlink?); refusing to read or delete it")
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
        if (root / _MANIFEST).exists():
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
        _write_json_atomic(root / _MANIFEST, manifest)
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
        path = root / _MANIFEST
        if not path.is_file():
            raise DatasetError(f"no demonstrations at {root}: {_MANIFEST} is missing")
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
                raise DatasetError(f"demonstrations at {root} were recorded with {key}={manifest[key]}, expected {want}")
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
        path = _episode_path(self.root, entry["file"], self.root / _MANIFEST)
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
        _check_training_seed(episode.road_seed)
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
            np.savez_compressed(f, **arrays)
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
        _write_json_atomic(self.root / _MANIFEST, self._manifest)
        return dict(entry)

    def mark_round_complete(self, round_index: int) -> None:
        if round_index not in self._manifest["rounds_complete"]:
            self._manifest["rounds_complete"].append(int(round_index))
            _write_json_atomic(self.root / _MANIFEST, self._manifest)

    def discard_incomplete_round(self, round_index: int) -> int:
        """Delete the episodes of ``round_index`` if that round was not marked complete; returns how many."""
        if round_index in self._manifest["rounds_complete"]:
            return 0
        keep, drop = [], []
        for entry in self._manifest["episodes"]:
            (drop if entry["round"] == round_index else keep).append(entry)
        if any(e["round"] > round_index for e in keep):
            raise DatasetError(f"cannot discard round {round_index}: later rounds were recorded after it")
        paths = [_episode_path(self.root, e["file"], self.root / _MANIFEST) for e in drop]  # all checked first
        self._manifest["episodes"] = keep
        _write_json_atomic(self.root / _MANIFEST, self._manifest)
        for path in paths:
            path.unlink(missing_ok=True)
        return len(drop)


# -------------------------------------------------------------------------------------------- env, expert


def make_env(env_id: str, env_kwargs: Mapping[str, Any] | None = None, max_episode_steps: int | None = None) -> gym.Env:
    """``gym.make`` after importing :mod:`ncp_control.envs` (which registers our ids)."""
    import ncp_control.envs  # noqa: F401  (registers LaneKeeping-v0 and friends)

    kwargs = dict(env_kwargs or {})
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps
    return gym.make(current_name(env_id), **kwargs)


def resolve_expert(env_id: str, expert: str | None = None, *,
                   allow_import: bool = False) -> Callable[[gym.Env], Callable[[], np.ndarray]]:
    """The expert factory for ``env_id``: ``expert`` (a name in :data:`EXPERT_FACTORIES` or ``"module:name"``), or
    the one registered in :data:`EXPERTS` for ``env_id`` when ``expert`` is None.

    Only the project's own experts (the values of :data:`EXPERTS` / :data:`EXPERT_FACTORIES`) are imported by
    default: a ``"module:name"`` read from a run's ``config.json`` must not import code. ``allow_import=True``
    (the user named the expert on the command line or in code) lifts that.

    Raises:
        ValueError: no expert registered for ``env_id``, a malformed spec, or an unregistered spec without
            ``allow_import``.
    """
    spec = expert if expert is not None else EXPERTS.get(env_id)
    if spec is None:
        raise ValueError(
            f"no expert registered for {env_id!r} (known: {sorted(EXPERTS)}); pass expert='module:factory'"
        )
    spec = current_name(EXPERT_FACTORIES.get(spec, spec))
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expert must look like 'package.module:factory', got {spec!r}")
    registered = set(EXPERTS.values()) | set(EXPERT_FACTORIES.values())
    if spec not in registered and not allow_import:
        raise ValueError(
            f"expert {spec!r} is not one of the project's experts ({sorted(EXPERT_FACTORIES)}) and was not named by "
            "you: a run's config.json cannot make this program import code. If you trust it, name it on the "
            f"command line: --expert {spec}")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"expert {spec!r} cannot be found ({error}); give 'package.module:factory' of an importable "
                         "module, or leave it out for the env's registered expert") from error


@dataclass(frozen=True)
class SteeringNoise:
    """Temporally correlated noise added to executed actions: ``e_t = rho * e_{t-1} + sqrt(1 - rho^2) * std * N(0, 1)``."""

    std: float
    rho: float

    def __post_init__(self) -> None:
        if self.std < 0 or not 0 <= self.rho < 1:
            raise ValueError(f"noise needs std >= 0 and 0 <= rho < 1, got std={self.std}, rho={self.rho}")


def rollout(
    env: gym.Env,
    expert: Callable[[], np.ndarray],
    road_seed: int,
    *,
    learner: SequencePolicy | None = None,
    beta: float = 1.0,
    noise: SteeringNoise | None = None,
    rng: np.random.Generator | None = None,
    step_seconds: float,
) -> Episode:
    """Drive one episode on road ``road_seed`` and record it.

    Each step the expert labels the frame; with a ``learner`` its action is computed every step (so its
    recurrent state always advances) and executed unless a ``beta`` coin (probability ``beta``) picks the expert's.
    Without a learner the expert always executes. ``noise`` is added to the executed action (then clipped to the
    action space). ``rng`` drives the coin and the noise.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    rng = rng if rng is not None else np.random.default_rng(road_seed)
    low, high = env.action_space.low, env.action_space.high
    obs, info = env.reset(seed=int(road_seed))
    frames, labels, executed, learned, dts = [], [], [], [], []
    infos: dict[str, list[float]] = {k: [] for k in LANE_INFO_KEYS if k in info}
    state, dt, eps = None, float(step_seconds), np.zeros(env.action_space.shape, np.float64)
    while True:
        label = np.asarray(expert(), np.float32).reshape(env.action_space.shape)
        action = label
        if learner is not None:
            out, state = learner.predict(obs[None], state, np.array([len(frames) == 0]), elapsed_time=dt)
            learned.append(out[0])
            if rng.random() >= beta:
                action = out[0]
        else:
            learned.append(np.full(env.action_space.shape, np.nan, np.float32))
        if noise is not None and noise.std > 0:
            eps = noise.rho * eps + np.sqrt(1.0 - noise.rho**2) * noise.std * rng.standard_normal(eps.shape)
            action = action + eps
        action = np.clip(action, low, high).astype(np.float32)
        frames.append(obs)
        labels.append(label)
        executed.append(action)
        dts.append(dt)
        for key in infos:
            infos[key].append(float(info[key]))
        obs, _, terminated, truncated, info = env.step(action)
        dt = float(info.get("elapsed_time", step_seconds)) or float(step_seconds)
        if terminated or truncated:
            break
    return Episode(
        observations=np.stack(frames).astype(np.uint8),
        actions=np.stack(labels).astype(np.float32),
        executed=np.stack(executed).astype(np.float32),
        learner_actions=np.stack(learned).astype(np.float32),
        dt=np.asarray(dts, np.float32),
        info={k: np.asarray(v, np.float32) for k, v in infos.items()},
        road_seed=int(road_seed),
        success=bool(info.get("is_success", False)),
    )


def _step_seconds(env: gym.Env) -> float:
    """The env's elapsed time per step, read from one step's ``info["elapsed_time"]`` (else ``env.unwrapped.dt``)."""
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(env.action_space.shape, env.action_space.dtype))
    value = info.get("elapsed_time", getattr(env.unwrapped, "dt", None))
    if value is None or not float(value) > 0:
        raise ValueError("cannot tell the env's step duration: info['elapsed_time'] and env.unwrapped.dt are missing")
    return float(value)


# ----------------------------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class BCConfig:
    """Settings of one imitation run (stored in ``config.json`` under ``"training"``)."""

    env_id: str = "LaneKeeping-v0"
    """Gymnasium id of a camera lane-keeping env"""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """keyword arguments for ``gym.make`` (e.g. image size)"""
    max_episode_steps: int | None = None
    """time limit override for data collection (None: the registered one)"""
    model: str = "ncp-ltc"
    """ncp-ltc | ncp-cfc | lstm | cnn"""
    seed: int = 0
    """seeds weights, roads, noise and shuffling"""
    expert: str | None = None
    """expert factory ``module:name`` (None: the one registered for env_id)"""
    features: int = 32
    """conv features per frame"""
    conv_channels: tuple[int, ...] = PAPER_CHANNELS
    """channels of the five convolutions"""
    demo_episodes: int = 20
    """expert episodes in round 0"""
    demo_noise_std: float = 0.15
    """std of the steering noise injected while the expert drives (action units); on LaneKeeping-v0 0.15 makes
    the expert drift up to about 0.5 m and recover, 0.3 makes it leave the lane (measured)"""
    demo_noise_rho: float = 0.95
    """per-step correlation of that noise (0.95: about one second at 20 Hz)"""
    dagger_rounds: int = 2
    """DAgger rounds after the demonstrations"""
    dagger_episodes: int = 10
    """learner-driven episodes per DAgger round"""
    beta0: float = 0.5
    """probability that the expert executes in DAgger round 1"""
    beta_decay: float = 0.5
    """beta multiplier per further round"""
    epochs: int = 10
    """training epochs after the demonstrations"""
    dagger_epochs: int = 5
    """training epochs after each DAgger round"""
    window: int = 16
    """truncated-BPTT window (frames)"""
    batch_size: int = 16
    """parallel sequence streams per minibatch"""
    lr: float = 3e-3
    """Adam learning rate of everything after the conv head"""
    conv_lr_scale: float = 0.3
    """the conv head's learning rate is lr * conv_lr_scale"""
    curve_weight: float = 0.0
    """loss weight 1 + curve_weight * |target|"""
    grad_clip: float = 1.0
    """max gradient norm"""

    def __post_init__(self) -> None:
        if self.model not in MODEL_KINDS:
            raise ValueError(f"model must be one of {MODEL_KINDS}, got {self.model!r}")
        object.__setattr__(self, "conv_channels", tuple(int(c) for c in self.conv_channels))
        object.__setattr__(self, "env_kwargs", dict(self.env_kwargs))
        positive = ("features", "demo_episodes", "window", "batch_size", "epochs")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("dagger_rounds", "dagger_episodes", "dagger_epochs"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not (0.0 <= self.beta0 <= 1.0 and 0.0 <= self.beta_decay <= 1.0):
            raise ValueError(f"beta0 and beta_decay must be in [0, 1], got {self.beta0}, {self.beta_decay}")
        if self.lr <= 0 or self.conv_lr_scale <= 0 or self.grad_clip <= 0 or self.curve_weight < 0:
            raise ValueError("lr, conv_lr_scale and grad_clip must be positive and curve_weight >= 0")
        SteeringNoise(self.demo_noise_std, self.demo_noise_rho)  # validates

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["conv_channels"] = list(self.conv_channels)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BCConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}; allowed: {sorted(known)}")
        return cls(**dict(data))

    def differences(self, other: BCConfig) -> dict[str, tuple[Any, Any]]:
        """``{setting: (ours, other's)}`` for every setting in which ``other`` differs (empty: the same run)."""
        return {f.name: (getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(other, f.name)}

    def epochs_of_round(self, round_index: int) -> int:
        return self.epochs if round_index == 0 else self.dagger_epochs


#: Named settings. ``demo``: 32x64 images and half-width convolutions so that data collection, training and
#: evaluation fit in about three minutes on two CPU cores. ``paper``: the paper's conv widths (24/36/48/64/8) on
#: 48x96 images, 16-frame windows, curve-weighted loss, more data and DAgger rounds, sized for about 20-30
#: minutes of training on two CPU cores.
PRESETS: dict[str, dict[str, Any]] = {
    "demo": dict(
        conv_channels=(12, 18, 24, 32, 8),
        demo_episodes=12,
        dagger_rounds=2,
        dagger_episodes=5,
        epochs=8,
        dagger_epochs=3,
        batch_size=16,
        lr=3e-3,
    ),
    "paper": dict(
        conv_channels=PAPER_CHANNELS,
        demo_episodes=40,
        dagger_rounds=3,
        dagger_episodes=10,
        epochs=12,
        dagger_epochs=4,
        batch_size=16,
        lr=3e-3,
        curve_weight=1.0,
    ),
}


#: Env keyword arguments a preset uses for a given env id (unless ``env_kwargs`` is overridden).
PRESET_ENV_KWARGS: dict[str, dict[str, dict[str, Any]]] = {
    "demo": {"LaneKeeping-v0": {"image_height": 32, "image_width": 64}},
    "paper": {"LaneKeeping-v0": {"image_height": 48, "image_width": 96}},
}


def preset_config(name: str, **overrides: Any) -> BCConfig:
    """The :data:`PRESETS` entry ``name`` with ``overrides`` (any :class:`BCConfig` field) applied.

    Unless ``env_kwargs`` is given, the preset's env arguments for ``env_id`` (:data:`PRESET_ENV_KWARGS`) are used.
    """
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    settings = {**PRESETS[name], **overrides}
    env_id = settings.get("env_id", BCConfig.env_id)
    settings.setdefault("env_kwargs", dict(PRESET_ENV_KWARGS[name].get(env_id, {})))
    return BCConfig.from_dict(settings)


def beta_schedule(config: BCConfig, round_index: int) -> float:
    """Probability that the expert executes a step in data round ``round_index`` (1 for the demonstrations)."""
    if round_index == 0:
        return 1.0
    return float(config.beta0 * config.beta_decay ** (round_index - 1))


# ---------------------------------------------------------------------------------------------------- training


class _SequenceData:
    """Episodes concatenated into flat arrays for window sampling."""

    def __init__(self, episodes: Sequence[Episode], step_seconds: float) -> None:
        if not episodes:
            raise ValueError("no episodes to train on")
        self.observations = np.concatenate([e.observations for e in episodes])  # (N, H, W, 3)
        self.actions = np.concatenate([e.actions for e in episodes]).astype(np.float32)  # (N, A)
        self.dt = np.concatenate([e.dt for e in episodes]).astype(np.float32)  # (N,)
        self.starts = np.zeros(len(self.dt), bool)  # (N,) true at each episode's first frame
        lengths = np.array([e.steps for e in episodes])
        self.offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.starts[self.offsets] = True
        self.lengths = lengths
        self.step_seconds = float(step_seconds)

    def __len__(self) -> int:
        return len(self.dt)

    def streams(self, n_streams: int, window: int, rng: np.random.Generator) -> np.ndarray:
        """``(n_streams, K * window)`` frame indices: shuffled episodes dealt to the shortest stream, -1 padded."""
        order = rng.permutation(len(self.lengths))
        streams: list[list[np.ndarray]] = [[] for _ in range(n_streams)]
        totals = np.zeros(n_streams, int)
        for i in order:
            s = int(np.argmin(totals))
            streams[s].append(np.arange(self.offsets[i], self.offsets[i] + self.lengths[i]))
            totals[s] += self.lengths[i]
        width = int(np.ceil(totals.max() / window)) * window
        out = np.full((n_streams, width), -1, np.int64)
        for s, parts in enumerate(streams):
            if parts:
                flat = np.concatenate(parts)
                out[s, : len(flat)] = flat
        return out


def _train_epoch(
    model: SequencePolicy,
    optimizer: torch.optim.Optimizer,
    data: _SequenceData,
    config: BCConfig,
    rng: np.random.Generator,
    partial: Mapping[str, Any] | None = None,
    tick: Callable[[dict[str, Any]], None] | None = None,
) -> float:
    """One pass over ``data`` by truncated BPTT; returns the mean (weighted) loss over frames.

    ``tick`` is called after every window with the epoch's position (``window``: the next window's start,
    ``state`` (B, state_size), ``total``, ``weight_sum``); passing such a dict back as ``partial`` continues the
    epoch from there (the streams are redrawn from ``rng``, which must be seeded as before).
    """
    model.train()
    streams = data.streams(config.batch_size, config.window, rng)
    state = model.initial_state(config.batch_size)
    total, weight_sum, first = 0.0, 0.0, 0
    if partial is not None:
        state, total, weight_sum, first = partial["state"], partial["total"], partial["weight_sum"], partial["window"]
    for k in range(first, streams.shape[1], config.window):
        idx = streams[:, k : k + config.window]  # (B, L)
        valid = idx >= 0
        safe = np.where(valid, idx, 0)
        obs = torch.from_numpy(data.observations[safe])  # (B, L, H, W, 3)
        target = torch.from_numpy(data.actions[safe])  # (B, L, A)
        dt = torch.from_numpy(np.where(valid, data.dt[safe], data.step_seconds).astype(np.float32))
        starts = torch.from_numpy(data.starts[safe] | ~valid)  # padding restarts (and is masked out)
        mask = torch.from_numpy(valid.astype(np.float32))  # (B, L)
        pred, state = model(obs, state.detach(), dt, starts)
        weight = mask * (1.0 + config.curve_weight * target.abs().mean(dim=-1))  # mean over action dims
        err = (pred - target).pow(2).mean(dim=-1)  # (B, L), mean over action dims
        denom = weight.sum()
        if denom <= 0:
            continue
        loss = (weight * err).sum() / denom
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        total += float(loss.detach()) * float(denom)
        weight_sum += float(denom)
        if tick is not None:
            tick({"window": k + config.window, "state": state.detach(), "total": total, "weight_sum": weight_sum})
    return total / max(weight_sum, 1e-12)  # guard: an epoch of only padding


def _make_optimizer(model: SequencePolicy, config: BCConfig) -> torch.optim.Optimizer:
    conv = list(model.conv.parameters())
    conv_ids = {id(p) for p in conv}
    rest = [p for p in model.parameters() if id(p) not in conv_ids and p.requires_grad]
    return torch.optim.Adam(
        [{"params": conv, "lr": config.lr * config.conv_lr_scale}, {"params": rest, "lr": config.lr}]
    )


class _Checkpointer:
    """Writes ``checkpoint.pt`` after each epoch and, every ``interval`` seconds of wall time, inside one."""

    def __init__(self, model: SequencePolicy, optimizer: torch.optim.Optimizer, path: Path, elapsed_before: float,
                 interval: float) -> None:
        self.model, self.optimizer, self.path, self.interval = model, optimizer, path, interval
        self.elapsed_before = elapsed_before  # training seconds of the run before this process
        self.t0 = self.last = time.perf_counter()

    def seconds(self) -> float:
        """Training seconds of the run so far."""
        return self.elapsed_before + time.perf_counter() - self.t0

    def save(self, round_index: int, epoch: int, position: dict[str, Any] | None = None) -> float:
        """``epoch`` epochs of the round done, plus ``position`` inside the next one; returns :meth:`seconds`."""
        seconds = self.seconds()
        save_tensors({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "round": round_index,
                      "epoch": epoch, "seconds": seconds, "torch_rng": torch.get_rng_state(),
                      **({"partial": position} if position is not None else {})}, self.path)
        self.last = time.perf_counter()
        return seconds

    def ticker(self, round_index: int, epoch: int) -> Callable[[dict[str, Any]], None]:
        """The ``tick`` of :func:`_train_epoch` for epoch ``epoch``: a checkpoint once ``interval`` has passed."""

        def tick(position: dict[str, Any]) -> None:
            if self.interval and time.perf_counter() - self.last >= self.interval:
                self.save(round_index, epoch, position)

        return tick


def _collect_round(
    store: Demonstrations,
    env: gym.Env,
    expert: Callable[[], np.ndarray],
    config: BCConfig,
    round_index: int,
    learner: SequencePolicy | None,
    step_seconds: float,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    beta = beta_schedule(config, round_index)
    count = config.demo_episodes if round_index == 0 else config.dagger_episodes
    roads = training_road_seeds(config.seed, round_index, count)
    # Episodes of an interrupted collection are kept when they are this round's first roads in order: episode i
    # depends only on its road, its seeded noise and the learner's weights, which are those of the checkpoint
    # written at the end of the previous round (no training happens during collection).
    stored = [e["road_seed"] for e in store.entries if e["round"] == round_index]
    if stored != roads[: len(stored)]:
        store.discard_incomplete_round(round_index)
        stored = []
    noise = SteeringNoise(config.demo_noise_std, config.demo_noise_rho) if round_index == 0 else None
    for i, road in enumerate(roads):
        if i < len(stored):
            continue
        rng = np.random.default_rng([config.seed, round_index, i, 0xDA66])
        episode = rollout(
            env,
            expert,
            road,
            learner=None if round_index == 0 else learner,
            beta=beta,
            noise=noise,
            rng=rng,
            step_seconds=step_seconds,
        )
        store.append(episode, round_index=round_index, beta=beta)
        if progress is not None:
            progress({"collect/round": round_index, "collect/episode": i + 1, "collect/episodes": count,
                      "collect/steps": episode.steps})
    store.mark_round_complete(round_index)


def _run_config(config: BCConfig, model_config: ModelConfig) -> dict[str, Any]:
    return {
        "kind": "bc",
        "env_id": config.env_id,
        "policy": config.model,
        "seed": config.seed,
        "model": model_config.to_dict(),
        "training": config.to_dict(),
        "train_seed_limit": TRAIN_SEED_LIMIT,
    }


def train(
    config: BCConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    callback: Callable[[dict[str, Any]], None] | None = None,
    trusted_expert: str | None = None,
    checkpoint_seconds: float = 120.0,
    on_collect: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Collect demonstrations, train by sequence BC, run DAgger; returns the run folder ``out``.

    Args:
        config: the run's settings (see :func:`preset_config`).
        out: run folder; must not hold a run unless ``resume``.
        resume: continue the run in ``out`` from its last checkpoint (``config`` must equal the stored one).
        callback: called with each epoch's progress record after its checkpoint is written.
        trusted_expert: on ``resume`` the expert comes from the run's ``config.json``, so an expert outside the
            project's registry is imported only if it equals this (the ``--expert`` the user typed again).
        checkpoint_seconds: also write ``checkpoint.pt`` inside an epoch once this much wall time has passed since
            the last one (0: only after each epoch), so that a kill loses at most about this much training.
        on_collect: called with a ``collect/...`` record (round, episode, episodes, steps, time/seconds) after
            each collected episode.
    """
    if not checkpoint_seconds >= 0:
        raise ValueError(f"checkpoint_seconds must be >= 0 (0: only after each epoch), got {checkpoint_seconds!r}")
    run_dir = Path(out)
    config_path = run_dir / "config.json"
    if config_path.exists() and not resume:
        raise ValueError(f"{run_dir} already holds a run; pass resume=True (--resume) or choose another folder")
    if resume and not config_path.exists():
        raise ValueError(f"nothing to resume: {config_path} does not exist")
    if resume:
        stored_run = read_json_object(config_path, "run config")
        if not isinstance(stored_run.get("training"), dict):
            raise ValueError(f"{config_path} has no 'training' settings: it is not an imitation run's config")
        stored = BCConfig.from_dict(stored_run["training"])
        diff = stored.differences(config)
        if diff:
            raise ValueError(f"resume with different settings (stored, given): {diff}")

    torch.manual_seed(config.seed)
    env = make_env(config.env_id, config.env_kwargs, config.max_episode_steps)
    if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 3:
        raise ValueError(f"{config.env_id} must observe (H, W, 3) images, has {env.observation_space}")
    allow = not resume or (trusted_expert is not None and trusted_expert == config.expert)
    expert = resolve_expert(config.env_id, config.expert, allow_import=allow)(env)
    step_seconds = _step_seconds(env)
    model_config = ModelConfig(
        kind=config.model,
        observation_shape=tuple(env.observation_space.shape),
        action_size=int(np.prod(env.action_space.shape)),
        features=config.features,
        conv_channels=config.conv_channels,
        step_seconds=step_seconds,
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        _write_json_atomic(config_path, _run_config(config, model_config))
    model = build_model(model_config, seed=config.seed)
    optimizer = _make_optimizer(model, config)

    data_dir = run_dir / "demonstrations"
    if (data_dir / _MANIFEST).exists():
        store = Demonstrations.open(
            data_dir, env_id=config.env_id, observation_shape=model_config.observation_shape,
            action_shape=env.action_space.shape,
        )
    else:
        store = Demonstrations.create(
            data_dir, env_id=config.env_id, env_kwargs=config.env_kwargs,
            observation_shape=model_config.observation_shape, action_shape=env.action_space.shape,
            info_keys=[k for k in LANE_INFO_KEYS if k in env.reset(seed=0)[1]],
        )

    start_round, start_epoch, elapsed_before = 0, 0, 0.0
    checkpoint_path = run_dir / "checkpoint.pt"
    if resume and checkpoint_path.exists():
        ckpt = load_tensors(checkpoint_path, "checkpoint")  # weights only: tensors and plain data
        model.load_state_dict(_checkpoint_part(ckpt, "model", checkpoint_path))
        optimizer.load_state_dict(_checkpoint_part(ckpt, "optimizer", checkpoint_path))
        start_round, start_epoch = int(ckpt.get("round", 0)), int(ckpt.get("epoch", 0))
        elapsed_before = float(ckpt.get("seconds", 0.0))
        torch.set_rng_state(_checkpoint_part(ckpt, "torch_rng", checkpoint_path))
        partial = ckpt.get("partial")  # a checkpoint written by wall time inside epoch start_epoch
        if partial is None and start_epoch >= config.epochs_of_round(start_round):
            start_round, start_epoch = start_round + 1, 0
    else:
        partial = None

    clock = _Checkpointer(model, optimizer, checkpoint_path, elapsed_before, checkpoint_seconds)

    def collected(record: dict[str, Any]) -> None:
        if on_collect is not None:
            on_collect({**record, "time/seconds": clock.seconds()})

    for round_index in range(start_round, config.dagger_rounds + 1):
        if round_index not in store.rounds_complete:
            _collect_round(store, env, expert, config, round_index, model, step_seconds, progress=collected)
        for seed in store.road_seeds:
            _check_training_seed(seed)
        data = _SequenceData(store.load_all(), step_seconds)
        first = start_epoch if round_index == start_round else 0
        for epoch in range(first, config.epochs_of_round(round_index)):
            loss = _train_epoch(model, optimizer, data, config, np.random.default_rng([config.seed, round_index, epoch]),
                                partial=partial, tick=clock.ticker(round_index, epoch))
            partial = None
            seconds = clock.save(round_index, epoch + 1)
            record = {
                "train/round": round_index,
                "train/epoch": epoch + 1,
                "train/loss": loss,
                "train/frames": len(data),
                "train/episodes": len(store),
                "train/beta": beta_schedule(config, round_index),
                "time/seconds": seconds,
            }
            append_line(run_dir / "progress.jsonl", json.dumps(record))
            if callback is not None:
                callback(record)
    env.close()
    save_tensors(model.state_dict(), run_dir / "model.pt")
    return run_dir


# ---------------------------------------------------------------------------------------------- loading, eval


def load_policy(run_dir: str | os.PathLike, config: Mapping[str, Any] | None = None) -> SequencePolicy:
    """Rebuild the trained model of a ``bc`` run folder (``model.pt``, else the last ``checkpoint.pt``).

    ``config`` is the run's parsed ``config.json`` (read from ``run_dir`` when None). The result is a Predictor.
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
        state = _checkpoint_part(load_tensors(path, "checkpoint"), "model", path)
    else:
        raise ValueError(f"{run_dir} has neither model.pt nor checkpoint.pt; train it first")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict (names -> tensors)")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"the weights in {path} do not fit the model in config.json: "
                         f"{' '.join(str(error).split())[:300]}") from error
    model.eval()
    return model


def _checkpoint_part(checkpoint: Any, key: str, path: Path) -> Any:
    if not isinstance(checkpoint, dict) or key not in checkpoint:
        raise ValueError(f"checkpoint {path} is malformed: it has no {key!r} entry")
    return checkpoint[key]


def evaluate_heldout(
    predictor: Any,
    env_id: str,
    episodes: int,
    *,
    seed: int = HELDOUT_SEED_START,
    env_kwargs: Mapping[str, Any] | None = None,
    wrappers: Iterable[Callable[[gym.Env], gym.Env]] = (),
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Closed-loop evaluation on held-out roads ``seed, seed + 1, ...`` (``seed >= HELDOUT_SEED_START``).

    Returns :func:`ncp_control.agents.evaluation.episodes.evaluate`'s metrics (completion rate, mean |lateral offset|, departures per
    km, steering smoothness, ...).
    """
    heldout_road_seeds(seed, episodes)  # validates the range
    import ncp_control.envs  # noqa: F401  (registers our env ids)

    return evaluate(predictor, env_id, episodes, seed, env_kwargs=dict(env_kwargs or {}), wrappers=tuple(wrappers),
                    progress=progress)
