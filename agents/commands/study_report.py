"""Re-render a study's summary (summary.{md,csv,json} and plots) from its records, e.g. while it still runs.

Example:
  ncp-control study-report studies/smoke
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", metavar="DIR", help="study folder written by ncp-control study")
    parser.add_argument("--no-plot", action="store_true", help="skip the plots")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ncp_control.agents.study.summary import summary_markdown, write_summary

    if not (Path(args.out) / "spec.json").is_file():
        raise ValueError(f"{args.out} is not a study folder (it has no spec.json)")
    summary = write_summary(args.out, plot=not args.no_plot)
    print(summary_markdown(summary), end="")
    return 0
