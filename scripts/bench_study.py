"""Benchmark of studies on Ray: the shipped example with 1 and 2 workers, and Ray's overhead per job.

Runs agents/configs/studies/memory-smoke.json (unchanged) on a local Ray with ``--num-cpus 1`` and then 2, each in
a fresh study folder, and reports the wall times and their ratio (goal >= 1.7 on 2 cores). Then measures what a job
costs beyond its own work: (a) no-op Ray tasks with the options study jobs use (num_cpus=1, max_retries), one at a
time (latency) and all at once (throughput); (b) in each example run, ``(wall x workers - sum of job seconds) / jobs``
(Ray's per-job cost plus idle CPU at the end of the run: an upper bound). Goal: <= 1 s per job. Prints the load
average (the machine may be shared) and writes a JSON record.

    PYTHONPATH=. python scripts/bench_study.py --out docs/data/scale/bench_study.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

SPEC = Path(__file__).resolve().parents[1] / "agents" / "configs" / "studies" / "memory-smoke.json"


def example_run(workers: int, folder: Path) -> dict:
    import ray

    from ncp_control.agents.study.driver import run_study
    from ncp_control.agents.study.spec import read_spec

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    started = time.perf_counter() - t0
    try:
        summary = run_study(read_spec(SPEC), folder / f"workers{workers}")
    finally:
        ray.shutdown()
    wall = summary["wall_seconds"]
    jobs = summary["jobs"]["total"]
    return {
        "workers": workers,
        "ray_start_seconds": started,
        "wall_seconds": wall,
        "job_seconds": summary["job_seconds"],
        "jobs": jobs,
        "done": summary["jobs"]["done"],
        "overhead_per_job_upper_bound": (wall * workers - summary["job_seconds"]) / jobs,
        "load_after": os.getloadavg(),
    }


def _noop() -> int:
    return os.getpid()


def noop_overhead(count: int) -> dict:
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        noop = ray.remote(_noop).options(num_cpus=1, max_retries=2)
        ray.get([noop.remote() for _ in range(4)])  # start the workers
        t0 = time.perf_counter()
        for _ in range(count):
            ray.get(noop.remote())
        latency = (time.perf_counter() - t0) / count
        t0 = time.perf_counter()
        ray.get([noop.remote() for _ in range(count)])
        throughput = (time.perf_counter() - t0) / count
    finally:
        ray.shutdown()
    return {"count": count, "latency_seconds": latency, "seconds_per_job_in_parallel": throughput}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="JSON file for the results")
    parser.add_argument("--noop-jobs", type=int, default=200, help="no-op tasks for the overhead (default 200)")
    parser.add_argument("--skip-example", action="store_true", help="only the no-op overhead")
    args = parser.parse_args()
    import ray
    import torch

    record = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "ray": ray.__version__,
        "torch": torch.__version__,
        "load_before": os.getloadavg(),
        "spec": str(SPEC.relative_to(SPEC.parents[3])),
    }
    record["noop"] = noop_overhead(args.noop_jobs)
    print(
        f"no-op job: {record['noop']['latency_seconds'] * 1e3:.1f} ms one at a time, "
        f"{record['noop']['seconds_per_job_in_parallel'] * 1e3:.1f} ms each in parallel",
        flush=True,
    )
    if not args.skip_example:
        folder = Path(tempfile.mkdtemp(prefix="bench-study-"))
        try:
            runs = [example_run(workers, folder) for workers in (1, 2)]
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        record["example"] = runs
        record["speedup_2_vs_1"] = runs[0]["wall_seconds"] / runs[1]["wall_seconds"]
        for run in runs:
            print(
                f"example, {run['workers']} worker(s): {run['wall_seconds']:.0f} s wall (+{run['ray_start_seconds']:.0f} s "
                f"Ray start), jobs' own time {run['job_seconds']:.0f} s, {run['done']}/{run['jobs']} done, "
                f"overhead + idle <= {run['overhead_per_job_upper_bound']:.1f} s per job, load {run['load_after']}",
                flush=True,
            )
        print(f"speed-up 2 vs 1 workers: {record['speedup_2_vs_1']:.2f}x (goal >= 1.7)")
    record["load_after"] = os.getloadavg()
    print(f"load average before {record['load_before']}, after {record['load_after']}")
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
