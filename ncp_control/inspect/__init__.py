"""Inspect trained NCP policies: record neuron activity, find which command neurons drive each motor output
(synaptic currents, ablation, integrated gradients), plot traces, the trained wiring, PCA and camera saliency,
and write a browsable ``report.html``.

Typical use (for a run folder, the ``ncp-control inspect`` command does this through
:func:`ncp_control.agents.evaluation.run_inspection.inspect_run`)::

    from ncp_control.inspect import circuit_from_policy, inspect_circuit
    circuit = circuit_from_policy(policy)          # SequencePolicy, NCPActorCriticPolicy or RecurrentPPO model
    summary = inspect_circuit(circuit, env, "out/", episodes=2, seed=1000)

Layering: this package reads ``ncp_control.cells`` / ``policies`` and never trains or creates environments; the
environment is passed in.
"""

from __future__ import annotations

from .attribution import (
    CURRENTS_UNDEFINED_FOR_CFC,
    AblationEffect,
    Gradients,
    SynapticCurrents,
    ablation,
    attribution_table,
    integrated_gradients,
    synaptic_currents,
    write_table,
)
from .circuit import Circuit, circuit_from_policy
from .pipeline import inspect_circuit
from .recorder import Recording, closed_loop_ablation, record, replay
from .report import Section, referenced_files, write_report
from .saliency import policy_saliency, saliency_maps, visual_backprop

__all__ = [
    "Circuit",
    "circuit_from_policy",
    "Recording",
    "record",
    "replay",
    "closed_loop_ablation",
    "SynapticCurrents",
    "synaptic_currents",
    "AblationEffect",
    "ablation",
    "Gradients",
    "integrated_gradients",
    "attribution_table",
    "write_table",
    "CURRENTS_UNDEFINED_FOR_CFC",
    "saliency_maps",
    "policy_saliency",
    "visual_backprop",
    "inspect_circuit",
    "Section",
    "write_report",
    "referenced_files",
]
