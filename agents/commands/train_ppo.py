"""Train a PPO agent: NCP-LTC, NCP-CfC, LSTM (RecurrentPPO) or MLP (PPO) on a Gymnasium env.

Settings come from the presets in agents/configs/ppo.json for the env and policy, then --config FILE (JSON with
the keys of a run's config.json, e.g. {"algo": {"learning_rate": 1e-3}, "n_envs": 8}), then the flags.
The run folder gets config.json, TensorBoard logs (the final evaluation as eval/final_*), checkpoints (every
checkpoint_freq steps and every checkpoint_seconds of wall time), policy.pt (+ vecnormalize.npz) as data for
evaluate/inspect/robustness/export, SB3's model.zip (+ vecnormalize.pkl) and evaluation.json, summarised on the
last line. --resume continues a run from its last checkpoint up to --timesteps (or the run's own total).

Examples:
    ncp-control train-ppo --env PendulumNoVel-v1 --policy cfc --timesteps 100000 --seed 0 --out runs/pnv_cfc_s0
    ncp-control train-ppo --env HopperNoVel-v5 --policy ltc --timesteps 150000 --perturb mass:1.5 --out runs/heavy
    ncp-control train-ppo --env LaneKeeping-v0 --policy ltc --init-from runs/demo --timesteps 20000 --out runs/ft
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ncp_control.agents.commands import checks
from ncp_control.agents.errors import UsageError

POLICIES = ("ltc", "cfc", "lstm", "mlp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", help="Gymnasium id, e.g. Pendulum-v1, PendulumNoVel-v1 (required unless --resume)")
    parser.add_argument("--policy", choices=POLICIES, help="actor: NCP with LTC or CfC cells, or a baseline")
    parser.add_argument("--timesteps", type=int, help="total environment steps (on --resume: the new total)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model and the training envs (default 0)")
    parser.add_argument("--out", help="run folder (default runs/<env>_<policy>_s<seed>_<time>)")
    parser.add_argument("--n-envs", type=int, help="parallel environments (default: the preset's)")
    parser.add_argument("--vec-env", choices=("dummy", "subproc"), help="DummyVecEnv or SubprocVecEnv")
    parser.add_argument("--config", help="JSON file overriding the presets")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (reads SB3's pickled zip and "
        "VecNormalize files: resume only runs you trust)",
    )
    parser.add_argument(
        "--init-from",
        metavar="RUN_DIR",
        help="fine-tune an imitation run (train-bc or demo; ncp-ltc with --policy ltc, ncp-cfc with --policy cfc): "
        "the actor starts as its policy (same deterministic actions), the critic fresh",
    )
    parser.add_argument(
        "--anchor-weight",
        type=float,
        default=None,
        metavar="W",
        help="with --init-from: after each optimizer step pull the actor's weights toward the imitation run's "
        "(L2-SP, theta -= lr * W * (theta - theta_0)); 0 (default) turns it off",
    )
    parser.add_argument(
        "--freeze-conv-head",
        action="store_true",
        help="with --init-from: keep the imitation run's conv head fixed (no backward pass through it: the camera "
        "update about 2x faster; policy_kwargs.features_extractor_kwargs.frozen)",
    )
    parser.add_argument(
        "--perturb",
        action="append",
        default=None,
        metavar="NAME:LEVEL",
        help="train under a perturbation, e.g. pixel_noise:0.1 or mass:1.5 (repeatable; the names of "
        "robustness, one level each; applied to every training env, seeded per env; the evaluations stay "
        "unperturbed)",
    )
    parser.add_argument("--no-progress", action="store_true", help="turn the progress bar off")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--checkpoint-seconds",
        type=float,
        default=None,
        help="also checkpoint every this many seconds of wall time, at a rollout start (default: the "
        "preset's 60; 0: off), so that a kill loses little training",
    )


def check_args(args: argparse.Namespace) -> None:
    """Everything about the command line that can be checked before any work."""
    checks.positive("--timesteps", args.timesteps)
    checks.positive("--n-envs", args.n_envs)
    checks.positive("--threads", args.threads)
    checks.non_negative("--seed", args.seed)
    checks.non_negative("--checkpoint-seconds", args.checkpoint_seconds)
    if args.resume:
        if not args.out:
            raise UsageError("--resume needs --out RUN_DIR (the run to continue)")
        if args.perturb or args.init_from or args.anchor_weight is not None or args.freeze_conv_head:
            raise UsageError(
                "--perturb, --init-from, --anchor-weight and --freeze-conv-head are part of a run's config: a resumed "
                "run keeps its own (config.json)"
            )
        checks.run_folder(args.out, "--out")
        return
    if args.freeze_conv_head and not args.init_from:
        raise UsageError("--freeze-conv-head keeps an imitation run's conv head: it needs --init-from RUN_DIR")
    checks.new_run_flags(("--env", args.env), ("--policy", args.policy), ("--timesteps", args.timesteps))
    checks.env_id(args.env)
    if args.out:
        from ncp_control.agents.ppo import has_progress

        if has_progress(args.out):
            checks.new_run_folder(args.out)


def _overrides(args: argparse.Namespace) -> dict:
    overrides = {}
    if args.n_envs is not None:
        overrides["n_envs"] = args.n_envs
    if args.vec_env is not None:
        overrides["vec_env"] = args.vec_env
    if args.checkpoint_seconds is not None:
        overrides["checkpoint_seconds"] = args.checkpoint_seconds
    if args.perturb:
        overrides["perturb"] = list(args.perturb)
    if args.anchor_weight is not None:
        overrides["anchor_weight"] = args.anchor_weight
    if args.init_from:
        overrides["init_from"] = args.init_from  # init_config fills in the architecture
    if args.freeze_conv_head:
        overrides["policy_kwargs"] = {"features_extractor_kwargs": {"frozen": True}}
    if args.no_progress or not sys.stdout.isatty():
        overrides["progress_bar"] = False  # a bar in a log file is noise: the progress lines say it all
    return overrides


def _new_config(args: argparse.Namespace, overrides: dict) -> dict:
    from ncp_control.agents import ppo

    try:
        config = ppo.resolve_config(
            args.env,
            args.policy,
            timesteps=args.timesteps,
            seed=args.seed,
            config_file=args.config,
            overrides=overrides,
        )
        if args.init_from:
            from ncp_control.agents.ppo.init_from import init_config

            checks.run_folder(args.init_from, "--init-from")
            config = init_config(config, args.init_from)
        ppo.check_model_keys(config)
    except ValueError as error:
        if args.config and not str(error).startswith("config file"):
            raise ValueError(f"--config {args.config} (merged over the presets): {error}") from None
        raise
    return config


def run(args: argparse.Namespace) -> int:
    check_args(args)
    overrides = _overrides(args)
    from ncp_control.agents.runs.load import read_config

    if args.resume:
        config = read_config(args.out)
        if args.timesteps is not None:
            config["timesteps"] = args.timesteps
        config.update(overrides)
        out = args.out
    else:
        config = _new_config(args, overrides)
        out = args.out or f"runs/{args.env}_{args.policy}_s{args.seed}_{time.strftime('%Y%m%d-%H%M%S')}"

    import torch

    from ncp_control.agents import ppo
    from ncp_control.agents.evaluation.episodes import summary_line
    from ncp_control.agents.ppo.callbacks import ProgressLines

    torch.set_num_threads(args.threads)
    print(
        f"{'resuming' if args.resume else 'training'} {config['policy']} on {config['env_id']} for "
        f"{config['timesteps']} steps; run folder {out}",
        flush=True,
    )
    with checks.removed_on_failure(out, keep=ppo.has_progress):
        ppo.train(config, out, resume=args.resume, callbacks=[ProgressLines(config["timesteps"])])
    result = json.loads((Path(out) / ppo.EVALUATION_FILE).read_text())
    print(
        f"{config['policy']} on {config['env_id']}, {result['timesteps']} steps: {summary_line(result)}; "
        f"run folder {out}"
    )
    return 0
