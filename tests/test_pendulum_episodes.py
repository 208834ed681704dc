"""scripts/pendulum_episodes.py: one line per evaluation episode of a Pendulum PPO run, and a one-line error for a
folder that is not one."""

import importlib.util
import json
from pathlib import Path

import pytest

from ncp_control.agents import ppo

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "pendulum_episodes.py"


def _script():
    spec = importlib.util.spec_from_file_location("pendulum_episodes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_line_per_episode_with_start_return_and_upright_steps(tmp_path, capsys):
    run = tmp_path / "run"
    config = ppo.resolve_config(
        "PendulumNoVel-v1",
        "mlp",
        timesteps=64,
        seed=0,
        overrides={"n_envs": 1, "algo": {"n_steps": 32, "batch_size": 32, "n_epochs": 1}},
    )
    ppo.train(config, run, evaluate_at_end=False)
    assert _script().main([str(run), "--episodes", "2", "--seed", "1000"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("episode  theta0"))
    rows = [line.split() for line in lines[header + 1 : -1]]
    assert [int(r[0]) for r in rows] == [0, 1]
    for row in rows:
        assert -180 <= float(row[1]) <= 180 and float(row[3]) <= 0 and 0 <= int(row[4]) <= 200
    assert lines[-1].startswith("mean return ")


def test_a_folder_without_a_ppo_run_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _script().main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert "has no config.json; pass a PPO run folder" in capsys.readouterr().err
    (tmp_path / "config.json").write_text(json.dumps({**ppo.resolve_config("Counter-v0", "mlp", timesteps=8)}))
    with pytest.raises(SystemExit):
        _script().main([str(tmp_path)])
    assert "this looks at Pendulum-v1 / PendulumNoVel-v1 runs" in capsys.readouterr().err
