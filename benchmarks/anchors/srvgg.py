"""SRVGGNetCompact (Wang et al., Real-ESRGAN) in the realesr-general-x4v3 layout.

conv3x3(3 -> 64), PReLU, 32 x [conv3x3(64 -> 64), PReLU], conv3x3(64 -> 3*s^2), depth-to-space,
plus the nearest-neighbour upsampled input; clamped to [0, 1]. The nearest-neighbour base is added before
depth-to-space as the input repeated s^2 times (a frozen 1x1 conv): the same numbers as the reference's
``F.interpolate``, in ops every delegate takes.
"""

from __future__ import annotations

import torch
from torch import nn

from metasr.models.student import anchor_conv


class SRVGGNetCompact(nn.Module):
    def __init__(self, scale: int, channels: int = 64, num_conv: int = 32) -> None:
        super().__init__()
        self.scale = scale
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.PReLU(channels)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.PReLU(channels)]
        layers.append(nn.Conv2d(channels, 3 * scale * scale, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.upsample = nn.PixelShuffle(scale)
        self.anchor = anchor_conv(3, scale)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.upsample(self.body(image) + self.anchor(image)), 0.0, 1.0)
