"""Save example frames of LaneKeeping-v0 as PNG (the pictures in docs/envs.md).

Drives a few seeded roads with the pure-pursuit expert and writes

- ``lane_keeping_dashcam.png``: observations (64x128, shown 4x enlarged without smoothing) after 1, 4 and 8 s on
  three roads, plain look (top row) and with domain randomisation (bottom row);
- ``lane_keeping_chase.png``: the human-readable chase view (``render_mode="rgb_array"``) of the same moments;
- ``lane_keeping_roads.png``: top view of the roads of seeds 0-5 (matplotlib);
- ``lane_keeping_randomized.png``: domain randomisation (textures, roadside objects, colours, light, camera) on
  seeds 0-3 after 3 s: dash-camera observation (64x128, 2x enlarged) beside the chase view.

    python scripts/render_lane_frames.py [--out docs/data/envs]
"""

from __future__ import annotations

import argparse
import os
import sys

import gymnasium as gym
import numpy as np

import ncp_control.envs  # noqa: F401  (registers the ids)
from ncp_control.agents.imitation.experts import PurePursuitExpert

SEEDS = (0, 3, 4)  # first curve left, right, right (see lane_keeping_roads.png)
TIMES_S = (1.0, 4.0, 8.0)
ZOOM = 4


def frames(domain_randomization: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Dash-camera observations and chase renders at TIMES_S on each of SEEDS."""
    env = gym.make("LaneKeeping-v0", domain_randomization=domain_randomization, render_mode="rgb_array")
    expert = PurePursuitExpert(env)
    dash, chase = [], []
    for seed in SEEDS:
        obs, _ = env.reset(seed=seed)
        step = 0
        for t in TIMES_S:
            while step < round(t * 20):
                obs, *_ = env.step(expert())
                step += 1
            dash.append(obs)
            chase.append(env.render())
    env.close()
    return dash, chase


def grid(images: list[np.ndarray], columns: int, zoom: int = 1, pad: int = 4) -> np.ndarray:
    """Tile (H, W, 3) uint8 images row by row, each enlarged ``zoom`` times (nearest neighbour), white gaps."""
    images = [img.repeat(zoom, axis=0).repeat(zoom, axis=1) for img in images]
    h, w, _ = images[0].shape
    rows = -(-len(images) // columns)
    out = np.full((rows * (h + pad) - pad, columns * (w + pad) - pad, 3), 255, dtype=np.uint8)
    for k, img in enumerate(images):
        r, c = divmod(k, columns)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = img
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("docs", "data", "envs"), help="output folder")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plain_dash, plain_chase = frames(False)
    random_dash, random_chase = frames(True)
    n = len(SEEDS) * len(TIMES_S)
    # one row per seed and look: plain seeds first, then the randomised ones
    plt.imsave(
        os.path.join(args.out, "lane_keeping_dashcam.png"),
        grid(plain_dash + random_dash, columns=len(TIMES_S), zoom=ZOOM),
    )
    picks = [plain_chase[0], plain_chase[n // 2], random_chase[1], random_chase[-1]]
    plt.imsave(os.path.join(args.out, "lane_keeping_chase.png"), grid(picks, columns=2))

    tiles = []
    env = gym.make("LaneKeeping-v0", domain_randomization=True, render_mode="rgb_array")
    expert = PurePursuitExpert(env)
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        for _ in range(60):
            obs, *_ = env.step(expert())
        chase = env.render()  # (240, 320, 3)
        dash = np.full((chase.shape[0], 2 * obs.shape[1], 3), 255, dtype=np.uint8)
        dash[: 2 * obs.shape[0]] = obs.repeat(2, axis=0).repeat(2, axis=1)
        tiles.append(np.concatenate([dash, chase], axis=1))
    env.close()
    plt.imsave(os.path.join(args.out, "lane_keeping_randomized.png"), grid(tiles, columns=2))

    env = gym.make("LaneKeepingState-v0").unwrapped
    fig, ax = plt.subplots(figsize=(7, 5))
    for seed in range(6):
        env.reset(seed=seed)
        road = env.road
        end = int(road.length / road.ds) + 1
        ax.plot(road.xy[:end, 0], road.xy[:end, 1], label=f"seed {seed}")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title("LaneKeeping roads (drivable part, start at the origin heading +x)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "lane_keeping_roads.png"), dpi=80)
    print(f"wrote 4 PNG files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
