"""Diagnose the untrained LTC actor: how much its action moves with its input, its time constants, per layer.

For each construction (the CfC actor as the reference, the LTC actor with ncps's initialisation, each change of
``LTCActorInit`` alone and the package default) and each model seed, this builds the policy exactly as
``ncp-control train-ppo`` does for ``--env`` (presets of ``agents/configs/ppo.json``), drives the actor with
``--steps`` N(0, 1) observations (what ``VecNormalize`` hands it) and prints the spread and mean of the
deterministic action, its gain (mean |d action / d observation|), each layer's potential spread and, for the LTC,
the median time constant per layer in environment steps. ``--json`` writes every number.

    python scripts/diagnose_ltc_init.py --env PendulumNoVel-v1 --seeds 0 1 2 3 4 --json docs/data/ppo/ltc_init_diagnosis.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

#: name -> (policy, policy_kwargs overrides); the LTC rows differ from the preset only in ``ltc_init``.
CONSTRUCTIONS = {
    "cfc (reference)": ("cfc", {}),
    "ltc, ncps init": ("ltc", {"ltc_init": "ncps"}),
    "ltc, output_gain 4": ("ltc", {"ltc_init": {"output_gain": 4.0}}),
    "ltc, centre_output": ("ltc", {"ltc_init": {"centre_output": True}}),
    "ltc, gain 4 + centre": ("ltc", {"ltc_init": {"output_gain": 4.0, "centre_output": True}}),
    "ltc, gleak 0.05-0.5": ("ltc", {"ltc_init": {"gleak": [0.05, 0.5]}}),
    "ltc, cm 1-8": ("ltc", {"ltc_init": {"cm": [1.0, 8.0]}}),
    "ltc, no input layer": ("ltc", {"ltc_init": "ncps", "net_arch": {"pi": [], "vf": [64, 64]}}),
    "ltc, cm 0.3-0.5": ("ltc", {"ltc_init": {"cm": [0.3, 0.5]}}),
    "ltc, package default": ("ltc", {}),
}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="PendulumNoVel-v1", help="env id whose presets build the policy")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4], help="model (initialisation) seeds")
    p.add_argument("--steps", type=int, default=200, help="N(0, 1) observations per seed")
    p.add_argument("--json", default=None, help="write every number here")
    return p.parse_args()


def build_policy(env_id: str, policy: str, overrides: dict, seed: int):
    """The untrained policy ``train-ppo`` would build for ``env_id``/``policy``/``seed`` with these overrides."""
    from ncp_control.agents.ppo import build_algorithm, finalize_config, make_training_env, resolve_config

    config = finalize_config(
        resolve_config(env_id, policy, timesteps=1, seed=seed, overrides={"policy_kwargs": overrides})
    )
    return build_algorithm(config, make_training_env(config, seed=seed, n_envs=1)).policy


def main() -> None:
    import torch

    import ncp_control.envs  # noqa: F401  (registers the env ids)
    from ncp_control.inspect.actor_response import actor_response, lag_gains

    args = parse()
    torch.set_num_threads(1)
    rows = []
    print(f"{args.env}: deterministic action over {args.steps} N(0,1) observations, from a zero state")
    print(
        f"{'construction':24s} {'action std':>18s} {'|mean|':>6s} {'gain':>6s}  layer std (motor/command/inter)"
        f"   tau in steps (m/c/i)   gain by lag 0/1/2/4 steps"
    )
    for name, (policy, overrides) in CONSTRUCTIONS.items():
        policies = [build_policy(args.env, policy, overrides, s) for s in args.seeds]
        results = [actor_response(p, args.steps, seed=s) for p, s in zip(policies, args.seeds)]
        lags = [lag_gains(p, seed=s) for p, s in zip(policies, args.seeds)]
        stds = [r.action_std for r in results]
        row = {
            "construction": name,
            "policy": policy,
            "policy_kwargs": overrides,
            "seeds": args.seeds,
            "action_std": stds,
            "action_mean": [r.action_mean for r in results],
            "gain": [r.gain for r in results],
            "layer_std": [r.layer_std for r in results],
            "tau_steps": [r.tau_steps for r in results],
            "gain_by_lag": lags,
        }
        rows.append(row)
        layers = "/".join(f"{np.mean([r.layer_std[k] for r in results]):.3f}" for k in results[0].layer_std)
        taus = "/".join(f"{np.mean([r.tau_steps[k] for r in results]):.2f}" for k in results[0].tau_steps) or "-"
        by_lag = "/".join(f"{np.mean([g[lag] for g in lags]):.3f}" for lag in lags[0])
        print(
            f"{name:24s} {np.mean(stds):.3f} ({min(stds):.3f}-{max(stds):.3f}) "
            f"{np.mean(np.abs(row['action_mean'])):6.3f} {np.mean(row['gain']):6.3f}  {layers:32s} {taus:22s} {by_lag}"
        )
    if args.json:
        meta = {
            "command": "python scripts/diagnose_ltc_init.py "
            + " ".join(
                f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in vars(args).items()
                if v is not None
            ),
            "machine": f"{platform.machine()} {platform.processor()} ({platform.node()})",
            "date": time.strftime("%Y-%m-%d"),
            "torch": torch.__version__,
        }
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
