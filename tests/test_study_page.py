"""scripts/study_page.py: a study's docs page from its data folder (tables per condition, notes)."""

import pytest


@pytest.fixture(scope="module")
def study_page(script):
    return script("study_page")


def _group(env, model, perturbation, level, mean, ci):
    return {
        "env": env,
        "model": model,
        "perturbation": perturbation,
        "level": level,
        "metrics": {"mean_return": {"mean": mean, "mean_ci": ci}},
    }


def test_two_envs_get_their_own_rows_and_one_seed_has_no_interval(study_page):
    summary = {
        "groups": [
            _group("HopperNoVel-v5", "ltc", "mass", 2.0, 990.0, [980.0, 1000.0]),
            _group("HalfCheetahNoVel-v5", "ltc", "mass", 2.0, 650.0, None),
            _group("HopperNoVel-v5", "mlp", "mass", 2.0, 400.0, [300.0, 500.0]),
        ]
    }
    lines = study_page._tables(summary, ["ltc", "mlp"])
    rows = [line for line in lines if line.startswith("| ") and "condition" not in line]
    assert rows == [
        "| HalfCheetahNoVel-v5 mass 2 | 650 (1 seed) |  |",
        "| HopperNoVel-v5 mass 2 | 990 [980, 1000] | 400 [300, 500] |",
    ]


def test_one_env_keeps_the_short_condition(study_page):
    summary = {"groups": [_group("LaneKeeping-v0", "cnn", "none", None, 12.0, [10.0, 14.0])]}
    rows = [line for line in study_page._tables(summary, ["cnn"]) if line.startswith("| none")]
    assert rows == ["| none | 12 [10, 14] |"]


def test_notes_become_a_section_only_when_written(study_page, tmp_path):
    assert study_page._notes(tmp_path) == []
    (tmp_path / "notes.md").write_text("Hopper's return near 1000 means it stands.\n")
    assert study_page._notes(tmp_path) == [
        "## Reading the numbers",
        "",
        "Hopper's return near 1000 means it stands.",
        "",
    ]


def _seeded(env, model, perturbation, level, per_seed):
    return {
        "env": env,
        "model": model,
        "perturbation": perturbation,
        "level": level,
        "seeds": list(range(len(per_seed))),
        "metrics": {"mean_return": {"per_seed": per_seed}},
    }


def test_retention_is_each_runs_share_of_its_own_nominal_return(study_page):
    """a keeps 90% of its nominal return under mass 2 on every seed, b keeps 50%: a separated above b; c's nominal
    return is not positive on one seed, so c is left out; the neutral level gets no row."""
    groups = [
        _seeded("HopperNoVel-v5", "a", "mass", 1.0, [100.0, 200.0, 300.0, 400.0]),
        _seeded("HopperNoVel-v5", "a", "mass", 2.0, [90.0, 180.0, 270.0, 360.0]),
        _seeded("HopperNoVel-v5", "b", "mass", 1.0, [1000.0, 1000.0, 1000.0, 1000.0]),
        _seeded("HopperNoVel-v5", "b", "mass", 2.0, [500.0, 500.0, 500.0, 500.0]),
        _seeded("HopperNoVel-v5", "c", "mass", 1.0, [-5.0, 10.0, 10.0, 10.0]),
        _seeded("HopperNoVel-v5", "c", "mass", 2.0, [5.0, 10.0, 10.0, 10.0]),
    ]
    (row,) = study_page.retention({"groups": groups})
    assert (row["env"], row["perturbation"], row["level"]) == ("HopperNoVel-v5", "mass", 2.0)
    assert set(row["models"]) == {"a", "b"}
    assert row["models"]["a"]["iqm"] == pytest.approx(0.9) and row["models"]["b"]["iqm"] == pytest.approx(0.5)
    assert row["separated"] == ["a better than b"]
    lines = study_page._retention_lines([row], ["a", "b", "c"])
    assert "| HopperNoVel-v5 mass 2 | 0.90 [0.90, 0.90] | 0.50 [0.50, 0.50] |  | a better than b |" in lines


def _tagged(model, tag, condition, perturbation, level, mean):
    return {
        **_group("LaneKeeping-v0", model, perturbation, level, mean, [mean - 1, mean + 1]),
        "train_tag": tag,
        "condition": condition,
        "evaluation": 0 if condition == "noise" else 1,
    }


def test_a_tagged_study_gets_a_row_per_condition_and_training_tag(study_page):
    summary = {
        "groups": [
            _tagged("cnn", "untagged", "noise", "pixel_noise", 0.2, 400.0),
            _tagged("cnn", "untagged", "looks", "none", None, 300.0),
            _tagged("cnn", "ft", "noise", "pixel_noise", 0.2, 450.0),
            _tagged("cnn", "ft", "looks", "none", None, 350.0),
        ]
    }
    rows = [line for line in study_page._tables(summary, ["cnn"]) if line.startswith("| ") and "condition" not in line]
    assert rows == [
        "| noise pixel_noise 0.2 | 400 [399, 401] |",
        "| noise pixel_noise 0.2, ft | 450 [449, 451] |",
        "| looks | 300 [299, 301] |",
        "| looks, ft | 350 [349, 351] |",
    ]


def test_fine_tuning_is_read_as_the_probability_of_beating_its_own_imitation_runs(study_page):
    cell = {"env": "LaneKeeping-v0", "condition": "looks", "evaluation": 1, "perturbation": "none", "level": None}

    def pair(a, b, p, ci):
        return {**cell, "metric": "mean_return", "a": a, "b": b, "prob_improvement": p, "prob_improvement_ci": ci}

    spec = {
        "train": [
            {"kind": "bc", "env": "LaneKeeping-v0", "models": ["cnn", "ncp-ltc"], "seeds": [0, 1]},
            {"kind": "bc", "env": "LaneKeeping-v0", "models": ["cnn"], "seeds": [0, 1], "tag": "dr"},
            {
                "kind": "ppo",
                "env": "LaneKeeping-v0",
                "policies": ["mlp", "ltc"],
                "seeds": [0, 1],
                "timesteps": 64,
                "tag": "ft",
                "init_from": "untagged",
            },
        ]
    }
    summary = {
        "comparisons": [
            # pairs come in name order: "cnn" before "ft:cnn", "ft:ncp-ltc" before "ncp-ltc"
            pair("cnn", "ft:cnn", 0.1, [0.0, 0.3]),
            pair("ft:ncp-ltc", "ncp-ltc", 0.6, [0.3, 0.9]),
            pair("cnn", "ncp-ltc", 0.9, [0.7, 1.0]),
            pair("cnn", "dr:cnn", 0.2, [0.0, 0.4]),  # imitation under randomisation: not fine-tuning
        ]
    }
    lines = study_page._fine_tuning_lines(summary, spec, ["cnn", "ncp-ltc"])
    assert [line for line in lines if line.startswith("| looks")] == [
        "| looks, ft | **0.90 [0.70, 1.00]** | 0.60 [0.30, 0.90] |"
    ]
    assert study_page._fine_tuning_lines({"comparisons": summary["comparisons"][2:]}, spec, ["cnn"]) == []
