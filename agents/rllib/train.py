"""Train an RLlib run: PPO (new API stack) with :class:`~.module.NCPRLModule`, env runners on a local Ray or a
cluster, checkpoints by steps and wall time, ``--resume``, and the run folder that every command loads.

A run folder holds::

    config.json              kind="rllib": the resolved configuration (:mod:`.config`)
    tensorboard/rllib_1/     TensorBoard scalars per training iteration (rollout/ep_rew_mean, time/fps, train/*)
    policy.pt                the final actor-critic as data (a PPO run's policy.pt: weights-only tensors, the
                             spaces); what evaluate / inspect / robustness / export load
    checkpoints/model_policy_<N>_steps.pt   the same at each checkpoint
    checkpoints/rllib_<N>_steps/            RLlib's own checkpoint (the algorithm, its optimiser, the env
                             runners' state: pickles, read only by --resume); the last one is kept
    evaluation.json          the final evaluation on eval_episodes seeded episodes, as train-ppo's

Imports ray and the RLlib module lazily (inside :func:`train`).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np

from ncp_control.agents.ppo.run_folder import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    EVALUATION_FILE,
    NORMALIZER_FILE,
    POLICY_FILE,
    data_checkpoint_paths,
)
from ncp_control.agents.rllib.config import RLLIB_EXTRA_HINT, ppo_view, validate_config
from ncp_control.agents.runs import files as run_io
from ncp_control.agents.study.cluster import ray_session

RLLIB_CHECKPOINT_PREFIX = "rllib"
_RLLIB_CHECKPOINT_RE = re.compile(rf"^{RLLIB_CHECKPOINT_PREFIX}_(\d+)_steps$")
#: a finished checkpoint folder holds this file (written after RLlib's save returned)
_COMPLETE_MARK = "complete.json"
ENV_NAME = "ncp_control_rllib_env"


def rllib_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(steps, folder)`` of every complete RLlib checkpoint in ``run_dir/checkpoints``, by increasing steps."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    found = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = _RLLIB_CHECKPOINT_RE.match(path.name)
        if match and (path / _COMPLETE_MARK).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def has_progress(run_dir: str | Path) -> bool:
    """Whether an RLlib run folder holds training worth resuming (an RLlib checkpoint or a final policy)."""
    return bool(rllib_checkpoints(run_dir)) or (Path(run_dir) / POLICY_FILE).is_file()


_ENVS_MADE = itertools.count()


def make_env(env_config: dict[str, Any]):
    """The env of one RLlib env runner (``env_config``: the run's ``env_id``, ``env_kwargs``, ``elapsed_time``,
    ``dt``, ``perturb`` and ``seed``): train-ppo's training env, with the policy's wrappers and perturbations.

    RLlib builds every env of a runner from one ``EnvContext`` (its ``vector_index`` is 0 for all) and seeds runner
    ``w``'s env ``i`` with ``seed + w + i``, so runner 1's env 1 would play runner 2's env 0's episodes. Each env is
    told apart by the runner's ``worker_index`` and a count of the envs this process made: that pair seeds its
    perturbations and, mixed with the seed RLlib passes, its resets (:class:`_OwnResetSeeds`)."""
    from ncp_control.agents.ppo.envs import _make_single_env

    worker, number = int(getattr(env_config, "worker_index", 0)), next(_ENVS_MADE)
    seed = int(env_config["seed"]) + 1000 * worker + number
    env = _make_single_env(
        env_config["env_id"],
        dict(env_config["env_kwargs"]),
        env_config["elapsed_time"] == "observation",
        env_config["dt"],
        tuple(env_config["perturb"]),
        seed,
    )
    return _OwnResetSeeds(env, worker, number)


class _OwnResetSeeds(gym.Wrapper):
    """A seeded reset gets a seed mixed from RLlib's, the runner's index and the env's number in its process
    (numpy's ``SeedSequence``): distinct episodes on every env of every runner, the same on a rerun."""

    def __init__(self, env: gym.Env, worker: int, number: int):
        super().__init__(env)
        self._key = (worker, number)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            seed = int(np.random.SeedSequence([seed, *self._key]).generate_state(1)[0])
        return self.env.reset(seed=seed, options=options)


def algorithm_config(config: dict[str, Any]):
    """RLlib's ``PPOConfig`` for the run (new API stack, :class:`~.module.NCPRLModule`, fault tolerance on)."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.tune.registry import register_env

    from ncp_control.agents.rllib.module import NCPPPOLearner, NCPRLModule

    register_env(ENV_NAME, make_env)
    algo = dict(config["algo"])
    train_batch = algo.pop("train_batch_size")
    env_config = {
        "env_id": config["env_id"],
        "env_kwargs": config["env_kwargs"],
        "elapsed_time": config["elapsed_time"],
        "dt": config["policy_kwargs"].get("dt"),
        "perturb": config["perturb"],
        "seed": config["seed"],
    }
    return (
        PPOConfig()
        .environment(ENV_NAME, env_config=env_config, normalize_actions=False, clip_actions=True)
        .env_runners(
            num_env_runners=config["env_runners"],
            num_envs_per_env_runner=config["envs_per_runner"],
            num_cpus_per_env_runner=1,
            rollout_fragment_length="auto",
        )
        .learners(num_learners=0)
        .training(train_batch_size_per_learner=train_batch, learner_class=NCPPPOLearner, **algo)
        .rl_module(
            rl_module_spec=RLModuleSpec(
                module_class=NCPRLModule,
                model_config={
                    "policy": config["policy"],
                    "policy_kwargs": config["policy_kwargs"],
                    "max_seq_len": config["max_seq_len"],
                },
            )
        )
        .fault_tolerance(restart_failed_env_runners=True, max_num_env_runner_restarts=100)
        .debugging(seed=config["seed"])
    )


def train(
    config: dict[str, Any],
    run_dir: str | Path,
    *,
    resume: bool = False,
    address: str | None = None,
    num_cpus: int | None = None,
    write: Callable[[str], None] = lambda line: print(line, flush=True),
    progress_seconds: float = 30.0,
    on_iteration: Callable[[Any, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train (or, with ``resume``, continue) the run in ``run_dir``; returns the final evaluation.

    ``on_iteration(algorithm, result)`` is called after every training iteration (RLlib's ``Algorithm`` and its
    result dict), e.g. to watch the env runners.

    Ray: the running one if this process has it (``ray.init`` before), else the cluster at ``address`` (or
    ``RAY_ADDRESS``), else a local Ray with ``num_cpus`` (:func:`ncp_control.agents.study.cluster.ray_session`).
    """
    run_dir = Path(run_dir)
    validate_config(config)
    if "dt" not in config["policy_kwargs"]:  # the env's step duration, as train-ppo fills it in
        from ncp_control.agents.ppo.config import finalize_config

        config = {**config, "policy_kwargs": finalize_config(ppo_view(config))["policy_kwargs"]}
    if not resume and (run_dir / CONFIG_FILE).exists():
        raise ValueError(f"{run_dir} already holds a run: continue it with resume, or choose another folder")
    with ray_session(address, num_cpus, RLLIB_EXTRA_HINT) as ray:
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < config["env_runners"]:
            raise ValueError(
                f"{config['env_runners']} env runners need one CPU each, the Ray cluster has {cpus:g}: lower "
                "--env-runners, raise --num-cpus, or add nodes"
            )
        return _train(config, run_dir, resume, write, progress_seconds, on_iteration)


def _train(config, run_dir: Path, resume: bool, write, progress_seconds: float, on_iteration) -> dict[str, Any]:
    from stable_baselines3.common.logger import configure

    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = None
    if resume:
        found = rllib_checkpoints(run_dir)
        if not found:
            raise ValueError(
                f"cannot resume {run_dir}: it has no complete RLlib checkpoint ({CHECKPOINT_DIR}/"
                f"{RLLIB_CHECKPOINT_PREFIX}_<N>_steps/ with {_COMPLETE_MARK}); start the run again in a new folder"
            )
        checkpoint = found[-1][1]
    run_io.write_json_atomic(run_dir / CONFIG_FILE, config)  # on resume: the new total and settings
    algo = algorithm_config(config).build_algo()
    try:
        steps = 0
        if checkpoint is not None:
            algo.restore_from_path(str(checkpoint.resolve()))
            steps = int(run_io.read_json_object(checkpoint / _COMPLETE_MARK, "checkpoint mark")["steps"])
            write(f"resumed from {checkpoint.name} at {steps} steps")
        logger = configure(str(run_dir / "tensorboard" / "rllib_1"), ["tensorboard"])
        total = config["timesteps"]
        t0 = time.monotonic()
        start_steps, last_line, last_save, saved_at = steps, -float("inf"), time.monotonic(), steps
        returns: list[float] = []
        while steps < total:
            result = algo.train()
            steps = int(result.get("num_env_steps_sampled_lifetime", steps))
            mean_return = result.get("env_runners", {}).get("episode_return_mean")
            if mean_return is not None and np.isfinite(mean_return):
                returns.append(float(mean_return))
            _log(logger, result, steps, t0, start_steps)
            if on_iteration is not None:
                on_iteration(algo, result)
            now = time.monotonic()
            if now - last_line >= progress_seconds or steps >= total:
                last_line = now
                write(_progress_line(steps, total, start_steps, now - t0, mean_return))
            by_steps = (
                config["checkpoint_freq"] and steps // config["checkpoint_freq"] > saved_at // config["checkpoint_freq"]
            )
            by_time = config["checkpoint_seconds"] and now - last_save >= config["checkpoint_seconds"]
            if (by_steps or by_time) and steps < total:
                _save_checkpoint(algo, config, run_dir, steps)
                last_save, saved_at = time.monotonic(), steps
        logger.close()
        _save_checkpoint(algo, config, run_dir, steps)
        # the final policy is the last checkpoint's data file (same weights, same steps)
        final = run_io.temporary_path(run_dir / POLICY_FILE)  # copied, then renamed: never a torn policy.pt
        shutil.copyfile(data_checkpoint_paths(run_dir / CHECKPOINT_DIR, steps)[0], final)
        os.replace(final, run_dir / POLICY_FILE)
    finally:
        algo.stop()
    return _evaluate_final(config, run_dir, steps)


def _progress_line(steps: int, total: int, start: int, elapsed: float, mean_return) -> str:
    from ncp_control.agents.ppo.callbacks import _clock

    speed = (steps - start) / elapsed if elapsed > 0 else float("nan")
    left = max(total - steps, 0) / speed if speed > 0 else float("nan")
    ret = (
        f"mean return {mean_return:.2f}"
        if mean_return is not None and np.isfinite(mean_return)
        else "no episode ended yet"
    )
    return (
        f"steps {steps}/{total} ({steps / max(total, 1):.0%}), {speed:.0f} steps/s, {ret}, "
        f"elapsed {_clock(elapsed)}, left ~{_clock(left)}"
    )


def _log(logger, result: dict[str, Any], steps: int, t0: float, start: int) -> None:
    """TensorBoard scalars with SB3's names where one exists (rollout/ep_rew_mean, time/fps), RLlib's learner
    statistics under train/."""
    runners = result.get("env_runners", {})
    for key, name in (("episode_return_mean", "rollout/ep_rew_mean"), ("episode_len_mean", "rollout/ep_len_mean")):
        value = runners.get(key)
        if value is not None and np.isfinite(value):
            logger.record(name, float(value))
    elapsed = time.monotonic() - t0
    if elapsed > 0:
        logger.record("time/fps", (steps - start) / elapsed)
    learner = result.get("learners", {}).get("default_policy", {})
    for key in ("policy_loss", "vf_loss", "entropy", "mean_kl_loss", "vf_explained_var", "curr_kl_coeff"):
        value = learner.get(key)
        if isinstance(value, (int, float)) and np.isfinite(value):
            logger.record(f"train/{key}", float(value))
    logger.dump(steps)


def _save_checkpoint(algo, config: dict[str, Any], run_dir: Path, steps: int) -> None:
    """RLlib's checkpoint of the algorithm (for --resume) and the actor as data, at ``steps``; older RLlib
    checkpoints and data checkpoints are removed once the new ones are complete."""
    folder = run_dir / CHECKPOINT_DIR
    folder.mkdir(exist_ok=True)
    target = folder / f"{RLLIB_CHECKPOINT_PREFIX}_{steps}_steps"
    if (target / _COMPLETE_MARK).is_file():
        return
    partial = folder / f".{target.name}.partial"
    for stale in folder.glob(f".{RLLIB_CHECKPOINT_PREFIX}_*_steps.partial"):  # saves a kill interrupted
        shutil.rmtree(stale, ignore_errors=True)
    algo.save_to_path(str(partial.resolve()))
    run_io.write_json_atomic(partial / _COMPLETE_MARK, {"steps": steps})
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    policy_path, _ = data_checkpoint_paths(folder, steps)
    _save_policy(algo, config, policy_path, steps)
    for old_steps, old in rllib_checkpoints(run_dir):
        if old_steps < steps:
            shutil.rmtree(old, ignore_errors=True)
            data_checkpoint_paths(folder, old_steps)[0].unlink(missing_ok=True)


def _save_policy(algo, config: dict[str, Any], path: Path, steps: int) -> None:
    """The learner's module as a PPO run's ``policy.pt`` (the SB3 policy's state dict, weights only)."""
    import torch
    from ray.rllib.core import DEFAULT_MODULE_ID

    from ncp_control.agents.rllib.module import build_sb3_policy

    module = algo.get_module()  # an env runner's copy: for the spaces and settings; the weights are the learner's
    weights = algo.learner_group.get_weights()[DEFAULT_MODULE_ID]
    policy = build_sb3_policy(module.model_config, module.observation_space, module.action_space)
    state = {k[len("policy.") :]: torch.as_tensor(v) for k, v in weights.items() if k.startswith("policy.")}
    policy.load_state_dict(state, strict=True)
    model = SimpleNamespace(policy=policy, num_timesteps=steps, get_env=lambda: None)
    run_io.save_policy_data(model, path, path.with_name(NORMALIZER_FILE))


def _evaluate_final(config: dict[str, Any], run_dir: Path, steps: int) -> dict[str, Any]:
    from ncp_control.agents.evaluation.episodes import evaluate
    from ncp_control.agents.ppo.load import load_predictor

    summary = evaluate(
        load_predictor(run_dir, ppo_view(config)),
        config["env_id"],
        config["eval_episodes"],
        config["eval_seed"],
        env_kwargs=config["env_kwargs"],
        allow_import=True,
    )
    summary["timesteps"] = int(steps)
    run_io.write_json_atomic(run_dir / EVALUATION_FILE, summary)
    return summary
