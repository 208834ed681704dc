"""Robustness sweeps: several policies side by side under named perturbations, with common random numbers.

:func:`robustness_sweep` evaluates every model at every level of every perturbation sweep (``"pixel_noise:0,0.1"``,
see :mod:`ncp_control.envs.perturbations`) on the same episodes, and returns a :class:`RobustnessResults` that writes a
Markdown table, CSV, JSON and a plot::

    from ncp_control.agents.evaluation.robustness import robustness_sweep
    results = robustness_sweep(["runs/ncp", "runs/lstm"], "LaneKeeping-v0",
                               ["pixel_noise:0,0.316,0.447,0.548", "action_delay:0,2,4"],
                               episodes=50, seed=1_000_000, processes=2)
    print(results.table())
    results.write("out/")          # robustness.md, robustness.csv, robustness.json, robustness.png

Common random numbers
    Episode ``i`` is reset with seed ``seed + i`` (the same road for every model) and every perturbation wrapper
    gets the constructor seed ``perturbation_seed`` (default ``seed``); the wrappers reseed themselves from
    ``(perturbation_seed, seed + i)`` at each reset (docs/perturbations.md), so at step ``t`` of episode ``i``
    every model meets the same noise draw, at every level of a sweep (only the scale changes).

Parallelism and reproducibility
    The work is cut into tasks of ``block_episodes`` consecutive episodes of one model under one condition; each
    task calls :func:`ncp_control.agents.evaluation.episodes.evaluate` with ``n_envs`` environment copies. ``processes > 1`` runs the
    tasks in a pool of worker processes (``spawn`` or ``forkserver``: no forked torch state); each worker loads
    every run folder itself (a predictor object is pickled to it) and uses one torch thread. The cut does not
    depend on ``processes``, and per-episode values are reassembled in episode order, so the results are
    identical whatever the number of processes. ``n_envs`` and ``block_episodes`` decide how episodes are
    batched through the model and can change results at the level of floating-point rounding.

Neutral levels
    At its neutral level (0 for all but ``irregular_time``, whose neutral level is 1) every wrapper is the
    identity (tested in ``tests/test_perturbations.py``). With ``share_neutral=True`` (default) the neutral
    condition is evaluated once per model, without wrappers, and its numbers are reported for every sweep that
    contains the neutral level; ``share_neutral=False`` evaluates each with its wrapper.

Statistics (:mod:`ncp_control.agents.evaluation.intervals`)
    Mean return: Student-t interval on the mean over episodes, ``mean +- t_{(1+c)/2, n-1} * s / sqrt(n)`` with
    the sample standard deviation ``s`` (ddof 1); NaN bounds for one episode. Crash rate: Wilson score interval.
    A crash is an episode that ends by termination without ``info["is_success"]`` (lane keeping: leaving the
    road); completion is ``is_success`` at the end (lane-keeping envs only).

Where things live
    This module validates the arguments, loads the models and plans and runs the sweep;
    :mod:`~ncp_control.agents.evaluation.robustness_workers` runs the tasks (here or in worker processes),
    :mod:`~ncp_control.agents.evaluation.robustness_results` holds and writes the results, and
    :mod:`~ncp_control.agents.evaluation.intervals` computes the intervals. The public names of all three can
    still be imported from here.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from ncp_control import checks
from ncp_control.agents.evaluation.intervals import (
    check_confidence,
    mean_confidence_interval,
    t_quantile,
    wilson_interval,
)
from ncp_control.agents.evaluation.robustness_results import CI_METHOD, RobustnessResults, Row
from ncp_control.agents.evaluation.robustness_workers import Condition, ModelJob, Task, run_tasks
from ncp_control.envs.perturbations import PERTURBATIONS, make_perturbation, parse_sweep

__all__ = [
    "Condition",
    "Row",
    "RobustnessResults",
    "robustness_sweep",
    "parse_sweeps",
    "t_quantile",
    "mean_confidence_interval",
    "wilson_interval",
    "CI_METHOD",
]

StartMethod = Literal["spawn", "forkserver"]
_START_METHODS = ("spawn", "forkserver")


def parse_sweeps(perturbations: Sequence[str]) -> list[tuple[str, tuple[float | int, ...]]]:
    """Parse sweep specs ``"name:l1,l2,..."`` (see :func:`ncp_control.envs.perturbations.parse_sweep`).

    Raises:
        ValueError: an unknown name or malformed level (the message lists the valid names and the format), an
            empty list, or the same perturbation named twice.
    """
    if isinstance(perturbations, str):
        raise TypeError(
            f"perturbations must be a list of sweep specs, got the str {perturbations!r}; wrap it in a list"
        )
    sweeps = [parse_sweep(spec) for spec in perturbations]
    if not sweeps:
        raise ValueError(
            "give at least one perturbation sweep, e.g. 'pixel_noise:0,0.316,0.447,0.548'; "
            f"valid names: {', '.join(PERTURBATIONS)}"
        )
    names = [name for name, _ in sweeps]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"each perturbation may be swept once; repeated: {repeated} (list all levels in one spec)")
    return sweeps


# --------------------------------------------------------------------------------------------------------------
# Loading the models
# --------------------------------------------------------------------------------------------------------------


def _label_models(models: Mapping[str, Any] | Sequence[Any]) -> list[tuple[str, Any]]:
    if isinstance(models, Mapping):
        pairs = [(str(label), source) for label, source in models.items()]
    elif isinstance(models, (str, os.PathLike)):
        raise TypeError(f"models must be a list of run folders / predictors or a dict label -> model, got {models!r}")
    else:
        pairs = []
        for source in models:
            if isinstance(source, (str, os.PathLike)):
                label = Path(source).name or str(source)
            else:
                label = type(source).__name__
            pairs.append((label, source))
        labels = [label for label, _ in pairs]
        pairs = [
            (f"{label}#{i}" if labels.count(label) > 1 else label, source) for i, (label, source) in enumerate(pairs)
        ]
    if not pairs:
        raise ValueError("give at least one model (a run folder or a Predictor)")
    return pairs


def _prepare_model(
    label: str,
    source: Any,
    env_id: str | None,
    env_kwargs: Mapping[str, Any] | None,
    processes: int,
    sweeps: Sequence[tuple[str, tuple[float | int, ...]]] = (),
) -> tuple[ModelJob, Any, dict[str, Any]]:
    """Load/check one model in the main process: returns its job, its predictor and its description.

    Raises ``ValueError`` (reported for this model) when it cannot be loaded, does not fit the env, or the env
    does not take one of the ``sweeps`` (an image perturbation on a vector env, a lane-keeping dynamics parameter
    on a MuJoCo task).
    """
    from ncp_control.agents.evaluation.episodes import check_spaces_fit, make_eval_env

    if isinstance(source, (str, os.PathLike)):
        from ncp_control.agents.runs.load import load_run

        loaded = load_run(source)
        predictor = loaded.predictor
        own_env = env_id is None or env_id.rpartition(":")[2] == loaded.env_id
        job_env = env_id or loaded.env_id
        kwargs = dict(env_kwargs) if env_kwargs is not None else (loaded.env_kwargs if own_env else {})
        job = ModelJob(str(Path(source)), job_env, kwargs, allow_import=env_id is not None)
        description = {"run_dir": str(source), "policy": loaded.config.get("policy"), "kind": loaded.config["kind"]}
    else:
        if not callable(getattr(source, "predict", None)):
            raise TypeError(f"{label}: a model must be a run folder or a Predictor with .predict, got {source!r}")
        if env_id is None:
            raise ValueError(f"{label}: a Predictor object needs an explicit env_id")
        if processes > 1:
            try:
                pickle.dumps(source)
            except Exception as error:
                raise ValueError(
                    f"{label}: cannot send this predictor to worker processes ({error}); "
                    "use processes=1 or pass a run folder"
                ) from error
        predictor = source
        job = ModelJob(source, env_id, dict(env_kwargs or {}), allow_import=True)
        description = {"predictor": f"{type(source).__module__}.{type(source).__qualname__}"}
    env = make_eval_env(
        job.env_id, job.env_kwargs, getattr(predictor, "env_wrappers", ()), allow_import=job.allow_import
    )
    try:
        check_spaces_fit(predictor, env)
        for name, levels in sweeps:
            for level in levels:
                make_perturbation(env, f"{name}:{level}", seed=0)  # builds the wrapper: refuses what does not fit
    finally:
        env.close()
    description.update(env_id=job.env_id, env_kwargs=job.env_kwargs)
    return job, predictor, description


@dataclasses.dataclass
class _LoadedModels:
    """The models that could be loaded (``jobs``, their ``predictors`` and each label's index ``job_of``), every
    model's description, and the reason each of the others failed."""

    jobs: list[ModelJob] = dataclasses.field(default_factory=list)
    predictors: dict[int, Any] = dataclasses.field(default_factory=dict)
    job_of: dict[str, int] = dataclasses.field(default_factory=dict)
    descriptions: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    failures: dict[str, str] = dataclasses.field(default_factory=dict)


def _load_models(
    labelled: Sequence[tuple[str, Any]],
    env_id: str | None,
    env_kwargs: Mapping[str, Any] | None,
    processes: int,
    say: Callable[[str], None],
    sweeps: Sequence[tuple[str, tuple[float | int, ...]]] = (),
) -> _LoadedModels:
    """Load and check every model here, so that a broken one is reported before any work starts."""
    models = _LoadedModels()
    for label, source in labelled:
        try:
            job, predictor, description = _prepare_model(label, source, env_id, env_kwargs, processes, sweeps)
        except Exception as error:
            models.failures[label] = f"{type(error).__name__}: {error}"
            models.descriptions[label] = {"source": str(source)}
            say(f"{label}: cannot be evaluated: {models.failures[label]}")
            continue
        models.job_of[label] = len(models.jobs)
        models.predictors[len(models.jobs)] = predictor
        models.jobs.append(job)
        models.descriptions[label] = description
    return models


# --------------------------------------------------------------------------------------------------------------
# Planning, running, reassembling
# --------------------------------------------------------------------------------------------------------------


def _condition_of(name: str, level: float | int, share_neutral: bool) -> Condition:
    """The condition that evaluates ``name`` at ``level``: all neutral levels map to one unperturbed condition
    when ``share_neutral``."""
    condition = Condition(name, level)
    return Condition(None) if share_neutral and condition.is_neutral else condition


def _plan_tasks(
    job_of: Mapping[str, int],
    sweeps: Sequence[tuple[str, tuple[float | int, ...]]],
    share_neutral: bool,
    episodes: int,
    block_episodes: int,
) -> list[Task]:
    """Every model x distinct condition x block of ``block_episodes`` episodes (the last block may be shorter)."""
    conditions = list(
        dict.fromkeys(_condition_of(name, level, share_neutral) for name, levels in sweeps for level in levels)
    )
    return [
        Task(job_of[label], c, start, min(block_episodes, episodes - start))
        for label in job_of
        for c in conditions
        for start in range(0, episodes, block_episodes)
    ]


def _run_and_report(
    tasks: Sequence[Task], models: _LoadedModels, say: Callable[[str], None], t0: float, **settings: Any
) -> dict[Task, dict[str, Any]]:
    """Run ``tasks`` (``settings``: :func:`run_tasks`'s keyword arguments) and say a line after each one."""
    outcomes: dict[Task, dict[str, Any]] = {}
    label_of = {index: label for label, index in models.job_of.items()}

    def record(task: Task, outcome: dict[str, Any]) -> None:
        outcomes[task] = outcome
        label = label_of[task.model]
        what = "unperturbed" if task.condition.name is None else task.condition.spec
        status = f"error: {outcome['error']}" if "error" in outcome else f"mean return {outcome['mean_return']:.2f}"
        say(
            f"[{len(outcomes)}/{len(tasks)} {time.perf_counter() - t0:.0f}s] {label} {what} "
            f"episodes {task.start}-{task.start + task.count - 1}: {status}"
        )

    run_tasks(tasks, models.jobs, models.predictors, record, **settings)
    return outcomes


def _assemble_rows(
    models: _LoadedModels,
    tasks: Sequence[Task],
    outcomes: Mapping[Task, dict[str, Any]],
    sweeps: Sequence[tuple[str, tuple[float | int, ...]]],
    share_neutral: bool,
    confidence: float,
) -> list[Row]:
    """One :class:`Row` per evaluated model x perturbation x level, per-episode values in episode order. A model
    with an error in any task gets no rows: its first error goes into ``models.failures``."""
    rows: list[Row] = []
    for label, index in models.job_of.items():
        errors = [o["error"] for t, o in outcomes.items() if t.model == index and "error" in o]
        if errors:
            models.failures[label] = errors[0]
            continue
        for name, levels in sweeps:
            for level in levels:
                condition = _condition_of(name, level, share_neutral)
                blocks = sorted(
                    (t for t in tasks if t.model == index and t.condition == condition), key=lambda t: t.start
                )
                rows.append(_gathered_row(label, name, level, [outcomes[t] for t in blocks], confidence))
    return rows


def _gathered_row(model: str, name: str, level: float | int, parts: Sequence[dict[str, Any]], confidence: float) -> Row:
    """The row of one model at one level from its blocks' outcomes ``parts`` (in episode order)."""
    lane = all("successes" in p for p in parts)

    def gather(key: str) -> list:
        return [v for p in parts for v in p[key]]

    return Row(
        model=model,
        perturbation=name,
        level=level,
        returns=gather("returns"),
        lengths=gather("lengths"),
        crashes=gather("crashes"),
        successes=gather("successes") if lane else None,
        abs_lateral_m=gather("abs_lateral_m") if lane else None,
        distances_m=gather("distances_m") if lane else None,
        confidence=confidence,
    )


# --------------------------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------------------------


def robustness_sweep(
    models: Mapping[str, Any] | Sequence[Any],
    env_id: str | None,
    perturbations: Sequence[str],
    episodes: int,
    seed: int,
    *,
    perturbation_seed: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    n_envs: int = 1,
    processes: int = 1,
    block_episodes: int = 10,
    share_neutral: bool = True,
    deterministic: bool = True,
    confidence: float = 0.95,
    start_method: StartMethod = "spawn",
    progress: Callable[[str], None] | None = None,
) -> RobustnessResults:
    """Evaluate every model at every level of every perturbation sweep on the same episodes.

    Args:
        models: run folders (``config.json`` from ``train-bc``/``train-ppo``) and/or Predictors (see
            :mod:`ncp_control.agents.evaluation.episodes`), as a list (labels: folder names / class names) or a dict label -> model.
        env_id: Gymnasium id (``"module:EnvId"`` accepted); None: each run's own env (Predictors need an id).
        perturbations: sweep specs ``"name:l1,l2,..."`` (names in :data:`ncp_control.envs.perturbations.PERTURBATIONS`).
        episodes: episodes per model and level; episode ``i`` is reset with seed ``seed + i``.
        seed: seed of the first episode (lane keeping: held-out roads start at
            ``ncp_control.agents.imitation.HELDOUT_SEED_START``).
        perturbation_seed: constructor seed of every perturbation wrapper (default ``seed``).
        env_kwargs: ``gym.make`` arguments for every model; None: each run's own training arguments when
            evaluated on its own env (e.g. its image size), else none.
        n_envs: environment copies batched through the model inside one task.
        processes: worker processes (1: run in this process).
        block_episodes: episodes per task (the unit of parallel work; does not depend on ``processes``).
        share_neutral: evaluate the neutral level once per model without wrappers (see the module docstring).
        deterministic: deterministic actions.
        confidence: level of the intervals (0.95).
        start_method: ``"spawn"`` or ``"forkserver"`` for ``processes > 1``.
        progress: called with a line of text after each finished task.

    Returns:
        :class:`RobustnessResults`. A model that cannot be loaded, does not fit the env, or fails during
        evaluation is listed in ``results.failures`` with the reason; the others are evaluated.

    Raises:
        ValueError: an unknown perturbation name or malformed level (the message lists the valid names), or a
            bad ``episodes``/``n_envs``/``processes``/``block_episodes``/``confidence``/``start_method``.
    """
    plan = _checked_plan(
        perturbations,
        episodes,
        seed,
        perturbation_seed,
        n_envs,
        processes,
        block_episodes,
        share_neutral,
        deterministic,
        confidence,
        start_method,
    )
    say = progress or (lambda line: None)
    return _sweep(models, env_id, env_kwargs, plan, say)


@dataclasses.dataclass(frozen=True)
class _SweepPlan:
    """The checked arguments of one :func:`robustness_sweep`."""

    sweeps: list[tuple[str, tuple[float | int, ...]]]
    episodes: int
    seed: int
    perturbation_seed: int
    n_envs: int
    processes: int
    block_episodes: int
    share_neutral: bool
    deterministic: bool
    confidence: float
    start_method: StartMethod

    def run_settings(self) -> dict[str, Any]:
        """:func:`run_tasks`'s keyword arguments."""
        return {
            "seed": self.seed,
            "perturbation_seed": self.perturbation_seed,
            "n_envs": self.n_envs,
            "deterministic": self.deterministic,
            "processes": self.processes,
            "start_method": self.start_method,
        }

    def settings(self, seconds: float) -> dict[str, Any]:
        """The settings the results report, with the sweep's duration."""
        return {
            "n_envs": self.n_envs,
            "processes": self.processes,
            "block_episodes": self.block_episodes,
            "share_neutral": self.share_neutral,
            "deterministic": self.deterministic,
            "start_method": self.start_method,
            "seconds": seconds,
        }


def _checked_plan(
    perturbations: Sequence[str],
    episodes: int,
    seed: int,
    perturbation_seed: int | None,
    n_envs: int,
    processes: int,
    block_episodes: int,
    share_neutral: bool,
    deterministic: bool,
    confidence: float,
    start_method: StartMethod,
) -> _SweepPlan:
    """Validate :func:`robustness_sweep`'s arguments (raises ``ValueError`` as documented there)."""
    sweeps = parse_sweeps(perturbations)
    episodes = checks.positive_int("episodes", episodes)
    n_envs = checks.positive_int("n_envs", n_envs)
    processes = checks.positive_int("processes", processes)
    block_episodes = checks.positive_int("block_episodes", block_episodes)
    confidence = check_confidence(confidence)
    checks.choice("start_method", start_method, _START_METHODS)
    # seeds: what checks.seed checks without optional or high, typed int
    seed = checks.non_negative_int("seed", seed)
    perturbation_seed = (
        seed if perturbation_seed is None else checks.non_negative_int("perturbation_seed", perturbation_seed)
    )
    return _SweepPlan(
        sweeps=sweeps,
        episodes=episodes,
        seed=seed,
        perturbation_seed=perturbation_seed,
        n_envs=n_envs,
        processes=processes,
        block_episodes=block_episodes,
        share_neutral=share_neutral,
        deterministic=deterministic,
        confidence=confidence,
        start_method=start_method,
    )


def _sweep(
    models: Mapping[str, Any] | Sequence[Any],
    env_id: str | None,
    env_kwargs: Mapping[str, Any] | None,
    plan: _SweepPlan,
    say: Callable[[str], None],
) -> RobustnessResults:
    """Load the models, plan the tasks, run them and gather the results of a checked sweep."""
    labelled = _label_models(models)
    wrapped = [  # the levels that will build a wrapper (a shared neutral level runs on the plain env)
        (name, tuple(lv for lv in levels if not (plan.share_neutral and lv == PERTURBATIONS[name].neutral)))
        for name, levels in plan.sweeps
    ]
    loaded = _load_models(labelled, env_id, env_kwargs, plan.processes, say, wrapped)
    tasks = _plan_tasks(loaded.job_of, plan.sweeps, plan.share_neutral, plan.episodes, plan.block_episodes)
    t0 = time.perf_counter()
    outcomes = _run_and_report(tasks, loaded, say, t0, **plan.run_settings())
    rows = _assemble_rows(loaded, tasks, outcomes, plan.sweeps, plan.share_neutral, plan.confidence)
    return RobustnessResults(
        env_id=env_id,
        episodes=plan.episodes,
        seed=plan.seed,
        perturbation_seed=plan.perturbation_seed,
        sweeps=plan.sweeps,
        rows=rows,
        models={label: loaded.descriptions[label] for label, _ in labelled},
        failures=loaded.failures,
        confidence=plan.confidence,
        settings=plan.settings(time.perf_counter() - t0),
    )
