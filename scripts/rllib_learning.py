"""Issue 26, item 4: does PPO through RLlib (``ncp-control train-rllib``) reach the SB3 path's results on
PendulumNoVel-v1? Trains NCP-CfC and NCP-LTC for ``--timesteps`` steps per seed with the command itself (one env
runner, a local Ray), resuming unfinished runs, evaluates every run as the PendulumNoVel study evaluated its SB3
runs (20 episodes from seed 1000) and compares them with that study's per-seed scores (``--sb3``, the study's
``summary.csv``) with rliable (IQM, bootstrap intervals, probability of improvement).

    python scripts/rllib_learning.py --runs /work/rllib-pendulum --seeds 0 1 2 3 4 \\
        --out docs/data/rllib/learning.json

Runs that are not finished are left out of the summary (and named); rerun the same command to continue them.

``--ablation-seeds``: also train ``train-ppo`` runs (SB3) of the same policies and budget *without* what RLlib's PPO
lacks (gSDE, observation and reward normalisation: :data:`ABLATION`), scored the same way, to tell RLlib apart from
those settings.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
ROOT = Path(__file__).resolve().parents[1]
ENV = "PendulumNoVel-v1"
SB3_SUMMARY = ROOT / "docs" / "data" / "study_pendulum_novel_10" / "summary.csv"
EPISODES, EVAL_SEED = 20, 1000
#: train-ppo settings that remove what RLlib's PPO does not have
ABLATION = {"algo": {"use_sde": False}, "normalize_obs": False, "normalize_reward": False}


def train_run(run: Path, policy: str, seed: int, timesteps: int, num_cpus: int, config: str | None) -> None:
    """One ``train-rllib`` run (continued with ``--resume`` where it has progress; skipped once evaluated)."""
    from ncp_control.agents.rllib.train import has_progress

    _train_command("train-rllib", has_progress, run, policy, seed, timesteps, config, ["--num-cpus", str(num_cpus)])


def train_ppo_run(run: Path, policy: str, seed: int, timesteps: int, config: Path) -> None:
    """One ``train-ppo`` run of the ablation (continued or skipped as :func:`train_run`)."""
    from ncp_control.agents.ppo import has_progress

    _train_command("train-ppo", has_progress, run, policy, seed, timesteps, str(config), ["--no-progress"])


def _train_command(command, has_progress, run: Path, policy, seed, timesteps, config, extra: list[str]) -> None:
    """Run ``ncp-control COMMAND`` for ``run`` in a subprocess and print its summary line."""
    if (run / "evaluation.json").is_file():
        return
    cmd = [sys.executable, "-m", "ncp_control.agents.cli", command, "--out", str(run), *extra]
    if has_progress(run):
        cmd += ["--resume"]
    else:
        cmd += ["--env", ENV, "--policy", policy, "--timesteps", str(timesteps), "--seed", str(seed)]
        if config:
            cmd += ["--config", config]
    print(" ".join(cmd[2:]), flush=True)
    t0 = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{run}: {command} failed:\n{done.stderr[-3000:]}")
    print(f"  {done.stdout.strip().splitlines()[-1]} ({time.monotonic() - t0:.0f} s)", flush=True)


def score(run: Path) -> float:
    """Mean return over the study's held-out episodes (20 from seed 1000), as the study scored its SB3 runs."""
    from ncp_control.agents.evaluation.episodes import evaluate
    from ncp_control.agents.runs.load import load_run

    loaded = load_run(run)
    result = evaluate(loaded.predictor, ENV, EPISODES, EVAL_SEED, env_kwargs=loaded.env_kwargs)
    return float(np.mean(result["returns"]))


def sb3_scores(path: Path) -> dict[str, list[float]]:
    """Per-seed mean returns of the study's PPO (SB3) runs at its first evaluation (no perturbation)."""
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["env"] == ENV and row["perturbation"] == "none":
                out[f"sb3-{row['model']}"] = [float(v) for v in row["mean_return_per_seed"].split(";")]
    return out


def train_all(args: argparse.Namespace, runs: Path) -> None:
    """The RLlib runs one after another (each uses the local Ray's CPUs), then the ablation runs in parallel."""
    for seed in args.seeds:  # seed-major: a partial result covers every policy
        for policy in args.policies:
            train_run(runs / f"{policy}-s{seed}", policy, seed, args.timesteps, args.num_cpus, args.config)
    ablation = runs / "sb3-ablation.json"
    ablation.parent.mkdir(parents=True, exist_ok=True)
    ablation.write_text(json.dumps(ABLATION))
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=args.num_cpus) as pool:  # one core per train-ppo run
        jobs = [
            pool.submit(train_ppo_run, runs / f"sb3-ablation-{p}-s{seed}", p, seed, args.timesteps, ablation)
            for seed in args.ablation_seeds
            for p in args.policies
        ]
        for job in jobs:
            job.result()


def collect_scores(args: argparse.Namespace, runs: Path) -> tuple[dict[str, list[float]], list[str]]:
    """Held-out scores of the finished runs by group (``rllib-<policy>``, ``sb3-ablation-<policy>``) and the
    names of the unfinished runs."""
    scores: dict[str, list[float]] = {}
    unfinished = []
    for policy in args.policies:
        for prefix, seeds in (("", args.seeds), ("sb3-ablation-", args.ablation_seeds)):
            for seed in seeds:
                run = runs / f"{prefix}{policy}-s{seed}"
                if (run / "evaluation.json").is_file():
                    scores.setdefault(f"{prefix or 'rllib-'}{policy}", []).append(score(run))
                else:
                    unfinished.append(run.name)
    return scores, unfinished


def summarise(args: argparse.Namespace, scores: dict[str, list[float]], unfinished: list[str]) -> dict:
    """rliable's IQM and mean per group (the SB3 study's too) and P(a better than b) for the pairs that matter."""
    from ncp_control.agents.evaluation import statistics

    reference = sb3_scores(Path(args.sb3))
    every = {**scores, **{k: v for k, v in reference.items() if k.removeprefix("sb3-") in args.policies}}
    pairs = [(f"rllib-{p}", f"sb3-{p}") for p in args.policies]
    pairs += [(f"rllib-{p}", f"sb3-ablation-{p}") for p in args.policies]
    pairs += [(f"rllib-{a}", f"rllib-{b}") for a in args.policies for b in args.policies if a < b]
    improvement = statistics.pairwise_improvement(every, [(a, b) for a, b in pairs if a in every and b in every])
    return {
        "env": ENV,
        "timesteps_rllib": args.timesteps,
        "timesteps_sb3": 100_000,
        "evaluation": f"{EPISODES} episodes from seed {EVAL_SEED}, deterministic actions",
        "method": statistics.METHOD,
        "goal": "mean return >= -250 within 200k steps, across 5 seeds",
        "ablation": {"seeds": args.ablation_seeds, "train_ppo_config": ABLATION},
        "per_seed": scores,
        "seeds": args.seeds,
        "unfinished": unfinished,
        "aggregate": statistics.aggregate_intervals(every),
        "improvement": [
            {"a": a, "b": b, **v, "verdict": statistics.separated(a, b, v["prob_improvement_ci"]) or "not separated"}
            for (a, b), v in improvement.items()
        ],
    }


def print_result(result: dict) -> None:
    print("| runs | n | IQM [95% CI] | mean [95% CI] |\n|---|---|---|---|")
    for name, agg in result["aggregate"].items():
        iqm_ci = agg["iqm_ci"] or [float("nan")] * 2
        mean_ci = agg["mean_ci"] or [float("nan")] * 2
        print(
            f"| {name} | {agg['n_runs']} | {agg['iqm']:.0f} [{iqm_ci[0]:.0f}, {iqm_ci[1]:.0f}] | "
            f"{agg['mean']:.0f} [{mean_ci[0]:.0f}, {mean_ci[1]:.0f}] |"
        )
    for row in result["improvement"]:
        ci = row["prob_improvement_ci"]
        print(
            f"P({row['a']} > {row['b']}) = {row['prob_improvement']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]: {row['verdict']}"
        )
    if result["unfinished"]:
        print(f"unfinished: {', '.join(result['unfinished'])} (rerun to continue)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="folder of the RLlib run folders (<policy>-s<seed>)")
    parser.add_argument("--policies", nargs="+", default=["cfc", "ltc"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--timesteps", type=int, default=200_000)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--config", help="train-rllib --config file for new runs")
    parser.add_argument("--sb3", default=str(SB3_SUMMARY), help="the PendulumNoVel study's summary.csv")
    parser.add_argument("--ablation-seeds", type=int, nargs="*", default=[], help="seeds of the SB3 ablation runs")
    parser.add_argument("--summary-only", action="store_true", help="train nothing; summarise the finished runs")
    parser.add_argument("--out", help="JSON file for the results")
    args = parser.parse_args()
    runs = Path(args.runs)
    if not args.summary_only:
        train_all(args, runs)
    result = summarise(args, *collect_scores(args, runs))
    print_result(result)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
