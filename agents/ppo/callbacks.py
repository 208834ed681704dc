"""Stable-Baselines3 callbacks for long runs: checkpoints by wall time, and progress lines that read well in a log.

:class:`WallTimeCheckpoint` saves the model (and the ``VecNormalize`` statistics) as
``checkpoints/model_<N>_steps.zip`` at the start of a rollout once ``seconds`` of wall time have passed since the
last checkpoint. At the start of a rollout the weights hold every update so far and ``N`` counts exactly the steps
they were trained on, so a resumed run repeats nothing and skips nothing; a kill loses at most ``seconds`` plus
one rollout and update. SB3's ``CheckpointCallback`` (by steps) saves mid-rollout instead, which ``--resume``
also accepts.

:class:`ProgressLines` prints one line per rollout at most every ``every_seconds`` (and after the last rollout):
steps done, speed, the mean return of the last 100 training episodes, elapsed and estimated remaining time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize


class WallTimeCheckpoint(BaseCallback):
    """Checkpoint every ``seconds`` of wall time (checked at rollout starts); keeps only its latest checkpoint."""

    def __init__(
        self,
        folder: str | Path,
        seconds: float,
        prefix: str = "model",
        also_save: Callable[[Any, int], list[Path]] | None = None,
    ) -> None:
        """``also_save(model, num_timesteps)`` writes further files of the same checkpoint (e.g. the policy as data)
        and returns their paths, dropped with the checkpoint when the next one is written."""
        super().__init__()
        self.also_save = also_save
        if not seconds > 0:
            raise ValueError(f"seconds must be > 0, got {seconds!r}")
        self.folder, self.seconds, self.prefix = Path(folder), float(seconds), prefix
        self._last = time.monotonic()
        self._written: list[Path] = []
        self.saves = 0

    def _on_training_start(self) -> None:
        self._last = time.monotonic()

    def _on_rollout_start(self) -> None:
        if time.monotonic() - self._last >= self.seconds and self.num_timesteps > 0:
            self.save()

    def _on_step(self) -> bool:
        return True

    def save(self) -> Path:
        """Write ``model_<N>_steps.zip`` (+ ``model_vecnormalize_<N>_steps.pkl``) and drop this callback's previous."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.prefix}_{self.num_timesteps}_steps.zip"
        stats = self.folder / f"{self.prefix}_vecnormalize_{self.num_timesteps}_steps.pkl"
        if not path.exists():  # a step checkpoint at the same count is the same state
            self.model.save(str(path))
            venv = self.model.get_vec_normalize_env()
            if isinstance(venv, VecNormalize):
                venv.save(str(stats))
            extra = list(self.also_save(self.model, self.num_timesteps)) if self.also_save else []
            for old in self._written:
                old.unlink(missing_ok=True)
            self._written = [path, stats, *extra]
        self._last = time.monotonic()
        self.saves += 1
        return path


class ProgressLines(BaseCallback):
    """One progress line per rollout, at most every ``every_seconds`` (the first rollout always)."""

    def __init__(
        self,
        total_timesteps: int,
        every_seconds: float = 30.0,
        write: Callable[[str], None] = lambda line: print(line, flush=True),
    ) -> None:
        super().__init__()
        self.total, self.every, self.write = int(total_timesteps), float(every_seconds), write
        self._t0 = self._last = 0.0
        self._start_steps = 0

    def _on_training_start(self) -> None:
        self._t0 = time.monotonic()
        self._last = -float("inf")
        self._start_steps = self.num_timesteps

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        now = time.monotonic()
        if now - self._last < self.every and self.num_timesteps < self.total:  # the last rollout always reports
            return
        self._last = now
        elapsed = now - self._t0
        done = self.num_timesteps - self._start_steps
        speed = done / elapsed if elapsed > 0 else float("nan")
        left = (self.total - self.num_timesteps) / speed if speed > 0 else float("nan")
        episodes = [info["r"] for info in self.model.ep_info_buffer or []]
        ret = (
            f"mean return (last {len(episodes)} episodes) {np.mean(episodes):.2f}"
            if episodes
            else "no episode ended yet"
        )
        self.write(
            f"steps {self.num_timesteps}/{self.total} ({self.num_timesteps / max(self.total, 1):.0%}), "
            f"{speed:.0f} steps/s, {ret}, elapsed {_clock(elapsed)}, left ~{_clock(left)}"
        )


def _clock(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
