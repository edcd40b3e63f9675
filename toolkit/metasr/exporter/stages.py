"""The plain objects passed between export stages, and the contract every target module fulfils."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from metasr.exporter.user_model import UserModel
from metasr.metadata import CELL
from metasr.models import MetaSRStudent
from metasr.models.conv_router import ConvRouter
from metasr.models.metasr import MetaSR
from metasr.models.routed import TileRouter
from metasr.recipes import MAX_SIDE, MIN_CELLS, Recipe

# What an export lowers: MetaSR, the bare student, a user's own net, or a routed artifact's router function
SRGraph = MetaSR | MetaSRStudent | UserModel | TileRouter | ConvRouter
Inputs = tuple[torch.Tensor, ...]  # one tensor per graph input, in ``input_names`` order


def input_names(model: SRGraph) -> tuple[str, ...]:
    """The graph's inputs: ``(image, strength)`` for MetaSR and a router, ``(image,)`` for a bare student."""
    return ("image", "strength") if isinstance(model, MetaSR | TileRouter | ConvRouter) else ("image",)


def with_defaults(model: SRGraph, image: torch.Tensor) -> Inputs:
    """``image`` plus the graph's other inputs at their defaults (strength -1: the estimated degree)."""
    if isinstance(model, MetaSR | TileRouter | ConvRouter):
        return (image, model.default_strength().to(image.device))
    return (image,)


@dataclass
class LoadedModel:
    """Output of *load*: float weights and where they came from."""

    model: SRGraph
    source: str


@dataclass(frozen=True)
class Macs:
    """Multiply-accumulates per output pixel: the whole graph, and the student alone."""

    total: float
    student: float

    @property
    def overhead(self) -> float:
        """What the metadata extractors and the orchestrator add on top of the student."""
        return self.total - self.student


@dataclass
class PreparedModel:
    """Output of *prepare*: the reparameterized float reference and its static facts."""

    model: SRGraph
    source: str
    recipe: Recipe
    input_sizes: tuple[tuple[int, int], ...]  # what its graph takes: the recipe's frames, or a router's thumbnails
    parameters: int
    macs_per_output_pixel: Macs
    function: str | None = None  # a routed artifact's function ("router", "expert_0", ...); None: the only one
    unit: int = CELL  # its image sides are multiples of this (a router's thumbnail: the cell / the thumbnail)

    @property
    def scale(self) -> int:
        return self.model.scale

    @property
    def input_size(self) -> tuple[int, int]:
        """The default (first) input size, height x width."""
        return self.input_sizes[0]

    @property
    def stem(self) -> str:
        """The artifact's file name without suffix: ``metasr_x2``, or ``metasr_x2_router`` for a function."""
        return f"metasr_x{self.scale}" + (f"_{self.function}" if self.function else "")

    @property
    def input_names(self) -> tuple[str, ...]:
        return input_names(self.model)

    def example_inputs(self, size: tuple[int, int] | None = None) -> Inputs:
        """The graph's inputs at ``size`` (default: the recipe's first input size), strength at its default."""
        h, w = size or self.input_size
        return with_defaults(self.model, torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)))

    def dynamic_shapes(self) -> tuple[dict[int, Any] | None, ...]:
        """torch.export shapes with free image height and width: multiples of the metadata cell, at least two
        cells (the orchestrator's content grid must line up with the metadata grid; the bare student keeps the
        same rule, so an app tiles every artifact alike)."""
        height = self.unit * torch.export.Dim("cells_high", min=MIN_CELLS, max=MAX_SIDE // CELL)
        width = self.unit * torch.export.Dim("cells_wide", min=MIN_CELLS, max=MAX_SIDE // CELL)
        return ({2: height, 3: width}, *(None for _ in self.input_names[1:]))  # positional: wrappers take *inputs


@dataclass
class QuantizedModel:
    """Output of *quantize*: the target's model-to-lower plus a description of the scheme."""

    prepared: PreparedModel
    program: Any
    scheme: str
    calibration_images: int = 0
    calibration_strengths: tuple[float, ...] = ()  # each calibration photo ran at every one of these
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
    predict: Callable[..., torch.Tensor]  # (*inputs in input_names order) -> output
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


@dataclass(frozen=True)
class DeviceCost:
    """A target's row in the roofline cost model: the compute unit it runs on, bytes per activation and per
    weight element, and the device table's throughput key for its arithmetic."""

    unit: str
    activation_bytes: int
    weight_bytes: int
    throughput: str


class TargetModule(Protocol):
    """What ``metasr.exporter.<target>`` provides; target-specific code lives only there."""

    NAME: str
    Options: type
    COST: DeviceCost  # how metasr-profile --device estimate:NAME prices it
    APP_RUNTIME: str  # the "runtime" the demo apps write in their benchmark results for this target
    SUFFIXES: tuple[str, ...]  # what its artifact files end in
    HOST_RUNTIME: str | None  # the runtime that runs its artifacts on this host (None: none does, and NO_HOST
    # says why and where they run instead)

    def quantize(self, prepared: PreparedModel, calibration: list[torch.Tensor]) -> QuantizedModel: ...

    def lower(self, quantized: QuantizedModel, staging: Path) -> LoweredArtifact: ...

    def open_function(
        self, path: Path, manifest: dict[str, Any], function: str, names: tuple[str, ...]
    ) -> Callable[..., torch.Tensor]:
        """One function of an exported artifact in the host runtime, fed ``names`` in order (targets with a
        ``HOST_RUNTIME``)."""
        ...

    # Optional, for routed checkpoints: ``lower_functions(quantized: dict[str, QuantizedModel], staging)`` lowers
    # the router and experts into one file (else each function is lowered to its own file).
    # Optional, where the host runtime only emulates the accelerator: ``host_placement(path)`` gives the ops per
    # compute unit and notes, and a host profile reports that instead of timings.
