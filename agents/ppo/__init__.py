"""PPO training with NCP (LTC / CfC) actors and the LSTM / MLP baselines, behind one ``policy`` switch.

=========  ==========================================================================
policy     algorithm and policy
=========  ==========================================================================
``ltc``    sb3-contrib ``RecurrentPPO`` + :class:`NCPActorCriticPolicy` (cell="ltc")
``cfc``    sb3-contrib ``RecurrentPPO`` + :class:`NCPActorCriticPolicy` (cell="cfc")
``lstm``   sb3-contrib ``RecurrentPPO`` + ``MlpLstmPolicy`` (``CnnLstmPolicy`` for images)
``mlp``    stable-baselines3 ``PPO`` + ``MlpPolicy`` (``CnnPolicy`` for images)
=========  ==========================================================================

A run folder (``run_dir``) holds::

    config.json              the resolved configuration: kind="ppo", env_id, policy, seed, timesteps, algo, ...
    tensorboard/ppo_1/       TensorBoard logs (continued, not restarted, on resume)
    policy.pt, vecnormalize.npz   the final policy's weights (+ its spaces) and the normaliser's statistics, as
                             data: what evaluate / inspect / robustness load (ncp_control.agents.runs.files; nothing unpickled)
    checkpoints/model_policy_<N>_steps.pt, checkpoints/model_vecnormalize_<N>_steps.npz   the same at checkpoints
    model.zip, vecnormalize.pkl   SB3's own files (cloudpickle / pickle) for SB3 users, read only by --resume
    checkpoints/model_<N>_steps.zip, checkpoints/model_vecnormalize_<N>_steps.pkl   SB3's checkpoints (--resume)
    evaluation.json          the final evaluation (ncp_control.agents.evaluation.episodes.evaluate) on eval_episodes seeded episodes

Configuration: :func:`resolve_config` merges the presets in ``agents/configs/ppo.json`` (see its ``_doc``), an
optional user file with the same keys as a resolved config, and explicit overrides. Every key is validated.

Elapsed time for NCP cells (``elapsed_time``): ``"constant"`` passes the env's step duration
(``env.unwrapped.dt``) to the policy as ``policy_kwargs["dt"]`` (unless the config sets it); ``"observation"``
wraps the env in :class:`ElapsedTimeObservation` so that ``info["elapsed_time"]`` reaches the cell step by step
(for irregular time), and normalises only the ``"observation"`` key.

Modules, lowest first (each imports only those above it; none imports this package's ``__init__``):

- :mod:`.models`: the algorithm and policy of each ``policy`` (:func:`algorithm_class`, :func:`build_algorithm`,
  :func:`build_policy`), ``algo`` schedules and the check of ``algo`` / ``policy_kwargs`` keys.
- :mod:`.envs`: the training VecEnv, its ``VecNormalize`` wrapper, the policy's env wrappers, the env's ``dt``.
- :mod:`.run_folder`: the run folder's file names and its checkpoints.
- :mod:`.config`: the presets file, :func:`resolve_config`, :func:`validate_config`, :func:`finalize_config`.
- :mod:`.load`: a run as a :class:`PPOPredictor` (:func:`load_predictor`: data only; or from SB3's pickles).
- :mod:`.train`: :func:`train` (new runs and resumes, checkpoints, the final evaluation).
- :mod:`.callbacks`: SB3 callbacks for long runs (checkpoints by wall time, progress lines).
- :mod:`.rl_zoo`: rl-baselines3-zoo hyperparameter files made from the presets (imports :mod:`.config`, :mod:`.envs`).

May import: :mod:`ncp_control` (library: the policies), :mod:`ncp_control.agents.runs`,
:mod:`ncp_control.agents.evaluation`, gymnasium, stable-baselines3 and sb3-contrib (lazily, where they are used);
not the CLI, :mod:`ncp_control.agents.study` or :mod:`ncp_control.agents.imitation`.
"""

from __future__ import annotations

from ncp_control.agents.ppo.config import (
    OPTIONAL_KEYS,
    PRESETS_PATH,
    ElapsedTimeMode,
    VecEnvName,
    finalize_config,
    load_presets,
    merge_config,
    resolve_config,
    validate_config,
)
from ncp_control.agents.ppo.envs import (
    env_step_duration,
    make_training_env,
    normalize_env,
    policy_env_wrappers,
)
from ncp_control.agents.ppo.load import (
    PPOPredictor,
    load_predictor,
    load_sb3_model,
    load_sb3_predictor,
)
from ncp_control.agents.ppo.models import (
    SCHEDULED_KEYS,
    PolicyName,
    algorithm_class,
    build_algorithm,
    build_policy,
    check_model_keys,
    schedule_value,
)
from ncp_control.agents.ppo.run_folder import (
    CHECKPOINT_DIR,
    CHECKPOINT_PREFIX,
    CONFIG_FILE,
    EVALUATION_FILE,
    MODEL_FILE,
    NORMALIZER_FILE,
    POLICY_FILE,
    VECNORMALIZE_FILE,
    checkpoints,
    data_checkpoint_paths,
    data_checkpoints,
    has_progress,
    vecnormalize_for,
)
from ncp_control.agents.ppo.train import train

__all__ = [
    "CHECKPOINT_DIR",
    "CHECKPOINT_PREFIX",
    "CONFIG_FILE",
    "EVALUATION_FILE",
    "ElapsedTimeMode",
    "MODEL_FILE",
    "NORMALIZER_FILE",
    "OPTIONAL_KEYS",
    "POLICY_FILE",
    "PPOPredictor",
    "PRESETS_PATH",
    "PolicyName",
    "SCHEDULED_KEYS",
    "VECNORMALIZE_FILE",
    "VecEnvName",
    "algorithm_class",
    "build_algorithm",
    "build_policy",
    "check_model_keys",
    "checkpoints",
    "data_checkpoint_paths",
    "data_checkpoints",
    "env_step_duration",
    "finalize_config",
    "has_progress",
    "load_predictor",
    "load_presets",
    "load_sb3_model",
    "load_sb3_predictor",
    "make_training_env",
    "merge_config",
    "normalize_env",
    "policy_env_wrappers",
    "resolve_config",
    "schedule_value",
    "train",
    "validate_config",
    "vecnormalize_for",
]
