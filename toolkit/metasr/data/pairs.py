"""Degraded LR/HR training pairs: random HR crops put through the real-world degradation pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from metasr.data.degradations import REAL_ESRGAN_X4PLUS, DegradationConfig, DegradedBatch, degrade
from metasr.data.folder import PatchSampler
from metasr.errors import MetaSRError


@dataclass
class DegradedPatchSampler:
    """Random HR crops (``patch * scale`` square, flips/rot90) of in-memory uint8 images, degraded to LR.

    Crops come from ``PatchSampler`` (numpy generator seeded by ``seed``); degradations draw from a torch
    generator seeded by ``seed``. ``state_dict``/``load_state_dict`` carry both, so training resumes exactly.
    """

    images: list[np.ndarray]
    patch: int
    scale: int
    config: DegradationConfig = REAL_ESRGAN_X4PLUS
    seed: int = 0

    def __post_init__(self) -> None:
        size = self.patch * self.scale
        small = [i for i, img in enumerate(self.images) if min(img.shape[:2]) < size]
        if not self.images or small:
            raise MetaSRError(
                f"{len(small)} of {len(self.images)} images are smaller than the {size}px HR crop; "
                "pass larger images or a smaller patch"
            )
        self.crops = PatchSampler(self.images, self.patch, self.scale, seed=self.seed)
        self.generator = torch.Generator().manual_seed(self.seed)

    def sample(self, batch: int) -> DegradedBatch:
        """A batch of degraded pairs: LR (B, 3, patch, patch), HR (B, 3, patch*scale, patch*scale), degrees (B, 3)."""
        _, hr = self.crops.sample(batch)
        return degrade(hr, self.scale, self.config, self.generator)

    def state_dict(self) -> dict[str, Any]:
        """Both generator states (numpy crops, torch degradations)."""
        return {"crops": self.crops.rng.bit_generator.state, "degradations": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the generator states saved by ``state_dict``."""
        self.crops.rng.bit_generator.state = state["crops"]
        self.generator.set_state(state["degradations"])


def centre_crop(image: np.ndarray, crop: int, scale: int) -> torch.Tensor:
    """Centre crop of at most ``crop`` x ``crop`` with sides a multiple of ``scale``, as (1, 3, h, w) in [0, 1]."""
    h, w = (min(crop, side) // scale * scale for side in image.shape[:2])
    top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    region = image[top : top + h, left : left + w].transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(region))[None].float() / 255.0


def validation_pairs(
    images: list[np.ndarray], scale: int, crop: int, seed: int, config: DegradationConfig = REAL_ESRGAN_X4PLUS
) -> list[DegradedBatch]:
    """A fixed degraded validation set: one pair per image (centre crop, generator seeded ``seed + index``).

    ``crop`` is the HR side in pixels; smaller images use their largest centred crop with sides divisible by
    ``scale``. The same arguments always give identical pairs.
    """
    if crop < scale or any(min(img.shape[:2]) < scale for img in images):
        raise MetaSRError(f"validation crop {crop} or an image is smaller than scale {scale}; pass a crop >= scale")
    return [
        degrade(centre_crop(img, crop, scale), scale, config, torch.Generator().manual_seed(seed + index))
        for index, img in enumerate(images)
    ]
