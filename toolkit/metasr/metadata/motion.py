"""Motion between consecutive video frames, per cell: how much moved and how fast.

Video-only (``needs_previous_frame``): the input is the current and previous LR frames stacked on the
channel axis, (N, 6, H, W). Teacher-grade: dense optical flow (OpenCV Farneback) -> per-cell mean flow
magnitude and the fraction of moving pixels. Device-grade: per-cell mean absolute frame difference and
a soft threshold of it.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from metasr.metadata.base import CELL, MetadataSource, cell_pool, register
from metasr.metadata.filters import luma, luma_conv

FLOW_GAIN = 1.0 / 8.0  # 8 LR pixels of motion per frame maps to 1
MOVING_FLOW = 1.0  # pixels per frame that count as moving (teacher)
DIFF_GAIN = 8.0  # mean |dY| of 0.125 maps to 1 (device)
MOVING_DIFF = 0.04  # |dY| that counts as moving (device)


class FrameDifference(nn.Module):
    """Device-grade motion: (N, 6, H, W) -> (N, 2, h, w) = (difference energy, moving fraction)."""

    def __init__(self) -> None:
        super().__init__()
        self.luma = luma_conv()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        diff = torch.abs(self.luma(frames[:, :3]) - self.luma(frames[:, 3:]))
        moving = torch.sigmoid((diff - MOVING_DIFF) * 100.0)
        return torch.cat([torch.clamp(cell_pool(diff) * DIFF_GAIN, 0.0, 1.0), cell_pool(moving)], dim=1)


@register
class MotionSource(MetadataSource):
    name = "motion"
    dims = 2
    needs_previous_frame = True

    def teacher(self, image: torch.Tensor) -> torch.Tensor:
        current, previous = luma(image[:, :3]), luma(image[:, 3:])
        out = [_flow_cells(p[0].cpu().numpy(), c[0].cpu().numpy()) for c, p in zip(current, previous, strict=True)]
        return torch.from_numpy(np.stack(out)).to(image)

    def device(self) -> nn.Module:
        return FrameDifference()


def _flow_cells(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """(2, rows, cols): mean Farneback flow magnitude (scaled) and moving fraction per cell."""
    flow = cv2.calcOpticalFlowFarneback(_to_uint8(previous), _to_uint8(current), None, 0.5, 3, 15, 3, 5, 1.2, 0)
    magnitude = np.hypot(flow[..., 0], flow[..., 1])
    rows, cols = current.shape[0] // CELL, current.shape[1] // CELL
    cells = magnitude[: rows * CELL, : cols * CELL].reshape(rows, CELL, cols, CELL)
    speed = np.clip(cells.mean(axis=(1, 3)) * FLOW_GAIN, 0.0, 1.0)
    moving = (cells > MOVING_FLOW).mean(axis=(1, 3))
    return np.stack([speed, moving]).astype(np.float32)


def _to_uint8(y: np.ndarray) -> np.ndarray:
    return np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8)
