"""FSRCNN (Dong et al., ECCV 2016): feature extraction, shrinking, mapping, expanding, deconvolution.

The paper's FSRCNN(d=56, s=12, m=4) with PReLU activations, on RGB, with a clamp to [0, 1] at the end.
The 9x9 transposed convolution with stride ``scale`` does the upsampling. Initialised as in the paper:
He-normal convs, the deconvolution from N(0, 0.001), zero biases.
"""

from __future__ import annotations

import torch
from torch import nn


class FSRCNN(nn.Module):
    def __init__(self, scale: int, d: int = 56, s: int = 12, m: int = 4) -> None:
        super().__init__()
        self.scale = scale
        layers: list[nn.Module] = [nn.Conv2d(3, d, 5, padding=2), nn.PReLU(d), nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        self.deconv = nn.ConvTranspose2d(d, 3, 9, stride=scale, padding=4, output_padding=scale - 1)
        for conv in self.body:
            if isinstance(conv, nn.Conv2d):
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                nn.init.zeros_(conv.bias)
        nn.init.normal_(self.deconv.weight, std=0.001)
        nn.init.zeros_(self.deconv.bias)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.deconv(self.body(image)), 0.0, 1.0)
