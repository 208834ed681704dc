"""One top-level import package: ``ncp_control`` (the repository's ``agents/`` and ``envs/`` are installed as
``ncp_control.agents`` and ``ncp_control.envs``), so that installing ncp-control never writes into another
distribution's ``agents`` or ``envs`` package (the OpenAI Agents SDK, the ``envs`` library)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAPPED = {"ncp_control": "ncp_control", "agents": "ncp_control.agents", "envs": "ncp_control.envs"}
OLD_IMPORT = re.compile(r"^\s*(from|import)\s+(agents|envs)\b", re.M)


def _declared_packages() -> set[str]:
    text = ROOT.joinpath("pyproject.toml").read_text()
    block = text.split("\npackages = [", 1)[1].split("]", 1)[0]
    return set(re.findall(r'"([\w.]+)"', block))


def test_pyproject_lists_every_package_folder():
    found = set()
    for folder, package in MAPPED.items():
        for init in ROOT.joinpath(folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *rel.parts]))
    assert _declared_packages() == found


def test_no_code_imports_the_old_top_level_names():
    offenders = []
    for folder in ("ncp_control", "agents", "envs", "scripts", "tests"):
        for path in ROOT.joinpath(folder).rglob("*.py"):
            if "data" in path.relative_to(ROOT).parts:
                continue
            for match in OLD_IMPORT.finditer(path.read_text()):
                line = path.read_text()[: match.start()].count("\n") + 1
                offenders.append(f"{path.relative_to(ROOT)}:{line}")
    assert not offenders, f"import ncp_control.agents / ncp_control.envs instead: {offenders}"


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_installs_beside_openai_agents_and_envs_in_a_fresh_venv(tmp_path):
    """pip install openai-agents envs, then ncp-control (not editable, without its heavy dependencies: what is
    checked here is which files the distributions own); each keeps its public names, and uninstalling either
    leaves the other working."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "ncp_control", "agents", "envs"):
        copy = shutil.copytree if ROOT.joinpath(name).is_dir() else shutil.copy2
        copy(
            ROOT / name,
            source / name,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if ROOT.joinpath(name).is_dir() else {}),
        )
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    python, pip = venv / "bin" / "python", [str(venv / "bin" / "python"), "-m", "pip", "-q"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _run([*pip, "install", "openai-agents", "envs"], env=env)
    _run([*pip, "install", "--no-deps", str(source)], env=env, cwd=tmp_path)

    theirs = "from agents import Agent, Runner; from envs import env; print(Agent.__module__, type(env).__name__)"
    ours = [str(venv / "bin" / "ncp-control"), "--help"]
    assert _run([str(python), "-c", theirs], env=env, cwd=tmp_path).stdout.split() == ["agents.agent", "Env"]
    assert "train-bc" in _run(ours, env=env, cwd=tmp_path).stdout

    files = _run([str(python), "-m", "pip", "show", "-f", "ncp-control"], env=env).stdout.split("Files:", 1)[1].split()
    python_files = [f for f in files if f.endswith(".py")]
    assert python_files and all(f.startswith("ncp_control/") for f in python_files), python_files
    assert "ncp_control/agents/cli.py" in files and "ncp_control/envs/__init__.py" in files
    assert "ncp_control/envs/lane_keeping/assets/lane_scene.xml" in files
    assert "ncp_control/agents/configs/ppo.json" in files

    _run([*pip, "uninstall", "-y", "ncp-control"], env=env)
    _run([str(python), "-c", theirs], env=env, cwd=tmp_path)
    _run([*pip, "install", "--no-deps", str(source)], env=env, cwd=tmp_path)
    _run([*pip, "uninstall", "-y", "openai-agents"], env=env)
    assert "train-bc" in _run(ours, env=env, cwd=tmp_path).stdout
    _run([str(python), "-c", "from envs import env; import ncp_control.agents.cli"], env=env, cwd=tmp_path)


def test_no_package_file_is_hidden_by_gitignore():
    """A package file that .gitignore hides works in this checkout and is missing from every clone (the root's
    ``runs/`` pattern once hid ``agents/runs/``)."""
    if not ROOT.joinpath(".git").exists() or shutil.which("git") is None:
        return  # not a git checkout (an sdist): nothing can be hidden
    done = _run(
        ["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--", "ncp_control", "agents", "envs"],
        cwd=ROOT,
    )
    hidden = [line for line in done.stdout.splitlines() if "__pycache__" not in line and ".egg-info" not in line]
    assert not hidden, f"ignored by .gitignore but part of the package: {hidden}"
