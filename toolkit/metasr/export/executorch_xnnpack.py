"""ExecuTorch XNNPACK target: a static int8 ``.pte`` for phone CPUs, one method per recipe input size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.version import __version__ as executorch_version

from metasr.errors import MetaSRError
from metasr.export import executorch_common as et
from metasr.export.stages import LoweredArtifact, PreparedModel, QuantizedModel
from metasr.quant.pt2e_xnnpack import calibration_batches, capture, quantize_nncf, quantize_pt2e

NAME = "executorch-xnnpack"


@dataclass(frozen=True)
class Options:
    """XNNPACK target settings.

    ``method``: torchao PT2E calibration, or NNCF's PT2E path (the same ranges plus bias correction).
    ``bias_correction``: NNCF only; ``full`` is the more accurate (and slower) algorithm.
    ``modulation_range``: calibration also covers FiLM gains in 1 +- r and biases in +-r (0: neutral only).
    """

    method: Literal["pt2e", "nncf"] = "pt2e"
    bias_correction: Literal["full", "fast", "none"] = "full"
    modulation_range: float = 0.25


def quantize(prepared: PreparedModel, calibration: list[torch.Tensor]) -> QuantizedModel:
    """Static int8 (per-tensor activations, per-channel symmetric weights), calibrated on real photos."""
    options: Options = prepared.recipe.options
    if options.modulation_range < 0:
        raise MetaSRError(f"options.modulation_range is {options.modulation_range}; use 0 or a positive spread")
    batches = calibration_batches(calibration, prepared.model.neutral_modulation(), options.modulation_range)
    with et.quiet():
        graph = capture(prepared.model, prepared.example_inputs())
        if options.method == "nncf":
            program = quantize_nncf(graph, batches, options.bias_correction)
            scheme = f"int8 static PT2E via NNCF (histogram ranges, {options.bias_correction} bias correction)"
        else:
            program = quantize_pt2e(graph, batches)
            scheme = "int8 static PT2E (histogram ranges)"
    r = options.modulation_range
    note = (
        f"calibrated on {len(calibration)} photos x {len(batches) // len(calibration)} modulations "
        f"(neutral, and gains 1+-{r:g} / biases +-{r:g}); modulation outside that range is clipped by int8"
    )
    scheme += ", per-channel symmetric int8 weights, XNNPACKQuantizer"
    return QuantizedModel(prepared, program, scheme, calibration_images=len(calibration), notes=[note])


def lower(quantized: QuantizedModel, staging: Path) -> LoweredArtifact:
    """Export each input size, delegate to XNNPACK, write one multi-method ``.pte`` and load it."""
    prepared = quantized.prepared
    r = prepared.recipe.options.modulation_range
    edge = et.lower(et.export_methods(quantized.program, prepared), XnnpackPartitioner)
    coverage = et.coverage(edge, "XNNPACK delegate")
    path = staging / f"metasr_x{prepared.scale}.pte"
    runtime = f"ExecuTorch {executorch_version} Python runtime, XNNPACK delegate (host CPU)"
    if coverage.fallback:
        return LoweredArtifact(path, coverage, runtime, et.not_lowered)
    et.write_program(edge, path)
    sizes = et.method_sizes(prepared)
    return LoweredArtifact(
        path=path,
        coverage=coverage,
        runtime=runtime,
        predict=et.runtime_predict(path, sizes),
        manifest_extra={
            "runtime": "executorch",
            "backend": "XnnpackBackend",
            "input_order": ["image", "modulation"],
            "methods": et.manifest_methods(prepared),
            "modulation_calibrated_range": {"gain": [1 - r, 1 + r], "bias": [-r, r]},
        },
    )
