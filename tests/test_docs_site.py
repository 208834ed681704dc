"""The documentation site (mkdocs.yml): ``mkdocs build --strict`` passes (no broken link or anchor, no docstring
Griffe cannot read, no missing reference), every public module has an API reference page generated from its
docstrings, every page is in the navigation, and the built pages load in headless Chromium with a clean console.

One strict build (about 5 s) serves every test of this file."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

#: The public modules and the reference page of each (docs/api/<page>.md).
PUBLIC = {
    "ncp_control.wirings": "wirings",
    "ncp_control.cells": "cells",
    "ncp_control.policies": "policies",
    "ncp_control.inspect": "inspect",
    "ncp_control.deploy": "deploy",
    "ncp_control.envs": "envs",
    "ncp_control.envs.lane_keeping": "envs.lane_keeping",
    "ncp_control.envs.perturbations": "envs.perturbations",
    "ncp_control.envs.masked_velocity": "envs.masked_velocity",
    "ncp_control.agents.runs": "agents.runs",
    "ncp_control.agents.evaluation": "agents.evaluation",
    "ncp_control.agents.imitation": "agents.imitation",
    "ncp_control.agents.ppo": "agents.ppo",
    "ncp_control.agents.study": "agents.study",
    "ncp_control.agents.export": "agents.export",
}
#: Objects each reference must document (a page that renders only its module docstring would miss them).
EXPECTED = [
    "ncp_control.wirings.AutoNCP",
    "ncp_control.cells.LTC",
    "ncp_control.policies.recurrent_ppo.NCPActorCriticPolicy",
    "ncp_control.inspect.record",
    "ncp_control.deploy.OnnxPolicy",
    "ncp_control.envs.perturbations.apply_perturbations",
    "ncp_control.envs.masked_velocity.MaskVelocity",
    "ncp_control.envs.lane_keeping.world.LaneKeepingBase",
    "ncp_control.agents.runs.load.load_run",
    "ncp_control.agents.evaluation.robustness.robustness_sweep",
    "ncp_control.agents.imitation.train",
    "ncp_control.agents.ppo.load_sb3_predictor",
    "ncp_control.agents.study.spec",
    "ncp_control.agents.export.writer",
]
NO_CHROMIUM = "Chromium is not installed (apt-get install -y chromium, or set NCP_CONTROL_CHROMIUM)"


def _require_tools():
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "griffe", "yaml"):
        pytest.importorskip(module, reason=f"could not import {module} (the [docs] extra, also in [dev])")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    _require_tools()
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{log[-4000:]}"
    assert not re.search(r"^(WARNING|ERROR)\b", log, re.M), log[-4000:]
    return out


def _nav_pages() -> list[str]:
    import yaml

    def walk(entry):
        if isinstance(entry, str):
            yield entry
        elif isinstance(entry, dict):
            for value in entry.values():
                yield from walk(value)
        elif isinstance(entry, list):
            for item in entry:
                yield from walk(item)

    return list(walk(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]))


def test_every_page_and_reference_is_in_the_navigation():
    _require_tools()
    nav = _nav_pages()
    pages = sorted(p.relative_to(DOCS).as_posix() for p in [*DOCS.glob("*.md"), *DOCS.glob("api/*.md")])
    assert sorted(set(nav) - {"index.md"}) == pages, "mkdocs.yml's nav and the pages of docs/ and docs/api/ differ"
    assert (
        "index.md" in nav and not (DOCS / "index.md").exists()
    )  # the home page is README.md (scripts/mkdocs_hooks.py)
    for module, page in PUBLIC.items():
        text = (DOCS / "api" / f"{page}.md").read_text()
        assert re.search(rf"^::: {re.escape(module)}$", text, re.M), f"docs/api/{page}.md does not render {module}"


def test_strict_build_has_a_reference_page_for_every_public_module(site):
    for module, page in PUBLIC.items():
        built = site / "api" / f"{page}.html"
        assert built.is_file(), f"no reference page for {module}"
        assert f'id="{module}"' in built.read_text(), f"{built.name} does not document {module}"
    html = "\n".join(p.read_text() for p in (site / "api").glob("*.html"))
    missing = [name for name in EXPECTED if f'id="{name}"' not in html]
    assert not missing, f"the API reference does not document {missing}"
    # reStructuredText roles render as code (linked where the site documents the object), never as ":func:"
    assert not re.search(r":(func|class|mod|meth):<code>", html)
    runs = (site / "api" / "agents.runs.html").read_text()  # its docstring's :func:`~...load.load_run`
    assert re.search(
        r'<a class="autorefs autorefs-internal"[^>]*href="#ncp_control\.agents\.runs\.load\.load_run"', runs
    )


def test_the_home_page_is_the_readme_and_data_folders_have_listings(site):
    home = (site / "index.html").read_text()
    assert "Quick start" in home and 'href="cli.html"' in home and 'href="docs/' not in home
    assert 'href="data/index.html"' in home  # README's link to docs/data/ goes to the folder's listing
    listing = (site / "data" / "imitation" / "index.html").read_text()
    assert 'href="demo_time.json"' in listing and (site / "data" / "imitation" / "demo_time.json").is_file()


def test_griffe_reads_shared_parameter_entries_and_prose_in_args():
    _require_tools()
    spec = importlib.util.spec_from_file_location("griffe_docstrings", ROOT / "scripts" / "griffe_docstrings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (
        "Do it.\n\nArgs:\n    x, y: the point\n        (m).\n    a,\n    b: more.\n    Other arguments: as in `f`.\n"
        "Returns:\n    z."
    )
    assert module.split_parameter_lists(text) == (
        "Do it.\n\nArgs:\n    x: the point\n        (m).\n    y: the point\n        (m).\n    a: more.\n    b: more.\n"
        "\nOther arguments: as in `f`.\n\nReturns:\n    z."
    )
    assert module.split_parameter_lists("One line.\n\nArgs:\n    x: fine.") == "One line.\n\nArgs:\n    x: fine."


def test_site_pages_load_in_headless_chromium_without_console_errors(site):
    """The home page, every page with images, the largest reference page, one with cross-references and a data
    listing: they share one theme, so these cover what differs (all 51 pages were checked clean on 2026-11-29)."""
    from ncp_control.inspect.report_check import check_report, chromium_executable

    if chromium_executable() is None:
        pytest.skip(NO_CHROMIUM)
    pages = [
        "index.html",
        "api/inspect.html",
        "api/agents.runs.html",
        "data/index.html",
        *sorted(p.relative_to(site).as_posix() for p in site.glob("*.html") if "<img" in p.read_text()),
    ]
    assert len(pages) >= 6
    with ThreadPoolExecutor(2) as pool:
        seen = dict(zip(pages, pool.map(lambda page: check_report(site / page, width=1400), pages)))
    problems = {page: check.problems for page, check in seen.items() if check.problems}
    assert not problems, problems
    assert all(image["width"] > 0 for check in seen.values() for image in check.images)
    assert sum(len(check.images) for check in seen.values()) >= 4
