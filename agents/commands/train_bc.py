"""Train a camera-to-steering policy by sequence behaviour cloning and DAgger from a privileged expert.

Examples:
  ncp-control train-bc --env LaneKeeping-v0 --model ncp-ltc --preset demo --seed 0 --out runs/bc-ltc
  ncp-control train-bc --out runs/bc-ltc --resume              # continue from the last checkpoint
  ncp-control train-bc --model lstm --preset paper --set epochs=30 --out runs/bc-lstm

The run folder receives config.json, demonstrations/, checkpoint.pt (each epoch), progress.jsonl and model.pt;
evaluate it with `ncp-control evaluate RUN_DIR`.
"""

from __future__ import annotations

import argparse
import json

MODELS = ("ncp-ltc", "ncp-cfc", "lstm", "cnn")
PRESET_NAMES = ("demo", "paper")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="LaneKeeping-v0", help="Gymnasium id of a camera lane-keeping env")
    parser.add_argument("--model", choices=MODELS, default="ncp-ltc", help="sequence model (default: ncp-ltc)")
    parser.add_argument("--preset", choices=PRESET_NAMES, default="demo", help="settings preset (default: demo)")
    parser.add_argument("--seed", type=int, default=0, help="seeds weights, training roads, noise, shuffling")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint with its stored settings")
    parser.add_argument("--expert", default=None, help="expert: 'pure-pursuit' or a factory 'module:name' (default: the env's registered one); "
                             "with --resume, repeat a run's own 'module:name' to allow importing it")
    parser.add_argument("--env-kwargs", default=None, type=json.loads,
                        help="JSON object of keyword arguments for gym.make (merged over the preset's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one training setting (a BCConfig field; VALUE parsed as JSON when it can be)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def parse_overrides(items: list[str]) -> dict:
    """``["epochs=3", "lr=0.001"]`` -> ``{"epochs": 3, "lr": 0.001}`` (JSON values, else strings)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def config_from_args(args: argparse.Namespace):
    """The :class:`~agents.imitation.BCConfig` the arguments describe (the stored one with ``--resume``)."""
    from pathlib import Path

    from agents.imitation import BCConfig, preset_config

    if args.resume:
        path = Path(args.out) / "config.json"
        if not path.is_file():
            raise ValueError(f"nothing to resume: {path} does not exist")
        from agents.runs import read_json_object

        stored = read_json_object(path, "run config")
        if not isinstance(stored.get("training"), dict):
            raise ValueError(f"{path} has no 'training' settings: it is not an imitation run's config")
        return BCConfig.from_dict(stored["training"])
    settings = {"env_id": args.env, "model": args.model, "seed": args.seed, "expert": args.expert}
    settings.update(parse_overrides(args.overrides))
    if args.env_kwargs is not None:
        if not isinstance(args.env_kwargs, dict):
            raise ValueError("--env-kwargs must be a JSON object")
        settings["env_kwargs"] = {**preset_config(args.preset, env_id=args.env).env_kwargs, **args.env_kwargs}
    return preset_config(args.preset, **settings)


def print_progress(record: dict) -> None:
    print(
        f"round {record['train/round']} epoch {record['train/epoch']}: loss {record['train/loss']:.4f} "
        f"({record['train/episodes']} episodes, {record['train/frames']} frames, beta {record['train/beta']:.2f}, "
        f"{record['time/seconds']:.0f} s)",
        flush=True,
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from agents.imitation import train

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    config = config_from_args(args)
    run_dir = train(config, args.out, resume=args.resume, callback=print_progress, trusted_expert=args.expert)
    print(f"model written to {run_dir / 'model.pt'}")
    return 0
