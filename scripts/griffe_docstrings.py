"""A Griffe extension for the API reference (mkdocs.yml: mkdocstrings' ``extensions``): this project's docstrings
in Google style as Griffe reads it.

Two habits of the docstrings that Griffe's Google parser does not know, rewritten before parsing:

- several parameters described together, ``x, y: the point (m).`` (also spread over lines that end in a comma):
  one entry per parameter, each with the shared description;
- a sentence inside an ``Args:`` section that names no parameter, ``Other arguments: see :func:`record`.``: moved
  out of the section, as a paragraph after it.

The source files are not changed; ``tests/test_docs_site.py`` checks the rewriting.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters):\s*$")
_NAMES = re.compile(r"^([*]{0,2}[A-Za-z_]\w*(?:\s*,\s*[*]{0,2}[A-Za-z_]\w*)+)\s*:(.*)$")
_PROSE = re.compile(r"^([A-Za-z][\w-]*(?: [\w-]+)+)\s*:(.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def split_parameter_lists(text: str) -> str:
    """``text`` (a cleaned docstring) with shared parameter entries split and prose moved out of ``Args:``."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        if not _SECTION.match(lines[i]):
            i += 1
            continue
        base = _indent(lines[i])
        i += 1
        item_indent = next((_indent(line) for line in lines[i:] if line.strip()), base + 4)
        if item_indent <= base:
            continue
        prose: list[str] = []
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
            if not lines[i].strip():  # a blank line ends the section unless indented lines follow
                if not any(line.strip() for line in lines[i + 1 : i + 2]) or _indent(lines[i + 1]) <= base:
                    break
                out.append(lines[i])
                i += 1
                continue
            head = lines[i]
            i += 1
            while head.rstrip().endswith(",") and ":" not in head and i < len(lines) and lines[i].strip():
                head = head.rstrip() + " " + lines[i].strip()  # a name list spread over lines
                i += 1
            body = []
            while i < len(lines) and lines[i].strip() and _indent(lines[i]) > item_indent:
                body.append(lines[i])
                i += 1
            stripped = head.strip()
            names, prose_item = _NAMES.match(stripped), _PROSE.match(stripped)
            if _indent(head) == item_indent and names:
                for name in re.split(r"\s*,\s*", names.group(1)):
                    out.append(" " * item_indent + f"{name}:{names.group(2)}")
                    out.extend(body)
            elif _indent(head) == item_indent and prose_item:
                prose.append(" " * base + stripped)
                prose.extend(" " * base + line.strip() for line in body)
            else:
                out.append(head)
                out.extend(body)
        if prose:
            out.extend(["", *prose, ""])
    return "\n".join(out)


class GoogleNameLists(griffe.Extension):
    """Rewrites every docstring with :func:`split_parameter_lists` as Griffe creates the object."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = split_parameter_lists(obj.docstring.value)
