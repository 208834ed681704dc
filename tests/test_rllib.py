"""RLlib: the NCP module against the policy it saves, the config, the command and its run folders (which every
command loads), an env runner killed on a two-node cluster, a killed driver resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.rllib")

import gymnasium as gym  # noqa: E402
import ray  # noqa: E402
import torch  # noqa: E402
from ray.rllib.core.columns import Columns  # noqa: E402

from ncp_control.agents import rllib  # noqa: E402
from ncp_control.agents.rllib.module import NCPRLModule  # noqa: E402
from ncp_control.agents.rllib.train import has_progress, rllib_checkpoints, train  # noqa: E402
from ncp_control.agents.runs.load import load_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: a tiny RLlib PPO for the env: 256 steps per iteration, one epoch
TINY = {
    "algo": {"train_batch_size": 256, "minibatch_size": 128, "num_epochs": 1},
    "envs_per_runner": 2,
    "eval_episodes": 2,
    "max_seq_len": 8,
}


def tiny_config(env="PendulumNoVel-v1", policy="cfc", timesteps=512, **overrides):
    from ncp_control.agents.ppo import finalize_config

    config = rllib.resolve_config(env, policy, timesteps=timesteps, overrides={**TINY, **overrides})
    config["policy_kwargs"] = finalize_config(rllib.ppo_view(config))["policy_kwargs"]
    return config


def module_for(config, env_id="PendulumNoVel-v1"):
    env = gym.make(env_id)
    module = NCPRLModule(
        observation_space=env.observation_space,
        action_space=env.action_space,
        model_config={"policy": config["policy"], "policy_kwargs": config["policy_kwargs"], "max_seq_len": 8},
    )
    env.close()
    return module


def batch_of(module, obs, state=None):
    if state is None:
        batch = (next(iter(obs.values())) if isinstance(obs, dict) else obs).shape[0]
        state = {k: torch.as_tensor(v).unsqueeze(0).repeat(batch, 1) for k, v in module.get_initial_state().items()}
    return {Columns.OBS: obs, Columns.STATE_IN: state}


@pytest.mark.parametrize("policy", ["ltc", "cfc"])
def test_module_acts_as_the_policy_it_saves(policy):
    """The module's action means over a sequence equal the saved SB3 policy's deterministic actions stepped one
    observation at a time (the predictor every command uses), and a sequence cut in two with the state carried
    equals the whole; the recurrent critic's state moves too."""
    torch.manual_seed(0)
    config = tiny_config(policy=policy)
    module = module_for(config)
    obs = torch.randn(3, 10, module.observation_space.shape[0])
    with torch.no_grad():
        whole = module.forward_inference(batch_of(module, obs))
        first = module.forward_inference(batch_of(module, obs[:, :4]))
        second = module.forward_inference(batch_of(module, obs[:, 4:], first[Columns.STATE_OUT]))
        values = module.compute_values(batch_of(module, obs))
    logits = whole[Columns.ACTION_DIST_INPUTS]
    assert logits.shape == (3, 10, 2)  # mean and log std of the one torque
    assert set(whole[Columns.STATE_OUT]) == {"actor", "critic"}  # both presets use a recurrent critic
    assert values.shape == (3, 10)
    split = torch.cat([first[Columns.ACTION_DIST_INPUTS], second[Columns.ACTION_DIST_INPUTS]], dim=1)
    torch.testing.assert_close(split, logits, rtol=1e-5, atol=1e-5)
    # the same weights in the SB3 policy, stepped as evaluate steps it
    policy_net = module.policy
    policy_net.set_training_mode(False)
    state, starts = None, np.ones(3, dtype=bool)
    for t in range(10):
        action, state = policy_net.predict(obs[:, t].numpy(), state=state, episode_start=starts, deterministic=True)
        starts = np.zeros(3, dtype=bool)
        expected = np.clip(logits[:, t, :1].numpy(), -2.0, 2.0)
        np.testing.assert_allclose(action, expected, rtol=1e-4, atol=1e-5)


def test_the_module_reads_each_steps_elapsed_time():
    """With elapsed_time="observation" the module takes the Dict observation of ElapsedTimeObservation and passes
    each step's own elapsed time to the cell: the actions equal the SB3 policy's on the same dict observations and
    change when the time does."""
    from ncp_control.policies.elapsed_time import ElapsedTimeObservation

    torch.manual_seed(0)
    config = tiny_config(policy="ltc", elapsed_time="observation")
    env = ElapsedTimeObservation(gym.make("PendulumNoVel-v1"), dt=0.05)
    module = NCPRLModule(
        observation_space=env.observation_space,
        action_space=env.action_space,
        model_config={"policy": "ltc", "policy_kwargs": config["policy_kwargs"], "max_seq_len": 8},
    )
    env.close()
    x = torch.randn(2, 6, 3)
    seconds = torch.full((2, 6, 1), 0.05)
    irregular = seconds.clone()
    irregular[:, 2:] = 0.4
    with torch.no_grad():
        regular = module.forward_inference(batch_of(module, {"observation": x, "elapsed_time": seconds}))
        late = module.forward_inference(batch_of(module, {"observation": x, "elapsed_time": irregular}))
    means, late_means = regular[Columns.ACTION_DIST_INPUTS][..., :1], late[Columns.ACTION_DIST_INPUTS][..., :1]
    torch.testing.assert_close(means[:, :2], late_means[:, :2])
    assert (means[:, 2:] - late_means[:, 2:]).abs().max() > 1e-3
    policy_net = module.policy
    policy_net.set_training_mode(False)
    state, starts = None, np.ones(2, dtype=bool)
    for t in range(6):
        obs = {"observation": x[:, t].numpy(), "elapsed_time": irregular[:, t].numpy()}
        action, state = policy_net.predict(obs, state=state, episode_start=starts, deterministic=True)
        starts = np.zeros(2, dtype=bool)
        np.testing.assert_allclose(action, np.clip(late_means[:, t].numpy(), -2, 2), rtol=1e-4, atol=1e-5)


def test_envs_of_different_runners_play_different_episodes(monkeypatch):
    """RLlib seeds runner w's env i with seed + w + i: runner 1's env 1 and runner 2's env 0 both get seed + 2.
    Our envs mix in the runner and their number, so those two differ, and a rerun repeats them."""
    import itertools

    from ray.rllib.env.env_context import EnvContext

    from ncp_control.agents.rllib import train as rllib_train

    env_config = {"env_id": "PendulumNoVel-v1", "env_kwargs": {}, "elapsed_time": "constant", "dt": 0.05}
    env_config.update(perturb=[], seed=0)

    def first_observations():
        monkeypatch.setattr(rllib_train, "_ENVS_MADE", itertools.count())  # a fresh runner process
        runner_1 = [rllib_train.make_env(EnvContext(env_config, worker_index=1)) for _ in range(2)]
        monkeypatch.setattr(rllib_train, "_ENVS_MADE", itertools.count())
        runner_2 = [rllib_train.make_env(EnvContext(env_config, worker_index=2)) for _ in range(2)]
        return runner_1[1].reset(seed=2)[0], runner_2[0].reset(seed=2)[0]

    a, b = first_observations()
    assert not np.allclose(a, b)
    again_a, again_b = first_observations()
    np.testing.assert_array_equal(a, again_a)
    np.testing.assert_array_equal(b, again_b)


def test_config_takes_train_ppos_presets_in_rllibs_names():
    config = rllib.resolve_config("PendulumNoVel-v1", "ltc", timesteps=1000)
    assert config["kind"] == "rllib"
    assert config["algo"]["lr"] == 0.001 and config["algo"]["gamma"] == 0.9 and config["algo"]["lambda_"] == 0.95
    assert config["algo"]["train_batch_size"] == 1024 * 4 and config["envs_per_runner"] == 4
    assert config["algo"]["use_kl_loss"] is False
    assert config["policy_kwargs"]["cell"] == "ltc" and config["policy_kwargs"]["critic"] == "recurrent"
    assert "use_sde" not in config["algo"]
    with pytest.raises(ValueError, match="RLlib's name for 'learning_rate' is 'lr'"):
        rllib.resolve_config("PendulumNoVel-v1", "ltc", timesteps=1000, overrides={"algo": {"learning_rate": 1.0}})
    with pytest.raises(ValueError, match="gSDE"):
        rllib.resolve_config(
            "PendulumNoVel-v1", "cfc", timesteps=1000, overrides={"policy_kwargs": {"squash_output": True}}
        )
    with pytest.raises(ValueError, match="policy"):
        rllib.resolve_config("PendulumNoVel-v1", "lstm", timesteps=1000)
    with pytest.raises(ValueError, match="num_epochs.* must be int"):
        rllib.resolve_config("PendulumNoVel-v1", "cfc", timesteps=1000, overrides={"algo": {"num_epochs": 1.5}})
    for algo, message in (
        ({"gamma": 1.5}, "gamma"),
        ({"lr": 0.0}, "lr"),
        ({"num_epochs": 0}, "num_epochs"),
        ({"minibatch_size": 8192}, "larger than train_batch_size"),
    ):
        with pytest.raises(ValueError, match=message):
            rllib.resolve_config("PendulumNoVel-v1", "cfc", timesteps=1000, overrides={"algo": algo})
    with pytest.raises(ValueError, match="critc_units"):  # a misspelt policy keyword, before Ray starts
        rllib.resolve_config("PendulumNoVel-v1", "cfc", timesteps=1000, overrides={"policy_kwargs": {"critc_units": 8}})


def cli(*args, timeout=600, **kwargs):
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    return subprocess.run(
        [sys.executable, "-m", "ncp_control.agents.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **kwargs,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--policy", "cfc", "--timesteps", "10", "--out", "x"], "--env is required"),
        (["--env", "PendulumNoVel-v1", "--policy", "cfc", "--timesteps", "10"], "--out RUN_DIR is required"),
        (["--env", "Nope-v0", "--policy", "cfc", "--timesteps", "10", "--out", "x"], "Nope-v0"),
        (["--env", "PendulumNoVel-v1", "--policy", "cfc", "--timesteps", "0", "--out", "x"], "--timesteps"),
        (
            [
                "--env",
                "PendulumNoVel-v1",
                "--policy",
                "cfc",
                "--timesteps",
                "9",
                "--out",
                "x",
                "--address",
                "auto",
                "--num-cpus",
                "2",
            ],
            "--num-cpus",
        ),
        (["--resume", "--out", "nowhere"], "nowhere"),
        (["--resume", "--out", "x", "--policy", "ltc"], "a resumed run keeps its own"),
        (
            [
                "--env",
                "PendulumNoVel-v1",
                "--policy",
                "cfc",
                "--timesteps",
                "9",
                "--out",
                "x",
                "--env-runners",
                "3",
                "--num-cpus",
                "2",
            ],
            "need one CPU each",
        ),
    ],
)
def test_bad_command_lines_are_one_line_errors(args, message, tmp_path):
    result = cli("train-rllib", *args, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ncp-control train-rllib: error:") and message in lines[0]
    assert not (tmp_path / "x").exists()


class TestLocalRay:
    @pytest.fixture(scope="class")
    @classmethod
    def local_ray(cls):
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        yield
        ray.shutdown()

    @pytest.fixture(scope="class")
    @classmethod
    def trained(cls, local_ray, tmp_path_factory):
        out = tmp_path_factory.mktemp("rllib") / "run"
        lines: list[str] = []
        result = train(tiny_config(policy="ltc", timesteps=512), out, write=lines.append, progress_seconds=0)
        return out, result, lines

    def test_the_run_folder_loads_in_every_command(self, trained, tmp_path):
        out, result, lines = trained
        assert result["timesteps"] == 512 and len(result["returns"]) == 2
        assert lines[-1].startswith("steps 512/512 (100%)")
        assert {"config.json", "policy.pt", "evaluation.json", "tensorboard", "checkpoints"} <= {
            p.name for p in out.iterdir()
        }
        assert [s for s, _ in rllib_checkpoints(out)] == [512]
        loaded = load_run(out)
        assert loaded.config["kind"] == "rllib"
        from ncp_control.agents.evaluation.episodes import evaluate

        again = evaluate(loaded.predictor, "PendulumNoVel-v1", 2, loaded.config["eval_seed"])
        np.testing.assert_allclose(again["returns"], result["returns"], rtol=1e-6)
        for args in (
            ["evaluate", str(out), "--episodes", "1"],
            ["inspect", str(out), "--out", str(tmp_path / "insp"), "--max-steps", "20", "--closed-loop-episodes", "0"],
            ["export", str(out), "--out", str(tmp_path / "actor.onnx")],
            ["robustness", str(out), "--perturb", "obs_noise:0.1", "--episodes", "1", "--out", str(tmp_path / "rob")],
        ):
            done = cli(*args)
            assert done.returncode == 0, (args, done.stderr[-2000:])
        assert (tmp_path / "actor.onnx").is_file() and (tmp_path / "rob" / "robustness.json").is_file()

    def test_the_learner_steps_the_policys_own_optimiser(self, local_ray):
        """RLlib's learner steps the SB3 policy's optimiser: the LTC cell's parameters in their own group at the
        preset's ltc_lr_scale (10), SB3's Adam eps, RLlib's learning rate written into every group."""
        from ncp_control.agents.rllib.train import algorithm_config

        algo = algorithm_config(tiny_config(policy="ltc")).build_algo()
        try:
            learner = algo.learner_group._learner  # the local learner (num_learners=0)
            optimizer = learner.get_optimizer()
            module = learner.module["default_policy"]
        finally:
            algo.stop()
        assert optimizer is module.policy.optimizer
        assert [g.get("lr_scale") for g in optimizer.param_groups] == [None, 10.0]
        assert all(g["lr"] == 0.001 and g["eps"] == 1e-5 for g in optimizer.param_groups)
        cell = {id(p) for p in module.policy.actor_core.cell.parameters()}
        assert {id(p) for p in optimizer.param_groups[1]["params"]} == cell

    def test_a_seeded_run_is_reproduced(self, trained, tmp_path):
        """The same config and seed (one env runner) give the same weights, bit for bit."""
        train(tiny_config(policy="ltc", timesteps=512), tmp_path / "again", write=lambda line: None)
        first = torch.load(trained[0] / "policy.pt", weights_only=True)["state_dict"]
        again = torch.load(tmp_path / "again" / "policy.pt", weights_only=True)["state_dict"]
        assert first.keys() == again.keys()
        for name in first:
            assert torch.equal(first[name], again[name]), name

    def test_loading_runs_nothing_from_the_folder(self, trained, tmp_path):
        """A pickle that runs ``touch MARKER`` when loaded, planted in each file of the run folder in turn (RLlib's
        checkpoint pickles included): ``evaluate`` never runs it; it refuses with one line naming the file or,
        for a file it does not read, succeeds."""
        import pickle
        import shlex
        import shutil

        from ncp_control.agents.cli import main

        class Evil:
            def __reduce__(self):
                return os.system, (f"touch {shlex.quote(str(marker))}",)

        marker = tmp_path / "MARKER"
        files = sorted(p.relative_to(trained[0]) for p in trained[0].rglob("*") if p.is_file())
        files = [f for f in files if f.suffix in (".pt", ".pkl") or f.name == "state.pkl"]
        assert any(f.suffix == ".pkl" for f in files) and Path("policy.pt") in files
        for name in files:
            run = tmp_path / "run"
            shutil.rmtree(run, ignore_errors=True)
            shutil.copytree(trained[0], run)
            if name.suffix == ".pt":
                torch.save({"state_dict": Evil()}, run / name)
            else:
                (run / name).write_bytes(pickle.dumps(Evil()))
            try:
                status = main(["evaluate", str(run), "--episodes", "1"])
            except SystemExit as exit:
                status = exit.code
            assert status in (0, 2), name
            assert not marker.exists(), f"loading ran code planted in {name}"

    def test_resume_continues_to_a_new_total(self, trained, tmp_path):
        import shutil

        out = tmp_path / "run"
        shutil.copytree(trained[0], out)
        config = json.loads((out / "config.json").read_text())
        config["timesteps"] = 768
        lines: list[str] = []
        iterations: list[int] = []
        result = train(
            config,
            out,
            resume=True,
            write=lines.append,
            progress_seconds=0,
            on_iteration=lambda algo, r: iterations.append(r["num_env_steps_sampled_lifetime"]),
        )
        assert lines[0] == "resumed from rllib_512_steps at 512 steps"
        assert iterations == [768]  # one iteration: RLlib's step count was restored with the checkpoint
        assert result["timesteps"] == 768 and [s for s, _ in rllib_checkpoints(out)] == [768]
        assert json.loads((out / "config.json").read_text())["timesteps"] == 768  # a later --resume keeps it

    def test_refusals_before_any_work(self, local_ray, tmp_path):
        """No complete checkpoint to resume from, a folder that holds a run already, more env runners than the
        cluster has CPUs: one-line errors, before RLlib builds anything."""
        config = tiny_config()
        (tmp_path / "run").mkdir()
        with pytest.raises(ValueError, match="no complete RLlib checkpoint"):
            train(config, tmp_path / "run", resume=True, write=lambda line: None)
        (tmp_path / "run" / "config.json").write_text("{}")
        with pytest.raises(ValueError, match="already holds a run"):
            train(config, tmp_path / "run", write=lambda line: None)
        with pytest.raises(ValueError, match="3 env runners need one CPU each, the Ray cluster has 2"):
            train(tiny_config(env_runners=3), tmp_path / "other", write=lambda line: None)


class TestTwoNodeCluster:
    @pytest.fixture(scope="class")
    @classmethod
    def cluster(cls):
        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
        yield cluster
        ray.shutdown()
        cluster.shutdown()

    def test_env_runners_on_both_nodes_and_a_killed_one_restarts(self, cluster, tmp_path):
        """Two env runners, one CPU each on two one-CPU nodes: one per node. After the first iteration one is
        killed (SIGKILL); RLlib restarts it (a new process), both sample again, and training reaches its total."""
        seen: dict = {"nodes": set(), "after": []}

        def on_iteration(algo, result):
            group = algo.env_runner_group
            pids = group.foreach_env_runner(lambda runner: os.getpid(), local_env_runner=False)
            seen["nodes"].update(
                group.foreach_env_runner(lambda runner: ray.get_runtime_context().get_node_id(), local_env_runner=False)
            )
            if "killed" not in seen:
                os.kill(pids[0], signal.SIGKILL)
                seen["killed"], seen["before"] = pids[0], set(pids)
            else:
                seen["after"].append((set(pids), group.num_remote_worker_restarts()))

        config = tiny_config(timesteps=256 * 24, env_runners=2)
        result = train(config, tmp_path / "run", write=lambda line: None, on_iteration=on_iteration)
        alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert seen["nodes"] == alive and len(alive) == 2
        pids, restarts = seen["after"][-1]
        assert len(pids) == 2 and seen["killed"] not in pids and len(pids & seen["before"]) == 1, seen
        assert restarts >= 1
        assert result["timesteps"] >= 256 * 24


def test_a_killed_driver_is_resumed(tmp_path):
    """SIGKILL the command (and the local Ray it started) after its first checkpoint; --resume finishes."""
    out = tmp_path / "run"
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    args = [
        "train-rllib",
        "--env",
        "PendulumNoVel-v1",
        "--policy",
        "cfc",
        "--timesteps",
        "4096",
        "--out",
        str(out),
        "--num-cpus",
        "2",
        "--config",
        str(tmp_path / "tiny.json"),
        "--checkpoint-seconds",
        "0",
    ]
    (tmp_path / "tiny.json").write_text(json.dumps({**TINY, "checkpoint_freq": 256}))
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    driver = subprocess.Popen(
        [sys.executable, "-m", "ncp_control.agents.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not rllib_checkpoints(out) and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.5)
        assert rllib_checkpoints(out), "no checkpoint before the kill"
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    assert has_progress(out) and not (out / "evaluation.json").exists()
    done = cli("train-rllib", "--resume", "--out", str(out), "--num-cpus", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed from rllib_" in done.stdout
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("cfc on PendulumNoVel-v1 (RLlib), 4096 steps: mean return"), last
