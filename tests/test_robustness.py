"""ncp_control.agents.evaluation.robustness (and its intervals, results, workers): common random numbers, level 0 = unperturbed, intervals, errors, failures, parallel runs, CLI."""

import csv
import io
import json
import math

import numpy as np
import pytest
import torch

from ncp_control.agents.evaluation.episodes import evaluate
from ncp_control.agents.evaluation.intervals import mean_confidence_interval, t_quantile, wilson_interval
from ncp_control.agents.evaluation.robustness import parse_sweeps, robustness_sweep
from ncp_control.agents.evaluation.robustness_results import RobustnessResults
from ncp_control.agents.runs.load import load_run
from tests._robust_helpers import MeanPixel, Unpicklable, write_untrained_bc_run

torch.set_num_threads(1)

PROBE = "tests._robust_helpers:Probe-v0"
PROBE_LANE = "tests._robust_helpers:ProbeLane-v0"
TINY = "tests.imitation_synthetic:TinyLane-v0"


@pytest.fixture(scope="module")
def bc_run(tmp_path_factory):
    return write_untrained_bc_run(tmp_path_factory.mktemp("runs") / "cnn", kind="cnn")


# ----------------------------------------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    "probability, df, expected",
    [
        (0.975, 1, 12.706204736),
        (0.975, 2, 4.302652730),
        (0.975, 4, 2.776445105),
        (0.975, 9, 2.262157163),
        (0.975, 10, 2.228138852),
        (0.975, 30, 2.042272456),
        (0.95, 5, 2.015048373),
        (0.025, 4, -2.776445105),
    ],
)
def test_t_quantile_matches_published_values(probability, df, expected):
    assert t_quantile(probability, df) == pytest.approx(expected, rel=1e-8)


def test_mean_confidence_interval_on_a_known_sample():
    # mean 3, s = sqrt(2.5), half width = t(0.975, 4) * s / sqrt(5) = 2.776445105 * 0.707106781 = 1.963243
    mean, low, high = mean_confidence_interval([1, 2, 3, 4, 5])
    assert mean == 3.0
    assert (low, high) == pytest.approx((3 - 1.9632432, 3 + 1.9632432), abs=1e-6)
    _, low90, high90 = mean_confidence_interval([1, 2, 3, 4, 5], 0.90)
    assert high90 - low90 < high - low
    one = mean_confidence_interval([2.5])
    assert one[0] == 2.5 and math.isnan(one[1]) and math.isnan(one[2])
    with pytest.raises(ValueError, match="confidence"):
        mean_confidence_interval([1, 2], confidence=95)


def test_wilson_interval_on_known_counts():
    assert wilson_interval(8, 10) == pytest.approx((0.4901625, 0.9433178), abs=1e-6)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775328), abs=1e-6)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)


def test_plot_title_names_the_runs_env_when_no_env_id_was_given():
    from ncp_control.agents.evaluation.robustness_results import Row

    rows = [
        Row(
            model,
            "pixel_noise",
            level,
            returns=[1.0, 2.0, 3.0],
            lengths=[5, 5, 5],
            crashes=[False] * 3,
            successes=None,
            abs_lateral_m=None,
            distances_m=None,
        )
        for model in "ab"
        for level in (0.0, 0.5)
    ]

    def results(env_id):
        return RobustnessResults(
            env_id=env_id,
            episodes=3,
            seed=0,
            perturbation_seed=0,
            sweeps=[("pixel_noise", (0.0, 0.5))],
            rows=rows,
            models={"a": {"env_id": "LaneKeeping-v0"}, "b": {"env_id": "LaneKeeping-v0"}, "c": {"source": "broken"}},
            failures={"c": "no run"},
        )

    assert results(None).env_label == "LaneKeeping-v0"
    assert results("Other-v0").env_label == "Other-v0"
    fig = results(None).plot()
    assert fig._suptitle.get_text().startswith("LaneKeeping-v0: 3 episodes")
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_the_sweep_module_still_exports_the_names_that_moved():
    """Intervals and results live in their own modules; ``robustness`` re-exports them for existing imports."""
    from ncp_control.agents.evaluation import intervals, robustness, robustness_results, robustness_workers

    for name in ("t_quantile", "mean_confidence_interval", "wilson_interval"):
        assert getattr(robustness, name) is getattr(intervals, name)
    for name in ("Row", "RobustnessResults", "CI_METHOD"):
        assert getattr(robustness, name) is getattr(robustness_results, name)
    assert robustness.Condition is robustness_workers.Condition
    assert set(robustness.__all__) <= set(dir(robustness))


# ------------------------------------------------------------------------------------------------ protocol


def test_models_meet_identical_perturbation_draws():
    """Reward = executed action = mean noisy pixel + offset: two models' returns differ by exactly offset * steps
    at every noise level only if both saw the same noisy images."""
    results = robustness_sweep(
        {"a": MeanPixel(0.0), "b": MeanPixel(0.25)}, PROBE, ["pixel_noise:0,0.2,0.5"], episodes=5, seed=3
    )
    for level in (0.0, 0.2, 0.5):
        a = np.array(results.row("a", "pixel_noise", level).returns)
        b = np.array(results.row("b", "pixel_noise", level).returns)
        np.testing.assert_allclose(b - a, 0.25 * 6, rtol=0, atol=1e-5)
    clean = np.array(results.row("a", "pixel_noise", 0.0).returns)
    noisy = np.array(results.row("a", "pixel_noise", 0.5).returns)
    assert np.all(np.abs(noisy - clean) > 1e-4)  # the noise does act
    # and a different perturbation seed gives different draws
    other = robustness_sweep(
        {"a": MeanPixel(0.0)}, PROBE, ["pixel_noise:0.5"], episodes=5, seed=3, perturbation_seed=99
    )
    assert not np.allclose(other.row("a", "pixel_noise", 0.5).returns, noisy)


@pytest.mark.parametrize("share_neutral", [True, False])
def test_level_zero_equals_the_unperturbed_evaluation(bc_run, share_neutral):
    sweeps = ["pixel_noise:0,0.3", "action_delay:0,2", "irregular_time:1,3"]
    results = robustness_sweep(
        [bc_run], TINY, sweeps, episodes=3, seed=1_000_000, block_episodes=2, share_neutral=share_neutral
    )
    plain = evaluate(load_run(bc_run).predictor, TINY, 3, 1_000_000)
    for name, level in (("pixel_noise", 0.0), ("action_delay", 0), ("irregular_time", 1)):
        row = results.row("cnn", name, level)
        assert row.returns == plain["returns"] and row.lengths == plain["lengths"]
        assert row.abs_lateral_m == plain["abs_lateral_m"] and row.successes == plain["successes"]
        assert row.crashes == plain["crashes"]
    assert results.row("cnn", "pixel_noise", 0.3).returns != plain["returns"]


def test_results_do_not_depend_on_the_number_of_processes(bc_run):
    """Workers load the run folder themselves and get the Predictor object by pickling; same numbers as serial."""
    any_image = MeanPixel(0.1)
    any_image.observation_space = None  # it averages any image
    bad = Unpicklable(0.1)
    bad.observation_space = None
    models = {"run": bc_run, "object": any_image, "bad": bad}
    kwargs = dict(episodes=3, seed=1_000_000, block_episodes=1)
    sweeps = ["pixel_noise:0,0.3", "dropout:0.2"]
    serial = robustness_sweep(models, TINY, sweeps, **kwargs)
    parallel = robustness_sweep(models, TINY, sweeps, processes=2, **kwargs)
    assert [r.to_dict() for r in serial.rows if r.model != "bad"] == [r.to_dict() for r in parallel.rows]
    assert len(parallel.rows) == 2 * 3
    assert serial.failures == {} and parallel.labels == ["run", "object"]  # in one process nothing is pickled
    assert "cannot send this predictor" in parallel.failures["bad"]  # reported, not fatal


# ------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "spec, message",
    [
        ("pixel_nois:0.1", "unknown perturbation 'pixel_nois'.*valid names: obs_noise, pixel_noise"),
        ("pixel_noise:abc", "pixel_noise level must be a number.*valid names"),
        ("action_delay:1.5", "action_delay level must be an integer.*valid names"),
        ("pixel_noise", "malformed perturbation spec.*valid names"),
        ("dropout:0,2", r"dropout level must be in \[0.0, 1.0\]"),
    ],
)
def test_bad_perturbations_list_the_valid_ones(spec, message):
    with pytest.raises(ValueError, match=message):
        robustness_sweep([MeanPixel()], PROBE, [spec], episodes=1, seed=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="swept once"):
        parse_sweeps(["pixel_noise:0", "pixel_noise:0.1"])
    with pytest.raises(ValueError, match="at least one perturbation"):
        parse_sweeps([])
    with pytest.raises(TypeError, match="list of sweep specs"):
        parse_sweeps("pixel_noise:0")
    with pytest.raises(ValueError, match="episodes must be a positive int"):
        robustness_sweep([MeanPixel()], PROBE, ["pixel_noise:0"], episodes=0, seed=0)
    with pytest.raises(ValueError, match="start_method"):
        robustness_sweep([MeanPixel()], PROBE, ["pixel_noise:0"], episodes=1, seed=0, start_method="fork")


def test_unloadable_runs_are_reported_and_the_others_evaluate(tmp_path):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{not json")
    results = robustness_sweep(
        {"ok": MeanPixel(), "missing": tmp_path / "nope", "corrupt": corrupt},
        PROBE_LANE,
        ["pixel_noise:0,0.3"],
        episodes=3,
        seed=0,
    )
    assert set(results.failures) == {"missing", "corrupt"}
    assert "does not exist" in results.failures["missing"] and "corrupt" in results.failures["corrupt"]
    assert results.labels == ["ok"] and len(results.rows) == 2
    assert "Not evaluated: missing" in results.table()


# ------------------------------------------------------------------------------------------------ outputs


def test_lane_metrics_writers_and_json_round_trip(tmp_path):
    # gain 8 steers hard: grey > 127.5 drifts right and crashes, darker roads drift left and crash or not
    results = robustness_sweep(
        {"calm": MeanPixel(0.0, 0.1), "wild": MeanPixel(0.0, 8.0)},
        PROBE_LANE,
        ["pixel_noise:0,0.3", "action_delay:0,1"],
        episodes=6,
        seed=0,
    )
    wild = results.row("wild", "pixel_noise", 0.0).summary()
    calm = results.row("calm", "pixel_noise", 0.0).summary()
    assert calm["crash_rate"] == 0.0 and calm["completion_rate"] == 1.0
    assert wild["crash_rate"] > 0.5 and wild["completion_rate"] == pytest.approx(1.0 - wild["crash_rate"])
    assert wild["crash_ci_low"] <= wild["crash_rate"] <= wild["crash_ci_high"]
    assert wild["mean_abs_lateral_m"] > calm["mean_abs_lateral_m"]
    paths = results.write(tmp_path)
    assert {p.name for p in paths.values()} == {"robustness.md", "robustness.csv", "robustness.json", "robustness.png"}
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert len(rows) == 2 * 4 and rows[0]["model"] == "calm" and float(rows[0]["crash_rate"]) == 0.0
    back = RobustnessResults.from_dict(json.loads(paths["json"].read_text()))
    assert back.table() == results.table()
    assert [r.to_dict() for r in back.rows] == [r.to_dict() for r in results.rows]
    assert "| pixel_noise | 0.3 | wild |" in paths["table"].read_text()


def test_models_are_compared_with_rliables_probability_of_improvement_over_episodes():
    from ncp_control.agents.evaluation.robustness_results import Row
    from ncp_control.agents.evaluation.statistics import aggregate_intervals

    rng = np.random.default_rng(0)

    def row(model, level, returns):
        return Row(
            model,
            "obs_noise",
            level,
            [float(v) for v in returns],
            [10] * len(returns),
            [False] * len(returns),
            None,
            None,
            None,
        )

    low, twin_a, twin_b = rng.normal(0.0, 1.0, 20), rng.normal(5.0, 1.0, 20), rng.normal(5.0, 1.0, 20)
    rows = [row("good", 0.0, low + 5.0), row("bad", 0.0, low), row("good", 0.1, twin_a), row("bad", 0.1, twin_b)]
    results = RobustnessResults(
        env_id="E",
        episodes=20,
        seed=0,
        perturbation_seed=0,
        sweeps=[("obs_noise", (0.0, 0.1))],
        rows=rows,
        models={"good": {}, "bad": {}},
        failures={},
    )
    # better by construction at level 0, two draws of the same distribution at level 0.1
    assert results.verdicts() == ["obs_noise 0: good better than bad", "obs_noise 0.1: not separated"]
    (first, second) = results.statistics()["comparisons"]
    assert (first["a"], first["b"], first["prob_improvement"]) == ("good", "bad", pytest.approx(1.0, abs=0.01))
    assert second["prob_improvement_ci"][0] < 0.5 < second["prob_improvement_ci"][1]
    summary = results.summaries()[0]
    assert summary["iqm_return"] == pytest.approx(aggregate_intervals({"x": low + 5.0})["x"]["iqm"])
    assert summary["iqm_return_ci_low"] <= summary["iqm_return"] <= summary["iqm_return_ci_high"]
    assert "- obs_noise 0: good better than bad" in results.table()
    assert "iqm_return_ci_low" in results.csv().splitlines()[0]
    assert results.to_dict()["comparisons"][0]["prob_improvement_ci"] == first["prob_improvement_ci"]


def test_cli_writes_outputs_and_rejects_bad_specs(bc_run, tmp_path, capsys):
    from ncp_control.agents.cli import main

    code = main(
        [
            "robustness",
            str(bc_run),
            "--env",
            TINY,
            "--perturb",
            "pixel_noise:0,0.2",
            "--perturb",
            "action_delay:0,3",
            "--episodes",
            "2",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
            "--no-plot",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "| action_delay | 3 | cnn |" in out
    data = json.loads((tmp_path / "out" / "robustness.json").read_text())
    assert data["seed"] == 1_000_000 and len(data["rows"]) == 4 and data["failures"] == {}
    code = main(["robustness", str(bc_run), "--perturb", "noise:0.1", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "valid names: obs_noise" in capsys.readouterr().err
