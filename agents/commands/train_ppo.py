"""Train a PPO agent: NCP-LTC, NCP-CfC, LSTM (RecurrentPPO) or MLP (PPO) on a Gymnasium env.

Settings come from the presets in agents/configs/ppo.json for the env and policy, then --config FILE (JSON with
the keys of a run's config.json, e.g. {"algo": {"learning_rate": 1e-3}, "n_envs": 8}), then the flags.
The run folder gets config.json, TensorBoard logs, checkpoints, policy.pt (+ vecnormalize.npz) as data for
evaluate/inspect/robustness, SB3's model.zip (+ vecnormalize.pkl) and evaluation.json. --resume continues a run from its last checkpoint up to --timesteps (or the run's own total).

Example:
    ncp-control train-ppo --env PendulumNoVel-v1 --policy cfc --timesteps 100000 --seed 0 --out runs/pnv_cfc_s0
"""

from __future__ import annotations

import argparse
import time

from agents.errors import UsageError

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
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint (reads SB3's pickled zip and "
                             "VecNormalize files: resume only runs you trust)")
    parser.add_argument("--no-progress", action="store_true", help="turn the progress bar off")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")


def run(args: argparse.Namespace) -> int:
    import torch

    from agents.ppo import resolve_config, train
    from agents.runs import read_config

    torch.set_num_threads(args.threads)
    overrides = {}
    if args.n_envs is not None:
        overrides["n_envs"] = args.n_envs
    if args.vec_env is not None:
        overrides["vec_env"] = args.vec_env
    if args.no_progress:
        overrides["progress_bar"] = False
    if args.resume:
        if not args.out:
            raise UsageError("--resume needs --out RUN_DIR (the run to continue)")
        config = read_config(args.out)
        if args.timesteps is not None:
            config["timesteps"] = args.timesteps
        config.update(overrides)
        train(config, args.out, resume=True)
        print(f"resumed run in {args.out}")
        return 0
    if not (args.env and args.policy and args.timesteps):
        raise UsageError("--env, --policy and --timesteps are required (or --resume --out RUN_DIR)")
    config = resolve_config(args.env, args.policy, timesteps=args.timesteps, seed=args.seed,
                            config_file=args.config, overrides=overrides)
    out = args.out or f"runs/{args.env}_{args.policy}_s{args.seed}_{time.strftime('%Y%m%d-%H%M%S')}"
    train(config, out)
    print(f"run folder: {out}")
    return 0
