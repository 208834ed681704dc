"""The train-bc and demo commands on the synthetic camera env (tiny settings)."""

import json

import pytest
import torch

from ncp_control.agents.cli import main
from ncp_control.agents.commands.train_bc import parse_overrides
from tests.imitation_synthetic import ENV_ID

torch.set_num_threads(1)

ENV = ENV_ID  # registered by importing tests.imitation_synthetic
TINY = [
    "--env",
    ENV,
    "--expert",
    "tests.imitation_synthetic:make_expert",
    "--set",
    "conv_channels=[4,4,4,4,4]",
    "--set",
    "features=8",
    "--set",
    "demo_episodes=3",
    "--set",
    "dagger_rounds=1",
    "--set",
    "dagger_episodes=2",
    "--set",
    "epochs=1",
    "--set",
    "dagger_epochs=1",
    "--set",
    "batch_size=4",
    "--threads",
    "1",
]


def test_train_bc_then_resume_a_finished_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train-bc", "--model", "ncp-cfc", "--seed", "3", "--out", str(out), *TINY]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "bc" and config["policy"] == "ncp-cfc" and config["seed"] == 3
    assert config["training"]["demo_episodes"] == 3 and config["training"]["conv_channels"] == [4, 4, 4, 4, 4]
    assert "round 1 epoch 1: loss" in capsys.readouterr().out
    before = (out / "model.pt").read_bytes()
    # an expert outside the project's registry, read back from config.json, is imported only when named again
    assert main(["train-bc", "--out", str(out), "--resume"]) == 2
    assert "--expert tests.imitation_synthetic:make_expert" in capsys.readouterr().err
    assert main(["train-bc", "--out", str(out), "--resume", "--expert", "tests.imitation_synthetic:make_expert"]) == 0
    # stored settings; nothing left to train
    assert (out / "model.pt").read_bytes() == before
    # the shared evaluator rebuilds the env with the run's own env arguments (stored under "training")
    from ncp_control.agents.runs.load import load_run

    assert load_run(out).env_kwargs == config["training"]["env_kwargs"]
    capsys.readouterr()
    assert main(["evaluate", str(out), "--episodes", "2", "--seed", "1000000", "--json", str(out / "e.json")]) == 0
    assert json.loads((out / "e.json").read_text())["episodes"] == 2


def test_demo_writes_metrics_trace_and_parameter_table(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--episodes", "3", *TINY]) == 0
    summary = json.loads((out / "demo.json").read_text())
    metrics = json.loads((out / "eval_heldout.json").read_text())
    assert summary["heldout_roads"] == 3 and metrics["episodes"] == 3
    assert summary["completion_rate"] == metrics["completion_rate"]
    assert (out / "trace.png").stat().st_size > 10_000
    table = (out / "parameters.md").read_text()
    for kind in ("ncp-ltc", "ncp-cfc", "lstm", "cnn"):
        assert f"| {kind} |" in table
    assert "held-out roads" in capsys.readouterr().out
    from ncp_control.inspect import referenced_files

    report = out / "inspect" / "report.html"
    refs = referenced_files(report)
    assert {"wiring.png", "traces.png", "attribution_heatmap.png", "saliency.gif"} <= set(refs)
    assert all((report.parent / ref).is_file() for ref in refs)
    assert summary["top_command_neuron"]["overall"] in (1, 2, 3, 4, 5, 6)  # the paper wiring's command ids


def test_bad_overrides_raise(capsys):
    assert parse_overrides(["epochs=3", "expert=a.b:c", "conv_channels=[1,2]"]) == {
        "epochs": 3,
        "expert": "a.b:c",
        "conv_channels": [1, 2],
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_overrides(["epochs"])
    with pytest.raises(ValueError, match="unknown setting 'epochz'; did you mean epochs"):
        parse_overrides(["epochz=3"])
    with pytest.raises(ValueError, match="conv_channels expects a JSON list of integers"):
        parse_overrides(["conv_channels=[1,2.5]"])
    assert parse_overrides(["max_episode_steps=null", "lr=1"]) == {"max_episode_steps": None, "lr": 1}
    capsys.readouterr()
    # the CLI's one top-level handler turns the error into one line on stderr and exit status 2
    assert main(["train-bc", "--out", "/nonexistent/x", "--env", ENV, "--set", "epochz=3"]) == 2
    assert "ncp-control train-bc: error: --set epochz=3: unknown setting 'epochz'" in capsys.readouterr().err
