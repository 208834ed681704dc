"""The house stays as issue 23 left it: rooms by capability, short functions, nothing stray at the root."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the longest function outside tests and C: longer ones are split by phase (validate, load, plan, run, report)
MAX_FUNCTION_LINES = 80


def _tracked(*paths: str) -> list[Path]:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "ls-files", "--", *paths], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / line for line in done.stdout.splitlines()]


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """``(name, lines)`` of every function in ``source`` longer than ``limit`` lines (decorators not counted)."""
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > limit
    ]


def test_no_function_runs_over_80_lines():
    found = [
        f"{path.relative_to(ROOT)}:{name} ({lines} lines)"
        for path in _tracked("ncp_control", "agents", "envs", "scripts")
        if path.suffix == ".py"
        for name, lines in long_functions(path.read_text())
    ]
    assert not found, f"split these by phase: {found}"


def test_the_length_check_sees_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(85))
    assert long_functions(f"def f():\n{body}\n") == [("f", 86)]
    assert long_functions("def g():\n    return 1\n") == []


def test_agents_holds_only_rooms_the_cli_and_its_errors():
    top = {path.relative_to(ROOT / "agents").parts[0] for path in _tracked("agents")}
    files = {name for name in top if (ROOT / "agents" / name).is_file()}
    assert files == {"__init__.py", "cli.py", "errors.py"}, files
    for room in top - files:
        if room != "configs":  # package data, not code
            assert (ROOT / "agents" / room / "__init__.py").is_file(), f"agents/{room} is not a subpackage"


def test_the_root_holds_only_the_usual_files():
    usual = {".gitignore", "README.md", "pyproject.toml", "mkdocs.yml", "LICENSE", "CHANGELOG.md"}
    top = {path.relative_to(ROOT).parts[0] for path in _tracked(".")}
    stray = {name for name in top if (ROOT / name).is_file()} - usual
    assert not stray, f"files at the repository root: {sorted(stray)}"
