"""The spiral example learns: a short run cuts the validation error far below the untrained model's."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from ncp_control.examples.spiral import SpiralConfig, argument_parser, config_from_args, run, spiral_points, windows

torch.set_num_threads(1)

SHORT = dict(units=12, ode_unfolds=3, seq_len=10, batch_size=16, steps=150, lr=0.02, points=300)


@pytest.mark.parametrize("wiring", ["ncp", "random"])
def test_short_training_beats_untrained_model(wiring, tmp_path):
    cfg = SpiralConfig(wiring=wiring, out_dir=str(tmp_path), plot=wiring == "ncp", **SHORT)
    result, run_dir = run(cfg)
    assert result.val_loss_after < 0.3 * result.val_loss_before, result[1:3]
    assert json.loads((run_dir / "config.json").read_text()) == dataclasses.asdict(cfg)
    assert json.loads((run_dir / "metrics.json").read_text())["val_loss_after"] == result.val_loss_after
    assert (run_dir / "spiral.png").exists() == cfg.plot


def test_windows_pair_each_point_with_the_next():
    cfg = SpiralConfig(points=50, seq_len=5)
    clean, noisy = spiral_points(cfg, noise_seed=0)
    assert clean.shape == noisy.shape == (50, 2)
    assert 0.5 * cfg.noise < float((noisy - clean).std()) < 2 * cfg.noise
    x, y = windows(noisy, 5)
    assert x.shape == y.shape == (45, 5, 2)
    torch.testing.assert_close(x[:, 1:], y[:, :-1])
    torch.testing.assert_close(y[-1, -1], torch.from_numpy(noisy[-1]))


def test_command_line_round_trips_the_config():
    args = argument_parser().parse_args(["--wiring", "random", "--units", "12", "--no-plot", "--lr", "0.5"])
    assert config_from_args(args) == SpiralConfig(wiring="random", units=12, plot=False, lr=0.5)
    assert config_from_args(argument_parser().parse_args([])) == SpiralConfig()


@pytest.mark.parametrize("bad", [dict(wiring="lstm"), dict(units=3), dict(sparsity=1.0), dict(points=10)])
def test_invalid_config_raises(bad):
    with pytest.raises(ValueError):
        SpiralConfig(**bad)
