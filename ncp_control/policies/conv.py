"""Convolutional head that turns camera frames into a small feature vector (the NCP paper's perception layer).

Lechner et al. (2020) feed each 78x200 camera frame through five convolutions with 24, 36, 48, 64 and 8 channels
and then map *each* of the 8 final feature maps to 4 numbers with its own dense layer, giving 32 features for the
19-neuron circuit. :class:`ConvHead` follows that layout and scales the strides to our (smaller) resolutions: the
first three layers halve the image (kernel 5, 5, 3), the last two keep its size (kernel 3), and every layer pads
by ``kernel // 2`` so that small images keep a non-empty map.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from .. import checks

__all__ = ["ConvHead", "PAPER_CHANNELS", "Normalization"]

Normalization = Literal["standardize", "center"]

#: Channel counts of the NCP paper's five convolutions.
PAPER_CHANNELS: tuple[int, ...] = (24, 36, 48, 64, 8)

# (kernel, stride) of the five layers; the paper's layout with "same"-style padding.
_LAYOUT: tuple[tuple[int, int], ...] = ((5, 2), (5, 2), (3, 2), (3, 1), (3, 1))


def _conv_out(size: int, kernel: int, stride: int) -> int:
    """Output length of a convolution with padding ``kernel // 2`` along one axis."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


class ConvHead(nn.Module):
    """Five ReLU convolutions, then one dense layer per final channel, concatenated to ``features`` numbers.

    Args:
        observation_shape: ``(H, W, 3)``, the camera image shape (channels last, as the envs emit it).
            ``H`` and ``W`` must be at least 8.
        features: length of the output vector; a multiple of ``channels[-1]`` (each final channel contributes
            ``features // channels[-1]`` numbers). The paper uses 32 = 8 channels x 4.
        channels: the five convolutions' output channels; the paper's ``(24, 36, 48, 64, 8)`` by default.
            Smaller widths (e.g. ``(12, 18, 24, 32, 8)``) train several times faster on a CPU.
        normalize: ``"standardize"`` (default): each image is shifted and scaled to zero mean and unit standard
            deviation over its pixels and channels before the first convolution, which makes thin lane lines on a
            grey road stand out and the head indifferent to global brightness and contrast; ``"center"``: pixels
            in [0, 1] minus 0.5 only.

    Input:
        images: ``(B, H, W, 3)`` uint8 in [0, 255], or a floating tensor already scaled to [0, 1].
    Output:
        ``(B, features)`` float32 features (no final non-linearity).

    Convolutions use He (Kaiming-normal) initialisation so that the features vary with the image at the start
    of training instead of shrinking through the ReLU stack.
    """

    def __init__(
        self,
        observation_shape: Sequence[int] = (48, 96, 3),
        features: int = 32,
        channels: Sequence[int] = PAPER_CHANNELS,
        normalize: Normalization = "standardize",
    ) -> None:
        super().__init__()
        self.normalize = checks.choice("normalize", normalize, Normalization)
        shape = tuple(int(s) for s in observation_shape)
        if len(shape) != 3 or shape[2] != 3:
            raise ValueError(f"observation_shape must be (H, W, 3) for RGB images, got {tuple(observation_shape)}")
        if shape[0] < 8 or shape[1] < 8:
            raise ValueError(f"images must be at least 8x8 pixels, got {shape[0]}x{shape[1]}")
        channels = tuple(int(c) for c in channels)
        if len(channels) != len(_LAYOUT) or min(channels) < 1:
            raise ValueError(f"channels must be {len(_LAYOUT)} positive integers, got {channels}")
        if not isinstance(features, int) or features < 1 or features % channels[-1] != 0:
            raise ValueError(
                f"features must be a positive multiple of the last channel count {channels[-1]}, got {features}"
            )
        self.observation_shape: tuple[int, int, int] = shape
        self.features = features
        self.channels = channels

        layers: list[nn.Module] = []
        in_channels, height, width = 3, shape[0], shape[1]
        for out_channels, (kernel, stride) in zip(channels, _LAYOUT):
            layers += [nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2), nn.ReLU()]
            in_channels = out_channels
            height, width = _conv_out(height, kernel, stride), _conv_out(width, kernel, stride)
        self.convs = nn.Sequential(*layers)
        for layer in self.convs:
            if isinstance(layer, nn.Conv2d):  # He init keeps the activation scale through the ReLU stack
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                if layer.bias is not None:  # always: the layers above are built with bias
                    nn.init.zeros_(layer.bias)
        #: (height, width) of the final feature maps
        self.map_size: tuple[int, int] = (height, width)

        # One dense layer per final channel, stored as a batch of matrices: (C, H'*W', features // C).
        per_channel = features // channels[-1]
        pixels = height * width
        bound = 1.0 / pixels**0.5  # nn.Linear's default uniform range for fan-in `pixels`
        self.dense_weight = nn.Parameter(torch.empty(channels[-1], pixels, per_channel).uniform_(-bound, bound))
        self.dense_bias = nn.Parameter(torch.empty(channels[-1], per_channel).uniform_(-bound, bound))

    def feature_maps(self, images: torch.Tensor) -> torch.Tensor:
        """``images``: (B, H, W, 3) uint8 or float in [0, 1] -> the last convolution's maps (B, C, H', W')."""
        if images.dim() != 4 or tuple(images.shape[1:]) != self.observation_shape:
            raise ValueError(
                f"expected images of shape (B, {', '.join(map(str, self.observation_shape))}), "
                f"got {tuple(images.shape)}"
            )
        if images.dtype == torch.uint8:
            x = images.float() / 255.0
        elif images.is_floating_point():
            x = images.float()
        else:
            raise TypeError(f"images must be uint8 or floating point, got {images.dtype}")
        if self.normalize == "standardize":
            mean = x.mean(dim=(1, 2, 3), keepdim=True)  # over H, W, channels of each image
            std = x.std(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) / (std + 1e-3)  # 1e-3: a uniform image maps to zeros instead of dividing by 0
        else:
            x = x - 0.5
        # channels-last memory (NHWC strides) for the convolutions: oneDNN runs them ~1.6x faster on the CPU than
        # on NCHW memory (scripts/bench_camera_ppo.py); a no-op for (B, H, W, 3) images, one copy for SB3's channels-first observations
        return self.convs(x.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last))

    def dense(self, maps: torch.Tensor) -> torch.Tensor:
        """Per-channel dense layers: maps (B, C, H', W') -> (B, features), grouped by channel."""
        flat = maps.flatten(2)  # (B, C, H'*W')
        # per channel c: (B, H'*W') @ (H'*W', k) -> (B, C, k)
        out = torch.einsum("bcp,cpk->bck", flat, self.dense_weight) + self.dense_bias
        return out.flatten(1)  # (B, C*k)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images``: (B, H, W, 3) uint8 or float in [0, 1] -> (B, features)."""
        return self.dense(self.feature_maps(images))

    def extra_repr(self) -> str:
        return (
            f"observation_shape={self.observation_shape}, features={self.features}, map_size={self.map_size}, "
            f"normalize={self.normalize!r}"
        )
