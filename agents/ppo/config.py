"""The configuration of a PPO run: the presets file, :func:`resolve_config` (presets, a user file, overrides,
merged by :func:`merge_config`), :func:`validate_config` and :func:`finalize_config` (what depends on the env).

Imports :mod:`.models` (the policy names, ``algo`` schedules) and :mod:`.envs` (the env's step duration).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

from ncp_control import checks
from ncp_control.agents.ppo.envs import env_step_duration
from ncp_control.agents.ppo.models import SCHEDULED_KEYS, PolicyName, schedule_value
from ncp_control.agents.runs.load import read_json_object

VecEnvName = Literal["dummy", "subproc"]
ElapsedTimeMode = Literal["constant", "observation"]

PRESETS_PATH = Path(__file__).resolve().parents[1] / "configs" / "ppo.json"

# Keys of a resolved config and their types (the file-level schema; "algo" and "policy_kwargs" are checked
# against the algorithm's and policy's constructors when the model is built).
_SCHEMA: dict[str, type | tuple[type, ...]] = {
    "kind": str,
    "env_id": str,
    "policy": str,
    "seed": int,
    "timesteps": int,
    "n_envs": int,
    "vec_env": str,
    "normalize_obs": bool,
    "normalize_reward": bool,
    "elapsed_time": str,
    "env_kwargs": dict,
    "checkpoint_freq": int,
    "eval_freq": int,
    "eval_episodes": int,
    "eval_seed": int,
    "progress_bar": bool,
    "algo": dict,
    "policy_kwargs": dict,
    "checkpoint_seconds": (int, float),
    "perturb": list,
    "init_from": (str, type(None)),
    "anchor_weight": (int, float),
}
#: Keys a run's config.json may lack (runs written before the key existed) and their values then.
OPTIONAL_KEYS: dict[str, Any] = {"checkpoint_seconds": 60, "perturb": [], "init_from": None, "anchor_weight": 0}
_ACTIVATIONS = ("tanh", "relu", "elu", "leaky_relu", "silu")


def load_presets(path: str | Path = PRESETS_PATH) -> dict[str, Any]:
    """The presets file as a dict (``defaults``, ``policies``, ``envs``)."""
    return read_json_object(Path(path), "presets file")


def resolve_config(
    env_id: str,
    policy: PolicyName,
    *,
    timesteps: int,
    seed: int = 0,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    presets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full training configuration for ``env_id`` and ``policy``.

    Layers (later wins, dicts merged key by key): presets ``defaults``, ``policies[policy]``, ``envs[env_id]``,
    ``envs[env_id].policies[policy]``, the JSON ``config_file``, ``overrides`` (e.g. ``{"n_envs": 8}``), then
    ``env_id``/``policy``/``seed``/``timesteps``.

    Raises:
        ValueError: unknown policy, unknown or mistyped keys, non-positive sizes, bad choices.
    """
    checks.choice("policy", policy, PolicyName)
    presets = load_presets() if presets is None else presets
    config = copy.deepcopy(presets.get("defaults", {}))
    merge_config(config, presets.get("policies", {}).get(policy, {}))
    env_preset = copy.deepcopy(presets.get("envs", {}).get(env_id, {}))
    per_policy = env_preset.pop("policies", {})
    merge_config(config, env_preset)
    merge_config(config, per_policy.get(policy, {}))
    if config_file is not None:
        merge_config(config, read_config_file(config_file, _SCHEMA))
    merge_config(config, overrides or {})
    config.update(kind="ppo", env_id=env_id, policy=policy, seed=int(seed), timesteps=int(timesteps))
    validate_config(config)
    return config


def read_config_file(config_file: str | Path, schema: dict[str, Any]) -> dict[str, Any]:
    """A user's JSON config file, every key in ``schema`` (a misspelt key is refused with the close matches)."""
    user = read_json_object(Path(config_file), "config file")
    for key in sorted(set(user) - set(schema) - {"_doc"}):
        import difflib

        close = difflib.get_close_matches(key, sorted(schema), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"allowed: {', '.join(sorted(schema))}"
        raise ValueError(f"config file {config_file}: unknown key {key!r}; {hint}")
    return user


def check_schema(
    config: dict[str, Any], schema: dict[str, type | tuple[type, ...]], optional: dict[str, Any] | None = None
) -> None:
    """Every key of ``config`` in ``schema``, every key of ``schema`` in ``config`` (or in ``optional``, with its
    value then), each of the schema's type (an int is not a bool); ``ValueError`` naming the key."""
    optional = optional or {}
    unknown = set(config) - set(schema) - {"_doc"}
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; allowed: {sorted(schema)}")
    missing = set(schema) - set(config) - set(optional)
    if missing:
        raise ValueError(f"config is missing keys {sorted(missing)}")
    for key, typ in schema.items():
        check_type(f"config[{key!r}]", config.get(key, optional.get(key)), typ)


def check_type(name: str, value: Any, typ: type | tuple[type, ...]) -> None:
    """``value`` of type ``typ`` (for ``int``: not a bool); ``ValueError`` naming ``name``."""
    if (typ is int and (isinstance(value, bool) or not isinstance(value, int))) or not isinstance(value, typ):
        kind = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def validate_config(config: dict[str, Any]) -> None:
    """Check keys, types and choices of a resolved config (raises ``ValueError``)."""
    check_schema(config, _SCHEMA, OPTIONAL_KEYS)
    if not config.get("checkpoint_seconds", 1) >= 0:
        raise ValueError(
            f"config['checkpoint_seconds'] must be >= 0 (0 turns it off), got {config['checkpoint_seconds']}"
        )
    if config["kind"] != "ppo":
        raise ValueError(f"config kind must be 'ppo', got {config['kind']!r}")
    checks.choice("policy", config["policy"], PolicyName)
    checks.choice("vec_env", config["vec_env"], VecEnvName)
    checks.choice("elapsed_time", config["elapsed_time"], ElapsedTimeMode)
    for key in ("timesteps", "n_envs", "eval_episodes"):
        checks.positive_int(f"config[{key!r}]", config[key])
    for key in ("checkpoint_freq", "eval_freq"):
        checks.non_negative_int(f"config[{key!r}]", config[key], hint="0 turns it off")
    if config["elapsed_time"] == "observation" and config["policy"] not in ("ltc", "cfc"):
        raise ValueError("elapsed_time='observation' is for the ltc/cfc policies; the lstm/mlp baselines take no time")
    act = config["policy_kwargs"].get("activation_fn")
    if act is not None:
        checks.choice("policy_kwargs.activation_fn", act, _ACTIVATIONS)
    for key in SCHEDULED_KEYS:
        if key in config["algo"]:
            schedule_value(f"algo.{key}", config["algo"][key])
    check_training_perturbations(config.get("perturb", []))
    anchor = checks.non_negative_real("config['anchor_weight']", config.get("anchor_weight", 0), hint="0 turns it off")
    if anchor > 0 and not config.get("init_from"):
        raise ValueError("config['anchor_weight'] keeps a fine-tuned actor near its imitation run: it needs init_from")
    _check_frozen_head(config)


def _check_frozen_head(config: dict[str, Any]) -> None:
    """``policy_kwargs.features_extractor_kwargs.frozen``: true or false, and only where the conv head is the
    extractor (the ltc/cfc camera actors, or ``features_extractor_class: "conv_head"`` as ``--init-from`` sets it
    for the lstm and mlp baselines; SB3's own CNN takes no such argument)."""
    kwargs = config["policy_kwargs"].get("features_extractor_kwargs") or {}
    if "frozen" not in kwargs:
        return
    if not isinstance(kwargs["frozen"], bool):
        raise ValueError(
            f"policy_kwargs.features_extractor_kwargs.frozen must be true or false, got {kwargs['frozen']!r}"
        )
    conv_head = (
        config["policy"] in ("ltc", "cfc")
        or config["policy_kwargs"].get("features_extractor_class") == "conv_head"
        or config.get("init_from")  # init_config gives the baselines the imitation run's conv head
    )
    if not conv_head:
        raise ValueError(
            "policy_kwargs.features_extractor_kwargs.frozen freezes the imitation models' conv head: the lstm and mlp "
            "baselines have it with --init-from (or features_extractor_class 'conv_head'), not SB3's own CNN"
        )


def check_training_perturbations(specs: list[Any]) -> list[str]:
    """``specs`` (a config's ``perturb``): perturbation specs at one level each (``"name:level"``, the names of
    ``ncp-control robustness``), each name once. Returns them; raises ``ValueError`` naming the bad one."""
    from ncp_control.envs.perturbations import parse_spec

    names = []
    for spec in specs:
        if not isinstance(spec, str):
            raise ValueError(f"config['perturb'] holds perturbation specs such as 'pixel_noise:0.1', got {spec!r}")
        try:
            names.append(parse_spec(spec).name)
        except ValueError as error:
            raise ValueError(f"config['perturb'] {spec!r}: {error}") from None
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"config['perturb'] names each perturbation once; repeated: {repeated}")
    return list(specs)


def finalize_config(config: dict[str, Any]) -> dict[str, Any]:
    """Fill what depends on the env: ``policy_kwargs.dt`` for NCP policies (from ``env.unwrapped.dt``)."""
    config = copy.deepcopy(config)
    if config["policy"] in ("ltc", "cfc") and "dt" not in config["policy_kwargs"]:
        config["policy_kwargs"]["dt"] = env_step_duration(config["env_id"], config["env_kwargs"])
    validate_config(config)
    return config


def merge_config(base: dict[str, Any], update: dict[str, Any]) -> None:
    """Recursive in-place merge of one config layer into ``base``: nested dicts merged key by key, everything else
    replaced (by a deep copy). A nested dict that names another ``type`` than the one it meets (``"wiring":
    {"type": "NCP", ...}`` over the presets' ``AutoNCP``) replaces it whole: the old type's keys (``units``) are not
    the new one's."""
    for key, value in update.items():
        old = base.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and value.get("type", old.get("type")) == old.get("type"):
            merge_config(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
