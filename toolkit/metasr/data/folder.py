"""Image-folder dataset of HR/LR patch pairs with a fixed validation split of whole images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from metasr.errors import MetaSRError
from metasr.images import bicubic_downscale

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def list_images(root: str | Path) -> list[Path]:
    """Every image file under ``root``, sorted, so splits are reproducible."""
    root = Path(root)
    if not root.is_dir():
        raise MetaSRError(f"image folder {root} does not exist; pass a folder of PNG/JPEG photos")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise MetaSRError(f"no images found under {root}; pass a folder of PNG/JPEG photos")
    return files


def split_images(files: list[Path], val_every: int = 8) -> tuple[list[Path], list[Path]]:
    """Deterministic split of whole images: every ``val_every``-th file goes to validation."""
    val = files[::val_every]
    train = [f for f in files if f not in set(val)]
    return train, val


def split_folders(folders: tuple[Path, ...]) -> tuple[list[Path], list[Path]]:
    """:func:`split_images` of each folder on its own, concatenated: adding a folder never moves another folder's
    validation images."""
    train: list[Path] = []
    val: list[Path] = []
    for folder in folders:
        folder_train, folder_val = split_images(list_images(folder))
        train += folder_train
        val += folder_val
    return train, val


def load_for_training(path: Path, max_side: int) -> np.ndarray:
    """Load an RGB photo as uint8, downscaled (Lanczos) so its longer side is at most ``max_side``."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        ratio = max_side / max(img.size)
        if ratio < 1:
            img = img.resize((round(img.width * ratio), round(img.height * ratio)), Image.LANCZOS)
        return np.asarray(img, dtype=np.uint8)


def load_at_sides(files: list[Path], sides: tuple[int, ...], patch: int = 0) -> list[np.ndarray]:
    """Every photo at each longer side in ``sides``: a smaller side packs more detail into a fixed-size patch,
    so one corpus of large wallpapers covers both smooth and detail-dense frames. Refuses, naming it, a photo
    whose shorter side is then under ``patch`` (HR px)."""
    images = []
    for path in files:
        for side in sides:
            image = load_for_training(path, side)
            h, w = image.shape[:2]
            if min(h, w) < patch:
                raise MetaSRError(
                    f"{path.name} at side {side} is {w}x{h} px, under the {patch}-px HR patch; "
                    "give a larger --side or a smaller --patch, or move the photo out"
                )
            images.append(image)
    return images


@dataclass
class PatchSampler:
    """Random HR crops with flips/rotations, bicubic-downscaled to LR, from images held in memory."""

    images: list[np.ndarray]
    patch: int
    scale: int
    seed: int = 0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (lr, hr) tensors of shape (B, 3, patch, patch) and (B, 3, patch*s, patch*s)."""
        size = self.patch * self.scale
        crops = []
        for _ in range(batch):
            img = self.images[self.rng.integers(len(self.images))]
            top = self.rng.integers(img.shape[0] - size + 1)
            left = self.rng.integers(img.shape[1] - size + 1)
            crop = img[top : top + size, left : left + size]
            crop = np.rot90(crop, k=int(self.rng.integers(4)))
            if self.rng.integers(2):
                crop = crop[:, ::-1]
            crops.append(np.ascontiguousarray(crop.transpose(2, 0, 1)))
        hr = torch.from_numpy(np.stack(crops)).float() / 255.0
        return bicubic_downscale(hr, self.scale), hr
