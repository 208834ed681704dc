"""Open a ``report.html`` in headless Chromium: every image loads, the console stays clean, nothing is wider than
the window; optionally save a screenshot.

Chromium is not a Python dependency: install the Debian package (``apt-get install -y chromium``) or point
``NCP_CONTROL_CHROMIUM`` at a Chrome/Chromium binary. ``scripts/check_report.py`` is the command-line entry point;
``tests/test_inspect.py`` runs the check on a freshly written report when Chromium is present.

How: the report is copied next to itself with a small probe script in its ``<head>`` that records error events
(failed image loads included) and ``console.error`` calls, and on ``load`` writes what it found (each image's
``naturalWidth``, the page's scroll width) into the DOM; ``chromium --headless --dump-dom`` prints that DOM.
Console messages Chromium logs on stderr (``--enable-logging=stderr``) are collected too.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ReportCheck", "chromium_executable", "check_report", "screenshot"]

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-extensions",
)
_PROBE_ID = "ncp-report-check"
_PROBE = """<script>
window.__reportErrors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  window.__reportErrors.push(t && t !== window && (t.src || t.href) ? 'failed to load ' + (t.src || t.href)
                                                                   : String(e.message));
}, true);
var __consoleError = console.error;
console.error = function () { window.__reportErrors.push(Array.from(arguments).join(' '));
                              __consoleError.apply(console, arguments); };
window.addEventListener('load', function () {
  var images = Array.from(document.images).map(function (i) {
    return {src: i.getAttribute('src'), width: i.naturalWidth, loaded: i.complete && i.naturalWidth > 0}; });
  var out = document.createElement('pre');
  out.id = '__PROBE_ID__';
  out.textContent = JSON.stringify({images: images, errors: window.__reportErrors,
                                    page_width: document.documentElement.scrollWidth,
                                    window_width: window.innerWidth});
  document.body.appendChild(out);
});
</script>""".replace("__PROBE_ID__", _PROBE_ID)
# Chromium's console lines on stderr: [pid:tid:date:LEVEL:CONSOLE(line)] "message", source: url (line)
_CONSOLE = re.compile(r":(INFO|WARNING|ERROR|FATAL):CONSOLE[^\]]*\] (.*)")


@dataclass
class ReportCheck:
    """What Chromium saw: ``images`` (src, natural width, loaded), ``errors`` (page errors, failed loads,
    ``console.error``), ``console`` (every console line on stderr), page and window widths in CSS pixels."""

    images: list[dict]
    errors: list[str]
    page_width: int
    window_width: int
    console: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Everything wrong, in words (empty when the report renders cleanly)."""
        found = [f"image {i['src']} did not load" for i in self.images if not i["loaded"]]
        found += [f"page error: {e}" for e in self.errors]
        found += [f"console: {line}" for line in self.console]
        if self.page_width > self.window_width:
            found.append(
                f"the page is {self.page_width} px wide in a {self.window_width} px window "
                "(something does not fit or scroll inside the page)"
            )
        return found


def chromium_executable() -> str | None:
    """``NCP_CONTROL_CHROMIUM`` if set, else the first of chromium, chromium-browser, google-chrome(-stable) on
    PATH, else None."""
    override = os.environ.get("NCP_CONTROL_CHROMIUM")
    if override:
        return override
    return next((path for path in map(shutil.which, _CANDIDATES) if path), None)


def _chromium(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    binary = chromium_executable()
    if binary is None:
        raise FileNotFoundError(
            "no Chromium found: install it (apt-get install -y chromium) or set "
            "NCP_CONTROL_CHROMIUM to a Chrome/Chromium binary"
        )
    return subprocess.run([binary, *_FLAGS, *args], capture_output=True, text=True, timeout=timeout)


def check_report(report: str | Path, *, width: int = 1400, height: int = 1000, timeout: float = 120.0) -> ReportCheck:
    """Load ``report`` in headless Chromium at ``width x height`` and return what it saw (see :class:`ReportCheck`).

    Raises:
        FileNotFoundError: no report or no Chromium. RuntimeError: Chromium printed no probe result.
    """
    report = Path(report).resolve()
    if not report.is_file():
        raise FileNotFoundError(f"no report at {report}")
    probe = report.with_name(f".{report.stem}.check.html")  # next to it: relative image paths still resolve
    text = report.read_text()
    probe.write_text(text.replace("<head>", "<head>" + _PROBE, 1) if "<head>" in text else _PROBE + text)
    try:
        done = _chromium(
            [
                "--enable-logging=stderr",
                "--v=0",
                "--virtual-time-budget=15000",
                f"--window-size={width},{height}",
                "--dump-dom",
                probe.as_uri(),
            ],
            timeout,
        )
    finally:
        probe.unlink(missing_ok=True)
    match = re.search(rf'<pre id="{_PROBE_ID}">(.*?)</pre>', done.stdout, re.S)
    if match is None:
        raise RuntimeError(
            f"Chromium returned no probe result for {report} (exit {done.returncode}): {done.stderr[-1500:]}"
        )
    found = json.loads(html.unescape(match.group(1)))
    console = [m.group(2) for m in map(_CONSOLE.search, done.stderr.splitlines()) if m]
    return ReportCheck(
        images=found["images"],
        errors=found["errors"],
        page_width=int(found["page_width"]),
        window_width=int(found["window_width"]),
        console=console,
    )


def screenshot(
    report: str | Path, out: str | Path, *, width: int = 1400, height: int = 3000, timeout: float = 120.0
) -> Path:
    """Save a PNG of ``report`` rendered at ``width x height`` by headless Chromium; returns ``out``.

    Raises:
        RuntimeError: Chromium wrote no screenshot.
    """
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    done = _chromium(
        [
            f"--screenshot={out}",
            f"--window-size={width},{height}",
            "--virtual-time-budget=15000",
            Path(report).resolve().as_uri(),
        ],
        timeout,
    )
    if not out.is_file():
        raise RuntimeError(f"Chromium wrote no screenshot of {report} (exit {done.returncode}): {done.stderr[-1500:]}")
    return out
