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
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.robustness import mean_confidence_interval  # noqa: E402

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
}

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


def recheck(results: dict[str, dict], env: str) -> tuple[dict, dict] | None:
    """``env``'s old per-env LTC preset (the :data:`RECHECK` rows of :data:`REFERENCE_FILE`, plus
    ``<env>-old-preset-seeds-3-4``) and today's preset (``<env>-lr-scale-10``, plus its ``-seeds-3-4``), as
    :func:`_stats`; None before ``<env>-lr-scale-10`` has run."""
    new = results.get(f"{env}-lr-scale-10")
    if new is None:
        return None
    reference = json.loads(REFERENCE_FILE.read_text())["runs"]
    old_rows = [next(r for r in reference[i]["rows"] if r["env_id"] == env and r["policy"] == "ltc"
                     and r["seed"] == seed) for i, seed in RECHECK[env]]
    old = _stats(old_rows + results.get(f"{env}-old-preset-seeds-3-4", {}).get("rows", []))
    return old, _stats(new["rows"] + results.get(f"{env}-lr-scale-10-seeds-3-4", {}).get("rows", []))


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


def table(results: dict[str, dict]) -> str:
    base = results.get("base")
    lines = ["| variant | what changes | mean return (95% CI across seeds) | per seed | vs base |",
             "|---|---|---|---|---|"]
    order = [v for v in VARIANTS if v in results]  # (the seeds-3-4 files feed five_seeds)
    for name in order:
        r = results[name]
        if base is None or name == "base":
            verdict = ""
        elif r["low"] > base["high"]:
            verdict = "better (separated)"
        elif r["high"] < base["low"]:
            verdict = "worse (separated)"
        else:
            verdict = "not separated"
        seeds = ", ".join(f"{v:.0f}" for v in r["returns"])
        lines.append(f"| {name} | {VARIANTS.get(name, '')} | {r['mean']:.0f} [{r['low']:.0f}, {r['high']:.0f}] "
                     f"(n={len(r['returns'])}) | {seeds} | {verdict} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--write", type=Path, default=None, help="replace the table between the ablation markers")
    args = parser.parse_args(argv)
    results = load(args.folder)
    text = "\n\n".join(part for part in (table(results), five_seeds(results), references(results),
                                          recheck_table(results)) if part)
    if args.write is None:
        print(text)
        return
    doc = args.write.read_text()
    start, end = "<!-- ablation:start -->\n", "<!-- ablation:end -->"
    i, j = doc.index(start) + len(start), doc.index(end)
    args.write.write_text(doc[:i] + text + "\n" + doc[j:])


if __name__ == "__main__":
    main()
