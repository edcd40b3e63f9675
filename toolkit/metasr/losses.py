"""Pixel losses of the student trainer: L1, L2, and L2 on what a YUV 4:2:0 camera frame keeps."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from metasr.images import BT601_YCBCR

RGB_TO_YCBCR = torch.tensor(BT601_YCBCR, dtype=torch.float64) / 255.0  # on a [0, 1] scale; a loss sees no offsets


def yuv420_mse(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the samples of a YUV 4:2:0 frame (NV12 / NV21, and JPEG's usual chroma
    subsampling): each 2x2 block keeps four luma samples and one Cb, Cr pair, its 2x2 mean. The luma samples are
    what Y-PSNR measures; chroma detail finer than 2x2, which the frame drops, costs nothing. Sides must be even."""
    if sr.shape[-2] % 2 or sr.shape[-1] % 2:
        raise ValueError(f"yuv420_mse needs even sides, got {sr.shape[-2]}x{sr.shape[-1]}")
    diff = F.conv2d(sr - hr, RGB_TO_YCBCR.to(sr.dtype).reshape(3, 3, 1, 1))
    luma = diff[:, :1].pow(2).sum(dim=(1, 2, 3))
    chroma = F.avg_pool2d(diff[:, 1:], 2).pow(2).sum(dim=(1, 2, 3))
    samples = diff[0, 0].numel() * 3 // 2
    return ((luma + chroma) / samples).mean()


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": F.l1_loss,
    "l2": F.mse_loss,  # the PSNR-aligned fine-tuning stage of SPAN's and RLFN's recipes
    "l2-yuv420": yuv420_mse,
}
