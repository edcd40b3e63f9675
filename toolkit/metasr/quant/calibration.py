"""Calibration data shared by every quantizer: each real photo at several ``strength`` values."""

from __future__ import annotations

import torch

Batch = tuple[torch.Tensor, torch.Tensor]  # (image, strength)

# The default path (-1: the estimated degree) and user overrides across [0, 1].
CALIBRATION_STRENGTHS: tuple[float, ...] = (-1.0, 0.0, 0.5, 1.0)


def calibration_batches(images: list[torch.Tensor], strengths: tuple[float, ...]) -> list[Batch]:
    """Each image with each strength (-1 keeps the estimated degradation degree, [0, 1] overrides it).

    Calibrating at the default alone would size the quantized ranges of the strength path (the overridden
    degree, the orchestrator's decisions, the FiLM gains and biases) for estimated degrees only, clipping
    what a user's strength produces.
    """
    return [(image, torch.full((1, 1, 1, 1), float(s))) for image in images for s in strengths]
