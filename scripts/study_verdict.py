"""Verdict of a study from its intervals across training seeds: which models are separated, per level and metric.

"a better than b" on a metric at a level where the 95% stratified-bootstrap interval of the probability that a is
better than b across training seeds (rliable's probability of improvement, in the study's summary.json written by
``ncp-control study`` / ``study-report``) lies wholly above 0.5; everything else is "not separated". A study with
training tags and evaluation conditions gets a line per (condition, metric): models of the same training tag, and
each model against itself under another tag (``dr:lstm better than lstm``).

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
