"""Confidence intervals for evaluation numbers: a mean over episodes or seeds, and a rate of episodes.

- :func:`mean_confidence_interval`: Student-t interval on a mean, ``mean +- t_{(1+c)/2, n-1} * s / sqrt(n)`` with
  the sample standard deviation ``s`` (ddof 1); NaN bounds for one value.
- :func:`wilson_interval`: Wilson score interval on a binomial proportion (e.g. a crash rate).
- :func:`t_quantile`: the Student-t quantile both rest on (``scipy.stats``).

Used by the robustness sweep (:mod:`ncp_control.agents.evaluation.robustness`), the study summaries
(:mod:`ncp_control.agents.study.summary`) and the scripts that render results.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ncp_control import checks

__all__ = ["t_quantile", "check_confidence", "mean_confidence_interval", "wilson_interval"]


def t_quantile(probability: float, df: int) -> float:
    """The ``probability`` quantile of Student's t distribution with ``df`` degrees of freedom
    (``scipy.stats.t.ppf``). Example: ``t_quantile(0.975, 4) = 2.776445...``."""
    from scipy import stats

    df = checks.positive_int("df", df)
    probability = checks.probability("probability", probability, open_interval=True)
    return float(stats.t.ppf(probability, df))


def check_confidence(confidence: float) -> float:
    """``confidence`` as a float in (0, 1) (0.95, not 95): :func:`ncp_control.checks.probability`."""
    return checks.probability("confidence", confidence, open_interval=True, hint="e.g. 0.95, not 95")


def mean_confidence_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` (shape (n,)) and its Student-t confidence interval: ``(mean, low, high)``.

    ``low, high = mean -+ t_{(1 + confidence) / 2, n - 1} * s / sqrt(n)``, ``s`` the sample standard deviation
    (ddof 1). With one value the bounds are NaN (no spread to estimate).
    """
    confidence = check_confidence(confidence)
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

    confidence = check_confidence(confidence)
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got {successes}/{trials}")
    interval = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)
