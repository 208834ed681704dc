"""Run a study on Ray: train models x seeds and evaluate every run (with perturbation sweeps), then summarise.

SPEC is a JSON file (see agents/study/spec.py) or the name of a spec the package ships (agents/configs/studies/;
`ncp-control study --list` prints them). Without
--address a local Ray is started for the run and stopped after; --address (or RAY_ADDRESS) joins an existing
cluster. DIR receives spec.json, jobs.jsonl, runs/<kind>-<env>[-<tag>]-<model>-s<seed>/ (what train-ppo / train-bc
write), jobs/<job>.done and summary.{md,csv,json} + plots. See docs/scale.md. Needs the [ray] extra.

Examples:
  ncp-control study memory-smoke --out studies/smoke --num-cpus 2   # a shipped spec, by name
  ncp-control study my-spec.json --out studies/mine
  ncp-control study SPEC --out DIR --resume                  # after a crash: finished jobs are skipped
  ncp-control study SPEC --out DIR --address ray://head:10001 --storage transfer
  ncp-control study SPEC --out DIR --runs-from studies/ncp-noise   # copy its matching finished runs, not retrain
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "spec", metavar="SPEC", nargs="?", help="study spec: a JSON file, or the name of a shipped spec (see --list)"
    )
    parser.add_argument("--list", action="store_true", help="print the shipped specs (name, file) and exit")
    parser.add_argument("--out", metavar="DIR", help="study folder (required)")
    parser.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray started for this run)",
    )
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    parser.add_argument("--resume", action="store_true", help="continue the study in DIR; finished jobs are skipped")
    parser.add_argument(
        "--storage",
        choices=("auto", "shared", "transfer"),
        default="auto",
        help="shared: tasks write DIR directly; transfer: run folders come back as archives; "
        "auto (default): shared when every Ray node is this machine",
    )
    parser.add_argument(
        "--runs-from",
        action="append",
        default=[],
        metavar="OTHER",
        help="a finished study folder whose training runs with the same job id and resolved config "
        "are copied into DIR instead of trained again (repeatable; others are trained)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    import sys

    from ncp_control.agents.errors import UsageError
    from ncp_control.agents.study.driver import run_study
    from ncp_control.agents.study.spec import read_spec, shipped_specs

    if args.list:
        for name, path in shipped_specs().items():
            print(f"{name}\t{path}")
        return 0
    if args.spec is None or args.out is None:
        raise UsageError("give a SPEC and --out DIR (or --list to see the shipped specs)")
    if args.num_cpus is not None and args.num_cpus < 1:
        raise UsageError("--num-cpus must be >= 1")
    say = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    summary = run_study(
        read_spec(args.spec),
        args.out,
        address=args.address,
        num_cpus=args.num_cpus,
        resume=args.resume,
        storage=args.storage,
        runs_from=args.runs_from,
        progress=say,
    )
    jobs = summary["jobs"]
    print(
        f"{jobs['done']}/{jobs['total']} jobs done ({jobs['failed']} failed, {jobs['skipped']} skipped); "
        f"summary in {args.out}/summary.md"
    )
    return 0 if jobs["done"] == jobs["total"] else 1
