"""The work of a robustness sweep: tasks (a block of episodes of one model under one condition) and who runs them.

:func:`run_tasks` runs every task either in this process or in a pool of worker processes (``spawn`` or
``forkserver``: no forked torch state). Each worker loads every run folder itself (a predictor object is pickled
to it) and uses one torch thread, as this process does while it runs tasks, so results do not depend on where a
task ran. :func:`ncp_control.agents.evaluation.robustness.robustness_sweep` plans the tasks and reassembles their
per-episode values in episode order.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ncp_control.envs.perturbations import PERTURBATIONS, make_perturbation

__all__ = ["Condition", "Task", "ModelJob", "run_tasks"]


@dataclasses.dataclass(frozen=True)
class Condition:
    """One perturbation at one level; ``name=None`` is the unperturbed environment."""

    name: str | None
    level: float | int | None = None

    @property
    def spec(self) -> str | None:
        """``"name:level"`` for :func:`ncp_control.envs.perturbations.make_perturbation`, None when unperturbed."""
        return None if self.name is None else f"{self.name}:{self.level}"

    @property
    def is_neutral(self) -> bool:
        return self.name is None or self.level == PERTURBATIONS[self.name].neutral


@dataclasses.dataclass(frozen=True)
class Task:
    """A block of consecutive episodes of one model under one condition: the unit of parallel work."""

    model: int  # index into the worker's model list
    condition: Condition
    start: int  # first episode index
    count: int  # number of episodes


@dataclasses.dataclass(frozen=True)
class ModelJob:
    """What a worker needs to evaluate one model: its source (a run folder or a predictor) and its env."""

    source: Any  # str (run folder) or a Predictor
    env_id: str
    env_kwargs: dict[str, Any]
    allow_import: bool = False  # env_id was named by the caller, so "module:EnvId" may import (make_eval_env)


class _Worker:
    """Runs tasks; loads each run folder once (lazily) and keeps it."""

    def __init__(
        self,
        jobs: Sequence[ModelJob],
        seed: int,
        perturbation_seed: int,
        n_envs: int,
        deterministic: bool,
        predictors: Mapping[int, Any] | None = None,
    ):
        self.jobs = list(jobs)
        self.seed, self.perturbation_seed = seed, perturbation_seed
        self.n_envs, self.deterministic = n_envs, deterministic
        self._predictors: dict[int, Any] = dict(predictors or {})

    def predictor(self, index: int) -> Any:
        if index not in self._predictors:
            source = self.jobs[index].source
            if isinstance(source, str):
                from ncp_control.agents.runs.load import load_run

                self._predictors[index] = load_run(source).predictor
            else:
                self._predictors[index] = source
        return self._predictors[index]

    def run(self, task: Task) -> dict[str, Any]:
        """Evaluate one block of episodes; returns :func:`ncp_control.agents.evaluation.episodes.evaluate`'s dict
        or ``{"error": ...}``."""
        from ncp_control.agents.evaluation.episodes import evaluate

        job = self.jobs[task.model]
        spec = task.condition.spec  # None exactly when unperturbed
        wrappers = (
            () if spec is None else (functools.partial(make_perturbation, spec=spec, seed=self.perturbation_seed),)
        )
        try:
            return evaluate(
                self.predictor(task.model),
                job.env_id,
                task.count,
                self.seed + task.start,
                env_kwargs=job.env_kwargs,
                wrappers=wrappers,
                n_envs=self.n_envs,
                deterministic=self.deterministic,
                allow_import=job.allow_import,
            )
        except Exception as error:  # reported per model; the other models go on
            return {"error": f"{type(error).__name__}: {error}"}


_WORKER: _Worker | None = None


def _init_worker(jobs, seed, perturbation_seed, n_envs, deterministic) -> None:
    global _WORKER
    import torch

    torch.set_num_threads(1)
    _WORKER = _Worker(jobs, seed, perturbation_seed, n_envs, deterministic)


def _run_in_worker(task: Task) -> dict[str, Any]:
    if _WORKER is None:
        raise RuntimeError("worker not initialised")
    return _WORKER.run(task)


def run_tasks(
    tasks: Sequence[Task],
    jobs: Sequence[ModelJob],
    predictors: Mapping[int, Any],
    on_result: Callable[[Task, dict[str, Any]], None],
    *,
    seed: int,
    perturbation_seed: int,
    n_envs: int,
    deterministic: bool,
    processes: int,
    start_method: str,
) -> None:
    """Run every task and call ``on_result(task, outcome)`` as each one finishes.

    With ``processes == 1`` (or a single task) the tasks run here, in order, on the ``predictors`` already loaded
    (index into ``jobs`` -> predictor), with one torch thread; otherwise in a pool of ``min(processes, tasks)``
    worker processes started with ``start_method``, each loading the run folders itself, in completion order.
    An outcome is :func:`ncp_control.agents.evaluation.episodes.evaluate`'s dict or ``{"error": ...}``.
    """
    if processes == 1 or len(tasks) <= 1:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in the workers: results must not depend on where a task ran
        try:
            worker = _Worker(jobs, seed, perturbation_seed, n_envs, deterministic, predictors)
            for task in tasks:
                on_result(task, worker.run(task))
        finally:
            torch.set_num_threads(threads)
        return
    context = multiprocessing.get_context(start_method)
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=min(processes, len(tasks)),
        mp_context=context,
        initializer=_init_worker,
        initargs=(jobs, seed, perturbation_seed, n_envs, deterministic),
    ) as pool:
        futures = {pool.submit(_run_in_worker, task): task for task in tasks}
        for future in concurrent.futures.as_completed(futures):
            on_result(futures[future], future.result())
