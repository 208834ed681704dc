"""Benchmark imitation-trained camera lane keeping: NCP-LTC, NCP-CfC, LSTM and CNN at the same data and budget.

For each model and seed this trains a run exactly as ``ncp-control train-bc --preset PRESET`` does (through
``ncp_control.agents.imitation.train``; the round-0 expert demonstrations are identical for every model of a seed, the DAgger
rounds are each learner's own), then evaluates it closed loop on ``--episodes`` held-out roads (reset seeds
1,000,000, 1,000,001, ...). In the same run it measures two references on the same roads: the privileged expert
(the ceiling) and an untrained NCP-LTC (the floor). It prints a Markdown table (completion rate, mean |lateral
offset|, departures per km, steering smoothness, recurrent parameters, synapses, training minutes and training
throughput) and writes every number to ``--json``.

Goals from the issue: ``paper`` preset, ncp-ltc >= 98 % completion on 100 held-out roads with <= 1,100 recurrent
parameters, trained in <= 30 min on 2 CPU cores; ``demo`` preset >= 90 %.

Examples::

    python scripts/bench_imitation.py --preset demo --models ncp-ltc --episodes 100
    python scripts/bench_imitation.py --preset paper --models ncp-ltc ncp-cfc lstm cnn --json docs/data/imitation/bench_imitation.json
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Settings:
    env: str
    """Gymnasium id of the camera lane-keeping env."""
    preset: str
    """Training preset: demo or paper."""
    models: tuple[str, ...]
    """Models to train: ncp-ltc, ncp-cfc, lstm, cnn."""
    seeds: tuple[int, ...]
    """Training seeds."""
    episodes: int
    """Held-out roads per evaluation."""
    threads: int
    """torch CPU threads."""
    overrides: tuple[str, ...]
    """KEY=VALUE training settings applied over the preset."""
    json: str | None
    """Where to write all results."""
    runs: str | None
    """Folder to keep the run folders in (default: a temporary folder, deleted)."""


def parse() -> Settings:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="LaneKeeping-v0", help=Settings.__dataclass_fields__["env"].__doc__)
    p.add_argument("--preset", choices=("demo", "paper"), default="demo")
    p.add_argument("--models", nargs="+", default=["ncp-ltc", "ncp-cfc", "lstm", "cnn"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", default=None)
    p.add_argument("--runs", default=None)
    a = p.parse_args()
    return Settings(
        a.env, a.preset, tuple(a.models), tuple(a.seeds), a.episodes, a.threads, tuple(a.overrides), a.json, a.runs
    )


def expert_reference(config, episodes: int) -> dict:
    """The expert's completion and mean |lateral offset| on the held-out roads."""
    from ncp_control.agents import imitation as im

    env = im.make_env(config.env_id, config.env_kwargs)
    expert = im.resolve_expert(config.env_id, config.expert)(env)
    runs = [
        im.rollout(env, expert, road, step_seconds=1.0)
        for road in im.heldout_road_seeds(im.HELDOUT_SEED_START, episodes)
    ]
    env.close()
    return {
        "completion_rate": float(np.mean([r.success for r in runs])),
        "mean_abs_lateral_m": float(np.mean([np.abs(r.info["lateral_offset_m"]).mean() for r in runs])),
    }


def train_and_evaluate(s: Settings, root: Path, model: str, seed: int):
    """Train ``model`` with ``seed`` into a run folder under ``root`` (resuming one that is there) and evaluate it on
    the held-out roads: returns its config, its predictor and its row of the table."""
    from ncp_control.agents import imitation as im
    from ncp_control.agents.commands.train_bc import parse_overrides
    from ncp_control.policies.imitation import parameter_counts

    config = im.preset_config(s.preset, env_id=s.env, model=model, seed=seed, **parse_overrides(list(s.overrides)))
    run_dir = root / f"{s.env}-{s.preset}-{model}-seed{seed}"
    t0 = time.perf_counter()
    im.train(config, run_dir, resume=(run_dir / "config.json").exists())
    seconds = json.loads((run_dir / "progress.jsonl").read_text().splitlines()[-1])["time/seconds"]
    frame_epochs = sum(
        json.loads(line)["train/frames"] for line in (run_dir / "progress.jsonl").read_text().splitlines()
    )
    policy = im.load_predictor(run_dir)
    metrics = im.evaluate_heldout(policy, config.env_id, s.episodes, env_kwargs=config.env_kwargs)
    counts = parameter_counts(policy)
    row = {
        "model": model,
        "seed": seed,
        "preset": s.preset,
        **{
            k: metrics[k] for k in ("completion_rate", "mean_abs_lateral_m", "departures_per_km", "steering_smoothness")
        },
        "recurrent_parameters": counts["recurrent"],
        "total_parameters": counts["total"],
        "synapses": counts["synapses"],
        "train_minutes": seconds / 60.0,
        "train_frames_per_second": frame_epochs / max(seconds, 1e-9),  # guard: empty run
        "wall_minutes_incl_eval": (time.perf_counter() - t0) / 60.0,
    }
    return config, policy, row


def untrained_reference(policy, config, seed: int, episodes: int) -> dict:
    """Completion and mean |lateral offset| of an untrained model built like ``policy`` (the floor)."""
    from ncp_control.agents import imitation as im
    from ncp_control.policies.imitation import build_model

    untrained = build_model(policy.config, seed=seed)
    return {
        k: v
        for k, v in im.evaluate_heldout(untrained, config.env_id, episodes, env_kwargs=config.env_kwargs).items()
        if k in ("completion_rate", "mean_abs_lateral_m")
    }


def print_table(s: Settings, results: list[dict], references: dict) -> None:
    """The settings line, then a Markdown table: one row per trained model, then the references."""
    print(
        f"\n{s.env}, preset {s.preset}, {s.episodes} held-out roads, torch threads {s.threads}, "
        f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}\n"
    )
    print(
        "| model | seed | completion | mean abs lateral (m) | departures/km | smoothness | recurrent params "
        "| synapses | train min | train frames/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['model']} | {r['seed']} | {r['completion_rate']:.0%} | {r['mean_abs_lateral_m']:.3f} | "
            f"{r['departures_per_km']:.2f} | {r['steering_smoothness']:.4f} | {r['recurrent_parameters']:,} | "
            f"{r['synapses'] if r['synapses'] is not None else '-'} | {r['train_minutes']:.1f} | "
            f"{r['train_frames_per_second']:.0f} |"
        )
    for name, ref in references.items():
        print(
            f"| {name} (reference) | - | {ref['completion_rate']:.0%} | {ref['mean_abs_lateral_m']:.3f} | "
            "- | - | - | - | - | - |"
        )


def write_json(s: Settings, results: list[dict], references: dict) -> None:
    """Every number, with the settings, the date and the machine, to ``--json``."""
    Path(s.json).write_text(
        json.dumps(
            {
                "settings": s.__dict__,
                "results": results,
                "references": references,
                "date": time.strftime("%Y-%m-%d"),
                "machine": platform.platform(),
            },
            indent=1,
        )
    )


def main() -> None:
    s = parse()
    import torch

    torch.set_num_threads(s.threads)
    root = Path(s.runs) if s.runs else Path(tempfile.mkdtemp(prefix="bench_imitation_"))
    root.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    references: dict = {}
    try:
        for seed in s.seeds:
            for model in s.models:
                config, policy, row = train_and_evaluate(s, root, model, seed)
                results.append(row)
                print(json.dumps(row), flush=True)
                if "untrained ncp-ltc" not in references and model == "ncp-ltc":
                    references["untrained ncp-ltc"] = untrained_reference(policy, config, seed, s.episodes)
            if "expert" not in references:
                references["expert"] = expert_reference(config, s.episodes)
    finally:
        if not s.runs:
            shutil.rmtree(root, ignore_errors=True)
    print_table(s, results, references)
    if s.json:
        write_json(s, results, references)


if __name__ == "__main__":
    main()
