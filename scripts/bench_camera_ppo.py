"""Camera PPO throughput (issue 27, item 3): where one PPO iteration on LaneKeeping-v0 spends its time, and training
steps/s against the bare env's rate with the same env processes, measured in one run.

For each setting (``--settings``: ``dummy1`` = 1 env in this process, ``subprocN`` = N envs in subprocesses; a
suffix ``-tK`` gives the learner K torch threads instead of ``--threads``, ``-frozen`` freezes the conv head as
``train-ppo --freeze-conv-head`` does, e.g. ``dummy1-t2-frozen``):

- ``bare``: the vectorised env alone, random actions, steps/s (what rendering and physics allow);
- ``ppo``: ``train-ppo``'s own code (``ncp_control.agents.ppo.train``) for ``--timesteps`` steps with the NCP-LTC
  camera actor at the paper's 64 x 128 images (the preset's settings, ``n_steps`` x envs steps per rollout),
  steps/s over the whole run, and its phases: time inside ``VecEnv.step`` (rendering, physics, and for
  subprocesses the transfer), the rest of the rollout (the policy's forward pass, buffers) and the update
  (``train()``: every epoch's forward and backward passes).

The goal is ``ppo / bare >= 0.5`` with the same env processes. Also times the conv head's forward and backward
pass on one rollout's images with NCHW memory (what SB3's channels-first observations gave the convolutions before
the head asked for channels-last memory) against channels-last memory. Writes JSON (``--out``) and prints a table.

    python scripts/bench_camera_ppo.py --settings dummy1 dummy1-t2 dummy1-t2-frozen subproc2-t2 --timesteps 2048 \\
        --out docs/data/camera_ppo/bench_camera_ppo.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")


def _setting(name: str, threads: int) -> tuple[str, int, int, bool]:
    """``dummy1``, ``subproc2-t2``, ``dummy1-t2-frozen`` -> (vec env kind, envs, learner threads, frozen head)."""
    base, *flags = name.split("-")
    kind = "dummy" if base.startswith("dummy") else "subproc"
    for flag in flags:
        if flag.startswith("t") and flag[1:].isdigit():
            threads = int(flag[1:])
        elif flag != "frozen":
            raise SystemExit(f"bench_camera_ppo.py: error: unknown setting suffix {flag!r} in {name!r}")
    return kind, int(base.removeprefix(kind)), threads, "frozen" in flags


def conv_layouts(images: int, threads: int, repeats: int = 3) -> dict:
    """Seconds of one forward + backward pass of the paper's conv head over ``images`` 64 x 128 frames, NCHW
    memory against channels-last memory (the best of ``repeats``)."""
    import torch

    from ncp_control.policies.conv import ConvHead

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    head = ConvHead((64, 128, 3))
    frames = torch.rand(images, 3, 64, 128)
    timings = {}
    for layout, x in (("nchw", frames), ("channels_last", frames.contiguous(memory_format=torch.channels_last))):
        best = float("inf")
        for _ in range(repeats + 1):  # the first pass warms oneDNN up
            t0 = time.perf_counter()
            head.zero_grad()
            head.convs(x).sum().backward()
            best = min(best, time.perf_counter() - t0)
        timings[f"{layout}_s"] = best
    return {"images": images, "threads": threads, **timings, "speedup": timings["nchw_s"] / timings["channels_last_s"]}


def _config(kind: str, n_envs: int, timesteps: int, n_steps: int, frozen: bool = False) -> dict:
    from ncp_control.agents import ppo

    overrides = {
        "n_envs": n_envs,
        "vec_env": kind,
        "progress_bar": False,
        "checkpoint_freq": 0,
        "checkpoint_seconds": 0,
        "eval_freq": 0,
        "eval_episodes": 1,
        "algo": {"n_steps": n_steps, "batch_size": n_steps * n_envs},
    }
    if frozen:
        overrides["policy_kwargs"] = {"features_extractor_kwargs": {"frozen": True}}
    config = ppo.resolve_config("LaneKeeping-v0", "ltc", timesteps=timesteps, seed=0, overrides=overrides)
    return ppo.finalize_config(config)


def bare_rate(kind: str, n_envs: int, steps: int) -> float:
    """Env steps/s of the training VecEnv alone under random actions (after one warm-up rollout of 50 steps)."""
    from ncp_control.agents.ppo.envs import make_training_env

    venv = make_training_env(_config(kind, n_envs, steps, 64))
    rng = np.random.default_rng(0)
    venv.reset()
    for _ in range(50):
        venv.step(rng.uniform(-1, 1, (n_envs, 1)).astype(np.float32))
    t0 = time.perf_counter()
    for _ in range(steps // n_envs):
        venv.step(rng.uniform(-1, 1, (n_envs, 1)).astype(np.float32))
    seconds = time.perf_counter() - t0
    venv.close()
    return (steps // n_envs) * n_envs / seconds


def ppo_rate(kind: str, n_envs: int, timesteps: int, n_steps: int, threads: int, frozen: bool = False) -> dict:
    """train-ppo's training loop on the camera task, with the time of its phases."""
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecEnvWrapper

    from ncp_control.agents import ppo

    torch.set_num_threads(threads)
    clock = {"env": 0.0, "rollout": 0.0, "update": 0.0}

    class Timed(VecEnvWrapper):
        def reset(self):
            return self.venv.reset()

        def step_async(self, actions):
            self._t = time.perf_counter()
            self.venv.step_async(actions)

        def step_wait(self):
            out = self.venv.step_wait()
            clock["env"] += time.perf_counter() - self._t
            return out

    class Phases(BaseCallback):
        def _on_rollout_start(self) -> None:
            self._t = time.perf_counter()
            if hasattr(self, "_u"):
                clock["update"] += self._t - self._u

        def _on_rollout_end(self) -> None:
            clock["rollout"] += time.perf_counter() - self._t
            self._u = time.perf_counter()

        def _on_training_end(self) -> None:
            if hasattr(self, "_u"):
                clock["update"] += time.perf_counter() - self._u

        def _on_step(self) -> bool:
            return True

    import importlib

    train_module = importlib.import_module("ncp_control.agents.ppo.train")  # the module (the package exports train())

    original = train_module.make_training_env

    def timed_env(*args, **kwargs):
        return Timed(original(*args, **kwargs))

    train_module.make_training_env = timed_env
    try:
        config = _config(kind, n_envs, timesteps, n_steps, frozen)
        with tempfile.TemporaryDirectory() as folder:
            t0 = time.perf_counter()
            ppo.train(config, Path(folder) / "run", callbacks=[Phases()], evaluate_at_end=False)
            seconds = time.perf_counter() - t0
    finally:
        train_module.make_training_env = original
    return {
        "steps_per_s": timesteps / seconds,
        "seconds": seconds,
        "env_step_s": clock["env"],
        "rollout_other_s": clock["rollout"] - clock["env"],
        "update_s": clock["update"],
        "setup_s": seconds - clock["rollout"] - clock["update"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["dummy1", "subproc2"])
    parser.add_argument("--timesteps", type=int, default=4096, help="PPO steps per setting")
    parser.add_argument("--n-steps", type=int, default=512, help="rollout steps per env")
    parser.add_argument("--bare-steps", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the learner")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    import torch

    settings = [(name, *_setting(name, args.threads)) for name in args.settings]
    layouts = [conv_layouts(args.n_steps, threads) for threads in sorted({s[3] for s in settings})]
    for layout in layouts:
        print(
            f"conv head, {layout['images']} images, {layout['threads']} thread(s): forward + backward "
            f"{layout['nchw_s']:.3f} s NCHW, {layout['channels_last_s']:.3f} s channels-last "
            f"({layout['speedup']:.2f}x)",
            flush=True,
        )
    rows = []
    bare_rates: dict[tuple[str, int], float] = {}
    for name, kind, n_envs, threads, frozen in settings:
        if (kind, n_envs) not in bare_rates:
            bare_rates[kind, n_envs] = bare_rate(kind, n_envs, args.bare_steps)
        bare = bare_rates[kind, n_envs]
        trained = ppo_rate(kind, n_envs, args.timesteps, args.n_steps, threads, frozen)
        row = {
            "setting": name,
            "threads": threads,
            "frozen_conv_head": frozen,
            "bare_steps_per_s": bare,
            **trained,
            "ratio": trained["steps_per_s"] / bare,
        }
        rows.append(row)
        print(
            f"{name:18s} bare {bare:7.0f} steps/s | ppo {trained['steps_per_s']:6.0f} steps/s "
            f"(ratio {row['ratio']:.2f}) | env {trained['env_step_s']:.1f} s, rest of rollout "
            f"{trained['rollout_other_s']:.1f} s, update {trained['update_s']:.1f} s, setup {trained['setup_s']:.1f} s",
            flush=True,
        )
    record = {
        "benchmark": "camera PPO throughput (scripts/bench_camera_ppo.py)",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
        "load_average_at_end": os.getloadavg()[0],
        "torch": torch.__version__,
        "timesteps": args.timesteps,
        "n_steps": args.n_steps,
        "threads": args.threads,
        "conv_layouts": layouts,
        "rows": rows,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
