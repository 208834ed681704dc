"""Training under perturbations (``train-ppo --perturb``, a config's ``perturb``): every training env is wrapped,
each copy draws its own numbers, the evaluations stay unperturbed, and bad specs fail before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ncp_control.envs  # noqa: F401  (registers the ids)
from ncp_control.agents import ppo
from ncp_control.agents.cli import main as cli_main
from ncp_control.agents.ppo.envs import make_training_env
from tests._ppo_helpers import register_test_envs

torch.set_num_threads(1)
register_test_envs()

FAST = {
    "n_envs": 2,
    "progress_bar": False,
    "checkpoint_freq": 0,
    "eval_episodes": 1,
    "algo": {"n_steps": 32, "batch_size": 64, "n_epochs": 1},
    "policy_kwargs": {"wiring": {"type": "AutoNCP", "units": 8, "seed": 1}},
}


def _config(env_id, perturb, policy="cfc", **extra):
    overrides = {**json.loads(json.dumps(FAST)), **extra}
    if perturb is not None:
        overrides["perturb"] = perturb
    return ppo.finalize_config(ppo.resolve_config(env_id, policy, timesteps=64, seed=3, overrides=overrides))


def _first_observations(venv, steps=5):
    obs = [venv.reset()]
    for _ in range(steps):
        obs.append(venv.step(np.zeros((venv.num_envs, *venv.action_space.shape), np.float32))[0])
    venv.close()
    return np.array(obs)


def test_training_envs_are_perturbed_per_copy_and_the_evaluation_env_is_not():
    plain = _first_observations(make_training_env(_config("Counter-v0", None)))
    noisy_config = _config("Counter-v0", ["obs_noise:0.5"])
    noisy = _first_observations(make_training_env(noisy_config))
    again = _first_observations(make_training_env(noisy_config))
    np.testing.assert_array_equal(noisy, again)  # seeded
    assert np.abs(noisy - plain).max() > 0.1
    # each copy is reset with its own seed, so the two copies' noise differs
    assert not np.allclose(noisy[:, 0] - plain[:, 0], noisy[:, 1] - plain[:, 1])
    evaluation = _first_observations(make_training_env(noisy_config, perturbed=False))
    np.testing.assert_array_equal(evaluation, plain)


def test_a_dynamics_perturbation_changes_the_training_physics():
    plain = _first_observations(make_training_env(_config("InvertedPendulumNoVel-v5", None)), steps=20)
    heavy = _first_observations(make_training_env(_config("InvertedPendulumNoVel-v5", ["mass:3"])), steps=20)
    assert plain.shape == heavy.shape and not np.allclose(plain, heavy)


@pytest.mark.parametrize(
    ("perturb", "message"),
    [
        (["pixel_noise:0,0.1"], "several levels"),
        (["gaussian:0.1"], "unknown perturbation 'gaussian'"),
        (["mass:2", "mass:3"], "repeated: \\['mass'\\]"),
        ([0.1], "perturbation specs such as"),
        ("mass:2", "must be list"),
    ],
)
def test_bad_training_perturbations_are_refused_when_the_config_is_resolved(perturb, message):
    with pytest.raises(ValueError, match=message):
        _config("Counter-v0", perturb)


def test_cli_trains_under_a_perturbation_and_refuses_a_misfit(tmp_path, capsys):
    run = tmp_path / "run"
    config = tmp_path / "c.json"
    config.write_text(json.dumps({k: v for k, v in FAST.items() if k != "n_envs"}))
    common = ["--policy", "cfc", "--timesteps", "64", "--n-envs", "2", "--config", str(config), "--no-progress"]
    assert (
        cli_main(
            ["train-ppo", "--env", "InvertedPendulumNoVel-v5", *common, "--perturb", "mass:1.5", "--out", str(run)]
        )
        == 0
    )
    saved = json.loads((run / "config.json").read_text())
    assert saved["perturb"] == ["mass:1.5"]
    assert json.loads((run / "evaluation.json").read_text())["episodes"] == 1
    capsys.readouterr()
    assert cli_main(["train-ppo", "--out", str(run), "--resume", "--perturb", "mass:2"]) == 2
    assert "a resumed run keeps its own" in capsys.readouterr().err
    bad = tmp_path / "bad"
    assert (
        cli_main(
            ["train-ppo", "--env", "PendulumNoVel-v1", *common, "--perturb", "steering_gain:0.5", "--out", str(bad)]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "steering_gain applies to the lane-keeping envs" in err
    assert not bad.exists()


def test_domain_randomised_looks_reach_every_training_env_copy_seeded_per_copy():
    """env_kwargs' domain_randomization applies to the training envs: each copy draws its own look from its own
    reset seed, the same looks on every run with the same seed."""
    config = _config("LaneKeepingState-v0", None, policy="mlp", env_kwargs={"domain_randomization": ["colours"]})

    def looks():
        venv = make_training_env(config)
        venv.reset()
        found = [env.unwrapped.appearance.asphalt for env in venv.envs]
        venv.close()
        return found

    first, again = looks(), looks()
    assert first == again and first[0] != first[1]
    plain = make_training_env(_config("LaneKeepingState-v0", None, policy="mlp"))
    plain.reset()
    assert plain.envs[0].unwrapped.appearance.asphalt not in first
    plain.close()
