"""The contract every metadata source fulfils, and the registry that finds sources by name.

A source describes the low-resolution input frame on a grid of *cells* (``CELL`` LR pixels square):
it returns a tensor (N, dims, H // CELL, W // CELL) with values roughly in [0, 1].

Each source has two extractors with the same output meaning:

* ``teacher(image)``: teacher-grade, may be heavy (detectors, classical CV on the host), runs in
  ``torch.no_grad`` on CPU tensors and is never exported;
* ``device()``: a small ``nn.Module`` built only from exportable ops (conv, pooling, ReLU, sigmoid,
  softmax, mul/add) that lives inside the exported graph; it may carry trained weights.

Adding a source is a one-file change: subclass :class:`MetadataSource` in ``metasr/metadata/<name>.py``,
decorate it with :func:`register`, and import the module in ``metasr/metadata/__init__.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import nn

from metasr.errors import MetaSRError

CELL = 32  # orchestrator cell size in LR pixels: the granularity of every per-region decision

_REGISTRY: dict[str, type[MetadataSource]] = {}


class MetadataSource(ABC):
    """One kind of side information about the input frame, described per cell."""

    name: ClassVar[str]
    dims: ClassVar[int]
    needs_previous_frame: ClassVar[bool] = False  # video-only sources (motion) take (frame, previous)
    ships_device: ClassVar[bool] = True  # False for optional sources that only have a teacher-grade extractor

    @abstractmethod
    def teacher(self, image: torch.Tensor) -> torch.Tensor:
        """Teacher-grade metadata of ``image`` (N, 3, H, W) in [0, 1], shape (N, dims, H // CELL, W // CELL)."""

    def device(self) -> nn.Module:
        """Device-grade extractor: ``module(image) -> (N, dims, H // CELL, W // CELL)``, exportable."""
        raise MetaSRError(f"metadata source {self.name!r} has no device-grade extractor; use it for the teacher only")


def register(cls: type[MetadataSource]) -> type[MetadataSource]:
    """Class decorator that makes a source available by its ``name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"metadata source {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def available_sources() -> list[str]:
    """Names of every registered source, sorted."""
    return sorted(_REGISTRY)


def source_class(name: str) -> type[MetadataSource]:
    """The registered class called ``name``; a clear error naming the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(available_sources())
        raise MetaSRError(f"unknown metadata source {name!r}; known sources: {known}") from None


def cell_grid(height: int, width: int) -> tuple[int, int]:
    """Number of cells (rows, cols) for an LR frame; frames smaller than one cell are refused."""
    if height < CELL or width < CELL:
        raise MetaSRError(f"input {height}x{width} is smaller than one {CELL}x{CELL} metadata cell; use a larger input")
    return height // CELL, width // CELL


def whole_cells(image: torch.Tensor) -> torch.Tensor:
    """``image`` cropped to whole cells (a no-op, and no graph op, when the static size is a multiple of CELL)."""
    h, w = image.shape[-2:]
    if h % CELL or w % CELL:
        image = image[:, :, : h - h % CELL, : w - w % CELL]
    return image


def cell_pool(x: torch.Tensor) -> torch.Tensor:
    """Average a per-pixel map over cells (the remainder beyond the last whole cell is ignored)."""
    return nn.functional.avg_pool2d(x, CELL, CELL)
