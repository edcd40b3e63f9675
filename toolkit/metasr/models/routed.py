"""Routed MetaSR: the orchestrator picks, per tile, one of K plain experts whose FiLM is folded into their convs.

    image ─ thumbnail ─ extractors + orchestrator (cells) ─ mean FiLM per tile ─ nearest centroid ─ expert index
    tile  ─ expert[index] (a plain student: FiLM folded into its stage convs) ─ SR tile

A stage computes ``relu(gain * (W x + c) + bias)``; with gain and bias constant over a tile that is
``relu((gain W) x + (gain c + bias))``, one plain conv. So every expert costs exactly the plain student, and the
per-pixel work of full-resolution FiLM disappears; the orchestrator's decisions survive as the choice of expert.
The router may read a thumbnail (``thumbnail`` > 1: every ``thumbnail``-th pixel of each row and column; unlike
averaging, it keeps noise and JPEG blocking visible), which divides its cost by the factor squared; a tile
must then hold whole metadata cells of the thumbnail.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from metasr.metadata.base import CELL
from metasr.models.metasr import MetaSR
from metasr.models.student import MetaSRStudent


def fold_modulation(student: MetaSRStudent, modulation: torch.Tensor) -> MetaSRStudent:
    """A reparameterized copy of ``student`` with one FiLM vector (2*stages*C: gain, bias per stage) folded in."""
    expert = copy.deepcopy(student).reparameterize()
    c = student.config.channels
    films = torch.split(modulation.reshape(-1), c)
    with torch.no_grad():
        for i, block in enumerate(expert.blocks):
            gain, bias = films[2 * i], films[2 * i + 1]
            block.fused.weight.mul_(gain[:, None, None, None])
            block.fused.bias.mul_(gain).add_(bias)
    return expert


class TileRouter(nn.Module):
    """A MetaSR graph's extractors and orchestrator scoring ``centroids`` (K, M) per tile: lower is nearer.

    ``score_k = |c_k|^2 - 2 c_k . v`` for a tile's mean FiLM ``v`` (its squared distance less ``|v|^2``), a 1x1
    conv over the per-tile FiLM, so the router lowers like any other conv graph; an app takes the argmin.
    """

    def __init__(self, metasr: MetaSR, centroids: torch.Tensor, tile: int, thumbnail: int = 1) -> None:
        super().__init__()
        if tile % (CELL * thumbnail):
            raise ValueError(f"tile {tile} must be whole {CELL}-pixel metadata cells of the x1/{thumbnail} thumbnail")
        self.metasr = metasr
        self.tile = tile
        self.thumbnail = thumbnail
        self.register_buffer("centroids", centroids.clone())
        self.score = nn.Conv2d(centroids.shape[1], len(centroids), 1)
        with torch.no_grad():
            self.score.weight.copy_(-2.0 * centroids[:, :, None, None])
            self.score.bias.copy_((centroids**2).sum(dim=1))

    def tile_modulation(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        """The orchestrator's FiLM averaged over each tile's cells: (N, M, H / tile, W / tile)."""
        small = image[..., :: self.thumbnail, :: self.thumbnail]
        decisions = self.metasr.decide(small, strength)
        per_tile = self.tile // (CELL * self.thumbnail)
        return F.avg_pool2d(decisions.stacked_modulation(), per_tile, per_tile, ceil_mode=True)

    def forward(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (N, K, H / tile, W / tile)."""
        return self.score(self.tile_modulation(image, strength))


class RoutedMetaSR(nn.Module):
    """A tile router over experts: ``student`` folded at each of the router's centroids."""

    def __init__(self, router: TileRouter, student: MetaSRStudent) -> None:
        super().__init__()
        self.router = router
        self.experts = nn.ModuleList(fold_modulation(student, c) for c in router.centroids)

    @property
    def scale(self) -> int:
        return self.experts[0].scale

    def route(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        """Expert index per tile, (N, H / tile, W / tile)."""
        return self.router(image, strength).argmin(dim=1)

    def forward(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        """Each tile from its expert; every expert sees the whole frame, as overlapping app tiles would."""
        routes = self.route(image, strength)
        s = self.scale
        mask = F.interpolate(routes[:, None].float(), scale_factor=self.router.tile * s, mode="nearest")
        mask = mask[..., : image.shape[-2] * s, : image.shape[-1] * s]
        out = torch.zeros(image.shape[0], 3, image.shape[-2] * s, image.shape[-1] * s)
        for k in torch.unique(routes).tolist():
            out = torch.where(mask == k, self.experts[k](image), out)
        return out
