"""Run an exported ONNX policy (``ncp-control export``) on seeded episodes, without torch; print the metrics.

Prints the same metrics as ``evaluate`` (episode i is reset with seed S + i; lane-keeping envs add
completion_rate, mean_abs_lateral_m, departures_per_km and steering_smoothness). The environment defaults to the
one stored in the file, with its env kwargs.

Example:
  ncp-control run-exported policy.onnx --env PendulumNoVel-v1 --episodes 20 --seed 1000
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ncp_control.agents.commands.evaluate import add_episode_arguments

    parser.add_argument("policy", help="ONNX file written by ncp-control export")
    add_episode_arguments(parser, "the env stored in the file")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    parser.add_argument("--json", help="write the metrics to this file")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ncp_control.agents.commands import checks
    from ncp_control.agents.commands.evaluate import check_episode_arguments
    from ncp_control.agents.evaluation.episodes import evaluate
    from ncp_control.deploy import OnnxPolicy

    check_episode_arguments(args)
    checks.positive("--threads", args.threads)
    checks.writable_file(args.json, "--json")
    policy = OnnxPolicy(args.policy, threads=args.threads)
    stored = policy.metadata["env_id"]
    env_id = args.env or stored
    result = evaluate(
        policy,
        env_id,
        args.episodes,
        args.seed,
        env_kwargs=policy.metadata.get("env_kwargs") if env_id == stored else None,
        n_envs=args.n_envs,
    )
    result = {"policy": str(args.policy), "env_id": env_id, **result}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0
