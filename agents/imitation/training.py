"""Training an imitation run (:func:`train`): demonstrations, sequence BC, DAgger rounds, checkpoints, resume.

Pipeline
    1. **Demonstrations** (round 0): the privileged expert drives ``demo_episodes`` training roads with
       temporally correlated steering noise added to what is *executed* (labels stay the clean expert action),
       so the data contains drifts and their recoveries.
    2. **Sequence BC** (:mod:`ncp_control.agents.imitation.sequence_bc`): ``epochs`` epochs of truncated BPTT on
       the episodes collected so far.
    3. **DAgger** rounds ``r = 1..dagger_rounds``: on fresh training roads the learner drives, executing the
       expert's action instead with probability ``beta_r = beta0 * beta_decay ** (r - 1)`` per step; the expert
       labels every visited frame; the learner's recurrent state advances on every step, including the steps the
       expert executed. The labelled episodes are added to the dataset and training continues on the aggregate
       for ``dagger_epochs`` epochs.

Run folder (``out``)
    ``config.json`` (``kind="bc"``, ``env_id``, ``policy``, ``seed``, ``model``, ``training``,
    ``train_seed_limit``), ``demonstrations/`` (:mod:`ncp_control.agents.imitation.demonstrations`),
    ``checkpoint.pt`` (:mod:`ncp_control.agents.imitation.checkpoints`), ``model.pt`` (final weights; read with
    ``torch.load(weights_only=True)``: tensors and plain data, never code), ``progress.jsonl`` (one record per
    epoch). ``train(..., resume=True)`` continues from the checkpoint and gives the same weights as an
    uninterrupted run (epoch shuffles are seeded by ``(seed, round, epoch)``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ncp_control.agents.imitation.checkpoints import Checkpointer, ResumePoint, restore_checkpoint
from ncp_control.agents.imitation.collection import (
    LANE_INFO_KEYS,
    SteeringNoise,
    make_env,
    measure_step_seconds,
    resolve_expert,
    rollout,
)
from ncp_control.agents.imitation.config import BCConfig, beta_schedule
from ncp_control.agents.imitation.demonstrations import MANIFEST_NAME, Demonstrations
from ncp_control.agents.imitation.seeds import TRAIN_SEED_LIMIT, check_training_seed, training_road_seeds
from ncp_control.agents.imitation.sequence_bc import SequenceData, make_optimizer, train_epoch
from ncp_control.agents.runs.files import append_line, read_json_object, save_tensors, write_json_atomic
from ncp_control.policies.imitation import ModelConfig, SequencePolicy, build_model

__all__ = ["train"]

Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class _Run:
    """What one run trains with: its folder, settings, env and expert, the env's step, model, optimiser, dataset."""

    run_dir: Path
    config: BCConfig
    env: gym.Env
    expert: Callable[[], np.ndarray]
    step_seconds: float
    model: SequencePolicy
    optimizer: torch.optim.Optimizer
    store: Demonstrations


def train(
    config: BCConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    callback: Progress | None = None,
    trusted_expert: str | None = None,
    checkpoint_seconds: float = 120.0,
    on_collect: Progress | None = None,
) -> Path:
    """Collect demonstrations, train by sequence BC, run DAgger; returns the run folder ``out``.

    Args:
        config: the run's settings (see :func:`~ncp_control.agents.imitation.config.preset_config`).
        out: run folder; must not hold a run unless ``resume``.
        resume: continue the run in ``out`` from its last checkpoint (``config`` must equal the stored one).
        callback: called with each epoch's progress record after its checkpoint is written.
        trusted_expert: on ``resume`` the expert comes from the run's ``config.json``, so an expert outside the
            project's registry is imported only if it equals this (the ``--expert`` the user typed again).
        checkpoint_seconds: also write ``checkpoint.pt`` inside an epoch once this much wall time has passed since
            the last one (0: only after each epoch), so that a kill loses at most about this much training.
        on_collect: called with a ``collect/...`` record (round, episode, episodes, steps, time/seconds) after
            each collected episode.

    Raises:
        ValueError: a bad ``checkpoint_seconds``, a folder that holds a run (without ``resume``) or none (with
            it), settings that differ from the stored ones, an env without image observations, an expert that
            cannot be used, or a damaged dataset or checkpoint; the message says which.
    """
    run_dir = Path(out)
    _check_request(config, run_dir, resume, checkpoint_seconds)
    torch.manual_seed(config.seed)
    run = _prepare(config, run_dir, resume, trusted_expert)
    checkpoint_path = run_dir / "checkpoint.pt"
    start = ResumePoint()
    if resume and checkpoint_path.exists():
        start = restore_checkpoint(checkpoint_path, run.model, run.optimizer, config)
    clock = Checkpointer(run.model, run.optimizer, checkpoint_path, start.seconds, checkpoint_seconds)

    def collected(record: dict[str, Any]) -> None:
        if on_collect is not None:
            on_collect({**record, "time/seconds": clock.seconds()})

    for round_index in range(start.round, config.dagger_rounds + 1):
        data = _round_data(run, round_index, collected)
        resumed = round_index == start.round
        _fit_round(
            run,
            data,
            round_index,
            clock,
            callback,
            first_epoch=start.epoch if resumed else 0,
            partial=start.partial if resumed else None,
        )
    run.env.close()
    save_tensors(run.model.state_dict(), run_dir / "model.pt")
    return run_dir


# ------------------------------------------------------------------------------------- validate and prepare


def _check_request(config: BCConfig, run_dir: Path, resume: bool, checkpoint_seconds: float) -> None:
    """Refuse a bad ``checkpoint_seconds``, a new run into a used folder, or a resume that is not one."""
    if not checkpoint_seconds >= 0:
        raise ValueError(f"checkpoint_seconds must be >= 0 (0: only after each epoch), got {checkpoint_seconds!r}")
    config_path = run_dir / "config.json"
    if config_path.exists() and not resume:
        raise ValueError(f"{run_dir} already holds a run; pass resume=True (--resume) or choose another folder")
    if resume and not config_path.exists():
        raise ValueError(f"nothing to resume: {config_path} does not exist")
    if resume:
        stored_run = read_json_object(config_path, "run config")
        if not isinstance(stored_run.get("training"), dict):
            raise ValueError(f"{config_path} has no 'training' settings: it is not an imitation run's config")
        stored = BCConfig.from_dict(stored_run["training"])
        diff = stored.differences(config)
        if diff:
            raise ValueError(f"resume with different settings (stored, given): {diff}")


def _prepare(config: BCConfig, run_dir: Path, resume: bool, trusted_expert: str | None) -> _Run:
    """Env, expert, model and optimiser of the run; writes ``config.json`` (new runs) and opens the dataset."""
    env = make_env(config.env_id, config.env_kwargs, config.max_episode_steps)
    if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 3:
        raise ValueError(f"{config.env_id} must observe (H, W, 3) images, has {env.observation_space}")
    height, width, channels = env.observation_space.shape
    action_shape = env.action_space.shape
    if action_shape is None:
        raise ValueError(f"{config.env_id} must have an action space of fixed shape, has {env.action_space}")
    allow = not resume or (trusted_expert is not None and trusted_expert == config.expert)
    expert = resolve_expert(config.env_id, config.expert, allow_import=allow)(env)
    step_seconds = measure_step_seconds(env)
    model_config = ModelConfig(
        kind=config.model,
        observation_shape=(height, width, channels),
        action_size=int(np.prod(action_shape)),
        features=config.features,
        conv_channels=config.conv_channels,
        step_seconds=step_seconds,
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        write_json_atomic(run_dir / "config.json", _run_config(config, model_config), indent=1, sort_keys=False)
    model = build_model(model_config, seed=config.seed)
    optimizer = make_optimizer(model, config)
    store = _open_demonstrations(run_dir / "demonstrations", config, env, model_config.observation_shape, action_shape)
    return _Run(run_dir, config, env, expert, step_seconds, model, optimizer, store)


def _run_config(config: BCConfig, model_config: ModelConfig) -> dict[str, Any]:
    """The run's ``config.json``."""
    return {
        "kind": "bc",
        "env_id": config.env_id,
        "policy": config.model,
        "seed": config.seed,
        "model": model_config.to_dict(),
        "training": config.to_dict(),
        "train_seed_limit": TRAIN_SEED_LIMIT,
    }


def _open_demonstrations(
    data_dir: Path, config: BCConfig, env: gym.Env, observation_shape: tuple[int, ...], action_shape: tuple[int, ...]
) -> Demonstrations:
    """The run's dataset: opened (checked against the env) if it exists, else created empty."""
    if (data_dir / MANIFEST_NAME).exists():
        return Demonstrations.open(
            data_dir,
            env_id=config.env_id,
            observation_shape=observation_shape,
            action_shape=action_shape,
        )
    return Demonstrations.create(
        data_dir,
        env_id=config.env_id,
        env_kwargs=config.env_kwargs,
        observation_shape=observation_shape,
        action_shape=action_shape,
        info_keys=[k for k in LANE_INFO_KEYS if k in env.reset(seed=0)[1]],
    )


# ------------------------------------------------------------------------------------------------- collect


def _round_data(run: _Run, round_index: int, progress: Progress) -> SequenceData:
    """Collect data round ``round_index`` unless it is complete; returns every episode so far as training data."""
    if round_index not in run.store.rounds_complete:
        _collect_round(run, round_index, progress)
    for seed in run.store.road_seeds:
        check_training_seed(seed)
    return SequenceData(run.store.load_all(), run.step_seconds)


def _collect_round(run: _Run, round_index: int, progress: Progress | None = None) -> None:
    """Drive round ``round_index``'s training roads and store the episodes, then mark the round complete.

    Round 0: the expert drives with steering noise; DAgger rounds: the model being trained drives and the expert
    executes instead with probability ``beta``. ``progress`` gets a ``collect/...`` record after each episode.
    """
    config, store = run.config, run.store
    beta = beta_schedule(config, round_index)
    count = config.demo_episodes if round_index == 0 else config.dagger_episodes
    roads = training_road_seeds(config.seed, round_index, count)
    # Episodes of an interrupted collection are kept when they are this round's first roads in order: episode i
    # depends only on its road, its seeded noise and the learner's weights, which are those of the checkpoint
    # written at the end of the previous round (no training happens during collection).
    stored = [e["road_seed"] for e in store.entries if e["round"] == round_index]
    if stored != roads[: len(stored)]:
        store.discard_incomplete_round(round_index)
        stored = []
    noise = SteeringNoise(config.demo_noise_std, config.demo_noise_rho) if round_index == 0 else None
    for i, road in enumerate(roads):
        if i < len(stored):
            continue
        rng = np.random.default_rng([config.seed, round_index, i, 0xDA66])
        episode = rollout(
            run.env,
            run.expert,
            road,
            learner=None if round_index == 0 else run.model,
            beta=beta,
            noise=noise,
            rng=rng,
            step_seconds=run.step_seconds,
        )
        store.append(episode, round_index=round_index, beta=beta)
        if progress is not None:
            progress(
                {
                    "collect/round": round_index,
                    "collect/episode": i + 1,
                    "collect/episodes": count,
                    "collect/steps": episode.steps,
                }
            )
    store.mark_round_complete(round_index)


# ------------------------------------------------------------------------------------------ fit and report


def _fit_round(
    run: _Run,
    data: SequenceData,
    round_index: int,
    clock: Checkpointer,
    callback: Progress | None,
    *,
    first_epoch: int,
    partial: dict[str, Any] | None,
) -> None:
    """Train the epochs ``first_epoch, ...`` of round ``round_index`` on ``data`` (epoch ``first_epoch`` from
    ``partial``, a position inside it); after each, write the checkpoint and report its progress record."""
    config = run.config
    for epoch in range(first_epoch, config.epochs_of_round(round_index)):
        rng = np.random.default_rng([config.seed, round_index, epoch])  # resumed epochs redraw the same streams
        loss = train_epoch(
            run.model, run.optimizer, data, config, rng, partial=partial, tick=clock.ticker(round_index, epoch)
        )
        partial = None
        seconds = clock.save(round_index, epoch + 1)
        record = {
            "train/round": round_index,
            "train/epoch": epoch + 1,
            "train/loss": loss,
            "train/frames": len(data),
            "train/episodes": len(run.store),
            "train/beta": beta_schedule(config, round_index),
            "time/seconds": seconds,
        }
        append_line(run.run_dir / "progress.jsonl", json.dumps(record))
        if callback is not None:
            callback(record)
