"""Run folders written by 0.1, when the distribution installed top-level ``agents`` and ``envs`` packages, still
evaluate, inspect, export and resume; their module names are read as today's and never imported as written."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from ncp_control.agents.cli import main
from ncp_control.agents.runs.legacy import current_name
from ncp_control.agents.runs.load import load_run

DATA = Path(__file__).parent / "data" / "legacy_runs"
EXPECTED = json.loads((DATA / "expected.json").read_text())


def _no_top_level_packages_imported():
    assert "agents" not in sys.modules and "envs" not in sys.modules, "an old module name was imported as written"


@pytest.fixture
def run(tmp_path, request):
    """A copy of the named legacy run folder (the tests write into it)."""
    dst = tmp_path / request.param
    shutil.copytree(DATA / request.param, dst)
    return dst


@pytest.mark.parametrize(
    "name",
    [
        "envs:LaneKeeping-v0",
        "envs.lane_keeping:LaneKeepingEnv",
        "agents.experts:PurePursuitExpert",
        "envs.memory:make_hopper_novel",
    ],
)
def test_old_names_map_to_importable_modules(name):
    import importlib

    module, _, attr = current_name(name).partition(":")
    assert module.startswith("ncp_control.")
    if not attr[0].isupper() or "-" not in attr:  # a class or function, not an env id
        assert hasattr(importlib.import_module(module), attr)


def test_unknown_and_plain_names_are_left_alone():
    assert current_name("LaneKeeping-v0") == "LaneKeeping-v0"
    assert current_name("my_pkg.envs:Foo-v0") == "my_pkg.envs:Foo-v0"


@pytest.mark.parametrize("run", ["bc-lanekeeping", "ppo-pendulum"], indirect=True)
def test_old_run_evaluates_as_it_did(run, tmp_path, capsys):
    record = tmp_path / "eval.json"
    assert main(["evaluate", str(run), "--episodes", "2", "--json", str(record)]) == 0
    got, want = json.loads(record.read_text()), EXPECTED[run.name]
    assert got["seeds"] == want["seeds"]
    np.testing.assert_allclose(got["returns"], want["returns"], rtol=1e-2)
    if run.name == "ppo-pendulum":  # no rendering: exact lengths (a camera run's crash step may move by a frame)
        assert got["lengths"] == want["lengths"]
    assert load_run(run).env_id.startswith("ncp_control.envs:")
    _no_top_level_packages_imported()


@pytest.mark.parametrize("run", ["bc-lanekeeping", "ppo-pendulum"], indirect=True)
def test_old_run_exports_and_the_export_runs(run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    onnx_path = tmp_path / "policy.onnx"
    assert main(["export", str(run), "--out", str(onnx_path)]) == 0
    assert main(["run-exported", str(onnx_path), "--episodes", "1"]) == 0
    assert '"mean_return"' in capsys.readouterr().out
    _no_top_level_packages_imported()


@pytest.mark.parametrize("run", ["bc-lanekeeping"], indirect=True)
def test_old_run_inspects(run, tmp_path):
    out = tmp_path / "inspect"
    assert (
        main(
            [
                "inspect",
                str(run),
                "--out",
                str(out),
                "--episodes",
                "1",
                "--closed-loop-episodes",
                "1",
                "--max-steps",
                "20",
                "--ig-steps",
                "4",
                "--gif-steps",
                "0",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    assert (out / "report.html").is_file()
    _no_top_level_packages_imported()


@pytest.mark.parametrize("run", ["bc-lanekeeping"], indirect=True)
def test_old_imitation_run_resumes_with_its_stored_expert(run, capsys):
    # the stored expert is agents.experts:PurePursuitExpert: today's project expert, so no --expert is needed
    assert main(["train-bc", "--out", str(run), "--resume", "--set", "epochs=2", "--eval-episodes", "0"]) == 0
    _no_top_level_packages_imported()


@pytest.mark.parametrize("run", ["ppo-pendulum"], indirect=True)
def test_old_ppo_run_resumes(run, capsys):
    assert main(["train-ppo", "--out", str(run), "--resume", "--timesteps", "96", "--no-progress"]) == 0
    assert "96 steps" in capsys.readouterr().out
    _no_top_level_packages_imported()
