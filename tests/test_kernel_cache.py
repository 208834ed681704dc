"""The kernel cache cannot be used to run someone else's code: planted libraries are refused, never loaded.

Each planted library has an ``__attribute__((constructor))`` that writes a marker file the moment it is loaded
(``dlopen`` runs it before any symbol is looked up), so "the marker does not exist" means "it never ran".
"""

import hashlib
import os
import shutil
import subprocess
import threading
import time

import pytest
import torch

from ncp_control import wirings
from ncp_control.cells import native
from ncp_control.cells.wired_cfc import WiredCfCCell

NAME = "cfc_kernel"
needs_cc = pytest.mark.skipif(native.compiler() is None, reason="no C compiler")
pytestmark = needs_cc

EVIL = r"""
#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen(MARKER, "w");
    if (f) { fputs("planted code ran\n", f); fclose(f); }
}
int cfc_forward_f32(void) { return 0; }
"""


#: Unoptimised builds: these tests exercise the cache, not the kernels' speed, and -O3 compiles take seconds.
FAST_FLAGS = (("-O0", "-march=native", "-fPIC", "-shared"), ("-O0", "-fPIC", "-shared"))


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """A private cache directory and freshly forgotten kernels (before and after), with quick builds."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("NCP_CONTROL_CACHE_DIR", str(directory))
    monkeypatch.setattr(native, "FLAG_SETS", FAST_FLAGS)
    native.forget_loaded()
    yield directory
    monkeypatch.undo()
    native.forget_loaded()


@pytest.fixture(scope="module")
def evil_library(tmp_path_factory):
    """(library path, marker path): a shared library whose constructor writes the marker."""
    folder = tmp_path_factory.mktemp("evil")
    source, library, marker = folder / "evil.c", folder / "evil.so", folder / "MARKER"
    source.write_text(EVIL)
    subprocess.run(
        [native.compiler(), "-shared", "-fPIC", f'-DMARKER="{marker}"', "-o", str(library), str(source)],
        check=True,
        capture_output=True,
    )
    return library, marker


def _plant(cache_dir, evil_library, *, mode=0o700, hash_text=None, hash_mode=0o600, owner=None):
    """Put the evil library where the cache expects the first (-march=native) build of NAME, with a hash file."""
    library, marker = evil_library
    cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = native.library_path(NAME, native.with_extra_flags(native.FLAG_SETS[0]), cache_dir)
    shutil.copyfile(library, target)
    os.chmod(target, mode)
    hash_file = target.with_name(target.name + ".sha256")
    if hash_text is not False:
        hash_file.write_text(hash_text or hashlib.sha256(target.read_bytes()).hexdigest())
        os.chmod(hash_file, hash_mode)
    if owner is not None:
        os.chown(target, owner, owner)
        if hash_file.exists():
            os.chown(hash_file, owner, owner)
    return target, marker


PLANTS = {
    "world-writable library": dict(mode=0o777),
    "group-writable library": dict(mode=0o770),
    "no hash file": dict(hash_text=False),
    "wrong hash": dict(hash_text="0" * 64),
    "world-writable hash file": dict(hash_mode=0o666),
}


@pytest.mark.parametrize("plant", list(PLANTS))
def test_a_planted_library_never_runs_and_is_replaced(cache, evil_library, plant):
    target, marker = _plant(cache, evil_library, **PLANTS[plant])
    assert native.why_untrusted(target) is not None
    with pytest.warns(RuntimeWarning, match="not loading the cached kernel"):
        lib = native.load(NAME)
    assert not marker.exists(), "the planted library's constructor ran"
    assert lib is not None and hasattr(lib, "cfc_backward_f64")  # the real kernel, rebuilt
    assert native.why_untrusted(target) is None  # replaced by our own build, with its hash
    assert native.status()[NAME] == "native"


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="os.chown to another user needs root")
def test_a_library_owned_by_another_user_never_runs(cache, evil_library):
    target, marker = _plant(cache, evil_library, owner=12345)
    assert "owned by uid 12345" in native.why_untrusted(target)
    with pytest.warns(RuntimeWarning):
        assert native.load(NAME) is not None
    assert not marker.exists()


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="os.chown to another user needs root")
def test_a_cache_directory_owned_by_another_user_is_not_used(cache, evil_library):
    target, marker = _plant(cache, evil_library)
    os.chown(cache, 12345, 12345)
    with pytest.warns(RuntimeWarning, match="cannot be trusted"):
        lib = native.load(NAME)
    assert not marker.exists()
    assert lib is not None and not lib._name.startswith(str(cache))  # built in a private temporary directory
    shutil.rmtree(os.path.dirname(lib._name))


def test_the_checks_are_what_keep_planted_code_out(cache, evil_library):
    """Control: a file that passes every check (yours, private, matching hash) is trusted: so the refusals above
    come from the checks, not from the planted file being unusable. (It is not loaded here.)"""
    target, _ = _plant(cache, evil_library)
    assert native.why_untrusted(target) is None


def test_cache_directory_is_private_and_a_too_open_one_is_closed(cache):
    assert native.load(NAME) is not None
    assert (cache.stat().st_mode & 0o777) == 0o700
    native.forget_loaded()
    os.chmod(cache, 0o777)
    assert native.load(NAME) is not None
    assert (cache.stat().st_mode & 0o777) == 0o700


def test_a_corrupt_library_with_a_matching_hash_is_replaced(cache):
    cache.mkdir(mode=0o700)
    target = native.library_path(NAME, native.with_extra_flags(native.FLAG_SETS[0]), cache)
    target.write_bytes(b"\x7fELF truncated")
    os.chmod(target, 0o700)
    target.with_name(target.name + ".sha256").write_text(hashlib.sha256(target.read_bytes()).hexdigest())
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        assert native.load(NAME) is not None
    assert target.stat().st_size > 1000 and native.why_untrusted(target) is None
    assert native.status()[NAME] == "native"


def test_status_says_portable_when_march_native_was_not_used(cache, monkeypatch):
    monkeypatch.setattr(
        native, "FLAG_SETS", (("-O0", "-march=no-such-cpu", "-fPIC", "-shared"), ("-O0", "-fPIC", "-shared"))
    )
    assert native.load(NAME) is not None
    assert native.status()[NAME] == "portable (-O0 -fPIC -shared)"


def test_the_key_includes_the_compiler_version(cache, monkeypatch):
    a = native.library_path(NAME, native.with_extra_flags(native.FLAG_SETS[0]), cache)
    monkeypatch.setattr(native, "compiler_version", lambda cc: "cc (Imaginary) 99.0")
    assert native.library_path(NAME, native.with_extra_flags(native.FLAG_SETS[0]), cache) != a


def test_stale_temporary_files_of_killed_compiles_are_removed(cache):
    cache.mkdir(mode=0o700)
    old, fresh = cache / f".{NAME}-old.so", cache / f".{NAME}-fresh.so"
    old.write_bytes(b"half")
    fresh.write_bytes(b"half")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert native.load(NAME) is not None
    assert not old.exists() and fresh.exists()  # a fresh one may belong to a compile still running


def test_plans_of_ended_threads_are_dropped():
    cell = WiredCfCCell(4, wirings.AutoNCP(8, 1, seed=0))
    x, h = torch.randn(2, 4), torch.zeros(2, 8)

    def step():
        with torch.no_grad():
            cell(x, h, 0.1)

    threads = [threading.Thread(target=step) for _ in range(5)]
    for t in threads:
        t.start()
        t.join()
    step()  # this thread's plan is added: the ended threads' plans go
    plans = cell.__dict__.get("_step_plans")
    if plans is None:
        pytest.skip("no native kernel: no plans")
    assert set(plans) == {threading.get_ident()}
