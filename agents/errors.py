"""Errors a person can act on.

Library code raises ``ValueError`` (bad values, unknown names, corrupt files) or ``FileNotFoundError`` /
``PermissionError`` with a message that names the file or setting at fault and says what to do. The CLI
(``ncp_control.agents.cli.main``) prints such an error as one line, ``ncp-control <command>: error: <message>``, on stderr and
exits with status 2; ``--debug`` or ``NCP_CONTROL_DEBUG=1`` shows the traceback instead.

:class:`UsageError` is for problems with the command line itself (a missing or contradictory flag); its message
uses the command line's words (``--timesteps must be a positive int``).
"""

from __future__ import annotations


class UsageError(ValueError):
    """A bad command line: the message names the flag and what to write instead."""


#: exception types the CLI reports as one line (everything else is a bug and keeps its traceback)
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    FileExistsError,
)


def one_line(error: BaseException) -> str:
    """The error's message on one line (newlines folded), without a trailing period."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text.rstrip(".")
