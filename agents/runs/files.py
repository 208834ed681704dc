"""Run-folder I/O that cannot be turned against the user: atomic writes, tensors and statistics as data.

Trust model: opening a run folder (``evaluate``, ``inspect``, ``robustness``, :func:`ncp_control.agents.runs.load.load_run`) runs
no code from it. Weights are read with ``torch.load(..., weights_only=True)`` (tensors and plain containers only),
normaliser statistics from ``.npz`` files with ``allow_pickle=False``, settings from JSON, and the policy is
rebuilt from the project's own classes named in ``config.json``. SB3's ``model.zip`` and ``vecnormalize.pkl``
(cloudpickle / pickle) are still written for SB3 users, but read only where the user asks for them
(``train-ppo --resume`` of their own run, :func:`ncp_control.agents.ppo.load_sb3_model`).

Every reader raises ``ValueError`` naming the file when it is missing, truncated, not the expected format or was
crafted (a pickle that would run code is refused, not run).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "temporary_path",
    "append_line",
    "write_json_atomic",
    "read_json_object",
    "save_tensors",
    "load_tensors",
    "ObsNormalizer",
    "save_normalizer",
    "load_normalizer",
    "space_to_data",
    "space_from_data",
]


# ------------------------------------------------------------------------------------------------ writing
def temporary_path(path: str | os.PathLike) -> Path:
    """``path`` + ``.tmp`` with anything already there removed, so that a symlink planted under that name cannot
    redirect the write outside the folder (``os.replace`` then swaps the name itself, never a link's target)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    return tmp


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append ``line`` + newline to ``path``, refusing to follow a symlink there (``ValueError``)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as error:
        if Path(path).is_symlink():
            raise ValueError(f"{path} is a symlink: refusing to write through it (outside the run folder?)") from error
        raise
    with os.fdopen(fd, "a") as f:
        f.write(line + "\n")


# ------------------------------------------------------------------------------------------------------- JSON
def write_json_atomic(path: str | os.PathLike, data: Any, *, indent: int | None = 2, sort_keys: bool = True) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and ``os.replace`` (never half-written)."""
    path = Path(path)
    tmp = temporary_path(path)
    tmp.write_text(json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n")
    os.replace(tmp, path)


def read_json_object(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """The JSON object in ``path``; ``ValueError`` naming ``what`` if the file is missing, not JSON or not an object."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} {path} does not exist")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{what} {path} is corrupt (not valid JSON): {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} is corrupt: it must hold a JSON object")
    return data


# ---------------------------------------------------------------------------------------------------- tensors
def save_tensors(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file. ``obj`` must be loadable with ``weights_only=True`` (tensors,
    dicts, lists, tuples, str, int, float, bool, None)."""
    import torch

    path = Path(path)
    tmp = temporary_path(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_tensors(path: str | os.PathLike, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU: tensors and plain containers, never code.

    Raises:
        ValueError: the file is missing, truncated, not a torch file, or holds anything but tensors and plain
            data (e.g. a pickle that would import and call a function); the message names the file.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError for code, RuntimeError/EOFError for damaged files
        first = " ".join(str(error).split())[:300]
        raise ValueError(
            f"cannot load {what} {path}: it is not a weights-only torch file (damaged, or it holds "
            f"code, which is never run): {type(error).__name__}: {first}"
        ) from error


# ------------------------------------------------------------------------------------------ normaliser as data
@dataclass(frozen=True, eq=False)  # arrays inside: compare fields explicitly
class ObsNormalizer:
    """SB3 ``VecNormalize`` statistics as plain arrays, with the same ``normalize_obs``.

    ``obs_mean``/``obs_var``: arrays (or, for dict observations, dicts key -> array for ``norm_obs_keys``);
    ``obs_count``: the number of samples behind them. ``ret_*``: the return statistics (for resuming or reward
    scaling); ``clip_obs``, ``clip_reward``, ``epsilon``, ``gamma``, ``norm_obs``, ``norm_reward`` as in SB3.
    """

    obs_mean: Any
    obs_var: Any
    obs_count: float
    ret_mean: float
    ret_var: float
    ret_count: float
    clip_obs: float
    clip_reward: float
    epsilon: float
    gamma: float
    norm_obs: bool
    norm_reward: bool
    norm_obs_keys: tuple[str, ...] | None = None

    @classmethod
    def from_vecnormalize(cls, venv) -> ObsNormalizer:
        """The statistics of an SB3 ``VecNormalize``."""
        rms = venv.obs_rms
        mean: np.ndarray | dict[str, np.ndarray]
        var: np.ndarray | dict[str, np.ndarray]
        keys: tuple[str, ...] | None
        if isinstance(rms, dict):
            mean = {k: np.asarray(r.mean, np.float64) for k, r in rms.items()}
            var = {k: np.asarray(r.var, np.float64) for k, r in rms.items()}
            count = float(next(iter(rms.values())).count) if rms else 0.0
            keys = tuple(rms)
        else:
            mean, var, count, keys = (
                np.asarray(rms.mean, np.float64),
                np.asarray(rms.var, np.float64),
                float(rms.count),
                None,
            )
        return cls(
            mean,
            var,
            count,
            float(venv.ret_rms.mean),
            float(venv.ret_rms.var),
            float(venv.ret_rms.count),
            float(venv.clip_obs),
            float(venv.clip_reward),
            float(venv.epsilon),
            float(venv.gamma),
            bool(venv.norm_obs),
            bool(venv.norm_reward),
            keys,
        )

    def normalize_obs(self, obs):
        """``clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs)`` as float32, like
        ``VecNormalize.normalize_obs`` (for dict observations, only ``norm_obs_keys``)."""
        if not self.norm_obs:
            return obs
        if self.norm_obs_keys is not None:
            out = dict(obs)
            for key in self.norm_obs_keys:
                out[key] = self._normalize(obs[key], self.obs_mean[key], self.obs_var[key])
            return out
        return self._normalize(obs, self.obs_mean, self.obs_var)

    def _normalize(self, obs, mean, var) -> np.ndarray:
        scaled = (np.asarray(obs) - mean) / np.sqrt(var + self.epsilon)
        return np.clip(scaled, -self.clip_obs, self.clip_obs).astype(np.float32)


_SCALARS = ("obs_count", "ret_mean", "ret_var", "ret_count", "clip_obs", "clip_reward", "epsilon", "gamma")
_FLAGS = ("norm_obs", "norm_reward")
_NORMALIZER_FORMAT = "ncp-control/vecnormalize"


def save_normalizer(normalizer: ObsNormalizer, path: str | os.PathLike) -> None:
    """Write the statistics as an ``.npz`` of plain arrays (no pickled objects), atomically."""
    arrays: dict[str, np.ndarray] = {"format": np.array(_NORMALIZER_FORMAT), "version": np.array(1)}
    for name in _SCALARS:
        arrays[name] = np.array(float(getattr(normalizer, name)))
    for name in _FLAGS:
        arrays[name] = np.array(bool(getattr(normalizer, name)))
    if normalizer.norm_obs_keys is None:
        arrays["obs_mean"], arrays["obs_var"] = np.asarray(normalizer.obs_mean), np.asarray(normalizer.obs_var)
    else:
        arrays["norm_obs_keys"] = np.array(list(normalizer.norm_obs_keys), dtype=str)
        for i, key in enumerate(normalizer.norm_obs_keys):
            arrays[f"obs_mean_{i}"] = np.asarray(normalizer.obs_mean[key])
            arrays[f"obs_var_{i}"] = np.asarray(normalizer.obs_var[key])
    path = Path(path)
    tmp = temporary_path(path)
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub fears a key "allow_pickle" (none is)
    os.replace(tmp, path)


def load_normalizer(path: str | os.PathLike) -> ObsNormalizer:
    """Read what :func:`save_normalizer` wrote (``allow_pickle=False``).

    Raises:
        ValueError: missing, truncated, pickled or otherwise not such a file; the message names it.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"normaliser statistics {path} do not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"cannot read normaliser statistics {path}: not a plain-array .npz ({error})") from error
    try:
        return _normalizer_from_arrays(arrays)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"normaliser statistics {path} are malformed ({type(error).__name__}: {error})") from error


def _normalizer_from_arrays(arrays: dict[str, np.ndarray]) -> ObsNormalizer:
    if str(arrays["format"]) != _NORMALIZER_FORMAT or int(arrays["version"]) != 1:
        raise ValueError(f"format {arrays['format']!r} version {arrays['version']!r} is not {_NORMALIZER_FORMAT} v1")
    scalars = {name: float(arrays[name]) for name in _SCALARS}
    flags = {name: bool(arrays[name]) for name in _FLAGS}
    keys: tuple[str, ...] | None
    mean: np.ndarray | dict[str, np.ndarray]
    var: np.ndarray | dict[str, np.ndarray]
    if "norm_obs_keys" in arrays:
        keys = tuple(str(k) for k in arrays["norm_obs_keys"].reshape(-1))
        mean = {k: _float_array(arrays[f"obs_mean_{i}"]) for i, k in enumerate(keys)}
        var = {k: _float_array(arrays[f"obs_var_{i}"]) for i, k in enumerate(keys)}
        pairs = [(mean[k], var[k]) for k in keys]
    else:
        keys, mean, var = None, _float_array(arrays["obs_mean"]), _float_array(arrays["obs_var"])
        pairs = [(mean, var)]
    for m, v in pairs:
        if m.shape != v.shape or not (np.all(np.isfinite(m)) and np.all(np.isfinite(v)) and np.all(v >= 0)):
            raise ValueError("observation mean/var must have one shape, be finite, and var >= 0")
    if not (scalars["epsilon"] > 0 and scalars["clip_obs"] > 0):
        raise ValueError("epsilon and clip_obs must be positive")
    # scalars fill the float fields, flags the bool ones (mypy cannot tell the keys apart)
    return ObsNormalizer(mean, var, **scalars, **flags, norm_obs_keys=keys)  # type: ignore[arg-type]


def _float_array(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind not in "fiu":
        raise TypeError(f"expected a numeric array, got dtype {a.dtype}")
    return a.astype(np.float64)


# ---------------------------------------------------------------------------------------------- spaces as data
_SPACE_DTYPES = ("float32", "float64", "uint8", "int8", "int16", "int32", "int64", "bool")


def space_to_data(space) -> dict[str, Any]:
    """A Gymnasium ``Box`` / ``Discrete`` / ``MultiDiscrete`` / ``Dict`` space as tensors and plain data (what
    ``torch.load(weights_only=True)`` can read back)."""
    import torch
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "dtype": str(space.dtype),
            "low": torch.from_numpy(np.array(space.low, np.float64)),
            "high": torch.from_numpy(np.array(space.high, np.float64)),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": torch.from_numpy(np.array(space.nvec, np.int64))}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "keys": list(space.spaces), "spaces": [space_to_data(s) for s in space.spaces.values()]}
    raise ValueError(f"cannot store a {type(space).__name__} space as data (Box, Discrete, MultiDiscrete, Dict)")


def space_from_data(data: Any):
    """Inverse of :func:`space_to_data`; ``ValueError`` for anything malformed."""
    from gymnasium import spaces

    if not isinstance(data, dict) or data.get("type") not in ("Box", "Discrete", "MultiDiscrete", "Dict"):
        raise ValueError(f"not a stored space: {str(data)[:100]}")
    kind = data["type"]
    if kind == "Box":
        if data.get("dtype") not in _SPACE_DTYPES:
            raise ValueError(f"unsupported Box dtype {data.get('dtype')!r}")
        dtype = np.dtype(data["dtype"])
        low, high = data["low"].numpy().astype(dtype), data["high"].numpy().astype(dtype)
        return spaces.Box(low, high, dtype=dtype)  # type: ignore[arg-type,unused-ignore]  # (Gymnasium 1.2 typing)
    if kind == "Discrete":
        return spaces.Discrete(int(data["n"]), start=int(data["start"]))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(data["nvec"].numpy())
    keys, subspaces = data["keys"], data["spaces"]
    if not isinstance(keys, list) or not isinstance(subspaces, list) or len(keys) != len(subspaces):
        raise ValueError("a stored Dict space needs matching 'keys' and 'spaces' lists")
    return spaces.Dict({str(k): space_from_data(s) for k, s in zip(keys, subspaces)})


def check_normalizer_fits(normalizer: ObsNormalizer, observation_space, path: str | os.PathLike) -> None:
    """``ValueError`` naming ``path`` when the statistics' shapes do not fit the policy's observation space."""
    from gymnasium import spaces

    if not normalizer.norm_obs:
        return
    if normalizer.norm_obs_keys is None:
        pairs = [("observation", normalizer.obs_mean, observation_space)]
    elif isinstance(observation_space, spaces.Dict) and set(normalizer.norm_obs_keys) <= set(observation_space.spaces):
        pairs = [(k, normalizer.obs_mean[k], observation_space[k]) for k in normalizer.norm_obs_keys]
    else:
        raise ValueError(
            f"normaliser statistics {path} are for the keys {normalizer.norm_obs_keys}, which the "
            f"policy's observation space {observation_space} does not have"
        )
    for name, mean, space in pairs:
        if isinstance(space, spaces.Dict) or tuple(mean.shape) != tuple(space.shape):
            raise ValueError(
                f"normaliser statistics {path} have shape {mean.shape} for {name}, the policy observes {space}"
            )


# ----------------------------------------------------------------------------------------------- PPO policies
_POLICY_FORMAT = "ncp-control/ppo-policy"


def save_policy_data(model, policy_path: str | os.PathLike, normalizer_path: str | os.PathLike) -> None:
    """Write an SB3 model's policy as data: ``policy_path`` holds the weights, the spaces and the step count
    (readable with ``weights_only=True``); ``normalizer_path`` the ``VecNormalize`` statistics when the model's
    env has one (:func:`save_normalizer`)."""
    from stable_baselines3.common.vec_env import VecNormalize

    policy = model.policy
    save_tensors(
        {
            "format": _POLICY_FORMAT,
            "version": 1,
            "num_timesteps": int(model.num_timesteps),
            "observation_space": space_to_data(policy.observation_space),
            "action_space": space_to_data(policy.action_space),
            "state_dict": {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()},
        },
        policy_path,
    )
    venv = model.get_env()
    if isinstance(venv, VecNormalize):
        save_normalizer(ObsNormalizer.from_vecnormalize(venv), normalizer_path)


def load_policy_data(path: str | os.PathLike, config: dict[str, Any], build):
    """The SB3 policy stored by :func:`save_policy_data`, rebuilt by ``build(config, observation_space,
    action_space)`` (the project's own classes) and filled with the stored weights; in eval mode.

    Raises:
        ValueError: the file is not such a policy (damaged, crafted, another format) or its weights do not fit the
            policy that ``config.json`` describes; the message names the file.
    """
    import torch

    data = load_tensors(path, "policy weights")
    if not isinstance(data, dict) or data.get("format") != _POLICY_FORMAT or data.get("version") != 1:
        raise ValueError(f"policy weights {path} are not an {_POLICY_FORMAT} v1 file")
    state = data.get("state_dict")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(f"policy weights {path}: 'state_dict' must map names to tensors")
    try:
        observation_space = space_from_data(data.get("observation_space"))
        action_space = space_from_data(data.get("action_space"))
    except (KeyError, TypeError, ValueError, AttributeError, AssertionError) as error:
        raise ValueError(f"policy weights {path}: the stored spaces are malformed ({error})") from error
    try:
        policy = build(config, observation_space, action_space)
    except (TypeError, KeyError, AssertionError) as error:  # policy_kwargs the policy class does not take
        raise ValueError(f"the run's config.json cannot build the policy stored in {path}: {error}") from error
    try:
        policy.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = " ".join(str(error).split())[:300]
        raise ValueError(f"policy weights {path} do not fit the policy in config.json: {first}") from error
    policy.set_training_mode(False)
    return policy


def policy_data_callback(save_freq: int, paths_for_steps):
    """An SB3 callback writing :func:`save_policy_data` every ``save_freq`` calls (like ``CheckpointCallback``),
    to ``paths_for_steps(num_timesteps) -> (policy_path, normalizer_path)``."""
    from stable_baselines3.common.callbacks import BaseCallback

    class PolicyDataCheckpoint(BaseCallback):
        def _on_step(self) -> bool:
            if self.n_calls % save_freq == 0:
                policy_path, normalizer_path = paths_for_steps(self.num_timesteps)
                Path(policy_path).parent.mkdir(parents=True, exist_ok=True)
                save_policy_data(self.model, policy_path, normalizer_path)
            return True

    return PolicyDataCheckpoint()
