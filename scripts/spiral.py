"""Train an LTC (NCP or random wiring) to predict the next point of a noisy 3-turn spiral; plot true vs predicted.

Example: ``python scripts/spiral.py --wiring random --steps 400``
"""

from __future__ import annotations

import sys

import torch

from ncp_control.examples.spiral import argument_parser, config_from_args, run


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(argument_parser(__doc__.splitlines()[0]).parse_args(argv))
    torch.set_num_threads(1)
    result, run_dir = run(cfg)
    print(f"validation MSE before training: {result.val_loss_before:.5f}")
    print(f"validation MSE after training:  {result.val_loss_after:.5f}")
    print(f"results in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
