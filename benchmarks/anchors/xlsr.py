"""XLSR (Ayazoglu, CVPRW 2021 Mobile AI challenge): grouped-conv GBlocks and a clipped-ReLU output.

Stem: a 3x3 conv to 32 channels (the paper's four parallel 3->8 convs, concatenated, are one such conv)
beside a 1x1 conv to 8 channels that skips the body. Body: three GBlocks, each a grouped 3x3 conv
(4 groups) + ReLU and a 1x1 conv + ReLU. Head: concatenate body and skip, 3x3 conv to 3*s^2,
depth-to-space, and the clipped ReLU (a clamp to [0, 1]).
"""

from __future__ import annotations

import torch
from torch import nn


class GBlock(nn.Module):
    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.grouped = nn.Conv2d(channels, channels, 3, padding=1, groups=groups)
        self.pointwise = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.pointwise(torch.relu(self.grouped(x))))


class XLSR(nn.Module):
    def __init__(self, scale: int, channels: int = 32, skip: int = 8, groups: int = 4, blocks: int = 3) -> None:
        super().__init__()
        self.scale = scale
        self.stem = nn.Conv2d(3, channels, 3, padding=1)
        self.skip = nn.Conv2d(3, skip, 1)
        self.body = nn.Sequential(*(GBlock(channels, groups) for _ in range(blocks)))
        self.head = nn.Conv2d(channels + skip, 3 * scale * scale, 3, padding=1)
        self.upsample = nn.PixelShuffle(scale)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = torch.cat([self.body(torch.relu(self.stem(image))), torch.relu(self.skip(image))], dim=1)
        return torch.clamp(self.upsample(self.head(features)), 0.0, 1.0)
