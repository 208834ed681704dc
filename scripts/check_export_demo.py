"""Does the exported policy drive like the torch one? Export a run, evaluate both on the same held-out roads, and
step both on the same observations along one road (lockstep) to measure the largest action difference.

Usage::

    ncp-control demo --out runs/demo
    python scripts/check_export_demo.py runs/demo --episodes 20 --json docs/data/deploy/deploy_demo_check.json

Closed loop the two runs see slightly different frames after a while (a difference of 1e-7 in steering moves the
car by a fraction of a pixel, and a pixel that flips changes the features), so per-episode numbers such as the
mean |lateral offset| may differ in the fourth digit while completion and episode lengths agree; the lockstep
measures the exported graph itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

KEYS = ("completion_rate", "mean_abs_lateral_m", "departures_per_km", "steering_smoothness", "mean_return")


def lockstep(loaded, exported, seed: int) -> tuple[float, int]:
    """Largest |action difference| along one episode driven by the exported policy (torch sees the same frames)."""
    from ncp_control.agents.evaluation.episodes import make_eval_env

    env = make_eval_env(loaded.env_id, loaded.env_kwargs, getattr(loaded.predictor, "env_wrappers", ()))
    obs, _ = env.reset(seed=seed)
    state_t = state_o = None
    start, worst, steps = np.ones(1, bool), 0.0, 0
    while True:
        a_t, state_t = loaded.predictor.predict(obs[None], state=state_t, episode_start=start, deterministic=True)
        a_o, state_o = exported.predict(obs[None], state_o, episode_start=start)
        worst = max(worst, float(np.abs(np.asarray(a_t) - a_o).max()))
        start[:] = False
        obs, _, terminated, truncated, _ = env.step(a_o[0])
        steps += 1
        if terminated or truncated:
            env.close()
            return worst, steps


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1_000_000, help="first held-out road (default 1,000,000)")
    parser.add_argument("--json", default="")
    parser.add_argument("--machine", default="2-core VM, shared")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from ncp_control.agents.evaluation.episodes import evaluate
    from ncp_control.agents.export.writer import export_run
    from ncp_control.agents.runs.load import load_run
    from ncp_control.deploy import OnnxPolicy

    loaded = load_run(args.run_dir)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.onnx"
        export_run(args.run_dir, path)
        exported = OnnxPolicy(path)
        results = {}
        for name, predictor in (("torch", loaded.predictor), ("onnxruntime", exported)):
            start = time.perf_counter()
            results[name] = evaluate(predictor, loaded.env_id, args.episodes, args.seed, env_kwargs=loaded.env_kwargs)
            results[name]["seconds"] = time.perf_counter() - start
        worst, steps = lockstep(loaded, exported, args.seed)
    same = {k: results["torch"][k] == results["onnxruntime"][k] for k in ("lengths", "successes", "crashes")}
    for k in KEYS:
        print(f"{k:22s} torch {results['torch'][k]:.6g}  onnxruntime {results['onnxruntime'][k]:.6g}")
    print(f"same per-episode lengths / successes / crashes: {same}")
    print(f"lockstep on road {args.seed}: max |action difference| {worst:.2e} over {steps} steps")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "date": str(date.today()),
                    "machine": args.machine,
                    "command": "python scripts/check_export_demo.py " + " ".join(argv or sys.argv[1:]),
                    "run": {"env_id": loaded.env_id, "policy": loaded.config["policy"], "seed": loaded.config["seed"]},
                    "episodes": args.episodes,
                    "first_road": args.seed,
                    "torch": {k: results["torch"][k] for k in (*KEYS, "lengths", "successes", "seconds")},
                    "onnxruntime": {k: results["onnxruntime"][k] for k in (*KEYS, "lengths", "successes", "seconds")},
                    "same": same,
                    "lockstep_max_abs_action_difference": worst,
                    "lockstep_steps": steps,
                },
                indent=1,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
