"""One call that records a circuit, computes every attribution view, draws every figure and writes ``report.html``.

Files written into ``out`` (see :func:`inspect_circuit`)::

    report.html                 the page that shows everything below
    recording/                  recording.npz + manifest.json (Recording.load reads it back)
    traces.png                  neuron states by layer, action and road curvature (episode 0)
    wiring.png                  the wiring with trained polarity and strength
    attribution.csv / .json     ranked drivers per motor neuron, every view (+ closed-loop ablation)
    attribution_heatmap.png     views x drivers
    currents.png                LTC only: driver currents and shares over time
    pca.png                     PCA of the neuron states coloured by road curvature
    saliency/step_*.png, saliency.gif   camera policies only: VisualBackProp frames and animation
    summary.json                numbers and timings
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import attribution as attr
from . import plots
from .circuit import Circuit
from .recorder import Recording, closed_loop_ablation, record
from .report import Section, write_report

__all__ = ["inspect_circuit", "FIGURES"]

#: Figures :func:`inspect_circuit` can draw (``currents`` only for LTC, ``saliency`` only for camera policies).
FIGURES = ("traces", "wiring", "heatmap", "currents", "pca", "saliency")


def inspect_circuit(
    circuit: Circuit,
    env,
    out: str | Path,
    *,
    episodes: int = 1,
    seed: int = 0,
    closed_loop_episodes: int | None = None,
    max_steps: int | None = None,
    ig_steps: int = 32,
    saliency_frames: int = 4,
    gif_steps: int = 200,
    figures: tuple[str, ...] = FIGURES,
    title: str | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Inspect ``circuit`` driving ``env`` and write the files listed in the module docstring into ``out``.

    Args:
        circuit: from :func:`~ncp_control.inspect.circuit.circuit_from_policy`.
        env: the environment, wrapped as the policy needs (it is reset with seeds ``seed, seed + 1, ...``).
        episodes: recorded episodes (all of them feed the attribution views and the PCA; plots over time show
            episode 0).
        seed: reset seed of the first episode.
        closed_loop_episodes: episodes per silenced driver neuron for the closed-loop ablation (default: ``episodes``;
            0 skips it). Costs ``drivers x closed_loop_episodes`` episodes.
        max_steps: cap on the steps of every episode (recorded and closed-loop); None: the env's own limit.
        ig_steps: points on the integrated-gradients path.
        saliency_frames: saliency PNGs written (evenly spaced over episode 0); camera policies only.
        gif_steps: steps of episode 0 in the saliency GIF (every second step is a GIF frame); 0: no GIF.
        figures: which of :data:`FIGURES` to draw (all by default; fewer is faster).
        title: report title. meta: JSON-ready description saved with the recording and the summary.
    Returns:
        The summary (also written to ``summary.json``): episode outcomes, top driver per motor neuron and view,
        PCA explained variance, timings in seconds, and the files written.
    """
    unknown = set(figures) - set(FIGURES)
    if unknown:
        raise ValueError(f"unknown figures {sorted(unknown)}; choose from {FIGURES}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    camera = circuit.image_encoder is not None
    recording = record(circuit, env, episodes, seed, keep_observations=camera, max_steps=max_steps, meta=meta)
    recording.save(out / "recording")
    lap("record")

    currents = attr.synaptic_currents(circuit, recording) if circuit.kind == "ltc" else None
    lap("currents")
    effect = attr.ablation(circuit, recording)
    lap("ablation_open_loop")
    closed_n = episodes if closed_loop_episodes is None else closed_loop_episodes
    closed = None
    if closed_n:
        # the intact reference is re-recorded on the ablation arithmetic path, so that a neuron without effect
        # shows exactly zero change (the recording above ran the native kernel: float rounding differs)
        closed = closed_loop_ablation(circuit, env, closed_n, seed, circuit.driver_ids, max_steps=max_steps)
    lap("ablation_closed_loop")
    gradients = attr.integrated_gradients(circuit, recording, steps=ig_steps)
    lap("gradients")
    rows = attr.attribution_table(circuit, currents=currents, ablation_effect=effect, gradients=gradients,
                                  closed_loop=closed)
    notes = {
        "currents": attr.__doc__.split("1. ")[1].split("2. ")[0].strip() if circuit.kind == "ltc"
        else attr.CURRENTS_UNDEFINED_FOR_CFC,
        "ablation": "silence value: leak potential vleak (LTC) / 0 (CfC); score = mean |change of motor output| "
                    "over the recorded steps, inputs replayed open loop",
        "gradients": f"integrated gradients, {ig_steps} midpoint steps from the silence value; "
                     f"max |completeness error| {float(np.abs(gradients.completeness_error).max()):.2e}",
        "closed_loop": None if closed is None else f"{closed_n} episode(s) per silenced neuron, seeds from {seed}",
    }
    attr.write_table(rows, out / "attribution.csv", out / "attribution.json", notes=notes)
    lap("table")

    wanted = set(figures)
    figures: dict[str, Path] = {}
    if "traces" in wanted:
        figures["traces"] = plots.plot_traces(recording, out / "traces.png")
    if "wiring" in wanted:
        figures["wiring"] = plots.plot_wiring(circuit, out / "wiring.png")
    if "heatmap" in wanted:
        figures["heatmap"] = plots.plot_attribution_heatmap(rows, out / "attribution_heatmap.png")
    if currents is not None and "currents" in wanted:
        figures["currents"] = plots.plot_currents(currents, recording, out / "currents.png")
    if "pca" in wanted:
        figures["pca"], ratio = plots.plot_pca(recording, out / "pca.png")
    else:
        ratio = plots.pca(recording.states.astype(np.float64))[1]
    lap("plots")

    saliency_files: list[Path] = []
    gif = None
    if camera and "saliency" in wanted:
        from .saliency import save_frames, save_gif, saliency_maps

        rows0 = recording.episode_slice(0)
        frames = recording.observations[rows0]
        count = rows0.stop - rows0.start
        limit = min(count, gif_steps) if gif_steps else min(count, 1)
        picks = np.unique(np.linspace(0, count - 1, max(saliency_frames, 1)).astype(int))
        needed = max(limit, int(picks.max()) + 1)
        masks = saliency_maps(circuit, frames[:needed])
        saliency_files = save_frames(frames, masks, picks, out / "saliency", prefix="step")
        if gif_steps:
            gif = save_gif(frames[:limit], masks[:limit], out / "saliency.gif")
        lap("saliency")

    summary = _summary(circuit, recording, rows, closed, ratio, timings)
    summary["files"] = sorted(str(p.relative_to(out)) for p in [*figures.values(), *saliency_files]
                              + ([gif] if gif else []))
    summary["meta"] = meta or {}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    _write_report(out, title or f"Inspection of {circuit.name}", circuit, recording, rows, summary, figures,
                  saliency_files, gif, notes)
    lap("report")
    summary["seconds"] = timings
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _summary(circuit: Circuit, recording: Recording, rows, closed, ratio, timings) -> dict[str, Any]:
    top: dict[str, dict[str, int]] = {}
    for motor in circuit.ids_of("motor"):
        mine = [r for r in rows if r["motor"] == motor]
        entry = {"overall": min(mine, key=lambda r: r["rank"])["neuron"]}
        for view in ("currents", "ablation", "gradients"):
            ranked = [r for r in mine if r[f"rank_{view}"] is not None]
            if ranked:
                entry[view] = min(ranked, key=lambda r: r[f"rank_{view}"])["neuron"]
        top[f"motor_{int(motor)}"] = entry
    return {
        "policy": circuit.name,
        "kind": circuit.kind,
        "neurons": {t: circuit.ids_of(t).tolist() for t in ("motor", "command", "inter")},
        "steps": len(recording),
        "episodes": recording.episodes,
        "top_driver": top,
        "pca_explained_variance": [float(x) for x in ratio[:5]],
        "closed_loop_ablation": closed,
        "seconds": timings,
    }


def _write_report(out: Path, title: str, circuit: Circuit, recording: Recording, rows, summary, figures,
                  saliency_files, gif, notes) -> Path:
    outcome = "; ".join(_episode_outcome(i, e) for i, e in enumerate(recording.episodes))
    top = ", ".join(f"{m}: neuron {v['overall']}" for m, v in summary["top_driver"].items())
    sections = [
        Section("Run", text=[f"{circuit!r}; {len(recording)} recorded steps. {outcome}.",
                             f"Strongest driver per motor neuron (mean rank over the views): {top}."],
                links=[("recording/manifest.json", "recording manifest"), ("summary.json", "summary.json")]),
        Section("Neuron activity", text=["States of every layer over episode 0; bottom: the action and, when the "
                                         "environment reports it, the road curvature."],
                images=_images(figures, ("traces", "neuron traces by layer"))),
        Section("Wiring (trained)", images=_images(figures, ("wiring", "wiring with trained polarity"))),
        Section("Which neurons drive each motor output",
                text=[f"Currents: {notes['currents']}", f"Ablation: {notes['ablation']}",
                      f"Gradients: {notes['gradients']}"]
                + ([f"Closed loop: {notes['closed_loop']}"] if notes["closed_loop"] else []),
                images=_images(figures, ("heatmap", "attribution heatmap"), ("currents", "synaptic currents over time")),
                tables=[("ranked drivers per motor neuron", rows)],
                links=[("attribution.csv", "attribution.csv"), ("attribution.json", "attribution.json")]),
        Section("Principal components",
                text=[f"Explained variance of the first components: "
                      f"{', '.join(f'{x:.1%}' for x in summary['pca_explained_variance'])}."],
                images=_images(figures, ("pca", "PCA of the neuron states"))),
    ]
    if saliency_files:
        images = [(str(p.relative_to(out)), f"VisualBackProp, {p.stem.replace('_', ' ')}: frame | saliency")
                  for p in saliency_files]
        if gif is not None:
            images.append((gif.name, "VisualBackProp animation (episode 0)"))
        sections.append(Section("Camera saliency (VisualBackProp)", images=images))
    return write_report(out, title, sections)


def _episode_outcome(index: int, episode: dict[str, Any]) -> str:
    """One episode in words; a recording cut by ``max_steps`` says so instead of "not completed"."""
    text = f"episode {index} (seed {episode['seed']}): return {episode['return']:.1f} over {episode['length']} steps"
    if episode.get("stopped_at_max_steps"):
        return text + f", recording stopped at {episode['length']} steps; the episode continued"
    if "is_success" in episode:
        return text + (", completed" if episode["is_success"] else
                       ", ended by the env before the goal" if episode.get("terminated") else
                       ", not completed within the env's time limit")
    return text


def _images(figures: dict[str, Path], *wanted: tuple[str, str]) -> list[tuple[str, str]]:
    """(file name, caption) of the figures that were drawn."""
    return [(figures[key].name, caption) for key, caption in wanted if key in figures]
