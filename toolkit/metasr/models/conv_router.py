"""ConvRouter: a few strided convolutions that pick, per tile, which routed expert restores it best.

    thumbnail ─ conv 3x3 ─ 3 x (conv 3x3, stride 2) ─ mean per tile ─ conv 1x1 ─ K logits ─┐
    strength ─────────────────────────────────────── (strength - level_k)² ────────────────┴─ scores (lower wins)

An artifact's router may instead decide once per call (``per_call``): it averages its whole input, so an app
tile of any size runs exactly one expert, and the graph takes any input size.

The orchestrator's own router (extractors + orchestrator on the thumbnail) is hundreds of small operators; this
one is five convolutions and a pooling, trained on which expert restored each training tile best. A ``strength``
in [0, 1] overrides the choice: the expert whose restoration level (0 = the clean-photo expert, 1 = the one
for the heaviest damage) is nearest wins; the default -1 keeps the learned choice. The blend needs only
clamp/mul/add, like the MetaSR graph's strength override, so it lowers on every target.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

STRIDE = 8  # the features' stride: three stride-2 convolutions


class ConvRouter(nn.Module):
    """Scores (N, K, H / tile, W / tile) for ``len(levels)`` experts from the x1/``thumbnail`` thumbnail."""

    def __init__(self, levels: torch.Tensor, tile: int, thumbnail: int, scale: int, width: int = 16) -> None:
        super().__init__()
        if tile % (STRIDE * thumbnail):
            raise ValueError(f"tile {tile} must be whole {STRIDE}-pixel feature cells of the x1/{thumbnail} thumbnail")
        self.tile = tile
        self.thumbnail = thumbnail
        self.scale = scale  # of the experts it routes between
        self.width = width
        self.partial_tiles = True  # False: the image holds whole tiles (an artifact's fixed pooling)
        self.per_call = False  # True: one decision per input (its whole area is one routing tile)
        self.features = nn.Sequential(  # the degree estimator's trunk, so its trained weights can start it
            nn.Conv2d(3, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Conv2d(2 * width, len(levels), 1)
        self.register_buffer("levels", levels.reshape(1, -1, 1, 1).clone())

    @property
    def experts(self) -> int:
        return self.levels.shape[1]

    def default_strength(self, batch: int = 1) -> torch.Tensor:
        """The ``strength`` input that keeps the learned choice, shape (N, 1, 1, 1)."""
        return torch.full((batch, 1, 1, 1), -1.0)

    def logits(self, image: torch.Tensor) -> torch.Tensor:
        """Per-tile preference for each expert (higher wins), (N, K, H / tile, W / tile); (N, K, 1, 1) per call:
        on an input of one routing tile both decide alike."""
        small = image[..., :: self.thumbnail, :: self.thumbnail] if self.thumbnail > 1 else image
        features = self.features(small)
        if self.per_call:
            return self.head(features.mean(dim=(2, 3), keepdim=True))
        window = self.tile // (self.thumbnail * STRIDE)
        return self.head(F.avg_pool2d(features, window, window, ceil_mode=self.partial_tiles))

    def forward(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (N, K, H / tile, W / tile); an app takes the argmin."""
        learned = -self.logits(image)
        if strength is None:
            return learned
        use = torch.clamp(strength + 1.0, 0.0, 1.0)  # 1 for any strength >= 0, 0 at the default -1
        gap = torch.clamp(strength, 0.0, 1.0) - self.levels
        return use * (gap * gap) + (1.0 - use) * learned  # a product, not pow: the ANE has no pow

    def on_thumbnail(self, partial_tiles: bool = False) -> ConvRouter:
        """A copy taking the thumbnail itself (cut by the app) as its image; whole tiles only unless
        ``partial_tiles`` (training on thumbnails of tiles smaller than a routing tile)."""
        router = copy.deepcopy(self)
        router.tile, router.thumbnail = self.tile // self.thumbnail, 1
        router.partial_tiles = partial_tiles
        return router
