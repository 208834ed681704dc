"""Evaluate a trained run (PPO or imitation) on seeded episodes; print a compact table (--json: the full record).

Episode i is reset with seed S + i, so every model sees the same episodes. Lane-keeping envs add
completion_rate, mean_abs_lateral_m, departures_per_km and steering_smoothness.

Example:
    ncp-control evaluate runs/pnv_cfc_s0 --env PendulumNoVel-v1 --episodes 20 --seed 1000 --json eval.json
"""

from __future__ import annotations

import argparse


def add_episode_arguments(parser: argparse.ArgumentParser, env_default: str) -> None:
    """``--env``, ``--episodes``, ``--seed`` and ``--n-envs``: the seeded episodes of ``evaluate`` and
    ``run-exported`` (checked by :func:`check_episode_arguments`)."""
    parser.add_argument("--env", help=f"Gymnasium id (default: {env_default})")
    parser.add_argument("--episodes", type=int, default=10, help="number of episodes (default 10)")
    parser.add_argument("--seed", type=int, default=1000, help="seed of the first episode (default 1000)")
    parser.add_argument("--n-envs", type=int, default=1, help="environments stepped in parallel (default 1)")


def check_episode_arguments(args: argparse.Namespace) -> None:
    """One-line errors for the arguments of :func:`add_episode_arguments`."""
    from ncp_control.agents.commands import checks

    checks.positive("--episodes", args.episodes)
    checks.positive("--n-envs", args.n_envs)
    checks.non_negative("--seed", args.seed)
    checks.env_id(args.env)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="run folder written by train-ppo or train-bc")
    add_episode_arguments(parser, "the run's own env")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic ones")
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="write the full record (per-episode returns, lengths, seeds, ...) as JSON to FILE "
        "('-': to stdout instead of the table)",
    )


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from ncp_control.agents.commands import checks

    checks.run_folder(args.run_dir)
    check_episode_arguments(args)
    checks.writable_file(args.json, "--json")

    import torch

    from ncp_control.agents.evaluation.episodes import evaluate, format_table, progress_printer
    from ncp_control.agents.runs.load import load_run

    torch.set_num_threads(1)
    loaded = load_run(args.run_dir)
    env_id = args.env or loaded.env_id
    result = evaluate(
        loaded.predictor,
        env_id,
        args.episodes,
        args.seed,
        env_kwargs=loaded.env_kwargs if env_id == loaded.env_id else None,
        n_envs=args.n_envs,
        deterministic=not args.stochastic,
        allow_import=args.env is not None,
        progress=progress_printer("evaluated", write=lambda line: print(line, file=sys.stderr, flush=True)),
    )
    result = {"run_dir": str(args.run_dir), "env_id": env_id, **result}
    text = json.dumps(result, indent=2)
    if args.json == "-":
        print(text)
        return 0
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(text + "\n")
        print(f"full record: {args.json}")
    return 0
