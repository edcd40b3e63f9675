"""Content classifier: LR image -> per-cell probabilities of (text, face, cartoon, low_light, natural).

Two paths meet on the 32-pixel cell grid:

* learned: 4x4 stride-2 convs with padding 1 down to 1/8 (output j is centred on input pixels 2j and
  2j + 1), a 4x4 average pool to cells, a 1x1 conv, a 3x3 conv over neighbouring cells, a 1x1 head;
* fixed: the fraction of pixels of each cell that equal their right and lower neighbours exactly (the
  teacher's flat-colour statistic): differences scaled by 255, so one grey level gives 1, then
  ``relu(1 - sum relu(+-difference))`` is 1 on flat pixels and 0 elsewhere, averaged over the cell.
  A learned 1x1 conv adds it to the learned cell features.

Only conv2d, ReLU, avg_pool2d, add, permutes and a softmax over the last dim, so the graph exports to
Core ML, ExecuTorch (XNNPACK int8), ONNX and QNN; output cell i covers LR pixels [32 i, 32 i + 32), like
``cell_pool``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CONTENT_CLASSES = ("text", "face", "cartoon", "low_light", "natural")
CELL = 32
GREY_LEVELS = 255.0


class ContentClassifier(nn.Module):
    """(N, 3, H, W) in [0, 1] -> (N, 5, H // 32, W // 32) softmax probabilities."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        c = width
        self.down1 = nn.Conv2d(3, c, 4, stride=2, padding=1)  # 1/2
        self.down2 = nn.Conv2d(c, c, 4, stride=2, padding=1)  # 1/4
        self.down3 = nn.Conv2d(c, 2 * c, 4, stride=2, padding=1)  # 1/8
        self.mix = nn.Conv2d(2 * c, 2 * c, 1)
        self.flat_in = nn.Conv2d(1, 2 * c, 1, bias=False)
        self.context = nn.Conv2d(2 * c, 2 * c, 3, padding=1)  # on the cell grid: 3 x 3 cells
        self.head = nn.Conv2d(2 * c, len(CONTENT_CLASSES), 1)
        self.differences = _difference_conv()
        self.flat_pixels = _frozen(nn.Conv2d(12, 1, 1), weight=torch.full((1, 12, 1, 1), -1.0), bias=torch.ones(1))

    def logits(self, image: torch.Tensor) -> torch.Tensor:
        """Unnormalised class scores per cell (training uses these with cross-entropy)."""
        flat = F.avg_pool2d(F.relu(self.flat_pixels(F.relu(self.differences(image)))), CELL, CELL)
        x = F.relu(self.down1(image))
        x = F.relu(self.down2(x))
        x = F.relu(self.down3(x))
        x = F.relu(self.mix(F.avg_pool2d(x, 4, 4)) + self.flat_in(flat))
        x = F.relu(self.context(x))
        return self.head(x)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # The softmax runs over the last dim (classes moved there and back): XNNPACK delegates no other.
        return torch.softmax(self.logits(image).permute(0, 2, 3, 1), dim=-1).permute(0, 3, 1, 2)


def _frozen(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    conv.weight.data.copy_(weight)
    conv.bias.data.copy_(bias)
    conv.requires_grad_(False)
    return conv


def _difference_conv() -> nn.Conv2d:
    """RGB -> 12 channels: +-(right - centre) and +-(below - centre) per colour, in grey levels."""
    weight = torch.zeros(12, 3, 3, 3)
    for colour in range(3):
        for k, (dy, dx) in enumerate(((1, 2), (2, 1))):
            for s, sign in enumerate((1.0, -1.0)):
                out = 4 * colour + 2 * k + s
                weight[out, colour, dy, dx] = sign * GREY_LEVELS
                weight[out, colour, 1, 1] = -sign * GREY_LEVELS
    return _frozen(nn.Conv2d(3, 12, 3, padding=1), weight=weight, bias=torch.zeros(12))
