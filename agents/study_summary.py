"""A study's records and its summary across training seeds: ``jobs.jsonl``, ``summary.{md,csv,json}``, plots.

For every (env, kind, model, evaluation entry, perturbation, level) the summary holds, for each metric (mean
return, completion rate, crash rate, mean |lateral offset|), the value of every training seed's run (the mean over
that run's evaluation episodes), their mean and a 95% Student-t interval across seeds: the seed is the unit, so
``n`` is the number of training seeds, not of episodes (one seed: no interval). It also counts jobs by status and
reports the study's wall time (sum over sessions) and the jobs' own seconds.
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

from agents.run_io import write_json_atomic
from agents.study_jobs import METRICS

CONFIDENCE = 0.95
INTERVAL = "Student-t 95% interval of the mean across training seeds (one value per seed: the run's episode mean)"
_KEY = ("env", "kind", "model", "evaluation", "perturbation", "level")


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
    from agents.runs import read_json_object

    out = Path(out)
    spec = read_json_object(out / "spec.json", "study spec")
    records = read_records(out)
    runs = {r["id"]: r for r in records.values() if r["spec"]["type"] == "train"}
    groups: dict[tuple, dict[int, dict[str, Any]]] = {}
    for record in records.values():
        if record["spec"]["type"] != "evaluate" or record["status"] != "done":
            continue
        run = runs.get(Path(record["spec"]["run"]).name)
        if run is None:
            continue
        for row in record["rows"]:
            key = (run["spec"]["env"], run["spec"]["kind"], run["spec"]["model"], record["spec"]["evaluation"],
                   row["perturbation"], row["level"])
            groups.setdefault(key, {})[run["spec"]["seed"]] = row
    study = read_json_object(out / "study.json", "study record") if (out / "study.json").is_file() else {}
    sessions = study.get("sessions", [])
    statuses = [r["status"] for r in records.values()]
    return {
        "name": spec.get("name"), "confidence": CONFIDENCE, "interval": INTERVAL,
        "groups": [_group(key, by_seed, spec) for key, by_seed in sorted(groups.items(), key=_sort_key)],
        "jobs": {"total": len(statuses), **{s: statuses.count(s) for s in
                                            ("done", "failed", "skipped", "submitted", "pending")},
                 "retried": sum(1 for r in records.values() if r.get("attempts", 0) > 1)},
        "wall_seconds": sum(s.get("wall_seconds", 0.0) for s in sessions), "sessions": len(sessions),
        "job_seconds": sum(r.get("seconds", 0.0) for r in records.values() if r["status"] == "done"),
    }


def _sort_key(item: tuple[tuple, Any]) -> tuple:
    env, kind, model, evaluation, perturbation, level = item[0]
    return (env, evaluation, perturbation, kind, model, -math.inf if level is None else float(level))


def _group(key: tuple, by_seed: dict[int, dict[str, Any]], spec: dict[str, Any]) -> dict[str, Any]:
    from agents.robustness import mean_confidence_interval

    seeds = sorted(by_seed)
    group = dict(zip(_KEY, key))
    evaluation = spec.get("evaluate", [])[group["evaluation"]]
    group.update(eval_seed=evaluation["seed"], episodes=by_seed[seeds[0]]["episodes"], n_seeds=len(seeds),
                 seeds=seeds, metrics={})
    for metric in METRICS:
        values = [by_seed[s][metric] for s in seeds]
        if any(v is None for v in values):
            continue
        mean, low, high = mean_confidence_interval(values, CONFIDENCE)
        group["metrics"][metric] = {"mean": mean, "ci_low": None if math.isnan(low) else low,
                                    "ci_high": None if math.isnan(high) else high, "per_seed": values}
    return group


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
    return summary


def summary_csv(summary: dict[str, Any]) -> str:
    """One row per group; for each metric its mean, interval and the per-seed values (``;``-separated)."""
    columns = [*_KEY, "eval_seed", "episodes", "n_seeds", "seeds"]
    for metric in METRICS:
        columns += [metric, f"{metric}_ci_low", f"{metric}_ci_high", f"{metric}_per_seed"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for group in summary["groups"]:
        row = [group[k] for k in _KEY] + [group["eval_seed"], group["episodes"], group["n_seeds"],
                                          ";".join(map(str, group["seeds"]))]
        for metric in METRICS:
            m = group["metrics"].get(metric)
            row += ["", "", "", ""] if m is None else [m["mean"], _blank(m["ci_low"]), _blank(m["ci_high"]),
                                                       ";".join(repr(v) for v in m["per_seed"])]
        writer.writerow(row)
    return buffer.getvalue()


def _blank(value: float | None) -> Any:
    return "" if value is None else value


def summary_markdown(summary: dict[str, Any]) -> str:
    """A Markdown report: jobs, time, and a table per (env, evaluation entry)."""
    jobs = summary["jobs"]
    lines = [f"# Study {summary['name']}", "",
             f"Jobs: {jobs['done']}/{jobs['total']} done, {jobs['failed']} failed, {jobs['skipped']} skipped, "
             f"{jobs['retried']} retried. Wall time {summary['wall_seconds']:.0f} s over {summary['sessions']} "
             f"session(s); jobs' own time {summary['job_seconds']:.0f} s.", "",
             f"Each cell: mean over training seeds [{INTERVAL}]; per-seed values in summary.csv / summary.json.", ""]
    tables: dict[tuple, list[dict[str, Any]]] = {}
    for group in summary["groups"]:
        tables.setdefault((group["env"], group["evaluation"]), []).append(group)
    for (env, evaluation), groups in tables.items():
        metrics = [m for m in METRICS if any(m in g["metrics"] for g in groups)]
        lines += [f"## {env}, evaluation {evaluation} ({groups[0]['episodes']} episodes from seed "
                  f"{groups[0]['eval_seed']})", "",
                  "| model | perturbation | level | seeds | " + " | ".join(metrics) + " |",
                  "|---|---|---|---|" + "---|" * len(metrics)]
        for g in groups:
            cells = [_cell(g["metrics"].get(m)) for m in metrics]
            level = "" if g["level"] is None else g["level"]
            lines.append(f"| {g['kind']}:{g['model']} | {g['perturbation']} | {level} | {g['n_seeds']} | "
                         + " | ".join(cells) + " |")
        lines.append("")
    if not tables:
        lines.append("No evaluation has finished yet.")
    return "\n".join(lines) + "\n"


def _cell(metric: dict[str, Any] | None) -> str:
    if metric is None:
        return ""
    if metric["ci_low"] is None:
        return f"{metric['mean']:.3g}"
    return f"{metric['mean']:.3g} [{metric['ci_low']:.3g}, {metric['ci_high']:.3g}]"


def plot_summary(summary: dict[str, Any], out: Path) -> list[Path]:
    """One figure per (env, evaluation entry, perturbation): a panel per metric, level on x, a line per model with
    its interval across seeds as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[tuple, list[dict[str, Any]]] = {}
    for group in summary["groups"]:
        figures.setdefault((group["env"], group["evaluation"], group["perturbation"]), []).append(group)
    paths = []
    for (env, evaluation, perturbation), groups in figures.items():
        metrics = [m for m in METRICS if any(m in g["metrics"] for g in groups)]
        fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2), squeeze=False)
        for ax, metric in zip(axes[0], metrics):
            _plot_metric(ax, groups, metric)
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"{summary['name']}: {env}, evaluation {evaluation}, {perturbation}")
        fig.tight_layout()
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"summary-{env}-e{evaluation}-{perturbation}")
        path = out / f"{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def _plot_metric(ax, groups: list[dict[str, Any]], metric: str) -> None:
    models = list(dict.fromkeys(f"{g['kind']}:{g['model']}" for g in groups))
    for model in models:
        rows = [g for g in groups if f"{g['kind']}:{g['model']}" == model and metric in g["metrics"]]
        x = [0.0 if g["level"] is None else float(g["level"]) for g in rows]
        y = [g["metrics"][metric]["mean"] for g in rows]
        err = [[0.0 if g["metrics"][metric]["ci_low"] is None else g["metrics"][metric]["mean"]
                - g["metrics"][metric]["ci_low"] for g in rows],
               [0.0 if g["metrics"][metric]["ci_high"] is None else g["metrics"][metric]["ci_high"]
                - g["metrics"][metric]["mean"] for g in rows]]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=f"{model} (n={rows[0]['n_seeds']})" if rows else model)
    ax.set_title(metric, fontsize=9)
    ax.set_xlabel("level")


def separation_verdict(summary: dict, metrics: Sequence[str]) -> list[str]:
    """One line per (env, perturbation, level, metric) of a study's ``summary.json``: the pairs of models whose 95%
    intervals across training seeds do not overlap ("a < b"), or "not separated" (models with one seed are left out)."""
    cells: dict[tuple, dict[str, dict]] = {}
    for group in summary["groups"]:
        key = (group["env"], group["perturbation"], group["level"])
        cells.setdefault(key, {})[group["model"]] = group
    lines = []
    for (env, perturbation, level), models in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or 0)):
        for metric in metrics:
            found = []
            for a, b in itertools.combinations(sorted(models), 2):
                ma, mb = models[a]["metrics"].get(metric), models[b]["metrics"].get(metric)
                if not ma or not mb or models[a]["n_seeds"] < 2 or models[b]["n_seeds"] < 2:
                    continue
                if ma["ci_high"] < mb["ci_low"]:
                    found.append(f"{a} < {b}")
                elif mb["ci_high"] < ma["ci_low"]:
                    found.append(f"{b} < {a}")
            lines.append(f"{env} {perturbation} {level} {metric}: " + ("; ".join(found) or "not separated"))
    return lines
