"""Two measurements behind the LTC ablation's evening rows (docs/ppo.md), on PendulumNoVel-v1's presets:

1. exploration against signal at initialisation: over a 200-step rollout of the untrained ltc and cfc presets
   (4 envs, seed 0), the norm of the actor's whole state (gSDE's exploration features: the noise's std scales
   with it) and the spread of the motor output across envs (how much the action mean moves with the input);
2. Adam's step on the LTC cell's parameters: after 8,192 training steps of the ltc preset, each parameter's
   gradient RMS (Adam's sqrt(v), bias-corrected) over its wired entries and the step it gets as a fraction of
   the rate, ``rms / (rms + eps)``.

Usage::

    python scripts/ltc_optimiser_diagnosis.py

It prints two tables; the run of 2026-11-28 is kept as docs/data/ppo/ltc_optimiser_diagnosis_2026-11-28.json.
"""

from __future__ import annotations

import datetime
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch as th  # noqa: E402

from ncp_control.agents.ppo import build_algorithm, make_training_env, normalize_env, resolve_config  # noqa: E402

ENV = "PendulumNoVel-v1"


def model(policy: str, seed: int = 0):
    config = resolve_config(ENV, policy, timesteps=8192, seed=seed)
    venv = normalize_env(make_training_env(config), config)
    return build_algorithm(config, venv), venv


def exploration_against_signal(policy: str, steps: int = 200) -> tuple[float, float]:
    m, venv = model(policy)
    p = m.policy
    obs, n = venv.reset(), venv.num_envs
    h = th.zeros(1, n, p.state_size)
    states, starts = (h, h.clone()), th.ones(n)
    norms, spread = [], []
    with th.no_grad():
        for t in range(steps):
            features, dt = p.features_and_dt(th.as_tensor(obs).float())
            motor, states, every = p.run_core(p.actor_core, p.actor_mlp(features), dt, states, starts, True)
            starts = th.zeros(n)
            if t >= 50:  # after the start-up transient
                norms.append(every.norm(dim=-1).mean().item())
                spread.append(motor.std(dim=0).mean().item())
            obs, *_ = venv.step(p.action_net(motor).numpy().clip(-2, 2))
    return float(np.mean(norms)), float(np.mean(spread))


def adam_steps() -> list[tuple[str, int, float, float, float, float]]:
    m, _ = model("ltc")
    m.learn(8192)
    opt, names = m.policy.optimizer, {id(p): n for n, p in m.policy.named_parameters()}
    eps = opt.defaults["eps"]
    rows = []
    for group in opt.param_groups:
        for p in group["params"]:
            name = names[id(p)]
            if not name.startswith("actor_core.cell."):
                continue
            state = opt.state[p]
            rms = (state["exp_avg_sq"] / (1 - 0.999 ** state["step"].item())).sqrt().flatten()
            wired = rms[rms > 0]  # masked synapses of the sparse wiring never get a gradient
            q10, q50, q90 = np.quantile(wired.numpy(), [0.1, 0.5, 0.9])
            rows.append(
                (
                    name.removeprefix("actor_core.cell."),
                    wired.numel(),
                    q10,
                    q50,
                    q90,
                    (wired / (wired + eps)).median().item(),
                )
            )
    return rows


def main() -> None:
    th.set_num_threads(1)
    print(f"# {ENV}, {datetime.date.today()}, {platform.machine()}, torch {th.__version__}")
    print("\n## 1. untrained presets, 200-step rollout (steps 50-199), seed 0")
    print("policy  mean |actor state| (gSDE features)  motor std across envs")
    for policy in ("ltc", "cfc"):
        norm, spread = exploration_against_signal(policy)
        print(f"{policy:6s}  {norm:.3f}                            {spread:.3f}")
    print("\n## 2. ltc preset after 8,192 steps: Adam's gradient RMS over each parameter's wired entries")
    print("parameter        n  rms q10   rms q50   rms q90   median step / (rate x scale)")
    for name, n, q10, q50, q90, step in adam_steps():
        print(f"{name:14s} {n:4d}  {q10:.1e}   {q50:.1e}   {q90:.1e}   {step:.2f}")


if __name__ == "__main__":
    main()
