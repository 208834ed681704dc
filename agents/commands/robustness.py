"""Compare trained runs under perturbation sweeps (same episodes, same noise draws); write table, CSV, JSON, plot.

Every model sees the same episodes (episode i is reset with seed S + i: the same road in lane keeping) and, at every
level, the same perturbation draws (common random numbers, docs/perturbations.md). Levels are the wrappers'
parameters: pixel_noise is the standard deviation on images in [0, 1] (the NCP paper's variances 0.1, 0.2, 0.3 are
0.316, 0.447, 0.548). Writes OUT/robustness.{md,csv,json,png} and prints the table. The intervals are 95%
Student-t intervals on the mean return and Wilson intervals on the crash rate. See docs/robustness.md.

Example:
    ncp-control robustness runs/ncp-ltc runs/lstm --env LaneKeeping-v0 \\
        --perturb pixel_noise:0,0.316,0.447,0.548 --perturb action_delay:0,2,4 \\
        --episodes 50 --seed 1000000 --out results/robust --processes 2
    ncp-control robustness runs/ncp-ltc runs/lstm --perturb steering_gain:0.5,1,1.5 \
        --perturb crosswind:0,0.5,1 --out results/mismatch     # the world differs, not the sensors
"""

from __future__ import annotations

import argparse

from ncp_control.agents.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders written by train-bc or train-ppo")
    parser.add_argument("--env", help="Gymnasium id (default: each run's own env, with its training env_kwargs)")
    parser.add_argument(
        "--perturb",
        action="append",
        required=True,
        metavar="NAME:LEVELS",
        help="a sweep, e.g. pixel_noise:0,0.316,0.447,0.548 (repeatable). Sensors and actions: obs_noise, "
        "pixel_noise, dropout, frozen, occlusion, brightness, blur, action_noise, action_delay, "
        "irregular_time; dynamics (model mismatch), lane keeping: steering_gain, steering_bias, steering_lag, "
        "speed, crosswind, crosswind_gusts; MuJoCo envs: mass, friction, actuator_gain (docs/perturbations.md)",
    )
    parser.add_argument("--episodes", type=int, default=20, help="episodes per model and level (default 20)")
    parser.add_argument(
        "--seed",
        type=int,
        default=1_000_000,
        help="seed of the first episode (default 1000000, the first held-out lane-keeping road)",
    )
    parser.add_argument(
        "--perturbation-seed", type=int, default=None, help="seed of the perturbation wrappers (default: --seed)"
    )
    parser.add_argument("--out", required=True, help="folder for robustness.{md,csv,json,png}")
    parser.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--n-envs", type=int, default=1, help="environment copies batched per task (default 1)")
    parser.add_argument(
        "--block-episodes",
        type=int,
        default=10,
        help="episodes per parallel task (default 10; results do not depend on --processes)",
    )
    parser.add_argument(
        "--no-share-neutral",
        action="store_true",
        help="evaluate each sweep's neutral level with its (identity) wrapper instead of once",
    )
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic ones")
    parser.add_argument("--no-plot", action="store_true", help="skip robustness.png")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def check_args(args: argparse.Namespace) -> None:
    """Everything about the command line that can be checked before any work."""
    from ncp_control.agents.commands import checks
    from ncp_control.agents.evaluation.robustness import parse_sweeps

    for run_dir in args.run_dirs:
        checks.loadable_run(run_dir)
    for flag, value in (
        ("--episodes", args.episodes),
        ("--processes", args.processes),
        ("--n-envs", args.n_envs),
        ("--block-episodes", args.block_episodes),
    ):
        checks.positive(flag, value)
    checks.non_negative("--seed", args.seed)
    checks.non_negative("--perturbation-seed", args.perturbation_seed)
    checks.env_id(args.env)
    try:
        parse_sweeps(args.perturb)
    except ValueError as error:
        raise UsageError(f"--perturb: {error}") from None


def run(args: argparse.Namespace) -> int:
    import sys

    from ncp_control.agents.commands import checks
    from ncp_control.agents.evaluation.robustness import robustness_sweep

    check_args(args)
    results = robustness_sweep(
        args.run_dirs,
        args.env,
        args.perturb,
        args.episodes,
        args.seed,
        perturbation_seed=args.perturbation_seed,
        n_envs=args.n_envs,
        processes=args.processes,
        block_episodes=args.block_episodes,
        share_neutral=not args.no_share_neutral,
        deterministic=not args.stochastic,
        progress=None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True)),
    )
    if not results.labels:  # nothing to tabulate: say why, write nothing
        reasons = "; ".join(f"{label}: {why}" for label, why in results.failures.items())
        raise ValueError(f"no model could be evaluated ({reasons})")
    with checks.removed_on_failure(args.out):
        paths = results.write(args.out, plot=not args.no_plot)
    print(results.table())
    print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    return 0
