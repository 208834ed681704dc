"""A wheel that works away from the checkout: ``pip wheel`` builds ncp-control, the wheel holds every module and data
file (the PPO presets, rl-zoo files and study specs, the MuJoCo assets, the C kernels' sources) and nothing outside
``ncp_control/``, and, installed with ``pip install --target DIR`` and run from an empty folder with only DIR on
PYTHONPATH, the commands find every file they need there.

Every command runs through a small guard that fails it if the checkout is on ``sys.path`` or any ``ncp_control``
module was imported from anywhere but DIR (this venv's editable install maps ``ncp_control`` to the checkout; the
PYTHONPATH entry comes first, and the guard proves it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: checkout folder -> the package it is installed as (pyproject.toml's package-dir)
TREES = {"ncp_control": "ncp_control", "agents": "ncp_control/agents", "envs": "ncp_control/envs"}

GUARD = '''
"""python guard.py (-m MODULE | SCRIPT) ARGS...: run it, then check where ncp_control came from."""
import os, runpy, sys
from pathlib import Path

site, checkout = Path(os.environ["WHEEL_SITE"]).resolve(), Path(os.environ["CHECKOUT"]).resolve()


def check():
    on_path = [p for p in sys.path if Path(p or os.getcwd()).resolve() == checkout]
    assert not on_path, f"the checkout is on sys.path: {sys.path}"
    elsewhere = {}
    for name, module in list(sys.modules.items()):
        if name == "ncp_control" or name.startswith("ncp_control."):
            files = [module.__file__] if getattr(module, "__file__", None) else list(getattr(module, "__path__", []))
            if not files or not all(Path(f).resolve().is_relative_to(site) for f in files):
                elsewhere[name] = files
    assert not elsewhere, f"modules not imported from the installed wheel: {elsewhere}"
    assert "ncp_control" in sys.modules, "ncp_control was never imported"


if sys.argv[1] == "-m":
    sys.argv = [sys.argv[2], *sys.argv[3:]]
    run = lambda: runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
else:
    sys.argv = sys.argv[1:]
    run = lambda: runpy.run_path(sys.argv[0], run_name="__main__")
code = 0
try:
    run()
except SystemExit as stop:
    code = stop.code
check()
print("GUARD-OK", file=sys.stderr)
sys.exit(code)
'''


def _copy_sources(dest: Path) -> None:
    """What the build reads: pyproject.toml, README.md and the package folders (no caches). The copy keeps the
    build's ``build/`` and ``*.egg-info`` out of the shared checkout and fixes the sources while the test runs."""
    dest.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", dest)
    shutil.copy2(ROOT / "README.md", dest)
    for folder in TREES:
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _expected_files(source: Path) -> set[str]:
    """Every file of the package folders, as the wheel names it."""
    out = set()
    for folder, package in TREES.items():
        for path in source.joinpath(folder).rglob("*"):
            if path.is_file() and not path.name.startswith(".") and not path.name.endswith("~"):
                out.add(f"{package}/{path.relative_to(source / folder).as_posix()}")
    return out


def _run(cmd: list[str], timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(wheel, source copy, install folder): the wheel built once with build isolation (setuptools from the
    index, as a user's ``pip wheel .`` does) and installed with ``pip install --no-deps --target``."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    _copy_sources(source)
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(dist), str(source)], cwd=tmp)
    wheels = list(dist.glob("ncp_control-*.whl"))
    assert len(wheels) == 1, wheels
    site = tmp / "site"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-compile",
            "--target",
            str(site),
            str(wheels[0]),
        ],
        cwd=tmp,
    )
    return wheels[0], source, site


@pytest.fixture(scope="module")
def away(built, tmp_path_factory):
    """``away(*args)``: ``python guard.py ARGS`` with only the install folder on PYTHONPATH, from an empty folder;
    the kernel cache is a fresh folder of the test's. Returns the finished process (asserting it succeeded)."""
    _, _, site = built
    tmp = tmp_path_factory.mktemp("away")
    cwd, tools = tmp / "cwd", tmp / "tools"
    cwd.mkdir()
    tools.mkdir()
    guard = tools / "guard.py"
    guard.write_text(GUARD)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "NCP_CONTROL_PURE_TORCH", "NCP_CONTROL_EXTRA_CFLAGS")
    }
    env.update(
        PYTHONPATH=str(site),
        WHEEL_SITE=str(site),
        CHECKOUT=str(ROOT),
        NCP_CONTROL_CACHE_DIR=str(tmp / "cache"),
        PYTHONDONTWRITEBYTECODE="1",
        OMP_NUM_THREADS="1",
    )
    env.setdefault("MUJOCO_GL", "egl")

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        assert not any(cwd.iterdir()), f"the working folder is not empty: {list(cwd.iterdir())}"
        done = _run([sys.executable, str(guard), *map(str, args)], timeout=timeout, cwd=cwd, env=env)
        assert "GUARD-OK" in done.stderr
        return done

    run.tmp, run.tools, run.site = tmp, tools, site
    return run


def _script(away, name: str, code: str) -> Path:
    path = away.tools / name
    path.write_text(textwrap.dedent(code))
    return path


# ---------------------------------------------------------------------------- the wheel's files
def test_wheel_holds_every_module_and_data_file_and_nothing_else(built):
    wheel, source, _ = built
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    dist_info = f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info/"
    outside = [n for n in names if not n.startswith(("ncp_control/", dist_info))]
    assert not outside, f"files outside ncp_control/ and {dist_info}: {outside}"
    package_files = {n for n in names if n.startswith("ncp_control/")}
    expected = _expected_files(source)
    assert not expected - package_files, f"missing from the wheel: {sorted(expected - package_files)}"
    assert not package_files - expected, f"in the wheel but not in the sources: {sorted(package_files - expected)}"
    # the data the commands read, named explicitly (a folder emptied by mistake would pass the comparison above)
    for pattern in (
        "ncp_control/agents/configs/ppo.json",
        "ncp_control/agents/configs/rllib.json",
        "ncp_control/agents/configs/rl_zoo/ppo_lstm_ncp_ltc.yml",
        "ncp_control/agents/configs/rl_zoo/ppo_lstm_ncp_cfc.yml",
        "ncp_control/agents/configs/studies/",
        "ncp_control/envs/lane_keeping/assets/lane_scene.xml",
        "ncp_control/envs/lane_keeping/assets/lane_vehicle.xml",
        "ncp_control/cells/native/ltc_kernel.c",
        "ncp_control/cells/native/cfc_kernel.c",
        "ncp_control/agents/cli.py",
        "ncp_control/envs/__init__.py",
    ):
        assert any(n.startswith(pattern) for n in names), f"{pattern} is missing from the wheel"
    assert any(n.endswith(".json") for n in names if n.startswith("ncp_control/agents/configs/studies/"))
    with zipfile.ZipFile(wheel) as z:
        assert z.read(dist_info + "top_level.txt").decode().split() == ["ncp_control"]
        entry_points = z.read(dist_info + "entry_points.txt").decode()
    assert "ncp-control = ncp_control.agents.cli:main" in entry_points


# ---------------------------------------------------------------------------- the commands, away from the checkout
def test_cli_help(away):
    out = away("-m", "ncp_control.agents.cli", "--help").stdout
    for command in ("train-ppo", "train-bc", "train-rllib", "evaluate", "study"):
        assert command in out


def test_train_ppo_then_evaluate(away):
    """A preset of the installed configs/ppo.json (PendulumNoVel-v1, ltc), trained for 64 steps, then evaluated."""
    config = away.tools / "ppo.json"
    config.write_text(
        json.dumps(
            {
                "algo": {"n_steps": 32, "batch_size": 32},
                "checkpoint_freq": 0,
                "eval_freq": 0,
                "eval_episodes": 1,
                "n_envs": 1,
            }
        )
    )
    run_dir = away.tmp / "runs" / "ppo-pendulum"
    away(
        "-m",
        "ncp_control.agents.cli",
        "train-ppo",
        "--env",
        "PendulumNoVel-v1",
        "--policy",
        "ltc",
        "--timesteps",
        "64",
        "--n-envs",
        "1",
        "--out",
        run_dir,
        "--no-progress",
        "--config",
        config,
    )
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["env_id"] == "PendulumNoVel-v1" and saved["algo"]["n_steps"] == 32
    result = json.loads(
        away("-m", "ncp_control.agents.cli", "evaluate", run_dir, "--episodes", "1", "--json", "-").stdout
    )
    assert result["env_id"] == "PendulumNoVel-v1" and len(result["returns"]) == 1


def test_lane_keeping_env_reads_the_installed_assets(away):
    script = _script(
        away,
        "lane_keeping.py",
        """
        import os
        from importlib import resources
        from pathlib import Path

        import gymnasium as gym
        import numpy as np

        import ncp_control.envs  # registers the ids

        assets = Path(str(resources.files("ncp_control.envs.lane_keeping").joinpath("assets")))
        assert assets.resolve().is_relative_to(Path(os.environ["WHEEL_SITE"]).resolve()), assets
        env = gym.make("LaneKeeping-v0", image_height=32, image_width=64, render_mode="rgb_array",
                       render_height=48, render_width=64)
        obs, info = env.reset(seed=0)
        frame = env.render()
        env.close()
        assert obs.shape == (32, 64, 3) and obs.dtype == np.uint8, obs.shape
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8, frame.shape
        assert np.ptp(obs) > 0 and np.ptp(frame) > 0, "a blank image"
        print("lane keeping ok", obs.shape, frame.shape)
    """,
    )
    assert "lane keeping ok" in away(script).stdout


#: what ncp_control.cells.native.compiler() looks for (not imported here: that would import the checkout's torch code)
HAS_CC = bool(
    shutil.which(os.environ["CC"])
    if os.environ.get("CC")
    else any(shutil.which(name) for name in ("cc", "gcc", "clang"))
)


@pytest.mark.skipif(not HAS_CC, reason="no C compiler: the fast path cannot be built here")
def test_ltc_kernel_is_compiled_from_the_installed_source(away):
    script = _script(
        away,
        "kernel.py",
        """
        import os
        from pathlib import Path

        import torch

        from ncp_control import LTCCell, wirings
        from ncp_control.cells import ltc_fast, native

        site, cache = Path(os.environ["WHEEL_SITE"]).resolve(), Path(os.environ["NCP_CONTROL_CACHE_DIR"])
        source = Path(native.__file__).with_name("native") / "ltc_kernel.c"
        assert source.is_file() and source.resolve().is_relative_to(site), source
        assert native.cache_dir() == cache
        torch.manual_seed(0)
        cell = LTCCell(wirings.NCP(4, 3, 2, sensory_fanout=2, inter_fanout=2, recurrent_command_synapses=3,
                                   motor_fanin=2, seed=1), 4)
        x, h = torch.randn(3, 4), torch.randn(3, 9)
        assert ltc_fast.fast_path_available(cell, x, h), native.status()
        assert native.status()["ltc_kernel"] == "native" or native.status()["ltc_kernel"].startswith("portable")
        assert list(cache.glob("ltc_kernel-*")), "nothing compiled into the cache"
        with torch.no_grad():
            fast = cell(x, h)
            ltc_fast.fast_path_available = lambda *a, **k: False  # the pure-torch equations
            ltc_fast.try_step_no_grad = lambda *a, **k: None
            pure = cell(x, h)
        for a, b in zip(fast if isinstance(fast, tuple) else (fast,), pure if isinstance(pure, tuple) else (pure,)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        print("kernel ok", native.status()["ltc_kernel"])
    """,
    )
    assert "kernel ok" in away(script).stdout


def test_presets_rl_zoo_files_and_study_specs_are_read_from_the_install(away):
    script = _script(
        away,
        "configs.py",
        """
        import os
        from pathlib import Path

        from ncp_control.agents.ppo import config as ppo_config, rl_zoo
        from ncp_control.agents.study.spec import plan_study, read_spec

        site = Path(os.environ["WHEEL_SITE"]).resolve()
        configs = site / "ncp_control" / "agents" / "configs"
        assert Path(ppo_config.PRESETS_PATH).resolve() == configs / "ppo.json"
        for cell in ("ltc", "cfc"):
            path = rl_zoo.hyperparams_path(cell)
            assert path.resolve().parent == configs / "rl_zoo" and "PendulumNoVel-v1" in path.read_text(), path
        specs = sorted((configs / "studies").glob("*.json"))
        assert specs
        for path in specs:
            plan = plan_study(read_spec(path))
            assert plan.train, path
        print("configs ok", len(specs))
    """,
    )
    assert "configs ok" in away(script).stdout


def test_demo_runs_from_the_install(away):
    """README's main job (shortened: one epoch, no DAgger, two held-out roads) from the installed wheel: the demo
    preset, the env's assets, the expert, the kernels and the inspection plots all come from the install."""
    out = away.tmp / "runs" / "demo"
    done = away(
        "-m",
        "ncp_control.agents.cli",
        "demo",
        "--out",
        out,
        "--set",
        "epochs=1",
        "--set",
        "dagger_rounds=0",
        "--episodes",
        "2",
    )
    assert "ncp-ltc held-out: mean return" in done.stdout.splitlines()[-1]
    heldout = json.loads((out / "eval_heldout.json").read_text())
    assert heldout["episodes"] == 2 and len(heldout["returns"]) == 2
    for name in ("trace.png", "parameters.md", "demo.json", "inspect/report.html"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name


def test_a_shipped_study_runs_by_name_from_the_install(away):
    """``ncp-control study memory-smoke``: the spec is found in the install by its name, and its ten jobs (PPO and
    imitation runs, evaluations under pixel noise on a local Ray whose workers get the same PYTHONPATH) finish."""
    out = away.tmp / "studies" / "smoke"
    done = away(
        "-m", "ncp_control.agents.cli", "study", "memory-smoke", "--out", out, "--num-cpus", "1", "--quiet", timeout=420
    )
    assert done.stdout.strip().splitlines()[-1].startswith("10/10 jobs done (0 failed, 0 skipped)")
    spec = json.loads((out / "spec.json").read_text())
    shipped = away.site / "ncp_control" / "agents" / "configs" / "studies" / "memory-smoke.json"
    assert spec == json.loads(shipped.read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["jobs"]["done"] == 10
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "bc-LaneKeeping-v0-ncp-ltc-s0",
        "ppo-PendulumNoVel-v1-cfc-s0",
        "ppo-PendulumNoVel-v1-cfc-s1",
        "ppo-PendulumNoVel-v1-ltc-s0",
        "ppo-PendulumNoVel-v1-ltc-s1",
    ]
