"""NCP actors for sb3-contrib's RecurrentPPO: LTC or CfC cells on NCP wirings whose motor neurons are the actions.

Usage::

    from sb3_contrib import RecurrentPPO
    from ncp_control.policies.recurrent_ppo import NCPActorCriticPolicy

    model = RecurrentPPO(NCPActorCriticPolicy, "Pendulum-v1",
                         policy_kwargs=dict(cell="cfc", wiring={"type": "AutoNCP", "units": 19}, dt=0.05))
    model.learn(10_000)
    obs = model.get_env().reset()
    action, state = model.predict(obs, state=None, episode_start=np.ones(1, bool), deterministic=True)

Everything RecurrentPPO offers keeps working: VecEnvs (also ``SubprocVecEnv``), ``VecNormalize``, callbacks,
``save``/``load``, ``evaluate_policy``.

Architecture (``F`` = features, ``A`` = motor neurons)::

    obs -> features extractor (Flatten for vectors, the imitation models' ConvHead for images) -> features (B, F)
        actor:  [optional MLP net_arch["pi"]] -> cell (LTC/CfC on the wiring) -> motor neurons (B, A)
                -> Box: Gaussian mean = centre + half_width * motor (fixed map to the action bounds), learned log-std
                -> Discrete / MultiDiscrete / MultiBinary: motor neurons are the logits
        critic: MLP net_arch["vf"] on the features (default), or a dense recurrent cell of the same kind first
                (critic="recurrent") -> value (B, 1)

How the recurrent state travels. RecurrentPPO stores LSTM states as ``RNNStates(pi=(h, c), vf=(h, c))`` with
tensors of shape ``(1, n_envs, H)``. This policy packs a cell's flat state into ``h`` (zero-padded to
``H = max(actor state, critic state)``) and leaves ``c`` at zero. ``predict`` therefore returns the usual 2-tuple
``(h, c)`` of arrays of shape ``(1, n_envs, H)``; pass it back unchanged with ``episode_start``.

Elapsed time. A liquid cell integrates over the time between observations. With a constant step duration pass
``dt`` (seconds; the training code reads ``env.unwrapped.dt``). With varying durations wrap the env in
:class:`~ncp_control.policies.elapsed_time.ElapsedTimeObservation`; the policy then reads the per-step
``elapsed_time`` (seconds) from the observation dictionary instead of ``dt``. The cell's clock runs in units of
``time_unit`` seconds, by default ``dt``: a regular step lasts exactly 1 time unit, which is the convention the
cells' initialisation ranges were chosen for (ncps's default elapsed time), and an irregular step lasts
``elapsed_time / dt`` units. (Physical seconds, ``time_unit=1``, make a 50 ms step 20 times shorter than that and
the initial circuit correspondingly sluggish.) The core clamps the cell time below at ``min_elapsed_time`` units so
the zero-padded steps of the rollout buffer cannot produce NaN gradients.

Reset: the state of an environment is zeroed exactly before every step whose ``episode_start`` is true, in
rollouts (per environment of a vector env) and in training sequences.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.distributions import (
    DiagGaussianDistribution,
    Distribution,
    StateDependentNoiseDistribution,
)
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import is_image_space, preprocess_obs
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from .. import checks
from .backend import wirings
from .conv import PAPER_CHANNELS, ConvHead, Normalization
from .core import CfCMode, LTCCore, RecurrentCore, make_core
from .elapsed_time import ELAPSED_TIME_KEY, OBSERVATION_KEY, is_timed_space
from .lr_scale import LR_SCALE_KEY, check_lr_scale, scaled_optimizer_class
from .ltc_actor_init import LTCActorInit

CellKind = Literal["ltc", "cfc"]
CriticKind = Literal["mlp", "recurrent"]
CriticCell = Literal["ltc", "cfc", "lstm"]
CriticWiring = Literal["dense", "fully_connected"]
WiringType = Literal["AutoNCP", "NCP", "FullyConnected"]

#: Default wiring: 19 neurons as in the NCP paper's lane-keeping network; the motor count comes from the actions.
DEFAULT_WIRING: dict[str, Any] = {"type": "AutoNCP", "units": 19, "seed": 22222}

# The argument naming the motor-neuron count, set from the action space (users must not pass it).
_MOTOR_ARGUMENT = {"AutoNCP": "output_size", "NCP": "motor_neurons", "FullyConnected": "output_dim"}


def motor_count(action_space: spaces.Space) -> int:
    """Motor neurons needed for an action space: one per Box dimension, one logit per discrete choice."""
    if isinstance(action_space, spaces.Box):
        return int(np.prod(action_space.shape))
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.MultiDiscrete):
        return int(np.sum(action_space.nvec))
    if isinstance(action_space, spaces.MultiBinary):
        return int(np.prod(action_space.shape))
    raise TypeError(
        f"unsupported action space {type(action_space).__name__}: use Box, Discrete, MultiDiscrete or MultiBinary"
    )


def build_wiring(spec: dict[str, Any], motor_neurons: int):
    """Build a wiring from a JSON-friendly spec, with ``motor_neurons`` outputs.

    Args:
        spec: ``{"type": "AutoNCP" | "NCP" | "FullyConnected", **constructor arguments}``, e.g.
            ``{"type": "AutoNCP", "units": 19, "seed": 22222}`` or
            ``{"type": "NCP", "inter_neurons": 12, "command_neurons": 6, "sensory_fanout": 6, "inter_fanout": 4,
            "recurrent_command_synapses": 6, "motor_fanin": 6, "seed": 22222}``. The motor-neuron count is not part
            of the spec: it is ``motor_neurons``.
        motor_neurons: number of output (motor) neurons.

    Raises:
        ValueError: unknown type, an argument the constructor does not take, or a motor count inside the spec.
    """
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"wiring must be a dict with a 'type' key (one of {list(_MOTOR_ARGUMENT)}), got {spec!r}")
    kind = spec["type"]
    checks.choice("wiring type", kind, WiringType)
    cls = getattr(wirings, kind)
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    motor_arg = _MOTOR_ARGUMENT[kind]
    if motor_arg in kwargs:
        raise ValueError(f"wiring {kind}: do not pass {motor_arg!r}; the motor count comes from the action space")
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", motor_arg}
    unknown = set(kwargs) - allowed
    if unknown:
        raise ValueError(f"wiring {kind} does not take {sorted(unknown)}; allowed: {sorted(allowed)}")
    kwargs[motor_arg] = motor_neurons
    return cls(**kwargs)


@dataclass(frozen=True)
class PackedStateShape:
    """What RecurrentPPO reads from ``policy.lstm_actor`` to allocate states: one layer of ``hidden_size``."""

    hidden_size: int
    num_layers: int = 1


class _ActionScale(nn.Module):
    """Fixed affine map from motor activity (about [-1, 1]) to action means: ``centre + half_width * motor``.

    Buffers ``centre`` and ``half_width`` have shape (A,); for unbounded dimensions they are 0 and 1.
    """

    centre: th.Tensor
    half_width: th.Tensor

    def __init__(self, low: np.ndarray | None, high: np.ndarray | None, size: int):
        super().__init__()
        centre, half = np.zeros(size, np.float32), np.ones(size, np.float32)
        if low is not None:
            low, high = np.asarray(low, np.float64).reshape(-1), np.asarray(high, np.float64).reshape(-1)
            bounded = np.isfinite(low) & np.isfinite(high)
            centre[bounded] = ((high + low) / 2)[bounded]
            half[bounded] = ((high - low) / 2)[bounded]
        self.register_buffer("centre", th.as_tensor(centre))
        self.register_buffer("half_width", th.as_tensor(half))

    def forward(self, motor: th.Tensor) -> th.Tensor:  # (B, A) -> (B, A)
        return self.centre + self.half_width * motor


def _mlp(in_dim: int, layers: list[int], activation: type[nn.Module]) -> tuple[nn.Module, int]:
    modules: list[nn.Module] = []
    for width in layers:
        checks.positive_int("net_arch layer width", width)
        modules += [nn.Linear(in_dim, width), activation()]
        in_dim = width
    return nn.Sequential(*modules), in_dim


class ConvHeadExtractor(BaseFeaturesExtractor):
    """The imitation models' :class:`ConvHead` as a stable-baselines3 features extractor (camera PPO actors).

    SB3 hands image observations to extractors as floats in [0, 1] (``normalize_images=True``), channels first
    when its ``VecTransposeImage`` wrapper transposed them (the default for channel-last envs), so this accepts
    both layouts and feeds the head ``(B, H, W, 3)``.

    Args:
        observation_space: a ``Box`` image space, ``(3, H, W)`` or ``(H, W, 3)``.
        features: output length (a multiple of ``channels[-1]``), the paper's 32 by default.
        channels: the five convolutions' widths (see :class:`ConvHead`).
        normalize: see :class:`ConvHead`.
        frozen: keep the head's weights as they are (e.g. an imitation run's, with ``train-ppo --init-from``):
            no gradients, and in training mode its forward pass records no graph, so PPO's update skips the
            convolutions' backward pass (most of a camera update's cost: docs/ppo.md). The actor and critic train on fixed features.
    Raises:
        ValueError: the space is not a 3-channel image.
    """

    def __init__(
        self,
        observation_space,
        features: int = 32,
        channels: Sequence[int] = PAPER_CHANNELS,
        normalize: Normalization = "standardize",
        frozen: bool = False,
    ) -> None:
        shape = tuple(int(s) for s in getattr(observation_space, "shape", ()) or ())
        if len(shape) != 3 or 3 not in (shape[0], shape[2]):
            raise ValueError(f"ConvHeadExtractor needs a (3, H, W) or (H, W, 3) image space, got shape {shape}")
        self.channels_first = shape[0] == 3 and shape[2] != 3
        hwc = (shape[1], shape[2], 3) if self.channels_first else shape
        super().__init__(observation_space, features)
        self.head = ConvHead(hwc, features=features, channels=channels, normalize=normalize)
        self.convs = self.head.convs  # for saliency (VisualBackProp finds the Conv2d layers here)
        if not isinstance(frozen, bool):
            raise TypeError(f"frozen must be true or false, got {frozen!r}")
        self.frozen = frozen
        self.head.requires_grad_(not frozen)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        """``observations``: (B, 3, H, W) or (B, H, W, 3), floats in [0, 1] (or uint8) -> (B, features)."""
        if self.channels_first:
            observations = observations.permute(0, 2, 3, 1)
        if self.frozen and self.training:  # PPO's update: no graph; in evaluation mode a plain module
            with th.no_grad():
                return self.head(observations)
        return self.head(observations)


class NCPActorCriticPolicy(RecurrentActorCriticPolicy):
    """Recurrent actor-critic policy whose actor is an LTC or CfC cell on an NCP wiring (for ``RecurrentPPO``).

    Args:
        observation_space: a Box (vector or image), or the Dict made by ``ElapsedTimeObservation``.
        action_space: Box, Discrete, MultiDiscrete or MultiBinary.
        lr_schedule: learning-rate schedule (RecurrentPPO passes it).
        cell: ``"ltc"`` or ``"cfc"``.
        wiring: wiring spec for :func:`build_wiring` (default ``DEFAULT_WIRING``: AutoNCP with 19 neurons); the
            motor count is the action count (``motor_count``).
        ode_unfolds: LTC solver steps per environment step (LTC only; default 6).
        cfc_mode: ``"default"``, ``"pure"`` or ``"no_gate"`` (CfC only).
        dt: nominal seconds between observations (default 1.0); the elapsed time of every step unless the
            observation carries ``elapsed_time``.
        time_unit: seconds per unit of cell time (default ``None``: ``dt``, so a regular step is 1 unit).
        min_elapsed_time: lower clamp of the cell time per step, in time units (default 1e-3).
        critic: ``"mlp"`` (default; a feed-forward value network on the features) or ``"recurrent"`` (a dense cell
            with ``critic_units`` neurons before the value MLP).
        critic_units: neurons of the recurrent critic (default 32).
        critic_cell: the recurrent critic's cell, ``"ltc"``, ``"cfc"`` or ``"lstm"`` (default ``None``: the actor's
            kind). A dense cell: ``FullyConnected(critic_units)`` for the LTC, ``CfCCell`` for the CfC.
        critic_wiring: ``"dense"`` (default; as above) or ``"fully_connected"``: the CfC critic is a
            ``WiredCfCCell`` on ``FullyConnected(critic_units)`` (every neuron an output, no 128-unit backbone),
            which runs on the native CfC kernel (several times faster to train than the dense ``CfCCell``). The LTC
            critic is the same either way (already a ``FullyConnected`` LTC on its native kernel); the LSTM takes
            only ``"dense"``.
        ltc_init: initial values of the LTC actor's parameters that differ from ncps's: ``None`` (default, the
            package's choice, ``DEFAULT_LTC_ACTOR_INIT``), ``"ncps"`` or a dict for
            :class:`~ncp_control.policies.ltc_actor_init.LTCActorInit`. LTC actor only.
        ltc_lr_scale: learning-rate multiplier for the LTC actor cell's parameters (default 1.0): the optimiser
            steps them at ``ltc_lr_scale`` times the schedule's rate, everything else at the rate itself (see
            :mod:`ncp_control.policies.lr_scale`). LTC actor only.
        ltc_output_lr_scale: learning-rate multiplier for the LTC actor cell's motor output map (``output_w``,
            ``output_b``: motor potential to action mean), default ``None``: ``ltc_lr_scale``, like the rest of
            the cell. The output map scales the action directly, so a step there is a step in action space; for
            experiments (1 with ``ltc_lr_scale=10`` was not better on 5 seeds: docs/ppo.md, ablation), no preset
            sets it. LTC actor only.
        ltc_input_mapping: the LTC actor's per-input map before its synapses, ``"affine"`` (default, ncps's),
            ``"linear"`` or ``"none"`` (what the imitation models use behind their conv head's dense layer, so
            ``train-ppo --init-from`` sets it from the imitation run). LTC actor only.
        net_arch: ``dict(pi=[...], vf=[...])``: ``pi`` = MLP layers between features and the actor cell (default
            none: observations are the sensory neurons, as in the NCP paper), ``vf`` = critic MLP (default [64, 64]).
        activation_fn, ortho_init, use_sde, log_std_init, full_std, use_expln, squash_output,
        features_extractor_class, features_extractor_kwargs, normalize_images, optimizer_class, optimizer_kwargs:
            as in SB3's ``ActorCriticPolicy``; orthogonal init applies to the MLPs and heads, never to the cell.
            With gSDE the exploration features are the actor's whole state (every neuron).
    """

    net_arch: dict[str, list[int]]  # always the dict _resolve_net_arch makes (SB3 also allows a list)

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        use_sde: bool = False,
        log_std_init: float = 0.0,
        full_std: bool = True,
        use_expln: bool = False,
        squash_output: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] | None = None,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        cell: CellKind = "cfc",
        wiring: dict[str, Any] | None = None,
        ode_unfolds: int | None = None,
        cfc_mode: CfCMode | None = None,
        dt: float = 1.0,
        time_unit: float | None = None,
        min_elapsed_time: float = 1e-3,
        critic: CriticKind = "mlp",
        critic_units: int = 32,
        critic_cell: CriticCell | None = None,
        critic_wiring: CriticWiring = "dense",
        ltc_init: dict[str, Any] | str | None = None,
        ltc_lr_scale: float = 1.0,
        ltc_output_lr_scale: float | None = None,
        ltc_input_mapping: str | None = None,
    ):
        self.ltc_lr_scale, self.ltc_output_lr_scale = _check_cell_options(
            cell, critic, critic_units, critic_cell, critic_wiring, ltc_init, ltc_lr_scale, ltc_output_lr_scale
        )
        self.ltc_init = LTCActorInit.from_spec(ltc_init) if cell == "ltc" else None
        self._ltc_init_spec = ltc_init
        if ltc_input_mapping is not None and cell != "ltc":
            raise ValueError(f"ltc_input_mapping applies to the LTC actor only, not cell={cell!r}")
        self.ltc_input_mapping = ltc_input_mapping
        _check_time_options(dt, time_unit)
        net_arch = _resolve_net_arch(net_arch)
        self._timed, inner = _split_timed_space(observation_space)
        if features_extractor_class is None:
            features_extractor_class = ConvHeadExtractor if is_image_space(inner) else FlattenExtractor
        self.cell_kind = cell
        self.wiring_spec = dict(DEFAULT_WIRING if wiring is None else wiring)
        self.ode_unfolds = ode_unfolds
        self.cfc_mode = cfc_mode
        self.dt = float(dt)
        self.time_unit = None if time_unit is None else float(time_unit)
        self.min_elapsed_time = float(min_elapsed_time)
        self.critic_kind = critic
        self.critic_units = int(critic_units)
        self.critic_cell = critic_cell
        self.critic_wiring = critic_wiring
        # ActorCriticPolicy.__init__ (not RecurrentActorCriticPolicy's, which would build an nn.LSTM) calls _build.
        ActorCriticPolicy.__init__(
            self,
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            ortho_init=ortho_init,
            use_sde=use_sde,
            log_std_init=log_std_init,
            full_std=full_std,
            use_expln=use_expln,
            squash_output=squash_output,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            share_features_extractor=True,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )

    # -- construction -------------------------------------------------------------------------------------------
    def make_features_extractor(self) -> BaseFeaturesExtractor:
        space = self.observation_space
        if isinstance(space, spaces.Dict):  # the only Dict accepted: ElapsedTimeObservation's (see _split_timed_space)
            space = space[OBSERVATION_KEY]
        return self.features_extractor_class(space, **self.features_extractor_kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        n_motor = motor_count(self.action_space)
        self._build_actor_and_critic(n_motor)
        self._build_action_head(n_motor)
        self._initialise_weights()
        self._build_optimizer(lr_schedule)

    def _build_actor_and_critic(self, n_motor: int) -> None:
        """The actor's MLP, wiring and recurrent core; the critic's core (if recurrent), MLP and value head."""
        self.actor_mlp, actor_in = _mlp(self.features_dim, self.net_arch["pi"], self.activation_fn)
        self.wiring = build_wiring(self.wiring_spec, n_motor)
        self.actor_core: RecurrentCore = make_core(
            self.cell_kind,
            actor_in,
            self.wiring,
            ode_unfolds=self.ode_unfolds,
            mode=self.cfc_mode,
            input_mapping=self.ltc_input_mapping,
            min_elapsed_time=self.min_elapsed_time,
        )
        if self.critic_kind == "recurrent":
            kind = self.critic_cell or self.cell_kind
            units: int | wirings.FullyConnected = self.critic_units
            if self.critic_wiring == "fully_connected":  # all neurons are outputs: the value MLP reads every one
                units = wirings.FullyConnected(self.critic_units, output_dim=self.critic_units)
            self.critic_core: RecurrentCore | None = make_core(
                kind,
                self.features_dim,
                units,
                ode_unfolds=self.ode_unfolds if kind == "ltc" else None,
                mode=self.cfc_mode if kind == "cfc" else None,
                min_elapsed_time=self.min_elapsed_time,
            )
            critic_in = self.critic_core.output_size
        else:
            self.critic_core = None
            critic_in = self.features_dim
        self.critic_mlp, critic_out = _mlp(critic_in, self.net_arch["vf"], self.activation_fn)
        self.value_net = nn.Linear(critic_out, 1)
        self.state_size = max(self.actor_core.state_size, self.critic_core.state_size if self.critic_core else 1)
        self.lstm_hidden_state_shape = (1, 1, self.state_size)  # read by RecurrentActorCriticPolicy.predict

    def _build_action_head(self, n_motor: int) -> None:
        """The exploration parameters (log std) and the map from motor neurons to actions."""
        dist = self.action_dist
        if isinstance(dist, StateDependentNoiseDistribution):
            # exploration features: the whole actor state (all neurons), not just the motor neurons
            _, self.log_std = dist.proba_distribution_net(
                latent_dim=n_motor, latent_sde_dim=self.actor_core.state_size, log_std_init=self.log_std_init
            )
        elif isinstance(dist, DiagGaussianDistribution):
            self.log_std = nn.Parameter(th.full((n_motor,), float(self.log_std_init)))
        if isinstance(self.action_space, spaces.Box) and not self.squash_output:
            self.action_net = _ActionScale(self.action_space.low, self.action_space.high, n_motor)
        elif isinstance(self.action_space, spaces.Box):  # squashed gSDE: SB3 rescales [-1, 1] itself
            self.action_net = _ActionScale(None, None, n_motor)
        else:
            self.action_net = nn.Identity()  # motor neurons are logits

    def _initialise_weights(self) -> None:
        """SB3's orthogonal init of the MLPs and value head, then the LTC cell's init (``ltc_init``)."""
        if self.ortho_init:
            for module, gain in (
                (self.features_extractor, np.sqrt(2)),
                (self.actor_mlp, np.sqrt(2)),
                (self.critic_mlp, np.sqrt(2)),
                (self.value_net, 1.0),
            ):
                module.apply(partial(self.init_weights, gain=gain))
        if self.ltc_init is not None:  # after the MLP's init: centring reads the input for the mean observation
            with th.no_grad():
                rest = self.actor_mlp(th.zeros(1, self.features_dim))
            self.ltc_init.apply(self._ltc_actor_core().cell, rest)

    def _build_optimizer(self, lr_schedule: Schedule) -> None:
        """One parameter group, or the LTC cell's parameters in their own group(s) when their rate is scaled."""
        if self.ltc_lr_scale == 1.0 and self.ltc_output_lr_scale is None:
            # SB3 types optimizer_class as type[Optimizer], whose constructor declares no lr (every subclass has one)
            self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
                self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
            )
        else:  # the LTC cell's parameters in their own group(s), stepped at a multiple of the rate
            cell = self._ltc_actor_core().cell
            output_map = (
                []
                if self.ltc_output_lr_scale is None
                else [
                    p
                    for p in (getattr(cell, "output_w", None), getattr(cell, "output_b", None))
                    if isinstance(p, nn.Parameter)
                ]
            )
            in_cell, in_output_map = {id(p) for p in cell.parameters()}, {id(p) for p in output_map}
            groups: list[dict[str, Any]] = [
                {"params": [p for p in self.parameters() if id(p) not in in_cell]},
                {
                    "params": [p for p in cell.parameters() if id(p) not in in_output_map],
                    LR_SCALE_KEY: self.ltc_lr_scale,
                },
            ]
            if self.ltc_output_lr_scale is not None:  # always its own group: the state dict's layout is fixed
                groups.append({"params": output_map, LR_SCALE_KEY: self.ltc_output_lr_scale})
            self.optimizer = scaled_optimizer_class(self.optimizer_class)(  # type: ignore[call-arg]  # as above
                groups, lr=lr_schedule(1), **self.optimizer_kwargs
            )

    def _ltc_actor_core(self) -> LTCCore:
        """The actor core of a ``cell="ltc"`` policy, which the LTC-only options (``ltc_init``, learning-rate
        scales; ``_check_cell_options`` refuses them for other cells) work on."""
        core = self.actor_core
        if not isinstance(core, LTCCore):
            raise TypeError(f"the ltc_* options need an LTC actor, this policy's cell is {self.cell_kind!r}")
        return core

    @property  # RecurrentPPO reads only the sizes of its nn.LSTM attribute: deliberately not an LSTM here
    def lstm_actor(self) -> PackedStateShape:  # type: ignore[override]
        """The state layout RecurrentPPO allocates buffers from (it reads ``num_layers`` and ``hidden_size``)."""
        return PackedStateShape(hidden_size=self.state_size)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.pop("share_features_extractor", None)
        data.update(
            cell=self.cell_kind,
            wiring=self.wiring_spec,
            ode_unfolds=self.ode_unfolds,
            cfc_mode=self.cfc_mode,
            dt=self.dt,
            time_unit=self.time_unit,
            min_elapsed_time=self.min_elapsed_time,
            critic=self.critic_kind,
            critic_units=self.critic_units,
            critic_cell=self.critic_cell,
            critic_wiring=self.critic_wiring,
            ltc_init=self._ltc_init_spec,
            ltc_lr_scale=self.ltc_lr_scale,
            ltc_output_lr_scale=self.ltc_output_lr_scale,
            ltc_input_mapping=self.ltc_input_mapping,
            normalize_images=self.normalize_images,
        )
        return data

    # -- the recurrent pieces -----------------------------------------------------------------------------------
    def features_and_dt(self, obs) -> tuple[th.Tensor, th.Tensor | float]:
        """Features (N, F) and elapsed cell time ((N,) in time units, or a float) for flattened observations
        ``obs`` as SB3 hands them to the policy (tensors; a dict of them for ``ElapsedTimeObservation``)."""
        space = self.observation_space
        if isinstance(space, spaces.Dict):  # timed (the only Dict accepted, see _split_timed_space)
            x = preprocess_obs(obs[OBSERVATION_KEY], space[OBSERVATION_KEY], normalize_images=self.normalize_images)
            seconds = obs[ELAPSED_TIME_KEY].reshape(-1).float()
        else:
            x = preprocess_obs(obs, space, normalize_images=self.normalize_images)
            seconds = self.dt
        unit = self.dt if self.time_unit is None else self.time_unit
        return self.features_extractor(x), seconds / unit

    def run_core(
        self,
        core: RecurrentCore,
        inputs: th.Tensor,
        dt: th.Tensor | float,
        states: tuple[th.Tensor, th.Tensor],
        episode_starts: th.Tensor,
        return_states: bool = False,
    ) -> tuple:
        """Run ``core`` over RecurrentPPO's flattened batch.

        Args:
            inputs: (n_seq * T, F) in RecurrentPPO's order (sequence-major: all steps of sequence 0 first).
            dt: (n_seq * T,) cell time units, or a float.
            states: ``(h, c)``, each (1, n_seq, H); the core's state is ``h[0, :, :core.state_size]``.
            episode_starts: (n_seq * T,) 0/1.

        Returns:
            outputs (n_seq * T, O) and the new ``(h, c)``; with ``return_states`` also the core's state after
            every step (n_seq * T, S).
        """
        h, c = states
        n_seq = h.shape[1]
        x = inputs.reshape(n_seq, -1, inputs.shape[-1])  # (n_seq, T, F)
        steps = x.shape[1]
        starts = episode_starts.reshape(n_seq, steps)
        if isinstance(dt, th.Tensor):
            dt = dt.reshape(n_seq, steps)
        out, final, every = core.sequence(x, h[0, :, : core.state_size], dt, starts, return_states=True)
        new_h = th.zeros_like(h)
        new_h[0, :, : core.state_size] = final
        if return_states:
            return out.reshape(n_seq * steps, -1), (new_h, c), every.reshape(n_seq * steps, -1)
        return out.reshape(n_seq * steps, -1), (new_h, c)

    def _actor(self, features, dt, states, episode_starts) -> tuple[Distribution, tuple[th.Tensor, th.Tensor]]:
        """The action distribution for every step and the new actor state."""
        inputs = self.actor_mlp(features)
        if isinstance(self.action_dist, StateDependentNoiseDistribution):
            motor, states, every = self.run_core(self.actor_core, inputs, dt, states, episode_starts, True)
            return self.action_dist.proba_distribution(self.action_net(motor), self.log_std, every), states
        motor, states = self.run_core(self.actor_core, inputs, dt, states, episode_starts)
        return self._get_action_dist_from_latent(motor), states

    def _critic(self, features, dt, states, episode_starts):
        if self.critic_core is None:
            latent = features
        else:
            latent, states = self.run_core(self.critic_core, features, dt, states, episode_starts)
        return self.value_net(self.critic_mlp(latent)), states

    # -- SB3 interface ------------------------------------------------------------------------------------------
    # RecurrentActorCriticPolicy's signatures (with recurrent states), which differ from ActorCriticPolicy's.
    def forward(  # type: ignore[override]
        self, obs, lstm_states: RNNStates, episode_starts: th.Tensor, deterministic: bool = False
    ):
        features, dt = self.features_and_dt(obs)
        distribution, pi_states = self._actor(features, dt, lstm_states.pi, episode_starts)
        values, vf_states = self._critic(features, dt, lstm_states.vf, episode_starts)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        shape = self.action_space.shape
        if shape is None:  # SB3's action spaces all have one
            raise ValueError(f"the action space {self.action_space} has no shape")
        actions = actions.reshape((-1, *shape))
        return actions, values, log_prob, RNNStates(pi_states, vf_states)

    def get_distribution(  # type: ignore[override]
        self, obs, lstm_states: tuple[th.Tensor, th.Tensor], episode_starts: th.Tensor
    ) -> tuple[Distribution, tuple[th.Tensor, ...]]:
        features, dt = self.features_and_dt(obs)
        return self._actor(features, dt, lstm_states, episode_starts)

    def predict_values(  # type: ignore[override]
        self, obs, lstm_states: tuple[th.Tensor, th.Tensor], episode_starts: th.Tensor
    ) -> th.Tensor:
        features, dt = self.features_and_dt(obs)
        values, _ = self._critic(features, dt, lstm_states, episode_starts)
        return values

    def evaluate_actions(  # type: ignore[override]
        self, obs, actions: th.Tensor, lstm_states: RNNStates, episode_starts: th.Tensor
    ):
        features, dt = self.features_and_dt(obs)
        distribution, _ = self._actor(features, dt, lstm_states.pi, episode_starts)
        values, _ = self._critic(features, dt, lstm_states.vf, episode_starts)
        return values, distribution.log_prob(actions), distribution.entropy()


def _check_cell_options(
    cell, critic, critic_units, critic_cell, critic_wiring, ltc_init, ltc_lr_scale, ltc_output_lr_scale=None
) -> tuple[float, float | None]:
    """``ValueError`` for an unknown choice or an option that does not apply to the chosen cells; returns
    ``ltc_lr_scale`` as a float and ``ltc_output_lr_scale`` as a float or None."""
    checks.choice("cell", cell, CellKind)
    checks.choice("critic", critic, CriticKind)
    checks.positive_int("critic_units", critic_units)
    if critic_cell is not None:
        checks.choice("critic_cell", critic_cell, CriticCell)
        if critic != "recurrent":
            raise ValueError(f"critic_cell={critic_cell!r} needs critic='recurrent' (the MLP critic has no cell)")
    checks.choice("critic_wiring", critic_wiring, CriticWiring)
    if critic_wiring != "dense" and (critic != "recurrent" or (critic_cell or cell) == "lstm"):
        raise ValueError(f"critic_wiring={critic_wiring!r} needs critic='recurrent' with an 'ltc' or 'cfc' cell")
    if ltc_init is not None and cell != "ltc":
        raise ValueError(f"ltc_init applies only to cell='ltc', not {cell!r}")
    ltc_lr_scale = check_lr_scale("ltc_lr_scale", ltc_lr_scale)
    if ltc_lr_scale != 1.0 and cell != "ltc":
        raise ValueError(f"ltc_lr_scale applies only to cell='ltc', not {cell!r}")
    if ltc_output_lr_scale is not None:
        ltc_output_lr_scale = check_lr_scale("ltc_output_lr_scale", ltc_output_lr_scale)
        if cell != "ltc":
            raise ValueError(f"ltc_output_lr_scale applies only to cell='ltc', not {cell!r}")
    return ltc_lr_scale, ltc_output_lr_scale


def _check_time_options(dt, time_unit) -> None:
    """``ValueError`` unless ``dt`` is a positive finite number of seconds and ``time_unit`` is one or None."""
    checks.positive_real("dt", dt, hint="seconds")
    if time_unit is not None:
        checks.positive_real("time_unit", time_unit, hint="seconds, or None for dt")


def _split_timed_space(observation_space: spaces.Space) -> tuple[bool, spaces.Space]:
    """Whether observations carry their elapsed time (the Dict made by ``ElapsedTimeObservation``), and the space
    of the observation itself. ``ValueError`` for any other Dict space."""
    if is_timed_space(observation_space):
        return True, observation_space[OBSERVATION_KEY]
    if isinstance(observation_space, spaces.Dict):
        raise ValueError(
            "Dict observations are supported only as made by ElapsedTimeObservation "
            f"(keys {OBSERVATION_KEY!r}, {ELAPSED_TIME_KEY!r}); got keys {list(observation_space.spaces)}"
        )
    return False, observation_space


def _resolve_net_arch(net_arch) -> dict[str, list[int]]:
    if net_arch is None:
        return {"pi": [], "vf": [64, 64]}
    if not isinstance(net_arch, dict) or set(net_arch) - {"pi", "vf"}:
        raise ValueError(
            f"net_arch must be a dict with keys 'pi' and/or 'vf' (lists of layer widths), got {net_arch!r}"
        )
    return {"pi": list(net_arch.get("pi", [])), "vf": list(net_arch.get("vf", [64, 64]))}
