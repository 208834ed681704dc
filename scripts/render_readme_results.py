"""Render the README's measured figures from the data files in docs/, between marker comments.

Each block of README.md between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` is produced here from
JSON files in docs/ (each of which names the command, machine and date that made it), so a figure in the README
cannot drift from its data: ``tests/test_readme_results.py`` re-renders the blocks and compares.

    python scripts/render_readme_results.py          # rewrite the blocks in README.md
    python scripts/render_readme_results.py --check  # exit 1 if README.md differs from the data

Blocks: ``env-speed`` (the lane-keeping env's steps/s under the env table), ``speed`` (the Speed section) and
``measured`` (the "Measured so far" list). Spread over seeds is the sample standard deviation (ddof=1), with the
per-seed values.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
from ncp_control.agents.study.summary import separation_verdict  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render_ltc_ablation  # noqa: E402  (scripts/render_ltc_ablation.py: the ablation's own reading of its files)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- results:(?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)


def _load(name: str) -> dict:
    return json.loads((DOCS / name).read_text())


def _num(x: float) -> str:
    """-1234.5 -> '−1,235' (typographic minus, thousands separator)."""
    return f"{x:,.0f}".replace("-", "−")


def _seeds(values: list[float]) -> str:
    """'mean ± sd (ddof=1): v1, v2, v3'."""
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    return f"{_num(mean)} ± {_num(sd)} ({', '.join(_num(v) for v in values)})"


# ---------------------------------------------------------------------------------------------------- env speed
def render_env_speed() -> str:
    data = _load("bench_envs_2026-11-23.json")
    textured = [run for run in data["runs"] if run["note"].startswith("with textures")]
    rates = sorted(run["results"]["LaneKeeping-v0 64x128 (default)"]["median_window"] for run in textured)
    randomised = sorted(run["results"]["LaneKeeping-v0 64x128 + domain rand."]["median_window"]
                        / run["results"]["LaneKeeping-v0 64x128 (default)"]["median_window"] for run in textured)
    text = (f"Speed of `LaneKeeping-v0` (64×128, random actions, one core, `python scripts/bench_envs.py`): "
            f"{_num(rates[0])}–{_num(rates[-1])} steps/s in {len(rates)} runs on a shared 2-core machine "
            f"(2026-11-23, load average 3.9–4.3; `docs/bench_envs_2026-11-23.json`)")
    today = DOCS / "bench_envs_2026-11-28.json"
    if today.is_file():
        run = _load(today.name)
        load = re.search(r"load average ([\d.]+)", run["machine"]).group(1)
        rate = run["results"]["LaneKeeping-v0 64x128 (default)"]["median_window"]
        text += (f"; {_num(rate)} steps/s on {run['date'][:10]} at load average {load} (niced, "
                 f"`docs/{today.name}`)")
    return (text + f". With domain randomisation (all elements) it ran at {randomised[0]:.2f}–{randomised[-1]:.2f}× "
            "the plain env's rate in the same runs; see [docs/envs.md](docs/envs.md).\n")


# -------------------------------------------------------------------------------------------------------- cells
def _cells() -> dict:
    data = _load("cells_speed.json")
    rows = {row["case"]: row for row in data["rows"]}
    quick = [run["speedup"] for run in data["quick_runs"]["runs"]]
    quick_us = [run["ours_s"] * 1e6 for run in data["quick_runs"]["runs"]]
    return {"ltc_train": rows["LTC autoncp:19 fwd+bwd B64 x T32"],
            "ltc_step": rows["LTC autoncp:19 inference step B8 (no grad)"],
            "cfc_train": rows["CFC autoncp:19 fwd+bwd B64 x T32"],
            "cfc_step": rows["CFC autoncp:19 inference step B8 (no grad)"],
            "quick": quick, "quick_us": quick_us, "date": data["date"][:10]}


def render_speed() -> str:
    c = _cells()
    memory = c["ltc_train"]["saved_mb_ncps"] / c["ltc_train"]["saved_mb_ours"]
    return (
        "On the CPU the LTC and wired CfC cells run in small C kernels, compiled on first use with the system C "
        "compiler\n(a few seconds, cached in `~/.cache/ncp_control`), with the same outputs and gradients as ncps "
        "1.0.1. Measured against\nncps in the same run (`python scripts/bench_cells.py`, one torch thread, a 2-core "
        f"machine shared with a PPO run, {c['date']};\n`docs/cells_speed.json`): LTC training (B64 x T32, "
        f"AutoNCP(19, 1), 32 inputs) {c['ltc_train']['speedup']:.1f}x faster than ncps\nwith {memory:.0f}x less "
        f"memory kept for backward; an LTC inference step (B8, no grad) {c['ltc_step']['speedup']:.1f}x "
        f"({c['ltc_step']['ours_s'] * 1e6:.0f} us), and\n{min(c['quick']):.1f}-{max(c['quick']):.1f}x (median "
        f"{statistics.median(c['quick']):.1f}x, {min(c['quick_us']):.0f}-{max(c['quick_us']):.0f} us) in ten "
        f"`--quick` runs; wired CfC {c['cfc_train']['speedup']:.1f}x training and {c['cfc_step']['speedup']:.1f}x "
        "inference.\nWithout a compiler (or with `NCP_CONTROL_PURE_TORCH=1`) the same numbers come from pure torch. "
        "Details and the full table:\n[docs/cells_speed.md](docs/cells_speed.md).\n"
    )


# ----------------------------------------------------------------------------------------------------- measured
def _ppo_rows(file: str, run: str, env_id: str, policy: str) -> list[dict]:
    data = _load(file)
    (match,) = [r for r in data["runs"] if r["file"] == run]
    rows = [row for row in match["rows"] if row["env_id"] == env_id and row["policy"] == policy]
    return sorted(rows, key=lambda row: row["seed"])


def _returns(rows: list[dict]) -> list[float]:
    return [row["mean_return"] for row in rows]


def _ppo_bullets() -> list[str]:
    s3, s4 = "bench_ppo_2026-11-23_session3.json", "bench_ppo_2026-11-23_session4.json"
    novel = {name: _returns(_ppo_rows(s4, run, "PendulumNoVel-v1", policy)) for name, run, policy in (
        ("NCP-CfC", "base200k.json", "cfc"), ("NCP-LTC", "lin10.json", "ltc"), ("LSTM", "base200k.json", "lstm"),
        ("MLP", "base200k.json", "mlp"))}
    ltc_pendulum = sorted(_ppo_rows(s3, "sw5_Pendulum-v1_pi32_lr3.json", "Pendulum-v1", "ltc")
                          + _ppo_rows(s3, "final_p_ltc.json", "Pendulum-v1", "ltc"), key=lambda r: r["seed"])
    inverted = {p: _returns(_ppo_rows(s3, "final_iplk.json", "InvertedPendulum-v5", p)) for p in ("cfc", "ltc")}
    lane = {p: _returns(_ppo_rows(s3, "final_iplk.json", "LaneKeepingState-v0", p)) for p in ("cfc", "ltc")}
    lstm = {env: _returns(_ppo_rows(s3, "lstm_pend.json", env, "lstm")) for env in ("Pendulum-v1", "PendulumNoVel-v1")}
    cfc_novel_100k = _returns(_ppo_rows(s3, "pnv_cfc_critrec.json", "PendulumNoVel-v1", "cfc"))
    critic = "bench_recurrent_critic_2026-11-28.json"
    critic_run = _load(critic)
    rate = critic_run["steps_per_s"]
    now = "bench_recurrent_critic_2026-11-28_lr_scale.json"
    now_run = _load(now)
    now_rate = now_run["steps_per_s"]
    lstm_key, ltc_key, dense_key = ("lstm (preset)", "ltc, fully_connected CfC critic", "ltc, dense CfC critic")
    return [
        "PPO, mean evaluation return over 3 seeds ± sample sd (per seed in brackets), 2026-11-23 on a shared 2-core "
        f"machine, the presets of that day\n  (`docs/{s3}`, `docs/{s4}`; commands in [docs/ppo.md](docs/ppo.md)). "
        "PendulumNoVel-v1 at 200k steps, on its\n  earlier Box(2,) variant (velocity dropped; it is now rl-zoo's "
        f"Box(3,) with the velocity zeroed): NCP-CfC {_seeds(novel['NCP-CfC'])},\n  NCP-LTC "
        f"{_seeds(novel['NCP-LTC'])}, LSTM {_seeds(novel['LSTM'])}, MLP {_seeds(novel['MLP'])} (no memory, no "
        f"solution).\n  At 100k steps: NCP-CfC {_seeds(cfc_novel_100k)} on PendulumNoVel-v1 (LSTM "
        f"{_seeds(lstm['PendulumNoVel-v1'])}); NCP-LTC\n  {_seeds(_returns(ltc_pendulum))} on Pendulum-v1 (LSTM "
        f"{_seeds(lstm['Pendulum-v1'])}); InvertedPendulum-v5 {_seeds(inverted['cfc'])} (CfC) and\n  "
        f"{_seeds(inverted['ltc'])} (LTC); LaneKeepingState-v0 return {_seeds(lane['cfc'])} (CfC), "
        f"{_seeds(lane['ltc'])} (LTC).",
        f"PPO throughput on PendulumNoVel-v1, taking turns in one process with sb3-contrib's LSTM RecurrentPPO preset "
        f"({now_run['steps_per_round'][lstm_key]:,} steps a round): today's\n  NCP-LTC preset (recurrent CfC critic on the native kernel, 10 epochs) "
        f"{now_rate[ltc_key]:,.0f} steps/s against the LSTM's {now_rate[lstm_key]:,.0f}\n  "
        f"({now_rate[ltc_key] / now_rate[lstm_key]:.1f}x; `docs/{now}`, {now_run['date']}); the old preset "
        f"(20 epochs) earlier that day {rate[ltc_key] / rate[lstm_key]:.1f}x, and with\n  the earlier dense critic "
        f"{rate[dense_key] / rate[lstm_key]:.2f}x (`docs/{critic}`, {critic_run['date']}, a busier machine: "
        f"LSTM {rate[lstm_key]:.1f} steps/s; [docs/ppo.md](docs/ppo.md)).",
    ]


def _noise_bullet() -> str:
    data = _load("ncp_noise.json")
    crash: dict[str, dict[float, float]] = {}
    for row in data["rows"]:
        if row["perturbation"] == "pixel_noise":
            crash.setdefault(row["model"], {})[row["level"]] = row["crash_rate"]
    levels = sorted({level for rates in crash.values() for level in rates if level > 0})
    total = {model: sum(rates[level] for level in levels) for model, rates in crash.items()}
    best = min(total, key=total.get)
    rates = "; ".join(f"{model} {', '.join(f'{crash[model][lv]:.0%}' for lv in levels)}" for model in crash)
    study = _load("study_ncp_noise/summary.json")
    seeds = min(group["n_seeds"] for group in study["groups"])
    verdict = [line.rsplit(": ", 1)[1] for line in separation_verdict(study, ["crash_rate"])]
    separated = sorted({pair for line in verdict if line != "not separated" for pair in line.split("; ")})
    return (f"NCP paper's pixel-noise protocol (demo-preset models, one training seed, {data['episodes']} held-out "
            f"roads, `docs/ncp_noise.json`): crash rates at\n  pixel-noise std {', '.join(f'{lv:g}' for lv in levels)}: "
            f"{rates}; fewest crashes: {best} ([docs/ncp_noise.md](docs/ncp_noise.md)).\n  With {seeds} training "
            f"seeds per model as the unit (`docs/study_ncp_noise/summary.json`, 95% intervals across seeds): crash "
            f"rates {'not separated at any level' if not separated else 'separated only for ' + ', '.join(separated)}"
            " ([docs/study_ncp_noise.md](docs/study_ncp_noise.md)).")


#: The files of docs/ltc_ablation/ that the README's ablation bullet reads (scripts/ltc_ablation.sh, ltc_recheck.sh).
ABLATION_FILES = ("base", "lr-scale-10", "lr-scale-10-seeds-3-4", "lr-scale-10-lin-20ep",
                  "lr-scale-10-lin-20ep-seeds-3-4", "preset-today", "preset-today-seeds-3-4", "cm-0.3-0.5",
                  "gain-4-centred", "Pendulum-v1-lr-scale-10", "Pendulum-v1-lr-scale-10-seeds-3-4",
                  "Pendulum-v1-old-preset-seeds-3-4", "InvertedPendulum-v5-lr-scale-10",
                  "LaneKeepingState-v0-lr-scale-10", "cfc-preset", "lr-scale-10-out-map-1",
                  "lr-scale-10-out-map-1-seeds-3-4", "lr-scale-10-seeds-5-9", "cfc-preset-seeds-5-9")


def _ten_seeds(results: dict) -> str:
    """Today's LTC preset against the CfC preset on training seeds 0-9 (render_ltc_ablation.TEN_SEEDS), with
    whether their 95% intervals separate."""
    ltc, cfc = (render_ltc_ablation.ten_seed_stats(results, name) for name in ("lr-scale-10", "cfc-preset"))
    separated = render_ltc_ablation._versus(ltc, cfc, same=False) != "not separated"
    return (f"On 10 training seeds: the LTC preset {_num(ltc['mean'])} [{_num(ltc['low'])}, {_num(ltc['high'])}] "
            f"({sum(v < render_ltc_ablation.FAILED_BELOW for v in ltc['returns'])} seeds below "
            f"{_num(render_ltc_ablation.FAILED_BELOW)}), the CfC preset {_num(cfc['mean'])} [{_num(cfc['low'])}, "
            f"{_num(cfc['high'])}]: {'separated' if separated else 'not separated'}.")


def _ltc_ablation_bullet() -> str | None:
    """The LTC-actor ablation (docs/ltc_ablation/, scripts/ltc_ablation.sh and ltc_recheck.sh), if all of
    :data:`ABLATION_FILES` are there."""
    folder = DOCS / "ltc_ablation"
    if not all((folder / f"{name}.json").is_file() for name in ABLATION_FILES):
        return None

    results = render_ltc_ablation.load(folder)

    def returns(*tags: str) -> list[float]:  # the runs of the tags, each tag's by seed
        return [value for tag in tags for value in results[tag]["returns"]]

    five = returns("lr-scale-10", "lr-scale-10-seeds-3-4")
    met = statistics.fmean(five) >= -250
    pendulum_old, pendulum_new = (s["returns"] for s in render_ltc_ablation.recheck(results, "Pendulum-v1"))
    completion = min(results["LaneKeepingState-v0-lr-scale-10"]["completion"])
    return (f"NCP-LTC on PendulumNoVel-v1 at 100k steps, each change alone on 3 training seeds (`docs/ltc_ablation/`, "
            f"2026-11-28, [docs/ppo.md](docs/ppo.md)):\n  at the CfC's optimiser settings {_seeds(returns('base'))}; "
            f"with the cell's parameters at 10x the rate (`ltc_lr_scale=10`)\n  {_seeds(returns('lr-scale-10'))}, "
            f"on 5 seeds {_seeds(five)};\n  with a decaying rate and 20 epochs on 5 seeds "
            f"{_seeds(returns('lr-scale-10-lin-20ep', 'lr-scale-10-lin-20ep-seeds-3-4'))}; with the motor output map at "
            f"the rate itself\n  (`ltc_output_lr_scale=1`) on 5 seeds "
            f"{_seeds(returns('lr-scale-10-out-map-1', 'lr-scale-10-out-map-1-seeds-3-4'))}; the old "
            f"per-env LTC optimiser preset\n  (`lin_0.01`, 20 epochs) on 5 seeds "
            f"{_seeds(returns('preset-today', 'preset-today-seeds-3-4'))}; faster initial time constants "
            f"{_seeds(returns('cm-0.3-0.5'))}, output gain 4 {_seeds(returns('gain-4-centred'))}"
            f".\n  Goal (mean >= −250 on 5 seeds with the scale): {'met' if met else 'not met'}; the CfC preset on the "
            f"same env and seeds {_seeds(returns('cfc-preset'))}.\n  {_ten_seeds(results)} The scale is now "
            f"the LTC preset's construction, with each env's shared optimiser\n  settings and no LTC-specific rate: "
            f"Pendulum-v1 {_seeds(pendulum_new)} (the "
            f"old preset on the same seeds\n  {_seeds(pendulum_old)}), InvertedPendulum-v5 "
            f"{_seeds(returns('InvertedPendulum-v5-lr-scale-10'))}, LaneKeepingState-v0 return\n  "
            f"{_seeds(returns('LaneKeepingState-v0-lr-scale-10'))} ({'100% completion' if completion == 1 else f'completion >= {completion:.0%}'} on every seed).")


def _generalisation_bullet(summary: dict | None = None) -> str | None:
    """Issue 17's generalisation study (docs/study_ncp_generalisation/), if its summary is there: completion with one
    randomised element at a time and with all together, for runs trained on the default look and under domain
    randomisation, with the verdict from the 95% intervals across training seeds."""
    if summary is None:
        if not (DOCS / "study_ncp_generalisation/summary.json").is_file():
            return None
        summary = _load("study_ncp_generalisation/summary.json")
    cells = {(g["train_tag"], g["model"], g["condition"]): g for g in summary["groups"]}
    order = ["ncp-ltc", "ncp-cfc", "lstm", "cnn"]
    models = sorted({model for _, model, _ in cells}, key=lambda m: (order.index(m) if m in order else len(order), m))
    seeds = min(g["n_seeds"] for g in summary["groups"])

    def completion(tag: str, condition: str) -> str:
        parts = []
        for model in models:
            if (tag, model, condition) not in cells:
                continue
            m = cells[(tag, model, condition)]["metrics"]["completion_rate"]
            interval = ("" if m["ci_low"] is None else
                        f" [{max(m['ci_low'], 0):.0%}, {min(m['ci_high'], 1):.0%}]")
            parts.append(f"{model} {m['mean']:.0%}{interval}")
        return ", ".join(parts) or "not evaluated yet"

    alone = [(g["metrics"]["completion_rate"]["mean"], g["model"], g["condition"]) for g in summary["groups"]
             if g["train_tag"] == "untagged" and g["condition"] not in ("clean", "all")]
    if not alone:
        return None
    low = min(alone)[0]
    lowest = ", ".join(f"{model} under {condition}" for mean, model, condition in sorted(alone)
                       if round(mean, 3) == round(low, 3))
    verdict = separation_verdict(summary, ["completion_rate"])
    separated = [line for line in verdict if not line.endswith("not separated")]
    roads = "/".join(str(n) for n in sorted({g["episodes"] for g in summary["groups"]}))
    return (f"Generalisation to held-out looks of the road scene (imitation, {seeds} training seeds "
            f"per model,\n  {roads} held-out roads, `docs/study_ncp_generalisation/summary.json`; completion, mean "
            f"[95% interval across seeds, clipped to 0-100%]): trained on\n  the default look, one randomised element "
            f"at a time: every model >= {low:.0%} (lowest: {lowest}); all elements "
            f"together: {completion('untagged', 'all')};\n  trained under domain randomisation, held-out "
            f"randomised looks: {completion('dr', 'all')}; the clean look: {completion('dr', 'clean')}.\n  "
            + ("Completion not separated between any two models or trainings" if not separated else
               "Separated on completion: " + "; ".join(separated))
            + " ([docs/study_ncp_generalisation.md](docs/study_ncp_generalisation.md)).")


def _mujoco_bullet(summary: dict | None = None, spec: dict | None = None) -> str | None:
    """Issue 17's MuJoCo memory study (docs/study_mujoco_novel/), if its summary is there: mean evaluation return per
    policy on each NoVel env, the fully observed env's MLP as the reference line, and the verdict from the 95%
    intervals across training seeds. A study still running shows each cell's number of seeds."""
    if summary is None:
        if not (DOCS / "study_mujoco_novel/summary.json").is_file():
            return None
        summary, spec = _load("study_mujoco_novel/summary.json"), _load("study_mujoco_novel/spec.json")
    steps = sorted({entry["timesteps"] for entry in spec["train"]})
    cells = {(g["env"], g["model"]): g for g in summary["groups"]}
    planned: dict[tuple[str, str], int] = {}  # seeds the spec trains per (env, policy), over all its entries
    for entry in spec["train"]:
        for policy in entry["policies"]:
            planned[(entry["env"], policy)] = planned.get((entry["env"], policy), 0) + len(entry["seeds"])

    def cell(env: str, model: str) -> str:
        g = cells[(env, model)]
        m = g["metrics"]["mean_return"]
        text = f"{model} {_num(m['mean'])}"
        if m["ci_low"] is not None:
            text += f" [{_num(m['ci_low'])}, {_num(m['ci_high'])}]"
        n, of = g["n_seeds"], planned[(env, model)]
        return text + ("" if n == of else f" ({n} of {of} seeds)")

    parts = []
    for env, full in (("HopperNoVel-v5", "Hopper-v5"), ("HalfCheetahNoVel-v5", "HalfCheetah-v5")):
        models = [m for m in ("ltc", "cfc", "lstm", "mlp") if (env, m) in cells]
        if not models:
            continue
        line = f"{env}: " + ", ".join(cell(env, m) for m in models)
        if (full, "mlp") in cells:
            line += f"; reference, MLP on {full}: {cell(full, 'mlp').split(' ', 1)[1]}"
        parts.append(line)
    verdict = [f"{line.split(' ', 1)[0]}: {line.rsplit(': ', 1)[1]}"
               for line in separation_verdict(summary, ["mean_return"])
               if "NoVel" in line.split(" ", 1)[0] and not line.endswith("not separated")]
    episodes = "/".join(str(n) for n in sorted({g["episodes"] for g in summary["groups"]}))
    unfinished = sum(n - cells[key]["n_seeds"] if key in cells else n for key, n in planned.items())
    verdict_text = ("Separated (non-overlapping intervals): " + "; ".join(verdict) if verdict else
                    "No two policies separated on the NoVel envs")
    if not unfinished:
        state = verdict_text
    elif min(g["n_seeds"] for g in summary["groups"]) < 2:  # a cell without an interval: no verdict
        state = f"Study not finished: {unfinished} of {sum(planned.values())} runs to go; no verdict yet"
    else:
        state = f"Study not finished ({unfinished} of {sum(planned.values())} runs to go). {verdict_text}"
    return (f"Memory tasks beyond Pendulum (PPO, {'/'.join(f'{s // 1000}k' for s in steps)} steps, "
            f"{max(planned.values())} training seeds per policy, {episodes} held-out episodes,\n  "
            f"`docs/study_mujoco_novel/summary.json`; "
            f"mean return [95% interval across seeds]):\n  " + ";\n  ".join(parts) + ".\n  "
            + state + " ([docs/study_mujoco_novel.md](docs/study_mujoco_novel.md)).")


def render_measured() -> str:
    imitation = _load("bench_imitation_paper_ncp_ltc.json")
    (result,) = imitation["results"]
    c = _cells()
    bullets = [
        f"Camera lane keeping by imitation, the paper's 19-neuron NCP-LTC ({result['recurrent_parameters']:,} "
        f"recurrent parameters) at the\n  `{result['preset']}` preset: {result['completion_rate']:.0%} of "
        f"{imitation['settings']['episodes']} held-out roads completed, trained in {result['train_minutes']:.0f} "
        f"minutes on 2 CPU cores\n  ({imitation['date']}, `docs/bench_imitation_paper_ncp_ltc.json`, "
        "[docs/imitation.md](docs/imitation.md)).",
        _noise_bullet(),
        f"Cells against ncps 1.0.1 on the CPU: LTC training {c['ltc_train']['speedup']:.1f}x, LTC inference step "
        f"{c['ltc_step']['speedup']:.1f}x\n  (median {statistics.median(c['quick']):.1f}x over ten quick runs), wired "
        f"CfC {c['cfc_train']['speedup']:.1f}x training and {c['cfc_step']['speedup']:.1f}x inference "
        "([docs/cells_speed.md](docs/cells_speed.md)).",
        *_ppo_bullets(),
    ]
    bullets += [b for b in (_generalisation_bullet(), _mujoco_bullet(), _ltc_ablation_bullet()) if b]
    return ("Each number below is rendered from a data file in docs/ by `python scripts/render_readme_results.py`; "
            "the docs page\ngives the command, machine and date.\n\n" + "".join(f"- {b}\n" for b in bullets))


RENDERERS = {"env-speed": render_env_speed, "speed": render_speed, "measured": render_measured}


def render(text: str) -> str:
    """``text`` (the README) with every results block re-rendered from the data.

    Raises:
        ValueError: a block named here is missing from the text, or the text has a block with no renderer.
    """
    found = [m.group("name") for m in BLOCK.finditer(text)]
    if sorted(found) != sorted(RENDERERS):
        raise ValueError(f"README results blocks {sorted(found)} do not match the renderers {sorted(RENDERERS)}")
    return BLOCK.sub(lambda m: m.group(1) + RENDERERS[m.group("name")]() + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md differs from the data")
    args = parser.parse_args(argv)
    text = README.read_text()
    rendered = render(text)
    if args.check:
        if rendered != text:
            print("README.md's results blocks differ from docs/ data: run python scripts/render_readme_results.py")
            return 1
        return 0
    README.write_text(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
