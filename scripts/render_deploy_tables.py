"""Render the tables of docs/deploy.md from their data files in docs/data/deploy/ (bench_export.json,
bench_cells_layer_step.json and its repeats, deploy_demo_check.json) and docs/data/envs/bench_envs_2026-11-23.json
(the env's own step time): the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` is replaced. Reads
data only; it measures nothing. Every number in the output comes from those files, except the goals, which are the
constants below (the same ones the verdicts are computed with).

Usage::

    python scripts/render_deploy_tables.py            # rewrites docs/deploy.md in place
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DATA = DOCS / "data" / "deploy"

#: Goals of the export and layer-step work (issue targets), used for the verdicts and quoted in the text.
EXPORT_SPEEDUP_GOAL = 10  # the exported NCP-LTC state policy against the same policy stepped with ncps
CAMERA_STEP_GOAL_MS = 1  # the exported camera policy, per frame
LAYER_VS_CELL_GOAL = 1.3  # the layer's one-step call at most this many times the cell's step
LAYER_SPEEDUP_GOAL = {"ltc": 20, "cfc": 10}  # the layer's one-step call against ncps's same call


def _repo(path: Path) -> str:
    """``path`` relative to the repository, as the pages quote it."""
    return path.relative_to(ROOT).as_posix()


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs" if seconds < 1e-3 else f"{seconds * 1e3:,.2f} ms"


def latency_table(data: dict) -> str:
    lines = ["| policy | variant | wall / step | CPU / step | CPU vs ORT step |", "|---|---|---|---|---|"]
    for key, title in (("ppo_state_policy", "NCP-LTC PPO state policy"), ("camera_policy", "camera policy (demo)")):
        part = data[key]
        wall, cpu = part["wall_seconds_per_step"], part["cpu_seconds_per_step"]
        ort = cpu["onnxruntime step"]
        for name in wall:
            lines.append(
                f"| {title} ({part['nodes']} nodes) | {name} | {_us(wall[name])} | {_us(cpu[name])} | "
                f"{cpu[name] / ort:.1f}x |"
            )
    return "\n".join(lines)


#: The env rows of docs/data/envs/bench_envs_2026-11-23.json that time today's default camera env (textures and roadside
#: objects included: the runs whose note starts with "with textures").
ENV_BENCH = DOCS / "data" / "envs" / "bench_envs_2026-11-23.json"
ENV_CASE = "LaneKeeping-v0 64x128 (default)"


def env_step(envs: dict | None) -> str:
    """What one step of the default camera env costs, rendering included, from the env benchmark's data."""
    if not envs:
        return ""
    rates = [
        run["results"][ENV_CASE]["median_window"]
        for run in envs["runs"]
        if run.get("note", "").startswith("with textures") and ENV_CASE in run["results"]
    ]
    if not rates:
        return ""
    ms = sorted(1e3 / r for r in rates)
    size = re.search(r"\d+x\d+", ENV_CASE).group(0)
    return (
        f" (the default {size} env itself takes {ms[0]:.2f}-{ms[-1]:.2f} ms per step, rendering included: "
        f"{min(rates):,.0f}-{max(rates):,.0f} steps/s in `{_repo(ENV_BENCH)}`)"
    )


def goals(data: dict, envs: dict | None = None) -> str:
    ppo, camera = data["ppo_state_policy"], data["camera_policy"]
    ppo_ok = (
        "met"
        if min(ppo["ncps_over_ort_cpu"], ppo["ncps_over_ort_wall"]) >= EXPORT_SPEEDUP_GOAL
        else "see the two measures"
    )
    cpu_ms = camera["cpu_seconds_per_step"]["onnxruntime step"] * 1e3
    wall_ms = camera["wall_seconds_per_step"]["onnxruntime step"] * 1e3
    camera_ok = (
        "met"
        if wall_ms < CAMERA_STEP_GOAL_MS
        else "met in CPU time; the wall time includes waiting for a core"
        if cpu_ms < CAMERA_STEP_GOAL_MS
        else "not met"
    )
    return (
        f"Goals: the exported NCP-LTC state policy at least {EXPORT_SPEEDUP_GOAL:g}x faster than the same policy "
        f"stepped with ncps: **{ppo['ncps_over_ort_cpu']:.1f}x in CPU time, {ppo['ncps_over_ort_wall']:.1f}x in "
        f"wall time** ({ppo_ok}); the camera policy under {CAMERA_STEP_GOAL_MS:g} ms per frame{env_step(envs)}: "
        f"**{cpu_ms:.2f} ms CPU, {wall_ms:.2f} ms wall** ({camera_ok})."
    )


def _load(machine: str) -> str:
    m = re.search(r"load average ([0-9.]+)", machine)
    return m.group(1) if m else "?"


def layer_table(data: dict, repeats: list[dict] | None = None) -> str:
    lines = [
        f"Measured {data['date']} on {data['machine']} (`{data['command']}`; data: "
        f"`{_repo(DATA / 'bench_cells_layer_step.json')}`).",
        "",
        "| cell | our cell step (CPU) | layer `(x[:, None], h)` (CPU) | layer / cell (CPU, wall) | ncps layer (CPU) "
        "| ncps / our layer (CPU, wall) |",
        "|---|---|---|---|---|---|",
    ]
    for row in data["layer_steps"]:
        lines.append(
            f"| {row['kind'].upper()} {row['wiring']} B{row['batch']} | {_us(row['cpu_cell_step_s'])} | "
            f"{_us(row['cpu_layer_step_s'])} | {row['cpu_layer_vs_cell']:.2f}, {row['layer_vs_cell']:.2f} | "
            f"{_us(row['cpu_ncps_layer_step_s'])} | {row['cpu_speedup_vs_ncps']:.1f}x, "
            f"{row['speedup_vs_ncps']:.1f}x |"
        )
    lines.append("")
    lines.append(
        f"Goals: the layer's step at most {LAYER_VS_CELL_GOAL:g}x the cell's; at least "
        f"{LAYER_SPEEDUP_GOAL['ltc']}x ncps's same call for LTC and {LAYER_SPEEDUP_GOAL['cfc']}x for CfC. "
        + "; ".join(
            f"{row['kind'].upper()}: {row['cpu_layer_vs_cell']:.2f}x the cell (CPU), "
            f"{min(row['cpu_speedup_vs_ncps'], row['speedup_vs_ncps']):.1f}-"
            f"{max(row['cpu_speedup_vs_ncps'], row['speedup_vs_ncps']):.1f}x ncps"
            for row in data["layer_steps"]
        )
        + "."
    )
    if repeats:
        spans = []
        for kind, goal in LAYER_SPEEDUP_GOAL.items():
            rows = [r for run in repeats for r in run["layer_steps"] if r["kind"] == kind]
            ratios = [r["cpu_speedup_vs_ncps"] for r in rows]
            cells = [r["cpu_layer_vs_cell"] for r in rows]
            median = sorted(ratios)[len(ratios) // 2]
            spans.append(
                f"{kind.upper()} {min(ratios):.1f}-{max(ratios):.1f}x ncps (CPU; median {median:.1f}x; "
                f"{sum(x >= goal for x in ratios)} "
                f"of {len(ratios)} runs >= {goal}x), layer / cell {min(cells):.2f}-{max(cells):.2f}"
            )
        dates = sorted(run["date"] for run in repeats)
        loads = sorted(float(_load(run["machine"])) for run in repeats if _load(run["machine"]) != "?")
        when = f"{dates[0]} to {dates[-1]}" if dates[0] != dates[-1] else dates[0]
        load = f", load average {loads[0]:.1f}-{loads[-1]:.1f}" if loads else ""
        lines.append("")
        hosts = {re.sub(r",? ?load average [0-9.]+", "", run["machine"]) for run in repeats}
        host = (
            "same machine"
            if hosts == {re.sub(r",? ?load average [0-9.]+", "", data["machine"])}
            else "; ".join(sorted(hosts))
        )
        lines.append(
            f"Over the {len(repeats)} runs ({when}, {host}{load}; data: "
            f"`{_repo(DATA / 'bench_cells_layer_step_repeats.jsonl')}`): " + "; ".join(spans) + "."
        )
    return "\n".join(lines)


def demo_table(data: dict) -> str:
    keys = ("completion_rate", "mean_abs_lateral_m", "departures_per_km", "steering_smoothness", "mean_return")
    lines = [f"| metric ({data['episodes']} held-out roads) | torch | ONNX Runtime |", "|---|---|---|"]
    for k in keys:
        lines.append(f"| {k} | {data['torch'][k]:.6g} | {data['onnxruntime'][k]:.6g} |")
    same = ", ".join(k for k, v in data["same"].items() if v) or "none"
    lines.append(f"| identical per episode | {same} | |")
    lines.append(
        f"| lockstep on road {data['first_road']}: max abs action difference | "
        f"{data['lockstep_max_abs_action_difference']:.1e} over {data['lockstep_steps']} steps | |"
    )
    return "\n".join(lines)


def replace(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:start -->\n)(?:.*?\n)?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"docs/deploy.md has no <!-- {name}:start --> ... <!-- {name}:end --> block")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def main() -> None:
    bench = json.loads((DATA / "bench_export.json").read_text())
    layers = json.loads((DATA / "bench_cells_layer_step.json").read_text())
    repeats_path = DATA / "bench_cells_layer_step_repeats.jsonl"
    repeats = (
        [json.loads(line) for line in repeats_path.read_text().splitlines() if line.strip()]
        if repeats_path.is_file()
        else None
    )
    demo = json.loads((DATA / "deploy_demo_check.json").read_text())
    envs = json.loads(ENV_BENCH.read_text()) if ENV_BENCH.is_file() else None
    path = DOCS / "deploy.md"
    text = path.read_text()
    for name, body in (
        ("latency", latency_table(bench)),
        ("layers", layer_table(layers, repeats)),
        ("demo", demo_table(demo)),
        ("goals", goals(bench, envs)),
    ):
        text = replace(text, name, body)
    path.write_text(text)


if __name__ == "__main__":
    main()
