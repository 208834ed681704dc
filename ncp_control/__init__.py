"""ncp-control: Neural Circuit Policies (LTC / CfC on NCP wirings) as recurrent actors."""

from .cells import CfC, CfCCell, LTC, LTCCell, WiredCfCCell

__version__ = "0.1.0"

__all__ = ["CfC", "CfCCell", "LTC", "LTCCell", "WiredCfCCell"]
