"""A study's records and its summary across training seeds: ``jobs.jsonl``, ``summary.{md,csv,json}``, plots.

For every (env, kind, model, evaluation entry, perturbation, level) the summary holds, for each metric (mean
return, completion rate, crash rate, mean |lateral offset|), the value of every training seed's run (the mean over
that run's evaluation episodes, ``per_seed``) and, from rliable (:mod:`ncp_control.agents.evaluation.statistics`),
their IQM and mean with stratified-bootstrap 95% intervals across seeds (``iqm``, ``iqm_ci``, ``mean``,
``mean_ci``; ``ci_low`` / ``ci_high`` are the mean's interval): the seed is the unit, so ``n`` is the number of
training seeds, not of episodes (one seed: no interval). ``comparisons`` holds, for every pair of models in the
same cell (the group key without kind, model and training tag) and every metric, the probability that ``a`` is
better than ``b`` (rliable's probability of improvement across seeds, oriented so that better means a lower crash
rate or |lateral offset|) with its interval; :func:`separation_verdict` reads it. It also counts jobs by status
and reports the study's wall time (sum over sessions) and the jobs' own seconds. With plots, a performance profile
per metric (``profile-*.png``) and, where the PPO runs' folders hold evaluation curves
(``runs/<id>/eval/evaluations.npz``), IQM against training steps (``efficiency-*.png``).

A study whose spec uses training tags or evaluation conditions (``tag``, ``env_kwargs``, ``train_tags``; see
:mod:`ncp_control.agents.study.spec`) is keyed also by ``train_tag`` (the run's training tag, ``"untagged"`` without one) and
``condition`` (the evaluation entry's tag, None without one): its groups, CSV columns and Markdown tables carry
them, and the Markdown adds an overview per (env, training tag, metric) with a column per condition. Studies
without them are summarised exactly as before.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ncp_control.agents.evaluation.statistics import (
    METHOD,
    aggregate_intervals,
    higher_is_better,
    pairwise_improvement,
    separated,
)
from ncp_control.agents.runs.files import write_json_atomic
from ncp_control.agents.study.jobs import METRICS
from ncp_control.agents.study.spec import UNTAGGED as _UNTAGGED

CONFIDENCE = 0.95
INTERVAL = (
    "rliable stratified-bootstrap 95% interval of the mean across training seeds (one value per seed: the "
    "run's episode mean)"
)
_KEY = ("env", "kind", "model", "evaluation", "perturbation", "level")
#: the key of a study with training tags or evaluation conditions
_TAGGED_KEY = ("env", "kind", "train_tag", "model", "evaluation", "condition", "perturbation", "level")


def read_records(out: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The job records: ``jobs.jsonl``, overridden by every finished job's ``jobs/<id>.done`` (the truth)."""
    out = Path(out)
    records: dict[str, dict[str, Any]] = {}
    path = out / "jobs.jsonl"
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                records[record["id"]] = record
    for marker in sorted((out / "jobs").glob("*.done")) if (out / "jobs").is_dir() else ():
        record = json.loads(marker.read_text())
        records[record["id"]] = record
    return records


def write_records(out: str | os.PathLike, records: Iterable[dict[str, Any]]) -> None:
    """Rewrite ``jobs.jsonl`` (one JSON record per line) atomically."""
    path = Path(out) / "jobs.jsonl"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    os.replace(tmp, path)


def summarize(out: str | os.PathLike) -> dict[str, Any]:
    """The summary of the study in ``out`` (from its records; see the module docstring)."""
    from ncp_control.agents.runs.load import read_json_object

    out = Path(out)
    spec = read_json_object(out / "spec.json", "study spec")
    records = read_records(out)
    runs = {r["id"]: r for r in records.values() if r["spec"]["type"] == "train"}
    names = _TAGGED_KEY if uses_conditions(spec) else _KEY
    entries = spec.get("evaluate", [])
    groups: dict[tuple, dict[int, dict[str, Any]]] = {}
    for record in records.values():
        if record["spec"]["type"] != "evaluate" or record["status"] != "done":
            continue
        run = runs.get(Path(record["spec"]["run"]).name)
        if run is None:
            continue
        index = record["spec"]["evaluation"]
        for row in record["rows"]:
            fields = {
                "env": run["spec"]["env"],
                "kind": run["spec"]["kind"],
                "train_tag": run["spec"].get("tag") or _UNTAGGED,
                "model": run["spec"]["model"],
                "evaluation": index,
                "condition": entries[index].get("tag"),
                "perturbation": row["perturbation"],
                "level": row["level"],
            }
            groups.setdefault(tuple(fields[k] for k in names), {})[run["spec"]["seed"]] = row
    study = read_json_object(out / "study.json", "study record") if (out / "study.json").is_file() else {}
    sessions = study.get("sessions", [])
    statuses = [r["status"] for r in records.values()]
    summary_groups = sorted(
        (_group(dict(zip(names, key)), by_seed, spec) for key, by_seed in groups.items()), key=_sort_key
    )
    summary = {
        "name": spec.get("name"),
        "confidence": CONFIDENCE,
        "interval": INTERVAL,
        "statistics": METHOD,
        "groups": summary_groups,
        "comparisons": comparisons(summary_groups, names),
        "jobs": {
            "total": len(statuses),
            **{s: statuses.count(s) for s in ("done", "failed", "skipped", "submitted", "pending")},
            "retried": sum(1 for r in records.values() if r.get("attempts", 0) > 1),
        },
        "wall_seconds": sum(s.get("wall_seconds", 0.0) for s in sessions),
        "sessions": len(sessions),
        "job_seconds": sum(r.get("seconds", 0.0) for r in records.values() if r["status"] == "done"),
    }
    if names is _TAGGED_KEY:  # absent from the summaries of studies without tags (unchanged since before them)
        summary["key"] = list(names)
    efficiency = sample_efficiency(out, records)
    if efficiency:  # PPO runs whose folders hold evaluation curves
        summary["sample_efficiency"] = efficiency
    reused = {r["id"]: r["reused_from"] for r in records.values() if r["status"] == "done" and r.get("reused_from")}
    if reused:  # training runs copied from other study folders (--runs-from), not trained here
        summary["reused"] = dict(sorted(reused.items()))
    return summary


def uses_conditions(spec: dict[str, Any]) -> bool:
    """Whether a study spec uses training tags or evaluation conditions (then its summary is keyed by them)."""
    return any(isinstance(e, dict) and "tag" in e for e in spec.get("train", [])) or any(
        isinstance(e, dict) and {"tag", "env_kwargs", "train_tags"} & set(e) for e in spec.get("evaluate", [])
    )


def _sort_key(group: dict[str, Any]) -> tuple:
    """Entries in spec order; within one, untagged runs first, then by training tag, kind and model; levels up."""
    level = -math.inf if group["level"] is None else float(group["level"])
    tag = group.get("train_tag", _UNTAGGED)
    return (
        group["env"],
        group["evaluation"],
        group["perturbation"],
        tag != _UNTAGGED,
        tag,
        group["kind"],
        group["model"],
        level,
    )


def _group(group: dict[str, Any], by_seed: dict[int, dict[str, Any]], spec: dict[str, Any]) -> dict[str, Any]:
    """``group`` (its key as a dict) completed with the entry's settings and the metrics across seeds."""
    seeds = sorted(by_seed)
    evaluation = spec.get("evaluate", [])[group["evaluation"]]
    if "condition" in group:
        group["env_kwargs"] = evaluation.get("env_kwargs", {})
    group.update(
        eval_seed=evaluation["seed"],
        episodes=by_seed[seeds[0]]["episodes"],
        n_seeds=len(seeds),
        seeds=seeds,
        metrics={},
    )
    for metric in METRICS:
        values = [by_seed[s][metric] for s in seeds]
        if any(v is None for v in values):
            continue
        group["metrics"][metric] = metric_statistics(values)
    return group


def metric_statistics(per_seed: Sequence[float]) -> dict[str, Any]:
    """One metric of one group across training seeds: ``mean``, ``ci_low`` / ``ci_high`` and ``mean_ci`` (the
    mean's interval), ``iqm``, ``iqm_ci`` (rliable, :func:`~ncp_control.agents.evaluation.statistics.aggregate_intervals`)
    and ``per_seed``; intervals are None with one seed."""
    values = [float(v) for v in per_seed]
    stats = aggregate_intervals({"x": values}, confidence=CONFIDENCE)["x"]
    low, high = stats["mean_ci"] or (None, None)
    return {
        "mean": stats["mean"],
        "ci_low": low,
        "ci_high": high,
        "mean_ci": stats["mean_ci"],
        "iqm": stats["iqm"],
        "iqm_ci": stats["iqm_ci"],
        "per_seed": values,
    }


#: the group key's fields that name a model's runs; the rest of the key is the cell whose models are compared
_RUN_FIELDS = ("kind", "train_tag", "model")


def _run_names(groups: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The groups of one cell by the name the verdict gives them: the model, ``<tag>:<model>`` for runs of a tagged
    training entry, and ``<kind>:`` in front where two kinds share a name."""

    def name(g: dict[str, Any], kind: bool) -> str:
        tag = g.get("train_tag", _UNTAGGED)
        return (f"{g['kind']}:" if kind else "") + (g["model"] if tag == _UNTAGGED else f"{tag}:{g['model']}")

    plain = [name(g, False) for g in groups]
    return {name(g, plain.count(n) > 1): g for g, n in zip(groups, plain)}


def _cells(groups: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[tuple, dict[str, dict[str, Any]]]:
    """The groups by cell (the key without :data:`_RUN_FIELDS`), then by run name (:func:`_run_names`)."""
    fields = [k for k in names if k not in _RUN_FIELDS]
    cells: dict[tuple, list[dict[str, Any]]] = {}
    for group in groups:
        cells.setdefault(tuple(group.get(k) for k in fields), []).append(group)
    return {key: _run_names(members) for key, members in cells.items()}


def _pairs(runs: dict[str, dict[str, Any]], tagged: bool) -> list[tuple[str, str]]:
    """The pairs compared in a cell: every pair of models; in a study with conditions, models of the same training
    tag and each model against itself under another training tag."""
    return [
        (a, b)
        for a, b in itertools.combinations(sorted(runs), 2)
        if not tagged or runs[a].get("train_tag") == runs[b].get("train_tag") or runs[a]["model"] == runs[b]["model"]
    ]


def comparisons(
    groups: Sequence[dict[str, Any]], names: Sequence[str] = _KEY, metrics: Sequence[str] = METRICS
) -> list[dict[str, Any]]:
    """For every cell, metric and compared pair (:func:`_pairs`) with two seeds or more on each side: the cell's
    key fields, ``metric``, ``a``, ``b``, ``better`` (``"higher"`` or ``"lower"``), ``prob_improvement`` (the
    probability that ``a`` is better than ``b`` across training seeds, rliable) and ``prob_improvement_ci``."""
    fields = [k for k in names if k not in _RUN_FIELDS]
    tagged = "train_tag" in names
    out = []
    for key, runs in _cells(groups, names).items():
        pairs = _pairs(runs, tagged)
        for metric in metrics:
            scores = {n: g["metrics"][metric]["per_seed"] for n, g in runs.items() if metric in g["metrics"]}
            higher = higher_is_better(metric)
            found = pairwise_improvement(
                scores,
                [(a, b) for a, b in pairs if a in scores and b in scores],
                higher_is_better=higher,
                confidence=CONFIDENCE,
            )
            out += [
                {
                    **dict(zip(fields, key)),
                    "metric": metric,
                    "a": a,
                    "b": b,
                    "better": "higher" if higher else "lower",
                    **result,
                }
                for (a, b), result in found.items()
            ]
    return out


# ---------------------------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------------------------
def write_summary(out: str | os.PathLike, *, plot: bool = True) -> dict[str, Any]:
    """Write ``summary.{json,csv,md}`` (and ``summary-<env>-e<i>-<perturbation>.png`` with ``plot``) into ``out``;
    returns the summary."""
    out = Path(out)
    summary = summarize(out)
    write_json_atomic(out / "summary.json", summary, indent=1)
    for name, text in (("summary.csv", summary_csv(summary)), ("summary.md", summary_markdown(summary))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)
    if plot:
        summary["plots"] = [str(p.name) for p in plot_summary(summary, out)]
        summary["profiles"] = [p.name for p in plot_profiles(summary, out)]
        summary["plots_efficiency"] = [p.name for p in plot_efficiency(summary, out)]
    return summary


def plot_profiles(summary: dict[str, Any], out: Path) -> list[Path]:
    """Performance profiles (rliable; :func:`ncp_control.agents.evaluation.statistics.plot_performance_profiles`):
    one figure per (env, evaluation entry, perturbation, metric), ``profile-<env>-e<i>-<perturbation>-<metric>.png``,
    a panel per level; in a study with conditions, entries without sweeps share one figure per (env, metric),
    ``profile-<env>-conditions-<metric>.png``, a panel per condition. Each line: a model's runs (training seeds)."""
    from ncp_control.agents.evaluation.statistics import plot_performance_profiles

    figures: dict[tuple, dict[str, list[dict[str, Any]]]] = {}
    for group in summary["groups"]:
        if "key" in summary and group["perturbation"] == "none":
            stem, panel = f"profile-{group['env']}-conditions", _condition(group)
        else:
            stem = f"profile-{group['env']}-e{group['evaluation']}-{group['perturbation']}"
            panel = f"{group['perturbation']} {group['level']}" if group["perturbation"] != "none" else group["env"]
        figures.setdefault((stem, group["env"]), {}).setdefault(panel, []).append(group)
    paths = []
    for (stem, env), panels in figures.items():
        for metric in METRICS:
            scores = {
                panel: {_label(g): g["metrics"][metric]["per_seed"] for g in groups if metric in g["metrics"]}
                for panel, groups in panels.items()
            }
            scores = {panel: s for panel, s in scores.items() if s}
            if scores:
                paths.append(
                    plot_performance_profiles(
                        scores,
                        out / _file_name(f"{stem}-{metric}"),
                        metric=metric,
                        title=f"{summary['name']}: {env}, {metric}: performance profiles across training seeds",
                    )
                )
    return paths


def sample_efficiency(out: str | os.PathLike, records: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """IQM of the periodic evaluation return against training steps, across the training seeds of each (env, kind,
    training tag, model), from the run folders' ``eval/evaluations.npz`` (Stable-Baselines3's EvalCallback; PPO
    runs with ``eval_freq > 0``), at the steps every seed reached; empty where no run folder holds one."""
    import numpy as np

    from ncp_control.agents.evaluation.statistics import sample_efficiency as iqm_curves

    curves: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = {}
    for record in records.values():
        if record["spec"]["type"] != "train" or record["status"] != "done":
            continue
        path = Path(out) / "runs" / record["id"] / "eval" / "evaluations.npz"
        if not path.is_file():
            continue
        with np.load(path) as data:
            steps, results = np.asarray(data["timesteps"]), np.asarray(data["results"], dtype=np.float64)
        spec = record["spec"]
        key = (spec["env"], spec["kind"], spec.get("tag") or _UNTAGGED, spec["model"])
        curves.setdefault(key, []).append((steps, results.mean(axis=1)))
    found = []
    for (env, kind, tag, model), runs in sorted(curves.items()):
        common = sorted(set.intersection(*(set(steps.tolist()) for steps, _ in runs)))
        if not common:
            continue
        matrix = np.array([[dict(zip(steps.tolist(), values))[t] for t in common] for steps, values in runs])
        result = iqm_curves({"x": matrix}, confidence=CONFIDENCE)["x"]
        found.append(
            {
                "env": env,
                "kind": kind,
                "train_tag": tag,
                "model": model,
                "n_runs": len(runs),
                "steps": [int(t) for t in common],
                **result,
            }
        )
    return found


def plot_efficiency(summary: dict[str, Any], out: Path) -> list[Path]:
    """Sample-efficiency curves (IQM of the evaluation return against training steps, with its bootstrap band), one
    figure per (env, training tag), ``efficiency-<env>-<tag>.png``, where ``sample_efficiency`` has curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[tuple, list[dict[str, Any]]] = {}
    for curve in summary.get("sample_efficiency", []):
        figures.setdefault((curve["env"], curve["train_tag"]), []).append(curve)
    paths = []
    for (env, tag), curves in figures.items():
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for curve in curves:
            (line,) = ax.plot(
                curve["steps"], curve["iqm"], label=f"{curve['kind']}:{curve['model']} (n={curve['n_runs']})"
            )
            if curve["iqm_ci"]:
                ax.fill_between(
                    curve["steps"],
                    [c[0] for c in curve["iqm_ci"]],
                    [c[1] for c in curve["iqm_ci"]],
                    color=line.get_color(),
                    alpha=0.2,
                )
        ax.set_xlabel("training steps")
        ax.set_ylabel("IQM evaluation return")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        ax.set_title(f"{summary['name']}: {env}, trained {tag}", fontsize=9)
        fig.tight_layout()
        path = out / _file_name(f"efficiency-{env}-{tag}")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def summary_csv(summary: dict[str, Any]) -> str:
    """One row per group; for each metric its mean, interval, the per-seed values (``;``-separated), and the IQM
    with its interval."""
    key = summary.get("key", _KEY)
    columns = [*key, "eval_seed", "episodes", "n_seeds", "seeds"]
    for metric in METRICS:
        columns += [
            metric,
            f"{metric}_ci_low",
            f"{metric}_ci_high",
            f"{metric}_per_seed",
            f"{metric}_iqm",
            f"{metric}_iqm_ci_low",
            f"{metric}_iqm_ci_high",
        ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for group in summary["groups"]:
        row = [group[k] for k in key] + [
            group["eval_seed"],
            group["episodes"],
            group["n_seeds"],
            ";".join(map(str, group["seeds"])),
        ]
        for metric in METRICS:
            m = group["metrics"].get(metric)
            iqm_ci = (m or {}).get("iqm_ci") or (None, None)
            row += (
                [""] * 7
                if m is None
                else [
                    m["mean"],
                    _blank(m["ci_low"]),
                    _blank(m["ci_high"]),
                    ";".join(repr(v) for v in m["per_seed"]),
                    m["iqm"],
                    _blank(iqm_ci[0]),
                    _blank(iqm_ci[1]),
                ]
            )
        writer.writerow(row)
    return buffer.getvalue()


def _blank(value: float | None) -> Any:
    return "" if value is None else value


def summary_markdown(summary: dict[str, Any]) -> str:
    """A Markdown report: jobs, time, and a table per (env, evaluation entry)."""
    jobs = summary["jobs"]
    lines = [
        f"# Study {summary['name']}",
        "",
        f"Jobs: {jobs['done']}/{jobs['total']} done, {jobs['failed']} failed, {jobs['skipped']} skipped, "
        f"{jobs['retried']} retried. Wall time {summary['wall_seconds']:.0f} s over {summary['sessions']} "
        f"session(s); jobs' own time {summary['job_seconds']:.0f} s.",
        "",
    ]
    by_source: dict[str, list[str]] = {}
    for job_id, source in summary.get("reused", {}).items():
        by_source.setdefault(source, []).append(job_id)
    for source, ids in by_source.items():
        lines += [
            f"Reused {len(ids)} finished training run(s) of {source} (copied, not trained here): "
            + ", ".join(ids)
            + ".",
            "",
        ]
    lines += [
        f"Each cell: mean over training seeds [{INTERVAL}]; per-seed values, the IQM with its interval and "
        "the probability of improvement of every pair in summary.csv / summary.json.",
        "",
    ]
    tables: dict[tuple, list[dict[str, Any]]] = {}
    for group in summary["groups"]:
        tables.setdefault((group["env"], group["evaluation"]), []).append(group)
    tagged = "key" in summary
    if tagged:
        lines += _overview(summary["groups"])
    for (env, evaluation), groups in tables.items():
        metrics = [m for m in METRICS if any(m in g["metrics"] for g in groups)]
        first = groups[0]
        title = f"## {env}, evaluation {evaluation}"
        if tagged:
            title += f": {_condition(first)}" + (
                f", env_kwargs {json.dumps(first['env_kwargs'])}" if first["env_kwargs"] else ""
            )
        lines += [
            f"{title} ({first['episodes']} episodes from seed {first['eval_seed']})",
            "",
            ("| trained " if tagged else "") + "| model | perturbation | level | seeds | " + " | ".join(metrics) + " |",
            ("|---" if tagged else "") + "|---|---|---|---|" + "---|" * len(metrics),
        ]
        for g in groups:
            cells = [_cell(g["metrics"].get(m)) for m in metrics]
            level = "" if g["level"] is None else g["level"]
            lines.append(
                (f"| {g['train_tag']} " if tagged else "") + f"| {g['kind']}:{g['model']} | "
                f"{g['perturbation']} | {level} | {g['n_seeds']} | " + " | ".join(cells) + " |"
            )
        lines.append("")
    if not tables:
        lines.append("No evaluation has finished yet.")
    else:
        lines += _improvement_lines(summary)
    return "\n".join(lines) + "\n"


def _improvement_lines(summary: dict[str, Any]) -> list[str]:
    """A table of the separated pairs (:func:`separation_verdict`'s rule), with their probability of improvement."""
    names = summary.get("key", _KEY)
    fields = [k for k in names if k not in _RUN_FIELDS]
    rows = []
    for c in summary.get("comparisons", []):
        verdict = separated(c["a"], c["b"], c["prob_improvement_ci"])
        if verdict:
            where = ", ".join(f"{k} {c[k]}" for k in fields if c.get(k) is not None and c[k] != "none")
            p, (low, high) = c["prob_improvement"], c["prob_improvement_ci"]
            if not verdict.startswith(f"{c['a']} better"):  # b better than a: the winner's probability
                p, low, high = 1.0 - p, 1.0 - high, 1.0 - low
            rows.append(f"| {where} | {c['metric']} | {verdict} | {p:.2f} [{low:.2f}, {high:.2f}] |")
    head = [
        "## Probability of improvement",
        "",
        f"{len(summary.get('comparisons', []))} pairs compared (every metric); separated where the 95% interval "
        "of P(a better than b) across training seeds lies wholly above 0.5 (better: higher return and "
        "completion, lower crash rate and |lateral offset|). All pairs are in summary.json.",
        "",
    ]
    if not rows:
        return head + ["No pair separated.", ""]
    return head + ["| cell | metric | verdict | P(winner better) [95% CI] |", "|---|---|---|---|", *rows, ""]


def _condition(group: dict[str, Any]) -> str:
    """An evaluation condition's name: the entry's tag, else ``e<index>``."""
    return group["condition"] or f"e{group['evaluation']}"


def _overview(groups: list[dict[str, Any]]) -> list[str]:
    """Markdown tables, one per (env, training tag, metric): a row per model, a column per condition (entries
    without perturbation sweeps; those have their own tables)."""
    plain = [g for g in groups if g["perturbation"] == "none"]
    lines = []
    for env, tag in dict.fromkeys((g["env"], g["train_tag"]) for g in plain):
        mine = [g for g in plain if (g["env"], g["train_tag"]) == (env, tag)]
        conditions = list(dict.fromkeys(_condition(g) for g in mine))
        models = list(dict.fromkeys(f"{g['kind']}:{g['model']}" for g in mine))
        cell = {(f"{g['kind']}:{g['model']}", _condition(g)): g for g in mine}
        for metric in (m for m in METRICS if any(m in g["metrics"] for g in mine)):
            lines += [
                f"## {env}, trained {tag}: {metric} by condition",
                "",
                "| model | " + " | ".join(conditions) + " |",
                "|---|" + "---|" * len(conditions),
            ]
            for model in models:
                cells = [_cell(cell[model, c]["metrics"].get(metric)) if (model, c) in cell else "" for c in conditions]
                lines.append(f"| {model} | " + " | ".join(cells) + " |")
            lines.append("")
    return lines


def _cell(metric: dict[str, Any] | None) -> str:
    if metric is None:
        return ""
    if metric["ci_low"] is None:
        return f"{metric['mean']:.3g}"
    return f"{metric['mean']:.3g} [{metric['ci_low']:.3g}, {metric['ci_high']:.3g}]"


def plot_summary(summary: dict[str, Any], out: Path) -> list[Path]:
    """One figure per (env, evaluation entry, perturbation): a panel per metric, level on x, a line per model with
    its interval across seeds as error bars. In a study with conditions, entries without sweeps are drawn instead
    in one figure per (env, training tag), ``summary-<env>-<tag>-conditions.png``, with the condition on x."""
    figures: dict[tuple, list[dict[str, Any]]] = {}
    conditions: dict[tuple, list[dict[str, Any]]] = {}
    for group in summary["groups"]:
        if "key" in summary and group["perturbation"] == "none":
            conditions.setdefault((group["env"], group["train_tag"]), []).append(group)
        else:
            figures.setdefault((group["env"], group["evaluation"], group["perturbation"]), []).append(group)
    paths = []
    for (env, evaluation, perturbation), groups in figures.items():
        paths.append(
            _figure(
                groups,
                lambda g: 0.0 if g["level"] is None else float(g["level"]),
                "level",
                f"{summary['name']}: {env}, evaluation {evaluation}, {perturbation}",
                out / _file_name(f"summary-{env}-e{evaluation}-{perturbation}"),
            )
        )
    for (env, tag), groups in conditions.items():
        names = list(dict.fromkeys(_condition(g) for g in groups))
        paths.append(
            _figure(
                groups,
                lambda g, names=names: names.index(_condition(g)),
                "condition",
                f"{summary['name']}: {env}, trained {tag}",
                out / _file_name(f"summary-{env}-{tag}-conditions"),
                ticks=names,
            )
        )
    return paths


def _file_name(stem: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) + ".png"


def _figure(
    groups: list[dict[str, Any]], x_of, x_label: str, title: str, path: Path, ticks: Sequence[str] = ()
) -> Path:
    """A panel per metric, a line per model over ``x_of(group)``, intervals across seeds as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in METRICS if any(m in g["metrics"] for g in groups)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(4, 0.6 * len(ticks)) * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        _plot_metric(ax, groups, metric, x_of, categorical=bool(ticks))
        ax.set_xlabel(x_label)
        if ticks:
            ax.set_xticks(range(len(ticks)), ticks, rotation=45, fontsize=7)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _label(group: dict[str, Any]) -> str:
    """``kind:model``, with ``[tag]`` for a tagged training entry's runs."""
    tag = group.get("train_tag", _UNTAGGED)
    return f"{group['kind']}:{group['model']}" + ("" if tag == _UNTAGGED else f" [{tag}]")


def _plot_metric(ax, groups: list[dict[str, Any]], metric: str, x_of, categorical: bool = False) -> None:
    """A line per model (``categorical``: points side by side around each x, not joined)."""
    models = list(dict.fromkeys(_label(g) for g in groups))
    for i, model in enumerate(models):
        rows = [g for g in groups if _label(g) == model and metric in g["metrics"]]
        shift = 0.1 * (i - (len(models) - 1) / 2) if categorical else 0.0
        x = [x_of(g) + shift for g in rows]
        y = [g["metrics"][metric]["mean"] for g in rows]
        err = [
            [
                0.0
                if g["metrics"][metric]["ci_low"] is None
                else g["metrics"][metric]["mean"] - g["metrics"][metric]["ci_low"]
                for g in rows
            ],
            [
                0.0
                if g["metrics"][metric]["ci_high"] is None
                else g["metrics"][metric]["ci_high"] - g["metrics"][metric]["mean"]
                for g in rows
            ],
        ]
        ax.errorbar(
            x,
            y,
            yerr=err,
            marker="o",
            capsize=3,
            linestyle="none" if categorical else "-",
            label=f"{model} (n={rows[0]['n_seeds']})" if rows else model,
        )
    ax.set_title(metric, fontsize=9)


def fine_tuning_effects(summary: dict, spec: dict) -> list[dict[str, Any]]:
    """What the fine-tuning entries of ``spec`` bought (PPO entries ``init_from`` an imitation entry; their runs are
    named ``<tag>:<model>`` beside the imitation runs' ``<model>``, or ``<init tag>:<model>`` for a tagged imitation
    entry): every comparison in the summary between a model's fine-tuned runs and the imitation runs they started
    from, oriented as the probability that the *fine-tuned* runs are better, ``{<the cell's key fields>, "metric",
    "model", "tag", "prob_improvement", "prob_improvement_ci"}``. (rliable counts ties as one half, so P(b better
    than a) = 1 - P(a better than b), and its bootstrap interval flips.) Other tagged runs (say imitation under
    domain randomisation, ``dr:lstm`` against ``lstm``) are not fine-tuning and are left out."""
    from ncp_control.agents.study.spec import UNTAGGED, fine_tuning_tags

    tags = fine_tuning_tags(spec)
    effects = []
    for c in summary.get("comparisons", []):
        for tuned, plain, flip in ((c["a"], c["b"], False), (c["b"], c["a"], True)):
            tag, _, model = tuned.partition(":")
            if (c["env"], tag) not in tags or not model:
                continue
            init_tag = tags[c["env"], tag]
            if plain != (model if init_tag == UNTAGGED else f"{init_tag}:{model}"):
                continue
            p, (low, high) = c["prob_improvement"], c["prob_improvement_ci"]
            cell = {k: v for k, v in c.items() if k not in ("a", "b", "prob_improvement", "prob_improvement_ci")}
            effects.append(
                {
                    **cell,
                    "model": model,
                    "tag": tag,
                    "prob_improvement": 1 - p if flip else p,
                    "prob_improvement_ci": [1 - high, 1 - low] if flip else [low, high],
                }
            )
    return effects


def separation_verdict(summary: dict, metrics: Sequence[str]) -> list[str]:
    """One line per (env, perturbation, level, metric) of a study's ``summary.json``: ``"a better than b"`` for the
    pairs of models where the 95% interval of the probability that ``a`` is better than ``b`` (rliable's
    probability of improvement across training seeds, from the summary's ``comparisons``; oriented so that better
    is a lower crash rate or |lateral offset|) lies wholly above 0.5, else "not separated" (models with one seed are
    left out). A summary without ``comparisons`` (written before them) has them computed from its per-seed values.

    A study with conditions (its summary has ``key``) gets one line per (env, condition, perturbation, level,
    metric), ``<env> <condition> [<perturbation> <level>] <metric>: ...``; runs of a tagged training entry are
    named ``<tag>:<model>``, and the pairs compared are models of the same training tag and each model against
    itself under another training tag (e.g. ``dr:lstm better than lstm``).
    """
    names = summary.get("key", _KEY)
    tagged = "key" in summary
    fields = [k for k in names if k not in _RUN_FIELDS]
    found = summary.get("comparisons")
    if found is None:
        found = comparisons(summary["groups"], names, metrics)
    by_cell: dict[tuple, list[dict[str, Any]]] = {}
    for c in found:
        by_cell.setdefault((tuple(c.get(k) for k in fields), c["metric"]), []).append(c)
    cells = _cells(summary["groups"], names)

    def order(key: tuple) -> tuple:
        cell = dict(zip(fields, key))
        return (cell["env"], cell.get("evaluation") or 0, cell["perturbation"], cell["level"] or 0)

    lines = []
    for key in sorted(cells, key=order):
        cell = dict(zip(fields, key))
        if tagged:
            where = " ".join(
                [cell["env"], _condition(next(iter(cells[key].values())))]
                + ([] if cell["perturbation"] == "none" else [cell["perturbation"], str(cell["level"])])
            )
        else:
            where = f"{cell['env']} {cell['perturbation']} {cell['level']}"
        for metric in metrics:
            verdicts = [separated(c["a"], c["b"], c["prob_improvement_ci"]) for c in by_cell.get((key, metric), [])]
            lines.append(f"{where} {metric}: " + ("; ".join(v for v in verdicts if v) or "not separated"))
    return lines
