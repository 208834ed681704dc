"""Why some LTC seeds fail on PendulumNoVel-v1 (issue 25, item 3): per training seed, the held-out return, the
actor's LTC time constants and the actor's output range, side by side.

For every PPO run of ``--model`` in a study folder (default: the LTC runs of pendulum-novel-10):

- ``heldout_return``: the study's own held-out evaluation of the final policy (``summary.json``'s per-seed value);
- time constants of the actor's LTC neurons, ``tau = softplus(cm) / softplus(gleak)`` in seconds (the leak-only
  time constant; synaptic conductances only shorten it), as median, min and max, and the share of neurons slower
  than one 200-step episode (10 s: they barely move within an episode);
- the actor's output on ``--episodes`` held-out episodes (seeds from 1000, deterministic): the share of steps at
  the torque limit (|a| >= 99% of 2 N m), the standard deviation of the torque, and the mean |torque|;
- the sensory and motor scales: ``input_w`` (median |.|) and ``output_w`` (the motor neuron's gain).

Writes JSON (``--out``) and prints one row per seed, failed seeds (held-out return below ``--threshold``) marked.
Needs the study folder with its run folders (not only docs/data). Example:

    python scripts/ltc_seed_diagnosis.py --study studies/pendulum-novel-10 \\
        --out docs/data/study_pendulum_novel_10/ltc_seed_diagnosis.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from ncp_control.agents.evaluation.episodes import evaluate
from ncp_control.agents.runs.load import load_run
from ncp_control.cells.ltc import LTCCell

EPISODE_SECONDS = 200 * 0.05  # PendulumNoVel-v1: 200 steps of 0.05 s
TORQUE_LIMIT = 2.0


class ActionRecorder(gym.ActionWrapper):
    """Keeps every action the env receives (the torque, after the policy's own scaling)."""

    actions: list[np.ndarray] = []

    def action(self, action):
        ActionRecorder.actions.append(np.asarray(action, dtype=np.float64).reshape(-1))
        return action


def _actor_ltc(policy: torch.nn.Module) -> LTCCell:
    cells = [(name, m) for name, m in policy.named_modules() if isinstance(m, LTCCell)]
    actor = [m for name, m in cells if "critic" not in name]
    if len(actor) != 1:
        raise SystemExit(f"expected one LTC cell in the actor, found {[name for name, _ in cells]}")
    return actor[0]


def _time_constants(cell: LTCCell) -> np.ndarray:
    with torch.no_grad():
        cm, gleak = cell._positive(cell.cm), cell._positive(cell.gleak)
        return (cm / gleak).double().numpy()


def _per_seed_returns(study: Path, model: str, tag: str | None) -> dict[int, float]:
    summary = json.loads((study / "summary.json").read_text())
    for group in summary["groups"]:
        if group["model"] == model and group["perturbation"] == "none" and group.get("train_tag") in (tag, None):
            return dict(zip(group["seeds"], group["metrics"]["mean_return"]["per_seed"]))
    raise SystemExit(f"{study}/summary.json has no unperturbed group of model {model!r}")


def diagnose(run_dir: Path, episodes: int) -> dict:
    loaded = load_run(run_dir)
    policy = loaded.predictor.policy
    cell = _actor_ltc(policy)
    tau = _time_constants(cell)
    ActionRecorder.actions = []
    result = evaluate(loaded.predictor, loaded.env_id, episodes, 1000, wrappers=(ActionRecorder,))
    torque = np.concatenate(ActionRecorder.actions)
    with torch.no_grad():
        input_w = cell.input_w.abs().double().numpy() if hasattr(cell, "input_w") else np.ones(1)
        output_w = cell.output_w.double().numpy() if hasattr(cell, "output_w") else np.ones(1)
    return {
        "run": run_dir.name,
        "seed": int(loaded.config["seed"]),
        "rerun_return": float(result["mean_return"]),
        "tau_median_s": float(np.median(tau)),
        "tau_min_s": float(tau.min()),
        "tau_max_s": float(tau.max()),
        "share_tau_above_episode": float(np.mean(tau > EPISODE_SECONDS)),
        "torque_at_limit": float(np.mean(np.abs(torque) >= 0.99 * TORQUE_LIMIT)),
        "torque_std": float(torque.std()),
        "torque_mean_abs": float(np.abs(torque).mean()),
        "input_w_median_abs": float(np.median(input_w)),
        "output_w": [float(x) for x in output_w],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ltc_seed_diagnosis", description=__doc__.splitlines()[0])
    parser.add_argument("--study", required=True, type=Path, help="study folder with runs/")
    parser.add_argument("--model", default="ltc", help="PPO policy name (default ltc)")
    parser.add_argument("--tag", default=None, help="training tag (default: untagged runs)")
    parser.add_argument("--episodes", type=int, default=5, help="held-out episodes for the output range")
    parser.add_argument("--threshold", type=float, default=-250.0, help="a seed below this return has failed")
    parser.add_argument("--out", type=Path, help="JSON file to write")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    returns = _per_seed_returns(args.study, args.model, args.tag)
    middle = f"-{args.tag}-" if args.tag else "-"
    runs = sorted(args.study.glob(f"runs/ppo-*{middle}{args.model}-s*"), key=lambda p: int(p.name.rsplit("-s", 1)[1]))
    if not runs:
        parser.error(f"no runs of {args.model!r} in {args.study}/runs")
    rows = []
    for run in runs:
        row = diagnose(run, args.episodes)
        row["heldout_return"] = returns[row["seed"]]
        row["failed"] = row["heldout_return"] < args.threshold
        rows.append(row)
        print(
            f"s{row['seed']} {'FAILED' if row['failed'] else 'ok    '} return {row['heldout_return']:8.1f}  "
            f"tau median {row['tau_median_s']:6.2f} s [{row['tau_min_s']:.2f}, {row['tau_max_s']:.1f}] "
            f">10 s {row['share_tau_above_episode']:.2f}  torque at limit {row['torque_at_limit']:.2f} "
            f"std {row['torque_std']:.2f}  |in_w| {row['input_w_median_abs']:.2f} out_w {row['output_w'][0]:.2f}",
            flush=True,
        )
    record = {
        "study": args.study.name,  # the folder name: no machine path in data files
        "model": args.model,
        "tag": args.tag,
        "episodes": args.episodes,
        "threshold": args.threshold,
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d"),
        "seeds": rows,
    }
    for key in ("tau_median_s", "share_tau_above_episode", "torque_at_limit", "torque_std", "input_w_median_abs"):
        failed = [r[key] for r in rows if r["failed"]]
        ok = [r[key] for r in rows if not r["failed"]]
        record.setdefault("groups", {})[key] = {
            "failed_median": float(np.median(failed)) if failed else None,
            "ok_median": float(np.median(ok)) if ok else None,
        }
        print(
            f"{key}: failed median {record['groups'][key]['failed_median']}, ok median {record['groups'][key]['ok_median']}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
