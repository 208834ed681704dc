"""ConvHead: input handling, per-channel dense locality, parameter counts, validation."""

import pytest
import torch

from ncp_control.policies.conv import PAPER_CHANNELS, ConvHead

torch.set_num_threads(1)


def _head(shape=(24, 48, 3), **kwargs) -> ConvHead:
    torch.manual_seed(0)
    return ConvHead(shape, **kwargs)


def test_uint8_and_scaled_float_give_the_same_features():
    head = _head()
    images = torch.randint(0, 256, (5, 24, 48, 3), dtype=torch.uint8)
    a = head(images)
    b = head(images.double() / 255.0)
    assert a.shape == (5, 32) and a.dtype == torch.float32
    torch.testing.assert_close(a, b)


def test_output_depends_on_the_image():
    head = _head()
    images = torch.randint(0, 256, (2, 24, 48, 3), dtype=torch.uint8)
    features = head(images)
    assert (features[0] - features[1]).abs().max() > 1e-2


def test_each_feature_group_reads_only_its_own_channel():
    """Feature group c (4 numbers) is a dense map of final channel c alone: its gradient w.r.t. other channels is 0."""
    head = _head()
    images = torch.randint(0, 256, (2, 24, 48, 3), dtype=torch.uint8)
    maps = head.feature_maps(images).detach().requires_grad_(True)
    out = head.dense(maps)
    torch.testing.assert_close(out, head(images))  # the same computation as forward
    group = 3
    out[:, group * 4 : (group + 1) * 4].sum().backward()
    grad_per_channel = maps.grad.abs().sum(dim=(0, 2, 3))  # sum over batch and pixels -> (C,)
    assert grad_per_channel[group] > 0
    others = torch.cat([grad_per_channel[:group], grad_per_channel[group + 1 :]])
    assert torch.all(others == 0)


def test_paper_layout_parameter_count():
    head = _head((48, 96, 3))
    conv = sum(p.numel() for p in head.convs.parameters())
    # 3*24*25+24 + 24*36*25+36 + 36*48*9+48 + 48*64*9+64 + 64*8*9+8
    assert conv == 71_388
    assert head.map_size == (6, 12)
    dense = head.dense_weight.numel() + head.dense_bias.numel()
    assert dense == 8 * (72 * 4 + 4)


def test_custom_width_and_feature_count():
    head = _head((16, 32, 3), channels=(4, 6, 8, 8, 4), features=8)
    assert head(torch.zeros(3, 16, 32, 3)).shape == (3, 8)
    assert head.map_size == (2, 4)


def test_gradients_reach_the_first_convolution():
    head = _head()
    head(torch.rand(2, 24, 48, 3)).pow(2).sum().backward()
    assert head.convs[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(observation_shape=(24, 48)), r"\(H, W, 3\)"),
        (dict(observation_shape=(24, 48, 1)), r"\(H, W, 3\)"),
        (dict(observation_shape=(4, 48, 3)), "at least 8x8"),
        (dict(features=30), "multiple of the last channel"),
        (dict(channels=(8, 8, 8)), "5 positive integers"),
        (dict(channels=(8, 8, 8, 8, 0)), "5 positive integers"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    kwargs.setdefault("observation_shape", (24, 48, 3))
    with pytest.raises(ValueError, match=match):
        ConvHead(**kwargs)


def test_bad_inputs_raise():
    head = _head()
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 24, 48, 3\)"):
        head(torch.zeros(2, 48, 24, 3))
    with pytest.raises(TypeError, match="uint8 or floating"):
        head(torch.zeros(2, 24, 48, 3, dtype=torch.int64))


def test_standardize_ignores_brightness_and_contrast_but_center_does_not():
    images = torch.rand(3, 24, 48, 3) * 0.5 + 0.2
    shifted = images * 1.5 + 0.1  # contrast and brightness change, still inside [0, 1]
    standardize, center = _head(), _head(normalize="center")
    # equal up to the 1e-3 epsilon added to the standard deviation (about 1% of it here)
    assert (standardize(images) - standardize(shifted)).abs().max() < 1e-2
    assert (center(images) - center(shifted)).abs().max() > 1e-1


def test_features_vary_with_the_image_at_initialisation():
    """He init + standardisation: features of different images differ by much more than float noise."""
    head = _head()
    images = torch.randint(0, 256, (16, 24, 48, 3), dtype=torch.uint8)
    spread = head(images).std(dim=0).mean()  # std over the batch, mean over features
    assert spread > 0.05


def test_unknown_normalization_raises():
    with pytest.raises(ValueError, match="normalize must be one of"):
        ConvHead((24, 48, 3), normalize="scale")


def test_paper_channels_constant():
    assert PAPER_CHANNELS == (24, 36, 48, 64, 8)
