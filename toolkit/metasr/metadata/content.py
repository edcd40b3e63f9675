"""Content type per cell: one-hot (teacher) or probabilities (device) over text, face, cartoon, low light, natural.

Teacher-grade: :func:`metasr.metadata.content_labels.label_cells` (OCR and face detectors, luminance and
colour-flatness statistics). Device-grade: :class:`metasr.metadata.content_classifier.ContentClassifier`,
a tiny CNN distilled from those labels (``metasr.metadata.content_training``), with shipped weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from metasr.errors import MetaSRError
from metasr.metadata.base import MetadataSource, register
from metasr.metadata.content_classifier import ContentClassifier
from metasr.metadata.content_labels import CLASSES, label_cells
from metasr.safe_weights import load_weights, shipped_weights


def shipped_classifier_path() -> Path:
    """Where the package keeps the trained classifier weights."""
    return shipped_weights("content_classifier.safetensors")


def load_content_classifier(path: str | Path | None = None) -> ContentClassifier:
    """The trained classifier from ``path`` (default: the shipped weights), in eval mode."""
    path = Path(path) if path else shipped_classifier_path()
    if not path.is_file():
        from metasr.metadata.content_training import training_command

        command = training_command(path, Path("/tmp/metasr-content"), Path("data/corpus"))
        raise MetaSRError(f"content classifier weights {path} are missing; train them with {command}")
    model = ContentClassifier()
    load_weights(model, path)
    return model.eval()


def one_hot_labels(image: torch.Tensor) -> torch.Tensor:
    """Teacher labels of a batch (N, 3, H, W) in [0, 1] as one-hot (N, 5, H // 32, W // 32), like ``image``."""
    frames = (image.detach().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    labels = torch.from_numpy(np.stack([label_cells(np.ascontiguousarray(f)) for f in frames]))
    return nn.functional.one_hot(labels, len(CLASSES)).permute(0, 3, 1, 2).to(image)


@register
class ContentSource(MetadataSource):
    name = "content"
    dims = len(CLASSES)

    def __init__(self, weights: str | Path | None = None) -> None:
        self.weights = weights

    def teacher(self, image: torch.Tensor) -> torch.Tensor:
        return one_hot_labels(image)

    def device(self) -> nn.Module:
        return load_content_classifier(self.weights)
