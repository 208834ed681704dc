"""Inspect a trained NCP run: neuron traces, which command neurons drive each motor output, saliency, report.html.

Records the policy for N episodes (episode i reset with seed S + i), computes three attribution views per motor
neuron (LTC synaptic currents, ablation open and closed loop, integrated gradients), and writes into --out:
report.html, traces.png, wiring.png (trained polarity), attribution.csv/.json, attribution_heatmap.png,
currents.png (LTC), pca.png, saliency frames and saliency.gif (camera policies), recording/, summary.json.

Example:
  ncp-control inspect runs/demo --episodes 2 --seed 1000000 --out runs/demo/inspect
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="run folder written by train-ppo, train-rllib, train-bc or demo")
    parser.add_argument("--env", help="Gymnasium id (default: the run's own env, with its env arguments)")
    parser.add_argument("--episodes", type=int, default=1, help="recorded episodes (default 1)")
    parser.add_argument(
        "--seed",
        type=int,
        default=1_000_000,
        help="reset seed of the first episode (default 1000000, the first held-out road)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--closed-loop-episodes",
        type=int,
        default=None,
        help="episodes per silenced command neuron in the closed-loop ablation (default: --episodes; 0 skips it)",
    )
    parser.add_argument("--max-steps", type=int, default=None, help="cap on steps per episode (default: the env's)")
    parser.add_argument("--ig-steps", type=int, default=32, help="integrated-gradients path points (default 32)")
    parser.add_argument("--gif-steps", type=int, default=200, help="steps in the saliency GIF (0: none; default 200)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")


def check_args(args: argparse.Namespace) -> None:
    """Everything about the command line that can be checked before any work."""
    from ncp_control.agents.commands import checks

    checks.run_folder(args.run_dir)
    for flag, value in (
        ("--episodes", args.episodes),
        ("--max-steps", args.max_steps),
        ("--ig-steps", args.ig_steps),
        ("--threads", args.threads),
    ):
        checks.positive(flag, value)
    checks.non_negative("--closed-loop-episodes", args.closed_loop_episodes)
    checks.non_negative("--gif-steps", args.gif_steps)
    checks.non_negative("--seed", args.seed)
    checks.env_id(args.env)


def run(args: argparse.Namespace) -> int:
    check_args(args)

    import json

    import torch

    from ncp_control.agents.commands import checks
    from ncp_control.agents.evaluation.run_inspection import inspect_run

    torch.set_num_threads(args.threads)
    print(f"inspecting {args.run_dir} on {args.episodes} episode(s) ...", flush=True)
    with checks.removed_on_failure(args.out):
        summary = inspect_run(
            args.run_dir,
            args.out,
            env_id=args.env,
            episodes=args.episodes,
            seed=args.seed,
            closed_loop_episodes=args.closed_loop_episodes,
            max_steps=args.max_steps,
            ig_steps=args.ig_steps,
            gif_steps=args.gif_steps,
        )
    print(
        json.dumps(
            {k: summary[k] for k in ("policy", "steps", "top_driver", "pca_explained_variance", "seconds")}, indent=1
        )
    )
    print(f"report: {args.out}/report.html")
    return 0
