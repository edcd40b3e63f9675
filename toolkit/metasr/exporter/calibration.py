"""Calibration data shared by every quantizer: each real photo at several ``strength`` values."""

from __future__ import annotations

import numpy as np
import torch

Batch = tuple[torch.Tensor, ...]  # the graph's inputs: (image, strength), or (image,) for a bare student

# The default path (-1: the estimated degree) and user overrides across [0, 1].
CALIBRATION_STRENGTHS: tuple[float, ...] = (-1.0, 0.0, 0.5, 1.0)


def calibration_batches(
    images: list[torch.Tensor], strengths: tuple[float, ...], input_names: tuple[str, ...]
) -> list[Batch]:
    """Each image with each strength (-1 keeps the estimated degradation degree, [0, 1] overrides it); a graph
    without a strength input (the bare student) gets each image once.

    Calibrating at the default alone would size the quantized ranges of the strength path (the overridden
    degree, the orchestrator's decisions, the FiLM gains and biases) for estimated degrees only, clipping
    what a user's strength produces.
    """
    if "strength" not in input_names:
        return [(image,) for image in images]
    return [(image, torch.full((1, 1, 1, 1), float(s))) for image in images for s in strengths]


def strengths_used(strengths: tuple[float, ...], input_names: tuple[str, ...]) -> tuple[float, ...]:
    """The strengths calibration runs at (for reports): none for a graph without a strength input."""
    return strengths if "strength" in input_names else ()


def feeds(input_names: tuple[str, ...], inputs: Batch) -> dict[str, np.ndarray]:
    """Named float32 arrays for a runtime that feeds inputs by name (ONNX Runtime, Core ML)."""
    return {name: tensor.numpy().astype(np.float32) for name, tensor in zip(input_names, inputs, strict=True)}
