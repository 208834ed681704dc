"""Checkpoints by wall time (PPO and imitation): written with a tiny interval, and resume continues from them."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback

from ncp_control.agents import imitation, ppo
from ncp_control.agents.imitation import checkpoints, training
from ncp_control.agents.ppo.callbacks import ProgressLines, WallTimeCheckpoint
from tests._ppo_helpers import register_test_envs
from tests.imitation_synthetic import ENV_ID, make_expert  # noqa: F401  (registers TinyLane-v0)

torch.set_num_threads(1)
register_test_envs()


class _StartSteps(BaseCallback):
    """Records the step count at which learn() starts (where a resume continues from)."""

    def __init__(self):
        super().__init__()
        self.start = None

    def _on_training_start(self) -> None:
        self.start = self.num_timesteps

    def _on_step(self) -> bool:
        return True


def _config(timesteps, seconds):
    return ppo.resolve_config(
        "Counter-v0",
        "cfc",
        timesteps=timesteps,
        seed=0,
        overrides={
            "n_envs": 2,
            "progress_bar": False,
            "checkpoint_freq": 0,
            "checkpoint_seconds": seconds,
            "eval_episodes": 1,
            "algo": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
            "policy_kwargs": {"wiring": {"type": "AutoNCP", "units": 8, "seed": 1}},
        },
    )


def test_ppo_wall_time_checkpoint_is_written_and_resume_continues_from_it(tmp_path):
    run = tmp_path / "run"
    lines = []
    progress = ProgressLines(96, every_seconds=0, write=lines.append)
    ppo.train(_config(96, 1e-6), run, callbacks=[progress])  # rollouts of 32 steps; a checkpoint at each start
    steps = [s for s, _ in ppo.checkpoints(run)]
    # the time-based callback keeps only its latest (64: the start of the last rollout); 96 is the final save
    assert steps == [64, 96]
    assert (run / "checkpoints" / "model_vecnormalize_64_steps.pkl").is_file()
    assert len(lines) == 3 and lines[-1].startswith("steps 96/96 (100%), ") and "mean return (last" in lines[-1]
    # a kill after the time checkpoint: only model_64 is left; resume continues from step 64
    for name in (
        "model.zip",
        "vecnormalize.pkl",
        "checkpoints/model_96_steps.zip",
        "checkpoints/model_vecnormalize_96_steps.pkl",
    ):
        (run / name).unlink()
    start = _StartSteps()
    model = ppo.train({"timesteps": 128}, run, resume=True, callbacks=[start])
    assert start.start == 64 and model.num_timesteps == 128
    assert json.loads((run / "evaluation.json").read_text())["timesteps"] == 128


def test_ppo_without_wall_time_checkpoints_writes_only_the_final_one(tmp_path):
    ppo.train(_config(96, 0), tmp_path / "run", evaluate_at_end=False)
    assert [s for s, _ in ppo.checkpoints(tmp_path / "run")] == [96]
    with pytest.raises(ValueError, match="seconds must be > 0"):
        WallTimeCheckpoint(tmp_path, 0)


def test_ppo_final_evaluation_goes_to_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ppo.train(_config(64, 0), tmp_path / "run")
    (folder,) = [p.parent for p in (tmp_path / "run" / "tensorboard").rglob("events.out.tfevents.*")][:1]
    events = EventAccumulator(str(folder)).Reload()
    (final,) = events.Scalars("eval/final_mean_reward")
    assert final.step == 64 and final.value == pytest.approx(4.0)  # Counter-v0: 4 steps of reward 1


def _bc_config():
    return imitation.BCConfig(
        env_id=ENV_ID,
        expert="tests.imitation_synthetic:make_expert",
        model="ncp-cfc",
        conv_channels=(4, 4, 4, 4, 4),
        features=8,
        demo_episodes=3,
        dagger_rounds=0,
        epochs=2,
        batch_size=2,
        window=4,
        lr=1e-2,
    )


class _Killed(Exception):
    pass


def test_imitation_wall_time_checkpoint_inside_an_epoch_and_resume_from_it(tmp_path, monkeypatch):
    config = _bc_config()
    reference = imitation.train(config, tmp_path / "reference", checkpoint_seconds=0)
    expected = torch.load(reference / "model.pt", weights_only=True)

    save = checkpoints.save_tensors
    positions = []

    def save_then_kill(obj, path):  # the kill comes right after the first checkpoint written inside an epoch
        save(obj, path)
        if isinstance(obj, dict) and "partial" in obj:
            positions.append((obj["epoch"], obj["partial"]["window"]))
            raise _Killed

    monkeypatch.setattr(checkpoints, "save_tensors", save_then_kill)
    with pytest.raises(_Killed):
        imitation.train(config, tmp_path / "run", checkpoint_seconds=1e-9)
    monkeypatch.setattr(checkpoints, "save_tensors", save)
    assert positions == [(0, 4)]  # epoch 0 not done, the next window starts at frame 4
    assert not (tmp_path / "run" / "model.pt").exists()

    resumed_from = []
    train_epoch = training.train_epoch

    def spy(*args, partial=None, **kwargs):
        resumed_from.append(None if partial is None else partial["window"])
        return train_epoch(*args, partial=partial, **kwargs)

    monkeypatch.setattr(training, "train_epoch", spy)
    imitation.train(config, tmp_path / "run", resume=True, checkpoint_seconds=0, trusted_expert=config.expert)
    assert resumed_from == [4, None]  # epoch 0 continued from its 2nd window, then epoch 1
    got = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    for name, value in expected.items():  # same computation on the same machine: the same weights
        np.testing.assert_allclose(got[name].numpy(), value.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    epochs = [json.loads(x)["train/epoch"] for x in (tmp_path / "run" / "progress.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]


def test_imitation_kill_during_collection_keeps_the_episodes_already_collected(tmp_path):
    config = dataclasses.replace(_bc_config(), dagger_rounds=1, dagger_episodes=3, epochs=1, dagger_epochs=1)
    reference = imitation.train(config, tmp_path / "reference", checkpoint_seconds=0)
    expected = torch.load(reference / "model.pt", weights_only=True)

    def kill_after_first_dagger_episode(record):
        if record["collect/round"] == 1 and record["collect/episode"] == 1:
            raise _Killed

    with pytest.raises(_Killed):
        imitation.train(config, tmp_path / "run", on_collect=kill_after_first_dagger_episode)
    collected = []
    imitation.train(config, tmp_path / "run", resume=True, on_collect=collected.append, trusted_expert=config.expert)
    assert [(r["collect/round"], r["collect/episode"]) for r in collected] == [(1, 2), (1, 3)]  # not episode 1 again
    got = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    for name, value in expected.items():  # the kept episode is the one an uninterrupted run collects
        np.testing.assert_allclose(got[name].numpy(), value.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
