"""Numeric parity of a lowered artifact against its float reference on real photos."""

from __future__ import annotations

import torch

from metasr.data.sample_images import VALIDATION_NAMES, validation_images
from metasr.exporter.stages import LoweredArtifact, ParityResult, PreparedModel, with_defaults
from metasr.images import to_numpy
from metasr.validate.metrics import max_abs_error, y_psnr


def parity(lowered: LoweredArtifact, prepared: PreparedModel) -> ParityResult:
    """Y-PSNR and max abs error of the artifact vs the float model on the validation photos."""
    model = prepared.model
    psnrs, max_err = [], 0.0
    for image in validation_images(*prepared.input_size):
        inputs = with_defaults(model, image)
        with torch.no_grad():
            reference = to_numpy(model(*inputs))
        output = to_numpy(lowered.predict(*inputs))
        psnrs.append(y_psnr(output, reference))
        max_err = max(max_err, max_abs_error(output, reference))
    return ParityResult(psnrs, max_err, list(VALIDATION_NAMES), prepared.recipe.parity_floor_db)
