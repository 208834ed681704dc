"""Native kernels: compile the C sources in ``cells/native/`` on first use, cache the shared library, load it.

The package ships plain C99 sources (no Python or torch headers) and compiles them with the system C compiler
the first time a fast cell runs (about 1-5 s), into a per-user cache reused by every later process. Where that is
impossible (no compiler, a read-only cache, an unsupported platform) the cells fall back to their pure-torch
implementation, which gives the same numbers more slowly, and ONE warning says why.

Environment variables:

- ``NCP_CONTROL_PURE_TORCH=1``: never compile or load a kernel; always use the pure-torch path (no warning).
  Read once per process, when the first fast cell runs.
- ``NCP_CONTROL_CACHE_DIR``: where compiled libraries are kept (default ``$XDG_CACHE_HOME/ncp_control`` or
  ``~/.cache/ncp_control``). A library is named by a hash of its source, compiler path and version (first line of
  ``cc --version``), flags and CPU, so editing a source or changing the compiler recompiles; stale files can be
  deleted at any time.
- ``CC``: the C compiler (default: the first of ``cc``, ``gcc``, ``clang`` on the PATH).
- ``NCP_CONTROL_EXTRA_CFLAGS``: extra compiler flags appended to every flag set (part of the cache key), e.g.
  ``-fsanitize=address,undefined`` for ``scripts/sanitize_kernels.sh``.

The cache cannot be used to run someone else's code in your process: the directory is created 0700; a cached
library is loaded only if it and the ``.sha256`` file written beside it after a successful build are regular files
owned by you and writable by nobody else, and the hash matches the library's bytes. Anything else (planted,
modified, corrupt, or a directory someone else owns) is removed and rebuilt, or rebuilt in a fresh private
temporary directory where it cannot be removed. Temporary files of killed compiles are removed after 10 minutes.

Public names: :func:`load` and :data:`loaded` (what the fast cells use), :func:`status` (what was loaded),
:func:`pure_torch_forced`, :func:`cache_dir`; for tests and ``scripts/``: :data:`FLAG_SETS`, :func:`compiler`,
:func:`compiler_version`, :func:`with_extra_flags`, :func:`library_path` (where a build is cached),
:func:`why_untrusted` (the cache's checks) and :func:`forget_loaded`. Everything with a leading underscore is
internal to this module.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

_SOURCE_DIR = Path(__file__).with_name("native")
_PURE_TORCH_ENV = "NCP_CONTROL_PURE_TORCH"
_CACHE_ENV = "NCP_CONTROL_CACHE_DIR"
#: Flag sets tried in order: the first that compiles wins (``-march=native`` is not accepted everywhere). No
#: ``-ffast-math``: results keep IEEE semantics; ``-fno-trapping-math`` only lets branches on floats vectorise.
#: :func:`load` reads this module attribute on every build (tests replace it with quick ``-O0`` sets), and
#: :func:`with_extra_flags` appends ``NCP_CONTROL_EXTRA_CFLAGS`` to each.
FLAG_SETS = (
    ("-O3", "-march=native", "-fopenmp-simd", "-fno-trapping-math", "-fno-math-errno", "-fPIC", "-shared"),
    ("-O3", "-fopenmp-simd", "-fno-trapping-math", "-fno-math-errno", "-fPIC", "-shared"),
    ("-O2", "-fPIC", "-shared"),
)

_lock = threading.Lock()
_libraries: dict[str, ctypes.CDLL | None] = {}  # source name -> library, or None if it could not be built
_built_with: dict[str, tuple[str, ...]] = {}  # source name -> the flags of the library actually loaded
_failures: dict[str, str] = {}  # source name -> reason
_warned = False

#: ``loaded(name, default)``: the library :func:`load` already settled on for ``native/<name>.c`` (None where the
#: pure-torch path is used), or ``default`` while it has not been asked for it in this process. A bound
#: ``dict.get`` (no call into Python), so the fast cells can check it on every step.
loaded = _libraries.get


def pure_torch_forced() -> bool:
    """True if ``NCP_CONTROL_PURE_TORCH`` asks for the pure-torch path."""
    return os.environ.get(_PURE_TORCH_ENV, "").strip().lower() not in ("", "0", "false", "no")


def cache_dir() -> Path:
    """Directory holding the compiled libraries (see the module docstring)."""
    if os.environ.get(_CACHE_ENV):
        return Path(os.environ[_CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ncp_control"


def compiler() -> str | None:
    """Path of the C compiler the kernels are built with: ``$CC`` if set (None if it does not exist), else the
    first of ``cc``, ``gcc``, ``clang`` on the PATH; None when there is none."""
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


#: Temporary files of compiles older than this many seconds are left over from killed processes and removed.
_STALE_SECONDS = 600
_HASH_SUFFIX = ".sha256"
_compiler_versions: dict[str, str] = {}


def compiler_version(cc: str) -> str:
    """First line of ``cc --version`` (part of the cache key: a compiler upgrade recompiles)."""
    if cc not in _compiler_versions:
        try:
            run = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
            lines = (run.stdout or run.stderr).strip().splitlines()
            _compiler_versions[cc] = lines[0] if lines else ""
        except (OSError, subprocess.SubprocessError):
            _compiler_versions[cc] = ""
    return _compiler_versions[cc]


def _private(path: Path, *, directory: bool = False) -> str | None:
    """Why ``path`` cannot be trusted, or None: it must be a real file (or directory), not a symlink, owned by this
    user, and writable by nobody else (no group/other write bit)."""
    try:
        st = path.lstat()
    except OSError as exc:
        return f"cannot stat {path}: {exc}"
    kind_ok = stat.S_ISDIR(st.st_mode) if directory else stat.S_ISREG(st.st_mode)
    if not kind_ok:
        return f"{path} is not a {'directory' if directory else 'regular file'} (a symlink?)"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"{path} is owned by uid {st.st_uid}, not by this user ({os.getuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def why_untrusted(target: Path) -> str | None:
    """Why the cached library ``target`` must not be loaded, or None when it may be: it and the ``.sha256`` file
    written beside it after a successful build are regular files owned by this user and writable by nobody else,
    and the recorded hash matches the library's bytes (see the module docstring). Reads only; removes nothing."""
    hash_file = target.with_name(target.name + _HASH_SUFFIX)
    for path in (target, hash_file):
        reason = _private(path)
        if reason is not None:
            return reason
    try:
        recorded = hash_file.read_text().strip()
        actual = _sha256(target.read_bytes())
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read {target} or its hash: {exc}"
    if recorded != actual:
        return f"{target} does not match its recorded sha256 (modified or corrupt)"
    return None


def _private_dir(directory: Path) -> Path:
    """``directory`` created 0700 if it can be made private to this user; else a fresh private temporary one."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return Path(tempfile.mkdtemp(prefix="ncp_control-"))
    if _private(directory, directory=True) is not None:
        try:
            if directory.lstat().st_uid == os.getuid() and not directory.is_symlink():
                os.chmod(directory, 0o700)  # ours but too open: close it (files inside are still verified)
        except (OSError, AttributeError):
            pass
        reason = _private(directory, directory=True)
        if reason is not None:  # someone else's: build where only we can write, and say why it is slow
            private = Path(tempfile.mkdtemp(prefix="ncp_control-"))
            warnings.warn(
                f"ncp_control: the kernel cache {directory} cannot be trusted ({reason}); compiling into "
                f"{private} for this process. Point {_CACHE_ENV} at a directory of your own.",
                RuntimeWarning,
                stacklevel=4,
            )
            return private
    return directory


def _remove_stale_temporaries(directory: Path, name: str) -> None:
    """Delete this user's temporary files of compiles that were killed (older than ``_STALE_SECONDS``)."""
    now = time.time()
    for path in directory.glob(f".{name}-*"):
        try:
            st = path.lstat()
            if st.st_uid == os.getuid() and now - st.st_mtime > _STALE_SECONDS:
                path.unlink()
        except (OSError, AttributeError):
            pass


def _compile(cc: str, flags: tuple[str, ...], source: Path, target: Path) -> str | None:
    """Compile ``source`` into ``target`` with its hash file beside it; None on success, else the error."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name.split('-')[0]}-", suffix=_library_suffix(), dir=target.parent)
    os.close(fd)
    cmd = [cc, *flags, "-o", tmp, str(source), "-lm"]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        os.unlink(tmp)
        return f"{' '.join(cmd)}: {exc}"
    if run.returncode != 0:
        os.unlink(tmp)
        return f"{' '.join(cmd)}: {run.stderr.strip()[-500:]}"
    os.chmod(tmp, 0o700)  # whatever the umask: nobody else may write what we will load
    digest = _sha256(Path(tmp).read_bytes())
    fd, tmp_hash = tempfile.mkstemp(prefix=f".{target.name}-", suffix=_HASH_SUFFIX, dir=target.parent)
    with os.fdopen(fd, "w") as f:  # mkstemp: mode 0600
        f.write(digest + "\n")
    os.replace(tmp, target)  # atomic: concurrent processes never load a half-written file
    os.replace(tmp_hash, target.with_name(target.name + _HASH_SUFFIX))
    return None


def with_extra_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
    """``flags`` (one of :data:`FLAG_SETS`) with ``NCP_CONTROL_EXTRA_CFLAGS`` appended: the flags a build uses."""
    return flags + tuple(os.environ.get("NCP_CONTROL_EXTRA_CFLAGS", "").split())


def library_path(name: str, flags: tuple[str, ...], directory: Path | None = None) -> Path:
    """Where the library for ``native/<name>.c`` built with ``flags`` (as :func:`with_extra_flags` returns them)
    by this compiler is cached, in ``directory`` (default :func:`cache_dir`). The file name holds a hash of the
    source, the compiler's path and :func:`compiler_version`, the flags and the CPU. Raises ``RuntimeError`` when
    there is no compiler."""
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (looked for $CC, cc, gcc, clang)")
    text = (_SOURCE_DIR / f"{name}.c").read_bytes()
    key = hashlib.sha256(
        b"\0".join(
            [text, cc.encode(), compiler_version(cc).encode(), " ".join(flags).encode(), _machine_tag().encode()]
        )
    )
    return (directory or cache_dir()) / f"{name}-{key.hexdigest()[:16]}{_library_suffix()}"


def _build(name: str) -> tuple[ctypes.CDLL, tuple[str, ...]]:
    """Compile (or find, verified, in the cache) and load ``native/<name>.c``; returns the library and the flags
    it was built with. Raises ``RuntimeError`` with the reason."""
    source = _SOURCE_DIR / f"{name}.c"
    if not source.is_file():
        raise RuntimeError(f"kernel source {source} is missing from the installation")
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (looked for $CC, cc, gcc, clang)")
    directory = _private_dir(cache_dir())
    _remove_stale_temporaries(directory, name)
    errors = []
    for flags in map(with_extra_flags, FLAG_SETS):
        target = library_path(name, flags, directory)
        for _attempt in range(2):  # a cached file that fails its checks or does not load is rebuilt once
            reason = why_untrusted(target) if target.exists() else "not built yet"
            if reason is not None:
                if target.exists():
                    _discard(target, reason)
                    if target.exists():  # could not remove it (not ours): build where only we can write
                        directory = Path(tempfile.mkdtemp(prefix="ncp_control-"))
                        target = library_path(name, flags, directory)
                error = _compile(cc, flags, source, target)
                if error is not None:
                    errors.append(error)
                    break
            try:
                return ctypes.CDLL(str(target)), flags
            except OSError as exc:  # corrupt despite its hash (e.g. built for another libc): replace it
                errors.append(f"loading {target}: {exc}")
                _discard(target, str(exc))
    raise RuntimeError("compilation failed: " + " | ".join(errors))


def _discard(target: Path, reason: str) -> None:
    """Remove a cached library (and its hash file) that must not be loaded; says why in a warning."""
    warnings.warn(
        f"ncp_control: not loading the cached kernel {target}: {reason}; rebuilding it", RuntimeWarning, stacklevel=4
    )
    for path in (target, target.with_name(target.name + _HASH_SUFFIX)):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            pass


def load(name: str) -> ctypes.CDLL | None:
    """The compiled library for ``native/<name>.c``, or None when the pure-torch path must be used.

    Thread-safe; compiles at most once per process (and once per machine thanks to the cache). The first failure
    emits one ``RuntimeWarning`` for the whole package.
    """
    lib = _libraries.get(name, False)
    if not isinstance(lib, bool):  # cached: the library or None (False: not tried yet)
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
            lib, _built_with[name] = _build(name)
        except RuntimeError as exc:
            lib = None
            _failures[name] = str(exc)
            if not _warned:
                _warned = True
                warnings.warn(
                    f"ncp_control: could not build the native cell kernels ({exc}); using the pure-torch cells, "
                    f"which compute the same numbers several times more slowly. Install a C compiler, or set "
                    f"{_PURE_TORCH_ENV}=1 to choose the pure-torch path and silence this warning.",
                    RuntimeWarning,
                    stacklevel=3,
                )
        _libraries[name] = lib
        return lib


def status() -> dict[str, str]:
    """For each kernel tried in this process, what was actually loaded: ``"native"`` (built with
    ``-march=native``), ``"portable (<flags>)"`` (a build without it, where ``-march=native`` failed), or
    ``"pure torch: <reason>"``."""
    out = {}
    for name, lib in _libraries.items():
        if lib is None:
            out[name] = f"pure torch: {_failures.get(name, '?')}"
        elif "-march=native" in _built_with.get(name, ()):
            out[name] = "native"
        else:
            out[name] = f"portable ({' '.join(_built_with.get(name, ()))})"
    return out


def forget_loaded() -> None:
    """Forget what :func:`load` settled on in this process (libraries, failures, the one warning), so that the next
    :func:`load` looks at the compiler and the cache afresh. Libraries already loaded stay mapped; cells holding
    them keep working. Tests use it to exercise compilation, the cache and the fallback."""
    global _warned
    with _lock:
        _libraries.clear()
        _failures.clear()
        _built_with.clear()
        _warned = False
