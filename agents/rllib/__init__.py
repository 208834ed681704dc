"""PPO on RLlib with NCP actors: one training run whose rollouts spread over env runners on a Ray cluster.

- :mod:`.config`: :func:`resolve_config` (train-ppo's presets in RLlib's names, ``agents/configs/rllib.json``),
  :func:`validate_config`, :func:`ppo_view`. No ray, no torch.
- :mod:`.load`: :func:`load_predictor`, a run folder as a Predictor (no ray).
- :mod:`.module`: :class:`~.module.NCPRLModule`, the NCP actor-critic as an RLlib ``RLModule`` (imports ray).
- :mod:`.train`: :func:`~.train.train`, the run folder's layout (imports ray where it trains).

Needs the ``rllib`` extra (``pip install "ncp-control[rllib]"``) to train; run folders load without it.

May import: :mod:`ncp_control` (the policies), :mod:`ncp_control.agents.ppo` (presets, the SB3 policy, the run
folder's data files), :mod:`ncp_control.agents.runs`, :mod:`ncp_control.agents.evaluation`,
:mod:`ncp_control.agents.study.cluster` (starting or joining Ray, shared with studies); not the CLI.
"""

from __future__ import annotations

from ncp_control.agents.rllib.config import (
    POLICIES,
    PRESETS_PATH,
    RLLIB_EXTRA_HINT,
    ppo_view,
    resolve_config,
    validate_config,
)
from ncp_control.agents.rllib.load import load_predictor

__all__ = [
    "POLICIES",
    "PRESETS_PATH",
    "RLLIB_EXTRA_HINT",
    "load_predictor",
    "ppo_view",
    "resolve_config",
    "validate_config",
]
