"""Degradation degree: how blurred, noisy and JPEG-compressed each cell is, in [0, 1].

The estimator (:class:`metasr.metadata.degree_estimator.DegreeEstimator`) is learned without labels by
metric learning (``metasr.metadata.degree_training``). Device-grade: one pass. Teacher-grade: the mean
over the eight flips/rotations of the frame (test-time augmentation), which steadies the estimate.
The exported graph lets a user ``strength`` override it (see :func:`override_degree`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from metasr.errors import MetaSRError
from metasr.metadata.base import CELL, MetadataSource, cell_grid, register
from metasr.metadata.degree_estimator import DEGRADATIONS, DegreeEstimator
from metasr.safe_weights import load_checked, read_state, shipped_weights

TRAIN_COMMAND = "metasr-train degree --corpus data/corpus --out PATH"


def shipped_estimator_path() -> Path:
    return shipped_weights("degree_estimator.safetensors")


def load_estimator(path: str | Path | None = None) -> DegreeEstimator:
    """The trained estimator from ``path`` (default: the shipped weights), in eval mode, as wide as its weights."""
    path = Path(path) if path else shipped_estimator_path()
    if not path.is_file():
        raise MetaSRError(
            f"degree estimator weights {path} are missing; train them with `{TRAIN_COMMAND}` "
            "(TRAINING.md section 1 has the settings of each shipped estimator)"
        )
    state, _ = read_state(path)
    conv1 = state.get("conv1.weight")
    model = DegreeEstimator(conv1.shape[0]) if conv1 is not None else DegreeEstimator()  # no conv1: refused below
    load_checked(model, state, path)
    return model.eval()


def override_degree(degree: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """Replace estimated degrees by a user ``strength`` in [0, 1]; a negative strength keeps the estimate.

    ``a = clamp(strength + 1, 0, 1)`` is 1 for any strength >= 0 and 0 at the default -1, so the blend
    ``a * clamp(strength, 0, 1) + (1 - a) * degree`` needs only clamp/mul/add (exportable everywhere).
    """
    use = torch.clamp(strength + 1.0, 0.0, 1.0)
    return use * torch.clamp(strength, 0.0, 1.0) + (1.0 - use) * degree


@register
class DegradationSource(MetadataSource):
    name = "degradation"
    dims = len(DEGRADATIONS)

    def __init__(self, weights: str | Path | None = None) -> None:
        self.weights = weights
        self._estimator: DegreeEstimator | None = None

    def teacher(self, image: torch.Tensor) -> torch.Tensor:
        if self._estimator is None:
            self._estimator = load_estimator(self.weights)
        model = self._estimator.to(image)
        rows, cols = cell_grid(image.shape[2], image.shape[3])
        image = image[:, :, : rows * CELL, : cols * CELL]  # whole cells only, so rotated grids line up
        views = []
        with torch.no_grad():
            for k in range(4):
                for flip in (False, True):
                    x = torch.rot90(image, k, dims=(2, 3))
                    x = torch.flip(x, dims=(3,)) if flip else x
                    if image.shape[2] != image.shape[3] and k % 2:
                        continue  # a non-square frame rotated by 90 degrees has a different cell grid
                    out = model(x)
                    out = torch.flip(out, dims=(3,)) if flip else out
                    views.append(torch.rot90(out, -k, dims=(2, 3)))
        return torch.stack(views).mean(dim=0)

    def device(self) -> nn.Module:
        return load_estimator(self.weights)
