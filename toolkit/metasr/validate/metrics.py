"""Image quality metrics following the usual SR protocol (Y channel, border crop)."""

from __future__ import annotations

import math

import numpy as np

from metasr.images import rgb_to_y


def y_psnr(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """PSNR in dB between the luma of two RGB images in [0, 1]; ``inf`` when identical."""
    ya, yb = rgb_to_y(a.astype(np.float64)), rgb_to_y(b.astype(np.float64))
    if border:
        ya, yb = ya[border:-border, border:-border], yb[border:-border, border:-border]
    mse = float(np.mean((ya - yb) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def max_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute per-pixel difference, in [0, 1] units."""
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
