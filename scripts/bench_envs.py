"""Steps per second of the lane-keeping envs on one CPU core, against Gymnasium's CarRacing-v3.

Each measurement runs in its own process pinned to one core (``os.sched_setaffinity``), so the software renderer
cannot spread over other cores and one case cannot warm up another. Every env is made with ``gym.make`` (with its
standard wrappers) and driven by seeded random actions (short episodes, many resets) or by the pure-pursuit
expert (full episodes) for ``--seconds`` of wall time after a warm-up; episodes that end are reset and the reset
time counts. Rates are reported as the median over short windows (other processes on a
shared machine only slow some windows) and as the plain mean.

Goals (issue 4): camera env >= 500 steps/s at the default resolution, state env >= 5,000 steps/s; with domain
randomisation (textures and roadside objects included) the camera env should keep >= 1,000 steps/s.

    python scripts/bench_envs.py                 # full table (about a minute)
    python scripts/bench_envs.py --seconds 2     # quicker, noisier
    python scripts/bench_envs.py --only 64x128   # the cases whose name contains "64x128"
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

CASES = {
    # name: (env id, kwargs, driver, goal steps/s or None)
    "LaneKeeping-v0 64x128 (default)": ("LaneKeeping-v0", {}, "random", 500),
    "LaneKeeping-v0 64x128, expert driving": ("LaneKeeping-v0", {}, "expert", 500),
    "LaneKeeping-v0 48x96": ("LaneKeeping-v0", {"image_height": 48, "image_width": 96}, "random", None),
    "LaneKeeping-v0 78x200 (paper size)": ("LaneKeeping-v0", {"image_height": 78, "image_width": 200}, "random", None),
    "LaneKeeping-v0 64x128 + domain rand.": ("LaneKeeping-v0", {"domain_randomization": True}, "random", 1000),
    "LaneKeeping-v0 64x128 + domain rand., expert": ("LaneKeeping-v0", {"domain_randomization": True}, "expert", 1000),
    "LaneKeepingState-v0": ("LaneKeepingState-v0", {}, "random", 5000),
    "LaneKeepingState-v0, expert driving": ("LaneKeepingState-v0", {}, "expert", 5000),
    "CarRacing-v3 (Box2D, 96x96 top-down)": ("CarRacing-v3", {}, "random", None),
}
WINDOW = 0.25  # s, timing window for the median rate (robust to other processes sharing the core)


def measure(env_id: str, kwargs: dict, driver: str, seconds: float, core: int) -> dict:
    """Steps/s of one env in this process, pinned to ``core``.

    ``driver``: ``"random"`` (seeded uniform actions: short episodes, many resets) or ``"expert"`` (the
    pure-pursuit expert: full-length episodes; its own time is included)."""
    os.sched_setaffinity(0, {core})
    import gymnasium as gym

    import ncp_control.envs  # noqa: F401  (registers the lane-keeping ids)
    from ncp_control.agents.imitation.experts import PurePursuitExpert

    try:
        env = gym.make(env_id, **kwargs)
    except Exception as err:  # CarRacing without box2d: report, do not fail the table
        return {"error": f"{type(err).__name__}: {err}".splitlines()[0][:120]}
    env.action_space.seed(0)
    env.reset(seed=0)
    if driver == "expert":
        act = PurePursuitExpert(env)
    else:
        actions = [env.action_space.sample() for _ in range(1000)]
        act = None
    steps = resets = 0
    episode = 1
    for k in range(100):  # warm-up (first frames, caches)
        _, _, terminated, truncated, _ = env.step(act() if act else actions[k])
        if terminated or truncated:
            env.reset(seed=10_000 + k)
    window_rates = []
    start = window_start = time.perf_counter()
    window_steps = 0
    while True:
        now = time.perf_counter()
        if now - window_start >= WINDOW:
            window_rates.append(window_steps / (now - window_start))
            window_start, window_steps = now, 0
            if now - start >= seconds:
                break
        _, _, terminated, truncated, _ = env.step(act() if act else actions[steps % len(actions)])
        steps += 1
        window_steps += 1
        if terminated or truncated:
            env.reset(seed=episode)
            episode += 1
            resets += 1
    total = time.perf_counter() - start
    env.close()
    window_rates.sort()
    return {
        "steps": steps,
        "resets": resets,
        "mean": steps / total,
        "median_window": window_rates[len(window_rates) // 2],
        "mean_episode": steps / max(resets, 1),
    }


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import gymnasium
    import mujoco

    return (
        f"{cpu}, {os.cpu_count()} logical cores, load average {os.getloadavg()[0]:.1f} at start; "
        f"Python {platform.python_version()}, mujoco {mujoco.__version__}, gymnasium {gymnasium.__version__}, "
        f"LP_NUM_THREADS={os.environ.get('LP_NUM_THREADS', 'unset (envs sets 0)')}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="timed wall seconds per case")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin each measurement to")
    parser.add_argument("--only", default="", help="run only the cases whose name contains this text")
    parser.add_argument(
        "--json",
        help="also write the results, machine and command to this JSON file "
        "(the data file behind docs and README figures)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        env_id, kwargs, driver, _ = CASES[args.worker]
        print(json.dumps(measure(env_id, kwargs, driver, args.seconds, args.core)))
        return 0

    print(f"# bench_envs  {datetime.datetime.now().isoformat(timespec='minutes')}")
    machine_info = machine()  # the load average at the start
    print(f"# {machine_info}")
    print(
        f"# one core (#{args.core}) per case, {args.seconds:g} s each; resets included; 'median' is the median"
        f" rate over {WINDOW:g} s windows (robust to other processes), 'mean' is steps / total time\n"
    )
    header = (
        f"| {'env':46s} | {'steps/s median':>14s} | {'steps/s mean':>12s} | {'mean episode':>12s} | {'goal':>13s} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell) + 0) for cell in header.split("|")[1:-1]) + "|")
    results = {}
    for name, (_, _, _, goal) in CASES.items():
        if args.only not in name:
            continue
        out = subprocess.run(
            [sys.executable, __file__, "--worker", name, "--seconds", str(args.seconds), "--core", str(args.core)],
            capture_output=True,
            text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        try:
            result = json.loads(out.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            result = {"error": (out.stderr.strip().splitlines() or ["no output"])[-1][:120]}
        results[name] = result
        if "error" in result:
            print(f"| {name:46s} | not run: {result['error']} |")
            continue
        verdict = "" if goal is None else (f">= {goal} " + ("ok" if result["median_window"] >= goal else "MISSED"))
        print(
            f"| {name:46s} | {result['median_window']:14,.0f} | {result['mean']:12,.0f} | "
            f"{result['mean_episode']:12.0f} | {verdict:>13s} |",
            flush=True,
        )
    if args.json:
        record = {
            "script": "scripts/bench_envs.py",
            "command": "python scripts/bench_envs.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
            "machine": machine_info,
            "seconds_per_case": args.seconds,
            "results": results,
        }
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
    camera = results.get("LaneKeeping-v0 64x128 (default)", {})
    racing = results.get("CarRacing-v3 (Box2D, 96x96 top-down)", {})
    if "median_window" in camera and "median_window" in racing:
        print(
            f"\nLaneKeeping-v0 (64x128) / CarRacing-v3, median steps/s: "
            f"{camera['median_window'] / racing['median_window']:.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
