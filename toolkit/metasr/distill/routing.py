"""Choose the experts of a routed MetaSR: k-means over the orchestrator's per-tile FiLM on training tiles."""

from __future__ import annotations

import numpy as np
import torch

from metasr.data.degradations import REAL_ESRGAN_X4PLUS, degrade
from metasr.data.folder import PatchSampler
from metasr.models.metasr import MetaSR
from metasr.models.routed import TileRouter


def training_tiles(images: list[np.ndarray], tile: int, scale: int, count: int, seed: int = 0) -> torch.Tensor:
    """``count`` LR tiles (count, 3, tile, tile): half bicubic-clean, half Real-ESRGAN-damaged; deterministic."""
    lr, hr = PatchSampler(images, tile, scale, seed=seed).sample(count)
    damaged = degrade(hr[count // 2 :], scale, REAL_ESRGAN_X4PLUS, torch.Generator().manual_seed(seed)).lr
    return torch.cat([lr[: count // 2], damaged])


@torch.no_grad()
def tile_vectors(metasr: MetaSR, tiles: torch.Tensor, tile: int, batch: int = 32, thumbnail: int = 1) -> torch.Tensor:
    """The orchestrator's mean FiLM over each tile (count, M), strength at its default (the estimate), read from
    the tile itself or from its x1/``thumbnail`` thumbnail."""
    probe = TileRouter(metasr, torch.zeros(1, metasr.student.modulation_channels), tile, thumbnail)
    return torch.cat([probe.tile_modulation(tiles[i : i + batch])[:, :, 0, 0] for i in range(0, len(tiles), batch)])


def kmeans(vectors: torch.Tensor, k: int, seed: int = 0, iterations: int = 50) -> torch.Tensor:
    """Centroids (k, M) of ``vectors`` by k-means with k-means++ seeding; the same inputs give the same result."""
    generator = torch.Generator().manual_seed(seed)
    centroids = vectors[torch.randint(len(vectors), (1,), generator=generator)]
    while len(centroids) < k:
        nearest = torch.cdist(vectors, centroids).min(dim=1).values ** 2
        pick = torch.multinomial(nearest / nearest.sum(), 1, generator=generator)
        centroids = torch.cat([centroids, vectors[pick]])
    for _ in range(iterations):
        labels = torch.cdist(vectors, centroids).argmin(dim=1)
        moved = torch.stack(
            [vectors[labels == j].mean(dim=0) if (labels == j).any() else centroids[j] for j in range(k)]
        )
        if torch.allclose(moved, centroids):
            break
        centroids = moved
    return centroids
