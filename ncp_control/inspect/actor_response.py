"""How strongly an (untrained) recurrent PPO actor's action follows its input, and the LTC's time constants.

Used by ``scripts/diagnose_ltc_init.py`` and the tests of the LTC actor's initialisation: a policy-gradient method
can only improve an actor whose action moves with its observations, so the spread of the deterministic action over
random observations and its gain (derivative with respect to the current observation) are the quantities an
initialisation must get right. Reads an ``NCPActorCriticPolicy``; never trains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..cells.ltc_functional import ltc_synapse_activation


@dataclass(frozen=True)
class ActorResponse:
    """The deterministic action's response to ``steps`` observations drawn from N(0, 1) (normalised
    observations), from a zero state, one environment step each."""

    action_std: float
    """Standard deviation of the action mean over the steps (all action dimensions together)."""
    action_mean: float
    """Mean of the action mean (an offset the actor starts with)."""
    gain: float
    """Mean over steps of |d action / d observation of the same step| (summed over observation dimensions)."""
    layer_std: dict[str, float]
    """LTC/CfC: mean over neurons of each neuron type's potential spread (``motor``, ``command``, ``inter``)."""
    tau_steps: dict[str, float]
    """LTC only: median time constant ``cm / (gleak + sum of open synaptic conductances)`` per neuron type, in
    environment steps (the cell's clock unit when ``time_unit`` is the step)."""


def actor_response(policy, steps: int = 200, seed: int = 0) -> ActorResponse:
    """Drive ``policy``'s actor (an ``NCPActorCriticPolicy``) with ``steps`` N(0, 1) observations.

    Args:
        policy: the policy; its observation space must be a flat Box.
        steps: number of consecutive steps (one episode, no reset).
        seed: seed of the observation draw.
    """
    generator = torch.Generator().manual_seed(seed)
    n_obs = int(np.prod(policy.observation_space.shape))
    obs = torch.randn(steps, 1, n_obs, generator=generator)
    size = policy.state_size
    state = (torch.zeros(1, 1, size), torch.zeros(1, 1, size))
    start = torch.zeros(1)
    means, gains, states, taus = [], [], [], []
    for t in range(steps):
        x = obs[t].clone().requires_grad_(True)
        dist, new_state = policy.get_distribution(x, state, start)
        mean = dist.distribution.mean
        (grad,) = torch.autograd.grad(mean.sum(), x)
        gains.append(float(grad.abs().sum()) / mean.shape[-1])
        means.append(mean.detach().reshape(-1).numpy())
        if policy.cell_kind == "ltc":
            taus.append(_ltc_time_constants(policy, obs[t], state[0][0, :, : policy.actor_core.state_size]))
        state = tuple(s.detach() for s in new_state)
        states.append(state[0][0, 0, : policy.actor_core.state_size].numpy())
    actions, state_rows = np.concatenate(means), np.stack(states)
    types = _neuron_types(policy)
    layer_std = {
        k: float(state_rows[:, types == k].std(axis=0).mean())
        for k in ("motor", "command", "inter")
        if np.any(types == k)
    }
    tau = {}
    if taus:
        tau_rows = np.stack(taus)
        tau = {k: float(np.median(tau_rows[:, types == k])) for k in layer_std}
    return ActorResponse(float(actions.std()), float(actions.mean()), float(np.mean(gains)), layer_std, tau)


@torch.no_grad()
def _ltc_time_constants(policy, obs: torch.Tensor, state: torch.Tensor) -> np.ndarray:
    """(N,) time constants of the actor's LTC neurons at ``state`` (1, N) with input ``obs`` (1, F)."""
    cell = policy.actor_core.cell
    c = cell.constants()
    features = policy.extract_features(obs, policy.features_extractor)  # SB3's public preprocessing + extractor
    x = cell.map_inputs(policy.actor_mlp(features))
    sensory = (ltc_synapse_activation(x, c.sensory_mu, c.sensory_sigma) * c.sensory_w).sum(dim=-2)  # sum over inputs
    internal = (ltc_synapse_activation(state, c.mu, c.sigma) * c.w).sum(dim=1)  # sum over source neurons, dim=1
    return (c.cm / (c.gleak + sensory + internal)).reshape(-1).numpy()


def _neuron_types(policy) -> np.ndarray:
    """Neuron type of every state entry, in the core's state order (LTC: wiring order; wired CfC: its order)."""
    wiring = policy.wiring
    cell = policy.actor_core.cell
    order = getattr(cell, "state_neuron_ids", None) or list(range(wiring.units))
    return np.array([wiring.get_type_of_neuron(i) for i in order])


def lag_gains(
    policy, steps: int = 60, seed: int = 0, lags: tuple[int, ...] = (0, 1, 2, 4), burn_in: int = 20
) -> dict[int, float]:
    """How much the action at step t moves with the observation ``L`` steps earlier: mean over t >= ``burn_in``
    (every 5th step) of |d action_t / d observation_{t-L}|, summed over observation dimensions, for each lag L.

    Lag 0 is the immediate response (``ActorResponse.gain``); lags >= 1 are memory. N(0, 1) observations, zero
    initial state, one episode.
    """
    if not lags or min(lags) < 0 or max(lags) > burn_in or burn_in >= steps:
        raise ValueError(f"lags must be in [0, burn_in={burn_in}] and burn_in < steps={steps}, got {lags}")
    generator = torch.Generator().manual_seed(seed)
    n_obs = int(np.prod(policy.observation_space.shape))
    obs = torch.randn(steps, 1, n_obs, generator=generator).requires_grad_(True)
    size = policy.state_size
    state = (torch.zeros(1, 1, size), torch.zeros(1, 1, size))
    actions = []
    for t in range(steps):
        dist, state = policy.get_distribution(obs[t], state, torch.zeros(1))
        actions.append(dist.distribution.mean.sum())
    sums: dict[int, list[float]] = {lag: [] for lag in lags}
    for t in range(burn_in, steps, 5):
        (grad,) = torch.autograd.grad(actions[t], obs, retain_graph=True)  # (steps, 1, n_obs)
        for lag in lags:
            sums[lag].append(float(grad[t - lag].abs().sum()))
    return {lag: float(np.mean(values)) for lag, values in sums.items()}
