"""rl-baselines3-zoo hyperparameter files for the NCP policies, made from this project's PPO presets.

rl-zoo (``python -m rl_zoo3.train``) reads a yaml file keyed by env id; a custom policy is a dotted path and its
``policy_kwargs`` a mapping (or a ``"dict(...)"`` string). :func:`zoo_hyperparams` turns the resolved
``agents/configs/ppo.json`` preset of ``train-ppo --policy ltc|cfc`` into that form, so the shipped files
(``agents/configs/rl_zoo/ppo_lstm_ncp_<cell>.yml``, package data) say the same as the presets;
``scripts/export_rl_zoo_hyperparams.py`` rewrites them and a test checks they agree. Usage::

    python -m rl_zoo3.train --algo ppo_lstm --env PendulumNoVel-v1 --gym-packages ncp_control.envs \\
        -c agents/configs/rl_zoo/ppo_lstm_ncp_cfc.yml

(``--gym-packages ncp_control.envs`` registers this project's ids; ``PendulumNoVel-v1`` is also rl-zoo's own and the same
env.) ``hyperparams_path("cfc")`` gives the installed file's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from ncp_control.agents.ppo.config import resolve_config
from ncp_control.agents.ppo.envs import env_step_duration
from ncp_control.agents.ppo.models import PolicyName

__all__ = ["ZOO_ENVS", "ZOO_POLICY", "hyperparams_path", "zoo_hyperparams", "render_hyperparams_file"]

#: Env ids the shipped files cover (the ids with PendulumNoVel-style presets in ppo.json).
ZOO_ENVS = ("PendulumNoVel-v1", "Pendulum-v1")
#: The policy as rl-zoo imports it (``get_class_by_name``).
ZOO_POLICY = "ncp_control.policies.recurrent_ppo.NCPActorCriticPolicy"
#: rl-zoo's default budget for these ids (its ppo_lstm.yml): 100k steps.
ZOO_TIMESTEPS = 100_000

_CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "rl_zoo"


def hyperparams_path(cell: str) -> Path:
    """The shipped rl-zoo file for ``cell`` (``"ltc"`` or ``"cfc"``)."""
    if cell not in ("ltc", "cfc"):
        raise ValueError(f"cell must be 'ltc' or 'cfc', got {cell!r}")
    return _CONFIG_DIR / f"ppo_lstm_ncp_{cell}.yml"


def zoo_hyperparams(env_id: str, cell: str) -> dict[str, Any]:
    """rl-zoo's hyperparameters for ``env_id`` equal to ``train-ppo --env ENV --policy CELL``'s preset.

    Raises:
        ValueError: the preset cannot be expressed for rl-zoo (observation elapsed time, a vector env other than
            rl-zoo's default, or env kwargs).
    """
    config = resolve_config(env_id, cast(PolicyName, cell), timesteps=ZOO_TIMESTEPS)  # it checks the name
    if config["elapsed_time"] != "constant" or config["env_kwargs"] or config["vec_env"] != "dummy":
        raise ValueError(
            f"the {cell} preset for {env_id} uses settings rl-zoo files cannot express "
            "(elapsed_time='observation', env_kwargs or a subproc vec_env)"
        )
    policy_kwargs = dict(config["policy_kwargs"])
    policy_kwargs.setdefault("dt", env_step_duration(env_id))
    out: dict[str, Any] = {
        "n_envs": config["n_envs"],
        "n_timesteps": ZOO_TIMESTEPS,
        "policy": ZOO_POLICY,
        "normalize": _normalize(config),
    }
    out.update(config["algo"])
    out["policy_kwargs"] = policy_kwargs
    return out


def _normalize(config: dict[str, Any]) -> bool | dict[str, bool]:
    obs, reward = config["normalize_obs"], config["normalize_reward"]
    if obs == reward:
        return bool(obs)
    return {"norm_obs": bool(obs), "norm_reward": bool(reward)}


def render_hyperparams_file(cell: str) -> str:
    """The yaml text of ``hyperparams_path(cell)``: a header comment, then one entry per :data:`ZOO_ENVS` id."""
    import yaml

    header = (
        f"# rl-baselines3-zoo hyperparameters for ncp-control's NCP-{cell.upper()} policy (sb3-contrib RecurrentPPO,\n"
        f"# rl-zoo's ppo_lstm). Generated from agents/configs/ppo.json by scripts/export_rl_zoo_hyperparams.py:\n"
        f"# the same settings as `ncp-control train-ppo --policy {cell}`. Do not edit by hand.\n"
        f"#   python -m rl_zoo3.train --algo ppo_lstm --env PendulumNoVel-v1 --gym-packages ncp_control.envs \\\n"
        f"#       -c agents/configs/rl_zoo/ppo_lstm_ncp_{cell}.yml\n"
        "# dt: the env's step duration in seconds, the elapsed time of every cell step.\n"
    )
    body = {env_id: zoo_hyperparams(env_id, cell) for env_id in ZOO_ENVS}
    return header + yaml.safe_dump(body, sort_keys=False, default_flow_style=False)
