"""PPO training with NCP (LTC / CfC) actors and the LSTM / MLP baselines, behind one ``policy`` switch.

=========  ==========================================================================
policy     algorithm and policy
=========  ==========================================================================
``ltc``    sb3-contrib ``RecurrentPPO`` + :class:`NCPActorCriticPolicy` (cell="ltc")
``cfc``    sb3-contrib ``RecurrentPPO`` + :class:`NCPActorCriticPolicy` (cell="cfc")
``lstm``   sb3-contrib ``RecurrentPPO`` + ``MlpLstmPolicy`` (``CnnLstmPolicy`` for images)
``mlp``    stable-baselines3 ``PPO`` + ``MlpPolicy`` (``CnnPolicy`` for images)
=========  ==========================================================================

A run folder (``run_dir``) holds::

    config.json              the resolved configuration: kind="ppo", env_id, policy, seed, timesteps, algo, ...
    tensorboard/ppo_1/       TensorBoard logs (continued, not restarted, on resume)
    policy.pt, vecnormalize.npz   the final policy's weights (+ its spaces) and the normaliser's statistics, as
                             data: what evaluate / inspect / robustness load (ncp_control.agents.runs.files; nothing unpickled)
    checkpoints/model_policy_<N>_steps.pt, checkpoints/model_vecnormalize_<N>_steps.npz   the same at checkpoints
    model.zip, vecnormalize.pkl   SB3's own files (cloudpickle / pickle) for SB3 users, read only by --resume
    checkpoints/model_<N>_steps.zip, checkpoints/model_vecnormalize_<N>_steps.pkl   SB3's checkpoints (--resume)
    evaluation.json          the final evaluation (ncp_control.agents.evaluation.episodes.evaluate) on eval_episodes seeded episodes

Configuration: :func:`resolve_config` merges the presets in ``agents/configs/ppo.json`` (see its ``_doc``), an
optional user file with the same keys as a resolved config, and explicit overrides. Every key is validated.

Elapsed time for NCP cells (``elapsed_time``): ``"constant"`` passes the env's step duration
(``env.unwrapped.dt``) to the policy as ``policy_kwargs["dt"]`` (unless the config sets it); ``"observation"``
wraps the env in :class:`ElapsedTimeObservation` so that ``info["elapsed_time"]`` reaches the cell step by step
(for irregular time), and normalises only the ``"observation"`` key.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal, get_args

import gymnasium as gym
import numpy as np

from ncp_control.agents.runs import files as run_io
from ncp_control.agents.runs.load import read_json_object

PolicyName = Literal["ltc", "cfc", "lstm", "mlp"]
VecEnvName = Literal["dummy", "subproc"]
ElapsedTimeMode = Literal["constant", "observation"]

PRESETS_PATH = Path(__file__).resolve().parents[1] / "configs" / "ppo.json"
MODEL_FILE = "model.zip"
VECNORMALIZE_FILE = "vecnormalize.pkl"
POLICY_FILE = "policy.pt"
NORMALIZER_FILE = "vecnormalize.npz"
CONFIG_FILE = "config.json"
EVALUATION_FILE = "evaluation.json"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_PREFIX = "model"
_CHECKPOINT_RE = re.compile(rf"^{CHECKPOINT_PREFIX}_(\d+)_steps\.zip$")
_DATA_CHECKPOINT_RE = re.compile(rf"^{CHECKPOINT_PREFIX}_policy_(\d+)_steps\.pt$")

# Keys of a resolved config and their types (the file-level schema; "algo" and "policy_kwargs" are checked
# against the algorithm's and policy's constructors when the model is built).
_SCHEMA: dict[str, type | tuple[type, ...]] = {
    "kind": str, "env_id": str, "policy": str, "seed": int, "timesteps": int,
    "n_envs": int, "vec_env": str, "normalize_obs": bool, "normalize_reward": bool, "elapsed_time": str,
    "env_kwargs": dict, "checkpoint_freq": int, "eval_freq": int, "eval_episodes": int, "eval_seed": int,
    "progress_bar": bool, "algo": dict, "policy_kwargs": dict, "checkpoint_seconds": (int, float),
}
#: Keys a run's config.json may lack (runs written before the key existed) and their values then.
_OPTIONAL: dict[str, Any] = {"checkpoint_seconds": 60}
_ACTIVATIONS = ("tanh", "relu", "elu", "leaky_relu", "silu")


# ---------------------------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------------------------
def load_presets(path: str | Path = PRESETS_PATH) -> dict[str, Any]:
    """The presets file as a dict (``defaults``, ``policies``, ``envs``)."""
    return read_json_object(Path(path), "presets file")


def resolve_config(
    env_id: str,
    policy: PolicyName,
    *,
    timesteps: int,
    seed: int = 0,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    presets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full training configuration for ``env_id`` and ``policy``.

    Layers (later wins, dicts merged key by key): presets ``defaults``, ``policies[policy]``, ``envs[env_id]``,
    ``envs[env_id].policies[policy]``, the JSON ``config_file``, ``overrides`` (e.g. ``{"n_envs": 8}``), then
    ``env_id``/``policy``/``seed``/``timesteps``.

    Raises:
        ValueError: unknown policy, unknown or mistyped keys, non-positive sizes, bad choices.
    """
    _check_choice("policy", policy, PolicyName)
    presets = load_presets() if presets is None else presets
    config = copy.deepcopy(presets.get("defaults", {}))
    _merge(config, presets.get("policies", {}).get(policy, {}))
    env_preset = copy.deepcopy(presets.get("envs", {}).get(env_id, {}))
    per_policy = env_preset.pop("policies", {})
    _merge(config, env_preset)
    _merge(config, per_policy.get(policy, {}))
    if config_file is not None:
        user = read_json_object(Path(config_file), "config file")
        for key in sorted(set(user) - set(_SCHEMA) - {"_doc"}):
            import difflib

            close = difflib.get_close_matches(key, sorted(_SCHEMA), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"allowed: {', '.join(sorted(_SCHEMA))}"
            raise ValueError(f"config file {config_file}: unknown key {key!r}; {hint}")
        _merge(config, user)
    _merge(config, overrides or {})
    config.update(kind="ppo", env_id=env_id, policy=policy, seed=int(seed), timesteps=int(timesteps))
    validate_config(config)
    return config


def validate_config(config: dict[str, Any]) -> None:
    """Check keys, types and choices of a resolved config (raises ``ValueError``)."""
    unknown = set(config) - set(_SCHEMA) - {"_doc"}
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; allowed: {sorted(_SCHEMA)}")
    missing = set(_SCHEMA) - set(config) - set(_OPTIONAL)
    if missing:
        raise ValueError(f"config is missing keys {sorted(missing)}")
    for key, typ in _SCHEMA.items():
        value = config.get(key, _OPTIONAL.get(key))
        if (typ is int and (isinstance(value, bool) or not isinstance(value, int))) or not isinstance(value, typ):
            name = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
            raise ValueError(f"config[{key!r}] must be {name}, got {value!r}")
    if not config.get("checkpoint_seconds", 1) >= 0:
        raise ValueError(f"config['checkpoint_seconds'] must be >= 0 (0 turns it off), got {config['checkpoint_seconds']}")
    if config["kind"] != "ppo":
        raise ValueError(f"config kind must be 'ppo', got {config['kind']!r}")
    _check_choice("policy", config["policy"], PolicyName)
    _check_choice("vec_env", config["vec_env"], VecEnvName)
    _check_choice("elapsed_time", config["elapsed_time"], ElapsedTimeMode)
    for key in ("timesteps", "n_envs", "eval_episodes"):
        if config[key] < 1:
            raise ValueError(f"config[{key!r}] must be >= 1, got {config[key]}")
    for key in ("checkpoint_freq", "eval_freq"):
        if config[key] < 0:
            raise ValueError(f"config[{key!r}] must be >= 0 (0 turns it off), got {config[key]}")
    if config["elapsed_time"] == "observation" and config["policy"] not in ("ltc", "cfc"):
        raise ValueError("elapsed_time='observation' is for the ltc/cfc policies; the lstm/mlp baselines take no time")
    act = config["policy_kwargs"].get("activation_fn")
    if act is not None and act not in _ACTIVATIONS:
        raise ValueError(f"policy_kwargs.activation_fn must be one of {_ACTIVATIONS}, got {act!r}")
    for key in _SCHEDULED:
        if key in config["algo"]:
            schedule_value(f"algo.{key}", config["algo"][key])


#: ``algo`` keys that take a number or rl-zoo's ``"lin_<start>"`` (linear decay to 0 over the run).
_SCHEDULED = ("learning_rate", "clip_range")


def schedule_value(name: str, value: Any):
    """A number, or an SB3 schedule for rl-zoo's ``"lin_<start>"`` string: ``start`` at the first update,
    decaying linearly to 0 at the end of training (``progress_remaining * start``).

    Raises:
        ValueError: anything else (a string that is not ``lin_`` + a positive number, a non-positive number).
    """
    from stable_baselines3.common.utils import LinearSchedule

    linear = isinstance(value, str) and value.startswith("lin_")
    start = float("nan")
    if linear or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        try:
            start = float(value[len("lin_"):] if linear else value)
        except ValueError:
            pass
    if not (np.isfinite(start) and start > 0):
        raise ValueError(f"{name} must be a positive number or 'lin_<positive number>' (linear decay to 0, as in "
                         f"rl-zoo), got {value!r}")
    return LinearSchedule(start, 0.0, 1.0) if linear else value


# ---------------------------------------------------------------------------------------------------------------
# environments
# ---------------------------------------------------------------------------------------------------------------
def _make_single_env(env_id: str, env_kwargs: dict[str, Any], timed: bool, dt: float | None) -> gym.Env:
    """Top-level (picklable) env factory for SubprocVecEnv workers; imports ``ncp_control.envs`` to register our ids."""
    from ncp_control.agents.evaluation.episodes import make_eval_env

    return make_eval_env(env_id, env_kwargs, policy_env_wrappers(timed, dt), allow_import=True)  # the user's run


def policy_env_wrappers(timed: bool, dt: float | None) -> tuple:
    """The wrappers a policy needs around the raw env: the elapsed-time observation when ``timed``."""
    if not timed:
        return ()
    from ncp_control.policies.elapsed_time import ElapsedTimeObservation

    return (partial(ElapsedTimeObservation, dt=dt),)


def env_step_duration(env_id: str, env_kwargs: dict[str, Any] | None = None) -> float:
    """``env.unwrapped.dt`` of a freshly made env, in seconds.

    Raises:
        ValueError: the env has no positive ``dt`` (then set ``policy_kwargs.dt`` in the config).
    """
    from ncp_control.agents.evaluation.episodes import make_eval_env

    env = make_eval_env(env_id, env_kwargs, allow_import=True)  # called while training: the user's own env id
    try:
        dt = getattr(env.unwrapped, "dt", None)
    finally:
        env.close()
    if dt is None or not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"{env_id} has no positive step duration env.unwrapped.dt; set policy_kwargs.dt in the config")
    return float(dt)


def make_training_env(config: dict[str, Any], *, seed: int | None = None, n_envs: int | None = None):
    """The (unnormalised) VecEnv for ``config``: Monitor-wrapped copies, Dummy or Subproc, seeded."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    timed = config["elapsed_time"] == "observation"
    factory = partial(_make_single_env, config["env_id"], config["env_kwargs"], timed,
                      config["policy_kwargs"].get("dt"))
    vec_cls = SubprocVecEnv if config["vec_env"] == "subproc" else DummyVecEnv
    return make_vec_env(factory, n_envs=n_envs or config["n_envs"], seed=config["seed"] if seed is None else seed,
                        vec_env_cls=vec_cls)


def _normalize(venv, config: dict[str, Any], *, training: bool = True):
    from stable_baselines3.common.vec_env import VecNormalize

    if not (config["normalize_obs"] or config["normalize_reward"]):
        return venv
    keys = ["observation"] if config["elapsed_time"] == "observation" else None
    return VecNormalize(venv, training=training, norm_obs=config["normalize_obs"],
                        norm_reward=config["normalize_reward"] and training, norm_obs_keys=keys,
                        gamma=config["algo"].get("gamma", 0.99))


# ---------------------------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------------------------
def algorithm_class(policy: PolicyName):
    """``RecurrentPPO`` for ltc/cfc/lstm, ``PPO`` for mlp."""
    _check_choice("policy", policy, PolicyName)
    if policy == "mlp":
        from stable_baselines3 import PPO

        return PPO
    from sb3_contrib import RecurrentPPO

    return RecurrentPPO


def _policy_spec(config: dict[str, Any], observation_space) -> tuple[Any, dict[str, Any]]:
    from stable_baselines3.common.preprocessing import is_image_space
    from torch import nn

    kwargs = dict(config["policy_kwargs"])
    if "activation_fn" in kwargs:
        kwargs["activation_fn"] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU,
                                   "silu": nn.SiLU}[kwargs["activation_fn"]]
    policy = config["policy"]
    if policy in ("ltc", "cfc"):
        from ncp_control.policies.recurrent_ppo import NCPActorCriticPolicy

        kwargs.setdefault("cell", policy)
        if kwargs["cell"] != policy:
            raise ValueError(f"policy {policy!r} but policy_kwargs.cell is {kwargs['cell']!r}")
        return NCPActorCriticPolicy, kwargs
    image = is_image_space(observation_space)
    if policy == "lstm":
        return ("CnnLstmPolicy" if image else "MlpLstmPolicy"), kwargs
    return ("CnnPolicy" if image else "MlpPolicy"), kwargs


def build_model(config: dict[str, Any], venv, *, tensorboard_log: str | None = None):
    """A fresh, seeded model for ``config`` on ``venv``.

    Raises:
        ValueError: an ``algo`` key the algorithm does not take.
    """
    cls = algorithm_class(config["policy"])
    check_model_keys(config)
    policy, policy_kwargs = _policy_spec(config, venv.observation_space)
    algo = dict(config["algo"])
    for key in _SCHEDULED:
        if key in algo:
            algo[key] = schedule_value(f"algo.{key}", algo[key])
    return cls(policy, venv, policy_kwargs=policy_kwargs, seed=config["seed"], tensorboard_log=tensorboard_log,
               device="cpu", verbose=0, **algo)


def finalize_config(config: dict[str, Any]) -> dict[str, Any]:
    """Fill what depends on the env: ``policy_kwargs.dt`` for NCP policies (from ``env.unwrapped.dt``)."""
    config = copy.deepcopy(config)
    if config["policy"] in ("ltc", "cfc") and "dt" not in config["policy_kwargs"]:
        config["policy_kwargs"]["dt"] = env_step_duration(config["env_id"], config["env_kwargs"])
    validate_config(config)
    return config


# ---------------------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------------------
def checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(steps, path)`` of every checkpoint in ``run_dir``, by increasing steps."""
    return _numbered_checkpoints(run_dir, _CHECKPOINT_RE)


def _numbered_checkpoints(run_dir: str | Path, pattern: re.Pattern) -> list[tuple[int, Path]]:
    """``(steps, path)`` of the files in ``run_dir/checkpoints`` whose name ``pattern`` matches (its group 1: the
    step count), by increasing steps."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    found = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = pattern.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def _vecnormalize_for(checkpoint: Path) -> Path:
    steps = _CHECKPOINT_RE.match(checkpoint.name).group(1)
    return checkpoint.with_name(f"{CHECKPOINT_PREFIX}_vecnormalize_{steps}_steps.pkl")


def data_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(steps, policy file)`` of every checkpoint stored as data (``model_policy_<N>_steps.pt``), by steps."""
    return _numbered_checkpoints(run_dir, _DATA_CHECKPOINT_RE)


def data_checkpoint_paths(folder: Path, steps: int) -> tuple[Path, Path]:
    """The policy weights and normaliser statistics of the data checkpoint at ``steps`` in ``folder``."""
    return (folder / f"{CHECKPOINT_PREFIX}_policy_{steps}_steps.pt",
            folder / f"{CHECKPOINT_PREFIX}_vecnormalize_{steps}_steps.npz")


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
        config: a resolved config (:func:`resolve_config`). On resume, the run's own ``config.json`` is used and
            only ``timesteps`` (the new total), ``progress_bar`` and ``checkpoint_seconds`` are taken from ``config``.
        run_dir: the run folder (created when new; must not hold a run unless ``resume``).
        resume: continue from the run's last checkpoint; the step count continues from the checkpoint's.
        callbacks: extra SB3 callbacks.
        evaluate_at_end: write ``evaluation.json`` (``eval_episodes`` episodes from ``eval_seed``).

    Raises:
        ValueError: a new run in a folder that already has a config, or resume without a run or checkpoint.
    """
    from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback

    from ncp_control.agents.ppo.callbacks import WallTimeCheckpoint

    run_dir = Path(run_dir)
    config_path = run_dir / CONFIG_FILE
    if resume:
        if not config_path.is_file():
            raise ValueError(f"cannot resume: {run_dir} has no {CONFIG_FILE} (not a run folder)")
        saved = read_json_object(config_path, "run config")
        saved["timesteps"] = int(config["timesteps"]) if config else saved["timesteps"]
        for key in ("progress_bar", "checkpoint_seconds"):  # how to run, not what to train: the caller's say
            if config and key in config:
                saved[key] = config[key]
        config = saved
        validate_config(config)
        found = checkpoints(run_dir)
        if not found:
            raise ValueError(f"cannot resume: no checkpoints in {run_dir / CHECKPOINT_DIR} (the run stopped before "
                             "its first one); start it again without --resume in the same folder")
    else:
        if config_path.exists() and has_progress(run_dir):
            raise ValueError(f"{run_dir} already holds a run; pass resume=True (--resume) or choose a new folder")
        config = finalize_config(config)  # a config.json without checkpoints is a start that failed: replaced
        check_model_keys(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(config_path, config)

    venv = make_training_env(config)
    cls = algorithm_class(config["policy"])
    if resume:
        venv, model = _load_checkpoint(cls, found[-1][1], venv, config)
        model.tensorboard_log = str(run_dir / "tensorboard")
    else:
        venv = _normalize(venv, config)
        model = build_model(config, venv, tensorboard_log=str(run_dir / "tensorboard"))

    all_callbacks = list(callbacks)
    if config["checkpoint_freq"] > 0:
        save_freq = max(config["checkpoint_freq"] // config["n_envs"], 1)
        all_callbacks.append(CheckpointCallback(
            save_freq=save_freq, save_path=str(run_dir / CHECKPOINT_DIR),
            name_prefix=CHECKPOINT_PREFIX, save_vecnormalize=True))
        all_callbacks.append(run_io.policy_data_callback(
            save_freq, lambda steps: data_checkpoint_paths(run_dir / CHECKPOINT_DIR, steps)))
    seconds = config.get("checkpoint_seconds", _OPTIONAL["checkpoint_seconds"])
    if seconds > 0:
        def save_data(model, steps: int) -> list[Path]:
            paths = data_checkpoint_paths(run_dir / CHECKPOINT_DIR, steps)
            run_io.save_policy_data(model, *paths)
            return list(paths)

        all_callbacks.append(WallTimeCheckpoint(run_dir / CHECKPOINT_DIR, seconds, prefix=CHECKPOINT_PREFIX,
                                                also_save=save_data))
    eval_env = None
    if config["eval_freq"] > 0:
        eval_env = _normalize(make_training_env(config, seed=config["eval_seed"], n_envs=1), config, training=False)
        all_callbacks.append(EvalCallback(
            eval_env, n_eval_episodes=config["eval_episodes"], eval_freq=max(config["eval_freq"] // config["n_envs"], 1),
            best_model_save_path=str(run_dir / "eval"), log_path=str(run_dir / "eval"), deterministic=True))

    remaining = config["timesteps"] - model.num_timesteps
    try:
        if remaining > 0:
            model.learn(total_timesteps=remaining, callback=all_callbacks, tb_log_name="ppo",
                        reset_num_timesteps=not resume, progress_bar=config["progress_bar"])
        _save(model, run_dir)
    finally:
        venv.close()
        if eval_env is not None:
            eval_env.close()
    if evaluate_at_end:
        from ncp_control.agents.evaluation.episodes import evaluate

        summary = evaluate(load_policy(run_dir, config), config["env_id"], config["eval_episodes"],
                           config["eval_seed"], env_kwargs=config["env_kwargs"], allow_import=True)
        summary["timesteps"] = int(model.num_timesteps)
        _write_json(run_dir / EVALUATION_FILE, summary)
        _log_final_evaluation(summary, run_dir, model)
    return model


def has_progress(run_dir: str | Path) -> bool:
    """Whether a PPO run folder holds training worth resuming (a checkpoint or a final model)."""
    return bool(checkpoints(run_dir)) or (Path(run_dir) / MODEL_FILE).is_file()


def check_model_keys(config: dict[str, Any]) -> None:
    """``algo`` keys against the algorithm's constructor and ``policy_kwargs`` against the policy's, before any work.

    Raises:
        ValueError: an unknown key (with close matches), naming the config section.
    """
    import difflib
    import inspect

    cls = algorithm_class(config["policy"])
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "policy", "env", "policy_kwargs", "seed",
                                                                   "tensorboard_log", "device", "_init_setup_model"}
    if config["policy"] in ("ltc", "cfc"):
        from ncp_control.policies.recurrent_ppo import NCPActorCriticPolicy as policy_cls
    elif config["policy"] == "lstm":
        from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy as policy_cls
    else:
        from stable_baselines3.common.policies import ActorCriticPolicy as policy_cls
    params = inspect.signature(policy_cls.__init__).parameters
    policy_allowed = set(params) - {"self", "observation_space", "action_space", "lr_schedule"}
    checks = [("algo", config["algo"], allowed)]
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        checks.append(("policy_kwargs", config["policy_kwargs"], policy_allowed))
    for section, given, known in checks:
        for key in sorted(set(given) - known):
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"allowed: {', '.join(sorted(known))}"
            raise ValueError(f"unknown {section} key {key!r} for {config['policy']} ({cls.__name__}); {hint}")


def _load_checkpoint(cls, checkpoint: Path, venv, config: dict[str, Any]):
    """The model and (normalised) training env of a checkpoint, for resuming; errors name the file at fault."""
    from stable_baselines3.common.vec_env import VecNormalize

    stats = _vecnormalize_for(checkpoint)
    advice = "delete it to resume from the checkpoint before, or start the run again"
    if stats.is_file():
        try:
            venv = VecNormalize.load(str(stats), venv)
        except Exception as error:  # truncated or corrupt pickle
            raise ValueError(f"cannot resume: {stats} is truncated or corrupt ({type(error).__name__}: {error}); "
                             f"{advice}") from error
        venv.training = True
    elif config["normalize_obs"] or config["normalize_reward"]:
        raise ValueError(f"cannot resume: {stats.name} is missing next to {checkpoint}; {advice}")
    try:
        model = cls.load(str(checkpoint), env=venv, device="cpu")
    except Exception as error:  # SB3 asserts on an empty zip ("No data found in the saved file")
        raise ValueError(f"cannot resume: {checkpoint} is truncated or corrupt ({type(error).__name__}: {error}); "
                         f"{advice}") from error
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
        venv.save(str(_vecnormalize_for(checkpoint)))
    run_io.save_policy_data(model, run_dir / POLICY_FILE, run_dir / NORMALIZER_FILE)
    run_io.save_policy_data(model, *data_checkpoint_paths(ckpt_dir, model.num_timesteps))


# ---------------------------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------------------------
class PPOPredictor:
    """A trained PPO policy as a Predictor for raw (unnormalised) observations.

    ``predict`` normalises observations with the run's saved statistics (if any), then calls the SB3 policy's
    ``predict``. For ``mlp`` policies the returned state is ``None``. ``env_wrappers`` lists what the observations
    need around the raw env (the elapsed-time observation for ``elapsed_time="observation"`` runs).

    Args:
        policy: the SB3 policy (an ``nn.Module`` with ``predict``), or an SB3 model (its ``.policy`` is taken).
        normalizer: an :class:`ncp_control.agents.runs.files.ObsNormalizer`, an SB3 ``VecNormalize`` (its statistics are copied),
            or ``None``.

    Attributes:
        policy: the SB3 policy. normalizer: the :class:`~ncp_control.agents.runs.files.ObsNormalizer` or ``None``.
        observation_space, action_space: the policy's spaces.
    """

    def __init__(self, policy, normalizer=None, env_wrappers: Sequence = ()):
        from torch import nn

        if not isinstance(policy, nn.Module) and isinstance(getattr(policy, "policy", None), nn.Module):
            policy = policy.policy  # an SB3 model
        if normalizer is not None and not isinstance(normalizer, run_io.ObsNormalizer):
            normalizer = run_io.ObsNormalizer.from_vecnormalize(normalizer)
        self.policy = policy
        self.normalizer = normalizer
        self.env_wrappers = tuple(env_wrappers)
        self.observation_space = policy.observation_space
        self.action_space = policy.action_space

    def obs_normalization(self) -> dict[str, Any] | None:
        """The observation normalisation :meth:`predict` applies, as data: ``None`` when observations go in raw,
        else ``{"mean": (obs_dim,), "var": (obs_dim,), "clip": float, "epsilon": float}`` (numpy float64), meaning
        ``clip(( obs - mean) / sqrt(var + epsilon), -clip, clip)``. For dict observations ``mean`` and ``var`` are
        dicts over the normalised keys, listed in ``"keys"``."""
        n = self.normalizer
        if n is None or not n.norm_obs:
            return None
        out = {"mean": n.obs_mean, "var": n.obs_var, "clip": float(n.clip_obs), "epsilon": float(n.epsilon)}
        if n.norm_obs_keys is not None:
            out["keys"] = list(n.norm_obs_keys)
        return out

    def normalize_obs(self, observation):
        """Raw observations as the policy sees them (unchanged when the run has no normaliser)."""
        return observation if self.normalizer is None else self.normalizer.normalize_obs(observation)

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = True):
        """observation: (n_envs, *obs_shape) (or a dict of such arrays); episode_start: (n_envs,) bool.
        Returns ``(actions (n_envs, *act_shape), state)``."""
        return self.policy.predict(self.normalize_obs(observation), state=state, episode_start=episode_start,
                                   deterministic=deterministic)


def build_policy(config: dict[str, Any], observation_space, action_space):
    """A fresh SB3 policy of the run's class (from this project's registry: :func:`algorithm_class` and
    ``_policy_spec``) with the run's ``policy_kwargs``, as the algorithm would build it."""
    cls = algorithm_class(config["policy"])
    policy, kwargs = _policy_spec(config, observation_space)
    policy_cls = cls.policy_aliases[policy] if isinstance(policy, str) else policy
    return policy_cls(observation_space, action_space, lambda _: 0.0,
                      use_sde=bool(config["algo"].get("use_sde", False)), **kwargs)


def load_policy(run_dir: str | Path, config: dict[str, Any]) -> PPOPredictor:
    """Load a PPO run's final policy (or, if training did not finish, its last checkpoint) as a Predictor, from
    data only: ``policy.pt`` (``weights_only``) and ``vecnormalize.npz``; SB3's zip and pickle are not read.

    Raises:
        ValueError: no policy data in the run folder, or a file that is damaged or crafted (named in the message).
    """
    run_dir = Path(run_dir)
    validate_config(config)
    policy_path, stats_path = run_dir / POLICY_FILE, run_dir / NORMALIZER_FILE
    if not policy_path.is_file():
        found = data_checkpoints(run_dir)
        if not found:
            hint = ""
            if (run_dir / MODEL_FILE).is_file() or checkpoints(run_dir):
                hint = (f"; it has SB3's {MODEL_FILE}/checkpoint zips, which are pickles: load them with "
                        "ncp_control.agents.ppo.load_sb3_predictor only if you trust whoever made the folder")
            raise ValueError(f"{run_dir} has no {POLICY_FILE} and no {CHECKPOINT_DIR}/"
                             f"{CHECKPOINT_PREFIX}_policy_<N>_steps.pt: nothing to load{hint}")
        policy_path, stats_path = data_checkpoint_paths(policy_path.parent / CHECKPOINT_DIR, found[-1][0])
    policy = run_io.load_policy_data(policy_path, config, build_policy)
    normalizer = None
    if config["normalize_obs"] or config["normalize_reward"]:
        if not stats_path.is_file():
            if config["normalize_obs"]:
                raise ValueError(f"{stats_path} is missing: the model was trained on normalised observations")
        else:
            normalizer = run_io.load_normalizer(stats_path)
            run_io.check_normalizer_fits(normalizer, policy.observation_space, stats_path)
    timed = config["elapsed_time"] == "observation"
    return PPOPredictor(policy, normalizer, policy_env_wrappers(timed, config["policy_kwargs"].get("dt")))


def load_sb3_predictor(run_dir: str | Path, config: dict[str, Any] | None = None) -> PPOPredictor:
    """Load a run from SB3's ``model.zip`` and ``vecnormalize.pkl`` (or the last SB3 checkpoint).

    **Unpickles**: only for run folders you made or trust (e.g. runs written before ``policy.pt`` existed);
    :func:`load_policy` is the safe loader.
    """
    import pickle

    from ncp_control.agents.runs.load import read_config

    run_dir = Path(run_dir)
    config = read_config(run_dir) if config is None else config
    validate_config(config)
    model_path, stats_path = run_dir / MODEL_FILE, run_dir / VECNORMALIZE_FILE
    if not model_path.is_file():
        found = checkpoints(run_dir)
        if not found:
            raise ValueError(f"{run_dir} has no {MODEL_FILE} and no checkpoints: nothing to load")
        model_path = found[-1][1]
        stats_path = _vecnormalize_for(model_path)
    model = load_sb3_model(model_path, config)
    normalizer = None
    if stats_path.is_file():
        with open(stats_path, "rb") as f:
            normalizer = pickle.load(f)  # trusted by the caller (see the docstring)
    timed = config["elapsed_time"] == "observation"
    return PPOPredictor(model, normalizer, policy_env_wrappers(timed, config["policy_kwargs"].get("dt")))


def load_sb3_model(path: str | Path, config: dict[str, Any]):
    """SB3's ``load`` of a model zip (cloudpickle: runs code from the file; only for files you trust)."""
    try:
        return algorithm_class(config["policy"]).load(str(path), device="cpu")
    except Exception as error:  # corrupt zip, wrong algorithm
        raise ValueError(f"cannot load {path}: {error}") from error


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------
def _merge(base: dict[str, Any], update: dict[str, Any]) -> None:
    """Recursive in-place merge: nested dicts merged key by key, everything else replaced."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    run_io.write_json_atomic(path, data)


def _check_choice(name: str, value, literal) -> None:
    allowed = get_args(literal)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
