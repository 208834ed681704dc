"""Benchmark PPO actors at the same budget: NCP-LTC, NCP-CfC, LSTM (RecurrentPPO) and MLP (PPO).

For each env, policy and seed this trains a run with the presets of ``agents/configs/ppo.json`` (through
``ncp_control.agents.ppo.train``, exactly what ``ncp-control train-ppo`` does), then records the final evaluation
(``--eval-episodes`` seeded episodes), the training wall time and the throughput (environment steps per second of
wall time, collection + updates). It prints one table per env with mean ± std over seeds and each policy's
throughput as a ratio to the LSTM's measured in the same run, and writes every number to ``--json``.

Goals from the issue: Pendulum-v1 >= -200 (NCP), PendulumNoVel-v1 >= -250 (the MLP should fail),
InvertedPendulum-v5 >= 950, LaneKeepingState-v0 >= 95 % completion; NCP throughput >= the LSTM's.

Example (one core, about 15 min per 100k-step recurrent run)::

    python scripts/bench_ppo.py --envs Pendulum-v1 PendulumNoVel-v1 --policies ltc cfc lstm mlp \
        --seeds 0 1 2 --timesteps 100000 --json docs/data/ppo/bench_ppo.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    envs: tuple[str, ...]
    """Gymnasium ids to benchmark."""
    policies: tuple[str, ...]
    """Policies: ltc, cfc, lstm, mlp."""
    seeds: tuple[int, ...]
    """Training seeds."""
    timesteps: int
    """Environment steps per run (the same budget for every policy)."""
    eval_episodes: int
    """Evaluation episodes per run (seeds eval_seed, eval_seed + 1, ...)."""
    n_envs: int | None
    """Parallel envs (default: the preset's)."""
    threads: int
    """torch threads."""
    json: str | None
    """Where to write all results."""
    runs: str | None
    """Folder to keep the run folders in (default: a temporary folder, deleted)."""
    overrides: dict
    """Config overrides from ``--set KEY=VALUE`` (dotted keys, JSON values), applied to every run."""
    jobs: int
    """Runs trained at once in separate processes (each with ``threads`` torch threads)."""
    tag: str
    """Label of this configuration in the table and the JSON (e.g. the overrides' name)."""


def parse() -> Settings:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", nargs="+", default=["Pendulum-v1", "PendulumNoVel-v1"])
    p.add_argument("--policies", nargs="+", default=["ltc", "cfc", "lstm", "mlp"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--timesteps", type=int, default=100_000)
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--n-envs", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None)
    p.add_argument("--runs", default=None)
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every run, dotted keys and JSON values, e.g. algo.learning_rate=3e-4",
    )
    p.add_argument("--jobs", type=int, default=1, help="runs at once, one process each (a many-core machine)")
    p.add_argument("--tag", default="", help="label of this configuration in the output")
    a = p.parse_args()
    if a.jobs < 1:
        p.error("--jobs must be >= 1")
    try:
        overrides = parse_overrides(a.overrides)
    except ValueError as e:
        p.error(str(e))
    return Settings(
        tuple(a.envs),
        tuple(a.policies),
        tuple(a.seeds),
        a.timesteps,
        a.eval_episodes,
        a.n_envs,
        a.threads,
        a.json,
        a.runs,
        overrides,
        a.jobs,
        a.tag,
    )


def parse_overrides(items: list[str]) -> dict:
    """``["algo.learning_rate=3e-4", "n_envs=8"]`` -> ``{"algo": {"learning_rate": 0.0003}, "n_envs": 8}``.

    Values are parsed as JSON when they are JSON, else kept as strings.
    """
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ValueError(f"--set expects KEY=VALUE with a (dotted) key, got {item!r}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {item!r} conflicts with an earlier --set of {part!r}")
        node[leaf] = parsed
    return out


def bench_one(env_id: str, policy: str, seed: int, s: Settings, root: Path) -> dict:
    import torch

    from ncp_control.agents import ppo

    torch.set_num_threads(s.threads)
    overrides = {"progress_bar": False, "checkpoint_freq": 0, "eval_episodes": s.eval_episodes}
    if s.n_envs is not None:
        overrides["n_envs"] = s.n_envs
    ppo.merge_config(overrides, s.overrides)
    config = ppo.resolve_config(env_id, policy, timesteps=s.timesteps, seed=seed, overrides=overrides)
    run_dir = root / f"{env_id}_{policy}{'_' + s.tag if s.tag else ''}_s{seed}"
    start = time.perf_counter()
    ppo.train(config, run_dir, evaluate_at_end=False)
    wall = time.perf_counter() - start
    from ncp_control.agents.evaluation.episodes import evaluate

    result = evaluate(
        ppo.load_predictor(run_dir, ppo.finalize_config(config)),
        env_id,
        s.eval_episodes,
        config["eval_seed"],
        env_kwargs=config["env_kwargs"],
    )
    row = {
        "env_id": env_id,
        "policy": policy,
        "tag": s.tag,
        "overrides": s.overrides,
        "seed": seed,
        "timesteps": s.timesteps,
        "wall_s": wall,
        "steps_per_s": s.timesteps / wall,
        "mean_return": result["mean_return"],
        "std_return": result["std_return"],
    }
    if "completion_rate" in result:
        row["completion_rate"] = result["completion_rate"]
    done = f"  completion {row['completion_rate']:.0%}" if "completion_rate" in row else ""
    print(
        f"  {env_id:22s} {policy:5s} {s.tag} seed {seed}: return {row['mean_return']:9.1f} ± {row['std_return']:6.1f}"
        f"{done}  {wall:7.1f} s  {row['steps_per_s']:7.1f} steps/s",
        flush=True,
    )
    return row


def summarise(rows: list[dict], s: Settings) -> str:
    import numpy as np

    lines = []
    for env_id in s.envs:
        lines.append(
            f"\n{env_id}  ({s.timesteps} steps, {len(s.seeds)} seeds, {s.eval_episodes} eval episodes"
            f"{', ' + s.tag if s.tag else ''}{', overrides ' + json.dumps(s.overrides) if s.overrides else ''})"
        )
        lines.append(
            f"{'policy':7s} {'return mean ± std over seeds':>30s} {'per seed':>30s} {'steps/s':>9s} {'vs LSTM':>8s}"
        )
        lstm = [r["steps_per_s"] for r in rows if r["env_id"] == env_id and r["policy"] == "lstm"]
        for policy in s.policies:
            sel = [r for r in rows if r["env_id"] == env_id and r["policy"] == policy]
            if not sel:
                continue
            returns = np.array([r["mean_return"] for r in sel])
            sps = float(np.mean([r["steps_per_s"] for r in sel]))
            ratio = f"{sps / np.mean(lstm):.2f}x" if lstm else "n/a"
            per_seed = " ".join(f"{x:.0f}" for x in returns)
            lines.append(
                f"{policy:7s} {returns.mean():20.1f} ± {returns.std():7.1f} {per_seed:>30s} {sps:9.1f} {ratio:>8s}"
            )
    return "\n".join(lines)


def main() -> None:
    s = parse()
    import torch

    torch.set_num_threads(s.threads)
    print(
        f"bench_ppo {time.strftime('%Y-%m-%d %H:%M')} on {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {s.threads} thread(s)"
    )
    # interleave policies so machine load drifts affect all alike
    jobs = [(env_id, policy, seed) for env_id in s.envs for seed in s.seeds for policy in s.policies]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(s.runs) if s.runs else Path(tmp)
        if s.jobs == 1:
            rows = [bench_one(env_id, policy, seed, s, root) for env_id, policy, seed in jobs]
        else:  # one process per run; spawn: no torch/MuJoCo state inherited from this process
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(s.jobs, mp_context=mp.get_context("spawn")) as pool:
                futures = [pool.submit(bench_one, env_id, policy, seed, s, root) for env_id, policy, seed in jobs]
                rows = [f.result() for f in futures]
    table = summarise(rows, s)
    print(table)
    if s.json:
        Path(s.json).write_text(
            json.dumps({"date": time.strftime("%Y-%m-%d"), "settings": s.__dict__, "rows": rows}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
