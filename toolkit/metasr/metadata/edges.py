"""Edge metadata: how much structure each cell holds (mean gradient magnitude, edge density).

Teacher-grade: Canny edges (scikit-image, sigma 1) for the density and Sobel for the magnitude.
Device-grade: fixed Sobel convolutions; the density is a soft threshold of the Sobel magnitude.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.feature import canny
from torch import nn

from metasr.metadata.base import CELL, MetadataSource, cell_pool, register
from metasr.metadata.filters import luma, luma_conv, sobel_conv

MAGNITUDE_GAIN = 4.0  # mean |grad| of 0.25 (a dense, high-contrast texture) maps to 1
EDGE_THRESHOLD = 0.1  # Sobel magnitude that counts as an edge in the device-grade density
EDGE_SHARPNESS = 40.0  # slope of the soft threshold
SOBEL_WIDTH = 2.0  # a thresholded Sobel edge is about two pixels wide, a Canny edge one


class SobelEdges(nn.Module):
    """Device-grade edges: (N, 3, H, W) -> (N, 2, H // CELL, W // CELL) = (magnitude, density)."""

    def __init__(self) -> None:
        super().__init__()
        self.luma = luma_conv()
        self.sobel = sobel_conv()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        grad = torch.abs(self.sobel(self.luma(image)))
        magnitude = grad[:, 0:1] + grad[:, 1:2]
        density = torch.sigmoid((magnitude - EDGE_THRESHOLD) * EDGE_SHARPNESS)
        return torch.cat(
            [torch.clamp(cell_pool(magnitude) * MAGNITUDE_GAIN, 0.0, 1.0), cell_pool(density) / SOBEL_WIDTH], dim=1
        )


@register
class EdgeSource(MetadataSource):
    name = "edges"
    dims = 2

    def teacher(self, image: torch.Tensor) -> torch.Tensor:
        y = luma(image)
        magnitude = SobelEdges().to(image)(image)[:, :1]
        density = torch.stack([torch.from_numpy(_canny_density(plane[0].cpu().numpy())) for plane in y])
        return torch.cat([magnitude, density.unsqueeze(1).to(image)], dim=1)

    def device(self) -> nn.Module:
        return SobelEdges()


def _canny_density(y: np.ndarray) -> np.ndarray:
    """Fraction of Canny edge pixels in every cell of a luminance plane."""
    edges = canny(y.astype(np.float64), sigma=1.0).astype(np.float32)
    rows, cols = y.shape[0] // CELL, y.shape[1] // CELL
    cells = edges[: rows * CELL, : cols * CELL].reshape(rows, CELL, cols, CELL)
    return cells.mean(axis=(1, 3))
