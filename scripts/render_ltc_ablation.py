"""Render the LTC-actor ablation (issue 17 item 1) from the JSON files of ``scripts/ltc_ablation.sh``: one row per
variant with the mean return at 100k steps on PendulumNoVel-v1, its 95% Student-t interval across training seeds,
every seed's value and steps/s, and whether its interval separates from the base's ("not separated" where the
intervals overlap). Every number in the output comes from the files: the settings a variant changes are read from its
file's ``settings.overrides`` (the ``{path}`` fields of :data:`VARIANTS`), counts of seeds from its rows; the one
constant is the goal, :data:`GOAL_RETURN`.

Usage::

    python scripts/render_ltc_ablation.py docs/data/ltc_ablation              # prints the Markdown tables
    python scripts/render_ltc_ablation.py docs/data/ltc_ablation --write docs/ppo.md   # between its ablation markers
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ncp_control.agents.evaluation.intervals import mean_confidence_interval  # noqa: E402

#: Display order and what each variant changes (the JSON file stem is the variant's tag). A ``{path}`` field is the
#: value at that dotted path of the variant's ``settings.overrides`` (see :func:`describe`); ``{date}`` its file's date.
VARIANTS = {
    "base": "ncps initialisation, the CfC's optimiser settings (lr {algo.learning_rate}, {algo.n_epochs} epochs)",
    "lr-scale-10": "base + `ltc_lr_scale={policy_kwargs.ltc_lr_scale}` (the LTC cell's parameters step at "
    "{policy_kwargs.ltc_lr_scale}x the rate)",
    "lr-scale-3": "base + `ltc_lr_scale={policy_kwargs.ltc_lr_scale}`",
    "cm-0.3-0.5": "base + initial capacitances {policy_kwargs.ltc_init.cm} (faster neurons)",
    "gain-4-centred": "base + output gain {policy_kwargs.ltc_init.output_gain}, output centred at rest",
    "preset-today": "ncps initialisation, the LTC's old per-env optimiser preset (lr {algo.learning_rate}, "
    "{algo.n_epochs} epochs; the default until {date})",
    "lr-scale-30": "base + `ltc_lr_scale={policy_kwargs.ltc_lr_scale}` (dose)",
    "lr-scale-10-cm": "base + `ltc_lr_scale={policy_kwargs.ltc_lr_scale}` + capacitances {policy_kwargs.ltc_init.cm} "
    "(combination)",
    "lr-scale-10-lin": "`ltc_lr_scale={policy_kwargs.ltc_lr_scale}` with the rate decaying linearly to 0 "
    "({algo.learning_rate}), {algo.n_epochs} epochs",
    "lr-scale-10-lin-20ep": "`ltc_lr_scale={policy_kwargs.ltc_lr_scale}`, {algo.learning_rate}, {algo.n_epochs} epochs",
    # on today's preset (lr-scale-10), 2026-11-28 evening: compare with the lr-scale-10 row
    "lr-scale-10-logstd-1": "lr-scale-10 + `log_std_init={policy_kwargs.log_std_init}` (less exploration noise at "
    "the start)",
    "lr-scale-10-no-input-layer": "lr-scale-10 without the input layer (`net_arch.pi={policy_kwargs.net_arch.pi}`: "
    "the sensory synapses read the observation, as in ncps)",
    "lr-scale-10-no-sde": "lr-scale-10 with state-independent Gaussian exploration (`use_sde={algo.use_sde}`)",
    "lr-scale-10-20ep": "lr-scale-10 with {algo.n_epochs} epochs",
    "lr-scale-10-out-map-1": "lr-scale-10 + `ltc_output_lr_scale={policy_kwargs.ltc_output_lr_scale}` (the cell's "
    "motor output map at the rate itself, the rest of the cell at "
    "{policy_kwargs.ltc_lr_scale}x)",
}
#: Variants whose file ran the preset of its day without overrides: their settings are read from the file named here,
#: the same variant on more seeds with the settings spelled out.
SETTINGS_FROM = {"preset-today": "preset-today-seeds-3-4"}
#: The goal of the ablation: a mean return at least this high over the training seeds.
GOAL_RETURN = -250
#: Confidence of the Student-t intervals across training seeds.
CONFIDENCE = 0.95
#: The row the evening's variants change (today's preset until ltc_output_lr_scale): the table's last column.
PRESET = "lr-scale-10"

#: The other envs' check (scripts/ltc_recheck.sh) and the old per-env LTC preset on them: rows of
#: docs/data/ppo/bench_ppo_2026-11-23_session3.json (run index, seed) that docs/ppo.md's 100k x 3-seed table shows, plus
#: ``<env>-old-preset-seeds-3-4`` / ``<env>-lr-scale-10-seeds-3-4`` where seeds 3 and 4 ran (2026-11-28).
RECHECK = {
    "Pendulum-v1": [(13, 0), (1, 1), (13, 2)],
    "InvertedPendulum-v5": [(0, 0), (0, 1), (0, 2)],
    "LaneKeepingState-v0": [(0, 0), (0, 1), (0, 2)],
}
REFERENCE_FILE = Path(__file__).resolve().parents[1] / "docs" / "data" / "ppo" / "bench_ppo_2026-11-23_session3.json"
EXTRA_SEEDS = "lr-scale-10-seeds-3-4"


def _stats(rows: list[dict]) -> dict:
    rows = sorted(rows, key=lambda r: r["seed"])
    returns = [r["mean_return"] for r in rows]
    mean, low, high = mean_confidence_interval(returns, CONFIDENCE)
    return {
        "seeds": [r["seed"] for r in rows],
        "returns": returns,
        "mean": mean,
        "low": low,
        "high": high,
        "completion": [r.get("completion_rate") for r in rows],
        "env": rows[0]["env_id"],
    }


def load(folder: Path) -> dict[str, dict]:
    """Every variant's statistics by tag (the JSON file's stem), its rows under ``"rows"``, its run settings under
    ``"settings"`` and its date under ``"date"``."""
    out = {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        out[path.stem] = {
            **_stats(data["rows"]),
            "rows": data["rows"],
            "settings": data.get("settings", {}),
            "date": data.get("date"),
        }
    return out


def _value(value) -> str:
    """A setting as the tables write it: 0.001 -> 1e-3, [0.3, 0.5] -> 0.3-0.5, False -> false, [] -> []."""
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, float) and value < 0.01:
        mantissa, exponent = f"{value:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    if isinstance(value, list):
        return "-".join(_value(v) for v in value) if value else "[]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def setting(results: dict[str, dict], tag: str, path: str):
    """The value at dotted ``path`` of ``tag``'s overrides (or of its :data:`SETTINGS_FROM` file's)."""
    value = results[SETTINGS_FROM.get(tag, tag)]["settings"].get("overrides", {})
    for key in path.split("."):
        value = value[key]
    return value


def describe(results: dict[str, dict], tag: str, template: str | None = None) -> str:
    """``template`` (default ``VARIANTS[tag]``) with each ``{path}`` replaced by :func:`setting` and ``{date}`` by
    the file's date."""
    template = VARIANTS.get(tag, "") if template is None else template

    def field(match: re.Match) -> str:
        name = match.group(1)
        return results[tag]["date"] if name == "date" else _value(setting(results, tag, name))

    return re.sub(r"\{([\w.]+)\}", field, template)


def _seed_range(seeds: list[int]) -> str:
    return f"{min(seeds)}-{max(seeds)}" if len(seeds) > 1 else str(seeds[0])


def five_seeds(results: dict[str, dict]) -> str:
    """A line per variant that also ran seeds 3 and 4 (``<tag>-seeds-3-4``, or ``EXTRA_SEEDS`` for lr-scale-10)."""
    lines = []
    for tag in VARIANTS:
        extra = EXTRA_SEEDS if tag == "lr-scale-10" else f"{tag}-seeds-3-4"
        if tag not in results or extra not in results:
            continue
        r = _stats(results[tag]["rows"] + results[extra]["rows"])
        n = len(r["returns"])
        met = r["mean"] >= GOAL_RETURN
        below = sum(v < GOAL_RETURN for v in r["returns"])
        lines.append(
            f"- {tag} on {n} training seeds ({_seed_range(r['seeds'])}): mean {r['mean']:.0f} "
            f"[{r['low']:.0f}, {r['high']:.0f}], per seed "
            + ", ".join(f"{v:.0f}" for v in r["returns"])
            + f"; goal (mean >= {GOAL_RETURN} over {n} seeds) {'met' if met else 'not met'}, {below} of {n} "
            f"seeds below {GOAL_RETURN}."
        )
    return "\n".join(lines)


#: The CfC runs on the same env: the reference the LTC is measured against, and the CfC with the LTC's critic.
REFERENCES = {
    "cfc-preset": "the CfC preset (dense CfC critic), the reference",
    "cfc-fc-critic": "the CfC actor with the LTC preset's fully connected CfC critic "
    "(`critic_wiring={policy_kwargs.critic_wiring}`)",
}


def references(results: dict[str, dict]) -> str:
    """A line per CfC reference run that is there (``scripts/ltc_ablation.sh``'s last entries)."""
    lines = []
    for tag, what in REFERENCES.items():
        if tag in results:
            r = _stats(results[tag]["rows"])
            lines.append(
                f"- {tag}: {describe(results, tag, what)}, {len(r['returns'])} seeds: mean "
                f"{r['mean']:.0f} [{r['low']:.0f}, "
                f"{r['high']:.0f}], per seed " + ", ".join(f"{v:.0f}" for v in r["returns"]) + "."
            )
    return "\n".join(lines)


#: Seeds 0-9 of today's preset and of the CfC preset: how often a training seed fails.
TEN_SEEDS = {
    "lr-scale-10": ("lr-scale-10", EXTRA_SEEDS, "lr-scale-10-seeds-5-9"),
    "cfc-preset": ("cfc-preset", "cfc-preset-seeds-5-9"),
}
FAILED_BELOW = -400


def ten_seed_stats(results: dict[str, dict], name: str) -> dict | None:
    """:func:`_stats` over every seed of ``name``'s :data:`TEN_SEEDS` files; None while one is missing."""
    tags = TEN_SEEDS[name]
    if not all(tag in results for tag in tags):
        return None
    return _stats([row for tag in tags for row in results[tag]["rows"]])


def ten_seeds(results: dict[str, dict]) -> str:
    """A line per preset with all of its :data:`TEN_SEEDS` files: every seed, the mean and its interval, and how
    many seeds end below :data:`FAILED_BELOW`."""
    lines = []
    for name in TEN_SEEDS:
        r = ten_seed_stats(results, name)
        if r is None:
            continue
        failed = sum(v < FAILED_BELOW for v in r["returns"])
        lines.append(
            f"- {name} on {len(r['returns'])} training seeds ({_seed_range(r['seeds'])}): mean "
            f"{r['mean']:.0f} "
            f"[{r['low']:.0f}, {r['high']:.0f}], per seed "
            + ", ".join(f"{v:.0f}" for v in r["returns"])
            + f"; {failed} of {len(r['returns'])} below {FAILED_BELOW}."
        )
    return "\n".join(lines)


@functools.lru_cache(maxsize=1)
def _reference_runs() -> list[dict]:
    """The runs of :data:`REFERENCE_FILE`, read once (every env's recheck picks from them)."""
    return json.loads(REFERENCE_FILE.read_text())["runs"]


def recheck(results: dict[str, dict], env: str) -> tuple[dict, dict] | None:
    """``env``'s old per-env LTC preset (the :data:`RECHECK` rows of :data:`REFERENCE_FILE`, plus
    ``<env>-old-preset-seeds-3-4``) and today's preset (``<env>-lr-scale-10``, plus its ``-seeds-3-4``), as
    :func:`_stats`; None before ``<env>-lr-scale-10`` has run."""
    new = results.get(f"{env}-lr-scale-10")
    if new is None:
        return None
    reference = _reference_runs()
    old_rows = [
        next(r for r in reference[i]["rows"] if r["env_id"] == env and r["policy"] == "ltc" and r["seed"] == seed)
        for i, seed in RECHECK[env]
    ]
    old = _stats(old_rows + results.get(f"{env}-old-preset-seeds-3-4", {}).get("rows", []))
    return old, _stats(new["rows"] + results.get(f"{env}-lr-scale-10-seeds-3-4", {}).get("rows", []))


def output_map_checks(results: dict[str, dict]) -> str:
    """A line per other env where ``ltc_output_lr_scale=1`` ran (``<env>-out-map-1``, scripts/ltc_recheck.sh),
    beside today's preset on the same env."""
    lines = []
    for env in RECHECK:
        if f"{env}-out-map-1" not in results:
            continue
        r = _stats(results[f"{env}-out-map-1"]["rows"])
        text = (
            f"- {env} with `ltc_output_lr_scale=1`, {len(r['returns'])} seeds: mean {r['mean']:.0f} "
            f"[{r['low']:.0f}, {r['high']:.0f}], per seed " + ", ".join(f"{v:.0f}" for v in r["returns"])
        )
        pair = recheck(results, env)
        if pair is not None:
            now = pair[1]
            text += (
                f"; today's preset (lr-scale-10) on seeds {', '.join(map(str, now['seeds']))}: mean "
                f"{now['mean']:.0f} [{now['low']:.0f}, {now['high']:.0f}]"
            )
        lines.append(text + ".")
    return "\n".join(lines)


def recheck_table(results: dict[str, dict]) -> str:
    new_tags = [f"{env}-lr-scale-10" for env in RECHECK if f"{env}-lr-scale-10" in results]
    if not new_tags:
        return ""
    scale = describe(results, new_tags[0], "`ltc_lr_scale={policy_kwargs.ltc_lr_scale}`")
    lines = [
        f"| env | old per-env LTC preset (per seed) | {scale}, the env's shared rate: today's preset "
        "(per seed) | mean, old -> new (95% CI across seeds) |",
        "|---|---|---|---|",
    ]
    for env in RECHECK:
        pair = recheck(results, env)
        if pair is None:
            continue
        old, new = pair

        def fmt(stats):
            text = ", ".join(f"{v:.0f}" for v in stats["returns"])
            if stats["completion"][0] is not None:
                text += " (completion " + ", ".join(f"{c:.0%}" for c in stats["completion"]) + ")"
            return text

        lines.append(
            f"| {env} | {fmt(old)} | {fmt(new)} | {old['mean']:.0f} [{old['low']:.0f}, {old['high']:.0f}]"
            f" -> {new['mean']:.0f} [{new['low']:.0f}, {new['high']:.0f}] |"
        )
    return "\n".join(lines)


def versus(r: dict, reference: dict | None, same: bool) -> str:
    """Whether ``r``'s interval separates from ``reference``'s ("not separated" where they overlap)."""
    if reference is None or same:
        return ""
    if r["low"] > reference["high"]:
        return "better (separated)"
    if r["high"] < reference["low"]:
        return "worse (separated)"
    return "not separated"


def table(results: dict[str, dict]) -> str:
    base, preset = results.get("base"), results.get(PRESET)
    lines = [
        "| variant | what changes | mean return (95% CI across seeds) | per seed | vs base | vs lr-scale-10 |",
        "|---|---|---|---|---|---|",
    ]
    order = [v for v in VARIANTS if v in results]  # (the seeds-3-4 files feed five_seeds)
    for name in order:
        r = results[name]
        seeds = ", ".join(f"{v:.0f}" for v in r["returns"])
        on_preset = name.startswith(PRESET + "-")
        lines.append(
            f"| {name} | {describe(results, name)} | {r['mean']:.0f} [{r['low']:.0f}, {r['high']:.0f}] "
            f"(n={len(r['returns'])}) | {seeds} | {versus(r, base, name == 'base')} | "
            f"{versus(r, preset, not on_preset)} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--write", type=Path, default=None, help="replace the table between the ablation markers")
    args = parser.parse_args(argv)
    results = load(args.folder)
    text = "\n\n".join(
        part
        for part in (
            table(results),
            five_seeds(results),
            references(results),
            ten_seeds(results),
            recheck_table(results),
            output_map_checks(results),
        )
        if part
    )
    if args.write is None:
        print(text)
        return
    doc = args.write.read_text()
    start, end = "<!-- ablation:start -->\n", "<!-- ablation:end -->"
    i, j = doc.index(start) + len(start), doc.index(end)
    args.write.write_text(doc[:i] + text + "\n" + doc[j:])


if __name__ == "__main__":
    main()
