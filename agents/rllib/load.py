"""An RLlib run folder (``kind="rllib"``) as a Predictor: its ``policy.pt`` is a PPO run's, read as data by
:func:`ncp_control.agents.ppo.load_predictor` through :func:`~.config.ppo_view`. Needs neither ray nor RLlib."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ncp_control.agents.rllib.config import ppo_view, validate_config


def load_predictor(run_dir: str | Path, config: dict[str, Any]):
    """The run's final actor (or its last data checkpoint) as a :class:`~ncp_control.agents.ppo.PPOPredictor`."""
    from ncp_control.agents.ppo.load import load_predictor as load_ppo

    validate_config(config)
    return load_ppo(run_dir, ppo_view(config))
