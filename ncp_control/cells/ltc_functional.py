"""The LTC equations as plain functions: the one place to swap in a faster implementation.

Notation (Hasani et al. 2021, "Liquid Time-constant Networks"): neuron potentials ``v`` (B, N); a synapse
``src -> dest`` has a positive weight ``w``, reversal potential ``erev`` and a sigmoidal activation
``sigmoid(sigma * (v_src - mu))``. One ODE step of length ``dt`` is split into ``ode_unfolds`` semi-implicit
(fused) Euler steps of length ``dt / ode_unfolds``::

    cm_t = cm / (dt / ode_unfolds)
    v <- (cm_t * v + gleak * vleak + sum_src w*erev*act) / (cm_t + gleak + sum_src w*act + epsilon)

Everything that does not change within a sequence (positivity transform, masks, products with ``erev``) is
computed once by :func:`ltc_constants`, and the sensory (input) synapses, which do not depend on the state, are
evaluated for a whole sequence at once by :func:`ltc_sensory_drive`. Matrices are indexed ``[src, dest]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from torch import Tensor


class LTCConstants(NamedTuple):
    """Quantities that are constant across the steps of a sequence (shapes: N neurons, I inputs)."""

    w: Tensor  #: (N, N) positive synaptic weight times the 0/1 mask, [src, dest]
    w_erev: Tensor  #: (N, N) ``w * erev``
    mu: Tensor  #: (N, N) activation midpoints
    sigma: Tensor  #: (N, N) activation slopes
    sensory_w: Tensor  #: (I, N) positive sensory weight times the sensory mask
    sensory_w_erev: Tensor  #: (I, N) ``sensory_w * sensory_erev``
    sensory_mu: Tensor  #: (I, N)
    sensory_sigma: Tensor  #: (I, N)
    cm: Tensor  #: (N,) positive membrane capacitance
    gleak: Tensor  #: (N,) positive leak conductance
    gleak_vleak: Tensor  #: (N,) ``gleak * vleak``


def ltc_constants(
    params: Mapping[str, Tensor],
    sparsity_mask: Tensor,
    sensory_sparsity_mask: Tensor,
    positive: Callable[[Tensor], Tensor],
) -> LTCConstants:
    """Hoist the sequence-invariant terms out of the unfold loop.

    Args:
        params: the cell's raw parameters by ncps name (``gleak, vleak, cm, w, sigma, mu, erev`` and their
            ``sensory_`` counterparts).
        sparsity_mask: (N, N) 0/1 mask of internal synapses, [src, dest].
        sensory_sparsity_mask: (I, N) 0/1 mask of sensory synapses, [input, dest].
        positive: softplus (implicit constraints) or identity (explicit constraints, clipped after each step).
    """
    w = positive(params["w"]) * sparsity_mask
    sensory_w = positive(params["sensory_w"]) * sensory_sparsity_mask
    gleak = positive(params["gleak"])
    return LTCConstants(
        w=w,
        w_erev=w * params["erev"],
        mu=params["mu"],
        sigma=params["sigma"],
        sensory_w=sensory_w,
        sensory_w_erev=sensory_w * params["sensory_erev"],
        sensory_mu=params["sensory_mu"],
        sensory_sigma=params["sensory_sigma"],
        cm=positive(params["cm"]),
        gleak=gleak,
        gleak_vleak=gleak * params["vleak"],
    )


def ltc_synapse_activation(pre: Tensor, mu: Tensor, sigma: Tensor) -> Tensor:
    """Sigmoidal opening of every synapse, ``sigmoid(sigma * (pre_src - mu))``.

    The conductance of synapse ``src -> dest`` is ``w[src, dest]`` times this activation, and its current into
    ``dest`` is ``w * act * (erev - v_dest)``; the solver and the inspection tools (``ncp_control.inspect``) both
    call this function so that they cannot disagree.

    Args:
        pre: (..., S) presynaptic values (mapped inputs or neuron potentials).
        mu, sigma: (S, N) midpoints and slopes, [src, dest].
    Returns:
        (..., S, N) activations in (0, 1).
    """
    return (sigma * (pre.unsqueeze(-1) - mu)).sigmoid()


def ltc_sensory_drive(inputs: Tensor, c: LTCConstants) -> tuple[Tensor, Tensor]:
    """Numerator and denominator contributions of the sensory synapses.

    Args:
        inputs: (..., I) mapped inputs; any leading dimensions, e.g. (T, B, I) for a whole sequence.
    Returns:
        ``(numerator, denominator)``, each (..., N).
    """
    act = ltc_synapse_activation(inputs, c.sensory_mu, c.sensory_sigma)  # (..., I, N)
    # sum over source inputs, dim=-2
    return (act * c.sensory_w_erev).sum(dim=-2), (act * c.sensory_w).sum(dim=-2)


def ltc_unfold(
    v: Tensor,
    sensory_numerator: Tensor,
    sensory_denominator: Tensor,
    elapsed_time: Tensor,
    c: LTCConstants,
    ode_unfolds: int,
    epsilon: float,
) -> Tensor:
    """One LTC step: ``ode_unfolds`` fused semi-implicit Euler steps over ``elapsed_time``.

    Args:
        v: (B, N) potentials before the step.
        sensory_numerator, sensory_denominator: (B, N) from :func:`ltc_sensory_drive` for this step's input.
        elapsed_time: (B, 1) step length per sample, already > 0 (see ``MIN_ELAPSED_TIME`` in ``ltc.py``).
        c: constants from :func:`ltc_constants`.
        ode_unfolds: number of solver sub-steps.
        epsilon: added to the denominator, which is > 0 anyway with positive ``cm, gleak, w``; it only guards
            explicit-constraint mode where those may reach 0.
    Returns:
        (B, N) potentials after the step.
    """
    cm_t = c.cm / (elapsed_time / ode_unfolds)  # (B, N): capacitance over sub-step length
    for _ in range(ode_unfolds):
        act = ltc_synapse_activation(v, c.mu, c.sigma)  # (B, N_src, N_dest)
        # sum over source neurons, dim=1
        numerator = cm_t * v + c.gleak_vleak + ((act * c.w_erev).sum(dim=1) + sensory_numerator)
        denominator = cm_t + c.gleak + ((act * c.w).sum(dim=1) + sensory_denominator)
        v = numerator / (denominator + epsilon)
    return v
