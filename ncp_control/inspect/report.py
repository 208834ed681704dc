"""``report.html``: one self-contained page (images and tables referenced by relative paths) over an inspection.

Paragraph text may carry the reStructuredText inline markup of our docstrings (bold, emphasis, double or single
backticks, Sphinx roles such as ``:func:``); :func:`markup_to_html` renders it, so no raw markup reaches the page. Tables sit in a
horizontally scrolling box, so a wide table never widens the page.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Section", "write_report", "referenced_files", "markup_to_html"]

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
.table-wrap{max-width:100%;overflow-x:auto;margin:.5em 0}
table{border-collapse:collapse;font-size:.85em} caption{text-align:left;font-size:.9em;padding:2px 0}
code{font-size:.9em;background:#f4f4f4;padding:0 2px} td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#f2f2f2} img{max-width:100%;border:1px solid #eee;margin:.3em 0} .note{color:#555;font-size:.9em}
figure{margin:1em 0} figcaption{font-size:.85em;color:#444}
"""


@dataclass
class Section:
    """A report section: a heading, paragraphs of text (docstring markup allowed, see :func:`markup_to_html`),
    images ``(relative path, caption)`` and tables ``(caption, rows)`` where rows are dicts with the same keys;
    ``links`` are ``(relative path, label)``."""

    title: str
    text: list[str] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)
    tables: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)


# :role:`~pkg.mod.name` or :role:`name` (Sphinx cross-references): shown as the name, as Sphinx shows it
_ROLE = re.compile(r":[a-z]+:`~?([^`<]+?)`")
_CODE = re.compile(r"``(.+?)``|`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_EMPHASIS = re.compile(r"(?<![\w*])\*([^*\s](?:[^*]*?[^*\s])?)\*(?![\w*])")  # *word*, not a * b


def _inline(text: str) -> str:
    """Escaped text with **bold** and *emphasis* rendered."""
    text = _BOLD.sub(r"<strong>\1</strong>", html.escape(text))
    return _EMPHASIS.sub(r"<em>\1</em>", text)


def markup_to_html(text: str) -> str:
    """Docstring text to HTML: escapes ``<>&``, joins wrapped lines, renders ``**bold**`` as ``<strong>``,
    ``*emphasis*`` as ``<em>``, double and single backticks as ``<code>``, and Sphinx roles
    (``:func:`~a.b.name```) as ``<code>name</code>`` (the last component after ``~``, as Sphinx does)."""
    text = " ".join(text.split())  # docstring line breaks and indentation
    parts: list[str] = []
    position = 0
    for match in re.finditer(f"{_ROLE.pattern}|{_CODE.pattern}", text):
        parts.append(_inline(text[position : match.start()]))
        role, double, single = match.groups()
        if role is not None and "~" in match.group(0):
            role = role.split(".")[-1]
        code = role or double or single
        parts.append(f"<code>{html.escape(code)}</code>")
        position = match.end()
    parts.append(_inline(text[position:]))
    return "".join(parts)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(caption: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return f"<p class='note'>{html.escape(caption)}: (empty)</p>"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows)
    return (
        f"<div class='table-wrap'><table><caption>{html.escape(caption)}</caption><tr>{head}</tr>{body}</table></div>"
    )


def write_report(folder: str | Path, title: str, sections: list[Section], *, filename: str = "report.html") -> Path:
    """Write ``folder/filename`` and return its path.

    Raises:
        ValueError: an image or link path does not exist under ``folder`` (a report never points at nothing).
    """
    folder = Path(folder)
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts.extend(f"<p>{markup_to_html(p)}</p>" for p in section.text)
        for rel, caption in section.images:
            if not (folder / rel).is_file():
                raise ValueError(f"report image {rel} does not exist in {folder}")
            parts.append(
                f"<figure><img src='{html.escape(rel)}' alt='{html.escape(caption)}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        for caption, rows in section.tables:
            parts.append(_table(caption, rows))
        if section.links:
            items = []
            for rel, label in section.links:
                if not (folder / rel).is_file():
                    raise ValueError(f"report link {rel} does not exist in {folder}")
                items.append(f"<li><a href='{html.escape(rel)}'>{html.escape(label)}</a></li>")
            parts.append("<ul>" + "".join(items) + "</ul>")
    parts.append("</body></html>")
    path = folder / filename
    path.write_text("\n".join(parts))
    return path


def referenced_files(report: str | Path) -> list[str]:
    """The relative paths a report's ``src=`` and ``href=`` attributes point at (for checking it renders)."""
    import re

    text = Path(report).read_text()
    return [html.unescape(m) for m in re.findall(r"(?:src|href)='([^']*)'", text)]
