"""Multiply-accumulate count of a model, from its conv layers, for one forward pass."""

from __future__ import annotations

import torch
from torch import nn


def count_macs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    """MACs of every Conv2d and Linear for one forward pass of ``inputs``."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += out.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total
