"""Studies on a real Ray: the shipped example on a two-node cluster, 1 vs 2 workers, a worker killed mid-job, the
driver killed and resumed. Ray starts once per class (it takes 10-30 s on a loaded 2-core machine)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from ncp_control.agents.study.driver import FAULT_ENV, run_study  # noqa: E402
from ncp_control.agents.study.spec import read_spec  # noqa: E402
from ncp_control.agents.study.summary import read_records  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def tiny_spec(name: str, seeds=(0, 1), timesteps: int = 512, **config) -> dict:
    """MLP PPO on Pendulum-v1 (seconds per run) and an evaluation with an observation-noise sweep."""
    return {
        "name": name,
        "train": [
            {
                "kind": "ppo",
                "env": "Pendulum-v1",
                "policies": ["mlp"],
                "seeds": list(seeds),
                "timesteps": timesteps,
                "config": {
                    "n_envs": 2,
                    "eval_episodes": 1,
                    "checkpoint_freq": 256,
                    "algo": {"n_steps": 128, "batch_size": 64, "n_epochs": 1},
                    **config,
                },
            }
        ],
        "evaluate": [{"env": "Pendulum-v1", "episodes": 2, "seed": 1000, "perturb": ["obs_noise:0,0.3"]}],
    }


def per_run_metrics(out: Path) -> dict:
    return {r["id"]: r["rows"] for r in read_records(out).values() if r["spec"]["type"] == "evaluate"}


#: per-run metrics of the tiny study on two workers, compared with one worker in TestLocalRay
TWO_WORKERS: dict = {}


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

    def test_the_shipped_example_runs_on_both_nodes(self, cluster, tmp_path):
        out = tmp_path / "smoke"
        summary = run_study(read_spec(ROOT / "agents/configs/studies/memory-smoke.json"), out, storage="transfer")
        records = read_records(out)
        assert summary["jobs"]["done"] == summary["jobs"]["total"] == 10
        assert {r["node_id"] for r in records.values()} == {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        for run in ("ppo-PendulumNoVel-v1-ltc-s0", "ppo-PendulumNoVel-v1-cfc-s1"):
            assert {"config.json", "model.zip", "vecnormalize.pkl", "evaluation.json"} <= {
                p.name for p in (out / "runs" / run).iterdir()
            }
        assert {"config.json", "model.pt", "progress.jsonl", "demonstrations"} <= {
            p.name for p in (out / "runs" / "bc-LaneKeeping-v0-ncp-ltc-s0").iterdir()
        }
        groups = {(g["env"], g["model"], g["level"]): g for g in summary["groups"]}
        assert groups["PendulumNoVel-v1", "ltc", None]["n_seeds"] == 2
        assert set(groups["LaneKeeping-v0", "ncp-ltc", 0.2]["metrics"]) == {
            "mean_return",
            "completion_rate",
            "crash_rate",
            "mean_abs_lateral_m",
        }
        assert (out / ".done").is_file() and (out / "summary.md").is_file()

    def test_tiny_study_on_two_workers(self, cluster, tmp_path):
        out = tmp_path / "two"
        run_study(tiny_spec("repro"), out, storage="transfer")
        TWO_WORKERS.update(per_run_metrics(out))
        assert len(TWO_WORKERS) == 2


class TestLocalRay:
    @pytest.fixture(scope="class")
    @classmethod
    def local(cls):
        ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        yield
        ray.shutdown()

    def test_one_worker_gives_the_same_per_run_metrics(self, local, tmp_path):
        if not TWO_WORKERS:
            pytest.skip("needs test_tiny_study_on_two_workers")
        out = tmp_path / "one"
        run_study(tiny_spec("repro"), out)
        assert per_run_metrics(out) == TWO_WORKERS

    def test_a_killed_worker_is_retried_from_its_checkpoint(self, local, tmp_path, monkeypatch):
        job = "ppo-Pendulum-v1-mlp-s0"
        monkeypatch.setenv(FAULT_ENV, job)
        out = tmp_path / "fault"
        summary = run_study(tiny_spec("fault", seeds=(0,), timesteps=1024), out)
        record = read_records(out)[job]
        assert summary["jobs"]["done"] == 2 and record["status"] == "done"
        assert record["attempts"] == 2 and record["resumed_from"] == 256
        assert json.loads((out / "runs" / job / "evaluation.json").read_text())["timesteps"] == 1024

    def test_runs_from_another_study_are_evaluated_not_trained_again(self, local, tmp_path):
        first = tmp_path / "first"
        run_study(tiny_spec("first", seeds=(0,)), first)
        lines = []
        summary = run_study(
            tiny_spec("second", seeds=(0, 1)), tmp_path / "second", runs_from=[first], progress=lines.append
        )
        records = read_records(tmp_path / "second")
        assert summary["jobs"]["done"] == summary["jobs"]["total"] == 4
        assert records["ppo-Pendulum-v1-mlp-s0"]["reused_from"] == str(first.resolve())
        assert "reused_from" not in records["ppo-Pendulum-v1-mlp-s1"]
        assert summary["reused"] == {"ppo-Pendulum-v1-mlp-s0": str(first.resolve())}
        assert "ppo-Pendulum-v1-mlp-s0: submitted" not in lines and "ppo-Pendulum-v1-mlp-s1: submitted" in lines
        # the reused run's evaluation ran here, on the copy, and matches the first study's
        assert (
            per_run_metrics(tmp_path / "second")["eval0-ppo-Pendulum-v1-mlp-s0"]
            == per_run_metrics(first)["eval0-ppo-Pendulum-v1-mlp-s0"]
        )

    def test_fine_tuning_jobs_run_after_their_imitation_runs_and_are_compared_with_them(self, local, tmp_path):
        from test_study import fine_tuning_spec

        spec = fine_tuning_spec(seeds=(0, 1))
        spec["evaluate"] = [{"env": "LaneKeeping-v0", "episodes": 1, "seed": 1000000}]
        out = tmp_path / "ft"
        lines = []
        summary = run_study(spec, out, storage="transfer", progress=lines.append)  # the imitation runs travel
        assert summary["jobs"]["done"] == summary["jobs"]["total"] == 8
        records = read_records(out)
        for seed in (0, 1):
            bc, ft = f"bc-LaneKeeping-v0-ncp-ltc-s{seed}", f"ppo-LaneKeeping-v0-ft-ncp-ltc-s{seed}"
            assert lines.index(f"{ft}: submitted") > lines.index(f"{bc}: done on {records[bc]['hostname']} (attempt 1)")
            assert records[ft]["spec"]["init_from"] == f"runs/{bc}"
            config = json.loads((out / "runs" / ft / "config.json").read_text())
            # the copy its task unpacked (one per job: ft and ft-noise jobs of one run may run side by side), removed
            assert config["init_from"].endswith(f"init/{ft}/{bc}") and not Path(config["init_from"]).exists()
        pairs = {(c["a"], c["b"]) for c in summary["comparisons"] if c["metric"] == "mean_return"}
        assert pairs == {("ft:ncp-ltc", "ncp-ltc")}

    def test_a_killed_driver_resumes_without_rerunning_finished_jobs(self, local, tmp_path):
        spec = tiny_spec("driver")
        spec_path = tmp_path / "spec.json"
        spec_path.write_text(json.dumps(spec))
        out = tmp_path / "study"
        driver = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ncp_control.agents.cli",
                "study",
                str(spec_path),
                "--out",
                str(out),
                "--num-cpus",
                "1",
                "--quiet",
            ],
            cwd=ROOT,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        first = out / "jobs" / "ppo-Pendulum-v1-mlp-s0.done"
        try:
            deadline = time.time() + 240
            while not first.exists() and time.time() < deadline and driver.poll() is None:
                time.sleep(0.2)
            assert first.exists(), "the driver finished no job in time"
        finally:
            os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
            driver.wait()
        done_before = {p.name: p.read_bytes() for p in (out / "jobs").glob("*.done")}
        assert 1 <= len(done_before) < 4
        model = out / "runs" / "ppo-Pendulum-v1-mlp-s0" / "model.zip"
        mtime = model.stat().st_mtime_ns
        lines = []
        summary = run_study(spec, out, resume=True, progress=lines.append)
        assert summary["jobs"]["done"] == 4 and (out / ".done").is_file()
        assert "ppo-Pendulum-v1-mlp-s0: done earlier, skipped" in lines
        assert model.stat().st_mtime_ns == mtime
        for name, content in done_before.items():
            assert (out / "jobs" / name).read_bytes() == content  # finished jobs untouched
