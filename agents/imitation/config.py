"""Settings of an imitation run: :class:`BCConfig`, the named :data:`PRESETS` and the DAgger :func:`beta_schedule`.

A run's settings are stored in its ``config.json`` under ``"training"`` (:meth:`BCConfig.to_dict`) and read back
on resume (:meth:`BCConfig.from_dict`), which refuses unknown settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ncp_control import checks
from ncp_control.agents.imitation.collection import SteeringNoise
from ncp_control.policies.conv import PAPER_CHANNELS
from ncp_control.policies.imitation import MODEL_KINDS

__all__ = ["BCConfig", "PRESETS", "PRESET_ENV_KWARGS", "preset_config", "beta_schedule"]


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
        checks.choice("model", self.model, MODEL_KINDS)
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
        return {
            f.name: (getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        }

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
    checks.choice("preset", name, sorted(PRESETS))
    settings = {**PRESETS[name], **overrides}
    env_id = settings.get("env_id", BCConfig.env_id)
    settings.setdefault("env_kwargs", dict(PRESET_ENV_KWARGS[name].get(env_id, {})))
    return BCConfig.from_dict(settings)


def beta_schedule(config: BCConfig, round_index: int) -> float:
    """Probability that the expert executes a step in data round ``round_index`` (1 for the demonstrations)."""
    if round_index == 0:
        return 1.0
    return float(config.beta0 * config.beta_decay ** (round_index - 1))
