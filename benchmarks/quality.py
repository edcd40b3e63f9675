"""Quality of every model on real images: Y-PSNR, SSIM and gradient-magnitude similarity (edge fidelity).

The usual SR protocol: luma, a border of ``scale`` pixels cropped. Two image sets (scikit-image photos and
the corpus's validation split, centre crops), each under two degradations:

* ``bicubic``: antialiased bicubic downscaling;
* ``realistic``: the Real-ESRGAN two-stage pipeline (blur, resize, noise, JPEG), one fixed seed per image.

HR crops have sides that are multiples of ``32 * scale`` so every model, the MetaSR graph included (it
describes frames on 32-pixel metadata cells), takes the same low-resolution input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from metasr.data.pairs import validation_pairs
from metasr.data.sample_images import photo
from metasr.images import bicubic_downscale, to_numpy
from metasr.metadata import CELL
from metasr.validate.metrics import gradient_similarity, y_psnr, y_ssim

Run = Callable[[torch.Tensor], torch.Tensor]  # (1, 3, h, w) LR in [0, 1] -> (1, 3, h*s, w*s)

PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket")
DEGRADATIONS = ("bicubic", "realistic")


@dataclass(frozen=True)
class Pair:
    lr: torch.Tensor
    hr: np.ndarray  # H x W x 3 float in [0, 1]


@dataclass(frozen=True)
class Score:
    """Means over one image set: Y-PSNR (dB), SSIM and gradient-magnitude similarity."""

    psnr: float
    ssim: float
    gms: float


def centre_crop(image: np.ndarray, scale: int, max_side: int) -> np.ndarray:
    """The largest centred crop, at most ``max_side``, whose sides are multiples of ``CELL * scale``."""
    unit = CELL * scale
    h, w = (min(side, max_side) // unit * unit for side in image.shape[:2])
    if not h or not w:
        raise ValueError(f"image {image.shape[:2]} is smaller than one {unit}-pixel cell at x{scale}")
    top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    return image[top : top + h, left : left + w]


def photo_set(names: tuple[str, ...] = PHOTOS) -> list[np.ndarray]:
    """scikit-image photos as uint8 RGB."""
    return [(photo(name) * 255.0 + 0.5).astype(np.uint8) for name in names]


def pairs(images: list[np.ndarray], scale: int, degradation: str, max_side: int, seed: int = 0) -> list[Pair]:
    """LR/HR pairs of uint8 ``images`` (centre-cropped) under ``degradation``; deterministic."""
    crops = [centre_crop(img, scale, max_side) for img in images]
    if degradation == "bicubic":
        result = []
        for crop in crops:
            hr = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None].float() / 255.0
            result.append(Pair(bicubic_downscale(hr, scale), to_numpy(hr)))
        return result
    if degradation == "realistic":
        out = []
        for index, crop in enumerate(crops):
            (batch,) = validation_pairs([crop], scale, max(crop.shape[:2]), seed + index)
            out.append(Pair(batch.lr, to_numpy(batch.hr)))
        return out
    raise ValueError(f"unknown degradation '{degradation}'; choose one of {', '.join(DEGRADATIONS)}")


@torch.no_grad()
def score(run: Run, image_pairs: list[Pair], scale: int) -> Score:
    """Mean Y-PSNR, SSIM and GMS of ``run`` over ``image_pairs``."""
    psnrs, ssims, gmss = [], [], []
    for pair in image_pairs:
        sr = to_numpy(run(pair.lr))
        psnrs.append(y_psnr(sr, pair.hr, border=scale))
        ssims.append(y_ssim(sr, pair.hr, border=scale))
        gmss.append(gradient_similarity(sr, pair.hr, border=scale))
    return Score(float(np.mean(psnrs)), float(np.mean(ssims)), float(np.mean(gmss)))
