"""Train an NCP-LTC lane-keeping policy from camera images (demo preset), evaluate it on held-out roads, write plots.

This is the project's main demonstration: about 2 minutes of CPU time (measured 2026-11-28: 505 s on a 2-core
VM shared with four other jobs; see README "Quick start"). It

1. trains the NCP paper's 19-neuron LTC circuit behind a small conv head by sequence behaviour cloning and DAgger
   (`ncp-control train-bc --preset demo`);
2. evaluates it closed loop on held-out roads (reset seeds from 1,000,000, never used in training);
3. writes into the run folder: eval_heldout.json (completion rate, mean |lateral offset|, departures per km,
   steering smoothness), trace.png (steering of the policy and of the expert, and the lateral offset, along one
   held-out road), parameters.md (conv / recurrent / total parameters and synapses of the four models), demo.json
   (timings and the summary);
4. inspects the trained circuit on the first 300 steps of a held-out road (`ncp-control inspect`, reduced):
   inspect/report.html with the neuron traces, the wiring with trained polarity, which command neurons drive the
   motor neuron (synaptic currents, ablation, integrated gradients; attribution.csv), PCA of the neuron states and
   VisualBackProp saliency frames and GIF. Run `ncp-control inspect RUN_DIR --out DIR` for the full set
   (closed-loop ablation, synaptic currents over time, ...).

Example:
  ncp-control demo --out runs/demo
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

from ncp_control.agents.commands import checks
from ncp_control.agents.commands.train_bc import MODELS, evaluate_run, new_run_settings, set_threads, train_run
from ncp_control.agents.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")
    parser.add_argument("--env", default="LaneKeeping-v0", help="Gymnasium id of a camera lane-keeping env")
    parser.add_argument("--model", choices=MODELS, default="ncp-ltc", help="sequence model (default: ncp-ltc)")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--episodes", type=int, default=20, help="held-out roads to evaluate on (default: 20)")
    parser.add_argument("--expert", default=None, help="expert factory 'module:name' (default: the env's)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one training setting of the demo preset",
    )
    parser.add_argument("--resume", action="store_true", help="continue an interrupted demo run in --out")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: the per-step tensors are tiny and extra threads mostly "
        "add synchronisation; measured 5x slower with 2 threads on a busy 2-core machine)",
    )
    parser.add_argument(
        "--checkpoint-seconds",
        type=float,
        default=120.0,
        help="also write checkpoint.pt inside an epoch every this many seconds (default 120; 0: only after each epoch)",
    )


def plot_trace(episode, path: Path, title: str) -> None:
    """Steering (policy vs expert label) and lateral offset along one recorded episode, saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    t = np.cumsum(episode.dt) - episode.dt[0]  # seconds since the first frame
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    ax1.plot(t, episode.executed[:, 0], label="policy (executed)")
    ax1.plot(t, episode.actions[:, 0], "--", label="expert (label)")
    if "road_curvature" in episode.info:
        ax1.plot(
            t,
            episode.info["road_curvature"]
            / max(np.abs(episode.info["road_curvature"]).max(), 1e-9)
            * np.abs(episode.actions[:, 0]).max(),
            ":",
            color="grey",
            label="road curvature (scaled)",
        )
    ax1.set_ylabel("steering (normalised curvature)")
    ax1.legend(loc="upper right", fontsize=8)
    ax1.set_title(title)
    if "lateral_offset_m" in episode.info:
        ax2.plot(t, episode.info["lateral_offset_m"])
    ax2.axhline(0.0, color="grey", lw=0.5)
    ax2.set_ylabel("lateral offset (m)")
    ax2.set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _config(args: argparse.Namespace):
    """The demo's training settings, checked before any work (the stored ones with --resume)."""
    from ncp_control.agents.imitation import preset_config

    checks.positive("--episodes", args.episodes)
    checks.positive("--threads", args.threads)
    checks.non_negative("--seed", args.seed)
    checks.non_negative("--checkpoint-seconds", args.checkpoint_seconds)
    if args.resume:
        return checks.stored_bc_config(args.out)
    settings = new_run_settings(args)
    try:
        return preset_config("demo", **settings)
    except ValueError as error:
        raise UsageError(f"--set {' '.join(args.overrides) or '(none)'}: {error}") from None


@dataclass(frozen=True)
class _Seconds:
    """Wall-clock seconds of the demo's steps."""

    train: float
    evaluate: float
    inspect: float
    total: float


def run(args: argparse.Namespace) -> int:
    config = _config(args)

    from ncp_control.agents.evaluation.episodes import summary_line

    set_threads(args.threads)
    out = Path(args.out)
    t0 = time.perf_counter()
    print(f"[1/3] training {config.model} by behaviour cloning + DAgger (demo preset); run folder {out}", flush=True)
    train_run(config, args)
    t_train = time.perf_counter() - t0

    print(f"[2/3] evaluating on {args.episodes} held-out roads ...", flush=True)
    policy, metrics = evaluate_run(out, config, args.episodes, "      evaluated")
    t_eval = time.perf_counter() - t0 - t_train
    print(f"      {summary_line(metrics)} ({t_eval:.0f} s)", flush=True)

    road = _write_trace(config, policy, out, args)
    table = _write_parameter_table(policy, out)
    t_inspect = time.perf_counter()
    print("[3/3] inspecting the circuit on the first 300 steps of a held-out road ...", flush=True)
    first_top = _inspect(out, road)
    t_inspect = time.perf_counter() - t_inspect
    seconds = _Seconds(train=t_train, evaluate=t_eval, inspect=t_inspect, total=time.perf_counter() - t0)
    _write_summary(out, config, args.episodes, metrics, first_top, seconds)
    _print_results(out, config, args.episodes, metrics, first_top, seconds, table)
    return 0


def _write_trace(config, policy, out: Path, args: argparse.Namespace) -> int:
    """Drive ``policy`` on the first held-out road with the expert labelling each frame and plot it to trace.png;
    returns that road's seed."""
    from ncp_control.agents import imitation as im

    env = im.make_env(config.env_id, config.env_kwargs)
    named = not args.resume or args.expert == config.expert  # an expert from config.json must be in the registry
    expert = im.resolve_expert(config.env_id, config.expert, allow_import=named)(env)
    road = im.heldout_road_seeds(im.HELDOUT_SEED_START, 1)[0]
    trace = im.rollout(env, expert, road, learner=policy, beta=0.0, step_seconds=policy.config.step_seconds)
    env.close()
    plot_trace(
        trace,
        out / "trace.png",
        f"{config.model} on held-out road {road} ({'completed' if trace.success else 'left the lane'})",
    )
    return road


def _write_parameter_table(policy, out: Path) -> str:
    """parameters.md: the parameters of the four models at this run's image size and conv widths; returns the table."""
    from ncp_control.policies.imitation import ModelConfig, build_model, format_parameter_table, parameter_counts

    rows = []
    for kind in MODELS:
        model_config = ModelConfig.from_dict({**policy.config.to_dict(), "kind": kind})
        rows.append(parameter_counts(build_model(model_config, seed=0)))
    table = format_parameter_table(rows)
    (out / "parameters.md").write_text(
        "Parameters of the four models at this run's image size and conv widths. recurrent: trainable entries of "
        "the recurrent core that can receive a gradient (masked-out synapses excluded); recurrent_stored: the dense "
        "tensors as stored.\n\n" + table + "\n"
    )
    return table


def _inspect(out: Path, road: int) -> dict:
    """The reduced inspection of the trained circuit on road ``road`` (``out/inspect``); returns the first motor
    neuron's strongest drivers."""
    from ncp_control.agents.evaluation.run_inspection import inspect_run

    inspection = inspect_run(
        out,
        out / "inspect",
        episodes=1,
        seed=road,
        closed_loop_episodes=0,
        max_steps=300,
        ig_steps=16,
        saliency_frames=2,
        gif_steps=120,
        figures=("traces", "wiring", "heatmap", "pca", "saliency"),
    )
    return next(iter(inspection["top_driver"].values()))  # the first motor neuron's strongest drivers


def _write_summary(out: Path, config, episodes: int, metrics: dict, first_top: dict, seconds: _Seconds) -> None:
    """demo.json: the held-out metrics, the strongest command neuron and the timings."""
    import torch

    summary = {
        "model": config.model,
        "env_id": config.env_id,
        "heldout_roads": episodes,
        "completion_rate": metrics["completion_rate"],
        "mean_abs_lateral_m": metrics["mean_abs_lateral_m"],
        "departures_per_km": metrics["departures_per_km"],
        "steering_smoothness": metrics["steering_smoothness"],
        "seconds_train": seconds.train,
        "seconds_eval": seconds.evaluate,
        "seconds_inspect": seconds.inspect,
        "top_command_neuron": first_top,
        "seconds_total": seconds.total,
        "torch_threads": torch.get_num_threads(),
    }
    (out / "demo.json").write_text(json.dumps(summary, indent=1))


def _print_results(
    out: Path, config, episodes: int, metrics: dict, first_top: dict, seconds: _Seconds, table: str
) -> None:
    """The closing lines: the parameter table, the held-out metrics, the strongest command neuron, the timings."""
    from ncp_control.agents.evaluation.episodes import summary_line

    print(table)
    print(
        f"\n{config.model}: completed {metrics['completion_rate']:.0%} of {episodes} held-out roads, "
        f"mean |lateral offset| {metrics['mean_abs_lateral_m']:.3f} m, "
        f"{metrics['departures_per_km']:.2f} departures/km, steering smoothness {metrics['steering_smoothness']:.4f}"
    )
    print(
        f"command neuron driving the motor neuron most (mean rank of three views): "
        f"{first_top['overall']}; report: {out / 'inspect' / 'report.html'}"
    )
    print(
        f"train {seconds.train:.0f} s, evaluate {seconds.evaluate:.0f} s, inspect {seconds.inspect:.0f} s, "
        f"total {seconds.total:.0f} s"
    )
    print(f"{config.model} held-out: {summary_line(metrics)}; run folder {out}")
