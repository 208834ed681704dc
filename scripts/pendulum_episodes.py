"""Per-episode look at a trained PPO run on Pendulum-v1 / PendulumNoVel-v1: for each deterministic evaluation
episode (reset seeds ``--seed``, ``--seed`` + 1, ...), the starting angle and speed, the return, the steps spent
upright (cos(theta) > 0.95), the first upright step and the longest upright stretch. It tells apart a policy that
cannot swing up (never upright) from one that swings up but cannot hold the pendulum (upright, then lost).

Usage::

    python scripts/pendulum_episodes.py RUN_DIR [--episodes 20] [--seed 1000]

RUN_DIR is a run folder of ``ncp-control train-ppo`` or ``scripts/bench_ppo.py --runs``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import ncp_control.envs  # noqa: E402,F401  (registers PendulumNoVel-v1)
from ncp_control.agents import ppo  # noqa: E402

UPRIGHT_COS = 0.95


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None, help="first reset seed (default: the run's eval_seed)")
    args = parser.parse_args(argv)
    config_path = args.run_dir / "config.json"
    if not config_path.is_file():
        parser.error(f"{args.run_dir} has no config.json; pass a PPO run folder")
    config = ppo.finalize_config(json.loads(config_path.read_text()))
    if config["env_id"] not in ("Pendulum-v1", "PendulumNoVel-v1"):
        parser.error(f"the run trained on {config['env_id']}; this looks at Pendulum-v1 / PendulumNoVel-v1 runs")
    policy = ppo.load_predictor(args.run_dir, config)
    env = gym.make(config["env_id"], **config["env_kwargs"])
    first_seed = config["eval_seed"] if args.seed is None else args.seed
    print(
        f"# {args.run_dir} ({config['policy']}, seed {config['seed']}), {args.episodes} deterministic episodes "
        f"from reset seed {first_seed}; upright = cos(theta) > {UPRIGHT_COS}"
    )
    print("episode  theta0 (deg)  omega0  return   upright steps  first upright  longest upright stretch")
    returns = []
    for i in range(args.episodes):
        obs, _ = env.reset(seed=first_seed + i)
        theta0, omega0 = env.unwrapped.state
        state, start, total, upright, first, run, longest = None, True, 0.0, 0, None, 0, 0
        for t in range(10_000):
            action, state = policy.predict(obs, state=state, episode_start=np.array([start]), deterministic=True)
            start = False
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            up = np.cos(env.unwrapped.state[0]) > UPRIGHT_COS
            upright += int(up)
            first = t if up and first is None else first
            run = run + 1 if up else 0
            longest = max(longest, run)
            if terminated or truncated:
                break
        returns.append(total)
        angle = np.degrees(np.arctan2(np.sin(theta0), np.cos(theta0)))
        print(
            f"{i:7d}  {angle:12.1f}  {omega0:6.2f}  {total:7.1f}  {upright:13d}  "
            f"{'-' if first is None else first:>13}  {longest:23d}"
        )
    print(f"mean return {np.mean(returns):.1f} ± {np.std(returns):.1f} (sd over episodes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
