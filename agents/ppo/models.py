"""The SB3 / sb3-contrib algorithm and policy of each ``policy`` switch, built from a resolved config.

:func:`algorithm_class` picks ``RecurrentPPO`` or ``PPO``; :func:`build_algorithm` builds a fresh, seeded
algorithm on a VecEnv (for training), :func:`build_policy` a bare policy of the same class and kwargs (for loading
weights stored as data); :func:`check_model_keys` checks ``algo`` and ``policy_kwargs`` against their constructors.
The lowest module of :mod:`ncp_control.agents.ppo`: it imports none of its siblings.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ncp_control import checks

PolicyName = Literal["ltc", "cfc", "lstm", "mlp"]

#: ``algo`` keys that take a number or rl-zoo's ``"lin_<start>"`` (linear decay to 0 over the run).
SCHEDULED_KEYS = ("learning_rate", "clip_range")


def schedule_value(name: str, value: Any):
    """A number, or an SB3 schedule for rl-zoo's ``"lin_<start>"`` string: ``start`` at the first update,
    decaying linearly to 0 at the end of training (``progress_remaining * start``).

    Raises:
        ValueError: anything else (a string that is not ``lin_`` + a positive number, a non-positive number).
    """
    from stable_baselines3.common.utils import LinearSchedule

    linear = isinstance(value, str) and value.startswith("lin_")
    start = float("nan")
    if linear or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        try:
            start = float(value[len("lin_") :] if linear else value)
        except ValueError:
            pass
    if not (np.isfinite(start) and start > 0):
        raise ValueError(
            f"{name} must be a positive number or 'lin_<positive number>' (linear decay to 0, as in "
            f"rl-zoo), got {value!r}"
        )
    return LinearSchedule(start, 0.0, 1.0) if linear else value


def algorithm_class(policy: PolicyName):
    """``RecurrentPPO`` for ltc/cfc/lstm, ``PPO`` for mlp."""
    checks.choice("policy", policy, PolicyName)
    if policy == "mlp":
        from stable_baselines3 import PPO

        return PPO
    from sb3_contrib import RecurrentPPO

    return RecurrentPPO


def _policy_spec(config: dict[str, Any], observation_space) -> tuple[Any, dict[str, Any]]:
    from stable_baselines3.common.preprocessing import is_image_space
    from torch import nn

    kwargs = dict(config["policy_kwargs"])
    if "activation_fn" in kwargs:
        kwargs["activation_fn"] = {
            "tanh": nn.Tanh,
            "relu": nn.ReLU,
            "elu": nn.ELU,
            "leaky_relu": nn.LeakyReLU,
            "silu": nn.SiLU,
        }[kwargs["activation_fn"]]
    extractor = kwargs.get("features_extractor_class")
    if extractor is not None:  # JSON names the extractor: "conv_head" is the imitation models' ConvHead
        if extractor != "conv_head":
            raise ValueError(f"policy_kwargs.features_extractor_class must be 'conv_head', got {extractor!r}")
        from ncp_control.policies.recurrent_ppo import ConvHeadExtractor

        kwargs["features_extractor_class"] = ConvHeadExtractor
    policy = config["policy"]
    if policy in ("ltc", "cfc"):
        from ncp_control.policies.recurrent_ppo import NCPActorCriticPolicy

        kwargs.setdefault("cell", policy)
        if kwargs["cell"] != policy:
            raise ValueError(f"policy {policy!r} but policy_kwargs.cell is {kwargs['cell']!r}")
        return NCPActorCriticPolicy, kwargs
    image = is_image_space(observation_space)
    if policy == "lstm":
        return ("CnnLstmPolicy" if image else "MlpLstmPolicy"), kwargs
    return ("CnnPolicy" if image else "MlpPolicy"), kwargs


def build_algorithm(config: dict[str, Any], venv, *, tensorboard_log: str | None = None):
    """A fresh, seeded algorithm (``PPO`` / ``RecurrentPPO`` with its policy) for ``config`` on ``venv``.

    Raises:
        ValueError: an ``algo`` key the algorithm does not take.
    """
    cls = algorithm_class(config["policy"])
    check_model_keys(config)
    policy, policy_kwargs = _policy_spec(config, venv.observation_space)
    algo = dict(config["algo"])
    for key in SCHEDULED_KEYS:
        if key in algo:
            algo[key] = schedule_value(f"algo.{key}", algo[key])
    return cls(
        policy,
        venv,
        policy_kwargs=policy_kwargs,
        seed=config["seed"],
        tensorboard_log=tensorboard_log,
        device="cpu",
        verbose=0,
        **algo,
    )


def build_policy(config: dict[str, Any], observation_space, action_space):
    """A fresh SB3 policy of the run's class (from this project's registry: :func:`algorithm_class` and
    ``_policy_spec``) with the run's ``policy_kwargs``, as the algorithm would build it."""
    cls = algorithm_class(config["policy"])
    policy, kwargs = _policy_spec(config, observation_space)
    policy_cls = cls.policy_aliases[policy] if isinstance(policy, str) else policy
    return policy_cls(
        observation_space, action_space, lambda _: 0.0, use_sde=bool(config["algo"].get("use_sde", False)), **kwargs
    )


def check_model_keys(config: dict[str, Any]) -> None:
    """``algo`` keys against the algorithm's constructor and ``policy_kwargs`` against the policy's, before any work.

    Raises:
        ValueError: an unknown key (with close matches), naming the config section.
    """
    import difflib
    import inspect

    cls = algorithm_class(config["policy"])
    allowed = set(inspect.signature(cls.__init__).parameters) - {
        "self",
        "policy",
        "env",
        "policy_kwargs",
        "seed",
        "tensorboard_log",
        "device",
        "_init_setup_model",
    }
    from stable_baselines3.common.policies import ActorCriticPolicy

    policy_cls: type[ActorCriticPolicy] = ActorCriticPolicy
    if config["policy"] in ("ltc", "cfc"):
        from ncp_control.policies.recurrent_ppo import NCPActorCriticPolicy

        policy_cls = NCPActorCriticPolicy
    elif config["policy"] == "lstm":
        from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

        policy_cls = RecurrentActorCriticPolicy
    params = inspect.signature(policy_cls.__init__).parameters
    policy_allowed = set(params) - {"self", "observation_space", "action_space", "lr_schedule"}
    sections = [("algo", config["algo"], allowed)]
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        sections.append(("policy_kwargs", config["policy_kwargs"], policy_allowed))
    for section, given, known in sections:
        for key in sorted(set(given) - known):
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"allowed: {', '.join(sorted(known))}"
            raise ValueError(f"unknown {section} key {key!r} for {config['policy']} ({cls.__name__}); {hint}")
