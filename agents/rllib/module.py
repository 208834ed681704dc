"""The NCP actor-critic as an RLlib ``RLModule`` (new API stack): :class:`NCPRLModule`.

The module holds the package's SB3 policy (:class:`~ncp_control.policies.recurrent_ppo.NCPActorCriticPolicy`,
built by :func:`ncp_control.agents.ppo.build_policy` from the run's ``policy`` and ``policy_kwargs``) and runs its
pieces on RLlib's batches: the features extractor, the actor MLP and the NCP core (LTC or CfC, on the native
kernels where they apply), the action scaling, the log std, and the critic (an MLP, or a recurrent core). So the
weights RLlib trains are exactly a ``policy.pt`` of a PPO run folder, which every command loads.

RLlib's batches: ``obs`` (B, T, ...) with T = ``max_seq_len`` in training and 1 when acting; ``state_in`` a dict of
(B, S) tensors, the state before the first step of each sequence (RLlib cuts sequences at episode ends and pads
them, so no state is reset inside a sequence). Actions: a diagonal Gaussian over the motor neurons' scaled
output (``[mean, log_std]``, RLlib's ``TorchDiagGaussian``), or logits for discrete actions.

Imports ray (only where this module is imported: :mod:`.train` imports it lazily).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

#: keys of ``model_config`` (RLlib passes it to the module): ``policy`` ("ltc"/"cfc"), ``policy_kwargs`` (the
#: SB3 policy's), ``max_seq_len`` (RLlib's training sequence length).
MODEL_CONFIG_KEYS = ("policy", "policy_kwargs", "max_seq_len")


def build_sb3_policy(model_config: dict[str, Any], observation_space, action_space):
    """The SB3 NCP policy that :class:`NCPRLModule` trains (also what the run folder stores)."""
    from ncp_control.agents.ppo.models import build_policy

    config = {"policy": model_config["policy"], "policy_kwargs": dict(model_config["policy_kwargs"]), "algo": {}}
    return build_policy(config, observation_space, action_space)


class NCPRLModule(TorchRLModule, ValueFunctionAPI):
    """A recurrent NCP actor (LTC or CfC on an NCP wiring) and its critic, as an RLlib torch ``RLModule``.

    ``model_config``: ``{"policy": "ltc" | "cfc", "policy_kwargs": {...}, "max_seq_len": int}`` (the
    ``policy_kwargs`` of ``train-ppo``'s presets, without gSDE: RLlib's PPO samples a diagonal Gaussian).
    """

    def setup(self):
        self.policy = build_sb3_policy(self.model_config, self.observation_space, self.action_space)
        self._box = isinstance(self.action_space, spaces.Box)

    # -- state --------------------------------------------------------------------------------------------------
    def get_initial_state(self) -> dict[str, np.ndarray]:
        state = {"actor": np.zeros(self.policy.actor_core.state_size, dtype=np.float32)}
        if self.policy.critic_core is not None:
            state["critic"] = np.zeros(self.policy.critic_core.state_size, dtype=np.float32)
        return state

    # -- forward passes -----------------------------------------------------------------------------------------
    def _features(self, batch) -> tuple[torch.Tensor, torch.Tensor | float, int, int]:
        """Features (B*T, F), elapsed cell time ((B, T) or a float), B, T."""
        obs = batch[Columns.OBS]
        first = next(iter(obs.values())) if isinstance(obs, dict) else obs
        b, t = first.shape[0], first.shape[1]
        if isinstance(obs, dict):
            flat = {k: v.reshape(b * t, *v.shape[2:]) for k, v in obs.items()}
        else:
            flat = obs.reshape(b * t, *obs.shape[2:])
        features, dt = self.policy.features_and_dt(flat)
        if isinstance(dt, torch.Tensor):
            dt = dt.reshape(b, t)
        return features, dt, b, t

    def _run(self, core, inputs, dt, state, b, t):
        starts = torch.zeros(b, t, dtype=torch.bool, device=inputs.device)
        out, final = core.sequence(inputs.reshape(b, t, -1), state, dt, starts)
        return out, final

    def _actor(self, batch, features, dt, b, t):
        policy = self.policy
        motor, final = self._run(
            policy.actor_core, policy.actor_mlp(features), dt, batch[Columns.STATE_IN]["actor"], b, t
        )
        logits = policy.action_net(motor)
        if self._box:
            log_std = policy.log_std.expand_as(logits)
            logits = torch.cat([logits, log_std], dim=-1)
        return logits, final

    def _values(self, batch, features, dt, b, t):
        policy = self.policy
        state = {}
        if policy.critic_core is None:
            latent = features.reshape(b, t, -1)
        else:
            latent, state["critic"] = self._run(
                policy.critic_core, features, dt, batch[Columns.STATE_IN]["critic"], b, t
            )
        return policy.value_net(policy.critic_mlp(latent)).squeeze(-1), state

    def _forward(self, batch, **kwargs):
        features, dt, b, t = self._features(batch)
        logits, actor_state = self._actor(batch, features, dt, b, t)
        state_out = {"actor": actor_state}
        if self.policy.critic_core is not None:  # the critic's state moves on while acting too
            _, critic_state = self._values(batch, features, dt, b, t)
            state_out.update(critic_state)
        return {Columns.ACTION_DIST_INPUTS: logits, Columns.STATE_OUT: state_out}

    def _forward_train(self, batch, **kwargs):
        features, dt, b, t = self._features(batch)
        logits, actor_state = self._actor(batch, features, dt, b, t)
        values, critic_state = self._values(batch, features, dt, b, t)
        return {
            Columns.ACTION_DIST_INPUTS: logits,
            Columns.STATE_OUT: {"actor": actor_state, **critic_state},
            Columns.EMBEDDINGS: values,
        }

    def compute_values(self, batch, embeddings=None):
        if embeddings is not None:  # _forward_train computed them
            return embeddings
        features, dt, b, t = self._features(batch)
        values, _ = self._values(batch, features, dt, b, t)
        return values


class NCPPPOLearner(PPOTorchLearner):
    """RLlib's PPO learner stepping the SB3 policy's own optimiser: Adam with SB3's settings (``eps`` 1e-5) and
    the LTC cell's parameter groups with their learning-rate multipliers (``ltc_lr_scale``, applied inside
    ``step`` by :func:`ncp_control.policies.lr_scale.scaled_optimizer_class`, so RLlib's learning-rate updates,
    which write every group's ``lr``, keep them). RLlib's default, one plain Adam over all parameters, would
    silently train the LTC at a tenth of the rate its preset asks for."""

    def configure_optimizers_for_module(self, module_id, config=None):
        module = self._module[module_id]
        policy = module.unwrapped().policy if hasattr(module, "unwrapped") else module.policy
        params = self.get_parameters(module)
        optimizer = policy.optimizer
        in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if in_optimizer != {id(p) for p in params}:
            raise RuntimeError("the NCP policy's optimiser does not cover exactly the module's parameters")
        self.register_optimizer(module_id=module_id, optimizer=optimizer, params=params, lr_or_lr_schedule=config.lr)
