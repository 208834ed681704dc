"""Sequence behaviour cloning by truncated backpropagation through time: one epoch over the episodes.

Each epoch deals the episodes (shuffled) into ``batch_size`` parallel streams (:meth:`SequenceData.streams`) and
cuts the streams into ``window``-frame windows: the hidden state is carried, detached, from one window to the next
of the same stream and zeroed where an episode starts, so the model is trained in the same carried-state regime it
is evaluated in (:func:`train_epoch`). Loss: mean squared error to the expert action, optionally weighted by
``1 + curve_weight * |target|`` (the paper's emphasis on curves). Adam, with the conv head at
``lr * conv_lr_scale`` (:func:`make_optimizer`); gradient norm clipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ncp_control.agents.imitation.config import BCConfig
from ncp_control.agents.imitation.demonstrations import Episode
from ncp_control.policies.imitation import SequencePolicy

__all__ = ["SequenceData", "train_epoch", "make_optimizer"]


class SequenceData:
    """Episodes concatenated into flat arrays for window sampling; ``N`` frames of ``E`` episodes in all.

    Attributes:
        observations: (N, H, W, 3) uint8 frames.
        actions: (N, A) float32 expert labels.
        dt: (N,) float32 seconds elapsed before each frame.
        starts: (N,) bool, true at each episode's first frame.
        offsets: (E,) index of each episode's first frame; lengths: (E,) its number of frames.
        step_seconds: the env's nominal step, the ``dt`` given to padding.
    """

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


def train_epoch(
    model: SequencePolicy,
    optimizer: torch.optim.Optimizer,
    data: SequenceData,
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


def make_optimizer(model: SequencePolicy, config: BCConfig) -> torch.optim.Optimizer:
    """Adam over ``model``: the conv head at ``config.lr * config.conv_lr_scale``, everything else at ``config.lr``."""
    conv = list(model.conv.parameters())
    conv_ids = {id(p) for p in conv}
    rest = [p for p in model.parameters() if id(p) not in conv_ids and p.requires_grad]
    return torch.optim.Adam(
        [{"params": conv, "lr": config.lr * config.conv_lr_scale}, {"params": rest, "lr": config.lr}]
    )
