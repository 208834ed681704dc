"""The docs a reader can walk: docs/ holds pages, their data lives in docs/data/<topic>/, every relative link in
README.md and the pages resolves, every page is reachable from the README, and no data file names a path on the
machine that made it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DATA = DOCS / "data"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

#: An absolute path on a build or work machine, not preceded by a path or word character (so ``docs/tmp`` or a URL
#: path is not one).
MACHINE_PATH = re.compile(r"(?<![\w.~/-])/(?:work|tmp|root|home)(?:/|\b)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.M)
HTML = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=\"([^\"]+)\"", re.I)


def _prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code (a ``](`` in code is not a link)."""
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def _links(page: Path) -> list[str]:
    """The relative link targets of a Markdown page, without their #fragment."""
    return _links_in(page.read_text())


def _links_in(text: str) -> list[str]:
    text = _prose(text)
    targets = LINK.findall(text) + REFERENCE.findall(text) + HTML.findall(text)
    relative = [t for t in targets if not re.match(r"^[a-zA-Z][\w+.-]*:", t) and not t.startswith(("#", "/"))]
    return [t.split("#", 1)[0] for t in relative if t.split("#", 1)[0]]


def test_docs_root_holds_only_pages():
    api = DOCS / "api"  # the site's API reference pages (mkdocs.yml, tests/test_docs_site.py)
    others = sorted(p.name for p in DOCS.iterdir() if not (p.is_file() and p.suffix == ".md") and p not in (DATA, api))
    assert not others, f"docs/ holds pages only; move these under docs/data/<topic>/: {others}"
    assert not [p.name for p in api.iterdir() if not (p.is_file() and p.suffix == ".md")], (
        "docs/api/ holds reference pages (*.md) only"
    )
    assert DATA.is_dir() and not [p.name for p in DATA.iterdir() if p.is_file()], (
        "docs/data/ holds one folder per page or topic, no loose files"
    )


def test_every_relative_link_resolves():
    broken = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in PAGES
        for target in _links(page)
        if not (page.parent / target).exists()
    ]
    assert not broken, f"links to files that do not exist: {broken}"


def test_a_link_checker_sees_links_and_not_code():
    page = DOCS / "results.md"
    assert "data/" in _links(page)  # the page's own link to its data folder
    assert _links_in("see [a](a.md#x) and `[b](b.md)`, ![c](img/c.png)\n```\n[d](d.md)\n```\n[e](https://e.org)\n") == [
        "a.md",
        "img/c.png",
    ]


def test_every_page_is_reachable_from_the_readme():
    seen, todo = set(), [ROOT / "README.md"]
    while todo:
        page = todo.pop()
        if page in seen:
            continue
        seen.add(page)
        for target in _links(page):
            path = (page.parent / target).resolve()
            if path.suffix == ".md" and path.parent == DOCS:
                todo.append(path)
    unreachable = sorted(p.name for p in DOCS.glob("*.md") if p.resolve() not in seen)
    assert not unreachable, f"pages no link from README.md leads to: {unreachable}"


def test_every_data_folder_is_named_by_a_page():
    text = "\n".join(page.read_text() for page in PAGES)
    unnamed = sorted(folder.name for folder in DATA.iterdir() if folder.is_dir() and f"data/{folder.name}/" not in text)
    assert not unnamed, f"data folders no page points to: {unnamed}"


def test_no_data_file_names_a_machine_path():
    found = []
    for path in sorted(p for p in DATA.rglob("*") if p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # images
        for number, line in enumerate(text.splitlines(), 1):
            match = MACHINE_PATH.search(line)
            if match:
                found.append(
                    f"{path.relative_to(ROOT)}:{number}: {line[max(match.start() - 30, 0) : match.end() + 40]}"
                )
    assert not found, (
        f"absolute machine paths in data files (make them relative to the repository or drop them): {found}"
    )


def test_the_machine_path_pattern():
    assert MACHINE_PATH.search('"run": "/tmp/robust/ncp-ltc"') and MACHINE_PATH.search("--out /work/studies/x")
    assert MACHINE_PATH.search("/root") and MACHINE_PATH.search("cd /home/me")
    assert not MACHINE_PATH.search("docs/tmp/x") and not MACHINE_PATH.search("https://example.org/home/x")
    assert not MACHINE_PATH.search("/workspace") and not MACHINE_PATH.search("/usr/bin/time")


def _resolves(dotted: str) -> bool:
    """``dotted`` names an importable module, or an attribute reachable from the longest importable prefix."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
        return True
    return False


def test_every_dotted_name_in_the_docs_exists_in_the_code():
    """A page that names ``ncp_control.x.y`` names something a reader can import (renames update the pages)."""
    import re

    missing = {}
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for name in set(re.findall(r"ncp_control(?:\.[A-Za-z_]\w*)+", page.read_text())):
            if not _resolves(name):
                missing.setdefault(page.name, []).append(name)
    assert not missing, f"pages name things the code no longer has: {missing}"
