"""Closed-loop evaluation of a predictor on held-out roads (:func:`evaluate_heldout`), never on a training road."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import gymnasium as gym

from ncp_control.agents.evaluation.episodes import evaluate
from ncp_control.agents.imitation.seeds import HELDOUT_SEED_START, heldout_road_seeds

__all__ = ["evaluate_heldout"]


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

    return evaluate(
        predictor,
        env_id,
        episodes,
        seed,
        env_kwargs=dict(env_kwargs or {}),
        wrappers=tuple(wrappers),
        progress=progress,
    )
