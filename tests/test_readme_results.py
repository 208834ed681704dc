"""README.md's results table and docs/results.md agree with the data files in docs/data/
(scripts/render_readme_results.py)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def renderer(script):
    return script("render_readme_results")


def test_the_pages_are_the_readme_and_docs_results(renderer):
    assert set(renderer.PAGES) == {ROOT / "README.md", ROOT / "docs" / "results.md"}


@pytest.mark.parametrize("page", ["README.md", "docs/results.md"])
def test_results_blocks_equal_a_fresh_render_from_the_data(renderer, page):
    path = ROOT / page
    text = path.read_text()
    assert renderer.render(text, path) == text, (
        f"{page} drifted from docs/data/: run python scripts/render_readme_results.py"
    )


def test_a_changed_figure_is_caught(renderer):
    path = ROOT / "docs" / "results.md"
    text = path.read_text()
    tampered = text.replace("16.7x faster than ncps", "20x faster than ncps", 1)
    assert tampered != text and renderer.render(tampered, path) != tampered
    readme = ROOT / "README.md"
    text = readme.read_text()
    tampered = text.replace("LTC training 16.7x faster", "LTC training 20x faster", 1)
    assert tampered != text and renderer.render(tampered, readme) != tampered


def test_every_block_is_rendered_and_none_is_unknown(renderer):
    for path, blocks in renderer.PAGES.items():
        text = path.read_text()
        names = re.findall(r"<!-- results:([a-z-]+) -->", text)
        assert sorted(names) == sorted(blocks), path
    text = (ROOT / "docs" / "results.md").read_text()
    with pytest.raises(ValueError, match="do not match"):
        renderer.render(text.replace("<!-- results:speed -->", "<!-- results:spead -->"), ROOT / "docs" / "results.md")
    with pytest.raises(ValueError, match="do not match"):  # a block rendered into the wrong page
        renderer.render(text, ROOT / "README.md")


def test_the_rendered_text_links_only_to_files_that_exist(renderer):
    for path, blocks in renderer.PAGES.items():
        for name, render in blocks.items():
            for target in re.findall(r"\]\(([^)]+)\)", render()):
                assert (path.parent / target).exists(), f"{path.name} block {name} links to missing {target}"


def test_spread_over_seeds_is_the_sample_standard_deviation(renderer):
    # -195, -157, -180: ddof=1 gives 19.1 (ddof=0 would give 15.6)
    assert renderer.spread([-195.0, -157.0, -180.0]) == "−177 ± 19 (−195, −157, −180)"


def _group(tag, model, condition, per_seed):
    import statistics

    mean = statistics.fmean(per_seed)
    half = 0.1 if len(set(per_seed)) > 1 else 0.0
    rate = {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "per_seed": per_seed}
    return {
        "env": "LaneKeeping-v0",
        "kind": "bc",
        "train_tag": tag,
        "model": model,
        "evaluation": 0,
        "episodes": 20,
        "condition": condition,
        "perturbation": "none",
        "level": None,
        "n_seeds": len(per_seed),
        "metrics": {"completion_rate": rate},
    }


def test_generalisation_bullet_reports_each_training_and_the_verdict_from_the_intervals(renderer):
    groups = [
        _group(tag, model, condition, [1.0, 1.0, 1.0])
        for tag, conditions in (("untagged", ("clean", "colours", "lighting", "all")), ("dr", ("clean", "all")))
        for model in ("lstm", "ncp-ltc")
        for condition in conditions
    ]
    summary = {
        "key": ["env", "kind", "train_tag", "model", "evaluation", "condition", "perturbation", "level"],
        "groups": groups,
    }
    text = renderer.generalisation_bullet(summary)
    assert "3 training seeds" in text and "not separated" in text and "every model >= 100%" in text
    # ncp-ltc falls apart under all elements when trained clean: the lowest single element and a separation
    summary["groups"] = [
        g
        for g in groups
        if not (g["model"] == "ncp-ltc" and g["train_tag"] == "untagged" and g["condition"] in ("lighting", "all"))
    ]
    summary["groups"] += [
        _group("untagged", "ncp-ltc", "lighting", [0.9, 0.8, 0.7]),
        _group("untagged", "ncp-ltc", "all", [0.3, 0.2, 0.1]),
    ]
    text = renderer.generalisation_bullet(summary)
    assert "lowest: ncp-ltc under lighting)" in text and "every model >= 80%" in text
    assert "ncp-ltc 20% [10%, 30%], lstm 100% [100%, 100%]" in text
    assert "Separated on completion" in text and "lstm better than ncp-ltc" in text
    assert "dr:ncp-ltc better than ncp-ltc" in text


def _ppo_group(env, model, returns):
    import statistics

    mean = statistics.fmean(returns)
    low, high = (mean - 50, mean + 50) if len(returns) > 1 else (None, None)
    return {
        "env": env,
        "kind": "ppo",
        "model": model,
        "evaluation": 0,
        "perturbation": "none",
        "level": None,
        "episodes": 10,
        "n_seeds": len(returns),
        "metrics": {"mean_return": {"mean": mean, "ci_low": low, "ci_high": high, "per_seed": returns}},
    }


def test_mujoco_bullet_names_each_policy_the_reference_line_and_unfinished_cells(renderer):
    spec = {
        "train": [
            {"env": env, "policies": policies, "seeds": [seed], "timesteps": 150000}
            for seed in (0, 1, 2)
            for env, policies in (("HopperNoVel-v5", ["ltc", "mlp"]), ("Hopper-v5", ["mlp"]))
        ]
    }
    summary = {
        "groups": [
            _ppo_group("HopperNoVel-v5", "ltc", [900.0, 1000.0, 1100.0]),
            _ppo_group("HopperNoVel-v5", "mlp", [300.0, 310.0]),
            _ppo_group("Hopper-v5", "mlp", [1500.0, 1600.0, 1700.0]),
        ]
    }
    text = renderer.mujoco_bullet(summary, spec)
    assert "150k steps, 3 training seeds per policy, 10 held-out episodes" in text
    assert "HopperNoVel-v5: ltc 1,000 [950, 1,050], mlp 305 [255, 355] (2 of 3 seeds)" in text
    assert "reference, MLP on Hopper-v5: 1,600 [1,550, 1,650]" in text
    assert (
        "Separated (rliable: P(a better than b) interval above 0.5; weak evidence at 2 seeds): HopperNoVel-v5: "
        "ltc better than mlp" in text
    )
    summary["groups"][1] = _ppo_group("HopperNoVel-v5", "mlp", [950.0, 1000.0, 1050.0])
    assert "No two policies separated" in renderer.mujoco_bullet(summary, spec)


def test_mujoco_bullet_gives_no_verdict_while_a_cell_has_one_seed(renderer):
    spec = {"train": [{"env": "HopperNoVel-v5", "policies": ["ltc", "mlp"], "seeds": [0, 1, 2], "timesteps": 150000}]}
    summary = {
        "groups": [
            _ppo_group("HopperNoVel-v5", "ltc", [900.0, 1000.0, 1100.0]),
            _ppo_group("HopperNoVel-v5", "mlp", [300.0]),
        ]
    }
    text = renderer.mujoco_bullet(summary, spec)
    assert "mlp 300 (1 of 3 seeds)" in text and "2 of 6 runs to go; no verdict yet" in text
    assert "separated" not in text.lower()
