"""Training checkpoints: ``checkpoint.pt`` written after every epoch and by wall time inside one, and resuming from it.

``checkpoint.pt`` holds ``model`` and ``optimizer`` (state dicts), ``round`` and ``epoch`` (epochs of that round
done), ``seconds`` (training seconds of the run so far), ``torch_rng`` (torch's RNG state) and, when written
inside an epoch, ``partial``: the position in that epoch (see
:func:`~ncp_control.agents.imitation.sequence_bc.train_epoch`). It is written with ``save_tensors`` and read with
``torch.load(weights_only=True)``: tensors and plain data, never code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ncp_control.agents.imitation.config import BCConfig
from ncp_control.agents.runs.files import load_tensors, save_tensors
from ncp_control.policies.imitation import SequencePolicy

__all__ = ["Checkpointer", "ResumePoint", "restore_checkpoint", "checkpoint_part"]


class Checkpointer:
    """Writes ``checkpoint.pt`` after each epoch and, every ``interval`` seconds of wall time, inside one."""

    def __init__(
        self,
        model: SequencePolicy,
        optimizer: torch.optim.Optimizer,
        path: Path,
        elapsed_before: float,
        interval: float,
    ) -> None:
        self.model, self.optimizer, self.path, self.interval = model, optimizer, path, interval
        self.elapsed_before = elapsed_before  # training seconds of the run before this process
        self.t0 = self.last = time.perf_counter()

    def seconds(self) -> float:
        """Training seconds of the run so far."""
        return self.elapsed_before + time.perf_counter() - self.t0

    def save(self, round_index: int, epoch: int, position: dict[str, Any] | None = None) -> float:
        """``epoch`` epochs of the round done, plus ``position`` inside the next one; returns :meth:`seconds`."""
        seconds = self.seconds()
        save_tensors(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "round": round_index,
                "epoch": epoch,
                "seconds": seconds,
                "torch_rng": torch.get_rng_state(),
                **({"partial": position} if position is not None else {}),
            },
            self.path,
        )
        self.last = time.perf_counter()
        return seconds

    def ticker(self, round_index: int, epoch: int) -> Callable[[dict[str, Any]], None]:
        """The ``tick`` of :func:`~ncp_control.agents.imitation.sequence_bc.train_epoch` for epoch ``epoch``: a
        checkpoint once ``interval`` has passed."""

        def tick(position: dict[str, Any]) -> None:
            if self.interval and time.perf_counter() - self.last >= self.interval:
                self.save(round_index, epoch, position)

        return tick


@dataclass(frozen=True)
class ResumePoint:
    """Where training continues: data round ``round``, its epoch ``epoch`` (from ``partial``, the position inside
    that epoch, when the checkpoint was written inside it), with ``seconds`` of training already done."""

    round: int = 0
    epoch: int = 0
    seconds: float = 0.0
    partial: dict[str, Any] | None = None


def restore_checkpoint(
    path: Path, model: SequencePolicy, optimizer: torch.optim.Optimizer, config: BCConfig
) -> ResumePoint:
    """Load ``path`` into ``model``, ``optimizer`` and torch's RNG; returns where training continues.

    Raises:
        ValueError: the checkpoint is missing, damaged, holds code, or lacks an entry; the message names the file.
    """
    ckpt = load_tensors(path, "checkpoint")  # weights only: tensors and plain data
    model.load_state_dict(checkpoint_part(ckpt, "model", path))
    optimizer.load_state_dict(checkpoint_part(ckpt, "optimizer", path))
    start_round, start_epoch = int(ckpt.get("round", 0)), int(ckpt.get("epoch", 0))
    elapsed_before = float(ckpt.get("seconds", 0.0))
    torch.set_rng_state(checkpoint_part(ckpt, "torch_rng", path))
    partial = ckpt.get("partial")  # a checkpoint written by wall time inside epoch start_epoch
    if partial is None and start_epoch >= config.epochs_of_round(start_round):
        start_round, start_epoch = start_round + 1, 0
    return ResumePoint(round=start_round, epoch=start_epoch, seconds=elapsed_before, partial=partial)


def checkpoint_part(checkpoint: Any, key: str, path: Path) -> Any:
    """``checkpoint[key]`` of the checkpoint read from ``path``; ``ValueError`` naming the file if it is missing."""
    if not isinstance(checkpoint, dict) or key not in checkpoint:
        raise ValueError(f"checkpoint {path} is malformed: it has no {key!r} entry")
    return checkpoint[key]
