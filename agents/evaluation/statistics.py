"""Statistics across runs from the field's library: rliable (Agarwal et al., "Deep Reinforcement Learning at the
Edge of the Statistical Precipice", NeurIPS 2021), not a re-implementation.

Scores are rliable's: ``{name: array (n_runs, n_tasks)}``; a 1-D array is one task (``(n_runs,)`` becomes
``(n_runs, 1)``). In a study the runs are the training seeds and each group (metric x condition) is one task; in a
robustness sweep, where each model is one run, the runs are the episodes.

- :func:`aggregate_intervals`: IQM (``rliable.metrics.aggregate_iqm``, the 25% trimmed mean) and mean
  (``aggregate_mean``) with their stratified-bootstrap intervals (``rliable.library.get_interval_estimates``).
- :func:`probability_of_improvement`, :func:`pairwise_improvement`: ``rliable.metrics.probability_of_improvement``
  with its interval (``get_interval_estimates`` on the pair), oriented so that it is the probability that ``a`` is
  *better* than ``b``: for a metric where lower is better (:data:`LOWER_IS_BETTER`) the scores are negated first.
- :func:`separated`: the verdict rule: ``a`` is better than ``b`` only where the interval of P(a better than b)
  lies wholly above 0.5.
- :func:`performance_profiles`, :func:`plot_performance_profiles`: score distributions (the fraction of runs
  scoring above each threshold) with bootstrap bands, as ``rliable.library.create_performance_profile`` computes
  them (the same profile function, ``rliable.library.score_distributions``, through ``get_interval_estimates``,
  because ``create_performance_profile`` takes no random state).
- :func:`sample_efficiency`: IQM against training steps with its interval, from evaluation curves
  (``(n_runs, n_tasks, n_steps)``).

Every bootstrap is percentile, ``reps`` replications (default :data:`REPS`) drawn with NumPy's generator seeded
with ``seed`` (default :data:`SEED`) per estimate: the same scores give the same intervals,
whatever else is computed. Percentile intervals of a mean or IQM stay within the scores' range (rates in [0, 1]).
With fewer than two runs there is no interval (None).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "REPS",
    "SEED",
    "CONFIDENCE",
    "LOWER_IS_BETTER",
    "METHOD",
    "higher_is_better",
    "score_matrix",
    "aggregate_intervals",
    "probability_of_improvement",
    "pairwise_improvement",
    "separated",
    "performance_profiles",
    "plot_performance_profiles",
    "sample_efficiency",
]

#: bootstrap replications of every interval (rliable's default for performance profiles and the paper's
#: probability-of-improvement intervals)
REPS = 2000
#: seed of the bootstrap's ``numpy.random.RandomState`` (a fresh one per estimate)
SEED = 0
CONFIDENCE = 0.95
#: metrics where a lower value is better; probabilities of improvement are oriented accordingly
LOWER_IS_BETTER = frozenset({"crash_rate", "mean_abs_lateral_m", "departures_per_km"})
METHOD = (
    f"rliable (Agarwal et al., NeurIPS 2021): IQM and mean with stratified-bootstrap percentile 95% "
    f"intervals, probability of improvement with its interval; {REPS} replications, seed {SEED}"
)


def higher_is_better(metric: str) -> bool:
    """False for the metrics of :data:`LOWER_IS_BETTER` (crash rate, |lateral offset|, departures per km)."""
    return metric not in LOWER_IS_BETTER


def score_matrix(scores: Any) -> np.ndarray:
    """``scores`` as a float array ``(n_runs, n_tasks, ...)``: a 1-D array becomes one task, ``(n_runs, 1)``."""
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"need at least one run's scores, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("scores must be finite")
    return x.reshape(-1, 1) if x.ndim == 1 else x


def _estimate(
    scores: Any, func: Callable[..., Any], reps: int, seed: int, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """rliable's ``get_interval_estimates`` on one entry (an array, or a list of arrays for a pair) with a fresh
    ``RandomState(seed)``: ``(point, interval)``, the interval of shape ``(2, ...)``."""
    from rliable import library

    # rliable 1.2's stratified bootstraps draw their indices from NumPy's global generator (np.random.choice), not
    # from the random_state they are given: seed the global one for the call and put its state back afterwards.
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            # arch >= 7 deprecates random_state in favour of a generator; rliable 1.2 passes random_state
            warnings.filterwarnings("ignore", message="random_state is deprecated", category=FutureWarning)
            points, intervals = library.get_interval_estimates(
                {"x": scores},
                func,
                method="percentile",
                reps=reps,
                confidence_interval_size=confidence,
                random_state=np.random.RandomState(seed),
            )
    finally:
        np.random.set_state(saved)
    return np.asarray(points["x"], dtype=np.float64), np.asarray(intervals["x"], dtype=np.float64)


def _interval(low: float, high: float) -> list[float]:
    return [float(low), float(high)]


def aggregate_intervals(
    scores: Mapping[str, Any], *, reps: int = REPS, seed: int = SEED, confidence: float = CONFIDENCE
) -> dict[str, dict[str, Any]]:
    """Per name: ``{"iqm", "iqm_ci", "mean", "mean_ci", "n_runs"}``, the IQM and mean over all runs and tasks
    (``rliable.metrics.aggregate_iqm`` / ``aggregate_mean``) with their stratified-bootstrap intervals
    ``[low, high]`` (None with one run)."""
    from rliable import metrics

    def func(x):
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)])

    out = {}
    for name, values in scores.items():
        x = score_matrix(values)
        if x.shape[0] < 2:
            point, ci = func(x), None
        else:
            point, ci = _estimate(x, func, reps, seed, confidence)
        out[name] = {
            "iqm": float(point[0]),
            "iqm_ci": None if ci is None else _interval(ci[0, 0], ci[1, 0]),
            "mean": float(point[1]),
            "mean_ci": None if ci is None else _interval(ci[0, 1], ci[1, 1]),
            "n_runs": int(x.shape[0]),
        }
    return out


def _improvement(x: np.ndarray, y: np.ndarray) -> float:
    """``rliable.metrics.probability_of_improvement(x, y)`` (the Mann-Whitney U statistic over ``n_x * n_y``, ties
    counting half, averaged over tasks) by broadcasting instead of one ``scipy.stats.mannwhitneyu`` per task: the
    same number (tests/test_statistics.py checks it against rliable's), a tenth of the time inside a 2,000-replication
    bootstrap."""
    wins = (x[:, None, :] > y[None, :, :]).mean(axis=(0, 1))
    ties = (x[:, None, :] == y[None, :, :]).mean(axis=(0, 1))
    return float(np.mean(wins + 0.5 * ties))


def probability_of_improvement(
    a: Any, b: Any, *, higher_is_better: bool = True, reps: int = REPS, seed: int = SEED, confidence: float = CONFIDENCE
) -> tuple[float, list[float]]:
    """P(a better than b) (``rliable.metrics.probability_of_improvement``: the Mann-Whitney probability that a run
    of ``a`` beats a run of ``b``, ties counting half, averaged over tasks) and its stratified independent
    bootstrap interval. ``higher_is_better=False`` negates both score arrays first. Both need at least one run;
    the interval needs two runs on each side (else ``[p, p]`` would be no interval: ValueError)."""
    x, y = score_matrix(a), score_matrix(b)
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"a and b need the same tasks, got shapes {x.shape} and {y.shape}")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("a probability-of-improvement interval needs at least two runs of each model")
    if not higher_is_better:
        x, y = -x, -y
    point, ci = _estimate([x, y], _improvement, reps, seed, confidence)
    return float(point), _interval(ci.reshape(2)[0], ci.reshape(2)[1])


def pairwise_improvement(
    scores: Mapping[str, Any],
    pairs: Iterable[tuple[str, str]] | None = None,
    *,
    higher_is_better: bool = True,
    reps: int = REPS,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(a, b): {"prob_improvement": P(a better than b), "prob_improvement_ci": [low, high]}}`` for ``pairs``
    (default: every pair of names, in sorted order); pairs where either side has fewer than two runs are left
    out."""
    names = sorted(scores)
    out = {}
    for a, b in pairs if pairs is not None else ((a, b) for i, a in enumerate(names) for b in names[i + 1 :]):
        if score_matrix(scores[a]).shape[0] < 2 or score_matrix(scores[b]).shape[0] < 2:
            continue
        p, ci = probability_of_improvement(
            scores[a], scores[b], higher_is_better=higher_is_better, reps=reps, seed=seed, confidence=confidence
        )
        out[(a, b)] = {"prob_improvement": p, "prob_improvement_ci": ci}
    return out


def separated(a: str, b: str, prob_improvement_ci: Sequence[float]) -> str | None:
    """The verdict on one pair from the interval of P(a better than b): ``"a better than b"`` where it lies
    wholly above 0.5, ``"b better than a"`` where it lies wholly below 0.5, else None (not separated)."""
    low, high = prob_improvement_ci
    if low > 0.5:
        return f"{a} better than {b}"
    if high < 0.5:
        return f"{b} better than {a}"
    return None


def performance_profiles(
    scores: Mapping[str, Any],
    taus: Sequence[float] | np.ndarray,
    *,
    reps: int = REPS,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Per name: ``(profile, band)``, the fraction of runs (over all tasks) scoring above each of ``taus``
    (``rliable.library.score_distributions``, what ``create_performance_profile`` computes) and its bootstrap
    band ``(2, len(taus))`` (None with one run)."""
    taus = np.asarray(taus, dtype=np.float64)

    def func(x):  # rliable.library.score_distributions(x, taus), vectorised over taus (tests check they agree)
        return (x.reshape(-1)[None, :] > taus[:, None]).mean(axis=1)

    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for name, values in scores.items():
        x = score_matrix(values)
        if x.shape[0] < 2:
            out[name] = (np.asarray(func(x), dtype=np.float64), None)
        else:
            out[name] = _estimate(x, func, reps, seed, confidence)
    return out


def plot_performance_profiles(
    panels: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    *,
    title: str,
    metric: str,
    reps: int = REPS,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> Path:
    """One figure, a panel per ``panels`` key (e.g. a condition or perturbation level), each ``{name: scores}``:
    the performance profile of every name with its bootstrap band, over 101 thresholds spanning the panel's
    scores. Saved to ``path`` (returned)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    n = max(len(panels), 1)
    columns = min(n, 4)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.9 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    order = list(dict.fromkeys(name for scores in panels.values() for name in scores))
    for ax, (panel, scores) in zip(axes.flat, panels.items()):
        values = np.concatenate([score_matrix(v).reshape(-1) for v in scores.values()])
        low, high = float(values.min()), float(values.max())
        pad = 0.05 * (high - low) if high > low else max(abs(low) * 0.05, 0.05)
        taus = np.linspace(low - pad, high + pad, 101)
        for name, (profile, band) in performance_profiles(
            scores, taus, reps=reps, seed=seed, confidence=confidence
        ).items():
            color = colors[order.index(name) % len(colors)]
            ax.plot(taus, profile, color=color, label=f"{name} (n={score_matrix(scores[name]).shape[0]})")
            if band is not None:
                ax.fill_between(taus, band[0], band[1], color=color, alpha=0.15)
        ax.set_title(str(panel), fontsize=8)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel(metric + (" (lower is better)" if not higher_is_better(metric) else ""), fontsize=7)
        ax.set_ylabel("fraction of runs > τ", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    axes[0][0].legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def sample_efficiency(
    curves: Mapping[str, Any], *, reps: int = REPS, seed: int = SEED, confidence: float = CONFIDENCE
) -> dict[str, dict[str, Any]]:
    """Per name, from ``(n_runs, n_tasks, n_steps)`` (or ``(n_runs, n_steps)``: one task) evaluation scores at
    common steps: ``{"iqm": [per step], "iqm_ci": [[low, high] per step] or None}`` (IQM over runs and tasks at
    each step, ``rliable.metrics.aggregate_iqm``, with its stratified-bootstrap interval)."""
    from rliable import metrics

    def func(x):
        return np.array([metrics.aggregate_iqm(x[..., t]) for t in range(x.shape[-1])])

    out: dict[str, dict[str, Any]] = {}
    for name, values in curves.items():
        x = np.asarray(values, dtype=np.float64)
        if x.ndim == 2:
            x = x[:, None, :]
        if x.ndim != 3 or x.shape[0] == 0:
            raise ValueError(f"{name}: need scores (n_runs, n_tasks, n_steps), got shape {x.shape}")
        if x.shape[0] < 2:
            out[name] = {"iqm": [float(v) for v in func(x)], "iqm_ci": None}
            continue
        point, ci = _estimate(x, func, reps, seed, confidence)
        out[name] = {"iqm": [float(v) for v in point], "iqm_ci": [_interval(lo, hi) for lo, hi in ci.T]}
    return out
