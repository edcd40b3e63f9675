"""Per-layer work of a model (MACs, tensor sizes) for one forward pass, from its conv/linear layers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerWork:
    name: str
    macs: int
    input_elements: int
    output_elements: int
    weight_elements: int


def layer_work(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[LayerWork]:
    """Work of every (transposed) Conv2d and Linear, in execution order, for one forward pass of ``inputs``."""
    records: list[LayerWork] = []

    def hook(name: str):
        def record(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            if isinstance(module, nn.ConvTranspose2d):  # every input pixel scatters a kernel to each output channel
                kh, kw = module.kernel_size
                macs = args[0].numel() * (module.out_channels // module.groups) * kh * kw
            elif isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                macs = out.numel() * (module.in_channels // module.groups) * kh * kw
            else:
                macs = out.numel() * module.in_features
            records.append(LayerWork(name, macs, args[0].numel(), out.numel(), module.weight.numel()))

        return record

    layers = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if isinstance(m, layers)]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return records


def count_macs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    """MACs of every (transposed) Conv2d and Linear for one forward pass of ``inputs``."""
    return sum(layer.macs for layer in layer_work(model, inputs))


def macs_per_output_pixel(module: nn.Module, inputs: tuple, output_pixels: int) -> float:
    """Multiply-accumulates per output pixel of one forward of ``module(*inputs)``."""
    return count_macs(module, inputs) / output_pixels
