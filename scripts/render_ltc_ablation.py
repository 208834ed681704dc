"""Render the LTC-actor ablation (issue 17 item 1) from the JSON files of ``scripts/ltc_ablation.sh``: one row per
variant with the mean return at 100k steps on PendulumNoVel-v1, its 95% Student-t interval across training seeds,
every seed's value and steps/s, and whether its interval separates from the base's ("not separated" where the
intervals overlap).

Usage::

    python scripts/render_ltc_ablation.py docs/ltc_ablation              # prints the Markdown table
    python scripts/render_ltc_ablation.py docs/ltc_ablation --write docs/ltc_ablation.md
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ncp_control.agents.evaluation.robustness import mean_confidence_interval  # noqa: E402

#: Display order and what each variant changes (the JSON file stem is the variant's tag).
VARIANTS = {
    "base": "ncps initialisation, the CfC's optimiser settings (lr 1e-3, 10 epochs)",
    "lr-scale-10": "base + `ltc_lr_scale=10` (the LTC cell's parameters step at 10x the rate)",
    "lr-scale-3": "base + `ltc_lr_scale=3`",
    "cm-0.3-0.5": "base + initial capacitances 0.3-0.5 (faster neurons)",
    "gain-4-centred": "base + output gain 4, output centred at rest",
    "preset-today": "ncps initialisation, the LTC's old per-env optimiser preset (lr lin_0.01, 20 epochs; the "
                    "default until 2026-11-28)",
    "lr-scale-30": "base + `ltc_lr_scale=30` (dose)",
    "lr-scale-10-cm": "base + `ltc_lr_scale=10` + capacitances 0.3-0.5 (combination)",
    "lr-scale-10-lin": "`ltc_lr_scale=10` with the rate decaying linearly to 0 (lin_0.001), 10 epochs",
    "lr-scale-10-lin-20ep": "`ltc_lr_scale=10`, lin_0.001, 20 epochs",
    # on today's preset (lr-scale-10), 2026-11-28 evening: compare with the lr-scale-10 row
    "lr-scale-10-logstd-1": "lr-scale-10 + `log_std_init=-1` (less exploration noise at the start)",
    "lr-scale-10-no-input-layer": "lr-scale-10 without the 32-unit input layer (`net_arch.pi=[]`: the sensory "
                                  "synapses read the observation, as in ncps)",
    "lr-scale-10-no-sde": "lr-scale-10 with state-independent Gaussian exploration (`use_sde=false`)",
    "lr-scale-10-20ep": "lr-scale-10 with 20 epochs",
    "lr-scale-10-out-map-1": "lr-scale-10 + `ltc_output_lr_scale=1` (the cell's motor output map at the rate "
                             "itself, the rest of the cell at 10x)",
}
#: The row the evening's variants change (today's preset until ltc_output_lr_scale): the table's last column.
PRESET = "lr-scale-10"

#: The other envs' check (scripts/ltc_recheck.sh) and the old per-env LTC preset on them: rows of
#: docs/bench_ppo_2026-11-23_session3.json (run index, seed) that docs/ppo.md's 100k x 3-seed table shows, plus
#: ``<env>-old-preset-seeds-3-4`` / ``<env>-lr-scale-10-seeds-3-4`` where seeds 3 and 4 ran (2026-11-28).
RECHECK = {"Pendulum-v1": [(13, 0), (1, 1), (13, 2)], "InvertedPendulum-v5": [(0, 0), (0, 1), (0, 2)],
           "LaneKeepingState-v0": [(0, 0), (0, 1), (0, 2)]}
REFERENCE_FILE = Path(__file__).resolve().parents[1] / "docs" / "bench_ppo_2026-11-23_session3.json"
EXTRA_SEEDS = "lr-scale-10-seeds-3-4"


def _stats(rows: list[dict]) -> dict:
    rows = sorted(rows, key=lambda r: r["seed"])
    returns = [r["mean_return"] for r in rows]
    mean, low, high = mean_confidence_interval(returns, 0.95)
    return {"seeds": [r["seed"] for r in rows], "returns": returns, "mean": mean, "low": low, "high": high,
            "completion": [r.get("completion_rate") for r in rows], "env": rows[0]["env_id"]}


def load(folder: Path) -> dict[str, dict]:
    """Every variant's statistics by tag (the JSON file's stem), and its rows under ``"rows"``."""
    out = {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        out[path.stem] = {**_stats(data["rows"]), "rows": data["rows"]}
    return out


def five_seeds(results: dict[str, dict]) -> str:
    """A line per variant that also ran seeds 3 and 4 (``<tag>-seeds-3-4``, or ``EXTRA_SEEDS`` for lr-scale-10)."""
    lines = []
    for tag in VARIANTS:
        extra = EXTRA_SEEDS if tag == "lr-scale-10" else f"{tag}-seeds-3-4"
        if tag not in results or extra not in results:
            continue
        r = _stats(results[tag]["rows"] + results[extra]["rows"])
        met = r["mean"] >= -250
        below = sum(v < -250 for v in r["returns"])
        lines.append(f"- {tag} on 5 training seeds (0-4): mean {r['mean']:.0f} [{r['low']:.0f}, {r['high']:.0f}], "
                     "per seed " + ", ".join(f"{v:.0f}" for v in r["returns"])
                     + f"; goal (mean >= -250 over 5 seeds) {'met' if met else 'not met'}, {below} of 5 seeds below "
                     "-250.")
    return "\n".join(lines)


#: The CfC runs on the same env: the reference the LTC is measured against, and the CfC with the LTC's critic.
REFERENCES = {"cfc-preset": "the CfC preset (dense CfC critic), the reference",
              "cfc-fc-critic": "the CfC actor with the LTC preset's fully connected 32-unit CfC critic"}


def references(results: dict[str, dict]) -> str:
    """A line per CfC reference run that is there (``scripts/ltc_ablation.sh``'s last entries)."""
    lines = []
    for tag, what in REFERENCES.items():
        if tag in results:
            r = _stats(results[tag]["rows"])
            lines.append(f"- {tag}: {what}, {len(r['returns'])} seeds: mean {r['mean']:.0f} [{r['low']:.0f}, "
                         f"{r['high']:.0f}], per seed " + ", ".join(f"{v:.0f}" for v in r["returns"]) + ".")
    return "\n".join(lines)


#: Seeds 0-9 of today's preset and of the CfC preset: how often a training seed fails.
TEN_SEEDS = {"lr-scale-10": ("lr-scale-10", EXTRA_SEEDS, "lr-scale-10-seeds-5-9"),
             "cfc-preset": ("cfc-preset", "cfc-preset-seeds-5-9")}
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
        lines.append(f"- {name} on {len(r['returns'])} training seeds (0-{max(r['seeds'])}): mean {r['mean']:.0f} "
                     f"[{r['low']:.0f}, {r['high']:.0f}], per seed " + ", ".join(f"{v:.0f}" for v in r["returns"])
                     + f"; {failed} of {len(r['returns'])} below {FAILED_BELOW}.")
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
    old_rows = [next(r for r in reference[i]["rows"] if r["env_id"] == env and r["policy"] == "ltc"
                     and r["seed"] == seed) for i, seed in RECHECK[env]]
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
        text = (f"- {env} with `ltc_output_lr_scale=1`, {len(r['returns'])} seeds: mean {r['mean']:.0f} "
                f"[{r['low']:.0f}, {r['high']:.0f}], per seed " + ", ".join(f"{v:.0f}" for v in r["returns"]))
        pair = recheck(results, env)
        if pair is not None:
            now = pair[1]
            text += (f"; today's preset (lr-scale-10) on seeds {', '.join(map(str, now['seeds']))}: mean "
                     f"{now['mean']:.0f} [{now['low']:.0f}, {now['high']:.0f}]")
        lines.append(text + ".")
    return "\n".join(lines)


def recheck_table(results: dict[str, dict]) -> str:
    lines = ["| env | old per-env LTC preset (per seed) | `ltc_lr_scale=10`, the env's shared rate: today's preset "
             "(per seed) | mean, old -> new (95% CI across seeds) |", "|---|---|---|---|"]
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
        lines.append(f"| {env} | {fmt(old)} | {fmt(new)} | {old['mean']:.0f} [{old['low']:.0f}, {old['high']:.0f}]"
                     f" -> {new['mean']:.0f} [{new['low']:.0f}, {new['high']:.0f}] |")
    return "\n".join(lines)


def _versus(r: dict, reference: dict | None, same: bool) -> str:
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
    lines = ["| variant | what changes | mean return (95% CI across seeds) | per seed | vs base | vs lr-scale-10 |",
             "|---|---|---|---|---|---|"]
    order = [v for v in VARIANTS if v in results]  # (the seeds-3-4 files feed five_seeds)
    for name in order:
        r = results[name]
        seeds = ", ".join(f"{v:.0f}" for v in r["returns"])
        on_preset = name.startswith(PRESET + "-")
        lines.append(f"| {name} | {VARIANTS.get(name, '')} | {r['mean']:.0f} [{r['low']:.0f}, {r['high']:.0f}] "
                     f"(n={len(r['returns'])}) | {seeds} | {_versus(r, base, name == 'base')} | "
                     f"{_versus(r, preset, not on_preset)} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--write", type=Path, default=None, help="replace the table between the ablation markers")
    args = parser.parse_args(argv)
    results = load(args.folder)
    text = "\n\n".join(part for part in (table(results), five_seeds(results), references(results), ten_seeds(results),
                                          recheck_table(results), output_map_checks(results)) if part)
    if args.write is None:
        print(text)
        return
    doc = args.write.read_text()
    start, end = "<!-- ablation:start -->\n", "<!-- ablation:end -->"
    i, j = doc.index(start) + len(start), doc.index(end)
    args.write.write_text(doc[:i] + text + "\n" + doc[j:])


if __name__ == "__main__":
    main()
