"""Quantization loss per export target: the float network against its lowered artifact, Y-PSNR.

Every architecture goes through the exporters' own ``quantize`` and ``lower`` stages and the pipeline's
``validate`` stage (real photos, artifact run in its runtime or the target's simulator). A plain
``image -> image`` network goes through them like the bare student: one ``image`` input (:class:`PlainGraph`
only gives it the ``scale`` the stages read).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from metasr.data.sample_images import calibration_images
from metasr.errors import MetaSRError
from metasr.exporter import pipeline, registry
from metasr.exporter.stages import Macs, PreparedModel
from metasr.validate.macs import count_macs

TARGETS = tuple(registry.TARGETS)


class PlainGraph(nn.Module):
    """A single-input SR network with the ``scale`` attribute the export stages read."""

    def __init__(self, net: nn.Module, scale: int) -> None:
        super().__init__()
        self.net = net
        self.scale = scale

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


@dataclass(frozen=True)
class QuantLoss:
    """One architecture on one target: parity in dB (mean and worst photo), or why it did not lower."""

    target: str
    mean_db: float
    min_db: float
    error: str = ""


def prepare_plain(net: nn.Module, scale: int, target: str, size: tuple[int, int] = (256, 256)) -> PreparedModel:
    """The pipeline's *prepare* output for a plain network, with the target's default recipe at ``size``."""
    recipe = dataclasses.replace(pipeline.resolve_recipe(target), scale=scale, input_sizes=(size,))
    graph = PlainGraph(net.eval(), scale)
    for p in graph.parameters():
        p.requires_grad_(False)
    image = torch.zeros(1, 3, *size)
    macs = count_macs(net, (image,)) / (size[0] * size[1] * scale**2)
    params = sum(p.numel() for p in net.parameters())
    return PreparedModel(graph, "benchmark", recipe, recipe.input_sizes, params, Macs(macs, macs))  # type: ignore[arg-type]


def quant_loss(prepared: PreparedModel) -> QuantLoss:
    """Quantize, lower and validate ``prepared`` for its recipe's target; a refusal becomes ``error``."""
    target_name = prepared.recipe.target
    target = registry.target_module(target_name)
    staging = Path(tempfile.mkdtemp(prefix=f"bench-{target_name}-"))
    try:
        quantized = target.quantize(prepared, calibration_images(*prepared.recipe.input_size))
        lowered = pipeline.lower(quantized, target, staging)
        parity = pipeline.validate(lowered, prepared)
    except (MetaSRError, RuntimeError, ValueError) as error:
        return QuantLoss(target_name, float("nan"), float("nan"), str(error).splitlines()[0][:160])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return QuantLoss(target_name, sum(parity.psnr_db) / len(parity.psnr_db), parity.min_psnr_db)
