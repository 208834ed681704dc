"""Record a circuit driving an environment: per step the observation, every neuron, motor outputs, actions,
rewards and the environment's ``info``; keep it in memory or save it as ``recording.npz`` + ``manifest.json``.

The environment is any object with Gymnasium's ``reset(seed=...)`` / ``step(action)``; this module never creates
one (``ncp_control`` does not depend on the environments). Episode ``i`` is reset with ``seed + i`` (the same
episodes as ``ncp_control.agents.evaluation.episodes.evaluate``).

Alignment: row ``t`` of every array belongs to the same step: the observation the policy saw, the ``info`` that
came with that observation (from ``reset`` for the first step), the sensory inputs (``features``), the neuron
states *after* the cell step, the motor outputs and action of that step, and the reward the action earned.
States are indexed by **wiring neuron id** (motor, command, inter for NCP), whatever the cell's own order.

Elapsed time: the cell is given ``info["elapsed_time"]`` of the previous step when the environment reports it, else
the circuit's nominal step (as ``ncp_control.agents.imitation.rollout`` does); the cell time actually used is saved (``cell_dt``).
"""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import checks
from .circuit import Circuit

__all__ = ["Recording", "record", "replay", "closed_loop_ablation", "RECORDING_FILE", "MANIFEST_FILE"]

RECORDING_FILE = "recording.npz"
MANIFEST_FILE = "manifest.json"
_FORMAT = "ncp-control/recording"
_VERSION = 1
_ARRAYS = ("features", "states", "motor", "actions", "rewards", "cell_dt", "episode", "step")


@dataclass
class Recording:
    """Recorded steps of one or more episodes (T steps in all, concatenated in episode order).

    Attributes:
        kind: ``"ltc"`` or ``"cfc"``.
        neuron_types: (N,) str, the type of each neuron id.
        features: (T, F) float32 sensory inputs of the cell (after the encoder).
        states: (T, N) float32 neuron states after each step, by neuron id.
        motor: (T, M) float32 motor outputs of the cell (before the policy's read-out / action map).
        actions: (T, A) float32 actions sent to the environment (Discrete: (T, 1) indices).
        rewards: (T,) float32.
        cell_dt: (T,) float32 elapsed time given to the cell, in cell time units.
        episode: (T,) int64 episode index (0-based). step: (T,) int64 step within the episode.
        info: {key: (T,) float64} numeric scalar ``info`` entries (NaN where a step lacked the key).
        observations: (T, *obs_shape) array, a dict of such arrays (dict observations), or None (not kept).
        episodes: one dict per episode: ``seed``, ``return``, ``length``, ``terminated``, ``truncated``,
            ``stopped_at_max_steps`` (the recording's ``max_steps`` cut an episode the env had not ended) and, when the
            env reports them, ``is_success`` and ``mean_abs_lateral_m``.
        clamped: neuron ids held at their silence value while recording (closed-loop ablation), else empty.
        meta: free-form JSON-ready description (policy name, env id, ...).
    """

    kind: str
    neuron_types: np.ndarray
    features: np.ndarray
    states: np.ndarray
    motor: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    cell_dt: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    info: dict[str, np.ndarray]
    observations: Any = None
    episodes: list[dict[str, Any]] = field(default_factory=list)
    clamped: list[int] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.states.shape[0])

    @property
    def episode_count(self) -> int:
        return len(self.episodes)

    def ids_of(self, neuron_type: str) -> np.ndarray:
        """Ids of the neurons of one type (``"motor"``, ``"command"``, ``"inter"``)."""
        if neuron_type not in ("motor", "command", "inter"):
            raise ValueError(f"neuron_type must be 'motor', 'command' or 'inter', got {neuron_type!r}")
        return np.flatnonzero(self.neuron_types == neuron_type)

    def states_of(self, neuron_type: str) -> np.ndarray:
        """(T, n) states of the neurons of one type, columns in id order (see :meth:`ids_of`)."""
        return self.states[:, self.ids_of(neuron_type)]

    def episode_slice(self, index: int) -> slice:
        """Rows of episode ``index``."""
        if not 0 <= index < self.episode_count:
            raise ValueError(f"episode index must be in [0, {self.episode_count}), got {index}")
        rows = np.flatnonzero(self.episode == index)
        return slice(int(rows[0]), int(rows[-1]) + 1)

    def states_before(self) -> np.ndarray:
        """(T, N) by id: the state each step started from (zeros at episode starts)."""
        before = np.zeros_like(self.states)
        before[1:] = self.states[:-1]
        before[self.step == 0] = 0.0
        return before

    # -- disk ----------------------------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write ``folder/recording.npz`` (arrays) and ``folder/manifest.json`` (shapes, meanings, episodes).
        Returns the folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        arrays["neuron_types"] = self.neuron_types.astype("U7")
        for key, value in self.info.items():
            arrays[f"info/{key}"] = value
        if isinstance(self.observations, dict):
            for key, value in self.observations.items():
                arrays[f"observations/{key}"] = value
        elif self.observations is not None:
            arrays["observations"] = self.observations
        np.savez_compressed(folder / RECORDING_FILE, **arrays)
        manifest = {
            "format": _FORMAT,
            "version": _VERSION,
            "kind": self.kind,
            "steps": len(self),
            "neurons": {t: self.ids_of(t).tolist() for t in ("motor", "command", "inter")},
            "arrays": {name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in arrays.items()},
            "meaning": {
                "features": "(T, F) sensory inputs of the cell",
                "states": "(T, N) neuron states after each step, columns = wiring neuron ids",
                "motor": "(T, M) motor outputs of the cell",
                "actions": "(T, A) actions sent to the environment",
                "rewards": "(T,) rewards",
                "cell_dt": "(T,) elapsed time given to the cell, cell time units",
                "episode": "(T,) episode index",
                "step": "(T,) step within the episode",
                "info/<key>": "(T,) numeric info entry that came with the observation of the step",
                "observations": "(T, ...) observations (omitted when not kept)",
            },
            "episodes": self.episodes,
            "clamped": [int(i) for i in self.clamped],
            "meta": self.meta,
        }
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Recording:
        """Read a folder written by :meth:`save`.

        Raises:
            ValueError: missing files, another format or version, or arrays that disagree with the manifest.
        """
        folder = Path(folder)
        manifest_path, data_path = folder / MANIFEST_FILE, folder / RECORDING_FILE
        if not manifest_path.is_file() or not data_path.is_file():
            raise ValueError(f"{folder} is not a recording: it needs {MANIFEST_FILE} and {RECORDING_FILE}")
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != _FORMAT or manifest.get("version") != _VERSION:
            raise ValueError(f"{manifest_path} is not a {_FORMAT} v{_VERSION} manifest")
        with np.load(data_path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        for name, spec in manifest["arrays"].items():
            if name not in arrays or list(arrays[name].shape) != spec["shape"]:
                raise ValueError(
                    f"{data_path}: array {name!r} is missing or does not have the shape the manifest "
                    f"says ({spec['shape']}); the recording is corrupt"
                )
        info = {k[len("info/") :]: v for k, v in arrays.items() if k.startswith("info/")}
        obs_keys = {k[len("observations/") :]: v for k, v in arrays.items() if k.startswith("observations/")}
        observations = obs_keys or arrays.get("observations")
        return cls(
            kind=manifest["kind"],
            neuron_types=arrays["neuron_types"],
            info=info,
            observations=observations,
            episodes=manifest["episodes"],
            clamped=manifest["clamped"],
            meta=manifest["meta"],
            **{name: arrays[name] for name in _ARRAYS},
        )


def _clamp_for(circuit: Circuit, neurons) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(mask, values)`` holding ``neurons`` (ids) at their silence value; None for ``neurons=None``.

    An empty list gives a mask that holds nothing: the step then runs the same (clamping, pure-torch) arithmetic
    as an ablation, so that an intact reference and its ablations differ only by the silenced neurons, not by
    float rounding between the native kernel and the sub-step path.
    """
    if neurons is None:
        return None
    ids = [int(i) for i in np.atleast_1d(neurons)]
    bad = [i for i in ids if not 0 <= i < circuit.units]
    if bad:
        raise ValueError(f"neuron ids must be in [0, {circuit.units}), got {bad}")
    mask = torch.zeros(circuit.units, dtype=torch.bool)
    mask[ids] = True
    return mask, circuit.silence_values


@torch.no_grad()
def record(
    circuit: Circuit,
    env,
    episodes: int,
    seed: int,
    *,
    keep_observations: bool = True,
    max_steps: int | None = None,
    silence=None,
    meta: dict[str, Any] | None = None,
) -> Recording:
    """Run ``circuit`` in ``env`` for ``episodes`` episodes (episode i reset with ``seed + i``) and record it.

    Args:
        circuit: from :func:`~ncp_control.inspect.circuit.circuit_from_policy`.
        env: a Gymnasium environment (already wrapped as the policy needs).
        episodes: number of episodes, >= 1.
        seed: reset seed of the first episode.
        keep_observations: store the observations (camera frames can be large).
        max_steps: stop an episode after this many steps (it then counts as truncated); None: the env decides.
        silence: neuron ids held at their silence value (leak potential for LTC, 0 for CfC) on every step, for a
            closed-loop ablation; None for the intact circuit ([] for the intact circuit on the ablation path).
        meta: JSON-ready description stored with the recording.
    """
    episodes = checks.positive_int("episodes", episodes)
    if max_steps is not None:
        max_steps = checks.positive_int("max_steps", max_steps)
    clamp = _clamp_for(circuit, silence)
    rows: dict[str, list] = {name: [] for name in _ARRAYS}
    infos: list[dict[str, Any]] = []
    observations: list[Any] = []
    summaries = []
    for index in range(episodes):
        kept = observations if keep_observations else None
        summaries.append(_record_episode(circuit, env, int(seed) + index, index, clamp, max_steps, rows, infos, kept))
    return Recording(
        kind=circuit.kind,
        neuron_types=circuit.neuron_types.astype("U7"),
        info=_info_arrays(infos),
        observations=_stack_observations(observations) if keep_observations else None,
        episodes=summaries,
        clamped=[] if clamp is None else [int(i) for i in np.atleast_1d(silence)],
        meta=dict(meta or {}, policy=circuit.name),
        **_stacked_rows(rows),
    )


def _record_episode(
    circuit: Circuit,
    env,
    seed: int,
    index: int,
    clamp: tuple[torch.Tensor, torch.Tensor] | None,
    max_steps: int | None,
    rows: dict[str, list],
    infos: list[dict[str, Any]],
    observations: list[Any] | None,
) -> dict[str, Any]:
    """Run episode ``index`` (reset with ``seed``), appending its steps to ``rows``, ``infos`` and ``observations``
    (None: not kept); returns the episode's summary."""
    obs, info = env.reset(seed=seed)
    state = circuit.initial_state(1)
    elapsed, total, t = None, 0.0, 0
    lateral: list[float] = []
    terminated = truncated = False
    while True:
        batch = {k: np.asarray(v)[None] for k, v in obs.items()} if isinstance(obs, dict) else np.asarray(obs)[None]
        features, cell_dt = circuit.encode(batch, elapsed)
        motor, state = circuit.step(features, state, cell_dt, clamp)
        action = np.asarray(circuit.act(motor))[0]
        if observations is not None:
            observations.append(obs)
        infos.append(info)
        next_obs, reward, terminated, truncated, info = env.step(action)
        rows["features"].append(features[0].numpy())
        rows["states"].append(circuit.to_ids(state)[0].numpy())
        rows["motor"].append(motor[0].numpy())
        rows["actions"].append(np.asarray(action, np.float32).reshape(-1))
        rows["rewards"].append(float(reward))
        rows["cell_dt"].append(float(cell_dt[0]))
        rows["episode"].append(index)
        rows["step"].append(t)
        if "lateral_offset_m" in info:
            lateral.append(abs(float(info["lateral_offset_m"])))
        total += float(reward)
        t += 1
        elapsed = info.get("elapsed_time")
        obs = next_obs
        capped = not (terminated or truncated) and max_steps is not None and t >= max_steps
        if terminated or truncated or capped:
            truncated = truncated or not terminated
            break
    summary = {
        "seed": seed,
        "return": total,
        "length": t,
        "terminated": bool(terminated),
        "truncated": bool(truncated),
        "stopped_at_max_steps": bool(capped),
    }
    if "is_success" in info:
        summary["is_success"] = bool(info["is_success"])
    if lateral:
        summary["mean_abs_lateral_m"] = float(np.mean(lateral))
    return summary


def _stacked_rows(rows: dict[str, list]) -> dict[str, np.ndarray]:
    """The recorded steps of :func:`record` as the arrays of a :class:`Recording`."""
    return {
        "features": np.stack(rows["features"]).astype(np.float32),
        "states": np.stack(rows["states"]).astype(np.float32),
        "motor": np.stack(rows["motor"]).astype(np.float32),
        "actions": np.stack(rows["actions"]).astype(np.float32),
        "rewards": np.asarray(rows["rewards"], np.float32),
        "cell_dt": np.asarray(rows["cell_dt"], np.float32),
        "episode": np.asarray(rows["episode"], np.int64),
        "step": np.asarray(rows["step"], np.int64),
    }


def _info_arrays(infos: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Numeric scalar info entries as (T,) float64 arrays (NaN where a step lacks the key)."""
    keys: list[str] = []
    for info in infos:
        for key, value in info.items():
            if key not in keys and isinstance(value, (numbers.Real, np.bool_, np.number)) and "/" not in key:
                keys.append(key)
            elif key not in keys and isinstance(value, np.ndarray) and value.size == 1 and "/" not in key:
                keys.append(key)
    out = {}
    for key in keys:
        column = []
        for info in infos:
            try:
                column.append(float(np.asarray(info[key]).reshape(())) if key in info else np.nan)
            except (TypeError, ValueError):
                column.append(np.nan)
        out[key] = np.asarray(column, np.float64)
    return out


def _stack_observations(observations: list[Any]):
    if observations and isinstance(observations[0], dict):
        return {k: np.stack([np.asarray(o[k]) for o in observations]) for k in observations[0]}
    return np.stack([np.asarray(o) for o in observations])


# ------------------------------------------------------------------------------------------------------------
# replay
# ------------------------------------------------------------------------------------------------------------
def _padded(recording: Recording, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, ...) rows -> (E, L, ...) per episode, zero-padded, and the (E, L) bool validity mask."""
    counts = np.bincount(recording.episode, minlength=recording.episode_count)
    length = int(np.max(counts))
    out = np.zeros((recording.episode_count, length, *values.shape[1:]), values.dtype)
    valid = np.zeros((recording.episode_count, length), bool)
    out[recording.episode, recording.step] = values
    valid[recording.episode, recording.step] = True
    return out, valid


@torch.no_grad()
def replay(
    circuit: Circuit,
    recording: Recording,
    *,
    silence=None,
    from_observations: bool = False,
    batch_clamp: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the circuit again over the recorded inputs (open loop: the inputs do not react to the outputs).

    All episodes run as one batch from a zero state, with the recorded elapsed times.

    Args:
        circuit: the circuit that made the recording (or a modified copy of it).
        recording: from :func:`record`.
        silence: neuron ids held at their silence value (open-loop ablation).
        from_observations: re-encode the recorded observations instead of using the recorded features (checks
            the encoder too; needs ``keep_observations``; not for dict observations).
        batch_clamp: advanced: ``(mask (K, N), values (K, N))`` by id, K clamp patterns run side by side; the
            outputs then get a leading K axis.
    Returns:
        ``(motor (T, M), states (T, N) by id)``, or ``(K, T, M), (K, T, N)`` with ``batch_clamp``.
    """
    if silence is not None and batch_clamp is not None:
        raise ValueError("give silence or batch_clamp, not both")
    clamp = _clamp_for(circuit, silence)
    if from_observations:
        if recording.observations is None or isinstance(recording.observations, dict):
            raise ValueError("from_observations needs array observations recorded with keep_observations=True")
        features = np.concatenate(
            [circuit.encode(recording.observations[i : i + 256])[0].numpy() for i in range(0, len(recording), 256)]
        )
    else:
        features = recording.features
    x, valid = _padded(recording, features.astype(np.float32))
    dt, _ = _padded(recording, recording.cell_dt.astype(np.float32))
    patterns = 1 if batch_clamp is None else int(batch_clamp[0].shape[0])
    episodes, length = valid.shape
    x_t = torch.as_tensor(x).repeat(patterns, 1, 1)  # (K*E, L, F), pattern-major
    dt_t = torch.as_tensor(dt).repeat(patterns, 1)
    if batch_clamp is not None:
        mask = batch_clamp[0].to(torch.bool).repeat_interleave(episodes, dim=0)
        values = batch_clamp[1].to(x_t.dtype).repeat_interleave(episodes, dim=0)
        clamp = (mask, values)
    state = circuit.initial_state(patterns * episodes)
    motors, states = [], []
    for t in range(length):
        motor, state = circuit.step(x_t[:, t], state, dt_t[:, t], clamp)
        motors.append(motor)
        states.append(circuit.to_ids(state))
    motor_out = torch.stack(motors, 1).reshape(patterns, episodes, length, -1).numpy()
    states_out = torch.stack(states, 1).reshape(patterns, episodes, length, -1).numpy()
    # (K, T, .) in episode-major order = recording order
    motor_out, states_out = motor_out[:, valid], states_out[:, valid]
    if batch_clamp is None:
        return motor_out[0], states_out[0]
    return motor_out, states_out


def closed_loop_ablation(
    circuit: Circuit,
    env,
    episodes: int,
    seed: int,
    neurons,
    *,
    baseline: Recording | None = None,
    max_steps: int | None = None,
) -> list[dict[str, Any]]:
    """Silence each neuron in turn while driving the environment and compare with the intact circuit.

    Other arguments are as in :func:`record`.

    Args:
        neurons: neuron ids to silence one at a time.
        baseline: a recording of the intact circuit on the same episodes (made here if None, with ``silence=[]``
            so that it shares the ablations' arithmetic; a recording made without it can differ by float rounding).
    Returns:
        One dict per neuron: ``neuron``, ``return`` (mean over episodes), ``delta_return`` (minus the baseline's),
        and when the env reports them ``completion`` / ``delta_completion`` (fraction of episodes with
        ``is_success``) and ``mean_abs_lateral_m`` / ``delta_mean_abs_lateral_m``.
    """
    if baseline is None:  # silence=[]: the intact circuit on the ablations' arithmetic path (see _clamp_for)
        baseline = record(circuit, env, episodes, seed, keep_observations=False, max_steps=max_steps, silence=[])
    base = _outcome(baseline.episodes)
    results = []
    for neuron in np.atleast_1d(neurons):
        silenced = record(
            circuit, env, episodes, seed, keep_observations=False, max_steps=max_steps, silence=[int(neuron)]
        )
        outcome = _outcome(silenced.episodes)
        row: dict[str, float] = {"neuron": int(neuron)}
        for key, value in outcome.items():
            row[key] = value
            row[f"delta_{key}"] = value - base[key] if key in base else float("nan")
        results.append(row)
    return results


def _outcome(episodes: list[dict[str, Any]]) -> dict[str, float]:
    out = {"return": float(np.mean([e["return"] for e in episodes]))}
    if all("is_success" in e for e in episodes):
        out["completion"] = float(np.mean([e["is_success"] for e in episodes]))
    if all("mean_abs_lateral_m" in e for e in episodes):
        out["mean_abs_lateral_m"] = float(np.mean([e["mean_abs_lateral_m"] for e in episodes]))
    return out
