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

Statistics (:func:`mean_confidence_interval`, :func:`wilson_interval`)
    Mean return: Student-t interval on the mean over episodes, ``mean +- t_{(1+c)/2, n-1} * s / sqrt(n)`` with
    the sample standard deviation ``s`` (ddof 1); NaN bounds for one episode. Crash rate: Wilson score interval.
    A crash is an episode that ends by termination without ``info["is_success"]`` (lane keeping: leaving the
    road); completion is ``is_success`` at the end (lane-keeping envs only).
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import functools
import io
import json
import math
import multiprocessing
import os
import pickle
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

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

CI_METHOD = "student-t interval on the mean return over episodes; Wilson score interval on the crash rate"

StartMethod = Literal["spawn", "forkserver"]
_START_METHODS = ("spawn", "forkserver")


# --------------------------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------------------------


def t_quantile(probability: float, df: int) -> float:
    """The ``probability`` quantile of Student's t distribution with ``df`` degrees of freedom
    (``scipy.stats.t.ppf``). Example: ``t_quantile(0.975, 4) = 2.776445...``."""
    from scipy import stats

    if isinstance(df, bool) or not isinstance(df, (int, np.integer)) or df < 1:
        raise ValueError(f"df must be a positive integer, got {df!r}")
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability must be in (0, 1), got {probability}")
    return float(stats.t.ppf(probability, int(df)))


def _check_confidence(confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be a number in (0, 1), e.g. 0.95; got {confidence!r}")
    return float(confidence)


def mean_confidence_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` (shape (n,)) and its Student-t confidence interval: ``(mean, low, high)``.

    ``low, high = mean -+ t_{(1 + confidence) / 2, n - 1} * s / sqrt(n)``, ``s`` the sample standard deviation
    (ddof 1). With one value the bounds are NaN (no spread to estimate).
    """
    confidence = _check_confidence(confidence)
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("mean_confidence_interval needs at least one value")
    mean = float(x.mean())
    if x.size == 1:
        return mean, math.nan, math.nan
    half = t_quantile(0.5 + confidence / 2.0, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` for a binomial proportion ``successes / trials``
    (``scipy.stats.binomtest(successes, trials).proportion_ci(confidence, method="wilson")``); unlike the normal
    approximation it stays inside [0, 1] and is not degenerate at 0 or n successes."""
    from scipy import stats

    confidence = _check_confidence(confidence)
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got {successes}/{trials}")
    interval = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


# --------------------------------------------------------------------------------------------------------------
# Conditions, models, results
# --------------------------------------------------------------------------------------------------------------


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


def parse_sweeps(perturbations: Sequence[str]) -> list[tuple[str, tuple[float | int, ...]]]:
    """Parse sweep specs ``"name:l1,l2,..."`` (see :func:`ncp_control.envs.perturbations.parse_sweep`).

    Raises:
        ValueError: an unknown name or malformed level (the message lists the valid names and the format), an
            empty list, or the same perturbation named twice.
    """
    if isinstance(perturbations, str):
        raise TypeError(f"perturbations must be a list of sweep specs, got the str {perturbations!r}; wrap it in a list")
    sweeps = [parse_sweep(spec) for spec in perturbations]
    if not sweeps:
        raise ValueError("give at least one perturbation sweep, e.g. 'pixel_noise:0,0.316,0.447,0.548'; "
                         f"valid names: {', '.join(PERTURBATIONS)}")
    names = [name for name, _ in sweeps]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"each perturbation may be swept once; repeated: {repeated} (list all levels in one spec)")
    return sweeps


@dataclasses.dataclass
class Row:
    """Per-episode values and summary of one model under one perturbation level.

    Per-episode lists (episode order, episode ``i`` reset with seed ``seed + i``): ``returns``, ``lengths``,
    ``crashes``; for lane-keeping envs also ``successes``, ``abs_lateral_m`` (mean |lateral offset| of the
    episode) and ``distances_m`` (else None).
    """

    model: str
    perturbation: str
    level: float | int
    returns: list[float]
    lengths: list[int]
    crashes: list[bool]
    successes: list[bool] | None
    abs_lateral_m: list[float] | None
    distances_m: list[float] | None
    confidence: float = 0.95

    @property
    def episodes(self) -> int:
        return len(self.returns)

    def summary(self) -> dict[str, Any]:
        """Mean return with its t interval, crash rate with its Wilson interval, and lane-keeping metrics.

        ``mean_abs_lateral_m`` is the mean over all steps of all episodes (episodes weighted by their length);
        ``departures_per_km`` counts crashes per kilometre driven in total; completion and lateral metrics are
        None outside lane keeping.
        """
        mean, low, high = mean_confidence_interval(self.returns, self.confidence)
        crashes = int(sum(self.crashes))
        crash_low, crash_high = wilson_interval(crashes, self.episodes, self.confidence)
        out: dict[str, Any] = {
            "model": self.model, "perturbation": self.perturbation, "level": self.level, "episodes": self.episodes,
            "mean_return": mean, "return_ci_low": low, "return_ci_high": high,
            "std_return": float(np.std(self.returns, ddof=1)) if self.episodes > 1 else math.nan,
            "mean_length": float(np.mean(self.lengths)),
            "crash_rate": crashes / self.episodes, "crash_ci_low": crash_low, "crash_ci_high": crash_high,
            "completion_rate": None, "mean_abs_lateral_m": None, "departures_per_km": None,
        }
        if self.successes is not None:
            lengths = np.asarray(self.lengths, dtype=np.float64)
            km = float(np.sum(self.distances_m)) / 1000.0
            out.update(
                completion_rate=float(np.mean(self.successes)),
                # step-weighted: sum over episodes of (episode mean * steps) / all steps
                mean_abs_lateral_m=float(np.sum(np.asarray(self.abs_lateral_m) * lengths) / max(lengths.sum(), 1.0)),
                departures_per_km=crashes / km if km > 0 else (math.inf if crashes else 0.0),
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "returns": self.returns, "lengths": self.lengths, "crashes": self.crashes,
                "successes": self.successes, "abs_lateral_m": self.abs_lateral_m, "distances_m": self.distances_m}


_SUMMARY_COLUMNS = ("model", "perturbation", "level", "episodes", "mean_return", "return_ci_low", "return_ci_high",
                    "std_return", "mean_length", "crash_rate", "crash_ci_low", "crash_ci_high", "completion_rate",
                    "mean_abs_lateral_m", "departures_per_km")


@dataclasses.dataclass
class RobustnessResults:
    """What :func:`robustness_sweep` returns: one :class:`Row` per model x perturbation x level, plus the setup.

    ``failures`` maps a model label to the reason it could not be evaluated (it has no rows); ``models`` maps each
    label to its source (run folder or predictor class), env id and env kwargs.
    """

    env_id: str | None
    episodes: int
    seed: int
    perturbation_seed: int
    sweeps: list[tuple[str, tuple[float | int, ...]]]
    rows: list[Row]
    models: dict[str, dict[str, Any]]
    failures: dict[str, str]
    confidence: float = 0.95
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        """Labels of the models that were evaluated, in the order given."""
        return [label for label in self.models if label not in self.failures]

    @property
    def env_label(self) -> str:
        """The env id for titles: the sweep's ``env_id``, else the runs' own ids (distinct, in model order)."""
        if self.env_id is not None:
            return self.env_id
        ids = dict.fromkeys(str(m["env_id"]) for m in self.models.values() if m.get("env_id"))
        return ", ".join(ids) or "each run's own env"

    def row(self, model: str, perturbation: str, level: float | int) -> Row:
        for r in self.rows:
            if r.model == model and r.perturbation == perturbation and r.level == level:
                return r
        raise KeyError(f"no row for {model!r} {perturbation}:{level}")

    def summaries(self) -> list[dict[str, Any]]:
        return [r.summary() for r in self.rows]

    # ---------------------------------------------------------------------------------------------- writers

    def table(self) -> str:
        """Markdown table: one line per model x perturbation x level (the models side by side per level)."""
        lane = any(r.successes is not None for r in self.rows)
        pct = int(round(100 * self.confidence))
        head = ["perturbation", "level", "model", f"mean return [{pct}% CI]", "crash rate"]
        if lane:
            head += ["completion", "mean abs lateral (m)"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        order = {label: i for i, label in enumerate(self.models)}
        for name, levels in self.sweeps:
            for level in levels:
                for r in sorted((r for r in self.rows if r.perturbation == name and r.level == level),
                                key=lambda r: order[r.model]):
                    s = r.summary()
                    ci = "" if math.isnan(s["return_ci_low"]) else f" [{s['return_ci_low']:.2f}, {s['return_ci_high']:.2f}]"
                    cells = [name, f"{level:g}", r.model, f"{s['mean_return']:.2f}{ci}",
                             f"{s['crash_rate']:.0%} ({sum(r.crashes)}/{r.episodes})"]
                    if lane:
                        cells += ["-" if s["completion_rate"] is None else f"{s['completion_rate']:.0%}",
                                  "-" if s["mean_abs_lateral_m"] is None else f"{s['mean_abs_lateral_m']:.3f}"]
                    lines.append("| " + " | ".join(cells) + " |")
        for label, reason in self.failures.items():
            lines.append(f"\nNot evaluated: {label}: {reason}")
        return "\n".join(lines)

    def csv(self) -> str:
        """CSV with one line per row and the summary columns (per-episode values are in the JSON)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=_SUMMARY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for s in self.summaries():
            writer.writerow({k: "" if s[k] is None else s[k] for k in _SUMMARY_COLUMNS})
        return buffer.getvalue()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (setup, failures, and every row with its per-episode values); see :meth:`from_dict`."""
        return {
            "env_id": self.env_id, "episodes": self.episodes, "seed": self.seed,
            "perturbation_seed": self.perturbation_seed, "confidence": self.confidence, "ci_method": CI_METHOD,
            "sweeps": [[name, list(levels)] for name, levels in self.sweeps],
            "models": self.models, "failures": self.failures, "settings": self.settings,
            "rows": [r.to_dict() for r in self.rows],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RobustnessResults:
        """Inverse of :meth:`to_dict` (e.g. ``RobustnessResults.from_dict(json.load(open(path)))``)."""
        fields = {f.name for f in dataclasses.fields(Row)}
        rows = [Row(**{k: v for k, v in r.items() if k in fields}) for r in data["rows"]]
        return cls(
            env_id=data["env_id"], episodes=data["episodes"], seed=data["seed"],
            perturbation_seed=data["perturbation_seed"],
            sweeps=[(name, tuple(levels)) for name, levels in data["sweeps"]], rows=rows,
            models=dict(data["models"]), failures=dict(data["failures"]), confidence=data["confidence"],
            settings=dict(data.get("settings", {})),
        )

    def plot(self, path: str | os.PathLike | None = None, *, title: str | None = None):
        """One column of panels per perturbation, one line per model with its interval band.

        Top row: mean return with its t interval; bottom row: crash rate with its Wilson interval. Saves to
        ``path`` when given; returns the matplotlib figure.
        """
        import matplotlib.pyplot as plt

        n = len(self.sweeps)
        fig, axes = plt.subplots(2, n, figsize=(4.2 * n, 6.4), squeeze=False, sharex="col")
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for j, (name, levels) in enumerate(self.sweeps):
            top, bottom = axes[0, j], axes[1, j]
            for k, label in enumerate(self.labels):
                color = colors[k % len(colors)]
                rows = [self.row(label, name, level) for level in levels]
                s = [r.summary() for r in rows]
                x = np.asarray(levels, dtype=float)
                top.plot(x, [v["mean_return"] for v in s], "o-", color=color, label=label)
                top.fill_between(x, [v["return_ci_low"] for v in s], [v["return_ci_high"] for v in s],
                                 color=color, alpha=0.2)
                bottom.plot(x, [v["crash_rate"] for v in s], "o-", color=color, label=label)
                bottom.fill_between(x, [v["crash_ci_low"] for v in s], [v["crash_ci_high"] for v in s],
                                    color=color, alpha=0.2)
            top.set_title(name)
            top.set_ylabel("mean return")
            bottom.set_ylabel("crash rate")
            bottom.set_ylim(-0.03, 1.03)
            bottom.set_xlabel(f"{name} level ({PERTURBATIONS[name].level_arg})")
            top.grid(alpha=0.3)
            bottom.grid(alpha=0.3)
        axes[0, 0].legend(fontsize=8)
        pct = int(round(100 * self.confidence))
        fig.suptitle(title or f"{self.env_label}: {self.episodes} episodes per point, bands = {pct}% intervals")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig

    def write(self, out: str | os.PathLike, *, stem: str = "robustness", plot: bool = True) -> dict[str, Path]:
        """Write ``STEM.md`` (table), ``STEM.csv``, ``STEM.json`` and ``STEM.png`` (plot) into ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"table": out / f"{stem}.md", "csv": out / f"{stem}.csv", "json": out / f"{stem}.json"}
        paths["table"].write_text(self.table() + "\n")
        paths["csv"].write_text(self.csv())
        paths["json"].write_text(json.dumps(self.to_dict(), indent=1, default=_json_default) + "\n")
        if plot and self.labels:
            import matplotlib.pyplot as plt

            paths["plot"] = out / f"{stem}.png"
            plt.close(self.plot(paths["plot"]))
        return paths


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {value!r}")


# --------------------------------------------------------------------------------------------------------------
# Workers
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Task:
    model: int  # index into the worker's model list
    condition: Condition
    start: int  # first episode index
    count: int  # number of episodes


@dataclasses.dataclass(frozen=True)
class _ModelJob:
    """What a worker needs to evaluate one model: its source (a run folder or a predictor) and its env."""

    source: Any  # str (run folder) or a Predictor
    env_id: str
    env_kwargs: dict[str, Any]
    allow_import: bool = False  # env_id was named by the caller, so "module:EnvId" may import (make_eval_env)


class _Worker:
    """Runs tasks; loads each run folder once (lazily) and keeps it."""

    def __init__(self, jobs: Sequence[_ModelJob], seed: int, perturbation_seed: int, n_envs: int,
                 deterministic: bool, predictors: Mapping[int, Any] | None = None):
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

    def run(self, task: _Task) -> dict[str, Any]:
        """Evaluate one block of episodes; returns :func:`ncp_control.agents.evaluation.episodes.evaluate`'s dict or ``{"error": ...}``."""
        from ncp_control.agents.evaluation.episodes import evaluate

        job = self.jobs[task.model]
        wrappers = () if task.condition.name is None else (
            functools.partial(make_perturbation, spec=task.condition.spec, seed=self.perturbation_seed),)
        try:
            return evaluate(self.predictor(task.model), job.env_id, task.count, self.seed + task.start,
                            env_kwargs=job.env_kwargs, wrappers=wrappers, n_envs=self.n_envs,
                            deterministic=self.deterministic, allow_import=job.allow_import)
        except Exception as error:  # reported per model; the other models go on
            return {"error": f"{type(error).__name__}: {error}"}


_WORKER: _Worker | None = None


def _init_worker(jobs, seed, perturbation_seed, n_envs, deterministic) -> None:
    global _WORKER
    import torch

    torch.set_num_threads(1)
    _WORKER = _Worker(jobs, seed, perturbation_seed, n_envs, deterministic)


def _run_in_worker(task: _Task) -> dict[str, Any]:
    if _WORKER is None:
        raise RuntimeError("worker not initialised")
    return _WORKER.run(task)


# --------------------------------------------------------------------------------------------------------------
# The sweep
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
        pairs = [(f"{label}#{i}" if labels.count(label) > 1 else label, source)
                 for i, (label, source) in enumerate(pairs)]
    if not pairs:
        raise ValueError("give at least one model (a run folder or a Predictor)")
    return pairs


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _prepare_model(label: str, source: Any, env_id: str | None, env_kwargs: Mapping[str, Any] | None,
                   processes: int) -> tuple[_ModelJob, Any, dict[str, Any]]:
    """Load/check one model in the main process: returns its job, its predictor and its description.

    Raises ``ValueError`` (reported for this model) when it cannot be loaded or does not fit the env.
    """
    from ncp_control.agents.evaluation.episodes import check_spaces_fit, make_eval_env

    if isinstance(source, (str, os.PathLike)):
        from ncp_control.agents.runs.load import load_run

        loaded = load_run(source)
        predictor = loaded.predictor
        own_env = env_id is None or env_id.rpartition(":")[2] == loaded.env_id
        job_env = env_id or loaded.env_id
        kwargs = dict(env_kwargs) if env_kwargs is not None else (loaded.env_kwargs if own_env else {})
        job = _ModelJob(str(Path(source)), job_env, kwargs, allow_import=env_id is not None)
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
                raise ValueError(f"{label}: cannot send this predictor to worker processes ({error}); "
                                 "use processes=1 or pass a run folder") from error
        predictor = source
        job = _ModelJob(source, env_id, dict(env_kwargs or {}), allow_import=True)
        description = {"predictor": f"{type(source).__module__}.{type(source).__qualname__}"}
    env = make_eval_env(job.env_id, job.env_kwargs, getattr(predictor, "env_wrappers", ()),
                        allow_import=job.allow_import)
    try:
        check_spaces_fit(predictor, env)
    finally:
        env.close()
    description.update(env_id=job.env_id, env_kwargs=job.env_kwargs)
    return job, predictor, description


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
    sweeps = parse_sweeps(perturbations)
    episodes = _check_positive_int("episodes", episodes)
    n_envs = _check_positive_int("n_envs", n_envs)
    processes = _check_positive_int("processes", processes)
    block_episodes = _check_positive_int("block_episodes", block_episodes)
    confidence = _check_confidence(confidence)
    if start_method not in _START_METHODS:
        raise ValueError(f"start_method must be one of {_START_METHODS}, got {start_method!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    seed = int(seed)
    perturbation_seed = seed if perturbation_seed is None else int(perturbation_seed)
    say = progress or (lambda line: None)

    # Load and check every model here, so that a broken one is reported before any work starts.
    labelled = _label_models(models)
    jobs: list[_ModelJob] = []
    predictors: dict[int, Any] = {}
    descriptions: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    job_of: dict[str, int] = {}
    for label, source in labelled:
        try:
            job, predictor, description = _prepare_model(label, source, env_id, env_kwargs, processes)
        except Exception as error:
            failures[label] = f"{type(error).__name__}: {error}"
            descriptions[label] = {"source": str(source)}
            say(f"{label}: cannot be evaluated: {failures[label]}")
            continue
        job_of[label] = len(jobs)
        predictors[len(jobs)] = predictor
        jobs.append(job)
        descriptions[label] = description

    # Conditions: each (name, level), with all neutral levels mapped to one unperturbed condition if shared.
    def condition_of(name: str, level: float | int) -> Condition:
        c = Condition(name, level)
        return Condition(None) if share_neutral and c.is_neutral else c

    conditions = list(dict.fromkeys(condition_of(name, level) for name, levels in sweeps for level in levels))
    tasks = [_Task(job_of[label], c, start, min(block_episodes, episodes - start))
             for label in job_of for c in conditions for start in range(0, episodes, block_episodes)]

    outcomes: dict[_Task, dict[str, Any]] = {}
    label_of = {index: label for label, index in job_of.items()}
    t0 = time.perf_counter()

    def record(task: _Task, outcome: dict[str, Any]) -> None:
        outcomes[task] = outcome
        label = label_of[task.model]
        what = "unperturbed" if task.condition.name is None else task.condition.spec
        status = f"error: {outcome['error']}" if "error" in outcome else f"mean return {outcome['mean_return']:.2f}"
        say(f"[{len(outcomes)}/{len(tasks)} {time.perf_counter() - t0:.0f}s] {label} {what} "
            f"episodes {task.start}-{task.start + task.count - 1}: {status}")

    if processes == 1 or len(tasks) <= 1:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in the workers: results must not depend on where a task ran
        try:
            worker = _Worker(jobs, seed, perturbation_seed, n_envs, deterministic, predictors)
            for task in tasks:
                record(task, worker.run(task))
        finally:
            torch.set_num_threads(threads)
    else:
        context = multiprocessing.get_context(start_method)
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=min(processes, len(tasks)), mp_context=context, initializer=_init_worker,
            initargs=(jobs, seed, perturbation_seed, n_envs, deterministic),
        ) as pool:
            futures = {pool.submit(_run_in_worker, task): task for task in tasks}
            for future in concurrent.futures.as_completed(futures):
                record(futures[future], future.result())

    # Reassemble per-episode values in episode order.
    rows: list[Row] = []
    for label, index in job_of.items():
        errors = [o["error"] for t, o in outcomes.items() if t.model == index and "error" in o]
        if errors:
            failures[label] = errors[0]
            continue
        for name, levels in sweeps:
            for level in levels:
                blocks = sorted((t for t in tasks if t.model == index and t.condition == condition_of(name, level)),
                                key=lambda t: t.start)
                parts = [outcomes[t] for t in blocks]
                lane = all("successes" in p for p in parts)

                def gather(key: str) -> list:
                    return [v for p in parts for v in p[key]]

                rows.append(Row(
                    model=label, perturbation=name, level=level, returns=gather("returns"),
                    lengths=gather("lengths"), crashes=gather("crashes"),
                    successes=gather("successes") if lane else None,
                    abs_lateral_m=gather("abs_lateral_m") if lane else None,
                    distances_m=gather("distances_m") if lane else None, confidence=confidence,
                ))
    models_out = {label: descriptions[label] for label, _ in labelled}
    return RobustnessResults(
        env_id=env_id, episodes=episodes, seed=seed, perturbation_seed=perturbation_seed, sweeps=sweeps, rows=rows,
        models=models_out, failures=failures, confidence=confidence,
        settings={"n_envs": n_envs, "processes": processes, "block_episodes": block_episodes,
                  "share_neutral": share_neutral, "deterministic": deterministic, "start_method": start_method,
                  "seconds": time.perf_counter() - t0},
    )
