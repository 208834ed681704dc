"""The ``script`` fixture loads a file of scripts/ as a module.

In CI (``CI=true``, as ``.ci/run`` sets it) a test may not skip because something the suite needs is missing:
a module that an extra declares (``pytest.importorskip``), the C compiler for the native kernels, or Chromium for
the report check. Such a skip fails instead, naming what is missing, so that a broken install cannot turn tests
into skips and leave CI green. Outside CI these skips stay skips."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]  # tests/test_ci.py runs this file's hooks on a small suite of its own

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="session")
def script():
    """``script("study_page")``: scripts/study_page.py loaded as a module (scripts/ is not a package)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


#: Skip reasons (substrings) that mean "something the suite needs is not installed".
MISSING = (
    "could not import",
    "No module named",
    "Chromium is not installed",
    "no C compiler",
    "no native kernel",
    "is in the [video] extra",
)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(longrepr) -> str | None:
    text = str(longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else longrepr)
    return text if any(key in text for key in MISSING) else None


def _fail(report, reason: str) -> None:
    report.outcome = "failed"
    report.longrepr = (
        f"CI=true: this test would skip because something it needs is missing: {reason}. Install "
        'what the [dev] extra declares (pip install -e ".[dev]"), or the system package named.'
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = _missing(report.longrepr)
        if reason:
            _fail(report, reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.skipped:
        reason = _missing(report.longrepr)
        if reason:
            _fail(report, reason)
