"""The work of one study job, as it runs inside a Ray task (no Ray import here: callable and testable without it).

A training job calls what ``train-ppo`` / ``train-bc`` call (:func:`ncp_control.agents.ppo.train` on a config from
:func:`ncp_control.agents.ppo.resolve_config`; :func:`ncp_control.agents.imitation.train` on a config from
:func:`ncp_control.agents.imitation.preset_config`) and writes one run folder, the same files those commands write. A job that
finds a partial run folder (an earlier attempt died) continues it from its last checkpoint; a folder with nothing
to continue from (killed before the first checkpoint) is cleared and trained from the start.

An evaluation job loads a run folder with :func:`ncp_control.agents.runs.load.load_run` and runs :func:`ncp_control.agents.evaluation.episodes.evaluate`
(no perturbation) or :func:`ncp_control.agents.evaluation.robustness.robustness_sweep` (``perturb`` sweeps, common random numbers), and
returns one row of metrics per (perturbation, level). Its env is built from explicit arguments,
:func:`evaluation_env_kwargs`: the run's training arguments (what the model was trained to observe) without the
look it was trained under, then the evaluation entry's ``env_kwargs``.

Run folders travel as tar archives (:func:`pack_folder` / :func:`unpack_folder`) when the nodes do not share a
file system with the driver.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: the metrics a study aggregates across training seeds (keys of every evaluation row; None where not defined)
METRICS = ("mean_return", "completion_rate", "crash_rate", "mean_abs_lateral_m")

#: exit status of a worker that a fault-injection hook killed (see :func:`train_job`)
FAULT_EXIT_STATUS = 75

#: env arguments that set the look a run is trained under: never carried over from a run to its evaluations (the
#: look of an evaluation is its entry's, by default the clean one)
TRAINING_LOOK_KWARGS = ("domain_randomization",)


# ---------------------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------------------
def train_job(
    kind: str,
    config: Mapping[str, Any],
    run_dir: str | os.PathLike,
    *,
    init_dir: str | os.PathLike | None = None,
    exit_after_checkpoint: bool = False,
) -> dict[str, Any]:
    """Train (or continue) one run in ``run_dir``; returns ``{"resumed_from": ..., "seconds": ...}``.

    Args:
        kind: ``"ppo"`` (``config`` is a resolved PPO config) or ``"bc"`` (``config`` is ``BCConfig.to_dict()``).
        run_dir: the run folder; a partial one is continued from its last checkpoint.
        init_dir: for a PPO config with ``init_from`` (a study's fine-tuning job): the imitation run folder it
            starts from; the config is completed from it as ``train-ppo --init-from`` completes it.
        exit_after_checkpoint: fault injection for tests: kill this process (``os._exit``) right after the
            first checkpoint of a run that starts from scratch.

    ``resumed_from`` is None for a fresh run, else the PPO checkpoint's steps / the imitation epochs already done.
    """
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    if kind == "ppo":
        resumed_from = _train_ppo(dict(config), run_dir, init_dir, exit_after_checkpoint)
    elif kind == "bc":
        resumed_from = _train_bc(dict(config), run_dir, exit_after_checkpoint)
    else:
        raise ValueError(f"unknown training kind {kind!r}; known: 'ppo', 'bc'")
    return {"resumed_from": resumed_from, "seconds": time.perf_counter() - t0}


def _train_ppo(
    config: dict[str, Any], run_dir: Path, init_dir: str | os.PathLike | None, exit_after_checkpoint: bool
) -> int | None:
    from ncp_control.agents.ppo import check_model_keys, checkpoints, train

    found = checkpoints(run_dir) if (run_dir / "config.json").is_file() else []
    if found:
        train({"timesteps": config["timesteps"]}, run_dir, resume=True)
        return found[-1][0]
    if config.get("init_from"):
        from ncp_control.agents.ppo.init_from import init_config

        if init_dir is None or not (Path(init_dir) / "config.json").is_file():
            raise ValueError(f"{run_dir.name} fine-tunes {config['init_from']}, which is not a finished run here")
        config = init_config(config, Path(init_dir))
        check_model_keys(config)
    _clear(run_dir)
    callbacks = [_ppo_exit_callback(run_dir)] if exit_after_checkpoint else []
    train(config, run_dir, callbacks=callbacks)
    return None


def _ppo_exit_callback(run_dir: Path):
    from stable_baselines3.common.callbacks import BaseCallback

    from ncp_control.agents.ppo import checkpoints

    class ExitAfterCheckpoint(BaseCallback):
        def _on_step(self) -> bool:
            if checkpoints(run_dir):
                os._exit(FAULT_EXIT_STATUS)
            return True

    return ExitAfterCheckpoint()


def _train_bc(settings: dict[str, Any], run_dir: Path, exit_after_checkpoint: bool) -> int | None:
    from ncp_control.agents.imitation import BCConfig, train

    config = BCConfig.from_dict(settings)
    progress = run_dir / "progress.jsonl"
    if (run_dir / "config.json").is_file():
        done = len(progress.read_text().splitlines()) if progress.is_file() else 0
        train(config, run_dir, resume=True)
        return done
    _clear(run_dir)
    callback: Callable[[dict], None] | None = None
    if exit_after_checkpoint:

        def callback(record: dict) -> None:
            os._exit(FAULT_EXIT_STATUS)

    train(config, run_dir, callback=callback)
    return None


def config_difference(kind: str, config: Mapping[str, Any], run_config: Mapping[str, Any]) -> list[str]:
    """The settings in which a resolved training ``config`` (a job's) and a run folder's ``config.json`` differ;
    empty when that run was trained as the job would train it.

    Imitation runs compare their ``BCConfig`` (as ``train-bc --resume`` does); PPO runs the config as
    :func:`ncp_control.agents.ppo.train` writes it (after :func:`ncp_control.agents.ppo.finalize_config`), without ``progress_bar`` and
    ``checkpoint_seconds`` (how to run, not what to train). Reads nothing but the two dicts.
    """
    if run_config.get("kind") != kind:
        return ["kind"]
    if kind == "bc":
        from ncp_control.agents.imitation import BCConfig

        try:
            stored = BCConfig.from_dict(run_config["training"])
        except (KeyError, TypeError, ValueError):
            return ["training"]
        return list(stored.differences(BCConfig.from_dict(config)))
    if kind == "ppo":
        from ncp_control.agents.ppo import finalize_config

        how = ("progress_bar", "checkpoint_seconds")
        ours = {k: v for k, v in json.loads(json.dumps(finalize_config(dict(config)))).items() if k not in how}
        theirs = {k: v for k, v in run_config.items() if k not in how}
        return sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    raise ValueError(f"unknown training kind {kind!r}; known: 'ppo', 'bc'")


def _clear(run_dir: Path) -> None:
    """Remove what an attempt left before its first checkpoint (nothing there can be continued)."""
    if run_dir.exists():
        shutil.rmtree(run_dir)


# ---------------------------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------------------------
def evaluation_env_kwargs(
    run_env_id: str, run_env_kwargs: Mapping[str, Any], env_id: str, env_kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``gym.make`` arguments of an evaluation on ``env_id`` of a run trained on ``run_env_id`` with
    ``run_env_kwargs``: on the run's own env, its training arguments (image size, road settings: what the model
    was trained to observe and do) without :data:`TRAINING_LOOK_KWARGS`; on another env, none; then the
    evaluation's own ``env_kwargs`` on top. A run trained under domain randomisation is thus evaluated on the
    clean look unless the evaluation asks for randomisation."""
    own = env_id.rpartition(":")[2] == run_env_id
    kept = {k: v for k, v in run_env_kwargs.items() if k not in TRAINING_LOOK_KWARGS} if own else {}
    return {**kept, **env_kwargs}


def evaluate_job(
    run_dir: str | os.PathLike,
    env_id: str,
    episodes: int,
    seed: int,
    perturb: Sequence[str] = (),
    env_kwargs: Mapping[str, Any] | None = None,
    n_envs: int = 1,
) -> list[dict[str, Any]]:
    """Evaluate one run on an env built with :func:`evaluation_env_kwargs` (``env_kwargs``: the evaluation's
    own); one row per (perturbation, level): ``perturbation`` (``"none"`` without sweeps), ``level`` (None without
    sweeps), ``episodes`` and the :data:`METRICS` (lane-keeping metrics None elsewhere). ``n_envs``: env copies
    batched through the model (faster; results change at the level of floating-point rounding, so a study keeps
    one value).

    Raises:
        ValueError: the run cannot be loaded, does not fit ``env_id``, or fails under a perturbation.
    """
    from ncp_control.agents.runs.load import read_config, training_env_kwargs

    config = read_config(run_dir)
    kwargs = evaluation_env_kwargs(config["env_id"], training_env_kwargs(config), env_id, env_kwargs or {})
    if perturb:
        from ncp_control.agents.evaluation.robustness import robustness_sweep

        results = robustness_sweep(
            [str(run_dir)], env_id, list(perturb), episodes, seed, env_kwargs=kwargs, processes=1, n_envs=n_envs
        )
        if results.failures:
            raise ValueError(f"cannot evaluate {run_dir} on {env_id}: {next(iter(results.failures.values()))}")
        return [_metrics_row(row.summary()) for row in results.rows]
    from ncp_control.agents.evaluation.episodes import evaluate
    from ncp_control.agents.runs.load import load_run

    summary = evaluate(load_run(run_dir).predictor, env_id, episodes, seed, env_kwargs=kwargs, n_envs=n_envs)
    return [_metrics_row({**summary, "perturbation": "none", "level": None})]


def _metrics_row(summary: Mapping[str, Any]) -> dict[str, Any]:
    row = {"perturbation": summary["perturbation"], "level": summary["level"], "episodes": int(summary["episodes"])}
    for key in METRICS:
        value = summary.get(key)
        row[key] = None if value is None else float(value)
    return row


# ---------------------------------------------------------------------------------------------------------------
# moving run folders between nodes
# ---------------------------------------------------------------------------------------------------------------
def pack_folder(folder: str | os.PathLike) -> bytes:
    """The folder's files as an uncompressed tar archive (paths relative to the folder)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(str(folder), arcname=".")
    return buffer.getvalue()


def unpack_folder(data: bytes, folder: str | os.PathLike) -> Path:
    """Write an archive from :func:`pack_folder` to ``folder`` atomically: unpacked beside it, then renamed over it
    (a reader never sees half a folder). Only plain files and folders inside the archive are accepted
    (``tarfile``'s ``data`` filter: no links out, no absolute paths, no devices)."""
    folder = Path(folder)
    partial = folder.with_name(f".{folder.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(partial, filter="data")
        else:  # Python < 3.10.12 / 3.11.4 (Debian 12's 3.11.2): the same refusals, checked here
            archive.extractall(partial, members=plain_members(archive, partial), numeric_owner=True)
    return replace_folder(partial, folder)


def plain_members(archive: tarfile.TarFile, destination: str | os.PathLike) -> list[tarfile.TarInfo]:
    """The archive's members if every one is a plain file or folder that lands inside ``destination``, with the
    permissions ``tarfile``'s ``data`` filter would give them; raises ``tarfile.TarError`` naming the first that is
    a link, a device or would land outside; leading slashes are stripped (for Pythons whose ``extractall`` has no
    ``filter``)."""
    root = os.path.realpath(destination)
    members = []
    for member in archive.getmembers():
        if not (member.isfile() or member.isdir()):
            raise tarfile.TarError(f"{member.name!r} is not a plain file or folder (links and devices are refused)")
        member.name = member.name.lstrip("/" + os.sep)  # as the data filter does: "/a" unpacks to "a"
        target = os.path.realpath(os.path.join(root, member.name))
        if os.path.isabs(member.name) or os.path.commonpath([root, target]) != root:
            raise tarfile.TarError(f"{member.name!r} would be written outside the destination folder")
        member.mode = (member.mode | 0o600) & 0o755 if member.isfile() else 0o755  # no setuid, no group/other write
        # owned by whoever unpacks (the data filter drops the archive's owners; these Pythons' chown, run as root,
        # would look the names up and fail on None): extracted with numeric_owner=True, so these ids are used
        member.uid, member.gid, member.uname, member.gname = os.getuid(), os.getgid(), "", ""
        members.append(member)
    return members


def replace_folder(partial: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """Put the complete folder ``partial`` (a sibling of ``folder``) in place of ``folder``, which is moved aside
    first and removed after: a reader never sees half a folder."""
    partial, folder = Path(partial), Path(folder)
    old = folder.with_name(f".{folder.name}.old")
    if folder.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(folder, old)
    os.replace(partial, folder)
    if old.exists():
        shutil.rmtree(old)
    return folder
