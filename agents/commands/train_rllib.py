"""Train an NCP actor (LTC or CfC) with RLlib's PPO: one run, its rollouts on env runners across a Ray cluster.

Settings: train-ppo's presets for the env and policy (wiring, cell, critic, PPO hyperparameters in RLlib's
names), then agents/configs/rllib.json, then --config FILE (JSON with the keys of the run's config.json, e.g.
{"algo": {"lr": 0.0005}, "max_seq_len": 64}), then the flags. Without --address (or RAY_ADDRESS) it starts a local
Ray with --num-cpus; with it, it joins that cluster (ray start --head on one machine, ray start --address on the
others).
Env runners that die are restarted (RLlib's fault tolerance); --resume continues a killed run from its last
checkpoint. The run folder holds policy.pt as data, so evaluate, inspect, robustness and export work on it as on
a train-ppo run. Needs the [rllib] extra.

Examples:
    ncp-control train-rllib --env PendulumNoVel-v1 --policy cfc --timesteps 200000 --env-runners 2 --out runs/r
    ncp-control train-rllib --env LaneKeeping-v0 --policy ltc --timesteps 50000 --env-runners 8 --address auto --out runs/lk
    ncp-control train-rllib --resume --out runs/r
"""

from __future__ import annotations

import argparse

from ncp_control.agents.commands import checks
from ncp_control.agents.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", help="Gymnasium id, e.g. PendulumNoVel-v1, LaneKeeping-v0 (required unless --resume)")
    parser.add_argument("--policy", choices=("ltc", "cfc"), help="the NCP actor's cell")
    parser.add_argument("--timesteps", type=int, help="total environment steps (on --resume: the new total)")
    parser.add_argument("--env-runners", type=int, help="RLlib env runners, one CPU each (default 1)")
    parser.add_argument("--envs-per-runner", type=int, help="environments per env runner (default: train-ppo's n_envs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model and the envs (default 0)")
    parser.add_argument("--out", help="run folder (required)")
    parser.add_argument("--config", help="JSON file overriding the presets")
    parser.add_argument(
        "--address", help="join this Ray cluster (e.g. auto, or HEAD_IP:6379; default: RAY_ADDRESS, else a local Ray)"
    )
    parser.add_argument(
        "--num-cpus", type=int, help="CPUs of the local Ray (default: all); not with --address or RAY_ADDRESS"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last RLlib checkpoint (pickles: resume only runs you trust)",
    )
    parser.add_argument(
        "--checkpoint-seconds",
        type=float,
        default=None,
        help="also checkpoint every this many seconds of wall time (default 60; 0: off)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of the learner (default 1)")


def check_args(args: argparse.Namespace) -> None:
    """Everything about the command line that can be checked before any work."""
    checks.positive("--timesteps", args.timesteps)
    checks.positive("--env-runners", args.env_runners)
    checks.positive("--envs-per-runner", args.envs_per_runner)
    checks.positive("--num-cpus", args.num_cpus)
    checks.positive("--threads", args.threads)
    checks.non_negative("--seed", args.seed)
    checks.non_negative("--checkpoint-seconds", args.checkpoint_seconds)
    from ncp_control.agents.study.cluster import cluster_address

    args.address = cluster_address(args.address)
    if args.address and args.num_cpus:
        raise UsageError(
            "--num-cpus sizes a local Ray; a cluster joined with --address (or RAY_ADDRESS) has its own CPUs"
        )
    if args.num_cpus is not None and args.env_runners is not None and args.num_cpus < args.env_runners:
        raise UsageError(f"--env-runners {args.env_runners} need one CPU each; --num-cpus is {args.num_cpus}")
    if not args.out:
        raise UsageError("--out RUN_DIR is required (the run folder)")
    if args.resume:
        given = [
            flag
            for flag, value in (("--env", args.env), ("--policy", args.policy), ("--config", args.config))
            if value is not None
        ]
        if given:
            raise UsageError(f"{', '.join(given)}: a resumed run keeps its own (config.json)")
        checks.run_folder(args.out, "--out")
        return
    checks.new_run_flags(("--env", args.env), ("--policy", args.policy), ("--timesteps", args.timesteps))
    checks.env_id(args.env)
    checks.new_run_folder(args.out)


def _overrides(args: argparse.Namespace) -> dict:
    overrides: dict = {}
    if args.env_runners is not None:
        overrides["env_runners"] = args.env_runners
    if args.envs_per_runner is not None:
        overrides["envs_per_runner"] = args.envs_per_runner
    if args.checkpoint_seconds is not None:
        overrides["checkpoint_seconds"] = args.checkpoint_seconds
    return overrides


def run(args: argparse.Namespace) -> int:
    check_args(args)
    from ncp_control.agents import rllib
    from ncp_control.agents.runs.load import read_config

    overrides = _overrides(args)
    if args.resume:
        config = read_config(args.out)
        if config.get("kind") != "rllib":
            raise UsageError(f"--out {args.out} holds a {config.get('kind')!r} run; train-rllib resumes RLlib runs")
        if args.timesteps is not None:
            config["timesteps"] = args.timesteps
        config.update(overrides)
        rllib.validate_config(config)
    else:
        try:
            config = rllib.resolve_config(
                args.env,
                args.policy,
                timesteps=args.timesteps,
                seed=args.seed,
                config_file=args.config,
                overrides=overrides,
            )
        except ValueError as error:
            if args.config and not str(error).startswith("config file"):
                raise ValueError(f"--config {args.config} (merged over the presets): {error}") from None
            raise
        from ncp_control.agents.ppo import finalize_config

        config["policy_kwargs"] = finalize_config(rllib.ppo_view(config))["policy_kwargs"]  # the env's dt
    try:
        import ray.rllib  # noqa: F401
    except ImportError:
        raise ValueError(rllib.RLLIB_EXTRA_HINT) from None
    import torch

    from ncp_control.agents.evaluation.episodes import summary_line
    from ncp_control.agents.rllib.train import has_progress, train

    torch.set_num_threads(args.threads)
    where = f"Ray cluster {args.address}" if args.address else "a local Ray"
    print(
        f"{'resuming' if args.resume else 'training'} {config['policy']} on {config['env_id']} with RLlib for "
        f"{config['timesteps']} steps, {config['env_runners']} env runner(s) on {where}; run folder {args.out}",
        flush=True,
    )
    with checks.removed_on_failure(args.out, keep=has_progress):
        result = train(config, args.out, resume=args.resume, address=args.address, num_cpus=args.num_cpus)
    print(
        f"{config['policy']} on {config['env_id']} (RLlib), {result['timesteps']} steps: {summary_line(result)}; "
        f"run folder {args.out}"
    )
    return 0
