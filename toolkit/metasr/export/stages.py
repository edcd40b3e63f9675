"""The plain objects passed between export stages, and the contract every target module fulfils."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from metasr.models import MetaSRStudent
from metasr.recipes import Recipe


@dataclass
class LoadedModel:
    """Output of *load*: float weights and where they came from."""

    model: MetaSRStudent
    source: str


@dataclass
class PreparedModel:
    """Output of *prepare*: the reparameterized float reference and its static facts."""

    model: MetaSRStudent
    source: str
    recipe: Recipe
    parameters: int
    macs_per_output_pixel: float

    @property
    def scale(self) -> int:
        return self.model.config.scale

    def example_inputs(self, size: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(image, modulation) at ``size`` (default: the recipe's first input size)."""
        h, w = size or self.recipe.input_size
        return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)), self.model.neutral_modulation()


@dataclass
class QuantizedModel:
    """Output of *quantize*: the target's model-to-lower plus a description of the scheme."""

    prepared: PreparedModel
    program: Any
    scheme: str
    calibration_images: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Coverage:
    """Operator placement: how many compute nodes run on the target accelerator, and which do not."""

    accelerated: int
    total: int
    fallback: list[str] = field(default_factory=list)
    where: str = ""

    @property
    def fraction(self) -> float:
        return self.accelerated / self.total if self.total else 0.0


@dataclass
class LoweredArtifact:
    """Output of *lower*: the artifact in the staging folder and a way to run it for parity."""

    path: Path
    coverage: Coverage
    runtime: str
    predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    manifest_extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class ParityResult:
    """Output of *validate*: artifact vs float reference on real images."""

    psnr_db: list[float]
    max_abs_error: float
    images: list[str]
    floor_db: float

    @property
    def min_psnr_db(self) -> float:
        return min(self.psnr_db)

    @property
    def passed(self) -> bool:
        return self.min_psnr_db >= self.floor_db


@dataclass
class ExportResult:
    """Output of *write*: where everything landed and the headline numbers."""

    target: str
    artifact: Path
    report: Path
    manifest: Path
    size_bytes: int
    parity: ParityResult
    coverage: Coverage
    seconds: float


class TargetModule(Protocol):
    """What ``metasr.export.<target>`` provides; target-specific code lives only there."""

    NAME: str
    Options: type

    def quantize(self, prepared: PreparedModel, calibration: list[torch.Tensor]) -> QuantizedModel: ...

    def lower(self, quantized: QuantizedModel, staging: Path) -> LoweredArtifact: ...
