"""The verdict statistics (ncp_control.agents.evaluation.statistics) against rliable's own answers, and the verdict
rule on synthetic studies where the answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

rliable = pytest.importorskip("rliable", reason="rliable is a dependency: pip install -e .")

from rliable import library, metrics  # noqa: E402

from ncp_control.agents.evaluation import statistics as st  # noqa: E402

# A small fixed score matrix: 6 runs x 2 tasks, and a second model's 5 runs.
A = np.array([[0.9, 0.7], [0.2, 0.4], [0.5, 0.55], [0.8, 0.1], [0.35, 0.95], [0.6, 0.3]])
B = np.array([[0.1, 0.2], [0.3, 0.5], [0.05, 0.15], [0.6, 0.4], [0.25, 0.0]])


def test_iqm_and_mean_with_their_intervals_are_rliables():
    got = st.aggregate_intervals({"a": A}, reps=500, seed=3)["a"]
    assert got["iqm"] == pytest.approx(metrics.aggregate_iqm(A))
    assert got["mean"] == pytest.approx(A.mean())
    # rliable called directly with the same bootstrap seed gives the same intervals (rliable 1.2 draws from NumPy's
    # global generator whatever random_state it is given)
    np.random.seed(3)
    points, intervals = library.get_interval_estimates(
        {"a": A},
        lambda x: np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)]),
        method="percentile",
        reps=500,
        random_state=np.random.RandomState(3),
    )
    assert got["iqm_ci"] == pytest.approx(list(intervals["a"][:, 0]))
    assert got["mean_ci"] == pytest.approx(list(intervals["a"][:, 1]))
    assert got["iqm_ci"][0] <= got["iqm"] <= got["iqm_ci"][1] and got["n_runs"] == 6
    # the IQM is the 25% trimmed mean over all runs and tasks
    flat = np.sort(A.reshape(-1))
    assert got["iqm"] == pytest.approx(flat[3:9].mean())


def test_intervals_are_reproducible_and_one_run_has_none():
    first = st.aggregate_intervals({"a": A[:, 0]}, reps=300)
    np.random.seed(1)
    before = np.random.random()
    np.random.seed(1)
    assert first == st.aggregate_intervals({"a": A[:, 0]}, reps=300)
    assert np.random.random() == before  # NumPy's global generator is left as it was
    assert st.aggregate_intervals({"a": [0.5]})["a"]["iqm_ci"] is None


def test_probability_of_improvement_is_rliables_mann_whitney_with_its_interval():
    # a = 3, 4, 5 against b = 1, 2, 6: 6 of 9 pairs are wins
    p, ci = st.probability_of_improvement([3.0, 4.0, 5.0], [1.0, 2.0, 6.0], reps=500)
    assert p == pytest.approx(6 / 9)
    assert 0.0 <= ci[0] <= p <= ci[1] <= 1.0
    p, _ = st.probability_of_improvement(A, B, reps=200)
    assert p == pytest.approx(metrics.probability_of_improvement(A, B))
    rng = np.random.default_rng(1)
    for shape_a, shape_b in (((5, 3), (7, 3)), ((2, 1), (9, 1))):  # the broadcast form equals rliable's, ties too
        x, y = rng.integers(0, 4, shape_a).astype(float), rng.integers(0, 4, shape_b).astype(float)
        point, _ = st.probability_of_improvement(x, y, reps=10)
        assert point == pytest.approx(metrics.probability_of_improvement(x, y))
    # ties count half; lower-is-better metrics are negated first
    assert st.probability_of_improvement([1.0, 1.0], [1.0, 1.0], reps=50)[0] == pytest.approx(0.5)
    low_better = st.probability_of_improvement([0.1, 0.2], [0.5, 0.6], higher_is_better=False, reps=50)
    assert low_better[0] == 1.0
    with pytest.raises(ValueError, match="at least two runs"):
        st.probability_of_improvement([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="same tasks"):
        st.probability_of_improvement(A, B[:, :1])
    with pytest.raises(ValueError, match="finite"):
        st.aggregate_intervals({"a": [1.0, float("nan")]})


def test_rate_intervals_stay_within_zero_and_one():
    rates = {"a": [0.0, 0.0, 1.0, 0.05, 0.0], "b": [1.0, 1.0, 0.9, 1.0, 0.95]}
    for stats in st.aggregate_intervals(rates, reps=500).values():
        for low, high in (stats["iqm_ci"], stats["mean_ci"]):
            assert 0.0 <= low <= high <= 1.0


def test_the_verdict_needs_the_whole_interval_above_one_half():
    assert st.separated("a", "b", [0.51, 0.9]) == "a better than b"
    assert st.separated("a", "b", [0.1, 0.49]) == "b better than a"
    assert st.separated("a", "b", [0.5, 0.9]) is None and st.separated("a", "b", [0.2, 0.8]) is None


def test_a_model_better_by_construction_is_separated_and_identical_ones_are_not():
    rng = np.random.default_rng(0)
    good, bad = rng.normal(1.0, 0.3, 10), rng.normal(0.0, 0.3, 10)
    twin_a, twin_b = rng.normal(0.0, 0.3, 10), rng.normal(0.0, 0.3, 10)
    found = st.pairwise_improvement({"good": good, "bad": bad}, reps=1000)
    assert st.separated("bad", "good", found[("bad", "good")]["prob_improvement_ci"]) == "good better than bad"
    twins = st.pairwise_improvement({"a": twin_a, "b": twin_b}, reps=1000)[("a", "b")]
    assert st.separated("a", "b", twins["prob_improvement_ci"]) is None


def test_performance_profiles_are_rliables_score_distributions():
    taus = np.linspace(0.0, 1.0, 11)
    profile, band = st.performance_profiles({"a": A}, taus, reps=200)["a"]
    assert profile == pytest.approx(library.score_distributions(A, taus))
    assert band.shape == (2, 11) and np.all(band[0] <= profile + 1e-12) and np.all(profile <= band[1] + 1e-12)


def test_performance_profile_and_sample_efficiency_figures(tmp_path):
    path = st.plot_performance_profiles(
        {"sigma 0.1": {"a": A[:, 0], "b": B[:, 0]}, "sigma 0.2": {"a": A[:, 1]}},
        tmp_path / "p.png",
        title="t",
        metric="completion_rate",
        reps=100,
    )
    assert path.stat().st_size > 1000
    curves = np.stack([A, A + 0.1, A + 0.2], axis=-1)  # (runs, tasks, steps)
    got = st.sample_efficiency({"a": curves}, reps=100)["a"]
    assert got["iqm"] == pytest.approx([metrics.aggregate_iqm(curves[..., t]) for t in range(3)])
    assert len(got["iqm_ci"]) == 3


def test_the_declared_requirements_alone_import_and_run_rliable(tmp_path):
    """rliable 1.2 pins arch<8 and arch 7 fails at import with pandas 3: the requirements pyproject.toml declares
    for it are enough, in a fresh venv without the rest of the project."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    declared = re.findall(r'^\s*"((?:rliable|pandas)\b[^"]*)",', pyproject, re.M)
    assert sorted(r.split(">")[0].split("<")[0] for r in declared) == ["pandas", "rliable"], declared
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    done = subprocess.run(
        [python, "-m", "pip", "install", "-q", *declared], capture_output=True, text=True, timeout=900, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    code = (
        "import numpy as np; from rliable import library, metrics; "
        "p, ci = library.get_interval_estimates({'a': np.arange(12.).reshape(6, 2)}, metrics.aggregate_iqm, "
        "reps=50); print(float(p['a']))"
    )
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert float(done.stdout) == pytest.approx(5.5)
