"""Figures of a recorded circuit: neuron traces by layer, the wiring with trained polarity, attribution heatmaps,
synaptic currents over time, and PCA of the neuron states. Every function saves one PNG and returns its path
(matplotlib's Agg backend; nothing is shown)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .attribution import SynapticCurrents
from .circuit import Circuit
from .recorder import Recording

__all__ = ["plot_traces", "plot_wiring", "plot_attribution_heatmap", "plot_currents", "plot_pca", "pca_figure", "pca"]

_LAYER_COLORS = {"sensory": "tab:olive", "inter": "tab:blue", "command": "tab:purple", "motor": "tab:orange"}
CURVATURE_KEY = "road_curvature"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_traces(recording: Recording, path, *, episode: int = 0, max_lines: int = 12) -> Path:
    """Neuron states of one episode by layer (sensory inputs, inter, command, motor), then the action with the road
    curvature (``info["road_curvature"]``, right axis) when the environment reports it."""
    plt = _pyplot()
    rows = recording.episode_slice(episode)
    steps = recording.step[rows]
    layers: list[tuple[str, np.ndarray, np.ndarray | None]] = [("sensory", recording.features[rows], None)]
    for neuron_type in ("inter", "command", "motor"):
        type_ids = recording.ids_of(neuron_type)
        if len(type_ids):
            layers.append((neuron_type, recording.states[rows][:, type_ids], type_ids))
    fig, axes = plt.subplots(len(layers) + 1, 1, figsize=(9, 1.7 * (len(layers) + 1)), sharex=True)
    for ax, (name, values, ids) in zip(axes, layers):
        color = _LAYER_COLORS[name]
        n = values.shape[1]
        shown = range(min(n, max_lines)) if name in ("sensory", "inter") else range(n)
        for j in shown:
            label = None if ids is None or name == "inter" else f"{name} {ids[j]}"
            ax.plot(
                steps, values[:, j], lw=0.9, alpha=0.85 if label else 0.5, label=label, color=None if label else color
            )
        what = "inputs" if name == "sensory" else ("neuron" if n == 1 else "neurons")
        ax.set_ylabel(
            f"{name}\n({len(shown)} of {n} {what})" if len(shown) < n else f"{name}\n({n} {what})", fontsize=8
        )
        if name in ("command", "motor"):
            ax.legend(fontsize=6, ncol=4, loc="upper right")
    ax = axes[-1]
    actions = recording.actions[rows]
    for j in range(actions.shape[1]):
        ax.plot(steps, actions[:, j], color="black", lw=1.0, label=f"action {j}")
    ax.set_ylabel("action", fontsize=8)
    if CURVATURE_KEY in recording.info:
        twin = ax.twinx()
        twin.plot(steps, recording.info[CURVATURE_KEY][rows], color="tab:red", lw=0.8, ls="--", label="road curvature")
        twin.set_ylabel("road curvature (1/m)", fontsize=8, color="tab:red")
        twin.legend(fontsize=6, loc="lower right")
    ax.legend(fontsize=6, loc="upper right")
    ax.set_xlabel("step")
    summary = recording.episodes[episode]
    fig.suptitle(
        f"{recording.meta.get('policy', recording.kind)}: episode {episode} (seed {summary['seed']}), "
        f"return {summary['return']:.1f}",
        fontsize=10,
    )
    return _save(fig, path)


def plot_wiring(circuit: Circuit, path) -> Path:
    """The wiring by layer with **trained** polarity and strength (LTC): edge colour = sign of the trained reversal
    potential ``erev``, width ~ ``w * |erev|`` (softplus weight times |erev|, scaled so the strongest synapse is 3).
    The title counts the synapses whose sign flipped in training. CfC has no reversal potentials: its drawing
    shows the wiring's (initial) polarity, and says so."""
    import torch

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 6))
    if circuit.kind == "ltc":
        with torch.no_grad():
            c = circuit.cell.constants()
            erev = c.w_erev.numpy()
            sensory = c.sensory_w_erev.numpy()
        scale = 3.0 / max(np.abs(erev).max(), np.abs(sensory).max(), 1e-12)
        circuit.wiring.draw(ax, erev=erev * scale, sensory_erev=sensory * scale)
        adjacency = np.asarray(circuit.wiring.adjacency_matrix)
        trained = np.sign(circuit.cell.erev.detach().numpy())
        flipped = int(((adjacency != 0) & (np.sign(adjacency) != trained)).sum())
        s_adj = np.asarray(circuit.wiring.sensory_adjacency_matrix)
        s_flipped = int(((s_adj != 0) & (np.sign(s_adj) != np.sign(circuit.cell.sensory_erev.detach().numpy()))).sum())
        ax.set_title(
            f"{ax.get_title()}\ntrained polarity (sign of erev), width ~ w|erev|; "
            f"{flipped} of {int((adjacency != 0).sum())} internal and {s_flipped} of "
            f"{int((s_adj != 0).sum())} sensory synapses flipped sign in training",
            fontsize=9,
        )
    else:
        circuit.wiring.draw(ax)
        ax.set_title(
            f"{ax.get_title()}\nCfC: no reversal potentials, so the wiring's initial polarity is shown", fontsize=9
        )
    return _save(fig, path)


def plot_attribution_heatmap(rows: list[dict[str, Any]], path) -> Path:
    """Per motor neuron, a views x driver-neurons heatmap of the :func:`attribution_table` scores, each view
    normalised to its largest score (raw values written in the cells)."""
    plt = _pyplot()
    views = [
        ("current_share", "currents\n(mean |share|)"),
        ("ablation_delta", "ablation\n(mean |Δ motor|)"),
        ("ig_abs_mean", "int. gradients\n(mean |IG|)"),
    ]
    views = [(key, label) for key, label in views if any(r.get(key) is not None for r in rows)]
    motors = sorted({r["motor"] for r in rows})
    width = 1.2 + 0.9 * len({r["neuron"] for r in rows})
    fig, axes = plt.subplots(len(motors), 1, figsize=(width, 1.6 + 1.1 * len(views) * len(motors)), squeeze=False)
    for ax, motor in zip(axes[:, 0], motors):
        mine = sorted((r for r in rows if r["motor"] == motor), key=lambda r: r["neuron"])
        raw = np.array([[r[key] for r in mine] for key, _ in views], dtype=np.float64)
        norm = raw / np.maximum(raw.max(axis=1, keepdims=True), 1e-12)  # per view (row)
        ax.imshow(norm, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_yticks(range(len(views)), [label for _, label in views], fontsize=8)
        ax.set_xticks(
            range(len(mine)), [f"{r['type'][:3]} {r['neuron']}\n(rank {r['rank']})" for r in mine], fontsize=7
        )
        for i in range(raw.shape[0]):
            for j in range(raw.shape[1]):
                ax.text(
                    j,
                    i,
                    f"{raw[i, j]:.3g}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if norm[i, j] > 0.6 else "white",
                )
        ax.set_title(f"motor neuron {motor}: which neurons drive it (each row scaled to its maximum)", fontsize=9)
    return _save(fig, path)


def plot_currents(currents: SynapticCurrents, recording: Recording, path, *, episode: int = 0) -> Path:
    """LTC only: per motor neuron, the current of each driver's synapse over one episode (with the road curvature)
    and each driver's signed share of the motor neuron's synaptic drive (red: excitatory, blue: inhibitory)."""
    plt = _pyplot()
    rows = recording.episode_slice(episode)
    steps = recording.step[rows]
    internal = currents.internal if currents.internal.ndim == 3 else currents.internal.mean(axis=1)
    shares = currents.shares()[rows]  # (T, K, M)
    motors, drivers = currents.motor_ids, currents.driver_ids
    fig, axes = plt.subplots(2 * len(motors), 1, figsize=(9, 4.2 * len(motors)), sharex=True, squeeze=False)
    for mi, motor in enumerate(motors):
        ax = axes[2 * mi, 0]
        for driver in drivers:
            if currents.erev[driver, motor] != 0:
                ax.plot(
                    steps,
                    internal[rows, driver, motor],
                    lw=0.9,
                    label=f"{driver} (E={currents.erev[driver, motor]:+.2f})",
                )
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylabel(f"current into\nmotor {motor}", fontsize=8)
        ax.legend(fontsize=6, ncol=3, loc="upper right", title="driver (trained E)", title_fontsize=6)
        if CURVATURE_KEY in recording.info:
            twin = ax.twinx()
            twin.plot(steps, recording.info[CURVATURE_KEY][rows], color="black", lw=0.6, ls=":")
            twin.set_ylabel("curvature (1/m), dotted", fontsize=7)
        ax = axes[2 * mi + 1, 0]
        limit = max(np.abs(shares[:, :, mi]).max(), 1e-12)
        ax.imshow(
            shares[:, :, mi].T,
            aspect="auto",
            cmap="RdBu_r",
            vmin=-limit,
            vmax=limit,
            interpolation="nearest",
            extent=(steps[0] - 0.5, steps[-1] + 0.5, len(drivers) - 0.5, -0.5),
        )
        ax.set_yticks(range(len(drivers)), [str(d) for d in drivers], fontsize=7)
        ax.set_ylabel("driver: share\nof drive", fontsize=8)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle("synaptic currents g(E - v) as the LTC solver uses them (mean over its sub-steps)", fontsize=10)
    return _save(fig, path)


def pca(states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Principal components of (T, N) states: ``(scores (T, N'), explained_variance_ratio (N',))``, N' = min(T, N),
    by numpy SVD of the centred states."""
    centred = states - states.mean(axis=0)  # centre each neuron over time
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    variance = s**2
    ratio = variance / max(variance.sum(), 1e-30)  # 1e-30: constant states give ratios of 0, not NaN
    return u * s, ratio


def plot_pca(recording: Recording, path, *, color_key: str = CURVATURE_KEY) -> tuple[Path, np.ndarray]:
    """PCA of all neuron states (every step of every episode): PC1 vs PC2 coloured by ``info[color_key]`` (the
    action if the env has no such key), and the explained variance per component. Returns the path and the
    explained-variance ratios."""
    fig, ratio = pca_figure(recording, color_key=color_key)
    return _save(fig, path), ratio


def pca_figure(recording: Recording, *, color_key: str = CURVATURE_KEY):
    """The figure of :func:`plot_pca` (matplotlib ``Figure``, not saved) and the explained-variance ratios.
    Constrained layout keeps the colour bar's label clear of the right panel's axis label."""
    plt = _pyplot()
    scores, ratio = pca(recording.states.astype(np.float64))
    if color_key in recording.info and np.isfinite(recording.info[color_key]).any():
        color, label = recording.info[color_key], color_key.replace("_", " ")
    else:
        color, label = recording.actions[:, 0], "action 0"
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(10.5, 4), gridspec_kw={"width_ratios": [1.4, 1]}, layout="constrained"
    )
    second = scores[:, 1] if scores.shape[1] > 1 else np.zeros(len(scores))
    limit = max(np.nanmax(np.abs(color)), 1e-12)
    points = ax1.scatter(scores[:, 0], second, c=color, cmap="coolwarm", vmin=-limit, vmax=limit, s=5)
    fig.colorbar(points, ax=ax1, label=label, pad=0.02)
    ax1.set_xlabel(f"PC1 ({ratio[0]:.1%})")
    ax1.set_ylabel(f"PC2 ({ratio[1]:.1%})" if len(ratio) > 1 else "PC2")
    shown = min(len(ratio), 10)
    ax2.bar(range(1, shown + 1), ratio[:shown], color="tab:blue", label="per component")
    ax2.plot(range(1, shown + 1), np.cumsum(ratio[:shown]), "k.-", label="cumulative")
    ax2.set_xlabel("principal component")
    ax2.set_ylabel("explained variance ratio")
    ax2.set_ylim(0, 1.05)
    ax2.legend(fontsize=8)
    fig.suptitle(
        f"PCA of {recording.states.shape[1]} neurons over {len(recording)} steps: PC1 explains {ratio[0]:.1%}",
        fontsize=10,
    )
    return fig, ratio
