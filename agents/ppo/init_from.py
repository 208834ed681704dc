"""PPO fine-tuning from an imitation run (``train-ppo --init-from RUN_DIR``): the actor starts as the imitation
policy, the critic fresh.

An NCP imitation model (``ncp-ltc``, ``ncp-cfc``: conv head, NCP core whose motor neurons are the actions) maps onto
:class:`~ncp_control.policies.recurrent_ppo.NCPActorCriticPolicy` piece for piece: the same
:class:`~ncp_control.policies.conv.ConvHead` as the features extractor, no MLP between it and the cell
(``net_arch.pi = []``), the same wiring, solver steps, input map and time unit, and an identity action map for
actions in [-1, 1]. :func:`init_config` writes those settings into a PPO config; :func:`load_actor` copies the
weights after the policy is built. Before any update the PPO policy's deterministic action is the imitation
policy's (``tests/test_ppo_init_from.py``: a whole episode, to float tolerance).

The critic is new: its MLP and value head start from SB3's initialisation and read the conv head's features, which
actor and critic share (SB3's habit for image policies): the imitation's conv features, trained to find the lane,
are where a value of the car's state is read most easily, and the critic's gradients then refine them with the
actor's. The imitation run's files are read as data (``model.pt`` weights-only, ``config.json``), as any run folder.

The baselines map the same way onto SB3's policies with the same conv head (``features_extractor_class:
"conv_head"``): the ``lstm`` model onto sb3-contrib's ``RecurrentPPO`` LSTM policy (its ``nn.LSTMCell`` weights
become the one-layer ``nn.LSTM``'s, its read-out the action head, no MLP between; the critic gets an LSTM of its
own), the ``cnn`` onto SB3's ``PPO`` policy (its dense ReLU layer the actor's one-layer MLP, its read-out the action
head).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: imitation model kind -> PPO policy name
POLICY_OF_KIND = {"ncp-ltc": "ltc", "ncp-cfc": "cfc", "lstm": "lstm", "cnn": "mlp"}
#: initial log standard deviation of the fine-tuned policy's actions: log(0.15), the steering noise of the
#: imitation demonstrations (``demo_noise_std``)
FINE_TUNING_LOG_STD = -1.9

__all__ = [
    "POLICY_OF_KIND",
    "FINE_TUNING_LOG_STD",
    "init_config",
    "load_actor",
    "imitation_model_config",
    "actor_parameters",
    "anchor_actor",
]


def imitation_model_config(run_dir: str | Path) -> dict[str, Any]:
    """The imitation run's model config (``config.json``'s ``model``). Raises ``ValueError`` when ``run_dir`` is not
    an imitation run, or one whose model has no PPO counterpart."""
    return _imitation_run(run_dir)["model"]


def _imitation_run(run_dir: str | Path) -> dict[str, Any]:
    from ncp_control.agents.runs.load import read_config

    config = read_config(run_dir)
    if config.get("kind") != "bc":
        raise ValueError(
            f"--init-from takes an imitation run (train-bc, demo); {run_dir} is a {config.get('kind')!r} run"
        )
    model = config.get("model")
    if not isinstance(model, dict) or model.get("kind") not in POLICY_OF_KIND:
        kind = model.get("kind") if isinstance(model, dict) else None
        raise ValueError(
            f"--init-from takes the imitation models {', '.join(POLICY_OF_KIND)}; {run_dir} holds {kind!r}"
        )
    return config


def init_config(config: dict[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """``config`` (a resolved PPO config) with the actor's architecture of the imitation run in ``run_dir`` and
    ``init_from`` set to it; the env's arguments are the imitation run's training arguments (image size, look) with
    the config's own on top. The architecture keys of ``policy_kwargs`` (wiring, solver steps, input map, conv
    head, ``net_arch.pi``, time step) are replaced; the others (critic, exploration, learning-rate scales) stay.

    Raises:
        ValueError: not an imitation run, a policy that does not match its model (``ncp-cfc`` needs ``--policy
            cfc``, ``cnn`` needs ``--policy mlp``), or another env than the imitation run's.
    """
    from ncp_control.agents.ppo.config import validate_config
    from ncp_control.agents.runs.load import training_env_kwargs

    imitation = _imitation_run(run_dir)
    model = imitation["model"]
    policy = POLICY_OF_KIND[model["kind"]]
    if config["policy"] != policy:
        raise ValueError(f"{run_dir} holds an {model['kind']} model: fine-tune it with --policy {policy}")
    if config["env_id"].rpartition(":")[2] != imitation["env_id"].rpartition(":")[2]:
        raise ValueError(
            f"{run_dir} was trained on {imitation['env_id']}: fine-tune it with --env {imitation['env_id']}"
        )
    kwargs = _architecture(model, dict(config["policy_kwargs"]))
    # exploration around a policy that already drives: the imitation demonstrations' own steering noise (std 0.15)
    # unless the config sets it; SB3's default std of 1 (half the steering range) crashes nearly every rollout
    kwargs.setdefault("log_std_init", FINE_TUNING_LOG_STD)
    # the env as the imitation run trained (its image size, its look), the config's own arguments on top; the
    # imitation model reads raw images: no running per-pixel normalisation in front of it
    env_kwargs = {**training_env_kwargs(imitation), **config["env_kwargs"]}
    out = dict(config, policy_kwargs=kwargs, env_kwargs=env_kwargs, init_from=str(run_dir), normalize_obs=False)
    validate_config(out)
    return out


def _architecture(model: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``policy_kwargs`` with the imitation model's architecture: its conv head, and per kind the NCP (wiring,
    solver steps, input map, time step, no MLP before the cell), the LSTM (hidden size, no MLP after it) or the
    dense layer of the ``cnn`` (one ReLU layer of ``cnn_hidden`` units)."""
    for key in ("ltc_init", "ltc_input_mapping", "ode_unfolds", "cfc_mode", "time_unit", "wiring", "cell"):
        kwargs.pop(key, None)
    vf = list(kwargs.get("net_arch", {}).get("vf", [64, 64])) if isinstance(kwargs.get("net_arch"), dict) else [64, 64]
    # the imitation head's architecture (it standardises every image: no "normalize" from the config), and whether
    # the config freezes it
    frozen = (kwargs.get("features_extractor_kwargs") or {}).get("frozen", False)
    kwargs["features_extractor_kwargs"] = {"features": model["features"], "channels": list(model["conv_channels"])}
    if frozen:
        kwargs["features_extractor_kwargs"]["frozen"] = frozen
    kind = model["kind"]
    if kind in ("ncp-ltc", "ncp-cfc"):
        ncp = {k: v for k, v in model["ncp"].items() if k != "motor_neurons"}
        kwargs.update(wiring={"type": "NCP", **ncp}, net_arch={"pi": [], "vf": vf}, dt=float(model["step_seconds"]))
        if kind == "ncp-ltc":
            kwargs.update(ode_unfolds=model["ode_unfolds"], ltc_input_mapping=model["ltc_input_mapping"])
        return kwargs
    kwargs["features_extractor_class"] = "conv_head"
    for key in ("dt", "critic", "critic_units", "critic_cell", "critic_wiring", "ltc_lr_scale", "ltc_output_lr_scale"):
        kwargs.pop(key, None)
    if kind == "lstm":
        kwargs.update(
            lstm_hidden_size=model["lstm_units"],
            n_lstm_layers=1,
            shared_lstm=False,
            enable_critic_lstm=True,
            net_arch={"pi": [], "vf": vf},
        )
    else:  # cnn: conv head, Linear + ReLU, Linear
        kwargs.update(net_arch={"pi": [model["cnn_hidden"]], "vf": vf}, activation_fn="relu")
    return kwargs


def load_actor(policy: Any, run_dir: str | Path) -> None:
    """Copy the imitation run's conv head and recurrent core into ``policy`` (an ``NCPActorCriticPolicy`` built
    from :func:`init_config`'s settings).

    Raises:
        ValueError: the run's model does not fit the policy (another image size, wiring or cell), naming the part.
    """
    import torch

    from ncp_control.agents.imitation.loading import load_predictor

    model = load_predictor(run_dir)
    head = getattr(policy.features_extractor, "head", None)
    if head is None:
        raise ValueError("--init-from needs the camera policy's conv head (an image observation space)")
    kind = model.config.kind
    parts: list[tuple[str, torch.nn.Module, torch.nn.Module]] = [("conv head", model.conv, head)]
    if kind in ("ncp-ltc", "ncp-cfc") and model.core is not None:
        parts.append(("recurrent core", model.core, policy.actor_core))
    elif kind == "lstm" and model.core is not None:
        cell = model.core.cell  # nn.LSTMCell -> the policy's one-layer nn.LSTM (same gate order)
        if not isinstance(cell, torch.nn.LSTMCell):
            raise ValueError(f"{run_dir}: an lstm model whose core is not an nn.LSTMCell")
        lstm = torch.nn.LSTM(cell.input_size, cell.hidden_size)
        lstm.load_state_dict({f"{name}_l0": value for name, value in cell.state_dict().items()})
        parts += [("LSTM", lstm, policy.lstm_actor), ("read-out", model.readout, policy.action_net)]
    else:  # cnn: Linear, ReLU, Linear
        if not isinstance(model.readout, torch.nn.Sequential):
            raise ValueError(f"{run_dir}: a cnn model whose read-out is not Linear, ReLU, Linear")
        parts += [
            ("dense layer", model.readout[0], policy.mlp_extractor.policy_net[0]),
            ("read-out", model.readout[2], policy.action_net),
        ]
    for part, source, target in parts:
        try:
            target.load_state_dict(source.state_dict(), strict=True)
        except RuntimeError as error:
            detail = [line.strip() for line in str(error).splitlines() if line.strip()][-1]
            raise ValueError(
                f"{run_dir}: its {part} does not fit the PPO policy ({detail}); train the PPO run on the imitation "
                "run's env and image size"
            ) from None
    if kind in ("ncp-ltc", "ncp-cfc"):
        with torch.no_grad():  # the action map is the identity for actions in [-1, 1]: check, do not assume
            probe = torch.linspace(-1, 1, 5).reshape(5, 1).repeat(1, policy.action_net.centre.numel())
            if not torch.allclose(policy.action_net(probe), probe):
                raise ValueError("--init-from needs actions in [-1, 1] (the imitation model's steering range)")


#: the parameter names (prefixes) of the actor that an imitation run sets: the conv head (shared with the critic)
#: and the actor's own layers, for the four policies
_ACTOR_PREFIXES = (
    "features_extractor.",
    "pi_features_extractor.",
    "actor_core.",
    "actor_mlp.",
    "lstm_actor.",
    "mlp_extractor.policy_net.",
    "action_net.",
)


def actor_parameters(policy: Any) -> dict[str, Any]:
    """The parameters of ``policy`` that :func:`load_actor` sets, by name (not the critic's, not the log std)."""
    return {name: p for name, p in policy.named_parameters() if name.startswith(_ACTOR_PREFIXES)}


def anchor_actor(policy: Any, initial: Any, weight: float) -> None:
    """Keep the fine-tuned actor near the imitation policy: after every optimizer step, pull each actor parameter
    toward its value in ``initial`` (a policy of the same architecture holding the imitation weights):
    ``theta -= min(lr * weight, 1) * (theta - theta_0)``, with each parameter group's learning rate (and its
    ``lr_scale``). For SGD this is the gradient step of ``weight / 2 * ||theta - theta_0||^2`` added to the loss
    (L2-SP: Li, Grandvalet and Davids, ICML 2018); under Adam it is decoupled from the adaptive step, as AdamW's
    weight decay is. ``weight`` 0 adds nothing.
    """
    import torch

    from ncp_control.policies.lr_scale import LR_SCALE_KEY

    if weight == 0:
        return
    targets = actor_parameters(initial)
    anchors = {id(p): targets[name].detach().clone() for name, p in actor_parameters(policy).items()}

    def pull(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        with torch.no_grad():
            for group in optimizer.param_groups:
                step = min(float(group["lr"]) * float(group.get(LR_SCALE_KEY, 1.0)) * weight, 1.0)
                for p in group["params"]:
                    anchor = anchors.get(id(p))
                    if anchor is not None:
                        p.sub_(step * (p - anchor))

    policy.optimizer.register_step_post_hook(pull)
