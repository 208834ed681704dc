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
from typing import Any, NamedTuple

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
    out = _output_folder(out, figures)
    clock = _Laps()

    camera = circuit.image_encoder is not None
    recording = record(circuit, env, episodes, seed, keep_observations=camera, max_steps=max_steps, meta=meta)
    recording.save(out / "recording")
    clock.lap("record")

    closed_n = episodes if closed_loop_episodes is None else closed_loop_episodes
    views = _attribution_views(circuit, env, recording, seed, closed_n, max_steps, ig_steps, clock)
    notes = _attribution_notes(circuit, views, ig_steps, closed_n, seed)
    attr.write_table(views.rows, out / "attribution.csv", out / "attribution.json", notes=notes)
    clock.lap("table")

    drawn, ratio = _draw_figures(circuit, recording, views, out, set(figures))
    clock.lap("plots")

    saliency_files: list[Path] = []
    gif = None
    if camera and "saliency" in figures:
        saliency_files, gif = _draw_saliency(circuit, recording, out, saliency_frames, gif_steps)
        clock.lap("saliency")

    summary = _summary(circuit, recording, views.rows, views.closed, ratio, clock.timings)
    summary["files"] = _files_written(out, drawn, saliency_files, gif)
    summary["meta"] = meta or {}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    heading = title or f"Inspection of {circuit.name}"
    _write_report(out, heading, circuit, recording, views.rows, summary, drawn, saliency_files, gif, notes)
    clock.lap("report")
    summary["seconds"] = clock.timings
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _output_folder(out: str | Path, figures: tuple[str, ...]) -> Path:
    """Check the figure names, then create the output folder ``out`` (and its parents)."""
    unknown = set(figures) - set(FIGURES)
    if unknown:
        raise ValueError(f"unknown figures {sorted(unknown)}; choose from {FIGURES}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _files_written(out: Path, drawn: dict[str, Path], saliency_files: list[Path], gif: Path | None) -> list[str]:
    """The figures, saliency frames and GIF written, relative to ``out``, sorted."""
    return sorted(str(p.relative_to(out)) for p in [*drawn.values(), *saliency_files] + ([gif] if gif else []))


class _Laps:
    """Seconds spent in each phase: ``lap(name)`` records the time since the previous lap (or the start)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._clock = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._clock, 3)
        self._clock = now


class _Views(NamedTuple):
    """The attribution views of one recording and the ranked table built from them."""

    currents: attr.SynapticCurrents | None  # LTC only
    effect: attr.AblationEffect  # open-loop ablation
    closed: list[dict[str, Any]] | None  # closed-loop ablation, one entry per silenced neuron (None: skipped)
    gradients: attr.Gradients
    rows: list[dict[str, Any]]  # attribution.attribution_table


def _attribution_views(
    circuit: Circuit,
    env,
    recording: Recording,
    seed: int,
    closed_n: int,
    max_steps: int | None,
    ig_steps: int,
    clock: _Laps,
) -> _Views:
    """Synaptic currents (LTC), open- and closed-loop ablation (``closed_n`` episodes per driver, 0: skipped),
    integrated gradients, and the table ranking the drivers of every motor neuron."""
    currents = attr.synaptic_currents(circuit, recording) if circuit.kind == "ltc" else None
    clock.lap("currents")
    effect = attr.ablation(circuit, recording)
    clock.lap("ablation_open_loop")
    closed = None
    if closed_n:
        # the intact reference is re-recorded on the ablation arithmetic path, so that a neuron without effect
        # shows exactly zero change (the recording above ran the native kernel: float rounding differs)
        closed = closed_loop_ablation(circuit, env, closed_n, seed, circuit.driver_ids, max_steps=max_steps)
    clock.lap("ablation_closed_loop")
    gradients = attr.integrated_gradients(circuit, recording, steps=ig_steps)
    clock.lap("gradients")
    rows = attr.attribution_table(
        circuit, currents=currents, ablation_effect=effect, gradients=gradients, closed_loop=closed
    )
    return _Views(currents, effect, closed, gradients, rows)


def _attribution_notes(circuit: Circuit, views: _Views, ig_steps: int, closed_n: int, seed: int) -> dict[str, Any]:
    """How each view was computed, in words (saved with the table and shown in the report)."""
    return {
        "currents": attr.__doc__.split("1. ")[1].split("2. ")[0].strip()
        if circuit.kind == "ltc"
        else attr.CURRENTS_UNDEFINED_FOR_CFC,
        "ablation": "silence value: leak potential vleak (LTC) / 0 (CfC); score = mean |change of motor output| "
        "over the recorded steps, inputs replayed open loop",
        "gradients": f"integrated gradients, {ig_steps} midpoint steps from the silence value; "
        f"max |completeness error| {float(np.abs(views.gradients.completeness_error).max()):.2e}",
        "closed_loop": None
        if views.closed is None
        else f"{closed_n} episode(s) per silenced neuron, seeds from {seed}",
    }


def _draw_figures(
    circuit: Circuit, recording: Recording, views: _Views, out: Path, wanted: set[str]
) -> tuple[dict[str, Path], np.ndarray]:
    """The ``wanted`` figures other than saliency (``currents`` only for LTC), and the PCA explained-variance
    ratios (computed without a plot when ``pca`` is not wanted)."""
    drawn: dict[str, Path] = {}
    if "traces" in wanted:
        drawn["traces"] = plots.plot_traces(recording, out / "traces.png")
    if "wiring" in wanted:
        drawn["wiring"] = plots.plot_wiring(circuit, out / "wiring.png")
    if "heatmap" in wanted:
        drawn["heatmap"] = plots.plot_attribution_heatmap(views.rows, out / "attribution_heatmap.png")
    if views.currents is not None and "currents" in wanted:
        drawn["currents"] = plots.plot_currents(views.currents, recording, out / "currents.png")
    if "pca" in wanted:
        drawn["pca"], ratio = plots.plot_pca(recording, out / "pca.png")
    else:
        ratio = plots.pca(recording.states.astype(np.float64))[1]
    return drawn, ratio


def _draw_saliency(
    circuit: Circuit, recording: Recording, out: Path, saliency_frames: int, gif_steps: int
) -> tuple[list[Path], Path | None]:
    """VisualBackProp over episode 0 (camera policies): ``saliency_frames`` evenly spaced PNGs in
    ``out/saliency/`` and, unless ``gif_steps`` is 0, the first ``gif_steps`` steps as ``saliency.gif``."""
    from .saliency import saliency_maps, save_frames, save_gif

    rows0 = recording.episode_slice(0)
    frames = recording.observations[rows0]
    count = rows0.stop - rows0.start
    limit = min(count, gif_steps) if gif_steps else min(count, 1)
    picks = np.unique(np.linspace(0, count - 1, max(saliency_frames, 1)).astype(int))
    needed = max(limit, int(picks.max()) + 1)
    masks = saliency_maps(circuit, frames[:needed])
    saliency_files = save_frames(frames, masks, picks, out / "saliency", prefix="step")
    gif = save_gif(frames[:limit], masks[:limit], out / "saliency.gif") if gif_steps else None
    return saliency_files, gif


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


def _write_report(
    out: Path, title: str, circuit: Circuit, recording: Recording, rows, summary, figures, saliency_files, gif, notes
) -> Path:
    outcome = "; ".join(_episode_outcome(i, e) for i, e in enumerate(recording.episodes))
    top = ", ".join(f"{m}: neuron {v['overall']}" for m, v in summary["top_driver"].items())
    sections = [
        Section(
            "Run",
            text=[
                f"{circuit!r}; {len(recording)} recorded steps. {outcome}.",
                f"Strongest driver per motor neuron (mean rank over the views): {top}.",
            ],
            links=[("recording/manifest.json", "recording manifest"), ("summary.json", "summary.json")],
        ),
        Section(
            "Neuron activity",
            text=[
                "States of every layer over episode 0; bottom: the action and, when the "
                "environment reports it, the road curvature."
            ],
            images=_images(figures, ("traces", "neuron traces by layer")),
        ),
        Section("Wiring (trained)", images=_images(figures, ("wiring", "wiring with trained polarity"))),
        Section(
            "Which neurons drive each motor output",
            text=[
                f"Currents: {notes['currents']}",
                f"Ablation: {notes['ablation']}",
                f"Gradients: {notes['gradients']}",
            ]
            + ([f"Closed loop: {notes['closed_loop']}"] if notes["closed_loop"] else []),
            images=_images(figures, ("heatmap", "attribution heatmap"), ("currents", "synaptic currents over time")),
            tables=[("ranked drivers per motor neuron", rows)],
            links=[("attribution.csv", "attribution.csv"), ("attribution.json", "attribution.json")],
        ),
        Section(
            "Principal components",
            text=[
                f"Explained variance of the first components: "
                f"{', '.join(f'{x:.1%}' for x in summary['pca_explained_variance'])}."
            ],
            images=_images(figures, ("pca", "PCA of the neuron states")),
        ),
    ]
    if saliency_files:
        images = [
            (str(p.relative_to(out)), f"VisualBackProp, {p.stem.replace('_', ' ')}: frame | saliency")
            for p in saliency_files
        ]
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
        return text + (
            ", completed"
            if episode["is_success"]
            else ", ended by the env before the goal"
            if episode.get("terminated")
            else ", not completed within the env's time limit"
        )
    return text


def _images(figures: dict[str, Path], *wanted: tuple[str, str]) -> list[tuple[str, str]]:
    """(file name, caption) of the figures that were drawn."""
    return [(figures[key].name, caption) for key, caption in wanted if key in figures]
