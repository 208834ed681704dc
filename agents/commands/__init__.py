"""Subcommands of the ``ncp-control`` CLI, one module each (see ``agents/cli.py``)."""
