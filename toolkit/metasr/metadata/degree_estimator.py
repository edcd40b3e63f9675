"""Degradation-degree estimator: LR image -> per-cell (blur, noise, JPEG) degrees in [0, 1].

A small fully convolutional network: one full-resolution conv (noise and JPEG blocking live in the
finest scale), three stride-2 convs, an average over each 32-pixel cell and a 1x1 head with a sigmoid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DEGRADATIONS = ("blur", "noise", "jpeg")


class DegreeEstimator(nn.Module):
    """Per-cell degradation degrees; cell i covers LR pixels [32 i, 32 i + 32)."""

    def __init__(self, channels: int = 24) -> None:
        super().__init__()
        c = channels
        self.conv1 = nn.Conv2d(3, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1)
        self.conv4 = nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1)
        self.head = nn.Conv2d(2 * c, len(DEGRADATIONS), 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(image))
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        x = F.relu(self.conv4(x))
        return torch.sigmoid(self.head(F.avg_pool2d(x, 4, 4)))
