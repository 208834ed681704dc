"""The README's measured figures agree with the data files in docs/ (scripts/render_readme_results.py)."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def renderer():
    spec = importlib.util.spec_from_file_location("render_readme_results", ROOT / "scripts/render_readme_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_results_blocks_equal_a_fresh_render_from_the_data(renderer):
    text = (ROOT / "README.md").read_text()
    assert renderer.render(text) == text, "README.md drifted from docs/: run python scripts/render_readme_results.py"


def test_a_changed_figure_is_caught(renderer):
    text = (ROOT / "README.md").read_text()
    tampered = text.replace("16.7x faster than ncps", "20x faster than ncps", 1)
    assert tampered != text and renderer.render(tampered) != tampered


def test_every_block_is_rendered_and_none_is_unknown(renderer):
    text = (ROOT / "README.md").read_text()
    names = re.findall(r"<!-- results:([a-z-]+) -->", text)
    assert sorted(names) == sorted(renderer.RENDERERS)
    with pytest.raises(ValueError, match="do not match"):
        renderer.render(text.replace("<!-- results:speed -->", "<!-- results:spead -->"))


def test_spread_over_seeds_is_the_sample_standard_deviation(renderer):
    # -195, -157, -180: ddof=1 gives 19.1 (ddof=0 would give 15.6)
    assert renderer._seeds([-195.0, -157.0, -180.0]) == "−177 ± 19 (−195, −157, −180)"
