"""Metadata dropout and corruption: train the orchestrator to down-weight a missing or wrong source."""

from __future__ import annotations

import torch


def perturb_metadata(
    metadata: list[torch.Tensor], dropout: float, corruption: float, generator: torch.Generator
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Drop or corrupt each source of each sample at random; returns the new metadata and ``present`` (N, K, 1, 1).

    A dropped source is marked absent (``present`` 0). A corrupted one stays marked present but carries
    another sample's metadata (the batch rolled by one) or uniform noise, half the time each: the
    orchestrator only learns to distrust it from its disagreement with the content.
    """
    n, k = metadata[0].shape[0], len(metadata)
    draw = torch.rand(n, k, generator=generator)
    present = (draw >= dropout).float().reshape(n, k, 1, 1)
    corrupt = (draw >= dropout) & (draw < dropout + corruption)
    use_noise = torch.rand(n, k, generator=generator) < 0.5
    out = []
    for i, m in enumerate(metadata):
        noise = torch.rand(m.shape, generator=generator).to(m)
        wrong = torch.where(use_noise[:, i].reshape(n, 1, 1, 1), noise, torch.roll(m, 1, dims=0))
        out.append(torch.where(corrupt[:, i].reshape(n, 1, 1, 1), wrong, m))
    return out, present
