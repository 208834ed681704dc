"""The ``ncp-control`` command line.

Each subcommand lives in its own module that defines its arguments cheaply and keeps heavy imports (torch,
MuJoCo) inside ``run`` so that ``--help`` stays fast. A subcommand module defines ``add_arguments(parser)`` and
``run(args) -> int``; its module docstring's first line is the subcommand's help.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from agents.errors import EXPECTED_ERRORS, one_line

# name -> module implementing it (modules live in agents/commands/)
COMMANDS: dict[str, str] = {
    "train-bc": "agents.commands.train_bc",
    "demo": "agents.commands.demo",
    "train-ppo": "agents.commands.train_ppo",
    "evaluate": "agents.commands.evaluate",
    "inspect": "agents.commands.inspect",
    "robustness": "agents.commands.robustness",
    "study": "agents.commands.study",
    "study-report": "agents.commands.study_report",
}


def _load(name: str):
    return importlib.import_module(COMMANDS[name])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ncp-control", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also NCP_CONTROL_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = _load(name)
        doc = (module.__doc__ or name).strip().splitlines()[0]
        p = sub.add_parser(name, help=doc, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Expected errors (see :mod:`agents.errors`) print one line on stderr and return 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
