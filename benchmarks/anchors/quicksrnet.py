"""QuickSRNet (Berger et al., CVPRW 2023): a plain VGG-like stack with an input-repeating anchor residual.

conv3x3(3 -> C), ReLU, ``num_layers`` x [conv3x3(C -> C), ReLU], conv3x3(C -> 3*s^2), plus the input
repeated s^2 times per channel, depth-to-space, clamp. Small is (C=32, 2 layers), medium (32, 5), large (64, 11).
The anchor is a frozen 1x1 conv, as in AIMET's reference model: it quantizes and delegates like any conv.
"""

from __future__ import annotations

import torch
from torch import nn

from metasr.models.student import anchor_conv


class QuickSRNet(nn.Module):
    def __init__(self, scale: int, channels: int = 32, num_layers: int = 2) -> None:
        super().__init__()
        self.scale = scale
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU()]
        for _ in range(num_layers):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(channels, 3 * scale * scale, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.upsample = nn.PixelShuffle(scale)
        self.anchor = anchor_conv(3, scale)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.upsample(self.body(image) + self.anchor(image)), 0.0, 1.0)
