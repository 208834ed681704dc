"""Write the PendulumNoVel-v1 10-seed study's data and page (issue 25, items 2c and 3) from a study folder.

Copies the study's records and spec into ``--data`` (jobs.jsonl, spec.json, study.json), re-summarises there with
rliable (summary.{md,csv,json}, profile plots; the IQM-against-steps plot is drawn in the study folder, which holds
the runs, and copied), extracts every run's training curve (its periodic evaluations, ``eval/evaluations.npz``) into
``curves.json``, writes ``verdict.txt`` and renders the page ``--page`` from those files only.

Issue 25 item 3 adds optional inputs: ``--kl-study`` (the pendulum-novel-ltc-kl study folder: the LTC preset
beside the same preset with PPO's target_kl), copied and re-summarised into ``--kl-data``; and the per-seed
diagnosis of ``scripts/ltc_seed_diagnosis.py``, read from ``DATA/ltc_seed_diagnosis.json`` when it is there; and
``--output-study`` (the pendulum-novel-ltc-output study: squashed actions and a smaller initial spread beside the
preset) into ``--output-data``.

    python scripts/study_pendulum_novel.py --study studies/pendulum-novel-10 \
        --data docs/data/study_pendulum_novel_10 --page docs/study_pendulum_novel_10.md --machine "..." \
        [--kl-study studies/pendulum-novel-ltc-kl --kl-data docs/data/study_pendulum_novel_ltc_kl --kl-machine "..."] \
        [--output-study studies/pendulum-novel-ltc-output --output-data docs/data/study_pendulum_novel_ltc_output \
         --output-machine "..."]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

import numpy as np
from study_page import drop_machine_paths  # scripts/study_page.py (this script's folder is on sys.path)

from ncp_control.agents.runs.files import write_json_atomic
from ncp_control.agents.study.summary import read_records, separation_verdict, write_summary

#: a run counts as having learned the swing-up and hold once a periodic evaluation reaches this mean return
LEARNED = -250.0
#: from this many training steps on, checkpoint-to-checkpoint changes count as late-training movement
LATE = 60_000


def copy_study(study: Path, data: Path) -> dict:
    """The records, spec and sessions into ``data``, re-summarised there; the efficiency plot from the study."""
    data.mkdir(parents=True, exist_ok=True)
    for name in ("jobs.jsonl", "spec.json", "study.json"):
        shutil.copy2(study / name, data / name)
    drop_machine_paths(data / "jobs.jsonl")
    write_summary(study)  # in the study folder: it has the runs' evaluation curves
    for plot in study.glob("efficiency-*.png"):
        shutil.copy2(plot, data / plot.name)
    summary = write_summary(data)
    (data / "verdict.txt").write_text("\n".join(separation_verdict(summary, ["mean_return"])) + "\n")
    return summary


def curves(study: Path) -> dict[str, dict]:
    """Per finished training run: its periodic evaluations during training (SB3's EvalCallback: ``eval_episodes``
    episodes continuing one env's stream from ``eval_seed``, so other episodes at each point), its held-out mean
    return and, for the LTC runs, every saved checkpoint evaluated on the held-out episodes."""
    records = read_records(study)
    entry = json.loads((study / "spec.json").read_text())["evaluate"][0]
    heldout = {
        Path(r["spec"]["run"]).name: r["rows"][0]["mean_return"]
        for r in records.values()
        if r["spec"]["type"] == "evaluate" and r["status"] == "done"
    }
    found: dict[str, dict] = {}
    for run_id in sorted(heldout):
        path = study / "runs" / run_id / "eval" / "evaluations.npz"
        if not path.is_file():
            continue
        with np.load(path) as npz:
            steps, results = npz["timesteps"].tolist(), npz["results"].mean(axis=1).tolist()
        found[run_id] = {"steps": steps, "eval_mean_return": results, "heldout_mean_return": heldout[run_id]}
        if _model(run_id)[0] == "ltc":
            found[run_id]["checkpoints_heldout"] = checkpoint_returns(
                study / "runs" / run_id, entry["episodes"], entry["seed"]
            )
    return found


def checkpoint_returns(run_dir: Path, episodes: int, seed: int) -> list[tuple[int, float]]:
    """``(steps, held-out mean return)`` of every checkpoint the run saved and of its final policy, each evaluated
    with ``evaluate`` on the same episodes (``seed + i``): a like-for-like curve of one seed's training."""
    import tempfile

    import torch

    from ncp_control.agents.evaluation.episodes import evaluate
    from ncp_control.agents.ppo.run_folder import (
        CONFIG_FILE,
        NORMALIZER_FILE,
        POLICY_FILE,
        data_checkpoint_paths,
        data_checkpoints,
    )
    from ncp_control.agents.runs.load import load_run

    torch.set_num_threads(1)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for steps, policy in data_checkpoints(run_dir):
            folder = Path(tmp) / str(steps)
            folder.mkdir()
            shutil.copy2(run_dir / CONFIG_FILE, folder / CONFIG_FILE)
            shutil.copy2(policy, folder / POLICY_FILE)
            shutil.copy2(data_checkpoint_paths(policy.parent, steps)[1], folder / NORMALIZER_FILE)
            loaded = load_run(folder)
            out.append((steps, float(evaluate(loaded.predictor, loaded.env_id, episodes, seed)["mean_return"])))
    return out


def _model(run_id: str) -> tuple[str, int]:
    """``ppo-PendulumNoVel-v1-ltc-s3`` -> ``("ltc", 3)``."""
    head, seed = run_id.rsplit("-s", 1)
    return head.rsplit("-", 1)[1], int(seed)


def _interval(ci) -> str:
    return "-" if ci is None else f"[{ci[0]:.0f}, {ci[1]:.0f}]"


def _page_header(spec: dict, summary: dict, study: dict, machine: str) -> list[str]:
    """The page's title and the list of how, where and what (made by, machine, state, protocol, data)."""
    entry, evaluation = spec["train"][0], spec["evaluate"][0]
    jobs = summary["jobs"]
    return [
        f"# Memory on PendulumNoVel-v1 across {len(entry['seeds'])} training seeds (shipped study "
        f"agents/configs/studies/{spec['name']}.json)",
        "",
        f"- Made by: `ncp-control study {spec['name']} --out DIR --num-cpus 2 --resume`; "
        f"data and this page by `python scripts/study_pendulum_novel.py --study DIR --data "
        f"docs/data/study_pendulum_novel_10 --page docs/study_pendulum_novel_10.md`.",
        f"- Machine: {machine}. The study's driver sessions: {len(study.get('sessions', []))}; its jobs took "
        f"{summary['job_seconds']:,.0f} s of one core.",
        f"- **State: {jobs['done']} of {jobs['total']} jobs done** ({jobs['failed']} failed)"
        + (
            "."
            if jobs["done"] == jobs["total"]
            else ": the study continues with `--resume`; every number below is from the runs finished so far."
        ),
        f"- Protocol: PPO with the presets of agents/configs/ppo.json, {entry['timesteps']:,} steps per run, policies "
        f"{', '.join(entry['policies'])} x seeds {entry['seeds'][0]}-{entry['seeds'][-1]}; each run evaluated "
        f"deterministically on the same {evaluation['episodes']} episodes (seeds {evaluation['seed']}-"
        f"{evaluation['seed'] + evaluation['episodes'] - 1}), and every {entry['config']['eval_freq']:,} steps "
        f"during training on {entry['config']['eval_episodes']} other episodes (from seed "
        f"{entry['config']['eval_seed']}): the training curves. Statistics: {summary['statistics']}.",
        "- Data: [data/study_pendulum_novel_10/](data/study_pendulum_novel_10/) (summary.{md,csv,json}, jobs.jsonl, "
        "spec.json, study.json, curves.json, verdict.txt, profile-*.png, efficiency-*.png).",
        "",
    ]


def page(
    data: Path,
    machine: str,
    kl_data: Path | None = None,
    kl_machine: str = "",
    output_data: Path | None = None,
    output_machine: str = "",
) -> str:
    summary = json.loads((data / "summary.json").read_text())
    spec = json.loads((data / "spec.json").read_text())
    runs = json.loads((data / "curves.json").read_text())
    study = json.loads((data / "study.json").read_text())
    lines = [
        *_page_header(spec, summary, study, machine),
        "## Held-out mean return across training seeds",
        "",
        "| policy | seeds | mean [95% CI] | IQM [95% CI] | per seed |",
        "|---|---|---|---|---|",
    ]
    for g in summary["groups"]:
        m = g["metrics"]["mean_return"]
        lines.append(
            f"| {g['model']} | {g['n_seeds']} | {m['mean']:.0f} {_interval(m['mean_ci'])} | {m['iqm']:.0f} "
            f"{_interval(m['iqm_ci'])} | {', '.join(f'{v:.0f}' for v in m['per_seed'])} |"
        )
    lines += [
        "",
        "## Verdict (probability of improvement across training seeds)",
        "",
        "P(a better than b): the probability that a training seed of a returns more than one of b, with its 95% "
        "stratified-bootstrap interval; separated where the interval lies wholly above 0.5.",
        "",
        "| pair | P(a better than b) [95% CI] | verdict |",
        "|---|---|---|",
    ]
    for c in summary["comparisons"]:
        if c["metric"] != "mean_return":
            continue
        low, high = c["prob_improvement_ci"]
        verdict = (
            f"{c['a']} better than {c['b']}"
            if low > 0.5
            else f"{c['b']} better than {c['a']}"
            if high < 0.5
            else "not separated"
        )
        lines.append(f"| {c['a']} vs {c['b']} | {c['prob_improvement']:.2f} [{low:.2f}, {high:.2f}] | {verdict} |")
    lines += ["", *_ltc_section(runs, kl_data is not None and (kl_data / "summary.json").is_file())]
    if kl_data is not None and (kl_data / "summary.json").is_file():
        lines += ["", *_kl_section(kl_data, kl_machine)]
    if (data / "ltc_seed_diagnosis.json").is_file():
        lines += ["", *_diagnosis_section(json.loads((data / "ltc_seed_diagnosis.json").read_text()))]
    if output_data is not None and (output_data / "summary.json").is_file():
        lines += ["", *_output_section(output_data, output_machine)]
    lines += ["", "## Plots", ""]
    lines += [f"![{p}](data/study_pendulum_novel_10/{p})" for p in sorted(x.name for x in data.glob("*.png"))]
    return "\n".join(lines) + "\n"


def _ltc_section(runs: dict[str, dict], kl_done: bool = False) -> list[str]:
    """Issue 25 item 3: does each LTC seed learn at some point of training, and where does it end?"""
    ltc = {_model(k)[1]: v["checkpoints_heldout"] for k, v in runs.items() if "checkpoints_heldout" in v}
    if not ltc:
        return []
    steps = sorted({s for points in ltc.values() for s, _ in points})
    lines = [
        "## The LTC's failed seeds",
        "",
        "Every checkpoint each LTC run saved, evaluated like the final policy (the same held-out episodes, the same "
        "code): held-out mean return by training steps. The last column is the final policy.",
        "",
        "| seed | " + " | ".join(f"{s:,}" for s in steps) + " |",
        "|---|" + "---|" * len(steps),
    ]
    for seed, points in sorted(ltc.items()):
        values = dict(points)
        lines.append(f"| {seed} | " + " | ".join(f"{values[s]:.0f}" if s in values else "" for s in steps) + " |")
    final = {seed: points[-1][1] for seed, points in ltc.items()}
    best = {seed: max(v for _, v in points) for seed, points in ltc.items()}
    never = sorted(seed for seed, v in best.items() if v < LEARNED)
    lost = sorted(seed for seed, v in final.items() if v < LEARNED and best[seed] >= LEARNED)
    late = [abs(b - a) for points in ltc.values() for (s, a), (_, b) in zip(points, points[1:]) if s >= LATE]
    last = [points[-1][1] - points[-2][1] for points in ltc.values() if len(points) > 1]
    lines += [
        "",
        f"Two ways to end below {LEARNED:.0f}: {len(never)} of {len(ltc)} seeds never reach it at any checkpoint "
        f"(seeds {', '.join(map(str, never)) or 'none'}), and {len(lost)} reach it "
        f"and end below it (seeds {', '.join(map(str, lost)) or 'none'}). From {LATE:,} steps on, the held-out "
        f"return moves by a median of {statistics.median(late):.0f} (largest {max(late):.0f}) between consecutive "
        f"checkpoints; over the last update or two (the last checkpoint before the end to the final policy) the "
        f"median change is {statistics.median(last):+.0f}, from {min(last):+.0f} to {max(last):+.0f}. So the final "
        "number of a seed is partly where an unsettled policy happens to stop. "
        + (
            "Bounding each update was tried (below) and made it worse."
            if kl_done
            else "Levers to try: bound each update (agents/configs/studies/pendulum-novel-ltc-kl.json puts the "
            "preset beside the same preset with PPO's target_kl), and a longer budget for the seeds that are still "
            "climbing."
        ),
        "",
        "The training curves of the plot below are SB3's periodic evaluations (10 episodes each, continuing one "
        "env's episode stream, so other episodes at each point): noisier than this table, and not comparable "
        "with the held-out numbers.",
    ]
    return lines


def _kl_section(kl_data: Path, machine: str) -> list[str]:
    """The LTC preset against the same preset with PPO's target_kl, from the pendulum-novel-ltc-kl study."""
    summary = json.loads((kl_data / "summary.json").read_text())
    spec = json.loads((kl_data / "spec.json").read_text())
    kl = next(e for e in spec["train"] if e.get("tag"))
    lines = [
        f"## Bounding each update: the LTC preset with target_kl {kl['config']['algo']['target_kl']}",
        "",
        f"The shipped study `{spec['name']}` trains the LTC preset with PPO's `target_kl` = "
        f"{kl['config']['algo']['target_kl']} (an epoch loop stops once the approximate KL divergence to the "
        f"rollout's policy passes 1.5 x target_kl), {len(kl['seeds'])} seeds, beside the preset's own runs "
        "(this study's, reused), on the same held-out episodes. Made by "
        f"`ncp-control study {spec['name']} --out DIR --num-cpus 1 --runs-from PENDULUM_NOVEL_10_DIR --resume`; "
        f"machine: {machine}; jobs' own time {summary['job_seconds']:,.0f} s. Data: "
        f"[data/{kl_data.name}/](data/{kl_data.name}/).",
        "",
        "| training | seeds | mean [95% CI] | IQM [95% CI] | per seed |",
        "|---|---|---|---|---|",
    ]
    for g in summary["groups"]:
        m = g["metrics"]["mean_return"]
        name = "preset + target_kl" if g.get("train_tag") == kl["tag"] else "preset"
        lines.append(
            f"| {name} | {g['n_seeds']} | {m['mean']:.0f} {_interval(m['mean_ci'])} | {m['iqm']:.0f} "
            f"{_interval(m['iqm_ci'])} | {', '.join(f'{v:.0f}' for v in m['per_seed'])} |"
        )
    for c in summary["comparisons"]:
        if c["metric"] == "mean_return":
            low, high = c["prob_improvement_ci"]
            winner = c["a"] if low > 0.5 else c["b"] if high < 0.5 else None
            loser = c["b"] if winner == c["a"] else c["a"]
            lines += [
                "",
                f"P({c['a']} better than {c['b']}) = {c['prob_improvement']:.2f} [{low:.2f}, {high:.2f}]: "
                + (f"{winner} better than {loser} (separated)." if winner else "not separated."),
            ]
    lines += [
        "",
        "Bounding the updates slows learning far more than it steadies it: the training curves of the target_kl "
        "runs still climb at 100k steps (efficiency plot below), so the KL bound trades the LTC's unsettled end "
        "for a policy that has not yet learned. The preset stays as it is.",
        "",
        *[f"![{p.name}](data/{kl_data.name}/{p.name})" for p in sorted(kl_data.glob("efficiency-*.png"))],
    ]
    return lines


def _output_section(output_data: Path, machine: str) -> list[str]:
    """The LTC preset against two ways to bound its actor's output (the pendulum-novel-ltc-output study): each
    tagged training entry is a lever, named by its tag and described by the settings it adds to the preset."""
    summary = json.loads((output_data / "summary.json").read_text())
    spec = json.loads((output_data / "spec.json").read_text())
    levers = {e["tag"]: e["config"] for e in spec["train"] if e.get("tag")}

    def added(config: dict) -> str:
        parts = [
            f"{section}.{k} = {json.dumps(v)}"
            for section in ("algo", "policy_kwargs")
            for k, v in config.get(section, {}).items()
        ]
        return ", ".join(parts)

    lines = [
        "## Bounding the actor's output: squashed actions, a smaller initial spread",
        "",
        f"The diagnosis above points at the torque limit. The shipped study `{spec['name']}` trains the LTC preset "
        f"with one change each, {len(next(iter(spec['train']))['seeds'])} seeds, beside the preset's own runs (this "
        "study's, reused), on the same held-out episodes: "
        + "; ".join(f"`{tag}`: {added(config)}" for tag, config in levers.items())
        + ". Made by "
        f"`ncp-control study {spec['name']} --out DIR --num-cpus 1 --runs-from PENDULUM_NOVEL_10_DIR --resume`; "
        f"machine: {machine}; jobs' own time {summary['job_seconds']:,.0f} s. Data: "
        f"[data/{output_data.name}/](data/{output_data.name}/).",
        "",
        "| training | seeds | mean [95% CI] | IQM [95% CI] | per seed |",
        "|---|---|---|---|---|",
    ]
    for g in summary["groups"]:
        m = g["metrics"]["mean_return"]
        name = f"preset + {g['train_tag']}" if g.get("train_tag") in levers else "preset"
        lines.append(
            f"| {name} | {g['n_seeds']} | {m['mean']:.0f} {_interval(m['mean_ci'])} | {m['iqm']:.0f} "
            f"{_interval(m['iqm_ci'])} | {', '.join(f'{v:.0f}' for v in m['per_seed'])} |"
        )
    worse = []
    lines.append("")
    for c in summary["comparisons"]:
        if c["metric"] != "mean_return":
            continue
        low, high = c["prob_improvement_ci"]
        winner = c["a"] if low > 0.5 else c["b"] if high < 0.5 else None
        loser = c["b"] if winner == c["a"] else c["a"]
        if winner is not None and ":" not in winner and ":" in loser:
            worse.append(loser.split(":")[0])
        lines.append(
            f"- P({c['a']} better than {c['b']}) = {c['prob_improvement']:.2f} [{low:.2f}, {high:.2f}]: "
            + (f"{winner} better than {loser} (separated)." if winner else "not separated.")
        )
    verdict = (
        "Both levers make the LTC worse, separated from the preset: the preset stays as it is, and the LTC "
        "remains below the CfC on this task (see the verdict above)."
        if sorted(worse) == sorted(levers)
        else f"Separated below the preset: {', '.join(worse) or 'none'}; the others are not separated from it."
    )
    lines += ["", verdict, ""]
    lines += [f"![{p.name}](data/{output_data.name}/{p.name})" for p in sorted(output_data.glob("efficiency-*.png"))]
    return lines


def _diagnosis_section(record: dict) -> list[str]:
    """What the failed LTC seeds do differently (scripts/ltc_seed_diagnosis.py)."""
    rows = record["seeds"]
    failed = [r for r in rows if r["failed"]]
    lines = [
        "## What the failed seeds do",
        "",
        f"Per seed, the final actor (`scripts/ltc_seed_diagnosis.py`, {record['date']}, {record['machine']}): the "
        f"held-out return of the study; the leak time constants tau = cm / gleak of its LTC neurons (seconds; "
        f"synapses only shorten them); and its torque on {record['episodes']} held-out episodes (share of steps "
        f"at the 2 N m limit, standard deviation). A seed has failed below {record['threshold']:.0f}. Data: "
        "[ltc_seed_diagnosis.json](data/study_pendulum_novel_10/ltc_seed_diagnosis.json).",
        "",
        "| seed | held-out return | failed | tau median (s) | tau range (s) | torque at limit | torque std |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['heldout_return']:.0f} | {'yes' if r['failed'] else 'no'} | "
            f"{r['tau_median_s']:.2f} | {r['tau_min_s']:.2f}-{r['tau_max_s']:.1f} | {r['torque_at_limit']:.2f} | "
            f"{r['torque_std']:.2f} |"
        )
    groups = record["groups"]
    ok_limit = [r["torque_at_limit"] for r in rows if not r["failed"]]
    fastest_ok = max(r["tau_median_s"] for r in rows if not r["failed"])
    fast = [r["seed"] for r in failed if r["tau_median_s"] <= fastest_ok]
    above = [r["seed"] for r in failed if r["torque_at_limit"] > max(ok_limit)]
    lines += [
        "",
        f"The torque separates the groups better than the time constants, though not cleanly: {len(above)} of the "
        f"{len(failed)} failed seeds (seeds {', '.join(map(str, above)) or 'none'}) spend more of their steps at "
        f"the torque limit than any seed that learned (median {groups['torque_at_limit']['failed_median']:.0%} "
        f"of steps against {groups['torque_at_limit']['ok_median']:.0%}; largest among those that learned "
        f"{max(ok_limit):.0%}), with a wider torque spread (median std {groups['torque_std']['failed_median']:.2f} "
        f"against {groups['torque_std']['ok_median']:.2f} N m): more bang-bang pumping than catching. Their "
        f"neurons are slower on median ({groups['tau_median_s']['failed_median']:.2f} s against "
        f"{groups['tau_median_s']['ok_median']:.2f} s), but "
        + (
            f"the ranges overlap (failed seeds {', '.join(str(s) for s in fast)} have neurons as fast as a seed "
            "that learned), so the time constants alone do not tell a failed seed. "
            if fast
            else "with so few seeds that learned, that is no test either. "
        )
        + f"With {len(rows) - len(failed)} seeds that learned this is a description, not a test; the next levers "
        "are the actor's output range (a squashed mean, or a smaller initial action spread) and a longer budget.",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, required=True, help="the study folder (with runs/)")
    parser.add_argument("--data", type=Path, required=True, help="docs data folder to write")
    parser.add_argument("--page", type=Path, required=True, help="the page to write")
    parser.add_argument("--machine", required=True, help="where and when it ran, for the page")
    parser.add_argument("--kl-study", type=Path, help="the pendulum-novel-ltc-kl study folder (optional)")
    parser.add_argument("--kl-data", type=Path, help="docs data folder for it (with --kl-study, or already written)")
    parser.add_argument("--kl-machine", default="", help="where and when the kl study ran")
    parser.add_argument("--output-study", type=Path, help="the pendulum-novel-ltc-output study folder (optional)")
    parser.add_argument("--output-data", type=Path, help="docs data folder for it (with --output-study, or written)")
    parser.add_argument("--output-machine", default="", help="where and when the output study ran")
    args = parser.parse_args(argv)
    if args.kl_study is not None:
        if args.kl_data is None:
            parser.error("--kl-study needs --kl-data")
        copy_study(args.kl_study, args.kl_data)
    if args.output_study is not None:
        if args.output_data is None:
            parser.error("--output-study needs --output-data")
        copy_study(args.output_study, args.output_data)
    # a later sitting may lack the earlier sittings' run folders: keep the curves already extracted from them
    earlier = args.data / "curves.json"
    kept = json.loads(earlier.read_text()) if earlier.is_file() else {}
    copy_study(args.study, args.data)
    write_json_atomic(args.data / "curves.json", {**kept, **curves(args.study)}, indent=1)
    args.page.write_text(
        page(args.data, args.machine, args.kl_data, args.kl_machine, args.output_data, args.output_machine)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
