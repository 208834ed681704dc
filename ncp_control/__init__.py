"""ncp-control: Neural Circuit Policies (LTC / CfC on NCP wirings) as recurrent actors.

The cells are exported here (``from ncp_control import LTC, CfC``) but imported lazily, so that numpy-only
users of ``ncp_control.wirings`` do not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_CELL_EXPORTS = ("CfC", "CfCCell", "LTC", "LTCCell", "WiredCfCCell")
__all__ = [*_CELL_EXPORTS, "wirings"]

if TYPE_CHECKING:
    from . import wirings
    from .cells import LTC, CfC, CfCCell, LTCCell, WiredCfCCell  # noqa: F401 (lazy exports, resolved by __getattr__)


def __getattr__(name: str) -> Any:
    if name == "wirings":
        return importlib.import_module(".wirings", __name__)
    if name in _CELL_EXPORTS:
        return getattr(importlib.import_module(".cells", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
