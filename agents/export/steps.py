"""One control step of a trained policy as a plain torch module, ready for ``torch.onnx.export``.

Every module here has the same signature, the exported I/O contract (see ``docs/deploy.md``)::

    forward(observation (B, *env observation shape, env dtype), state (B, S) float32, elapsed_time (B,) seconds)
        -> (action (B, A) float32, state_out (B, S) float32)

``action`` is what the run's ``predict(..., deterministic=True)`` returns (clipped to the action space, PPO
observation normalisation applied). Stateless models (PPO ``mlp``, imitation ``cnn``) carry a one-wide dummy state
that they return unchanged. The recurrent cells are replaced by their folded step modules
(``ncp_control.cells.folded``), everything else is the trained module itself.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from ncp_control.cells import CfCCell, LTCCell, WiredCfCCell
from ncp_control.cells.folded import FoldedLTCStep, FoldedWiredCfCStep
from ncp_control.policies.core import CfCCore, LSTMCore, LTCCore, RecurrentCore


class CoreStep(nn.Module):
    """One step of a :class:`RecurrentCore`: ``(x (B, F), state (B, S), seconds (B,)) -> (out, state)``. The cell
    time is ``seconds / time_unit`` clamped at the core's ``min_elapsed_time``, as ``RecurrentCore.step`` makes it.

    Args:
        core: the trained core.
        time_unit: seconds per unit of cell time.
        output_scale, output_shift: (O,) affine map after the core's output; folded into the LTC's read-out.
    """

    def __init__(self, core: RecurrentCore, time_unit: float, output_scale=None, output_shift=None):
        super().__init__()
        self.min_elapsed_time = core.min_elapsed_time
        self.time_unit = float(time_unit)
        self.kind = core.kind
        self.step: FoldedLTCStep | FoldedWiredCfCStep | None = None
        self.affine = None
        if isinstance(core, LTCCore) and isinstance(core.cell, LTCCell):
            self.step = FoldedLTCStep(core.cell, self.time_unit, core.min_elapsed_time, output_scale, output_shift)
            return
        if isinstance(core, CfCCore) and isinstance(core.cell, WiredCfCCell):
            self.step = FoldedWiredCfCStep(core.cell)
        elif isinstance(core, (CfCCore, LSTMCore)):
            self.cell = core.cell
            self.hidden_size = getattr(core, "hidden_size", None)
        else:
            raise ValueError(f"cannot export a {type(core).__name__} with a {type(core.cell).__name__} cell")
        if output_scale is not None:
            self.register_buffer("scale", torch.as_tensor(np.asarray(output_scale), dtype=torch.float32))
            self.register_buffer("shift", torch.as_tensor(np.asarray(output_shift), dtype=torch.float32))
            self.affine = True

    def forward(self, x: Tensor, state: Tensor, seconds: Tensor) -> tuple[Tensor, Tensor]:
        if isinstance(self.step, FoldedLTCStep):
            return self.step(x, state, seconds)  # time unit and clamp folded in
        if self.kind == "lstm":
            h, c = state.split(self.hidden_size, dim=1)
            h, c = self.cell(x, (h, c))
            out, state = h, torch.cat([h, c], dim=1)
        else:
            dt = (seconds / self.time_unit).clamp_min(self.min_elapsed_time)
            if self.step is not None:
                out, state = self.step(x, state, dt)
            else:
                # dense CfC (kind "cfc", no folded step): the cell's own torch code
                out = state = cast(CfCCell, self.cell).step(x, state, dt.unsqueeze(-1))
        if self.affine:
            out = self.shift + self.scale * out
        return out, state


class ImitationStep(nn.Module):
    """A :class:`~ncp_control.policies.imitation.SequencePolicy` step: frames (B, H, W, 3) uint8 -> steering."""

    def __init__(self, model):
        super().__init__()
        self.conv = model.conv
        self.readout = model.readout
        # the core's time unit is the nominal frame (elapsed seconds / step_seconds)
        self.core = None if model.core is None else CoreStep(model.core, float(model.config.step_seconds))

    def forward(self, observation: Tensor, state: Tensor, elapsed_time: Tensor) -> tuple[Tensor, Tensor]:
        features = self.conv(observation)
        if self.core is None:
            return self.readout(features).clamp(-1.0, 1.0), state
        out, state = self.core(features, state, elapsed_time)
        return self.readout(out).clamp(-1.0, 1.0), state


class ObservationPrep(nn.Module):
    """What SB3's ``predict`` does to a raw observation before the features extractor: VecNormalize statistics
    (in float64, as VecNormalize computes), channel transposition of images, ``preprocess_obs`` (float, /255)."""

    def __init__(self, policy, env_space: spaces.Box, normalization: dict[str, Any] | None):
        super().__init__()
        from stable_baselines3.common.preprocessing import is_image_space

        model_space = policy.observation_space
        self.transpose = (
            env_space.shape != model_space.shape
            and len(env_space.shape) == 3
            and tuple(np.array(env_space.shape)[[2, 0, 1]]) == model_space.shape
        )
        self.scale_image = bool(is_image_space(model_space) and policy.normalize_images)
        if normalization is None:
            self.mean = self.std = None
        else:
            self.register_buffer("mean", torch.as_tensor(normalization["mean"], dtype=torch.float64))
            self.register_buffer(
                "std", torch.as_tensor(np.sqrt(normalization["var"] + normalization["epsilon"]), dtype=torch.float64)
            )
            self.clip = float(normalization["clip"])

    def forward(self, observation: Tensor) -> Tensor:
        if self.mean is not None:
            observation = ((observation.double() - self.mean) / self.std).clamp(-self.clip, self.clip)
        if self.transpose:
            observation = observation.permute(0, 3, 1, 2)
        observation = observation.float()
        return observation / 255.0 if self.scale_image else observation


class ActionMap(nn.Module):
    """Deterministic action from the action net's output: SB3's squashing (tanh, then rescale) or its clip."""

    low: Tensor  # buffers
    high: Tensor

    def __init__(self, policy, action_space: spaces.Box):
        super().__init__()
        self.squash = bool(policy.squash_output)
        self.register_buffer("low", torch.as_tensor(action_space.low.reshape(-1), dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(action_space.high.reshape(-1), dtype=torch.float32))

        low, high = np.unique(action_space.low), np.unique(action_space.high)
        # one Clip node when every dimension has the same finite bounds, else Min and Max per dimension
        self.bounds = (
            (float(low[0]), float(high[0]))
            if len(low) == len(high) == 1 and np.isfinite([low[0], high[0]]).all()
            else None
        )

    def forward(self, mean: Tensor) -> Tensor:
        if self.squash:  # SB3: unscale_action(tanh(mean))
            return self.low + 0.5 * (torch.tanh(mean) + 1.0) * (self.high - self.low)
        if self.bounds is not None:
            return mean.clamp(*self.bounds)
        return torch.max(torch.min(mean, self.high), self.low)


class NCPPPOStep(nn.Module):
    """An :class:`~ncp_control.policies.recurrent_ppo.NCPActorCriticPolicy` actor step (the critic is dropped)."""

    def __init__(self, policy, env_space, action_space, normalization):
        super().__init__()
        self.prep = ObservationPrep(policy, env_space, normalization)
        self.features = policy.features_extractor
        self.mlp = policy.actor_mlp
        unit = float(policy.dt if policy.time_unit is None else policy.time_unit)
        net = policy.action_net
        if hasattr(net, "centre") and hasattr(net, "half_width"):  # the fixed motor -> action-mean map: fold it
            scale, shift = net.half_width.detach().double().numpy(), net.centre.detach().double().numpy()
            self.core = CoreStep(policy.actor_core, unit, scale, shift)
            self.action_net = nn.Identity()
        else:  # motor neurons are logits
            self.core = CoreStep(policy.actor_core, unit)
            self.action_net = net
        self.act = ActionMap(policy, action_space)

    def forward(self, observation: Tensor, state: Tensor, elapsed_time: Tensor) -> tuple[Tensor, Tensor]:
        x = self.mlp(self.features(self.prep(observation)))
        motor, state = self.core(x, state, elapsed_time)
        return self.act(self.action_net(motor)), state


class LSTMPPOStep(nn.Module):
    """sb3-contrib ``MlpLstmPolicy`` / ``CnnLstmPolicy`` actor step. State: ``[h of every layer, c of every
    layer]`` flattened to (B, 2 * layers * H)."""

    def __init__(self, policy, env_space, action_space, normalization):
        super().__init__()
        self.prep = ObservationPrep(policy, env_space, normalization)
        self.features = getattr(policy, "pi_features_extractor", policy.features_extractor)
        self.lstm = policy.lstm_actor
        self.layers, self.hidden = self.lstm.num_layers, self.lstm.hidden_size
        self.mlp = policy.mlp_extractor.policy_net
        self.action_net = policy.action_net
        self.act = ActionMap(policy, action_space)

    def forward(self, observation: Tensor, state: Tensor, elapsed_time: Tensor) -> tuple[Tensor, Tensor]:
        features = self.features(self.prep(observation))
        batch = features.shape[0]
        h, c = state.reshape(batch, 2, self.layers, self.hidden).permute(1, 2, 0, 3)  # each (layers, B, H)
        out, (h, c) = self.lstm(features.unsqueeze(0), (h.contiguous(), c.contiguous()))
        state = torch.stack([h, c]).permute(2, 0, 1, 3).reshape(batch, -1)
        return self.act(self.action_net(self.mlp(out[0]))), state


class MLPPPOStep(nn.Module):
    """stable-baselines3 ``MlpPolicy`` / ``CnnPolicy`` actor step (stateless: the dummy state passes through)."""

    def __init__(self, policy, env_space, action_space, normalization):
        super().__init__()
        self.prep = ObservationPrep(policy, env_space, normalization)
        self.features = getattr(policy, "pi_features_extractor", policy.features_extractor)
        self.mlp = policy.mlp_extractor.policy_net
        self.action_net = policy.action_net
        self.act = ActionMap(policy, action_space)

    def forward(self, observation: Tensor, state: Tensor, elapsed_time: Tensor) -> tuple[Tensor, Tensor]:
        return self.act(self.action_net(self.mlp(self.features(self.prep(observation))))), state
