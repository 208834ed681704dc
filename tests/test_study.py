"""Study specs, job work, records and summaries without Ray (the Ray runs are in test_study_ray.py)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from agents.run_io import write_json_atomic
from agents.study_jobs import evaluate_job, pack_folder, train_job, unpack_folder
from agents.study_spec import plan_study, read_spec, run_id
from agents.study_summary import read_records, summarize, write_records, write_summary

SMOKE = "agents/configs/studies/memory-smoke.json"


def tiny_ppo(timesteps: int = 512, **config) -> dict:
    """A PPO entry that trains in seconds: MLP on Pendulum-v1, 2 envs, 256-step rollouts."""
    return {"kind": "ppo", "env": "Pendulum-v1", "policies": ["mlp"], "seeds": [0], "timesteps": timesteps,
            "config": {"n_envs": 2, "eval_episodes": 1, "algo": {"n_steps": 128, "batch_size": 64, "n_epochs": 1},
                       **config}}


def test_shipped_specs_plan_into_named_jobs():
    plan = plan_study(read_spec(SMOKE))
    ids = [job.job_id for job in plan.train]
    assert ids == ["ppo-PendulumNoVel-v1-ltc-s0", "ppo-PendulumNoVel-v1-ltc-s1", "ppo-PendulumNoVel-v1-cfc-s0",
                   "ppo-PendulumNoVel-v1-cfc-s1", "bc-LaneKeeping-v0-ncp-ltc-s0"]
    # what train-ppo / train-bc would resolve: no progress bar in a task, the BC overrides applied
    assert plan.train[0].config["timesteps"] == 2048 and plan.train[0].config["progress_bar"] is False
    bc = plan.train[-1].config
    assert bc["epochs"] == 1 and bc["dagger_rounds"] == 0 and bc["env_kwargs"] == {"image_height": 32,
                                                                                   "image_width": 64}
    evaluations = [e.job_id for job in plan.train for e in plan.evaluations_of(job)]
    assert evaluations == [f"eval0-{i}" for i in ids[:4]] + [f"eval1-{ids[4]}"]
    noise = plan_study(read_spec("agents/configs/studies/ncp-noise.json"))
    assert {(j.model, j.seed) for j in noise.train} == {(m, s) for m in ("ncp-ltc", "ncp-cfc", "lstm", "cnn")
                                                        for s in (0, 1, 2)}
    pendulum = plan_study(read_spec("agents/configs/studies/pendulum-novel.json"))
    assert len(pendulum.train) == 20 and {j.config["timesteps"] for j in pendulum.train} == {100_000}


def test_mujoco_memory_study_is_thirty_runs_at_one_budget_evaluated_on_held_out_episodes():
    plan = plan_study(read_spec("agents/configs/studies/mujoco-novel.json"))
    novel = {(env, policy, seed) for env in ("HopperNoVel-v5", "HalfCheetahNoVel-v5")
             for policy in ("ltc", "cfc", "lstm", "mlp") for seed in (0, 1, 2)}
    reference = {(env, "mlp", seed) for env in ("Hopper-v5", "HalfCheetah-v5") for seed in (0, 1, 2)}
    assert len(plan.train) == 30 and {(j.env_id, j.model, j.seed) for j in plan.train} == novel | reference
    assert {j.config["timesteps"] for j in plan.train} == {150_000}
    # the MuJoCo presets, not the defaults: rl-zoo's discount, 4 envs
    assert {j.config["algo"]["gamma"] for j in plan.train} == {0.999, 0.98}
    assert {j.config["n_envs"] for j in plan.train} == {4}
    for job in plan.train:
        (evaluation,) = plan.evaluations_of(job)
        config = job.config
        assert evaluation.env_id == job.env_id and evaluation.episodes == 10
        # episodes no training env was reset with (seeds seed..seed+n_envs-1) and not train-ppo's own evaluation's
        assert evaluation.seed > job.seed + config["n_envs"]
        assert evaluation.seed >= config["eval_seed"] + config["eval_episodes"]


@pytest.mark.parametrize("change, message", [
    ({"train": []}, "empty"),
    ({"trian": []}, "unknown keys"),
    ({"train": [{"kind": "sac", "env": "Pendulum-v1", "seeds": [0]}]}, "'ppo' or 'bc'"),
    ({"train": [{**tiny_ppo(), "policies": ["gru"]}]}, "policy must be one of"),
    ({"train": [{**tiny_ppo(), "config": {"n_env": 2}}]}, "unknown config keys"),
    ({"train": [{"kind": "bc", "env": "LaneKeeping-v0", "models": ["ncp-ltc"], "seeds": [0],
                 "set": {"epoch": 1}}]}, "unknown training settings"),
    ({"train": [tiny_ppo(), tiny_ppo()]}, "names these runs twice"),
    ({"train": [{**tiny_ppo(), "seeds": [-1]}]}, "non-negative"),
    ({"evaluate": [{"env": "Pendulum-v1", "episodes": 2, "seed": 0, "perturb": ["pixel_nosie:0.1"]}]},
     "evaluate[0].perturb"),
    ({"cpus": 0}, "cpus must be a positive integer"),
])
def test_bad_specs_are_refused_before_anything_runs(change, message):
    spec = {"name": "bad", "train": [tiny_ppo()], **change}
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        plan_study(spec)


def test_run_ids_are_safe_folder_names():
    assert run_id("ppo", "mypkg.envs:Thing-v0", "mlp", 3) == "ppo-mypkg.envs_Thing-v0-mlp-s3"


def test_cli_reports_a_bad_spec_in_one_line(tmp_path, capsys):
    from agents.cli import main

    spec = tmp_path / "spec.json"
    spec.write_text("{not json")
    assert main(["study", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ncp-control study: error: study spec") and "not valid JSON" in err
    (tmp_path / "empty").mkdir()
    assert main(["study-report", str(tmp_path / "empty")]) == 2
    assert "is not a study folder" in capsys.readouterr().err


def test_missing_ray_names_the_extra(tmp_path, monkeypatch, capsys):
    from agents.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "x", "train": [tiny_ppo()]}))
    assert main(["study", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert 'pip install -e ".[ray]"' in capsys.readouterr().err


def test_ppo_job_killed_after_its_checkpoint_continues_from_it(tmp_path, monkeypatch):
    """The work a Ray task does: a fresh run killed after its first checkpoint; the next attempt resumes it."""
    import agents.study_jobs as jobs

    class Killed(Exception):
        pass

    def fake_exit(status):
        raise Killed(status)

    monkeypatch.setattr(jobs.os, "_exit", fake_exit)
    config = plan_study({"name": "t", "train": [tiny_ppo(512, checkpoint_freq=256)]}).train[0].config
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        train_job("ppo", config, run_dir, exit_after_checkpoint=True)
    assert not (run_dir / "model.zip").exists()
    result = train_job("ppo", config, run_dir, exit_after_checkpoint=True)  # not fresh: no kill
    assert result["resumed_from"] == 256
    assert json.loads((run_dir / "evaluation.json").read_text())["timesteps"] == 512
    rows = evaluate_job(run_dir, "Pendulum-v1", 2, 1000, ["obs_noise:0,0.5"])
    assert [(r["perturbation"], r["level"]) for r in rows] == [("obs_noise", 0.0), ("obs_noise", 0.5)]
    assert rows[0]["completion_rate"] is None and rows[0]["episodes"] == 2
    plain = evaluate_job(run_dir, "Pendulum-v1", 2, 1000)
    assert plain[0]["perturbation"] == "none" and plain[0]["mean_return"] == pytest.approx(rows[0]["mean_return"])


def test_a_folder_without_checkpoint_is_trained_from_scratch(tmp_path):
    config = plan_study({"name": "t", "train": [tiny_ppo(256)]}).train[0].config
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text('{"kind": "ppo", "env_')  # half-written by a killed attempt
    assert train_job("ppo", config, run_dir)["resumed_from"] is None
    assert (run_dir / "model.zip").is_file()


def test_run_folders_travel_as_archives(tmp_path):
    src = tmp_path / "src"
    (src / "checkpoints").mkdir(parents=True)
    (src / "config.json").write_text("{}")
    (src / "checkpoints" / "model_1_steps.zip").write_bytes(b"\x00\x01" * 1000)
    dest = tmp_path / "study" / "runs" / "r"
    dest.mkdir(parents=True)
    (dest / "stale.txt").write_text("from an earlier attempt")
    unpack_folder(pack_folder(src), dest)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "checkpoints", "checkpoints/model_1_steps.zip", "config.json"]
    assert (dest / "checkpoints" / "model_1_steps.zip").read_bytes() == b"\x00\x01" * 1000
    assert [p.name for p in dest.parent.iterdir()] == ["r"]  # no .partial / .old left


def test_archives_with_links_out_are_refused(tmp_path):
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("../escape.txt")
        archive.addfile(info, io.BytesIO(b""))
    with pytest.raises(tarfile.TarError):
        unpack_folder(buffer.getvalue(), tmp_path / "r")
    assert not (tmp_path / "escape.txt").exists()


def _fake_study(out, values_by_seed):
    """A finished study folder with one PPO model, 3 seeds, one evaluation entry with two levels."""
    spec = {"name": "fake", "train": [{**tiny_ppo(), "seeds": sorted(values_by_seed)}],
            "evaluate": [{"env": "Pendulum-v1", "episodes": 4, "seed": 1000, "perturb": ["obs_noise:0,0.1"]}]}
    out.mkdir()
    (out / "jobs").mkdir()
    write_json_atomic(out / "spec.json", spec)
    write_json_atomic(out / "study.json", {"sessions": [{"wall_seconds": 12.5}, {"wall_seconds": 7.5}]})
    records = []
    for seed, (clean, noisy) in values_by_seed.items():
        run = run_id("ppo", "Pendulum-v1", "mlp", seed)
        train = {"id": run, "status": "done", "attempts": 1, "seconds": 10.0,
                 "spec": {"type": "train", "kind": "ppo", "env": "Pendulum-v1", "model": "mlp", "seed": seed}}
        rows = [{"perturbation": "obs_noise", "level": level, "episodes": 4, "mean_return": value,
                 "crash_rate": 0.0, "completion_rate": None, "mean_abs_lateral_m": None}
                for level, value in ((0.0, clean), (0.1, noisy))]
        evaluation = {"id": f"eval0-{run}", "status": "done", "attempts": 2 if seed == 0 else 1, "seconds": 1.0,
                      "rows": rows, "spec": {"type": "evaluate", "run": f"runs/{run}", "evaluation": 0}}
        for record in (train, evaluation):
            write_json_atomic(out / "jobs" / f"{record['id']}.done", record)
            records.append(record)
    records.append({"id": "eval0-other", "status": "failed", "attempts": 3,
                    "spec": {"type": "evaluate", "run": "runs/none", "evaluation": 0}})
    write_records(out, [{**r, "status": "submitted"} for r in records[:-1]] + records[-1:])


def test_summary_is_a_t_interval_across_training_seeds(tmp_path):
    from scipy import stats

    values = {0: (-100.0, -300.0), 1: (-140.0, -260.0), 2: (-120.0, -410.0)}
    _fake_study(tmp_path / "s", values)
    summary = write_summary(tmp_path / "s")
    assert [(g["level"], g["n_seeds"]) for g in summary["groups"]] == [(0.0, 3), (0.1, 3)]
    noisy = summary["groups"][1]["metrics"]["mean_return"]
    x = np.array([v[1] for v in values.values()])
    half = stats.t.ppf(0.975, df=2) * x.std(ddof=1) / math.sqrt(3)  # n = seeds, not episodes
    assert noisy["per_seed"] == list(x)
    assert noisy["mean"] == pytest.approx(x.mean())
    assert (noisy["ci_low"], noisy["ci_high"]) == pytest.approx((x.mean() - half, x.mean() + half), rel=1e-9)
    assert "completion_rate" not in summary["groups"][0]["metrics"]
    # the .done markers win over a stale jobs.jsonl; the failed job is counted
    assert summary["jobs"] == {"total": 7, "done": 6, "failed": 1, "skipped": 0, "submitted": 0, "pending": 0,
                               "retried": 2}
    assert summary["wall_seconds"] == 20.0 and summary["job_seconds"] == 33.0
    csv_lines = (tmp_path / "s" / "summary.csv").read_text().splitlines()
    assert csv_lines[0].startswith("env,kind,model,evaluation,perturbation,level") and len(csv_lines) == 3
    assert "-300.0;-260.0;-410.0" in csv_lines[2]
    md = (tmp_path / "s" / "summary.md").read_text()
    assert "| ppo:mlp | obs_noise | 0.1 | 3 |" in md and "6/7 done, 1 failed" in md
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["groups"][1]["metrics"]["mean_return"]["mean"] \
        == pytest.approx(x.mean())
    assert summary["plots"] == ["summary-Pendulum-v1-e0-obs_noise.png"]
    assert (tmp_path / "s" / summary["plots"][0]).stat().st_size > 1000


def test_study_report_rerenders(tmp_path, capsys):
    from agents.cli import main

    _fake_study(tmp_path / "s", {0: (-1.0, -2.0)})
    assert main(["study-report", str(tmp_path / "s"), "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "| ppo:mlp | obs_noise | 0.0 | 1 | -1 |" in out  # one seed: a mean, no interval
    assert read_records(tmp_path / "s")["eval0-other"]["status"] == "failed"
    assert summarize(tmp_path / "s")["groups"][0]["metrics"]["mean_return"]["ci_low"] is None


def test_a_study_folder_is_not_overwritten_or_resumed_with_another_spec(tmp_path):
    from agents.study import run_study

    spec = {"name": "x", "train": [tiny_ppo()]}
    (tmp_path / "s").mkdir()
    write_json_atomic(tmp_path / "s" / "spec.json", spec)
    with pytest.raises(ValueError, match="already holds a study; pass --resume"):
        run_study(spec, tmp_path / "s")
    with pytest.raises(ValueError, match="holds a study of another spec"):
        run_study({**spec, "name": "y"}, tmp_path / "s", resume=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("")
    with pytest.raises(ValueError, match="nothing to resume"):
        run_study(spec, tmp_path / "other", resume=True)
    with pytest.raises(ValueError, match="storage must be one of"):
        run_study(spec, tmp_path / "new", storage="s3")


def test_sessions_are_recorded_as_they_go(tmp_path):
    from agents.study import record_session

    first = record_session(tmp_path, {"start": "a", "end": None, "wall_seconds": 0.0})
    record_session(tmp_path, {"start": "a", "end": None, "wall_seconds": 5.0}, first)  # then killed
    second = record_session(tmp_path, {"start": "b", "end": "c", "wall_seconds": 2.0})
    study = json.loads((tmp_path / "study.json").read_text())
    assert (first, second) == (0, 1) and [s["wall_seconds"] for s in study["sessions"]] == [5.0, 2.0]


def test_separation_verdict_names_only_pairs_whose_intervals_do_not_overlap():
    from agents.study_summary import separation_verdict

    def group(model, low, high, n_seeds=3):
        return {"env": "E", "perturbation": "p", "level": 0.1, "model": model, "n_seeds": n_seeds,
                "metrics": {"crash_rate": {"ci_low": low, "ci_high": high, "mean": (low + high) / 2}}}

    summary = {"groups": [group("a", 0.0, 0.2), group("b", 0.3, 0.5), group("c", 0.1, 0.4), group("d", 0.9, 1.0, 1)]}
    assert separation_verdict(summary, ["crash_rate"]) == ["E p 0.1 crash_rate: a < b"]
    summary["groups"][1] = group("b", 0.2, 0.5)  # touching ends overlap
    assert separation_verdict(summary, ["crash_rate"]) == ["E p 0.1 crash_rate: not separated"]
