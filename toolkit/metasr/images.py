"""Image I/O and colour conversions shared by training, export and validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from metasr.errors import MetaSRError

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma weights of R, G, B (Pillow's RGB -> L, JPEG's Y)


def load_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as float32 RGB in [0, 1], shape (H, W, 3), EXIF orientation applied."""
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            return pil_to_rgb(img)
    except (OSError, ValueError) as exc:
        raise MetaSRError(f"cannot read image {path}: {exc}; pass a readable PNG or JPEG file") from exc


def pil_to_rgb(img: Image.Image) -> np.ndarray:
    """Convert a PIL image of any common mode to float32 RGB in [0, 1]."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float32) / 65535.0
        return np.repeat(arr[..., None], 3, axis=2).clip(0, 1)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float array -> (1, 3, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float()


def to_numpy(batch: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) tensor -> (H, W, 3) float32 array."""
    return batch[0].detach().float().cpu().numpy().transpose(1, 2, 0)


# ITU-R BT.601 RGB in [0, 1] -> Y, Cb, Cr on a 0..255 scale (before the 16, 128, 128 offsets): rows Y, Cb, Cr
BT601_YCBCR = (
    (65.481, 128.553, 24.966),
    (-37.797, -74.203, 112.0),
    (112.0, -93.786, -18.214),
)


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma (the Y of YCbCr used by SR benchmarks), input and output in [0, 1]."""
    r, g, b = BT601_YCBCR[0]
    return (16.0 + r * rgb[..., 0] + g * rgb[..., 1] + b * rgb[..., 2]) / 255.0


def bicubic_downscale(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Anti-aliased bicubic downscale by an integer factor, clamped to [0, 1]."""
    h, w = image.shape[-2:]
    out = torch.nn.functional.interpolate(
        image, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False
    )
    return out.clamp(0.0, 1.0)


def bicubic_upscale(image: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upscale by an integer factor, clamped to [0, 1]."""
    out = torch.nn.functional.interpolate(image, scale_factor=scale, mode="bicubic", align_corners=False)
    return out.clamp(0.0, 1.0)
