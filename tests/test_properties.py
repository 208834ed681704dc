"""Property tests (hypothesis): the cells stay finite and the native path equals the torch path over extreme
elapsed times and inputs; the run-folder loaders turn truncated or random bytes into a ValueError naming the file."""

import contextlib
import io
import json
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ncp_control import wirings
from ncp_control.cells import cfc_fast, ltc_fast, native
from ncp_control.cells.ltc import LTCCell
from ncp_control.cells.wired_cfc import WiredCfCCell

torch.set_num_threads(1)
needs_kernel = pytest.mark.skipif(
    native.load("ltc_kernel") is None or native.load("cfc_kernel") is None,
    reason="no C compiler: no native path to compare",
)
I, N, B = 5, 10, 3
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextlib.contextmanager
def pure_torch():
    with (
        mock.patch.object(ltc_fast, "fast_path_available", lambda *a, **k: False),
        mock.patch.object(ltc_fast, "try_step_no_grad", lambda *a, **k: None),
        mock.patch.object(cfc_fast, "fast_path_available", lambda *a, **k: False),
        mock.patch.object(cfc_fast, "step_no_grad", lambda *a, **k: None),
    ):
        yield


CELLS = {
    "ltc": LTCCell(wirings.AutoNCP(N, 2, seed=4), I).double(),
    "cfc": WiredCfCCell(I, wirings.AutoNCP(N, 2, seed=4)).double(),
}

elapsed = st.floats(-3.0, 3.0).map(lambda e: 10.0**e)  # 1e-3 .. 1e3 s, log-uniform
big_inputs = arrays(np.float64, (B, I), elements=st.floats(-1e6, 1e6, allow_nan=False))


@needs_kernel
@pytest.mark.parametrize("kind", list(CELLS))
@SETTINGS
@given(x=big_inputs, dt=st.lists(elapsed, min_size=B, max_size=B), steps=st.integers(1, 3))
def test_state_stays_finite_and_native_equals_torch(kind, x, dt, steps):
    cell = CELLS[kind]
    x, ts = torch.from_numpy(x), torch.tensor(dt, dtype=torch.float64)
    results = []
    for path in (contextlib.nullcontext, pure_torch):
        h = torch.zeros(B, N, dtype=torch.float64)
        with torch.no_grad(), path():
            for _ in range(steps):
                out, h = cell(x, h, ts)
        results.append((out, h))
    (fast_out, fast_h), (ref_out, ref_h) = results
    assert torch.isfinite(fast_h).all() and torch.isfinite(fast_out).all()
    torch.testing.assert_close(fast_h, ref_h, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(fast_out, ref_out, rtol=1e-7, atol=1e-7)


@needs_kernel
@pytest.mark.parametrize("kind", list(CELLS))
@settings(max_examples=15, deadline=None)
@given(x=big_inputs, dt=elapsed)
def test_float32_state_stays_finite(kind, x, dt):
    cell = (
        LTCCell(wirings.AutoNCP(N, 2, seed=4), I) if kind == "ltc" else WiredCfCCell(I, wirings.AutoNCP(N, 2, seed=4))
    )
    h = torch.zeros(B, N)
    with torch.no_grad():
        for _ in range(3):
            out, h = cell(torch.from_numpy(x).float(), h, dt)
    assert torch.isfinite(h).all() and torch.isfinite(out).all()


# ------------------------------------------------------------------------------------------------- loaders
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Real files of each kind the loaders read: torch weights, normaliser .npz, JSON config, manifest."""
    from ncp_control.agents.runs.files import ObsNormalizer, save_normalizer, save_tensors

    folder = tmp_path_factory.mktemp("files")
    save_tensors({"w": torch.randn(4, 4), "b": torch.zeros(4)}, folder / "model.pt")
    save_normalizer(
        ObsNormalizer(np.zeros(3), np.ones(3), 10.0, 0.0, 1.0, 10.0, 10.0, 10.0, 1e-8, 0.99, True, True),
        folder / "vecnormalize.npz",
    )
    (folder / "config.json").write_text(json.dumps({"kind": "bc", "env_id": "X-v0", "policy": "cnn", "seed": 0}))
    return {name: (folder / name).read_bytes() for name in ("model.pt", "vecnormalize.npz", "config.json")}


def _loaders():
    from ncp_control.agents.runs.files import load_normalizer, load_tensors
    from ncp_control.agents.runs.load import read_config

    return {
        "model.pt": lambda path: load_tensors(path, "model weights"),
        "vecnormalize.npz": load_normalizer,
        "config.json": lambda path: read_config(path.parent),
    }


def _check_clear_error(tmp_path, name: str, data: bytes):
    folder = tmp_path / f"f{abs(hash(data)) % 10**9}"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    with pytest.raises(ValueError) as info:
        _loaders()[name](path)
    assert name in str(info.value)


@pytest.mark.parametrize("name", ["model.pt", "vecnormalize.npz", "config.json"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 0.999))
def test_truncated_files_give_a_value_error_naming_the_file(files, tmp_path, name, cut):
    whole = files[name]
    _check_clear_error(tmp_path, name, whole[: int(cut * len(whole))])


@pytest.mark.parametrize("name", ["model.pt", "vecnormalize.npz", "config.json"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000))
def test_random_bytes_give_a_value_error_naming_the_file(tmp_path, name, data):
    if name == "config.json":
        try:  # random bytes that happen to be a JSON object with the required keys are a valid config
            value = json.load(io.BytesIO(data))
            if isinstance(value, dict) and {"kind", "env_id", "policy", "seed"} <= set(value):
                return
        except ValueError:
            pass
    _check_clear_error(tmp_path, name, data)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=500))
def test_random_manifests_are_refused_clearly(tmp_path, data):
    from ncp_control.agents.imitation import DatasetError, Demonstrations

    folder = tmp_path / f"d{abs(hash(data)) % 10**9}"
    folder.mkdir(exist_ok=True)
    (folder / "manifest.json").write_bytes(data)
    with pytest.raises(DatasetError, match="manifest.json"):
        Demonstrations.open(folder)
