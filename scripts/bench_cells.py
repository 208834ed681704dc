"""Speed of ncp_control's cells against ncps 1.0.1, measured in the same run (one torch thread).

Every case times ours and the reference alternately (ours, ncps, ours, ncps, ...) so that machine drift hits both,
and reports medians over the repeats. Both models hold the same weights; the script first checks that they give
the same outputs (1e-5). Memory: bytes that autograd keeps for the backward pass of one forward (tensors saved by
every operation, each storage counted once), the part of peak memory that grows with batch x time.

Usage::

    python scripts/bench_cells.py              # the whole table (a few minutes on a busy 2-core machine)
    python scripts/bench_cells.py --quick      # the headline cases only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ncp_control import LTC, CfC, wirings  # noqa: E402
from ncp_control.cells import native  # noqa: E402

try:
    import ncps.torch as ncps_torch
    import ncps.wirings as ncps_wirings
except ImportError:  # pragma: no cover
    sys.exit("ncps 1.0.1 is needed for the reference: pip install ncps==1.0.1")


@dataclasses.dataclass(frozen=True)
class Settings:
    quick: bool = False
    """Only the headline cases (LTC and wired CfC, B64 x T32 training and B8 inference)."""
    repeats: int = 7
    """Timed rounds per case (each round times ours then ncps); the table shows medians."""
    min_round_s: float = 0.05
    """Each timing repeats the call until this much time has passed, and reports the time per call."""
    seed: int = 0
    """Seed of the weights and inputs."""
    json: str = ""
    """Also write the rows, machine and command to this JSON file (the data file behind docs/README figures)."""


def _wiring(spec: str, lib):
    kind, _, size = spec.partition(":")
    if kind == "autoncp":
        return lib.AutoNCP(int(size), 1, seed=22222)
    if kind == "fc":
        return lib.FullyConnected(int(size))
    raise ValueError(spec)


def _pair(kind: str, wiring: str, inputs: int):
    """Our layer and ncps's with the same weights."""
    if kind == "ltc":
        ref = ncps_torch.LTC(inputs, _wiring(wiring, ncps_wirings), batch_first=True)
        ours = LTC(inputs, _wiring(wiring, wirings), batch_first=True)
    else:
        ref = ncps_torch.CfC(inputs, _wiring(wiring, ncps_wirings), batch_first=True)
        ours = CfC(inputs, _wiring(wiring, wirings), batch_first=True)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def _per_call(fn, min_s: float) -> float:
    fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_s:
            return elapsed / n


def _interleaved(ours_fn, ref_fn, s: Settings, ref_budget: float) -> tuple[float, float]:
    ours, ref = [], []
    for _ in range(s.repeats):
        ours.append(_per_call(ours_fn, s.min_round_s))
        ref.append(_per_call(ref_fn, min(s.min_round_s, ref_budget)))
    return statistics.median(ours), statistics.median(ref)


def _saved_bytes(fn) -> int:
    seen: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def train_case(kind, wiring, batch, steps, s: Settings, inputs=32):
    torch.manual_seed(s.seed)
    ours, ref = _pair(kind, wiring, inputs)
    x = torch.randn(batch, steps, inputs)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], ref(x)[0], atol=1e-5, rtol=1e-5)

    def fwd_bwd(model):
        def run():
            model.zero_grad(set_to_none=True)
            y, _ = model(x)
            y.square().mean().backward()

        return run

    t_ours, t_ref = _interleaved(fwd_bwd(ours), fwd_bwd(ref), s, ref_budget=0.0)
    mem = (_saved_bytes(lambda: ours(x)), _saved_bytes(lambda: ref(x)))
    return t_ours, t_ref, mem


def step_case(kind, wiring, batch, s: Settings, inputs=32):
    torch.manual_seed(s.seed)
    ours, ref = _pair(kind, wiring, inputs)
    x, h = torch.randn(batch, inputs), torch.zeros(batch, ours.state_size)
    with torch.no_grad():
        torch.testing.assert_close(ours.rnn_cell(x, h, 1.0)[1], ref.rnn_cell(x, h, 1.0)[1], atol=1e-5, rtol=1e-5)

    def step(cell):
        def run():
            with torch.no_grad():
                cell(x, h, 1.0)

        return run

    t_ours, t_ref = _interleaved(step(ours.rnn_cell), step(ref.rnn_cell), s, ref_budget=s.min_round_s)
    return t_ours, t_ref


def layer_step_case(kind, wiring, batch, s: Settings, inputs=32):
    """The layer called ncps-style for one step without grad, ``y, h = layer(x[:, None], h)``: ours, ncps's, and
    our cell's step on the same input (all three interleaved). Returns the medians of the wall time per call (ours,
    ncps, our cell) and a dict of the medians of the thread's CPU time per call (``layer``, ``cell``, ``ncps``):
    on a shared machine the wall time includes waiting for a core, which swamps a difference of microseconds."""
    torch.manual_seed(s.seed)
    ours, ref = _pair(kind, wiring, inputs)
    x, h = torch.randn(batch, 1, inputs), torch.zeros(batch, ours.state_size)
    x0 = x[:, 0].contiguous()
    with torch.no_grad():
        torch.testing.assert_close(ours(x, h)[0], ref(x, h)[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours(x, h)[1], ours.rnn_cell(x0, h, 1.0)[1], atol=1e-6, rtol=1e-6)

    def call(fn):
        def run():
            with torch.no_grad():
                fn()

        return run

    fns = {
        "layer": call(lambda: ours(x, h)),
        "cell": call(lambda: ours.rnn_cell(x0, h, 1.0)),
        "ncps": call(lambda: ref(x, h)),
    }
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(s.repeats):
        for name, fn in fns.items():
            fn()
            n, start, start_cpu = 0, time.perf_counter(), time.thread_time()
            while time.perf_counter() - start < s.min_round_s:
                fn()
                n += 1
            wall[name].append((time.perf_counter() - start) / n)
            cpu[name].append((time.thread_time() - start_cpu) / n)
    med = {name: statistics.median(v) for name, v in wall.items()}
    med_cpu = {name: statistics.median(v) for name, v in cpu.items()}
    return med["layer"], med["ncps"], med["cell"], med_cpu


def _fmt_time(t: float) -> str:
    return f"{t * 1e6:8.1f} us" if t < 1e-3 else f"{t * 1e3:8.2f} ms"


def _parse_settings(argv) -> Settings:
    """One command-line flag per :class:`Settings` field (``--min-round-s``; booleans are switches)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for f in dataclasses.fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        if f.type in (bool, "bool"):
            parser.add_argument(flag, action="store_true")
        else:
            parser.add_argument(flag, type=type(f.default), default=f.default)
    return Settings(**vars(parser.parse_args(argv)))


def _print_header() -> None:
    """The date, versions, processor and native kernels, then the column names."""
    kernels = {name: native.load(name) for name in ("ltc_kernel", "cfc_kernel")}
    print(
        f"# bench_cells  {date.today()}  python {platform.python_version()}  torch {torch.__version__}  "
        f"{platform.processor() or platform.machine()}  threads=1"
    )
    print(f"# native kernels: { {k: ('compiled' if v is not None else 'unavailable') for k, v in kernels.items()} }")
    print(f"{'case':58s} {'ours':>11s} {'ncps':>11s} {'speed-up':>8s} {'saved MB ours/ncps':>19s}")


class _Table:
    """The rows printed so far and the layer-step records, written to ``--json`` (when given) after every row: a
    cut run keeps its data."""

    def __init__(self, json_path: str) -> None:
        self.json_path = json_path
        self.rows: list[dict] = []
        self.layer_steps: list[dict] = []

    def row(self, name, t_ours, t_ref, mem=None) -> None:
        m = f"{mem[0] / 2**20:8.2f} / {mem[1] / 2**20:8.2f}" if mem else ""
        print(f"{name:58s} {_fmt_time(t_ours)} {_fmt_time(t_ref)} {t_ref / t_ours:7.1f}x {m:>19s}", flush=True)
        self.rows.append(
            {
                "case": name,
                "ours_s": t_ours,
                "ncps_s": t_ref,
                "speedup": round(t_ref / t_ours, 1),
                **({"saved_mb_ours": mem[0] / 2**20, "saved_mb_ncps": mem[1] / 2**20} if mem else {}),
            }
        )
        self.dump()

    def dump(self) -> None:
        """The rows so far (and the layer-step records) to --json, after every row: a cut run keeps its data."""
        if self.json_path:
            Path(self.json_path).write_text(
                json.dumps(
                    {
                        "script": "scripts/bench_cells.py",
                        "command": " ".join(["python scripts/bench_cells.py", *sys.argv[1:]]),
                        "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
                        "machine": f"{platform.platform()}, python {platform.python_version()}, torch {torch.__version__}, "
                        f"{os.cpu_count()} logical cores, load average {os.getloadavg()[0]:.1f}, one torch thread",
                        "rows": self.rows,
                        "layer_steps": self.layer_steps,
                    },
                    indent=1,
                )
                + "\n"
            )


def _headline_cases(s: Settings, table: _Table) -> None:
    """Training, inference step and ncps-style layer step of LTC and CfC on the 19-neuron AutoNCP wiring."""
    headline = [("ltc", "autoncp:19"), ("cfc", "autoncp:19")]
    for kind, wiring in headline:
        table.row(f"{kind.upper()} {wiring} fwd+bwd B64 x T32", *train_case(kind, wiring, 64, 32, s))
        table.row(f"{kind.upper()} {wiring} inference step B8 (no grad)", *step_case(kind, wiring, 8, s))
        t_layer, t_ref, t_cell, cpu = layer_step_case(kind, wiring, 8, s)
        table.row(f"{kind.upper()} {wiring} layer(x[:, None], h) B8 (no grad)", t_layer, t_ref)
        print(
            f"{'':58s} layer / our cell step: {t_layer / t_cell:.2f} (wall; cell {_fmt_time(t_cell).strip()}), "
            f"{cpu['layer'] / cpu['cell']:.2f} (CPU: {cpu['layer'] * 1e6:.1f} / {cpu['cell'] * 1e6:.1f} us); "
            f"ncps / layer {cpu['ncps'] / cpu['layer']:.1f}x (CPU)"
        )
        table.layer_steps.append(_layer_step_record(kind, wiring, t_layer, t_ref, t_cell, cpu))


def _layer_step_record(kind, wiring, t_layer, t_ref, t_cell, cpu) -> dict:
    """The JSON record of one layer-step case (batch 8): wall and CPU times per call and their ratios."""
    return {
        "kind": kind,
        "wiring": wiring,
        "batch": 8,
        "layer_step_s": t_layer,
        "ncps_layer_step_s": t_ref,
        "cell_step_s": t_cell,
        "layer_vs_cell": t_layer / t_cell,
        "speedup_vs_ncps": t_ref / t_layer,
        "cpu_layer_step_s": cpu["layer"],
        "cpu_cell_step_s": cpu["cell"],
        "cpu_ncps_layer_step_s": cpu["ncps"],
        "cpu_layer_vs_cell": cpu["layer"] / cpu["cell"],
        "cpu_speedup_vs_ncps": cpu["ncps"] / cpu["layer"],
    }


def _other_cases(s: Settings, table: _Table) -> None:
    """The rest of the table: more batch sizes on AutoNCP 19, then larger and fully connected wirings."""
    for kind in ("ltc", "cfc"):
        for batch in (1, 16, 256):
            table.row(
                f"{kind.upper()} autoncp:19 fwd+bwd B{batch} x T32", *train_case(kind, "autoncp:19", batch, 32, s)
            )
        for batch in (1, 64, 256):
            table.row(f"{kind.upper()} autoncp:19 inference step B{batch}", *step_case(kind, "autoncp:19", batch, s))
        for wiring in ("autoncp:32", "autoncp:64", "autoncp:128", "fc:64"):
            table.row(f"{kind.upper()} {wiring} fwd+bwd B64 x T32", *train_case(kind, wiring, 64, 32, s))
            table.row(f"{kind.upper()} {wiring} inference step B8", *step_case(kind, wiring, 8, s))


def main(argv=None) -> None:
    s = _parse_settings(argv)
    torch.set_num_threads(1)
    _print_header()
    table = _Table(s.json)
    _headline_cases(s, table)
    table.dump()
    if s.quick:
        return
    _other_cases(s, table)


if __name__ == "__main__":
    main()
