"""PPO fine-tuning from an imitation run (``train-ppo --init-from``): before any update the PPO actor is the
imitation policy (same deterministic actions over a whole episode), the critic is new, and runs that do not fit
are refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import ncp_control.envs  # noqa: F401  (registers the ids)
from ncp_control.agents import ppo
from ncp_control.agents.cli import main as cli_main
from ncp_control.agents.imitation.loading import load_predictor
from ncp_control.agents.ppo.init_from import init_config, load_actor

torch.set_num_threads(1)
LEGACY = Path(__file__).parent / "data" / "legacy_runs"
TINY_BC = [
    "--set",
    "conv_channels=[4,4,4,4,4]",
    "--set",
    "features=8",
    "--set",
    "demo_episodes=1",
    "--set",
    "dagger_rounds=0",
    "--set",
    "epochs=1",
    "--set",
    "batch_size=4",
    "--set",
    "max_episode_steps=20",
    "--eval-episodes",
    "1",
]
FAST = {
    "n_envs": 1,
    "progress_bar": False,
    "checkpoint_freq": 0,
    "eval_episodes": 1,
    "algo": {"n_steps": 32, "batch_size": 32, "n_epochs": 1},
}


@pytest.fixture(scope="module")
def bc_runs(tmp_path_factory):
    """Tiny imitation runs of both NCP kinds (untrained weights are enough to compare actions; not the legacy
    fixture, whose old config would be resolved by the legacy renaming)."""
    root = tmp_path_factory.mktemp("bc")
    runs = {}
    for kind in ("ncp-ltc", "ncp-cfc", "lstm", "cnn"):
        run = root / kind
        assert cli_main(["train-bc", "--env", "LaneKeeping-v0", "--model", kind, "--out", str(run), *TINY_BC]) == 0
        runs[kind] = run
    return runs


def _policy_and_env(run, policy_name):
    config = ppo.resolve_config(
        "LaneKeeping-v0", policy_name, timesteps=64, seed=0, overrides=json.loads(json.dumps(FAST))
    )
    bc_config = json.loads((run / "config.json").read_text())
    config["env_kwargs"] = dict(bc_config["training"]["env_kwargs"])
    config = ppo.finalize_config(init_config(config, run))
    venv = ppo.normalize_env(ppo.make_training_env(config), config)
    model = ppo.build_algorithm(config, venv)
    load_actor(model.policy, run)
    return config, model


@pytest.mark.parametrize(
    ("kind", "policy_name"), [("ncp-ltc", "ltc"), ("ncp-cfc", "cfc"), ("lstm", "lstm"), ("cnn", "mlp")]
)
def test_before_any_update_the_ppo_actor_is_the_imitation_policy(bc_runs, kind, policy_name):
    run = bc_runs[kind]
    config, model = _policy_and_env(run, policy_name)
    assert config["init_from"] == str(run) and config["normalize_obs"] is False
    if kind.startswith("ncp"):
        assert config["policy_kwargs"]["net_arch"]["pi"] == [] and config["policy_kwargs"]["wiring"]["type"] == "NCP"
    else:
        assert config["policy_kwargs"]["features_extractor_class"] == "conv_head"
    imitation = load_predictor(run)
    env = gym.make("LaneKeeping-v0", **config["env_kwargs"])
    obs, _ = env.reset(seed=1_000_000)
    ppo_state = bc_state = None
    start = np.ones(1, bool)
    actions, largest = [], 0.0
    for _ in range(200):
        bc_action, bc_state = imitation.predict(obs[None], bc_state, start)
        ppo_action, ppo_state = model.policy.predict(obs[None], ppo_state, start, deterministic=True)
        largest = max(largest, float(np.abs(bc_action - ppo_action).max()))
        actions.append(float(bc_action[0, 0]))
        start = np.zeros(1, bool)
        obs, _, terminated, truncated, _ = env.step(bc_action[0])
        if terminated or truncated:
            break
    assert len(actions) >= 20 and largest < 1e-4, (len(actions), largest)
    assert np.ptp(actions) > 1e-3  # the actions vary along the episode: agreement is not that of two constants


def test_a_wrong_policy_or_run_kind_is_refused(bc_runs, tmp_path, capsys):
    config = ppo.resolve_config("LaneKeeping-v0", "cfc", timesteps=64, seed=0)
    with pytest.raises(ValueError, match="fine-tune it with --policy ltc"):
        init_config(config, bc_runs["ncp-ltc"])
    with pytest.raises(ValueError, match="takes an imitation run"):
        init_config(config, LEGACY / "ppo-pendulum")
    lstm = tmp_path / "lstm"
    shutil.copytree(bc_runs["ncp-ltc"], lstm)
    saved = json.loads((lstm / "config.json").read_text())
    saved["model"]["kind"] = "gru"
    (lstm / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="takes the imitation models ncp-ltc, ncp-cfc, lstm, cnn"):
        init_config(ppo.resolve_config("LaneKeeping-v0", "ltc", timesteps=64, seed=0), lstm)
    code = cli_main(
        [
            "train-ppo",
            "--env",
            "LaneKeeping-v0",
            "--policy",
            "cfc",
            "--timesteps",
            "64",
            "--init-from",
            str(bc_runs["ncp-ltc"]),
            "--out",
            str(tmp_path / "x"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--policy ltc" in err and not (tmp_path / "x").exists()


@pytest.mark.parametrize(("kind", "policy_name"), [("ncp-ltc", "ltc"), ("cnn", "mlp")])
def test_cli_fine_tunes_and_the_run_works_with_evaluate(bc_runs, tmp_path, capsys, kind, policy_name):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({k: v for k, v in FAST.items() if k != "n_envs"}))
    run = tmp_path / "ft"
    args = ["train-ppo", "--env", "LaneKeeping-v0", "--policy", policy_name, "--timesteps", "64", "--n-envs", "1"]
    args += ["--init-from", str(bc_runs[kind]), "--config", str(config), "--out", str(run), "--no-progress"]
    assert cli_main(args) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["init_from"] == str(bc_runs[kind]) and saved["policy_kwargs"]["log_std_init"] == -1.9
    capsys.readouterr()
    assert cli_main(["evaluate", str(run), "--episodes", "1", "--json", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["episodes"] == 1


@pytest.mark.slow
def test_a_short_fine_tuning_run_keeps_completing_the_demo_roads(tmp_path, capsys):
    """The demo's imitation policy (completes the held-out roads), fine-tuned by PPO for 2,048 steps, still
    completes at least 4 of 5 held-out roads (an untrained actor completes none: tests/test_imitation_cli.py)."""
    demo = tmp_path / "demo"
    assert cli_main(["demo", "--out", str(demo), "--episodes", "5"]) == 0
    before = json.loads((demo / "eval_heldout.json").read_text())
    assert before["completion_rate"] >= 0.8, before["completion_rate"]
    run = tmp_path / "ft"
    args = ["train-ppo", "--env", "LaneKeeping-v0", "--policy", "ltc", "--init-from", str(demo)]
    args += ["--timesteps", "2048", "--n-envs", "2", "--seed", "0", "--out", str(run), "--no-progress"]
    assert cli_main(args) == 0
    out = tmp_path / "after.json"
    assert cli_main(["evaluate", str(run), "--episodes", "5", "--seed", "1000000", "--json", str(out)]) == 0
    after = json.loads(out.read_text())
    assert after["completion_rate"] >= 0.8, after


def test_the_anchor_keeps_the_fine_tuned_actor_near_the_imitation_policy(bc_runs, tmp_path):
    """Two fine-tuning runs from one imitation run, the same seeds: with anchor_weight the actor's weights end
    much closer to the imitation weights than without; the critic is not anchored."""
    from ncp_control.agents.ppo.init_from import actor_parameters

    def fine_tune(weight, out):
        config = ppo.resolve_config(
            "LaneKeeping-v0", "ltc", timesteps=128, seed=0, overrides={**json.loads(json.dumps(FAST)), "n_envs": 2}
        )
        config = init_config(config, bc_runs["ncp-ltc"])
        config["anchor_weight"] = weight
        config["algo"]["learning_rate"] = 3e-3  # large steps, so that the anchor has something to hold
        return ppo.train(config, out, evaluate_at_end=False).policy

    free, anchored = fine_tune(0.0, tmp_path / "free"), fine_tune(300.0, tmp_path / "anchored")
    initial = ppo.build_policy(
        json.loads((tmp_path / "free" / "config.json").read_text()), free.observation_space, free.action_space
    )
    load_actor(initial, bc_runs["ncp-ltc"])
    start = actor_parameters(initial)

    def distance(policy):
        return (
            sum(float((p.detach() - start[name].detach()).pow(2).sum()) for name, p in actor_parameters(policy).items())
            ** 0.5
        )

    assert distance(free) > 0 and distance(anchored) < 0.3 * distance(free), (distance(anchored), distance(free))
    with pytest.raises(ValueError, match="needs init_from"):
        ppo.resolve_config("LaneKeeping-v0", "ltc", timesteps=64, overrides={"anchor_weight": 1.0})


@pytest.mark.parametrize(("kind", "policy_name"), [("ncp-ltc", "ltc"), ("lstm", "lstm")])
def test_a_frozen_conv_head_keeps_the_imitation_weights_while_the_rest_trains(
    bc_runs, tmp_path, capsys, kind, policy_name
):
    """--freeze-conv-head: after fine-tuning the conv head is the imitation run's bit for bit, the recurrent core
    moved; the saved run reloads frozen and evaluates; without --init-from or on --resume the flag is refused."""
    config = tmp_path / "c.json"
    config.write_text(json.dumps({**{k: v for k, v in FAST.items() if k != "n_envs"}, "algo": {**FAST["algo"]}}))
    run = tmp_path / "ft"
    args = ["train-ppo", "--env", "LaneKeeping-v0", "--policy", policy_name, "--timesteps", "64", "--n-envs", "1"]
    args += ["--init-from", str(bc_runs[kind]), "--config", str(config), "--out", str(run), "--no-progress"]
    assert cli_main([*args, "--freeze-conv-head"]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["policy_kwargs"]["features_extractor_kwargs"]["frozen"] is True
    trained = ppo.load_predictor(run, saved).policy
    initial = ppo.build_policy(saved, trained.observation_space, trained.action_space)
    load_actor(initial, bc_runs[kind])
    head, head0 = trained.features_extractor.head, initial.features_extractor.head
    assert trained.features_extractor.frozen and not any(p.requires_grad for p in head.parameters())
    for (name, p), p0 in zip(head.state_dict().items(), head0.state_dict().values()):
        assert torch.equal(p, p0), name
    core = [n for n in trained.state_dict() if not n.startswith(("features_extractor", "pi_features", "vf_features"))]
    core = [n for n in core if n.startswith(("actor_core", "lstm_actor"))]
    assert core and any(not torch.equal(trained.state_dict()[n], initial.state_dict()[n]) for n in core)
    # evaluation mode keeps gradients with respect to the image (saliency); training mode records no graph
    extractor = trained.features_extractor
    image = torch.rand(1, *trained.observation_space.shape, requires_grad=True)
    extractor.eval()
    extractor(image).sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    extractor.train()
    assert not extractor(image).requires_grad
    capsys.readouterr()
    assert cli_main(["train-ppo", *args[1:9], "--out", str(tmp_path / "y"), "--freeze-conv-head"]) == 2
    assert "it needs --init-from" in capsys.readouterr().err
    assert cli_main(["train-ppo", "--resume", "--out", str(run), "--freeze-conv-head"]) == 2
    assert "a resumed run keeps its own" in capsys.readouterr().err


def test_a_frozen_head_in_a_config_is_checked():
    """frozen must be a bool, and only where the conv head is the extractor (not SB3's NatureCNN)."""
    frozen = {"policy_kwargs": {"features_extractor_kwargs": {"frozen": "yes"}}}
    with pytest.raises(ValueError, match="frozen must be true or false"):
        ppo.resolve_config("LaneKeeping-v0", "ltc", timesteps=64, overrides=frozen)
    frozen = {"policy_kwargs": {"features_extractor_kwargs": {"frozen": True}}}
    with pytest.raises(ValueError, match="not SB3's own CNN"):
        ppo.resolve_config("LaneKeeping-v0", "lstm", timesteps=64, overrides=frozen)
    assert ppo.resolve_config("LaneKeeping-v0", "cfc", timesteps=64, overrides=frozen)["policy_kwargs"][
        "features_extractor_kwargs"
    ] == {"frozen": True}
