"""Study specs, job work, records and summaries without Ray (the Ray runs are in test_study_ray.py)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from ncp_control.agents.runs.files import write_json_atomic
from ncp_control.agents.study.jobs import evaluate_job, pack_folder, train_job, unpack_folder
from ncp_control.agents.study.spec import plan_study, read_spec, run_id
from ncp_control.agents.study.summary import read_records, summarize, write_records, write_summary

SMOKE = "agents/configs/studies/memory-smoke.json"
EVAL = {"env": "Pendulum-v1", "episodes": 2, "seed": 1000}


def tiny_ppo(timesteps: int = 512, **config) -> dict:
    """A PPO entry that trains in seconds: MLP on Pendulum-v1, 2 envs, 256-step rollouts."""
    return {
        "kind": "ppo",
        "env": "Pendulum-v1",
        "policies": ["mlp"],
        "seeds": [0],
        "timesteps": timesteps,
        "config": {
            "n_envs": 2,
            "eval_episodes": 1,
            "algo": {"n_steps": 128, "batch_size": 64, "n_epochs": 1},
            **config,
        },
    }


def test_shipped_specs_plan_into_named_jobs():
    plan = plan_study(read_spec(SMOKE))
    ids = [job.job_id for job in plan.train]
    assert ids == [
        "ppo-PendulumNoVel-v1-ltc-s0",
        "ppo-PendulumNoVel-v1-ltc-s1",
        "ppo-PendulumNoVel-v1-cfc-s0",
        "ppo-PendulumNoVel-v1-cfc-s1",
        "bc-LaneKeeping-v0-ncp-ltc-s0",
    ]
    # what train-ppo / train-bc would resolve: no progress bar in a task, the BC overrides applied
    assert plan.train[0].config["timesteps"] == 2048 and plan.train[0].config["progress_bar"] is False
    bc = plan.train[-1].config
    assert (
        bc["epochs"] == 1 and bc["dagger_rounds"] == 0 and bc["env_kwargs"] == {"image_height": 32, "image_width": 64}
    )
    evaluations = [e.job_id for job in plan.train for e in plan.evaluations_of(job)]
    assert evaluations == [f"eval0-{i}" for i in ids[:4]] + [f"eval1-{ids[4]}"]
    noise = plan_study(read_spec("agents/configs/studies/ncp-noise.json"))
    assert {(j.model, j.seed) for j in noise.train} == {
        (m, s) for m in ("ncp-ltc", "ncp-cfc", "lstm", "cnn") for s in (0, 1, 2)
    }
    pendulum = plan_study(read_spec("agents/configs/studies/pendulum-novel.json"))
    assert len(pendulum.train) == 20 and {j.config["timesteps"] for j in pendulum.train} == {100_000}


def test_mujoco_mismatch_study_is_forty_runs_seed_by_seed_under_mass_and_friction():
    plan = plan_study(read_spec("agents/configs/studies/mujoco-mismatch.json"))
    runs = {
        (env, policy, seed)
        for env in ("HopperNoVel-v5", "HalfCheetahNoVel-v5")
        for policy in ("ltc", "cfc", "lstm", "mlp")
        for seed in range(5)
    }
    assert len(plan.train) == 40 and {(j.env_id, j.model, j.seed) for j in plan.train} == runs
    assert [j.seed for j in plan.train] == sorted(j.seed for j in plan.train)
    assert {j.config["timesteps"] for j in plan.train} == {150_000}
    for job in plan.train:
        (evaluation,) = plan.evaluations_of(job)
        assert evaluation.env_id == job.env_id and evaluation.perturb == ("mass:0.5,0.75,1,1.5,2", "friction:0.5,1,2")


def test_camera_studies_fine_tune_the_noise_studys_imitation_runs_and_train_the_papers_ncp_from_pixels():
    from ncp_control.agents import ppo
    from ncp_control.policies.recurrent_ppo import build_wiring

    plan = plan_study(read_spec("agents/configs/studies/camera-finetune.json"))
    noise = {j.job_id: j for j in plan_study(read_spec("agents/configs/studies/ncp-noise-10.json")).train}
    imitation = [j for j in plan.train if j.kind == "bc"]
    assert len(imitation) == 20 and all(j.config == noise[j.job_id].config for j in imitation)  # --runs-from
    tuned = [j for j in plan.train if j.kind == "ppo"]
    assert len(tuned) == 40 and {j.tag for j in tuned} == {"ft", "ft-noise"}
    for job in tuned:
        assert job.init_job == run_id("bc", "LaneKeeping-v0", job.model, job.seed)
        assert job.config["policy_kwargs"]["features_extractor_kwargs"] == {"frozen": True}
        assert job.config.get("perturb", []) == (["pixel_noise:0.2"] if job.tag == "ft-noise" else [])
        assert [e.condition for e in plan.evaluations_of(job)] == ["noise", "looks"]

    scratch = plan_study(read_spec("agents/configs/studies/camera-ppo-scratch.json"))
    assert {(j.model, j.seed) for j in scratch.train} == {(p, s) for p in ("ltc", "cfc") for s in range(3)}
    wiring = build_wiring(ppo.finalize_config(scratch.train[0].config)["policy_kwargs"]["wiring"], 1)
    assert (wiring.units, wiring.num_layers) == (19, 3)  # the paper's 12 inter, 6 command, 1 motor neuron


def test_the_ten_seed_and_paper_preset_specs_extend_the_noise_protocol():
    noise = {j.job_id: j for j in plan_study(read_spec("agents/configs/studies/ncp-noise-10.json")).train}
    paper = plan_study(read_spec("agents/configs/studies/ncp-noise-paper.json"))
    assert [j.seed for j in paper.train] == sorted(j.seed for j in paper.train)  # seed by seed
    assert {(j.model, j.seed) for j in paper.train} == {
        (m, s) for m in ("ncp-ltc", "ncp-cfc", "lstm", "cnn") for s in range(5)
    }
    assert {tuple(j.config["conv_channels"]) for j in paper.train} == {(24, 36, 48, 64, 8)}
    ten = plan_study(read_spec("agents/configs/studies/ncp-noise-10.json"))
    assert [e["perturb"] for e in paper.evaluate] == [e["perturb"] for e in ten.evaluate]
    general = plan_study(read_spec("agents/configs/studies/ncp-generalisation-10.json"))
    clean = [j for j in general.train if j.tag is None]
    assert len(clean) == 40 and all(j.config == noise[j.job_id].config for j in clean)  # --runs-from ncp-noise-10
    assert len([j for j in general.train if j.tag == "dr"]) == 40 and len(general.jobs()) == 480


def test_mujoco_memory_study_is_thirty_runs_at_one_budget_evaluated_on_held_out_episodes():
    plan = plan_study(read_spec("agents/configs/studies/mujoco-novel.json"))
    novel = {
        (env, policy, seed)
        for env in ("HopperNoVel-v5", "HalfCheetahNoVel-v5")
        for policy in ("ltc", "cfc", "lstm", "mlp")
        for seed in (0, 1, 2)
    }
    reference = {(env, "mlp", seed) for env in ("Hopper-v5", "HalfCheetah-v5") for seed in (0, 1, 2)}
    assert len(plan.train) == 30 and {(j.env_id, j.model, j.seed) for j in plan.train} == novel | reference
    assert {j.config["timesteps"] for j in plan.train} == {150_000}
    # seed by seed: a study stopped part-way has every (env, policy) at the same seeds
    assert [j.seed for j in plan.train] == sorted(j.seed for j in plan.train)
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


@pytest.mark.parametrize(
    "change, message",
    [
        ({"train": []}, "empty"),
        ({"trian": []}, "unknown keys"),
        ({"train": [{"kind": "sac", "env": "Pendulum-v1", "seeds": [0]}]}, "'ppo' or 'bc'"),
        ({"train": [{**tiny_ppo(), "policies": ["gru"]}]}, "policy must be one of"),
        ({"train": [{**tiny_ppo(), "config": {"n_env": 2}}]}, "unknown config keys"),
        (
            {
                "train": [
                    {"kind": "bc", "env": "LaneKeeping-v0", "models": ["ncp-ltc"], "seeds": [0], "set": {"epoch": 1}}
                ]
            },
            "unknown training settings",
        ),
        ({"train": [tiny_ppo(), tiny_ppo()]}, "names these runs twice"),
        ({"train": [{**tiny_ppo(), "seeds": [-1]}]}, "non-negative"),
        (
            {"evaluate": [{"env": "Pendulum-v1", "episodes": 2, "seed": 0, "perturb": ["pixel_nosie:0.1"]}]},
            "evaluate[0].perturb",
        ),
        ({"cpus": 0}, "cpus must be a positive int"),
    ],
)
def test_bad_specs_are_refused_before_anything_runs(change, message):
    spec = {"name": "bad", "train": [tiny_ppo()], **change}
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        plan_study(spec)


def tiny_lane_ppo(**config) -> dict:
    """A PPO entry on the state-observation lane env (no rendering; seconds per run)."""
    entry = tiny_ppo(256, **config)
    return {**entry, "env": "LaneKeepingState-v0"}


DR_GEOMETRY = {"domain_randomization": ["geometry"]}


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {
                "evaluate": [
                    {
                        "env": "LaneKeepingState-v0",
                        "episodes": 2,
                        "seed": 1000000,
                        "env_kwargs": {"domain_randomization": ["colour"]},
                    }
                ]
            },
            r"evaluate\[0\] \(run ppo-LaneKeepingState-v0-mlp-s0\): cannot make .*unknown domain_randomization element",
        ),
        (
            {
                "evaluate": [
                    {
                        "env": "LaneKeepingState-v0",
                        "episodes": 2,
                        "seed": 1000000,
                        "env_kwargs": {"domain_randomisation": True},
                    }
                ]
            },
            "unexpected keyword argument",
        ),
        (
            {
                "evaluate": [
                    {
                        "env": "LaneKeepingState-v0",
                        "episodes": 2,
                        "seed": 1000000,
                        "env_kwargs": {"domain_randomization": ("colours",)},
                    }
                ]
            },
            "JSON object of plain data",
        ),
        (
            {"evaluate": [{"env": "LaneKeepingState-v0", "episodes": 2, "seed": 1000000, "env_kwargs": ["colours"]}]},
            "JSON object of plain data",
        ),
        (
            {"evaluate": [{"env": "LaneKeepingState-v0", "episodes": 2, "seed": 1000000, "train_tags": ["rd"]}]},
            r"train_tags: \['rd'\].*the tags there are \['untagged'\]",
        ),
        (
            {"evaluate": [{"env": "LaneKeepingState-v0", "episodes": 2, "seed": 1000000, "tag": "Clean"}]},
            "lowercase letters",
        ),
        (
            {
                "evaluate": [
                    {"env": "LaneKeepingState-v0", "episodes": 2, "seed": 1000000, "tag": "clean"},
                    {"env": "LaneKeepingState-v0", "episodes": 4, "seed": 1000000, "tag": "clean"},
                ]
            },
            r"evaluate\[1\].tag 'clean' is already the tag of evaluate\[0\]",
        ),
        (
            {"train": [tiny_lane_ppo(env_kwargs={"domain_randomization": ["sky"]})]},
            "training run ppo-LaneKeepingState-v0-mlp-s0: cannot make .*unknown domain_randomization element",
        ),
        (
            {
                "train": [
                    {
                        "kind": "bc",
                        "env": "LaneKeeping-v0",
                        "models": ["cnn"],
                        "seeds": [0],
                        "env_kwargs": {"domain_randomization": "yes"},
                    }
                ]
            },
            "must be a bool or a collection",
        ),
    ],
)
def test_bad_env_kwargs_and_tags_fail_when_the_spec_is_read(change, message):
    spec = {"name": "bad", "train": [tiny_lane_ppo()], **change}
    with pytest.raises(ValueError, match=message):
        plan_study(spec)


def test_evaluation_entries_apply_to_the_training_tags_they_name():
    dr = tiny_lane_ppo(env_kwargs=DR_GEOMETRY)
    spec = {
        "name": "t",
        "train": [tiny_lane_ppo(), {**dr, "tag": "dr"}],
        "evaluate": [
            {"env": "LaneKeepingState-v0", "episodes": 2, "seed": 1000000, "tag": "clean"},
            {
                "env": "LaneKeepingState-v0",
                "episodes": 2,
                "seed": 1000000,
                "tag": "geometry",
                "env_kwargs": DR_GEOMETRY,
                "train_tags": ["untagged"],
            },
            {"env": "LaneKeepingState-v0", "episodes": 2, "seed": 1000000, "train_tags": ["dr"]},
        ],
    }
    plan = plan_study(spec)
    jobs = {e.job_id: e for job in plan.train for e in plan.evaluations_of(job)}
    assert sorted(jobs) == [
        "eval0-ppo-LaneKeepingState-v0-dr-mlp-s0",
        "eval0-ppo-LaneKeepingState-v0-mlp-s0",
        "eval1-ppo-LaneKeepingState-v0-mlp-s0",
        "eval2-ppo-LaneKeepingState-v0-dr-mlp-s0",
    ]
    geometry = jobs["eval1-ppo-LaneKeepingState-v0-mlp-s0"]
    assert (geometry.condition, geometry.env_kwargs) == ("geometry", DR_GEOMETRY)
    assert (
        jobs["eval2-ppo-LaneKeepingState-v0-dr-mlp-s0"].condition,
        jobs["eval2-ppo-LaneKeepingState-v0-dr-mlp-s0"].env_kwargs,
    ) == (None, {})


def test_evaluation_env_kwargs_keep_the_observation_and_drop_the_training_look():
    from ncp_control.agents.study.jobs import evaluation_env_kwargs

    trained = {"image_height": 32, "image_width": 64, "domain_randomization": True}
    assert evaluation_env_kwargs("LaneKeeping-v0", trained, "LaneKeeping-v0", {}) == {
        "image_height": 32,
        "image_width": 64,
    }
    assert evaluation_env_kwargs(
        "LaneKeeping-v0", trained, "envs:LaneKeeping-v0", {"domain_randomization": ["camera"]}
    ) == {"image_height": 32, "image_width": 64, "domain_randomization": ["camera"]}
    assert evaluation_env_kwargs("LaneKeeping-v0", trained, "LaneKeepingState-v0", {"speed": 8.0}) == {"speed": 8.0}


def test_a_run_trained_under_randomisation_is_evaluated_on_the_entrys_look(tmp_path):
    """The evaluation job builds its env from the entry, not from the run's training look: a run trained with
    randomised road geometry, evaluated on a "clean" entry, drives exactly the clean roads."""
    from ncp_control.agents.evaluation.episodes import evaluate
    from ncp_control.agents.runs.load import load_run

    plan = plan_study({"name": "t", "train": [{**tiny_lane_ppo(env_kwargs=DR_GEOMETRY), "tag": "dr"}]})
    run_dir = tmp_path / plan.train[0].job_id
    train_job("ppo", plan.train[0].config, run_dir)
    assert load_run(run_dir).env_kwargs == DR_GEOMETRY
    predictor = load_run(run_dir).predictor
    clean = evaluate(predictor, "LaneKeepingState-v0", 2, 1000000, env_kwargs={})
    randomised = evaluate(predictor, "LaneKeepingState-v0", 2, 1000000, env_kwargs=DR_GEOMETRY)
    assert clean["returns"] != randomised["returns"]  # the two looks do differ for this run
    rows = evaluate_job(run_dir, "LaneKeepingState-v0", 2, 1000000)
    assert rows[0]["mean_return"] == pytest.approx(clean["mean_return"])
    swept = evaluate_job(run_dir, "LaneKeepingState-v0", 2, 1000000, ["obs_noise:0"], env_kwargs={})
    assert swept[0]["mean_return"] == pytest.approx(clean["mean_return"])
    rows = evaluate_job(run_dir, "LaneKeepingState-v0", 2, 1000000, env_kwargs=DR_GEOMETRY)
    assert rows[0]["mean_return"] == pytest.approx(randomised["mean_return"])


def test_the_generalisation_spec_reuses_the_noise_runs_and_evaluates_dr_runs_on_the_clean_look():
    from ncp_control.agents.study.jobs import evaluation_env_kwargs

    noise = plan_study(read_spec("agents/configs/studies/ncp-noise.json"))
    plan = plan_study(read_spec("agents/configs/studies/ncp-generalisation.json"))
    clean, dr = plan.train[:12], plan.train[12:]
    # the clean entry is ncp-noise's: same ids, same resolved configs (so --runs-from copies those runs)
    assert [(j.job_id, j.config) for j in clean] == [(j.job_id, j.config) for j in noise.train]
    assert {j.job_id for j in dr} == {
        f"bc-LaneKeeping-v0-dr-{m}-s{s}" for m in ("ncp-ltc", "ncp-cfc", "lstm", "cnn") for s in (0, 1, 2)
    }
    assert all(j.config["env_kwargs"]["domain_randomization"] is True for j in dr)
    conditions = {
        job.tag: [(e.condition, e.episodes, e.seed) for e in plan.evaluations_of(job)] for job in (clean[0], dr[0])
    }
    elements = ["geometry", "colours", "lighting", "camera", "textures", "objects"]
    assert conditions[None] == [(c, 20, 1000000) for c in ["clean", *elements, "all"]]
    assert conditions["dr"] == [("clean", 20, 1000000), ("all", 20, 1000000)]
    on_clean = plan.evaluations_of(dr[0])[0]
    assert evaluation_env_kwargs(dr[0].env_id, dr[0].config["env_kwargs"], on_clean.env_id, on_clean.env_kwargs) == {
        "image_height": 32,
        "image_width": 64,
    }
    assert len(plan.jobs()) == 24 + 12 * 8 + 12 * 2


def test_run_ids_are_safe_folder_names():
    assert run_id("ppo", "mypkg.envs:Thing-v0", "mlp", 3) == "ppo-mypkg.envs_Thing-v0-mlp-s3"
    assert run_id("bc", "LaneKeeping-v0", "ncp-ltc", 0, "dr") == "bc-LaneKeeping-v0-dr-ncp-ltc-s0"


def test_a_training_tag_names_its_runs_and_untagged_ids_stay():
    bc = {
        "kind": "bc",
        "env": "LaneKeeping-v0",
        "models": ["ncp-ltc"],
        "seeds": [0, 1],
        "set": {"epochs": 1, "dagger_rounds": 0},
    }
    plan = plan_study(
        {
            "name": "t",
            "train": [
                bc,
                {**bc, "tag": "dr", "env_kwargs": {"domain_randomization": True}},
                {**tiny_ppo(), "tag": "long"},
            ],
        }
    )
    assert [(j.job_id, j.tag) for j in plan.train] == [
        ("bc-LaneKeeping-v0-ncp-ltc-s0", None),
        ("bc-LaneKeeping-v0-ncp-ltc-s1", None),
        ("bc-LaneKeeping-v0-dr-ncp-ltc-s0", "dr"),
        ("bc-LaneKeeping-v0-dr-ncp-ltc-s1", "dr"),
        ("ppo-Pendulum-v1-long-mlp-s0", "long"),
    ]
    assert plan.train[2].config["env_kwargs"] == {"image_height": 32, "image_width": 64, "domain_randomization": True}
    assert plan.train[0].config["env_kwargs"] == {"image_height": 32, "image_width": 64}
    # an untagged entry's ids are what every study before tags wrote (old study folders still resume)
    noise = plan_study(read_spec("agents/configs/studies/ncp-noise.json"))
    assert noise.train[0].job_id == "bc-LaneKeeping-v0-ncp-ltc-s0" and noise.train[0].tag is None
    assert [e.job_id for e in noise.evaluations_of(noise.train[0])] == ["eval0-bc-LaneKeeping-v0-ncp-ltc-s0"]


@pytest.mark.parametrize(
    "tag, message",
    [
        ("DR", "lowercase letters"),
        ("", "lowercase letters"),
        ("d r", "lowercase letters"),
        (1, "lowercase letters"),
        ("untagged", "reserved"),
    ],
)
def test_bad_training_tags_are_refused(tag, message):
    with pytest.raises(ValueError, match=message):
        plan_study({"name": "t", "train": [{**tiny_ppo(), "tag": tag}]})


def test_cli_reports_a_bad_spec_in_one_line(tmp_path, capsys):
    from ncp_control.agents.cli import main

    spec = tmp_path / "spec.json"
    spec.write_text("{not json")
    assert main(["study", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ncp-control study: error: study spec") and "not valid JSON" in err
    (tmp_path / "empty").mkdir()
    assert main(["study-report", str(tmp_path / "empty")]) == 2
    assert "is not a study folder" in capsys.readouterr().err


def test_shipped_specs_are_named_without_their_path(tmp_path, monkeypatch, capsys):
    """``ncp-control study memory-smoke`` reads the shipped file from any folder; a file of that name in the working
    folder wins; an unknown name or a missing file is one line naming the shipped specs."""
    from ncp_control.agents.cli import main
    from ncp_control.agents.study.spec import SHIPPED_DIR, resolve_spec, shipped_specs

    shipped = shipped_specs()
    assert {"memory-smoke", "ncp-noise", "pendulum-novel-10"} <= set(shipped)
    assert list(shipped) == sorted(shipped)
    monkeypatch.chdir(tmp_path)
    for name in ("memory-smoke", "memory-smoke.json"):
        assert resolve_spec(name) == SHIPPED_DIR / "memory-smoke.json"
    assert read_spec("memory-smoke") == json.loads((SHIPPED_DIR / "memory-smoke.json").read_text())
    own = tmp_path / "memory-smoke.json"
    own.write_text(json.dumps({"name": "mine", "train": [tiny_ppo()]}))
    assert read_spec("memory-smoke.json")["name"] == "mine"
    assert read_spec("memory-smoke")["name"] == "memory-smoke"  # the bare name is not a file here
    for bad, message in (
        ("memory-smok", "neither a file nor the name of a shipped spec: use one of .*memory-smoke"),
        ("nope.json", "nope.json does not exist"),
        ("some/dir/memory-smoke.json", "does not exist"),
    ):
        with pytest.raises(ValueError, match=message):
            read_spec(bad)
    assert main(["study", "memory-smok", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ncp-control study: error: study spec 'memory-smok' is neither") and err.count("\n") == 1
    assert main(["study", "--list"]) == 0
    listed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [name for name, _ in listed] == list(shipped)
    assert all(path == str(shipped[name]) for name, path in listed)
    assert main(["study", "--out", str(tmp_path / "out")]) == 2
    assert "give a SPEC and --out DIR" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_ray_names_the_extra(tmp_path, monkeypatch, capsys):
    from ncp_control.agents.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "x", "train": [tiny_ppo()]}))
    assert main(["study", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert 'pip install -e ".[ray]"' in capsys.readouterr().err


def test_ppo_job_killed_after_its_checkpoint_continues_from_it(tmp_path, monkeypatch):
    """The work a Ray task does: a fresh run killed after its first checkpoint; the next attempt resumes it."""
    import ncp_control.agents.study.jobs as jobs

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
    # the two episodes batched through the model: the same episodes, up to floating-point rounding
    batched = evaluate_job(run_dir, "Pendulum-v1", 2, 1000, ["obs_noise:0,0.5"], n_envs=2)
    assert [r["episodes"] for r in batched] == [2, 2]
    assert [r["mean_return"] for r in batched] == pytest.approx([r["mean_return"] for r in rows], rel=1e-4)
    plan = plan_study({"name": "t", "train": [tiny_ppo()], "evaluate": [{**EVAL, "n_envs": 4}, EVAL]})
    assert [e.n_envs for e in plan.evaluations_of(plan.train[0])] == [4, 1]
    with pytest.raises(ValueError, match=r"evaluate\[0\].n_envs must be a positive int"):
        plan_study({"name": "t", "train": [tiny_ppo()], "evaluate": [{**EVAL, "n_envs": 0}]})


def test_a_folder_without_checkpoint_is_trained_from_scratch(tmp_path):
    config = plan_study({"name": "t", "train": [tiny_ppo(256)]}).train[0].config
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text('{"kind": "ppo", "env_')  # half-written by a killed attempt
    assert train_job("ppo", config, run_dir)["resumed_from"] is None
    assert (run_dir / "model.zip").is_file()


@pytest.fixture(params=["tarfile filter", "own check"])
def extraction(request, monkeypatch):
    """Both ways unpack_folder extracts: tarfile's ``data`` filter (Python >= 3.10.12 / 3.11.4) and the check of
    its own for the Pythons without it (Debian 12's 3.11.2)."""
    import tarfile

    if request.param == "own check":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    elif not hasattr(tarfile, "data_filter"):
        pytest.skip(f"this Python ({sys.version.split()[0]}) has no tarfile data filter")
    return request.param


def test_run_folders_travel_as_archives(tmp_path, extraction):
    src = tmp_path / "src"
    (src / "checkpoints").mkdir(parents=True)
    (src / "config.json").write_text("{}")
    (src / "checkpoints" / "model_1_steps.zip").write_bytes(b"\x00\x01" * 1000)
    dest = tmp_path / "study" / "runs" / "r"
    dest.mkdir(parents=True)
    (dest / "stale.txt").write_text("from an earlier attempt")
    unpack_folder(pack_folder(src), dest)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "checkpoints",
        "checkpoints/model_1_steps.zip",
        "config.json",
    ]
    assert (dest / "checkpoints" / "model_1_steps.zip").read_bytes() == b"\x00\x01" * 1000
    assert [p.name for p in dest.parent.iterdir()] == ["r"]  # no .partial / .old left


def test_absolute_archive_paths_unpack_inside(tmp_path, extraction):
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.addfile(tarfile.TarInfo("/abs/inside.txt"), io.BytesIO(b""))
    unpack_folder(buffer.getvalue(), tmp_path / "r")
    assert (tmp_path / "r" / "abs" / "inside.txt").is_file()


@pytest.mark.parametrize("member", ["../escape.txt", "link-out", "device"])
def test_archives_with_links_out_are_refused(tmp_path, extraction, member):
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(member if "/" in member else "inside")
        if member == "link-out":
            info.type, info.linkname = tarfile.SYMTYPE, "../../escape.txt"
        elif member == "device":
            info.type = tarfile.CHRTYPE
        archive.addfile(info, io.BytesIO(b""))
    with pytest.raises(tarfile.TarError):
        unpack_folder(buffer.getvalue(), tmp_path / "r")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "r").exists()


def _fake_study(out, values_by_seed):
    """A finished study folder with one PPO model, 3 seeds, one evaluation entry with two levels."""
    spec = {
        "name": "fake",
        "train": [{**tiny_ppo(), "seeds": sorted(values_by_seed)}],
        "evaluate": [{"env": "Pendulum-v1", "episodes": 4, "seed": 1000, "perturb": ["obs_noise:0,0.1"]}],
    }
    out.mkdir()
    (out / "jobs").mkdir()
    write_json_atomic(out / "spec.json", spec)
    write_json_atomic(out / "study.json", {"sessions": [{"wall_seconds": 12.5}, {"wall_seconds": 7.5}]})
    records = []
    for seed, (clean, noisy) in values_by_seed.items():
        run = run_id("ppo", "Pendulum-v1", "mlp", seed)
        train = {
            "id": run,
            "status": "done",
            "attempts": 1,
            "seconds": 10.0,
            "spec": {"type": "train", "kind": "ppo", "env": "Pendulum-v1", "model": "mlp", "seed": seed},
        }
        rows = [
            {
                "perturbation": "obs_noise",
                "level": level,
                "episodes": 4,
                "mean_return": value,
                "crash_rate": 0.0,
                "completion_rate": None,
                "mean_abs_lateral_m": None,
            }
            for level, value in ((0.0, clean), (0.1, noisy))
        ]
        evaluation = {
            "id": f"eval0-{run}",
            "status": "done",
            "attempts": 2 if seed == 0 else 1,
            "seconds": 1.0,
            "rows": rows,
            "spec": {"type": "evaluate", "run": f"runs/{run}", "evaluation": 0},
        }
        for record in (train, evaluation):
            write_json_atomic(out / "jobs" / f"{record['id']}.done", record)
            records.append(record)
    records.append(
        {
            "id": "eval0-other",
            "status": "failed",
            "attempts": 3,
            "spec": {"type": "evaluate", "run": "runs/none", "evaluation": 0},
        }
    )
    write_records(out, [{**r, "status": "submitted"} for r in records[:-1]] + records[-1:])


def test_summary_is_rliables_statistics_across_training_seeds(tmp_path):
    from ncp_control.agents.evaluation.statistics import aggregate_intervals

    values = {0: (-100.0, -300.0), 1: (-140.0, -260.0), 2: (-120.0, -410.0)}
    _fake_study(tmp_path / "s", values)
    summary = write_summary(tmp_path / "s")
    assert [(g["level"], g["n_seeds"]) for g in summary["groups"]] == [(0.0, 3), (0.1, 3)]
    noisy = summary["groups"][1]["metrics"]["mean_return"]
    x = np.array([v[1] for v in values.values()])
    expected = aggregate_intervals({"x": x})["x"]  # n = seeds, not episodes
    assert noisy["per_seed"] == list(x)
    assert noisy["mean"] == pytest.approx(x.mean()) and noisy["iqm"] == pytest.approx(expected["iqm"])
    assert [noisy["ci_low"], noisy["ci_high"]] == noisy["mean_ci"] == pytest.approx(expected["mean_ci"])
    assert noisy["iqm_ci"] == pytest.approx(expected["iqm_ci"])
    assert x.min() <= noisy["ci_low"] <= noisy["ci_high"] <= x.max()  # a percentile interval stays in range
    # one model: nothing to compare
    assert summary["comparisons"] == [] and "rliable" in summary["statistics"]
    assert "completion_rate" not in summary["groups"][0]["metrics"]
    # the .done markers win over a stale jobs.jsonl; the failed job is counted
    assert summary["jobs"] == {
        "total": 7,
        "done": 6,
        "failed": 1,
        "skipped": 0,
        "submitted": 0,
        "pending": 0,
        "retried": 2,
    }
    assert summary["wall_seconds"] == 20.0 and summary["job_seconds"] == 33.0
    csv_lines = (tmp_path / "s" / "summary.csv").read_text().splitlines()
    assert csv_lines[0].startswith("env,kind,model,evaluation,perturbation,level") and len(csv_lines) == 3
    assert "-300.0;-260.0;-410.0" in csv_lines[2]
    md = (tmp_path / "s" / "summary.md").read_text()
    assert "| ppo:mlp | obs_noise | 0.1 | 3 |" in md and "6/7 done, 1 failed" in md
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["groups"][1]["metrics"]["mean_return"][
        "mean"
    ] == pytest.approx(x.mean())
    assert summary["plots"] == ["summary-Pendulum-v1-e0-obs_noise.png"]
    assert (tmp_path / "s" / summary["plots"][0]).stat().st_size > 1000


def _fake_conditions_study(out):
    """A finished study with training tags and evaluation conditions: models a and b, untagged and "dr", 3 seeds;
    entries "clean" (all runs), "colours" (untagged runs only) and an untagged sweep entry (all runs)."""
    entry = {"kind": "ppo", "env": "E", "policies": ["a", "b"], "seeds": [0, 1, 2], "timesteps": 1}
    colours = {"domain_randomization": ["colours"]}
    spec = {
        "name": "cond",
        "train": [entry, {**entry, "tag": "dr"}],
        "evaluate": [
            {"env": "E", "episodes": 4, "seed": 1000000, "tag": "clean"},
            {
                "env": "E",
                "episodes": 4,
                "seed": 1000000,
                "tag": "colours",
                "env_kwargs": colours,
                "train_tags": ["untagged"],
            },
            {"env": "E", "episodes": 4, "seed": 1000000, "perturb": ["obs_noise:0,0.1"]},
        ],
    }
    out.mkdir()
    (out / "jobs").mkdir()
    write_json_atomic(out / "spec.json", spec)
    crash = {("a", None): 0.0, ("b", None): 0.5, ("a", "dr"): 0.1, ("b", "dr"): 0.4}  # clean, per run
    for (model, tag), base in crash.items():
        for seed in (0, 1, 2):
            run = run_id("ppo", "E", model, seed, tag)
            train = {
                "id": run,
                "status": "done",
                "seconds": 1.0,
                "spec": {
                    "type": "train",
                    "kind": "ppo",
                    "env": "E",
                    "model": model,
                    "seed": seed,
                    **({"tag": tag} if tag else {}),
                },
            }
            write_json_atomic(out / "jobs" / f"{run}.done", train)
            for index in (0, 1, 2):
                if index == 1 and tag:
                    continue
                rows = [
                    {
                        "perturbation": p,
                        "level": level,
                        "episodes": 4,
                        "mean_return": -1.0 * seed,
                        "crash_rate": base + 0.01 * seed + (0.3 if index == 1 else 0.0) + (level or 0.0),
                        "completion_rate": None,
                        "mean_abs_lateral_m": None,
                    }
                    for p, level in ((("none", None),) if index < 2 else (("obs_noise", 0.0), ("obs_noise", 0.1)))
                ]
                write_json_atomic(
                    out / "jobs" / f"eval{index}-{run}.done",
                    {
                        "id": f"eval{index}-{run}",
                        "status": "done",
                        "seconds": 1.0,
                        "rows": rows,
                        "spec": {
                            "type": "evaluate",
                            "run": f"runs/{run}",
                            "evaluation": index,
                            **({"condition": spec["evaluate"][index]["tag"]} if index < 2 else {}),
                        },
                    },
                )


def test_summary_of_a_study_with_conditions_is_keyed_by_training_tag_and_condition(tmp_path):
    from ncp_control.agents.study.summary import separation_verdict

    _fake_conditions_study(tmp_path / "s")
    summary = write_summary(tmp_path / "s")
    assert summary["key"] == ["env", "kind", "train_tag", "model", "evaluation", "condition", "perturbation", "level"]
    cells = [
        (g["evaluation"], g["condition"], g["train_tag"], g["model"], g["level"], g["n_seeds"])
        for g in summary["groups"]
    ]
    assert cells[:6] == [
        (0, "clean", "untagged", "a", None, 3),
        (0, "clean", "untagged", "b", None, 3),
        (0, "clean", "dr", "a", None, 3),
        (0, "clean", "dr", "b", None, 3),
        (1, "colours", "untagged", "a", None, 3),
        (1, "colours", "untagged", "b", None, 3),
    ]
    assert len(cells) == 6 + 8 and cells[6] == (2, None, "untagged", "a", 0.0, 3)
    colours = summary["groups"][4]
    assert colours["env_kwargs"] == {"domain_randomization": ["colours"]}
    assert colours["metrics"]["crash_rate"]["per_seed"] == pytest.approx([0.3, 0.31, 0.32])
    csv_lines = (tmp_path / "s" / "summary.csv").read_text().splitlines()
    assert csv_lines[0].startswith("env,kind,train_tag,model,evaluation,condition,perturbation,level,eval_seed")
    assert csv_lines[3].startswith("E,ppo,dr,a,0,clean,none,,1000000,4,3,0;1;2")
    md = (tmp_path / "s" / "summary.md").read_text()
    assert "## E, trained dr: crash_rate by condition" in md and "| model | clean | colours | e2 |" not in md
    assert "| model | clean | colours |" in md and "| model | clean |" in md
    assert '## E, evaluation 1: colours, env_kwargs {"domain_randomization": ["colours"]} (4 episodes' in md
    assert "| dr | ppo:b | none |  | 3 |" in md
    assert sorted(summary["plots"]) == [
        "summary-E-dr-conditions.png",
        "summary-E-e2-obs_noise.png",
        "summary-E-untagged-conditions.png",
    ]
    verdict = separation_verdict(json.loads((tmp_path / "s" / "summary.json").read_text()), ["crash_rate"])
    every = "a better than b; a better than dr:a; dr:b better than b; dr:a better than dr:b"
    assert verdict == [
        f"E clean crash_rate: {every}",  # same tag: models; same model: tags
        "E colours crash_rate: a better than b",
        f"E e2 obs_noise 0.0 crash_rate: {every}",
        f"E e2 obs_noise 0.1 crash_rate: {every}",
    ]
    pair = next(c for c in summary["comparisons"] if c["condition"] == "colours" and c["metric"] == "crash_rate")
    assert (pair["a"], pair["b"], pair["better"], pair["prob_improvement"]) == ("a", "b", "lower", 1.0)
    assert pair["prob_improvement_ci"] == [1.0, 1.0]  # every seed of a beats every seed of b
    assert sorted(summary["profiles"])[0].startswith("profile-E-")


def _finished_study(out, spec) -> None:
    """A study folder in which every training job of ``spec`` ran (records as the driver writes them)."""
    from ncp_control.agents.study.driver import new_record

    (out / "jobs").mkdir(parents=True)
    write_json_atomic(out / "spec.json", spec)
    for job in plan_study(spec).train:
        result = train_job(job.kind, job.config, out / "runs" / job.job_id)
        write_json_atomic(out / "jobs" / f"{job.job_id}.done", {**new_record(job), "status": "done", **result})


def _reuse(spec, out, sources):
    from ncp_control.agents.study.driver import new_record, now
    from ncp_control.agents.study.reuse import check_sources, reuse_runs

    (out / "jobs").mkdir(parents=True)
    (out / "runs").mkdir()
    write_json_atomic(out / "spec.json", spec)
    lines = []
    reused = reuse_runs(plan_study(spec).train, out, check_sources(sources, out), new_record, now, lines.append)
    return reused, lines


def test_runs_from_copies_finished_runs_trained_with_the_same_config(tmp_path):
    src = tmp_path / "src"
    _finished_study(src, {"name": "src", "train": [tiny_ppo(256)]})
    spec = {"name": "dst", "train": [{**tiny_ppo(256), "seeds": [0, 1]}, {**tiny_ppo(256), "tag": "again"}]}
    reused, lines = _reuse(spec, tmp_path / "dst", [src])
    job = "ppo-Pendulum-v1-mlp-s0"
    assert reused == [job]
    assert lines[0] == f"{job}: reused from {src.resolve()}"
    assert "ppo-Pendulum-v1-mlp-s1: not reused" in lines[1] and "no finished job" in lines[1]
    assert lines[2].startswith("ppo-Pendulum-v1-again-mlp-s0: not reused")
    copied = tmp_path / "dst" / "runs" / job
    assert (copied / "model.zip").read_bytes() == (src / "runs" / job / "model.zip").read_bytes()
    assert sorted(p.name for p in (tmp_path / "dst" / "runs").iterdir()) == [job]  # no .partial left
    record = read_records(tmp_path / "dst")[job]
    assert record["status"] == "done" and record["reused_from"] == str(src.resolve())
    assert record["spec"]["run"] == f"runs/{job}" and record["trained_seconds"] > 0
    summary = summarize(tmp_path / "dst")
    assert summary["reused"] == {job: str(src.resolve())}
    from ncp_control.agents.study.summary import summary_markdown

    assert (
        f"Reused 1 finished training run(s) of {src.resolve()} (copied, not trained here): {job}."
        in summary_markdown(summary)
    )
    # a second pass (e.g. --resume) finds the job done and copies nothing
    from ncp_control.agents.study.driver import new_record, now
    from ncp_control.agents.study.reuse import reuse_runs

    assert reuse_runs(plan_study(spec).train, tmp_path / "dst", [src.resolve()], new_record, now, print) == []


def test_runs_from_trains_a_run_whose_config_differs_or_that_holds_a_link(tmp_path):
    src = tmp_path / "src"
    _finished_study(src, {"name": "src", "train": [tiny_ppo(256)]})
    reused, lines = _reuse({"name": "dst", "train": [tiny_ppo(512)]}, tmp_path / "dst", [src])
    assert reused == [] and "trained with other settings (timesteps)" in lines[0]
    assert not (tmp_path / "dst" / "jobs" / "ppo-Pendulum-v1-mlp-s0.done").exists()
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the run")
    (src / "runs" / "ppo-Pendulum-v1-mlp-s0" / "notes.txt").symlink_to(outside)
    reused, lines = _reuse({"name": "dst", "train": [tiny_ppo(256)]}, tmp_path / "dst2", [src])
    assert reused == [] and "notes.txt is a link" in lines[0]
    with pytest.raises(ValueError, match="not a study folder"):
        _reuse({"name": "dst", "train": [tiny_ppo(256)]}, tmp_path / "dst3", [tmp_path / "runs"])
    with pytest.raises(ValueError, match="is the study folder itself"):
        _reuse({"name": "dst", "train": [tiny_ppo(256)]}, tmp_path / "dst4", [tmp_path / "dst4"])


def test_config_difference_of_imitation_runs():
    from ncp_control.agents.study.jobs import config_difference

    bc = {"kind": "bc", "env": "LaneKeeping-v0", "models": ["cnn"], "seeds": [0], "set": {"epochs": 1}}
    config = plan_study({"name": "t", "train": [bc]}).train[0].config
    assert config_difference("bc", config, {"kind": "bc", "training": config}) == []
    assert config_difference("bc", config, {"kind": "bc", "training": {**config, "epochs": 2}}) == ["epochs"]
    dr = plan_study({"name": "t", "train": [{**bc, "env_kwargs": {"domain_randomization": True}}]}).train[0].config
    assert config_difference("bc", dr, {"kind": "bc", "training": config}) == ["env_kwargs"]
    assert config_difference("bc", config, {"kind": "ppo"}) == ["kind"]
    assert config_difference("bc", config, {"kind": "bc", "training": {"epochz": 1}}) == ["training"]


def test_study_report_rerenders(tmp_path, capsys):
    from ncp_control.agents.cli import main

    _fake_study(tmp_path / "s", {0: (-1.0, -2.0)})
    assert main(["study-report", str(tmp_path / "s"), "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "| ppo:mlp | obs_noise | 0.0 | 1 | -1 |" in out  # one seed: a mean, no interval
    assert read_records(tmp_path / "s")["eval0-other"]["status"] == "failed"
    assert summarize(tmp_path / "s")["groups"][0]["metrics"]["mean_return"]["ci_low"] is None


def test_a_study_folder_is_not_overwritten_or_resumed_with_another_spec(tmp_path):
    from ncp_control.agents.study.driver import run_study

    spec = {"name": "x", "train": [tiny_ppo()]}
    (tmp_path / "s").mkdir()
    write_json_atomic(tmp_path / "s" / "spec.json", spec)
    with pytest.raises(ValueError, match="already holds a study; pass --resume"):
        run_study(spec, tmp_path / "s")
    with pytest.raises(ValueError, match="holds a study of another spec"):
        run_study({**spec, "name": "y"}, tmp_path / "s", resume=True)
    # "_doc" is a comment: a spec whose _doc was edited resumes the same study
    from ncp_control.agents.study.driver import _check_folder

    _check_folder(tmp_path / "s", plan_study({**spec, "_doc": "measured since: 2 h"}), resume=True)
    with pytest.raises(ValueError, match="holds a study of another spec"):
        _check_folder(tmp_path / "s", plan_study({**spec, "_doc": "x", "max_attempts": 5}), resume=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("")
    with pytest.raises(ValueError, match="nothing to resume"):
        run_study(spec, tmp_path / "other", resume=True)
    with pytest.raises(ValueError, match="storage must be one of"):
        run_study(spec, tmp_path / "new", storage="s3")


def test_sessions_are_recorded_as_they_go(tmp_path):
    from ncp_control.agents.study.driver import record_session

    first = record_session(tmp_path, {"start": "a", "end": None, "wall_seconds": 0.0})
    record_session(tmp_path, {"start": "a", "end": None, "wall_seconds": 5.0}, first)  # then killed
    second = record_session(tmp_path, {"start": "b", "end": "c", "wall_seconds": 2.0})
    study = json.loads((tmp_path / "study.json").read_text())
    assert (first, second) == (0, 1) and [s["wall_seconds"] for s in study["sessions"]] == [5.0, 2.0]


def test_separation_verdict_needs_the_probability_of_improvement_interval_above_one_half():
    from ncp_control.agents.study.summary import metric_statistics, separation_verdict

    def group(model, per_seed):
        return {
            "env": "E",
            "kind": "ppo",
            "evaluation": 0,
            "perturbation": "p",
            "level": 0.1,
            "model": model,
            "n_seeds": len(per_seed),
            "metrics": {"crash_rate": metric_statistics(per_seed)},
        }

    rng = np.random.default_rng(0)
    low, high = list(rng.uniform(0.0, 0.2, 10)), list(rng.uniform(0.3, 0.5, 10))
    summary = {
        "groups": [group("a", low), group("b", high), group("c", list(rng.uniform(0.0, 0.2, 10))), group("d", [0.9])]
    }  # one seed: left out
    # written before the comparisons: computed from the per-seed values; lower crash rate is better
    assert separation_verdict(summary, ["crash_rate"]) == ["E p 0.1 crash_rate: a better than b; c better than b"]
    summary["groups"][1] = group("b", [v + 0.001 for v in low])  # nearly the same as a: not separated
    summary["groups"] = summary["groups"][:2]
    assert separation_verdict(summary, ["crash_rate"]) == ["E p 0.1 crash_rate: not separated"]


# ---------------------------------------------------------------------------------------------------------------
# fine-tuning entries (PPO from the spec's own imitation runs)
# ---------------------------------------------------------------------------------------------------------------
#: imitation settings that train in seconds (untrained-looking weights are enough to start PPO from)
TINY_BC_SET = {
    "conv_channels": [4, 4, 4, 4, 4],
    "features": 8,
    "demo_episodes": 1,
    "dagger_rounds": 0,
    "epochs": 1,
    "batch_size": 4,
    "max_episode_steps": 20,
}
TINY_FT_CONFIG = {
    "n_envs": 1,
    "checkpoint_freq": 0,
    "eval_episodes": 1,
    "algo": {"n_steps": 32, "batch_size": 32, "n_epochs": 1},
}


def fine_tuning_spec(models=("ncp-ltc",), policies=("ltc",), seeds=(0,), **ft) -> dict:
    """Imitation runs on LaneKeeping-v0 and PPO fine-tuning of them (tag ``ft``), both tiny."""
    return {
        "name": "ft",
        "train": [
            {"kind": "bc", "env": "LaneKeeping-v0", "models": list(models), "seeds": list(seeds), "set": TINY_BC_SET},
            {
                "kind": "ppo",
                "env": "LaneKeeping-v0",
                "policies": list(policies),
                "seeds": list(seeds),
                "timesteps": 64,
                "tag": "ft",
                "init_from": "untagged",
                "config": TINY_FT_CONFIG,
                **ft,
            },
        ],
    }


def test_a_fine_tuning_entry_starts_each_policy_from_its_imitation_run():
    plan = plan_study(fine_tuning_spec(models=("ncp-cfc", "cnn"), policies=("cfc", "mlp"), seeds=(0, 1)))
    ft = {job.job_id: job for job in plan.train if job.kind == "ppo"}
    assert sorted(ft) == [
        "ppo-LaneKeeping-v0-ft-cnn-s0",
        "ppo-LaneKeeping-v0-ft-cnn-s1",
        "ppo-LaneKeeping-v0-ft-ncp-cfc-s0",
        "ppo-LaneKeeping-v0-ft-ncp-cfc-s1",
    ]
    job = ft["ppo-LaneKeeping-v0-ft-cnn-s1"]
    assert (job.model, job.tag, job.init_job) == ("cnn", "ft", "bc-LaneKeeping-v0-cnn-s1")
    assert job.config["policy"] == "mlp" and job.config["init_from"] == "runs/bc-LaneKeeping-v0-cnn-s1"
    assert all(job.init_job is None for job in plan.train if job.kind == "bc")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"tag": None}, "needs a 'tag' of its own"),
        ({"init_from": "ft"}, "this entry's own tag"),
        ({"init_from": "dr"}, "which no 'bc' entry of the spec trains"),
        ({"seeds": [0, 1]}, r"bc-LaneKeeping-v0-ncp-ltc-s1, which no 'bc' entry"),
        ({"policies": ["cfc"]}, "bc-LaneKeeping-v0-ncp-cfc-s0, which no 'bc' entry"),
        ({"config": {"init_from": "runs/x"}}, "init_from is the entry's own key"),
        ({"init_from": "Untagged"}, "init_from must be a short name"),
        ({"tag": "dr", "init_from": "untagged", "_bc_tag": "dr"}, "also a 'bc' entry's tag"),
    ],
)
def test_bad_fine_tuning_entries_are_refused(change, message):
    spec = fine_tuning_spec()
    entry = spec["train"][1]
    if "_bc_tag" in change:  # a second, tagged imitation entry
        change = dict(change)
        spec["train"].append({**spec["train"][0], "tag": change.pop("_bc_tag")})
    entry.update({k: v for k, v in change.items() if v is not None})
    for key in [k for k, v in change.items() if v is None]:
        del entry[key]
    with pytest.raises(ValueError, match=message):
        plan_study(spec)


def test_a_fine_tuning_job_trains_from_its_imitation_run_and_skips_when_it_failed(tmp_path):
    from ncp_control.agents.study.driver import _Driver

    plan = plan_study(fine_tuning_spec())
    bc, ft = plan.train
    out = tmp_path / "study"
    bc_dir, ft_dir = out / "runs" / bc.job_id, out / "runs" / ft.job_id
    with pytest.raises(ValueError, match="not a finished run here"):
        train_job("ppo", ft.config, ft_dir, init_dir=bc_dir)
    train_job("bc", bc.config, bc_dir)
    train_job("ppo", ft.config, ft_dir, init_dir=bc_dir)
    config = json.loads((ft_dir / "config.json").read_text())
    assert config["init_from"] == str(bc_dir) and config["timesteps"] == 64
    trained = json.loads((bc_dir / "config.json").read_text())["training"]["env_kwargs"]
    assert config["policy_kwargs"]["net_arch"]["pi"] == [] and config["env_kwargs"] == {
        **config["env_kwargs"],
        **trained,
    }

    lines: list[str] = []
    (out / "jobs").mkdir(parents=True)
    driver = _Driver(plan, out, "shared", lines.append)
    driver.queue = [ft]
    assert driver._next_ready() is None and driver.queue == [ft]  # waits for its imitation run
    driver.records[bc.job_id]["status"] = "done"
    assert driver._next_ready() is ft
    driver.records[bc.job_id]["status"] = "failed"
    assert driver._next_ready() is None and driver.queue == []
    assert driver.records[ft.job_id]["status"] == "skipped"
    assert lines == [f"{ft.job_id}: skipped, its imitation run {bc.job_id} did not finish"]
