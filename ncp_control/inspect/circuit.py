"""A trained wired policy opened up for inspection: encoder, liquid cell, read-out, and the neurons by id.

Every inspection tool works on a :class:`Circuit`, built by :func:`circuit_from_policy` from

- an imitation model (:class:`ncp_control.policies.imitation.SequencePolicy`, kinds ``ncp-ltc`` / ``ncp-cfc``):
  camera frame -> ``policy.conv`` -> ``policy.core`` -> ``policy.readout`` -> action clipped to [-1, 1];
- a RecurrentPPO actor (:class:`ncp_control.policies.recurrent_ppo.NCPActorCriticPolicy`, or an SB3 model whose
  ``.policy`` is one): observation -> features extractor -> ``actor_mlp`` -> ``actor_core`` -> ``action_net``
  (the deterministic action, clipped to the action space as SB3's ``predict`` does).

Neuron order. Inspection results are always indexed by the **wiring's neuron id** (motor ``[0, M)``, command
``[M, M+C)``, inter ``[M+C, N)`` for NCP). The cells store their state in different orders: an LTC state is in id
order, a wired CfC state is ``[inter, command, motor]`` (``WiredCfCCell.state_neuron_ids``). :meth:`Circuit.to_ids`
and :meth:`Circuit.from_ids` convert; :attr:`Circuit.state_ids` is the id held at each state position.

Clamping (used by ablation and gradients). ``step(..., clamp=(mask, values))`` holds the neurons where ``mask`` is
true at ``values`` (both indexed by neuron id):

- LTC: the potential is set to the value before every one of the solver's ``ode_unfolds`` sub-steps and after the
  last, so every synapse leaving the neuron sees the held potential for the whole step;
- wired CfC: the neuron's layer output is replaced by the value before the next layer reads it.

Without ``clamp`` a step is the core's own ``step`` (bit for bit the policy's computation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..cells.ltc import MIN_ELAPSED_TIME
from ..cells.ltc_functional import LTCConstants, ltc_unfold

__all__ = ["Circuit", "LTCSubsteps", "circuit_from_policy"]

CircuitKind = Literal["ltc", "cfc"]


class LTCSubsteps(NamedTuple):
    """The LTC solver's intermediate results for one step of a batch (see :meth:`Circuit.ltc_substeps`)."""

    potentials: list[Tensor]  #: U + 1 tensors (B, N), state order = id order: before each sub-step, and the result
    constants: LTCConstants  #: the cell's constants (:func:`ncp_control.cells.ltc_functional.ltc_constants`)
    mapped_inputs: Tensor  #: (B, I) inputs after the cell's input mapping (the sensory synapses' presynaptic values)
    substep_time: Tensor  #: (B, 1) length of one sub-step in cell time units (``dt / ode_unfolds``)


class Circuit:
    """A wired LTC or CfC policy with its neurons addressable by wiring id (build with :func:`circuit_from_policy`).

    Args:
        core: a wired ``LTCCore`` or ``CfCCore`` (``ncp_control.policies.core``).
        encode: ``encode(observations, elapsed_seconds) -> (features (B, F), cell_dt (B,))``; observations are a
            batch (numpy, or a dict of numpy arrays), elapsed_seconds a float or None (nominal step).
        act: ``act(motor (B, M)) -> actions (B, *action_shape)`` numpy, the policy's deterministic action.
        image_encoder: for camera policies, ``(run, convs)``: ``run(observations) -> features`` and the list of the
            encoder's ``nn.Conv2d`` layers in order (each followed by a ReLU), for saliency; None otherwise.
        nominal_step_seconds: seconds per step when the environment does not report ``elapsed_time``.
        name: a label for plots and reports.

    Attributes:
        kind: ``"ltc"`` or ``"cfc"``. cell, wiring: the core's cell and wiring. units: N. motor_size: M.
        neuron_types: (N,) str array, type of each neuron id. state_ids: (N,) int array, id at each state position.
    """

    def __init__(
        self,
        core,
        encode: Callable,
        act: Callable,
        *,
        image_encoder: tuple[Callable, list] | None = None,
        nominal_step_seconds: float | None = None,
        name: str = "policy",
    ):
        kind = getattr(core, "kind", None)
        if kind not in ("ltc", "cfc"):
            raise ValueError(
                f"inspection needs an LTC or CfC core on a wiring, got {type(core).__name__} (kind {kind!r}); "
                "LSTM and feed-forward models have no neurons to attribute"
            )
        wiring = getattr(core, "wiring", None)
        if wiring is None:
            raise ValueError(
                "inspection needs a wired core: a dense CfCCell has no wiring (neuron types, synapses); "
                "build the CfC on a wiring such as AutoNCP(19, 1)"
            )
        self.core = core
        self.kind: CircuitKind = kind
        self.cell = core.cell
        self.wiring = wiring
        self.units = int(wiring.units)
        self.motor_size = int(wiring.output_dim)
        self.neuron_types = np.asarray(wiring.neuron_types)
        if kind == "cfc":
            self.state_ids = np.asarray(self.cell.state_neuron_ids, dtype=np.int64)
            self._cfc_layers = [getattr(self.cell, f"layer_{l}") for l in range(self.cell.num_layers)]
        else:
            self.state_ids = np.arange(self.units, dtype=np.int64)
        self.state_positions = np.argsort(self.state_ids)  # id -> position
        self._to_ids = torch.as_tensor(self.state_positions)
        self._from_ids = torch.as_tensor(self.state_ids)
        self.encode = encode
        self.act = act
        self.image_encoder = image_encoder
        self.nominal_step_seconds = nominal_step_seconds
        self.name = name

    # -- neurons -----------------------------------------------------------------------------------------------
    def ids_of(self, neuron_type: str) -> np.ndarray:
        """Ids of the neurons of one type (``"motor"``, ``"command"``, ``"inter"``), ascending."""
        if neuron_type not in ("motor", "command", "inter"):
            raise ValueError(f"neuron_type must be 'motor', 'command' or 'inter', got {neuron_type!r}")
        return np.flatnonzero(self.neuron_types == neuron_type)

    @property
    def driver_ids(self) -> np.ndarray:
        """The neurons attributed to the motor outputs: command neurons, or every non-motor neuron if the wiring
        has no command type (e.g. ``FullyConnected``)."""
        ids = self.ids_of("command")
        return ids if len(ids) else np.flatnonzero(self.neuron_types != "motor")

    @property
    def silence_values(self) -> Tensor:
        """(N,) by id: the value a silenced neuron is held at: its leak potential ``vleak`` (LTC) or 0 (CfC)."""
        if self.kind == "ltc":
            return self.cell.vleak.detach().clone()
        return torch.zeros(self.units)

    def to_ids(self, states: Tensor) -> Tensor:
        """States (..., N) in the cell's state order -> (..., N) in neuron-id order."""
        return states.index_select(-1, self._to_ids.to(states.device))

    def from_ids(self, states: Tensor) -> Tensor:
        """States (..., N) in neuron-id order -> the cell's state order."""
        return states.index_select(-1, self._from_ids.to(states.device))

    def initial_state(self, batch: int) -> Tensor:
        """(batch, N) zeros, the state at an episode start (cell order = what :meth:`step` takes)."""
        return self.core.initial_state(batch)

    # -- one step ----------------------------------------------------------------------------------------------
    def step(
        self, features: Tensor, state: Tensor, cell_dt: Tensor, clamp: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """One cell step.

        Args:
            features: (B, F) cell inputs (the encoder's output).
            state: (B, N) state in the cell's order.
            cell_dt: (B,) elapsed time in cell time units (clamped below at the core's ``min_elapsed_time``).
            clamp: optional ``(mask, values)``: mask (N,) or (B, N) bool and values (N,) or (B, N), both by neuron
                id; see the module docstring.
        Returns:
            ``(motor (B, M), new_state (B, N) in the cell's order)``.
        """
        if clamp is None:
            return self.core.step(features, state, cell_dt)
        dt = self._cell_time(cell_dt, features)
        mask, values = self._clamp_in_cell_order(clamp, features)
        if self.kind == "ltc":
            v = self.ltc_substeps(features, state, cell_dt, clamp).potentials[-1]
            return self.cell.map_outputs(v), v
        x, new = features, []
        start = 0
        for layer, h in zip(self._cfc_layers, torch.split(state, self.cell.layer_sizes, dim=1)):
            stop = start + h.shape[1]
            x = layer.step(x, h, dt)
            x = torch.where(mask[..., start:stop], values[..., start:stop], x)
            new.append(x)
            start = stop
        h = torch.cat(new, dim=1)
        return self.cell.motor_outputs(h), h

    def ltc_substeps(
        self, features: Tensor, state: Tensor, cell_dt: Tensor, clamp: tuple[Tensor, Tensor] | None = None
    ) -> LTCSubsteps:
        """The LTC solver's sub-steps for one step (LTC only).

        Runs ``ncp_control.cells.ltc_functional.ltc_unfold`` one sub-step at a time (with sub-step length
        ``dt / ode_unfolds``, which gives the same numbers as the cell's own loop) and returns every intermediate
        potential. Arguments as in :meth:`step`.
        """
        if self.kind != "ltc":
            raise ValueError("ltc_substeps is defined for LTC circuits only")
        cell = self.cell
        dt = self._cell_time(cell_dt, features).clamp_min(MIN_ELAPSED_TIME)  # as LTCCell.solve
        sub = dt / cell.ode_unfolds
        constants = cell.constants()
        mapped = cell.map_inputs(features)
        numerator, denominator = cell.sensory_drive(mapped, constants)
        v = state
        if clamp is not None:
            mask, values = self._clamp_in_cell_order(clamp, features)
            v = torch.where(mask, values, v)
        potentials = [v]
        for _ in range(cell.ode_unfolds):
            v = ltc_unfold(v, numerator, denominator, sub, constants, 1, cell.epsilon)
            if clamp is not None:
                v = torch.where(mask, values, v)
            potentials.append(v)
        return LTCSubsteps(potentials, constants, mapped, sub)

    def _cell_time(self, cell_dt: Tensor, like: Tensor) -> Tensor:
        """(B,) cell time -> (B, 1) clamped as the core clamps it."""
        dt = torch.as_tensor(cell_dt, dtype=like.dtype, device=like.device)
        if dt.dim() == 0:
            dt = dt.expand(like.shape[0])
        return dt.clamp_min(self.core.min_elapsed_time).reshape(-1, 1)

    def _clamp_in_cell_order(self, clamp, like: Tensor) -> tuple[Tensor, Tensor]:
        mask, values = clamp
        mask = torch.as_tensor(mask, dtype=torch.bool, device=like.device)
        values = torch.as_tensor(values, dtype=like.dtype, device=like.device)
        if mask.shape[-1] != self.units or values.shape[-1] != self.units:
            raise ValueError(
                f"clamp mask and values must have {self.units} entries (one per neuron id) on the last "
                f"axis, got {tuple(mask.shape)} and {tuple(values.shape)}"
            )
        return self.from_ids(mask), self.from_ids(values)

    def __repr__(self) -> str:
        counts = ", ".join(f"{t} {int((self.neuron_types == t).sum())}" for t in ("inter", "command", "motor"))
        return f"Circuit({self.name!r}, kind={self.kind!r}, {counts})"


# ------------------------------------------------------------------------------------------------------------
# adapters
# ------------------------------------------------------------------------------------------------------------
def circuit_from_policy(
    policy: Any, *, observation_transform: Callable | None = None, name: str | None = None
) -> Circuit:
    """Open a trained policy for inspection.

    Args:
        policy: a ``SequencePolicy`` (``ncp-ltc``/``ncp-cfc``), an ``NCPActorCriticPolicy``, or an SB3 model whose
            ``.policy`` is one (e.g. a loaded ``RecurrentPPO``).
        observation_transform: applied to raw observations before the policy sees them (e.g. the run's
            ``VecNormalize.normalize_obs``); PPO policies only.
        name: label for plots (default: the model kind).

    Raises:
        TypeError: an object that is none of the above.
        ValueError: a model without a wired LTC/CfC core (LSTM, CNN, dense CfC) or with an unsupported action space.
    """
    from ..policies.recurrent_ppo import NCPActorCriticPolicy

    inner = getattr(policy, "policy", None)
    if isinstance(inner, NCPActorCriticPolicy):
        policy = inner
    if isinstance(policy, NCPActorCriticPolicy):
        return _ppo_circuit(policy, observation_transform, name)
    if all(hasattr(policy, a) for a in ("conv", "core", "readout", "config")):
        if observation_transform is not None:
            raise ValueError("observation_transform applies to PPO policies only")
        return _sequence_circuit(policy, name)
    raise TypeError(
        f"cannot inspect a {type(policy).__name__}: pass an imitation SequencePolicy (ncp_control.agents.imitation.load_predictor), "
        "an NCPActorCriticPolicy or a RecurrentPPO model using it (ncp_control.agents.runs.load.load_run(...).predictor.policy)"
    )


def _sequence_circuit(policy, name: str | None) -> Circuit:
    if policy.core is None:
        raise ValueError(f"a {policy.config.kind!r} model has no recurrent core to inspect")
    policy.eval()
    step_seconds = float(policy.config.step_seconds)

    def encode(observations, elapsed_seconds=None):
        images = torch.as_tensor(np.asarray(observations))
        features = policy.conv(images)
        seconds = step_seconds if elapsed_seconds is None else float(elapsed_seconds)
        return features, torch.full((features.shape[0],), seconds / step_seconds)  # nominal frames

    def act(motor):
        return policy.readout(motor).clamp(-1.0, 1.0).detach().cpu().numpy()

    return Circuit(
        policy.core,
        encode,
        act,
        image_encoder=conv_head_encoder(policy.conv),
        nominal_step_seconds=step_seconds,
        name=name or policy.config.kind,
    )


def conv_head_encoder(conv_head) -> tuple[Callable, list]:
    """``(run, convs)`` of a :class:`~ncp_control.policies.conv.ConvHead` for saliency: ``run(images (B, H, W, 3))``
    runs the head and ``convs`` are its ``nn.Conv2d`` layers in order (each followed by a ReLU)."""
    convs = [m for m in conv_head.convs if isinstance(m, torch.nn.Conv2d)]
    return (lambda images: conv_head(torch.as_tensor(np.asarray(images)))), convs


def _ppo_circuit(policy, transform: Callable | None, name: str | None) -> Circuit:
    from gymnasium import spaces

    policy.set_training_mode(False)
    if getattr(policy, "squash_output", False):
        raise ValueError("squashed-output PPO policies are not supported by the inspector")
    action_space = policy.action_space
    if not isinstance(action_space, (spaces.Box, spaces.Discrete)):
        raise ValueError(f"inspection supports Box and Discrete action spaces, got {type(action_space).__name__}")

    def encode(observations, elapsed_seconds=None):
        # elapsed_seconds is ignored: the policy reads time from the observation (ElapsedTimeObservation) or its dt
        if transform is not None:
            observations = transform(observations)
        obs, _ = policy.obs_to_tensor(observations)
        features, dt = policy.features_and_dt(obs)
        features = policy.actor_mlp(features)
        dt = torch.as_tensor(dt, dtype=features.dtype).reshape(-1).expand(features.shape[0])
        return features, dt

    def act(motor):
        if isinstance(action_space, spaces.Discrete):
            return motor.argmax(dim=-1).detach().cpu().numpy()
        mean = policy.action_net(motor).detach().cpu().numpy().reshape(-1, *action_space.shape)
        return np.clip(mean, action_space.low, action_space.high)

    image_encoder = None  # ConvHeadExtractor (the default for images) or SB3's NatureCNN: any Conv2d stack
    convs = [m for m in policy.features_extractor.modules() if isinstance(m, torch.nn.Conv2d)]
    if convs:

        def run(observations):
            return encode(observations)[0]

        image_encoder = (run, convs)
    return Circuit(
        policy.actor_core,
        encode,
        act,
        image_encoder=image_encoder,
        nominal_step_seconds=policy.dt,
        name=name or f"ppo-{policy.cell_kind}",
    )
