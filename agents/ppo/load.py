"""A trained PPO run as a predictor: :func:`load_predictor` from the data files (``policy.pt``,
``vecnormalize.npz``; nothing unpickled), :func:`load_sb3_predictor` and :func:`load_sb3_model` from SB3's own
pickled files (only for folders you trust).

Imports :mod:`.config`, :mod:`.envs`, :mod:`.models` and :mod:`.run_folder`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ncp_control.agents.ppo.config import validate_config
from ncp_control.agents.ppo.envs import policy_env_wrappers
from ncp_control.agents.ppo.models import algorithm_class, build_policy
from ncp_control.agents.ppo.run_folder import (
    CHECKPOINT_DIR,
    CHECKPOINT_PREFIX,
    MODEL_FILE,
    NORMALIZER_FILE,
    POLICY_FILE,
    VECNORMALIZE_FILE,
    checkpoints,
    data_checkpoint_paths,
    data_checkpoints,
    vecnormalize_for,
)
from ncp_control.agents.runs import files as run_io


class PPOPredictor:
    """A trained PPO policy as a Predictor for raw (unnormalised) observations.

    ``predict`` normalises observations with the run's saved statistics (if any), then calls the SB3 policy's
    ``predict``. For ``mlp`` policies the returned state is ``None``. ``env_wrappers`` lists what the observations
    need around the raw env (the elapsed-time observation for ``elapsed_time="observation"`` runs).

    Args:
        policy: the SB3 policy (an ``nn.Module`` with ``predict``), or an SB3 model (its ``.policy`` is taken).
        normalizer: an :class:`ncp_control.agents.runs.files.ObsNormalizer`, an SB3 ``VecNormalize`` (its statistics are copied),
            or ``None``.

    Attributes:
        policy: the SB3 policy. normalizer: the :class:`~ncp_control.agents.runs.files.ObsNormalizer` or ``None``.
        observation_space, action_space: the policy's spaces.
    """

    def __init__(self, policy, normalizer=None, env_wrappers: Sequence = ()):
        from torch import nn

        if not isinstance(policy, nn.Module) and isinstance(getattr(policy, "policy", None), nn.Module):
            policy = policy.policy  # an SB3 model
        if normalizer is not None and not isinstance(normalizer, run_io.ObsNormalizer):
            normalizer = run_io.ObsNormalizer.from_vecnormalize(normalizer)
        self.policy = policy
        self.normalizer = normalizer
        self.env_wrappers = tuple(env_wrappers)
        self.observation_space = policy.observation_space
        self.action_space = policy.action_space

    def obs_normalization(self) -> dict[str, Any] | None:
        """The observation normalisation :meth:`predict` applies, as data: ``None`` when observations go in raw,
        else ``{"mean": (obs_dim,), "var": (obs_dim,), "clip": float, "epsilon": float}`` (numpy float64), meaning
        ``clip(( obs - mean) / sqrt(var + epsilon), -clip, clip)``. For dict observations ``mean`` and ``var`` are
        dicts over the normalised keys, listed in ``"keys"``."""
        n = self.normalizer
        if n is None or not n.norm_obs:
            return None
        out = {"mean": n.obs_mean, "var": n.obs_var, "clip": float(n.clip_obs), "epsilon": float(n.epsilon)}
        if n.norm_obs_keys is not None:
            out["keys"] = list(n.norm_obs_keys)
        return out

    def normalize_obs(self, observation):
        """Raw observations as the policy sees them (unchanged when the run has no normaliser)."""
        return observation if self.normalizer is None else self.normalizer.normalize_obs(observation)

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = True):
        """observation: (n_envs, *obs_shape) (or a dict of such arrays); episode_start: (n_envs,) bool.
        Returns ``(actions (n_envs, *act_shape), state)``."""
        return self.policy.predict(
            self.normalize_obs(observation), state=state, episode_start=episode_start, deterministic=deterministic
        )


def load_predictor(run_dir: str | Path, config: dict[str, Any]) -> PPOPredictor:
    """Load a PPO run's final policy (or, if training did not finish, its last checkpoint) as a Predictor, from
    data only: ``policy.pt`` (``weights_only``) and ``vecnormalize.npz``; SB3's zip and pickle are not read.

    Raises:
        ValueError: no policy data in the run folder, or a file that is damaged or crafted (named in the message).
    """
    run_dir = Path(run_dir)
    validate_config(config)
    policy_path, stats_path = run_dir / POLICY_FILE, run_dir / NORMALIZER_FILE
    if not policy_path.is_file():
        found = data_checkpoints(run_dir)
        if not found:
            hint = ""
            if (run_dir / MODEL_FILE).is_file() or checkpoints(run_dir):
                hint = (
                    f"; it has SB3's {MODEL_FILE}/checkpoint zips, which are pickles: load them with "
                    "ncp_control.agents.ppo.load_sb3_predictor only if you trust whoever made the folder"
                )
            raise ValueError(
                f"{run_dir} has no {POLICY_FILE} and no {CHECKPOINT_DIR}/"
                f"{CHECKPOINT_PREFIX}_policy_<N>_steps.pt: nothing to load{hint}"
            )
        policy_path, stats_path = data_checkpoint_paths(policy_path.parent / CHECKPOINT_DIR, found[-1][0])
    policy = run_io.load_policy_data(policy_path, config, build_policy)
    normalizer = None
    if config["normalize_obs"] or config["normalize_reward"]:
        if not stats_path.is_file():
            if config["normalize_obs"]:
                raise ValueError(f"{stats_path} is missing: the model was trained on normalised observations")
        else:
            normalizer = run_io.load_normalizer(stats_path)
            run_io.check_normalizer_fits(normalizer, policy.observation_space, stats_path)
    timed = config["elapsed_time"] == "observation"
    return PPOPredictor(policy, normalizer, policy_env_wrappers(timed, config["policy_kwargs"].get("dt")))


def load_sb3_predictor(run_dir: str | Path, config: dict[str, Any] | None = None) -> PPOPredictor:
    """Load a run from SB3's ``model.zip`` and ``vecnormalize.pkl`` (or the last SB3 checkpoint).

    **Unpickles**: only for run folders you made or trust (e.g. runs written before ``policy.pt`` existed);
    :func:`load_predictor` is the safe loader.
    """
    import pickle

    from ncp_control.agents.runs.load import read_config

    run_dir = Path(run_dir)
    config = read_config(run_dir) if config is None else config
    validate_config(config)
    model_path, stats_path = run_dir / MODEL_FILE, run_dir / VECNORMALIZE_FILE
    if not model_path.is_file():
        found = checkpoints(run_dir)
        if not found:
            raise ValueError(f"{run_dir} has no {MODEL_FILE} and no checkpoints: nothing to load")
        model_path = found[-1][1]
        stats_path = vecnormalize_for(model_path)
    model = load_sb3_model(model_path, config)
    normalizer = None
    if stats_path.is_file():
        with open(stats_path, "rb") as f:
            normalizer = pickle.load(f)  # trusted by the caller (see the docstring)
    timed = config["elapsed_time"] == "observation"
    return PPOPredictor(model, normalizer, policy_env_wrappers(timed, config["policy_kwargs"].get("dt")))


def load_sb3_model(path: str | Path, config: dict[str, Any]):
    """SB3's ``load`` of a model zip (cloudpickle: runs code from the file; only for files you trust)."""
    try:
        return algorithm_class(config["policy"]).load(str(path), device="cpu")
    except Exception as error:  # corrupt zip, wrong algorithm
        raise ValueError(f"cannot load {path}: {error}") from error
