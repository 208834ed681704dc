"""Reusing finished training runs of other study folders (``ncp-control study SPEC --out DIR --runs-from OTHER``).

A training job of the study in ``DIR`` is *reused* from a study folder ``OTHER`` when ``OTHER`` finished a job
with the same id (``OTHER/jobs/<id>.done``, status ``done``, same kind, env, model, seed and tag) whose run
folder ``OTHER/runs/<id>`` was trained with the same resolved settings (its ``config.json`` against the job's
config: :func:`ncp_control.agents.study.jobs.config_difference`). The run folder is then copied to ``DIR/runs/<id>`` and the
job recorded as done with ``reused_from`` (the other study folder); its evaluations run as for a run trained here.
A job that does not match (another config, no finished job, a folder holding links) is simply trained, and the
reason is reported.

Only data is read from ``OTHER``: JSON records and configs (no pickles, no code), and files copied as bytes. Links
are not followed: a marker, run folder or anything inside it that is a symbolic link (or not a plain file or
folder) makes that run not reusable.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ncp_control.agents.runs.files import read_json_object, write_json_atomic
from ncp_control.agents.study.spec import TrainJob


def check_sources(sources: Sequence[str | os.PathLike], out: str | os.PathLike) -> list[Path]:
    """The ``--runs-from`` folders, each a study folder (with ``spec.json``) other than ``out``.

    Raises:
        ValueError: a folder that is not a study folder, or is ``out`` itself.
    """
    checked = []
    for source in sources:
        path = Path(source)
        if not (path / "spec.json").is_file():
            raise ValueError(f"--runs-from {source}: not a study folder (it has no spec.json)")
        if path.resolve() == Path(out).resolve():
            raise ValueError(f"--runs-from {source} is the study folder itself")
        checked.append(path.resolve())
    return checked


def reuse_runs(
    jobs: Sequence[TrainJob],
    out: Path,
    sources: Sequence[Path],
    new_record: Callable[[TrainJob], dict],
    now: Callable[[], str],
    say: Callable[[str], None],
) -> list[str]:
    """Copy every reusable run (see the module docstring) of ``jobs`` not yet done in ``out`` from the first of
    ``sources`` that has it, and write its ``jobs/<id>.done``; returns the reused job ids.

    ``new_record`` gives a job's fresh record (the driver's), ``now`` the time stamp, ``say`` a progress line.
    """
    reused = []
    for job in jobs:
        marker = out / "jobs" / f"{job.job_id}.done"
        if marker.is_file() or not sources:
            continue
        reasons = []
        for source in sources:
            reason, record = _reusable(job, source)
            if reason is None:
                t0 = time.perf_counter()
                _copy_folder(source / "runs" / job.job_id, out / "runs" / job.job_id)
                done = new_record(job)
                done.update(
                    status="done",
                    start=now(),
                    end=now(),
                    seconds=time.perf_counter() - t0,
                    reused_from=str(source),
                    trained_seconds=record.get("seconds"),
                )
                write_json_atomic(marker, done, indent=1)  # last: the job is finished
                say(f"{job.job_id}: reused from {source}")
                reused.append(job.job_id)
                break
            reasons.append(f"{source}: {reason}")
        else:
            say(f"{job.job_id}: not reused ({'; '.join(reasons)}); it will be trained")
    return reused


def _reusable(job: TrainJob, source: Path) -> tuple[str | None, dict[str, Any]]:
    """(None, the other job's record) if ``source`` holds a finished run of ``job`` trained with its config, else
    (the reason, {})."""
    from ncp_control.agents.study.jobs import config_difference

    if job.init_job is not None:
        return "a fine-tuning run starts from this study's own imitation run, so it is trained here", {}
    marker = source / "jobs" / f"{job.job_id}.done"
    run_dir = source / "runs" / job.job_id
    if not _plain(marker, stat.S_ISREG):
        return "no finished job of that id", {}
    try:
        record = read_json_object(marker, "job record")
    except ValueError as error:
        return str(error), {}
    spec = record.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    ours = {"type": "train", "kind": job.kind, "env": job.env_id, "model": job.model, "seed": job.seed, "tag": job.tag}
    theirs = {key: spec.get(key) for key in ours}
    if record.get("status") != "done" or record.get("id") != job.job_id or theirs != ours:
        return f"its job record is not a finished training job of {ours} ({theirs}, status {record.get('status')})", {}
    link = _first_link(run_dir)
    if link is not None:
        return f"{link} is a link or not a plain file/folder (links are not followed)", {}
    try:
        config = read_json_object(run_dir / "config.json", "run config")
    except ValueError as error:
        return str(error), {}
    differing = config_difference(job.kind, job.config, config)
    if differing:
        return f"trained with other settings ({', '.join(differing)})", {}
    return None, record


def _plain(path: Path, is_kind: Callable[[int], bool]) -> bool:
    try:
        return is_kind(os.lstat(path).st_mode)
    except OSError:
        return False


def _first_link(folder: Path) -> Path | None:
    """The first entry of ``folder`` (itself included) that is not a plain folder or file, None if there is none."""
    if not _plain(folder, stat.S_ISDIR):
        return folder
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs:
            if not _plain(Path(root) / name, stat.S_ISDIR):
                return Path(root) / name
        for name in files:
            if not _plain(Path(root) / name, stat.S_ISREG):
                return Path(root) / name
    return None


def _copy_folder(src: Path, dest: Path) -> None:
    """Copy ``src`` (checked by :func:`_first_link`) to ``dest`` atomically: beside it, then renamed over it."""
    from ncp_control.agents.study.jobs import replace_folder

    partial = dest.with_name(f".{dest.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    shutil.copytree(src, partial, symlinks=True)  # symlinks=True: a link (there is none) would be copied, not followed
    replace_folder(partial, dest)
