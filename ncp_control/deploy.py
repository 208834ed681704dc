"""Run an exported policy (``ncp-control export``) with ONNX Runtime: numpy and onnxruntime only, no torch.

Example::

    from ncp_control.deploy import OnnxPolicy

    policy = OnnxPolicy("policy.onnx")
    state, start = None, np.ones(1, bool)
    obs, _ = env.reset(seed=0)
    while True:
        action, state = policy.predict(obs[None], state, episode_start=start)
        obs, reward, terminated, truncated, info = env.step(action[0])
        start[:] = False
        ...

``predict`` has stable-baselines3's recurrent semantics: ``state=None`` starts from zeros and the rows where
``episode_start`` is true are reset before the step; stateless models return ``None`` as state. The policy is a
Predictor for ``ncp_control.agents.evaluation.episodes.evaluate`` (``ncp-control run-exported``).

This module imports numpy and onnxruntime only (``import ncp_control`` does not import torch), so a deployment
needs ``pip install numpy onnxruntime`` and the ``.onnx`` file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # pragma: no cover
    import onnxruntime as ort
    from gymnasium import spaces

#: Newest metadata format this runtime reads (see ``agents/export/writer.py``).
FORMAT_VERSION = 1


class OnnxPolicy:
    """An exported policy: ``predict(observation, state=None, episode_start=None, deterministic=True,
    elapsed_time=None) -> (action, state)``.

    Args:
        path: the ``.onnx`` file written by ``ncp-control export``.
        threads: ONNX Runtime intra-op threads (default 1: a control step is far too small to split).

    Attributes:
        metadata: the exported metadata (JSON values decoded): ``observation_space``, ``action_space``,
            ``state_size``, ``recurrent``, ``nominal_step_seconds``, ``env_id``, ``env_kwargs``, ``wiring``,
            ``neurons``, ...
        state_size, observation_shape, action_shape, observation_dtype, nominal_step_seconds: read from it.

    Raises:
        ValueError: the file is missing, is not an ONNX model, or lacks the metadata of ``ncp-control export``.
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise ValueError(
                "OnnxPolicy needs onnxruntime: pip install onnxruntime (or 'ncp-control[onnx]')"
            ) from error
        path = Path(path)
        if not path.is_file():
            raise ValueError(
                f"exported policy {path} does not exist (write it with `ncp-control export RUN_DIR --out {path}`)"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for unreadable files
            raise ValueError(f"{path} is not a loadable ONNX model: {error}") from error
        self.metadata = _read_metadata(self.session, path)
        meta = self.metadata
        self.state_size = int(meta["state_size"])
        self.recurrent = bool(meta["recurrent"])
        self.observation_shape = tuple(meta["observation_space"]["shape"])
        self.observation_dtype = np.dtype(meta["observation_space"]["dtype"])
        self.action_shape = tuple(meta["action_space"]["shape"])
        self.nominal_step_seconds = float(meta["nominal_step_seconds"])
        self._outputs = ["action", "state_out"]
        self._nominal_dt: dict[int, np.ndarray] = {}  # batch size -> nominal elapsed times (read-only use)
        self._zeros: dict[int, np.ndarray] = {}  # batch size -> zero state (ONNX Runtime never writes inputs)

    @property
    def observation_space(self) -> spaces.Box | dict[str, Any]:
        """The env's observation space as a gymnasium ``Box`` (gymnasium imported on first use), or its JSON
        description when gymnasium is not installed."""
        return _box(self.metadata["observation_space"])

    @property
    def action_space(self) -> spaces.Box | dict[str, Any]:
        """The action space, as :attr:`observation_space`."""
        return _box(self.metadata["action_space"])

    def step(
        self, observation: np.ndarray, state: np.ndarray, elapsed_time: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The raw graph call: ``observation`` (B, *shape) in the env dtype, ``state`` (B, S) float32,
        ``elapsed_time`` (B,) float32 seconds -> ``(action (B, A), state_out (B, S))``. No resets, no checks."""
        feeds = {"observation": observation, "state": state, "elapsed_time": elapsed_time}
        action, state = self.session.run(self._outputs, feeds)
        return action, state

    def predict(
        self,
        observation: ArrayLike,
        state: ArrayLike | None = None,
        episode_start: ArrayLike | None = None,
        deterministic: bool = True,
        *,
        elapsed_time: ArrayLike | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """One control step for a batch, with stable-baselines3's recurrent ``predict`` semantics.

        Args:
            observation: (B, *observation shape), or one observation without the batch axis.
            state: (B, S) from the previous call, or None (zeros).
            episode_start: (B,) bool; rows where true start from a zero state.
            deterministic: accepted for compatibility; the exported action is the deterministic one.
            elapsed_time: seconds since the previous observation, a number or (B,); default the nominal step.
        Returns:
            ``(action (B, *action shape), state (B, S) float32)``; the state is None for stateless models, and
            the batch axis is dropped when the observation had none.
        """
        obs = observation if isinstance(observation, np.ndarray) else np.asarray(observation)
        single = obs.shape == self.observation_shape
        if single:
            obs = obs[None]
        if obs.shape[1:] != self.observation_shape:
            raise ValueError(
                f"observation must have shape (B, {', '.join(map(str, self.observation_shape))}), got {obs.shape}"
            )
        batch = obs.shape[0]
        if obs.dtype != self.observation_dtype or not obs.flags.c_contiguous:
            obs = np.ascontiguousarray(obs, dtype=self.observation_dtype)
        h = self._state(state, episode_start, batch)
        if elapsed_time is None:
            dt = self._nominal_dt.get(batch)
            if dt is None:
                dt = self._nominal_dt[batch] = np.full(batch, self.nominal_step_seconds, np.float32)
        else:
            dt = np.ascontiguousarray(np.broadcast_to(np.asarray(elapsed_time, np.float32), (batch,)))
        action, h = self.session.run(self._outputs, {"observation": obs, "state": h, "elapsed_time": dt})
        action = action.reshape(batch, *self.action_shape)
        if single:
            return action[0], (h[0] if self.recurrent else None)
        return action, (h if self.recurrent else None)

    def _state(self, state: ArrayLike | None, episode_start: ArrayLike | None, batch: int) -> np.ndarray:
        """The (B, S) float32 state to feed: zeros for None, rows of ``episode_start`` zeroed (on a copy)."""
        if state is None or not self.recurrent:
            zeros = self._zeros.get(batch)
            if zeros is None:
                zeros = self._zeros[batch] = np.zeros((batch, self.state_size), np.float32)
            return zeros
        h = state if isinstance(state, np.ndarray) else np.asarray(state)
        if h.shape != (batch, self.state_size):
            raise ValueError(f"state must have shape ({batch}, {self.state_size}), got {np.shape(state)}")
        if h.dtype != np.float32 or not h.flags.c_contiguous:
            h = np.ascontiguousarray(h, dtype=np.float32)
        if episode_start is not None:
            starts = episode_start if isinstance(episode_start, np.ndarray) else np.asarray(episode_start)
            if starts.shape != (batch,):
                raise ValueError(f"episode_start must have shape ({batch},), got {np.shape(episode_start)}")
            if starts.any():
                h = h.copy()  # never write into the caller's array
                h[starts.astype(bool)] = 0.0
        return h


def _read_metadata(session: ort.InferenceSession, path: Path) -> dict[str, Any]:
    props = session.get_modelmeta().custom_metadata_map
    if "format_version" not in props:
        raise ValueError(f"{path} has no ncp-control metadata: export it with `ncp-control export`")
    try:
        meta = {key: json.loads(value) for key, value in props.items()}
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: corrupt ncp-control metadata ({error})") from error
    if int(meta["format_version"]) > FORMAT_VERSION:
        raise ValueError(
            f"{path} was exported in metadata format {meta['format_version']}; this runtime reads "
            f"format {FORMAT_VERSION} or older: update ncp-control"
        )
    return meta


def _box(spec: dict[str, Any]) -> spaces.Box | dict[str, Any]:
    """The gymnasium Box a space's JSON describes, or the JSON itself when gymnasium is not installed."""
    try:
        from gymnasium import spaces
    except ImportError:
        return spec

    def bound(value: object) -> np.ndarray:  # one number for every dimension, or a list; infinities as strings
        values = np.array([float(v) for v in np.atleast_1d(np.asarray(value, dtype=object))])
        return np.broadcast_to(values, spec["shape"]) if values.size == 1 else values.reshape(spec["shape"])

    low, high = bound(spec["low"]), bound(spec["high"])
    return spaces.Box(low.astype(spec["dtype"]), high.astype(spec["dtype"]), tuple(spec["shape"]), spec["dtype"])
