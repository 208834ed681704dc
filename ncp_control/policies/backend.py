"""The one place that chooses where the liquid cells and wirings come from (ncp_control's own, which keep
ncps 1.0.1's constructor signatures, so a reference implementation can be swapped in here for comparisons)."""

from .. import cells, wirings

__all__ = ["cells", "wirings"]
