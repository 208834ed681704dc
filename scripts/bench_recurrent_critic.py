"""Steps/s of recurrent-critic PPO presets side by side with RecurrentPPO-LSTM, interleaved in one process.

Each configuration (a policy plus ``--set``-style overrides on the presets of ``agents/configs/ppo.json``) is built
once; then, round after round, each model trains one PPO iteration (``n_envs * n_steps`` steps: collection plus
update) in turn, so that every configuration sees the same machine load. Prints steps/s per configuration (over
all rounds but the first, which warms up) and the ratio to the LSTM's.

    python scripts/bench_recurrent_critic.py --env PendulumNoVel-v1 --rounds 3 --json docs/data/ppo/bench_recurrent_critic.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

#: name -> (policy, overrides of the preset)
CONFIGS = {
    "lstm (preset)": ("lstm", {}),
    "ltc, dense CfC critic": ("ltc", {"policy_kwargs": {"critic_wiring": "dense"}}),
    "ltc, fully_connected CfC critic": ("ltc", {"policy_kwargs": {"critic_wiring": "fully_connected"}}),
    "cfc, dense CfC critic": ("cfc", {"policy_kwargs": {"critic_wiring": "dense"}}),
    "cfc, fully_connected CfC critic": ("cfc", {"policy_kwargs": {"critic_wiring": "fully_connected"}}),
}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="PendulumNoVel-v1")
    p.add_argument("--rounds", type=int, default=3, help="PPO iterations per configuration (the first is warm-up)")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument(
        "--n-steps",
        type=int,
        default=None,
        help="steps per env per iteration for every configuration (default: the presets'; batch = all)",
    )
    p.add_argument("--json", default=None)
    return p.parse_args()


def build(env_id: str, policy: str, overrides: dict, n_steps: int | None):
    import copy

    from ncp_control.agents.ppo import build_algorithm, finalize_config, make_training_env, resolve_config

    overrides = copy.deepcopy(overrides)
    if n_steps is not None:
        n_envs = resolve_config(env_id, policy, timesteps=1)["n_envs"]
        overrides.setdefault("algo", {}).update(n_steps=n_steps, batch_size=n_steps * n_envs)
    config = finalize_config(resolve_config(env_id, policy, timesteps=1, seed=0, overrides=overrides))
    model = build_algorithm(config, make_training_env(config, seed=0))
    return model, config["n_envs"] * config["algo"]["n_steps"]


def main() -> None:
    import torch

    import ncp_control.envs  # noqa: F401  (registers the env ids)

    args = parse()
    torch.set_num_threads(1)
    models = {name: build(args.env, *CONFIGS[name], args.n_steps) for name in args.configs}
    seconds = {name: [] for name in models}
    for r in range(args.rounds):
        for name, (model, steps) in models.items():
            start = time.perf_counter()
            model.learn(steps, reset_num_timesteps=False)
            seconds[name].append(time.perf_counter() - start)
            print(f"round {r}: {name:34s} {steps / seconds[name][-1]:7.1f} steps/s", flush=True)
    rate = {name: models[name][1] * (args.rounds - 1) / sum(seconds[name][1:]) for name in models}
    reference = rate.get("lstm (preset)")
    print(f"\n{args.env}, {args.rounds - 1} timed rounds each, interleaved")
    for name, value in rate.items():
        ratio = f"{value / reference:5.2f}x" if reference else "n/a"
        print(f"{name:34s} {value:7.1f} steps/s  vs LSTM {ratio}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "command": "python scripts/bench_recurrent_critic.py "
                    + " ".join(
                        f"--{k.replace('_', '-')} {' '.join(map(repr, v)) if isinstance(v, list) else v}"
                        for k, v in vars(args).items()
                        if v
                    ),
                    "date": time.strftime("%Y-%m-%d %H:%M"),
                    "machine": platform.machine(),
                    "torch": torch.__version__,
                    "seconds_per_round": seconds,
                    "steps_per_round": {n: models[n][1] for n in models},
                    "steps_per_s": rate,
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
