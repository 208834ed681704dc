"""Adapters from cells to Gymnasium spaces and stable-baselines3 policies.

``make_core`` / ``RecurrentCore`` give any cell (LTC, CfC, LSTM) one step-and-sequence interface;
``NCPActorCriticPolicy`` is the sb3-contrib ``RecurrentPPO`` policy built on it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RecurrentCore": ".core",
    "make_core": ".core",
    "NCPActorCriticPolicy": ".recurrent_ppo",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:  # lazy: importing the policy pulls in stable-baselines3
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
