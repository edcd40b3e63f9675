"""ESPCN (Shi et al., CVPR 2016): three convs at low resolution and a sub-pixel (depth-to-space) output.

The paper's (5x5, 64) -> (3x3, 32) -> (3x3, 3*s^2) layout on RGB; ReLU instead of tanh, as in most
mobile reimplementations (an int8 tanh has no XNNPACK kernel), and a clamp to [0, 1] at the end.
"""

from __future__ import annotations

import torch
from torch import nn


class ESPCN(nn.Module):
    def __init__(self, scale: int, channels: tuple[int, int] = (64, 32)) -> None:
        super().__init__()
        c1, c2 = channels
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(3, c1, 5, padding=2),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c2, 3 * scale * scale, 3, padding=1),
        )
        self.upsample = nn.PixelShuffle(scale)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.upsample(self.body(image)), 0.0, 1.0)
