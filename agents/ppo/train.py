"""Training a PPO run: :func:`train` plans the run (a new one or a resume), builds the algorithm, learns with
checkpoints by steps and by wall time, saves the final model and evaluates it.

Imports :mod:`.config`, :mod:`.envs`, :mod:`.models`, :mod:`.run_folder`, :mod:`.load` (the final evaluation
loads the saved run) and, lazily, :mod:`.callbacks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ncp_control.agents.ppo.config import OPTIONAL_KEYS, finalize_config, validate_config
from ncp_control.agents.ppo.envs import make_training_env, normalize_env
from ncp_control.agents.ppo.load import load_predictor
from ncp_control.agents.ppo.models import algorithm_class, build_algorithm, build_policy, check_model_keys
from ncp_control.agents.ppo.run_folder import (
    CHECKPOINT_DIR,
    CHECKPOINT_PREFIX,
    CONFIG_FILE,
    EVALUATION_FILE,
    MODEL_FILE,
    NORMALIZER_FILE,
    POLICY_FILE,
    VECNORMALIZE_FILE,
    checkpoints,
    data_checkpoint_paths,
    has_progress,
    vecnormalize_for,
)
from ncp_control.agents.runs import files as run_io
from ncp_control.agents.runs.load import read_json_object


def train(
    config: dict[str, Any],
    run_dir: str | Path,
    *,
    resume: bool = False,
    callbacks: Sequence = (),
    evaluate_at_end: bool = True,
):
    """Train (or resume) a run; returns the trained model.

    Args:
        config: a resolved config (:func:`~ncp_control.agents.ppo.config.resolve_config`). On resume, the run's own
            ``config.json`` is used and only ``timesteps`` (the new total), ``progress_bar`` and
            ``checkpoint_seconds`` are taken from ``config``.
        run_dir: the run folder (created when new; must not hold a run unless ``resume``).
        resume: continue from the run's last checkpoint; the step count continues from the checkpoint's.
        callbacks: extra SB3 callbacks.
        evaluate_at_end: write ``evaluation.json`` (``eval_episodes`` episodes from ``eval_seed``).

    Raises:
        ValueError: a new run in a folder that already has a config, or resume without a run or checkpoint.
    """
    run_dir = Path(run_dir)
    config, checkpoint = _plan_run(config, run_dir, resume)
    venv, model = _build(config, run_dir, checkpoint)
    _learn(model, venv, config, run_dir, callbacks, resume)
    if evaluate_at_end:
        _evaluate_final(model, config, run_dir)
    return model


def _plan_run(config: dict[str, Any], run_dir: Path, resume: bool) -> tuple[dict[str, Any], Path | None]:
    """The config to train (checked; on resume the run's own) and the checkpoint to resume from (``None`` for a new
    run), with ``config.json`` written to the (created) run folder."""
    config_path = run_dir / CONFIG_FILE
    checkpoint = None
    if resume:
        config, checkpoint = _resume_plan(config, run_dir)
    else:
        if config_path.exists() and has_progress(run_dir):
            raise ValueError(f"{run_dir} already holds a run; pass resume=True (--resume) or choose a new folder")
        config = finalize_config(config)  # a config.json without checkpoints is a start that failed: replaced
        check_model_keys(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(config_path, config)
    return config, checkpoint


def _resume_plan(config: dict[str, Any] | None, run_dir: Path) -> tuple[dict[str, Any], Path]:
    """The run's own config with the caller's ``timesteps``, ``progress_bar`` and ``checkpoint_seconds``, and the
    run's last checkpoint."""
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise ValueError(f"cannot resume: {run_dir} has no {CONFIG_FILE} (not a run folder)")
    saved = read_json_object(config_path, "run config")
    saved["timesteps"] = int(config["timesteps"]) if config else saved["timesteps"]
    for key in ("progress_bar", "checkpoint_seconds"):  # how to run, not what to train: the caller's say
        if config and key in config:
            saved[key] = config[key]
    validate_config(saved)
    found = checkpoints(run_dir)
    if not found:
        raise ValueError(
            f"cannot resume: no checkpoints in {run_dir / CHECKPOINT_DIR} (the run stopped before "
            "its first one); start it again without --resume in the same folder"
        )
    return saved, found[-1][1]


def _build(config: dict[str, Any], run_dir: Path, checkpoint: Path | None):
    """The (normalised) training VecEnv and the algorithm on it: fresh, or loaded from ``checkpoint``."""
    venv = make_training_env(config)
    cls = algorithm_class(config["policy"])
    if checkpoint is not None:
        venv, model = _load_checkpoint(cls, checkpoint, venv, config)
        model.tensorboard_log = str(run_dir / "tensorboard")
    else:
        venv = normalize_env(venv, config)
        model = build_algorithm(config, venv, tensorboard_log=str(run_dir / "tensorboard"))
        if config.get("init_from"):  # fine-tuning an imitation run: its actor, before the first update
            from ncp_control.agents.ppo.init_from import load_actor

            load_actor(model.policy, config["init_from"])
    if config.get("anchor_weight", 0) > 0:  # the anchor is the imitation run's actor
        from ncp_control.agents.ppo.init_from import anchor_actor, load_actor

        initial = model.policy  # a fresh run holds it now (anchor_actor copies the values)
        if checkpoint is not None:  # a resumed one has moved on: rebuild it from the imitation run
            initial = build_policy(config, model.policy.observation_space, model.policy.action_space)
            load_actor(initial, config["init_from"])
        anchor_actor(model.policy, initial, float(config["anchor_weight"]))
    return venv, model


def _checkpoint_callbacks(config: dict[str, Any], run_dir: Path) -> list:
    """The callbacks writing checkpoints (SB3's files and the policy as data): every ``checkpoint_freq`` steps and
    every ``checkpoint_seconds`` of wall time, each when turned on."""
    from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback

    from ncp_control.agents.ppo.callbacks import WallTimeCheckpoint

    found: list[BaseCallback] = []
    if config["checkpoint_freq"] > 0:
        save_freq = max(config["checkpoint_freq"] // config["n_envs"], 1)
        found.append(
            CheckpointCallback(
                save_freq=save_freq,
                save_path=str(run_dir / CHECKPOINT_DIR),
                name_prefix=CHECKPOINT_PREFIX,
                save_vecnormalize=True,
            )
        )
        found.append(
            run_io.policy_data_callback(save_freq, lambda steps: data_checkpoint_paths(run_dir / CHECKPOINT_DIR, steps))
        )
    seconds = config.get("checkpoint_seconds", OPTIONAL_KEYS["checkpoint_seconds"])
    if seconds > 0:

        def save_data(model, steps: int) -> list[Path]:
            paths = data_checkpoint_paths(run_dir / CHECKPOINT_DIR, steps)
            run_io.save_policy_data(model, *paths)
            return list(paths)

        found.append(
            WallTimeCheckpoint(run_dir / CHECKPOINT_DIR, seconds, prefix=CHECKPOINT_PREFIX, also_save=save_data)
        )
    return found


def _learn(model, venv, config: dict[str, Any], run_dir: Path, callbacks: Sequence, resume: bool) -> None:
    """Train up to ``config["timesteps"]`` with the caller's callbacks, the checkpoints and the periodic evaluation,
    then save the final model (:func:`_save`); the envs are closed whatever happens."""
    from stable_baselines3.common.callbacks import EvalCallback

    all_callbacks = [*callbacks, *_checkpoint_callbacks(config, run_dir)]
    eval_env = None
    if config["eval_freq"] > 0:
        eval_env = normalize_env(
            make_training_env(config, seed=config["eval_seed"], n_envs=1, perturbed=False), config, training=False
        )
        all_callbacks.append(
            EvalCallback(
                eval_env,
                n_eval_episodes=config["eval_episodes"],
                eval_freq=max(config["eval_freq"] // config["n_envs"], 1),
                best_model_save_path=str(run_dir / "eval"),
                log_path=str(run_dir / "eval"),
                deterministic=True,
            )
        )

    remaining = config["timesteps"] - model.num_timesteps
    try:
        if remaining > 0:
            model.learn(
                total_timesteps=remaining,
                callback=all_callbacks,
                tb_log_name="ppo",
                reset_num_timesteps=not resume,
                progress_bar=config["progress_bar"],
            )
        _save(model, run_dir)
    finally:
        venv.close()
        if eval_env is not None:
            eval_env.close()


def _evaluate_final(model, config: dict[str, Any], run_dir: Path) -> None:
    """``evaluation.json``: the saved run, loaded as data, on ``eval_episodes`` seeded episodes; also logged."""
    from ncp_control.agents.evaluation.episodes import evaluate

    summary = evaluate(
        load_predictor(run_dir, config),
        config["env_id"],
        config["eval_episodes"],
        config["eval_seed"],
        env_kwargs=config["env_kwargs"],
        allow_import=True,
    )
    summary["timesteps"] = int(model.num_timesteps)
    _write_json(run_dir / EVALUATION_FILE, summary)
    _log_final_evaluation(summary, run_dir, model)


def _load_checkpoint(cls, checkpoint: Path, venv, config: dict[str, Any]):
    """The model and (normalised) training env of a checkpoint, for resuming; errors name the file at fault."""
    from stable_baselines3.common.vec_env import VecNormalize

    stats = vecnormalize_for(checkpoint)
    advice = "delete it to resume from the checkpoint before, or start the run again"
    if stats.is_file():
        try:
            venv = VecNormalize.load(str(stats), venv)
        except Exception as error:  # truncated or corrupt pickle
            raise ValueError(
                f"cannot resume: {stats} is truncated or corrupt ({type(error).__name__}: {error}); {advice}"
            ) from error
        venv.training = True
    elif config["normalize_obs"] or config["normalize_reward"]:
        raise ValueError(f"cannot resume: {stats.name} is missing next to {checkpoint}; {advice}")
    try:
        model = cls.load(str(checkpoint), env=venv, device="cpu")
    except Exception as error:  # SB3 asserts on an empty zip ("No data found in the saved file")
        raise ValueError(
            f"cannot resume: {checkpoint} is truncated or corrupt ({type(error).__name__}: {error}); {advice}"
        ) from error
    return venv, model


def _log_final_evaluation(summary: dict[str, Any], run_dir: Path, model) -> None:
    """The final evaluation as TensorBoard scalars ``eval/final_*`` at the run's last step, next to training's."""
    from stable_baselines3.common.logger import configure

    folder = getattr(model, "logger", None) and model.logger.get_dir()
    logger = configure(folder or str(run_dir / "tensorboard" / "final"), ["tensorboard"])
    returns = np.asarray(summary["returns"], dtype=np.float64)
    logger.record("eval/final_mean_reward", float(returns.mean()))
    logger.record("eval/final_std_reward", float(returns.std(ddof=1)) if len(returns) > 1 else 0.0)
    logger.record("eval/final_mean_ep_length", float(np.mean(summary["lengths"])))
    if "completion_rate" in summary:
        logger.record("eval/final_completion_rate", float(summary["completion_rate"]))
    logger.dump(int(summary["timesteps"]))
    logger.close()


def _save(model, run_dir: Path) -> None:
    """Final model + normalisation stats, and the same as the last checkpoint (so resume finds it); each both as
    SB3's files and as data (:func:`ncp_control.agents.runs.files.save_policy_data`)."""
    from stable_baselines3.common.vec_env import VecNormalize

    model.save(str(run_dir / MODEL_FILE))
    ckpt_dir = run_dir / CHECKPOINT_DIR
    ckpt_dir.mkdir(exist_ok=True)
    checkpoint = ckpt_dir / f"{CHECKPOINT_PREFIX}_{model.num_timesteps}_steps.zip"
    model.save(str(checkpoint))
    venv = model.get_env()
    if isinstance(venv, VecNormalize):
        venv.save(str(run_dir / VECNORMALIZE_FILE))
        venv.save(str(vecnormalize_for(checkpoint)))
    run_io.save_policy_data(model, run_dir / POLICY_FILE, run_dir / NORMALIZER_FILE)
    run_io.save_policy_data(model, *data_checkpoint_paths(ckpt_dir, model.num_timesteps))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    run_io.write_json_atomic(path, data)
