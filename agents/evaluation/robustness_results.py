"""Results of a robustness sweep: per-episode values and summaries of every model at every perturbation level.

:class:`Row` holds one model under one perturbation level (per-episode returns, lengths, crashes and lane-keeping
metrics) and summarises it with the intervals of :mod:`ncp_control.agents.evaluation.intervals`, and the IQM of the
return with its stratified-bootstrap interval from rliable (:mod:`ncp_control.agents.evaluation.statistics`);
:class:`RobustnessResults` (what :func:`ncp_control.agents.evaluation.robustness.robustness_sweep` returns) holds
every row with the sweep's setup, compares every pair of models at each level (rliable's probability of improvement
on the episode returns, :meth:`RobustnessResults.comparisons`) and writes them as a Markdown table, CSV, JSON
(round-tripped by :meth:`RobustnessResults.from_dict`) and a plot. Within one sweep each model is one trained run,
so the unit of these statistics is the episode: they say how a model behaves on these roads and seeds, not how
another training seed would (that is a study's question, :mod:`ncp_control.agents.study.summary`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ncp_control.agents.evaluation.intervals import mean_confidence_interval, wilson_interval
from ncp_control.envs.perturbations import PERTURBATIONS

__all__ = ["Row", "RobustnessResults", "CI_METHOD"]

CI_METHOD = (
    "student-t interval on the mean return over episodes; Wilson score interval on the crash rate; rliable "
    "IQM of the return with its stratified-bootstrap interval and probability of improvement between models, "
    "over episodes"
)


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
            "model": self.model,
            "perturbation": self.perturbation,
            "level": self.level,
            "episodes": self.episodes,
            "mean_return": mean,
            "return_ci_low": low,
            "return_ci_high": high,
            "std_return": float(np.std(self.returns, ddof=1)) if self.episodes > 1 else math.nan,
            "mean_length": float(np.mean(self.lengths)),
            "crash_rate": crashes / self.episodes,
            "crash_ci_low": crash_low,
            "crash_ci_high": crash_high,
            "completion_rate": None,
            "mean_abs_lateral_m": None,
            "departures_per_km": None,
        }
        if self.successes is not None:
            if self.distances_m is None or self.abs_lateral_m is None:
                raise ValueError("successes, abs_lateral_m and distances_m are given together or not at all")
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
        return {
            **self.summary(),
            "returns": self.returns,
            "lengths": self.lengths,
            "crashes": self.crashes,
            "successes": self.successes,
            "abs_lateral_m": self.abs_lateral_m,
            "distances_m": self.distances_m,
        }


_SUMMARY_COLUMNS = (
    "model",
    "perturbation",
    "level",
    "episodes",
    "mean_return",
    "return_ci_low",
    "return_ci_high",
    "std_return",
    "mean_length",
    "crash_rate",
    "crash_ci_low",
    "crash_ci_high",
    "completion_rate",
    "mean_abs_lateral_m",
    "departures_per_km",
    "iqm_return",
    "iqm_return_ci_low",
    "iqm_return_ci_high",
)


@dataclasses.dataclass
class RobustnessResults:
    """What :func:`~ncp_control.agents.evaluation.robustness.robustness_sweep` returns: one :class:`Row` per
    model x perturbation x level, plus the setup.

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
    _statistics: dict[str, Any] | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

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
        """Each row's :meth:`Row.summary` with ``iqm_return`` and its interval (:meth:`statistics`)."""
        iqm = self.statistics()["iqm_return"]
        out = []
        for r in self.rows:
            stats = iqm[(r.model, r.perturbation, r.level)]
            low, high = stats["iqm_ci"] or (None, None)
            out.append(
                {**r.summary(), "iqm_return": stats["iqm"], "iqm_return_ci_low": low, "iqm_return_ci_high": high}
            )
        return out

    def statistics(self) -> dict[str, Any]:
        """rliable over the episodes of each row (computed once): ``iqm_return`` ``{(model, perturbation, level):
        {"iqm", "iqm_ci", "mean", "mean_ci", "n_runs"}}`` and ``comparisons``, one per level and pair of models
        (in the order given): ``{"perturbation", "level", "a", "b", "metric": "mean_return", "prob_improvement",
        "prob_improvement_ci"}``, the probability that an episode of ``a`` returns more than one of ``b``."""
        from ncp_control.agents.evaluation.statistics import aggregate_intervals, pairwise_improvement

        if self._statistics is None:
            iqm = {
                (r.model, r.perturbation, r.level): aggregate_intervals({"x": r.returns}, confidence=self.confidence)[
                    "x"
                ]
                for r in self.rows
            }
            order = {label: i for i, label in enumerate(self.models)}
            found = []
            for name, levels in self.sweeps:
                for level in levels:
                    rows = sorted(
                        (r for r in self.rows if r.perturbation == name and r.level == level),
                        key=lambda r: order[r.model],
                    )
                    pairs = [(a.model, b.model) for i, a in enumerate(rows) for b in rows[i + 1 :]]
                    result = pairwise_improvement({r.model: r.returns for r in rows}, pairs, confidence=self.confidence)
                    found += [
                        {"perturbation": name, "level": level, "a": a, "b": b, "metric": "mean_return", **v}
                        for (a, b), v in result.items()
                    ]
            self._statistics = {"iqm_return": iqm, "comparisons": found}
        return self._statistics

    def verdicts(self) -> list[str]:
        """One line per perturbation level: ``"a better than b"`` (return, over episodes) for every pair whose 95%
        probability-of-improvement interval lies wholly above 0.5, else "not separated"."""
        from ncp_control.agents.evaluation.statistics import separated

        lines = []
        for name, levels in self.sweeps:
            for level in levels:
                found = [
                    separated(c["a"], c["b"], c["prob_improvement_ci"])
                    for c in self.statistics()["comparisons"]
                    if c["perturbation"] == name and c["level"] == level
                ]
                lines.append(f"{name} {level:g}: " + ("; ".join(v for v in found if v) or "not separated"))
        return lines

    # ---------------------------------------------------------------------------------------------- writers

    def table(self) -> str:
        """Markdown table: one line per model x perturbation x level (the models side by side per level)."""
        lane = any(r.successes is not None for r in self.rows)
        pct = int(round(100 * self.confidence))
        head = ["perturbation", "level", "model", f"mean return [{pct}% CI]", f"IQM return [{pct}% CI]", "crash rate"]
        if lane:
            head += ["completion", "mean abs lateral (m)"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        order = {label: i for i, label in enumerate(self.models)}
        for name, levels in self.sweeps:
            for level in levels:
                for r in sorted(
                    (r for r in self.rows if r.perturbation == name and r.level == level), key=lambda r: order[r.model]
                ):
                    s = r.summary()
                    ci = (
                        ""
                        if math.isnan(s["return_ci_low"])
                        else f" [{s['return_ci_low']:.2f}, {s['return_ci_high']:.2f}]"
                    )
                    iqm = self.statistics()["iqm_return"][(r.model, name, level)]
                    iqm_ci = "" if iqm["iqm_ci"] is None else f" [{iqm['iqm_ci'][0]:.2f}, {iqm['iqm_ci'][1]:.2f}]"
                    cells = [
                        name,
                        f"{level:g}",
                        r.model,
                        f"{s['mean_return']:.2f}{ci}",
                        f"{iqm['iqm']:.2f}{iqm_ci}",
                        f"{s['crash_rate']:.0%} ({sum(r.crashes)}/{r.episodes})",
                    ]
                    if lane:
                        cells += [
                            "-" if s["completion_rate"] is None else f"{s['completion_rate']:.0%}",
                            "-" if s["mean_abs_lateral_m"] is None else f"{s['mean_abs_lateral_m']:.3f}",
                        ]
                    lines.append("| " + " | ".join(cells) + " |")
        if len(self.labels) > 1:
            lines += [
                "",
                f"Return, P(a better than b) over episodes (rliable), separated where its {pct}% interval "
                "lies wholly above 0.5:",
                *(f"- {line}" for line in self.verdicts()),
            ]
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
            "env_id": self.env_id,
            "episodes": self.episodes,
            "seed": self.seed,
            "perturbation_seed": self.perturbation_seed,
            "confidence": self.confidence,
            "ci_method": CI_METHOD,
            "sweeps": [[name, list(levels)] for name, levels in self.sweeps],
            "models": self.models,
            "failures": self.failures,
            "settings": self.settings,
            "rows": [{**r.to_dict(), **s} for r, s in zip(self.rows, self.summaries())],
            "comparisons": self.statistics()["comparisons"],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RobustnessResults:
        """Inverse of :meth:`to_dict` (e.g. ``RobustnessResults.from_dict(json.load(open(path)))``)."""
        fields = {f.name for f in dataclasses.fields(Row)}
        rows = [Row(**{k: v for k, v in r.items() if k in fields}) for r in data["rows"]]
        return cls(
            env_id=data["env_id"],
            episodes=data["episodes"],
            seed=data["seed"],
            perturbation_seed=data["perturbation_seed"],
            sweeps=[(name, tuple(levels)) for name, levels in data["sweeps"]],
            rows=rows,
            models=dict(data["models"]),
            failures=dict(data["failures"]),
            confidence=data["confidence"],
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
                top.fill_between(
                    x, [v["return_ci_low"] for v in s], [v["return_ci_high"] for v in s], color=color, alpha=0.2
                )
                bottom.plot(x, [v["crash_rate"] for v in s], "o-", color=color, label=label)
                bottom.fill_between(
                    x, [v["crash_ci_low"] for v in s], [v["crash_ci_high"] for v in s], color=color, alpha=0.2
                )
            top.set_title(name)
            top.set_ylabel("mean return")
            bottom.set_ylabel("crash rate")
            bottom.set_ylim(-0.03, 1.03)
            bottom.set_xlabel(f"{name} level ({PERTURBATIONS[name].unit or PERTURBATIONS[name].level_arg})")
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
