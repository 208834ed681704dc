"""Export a trained run (PPO or imitation) to ONNX: one control step per call, runnable without torch.

The graph takes ``observation`` (B, *obs shape, the env's dtype), ``state`` (B, S) float32 and ``elapsed_time``
(B,) seconds, and returns ``action`` (B, A) float32 (the deterministic action, clipped, PPO normalisation folded
in) and ``state_out`` (B, S). Run it with ``ncp-control run-exported`` or ``ncp_control.deploy.OnnxPolicy``
(numpy + onnxruntime only). See docs/deploy.md.

Example:
  ncp-control export runs/demo --out policy.onnx
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="run folder written by train-ppo, train-rllib, train-bc or demo")
    parser.add_argument("--out", required=True, help="ONNX file to write (e.g. policy.onnx)")


def run(args: argparse.Namespace) -> int:
    import torch

    from ncp_control.agents.export.writer import export_run

    torch.set_num_threads(1)
    metadata = export_run(args.run_dir, args.out)
    print(
        f"wrote {args.out}: {metadata['run_kind']} {metadata['policy']} policy for {metadata['env_id']}, "
        f"state size {metadata['state_size']}, nominal step {metadata['nominal_step_seconds']} s"
    )
    return 0
