"""Verdict of a study from its intervals across training seeds: which models are separated, per level and metric.

Two models are *separated* on a metric at a level when their 95% intervals across training seeds (from the study's
summary.json, written by ``ncp-control study`` / ``study-report``) do not overlap; everything else is "not
separated". Rates are compared as the summary gives them (Student-t intervals on seed means, not clipped). A study
with training tags and evaluation conditions gets a line per (condition, metric): models of the same training tag,
and each model against itself under another tag (``dr:lstm < lstm``).

    python scripts/study_verdict.py docs/data/study_ncp_noise/summary.json [--metrics crash_rate mean_abs_lateral_m]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ncp_control.agents.study.summary import separation_verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary", type=Path, help="a study's summary.json")
    parser.add_argument("--metrics", nargs="+", default=["crash_rate", "mean_return", "mean_abs_lateral_m"])
    args = parser.parse_args(argv)
    print("\n".join(separation_verdict(json.loads(args.summary.read_text()), args.metrics)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
