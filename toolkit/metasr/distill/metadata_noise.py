"""Metadata dropout and corruption: train the orchestrator to down-weight a missing or wrong source."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from metasr.errors import MetaSRError

CORRUPTIONS = ("swap", "noise", "invert")


def check_corruption_kinds(kinds: Sequence[str], where: str) -> None:
    """Refuse an empty or unknown list of corruption kinds, naming the valid ones."""
    if not kinds or any(kind not in CORRUPTIONS for kind in kinds):
        raise MetaSRError(f"{where}: corruption_kinds {list(kinds)} invalid; choose from {', '.join(CORRUPTIONS)}")


def perturb_metadata(
    metadata: list[torch.Tensor],
    dropout: float,
    corruption: float,
    generator: torch.Generator,
    kinds: Sequence[str] = ("swap", "noise"),
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Drop or corrupt each source of each sample at random; returns the new metadata and ``present`` (N, K, 1, 1).

    A dropped source is marked absent (``present`` 0). A corrupted one stays marked present but carries,
    with equal chances among ``kinds``: another sample's metadata (``swap``: the batch rolled by one),
    uniform noise (``noise``), or the opposite of the truth (``invert``: ``1 - m`` on values clamped to
    [0, 1]). The orchestrator only learns to distrust it from its disagreement with the content.
    """
    check_corruption_kinds(kinds, "perturb_metadata")
    n, k = metadata[0].shape[0], len(metadata)
    draw = torch.rand(n, k, generator=generator)
    present = (draw >= dropout).float().reshape(n, k, 1, 1)
    corrupt = (draw >= dropout) & (draw < dropout + corruption)
    choice = torch.randint(0, len(kinds), (n, k), generator=generator)
    out = []
    for i, m in enumerate(metadata):
        options = torch.stack([_corrupted(m, kind, generator) for kind in kinds])
        wrong = options[choice[:, i], torch.arange(n)]
        out.append(torch.where(corrupt[:, i].reshape(n, 1, 1, 1), wrong, m))
    return out, present


def _corrupted(m: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    if kind == "swap":
        return torch.roll(m, 1, dims=0)
    if kind == "noise":
        return torch.rand(m.shape, generator=generator).to(m)
    return 1.0 - m.clamp(0.0, 1.0)
