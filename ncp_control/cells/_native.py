"""Native kernels: compile the C sources in ``cells/native/`` on first use, cache the shared library, load it.

The package ships plain C99 sources (no Python or torch headers) and compiles them with the system C compiler
the first time a fast cell runs (about 1-5 s), into a per-user cache reused by every later process. Where that is
impossible (no compiler, a read-only cache, an unsupported platform) the cells fall back to their pure-torch
implementation, which gives the same numbers more slowly, and ONE warning says why.

Environment variables:

- ``NCP_CONTROL_PURE_TORCH=1``: never compile or load a kernel; always use the pure-torch path (no warning).
  Read once per process, when the first fast cell runs.
- ``NCP_CONTROL_CACHE_DIR``: where compiled libraries are kept (default ``$XDG_CACHE_HOME/ncp_control`` or
  ``~/.cache/ncp_control``). A library is named by a hash of its source, compiler and flags, so editing a source
  or changing the compiler recompiles; stale files can be deleted at any time.
- ``CC``: the C compiler (default: the first of ``cc``, ``gcc``, ``clang`` on the PATH).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path

_SOURCE_DIR = Path(__file__).with_name("native")
_PURE_TORCH_ENV = "NCP_CONTROL_PURE_TORCH"
_CACHE_ENV = "NCP_CONTROL_CACHE_DIR"
#: Flag sets tried in order: the first that compiles wins (``-march=native`` is not accepted everywhere). No
#: ``-ffast-math``: results keep IEEE semantics; ``-fno-trapping-math`` only lets branches on floats vectorise.
_FLAG_SETS = (
    ("-O3", "-march=native", "-fopenmp-simd", "-fno-trapping-math", "-fno-math-errno", "-fPIC", "-shared"),
    ("-O3", "-fopenmp-simd", "-fno-trapping-math", "-fno-math-errno", "-fPIC", "-shared"),
    ("-O2", "-fPIC", "-shared"),
)

_lock = threading.Lock()
_libraries: dict[str, ctypes.CDLL | None] = {}  # source name -> library, or None if it could not be built
_failures: dict[str, str] = {}  # source name -> reason
_warned = False


def pure_torch_forced() -> bool:
    """True if ``NCP_CONTROL_PURE_TORCH`` asks for the pure-torch path."""
    return os.environ.get(_PURE_TORCH_ENV, "").strip().lower() not in ("", "0", "false", "no")


def cache_dir() -> Path:
    """Directory holding the compiled libraries (see the module docstring)."""
    if os.environ.get(_CACHE_ENV):
        return Path(os.environ[_CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ncp_control"


def _compiler() -> str | None:
    cc = os.environ.get("CC")
    if cc:
        return shutil.which(cc) or (cc if os.path.isfile(cc) else None)
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _machine_tag() -> str:
    """Identifies the CPU features ``-march=native`` compiled for, so a shared cache never mixes machines."""
    tag = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features", "model name")):
                    tag += line
    except OSError:
        tag += platform.processor()
    return tag


def _library_suffix() -> str:
    return {"win32": ".dll", "darwin": ".dylib"}.get(sys.platform, ".so")


def _build(name: str) -> ctypes.CDLL:
    """Compile (or find in the cache) and load ``native/<name>.c``; raises ``RuntimeError`` with the reason."""
    source = _SOURCE_DIR / f"{name}.c"
    if not source.is_file():
        raise RuntimeError(f"kernel source {source} is missing from the installation")
    cc = _compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (looked for $CC, cc, gcc, clang)")
    text = source.read_bytes()
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeError(f"cannot create the cache directory {directory}: {exc}") from exc
    errors = []
    for flags in _FLAG_SETS:
        key = hashlib.sha256(b"\0".join([text, cc.encode(), " ".join(flags).encode(), _machine_tag().encode()]))
        target = directory / f"{name}-{key.hexdigest()[:16]}{_library_suffix()}"
        if not target.is_file():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=_library_suffix(), dir=directory)
            os.close(fd)
            cmd = [cc, *flags, "-o", tmp, str(source), "-lm"]
            try:
                run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            except (OSError, subprocess.SubprocessError) as exc:
                os.unlink(tmp)
                errors.append(f"{' '.join(cmd)}: {exc}")
                continue
            if run.returncode != 0:
                os.unlink(tmp)
                errors.append(f"{' '.join(cmd)}: {run.stderr.strip()[-500:]}")
                continue
            os.replace(tmp, target)  # atomic: concurrent processes never load a half-written file
        try:
            return ctypes.CDLL(str(target))
        except OSError as exc:
            errors.append(f"loading {target}: {exc}")
    raise RuntimeError("compilation failed: " + " | ".join(errors))


def load(name: str) -> ctypes.CDLL | None:
    """The compiled library for ``native/<name>.c``, or None when the pure-torch path must be used.

    Thread-safe; compiles at most once per process (and once per machine thanks to the cache). The first failure
    emits one ``RuntimeWarning`` for the whole package.
    """
    lib = _libraries.get(name, False)
    if lib is not False:
        return lib
    global _warned
    with _lock:
        if name in _libraries:
            return _libraries[name]
        if pure_torch_forced():  # read once per process, when the first cell runs
            _libraries[name] = None
            _failures[name] = f"{_PURE_TORCH_ENV} is set"
            return None
        try:
            lib = _build(name)
        except RuntimeError as exc:
            lib = None
            _failures[name] = str(exc)
            if not _warned:
                _warned = True
                warnings.warn(
                    f"ncp_control: could not build the native cell kernels ({exc}); using the pure-torch cells, "
                    f"which compute the same numbers several times more slowly. Install a C compiler, or set "
                    f"{_PURE_TORCH_ENV}=1 to choose the pure-torch path and silence this warning.",
                    RuntimeWarning, stacklevel=3)
        _libraries[name] = lib
        return lib


def status() -> dict[str, str]:
    """For each kernel tried in this process: ``"native"`` or the reason it fell back to pure torch."""
    return {name: ("native" if lib is not None else f"pure torch: {_failures.get(name, '?')}")
            for name, lib in _libraries.items()}


def _forget_loaded() -> None:
    """Drop the loaded libraries and the warned flag (tests use it to exercise compilation and fallback)."""
    global _warned
    with _lock:
        _libraries.clear()
        _failures.clear()
        _warned = False
