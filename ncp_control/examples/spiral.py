"""Next-point prediction on a noisy spiral with an LTC (the classic from-scratch LTC tutorial task).

A 3-turn spiral in the plane, observed with Gaussian noise, is cut into short windows; an LTC on a random or NCP
wiring reads a window point by point (2 inputs) and predicts the next point at every step (2 motor neurons).
Training is plain Adam on the mean squared error; validation uses a second, independent noise draw of the same
spiral. ``scripts/spiral.py`` is the command line; ``train`` and ``run`` are the API.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch

from ncp_control.cells import LTC


@dataclass(frozen=True)
class SpiralConfig:
    """Settings of a spiral run (each field is a ``--flag`` of ``scripts/spiral.py``)."""

    wiring: Literal["ncp", "random"] = field(default="ncp", metadata={"help": "wiring: AutoNCP or Random"})
    units: int = field(default=16, metadata={"help": "number of LTC neurons (2 of them are motor neurons)"})
    sparsity: float = field(default=0.5, metadata={"help": "sparsity level of the wiring, in [0, 1)"})
    ode_unfolds: int = field(default=6, metadata={"help": "LTC solver sub-steps per point"})
    turns: float = field(default=3.0, metadata={"help": "turns of the spiral"})
    points: int = field(default=480, metadata={"help": "points along the spiral (radius grows linearly to 1)"})
    noise: float = field(default=0.02, metadata={"help": "standard deviation of the observation noise"})
    seq_len: int = field(default=16, metadata={"help": "points per training window"})
    batch_size: int = field(default=32, metadata={"help": "windows per optimiser step"})
    steps: int = field(default=400, metadata={"help": "optimiser steps"})
    lr: float = field(default=0.01, metadata={"help": "Adam learning rate"})
    seed: int = field(default=0, metadata={"help": "seed of the wiring, weights, noise and batches"})
    out_dir: str = field(default="runs/spiral", metadata={"help": "parent folder of the run folder"})
    plot: bool = field(default=True, metadata={"help": "save a plot of true vs predicted path"})

    def __post_init__(self):
        if self.wiring not in ("ncp", "random"):
            raise ValueError(f"wiring must be 'ncp' or 'random', got {self.wiring!r}")
        for name in ("units", "ode_unfolds", "points", "seq_len", "batch_size", "steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.units < 4:
            raise ValueError(f"units must be >= 4 (2 motor neurons plus hidden ones), got {self.units}")
        if not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if self.points < 2 * (self.seq_len + 1):
            raise ValueError(f"points must be at least 2 * (seq_len + 1) = {2 * (self.seq_len + 1)}")

    @property
    def run_name(self) -> str:
        """Run folder name: task, model, wiring, seed and start time."""
        return f"spiral_ltc-{self.wiring}_seed{self.seed}_{time.strftime('%Y%m%d-%H%M%S')}"


class SpiralResult(NamedTuple):
    model: LTC
    val_loss_before: float  #: validation MSE of the untrained model
    val_loss_after: float  #: validation MSE after training
    train_losses: list[float]  #: training MSE of every step


def spiral_points(cfg: SpiralConfig, noise_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The clean spiral and one noisy observation of it, each (P, 2) float32 (P = ``cfg.points``)."""
    theta = np.linspace(0.0, 2.0 * math.pi * cfg.turns, cfg.points)
    radius = np.linspace(0.05, 1.0, cfg.points)
    clean = np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1).astype(np.float32)
    noisy = clean + np.random.default_rng(noise_seed).normal(0.0, cfg.noise, clean.shape).astype(np.float32)
    return clean, noisy


def windows(points: np.ndarray, seq_len: int, stride: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-point targets of windows of ``points`` (P, 2): two (W, seq_len, 2) tensors."""
    starts = range(0, len(points) - seq_len, stride)
    x = np.stack([points[s : s + seq_len] for s in starts])
    y = np.stack([points[s + 1 : s + seq_len + 1] for s in starts])
    return torch.from_numpy(x), torch.from_numpy(y)


def make_wiring(cfg: SpiralConfig) -> Any:
    """An AutoNCP or Random wiring with ``cfg.units`` neurons and 2 motor neurons."""
    from ..wirings import AutoNCP, Random

    if cfg.wiring == "ncp":
        return AutoNCP(cfg.units, 2, sparsity_level=cfg.sparsity, seed=cfg.seed)
    return Random(cfg.units, output_dim=2, sparsity_level=cfg.sparsity, random_seed=cfg.seed)


@torch.no_grad()
def evaluate(model: LTC, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared error of the predictions for inputs ``x`` (W, L, 2) against targets ``y`` (W, L, 2)."""
    return float(torch.mean((model(x)[0] - y) ** 2))


def train(cfg: SpiralConfig) -> SpiralResult:
    """Train an LTC on noisy spiral windows; report validation MSE before and after."""
    torch.manual_seed(cfg.seed)
    _, train_points = spiral_points(cfg, noise_seed=2 * cfg.seed)
    _, val_points = spiral_points(cfg, noise_seed=2 * cfg.seed + 1)
    x_train, y_train = windows(train_points, cfg.seq_len)
    x_val, y_val = windows(val_points, cfg.seq_len, stride=max(1, cfg.seq_len // 4))

    model = LTC(2, make_wiring(cfg), ode_unfolds=cfg.ode_unfolds)
    before = evaluate(model, x_val, y_val)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    generator = torch.Generator().manual_seed(cfg.seed)
    losses = []
    for _ in range(cfg.steps):
        batch = torch.randint(0, len(x_train), (cfg.batch_size,), generator=generator)
        loss = torch.mean((model(x_train[batch])[0] - y_train[batch]) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return SpiralResult(model, before, evaluate(model, x_val, y_val), losses)


@torch.no_grad()
def plot_predictions(model: LTC, cfg: SpiralConfig, path: Path) -> None:
    """Plot the clean spiral, the noisy validation points and the model's one-step predictions.

    Predictions come from consecutive validation windows of ``cfg.seq_len`` points, each started from a zero
    state, as in training.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clean, noisy = spiral_points(cfg, noise_seed=2 * cfg.seed + 1)
    x, _ = windows(noisy, cfg.seq_len, stride=cfg.seq_len)
    predicted = model(x)[0].reshape(-1, 2).numpy()  # prediction of point t + 1, in order
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot(clean[:, 0], clean[:, 1], color="0.6", lw=1, label="true path")
    ax.scatter(noisy[:, 0], noisy[:, 1], s=4, color="0.3", label="noisy observations")
    ax.plot(predicted[:, 0], predicted[:, 1], color="tab:red", lw=1, label="LTC next-point prediction")
    ax.set_aspect("equal")
    ax.set_title(f"LTC ({cfg.wiring} wiring, {cfg.units} neurons) on a {cfg.turns:g}-turn spiral")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(cfg: SpiralConfig) -> tuple[SpiralResult, Path]:
    """Train, then write ``config.json``, ``metrics.json`` and (if ``cfg.plot``) ``spiral.png`` to a run folder."""
    result = train(cfg)
    run_dir = Path(cfg.out_dir) / cfg.run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    metrics = {
        "val_loss_before": result.val_loss_before,
        "val_loss_after": result.val_loss_after,
        "final_train_loss": result.train_losses[-1],
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if cfg.plot:
        plot_predictions(result.model, cfg, run_dir / "spiral.png")
    return result, run_dir


# ---------------------------------------------------------------------------- command line from the dataclass
def argument_parser(description: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one ``--flag`` per ``SpiralConfig`` field (its help and default)."""
    parser = argparse.ArgumentParser(
        description=description or __doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    for f in dataclasses.fields(SpiralConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=f.metadata["help"])
        elif f.name == "wiring":
            parser.add_argument(flag, choices=("ncp", "random"), default=f.default, help=f.metadata["help"])
        else:
            kind = {"int": int, "float": float, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]
            parser.add_argument(flag, type=kind, default=f.default, help=f.metadata["help"])
    return parser


def config_from_args(args: argparse.Namespace) -> SpiralConfig:
    return SpiralConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SpiralConfig)})
