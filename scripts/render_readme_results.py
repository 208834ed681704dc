"""Render the measured figures of README.md and docs/results.md from the data files in docs/data/, between marker
comments.

Each block between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` is produced here from the data files
in docs/data/ (each of which names the command, machine and date that made it), so a figure cannot drift from its
data: ``tests/test_readme_results.py`` re-renders the blocks and compares. Every number and count in the output
(seeds, steps, dates, loads, cores, threads, versions) is read from those files (the ncps version from
pyproject.toml's pin, the ablation's goal from scripts/render_ltc_ablation.py); none is typed here.

    python scripts/render_readme_results.py          # rewrite the blocks in README.md and docs/results.md
    python scripts/render_readme_results.py --check  # exit 1 if a page differs from the data

Blocks: README.md's ``headline`` (the short results table); docs/results.md's ``env-speed`` (the lane-keeping env's
steps/s), ``speed`` (the cells against ncps) and ``measured`` (every result, one bullet each). Spread over seeds is
the sample standard deviation (ddof=1), with the per-seed values.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
from ncp_control.agents.study.summary import fine_tuning_effects, separation_verdict  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render_ltc_ablation  # noqa: E402  (scripts/render_ltc_ablation.py: the ablation's own reading of its files)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DATA = DOCS / "data"
README = ROOT / "README.md"
RESULTS = DOCS / "results.md"
BLOCK = re.compile(r"(<!-- results:(?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)

ENV_CASE = "LaneKeeping-v0 64x128 (default)"
RANDOMISED_CASE = "LaneKeeping-v0 64x128 + domain rand."
CELL_CASES = {
    "ltc_train": "LTC autoncp:19 fwd+bwd B64 x T32",
    "ltc_step": "LTC autoncp:19 inference step B8 (no grad)",
    "cfc_train": "CFC autoncp:19 fwd+bwd B64 x T32",
    "cfc_step": "CFC autoncp:19 inference step B8 (no grad)",
}
WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")


def _load(name: str) -> dict:
    """A data file by its path under docs/data/."""
    return json.loads((DATA / name).read_text())


def _file(name: str, page: Path = RESULTS) -> str:
    """A link to the data file ``docs/data/<name>`` from ``page``, labelled with the file's name."""
    target = Path("data", name) if page.parent == DOCS else Path("docs", "data", name)
    return f"[{Path(name).name}]({target.as_posix()})"


def _page(name: str, page: Path = RESULTS) -> str:
    """A link to the docs page ``docs/<name>`` from ``page``."""
    return f"[{name}]({name})" if page.parent == DOCS else f"[docs/{name}](docs/{name})"


def _num(x: float) -> str:
    """-1234.5 -> '−1,235' (typographic minus, thousands separator)."""
    return f"{x:,.0f}".replace("-", "−")


def _word(n: int) -> str:
    """Small counts as words (10 -> 'ten'), as the pages write them."""
    return WORDS[n] if 0 <= n < len(WORDS) else f"{n:,}"


def _steps(timesteps: int) -> str:
    """100000 -> '100k'."""
    return f"{timesteps // 1000}k" if timesteps % 1000 == 0 else f"{timesteps:,}"


def spread(values: list[float]) -> str:
    """A spread over seeds as the pages state it: 'mean ± sd (v1, v2, v3)', sd the sample standard deviation."""
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    return f"{_num(mean)} ± {_num(sd)} ({', '.join(_num(v) for v in values)})"


def _one(values, what: str):
    """The single value all of ``values`` share (a count or setting the text states once)."""
    distinct = set(values)
    if len(distinct) != 1:
        raise ValueError(f"{what} differ between the runs the text states once: {sorted(distinct)}")
    return distinct.pop()


def _load_average(machine: str) -> float:
    return float(re.search(r"load average ~?([\d.]+)", machine).group(1))


def _cores(text: str) -> int:
    """The machine's core count from a data file's machine or note text ('2 logical cores', '2 vCPUs', '2-core')."""
    return int(re.search(r"(\d+)(?: logical cores| vCPUs| cores|-core)", text).group(1))


def _ncps_version() -> str:
    """The ncps release the benchmarks and parity tests pin (pyproject.toml)."""
    return re.search(r'"ncps==([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)


def _percent(confidence: float) -> str:
    return f"{confidence:.0%}"


# ---------------------------------------------------------------------------------------------------- env speed
def _env_speed() -> dict:
    data = _load("envs/bench_envs_2026-11-23.json")
    textured = [run for run in data["runs"] if run["note"].startswith("with textures")]
    rates = sorted(run["results"][ENV_CASE]["median_window"] for run in textured)
    randomised = sorted(
        run["results"][RANDOMISED_CASE]["median_window"] / run["results"][ENV_CASE]["median_window"] for run in textured
    )
    return {
        "rates": rates,
        "randomised": randomised,
        "runs": textured,
        "first": data["runs"][0],
        "size": "×".join(re.search(r"(\d+)x(\d+)", ENV_CASE).groups()),
    }


def _pinned(runs: list[dict]) -> str:
    """How many cores each case ran on: ``bench_envs.py --core N`` pins a case to one core."""
    return f"{_word(1)} core" if all("--core" in run["command"] for run in runs) else "all cores"


def render_env_speed() -> str:
    e = _env_speed()
    rates, runs = e["rates"], e["runs"]
    loads = sorted(_load_average(run["machine"]) for run in runs)
    dates = ", ".join(sorted({run["date"][:10] for run in runs}))
    pinned = _pinned(runs)
    text = (
        f"Speed of `LaneKeeping-v0` ({e['size']}, random actions, {pinned}, `python scripts/bench_envs.py`): "
        f"{_num(rates[0])}–{_num(rates[-1])} steps/s in {len(rates)} runs on a shared "
        f"{_cores(e['first']['machine'])}-core machine ({dates}, load average {loads[0]:g}–{loads[-1]:g}; "
        f"{_file('envs/bench_envs_2026-11-23.json')})"
    )
    today = "envs/bench_envs_2026-11-28.json"
    if (DATA / today).is_file():
        run = _load(today)
        rate = run["results"][ENV_CASE]["median_window"]
        niced = "niced, " if "nice" in run.get("note", "") + run["command"] else ""
        text += (
            f"; {_num(rate)} steps/s on {run['date'][:10]} at load average {_load_average(run['machine']):g} "
            f"({niced}{_file(today)})"
        )
    return (
        text + f". With domain randomisation (all elements) it ran at {e['randomised'][0]:.2f}–"
        f"{e['randomised'][-1]:.2f}× the plain env's rate in the same runs; see {_page('envs.md')}.\n"
    )


# -------------------------------------------------------------------------------------------------------- cells
def _cells() -> dict:
    data = _load("cells_speed/cells_speed.json")
    rows = {row["case"]: row for row in data["rows"]}
    quick = [run["speedup"] for run in data["quick_runs"]["runs"]]
    quick_us = [run["ours_s"] * 1e6 for run in data["quick_runs"]["runs"]]
    return {
        **{key: rows[case] for key, case in CELL_CASES.items()},
        "quick": quick,
        "quick_us": quick_us,
        "date": data["date"][:10],
        "machine": data["machine"],
        "command": data["command"],
    }


def render_speed() -> str:
    c = _cells()
    memory = c["ltc_train"]["saved_mb_ncps"] / c["ltc_train"]["saved_mb_ours"]
    train = re.search(r"autoncp:(\d+) fwd\+bwd (B\d+ x T\d+)", CELL_CASES["ltc_train"])
    step = re.search(r"inference step (B\d+) \((no grad)\)", CELL_CASES["ltc_step"])
    threads = re.search(r"(\w+) torch threads?", c["machine"]).group(0)
    shared = re.search(r"shared with ([^(,]+?)\s*(?:\(|,|$)", c["machine"]).group(1)
    return (
        "On the CPU the LTC and wired CfC cells run in small C kernels, compiled on first use with the system C "
        "compiler\n(a few seconds, cached in `~/.cache/ncp_control`), with the same outputs and gradients as ncps "
        f"{_ncps_version()}. Measured against\nncps in the same run (`{c['command']}`, {threads}, a "
        f"{_cores(c['machine'])}-core machine shared with {shared}, {c['date']};\n"
        f"{_file('cells_speed/cells_speed.json')}): LTC training ({train.group(2)}, AutoNCP with {train.group(1)} "
        f"neurons) {c['ltc_train']['speedup']:.1f}x faster than ncps\nwith {memory:.0f}x less memory kept for "
        f"backward; an LTC inference step ({step.group(1)}, {step.group(2)}) {c['ltc_step']['speedup']:.1f}x "
        f"({c['ltc_step']['ours_s'] * 1e6:.0f} us), and\n{min(c['quick']):.1f}-{max(c['quick']):.1f}x (median "
        f"{statistics.median(c['quick']):.1f}x, {min(c['quick_us']):.0f}-{max(c['quick_us']):.0f} us) in "
        f"{_word(len(c['quick']))} `--quick` runs; wired CfC {c['cfc_train']['speedup']:.1f}x training and "
        f"{c['cfc_step']['speedup']:.1f}x inference.\nWithout a compiler (or with `NCP_CONTROL_PURE_TORCH=1`) the "
        f"same numbers come from pure torch. Details and the full table:\n{_page('cells_speed.md')}.\n"
    )


# ----------------------------------------------------------------------------------------------------- measured
S3, S4 = "ppo/bench_ppo_2026-11-23_session3.json", "ppo/bench_ppo_2026-11-23_session4.json"
CRITIC, CRITIC_NOW = "ppo/bench_recurrent_critic_2026-11-28.json", "ppo/bench_recurrent_critic_2026-11-28_lr_scale.json"
LSTM_KEY, LTC_KEY, DENSE_KEY = "lstm (preset)", "ltc, fully_connected CfC critic", "ltc, dense CfC critic"


def _ppo_rows(file: str, run: str, env_id: str, policy: str) -> list[dict]:
    data = _load(file)
    (match,) = [r for r in data["runs"] if r["file"] == run]
    rows = [row for row in match["rows"] if row["env_id"] == env_id and row["policy"] == policy]
    return sorted(rows, key=lambda row: row["seed"])


def _returns(rows: list[dict]) -> list[float]:
    return [row["mean_return"] for row in rows]


def _ppo_bullets() -> list[str]:
    novel_rows = {
        name: _ppo_rows(S4, run, "PendulumNoVel-v1", policy)
        for name, run, policy in (
            ("NCP-CfC", "base200k.json", "cfc"),
            ("NCP-LTC", "lin10.json", "ltc"),
            ("LSTM", "base200k.json", "lstm"),
            ("MLP", "base200k.json", "mlp"),
        )
    }
    ltc_pendulum = sorted(
        _ppo_rows(S3, "sw5_Pendulum-v1_pi32_lr3.json", "Pendulum-v1", "ltc")
        + _ppo_rows(S3, "final_p_ltc.json", "Pendulum-v1", "ltc"),
        key=lambda r: r["seed"],
    )
    inverted = {p: _ppo_rows(S3, "final_iplk.json", "InvertedPendulum-v5", p) for p in ("cfc", "ltc")}
    lane = {p: _ppo_rows(S3, "final_iplk.json", "LaneKeepingState-v0", p) for p in ("cfc", "ltc")}
    lstm = {env: _ppo_rows(S3, "lstm_pend.json", env, "lstm") for env in ("Pendulum-v1", "PendulumNoVel-v1")}
    cfc_novel_100k = _ppo_rows(S3, "pnv_cfc_critrec.json", "PendulumNoVel-v1", "cfc")
    short = [cfc_novel_100k, ltc_pendulum, *inverted.values(), *lane.values(), *lstm.values()]
    every = [*novel_rows.values(), *short]
    seeds = _one((len(rows) for rows in every), "seed counts")
    long_steps = _one((row["timesteps"] for rows in novel_rows.values() for row in rows), "timesteps")
    short_steps = _one((row["timesteps"] for rows in short for row in rows), "timesteps")
    sessions = [_load(S3), _load(S4)]
    date = _one((run["date"] for data in sessions for run in data["runs"]), "dates")
    cores = _one((_cores(data["note"]) for data in sessions), "core counts")
    novel = {name: _returns(rows) for name, rows in novel_rows.items()}
    critic_run, now_run = _load(CRITIC), _load(CRITIC_NOW)
    rate, now_rate = critic_run["steps_per_s"], now_run["steps_per_s"]
    env = _one((re.search(r"--env (\S+)", run["command"]).group(1) for run in (critic_run, now_run)), "envs")
    same_day = critic_run["date"][:10] == now_run["date"][:10] and critic_run["date"] < now_run["date"]
    return [
        f"PPO, mean evaluation return over {seeds} seeds ± sample sd (per seed in brackets), {date} on a shared "
        f"{cores}-core machine, the presets of that day\n  ({_file(S3)}, {_file(S4)}; commands in "
        f"{_page('ppo.md')}). PendulumNoVel-v1 at {_steps(long_steps)} steps, on its\n  earlier variant (velocity "
        f"dropped; it is now rl-zoo's, with the velocity zeroed): NCP-CfC {spread(novel['NCP-CfC'])},\n  NCP-LTC "
        f"{spread(novel['NCP-LTC'])}, LSTM {spread(novel['LSTM'])}, MLP {spread(novel['MLP'])} (no memory, no "
        f"solution).\n  At {_steps(short_steps)} steps: NCP-CfC {spread(_returns(cfc_novel_100k))} on "
        f"PendulumNoVel-v1 (LSTM {spread(_returns(lstm['PendulumNoVel-v1']))}); NCP-LTC\n  "
        f"{spread(_returns(ltc_pendulum))} on Pendulum-v1 (LSTM {spread(_returns(lstm['Pendulum-v1']))}); "
        f"InvertedPendulum-v5 {spread(_returns(inverted['cfc']))} (CfC) and\n  {spread(_returns(inverted['ltc']))} "
        f"(LTC); LaneKeepingState-v0 return {spread(_returns(lane['cfc']))} (CfC), {spread(_returns(lane['ltc']))} "
        "(LTC).",
        f"PPO throughput on {env}, taking turns in one process with sb3-contrib's LSTM RecurrentPPO preset "
        f"({now_run['steps_per_round'][LSTM_KEY]:,} steps a round): today's\n  NCP-LTC preset (recurrent CfC critic "
        f"on the native kernel) {now_rate[LTC_KEY]:,.0f} steps/s against the LSTM's {now_rate[LSTM_KEY]:,.0f}\n  "
        f"({now_rate[LTC_KEY] / now_rate[LSTM_KEY]:.1f}x; {_file(CRITIC_NOW)}, {now_run['date']}); the old preset "
        f"{'earlier that day' if same_day else 'on ' + critic_run['date'][:10]} "
        f"{rate[LTC_KEY] / rate[LSTM_KEY]:.1f}x, and with\n  the earlier dense critic "
        f"{rate[DENSE_KEY] / rate[LSTM_KEY]:.2f}x ({_file(CRITIC)}, {critic_run['date']}, a busier machine: "
        f"LSTM {rate[LSTM_KEY]:.1f} steps/s; {_page('ppo.md')}).",
    ]


def _noise() -> dict:
    """The one-seed pixel-noise run (docs/data/ncp_noise/) and the 3-seed study (docs/data/study_ncp_noise/)."""
    data = _load("ncp_noise/ncp_noise.json")
    crash: dict[str, dict[float, float]] = {}
    for row in data["rows"]:
        if row["perturbation"] == "pixel_noise":
            crash.setdefault(row["model"], {})[row["level"]] = row["crash_rate"]
    levels = sorted({level for rates in crash.values() for level in rates if level > 0})
    total = {model: sum(rates[level] for level in levels) for model, rates in crash.items()}
    runs_per_model = _one(
        (sum(m["policy"] == model for m in data["models"].values()) for model in crash), "runs per model"
    )
    folder = _noise_study()
    study = _load(f"{folder}/summary.json")
    verdict = [line.rsplit(": ", 1)[1] for line in separation_verdict(study, ["crash_rate"])]
    separated = sorted({pair for line in verdict if line != "not separated" for pair in line.split("; ")})
    return {
        "data": data,
        "crash": crash,
        "levels": levels,
        "best": min(total, key=total.get),
        "runs_per_model": runs_per_model,
        "study": study,
        "folder": folder,
        "page": f"{folder}.md",
        "seeds": min(group["n_seeds"] for group in study["groups"]),
        "verdict": (
            "not separated at any level"
            if not separated
            else f"separated ({_weak(study)}) only for " + ", ".join(separated)
        ),
    }


def _noise_study() -> str:
    """The pixel-noise study with the most training seeds whose run is complete: study_ncp_noise_10 (issue 25,
    10 seeds) once it has finished, else the 3-seed study_ncp_noise."""
    ten = DATA / "study_ncp_noise_10" / "summary.json"
    if ten.is_file():
        jobs = json.loads(ten.read_text())["jobs"]
        if jobs["done"] == jobs["total"]:
            return "study_ncp_noise_10"
    return "study_ncp_noise"


def _weak(summary: dict) -> str:
    """How a separated pair was decided, and how much it weighs at the study's number of seeds: with 3 seeds per
    model, a pair where every seed of one beats every seed of the other gets the interval [1, 1]."""
    seeds = min(group["n_seeds"] for group in summary["groups"])
    rule = "rliable: P(a better than b) interval above 0.5"
    return f"{rule}; weak evidence at {seeds} seeds" if seeds <= 3 else rule


def _noise_bullet() -> str:
    n = _noise()
    crash, levels = n["crash"], n["levels"]
    rates = "; ".join(f"{model} {', '.join(f'{crash[model][lv]:.0%}' for lv in levels)}" for model in crash)
    return (
        f"NCP paper's pixel-noise protocol (demo-preset models, {_word(n['runs_per_model'])} training seed"
        f"{'s' if n['runs_per_model'] > 1 else ''}, {n['data']['episodes']} held-out roads, "
        f"{_file('ncp_noise/ncp_noise.json')}): crash rates at\n  pixel-noise std "
        f"{', '.join(f'{lv:g}' for lv in levels)}: {rates}; fewest crashes: {n['best']} ({_page('ncp_noise.md')})."
        f"\n  With {n['seeds']} training seeds per model as the unit ({_file(n['folder'] + '/summary.json')}, "
        f"{_percent(n['study']['confidence'])} intervals across seeds): crash rates {n['verdict']} "
        f"({_page(n['page'])})."
    )


#: The files of docs/data/ltc_ablation/ that the ablation bullet reads (scripts/ltc_ablation.sh, ltc_recheck.sh).
ABLATION_FILES = (
    "base",
    "lr-scale-10",
    "lr-scale-10-seeds-3-4",
    "lr-scale-10-lin-20ep",
    "lr-scale-10-lin-20ep-seeds-3-4",
    "preset-today",
    "preset-today-seeds-3-4",
    "cm-0.3-0.5",
    "gain-4-centred",
    "Pendulum-v1-lr-scale-10",
    "Pendulum-v1-lr-scale-10-seeds-3-4",
    "Pendulum-v1-old-preset-seeds-3-4",
    "InvertedPendulum-v5-lr-scale-10",
    "LaneKeepingState-v0-lr-scale-10",
    "cfc-preset",
    "lr-scale-10-out-map-1",
    "lr-scale-10-out-map-1-seeds-3-4",
    "lr-scale-10-seeds-5-9",
    "cfc-preset-seeds-5-9",
)


def _ablation() -> dict | None:
    """The LTC-actor ablation's results (render_ltc_ablation.load), if all of :data:`ABLATION_FILES` are there."""
    folder = DATA / "ltc_ablation"
    if not all((folder / f"{name}.json").is_file() for name in ABLATION_FILES):
        return None
    return render_ltc_ablation.load(folder)


def _ten_seed_pair(results: dict) -> tuple[dict, dict, bool]:
    """Today's LTC preset and the CfC preset on every seed of render_ltc_ablation.TEN_SEEDS, and whether their
    intervals separate."""
    ltc, cfc = (render_ltc_ablation.ten_seed_stats(results, name) for name in ("lr-scale-10", "cfc-preset"))
    return ltc, cfc, render_ltc_ablation.versus(ltc, cfc, same=False) != "not separated"


def _interval(stats: dict) -> str:
    return f"{_num(stats['mean'])} [{_num(stats['low'])}, {_num(stats['high'])}]"


def _ten_seeds(results: dict) -> str:
    ltc, cfc, separated = _ten_seed_pair(results)
    n = _one((len(ltc["returns"]), len(cfc["returns"])), "seed counts")
    failed = render_ltc_ablation.FAILED_BELOW
    return (
        f"On {n} training seeds: the LTC preset {_interval(ltc)} ({sum(v < failed for v in ltc['returns'])} "
        f"seeds below {_num(failed)}), the CfC preset {_interval(cfc)}: "
        f"{'separated' if separated else 'not separated'}."
    )


def _ltc_ablation_bullet() -> str | None:
    """The LTC-actor ablation (docs/data/ltc_ablation/, scripts/ltc_ablation.sh and ltc_recheck.sh), if all of
    :data:`ABLATION_FILES` are there."""
    results = _ablation()
    if results is None:
        return None

    def returns(*tags: str) -> list[float]:  # the runs of the tags, each tag's by seed
        return [value for tag in tags for value in results[tag]["returns"]]

    def setting(tag: str, path: str) -> str:
        return render_ltc_ablation.describe(results, tag, "{" + path + "}")

    base = results["base"]["settings"]
    env, steps = _one(base["envs"], "envs"), base["timesteps"]
    five = returns("lr-scale-10", "lr-scale-10-seeds-3-4")
    goal = render_ltc_ablation.GOAL_RETURN
    met = statistics.fmean(five) >= goal
    pendulum_old, pendulum_new = (s["returns"] for s in render_ltc_ablation.recheck(results, "Pendulum-v1"))
    completion = min(results["LaneKeepingState-v0-lr-scale-10"]["completion"])
    scale = setting("lr-scale-10", "policy_kwargs.ltc_lr_scale")

    def on(*tags: str) -> str:  # "on 5 seeds −312 ± ..."
        values = returns(*tags)
        return f"on {len(values)} seeds {spread(values)}"

    return (
        f"NCP-LTC on {env} at {_steps(steps)} steps, each change alone on {len(base['seeds'])} training seeds "
        f"([data/ltc_ablation/](data/ltc_ablation/), {results['base']['date']}, {_page('ppo.md')}):\n  at the "
        f"CfC's optimiser settings {spread(returns('base'))}; with the cell's parameters at {scale}x the rate "
        f"(`ltc_lr_scale={scale}`)\n  {spread(returns('lr-scale-10'))}, "
        f"{on('lr-scale-10', 'lr-scale-10-seeds-3-4')};\n  with a decaying rate and {setting('lr-scale-10-lin-20ep', 'algo.n_epochs')} epochs "
        f"{on('lr-scale-10-lin-20ep', 'lr-scale-10-lin-20ep-seeds-3-4')}; with the motor output map at the rate "
        f"itself\n  (`ltc_output_lr_scale={setting('lr-scale-10-out-map-1', 'policy_kwargs.ltc_output_lr_scale')}`)"
        f" {on('lr-scale-10-out-map-1', 'lr-scale-10-out-map-1-seeds-3-4')}; the old per-env LTC optimiser preset"
        f"\n  (`{setting('preset-today', 'algo.learning_rate')}`, {setting('preset-today', 'algo.n_epochs')} "
        f"epochs) {on('preset-today', 'preset-today-seeds-3-4')}; faster initial time constants "
        f"{spread(returns('cm-0.3-0.5'))}, output gain "
        f"{setting('gain-4-centred', 'policy_kwargs.ltc_init.output_gain')} {spread(returns('gain-4-centred'))}"
        f".\n  Goal (mean >= {_num(goal)} on {len(five)} seeds with the scale): {'met' if met else 'not met'}; "
        f"the CfC preset on the same env and seeds {spread(returns('cfc-preset'))}.\n  {_ten_seeds(results)} "
        "The scale is now the LTC preset's construction, with each env's shared optimiser\n  settings and no "
        f"LTC-specific rate: Pendulum-v1 {spread(pendulum_new)} (the old preset on the same seeds\n  "
        f"{spread(pendulum_old)}), InvertedPendulum-v5 {spread(returns('InvertedPendulum-v5-lr-scale-10'))}, "
        f"LaneKeepingState-v0 return\n  {spread(returns('LaneKeepingState-v0-lr-scale-10'))} "
        f"({'100% completion' if completion == 1 else f'completion >= {completion:.0%}'} on every seed)."
    )


def _generalisation(summary: dict) -> dict:
    cells = {(g["train_tag"], g["model"], g["condition"]): g for g in summary["groups"]}
    order = ["ncp-ltc", "ncp-cfc", "lstm", "cnn"]
    models = sorted({model for _, model, _ in cells}, key=lambda m: (order.index(m) if m in order else len(order), m))
    alone = [
        (g["metrics"]["completion_rate"]["mean"], g["model"], g["condition"])
        for g in summary["groups"]
        if g["train_tag"] == "untagged" and g["condition"] not in ("clean", "all")
    ]
    verdict = separation_verdict(summary, ["completion_rate"])
    return {
        "cells": cells,
        "models": models,
        "alone": alone,
        "separated": [line for line in verdict if not line.endswith("not separated")],
        "seeds": min(g["n_seeds"] for g in summary["groups"]),
        "roads": "/".join(str(n) for n in sorted({g["episodes"] for g in summary["groups"]})),
    }


def generalisation_bullet(summary: dict | None = None) -> str | None:
    """Issue 17's generalisation study (docs/data/study_ncp_generalisation/), if its summary is there: completion
    with one randomised element at a time and with all together, for runs trained on the default look and under
    domain randomisation, with the verdict from the intervals across training seeds."""
    if summary is None:
        if not (DATA / "study_ncp_generalisation/summary.json").is_file():
            return None
        summary = _load("study_ncp_generalisation/summary.json")
    g = _generalisation(summary)
    if not g["alone"]:
        return None

    def completion(tag: str, condition: str) -> str:
        parts = []
        for model in g["models"]:
            if (tag, model, condition) not in g["cells"]:
                continue
            m = g["cells"][(tag, model, condition)]["metrics"]["completion_rate"]
            interval = "" if m["ci_low"] is None else f" [{max(m['ci_low'], 0):.0%}, {min(m['ci_high'], 1):.0%}]"
            parts.append(f"{model} {m['mean']:.0%}{interval}")
        return ", ".join(parts) or "not evaluated yet"

    low = min(g["alone"])[0]
    lowest = ", ".join(
        f"{model} under {condition}" for mean, model, condition in sorted(g["alone"]) if round(mean, 3) == round(low, 3)
    )
    confidence = _percent(summary.get("confidence", 0.95))
    return (
        f"Generalisation to held-out looks of the road scene (imitation, {g['seeds']} training seeds "
        f"per model,\n  {g['roads']} held-out roads, {_file('study_ncp_generalisation/summary.json')}; completion, "
        f"mean [{confidence} interval across seeds, clipped to 0-100%]): trained on\n  the default look, one "
        f"randomised element at a time: every model >= {low:.0%} (lowest: {lowest}); all elements "
        f"together: {completion('untagged', 'all')};\n  trained under domain randomisation, held-out "
        f"randomised looks: {completion('dr', 'all')}; the clean look: {completion('dr', 'clean')}.\n  "
        + (
            "Completion not separated between any two models or trainings"
            if not g["separated"]
            else f"Separated on completion ({_weak(summary)}): " + "; ".join(g["separated"])
        )
        + f" ({_page('study_ncp_generalisation.md')})."
    )


def _mujoco(summary: dict, spec: dict) -> dict:
    cells = {(g["env"], g["model"]): g for g in summary["groups"]}
    planned: dict[tuple[str, str], int] = {}  # seeds the spec trains per (env, policy), over all its entries
    for entry in spec["train"]:
        for policy in entry["policies"]:
            planned[(entry["env"], policy)] = planned.get((entry["env"], policy), 0) + len(entry["seeds"])
    verdict = [
        f"{line.split(' ', 1)[0]}: {line.rsplit(': ', 1)[1]}"
        for line in separation_verdict(summary, ["mean_return"])
        if "NoVel" in line.split(" ", 1)[0] and not line.endswith("not separated")
    ]
    unfinished = sum(n - cells[key]["n_seeds"] if key in cells else n for key, n in planned.items())
    return {
        "cells": cells,
        "planned": planned,
        "verdict": verdict,
        "unfinished": unfinished,
        "verdict_text": (
            f"Separated ({_weak(summary)}): " + "; ".join(verdict)
            if verdict
            else "No two policies separated on the NoVel envs"
        ),
    }


def mujoco_bullet(summary: dict | None = None, spec: dict | None = None) -> str | None:
    """Issue 17's MuJoCo memory study (docs/data/study_mujoco_novel/), if its summary is there: mean evaluation
    return per policy on each NoVel env, the fully observed env's MLP as the reference line, and the verdict from the
    intervals across training seeds. A study still running shows each cell's number of seeds."""
    if summary is None:
        if not (DATA / "study_mujoco_novel/summary.json").is_file():
            return None
        summary, spec = _load("study_mujoco_novel/summary.json"), _load("study_mujoco_novel/spec.json")
    m = _mujoco(summary, spec)
    cells, planned = m["cells"], m["planned"]
    steps = sorted({entry["timesteps"] for entry in spec["train"]})

    def cell(env: str, model: str) -> str:
        g = cells[(env, model)]
        ret = g["metrics"]["mean_return"]
        text = f"{model} {_num(ret['mean'])}"
        if ret["ci_low"] is not None:
            text += f" [{_num(ret['ci_low'])}, {_num(ret['ci_high'])}]"
        n, of = g["n_seeds"], planned[(env, model)]
        return text + ("" if n == of else f" ({n} of {of} seeds)")

    parts = []
    for env, full in (("HopperNoVel-v5", "Hopper-v5"), ("HalfCheetahNoVel-v5", "HalfCheetah-v5")):
        models = [model for model in ("ltc", "cfc", "lstm", "mlp") if (env, model) in cells]
        if not models:
            continue
        line = f"{env}: " + ", ".join(cell(env, model) for model in models)
        if (full, "mlp") in cells:
            line += f"; reference, MLP on {full}: {cell(full, 'mlp').split(' ', 1)[1]}"
        parts.append(line)
    episodes = "/".join(str(n) for n in sorted({g["episodes"] for g in summary["groups"]}))
    unfinished, total = m["unfinished"], sum(planned.values())
    if not unfinished:
        state = m["verdict_text"]
    elif min(g["n_seeds"] for g in summary["groups"]) < 2:  # a cell without an interval: no verdict
        state = f"Study not finished: {unfinished} of {total} runs to go; no verdict yet"
    else:
        state = f"Study not finished ({unfinished} of {total} runs to go). {m['verdict_text']}"
    confidence = _percent(summary.get("confidence", 0.95))
    return (
        f"Memory tasks beyond Pendulum (PPO, {'/'.join(_steps(s) for s in steps)} steps, "
        f"{max(planned.values())} training seeds per policy, {episodes} held-out episodes,\n  "
        f"{_file('study_mujoco_novel/summary.json')}; mean return [{confidence} interval across seeds]):\n  "
        + ";\n  ".join(parts)
        + ".\n  "
        + state
        + f" ({_page('study_mujoco_novel.md')})."
    )


def _imitation() -> dict:
    data = _load("imitation/bench_imitation_paper_ncp_ltc.json")
    (result,) = data["results"]
    return {
        **result,
        "episodes": data["settings"]["episodes"],
        "threads": data["settings"]["threads"],
        "date": data["date"],
    }


def render_measured() -> str:
    i = _imitation()
    c = _cells()
    bullets = [
        f"Camera lane keeping by imitation, the paper's NCP-LTC ({i['recurrent_parameters']:,} recurrent parameters, "
        f"{i['synapses']:,} synapses) at the\n  `{i['preset']}` preset: {i['completion_rate']:.0%} of "
        f"{i['episodes']} held-out roads completed, trained in {i['train_minutes']:.0f} minutes with "
        f"{_word(i['threads'])} torch thread{'s' if i['threads'] > 1 else ''}\n  ({i['date']}, "
        f"{_file('imitation/bench_imitation_paper_ncp_ltc.json')}, {_page('imitation.md')}).",
        _noise_bullet(),
        f"Cells against ncps {_ncps_version()} on the CPU: LTC training {c['ltc_train']['speedup']:.1f}x, LTC "
        f"inference step {c['ltc_step']['speedup']:.1f}x\n  (median {statistics.median(c['quick']):.1f}x over "
        f"{_word(len(c['quick']))} quick runs), wired CfC {c['cfc_train']['speedup']:.1f}x training and "
        f"{c['cfc_step']['speedup']:.1f}x inference ({_page('cells_speed.md')}).",
        *_ppo_bullets(),
    ]
    bullets += [b for b in (generalisation_bullet(), mujoco_bullet(), _ltc_ablation_bullet()) if b]
    return (
        "Each number below is rendered from a data file in [data/](data/) by "
        "`python scripts/render_readme_results.py`; the docs page\ngives the command, machine and date.\n\n"
        + "".join(f"- {b}\n" for b in bullets)
    )


# ----------------------------------------------------------------------------------------------------- headline
def render_headline() -> str:
    """README.md's short table: one row per headline result, each with its page."""
    c, i, n = _cells(), _imitation(), _noise()
    e = _env_speed()
    rows = _benchmark_rows(c, i, n)
    for row in (
        _generalisation_row(),
        _ppo_ablation_row(),
        _pendulum_row(),
        _mujoco_row(),
        _mismatch_row(),
        _mujoco_mismatch_row(),
        _finetune_row(),
        _rllib_row(),
    ):
        if row is not None:
            rows.append(row)
    rows.append(_deploy_row())
    rows.append(
        (
            "Lane-keeping camera env",
            f"{_num(e['rates'][0])}–{_num(e['rates'][-1])} steps/s ({e['size']}, {_pinned(e['runs'])})",
            "envs.md",
        )
    )
    lines = ["| result | measured | details |", "|---|---|---|"]
    lines += [f"| {what} | {value} | {_page(page, README)} |" for what, value, page in rows]
    return "\n".join(lines) + (
        f"\n\nEvery figure with its data file, machine and date: {_page('results.md', README)}.\n"
    )


def _benchmark_rows(c: dict, i: dict, n: dict) -> list[tuple[str, str, str]]:
    """The headline rows always shown: cell speed, imitation lane keeping and the pixel-noise study."""
    return [
        (
            f"Cells against ncps {_ncps_version()} (CPU)",
            f"LTC training {c['ltc_train']['speedup']:.1f}x faster, LTC inference step {c['ltc_step']['speedup']:.1f}x, "
            f"wired CfC {c['cfc_train']['speedup']:.1f}x / {c['cfc_step']['speedup']:.1f}x",
            "cells_speed.md",
        ),
        (
            f"Camera lane keeping by imitation (the paper's NCP-LTC, `{i['preset']}` preset)",
            f"{i['completion_rate']:.0%} of {i['episodes']} held-out roads, trained in {i['train_minutes']:.0f} min",
            "imitation.md",
        ),
        (
            f"The NCP paper's pixel-noise test, {n['seeds']} training seeds per model",
            f"crash rates {n['verdict']}",
            n["page"],
        ),
    ]


def _generalisation_row() -> tuple[str, str, str] | None:
    """The held-out-looks study's row, when its page has a bullet."""
    if generalisation_bullet() is None:
        return None
    g = _generalisation(_load("study_ncp_generalisation/summary.json"))
    return (
        f"Held-out looks of the road scene, {g['seeds']} training seeds per model",
        "completion not separated between any two models or trainings"
        if not g["separated"]
        else "separated on completion: " + "; ".join(g["separated"]),
        "study_ncp_generalisation.md",
    )


def _ppo_ablation_row() -> tuple[str, str, str] | None:
    """NCP-LTC against NCP-CfC over ten PPO training seeds, when the ablation's results are there."""
    results = _ablation()
    if results is None:
        return None
    ltc, cfc, separated = _ten_seed_pair(results)
    settings = results["base"]["settings"]
    return (
        f"PPO on {_one(settings['envs'], 'envs')} at {_steps(settings['timesteps'])} steps, "
        f"{len(ltc['returns'])} training seeds",
        f"NCP-LTC {_interval(ltc)}, NCP-CfC {_interval(cfc)} (mean return, "
        f"{_percent(render_ltc_ablation.CONFIDENCE)} interval): "
        f"{'separated' if separated else 'not separated'}",
        "ppo.md",
    )


def _mujoco_row() -> tuple[str, str, str] | None:
    """The memory-task study's verdict, when its page has a bullet."""
    if mujoco_bullet() is None:
        return None
    summary, spec = _load("study_mujoco_novel/summary.json"), _load("study_mujoco_novel/spec.json")
    m = _mujoco(summary, spec)
    envs = " / ".join(sorted({env for env, _ in m["cells"] if "NoVel" in env}, reverse=True))
    return (
        f"Memory tasks {envs} (PPO, {max(m['planned'].values())} training seeds)",
        m["verdict_text"][0].lower() + m["verdict_text"][1:] if not m["unfinished"] else "study not finished",
        "study_mujoco_novel.md",
    )


def _pendulum_row() -> tuple[str, str, str] | None:
    """The 10-seed PendulumNoVel-v1 study (memory, and LTC against CfC): IQM per policy and the verdict."""
    if not (DATA / "study_pendulum_novel_10/summary.json").is_file():
        return None
    summary = _load("study_pendulum_novel_10/summary.json")
    groups = sorted(summary["groups"], key=lambda g: -g["metrics"]["mean_return"]["iqm"])
    seeds = sorted({g["n_seeds"] for g in groups})
    iqm = ", ".join(
        f"{g['model']} {_num(g['metrics']['mean_return']['iqm'])}"
        + (
            f" [{_num(g['metrics']['mean_return']['iqm_ci'][0])}, {_num(g['metrics']['mean_return']['iqm_ci'][1])}]"
            if g["metrics"]["mean_return"]["iqm_ci"]
            else ""
        )
        for g in groups
    )
    verdict = [line.rsplit(": ", 1)[1] for line in separation_verdict(summary, ["mean_return"])]
    jobs = summary["jobs"]
    state = "" if jobs["done"] == jobs["total"] else f" (study part-way: {jobs['done']} of {jobs['total']} jobs)"
    return (
        f"Memory on PendulumNoVel-v1 (PPO, {'-'.join(map(str, (seeds[0], seeds[-1]) if len(seeds) > 1 else seeds))} "
        f"training seeds per policy){state}",
        f"IQM return {iqm}; verdict (rliable, probability of improvement): {'; '.join(verdict)}",
        "study_pendulum_novel_10.md",
    )


def _mismatch_row() -> tuple[str, str, str] | None:
    """Model mismatch on lane keeping (issue 28): which models complete more roads under each dynamics change."""
    if not (DATA / "study_lane_mismatch/summary.json").is_file():
        return None
    summary = _load("study_lane_mismatch/summary.json")
    seeds = min(group["n_seeds"] for group in summary["groups"])
    lines = [line for line in separation_verdict(summary, ["completion_rate"]) if not line.endswith("not separated")]
    conditions = [line.split(" completion_rate: ")[0].split(" ", 1)[1] for line in lines]
    pairs = [line.rsplit(": ", 1)[1] for line in lines]
    jobs = summary["jobs"]
    state = "" if jobs["done"] == jobs["total"] else f" (study part-way: {jobs['done']} of {jobs['total']} jobs)"
    verdict = (
        "completion not separated between any two models under any change"
        if not lines
        else "separated on completion (rliable: P(a better than b) interval above 0.5): "
        + "; ".join(f"{c}: {p}" for c, p in zip(conditions, pairs))
    )
    return (
        f"Model mismatch in lane keeping (steering, crosswind), {seeds} training seeds per model{state}",
        verdict,
        "study_lane_mismatch.md",
    )


def _mujoco_mismatch_row() -> tuple[str, str, str] | None:
    """Model mismatch on the MuJoCo memory tasks (issue 28): per env, in how many of the mass and friction
    conditions each pair of policies separates on return, and on the share of its own nominal return kept."""
    if not (DATA / "study_mujoco_mismatch/summary.json").is_file():
        return None
    summary = _load("study_mujoco_mismatch/summary.json")
    kept = _load("study_mujoco_mismatch/retention.json")
    seeds = min(group["n_seeds"] for group in summary["groups"])
    envs = sorted({group["env"] for group in summary["groups"]}, reverse=True)
    verdicts = separation_verdict(summary, ["mean_return"])
    parts = []
    for env in envs:
        returns = [line.rsplit(": ", 1)[1].split("; ") for line in verdicts if line.startswith(f"{env} ")]
        shares = [row["separated"] for row in kept if row["env"] == env]
        parts.append(f"{env}: return {_pair_counts(returns)}; share kept {_pair_counts(shares)}")
    jobs = summary["jobs"]
    state = "" if jobs["done"] == jobs["total"] else f" (study part-way: {jobs['done']} of {jobs['total']} jobs)"
    return (
        f"Model mismatch on {' / '.join(envs)} (mass, friction; PPO, {seeds} training seeds per policy){state}",
        "pairs separated (rliable: P(a better than b) interval above 0.5), in k of the conditions: " + "; ".join(parts),
        "study_mujoco_mismatch.md",
    )


def _finetune_row() -> tuple[str, str, str] | None:
    """PPO fine-tuning of the camera imitation policies (issue 27): per fine-tuning tag, the (model, condition)
    cells where the fine-tuned runs' return is separated above or below the same model's imitation runs."""
    if not (DATA / "study_camera_finetune/summary.json").is_file():
        return None
    summary = _load("study_camera_finetune/summary.json")
    spec = _load("study_camera_finetune/spec.json")
    effects = [e for e in fine_tuning_effects(summary, spec) if e["metric"] == "mean_return"]
    seeds = min(group["n_seeds"] for group in summary["groups"])

    def where(cells: list[dict]) -> str:  # "ncp-ltc at noise 0.316, looks; lstm at ..."
        by_model: dict[str, list[str]] = {}
        for e in cells:
            what = [e.get("condition") or ""] + ([] if e["perturbation"] == "none" else [f"{e['level']:g}"])
            by_model.setdefault(e["model"], []).append(" ".join(w for w in what if w) or "nominal")
        return "; ".join(f"{model} at {', '.join(conditions)}" for model, conditions in sorted(by_model.items()))

    parts = []
    for tag in sorted({e["tag"] for e in effects}):
        mine = [e for e in effects if e["tag"] == tag]
        better = [e for e in mine if e["prob_improvement_ci"][0] > 0.5]
        worse = [e for e in mine if e["prob_improvement_ci"][1] < 0.5]
        parts.append(
            f"{tag}: better in {len(better)} of {len(mine)}"
            + (f" ({where(better)})" if better else "")
            + f", worse in {len(worse)}"
            + (f" ({where(worse)})" if worse else "")
        )
    jobs = summary["jobs"]
    state = "" if jobs["done"] == jobs["total"] else f" (study part-way: {jobs['done']} of {jobs['total']} jobs)"
    return (
        f"PPO fine-tuning of the camera imitation policies, {seeds} training seeds per model{state}",
        "return of the fine-tuned runs against the same model's imitation runs, per (model, condition) cell "
        "(rliable: P(fine-tuned better) interval wholly above or below 0.5): " + "; ".join(parts),
        "study_camera_finetune.md",
    )


def _pair_counts(conditions: list[list[str]]) -> str:
    """``"a better than b (k/n)"`` over ``n`` conditions' lists of separated pairs, the four most often separated
    first (the page has them all)."""
    counts: dict[str, int] = {}
    for pairs in conditions:
        for pair in pairs:
            if pair != "not separated":
                counts[pair] = counts.get(pair, 0) + 1
    ranked = sorted(counts, key=lambda pair: (-counts[pair], pair))
    shown = ", ".join(f"{pair} ({counts[pair]}/{len(conditions)})" for pair in ranked[:4]) or "not separated"
    return shown + (f" and {len(ranked) - 4} more pairs" if len(ranked) > 4 else "")


def _rllib_row() -> tuple[str, str, str] | None:
    """PPO through RLlib (issue 26): held-out returns against the SB3 path's, and what a second env runner buys."""
    if not (DATA / "rllib/learning.json").is_file():
        return None
    learning, bench = _load("rllib/learning.json"), _load("rllib/bench_rllib.json")
    agg = learning["aggregate"]

    def iqm(name: str) -> str:
        low, high = agg[name]["iqm_ci"]
        return f"{_num(agg[name]['iqm'])} [{_num(low)}, {_num(high)}]"

    policies = [name.removeprefix("rllib-") for name in sorted(agg) if name.startswith("rllib-")]
    seeds = min(agg[f"rllib-{p}"]["n_runs"] for p in policies)
    return (
        f"PPO through RLlib (`train-rllib`) on PendulumNoVel-v1, {_steps(learning['timesteps_rllib'])} steps, "
        f"{seeds} training seeds",
        "IQM return "
        + ", ".join(
            f"{p} {iqm(f'rllib-{p}')} (SB3 at {_steps(learning['timesteps_sb3'])}: {iqm(f'sb3-{p}')})" for p in policies
        )
        + "; "
        + _rllib_ablation(learning)
        + f"; 2 env runners sample {bench['sampling_ratio_2_to_1']:.2f}x one on LaneKeeping-v0",
        "rllib.md",
    )


def _rllib_ablation(learning: dict) -> str:
    """The verdicts of RLlib's runs against SB3's runs without what RLlib's PPO lacks (gSDE, normalisation)."""
    rows = [r for r in learning["improvement"] if r["b"].startswith("sb3-ablation-")]
    if not rows:
        return "no SB3 ablation"
    verdicts = {r["verdict"] for r in rows}
    what = "not separated" if verdicts == {"not separated"} else "; ".join(r["verdict"] for r in rows)
    return f"against SB3 without gSDE and normalisation at the same budget: {what}"


def _deploy_row() -> tuple[str, str, str]:
    """The exported ONNX policy: its speed against ncps and the demo policy's completion in onnxruntime."""
    export, demo = _load("deploy/bench_export.json"), _load("deploy/deploy_demo_check.json")
    ppo = export["ppo_state_policy"]
    done = {kind: round(demo[kind]["completion_rate"] * demo["episodes"]) for kind in ("torch", "onnxruntime")}
    return (
        "Exported ONNX policy, run without torch",
        f"NCP-LTC state policy {ppo['ncps_over_ort_cpu']:.1f}x faster than the same policy stepped with "
        f"ncps (CPU time); the demo policy completes {done['onnxruntime']}/{demo['episodes']} held-out roads "
        f"({done['torch']}/{demo['episodes']} in torch)",
        "deploy.md",
    )


#: The blocks of each page, in the order they appear.
PAGES = {
    README: {"headline": render_headline},
    RESULTS: {"env-speed": render_env_speed, "speed": render_speed, "measured": render_measured},
}
RENDERERS = {name: fn for blocks in PAGES.values() for name, fn in blocks.items()}


def render(text: str, page: Path = RESULTS) -> str:
    """``text`` (the page ``page``) with every results block re-rendered from the data.

    Raises:
        ValueError: a block of the page is missing from the text, or the text has a block with no renderer.
    """
    blocks = PAGES[page]
    found = [m.group("name") for m in BLOCK.finditer(text)]
    if sorted(found) != sorted(blocks):
        raise ValueError(f"{page.name} results blocks {sorted(found)} do not match the renderers {sorted(blocks)}")
    return BLOCK.sub(lambda m: m.group(1) + blocks[m.group("name")]() + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a page differs from the data")
    args = parser.parse_args(argv)
    status = 0
    for page in PAGES:
        text = page.read_text()
        rendered = render(text, page)
        if args.check:
            if rendered != text:
                print(
                    f"{page.relative_to(ROOT)}'s results blocks differ from docs/data/: run python "
                    "scripts/render_readme_results.py"
                )
                status = 1
        else:
            page.write_text(rendered)
    return status


if __name__ == "__main__":
    sys.exit(main())
