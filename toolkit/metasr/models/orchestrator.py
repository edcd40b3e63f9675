"""The orchestrator: per cell, which metadata sources to use, how to fuse them, and where to inject them.

From cheap content features of the LR frame plus every source's per-cell metadata it predicts three
decisions for each cell (``CELL`` LR pixels square):

* **select** (N, K, h, w): a gate per source in [0, 1];
* **fusion** (N, K, h, w): weights over the selected sources, ``g_k s(f_k) / (eps + sum_j g_j s(f_j))`` (a
  normalised sigmoid rather than a softmax, because XNNPACK only delegates a softmax over the last dim);
* **inject** (N, S, h, w): a gate per network stage in [0, 1].

The fused metadata embedding becomes a FiLM modulation (gain, bias) for every stage, scaled by that
stage's injection gate: ``gain = 1 + inject * tanh(a)``, ``bias = inject * b``. A closed gate leaves the
stage untouched. Gates are soft sigmoids during training; with ``hard=True`` (inference and export) they
are sparsified by a shifted ReLU, ``relu(g - t) / (1 - t)``, which is exactly zero below the threshold
``t`` and exportable to every target. Sources the caller marks absent (``present`` = 0) are zeroed and
gated off; training drops and corrupts sources at random so the gates learn when to distrust one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from metasr.metadata.base import CELL, whole_cells


@dataclass
class Decisions:
    """The orchestrator's per-cell outputs; ``modulation`` holds (gain, bias) per stage at cell resolution."""

    select: torch.Tensor
    fusion: torch.Tensor
    inject: torch.Tensor
    modulation: list[tuple[torch.Tensor, torch.Tensor]]
    embed: torch.Tensor  # the fused metadata embedding (N, E, h, w), aligned during distillation

    def stacked_modulation(self) -> torch.Tensor:
        """Every stage's (gain, bias) in one (N, 2 * stages * C, h, w) tensor, the student's modulation order."""
        return torch.cat([t for pair in self.modulation for t in pair], dim=1)


class ContentStem(nn.Module):
    """Cheap per-cell content features: two strided convs, then an average over each cell."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, out_channels, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv2(F.relu(self.conv1(whole_cells(image)))))
        return F.avg_pool2d(x, CELL // 4, CELL // 4)


class Orchestrator(nn.Module):
    """Per-cell selection, fusion and injection gates over metadata sources and network stages."""

    def __init__(
        self,
        source_dims: dict[str, int] | list[tuple[str, int]],
        stage_channels: list[int],
        content_channels: int = 16,
        embed_channels: int = 32,
        hidden_channels: int = 48,
        threshold: float = 0.25,
    ) -> None:
        super().__init__()
        source_dims = dict(source_dims)
        self.config = {
            "source_dims": [[name, dims] for name, dims in source_dims.items()],  # a list keeps the order in JSON
            "stage_channels": list(stage_channels),
            "content_channels": content_channels,
            "embed_channels": embed_channels,
            "hidden_channels": hidden_channels,
            "threshold": threshold,
        }
        self.sources = list(source_dims)
        self.stage_channels = list(stage_channels)
        self.threshold = threshold
        self.hard = False
        k, s = len(self.sources), len(self.stage_channels)
        self.stem = ContentStem(content_channels)
        self.project = nn.ModuleList(nn.Conv2d(d, embed_channels, 1) for d in source_dims.values())
        self.decide = nn.Sequential(
            nn.Conv2d(content_channels + sum(source_dims.values()), hidden_channels, 1),
            nn.ReLU(),
            nn.Conv2d(hidden_channels, 2 * k + s, 1),
        )
        self.film = nn.ModuleList(nn.Conv2d(embed_channels + content_channels, 2 * c, 1) for c in stage_channels)
        for head in self.film:  # start as the identity modulation
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(
        self, image: torch.Tensor, metadata: list[torch.Tensor], present: torch.Tensor | None = None
    ) -> Decisions:
        """Decide for every cell of ``image`` (N, 3, H, W) given per-source ``metadata`` in ``self.sources`` order.

        ``present`` (N, K, 1, 1) marks which sources were supplied (1) or dropped (0); default all present.
        """
        k = len(self.sources)
        content = self.stem(image)
        if present is not None:
            metadata = [m * present[:, i : i + 1] for i, m in enumerate(metadata)]
        logits = self.decide(torch.cat([content, *metadata], dim=1))
        select_logits, fusion_logits, inject_logits = torch.split(logits, [k, k, len(self.stage_channels)], dim=1)
        select = self._gate(select_logits)
        if present is not None:
            select = select * present
        inject = self._gate(inject_logits)
        weights = torch.sigmoid(fusion_logits) * select
        total = sum(weights[:, i : i + 1] for i in range(k))
        fusion = weights / (total + 1e-3)
        embed = sum(
            fusion[:, i : i + 1] * proj(m) for i, (proj, m) in enumerate(zip(self.project, metadata, strict=True))
        )
        features = torch.cat([embed, content], dim=1)
        modulation = []
        for j, head in enumerate(self.film):
            a, b = torch.chunk(head(features), 2, dim=1)
            gate = inject[:, j : j + 1]
            modulation.append((1.0 + gate * torch.tanh(a), gate * b))
        return Decisions(select=select, fusion=fusion, inject=inject, modulation=modulation, embed=embed)

    def is_identity(self) -> bool:
        """True when every FiLM head is zero: gain 1 and bias 0 at every stage, whatever the decisions."""
        return all(not head.weight.any() and not head.bias.any() for head in self.film)

    def _gate(self, logits: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(logits)
        if self.hard:
            gate = F.relu(gate - self.threshold) / (1.0 - self.threshold)
        return gate
