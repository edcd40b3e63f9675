"""Realistic damage: how strongly each cell shows camera-like two-stage damage, per blur / noise / JPEG, in [0, 1].

A narrower copy of the degradation-degree network (:class:`metasr.metadata.degree_estimator.DegreeEstimator`,
16 channels: 360 MACs per ×2 output pixel), trained by the same label-free ranking plus the ranking on Real-ESRGAN
damage (``metasr-train degree --steps 2000 --realistic 3 --channels 16 --out
toolkit/metasr/weights/damage_estimator.safetensors``):
it tells clean cells from damaged ones far better than the degree estimator, but its blur reading is not
monotone on fine texture, so it is a source of its own. The ``degradation`` source keeps the calibrated,
monotone degree that the ``strength`` input overrides; this one is never overridden. Teacher-grade: the mean
over the eight flips/rotations; device-grade: one pass.
"""

from __future__ import annotations

from pathlib import Path

from metasr.metadata.base import register
from metasr.metadata.degradation import DegradationSource
from metasr.safe_weights import shipped_weights


@register
class DamageSource(DegradationSource):
    name = "damage"

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__(weights or shipped_weights("damage_estimator.safetensors"))
