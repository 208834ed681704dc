"""Bad input to every subcommand: one line on stderr (``ncp-control <command>: error: ...``), exit status 2, no
traceback, nothing left behind; a failed start does not block the retry. All checks happen before any work, so
these tests are fast (the trained PPO run they share is 64 steps on a toy env)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tests.imitation_synthetic  # noqa: F401  registers TinyLane-v0
from ncp_control.agents.cli import main
from tests._ppo_helpers import register_test_envs
from tests._robust_helpers import write_untrained_bc_run

torch.set_num_threads(1)
register_test_envs()

TINY_PPO = {
    "n_envs": 2,
    "progress_bar": False,
    "checkpoint_freq": 32,
    "checkpoint_seconds": 0,
    "eval_episodes": 2,
    "algo": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
    "policy_kwargs": {"wiring": {"type": "AutoNCP", "units": 8, "seed": 1}},
}
BC_TINY = [
    "--env",
    "tests.imitation_synthetic:TinyLane-v0",
    "--expert",
    "tests.imitation_synthetic:make_expert",
    "--set",
    "conv_channels=[4,4,4,4,4]",
    "--set",
    "features=8",
    "--set",
    "demo_episodes=2",
    "--set",
    "dagger_rounds=0",
    "--set",
    "epochs=1",
    "--set",
    "batch_size=2",
    "--threads",
    "1",
    "--eval-episodes",
    "0",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A trained PPO run (Counter-v0, 64 steps), an untrained imitation run, and a PPO config file."""
    root = tmp_path_factory.mktemp("runs")
    (root / "tiny.json").write_text(json.dumps(TINY_PPO))
    assert (
        main(
            [
                "train-ppo",
                "--env",
                "Counter-v0",
                "--policy",
                "cfc",
                "--timesteps",
                "64",
                "--out",
                str(root / "ppo"),
                "--config",
                str(root / "tiny.json"),
                "--no-progress",
            ]
        )
        == 0
    )
    write_untrained_bc_run(root / "bc", kind="cnn")
    return root


def _truncated_copy(src: Path, dst: Path, name: str) -> Path:
    """A copy of run ``src`` in ``dst`` whose file ``name`` (relative) is cut to a third of its size."""
    shutil.copytree(src, dst)
    path = dst / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    return dst


def _last_checkpoint(run: Path) -> str:
    return f"checkpoints/{sorted((run / 'checkpoints').glob('model_*_steps.zip'))[-1].name}"


# (id, argv with {runs}/{tmp} placeholders, what the message must say). "{tmp}/out" must not exist afterwards.
CASES = [
    (
        "ppo-timesteps-0",
        "train-ppo --env Counter-v0 --policy cfc --timesteps 0 --out {tmp}/out",
        "--timesteps must be a positive int",
    ),
    ("ppo-no-timesteps", "train-ppo --env Counter-v0 --policy cfc --out {tmp}/out", "--timesteps is required"),
    (
        "ppo-unknown-env",
        "train-ppo --env PendulumNoVel --policy cfc --timesteps 64 --out {tmp}/out",
        "did you mean PendulumNoVel-v1",
    ),
    (
        "ppo-n-envs-0",
        "train-ppo --env Counter-v0 --policy cfc --timesteps 64 --n-envs 0 --out {tmp}/out",
        "--n-envs must be a positive int",
    ),
    (
        "ppo-config-key-typo",
        "train-ppo --env Counter-v0 --policy cfc --timesteps 64 --config {tmp}/typo.json --out {tmp}/out",
        "typo.json: unknown key 'n_env'; did you mean n_envs",
    ),
    (
        "ppo-config-algo-typo",
        "train-ppo --env Counter-v0 --policy cfc --timesteps 64 --config {tmp}/algo.json --out {tmp}/out",
        "algo.json (merged over the presets): unknown algo key 'n_step'",
    ),
    (
        "ppo-config-missing",
        "train-ppo --env Counter-v0 --policy cfc --timesteps 64 --config {tmp}/nope.json --out {tmp}/out",
        "nope.json does not exist",
    ),
    ("ppo-resume-not-a-run", "train-ppo --resume --out {tmp}/out", "does not exist"),
    (
        "ppo-resume-truncated-checkpoint",
        "train-ppo --resume --out {tmp}/ppo_cut_ckpt --timesteps 128",
        "is truncated or corrupt",
    ),
    (
        "ppo-out-holds-a-run",
        "train-ppo --env Counter-v0 --policy cfc --timesteps 64 --out {runs}/ppo",
        "already holds a run",
    ),
    ("bc-set-type", "train-bc --out {tmp}/out --set epochs=abc", "--set epochs=abc: epochs expects an integer"),
    ("bc-set-unknown", "train-bc --out {tmp}/out --set epochz=3", "unknown setting 'epochz'; did you mean epochs"),
    ("bc-set-range", "train-bc --out {tmp}/out --set epochs=0", "epochs must be >= 1"),
    ("bc-set-syntax", "train-bc --out {tmp}/out --set epochs", "--set expects KEY=VALUE"),
    ("bc-unknown-env", "train-bc --out {tmp}/out --env LaneKeping-v0", "did you mean LaneKeeping-v0"),
    ("bc-resume-nothing", "train-bc --out {tmp}/out --resume", "nothing to resume"),
    ("bc-resume-a-ppo-run", "train-bc --out {runs}/ppo --resume", "is not an imitation run's config"),
    ("demo-resume-corrupt-config", "demo --out {tmp}/badcfg --resume", "badcfg/config.json is corrupt"),
    ("bc-env-kwargs-json", "train-bc --out {tmp}/out --env-kwargs {{bad", "--env-kwargs: not valid JSON"),
    ("demo-episodes-negative", "demo --out {tmp}/out --episodes -1", "--episodes must be a positive int, got -1"),
    ("demo-episodes-not-int", "demo --out {tmp}/out --episodes x", "argument --episodes: invalid int value"),
    ("demo-set-type", "demo --out {tmp}/out --set lr=fast", "--set lr=fast: lr expects a number"),
    ("evaluate-missing-run", "evaluate {tmp}/nothing", "run folder {tmp}/nothing does not exist"),
    ("evaluate-not-a-run", "evaluate {tmp}", "it has no config.json"),
    ("evaluate-seed-negative", "evaluate {runs}/ppo --seed -5", "--seed must be a non-negative int, got -5"),
    ("bc-seed-negative", "train-bc --out {tmp}/out --seed -1", "--seed must be a non-negative int"),
    ("evaluate-episodes-0", "evaluate {runs}/ppo --episodes 0", "--episodes must be a positive int"),
    ("evaluate-unknown-env", "evaluate {runs}/ppo --env Countr-v0", "did you mean Counter-v0"),
    ("evaluate-json-folder", "evaluate {runs}/ppo --json {tmp}/no/such/e.json", "the folder {tmp}/no/such does not"),
    ("evaluate-truncated-policy", "evaluate {tmp}/ppo_cut_policy --episodes 1", "ppo_cut_policy/policy.pt"),
    ("evaluate-truncated-pt", "evaluate {tmp}/bc_cut --episodes 1", "model.pt"),
    ("run-exported-episodes-0", "run-exported {tmp}/p.onnx --episodes 0", "--episodes must be a positive int"),
    ("run-exported-seed-negative", "run-exported {tmp}/p.onnx --seed -1", "--seed must be a non-negative int, got -1"),
    ("run-exported-threads-0", "run-exported {tmp}/p.onnx --threads 0", "--threads must be a positive int"),
    (
        "run-exported-json-folder",
        "run-exported {tmp}/p.onnx --json {tmp}/no/such/e.json",
        "the folder {tmp}/no/such does not",
    ),
    ("inspect-missing-run", "inspect {tmp}/nothing --out {tmp}/out", "does not exist"),
    (
        "inspect-episodes-negative",
        "inspect {runs}/ppo --episodes -1 --out {tmp}/out",
        "--episodes must be a positive int",
    ),
    ("inspect-no-neurons", "inspect {runs}/bc --out {tmp}/out", "error:"),
    ("robustness-missing-run", "robustness {tmp}/nothing --perturb obs_noise:0,0.1 --out {tmp}/out", "does not exist"),
    ("robustness-bad-perturb", "robustness {runs}/ppo --perturb noise:0.1 --out {tmp}/out", "valid names: obs_noise"),
    (
        "robustness-episodes-0",
        "robustness {runs}/ppo --perturb obs_noise:0,0.1 --episodes 0 --out {tmp}/out",
        "--episodes must be a positive int",
    ),
    (
        "robustness-nothing-evaluable",
        "robustness {tmp}/ppo_cut_policy --perturb obs_noise:0,0.1 --episodes 1 --out {tmp}/out",
        "ppo_cut_policy/policy.pt",
    ),
    (
        "robustness-nothing-fits",
        "robustness {runs}/ppo --env TinyLane-v0 --perturb obs_noise:0,0.1 --episodes 1 --quiet --out {tmp}/out",
        "no model could be evaluated (ppo: ValueError: the model does not fit",
    ),
]


@pytest.mark.parametrize("argv, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_exit_2_and_leaves_nothing(argv, expected, runs, tmp_path, capsys):
    (tmp_path / "typo.json").write_text(json.dumps({"n_env": 2}))
    (tmp_path / "algo.json").write_text(json.dumps({"algo": {"n_step": 3}}))
    if "ppo_cut_ckpt" in argv:
        _truncated_copy(runs / "ppo", tmp_path / "ppo_cut_ckpt", _last_checkpoint(runs / "ppo"))
    if "ppo_cut_policy" in argv:
        # policy.pt: what evaluate reads (never the zip)
        _truncated_copy(runs / "ppo", tmp_path / "ppo_cut_policy", "policy.pt")
    if "badcfg" in argv:
        (tmp_path / "badcfg").mkdir()
        (tmp_path / "badcfg" / "config.json").write_text('{"kind": "bc", "training": {"epochs": 3')
    if "bc_cut" in argv:
        _truncated_copy(runs / "bc", tmp_path / "bc_cut", "model.pt")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    runs_before = sorted(p.relative_to(runs) for p in runs.rglob("*"))
    capsys.readouterr()
    code = main(argv.format(runs=runs, tmp=tmp_path).split())
    captured = capsys.readouterr()
    command = argv.split()[0]
    lines = captured.err.splitlines()
    assert code == 2, captured
    assert len(lines) == 1 and lines[0].startswith(f"ncp-control {command}: error: "), captured.err
    assert expected.format(runs=runs, tmp=tmp_path) in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written or left
    assert sorted(p.relative_to(runs) for p in runs.rglob("*")) == runs_before


def test_the_installed_command_prints_one_line_without_traceback(tmp_path):
    """The real entry point (a new process, as a user runs it), not only main()."""
    done = subprocess.run(
        [sys.executable, "-m", "ncp_control.agents.cli", "evaluate", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"ncp-control evaluate: error: RUN_DIR {tmp_path / 'none'}: run folder "
        f"{tmp_path / 'none'} does not exist; give a folder written by train-ppo, "
        "train-rllib, train-bc or demo"
    ]


def test_a_failed_ppo_start_does_not_block_the_retry(runs, tmp_path, capsys):
    out = tmp_path / "run"
    flags = ["--env", "Counter-v0", "--policy", "cfc", "--timesteps", "32", "--out", str(out), "--no-progress"]
    assert main(["train-ppo", *flags, "--config", str(tmp_path / "none.json")]) == 2
    assert not out.exists()
    # a start killed before its first checkpoint leaves only config.json: a new start replaces it
    out.mkdir()
    (out / "config.json").write_text((runs / "ppo" / "config.json").read_text())
    assert main(["train-ppo", *flags, "--config", str(runs / "tiny.json")]) == 0
    assert json.loads((out / "config.json").read_text())["timesteps"] == 32
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("cfc on Counter-v0, 32 steps: mean return 4.00 ± 0.00 (sd) over 2 episodes")
    assert last.endswith(f"run folder {out}")


def test_a_failed_bc_start_does_not_block_the_retry(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train-bc", "--out", str(out), *BC_TINY, "--set", "expert=no_such_module:x"]) == 2
    assert not out.exists()
    assert main(["train-bc", "--out", str(out), *BC_TINY]) == 0
    assert (out / "model.pt").is_file()


def test_a_failure_inside_an_existing_output_folder_removes_only_what_it_wrote(tmp_path):
    from ncp_control.agents.commands.checks import removed_on_failure

    out = tmp_path / "out"
    (out / "old").mkdir(parents=True)
    (out / "old" / "keep.txt").write_text("mine")
    with pytest.raises(RuntimeError), removed_on_failure(out):
        (out / "new" / "deep").mkdir(parents=True)
        (out / "new" / "deep" / "table.csv").write_text("")
        (out / "old" / "half.json").write_text("{")
        raise RuntimeError("failed half way")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["old", "old/keep.txt"]
    with pytest.raises(RuntimeError), removed_on_failure(out, keep=lambda p: True):
        (out / "checkpoint.pt").write_text("")
        raise RuntimeError("failed after a checkpoint")
    assert (out / "checkpoint.pt").exists()  # work worth resuming stays
