"""Image quality metrics following the usual SR protocol (Y channel, border crop)."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, signal

from metasr.images import rgb_to_y

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
GMS_C = 0.0026  # the GMSD paper's c = 170 on a 0..255 scale, for luma in [0, 1]
PREWITT = np.array([[1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]) / 3.0


def _lumas(a: np.ndarray, b: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    """Float64 luma in [0, 1] of two RGB images, ``border`` pixels cropped from every side."""
    ya, yb = rgb_to_y(a.astype(np.float64)), rgb_to_y(b.astype(np.float64))
    if border:
        ya, yb = ya[border:-border, border:-border], yb[border:-border, border:-border]
    return ya, yb


def y_psnr(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """PSNR in dB between the luma of two RGB images in [0, 1]; ``inf`` when identical."""
    ya, yb = _lumas(a, b, border)
    mse = float(np.mean((ya - yb) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def max_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute per-pixel difference, in [0, 1] units."""
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def y_ssim(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """SSIM (Wang et al. 2004) between the luma of two RGB images in [0, 1], as SR benchmarks compute it.

    Luma on a 0..255 scale, 11x11 Gaussian window (sigma 1.5), C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2,
    statistics over 'valid' windows only, mean of the SSIM map (BasicSR's ``calculate_ssim``).
    """
    ya, yb = (y * 255.0 for y in _lumas(a, b, border))
    if min(ya.shape) < SSIM_WINDOW:
        raise ValueError(f"y_ssim needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after the border crop")
    taps = signal.windows.gaussian(SSIM_WINDOW, SSIM_SIGMA)
    taps /= taps.sum()
    half = SSIM_WINDOW // 2

    def filt(x: np.ndarray) -> np.ndarray:  # separable Gaussian, 'valid' part only
        x = ndimage.correlate1d(ndimage.correlate1d(x, taps, axis=0), taps, axis=1)
        return x[half:-half, half:-half]

    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    mu_a, mu_b = filt(ya), filt(yb)
    var_a, var_b = filt(ya * ya) - mu_a**2, filt(yb * yb) - mu_b**2
    cov = filt(ya * yb) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def gradient_similarity(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """Mean gradient-magnitude similarity (GMSD, Xue et al. 2014) of two RGB images' luma; 1.0 = same edges.

    Prewitt 3x3 gradients of luma in [0, 1] (edge-replicated), GMS = (2 m_a m_b + c) / (m_a^2 + m_b^2 + c)
    with c = ``GMS_C``, at full resolution (the paper first halves the image). Lower means blurred, lost or
    spurious edges; GMSD itself is the standard deviation of the GMS map.
    """
    ya, yb = _lumas(a, b, border)

    def magnitude(y: np.ndarray) -> np.ndarray:
        gx = ndimage.correlate(y, PREWITT, mode="nearest")
        gy = ndimage.correlate(y, PREWITT.T, mode="nearest")
        return np.hypot(gx, gy)

    ma, mb = magnitude(ya), magnitude(yb)
    return float(np.mean((2 * ma * mb + GMS_C) / (ma**2 + mb**2 + GMS_C)))
