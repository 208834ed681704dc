"""``ncp-control --help`` and every subcommand's help read as plain text (docstring markup stripped)."""

import contextlib
import io

import pytest

from ncp_control.agents.cli import COMMANDS, main, plain_text


def _help(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--help"])  # main returns argparse's exit status instead of raising SystemExit
    assert code == 0
    return out.getvalue()


@pytest.mark.parametrize("argv", [[], *([name] for name in COMMANDS)])
def test_help_shows_no_raw_markup(argv):
    text = _help(argv)
    assert "`" not in text and "**" not in text and ":func:" not in text


def test_plain_text_strips_roles_literals_and_bold():
    assert plain_text("``a`` `b c` :func:`~pkg.mod.f` :class:`pkg.C` **d**") == "a b c f pkg.C d"
