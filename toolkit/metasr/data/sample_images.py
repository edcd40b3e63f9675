"""Real photographs from scikit-image (they ship with the package, so they work offline).

Two disjoint sets: calibration images for quantizers, validation images for parity and quality.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

CALIBRATION_NAMES = ("chelsea", "rocket", "hubble_deep_field", "retina", "brick", "grass", "page", "logo")
VALIDATION_NAMES = ("astronaut", "coffee", "camera", "text")


def photo(name: str) -> np.ndarray:
    """A scikit-image sample as float32 RGB in [0, 1] (grey expanded to 3 channels, alpha dropped)."""
    from skimage import data

    arr = np.asarray(getattr(data, name)())
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    return arr.astype(np.float32).clip(0, 1)


def fit_crop(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (Lanczos, keeping aspect) to cover ``height`` x ``width``, then centre-crop to it."""
    h, w = rgb.shape[:2]
    ratio = max(height / h, width / w)
    size = (max(width, round(w * ratio)), max(height, round(h * ratio)))
    img = Image.fromarray((rgb * 255.0 + 0.5).astype(np.uint8)).resize(size, Image.LANCZOS)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    top, left = (arr.shape[0] - height) // 2, (arr.shape[1] - width) // 2
    return arr[top : top + height, left : left + width]


def image_batch(names: tuple[str, ...], height: int, width: int) -> list[torch.Tensor]:
    """Real images as (1, 3, height, width) tensors in [0, 1], one per name."""
    tensors = []
    for name in names:
        crop = fit_crop(photo(name), height, width)
        tensors.append(torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None])
    return tensors


def calibration_images(height: int, width: int) -> list[torch.Tensor]:
    """Low-resolution inputs for quantizer calibration."""
    return image_batch(CALIBRATION_NAMES, height, width)


def validation_images(height: int, width: int) -> list[torch.Tensor]:
    """Low-resolution inputs for parity checks, disjoint from the calibration set."""
    return image_batch(VALIDATION_NAMES, height, width)
