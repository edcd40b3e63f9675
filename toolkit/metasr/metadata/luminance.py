"""Luminance and noise statistics per cell: brightness, contrast, and a noise level.

Teacher-grade: exact per-cell mean and variance of Y, and Immerkaer's noise estimate (J. Immerkaer,
"Fast noise variance estimation", CVIU 1996: the mean absolute response to a Laplacian-difference mask
that cancels image structure up to second order). Device-grade: pooled Y and Y**2 (variance), and the pooled absolute
Laplacian as the noise proxy.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.signal import convolve2d
from torch import nn

from metasr.metadata.base import CELL, MetadataSource, cell_pool, register
from metasr.metadata.filters import laplacian_conv, luma, luma_conv

CONTRAST_GAIN = 4.0  # Y std of 0.25 maps to 1
NOISE_GAIN = 10.0  # noise sigma of 0.1 (25/255) maps to 1
LAPLACIAN_TO_SIGMA = 1.25  # mean |Laplacian/4| ~ 0.8 sigma for white Gaussian noise
IMMERKAER_MASK = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


class LuminanceStats(nn.Module):
    """Device-grade statistics: (N, 3, H, W) -> (N, 3, h, w) = (mean Y, contrast, noise)."""

    def __init__(self) -> None:
        super().__init__()
        self.luma = luma_conv()
        self.laplacian = laplacian_conv()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        y = self.luma(image)
        mean = cell_pool(y)
        variance = torch.relu(cell_pool(y * y) - mean * mean)
        contrast = torch.clamp(variance * (CONTRAST_GAIN**2), 0.0, 1.0)  # a monotone stand-in for std (no sqrt)
        noise = cell_pool(torch.abs(self.laplacian(y))) * (LAPLACIAN_TO_SIGMA * NOISE_GAIN)
        return torch.cat([mean, contrast, torch.clamp(noise, 0.0, 1.0)], dim=1)


@register
class LuminanceSource(MetadataSource):
    name = "luminance"
    dims = 3

    def teacher(self, image: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.from_numpy(_cell_stats(plane[0].cpu().numpy())) for plane in luma(image)]).to(image)

    def device(self) -> nn.Module:
        return LuminanceStats()


def _cell_stats(y: np.ndarray) -> np.ndarray:
    """(3, rows, cols): mean, squared-std contrast and wavelet noise sigma of every cell."""
    rows, cols = y.shape[0] // CELL, y.shape[1] // CELL
    out = np.zeros((3, rows, cols), dtype=np.float32)
    for r in range(rows):
        for c in range(cols):
            cell = y[r * CELL : (r + 1) * CELL, c * CELL : (c + 1) * CELL].astype(np.float64)
            out[0, r, c] = cell.mean()
            out[1, r, c] = min(cell.var() * CONTRAST_GAIN**2, 1.0)
            out[2, r, c] = min(_immerkaer_sigma(cell) * NOISE_GAIN, 1.0)
    return out


def _immerkaer_sigma(y: np.ndarray) -> float:
    """Noise standard deviation of a plane: sqrt(pi / 2) / (6 (H - 2)(W - 2)) * sum |y * mask|."""
    response = np.abs(convolve2d(y, IMMERKAER_MASK, mode="valid"))
    return float(np.sqrt(np.pi / 2.0) * response.sum() / (6.0 * response.size))
