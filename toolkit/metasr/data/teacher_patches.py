"""Training patches with a pretrained teacher's output as a second target: (LR, HR, teacher(LR)) crops.

The teacher runs once per photo, on its whole bicubic LR (in overlapping column bands, to bound memory), when
the sampler is built; crops are then cut at the same place from all three, with the same flips and rotations,
from one seeded generator, so a run is reproducible and its crop stream resumes like :class:`PatchSampler`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from metasr.errors import MetaSRError
from metasr.images import bicubic_downscale

BAND = 256  # LR columns the teacher sees at once
MARGIN = 16  # LR columns of context on each side of a band, cut from its output


def teacher_output(teacher: Callable[[torch.Tensor], torch.Tensor], lr: torch.Tensor, scale: int) -> torch.Tensor:
    """``teacher(lr)`` clamped to [0, 1], computed in column bands with ``MARGIN`` columns of context each side."""
    width = lr.shape[-1]
    parts = []
    with torch.no_grad():
        for left in range(0, width, BAND):
            start, stop = max(0, left - MARGIN), min(width, left + BAND + MARGIN)
            out = teacher(lr[..., start:stop])
            skip = (left - start) * scale
            parts.append(out[..., skip : skip + (min(left + BAND, width) - left) * scale])
    return torch.cat(parts, dim=-1).clamp(0.0, 1.0)


@dataclass
class TeacherPatchSampler:
    """Random aligned (LR, HR, teacher) crops with flips/rotations, from photos held in memory (uint8 RGB)."""

    images: list[np.ndarray]
    teacher: Callable[[torch.Tensor], torch.Tensor]
    patch: int
    scale: int
    seed: int = 0
    lrs: list[torch.Tensor] = field(init=False, repr=False)
    hrs: list[torch.Tensor] = field(init=False, repr=False)
    targets: list[torch.Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.lrs, self.hrs, self.targets = [], [], []
        s = self.scale
        for image in self.images:
            h, w = image.shape[0] // s * s, image.shape[1] // s * s
            hr = torch.from_numpy(np.ascontiguousarray(image[:h, :w].transpose(2, 0, 1)))
            lr = bicubic_downscale(hr[None].float() / 255.0, s)
            target = teacher_output(self.teacher, lr, s)[0]
            if not torch.isfinite(target).all():
                raise MetaSRError("the teacher gave non-finite output on a training photo; use intact weights")
            self.lrs.append(lr[0])
            self.hrs.append(hr)
            self.targets.append(target)

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(lr, hr, teacher) tensors of shape (B, 3, patch, patch) and twice (B, 3, patch*s, patch*s)."""
        p, s = self.patch, self.scale
        crops: tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]] = ([], [], [])
        for _ in range(batch):
            i = int(self.rng.integers(len(self.lrs)))
            lr = self.lrs[i]
            top = int(self.rng.integers(lr.shape[1] - p + 1))
            left = int(self.rng.integers(lr.shape[2] - p + 1))
            turns, flip = int(self.rng.integers(4)), bool(self.rng.integers(2))
            for out, image, k in zip(crops, (lr, self.hrs[i], self.targets[i]), (1, s, s), strict=True):
                crop = torch.rot90(image[:, top * k : (top + p) * k, left * k : (left + p) * k], turns, (1, 2))
                out.append(crop.flip(2) if flip else crop)
        lr, hr, target = (torch.stack(c) for c in crops)
        return lr, hr.float() / 255.0, target
