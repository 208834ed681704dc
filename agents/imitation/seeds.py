"""Road seeds: training roads and held-out evaluation roads never share a reset seed.

Training roads use reset seeds in ``[0, TRAIN_SEED_LIMIT)``; held-out evaluation roads use seeds
``>= HELDOUT_SEED_START`` (= ``TRAIN_SEED_LIMIT`` = 1,000,000).
:class:`~ncp_control.agents.imitation.demonstrations.Demonstrations` refuses to store an episode from a held-out
road (:func:`check_training_seed`) and :func:`~ncp_control.agents.imitation.heldout.evaluate_heldout` refuses a
training seed (:func:`heldout_road_seeds`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["TRAIN_SEED_LIMIT", "HELDOUT_SEED_START", "training_road_seeds", "heldout_road_seeds", "check_training_seed"]

#: Training road seeds are drawn from ``[0, TRAIN_SEED_LIMIT)``.
TRAIN_SEED_LIMIT = 1_000_000
#: Held-out evaluation roads use reset seeds from here on (disjoint from every training seed).
HELDOUT_SEED_START = TRAIN_SEED_LIMIT


def training_road_seeds(seed: int, round_index: int, count: int) -> list[int]:
    """``count`` distinct training road seeds for data round ``round_index`` of a run seeded ``seed``.

    Drawn from ``[0, TRAIN_SEED_LIMIT)`` by a generator seeded with ``(seed, round_index)``, so reruns and resumed
    runs see the same roads.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    rng = np.random.default_rng([int(seed), int(round_index), 0x5EED])
    return [int(s) for s in rng.choice(TRAIN_SEED_LIMIT, size=count, replace=False)]


def heldout_road_seeds(start: int, count: int) -> list[int]:
    """The held-out road seeds ``start, start + 1, ..., start + count - 1``; ``start`` must be ``>= HELDOUT_SEED_START``."""
    if start < HELDOUT_SEED_START:
        raise ValueError(f"held-out road seeds start at {HELDOUT_SEED_START:,}; seed {start} is a training road seed")
    return list(range(start, start + count))


def check_training_seed(road_seed: int) -> None:
    """Raise ``ValueError`` unless ``road_seed`` is a training road seed (in ``[0, TRAIN_SEED_LIMIT)``)."""
    if not 0 <= road_seed < TRAIN_SEED_LIMIT:
        raise ValueError(
            f"road seed {road_seed} is outside the training range [0, {TRAIN_SEED_LIMIT:,}); "
            "held-out roads must never enter training data"
        )
