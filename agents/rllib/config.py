"""The configuration of an RLlib run (``kind="rllib"``): :func:`resolve_config` (the PPO presets translated to
RLlib's names, then ``agents/configs/rllib.json``, a user file, overrides), :func:`validate_config`, and
:func:`ppo_view`, the same actor described as a PPO run's config (what the loaders and every command read).

Imports neither ray nor torch.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Literal

from ncp_control import checks
from ncp_control.agents.runs.files import read_json_object

RLLIB_EXTRA_HINT = 'RLlib is not installed: pip install "ncp-control[rllib]" (or pip install "ray[rllib]")'

PRESETS_PATH = Path(__file__).resolve().parents[1] / "configs" / "rllib.json"
POLICIES = ("ltc", "cfc")
RLlibPolicyName = Literal["ltc", "cfc"]

#: train-ppo's ``algo`` keys (SB3's names) and RLlib's ``PPOConfig.training`` names for the same setting.
SB3_TO_RLLIB = {
    "learning_rate": "lr",
    "gamma": "gamma",
    "gae_lambda": "lambda_",
    "clip_range": "clip_param",
    "ent_coef": "entropy_coeff",
    "vf_coef": "vf_loss_coeff",
    "n_epochs": "num_epochs",
    "batch_size": "minibatch_size",
    "max_grad_norm": "grad_clip",
}
#: RLlib ``algo`` keys a config may set, and their types.
ALGO_KEYS: dict[str, type | tuple[type, ...]] = {
    "lr": (int, float),
    "gamma": (int, float),
    "lambda_": (int, float),
    "clip_param": (int, float),
    "entropy_coeff": (int, float),
    "vf_loss_coeff": (int, float),
    "vf_clip_param": (int, float),
    "num_epochs": int,
    "minibatch_size": int,
    "train_batch_size": int,
    "grad_clip": (int, float),
    "kl_coeff": (int, float),
    "use_kl_loss": bool,
}
#: SB3 keys with no RLlib counterpart that the PPO presets may hold: gSDE is SB3's alone (RLlib samples a plain
#: diagonal Gaussian), and its batch is n_steps x n_envs (``train_batch_size`` here).
_DROPPED_SB3_KEYS = ("use_sde", "sde_sample_freq", "n_steps", "target_kl", "normalize_advantage")

_SCHEMA: dict[str, type | tuple[type, ...]] = {
    "kind": str,
    "env_id": str,
    "policy": str,
    "seed": int,
    "timesteps": int,
    "env_runners": int,
    "envs_per_runner": int,
    "elapsed_time": str,
    "env_kwargs": dict,
    "perturb": list,
    "max_seq_len": int,
    "algo": dict,
    "policy_kwargs": dict,
    "checkpoint_freq": int,
    "checkpoint_seconds": (int, float),
    "eval_episodes": int,
    "eval_seed": int,
}
#: the range of each numeric ``algo`` setting (a check that raises ``ValueError`` naming the key)
_ALGO_RANGES = {
    "lr": checks.positive_real,
    "gamma": lambda name, v: checks.real_in_range(name, v, 0.0, 1.0, low_open=True),
    "lambda_": lambda name, v: checks.real_in_range(name, v, 0.0, 1.0),
    "clip_param": checks.positive_real,
    "entropy_coeff": checks.non_negative_real,
    "vf_loss_coeff": checks.non_negative_real,
    "vf_clip_param": checks.positive_real,
    "num_epochs": checks.positive_int,
    "minibatch_size": checks.positive_int,
    "train_batch_size": checks.positive_int,
    "grad_clip": checks.positive_real,
    "kl_coeff": checks.non_negative_real,
}
#: policy_kwargs that need SB3's gSDE (RLlib's PPO has none).
_SDE_ONLY_KWARGS = ("squash_output", "full_std", "use_expln")


def load_presets(path: str | Path = PRESETS_PATH) -> dict[str, Any]:
    """``agents/configs/rllib.json`` (``defaults``, ``envs``)."""
    return read_json_object(Path(path), "RLlib presets file")


def resolve_config(
    env_id: str,
    policy: RLlibPolicyName,
    *,
    timesteps: int,
    seed: int = 0,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full configuration of an RLlib run.

    Layers (later wins, dicts merged key by key): train-ppo's resolved preset for ``env_id`` and ``policy``
    (``policy_kwargs``, ``elapsed_time``, ``env_kwargs``, ``eval_*``, checkpoints, and ``algo`` translated by
    :data:`SB3_TO_RLLIB`, with ``train_batch_size = n_steps * n_envs`` and ``envs_per_runner = n_envs``), then
    ``agents/configs/rllib.json`` (``defaults``, ``envs[env_id]``), the JSON ``config_file``, ``overrides``.

    Raises:
        ValueError: unknown policy (only ``ltc``, ``cfc``), unknown or mistyped keys, settings RLlib lacks.
    """
    from ncp_control.agents import ppo
    from ncp_control.agents.ppo.config import merge_config, read_config_file

    checks.choice("policy", policy, POLICIES)
    base = ppo.resolve_config(env_id, policy, timesteps=timesteps, seed=seed)
    algo = {SB3_TO_RLLIB[k]: v for k, v in base["algo"].items() if k in SB3_TO_RLLIB}
    algo["train_batch_size"] = int(base["algo"].get("n_steps", 2048)) * int(base["n_envs"])
    config: dict[str, Any] = {
        "kind": "rllib",
        "env_runners": 1,
        "envs_per_runner": int(base["n_envs"]),
        "elapsed_time": base["elapsed_time"],
        "env_kwargs": base["env_kwargs"],
        "perturb": base.get("perturb", []),
        "max_seq_len": 32,
        "algo": algo,
        "policy_kwargs": base["policy_kwargs"],
        "checkpoint_freq": base["checkpoint_freq"],
        "checkpoint_seconds": base.get("checkpoint_seconds", 60),
        "eval_episodes": base["eval_episodes"],
        "eval_seed": base["eval_seed"],
    }
    presets = load_presets()
    merge_config(config, presets.get("defaults", {}))
    merge_config(config, presets.get("envs", {}).get(env_id, {}))
    if config_file is not None:
        merge_config(config, read_config_file(config_file, _SCHEMA))
    merge_config(config, overrides or {})
    config.update(kind="rllib", env_id=env_id, policy=policy, seed=int(seed), timesteps=int(timesteps))
    validate_config(config)
    return config


def validate_config(config: dict[str, Any]) -> None:
    """Keys, types and choices of an RLlib run's config (raises ``ValueError`` naming the key)."""
    from ncp_control.agents.ppo.config import check_schema, check_training_perturbations, check_type

    check_schema(config, _SCHEMA)
    if config["kind"] != "rllib":
        raise ValueError(f"config kind must be 'rllib', got {config['kind']!r}")
    checks.choice("policy", config["policy"], POLICIES)
    checks.choice("elapsed_time", config["elapsed_time"], ("constant", "observation"))
    for key in ("timesteps", "env_runners", "envs_per_runner", "max_seq_len", "eval_episodes"):
        checks.positive_int(f"config[{key!r}]", config[key])
    checks.non_negative_int("config['checkpoint_freq']", config["checkpoint_freq"], hint="0 turns it off")
    checks.non_negative_real("config['checkpoint_seconds']", config["checkpoint_seconds"], hint="0 turns it off")
    for key, value in config["algo"].items():
        if key not in ALGO_KEYS:
            sb3 = {v: k for k, v in SB3_TO_RLLIB.items()}
            hint = f" (RLlib's name for {key!r} is {SB3_TO_RLLIB[key]!r})" if key in SB3_TO_RLLIB else ""
            if key in sb3 or key in _DROPPED_SB3_KEYS:
                hint = hint or f" ({key!r} is SB3's; RLlib's PPO has no such setting)"
            raise ValueError(f"unknown config['algo'] key {key!r}{hint}; allowed: {sorted(ALGO_KEYS)}")
        check_type(f"config['algo'][{key!r}]", value, ALGO_KEYS[key])
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"config['algo'][{key!r}] must be finite, got {value}")
        if key in _ALGO_RANGES:
            _ALGO_RANGES[key](f"config['algo'][{key!r}]", value)
    algo = config["algo"]
    if algo.get("minibatch_size", 0) > algo.get("train_batch_size", math.inf):
        raise ValueError(
            f"config['algo']['minibatch_size'] ({algo['minibatch_size']}) is larger than train_batch_size "
            f"({algo['train_batch_size']})"
        )
    for key in _SDE_ONLY_KWARGS:
        if config["policy_kwargs"].get(key):
            raise ValueError(f"policy_kwargs.{key} needs SB3's gSDE, which RLlib's PPO lacks: drop it for an RLlib run")
    check_training_perturbations(config["perturb"])
    from ncp_control.agents.ppo.models import check_model_keys

    check_model_keys(ppo_view(config))  # policy_kwargs against the policy's constructor, before Ray starts


def ppo_view(config: dict[str, Any]) -> dict[str, Any]:
    """The RLlib run's actor as a PPO run's config (``kind="ppo"``): what :func:`ncp_control.agents.ppo.load_predictor`
    needs to rebuild ``policy.pt`` (the policy, its ``policy_kwargs``, no normaliser, no gSDE) and the env and
    evaluation settings. Not a config to train with."""
    return {
        "kind": "ppo",
        "env_id": config["env_id"],
        "policy": config["policy"],
        "seed": config["seed"],
        "timesteps": config["timesteps"],
        "n_envs": config["envs_per_runner"],
        "vec_env": "dummy",
        "normalize_obs": False,
        "normalize_reward": False,
        "elapsed_time": config["elapsed_time"],
        "env_kwargs": copy.deepcopy(config["env_kwargs"]),
        "checkpoint_freq": config["checkpoint_freq"],
        "checkpoint_seconds": config["checkpoint_seconds"],
        "eval_freq": 0,
        "eval_episodes": config["eval_episodes"],
        "eval_seed": config["eval_seed"],
        "progress_bar": False,
        "algo": {"use_sde": False},
        "policy_kwargs": copy.deepcopy(config["policy_kwargs"]),
        "perturb": list(config["perturb"]),
        "init_from": None,
        "anchor_weight": 0,
    }
