"""Per-step cost of each perturbation wrapper on a camera-sized uint8 image, one thread.

Usage, from the repository root:
    PYTHONPATH=. python scripts/bench_perturbations.py [--height 64] [--width 128] [--steps 1000]

Prints, for each spec, milliseconds per step added on top of a bare env whose step costs almost nothing, so the
numbers are the wrappers' own overhead (compare with the camera env's budget: 2 ms per step at 500 steps/s).
"""

import argparse
import platform
import time
from datetime import datetime, timezone

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box

from ncp_control.envs.perturbations import make_perturbation

SPECS = [
    "pixel_noise:0.316",
    "dropout:0.1",
    "frozen:0.1",
    "occlusion:0.2",
    "brightness:0.1",
    "blur:1",
    "blur:2",
    "action_noise:0.1",
    "action_delay:2",
    "irregular_time:3",
]


class StaticImageEnv(gym.Env):
    """Returns one fixed random (H, W, 3) uint8 image; a step costs almost nothing."""

    def __init__(self, height: int, width: int):
        self.observation_space = Box(0, 255, (height, width, 3), np.uint8)
        self.action_space = Box(-1.0, 1.0, (1,), np.float32)
        self.dt = 0.05
        self._image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._image, {}

    def step(self, action):
        return self._image, 0.0, False, False, {}


def seconds_per_step(env: gym.Env, steps: int) -> float:
    action = np.zeros(1, np.float32)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(action)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    print(
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
        f"numpy {np.__version__}, image {args.height}x{args.width}x3 uint8"
    )
    bare = seconds_per_step(StaticImageEnv(args.height, args.width), args.steps)
    print(f"{'bare env':20s} {bare * 1e3:7.3f} ms/step")
    for spec in SPECS:
        env = make_perturbation(StaticImageEnv(args.height, args.width), spec, seed=0)
        print(f"{spec:20s} {(seconds_per_step(env, args.steps) - bare) * 1e3:7.3f} ms/step added")


if __name__ == "__main__":
    main()
