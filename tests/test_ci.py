"""CI runs what the README tells a user to run, in a virtual environment without system site packages."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    quick = ROOT.joinpath("README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", quick, flags=re.S)


def test_ci_runs_the_readme_test_command_in_a_fresh_venv():
    demo, tests = _readme_commands()
    assert tests.endswith("python -m pytest") and "demo" in demo
    ci = ROOT.joinpath(".ci", "run").read_text()
    assert tests in ci.splitlines()  # the same line, character for character
    assert '"$python" -m venv "$venv"' in ci
    assert "system-site-packages" not in ci.replace("# no --system-site-packages", "").replace(
        "WITHOUT system site", ""
    )
    # the system Python and the oldest and newest declared ones
    assert "/usr/bin/python3" in ci and "pyenv_python 3.10" in ci and "pyenv_python 3.13" in ci
    assert "status -eq 5" in ci  # pytest's 'no tests collected' is reported, and its status 5 fails the run


def test_demo_help_shows_the_readme_demo_command():
    from ncp_control.agents.cli import build_parser

    demo, _ = _readme_commands()
    assert demo.endswith("ncp-control demo --out runs/demo")
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["demo"]
    text = sub.format_help()
    assert "ncp-control demo --out runs/demo" in text and "(default: runs/demo)" in text


_NEEDS_MISSING = """
import pytest

def test_needs_a_missing_module():
    pytest.importorskip("ncp_control_no_such_module")

def test_skips_for_another_reason():
    pytest.skip("not applicable here")
"""


def test_a_missing_dependency_fails_in_ci_and_skips_elsewhere(pytester, monkeypatch):
    pytester.makeconftest(ROOT.joinpath("tests", "conftest.py").read_text())
    pytester.makepyfile(test_needs=_NEEDS_MISSING)
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*CI=true: this test would skip*ncp_control_no_such_module*"])
    monkeypatch.delenv("CI")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(skipped=2)


def test_ci_sets_ci_true():
    assert "export CI=true" in ROOT.joinpath(".ci", "run").read_text()
