"""Training throughput of the MuJoCo memory-task presets (issue 17 item 2), and the study budget it allows.

For each (env, policy) case this runs a short ``ncp-control train-ppo`` (the presets of ``agents/configs/ppo.json``,
seed 0, 1 torch thread; one run at a time, each in its own process) and records

- ``steps_per_s``: training steps per second of wall time, collection and every update included: ``timesteps``
  over the time from the run's ``config.json`` (written when training starts) to its ``model.zip`` (written when
  it ends). The progress line's own rate is kept as ``progress_steps_per_s``; it is taken at the end of a rollout,
  before that rollout's update, so it leaves one update out.
- ``eval_s_per_step``: the final evaluation's seconds (``model.zip`` to ``evaluation.json``) over its steps.
- ``cpu_share``: the run process's CPU time (user + system) over its wall time. On a shared machine a run gets
  less than a core; ``steps_per_cpu_s = steps_per_s / cpu_share`` (and ``eval_cpu_s_per_step``) are the rates on
  a core of its own, assuming the share was the same throughout the run. The study estimate uses these.

Each case is measured ``--repeats`` times, the cases taking turns (so that a change in the machine's load
touches every case alike). With ``--study-timesteps N ...`` it also estimates, for each ``N``, the study
``agents/configs/studies/mujoco-novel.json`` describes, at each case's slowest measured rate: ``--seeds``
training runs per case at ``N`` steps, each evaluated twice on ``--eval-episodes`` episodes (train-ppo's
own final evaluation and the study's evaluation job), every evaluation episode counted at the env's full
``max_episode_steps`` (an untrained Hopper falls within a few dozen steps; a trained one may not), spread over
``--workers`` parallel jobs.

    python scripts/bench_mujoco_novel.py --timesteps 16384 --repeats 2 --study-timesteps 100000 150000 200000 \\
        --json docs/data/ppo/bench_mujoco_novel_$(date +%F).json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

NOVEL = ("HopperNoVel-v5", "HalfCheetahNoVel-v5")
CASES = tuple(f"{env}:{policy}" for env in NOVEL for policy in ("ltc", "cfc", "lstm", "mlp")) + (
    "Hopper-v5:mlp",
    "HalfCheetah-v5:mlp",
)
PROGRESS = re.compile(r"^steps (\d+)/(\d+) \(\d+%\), (\d+) steps/s")


@dataclass(frozen=True)
class Settings:
    cases: tuple[str, ...]
    """ENV:POLICY pairs to measure."""
    timesteps: int
    """Training steps per measurement run."""
    repeats: int
    """Measurements per case."""
    seed: int
    """Training seed of the measurement runs."""
    config: str | None
    """Optional --config FILE passed to every train-ppo run (overrides the presets)."""
    json: str | None
    """Where to write the measurements."""
    study_timesteps: tuple[int, ...]
    """Training steps per study run to estimate the study's wall time for (none: no estimate)."""
    seeds: int
    """Training seeds per case in the study."""
    eval_episodes: int
    """Evaluation episodes per evaluation (the study evaluates every run twice: train-ppo's and its own)."""
    workers: int
    """Jobs the study runs at once."""


def parse() -> Settings:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=list(CASES), metavar="ENV:POLICY")
    p.add_argument("--timesteps", type=int, default=16384)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", default=None, help="JSON file passed to every run as train-ppo --config")
    p.add_argument("--json", default=None)
    p.add_argument("--study-timesteps", type=int, nargs="*", default=[])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    for case in a.cases:
        if case.count(":") != 1:
            p.error(f"a case is ENV:POLICY, got {case!r}")
    return Settings(
        tuple(a.cases),
        a.timesteps,
        a.repeats,
        a.seed,
        a.config,
        a.json,
        tuple(a.study_timesteps),
        a.seeds,
        a.eval_episodes,
        a.workers,
    )


def measure(case: str, repeat: int, s: Settings, root: Path) -> dict:
    """One ``train-ppo`` run in a fresh process; its throughput from the run folder's file times."""
    env_id, policy = case.split(":")
    run_dir = root / f"{env_id}_{policy}_{repeat}"
    command = [
        sys.executable,
        "-m",
        "ncp_control.agents.cli",
        "train-ppo",
        "--env",
        env_id,
        "--policy",
        policy,
        "--seed",
        str(s.seed),
        "--timesteps",
        str(s.timesteps),
        "--out",
        str(run_dir),
        "--threads",
        "1",
        "--no-progress",
        *(["--config", s.config] if s.config else []),
    ]
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    load_before = os.getloadavg()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # children run one at a time: the difference is this run's
    start = time.perf_counter()
    done = subprocess.run(command, env={**os.environ, **threads}, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_share = (after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime) / wall
    if done.returncode != 0:
        raise RuntimeError(f"{case} failed:\n{done.stderr[-3000:]}")
    lines = done.stdout.strip().splitlines()
    progress = [m for m in map(PROGRESS.match, lines) if m]
    mtime = {name: (run_dir / name).stat().st_mtime for name in ("config.json", "model.zip", "evaluation.json")}
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    train_s = mtime["model.zip"] - mtime["config.json"]
    eval_s = mtime["evaluation.json"] - mtime["model.zip"]
    eval_steps = int(sum(evaluation["lengths"]))
    row = {
        "env_id": env_id,
        "policy": policy,
        "repeat": repeat,
        "timesteps": s.timesteps,
        "seed": s.seed,
        "n_envs": config["n_envs"],
        "algo": config["algo"],
        "policy_kwargs": config["policy_kwargs"],
        "train_s": train_s,
        "steps_per_s": s.timesteps / train_s,
        "progress_steps_per_s": int(progress[-1].group(3)) if progress else None,
        "eval_episodes": len(evaluation["lengths"]),
        "eval_steps": eval_steps,
        "eval_s": eval_s,
        "eval_s_per_step": eval_s / eval_steps,
        "process_wall_s": wall,
        "cpu_share": cpu_share,
        "steps_per_cpu_s": s.timesteps / train_s / cpu_share,
        "eval_cpu_s_per_step": eval_s / eval_steps * cpu_share,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "summary_line": lines[-1],
    }
    print(
        f"  {env_id:20s} {policy:5s} {row['steps_per_s']:6.0f} steps/s "
        f"(progress line {row['progress_steps_per_s']}), "
        f"CPU share {cpu_share:.2f}: {row['steps_per_cpu_s']:6.0f} steps per CPU-s; "
        f"eval {1e3 * row['eval_cpu_s_per_step']:.2f} CPU-ms/step; load {load_before[0]:.1f}",
        flush=True,
    )
    return row


def max_episode_steps(env_id: str) -> int:
    import gymnasium as gym

    import ncp_control.envs  # noqa: F401  (registers the NoVel ids)

    return int(gym.spec(env_id).max_episode_steps)


def estimate(rows: list[dict], timesteps: int, s: Settings) -> dict:
    """Seconds of the study on ``workers`` cores of its own: per case ``seeds`` runs of training plus two
    worst-case evaluations, at the case's slowest per-core rates."""
    cases = []
    for case in s.cases:
        env_id, policy = case.split(":")
        mine = [r for r in rows if (r["env_id"], r["policy"]) == (env_id, policy)]
        train = timesteps / min(r["steps_per_cpu_s"] for r in mine)
        evaluation = 2 * s.eval_episodes * max_episode_steps(env_id) * max(r["eval_cpu_s_per_step"] for r in mine)
        cases.append(
            {"env_id": env_id, "policy": policy, "train_s": train, "eval_s_worst_case": evaluation, "runs": s.seeds}
        )
    total = sum(c["runs"] * (c["train_s"] + c["eval_s_worst_case"]) for c in cases)
    longest = max(c["train_s"] + c["eval_s_worst_case"] for c in cases)
    return {
        "timesteps": timesteps,
        "seeds": s.seeds,
        "eval_episodes": s.eval_episodes,
        "workers": s.workers,
        "runs": sum(c["runs"] for c in cases),
        "cases": cases,
        "job_seconds": total,
        "wall_s_estimate": max(total / s.workers, longest),
    }


def machine() -> dict:
    model = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").is_file()
        else ""
    )
    versions = {}
    for name in ("torch", "stable_baselines3", "sb3_contrib", "gymnasium", "mujoco"):
        module = __import__(name)
        versions[name] = getattr(module, "__version__", "?")
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch_threads": 1,
        **versions,
    }


def main() -> None:
    s = parse()
    print(
        f"bench_mujoco_novel {time.strftime('%Y-%m-%d %H:%M')}: {len(s.cases)} cases x {s.repeats} x "
        f"{s.timesteps} steps, one at a time, 1 torch thread",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(case, repeat, s, Path(tmp)) for repeat in range(s.repeats) for case in s.cases]
    record = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "command": "python scripts/bench_mujoco_novel.py " + " ".join(sys.argv[1:]),
        "settings": asdict(s),
        "config_overrides": json.loads(Path(s.config).read_text()) if s.config else None,
        "rows": rows,
    }
    record["study_estimates"] = [estimate(rows, timesteps, s) for timesteps in s.study_timesteps]
    for study in record["study_estimates"]:
        print(
            f"study: {study['runs']} runs x {study['timesteps']} steps, {study['job_seconds'] / 3600:.2f} job-hours, "
            f"about {study['wall_s_estimate'] / 3600:.2f} h on {s.workers} workers"
        )
    if s.json:
        Path(s.json).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
