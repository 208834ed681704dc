"""Camera saliency by VisualBackProp (Bojarski et al. 2016, as used in the NCP paper), frames and GIF animations.

VisualBackProp explains which pixels a convolutional encoder reacts to, without gradients: the feature maps of
every convolution (after its ReLU) are averaged over channels; starting from the deepest, the averaged map is
scaled up to the previous layer's size by a transposed convolution with that layer's kernel size and stride and
all weights 1, multiplied point-wise with that layer's averaged map, and so on down to the input resolution. The
result is normalised to [0, 1] per image.

Works on any encoder whose ``nn.Conv2d`` layers are each followed by a ReLU (``ConvHead`` of the imitation models,
SB3's ``NatureCNN``); :func:`saliency_maps` takes a :class:`~ncp_control.inspect.circuit.Circuit` with an
``image_encoder``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .circuit import Circuit, conv_head_encoder

__all__ = ["visual_backprop", "saliency_maps", "policy_saliency", "overlay", "save_frames", "save_gif"]


@torch.no_grad()
def visual_backprop(run: Callable, convs: Sequence[nn.Conv2d], inputs) -> np.ndarray:
    """VisualBackProp masks.

    Args:
        run: ``run(inputs)`` runs the encoder (its output is ignored).
        convs: the encoder's convolutions in order; each must be followed by a ReLU in the encoder.
        inputs: what ``run`` takes, a batch of B images.
    Returns:
        (B, H, W) float32 masks in [0, 1], at the spatial size of the first convolution's input.
    """
    if not convs:
        raise ValueError("visual_backprop needs at least one nn.Conv2d layer")
    captured: list[tuple[tuple[int, int], torch.Tensor]] = []
    hooks = [conv.register_forward_hook(lambda m, i, o: captured.append((tuple(i[0].shape[-2:]), o))) for conv in convs]
    try:
        run(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    if len(captured) != len(convs):
        raise ValueError(
            f"the encoder ran {len(captured)} of the {len(convs)} convolutions once each; "
            "pass the convolutions that run() actually uses"
        )
    mask = None
    for conv, (in_size, out) in zip(reversed(convs), reversed(captured)):
        averaged = F.relu(out).mean(dim=1, keepdim=True)  # (B, 1, h, w): mean over channels
        mask = averaged if mask is None else mask * averaged
        mask = _scale_up(mask, conv, in_size)
    if mask is None:  # not reached: convs is not empty
        raise ValueError("visual_backprop needs at least one nn.Conv2d layer")
    mask = mask[:, 0]
    low = mask.flatten(1).min(dim=1).values[:, None, None]
    high = mask.flatten(1).max(dim=1).values[:, None, None]
    return ((mask - low) / (high - low + 1e-12)).float().numpy()  # 1e-12: a constant mask maps to 0


def _scale_up(mask: torch.Tensor, conv: nn.Conv2d, size: tuple[int, int]) -> torch.Tensor:
    """Transposed convolution with ``conv``'s kernel size, stride and padding and unit weights, to ``size``."""
    if isinstance(conv.padding, str):  # "same" / "valid": no transposed convolution to mirror it
        raise ValueError(f"visual_backprop needs convolutions with numeric padding, got padding={conv.padding!r}")
    kernel = torch.ones(1, 1, *conv.kernel_size, dtype=mask.dtype)
    up = F.conv_transpose2d(mask, kernel, stride=conv.stride, padding=conv.padding)
    pad_h, pad_w = size[0] - up.shape[-2], size[1] - up.shape[-1]  # rows/columns the stride rounding dropped
    if pad_h < 0 or pad_w < 0:
        up = up[..., : size[0], : size[1]]
    if pad_h > 0 or pad_w > 0:
        up = F.pad(up, (0, max(pad_w, 0), 0, max(pad_h, 0)))
    return up


def saliency_maps(circuit: Circuit, observations: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """VisualBackProp masks (T, H, W) in [0, 1] for a camera circuit's observations (T, ...).

    Raises:
        ValueError: the circuit has no convolutional image encoder.
    """
    if circuit.image_encoder is None:
        raise ValueError(f"{circuit.name} has no convolutional image encoder: saliency needs a camera policy")
    return _batched(*circuit.image_encoder, observations, batch_size)


def policy_saliency(policy, batch_size: int = 128) -> Callable[[np.ndarray], np.ndarray]:
    """VisualBackProp of any imitation camera model's conv head (``ncp-ltc``, ``ncp-cfc``, ``lstm`` or ``cnn``).

    Args:
        policy: a :class:`~ncp_control.policies.imitation.SequencePolicy` (``ncp_control.agents.imitation.load_predictor``).
    Returns:
        ``saliency(frames (T, H, W, 3) uint8) -> masks (T, H, W)`` in [0, 1] (one per frame; the conv head sees each
        frame on its own, so no recurrent state is involved).
    Raises:
        ValueError: the policy has no conv head.
    """
    conv = getattr(policy, "conv", None)
    if conv is None or not hasattr(conv, "convs"):
        raise ValueError(f"{type(policy).__name__} has no conv head (ConvHead): saliency needs a camera model")
    run, convs = conv_head_encoder(conv)
    return lambda frames: _batched(run, convs, frames, batch_size)


def _batched(run: Callable, convs: Sequence[nn.Conv2d], observations, batch_size: int) -> np.ndarray:
    observations = np.asarray(observations)
    return np.concatenate(
        [visual_backprop(run, convs, observations[i : i + batch_size]) for i in range(0, len(observations), batch_size)]
    )


def _as_hwc_image(frame: np.ndarray) -> np.ndarray:
    """An observation as an (H, W, 3) uint8 image (channel-first frames are transposed, floats scaled)."""
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[0] in (1, 3) and frame.shape[-1] not in (1, 3):
        frame = np.moveaxis(frame, 0, -1)
    if frame.ndim == 2:
        frame = frame[..., None]
    if frame.shape[-1] == 1:
        frame = np.repeat(frame, 3, axis=-1)
    if frame.dtype != np.uint8:
        frame = np.clip(frame * 255.0 if frame.max() <= 1.0 else frame, 0, 255).astype(np.uint8)
    return frame


def overlay(frame: np.ndarray, mask: np.ndarray, scale: int = 4, alpha: float = 0.6) -> np.ndarray:
    """The camera frame (left) and the frame tinted by the saliency mask (right), upscaled ``scale`` times.

    Args:
        frame: (H, W, 3) uint8 (or channel-first) observation.
        mask: (H, W) in [0, 1].
    Returns:
        (scale*H, 2*scale*W + scale, 3) uint8 image.
    """
    import matplotlib

    image = _as_hwc_image(frame).astype(np.float32)
    if image.shape[:2] != mask.shape:
        raise ValueError(f"frame {image.shape[:2]} and mask {mask.shape} must have the same height and width")
    heat = matplotlib.colormaps["inferno"](mask)[..., :3] * 255.0
    tinted = (1 - alpha * mask[..., None]) * image * 0.6 + alpha * mask[..., None] * heat
    gap = np.full((image.shape[0], 1, 3), 255.0)
    both = np.concatenate([image, gap, tinted], axis=1)
    both = np.repeat(np.repeat(both, scale, axis=0), scale, axis=1)
    return np.clip(both, 0, 255).astype(np.uint8)


def save_frames(
    frames: np.ndarray,
    masks: np.ndarray,
    steps: Sequence[int] | np.ndarray,
    folder: str | Path,
    prefix: str = "saliency",
) -> list[Path]:
    """Save ``overlay`` images of the chosen steps as PNG files ``{prefix}_{step:05d}.png``; returns their paths."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for step in steps:
        path = folder / f"{prefix}_{int(step):05d}.png"
        Image.fromarray(overlay(frames[step], masks[step])).save(path)
        paths.append(path)
    return paths


def save_gif(
    frames: np.ndarray, masks: np.ndarray, path: str | Path, *, every: int = 2, fps: float = 10.0, scale: int = 3
) -> Path:
    """An animated GIF of ``overlay`` images (every ``every``-th step) at ``fps`` frames per second."""
    from PIL import Image

    if every < 1 or fps <= 0:
        raise ValueError(f"every must be >= 1 and fps > 0, got every={every}, fps={fps}")
    images = [Image.fromarray(overlay(frames[t], masks[t], scale=scale)) for t in range(0, len(frames), every)]
    if not images:
        raise ValueError("no frames to animate")
    path = Path(path)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path
