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
    parser.add_argument("policy", help="ONNX file written by ncp-control export")
    parser.add_argument("--env", help="Gymnasium id (default: the env stored in the file)")
    parser.add_argument("--episodes", type=int, default=10, help="number of episodes (default 10)")
    parser.add_argument("--seed", type=int, default=1000, help="seed of the first episode (default 1000)")
    parser.add_argument("--n-envs", type=int, default=1, help="environments stepped in parallel (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    parser.add_argument("--json", help="write the metrics to this file")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from agents.evaluation import evaluate
    from ncp_control.deploy import OnnxPolicy

    policy = OnnxPolicy(args.policy, threads=args.threads)
    stored = policy.metadata["env_id"]
    env_id = args.env or stored
    result = evaluate(policy, env_id, args.episodes, args.seed,
                      env_kwargs=policy.metadata.get("env_kwargs") if env_id == stored else None,
                      n_envs=args.n_envs)
    result = {"policy": str(args.policy), "env_id": env_id, **result}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0
