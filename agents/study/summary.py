"""A study's records and its summary across training seeds: ``jobs.jsonl``, ``summary.{md,csv,json}``, plots.

For every (env, kind, model, evaluation entry, perturbation, level) the summary holds, for each metric (mean
return, completion rate, crash rate, mean |lateral offset|), the value of every training seed's run (the mean over
that run's evaluation episodes), their mean and a 95% Student-t interval across seeds: the seed is the unit, so
``n`` is the number of training seeds, not of episodes (one seed: no interval). It also counts jobs by status and
reports the study's wall time (sum over sessions) and the jobs' own seconds.

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

from ncp_control.agents.runs.files import write_json_atomic
from ncp_control.agents.study.jobs import METRICS
from ncp_control.agents.study.spec import UNTAGGED as _UNTAGGED

CONFIDENCE = 0.95
INTERVAL = "Student-t 95% interval of the mean across training seeds (one value per seed: the run's episode mean)"
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
            fields = {"env": run["spec"]["env"], "kind": run["spec"]["kind"],
                      "train_tag": run["spec"].get("tag") or _UNTAGGED, "model": run["spec"]["model"],
                      "evaluation": index, "condition": entries[index].get("tag"),
                      "perturbation": row["perturbation"], "level": row["level"]}
            groups.setdefault(tuple(fields[k] for k in names), {})[run["spec"]["seed"]] = row
    study = read_json_object(out / "study.json", "study record") if (out / "study.json").is_file() else {}
    sessions = study.get("sessions", [])
    statuses = [r["status"] for r in records.values()]
    summary = {
        "name": spec.get("name"), "confidence": CONFIDENCE, "interval": INTERVAL,
        "groups": sorted((_group(dict(zip(names, key)), by_seed, spec) for key, by_seed in groups.items()),
                         key=_sort_key),
        "jobs": {"total": len(statuses), **{s: statuses.count(s) for s in
                                            ("done", "failed", "skipped", "submitted", "pending")},
                 "retried": sum(1 for r in records.values() if r.get("attempts", 0) > 1)},
        "wall_seconds": sum(s.get("wall_seconds", 0.0) for s in sessions), "sessions": len(sessions),
        "job_seconds": sum(r.get("seconds", 0.0) for r in records.values() if r["status"] == "done"),
    }
    if names is _TAGGED_KEY:  # absent from the summaries of studies without tags (unchanged since before them)
        summary["key"] = list(names)
    reused = {r["id"]: r["reused_from"] for r in records.values() if r["status"] == "done" and r.get("reused_from")}
    if reused:  # training runs copied from other study folders (--runs-from), not trained here
        summary["reused"] = dict(sorted(reused.items()))
    return summary


def uses_conditions(spec: dict[str, Any]) -> bool:
    """Whether a study spec uses training tags or evaluation conditions (then its summary is keyed by them)."""
    return (any(isinstance(e, dict) and "tag" in e for e in spec.get("train", []))
            or any(isinstance(e, dict) and {"tag", "env_kwargs", "train_tags"} & set(e)
                   for e in spec.get("evaluate", [])))


def _sort_key(group: dict[str, Any]) -> tuple:
    """Entries in spec order; within one, untagged runs first, then by training tag, kind and model; levels up."""
    level = -math.inf if group["level"] is None else float(group["level"])
    tag = group.get("train_tag", _UNTAGGED)
    return (group["env"], group["evaluation"], group["perturbation"], tag != _UNTAGGED, tag, group["kind"],
            group["model"], level)


def _group(group: dict[str, Any], by_seed: dict[int, dict[str, Any]], spec: dict[str, Any]) -> dict[str, Any]:
    """``group`` (its key as a dict) completed with the entry's settings and the metrics across seeds."""
    from ncp_control.agents.evaluation.intervals import mean_confidence_interval

    seeds = sorted(by_seed)
    evaluation = spec.get("evaluate", [])[group["evaluation"]]
    if "condition" in group:
        group["env_kwargs"] = evaluation.get("env_kwargs", {})
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
    key = summary.get("key", _KEY)
    columns = [*key, "eval_seed", "episodes", "n_seeds", "seeds"]
    for metric in METRICS:
        columns += [metric, f"{metric}_ci_low", f"{metric}_ci_high", f"{metric}_per_seed"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for group in summary["groups"]:
        row = [group[k] for k in key] + [group["eval_seed"], group["episodes"], group["n_seeds"],
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
             f"session(s); jobs' own time {summary['job_seconds']:.0f} s.", ""]
    by_source: dict[str, list[str]] = {}
    for job_id, source in summary.get("reused", {}).items():
        by_source.setdefault(source, []).append(job_id)
    for source, ids in by_source.items():
        lines += [f"Reused {len(ids)} finished training run(s) of {source} (copied, not trained here): "
                  + ", ".join(ids) + ".", ""]
    lines += [f"Each cell: mean over training seeds [{INTERVAL}]; per-seed values in summary.csv / summary.json.", ""]
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
            title += f": {_condition(first)}" + (f", env_kwargs {json.dumps(first['env_kwargs'])}"
                                                 if first["env_kwargs"] else "")
        lines += [f"{title} ({first['episodes']} episodes from seed {first['eval_seed']})", "",
                  ("| trained " if tagged else "") + "| model | perturbation | level | seeds | " + " | ".join(metrics)
                  + " |", ("|---" if tagged else "") + "|---|---|---|---|" + "---|" * len(metrics)]
        for g in groups:
            cells = [_cell(g["metrics"].get(m)) for m in metrics]
            level = "" if g["level"] is None else g["level"]
            lines.append((f"| {g['train_tag']} " if tagged else "") + f"| {g['kind']}:{g['model']} | "
                         f"{g['perturbation']} | {level} | {g['n_seeds']} | " + " | ".join(cells) + " |")
        lines.append("")
    if not tables:
        lines.append("No evaluation has finished yet.")
    return "\n".join(lines) + "\n"


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
            lines += [f"## {env}, trained {tag}: {metric} by condition", "",
                      "| model | " + " | ".join(conditions) + " |", "|---|" + "---|" * len(conditions)]
            for model in models:
                cells = [_cell(cell[model, c]["metrics"].get(metric)) if (model, c) in cell else ""
                         for c in conditions]
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
        paths.append(_figure(groups, lambda g: 0.0 if g["level"] is None else float(g["level"]), "level",
                             f"{summary['name']}: {env}, evaluation {evaluation}, {perturbation}",
                             out / _file_name(f"summary-{env}-e{evaluation}-{perturbation}")))
    for (env, tag), groups in conditions.items():
        names = list(dict.fromkeys(_condition(g) for g in groups))
        paths.append(_figure(groups, lambda g: names.index(_condition(g)), "condition",
                             f"{summary['name']}: {env}, trained {tag}",
                             out / _file_name(f"summary-{env}-{tag}-conditions"), ticks=names))
    return paths


def _file_name(stem: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) + ".png"


def _figure(groups: list[dict[str, Any]], x_of, x_label: str, title: str, path: Path,
            ticks: Sequence[str] = ()) -> Path:
    """A panel per metric, a line per model over ``x_of(group)``, intervals across seeds as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in METRICS if any(m in g["metrics"] for g in groups)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(4, 0.6 * len(ticks)) * len(metrics), 3.2),
                             squeeze=False)
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
        err = [[0.0 if g["metrics"][metric]["ci_low"] is None else g["metrics"][metric]["mean"]
                - g["metrics"][metric]["ci_low"] for g in rows],
               [0.0 if g["metrics"][metric]["ci_high"] is None else g["metrics"][metric]["ci_high"]
                - g["metrics"][metric]["mean"] for g in rows]]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, linestyle="none" if categorical else "-",
                    label=f"{model} (n={rows[0]['n_seeds']})" if rows else model)
    ax.set_title(metric, fontsize=9)


def separation_verdict(summary: dict, metrics: Sequence[str]) -> list[str]:
    """One line per (env, perturbation, level, metric) of a study's ``summary.json``: the pairs of models whose 95%
    intervals across training seeds do not overlap ("a < b"), or "not separated" (models with one seed are left out).

    A study with conditions (its summary has ``key``) gets one line per (env, condition, perturbation, level,
    metric), ``<env> <condition> [<perturbation> <level>] <metric>: ...``; runs of a tagged training entry are
    named ``<tag>:<model>``, and the pairs compared are models of the same training tag and each model against
    itself under another training tag (e.g. ``dr:lstm < lstm``).
    """
    if "key" in summary:
        return _condition_verdict(summary, metrics)
    cells: dict[tuple, dict[str, dict]] = {}
    for group in summary["groups"]:
        key = (group["env"], group["perturbation"], group["level"])
        cells.setdefault(key, {})[group["model"]] = group
    lines = []
    for (env, perturbation, level), models in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or 0)):
        for metric in metrics:
            found = _separated(models, itertools.combinations(sorted(models), 2), metric)
            lines.append(f"{env} {perturbation} {level} {metric}: " + ("; ".join(found) or "not separated"))
    return lines


def _condition_verdict(summary: dict, metrics: Sequence[str]) -> list[str]:
    cells: dict[tuple, dict[str, dict]] = {}
    for group in summary["groups"]:
        key = (group["env"], group["evaluation"], group["perturbation"], group["level"])
        name = group["model"] if group["train_tag"] == _UNTAGGED else f"{group['train_tag']}:{group['model']}"
        cells.setdefault(key, {})[name] = group
    lines = []
    for (env, _, perturbation, level), runs in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2],
                                                                                    kv[0][3] or 0)):
        pairs = [(a, b) for a, b in itertools.combinations(sorted(runs), 2)
                 if runs[a]["train_tag"] == runs[b]["train_tag"] or runs[a]["model"] == runs[b]["model"]]
        where = " ".join([env, _condition(next(iter(runs.values())))]
                         + ([] if perturbation == "none" else [perturbation, str(level)]))
        for metric in metrics:
            found = _separated(runs, pairs, metric)
            lines.append(f"{where} {metric}: " + ("; ".join(found) or "not separated"))
    return lines


def _separated(groups: dict[str, dict], pairs, metric: str) -> list[str]:
    """``"a < b"`` for each pair whose intervals on ``metric`` do not overlap (both with at least two seeds)."""
    found = []
    for a, b in pairs:
        ma, mb = groups[a]["metrics"].get(metric), groups[b]["metrics"].get(metric)
        if not ma or not mb or groups[a]["n_seeds"] < 2 or groups[b]["n_seeds"] < 2:
            continue
        if ma["ci_high"] < mb["ci_low"]:
            found.append(f"{a} < {b}")
        elif mb["ci_high"] < ma["ci_low"]:
            found.append(f"{b} < {a}")
    return found
