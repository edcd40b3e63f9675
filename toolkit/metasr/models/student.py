"""MetaSR student: a plain, quantization-friendly super-resolution CNN.

Layout (every conv is 3x3, every activation a ReLU):

    image ─ head ─ [RepBlock ⊙ FiLM(stage i)] x num_blocks ─ tail ─(+ anchor)─ depth-to-space ─ clamp

* ``RepBlock`` trains as 3x3 + 1x1 + identity branches and is reparameterized into one 3x3 conv
  for deployment (``reparameterize()``), so exported graphs contain nothing but convs.
* The anchor residual repeats each input channel ``scale**2`` times (a fixed 1x1 conv), so the
  network only learns the detail on top of nearest-neighbour upsampling.
* ``modulation`` carries a per-stage, per-channel gain and bias (FiLM) that the orchestrator
  drives; ``neutral_modulation()`` (gain 1, bias 0) leaves the network unmodulated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class StudentConfig:
    """Hyper-parameters of :class:`MetaSRStudent`."""

    scale: int = 2
    channels: int = 32
    num_blocks: int = 5
    in_channels: int = 3

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class RepBlock(nn.Module):
    """3x3 conv trained with parallel 1x1 and identity branches, foldable into a single 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv3 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 1)
        self.fused: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return self.fused(x)
        return self.conv3(x) + self.conv1(x) + x

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold the 1x1 and identity branches into one 3x3 conv (exact up to float rounding)."""
        if self.fused is not None:
            return
        channels = self.conv3.out_channels
        weight = self.conv3.weight.clone()
        weight += F.pad(self.conv1.weight, [1, 1, 1, 1])
        weight[torch.arange(channels), torch.arange(channels), 1, 1] += 1.0
        fused = nn.Conv2d(channels, channels, 3, padding=1)
        fused.weight.copy_(weight)
        fused.bias.copy_(self.conv3.bias + self.conv1.bias)
        self.fused = fused
        del self.conv3, self.conv1


class MetaSRStudent(nn.Module):
    """Plain SR CNN with FiLM-modulated stages and an anchor residual."""

    def __init__(self, config: StudentConfig | None = None) -> None:
        super().__init__()
        self.config = config or StudentConfig()
        c, s = self.config.channels, self.config.scale
        self.head = nn.Conv2d(self.config.in_channels, c, 3, padding=1)
        self.blocks = nn.ModuleList(RepBlock(c) for _ in range(self.config.num_blocks))
        self.tail = nn.Conv2d(c, self.config.in_channels * s * s, 3, padding=1)
        self.anchor = anchor_conv(self.config.in_channels, s)
        self.upsample = nn.PixelShuffle(s)

    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def num_stages(self) -> int:
        return self.config.num_blocks

    @property
    def modulation_channels(self) -> int:
        """Length of the modulation vector: a gain and a bias per channel for every stage."""
        return 2 * self.config.num_blocks * self.config.channels

    def neutral_modulation(self, batch: int = 1) -> torch.Tensor:
        """Modulation that leaves every stage unchanged (gain 1, bias 0), shape (N, M, 1, 1)."""
        c = self.config.channels
        stage = torch.cat([torch.ones(c), torch.zeros(c)])
        return stage.repeat(self.num_stages).reshape(1, -1, 1, 1).repeat(batch, 1, 1, 1)

    def forward(self, image: torch.Tensor, modulation: torch.Tensor | None = None) -> torch.Tensor:
        """Upscale ``image`` (N, 3, H, W) in [0, 1]; ``modulation`` is (N, 2*stages*C, 1, 1), None for none."""
        x = F.relu(self.head(image))
        if modulation is None:
            for block in self.blocks:
                x = F.relu(block(x))
        else:
            films = torch.split(modulation, self.config.channels, dim=1)
            for i, block in enumerate(self.blocks):
                x = F.relu(block(x) * films[2 * i] + films[2 * i + 1])
        x = self.tail(x) + self.anchor(image)
        return torch.clamp(self.upsample(x), 0.0, 1.0)

    def reparameterize(self) -> MetaSRStudent:
        """Fold every training-time branch into plain 3x3 convs, in place; returns ``self``."""
        for block in self.blocks:
            block.reparameterize()
        return self


def anchor_conv(channels: int, scale: int) -> nn.Conv2d:
    """A frozen 1x1 conv that repeats every input channel scale**2 times: nearest-neighbour upsampling
    once a depth-to-space follows."""
    conv = nn.Conv2d(channels, channels * scale * scale, 1, bias=False)
    conv.weight.data.copy_(anchor_weight(channels, scale))
    conv.weight.requires_grad_(False)
    return conv


def anchor_weight(channels: int, scale: int) -> torch.Tensor:
    """1x1 conv weight that repeats every input channel scale**2 times, in depth-to-space order."""
    repeats = scale * scale
    weight = torch.zeros(channels * repeats, channels, 1, 1)
    for out in range(channels * repeats):
        weight[out, out // repeats, 0, 0] = 1.0
    return weight
