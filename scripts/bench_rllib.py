"""RLlib throughput (issue 26, item 4) on LaneKeeping-v0, where rendering dominates, measured in one run:

- ``sampling``: env steps/s of RLlib's env runners alone (``EnvRunner.sample`` on every runner at once, the NCP-LTC
  camera actor acting), with 1 and with 2 env runners (``--runners``), each with ``--envs-per-runner`` envs; the
  ratio 2 runners / 1 runner is what a second CPU buys (the goal on 2 cores: >= 1.7);
- ``training``: ``ncp-control train-rllib``'s own code (``ncp_control.agents.rllib.train``) and ``train-ppo``'s
  (``ncp_control.agents.ppo.train``) for the same ``--timesteps`` with the same actor and PPO settings
  (``--batch`` steps per update, ``--epochs`` epochs, minibatches of ``--minibatch``), steps/s over the whole run.

Writes JSON (``--out``) and prints a table.

    python scripts/bench_rllib.py --out docs/data/rllib/bench_rllib.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

ENV = "LaneKeeping-v0"


def rllib_config(timesteps: int, runners: int, envs: int, batch: int, epochs: int, minibatch: int) -> dict:
    from ncp_control.agents import rllib
    from ncp_control.agents.ppo import finalize_config

    config = rllib.resolve_config(
        ENV,
        "ltc",
        timesteps=timesteps,
        overrides={
            "env_runners": runners,
            "envs_per_runner": envs,
            "checkpoint_freq": 0,
            "checkpoint_seconds": 0,
            "eval_episodes": 1,
            "algo": {"train_batch_size": batch, "num_epochs": epochs, "minibatch_size": minibatch},
        },
    )
    config["policy_kwargs"] = finalize_config(rllib.ppo_view(config))["policy_kwargs"]
    return config


def sampling_rate(runners: int, envs: int, steps: int) -> float:
    """Env steps/s of ``runners`` env runners sampling ``steps`` steps each at once (after a warm-up)."""
    from ncp_control.agents.rllib.train import algorithm_config

    algo = algorithm_config(rllib_config(steps, runners, envs, 256, 1, 128)).build_algo()
    try:
        group = algo.env_runner_group
        group.foreach_env_runner(lambda r: len(r.sample(num_timesteps=64 * envs)), local_env_runner=False)
        t0 = time.perf_counter()
        counts = group.foreach_env_runner(
            lambda r: sum(len(e) for e in r.sample(num_timesteps=steps, force_reset=True)), local_env_runner=False
        )
        elapsed = time.perf_counter() - t0
    finally:
        algo.stop()
    return sum(counts) / elapsed


def rllib_training_rate(args, runners: int) -> float:
    from ncp_control.agents.rllib.train import train

    config = rllib_config(args.timesteps, runners, args.envs_per_runner, args.batch, args.epochs, args.minibatch)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = train(config, Path(tmp) / "run", write=lambda line: None)
        return result["timesteps"] / (time.perf_counter() - t0)


def ppo_training_rate(args) -> float:
    """train-ppo's steps/s for the same budget: n_envs envs in subprocesses, n_steps x n_envs = --batch."""
    import torch

    from ncp_control.agents import ppo

    torch.set_num_threads(1)
    n_envs = args.envs_per_runner
    overrides = {
        "n_envs": n_envs,
        "vec_env": "subproc",
        "progress_bar": False,
        "checkpoint_freq": 0,
        "checkpoint_seconds": 0,
        "eval_freq": 0,
        "eval_episodes": 1,
        "algo": {"n_steps": args.batch // n_envs, "batch_size": args.minibatch, "n_epochs": args.epochs},
    }
    config = ppo.finalize_config(ppo.resolve_config(ENV, "ltc", timesteps=args.timesteps, overrides=overrides))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ppo.train(config, Path(tmp) / "run")
        elapsed = time.perf_counter() - t0
    return args.timesteps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runners", type=int, nargs="+", default=[1, 2], help="env runner counts to time")
    parser.add_argument("--envs-per-runner", type=int, default=2)
    parser.add_argument("--sample-steps", type=int, default=1024, help="steps per runner in the sampling timing")
    parser.add_argument("--timesteps", type=int, default=2048, help="training budget of each training timing")
    parser.add_argument("--batch", type=int, default=1024, help="steps per PPO update")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--minibatch", type=int, default=512)
    parser.add_argument("--skip-training", action="store_true", help="time sampling only")
    parser.add_argument("--out", help="JSON file for the results")
    args = parser.parse_args()

    import ray
    import torch

    torch.set_num_threads(1)
    ray.init(num_cpus=max(args.runners) + 1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    results: dict = {
        "benchmark": "RLlib throughput (scripts/bench_rllib.py)",
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "torch": torch.__version__,
        "ray": ray.__version__,
        "env": ENV,
        "policy": "ltc (NCP, 64x128 camera, conv head)",
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "sampling_steps_per_s": {},
        "training_steps_per_s": {},
    }
    try:
        for runners in args.runners:
            rate = sampling_rate(runners, args.envs_per_runner, args.sample_steps)
            results["sampling_steps_per_s"][str(runners)] = rate
            print(f"sampling, {runners} env runner(s): {rate:.1f} steps/s", flush=True)
        if not args.skip_training:
            for runners in args.runners:
                rate = rllib_training_rate(args, runners)
                results["training_steps_per_s"][f"rllib_{runners}"] = rate
                print(f"train-rllib, {runners} env runner(s): {rate:.1f} steps/s", flush=True)
    finally:
        ray.shutdown()
    if not args.skip_training:
        rate = ppo_training_rate(args)
        results["training_steps_per_s"]["train_ppo"] = rate
        print(f"train-ppo ({args.envs_per_runner} subprocess envs): {rate:.1f} steps/s", flush=True)
    rates = results["sampling_steps_per_s"]
    if "1" in rates and "2" in rates:
        results["sampling_ratio_2_to_1"] = rates["2"] / rates["1"]
        print(f"sampling ratio, 2 runners / 1: {results['sampling_ratio_2_to_1']:.2f} (goal >= 1.7)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
