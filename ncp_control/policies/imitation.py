"""Camera-to-steering sequence models for imitation learning: NCP (LTC or CfC), LSTM and a feed-forward CNN.

All four share the :class:`~ncp_control.policies.conv.ConvHead` (each frame -> 32 features) and differ only in what
turns the feature sequence into steering:

========== ====================================================================================================
kind       what follows the conv head
========== ====================================================================================================
``ncp-ltc`` the NCP paper's 19-neuron wiring (12 inter, 6 command, 1 motor) of liquid time-constant neurons
``ncp-cfc`` the same wiring of closed-form continuous-time (CfC) neurons
``lstm``    an LSTM with 64 units
``cnn``     no memory: a 64-unit ReLU layer on the current frame's features
========== ====================================================================================================

The NCP kinds' motor neurons *are* the actions (the LTC cell's own affine output map scales them; a CfC motor
neuron is already in (-1, 1)); an extra affine read-out after the single CfC motor neuron made training saturate
it and stall (measured), so only ``lstm`` and ``cnn`` end in an affine read-out. Recurrent kinds step a
:class:`~ncp_control.policies.core.RecurrentCore` with the elapsed time of each frame measured in *nominal
frames* (``elapsed seconds / config.step_seconds``): a regular camera gives the cells a time step of 1, the scale
the LTC/CfC initialisations are made for (with steps of a few hundredths the LTC state barely moves and training
stalls, measured), while dropped or irregular frames still show as longer steps.

A :class:`SequencePolicy` is a *Predictor*: ``predict(observation, state, episode_start)`` has stable-baselines3's
recurrent semantics, so the same evaluation code drives it and SB3 models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ncp_control import checks
from ncp_control import wirings as _wirings
from ncp_control.policies.conv import PAPER_CHANNELS, ConvHead
from ncp_control.policies.core import RecurrentCore, make_core

__all__ = [
    "MODEL_KINDS",
    "ModelKind",
    "NCPShape",
    "ModelConfig",
    "SequencePolicy",
    "build_model",
    "parameter_counts",
    "format_parameter_table",
]

ModelKind = Literal["ncp-ltc", "ncp-cfc", "lstm", "cnn"]
MODEL_KINDS: tuple[str, ...] = get_args(ModelKind)


@dataclass(frozen=True)
class NCPShape:
    """Arguments of the NCP wiring; the defaults are the NCP paper's lane-keeping network (19 neurons)."""

    inter_neurons: int = 12
    command_neurons: int = 6
    motor_neurons: int = 1
    sensory_fanout: int = 6
    inter_fanout: int = 4
    recurrent_command_synapses: int = 6
    motor_fanin: int = 6
    seed: int = 22222
    """seed of the random wiring draw (the same seed gives the same synapses)"""

    def build(self) -> Any:
        """A fresh (unbuilt) NCP wiring with these arguments."""
        return _wirings.NCP(
            self.inter_neurons,
            self.command_neurons,
            self.motor_neurons,
            self.sensory_fanout,
            self.inter_fanout,
            self.recurrent_command_synapses,
            self.motor_fanin,
            seed=self.seed,
        )


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model (stored in a run's ``config.json`` under ``"model"``)."""

    kind: str
    """one of ``ncp-ltc``, ``ncp-cfc``, ``lstm``, ``cnn``"""
    observation_shape: tuple[int, int, int]
    """camera image shape (H, W, 3)"""
    action_size: int = 1
    """length of the action vector (1: normalised curvature)"""
    features: int = 32
    """conv features per frame (a multiple of ``conv_channels[-1]``)"""
    conv_channels: tuple[int, ...] = PAPER_CHANNELS
    """output channels of the five convolutions"""
    ncp: NCPShape = field(default_factory=NCPShape)
    """wiring of the ``ncp-*`` kinds"""
    lstm_units: int = 64
    """hidden units of the ``lstm`` kind"""
    cnn_hidden: int = 64
    """hidden units of the ``cnn`` kind's dense layer"""
    ode_unfolds: int = 6
    """LTC solver steps per frame"""
    ltc_input_mapping: str = "none"
    """LTC per-feature input map (``none``/``linear``/``affine``); ``none`` because the conv head's dense output is
    already affine, which also gives the paper's recurrent parameter count (1,059 for the 19-neuron NCP)"""
    step_seconds: float = 0.05
    """elapsed time per frame assumed by :meth:`SequencePolicy.predict` when none is given (the env's step)"""

    def __post_init__(self) -> None:
        checks.choice("model kind", self.kind, MODEL_KINDS)
        shape = tuple(int(s) for s in self.observation_shape)
        if len(shape) != 3 or shape[2] != 3:
            raise ValueError(f"observation_shape must be (H, W, 3), got {self.observation_shape}")
        object.__setattr__(self, "observation_shape", shape)
        object.__setattr__(self, "conv_channels", tuple(int(c) for c in self.conv_channels))
        if isinstance(self.ncp, Mapping):
            object.__setattr__(self, "ncp", NCPShape(**self.ncp))
        for name in ("action_size", "features", "lstm_units", "cnn_hidden", "ode_unfolds"):
            checks.positive_int(name, getattr(self, name))
        if self.kind.startswith("ncp") and self.ncp.motor_neurons != self.action_size:
            raise ValueError(
                f"an NCP's motor neurons are its actions: motor_neurons={self.ncp.motor_neurons} must equal "
                f"action_size={self.action_size}"
            )
        if self.ltc_input_mapping not in ("none", "linear", "affine"):
            raise ValueError(f"ltc_input_mapping must be 'none', 'linear' or 'affine', got {self.ltc_input_mapping!r}")
        if not self.step_seconds > 0:
            raise ValueError(f"step_seconds must be positive, got {self.step_seconds}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; :meth:`from_dict` inverts it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}; allowed: {sorted(known)}")
        return cls(**dict(data))


class SequencePolicy(nn.Module):
    """Conv head + (recurrent core | dense layer) + affine read-out; see the module docstring.

    State: a flat ``(B, state_size)`` tensor (``state_size`` is 0 for ``cnn``). Build with :func:`build_model`.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.conv = ConvHead(config.observation_shape, config.features, config.conv_channels)
        self.core: RecurrentCore | None
        self.readout: nn.Module
        if config.kind == "cnn":
            self.core = None
            self.readout = nn.Sequential(
                nn.Linear(config.features, config.cnn_hidden),
                nn.ReLU(),
                nn.Linear(config.cnn_hidden, config.action_size),
            )
        else:
            if config.kind == "lstm":
                self.core = make_core("lstm", config.features, config.lstm_units)
                self.readout = nn.Linear(self.core.output_size, config.action_size)
            else:
                wiring = config.ncp.build()
                if config.kind == "ncp-ltc":
                    self.core = make_core(
                        "ltc",
                        config.features,
                        wiring,
                        ode_unfolds=config.ode_unfolds,
                        input_mapping=config.ltc_input_mapping,
                    )
                else:
                    self.core = make_core("cfc", config.features, wiring)
                self.readout = nn.Identity()  # motor neurons are the actions

    @property
    def observation_space(self) -> gym.spaces.Box:
        """The camera images this model takes: ``Box(0, 255, (H, W, 3), uint8)``."""
        return gym.spaces.Box(0, 255, self.config.observation_shape, np.uint8)

    @property
    def action_space(self) -> gym.spaces.Box:
        """The actions it outputs: ``Box(-1, 1, (action_size,), float32)``."""
        return gym.spaces.Box(-1.0, 1.0, (self.config.action_size,), np.float32)

    @property
    def state_size(self) -> int:
        return 0 if self.core is None else int(self.core.state_size)

    @property
    def is_recurrent(self) -> bool:
        return self.core is not None

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        """``(batch_size, state_size)`` zeros."""
        return torch.zeros(batch_size, self.state_size, device=device)

    def forward(
        self,
        observations: torch.Tensor,
        state: torch.Tensor,
        dt: torch.Tensor,
        episode_starts: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run a batch of sequences.

        Args:
            observations: ``(B, T, H, W, 3)`` uint8 (or float in [0, 1]) frames.
            state: ``(B, state_size)`` state before the first frame.
            dt: ``(B, T)`` elapsed seconds since the previous frame (clamped positive by the core).
            episode_starts: ``(B, T)`` bool/float; the state is zeroed *before* step ``t`` where it is true.
        Returns:
            actions ``(B, T, action_size)`` (not clipped) and the state after the last frame ``(B, state_size)``.
        """
        if observations.dim() != 5:
            raise ValueError(f"observations must be (B, T, H, W, 3), got shape {tuple(observations.shape)}")
        b, t = observations.shape[:2]
        for name, value in (("dt", dt), ("episode_starts", episode_starts)):
            if tuple(value.shape) != (b, t):
                raise ValueError(f"{name} must have shape (B, T) = {(b, t)}, got {tuple(value.shape)}")
        if tuple(state.shape) != (b, self.state_size):
            raise ValueError(f"state must have shape {(b, self.state_size)}, got {tuple(state.shape)}")
        features = self.conv(observations.reshape(b * t, *observations.shape[2:])).reshape(b, t, -1)
        if self.core is None:
            return self.readout(features), state
        frames = dt.to(features.dtype) / self.config.step_seconds  # elapsed time in nominal frames
        outputs, state = self.core.sequence(features, state, frames, episode_starts)
        return self.readout(outputs), state

    @torch.no_grad()
    def predict(
        self,
        observation: np.ndarray,
        state: np.ndarray | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
        *,
        elapsed_time: np.ndarray | float | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """One control step with stable-baselines3's recurrent ``predict`` semantics.

        Args:
            observation: ``(n_envs, H, W, 3)`` uint8 frames, or one ``(H, W, 3)`` frame.
            state: ``(n_envs, state_size)`` from the previous call, or None for a fresh start.
            episode_start: ``(n_envs,)`` bool; where true the state is reset before this frame.
            deterministic: accepted for compatibility; the policy is deterministic.
            elapsed_time: seconds since the previous frame, a scalar or ``(n_envs,)``; defaults to
                ``config.step_seconds``.
        Returns:
            actions ``(n_envs, action_size)`` clipped to [-1, 1] (``(action_size,)`` for a single frame) and the
            new state ``(n_envs, state_size)`` as float32 numpy (None for ``cnn``, as SB3's feed-forward models).
        """
        obs = np.asarray(observation)
        single = obs.shape == self.config.observation_shape
        if single:
            obs = obs[None]
        if obs.shape[1:] != self.config.observation_shape:
            raise ValueError(
                f"observation must be (n_envs, {', '.join(map(str, self.config.observation_shape))}), got {obs.shape}"
            )
        n = obs.shape[0]
        device = next(self.parameters()).device
        if state is None or not self.is_recurrent:
            h = self.initial_state(n, device)
        else:
            h = torch.as_tensor(np.asarray(state, dtype=np.float32), device=device)
        starts = np.zeros(n, dtype=bool) if episode_start is None else np.asarray(episode_start, dtype=bool)
        if starts.shape != (n,):
            raise ValueError(f"episode_start must have shape ({n},), got {starts.shape}")
        dt = self.config.step_seconds if elapsed_time is None else elapsed_time
        dt_t = torch.as_tensor(np.broadcast_to(np.asarray(dt, dtype=np.float32), (n,)).copy(), device=device)
        was_training = self.training
        self.eval()
        actions, h = self(
            torch.as_tensor(obs, device=device)[:, None],
            h,
            dt_t[:, None],
            torch.as_tensor(starts, device=device)[:, None],
        )
        self.train(was_training)
        act = actions[:, 0].clamp(-1.0, 1.0).cpu().numpy()
        new_state = h.cpu().numpy().astype(np.float32) if self.is_recurrent else None
        return (act[0] if single else act), new_state


def build_model(config: ModelConfig | Mapping[str, Any], seed: int | None = None) -> SequencePolicy:
    """Build a :class:`SequencePolicy` (weights drawn from ``torch.manual_seed(seed)`` when a seed is given)."""
    if not isinstance(config, ModelConfig):
        config = ModelConfig.from_dict(config)
    if seed is not None:
        torch.manual_seed(seed)
    return SequencePolicy(config)


def _effective_count(module: nn.Module, run: Any) -> int:
    """Trainable entries that can receive a gradient: masked-out synapses of a sparse wiring do not count.

    ``run`` computes a scalar from ``module``; its gradient is taken once on random inputs.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.grad = None
    run().backward()
    count = sum(int((p.grad != 0).sum()) for p in params if p.grad is not None)
    for p in params:
        p.grad = None
    return count


def parameter_counts(model: SequencePolicy) -> dict[str, Any]:
    """Parameter and wiring counts of one model.

    Returns a dict with ``model`` (kind), ``conv`` (conv head), ``recurrent`` (trainable recurrent-core entries
    that can receive a gradient, i.e. without masked-out synapses; 0 for ``cnn``), ``recurrent_stored`` (the
    dense tensors as stored), ``readout`` (everything after the core, incl. the CNN's dense layer), ``total``
    (conv + recurrent + readout), ``neurons`` and ``synapses`` (wired NCP kinds: internal + sensory synapses;
    None otherwise).
    """
    conv = sum(p.numel() for p in model.conv.parameters() if p.requires_grad)
    readout = sum(p.numel() for p in model.readout.parameters() if p.requires_grad)
    recurrent = recurrent_stored = 0
    neurons = synapses = None
    if model.core is not None:
        core = model.core
        recurrent_stored = sum(p.numel() for p in core.parameters() if p.requires_grad)
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(3, 4, model.config.features, generator=generator)
        dt = torch.ones(3, 4)  # one nominal frame per step
        starts = torch.zeros(3, 4)
        state0 = torch.randn(3, core.state_size, generator=generator) * 0.1

        def run() -> torch.Tensor:
            out, state = core.sequence(x, state0, dt, starts)
            return out.sum() + state.sum()

        recurrent = _effective_count(core, run)
        neurons = int(core.state_size) if model.config.kind != "lstm" else model.config.lstm_units
        wiring = getattr(core, "wiring", None)
        if model.config.kind.startswith("ncp") and wiring is not None:
            synapses = int(
                np.count_nonzero(wiring.adjacency_matrix) + np.count_nonzero(wiring.sensory_adjacency_matrix)
            )
    return {
        "model": model.config.kind,
        "conv": conv,
        "recurrent": recurrent,
        "recurrent_stored": recurrent_stored,
        "readout": readout,
        "total": conv + recurrent + readout,
        "neurons": neurons,
        "synapses": synapses,
    }


def format_parameter_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of :func:`parameter_counts` rows."""
    columns = ("model", "conv", "recurrent", "recurrent_stored", "readout", "total", "neurons", "synapses")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [
            "-" if row.get(c) is None else f"{row[c]:,}" if isinstance(row[c], int) else str(row[c]) for c in columns
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
