"""Baseline JPEG compression in torch (batched, per-sample quality), in the style of differentiable JPEG.

YCbCr (JFIF), 4:2:0 chroma subsampling by 2x2 averaging, 8x8 orthonormal DCT as a matrix product, the IJG
quantisation tables scaled by quality exactly as libjpeg does, rounding, then the inverse with bilinear
("fancy") chroma upsampling. Images are edge-padded to a multiple of 16 and cropped back. Deterministic.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from metasr.errors import MetaSRError
from metasr.images import LUMA

LUMA_TABLE = torch.tensor(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=torch.float32,
)
CHROMA_TABLE = torch.full((8, 8), 99.0)
CHROMA_TABLE[:4, :4] = torch.tensor(
    [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]], dtype=torch.float32
)

_RGB_TO_YCBCR = torch.tensor(
    [list(LUMA), [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=torch.float32
)
_YCBCR_TO_RGB = torch.tensor([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]], dtype=torch.float32)


def _dct_matrix() -> torch.Tensor:
    """The 2D 8x8 orthonormal DCT-II (JPEG's forward DCT) as one 64x64 matrix acting on row-major blocks.

    For the 1D matrix D, D @ block @ D.T flattened row-major equals kron(D, D) @ block.flatten().
    """
    u = torch.arange(8, dtype=torch.float64)[:, None]
    x = torch.arange(8, dtype=torch.float64)[None]
    dct = torch.where(u == 0, math.sqrt(1 / 8), math.sqrt(2 / 8)) * torch.cos((2 * x + 1) * u * math.pi / 16)
    return torch.kron(dct, dct).float()


_DCT = _dct_matrix()


def quantisation_tables(quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) qualities in [1, 100] -> luma and chroma tables (N, 8, 8), scaled as libjpeg with force_baseline."""
    q = quality.float()[:, None, None]
    scale = torch.where(q < 50, torch.floor(5000 / q), 200 - 2 * q)

    def scaled(table: torch.Tensor) -> torch.Tensor:
        return torch.floor((table.to(q.device) * scale + 50) / 100).clamp(1, 255)

    return scaled(LUMA_TABLE), scaled(CHROMA_TABLE)


def _quantise(planes: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Round the 8x8 DCT of level-shifted planes (N, C, H, W) to multiples of the per-sample ``table`` (N, 8, 8)."""
    n, c, h, w = planes.shape
    blocks = (planes - 128).reshape(n, c, h // 8, 8, w // 8, 8).transpose(3, 4).reshape(n, c, h // 8, w // 8, 64)
    dct = _DCT.to(planes)
    step = table.reshape(n, 1, 1, 1, 64)
    coeffs = torch.round(blocks @ dct.T / step) * step
    return (coeffs @ dct).reshape(n, c, h // 8, w // 8, 8, 8).transpose(3, 4).reshape(n, c, h, w) + 128


def jpeg_compress(images: torch.Tensor, quality: torch.Tensor | float) -> torch.Tensor:
    """JPEG round trip of (N, 3, H, W) images in [0, 1] at per-sample ``quality`` (scalar or (N,)), in [0, 1]."""
    n, _, h, w = images.shape
    quality = torch.as_tensor(quality, dtype=torch.float32, device=images.device).expand(n)
    if bool(((quality < 1) | (quality > 100)).any()):
        raise MetaSRError(f"JPEG quality {quality.tolist()} out of range; pass qualities between 1 and 100")
    x = F.pad(images * 255, (0, -w % 16, 0, -h % 16), mode="replicate")
    ycc = torch.einsum("ij,njhw->nihw", _RGB_TO_YCBCR.to(x), x) + torch.tensor([0.0, 128, 128]).to(x)[:, None, None]
    luma_table, chroma_table = quantisation_tables(quality)
    luma = _quantise(ycc[:, :1], luma_table)
    chroma = _quantise(F.avg_pool2d(ycc[:, 1:], 2), chroma_table)
    chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False) - 128
    rgb = torch.einsum("ij,njhw->nihw", _YCBCR_TO_RGB.to(x), torch.cat([luma, chroma], 1))
    return (rgb[..., :h, :w] / 255).clamp(0, 1)
