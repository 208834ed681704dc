"""Start or join Ray for one command: ``ncp-control study`` and ``ncp-control train-rllib`` share it.

The address is the caller's, else ``RAY_ADDRESS``, else address "local": a new Ray for this command even where
another one runs on the machine (never joined by accident), stopped when the command ends. A process that already
has Ray (``ray.init`` before, as the tests do) keeps it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

RAY_EXTRA_HINT = 'Ray is not installed: pip install -e ".[ray]" (or pip install "ray[default]")'


def require_ray(hint: str = RAY_EXTRA_HINT) -> Any:
    """``import ray``, or a one-line ``ValueError`` naming the extra to install."""
    try:
        import ray
    except ImportError as error:
        raise ValueError(hint) from error
    return ray


def cluster_address(address: str | None) -> str | None:
    """The Ray cluster a command joins: ``address``, else ``RAY_ADDRESS``, else None (a local Ray)."""
    return address or os.environ.get("RAY_ADDRESS") or None


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None, hint: str = RAY_EXTRA_HINT) -> Iterator[Any]:
    """Ray for the ``with`` block (yields the ``ray`` module); a one-line ``ValueError`` where it cannot start.

    Args:
        address: a cluster to join (e.g. ``auto`` or ``HEAD_IP:6379``); None: ``RAY_ADDRESS``, else a local Ray.
        num_cpus: CPUs of the local Ray (None: all); refused with a cluster, which has its own.
        hint: the message where Ray is not installed.
    """
    ray = require_ray(hint)
    address = cluster_address(address)
    if address and num_cpus is not None:
        raise ValueError("--num-cpus sizes a local Ray; with --address (or RAY_ADDRESS) the cluster decides")
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(
                address=address or "local",
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
            )
        except (ConnectionError, RuntimeError) as error:
            raise ValueError(
                f"cannot start or join Ray (address {address or 'local'}): {error}; check --address / RAY_ADDRESS "
                "(a running cluster's head, e.g. auto or HEAD_IP:6379; ray status on the head node prints it)"
            ) from error
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
