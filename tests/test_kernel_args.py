"""Every Python path into the C kernels checks shapes, dtypes and devices: wrong sizes never reach the C code."""

import pytest
import torch

from ncp_control import wirings
from ncp_control.cells import cfc_fast, ltc_fast, native
from ncp_control.cells.ltc import LTCCell
from ncp_control.cells.wired_cfc import WiredCfCCell

torch.set_num_threads(1)
pytestmark = pytest.mark.skipif(
    native.load("ltc_kernel") is None or native.load("cfc_kernel") is None,
    reason="no C compiler: the kernels cannot be built here",
)

T, B, I, N = 3, 2, 32, 19


def _ltc():
    return LTCCell(wirings.AutoNCP(N, 1, seed=0), I)


def _cfc():
    return WiredCfCCell(I, wirings.AutoNCP(N, 1, seed=0))


def _good():
    return torch.randn(T, B, I), torch.zeros(B, N), torch.full((T, B), 0.1)


CASES = {
    "3 features instead of 32": lambda x, h, dt: (x[..., :3].contiguous(), h, dt),
    "(B, 2) state instead of (B, 19)": lambda x, h, dt: (x, h[:, :2].contiguous(), dt),
    "float64 dt with float32 inputs": lambda x, h, dt: (x, h, dt.double()),
    "float64 inputs in a float32 cell": lambda x, h, dt: (x.double(), h.double(), dt.double()),
    "dt of the wrong length": lambda x, h, dt: (x, h, dt[:1]),
    "2-D inputs": lambda x, h, dt: (x[0], h, dt),
}


@pytest.mark.parametrize("case", list(CASES))
def test_ltc_sequence_refuses_bad_arguments(case):
    cell = _ltc()
    x, h, dt = CASES[case](*_good())
    with torch.no_grad(), pytest.raises(ValueError, match="ltc_sequence"):
        ltc_fast.ltc_sequence(cell, x, h, dt, min_dt=1e-6)
    with pytest.raises(ValueError):  # also when autograd records the call
        ltc_fast.ltc_sequence(cell, x.requires_grad_(), h, dt, min_dt=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_cfc_sequence_refuses_bad_arguments(case):
    cell = _cfc()
    x, h, dt = CASES[case](*_good())
    with torch.no_grad(), pytest.raises(ValueError, match="cfc_sequence"):
        cfc_fast.cfc_sequence(cell, x, h, dt)


def test_the_checked_entries_still_compute():
    x, h, dt = _good()
    with torch.no_grad():
        states, out = ltc_fast.ltc_sequence(_ltc(), x, h, dt, min_dt=1e-6)
        assert states.shape == (T, B, N) and out.shape == (T, B, 1) and torch.isfinite(states).all()
        assert cfc_fast.cfc_sequence(_cfc(), x, h, dt).shape == (T, B, N)


def test_reset_must_be_bool_of_shape_t_b():
    x, h, dt = _good()
    with pytest.raises(ValueError, match="reset"):
        ltc_fast.ltc_sequence(_ltc(), x, h, dt, torch.zeros(T, B), min_dt=1e-6)
    with pytest.raises(ValueError, match="reset"):
        cfc_fast.cfc_sequence(_cfc(), x, h, dt, torch.zeros(T, 1, dtype=torch.bool))


def test_single_step_entries_check_shapes():
    ltc, cfc = _ltc(), _cfc()
    with torch.no_grad():
        for bad_x, bad_h in [(torch.randn(B, 3), torch.zeros(B, N)), (torch.randn(B, I), torch.zeros(B, 2))]:
            with pytest.raises(ValueError):
                ltc_fast.ltc_step_no_grad(ltc, bad_x, bad_h, 0.1, min_dt=1e-6)
            with pytest.raises(ValueError):
                cfc_fast.step_no_grad(cfc, bad_x, bad_h, 0.1, build=True)
        # once tables exist for (B, 32) inputs, the shortest path declines other shapes instead of running them
        ltc_fast.ltc_step_no_grad(ltc, torch.randn(B, I), torch.zeros(B, N), 0.1, min_dt=1e-6)
        assert ltc_fast.try_step_no_grad(ltc, torch.randn(B, 3), torch.zeros(B, N), 0.1, 1e-6) is None
        assert ltc_fast.try_step_no_grad(ltc, torch.randn(B, I), torch.zeros(B, 2), 0.1, 1e-6) is None
        assert cfc_fast.step_no_grad(cfc, torch.randn(B, I), torch.zeros(B, N), 0.1, build=True) is not None
        assert cfc_fast.step_no_grad(cfc, torch.randn(B, 3), torch.zeros(B, N), 0.1, build=False) is None
        assert cfc_fast.step_no_grad(cfc, torch.randn(B, I), torch.zeros(B, 2), 0.1, build=False) is None


def test_cells_report_wrong_sizes_through_their_public_forward():
    with torch.no_grad():
        with pytest.raises(ValueError):
            _ltc()(torch.randn(B, 3), torch.zeros(B, N), 0.1)
        with pytest.raises(ValueError):
            _cfc()(torch.randn(B, I), torch.zeros(B, 2), 0.1)


def test_a_parameter_of_the_wrong_size_is_refused_not_read_out_of_bounds():
    cell = _ltc()
    cell.w.data = torch.zeros(2, 2)  # bypasses load_state_dict's shape check
    x, h, dt = _good()
    with torch.no_grad(), pytest.raises(ValueError, match="w has shape"):
        ltc_fast.ltc_sequence(cell, x, h, dt, min_dt=1e-6)
    cfc = _cfc()
    cfc.layer_cells[1].ff1.weight.data = torch.zeros(7, 3)
    with torch.no_grad(), pytest.raises(ValueError, match="ff1.weight"):
        cfc_fast.cfc_sequence(cfc, x, h, dt)


def test_more_than_64_cfc_layers_is_a_value_error_not_a_memory_error():
    cell = _cfc()
    cell._layers = cell._layers * 22  # 66 layers
    x, h, dt = _good()
    with torch.no_grad(), pytest.raises(ValueError, match="64 layers"):
        cfc_fast.cfc_sequence(cell, x, h, dt)
