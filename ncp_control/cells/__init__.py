"""Liquid neurons in torch: LTC and CfC cells and their sequence layers (drop-ins for ``ncps.torch``).

Cells advance one step (``cell(input, state, elapsed_time)``); the layers ``LTC`` and ``CfC`` unroll them over
sequences (``layer(input, hx=None, timespans=None) -> (output, hx)``). Parameter and buffer names match ncps
1.0.1, so ``load_state_dict(ncps_model.state_dict())`` reproduces an ncps model.
"""

from .cfc import ACTIVATIONS, CfCCell, LeCunTanh
from .layers import LTC, CfC
from .lstm import LSTMCell
from .ltc import LTC_INIT_RANGES, MIN_ELAPSED_TIME, LTCCell
from .wired_cfc import WiredCfCCell

__all__ = [
    "ACTIVATIONS",
    "CfC",
    "CfCCell",
    "LSTMCell",
    "LTC",
    "LTCCell",
    "LTC_INIT_RANGES",
    "LeCunTanh",
    "MIN_ELAPSED_TIME",
    "WiredCfCCell",
]
