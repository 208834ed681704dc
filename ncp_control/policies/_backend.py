"""The one place that chooses where the liquid cells and wirings come from.

``ncp_control``'s own cells and wirings (same constructor signatures as ncps 1.0.1) replace the reference
implementation here, in these two lines, once they are available; nothing else in ``ncp_control.policies`` names
``ncps``.
"""

import ncps.torch as cells  # LTCCell, CfCCell, WiredCfCCell
import ncps.wirings as wirings  # Wiring, FullyConnected, NCP, AutoNCP

__all__ = ["cells", "wirings"]
