"""Recurrent imitation learning for camera lane keeping: demonstrations, sequence BC with truncated BPTT, DAgger.

The NCP paper (Lechner et al. 2020) trains its camera-to-steering circuit by imitation on 16-frame sequences. This
subpackage does the same for any env with the ``LaneKeeping-v0`` interface (uint8 frames, one steering action in
[-1, 1], lane-keeping ``info``), for the four models of :mod:`ncp_control.policies.imitation`: it collects expert
demonstrations, trains a model by sequence behaviour cloning and DAgger into a run folder, loads the trained model
as a Predictor and evaluates it on held-out roads.

Modules, in the order they build on each other (no module imports a later one):

- :mod:`~ncp_control.agents.imitation.seeds`: training road seeds ``[0, TRAIN_SEED_LIMIT)`` and held-out road
  seeds ``>= HELDOUT_SEED_START``, disjoint.
- :mod:`~ncp_control.agents.imitation.demonstrations`: the on-disk store of recorded episodes
  (:class:`Demonstrations`, format in its docstring).
- :mod:`~ncp_control.agents.imitation.experts`: the privileged experts (pure pursuit on the true road).
- :mod:`~ncp_control.agents.imitation.collection`: env, expert registry, steering noise, :func:`rollout` (driving
  one road and recording it).
- :mod:`~ncp_control.agents.imitation.config`: :class:`BCConfig`, the presets, the DAgger beta schedule.
- :mod:`~ncp_control.agents.imitation.sequence_bc`: one epoch of sequence BC by truncated BPTT.
- :mod:`~ncp_control.agents.imitation.checkpoints`: ``checkpoint.pt`` and resuming from it.
- :mod:`~ncp_control.agents.imitation.training`: :func:`train`, the whole pipeline and the run folder's files.
- :mod:`~ncp_control.agents.imitation.loading`: :func:`load_predictor`, a run's model as a Predictor.
- :mod:`~ncp_control.agents.imitation.heldout`: :func:`evaluate_heldout`, closed loop on held-out roads.

What it may import: numpy, torch, gymnasium, the ``ncp_control`` library (``ncp_control.policies`` and friends),
:mod:`ncp_control.envs` (to register env ids), and from the application only
:mod:`ncp_control.agents.runs` (run-folder files and loading) and :mod:`ncp_control.agents.evaluation` (episode
metrics). Commands (:mod:`ncp_control.agents.commands`) import it, never the other way round.

The names below are the public API; import them from here (``from ncp_control.agents.imitation import train``).
"""

from __future__ import annotations

from ncp_control.agents.imitation.collection import (
    EXPERT_FACTORIES,
    EXPERTS,
    LANE_INFO_KEYS,
    SteeringNoise,
    make_env,
    resolve_expert,
    rollout,
)
from ncp_control.agents.imitation.config import PRESET_ENV_KWARGS, PRESETS, BCConfig, beta_schedule, preset_config
from ncp_control.agents.imitation.demonstrations import DatasetError, Demonstrations, Episode
from ncp_control.agents.imitation.heldout import evaluate_heldout
from ncp_control.agents.imitation.loading import load_predictor
from ncp_control.agents.imitation.seeds import (
    HELDOUT_SEED_START,
    TRAIN_SEED_LIMIT,
    heldout_road_seeds,
    training_road_seeds,
)
from ncp_control.agents.imitation.training import train

__all__ = [
    "TRAIN_SEED_LIMIT",
    "HELDOUT_SEED_START",
    "EXPERTS",
    "EXPERT_FACTORIES",
    "LANE_INFO_KEYS",
    "PRESETS",
    "PRESET_ENV_KWARGS",
    "DatasetError",
    "Episode",
    "Demonstrations",
    "BCConfig",
    "SteeringNoise",
    "preset_config",
    "training_road_seeds",
    "heldout_road_seeds",
    "make_env",
    "resolve_expert",
    "rollout",
    "beta_schedule",
    "train",
    "load_predictor",
    "evaluate_heldout",
]
