"""Opening a run folder runs nothing from it.

A malicious pickle (its ``__reduce__`` calls ``os.system("touch MARKER")``) is planted in every file of a PPO run
and of an imitation run, one file at a time; ``evaluate``, ``inspect`` and ``robustness`` are run on the folder
through the CLI. The marker must never appear; each command either refuses with a one-line error naming the file
(exit status 2) or, for a file it does not need, ignores it and succeeds.
"""

import json
import os
import pickle
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ncp_control.agents import ppo
from ncp_control.agents.cli import main
from tests._ppo_helpers import register_test_envs
from tests.imitation_synthetic import ENV_ID

torch.set_num_threads(1)
register_test_envs()


class Evil:
    """Unpickling this runs ``touch <marker>``: what a crafted run folder would do with ``pickle.load``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def _plant(path: Path, marker: Path, torch_format: bool) -> None:
    if torch_format:
        torch.save({"state_dict": Evil(marker)}, path)  # a torch zip whose data.pkl calls os.system
    else:
        path.write_bytes(pickle.dumps(Evil(marker)))


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ppo") / "run"
    config = ppo.resolve_config(
        "Counter-v0",
        "cfc",
        timesteps=128,
        seed=0,
        overrides={
            "n_envs": 2,
            "progress_bar": False,
            "checkpoint_freq": 64,
            "eval_freq": 64,
            "eval_episodes": 1,
            "algo": {"n_steps": 32, "batch_size": 64, "n_epochs": 1},
            "policy_kwargs": {"wiring": {"type": "AutoNCP", "units": 8, "seed": 1}},
        },
    )
    ppo.train(config, run)
    return run


@pytest.fixture(scope="module")
def bc_run(tmp_path_factory):
    from ncp_control.agents.imitation import BCConfig, train

    config = BCConfig(
        env_id=ENV_ID,
        expert="tests.imitation_synthetic:make_expert",
        model="ncp-cfc",
        conv_channels=(4, 4, 4, 4, 4),
        features=8,
        demo_episodes=2,
        dagger_rounds=0,
        epochs=1,
        batch_size=2,
        max_episode_steps=20,
    )
    return train(config, tmp_path_factory.mktemp("bc") / "run")


def _commands(run: Path, out: Path) -> dict[str, list[str]]:
    return {
        "evaluate": ["evaluate", str(run), "--episodes", "1", "--seed", "1000000"],
        "inspect": [
            "inspect",
            str(run),
            "--out",
            str(out / "inspect"),
            "--episodes",
            "1",
            "--max-steps",
            "4",
            "--closed-loop-episodes",
            "0",
            "--ig-steps",
            "2",
            "--gif-steps",
            "0",
        ],
        "robustness": [
            "robustness",
            str(run),
            "--perturb",
            "obs_noise:0",
            "--episodes",
            "1",
            "--no-plot",
            "--quiet",
            "--out",
            str(out / "robust"),
        ],
    }


def _run_commands(run: Path, case: Path, marker: Path, capsys, planted: str) -> dict[str, tuple[int, str]]:
    results = {}
    for name, argv in _commands(run, case).items():
        capsys.readouterr()
        status = main(argv)
        results[name] = (status, capsys.readouterr().err)
        assert not marker.exists(), f"{name} ran code planted in {planted}"
    return results


def _check_every_file(source: Path, tmp_path: Path, capsys, needed: set[str]) -> list[str]:
    """Plant in each file the commands need, one at a time (each must be refused, naming it), then in all the
    other files at once (every command must succeed: a read of any of them would run the code or fail)."""
    files = sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.is_file())
    assert needed <= set(files)
    cases = [([rel], torch_format) for rel in sorted(needed) for torch_format in (False, rel.endswith(".pt"))]
    others = [rel for rel in files if rel not in needed]
    cases += [(others, torch_format) for torch_format in (False, True)]  # .pt files in torch's zip format too
    for i, (planted, torch_format) in enumerate(dict.fromkeys((tuple(p), t) for p, t in cases)):
        case = tmp_path / f"case{i}"
        run, marker = case / "run", case / "MARKER"
        shutil.copytree(source, run)
        for rel in planted:
            _plant(run / rel, marker, torch_format and rel.endswith(".pt"))
        for name, (status, err) in _run_commands(run, case, marker, capsys, ", ".join(planted)).items():
            if planted[0] in needed:
                lines = [line for line in err.splitlines() if line.startswith(f"ncp-control {name}: error:")]
                assert status == 2 and len(lines) == 1, (name, planted, status, err)
                assert Path(planted[0]).name in lines[0], (name, planted, lines[0])
            else:
                assert status == 0, f"{name} failed on a folder whose unneeded files were replaced: {err}"
    return others


def test_a_ppo_run_folder_cannot_run_code(ppo_run, tmp_path, capsys):
    # policy.pt and vecnormalize.npz are what the loader reads; SB3's zips and pickles are never opened
    ignored = _check_every_file(ppo_run, tmp_path, capsys, needed={"config.json", "policy.pt", "vecnormalize.npz"})
    assert {
        "model.zip",
        "vecnormalize.pkl",
        "eval/best_model.zip",
        "checkpoints/model_128_steps.zip",
        "checkpoints/model_policy_128_steps.pt",
        "evaluation.json",
    } <= set(ignored)


def test_an_imitation_run_folder_cannot_run_code(bc_run, tmp_path, capsys):
    ignored = _check_every_file(bc_run, tmp_path, capsys, needed={"config.json", "model.pt"})
    assert any(name.startswith("demonstrations/episode_") for name in ignored)
    assert {"checkpoint.pt", "demonstrations/manifest.json", "progress.jsonl"} <= set(ignored)


@pytest.mark.parametrize("kind", ["ppo", "bc"])
def test_the_checkpoint_fallback_is_safe_too(kind, ppo_run, bc_run, tmp_path, capsys):
    """Without the final weights the loaders read the last checkpoint: planted there, it is refused too."""
    run = tmp_path / "run"
    shutil.copytree(ppo_run if kind == "ppo" else bc_run, run)
    marker = tmp_path / "MARKER"
    if kind == "ppo":
        (run / "policy.pt").unlink()
        (run / "vecnormalize.npz").unlink()
        assert main(["evaluate", str(run), "--episodes", "1"]) == 0  # the last data checkpoint loads
        planted = run / "checkpoints" / "model_policy_128_steps.pt"
    else:
        (run / "model.pt").unlink()
        assert main(["evaluate", str(run), "--episodes", "1", "--seed", "1000000"]) == 0
        planted = run / "checkpoint.pt"
    for torch_format in (False, True):
        _plant(planted, marker, torch_format)
        capsys.readouterr()
        assert main(["evaluate", str(run), "--episodes", "1", "--seed", "1000000"]) == 2
        assert planted.name in capsys.readouterr().err and not marker.exists()


def test_normaliser_statistics_are_plain_data_equal_to_sb3s(ppo_run):
    """vecnormalize.npz holds what SB3's pickle holds (the pickle is read here only because this test made it)."""
    from ncp_control.agents.runs.files import ObsNormalizer, load_normalizer

    with open(ppo_run / "vecnormalize.pkl", "rb") as f:
        sb3 = pickle.load(f)
    ours = load_normalizer(ppo_run / "vecnormalize.npz")
    assert np.array_equal(ours.obs_mean, sb3.obs_rms.mean) and np.array_equal(ours.obs_var, sb3.obs_rms.var)
    assert (ours.obs_count, ours.ret_mean, ours.ret_var, ours.gamma, ours.clip_obs, ours.epsilon) == (
        sb3.obs_rms.count,
        float(sb3.ret_rms.mean),
        float(sb3.ret_rms.var),
        sb3.gamma,
        sb3.clip_obs,
        sb3.epsilon,
    )
    assert isinstance(ObsNormalizer.from_vecnormalize(sb3), ObsNormalizer)
    obs = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32) * 3
    assert np.array_equal(ours.normalize_obs(obs), sb3.normalize_obs(obs))
    with np.load(ppo_run / "vecnormalize.npz", allow_pickle=False) as data:  # nothing in it needs pickle
        assert {"obs_mean", "obs_var", "ret_mean", "ret_var", "gamma", "epsilon", "clip_obs"} <= set(data.files)


def test_resume_checkpoint_of_imitation_loads_weights_only(bc_run):
    data = torch.load(bc_run / "checkpoint.pt", weights_only=True)
    assert {"model", "optimizer", "round", "epoch", "torch_rng"} <= set(data)
    config = json.loads((bc_run / "config.json").read_text())
    assert config["kind"] == "bc"
