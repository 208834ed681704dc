"""The ``ncp-control`` command line.

Each subcommand lives in its own module that defines its arguments cheaply and keeps heavy imports (torch,
MuJoCo) inside ``run`` so that ``--help`` stays fast. A subcommand module defines ``add_arguments(parser)`` and
``run(args) -> int``; its module docstring's first line is the subcommand's help.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import traceback

from ncp_control.agents.errors import EXPECTED_ERRORS, one_line

# name -> module implementing it (modules live in agents/commands/)
COMMANDS: dict[str, str] = {
    "train-bc": "ncp_control.agents.commands.train_bc",
    "demo": "ncp_control.agents.commands.demo",
    "train-ppo": "ncp_control.agents.commands.train_ppo",
    "train-rllib": "ncp_control.agents.commands.train_rllib",
    "evaluate": "ncp_control.agents.commands.evaluate",
    "inspect": "ncp_control.agents.commands.inspect",
    "robustness": "ncp_control.agents.commands.robustness",
    "export": "ncp_control.agents.commands.export",
    "run-exported": "ncp_control.agents.commands.run_exported",
    "study": "ncp_control.agents.commands.study",
    "study-report": "ncp_control.agents.commands.study_report",
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, like every other error of the CLI: ``PROG: error: MESSAGE``, exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# reStructuredText / Markdown inline markup in module docstrings, shown as plain text in --help:
# :role:`~a.b.name` -> name (Sphinx shows the last component after ~), ``x`` / `x` -> x, **x** -> x
_MARKUP = (
    (re.compile(r":[a-z]+:`~[^`]*?\.?([^.`]+)`"), r"\1"),
    (re.compile(r":[a-z]+:`([^`]+)`"), r"\1"),
    (re.compile(r"``(.+?)``"), r"\1"),
    (re.compile(r"`([^`]+)`"), r"\1"),
    (re.compile(r"\*\*(.+?)\*\*"), r"\1"),
)


def plain_text(doc: str) -> str:
    """``doc`` without inline markup (backticks, Sphinx roles, bold), for ``--help``."""
    for pattern, replacement in _MARKUP:
        doc = pattern.sub(replacement, doc)
    return doc


def _load(name: str):
    return importlib.import_module(COMMANDS[name])


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ncp-control", description=plain_text(__doc__.splitlines()[0]))
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error (also NCP_CONTROL_DEBUG=1)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        module = _load(name)
        doc = plain_text(module.__doc__ or name)
        p = sub.add_parser(
            name,
            help=doc.strip().splitlines()[0],
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Expected errors (see :mod:`ncp_control.agents.errors`) print one line on stderr and return 2."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, or a bad command line (already reported on one line)
        return int(done.code or 0)
    debug = args.debug or os.environ.get("NCP_CONTROL_DEBUG", "") not in ("", "0")
    try:
        return int(args._module.run(args) or 0)
    except EXPECTED_ERRORS as error:
        if debug:
            traceback.print_exc()
        print(f"{parser.prog} {args.command}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog} {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
