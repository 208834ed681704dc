"""Write a study's docs data and page from its folder: records, rliable summary, verdict, tables and plots.

Copies the study's records into ``--data`` (jobs.jsonl with no machine paths, spec.json, study.json), re-summarises
there (summary.{md,csv,json} and plots, ``ncp-control study-report``'s code), writes ``verdict.txt`` (every pair
of models per condition and metric: "a better than b" where the 95% interval of the probability of improvement
across training seeds lies wholly above 0.5, else "not separated") and renders ``--page`` from those files only:
per metric, one row per condition (perturbation and level) and one column per model, the mean over training seeds
with its 95% stratified-bootstrap interval; then the separated pairs, the share of its own nominal return each
model keeps under each perturbation level (``retention.json``), and ``--notes`` (kept as ``notes.md`` in the data
folder) as a section on what the numbers mean. Rerunning it on the data folder alone
(``--study`` = the data folder) re-renders the page.

    python scripts/study_page.py --study studies/ncp-noise-10 --data docs/data/study_ncp_noise_10 \\
        --page docs/study_ncp_noise_10.md --title "..." --machine "..." [--command "ncp-control study ..."] \\
        [--notes NOTES.md]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from ncp_control.agents.study.spec import UNTAGGED
from ncp_control.agents.study.summary import fine_tuning_effects, separation_verdict, write_summary

METRICS = {
    "completion_rate": ("completion (share of roads)", "{:.2f}"),
    "crash_rate": ("crash rate", "{:.2f}"),
    "mean_abs_lateral_m": ("mean |lateral offset| (m)", "{:.3f}"),
    "mean_return": ("mean return", "{:.0f}"),
}


def drop_machine_paths(jobs: Path) -> None:
    """A reused run's record names the study it came from (``reused_from``): keep only that folder's name."""
    records = [json.loads(line) for line in jobs.read_text().splitlines() if line.strip()]
    for record in records:
        if record.get("reused_from"):
            record["reused_from"] = f"studies/{Path(record['reused_from']).name}"
    jobs.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def copy_study(study: Path, data: Path) -> dict:
    """The records, spec and sessions into ``data`` (no machine paths), re-summarised there, with the verdict."""
    data.mkdir(parents=True, exist_ok=True)
    if study.resolve() != data.resolve():
        for name in ("jobs.jsonl", "spec.json", "study.json"):
            shutil.copy2(study / name, data / name)
        drop_machine_paths(data / "jobs.jsonl")
    summary = write_summary(data)
    metrics = [m for m in METRICS if any(m in g["metrics"] for g in summary["groups"])]
    (data / "verdict.txt").write_text("\n".join(separation_verdict(summary, metrics)) + "\n")
    (data / "retention.json").write_text(json.dumps(retention(summary), indent=1) + "\n")
    return summary


def retention(summary: dict, metric: str = "mean_return") -> list[dict]:
    """How much of its own nominal ``metric`` each model keeps under each perturbation level: per training seed,
    the run's value at the level over its value at the perturbation's neutral level (``mass`` 1, ``crosswind`` 0,
    ...; both evaluated in the study), then the IQM over seeds with its stratified-bootstrap interval and every
    pair of models compared by the probability of improvement (rliable). A model whose nominal value is not
    positive for every seed is left out (the share would mean nothing). One row per (env, perturbation, level)."""
    from ncp_control.agents.evaluation.statistics import aggregate_intervals, pairwise_improvement, separated
    from ncp_control.envs.perturbations import PERTURBATIONS

    values: dict[tuple, dict[int, float]] = {}
    for g in summary["groups"]:
        if g["perturbation"] in PERTURBATIONS and metric in g["metrics"]:
            key = (g["env"], g.get("condition") or "", g.get("train_tag", UNTAGGED), g["perturbation"], g["level"])
            values[(*key, g["model"])] = dict(zip(g["seeds"], g["metrics"][metric]["per_seed"]))
    shares: dict[tuple, dict[str, list[float]]] = {}
    for (env, condition, tag, name, level, model), at_level in values.items():
        nominal = values.get((env, condition, tag, name, PERTURBATIONS[name].neutral, model))
        if level == PERTURBATIONS[name].neutral or nominal is None:
            continue
        seeds = sorted(set(at_level) & set(nominal))
        if seeds and all(nominal[seed] > 0 for seed in seeds):
            shares.setdefault((env, condition, tag, name, level), {})[model] = [
                at_level[seed] / nominal[seed] for seed in seeds
            ]
    rows = []
    for (env, condition, tag, name, level), by_model in sorted(shares.items(), key=lambda item: _row_order(item[0])):
        scores = {model: [[x] for x in xs] for model, xs in by_model.items()}  # runs x one task
        stats, pairs = aggregate_intervals(scores), pairwise_improvement(scores)
        verdicts = [separated(a, b, c["prob_improvement_ci"]) for (a, b), c in pairs.items()]
        rows.append(
            {
                "env": env,
                **({"condition": condition} if condition else {}),
                **({"train_tag": tag} if tag != UNTAGGED else {}),
                "perturbation": name,
                "level": level,
                "metric": metric,
                "models": {
                    m: {"iqm": st["iqm"], "iqm_ci": st["iqm_ci"], "n_seeds": st["n_runs"]} for m, st in stats.items()
                },
                "separated": [v for v in verdicts if v],
            }
        )
    return rows


def _retention_lines(rows: list[dict], models: list[str]) -> list[str]:
    if not rows:
        return []
    lines = [
        "## Share of its own nominal return each model keeps [95% interval]",
        "",
        "Per training seed, the run's mean return under the change over its mean return in the nominal env (the "
        "perturbation's neutral level, evaluated on the same episodes); the IQM over seeds (robust to a seed whose "
        "nominal return is near 0, which makes its share huge) with its stratified-bootstrap interval. The last column: pairs whose probability of keeping more lies wholly above 0.5 (rliable). A "
        "model with a nominal return that is not positive for every seed is left blank.",
        "",
        "| condition | " + " | ".join(models) + " | separated |",
        "|---|" + "---|" * (len(models) + 1),
    ]
    for row in rows:
        cells = []
        for model in models:
            stats = row["models"].get(model)
            if stats is None:
                cells.append("")
            elif stats["iqm_ci"] is None:
                cells.append(f"{stats['iqm']:.2f} (1 seed)")
            else:
                cells.append(f"{stats['iqm']:.2f} [{stats['iqm_ci'][0]:.2f}, {stats['iqm_ci'][1]:.2f}]")
        where = f"{row['env']} {row['perturbation']} {row['level']:g}" + _trained(row.get("train_tag", UNTAGGED))
        lines.append(f"| {where} | " + " | ".join(cells) + f" | {'; '.join(row['separated']) or 'not separated'} |")
    return [*lines, ""]


def _row_order(key: tuple) -> tuple:
    """Retention rows: by env, evaluation condition, perturbation and level, the training tags of a level together
    (imitation first)."""
    env, condition, tag, name, level = key
    return (env, condition, name, level, tag != UNTAGGED, tag)


def _training_tags(summary: dict) -> list[str]:
    """The training tags of a summary's groups, the untagged runs first."""
    return sorted({g.get("train_tag", UNTAGGED) for g in summary["groups"]}, key=lambda t: (t != UNTAGGED, t))


def _trained(tag: str) -> str:
    """How a row's runs were trained, in a study with training tags (nothing for the untagged runs)."""
    return "" if tag == UNTAGGED else f", {tag}"


def _condition(group: dict, with_env: bool = False) -> str:
    """The perturbation and level of a group, after its evaluation condition (a tagged study's evaluation entry)
    and its env where the study evaluates on several."""
    what = "none" if group["perturbation"] == "none" else f"{group['perturbation']} {group['level']:g}"
    if group.get("condition"):
        what = group["condition"] if group["perturbation"] == "none" else f"{group['condition']} {what}"
    return f"{group['env']} {what}" if with_env else what


def _tables(summary: dict, models: list[str]) -> list[str]:
    """One table per metric: a row per condition (and per training tag, in a study with them, the tags of a
    condition together), a column per model."""
    conditions: list[str] = []
    cells: dict[tuple[str, str, str], str] = {}
    with_env = len({g["env"] for g in summary["groups"]}) > 1
    tags = _training_tags(summary)
    for g in sorted(summary["groups"], key=lambda g: g["env"]) if with_env else summary["groups"]:
        if _condition(g, with_env) not in conditions:
            conditions.append(_condition(g, with_env))
    conditions = [c + _trained(t) for c in conditions for t in tags]
    for g in summary["groups"]:
        condition = _condition(g, with_env) + _trained(g.get("train_tag", UNTAGGED))
        for metric, stats in g["metrics"].items():
            fmt = METRICS.get(metric, (metric, "{:.3g}"))[1]
            if stats["mean_ci"] is None:  # one seed so far: no interval
                cells[metric, condition, g["model"]] = f"{fmt.format(stats['mean'])} (1 seed)"
                continue
            low, high = stats["mean_ci"]
            cells[metric, condition, g["model"]] = (
                f"{fmt.format(stats['mean'])} [{fmt.format(low)}, {fmt.format(high)}]"
            )
    lines: list[str] = []
    for metric, (title, _) in METRICS.items():
        if not any(key[0] == metric for key in cells):
            continue
        lines += [f"### {title}", "", "| condition | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
        for condition in conditions:
            row = [cells.get((metric, condition, m), "") for m in models]
            if any(row):
                lines.append(f"| {condition} | " + " | ".join(row) + " |")
        lines.append("")
    return lines


def _fine_tuning_lines(summary: dict, spec: dict, models: list[str]) -> list[str]:
    """In a study with fine-tuning entries: per metric, P(fine-tuned better than the same model's imitation runs)
    across training seeds with its 95% interval (:func:`fine_tuning_effects`), a row per (condition, tag), bold
    where the interval lies wholly above or below 0.5."""
    found: dict[tuple[str, str, str], tuple[float, list[float]]] = {}
    rows: list[str] = []
    effects = fine_tuning_effects(summary, spec)
    with_env = len({e["env"] for e in effects}) > 1
    for e in effects:
        where = _condition(e, with_env) + _trained(e["tag"])
        if where not in rows:
            rows.append(where)
        found[e["metric"], where, e["model"]] = (e["prob_improvement"], e["prob_improvement_ci"])
    if not found:
        return []
    lines = [
        "## What fine-tuning bought each model",
        "",
        "P(the fine-tuned runs better than the same model's imitation runs) across training seeds (rliable's "
        "probability of improvement, each fine-tuned run against every imitation run of its model) with its 95% "
        "stratified-bootstrap interval; **bold** where the interval lies wholly above 0.5 (fine-tuning better) or "
        "wholly below (worse). Better: higher completion and return, lower crash rate and |lateral offset|.",
        "",
    ]
    for metric, (title, _) in METRICS.items():
        if not any(key[0] == metric for key in found):
            continue
        lines += [f"### {title}", "", "| condition | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
        for where in rows:
            cells = []
            for model in models:
                if (metric, where, model) not in found:
                    cells.append("")
                    continue
                p, (low, high) = found[metric, where, model]
                text = f"{p:.2f} [{low:.2f}, {high:.2f}]"
                cells.append(f"**{text}**" if low > 0.5 or high < 0.5 else text)
            lines.append(f"| {where} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _notes(data: Path) -> list[str]:
    """The data folder's ``notes.md`` (what the numbers mean, written by hand with ``--notes``) as a section."""
    notes = data / "notes.md"
    if not notes.is_file():
        return []
    return ["## Reading the numbers", "", notes.read_text().strip(), ""]


def _trainings(summary: dict) -> str:
    """In a study with training tags: how the runs of each tag were trained (the tags' names), before the
    evaluations."""
    tags = _training_tags(summary)
    if tags == [UNTAGGED]:
        return ""
    return "trained as " + ", ".join("untagged" if t == UNTAGGED else t for t in tags) + " (see the spec); "


def _evaluation_text(entry: dict, several_envs: bool) -> str:
    """One evaluation entry of the spec in words: its condition's tag, env, episodes, perturbations and look."""
    where = (f"{entry['tag']}: " if entry.get("tag") else "") + (f"{entry['env']}: " if several_envs else "")
    what = ", ".join(entry.get("perturb", [])) or "no perturbation"
    look = f" with env_kwargs {json.dumps(entry['env_kwargs'])}" if entry.get("env_kwargs") else ""
    return f"{where}{entry['episodes']} episodes from reset seed {entry['seed']} under {what}{look}"


def page(data: Path, title: str, machine: str, command: str, page_path: str = "docs/STUDY.md") -> str:
    summary = json.loads((data / "summary.json").read_text())
    spec = json.loads((data / "spec.json").read_text())
    verdict = (data / "verdict.txt").read_text().splitlines()
    jobs = summary["jobs"]
    models = sorted({g["model"] for g in summary["groups"]})
    seeds = sorted({s for g in summary["groups"] for s in g["seeds"]})
    separated = [line for line in verdict if "better than" in line]
    n_pairs = sum(len(line.rsplit(": ", 1)[1].split("; ")) for line in separated)
    tested = sum(1 for c in summary["comparisons"] if c["metric"] in METRICS)
    evaluations = spec.get("evaluate", [])
    several_envs = len({e.get("env") for e in evaluations}) > 1
    lines = [
        f"# {title}",
        "",
        f"- Made by: `{command}`; data and this page by `python scripts/study_page.py --study DIR --data "
        f"docs/data/{data.name} --page {page_path} --title ... --machine ...`.",
        f"- Machine: {machine}. Jobs' own time {summary['job_seconds']:,.0f} s of one core; wall time "
        f"{summary['wall_seconds']:,.0f} s over {summary['sessions']} driver session(s).",
        f"- **State: {jobs['done']} of {jobs['total']} jobs done** ({jobs['failed']} failed)"
        + (
            "."
            if jobs["done"] == jobs["total"]
            else ": continued with `--resume`; the numbers are from the runs so far."
        ),
        f"- Protocol: models {', '.join(models)} x training seeds {seeds[0]}-{seeds[-1]} ({len(seeds)}); "
        + _trainings(summary)
        + "; ".join(_evaluation_text(e, several_envs) for e in evaluations)
        + f". Statistics: {summary['statistics']}.",
        f"- Data: [data/{data.name}/](data/{data.name}/) (summary.{{md,csv,json}} with per-seed values, IQMs and every "
        "pair's probability of improvement; jobs.jsonl; spec.json; study.json; verdict.txt; plots).",
        "",
        "## Verdict",
        "",
        f"{n_pairs} of {tested} pairs separated, over {len(separated)} (condition, metric) cells (a pair is separated where the 95% interval of "
        "P(a better than b) across training seeds lies wholly above 0.5; better: higher completion and return, lower "
        "crash rate and |lateral offset|). With this many tests some separations are expected by chance; a "
        "separation says the seeds order consistently, not that the gap is large (see the tables).",
        "",
        "```",
        *(separated or ["(no pair separated)"]),
        "(every other comparison: not separated)",
        "```",
        "",
        *_notes(data),
        *_fine_tuning_lines(summary, spec, models),
        *(
            _retention_lines(json.loads((data / "retention.json").read_text()), models)
            if (data / "retention.json").is_file()
            else []
        ),
        "## Means across training seeds [95% interval]",
        "",
        *_tables(summary, models),
        "## Plots",
        "",
        *[f"![{p.name}](data/{data.name}/{p.name})" for p in sorted(data.glob("*.png"))],
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, required=True, help="the study folder (or the data folder itself)")
    parser.add_argument("--data", type=Path, required=True, help="docs data folder to write")
    parser.add_argument("--page", type=Path, required=True, help="the page to write")
    parser.add_argument("--title", required=True)
    parser.add_argument("--machine", required=True, help="where and when it ran")
    parser.add_argument("--command", default=None, help="the study command (default: from the spec's name)")
    parser.add_argument(
        "--notes", type=Path, default=None, help="a markdown file on what the numbers mean (kept as DATA/notes.md)"
    )
    args = parser.parse_args(argv)
    if args.notes is not None and not args.notes.is_file():
        parser.error(f"--notes {args.notes}: no such file")
    copy_study(args.study, args.data)
    if args.notes is not None and args.notes.resolve() != (args.data / "notes.md").resolve():
        shutil.copy2(args.notes, args.data / "notes.md")
    spec = json.loads((args.data / "spec.json").read_text())
    command = args.command or f"ncp-control study {spec['name']} --out DIR --num-cpus 2 --resume"
    args.page.write_text(page(args.data, args.title, args.machine, command, f"docs/{args.page.name}"))
    print(f"wrote {args.data}/ and {args.page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
