"""mypy (the type checker Stable-Baselines3 and Gymnasium run in CI) passes over the installed namespace,
``ncp_control`` with ``agents/`` and ``envs/`` mapped to ``ncp_control.agents`` / ``ncp_control.envs`` as the wheel
maps them, under the configuration in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _namespace(tmp_path: Path) -> Path:
    """``tmp_path/ncp_control``: links to the package's modules, with ``agents`` and ``envs`` beside them."""
    package = tmp_path / "ncp_control"
    package.mkdir()
    for entry in (ROOT / "ncp_control").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    (package / "agents").symlink_to(ROOT / "agents")
    (package / "envs").symlink_to(ROOT / "envs")
    return tmp_path


def _mypy(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("mypy", reason="mypy is in the dev extra: pip install -e '.[dev]'")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(cwd / ".mypy_cache"),
            "--no-color-output",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_mypy_passes_over_the_package(tmp_path):
    if not (ROOT / "pyproject.toml").is_file() or not (ROOT / "agents").is_dir():
        pytest.skip("not a checkout")
    done = _mypy(["-p", "ncp_control"], _namespace(tmp_path))
    assert done.returncode == 0, f"mypy found problems:\n{done.stdout[-8000:]}{done.stderr[-2000:]}"


def test_mypy_sees_a_real_problem(tmp_path):
    """The check can fail: a wrong argument type is reported under the project's configuration."""
    (tmp_path / "bad.py").write_text("def f(x: int) -> int:\n    return x\n\n\nf('not an int')\n")
    done = _mypy([str(tmp_path / "bad.py")], tmp_path)
    assert done.returncode == 1 and "arg-type" in done.stdout, done.stdout + done.stderr
