"""rl-baselines3-zoo fit: the id we share with rl-zoo is its env in either import order, the shipped hyperparameter
files agree with the PPO presets, and rl-zoo's own ``train`` entry point trains our NCP policy from them.

rl_zoo3 patches Gymnasium's TimeLimit when imported, so everything that imports it runs in a subprocess.
"""

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("rl_zoo3")  # the dev extra declares it
import yaml  # noqa: E402  (rl_zoo3 requires pyyaml)

from ncp_control.agents.ppo.rl_zoo import ZOO_ENVS, ZOO_POLICY, hyperparams_path, render_hyperparams_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Imports in the given order, then: which ids rl-zoo and we both register, what PendulumNoVel-v1 is, and whether
# 60 steps of it equal rl-zoo's MaskVelocityWrapper around Pendulum-v1 (observations, rewards, truncation).
_ORDER_SCRIPT = """
import importlib, json, sys
import numpy as np, gymnasium as gym
for name in sys.argv[1:]:
    importlib.import_module(name)
import ncp_control.envs
from rl_zoo3.wrappers import MaskVelocityWrapper
zoo_ids = {k.replace("-v", "NoVel-v") for k in MaskVelocityWrapper.velocity_indices}
ours = set(ncp_control.envs.REGISTERED_IDS)
env, zoo = gym.make("PendulumNoVel-v1"), MaskVelocityWrapper(gym.make("Pendulum-v1"))
obs, _ = env.reset(seed=7); obs_zoo, _ = zoo.reset(seed=7)
same = bool(np.array_equal(obs, obs_zoo))
actions = np.random.default_rng(0).uniform(-2, 2, (60, 1)).astype(np.float32)
for a in actions:
    o, r, te, tr, _ = env.step(a); oz, rz, tez, trz, _ = zoo.step(a)
    same = same and bool(np.array_equal(o, oz)) and (r, te, tr) == (rz, tez, trz)
print(json.dumps({"shared": sorted(zoo_ids & ours), "ours": sorted(ours), "shape": list(env.observation_space.shape),
                  "same_as_rl_zoo": same, "velocity_zero": float(o[2])}))
"""


def _run(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "order", [["ncp_control.envs", "rl_zoo3.import_envs"], ["rl_zoo3.import_envs", "ncp_control.envs"]]
)
def test_pendulum_novel_is_rl_zoos_env_in_either_import_order(order):
    done = _run(["-c", _ORDER_SCRIPT, *order])
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["shape"] == [3]
    assert result["same_as_rl_zoo"] and result["velocity_zero"] == 0.0
    # the only id both register; InvertedPendulumNoVel-v5, HalfCheetahNoVel-v5, HopperNoVel-v5 and the
    # lane-keeping ids are ours alone
    assert result["shared"] == ["PendulumNoVel-v1"]


@pytest.mark.parametrize("cell", ["ltc", "cfc"])
def test_shipped_hyperparameter_files_agree_with_the_ppo_presets(cell):
    path = hyperparams_path(cell)
    assert path.read_text() == render_hyperparams_file(cell), (
        f"{path} is out of date: run python scripts/export_rl_zoo_hyperparams.py"
    )
    entries = yaml.safe_load(path.read_text())
    assert list(entries) == list(ZOO_ENVS)
    for entry in entries.values():
        assert entry["policy"] == ZOO_POLICY and entry["policy_kwargs"]["cell"] == cell
        assert entry["policy_kwargs"]["dt"] == pytest.approx(0.05)  # Pendulum's step duration


@pytest.mark.parametrize("cell", ["cfc", "ltc"])
def test_rl_zoo_train_entry_point_trains_the_ncp_policy_from_the_shipped_file(cell, tmp_path):
    done = _run(
        [
            "-m",
            "rl_zoo3.train",
            "--algo",
            "ppo_lstm",
            "--env",
            "PendulumNoVel-v1",
            "--gym-packages",
            "ncp_control.envs",
            "-c",
            str(hyperparams_path(cell)),
            "-n",
            "256",
            "--seed",
            "0",
            "--device",
            "cpu",
            "--eval-freq",
            "-1",
            "-f",
            str(tmp_path),
            "--hyperparams",
            "n_envs:2",
            "n_steps:64",
            "batch_size:64",
            "n_epochs:1",
        ]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"total_timesteps\s*\|\s*256\b", done.stdout), done.stdout[-2000:]
    (run,) = (tmp_path / "ppo_lstm").iterdir()
    with zipfile.ZipFile(run / "PendulumNoVel-v1.zip") as archive:  # SB3's save: JSON description + weights
        data = json.loads(archive.read("data"))
    assert data["policy_class"]["__module__"] == "ncp_control.policies.recurrent_ppo"
    assert data["num_timesteps"] == 256
    assert re.search(rf"\bcell: {cell}\b", (run / "PendulumNoVel-v1" / "config.yml").read_text())  # rl-zoo's record
    assert (run / "PendulumNoVel-v1" / "vecnormalize.pkl").is_file()  # normalize: true reached rl-zoo
