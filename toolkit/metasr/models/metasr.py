"""MetaSR: the deployed graph — device-grade metadata, the orchestrator, and the modulated student.

    image ─┬─ extractors (edges, degradation degree, content, luminance) ─┐
           │                               strength ─ override degree ─┤
           ├──────────────────────────────────────────── orchestrator ─┴─ per-cell FiLM ─ bilinear ─┐
           └───────────────────────────────────────────────────────────────────────────── student ─┴─ SR image

The app passes only pixels and ``strength``: a value in [0, 1] replaces the estimated degradation degree
(0 = treat the frame as clean, 1 = restore as hard as possible); the default ``-1`` keeps the estimate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from metasr.metadata.base import whole_cells
from metasr.metadata.degradation import override_degree
from metasr.models.orchestrator import Decisions, Orchestrator
from metasr.models.student import MetaSRStudent

DEFAULT_STRENGTH = -1.0
DEGREE_SOURCE = "degradation"


class MetaSR(nn.Module):
    """Device metadata + orchestrator + student: ``(image, strength) -> upscaled image``."""

    def __init__(self, student: MetaSRStudent, extractors: dict[str, nn.Module], orchestrator: Orchestrator) -> None:
        super().__init__()
        if list(extractors) != orchestrator.sources:
            raise ValueError(
                f"extractors {list(extractors)} must match the orchestrator's sources {orchestrator.sources}"
            )
        if orchestrator.stage_channels != [student.config.channels] * student.num_stages:
            raise ValueError("the orchestrator's stages must match the student's blocks")
        self.student = student
        self.extractors = nn.ModuleDict(extractors)
        self.orchestrator = orchestrator

    @property
    def config(self):
        return self.student.config

    @property
    def scale(self) -> int:
        return self.student.config.scale

    def default_strength(self, batch: int = 1) -> torch.Tensor:
        """The ``strength`` input that keeps the estimated degree, shape (N, 1, 1, 1)."""
        return torch.full((batch, 1, 1, 1), DEFAULT_STRENGTH)

    def forward(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        """Upscale ``image`` (N, 3, H, W) in [0, 1]; ``strength`` (N, 1, 1, 1), default -1 (estimate)."""
        return self.run(image, strength)[0]

    def metadata(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Device-grade metadata of ``image``, one (N, dims, h, w) tensor per source in orchestrator order."""
        cells = whole_cells(image)
        return [extractor(cells) for extractor in self.extractors.values()]

    def run(
        self,
        image: torch.Tensor,
        strength: torch.Tensor | None = None,
        metadata: list[torch.Tensor] | None = None,
        present: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Decisions]:
        """Output and decisions; ``metadata``/``present`` replace the device extractors (training, ablations)."""
        decisions = self.decide(image, strength, metadata, present)
        modulation = F.interpolate(
            decisions.stacked_modulation(), size=image.shape[-2:], mode="bilinear", align_corners=False
        )
        return self.student(image, modulation), decisions

    def decide(
        self,
        image: torch.Tensor,
        strength: torch.Tensor | None = None,
        metadata: list[torch.Tensor] | None = None,
        present: torch.Tensor | None = None,
    ) -> Decisions:
        """The orchestrator's per-cell decisions for ``image`` (metadata, strength override), without the student."""
        metadata = list(self.metadata(image) if metadata is None else metadata)
        if strength is not None and DEGREE_SOURCE in self.orchestrator.sources:
            i = self.orchestrator.sources.index(DEGREE_SOURCE)
            metadata[i] = override_degree(metadata[i], strength)
        return self.orchestrator(image, metadata, present)

    def reparameterize(self) -> MetaSR:
        """Fold the student's training-time branches (see :meth:`MetaSRStudent.reparameterize`); returns ``self``."""
        self.student.reparameterize()
        return self
