"""Fixed convolutions shared by the device-grade extractors: luminance, Sobel gradients, Laplacian."""

from __future__ import annotations

import torch
from torch import nn

from metasr.images import LUMA


def fixed_conv(weight: torch.Tensor, padding: int = 0) -> nn.Conv2d:
    """A bias-free conv with frozen ``weight`` (out, in, k, k): exports as an ordinary conv on every target."""
    out_channels, in_channels, k, _ = weight.shape
    conv = nn.Conv2d(in_channels, out_channels, k, padding=padding, bias=False)
    conv.weight.data.copy_(weight)
    conv.weight.requires_grad_(False)
    return conv


def luma_conv() -> nn.Conv2d:
    """RGB -> Y as a 1x1 conv."""
    return fixed_conv(torch.tensor(LUMA).reshape(1, 3, 1, 1))


def sobel_conv() -> nn.Conv2d:
    """Y -> (dY/dx, dY/dy) Sobel responses, scaled so a 0 -> 1 step edge gives magnitude 1."""
    gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 4.0
    return fixed_conv(torch.stack([gx, gx.T]).unsqueeze(1), padding=1)


def laplacian_conv() -> nn.Conv2d:
    """Y -> 4-neighbour Laplacian, a high-pass that mostly sees noise and fine texture."""
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]) / 4.0
    return fixed_conv(kernel.reshape(1, 1, 3, 3), padding=1)


def luma(image: torch.Tensor) -> torch.Tensor:
    """Y channel (N, 1, H, W) of an RGB batch."""
    weights = torch.tensor(LUMA, dtype=image.dtype, device=image.device).reshape(1, 3, 1, 1)
    return (image * weights).sum(dim=1, keepdim=True)
