"""Which neurons drive each motor output: three views on a recording, and a ranked table.

1. **Synaptic currents** (LTC only, :func:`synaptic_currents`). The fused semi-implicit Euler sub-step of the LTC
   solver (``ncp_control.cells.ltc_functional.ltc_unfold``) is, rearranged,

   ``cm/h * (v' - v) = gleak * (vleak - v') + sum_src g_src,dest * (E_src,dest - v') - epsilon * v'``

   with sub-step length ``h``, the conductance ``g = w * sigmoid(sigma * (v_src - mu))`` taken at the potentials
   ``v`` *before* the sub-step, and the driving force ``E - v'`` at the potential ``v'`` *after* it. So the current
   of a synapse, exactly as the solver uses it, is ``I = g(v) * (E - v')``; positive currents depolarise
   (excitatory), negative ones hyperpolarise (inhibitory). Currents are averaged over the ``ode_unfolds`` sub-steps
   of each step (the charge delivered in the step divided by its length). A driver's *share* of a motor neuron's
   drive at step t is its current divided by the sum of the absolute currents of all synapses onto that motor
   neuron (internal and sensory); its score is the mean absolute share.
   For CfC the view is not defined (a CfC neuron has no membrane, conductances or reversal potentials); use the
   other two views.
2. **Ablation** (:func:`ablation`): each driver neuron in turn is held at its silence value (LTC: its leak
   potential ``vleak``, for every solver sub-step; CfC: 0) while the recorded inputs are replayed (open loop);
   score = mean |change of the motor output|. The closed-loop effect (return, completion, lateral offset) comes
   from :func:`ncp_control.inspect.recorder.closed_loop_ablation`.
3. **Gradients** (:func:`integrated_gradients`): integrated gradients of each motor output at step t with respect
   to the driver states the motor layer reads in that step: LTC: the driver potentials at the start of step t
   (the recorded state before the step), which then evolve through the solver's sub-steps; CfC: the driver layer's
   output in step t. Everything else (inputs, other neurons) stays as recorded. Baseline: the silence value
   (vleak / 0), integrated jointly over all drivers on a straight path (Riemann midpoint rule), so the
   attributions of step t sum to ``motor(actual) - motor(all drivers at baseline)`` up to the quadrature error
   (reported as ``completeness_error``). Score = mean |IG|.

:func:`attribution_table` ranks the drivers of each motor neuron by each view and by their mean rank;
:func:`write_table` saves it as CSV and JSON.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import checks
from .circuit import Circuit
from .recorder import Recording, replay

__all__ = [
    "SynapticCurrents",
    "synaptic_currents",
    "AblationEffect",
    "ablation",
    "Gradients",
    "integrated_gradients",
    "one_step_inputs",
    "actual_driver_states",
    "motor_given_drivers",
    "attribution_table",
    "write_table",
    "CURRENTS_UNDEFINED_FOR_CFC",
]

CURRENTS_UNDEFINED_FOR_CFC = (
    "synaptic currents are not defined for CfC: a CfC neuron has no membrane, conductances or reversal potentials; "
    "use the ablation and gradient views"
)


def one_step_inputs(circuit: Circuit, recording: Recording) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The inputs of every recorded step, to replay it alone: features (T, F), the state before the step (T, N)
    in cell order, and the cell time (T,)."""
    features = torch.as_tensor(recording.features, dtype=torch.float32)
    before = circuit.from_ids(torch.as_tensor(recording.states_before(), dtype=torch.float32))
    return features, before, torch.as_tensor(recording.cell_dt, dtype=torch.float32)


# ------------------------------------------------------------------------------------------------------------
# 1. synaptic currents
# ------------------------------------------------------------------------------------------------------------
@dataclass
class SynapticCurrents:
    """Synaptic conductances and currents of an LTC circuit over a recording (see the module docstring).

    Attributes:
        internal: (T, N, N) current of every internal synapse ``[t, src, dest]`` (zero where there is none),
            mean over the solver's sub-steps; with ``substeps=True``: (T, U, N, N) per sub-step.
        sensory: (T, I, N) (or (T, U, I, N)) currents of the sensory synapses ``[t, input, dest]``.
        conductance: (T, N, N) (or (T, U, N, N)) conductances ``g`` of the internal synapses.
        erev: (N, N) trained reversal potentials (zero where there is no synapse).
        motor_ids: (M,) motor neuron ids; driver_ids: (K,) the attributed neurons (command neurons).
    """

    internal: np.ndarray
    sensory: np.ndarray
    conductance: np.ndarray
    erev: np.ndarray
    motor_ids: np.ndarray
    driver_ids: np.ndarray

    def total_into(self, neuron: int) -> np.ndarray:
        """(T,) (or (T, U)) summed synaptic current into ``neuron`` from every source, internal and sensory."""
        return self.internal[..., neuron].sum(axis=-1) + self.sensory[..., neuron].sum(axis=-1)  # over sources

    def shares(self) -> np.ndarray:
        """(T, K, M): driver k's signed share of motor m's synaptic drive,
        ``I_km / sum_src |I_src,m|`` (internal and sensory sources); 0 where the motor neuron gets no current."""
        internal, sensory = self.internal, self.sensory
        if internal.ndim == 4:  # per sub-step: use the step mean
            internal, sensory = internal.mean(axis=1), sensory.mean(axis=1)
        into_motor = internal[:, :, self.motor_ids]  # (T, N, M)
        total = np.abs(into_motor).sum(axis=1) + np.abs(sensory[:, :, self.motor_ids]).sum(axis=1)  # over sources
        drivers = into_motor[:, self.driver_ids]  # (T, K, M)
        return np.divide(drivers, total[:, None, :], out=np.zeros_like(drivers), where=total[:, None, :] > 0)


@torch.no_grad()
def synaptic_currents(
    circuit: Circuit, recording: Recording, *, substeps: bool = False, batch_size: int = 512
) -> SynapticCurrents:
    """Currents of every synapse at every recorded step (LTC circuits).

    Args:
        circuit: the LTC circuit of the recording.
        recording: from :func:`~ncp_control.inspect.recorder.record`.
        substeps: keep the solver's sub-steps instead of their mean (a U axis after T).
        batch_size: steps computed at once (memory ~ batch_size * U * N^2 floats).
    Raises:
        ValueError: a CfC circuit (see :data:`CURRENTS_UNDEFINED_FOR_CFC`).
    """
    if circuit.kind != "ltc":
        raise ValueError(CURRENTS_UNDEFINED_FOR_CFC)
    features, before, dt = one_step_inputs(circuit, recording)
    from ..cells.ltc_functional import ltc_synapse_activation

    internal_parts, sensory_parts, conductance_parts = [], [], []
    for start in range(0, len(recording), batch_size):
        sl = slice(start, start + batch_size)
        solved = circuit.ltc_substeps(features[sl], before[sl], dt[sl])
        c = solved.constants
        sensory_act = ltc_synapse_activation(solved.mapped_inputs, c.sensory_mu, c.sensory_sigma)  # (B, I, N)
        internal_u, sensory_u, conductance_u = [], [], []
        for v, v_next in zip(solved.potentials[:-1], solved.potentials[1:]):
            act = ltc_synapse_activation(v, c.mu, c.sigma)  # (B, N_src, N_dest), at the potentials before
            drive = v_next.unsqueeze(1)  # (B, 1, N_dest): the driving force uses the potential after the sub-step
            # g * (E - v') written with the solver's own products w*erev and w
            internal_u.append(act * c.w_erev - act * c.w * drive)
            sensory_u.append(sensory_act * c.sensory_w_erev - sensory_act * c.sensory_w * drive)
            conductance_u.append(act * c.w)
        internal_parts.append(torch.stack(internal_u, 1))
        sensory_parts.append(torch.stack(sensory_u, 1))
        conductance_parts.append(torch.stack(conductance_u, 1))
    internal = torch.cat(internal_parts).numpy()
    sensory = torch.cat(sensory_parts).numpy()
    conductance = torch.cat(conductance_parts).numpy()
    if not substeps:  # mean over the sub-steps, axis 1
        internal, sensory, conductance = internal.mean(1), sensory.mean(1), conductance.mean(1)
    erev = (circuit.cell.erev.detach() * circuit.cell.sparsity_mask).numpy()
    return SynapticCurrents(internal, sensory, conductance, erev, circuit.ids_of("motor"), circuit.driver_ids)


# ------------------------------------------------------------------------------------------------------------
# 2. ablation
# ------------------------------------------------------------------------------------------------------------
@dataclass
class AblationEffect:
    """Open-loop effect of silencing each neuron.

    Attributes:
        neurons: (K,) silenced neuron ids (one at a time).
        delta_motor: (K, T, M) motor output with the neuron silenced minus the intact replay's.
    """

    neurons: np.ndarray
    delta_motor: np.ndarray

    def scores(self) -> np.ndarray:
        """(K, M) mean |change of the motor output| over the steps."""
        return np.abs(self.delta_motor).mean(axis=1)  # over steps


@torch.no_grad()
def ablation(circuit: Circuit, recording: Recording, neurons=None) -> AblationEffect:
    """Replay the recorded inputs with each neuron silenced in turn (see the module docstring).

    Args:
        neurons: ids to silence one at a time (default: the circuit's driver neurons).
    """
    neurons = circuit.driver_ids if neurons is None else np.atleast_1d(np.asarray(neurons, dtype=np.int64))
    if len(neurons) == 0 or neurons.min() < 0 or neurons.max() >= circuit.units:
        raise ValueError(f"neurons must be a non-empty list of ids in [0, {circuit.units}), got {neurons.tolist()}")
    k = len(neurons)
    mask = torch.zeros(k + 1, circuit.units, dtype=torch.bool)
    mask[torch.arange(k), torch.as_tensor(neurons)] = True  # pattern k (the last) silences nothing
    values = circuit.silence_values.expand(k + 1, -1)
    motor, _ = replay(circuit, recording, batch_clamp=(mask, values))
    # The intact reference goes through the same clamped code path (with an empty mask), so any difference is the
    # ablation's and not floating-point noise between two implementations.
    return AblationEffect(neurons=neurons, delta_motor=motor[:k] - motor[k:])


# ------------------------------------------------------------------------------------------------------------
# 3. gradients
# ------------------------------------------------------------------------------------------------------------
@dataclass
class Gradients:
    """Gradient attributions of the motor outputs to the driver neurons.

    Attributes:
        neurons: (K,) driver ids.
        integrated: (T, K, M) integrated gradients.
        sensitivity: (T, K, M) plain gradients d motor_m / d driver_k at the actual states.
        completeness_error: (T, M) ``sum_k IG - (motor(actual) - motor(baseline))``.
    """

    neurons: np.ndarray
    integrated: np.ndarray
    sensitivity: np.ndarray
    completeness_error: np.ndarray

    def scores(self) -> np.ndarray:
        """(K, M) mean |integrated gradient| over the steps."""
        return np.abs(self.integrated).mean(axis=0)  # over steps


def motor_given_drivers(circuit: Circuit, features, before, dt, drivers: np.ndarray, z: torch.Tensor) -> torch.Tensor:
    """Motor outputs (B, M) of one step when the drivers' states (B, K) are ``z`` (see the module docstring)."""
    if circuit.kind == "ltc":
        state_ids = circuit.to_ids(before).clone()
        state_ids[:, drivers] = z
        return circuit.step(features, circuit.from_ids(state_ids), dt)[0]
    mask = torch.zeros(circuit.units, dtype=torch.bool)
    mask[drivers] = True
    values = torch.zeros(z.shape[0], circuit.units, dtype=z.dtype)
    values[:, drivers] = z
    return circuit.step(features, before, dt, clamp=(mask, values))[0]


def actual_driver_states(circuit: Circuit, recording: Recording, drivers: np.ndarray) -> torch.Tensor:
    """(T, K) the driver states the motor layer reads: LTC: before the step; CfC: the layer output of the step."""
    states = recording.states_before() if circuit.kind == "ltc" else recording.states
    return torch.as_tensor(states[:, drivers], dtype=torch.float32)


def integrated_gradients(
    circuit: Circuit, recording: Recording, *, steps: int = 32, batch_size: int = 256
) -> Gradients:
    """Integrated gradients of every motor output w.r.t. the driver neurons at every recorded step.

    Args:
        steps: points of the midpoint rule on the path from the baseline to the actual states (>= 1).
        batch_size: recorded steps per batch (each batch runs ``batch_size * steps`` one-step evaluations).
    """
    steps = checks.positive_int("steps", steps)
    drivers = circuit.driver_ids
    features, before, dt = one_step_inputs(circuit, recording)
    actual = actual_driver_states(circuit, recording, drivers)
    baseline = circuit.silence_values[drivers].expand_as(actual)
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps  # midpoints in (0, 1)
    m = circuit.motor_size
    ig_parts, sens_parts, err_parts = [], [], []
    for start in range(0, len(recording), batch_size):
        sl = slice(start, start + batch_size)
        b = features[sl].shape[0]
        a, z0 = actual[sl], baseline[sl]
        rep = lambda t: t.repeat(steps, *([1] * (t.dim() - 1)))  # noqa: E731  alpha-major copies
        path = z0.repeat(steps, 1) + alphas.repeat_interleave(b)[:, None] * (a - z0).repeat(steps, 1)
        grads = _jacobian_rows(circuit, rep(features[sl]), rep(before[sl]), rep(dt[sl]), drivers, path, m)
        mean_grad = grads.reshape(steps, b, len(drivers), m).mean(0)  # over path points
        ig = mean_grad * (a - z0)[:, :, None]
        sens = _jacobian_rows(circuit, features[sl], before[sl], dt[sl], drivers, a.clone(), m)
        with torch.no_grad():
            top = motor_given_drivers(circuit, features[sl], before[sl], dt[sl], drivers, a)
            bottom = motor_given_drivers(circuit, features[sl], before[sl], dt[sl], drivers, z0.clone())
        ig_parts.append(ig)
        sens_parts.append(sens)
        err_parts.append(ig.sum(1) - (top - bottom))  # sum over drivers
    return Gradients(
        neurons=drivers,
        integrated=torch.cat(ig_parts).numpy(),
        sensitivity=torch.cat(sens_parts).numpy(),
        completeness_error=torch.cat(err_parts).numpy(),
    )


def _jacobian_rows(circuit, features, before, dt, drivers, z, motor_size) -> torch.Tensor:
    """(B, K, M) d motor_m / d z_k per sample (samples are independent, so summing over the batch is exact)."""
    z = z.detach().requires_grad_(True)
    with torch.enable_grad():
        motor = motor_given_drivers(circuit, features, before, dt, drivers, z)
        rows = [
            torch.autograd.grad(motor[:, j].sum(), z, retain_graph=j < motor_size - 1)[0] for j in range(motor_size)
        ]
    return torch.stack(rows, dim=-1).detach()


# ------------------------------------------------------------------------------------------------------------
# table
# ------------------------------------------------------------------------------------------------------------
def _ranks(scores: np.ndarray) -> np.ndarray:
    """1 = largest score; ties share the order of appearance."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores), np.int64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def attribution_table(
    circuit: Circuit,
    *,
    currents: SynapticCurrents | None = None,
    ablation_effect: AblationEffect | None = None,
    gradients: Gradients | None = None,
    closed_loop: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One row per (motor neuron, driver neuron), ranked per motor neuron.

    Columns: ``motor``, ``rank`` (by the mean of the available view ranks; ties broken by the ablation score),
    ``neuron``, ``type``, ``synapse`` (``+1``/``-1``: trained polarity = sign of the reversal potential for LTC,
    the wiring's polarity for CfC; 0: no direct synapse), and per view its score and rank: ``current_share``,
    ``current_mean``, ``excitatory_fraction``, ``rank_currents``; ``ablation_delta``, ``rank_ablation``;
    ``ig_abs_mean``, ``ig_mean``, ``sensitivity_mean``, ``rank_gradients``; and the closed-loop effects
    (``closed_loop_delta_return``, ...) when given. Views not computed are None.
    """
    drivers = circuit.driver_ids
    motors = circuit.ids_of("motor")
    polarity = _polarity(circuit)
    views, current = _views(drivers, motors, currents, ablation_effect, gradients)
    closed = {row["neuron"]: row for row in closed_loop or []}
    rows = []
    for mi, motor in enumerate(motors):
        ranks = {name: _ranks(score[:, mi]) for name, score in views.items()}
        overall = _overall_ranks(views, ranks, mi, len(drivers))
        for ki, neuron in enumerate(drivers):
            row: dict[str, Any] = {
                "motor": int(motor),
                "rank": int(overall[ki]),
                "neuron": int(neuron),
                "type": str(circuit.neuron_types[neuron]),
                "synapse": int(polarity[neuron, motor]),
                "current_share": None,
                "current_mean": None,
                "excitatory_fraction": None,
                "rank_currents": None,
                "ablation_delta": None,
                "rank_ablation": None,
                "ig_abs_mean": None,
                "ig_mean": None,
                "sensitivity_mean": None,
                "rank_gradients": None,
            }
            row.update(_view_cells(ki, mi, views, ranks, current, gradients))
            for key, value in closed.get(int(neuron), {}).items():
                if key != "neuron":
                    row[f"closed_loop_{key}"] = float(value)
            rows.append(row)
    rows.sort(key=lambda r: (r["motor"], r["rank"]))
    return rows


def _polarity(circuit: Circuit) -> np.ndarray:
    """Sign of every synapse: the trained reversal potential's for LTC, the wiring's for CfC (0: no synapse)."""
    if circuit.kind == "ltc":
        return np.sign((circuit.cell.erev.detach() * circuit.cell.sparsity_mask).numpy())
    return np.sign(np.asarray(circuit.wiring.adjacency_matrix, dtype=np.float64))


def _views(
    drivers: np.ndarray,
    motors: np.ndarray,
    currents: SynapticCurrents | None,
    ablation_effect: AblationEffect | None,
    gradients: Gradients | None,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The (driver, motor) scores of every view given, and the driver-to-motor currents (T, K, M) when given.

    Raises:
        ValueError: the ablation does not cover exactly the driver neurons, or no view is given.
    """
    views: dict[str, np.ndarray] = {}
    current = None
    if currents is not None:
        shares = currents.shares()  # (T, K, M)
        views["currents"] = np.abs(shares).mean(axis=0)  # over steps
        current = currents.internal[:, drivers][:, :, motors]  # (T, K, M)
        if current.ndim == 4:
            current = current.mean(axis=1)
    if ablation_effect is not None:
        if not np.array_equal(ablation_effect.neurons, drivers):
            raise ValueError("the ablation must cover exactly the circuit's driver neurons for the table")
        views["ablation"] = ablation_effect.scores()
    if gradients is not None:
        views["gradients"] = gradients.scores()
    if not views:
        raise ValueError("give at least one view (currents, ablation_effect, gradients)")
    return views, current


def _overall_ranks(views: dict[str, np.ndarray], ranks: dict[str, np.ndarray], mi: int, count: int) -> np.ndarray:
    """Rank 1.. of every driver for motor ``mi`` by the mean of its view ranks, ties broken by the ablation score."""
    mean_rank = np.mean(np.stack(list(ranks.values())), axis=0)  # over views
    tie = -views["ablation"][:, mi] if "ablation" in views else np.zeros(count)
    overall = np.empty(count, np.int64)
    overall[np.lexsort((tie, mean_rank))] = np.arange(1, count + 1)
    return overall


def _view_cells(
    ki: int,
    mi: int,
    views: dict[str, np.ndarray],
    ranks: dict[str, np.ndarray],
    current: np.ndarray | None,
    gradients: Gradients | None,
) -> dict[str, Any]:
    """The score and rank columns of driver ``ki`` and motor ``mi`` for every view computed."""
    cells: dict[str, Any] = {}
    if current is not None:
        cells.update(
            current_share=float(views["currents"][ki, mi]),
            current_mean=float(current[:, ki, mi].mean()),
            excitatory_fraction=float((current[:, ki, mi] > 0).mean()),
            rank_currents=int(ranks["currents"][ki]),
        )
    if "ablation" in views:
        cells.update(ablation_delta=float(views["ablation"][ki, mi]), rank_ablation=int(ranks["ablation"][ki]))
    if gradients is not None:
        cells.update(
            ig_abs_mean=float(views["gradients"][ki, mi]),
            ig_mean=float(gradients.integrated[:, ki, mi].mean()),
            sensitivity_mean=float(gradients.sensitivity[:, ki, mi].mean()),
            rank_gradients=int(ranks["gradients"][ki]),
        )
    return cells


def write_table(
    rows: list[dict[str, Any]],
    csv_path: str | Path,
    json_path: str | Path | None = None,
    notes: dict[str, Any] | None = None,
) -> None:
    """Write :func:`attribution_table` rows as CSV (empty cells for views not computed) and optionally JSON
    (``{"rows": [...], "notes": {...}}``, NaN written as null)."""
    if not rows:
        raise ValueError("no rows to write")
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})
    if json_path is not None:
        clean = [
            {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()} for row in rows
        ]
        Path(json_path).write_text(json.dumps({"rows": clean, "notes": notes or {}}, indent=1))
