"""Quality of a float model on real photos: Y-PSNR against the HR original, next to bicubic."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metasr.data.sample_images import photo
from metasr.images import bicubic_downscale, bicubic_upscale, to_numpy
from metasr.models import MetaSRStudent
from metasr.validate.metrics import y_psnr

QUALITY_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "text", "page")


@dataclass(frozen=True)
class PhotoScore:
    name: str
    model_db: float
    bicubic_db: float


def score_photos(model: MetaSRStudent, names: tuple[str, ...] = QUALITY_PHOTOS) -> list[PhotoScore]:
    """Downscale each photo (bicubic, antialiased), upscale with the model and with bicubic, compare.

    The usual SR protocol: Y channel, a border of ``scale`` pixels cropped.
    """
    scale = model.config.scale
    scores = []
    model = model.eval()
    for name in names:
        rgb = photo(name)
        h, w = (rgb.shape[0] // scale) * scale, (rgb.shape[1] // scale) * scale
        hr = torch.from_numpy(np.ascontiguousarray(rgb[:h, :w].transpose(2, 0, 1)))[None]
        lr = bicubic_downscale(hr, scale)
        with torch.no_grad():
            ours = to_numpy(model(lr))
        reference = to_numpy(hr)
        bicubic = to_numpy(bicubic_upscale(lr, scale))
        scores.append(PhotoScore(name, y_psnr(ours, reference, scale), y_psnr(bicubic, reference, scale)))
    return scores
