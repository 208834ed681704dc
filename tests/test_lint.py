"""ruff (the linter Stable-Baselines3 and Gymnasium run in CI) passes over the package, scripts and tests, with the
configuration in pyproject.toml, and ruff's formatter finds nothing there to reformat."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("ncp_control", "envs", "agents", "scripts", "tests")


def _ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``ruff ARGS --no-cache --output-format concise`` in ``cwd``."""
    pytest.importorskip("ruff", reason="ruff is in the dev extra: pip install -e '.[dev]'")
    from ruff.__main__ import find_ruff_bin

    command = [find_ruff_bin(), args[0], "--no-cache", "--output-format", "concise", *args[1:]]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture
def checkout() -> None:
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("not a checkout")


def test_ruff_check_passes(checkout):
    done = _ruff("check", *SOURCES)
    assert done.returncode == 0, f"ruff check found problems (fix them, or `ruff check --fix`):\n{done.stdout[-5000:]}"


def test_ruff_format_check_passes(checkout):
    done = _ruff("format", "--check", *SOURCES)
    # concise: one "PATH:LINE:COL: unformatted: File would be reformatted" per file
    files = "\n".join(line.split(":", 1)[0] for line in done.stdout.splitlines() if ": unformatted:" in line)
    assert done.returncode == 0, f"ruff format would reformat (run `ruff format`):\n{files}\n{done.stderr[-2000:]}"


def test_ruff_sees_a_real_problem(tmp_path):
    """The check can fail: an unused import and an undefined name are reported under the project's configuration."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\n\ndef f():\n    return undefined_name\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    done = _ruff("check", str(bad), cwd=tmp_path)
    assert done.returncode == 1 and "F401" in done.stdout and "F821" in done.stdout, done.stdout + done.stderr
