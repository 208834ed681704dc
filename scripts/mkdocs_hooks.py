"""MkDocs hooks of the documentation site (``mkdocs.yml``: ``hooks:``); ``mkdocs build --strict`` runs them.

- The home page is README.md, generated at build time as ``index.md`` with its ``docs/...`` links made relative to
  docs/ (the README stays the one source; docs/ holds no copy of it).
- Every folder under docs/data/ gets a generated ``index.md`` listing its files, and links to such a folder
  (``[data](data/imitation/)``) are pointed at that listing: a static site has no folder listings of its own.
- The API reference (``docs/api/*.md``, ``::: module`` blocks) is read by mkdocstrings' griffe, which finds packages
  by their folder layout. ``agents/`` and ``envs/`` install as ``ncp_control.agents`` and ``ncp_control.envs``
  (``package-dir`` in pyproject.toml) but do not sit inside ``ncp_control/``, so griffe is pointed at a temporary
  folder of symbolic links that has the installed layout.
- Docstrings use reStructuredText roles (``:func:`load_run` ``) inside Google-style sections; in the rendered HTML
  each role becomes code, linked to the object's reference entry where the site has one (an optional autoref:
  nothing is reported for a name the site does not document), and ``Example::`` loses its second colon.
- Links to ``../README.md`` from a page go to the home page.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
#: Subpackages of ncp_control whose folders sit at the repository root (pyproject.toml's package-dir).
MAPPED = {"agents": ROOT / "agents", "envs": ROOT / "envs"}
#: A Markdown link or image target (inline form), without a title.
_LINK = re.compile(r"(\]\(\s*<?)([^)\s>]+)(>?(?:\s+\"[^\"]*\")?\s*\))")


def _source_tree() -> Path:
    """A temporary folder holding ``ncp_control/`` as it is installed: links to ncp_control/'s entries, agents/ and
    envs/."""
    tree = Path(tempfile.mkdtemp(prefix="ncp-control-docs-"))
    atexit.register(shutil.rmtree, tree, ignore_errors=True)
    package = tree / "ncp_control"
    package.mkdir()
    for entry in (ROOT / "ncp_control").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    for name, folder in MAPPED.items():
        (package / name).symlink_to(folder, target_is_directory=True)
    return tree


@event_priority(100)  # before mkdocstrings reads its handler options
def on_config(config, **kwargs):
    python = config.plugins["mkdocstrings"].config.handlers.setdefault("python", {})
    python["paths"] = [str(_source_tree())]
    return config


def _data_listing(folder: Path, docs: Path) -> str:
    """The Markdown of a data folder's generated index page."""
    rel = folder.relative_to(docs).as_posix()
    lines = [f"# {rel}/", "", "The data files behind the pages (each page says which of them it uses).", ""]
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name == "index.md":
            continue
        target = f"{entry.name}/index.md" if entry.is_dir() else entry.name
        label = f"{entry.name}/" if entry.is_dir() else entry.name
        lines.append(f"- [{label}]({target})")
    return "\n".join(lines) + "\n"


def on_files(files: Files, config, **kwargs) -> Files:
    docs = Path(config.docs_dir)
    readme = (ROOT / "README.md").read_text()
    files.append(File.generated(config, "index.md", content=_readme_as_home(readme)))
    data = docs / "data"
    for folder in [data, *sorted(p for p in data.rglob("*") if p.is_dir())]:
        if not (folder / "index.md").exists():
            uri = (folder / "index.md").relative_to(docs).as_posix()
            files.append(File.generated(config, uri, content=_data_listing(folder, docs)))
    return files


def _readme_as_home(text: str) -> str:
    """README.md with its links into docs/ made relative to docs/ (where the home page lives)."""
    return _LINK.sub(lambda m: m.group(1) + re.sub(r"^(?:\./)?docs/", "", m.group(2)) + m.group(3), text)


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    """Point links to a folder of docs/ (``data/``, ``data/ppo/``) at its generated index page, and links to the
    README at the home page."""
    docs = Path(config.docs_dir)
    here = (docs / page.file.src_uri).parent

    def rewrite(match: re.Match) -> str:
        target, _, anchor = match.group(2).partition("#")
        if "://" in target:
            return match.group(0)
        if target.endswith("/") and (here / target).is_dir():
            target += "index.md"
        elif (here / target).resolve() == ROOT / "README.md":
            target = Path(os.path.relpath(docs / "index.md", here)).as_posix()
        else:
            return match.group(0)
        return match.group(1) + target + (f"#{anchor}" if anchor else "") + match.group(3)

    return _LINK.sub(rewrite, markdown)


#: A reStructuredText role as Markdown renders it: ``:func:<code>~pkg.mod.name</code>`` (the name may wrap a line).
_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|exc|obj|const):<code>(~?)\.?([\w.\s]+)(\(\))?</code>")


def _role(match: re.Match) -> str:
    short, name, call = match.group(1), re.sub(r"\s", "", match.group(2)), match.group(3) or ""
    shown = name.rsplit(".", 1)[-1] if short else name
    return f'<autoref optional identifier="{name}"><code>{shown}{call}</code></autoref>'


def on_page_content(html: str, page, config, files, **kwargs) -> str:
    """reStructuredText roles in docstrings as (linked) code; ``Example::`` as ``Example:``."""
    return _ROLE.sub(_role, html).replace("::</p>", ":</p>")
