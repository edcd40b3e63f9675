"""ExecuTorch XNNPACK target: a static int8 ``.pte`` for phone CPUs, one method per recipe input size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.version import __version__ as executorch_version

from metasr.exporter import executorch_common as et
from metasr.exporter.calibration import CALIBRATION_STRENGTHS, calibration_batches, strengths_used
from metasr.exporter.executorch_xnnpack.quantize import capture, quantize_nncf, quantize_pt2e
from metasr.exporter.host import FunctionRunner
from metasr.exporter.stages import Coverage, DeviceCost, LoweredArtifact, PreparedModel, QuantizedModel
from metasr.quiet import quiet

NAME = "executorch-xnnpack"
COST = DeviceCost("cpu", 1, 1, "int8_tops")
APP_RUNTIME = "executorch-xnnpack"
SUFFIXES = (".pte",)
HOST_RUNTIME = "executorch"
WHERE = "XNNPACK delegate"
RUNTIME = f"ExecuTorch {executorch_version} Python runtime, XNNPACK delegate (host CPU)"


@dataclass(frozen=True)
class Options:
    """XNNPACK target settings.

    ``method``: torchao PT2E calibration, or NNCF's PT2E path (the same ranges plus bias correction).
    ``bias_correction``: NNCF only; ``full`` is the more accurate (and slower) algorithm.
    ``calibration_strengths``: every photo is calibrated at each strength (-1: the estimate; [0, 1]: overrides).
    """

    method: Literal["pt2e", "nncf"] = "pt2e"
    bias_correction: Literal["full", "fast", "none"] = "full"
    calibration_strengths: tuple[float, ...] = CALIBRATION_STRENGTHS


def quantize(prepared: PreparedModel, calibration: list[torch.Tensor]) -> QuantizedModel:
    """Static int8 (per-tensor activations, per-channel symmetric weights), calibrated on real photos."""
    options: Options = prepared.recipe.options
    batches = calibration_batches(calibration, options.calibration_strengths, prepared.input_names)
    with quiet():
        graph = capture(prepared.model, prepared.example_inputs(), prepared.dynamic_shapes())
        if options.method == "nncf":
            program = quantize_nncf(graph, batches, options.bias_correction)
            scheme = f"int8 static PT2E via NNCF (histogram ranges, {options.bias_correction} bias correction)"
        else:
            program = quantize_pt2e(graph, batches)
            scheme = "int8 static PT2E (histogram ranges)"
    scheme += ", per-channel symmetric int8 weights, XNNPACKQuantizer"
    return QuantizedModel(
        prepared,
        program,
        scheme,
        calibration_images=len(calibration),
        calibration_strengths=strengths_used(options.calibration_strengths, prepared.input_names),
    )


def quantize_router(prepared: PreparedModel, calibration: list[torch.Tensor]) -> QuantizedModel:
    """A routed artifact's router stays fp32 (XNNPACK runs it in float): it is under 1 % of an expert's MACs,
    and its int8 scores (off by up to 0.18) flip the float router's near-ties, so a photo gets the other expert."""
    with quiet():
        graph = capture(prepared.model, prepared.example_inputs(), prepared.dynamic_shapes())
    return QuantizedModel(prepared, graph, "fp32 (a routed artifact's router: int8 scores flip near-ties)")


def lower(quantized: QuantizedModel, staging: Path) -> LoweredArtifact:
    """Export each input size, delegate to XNNPACK, write one multi-method ``.pte`` and load it."""
    prepared = quantized.prepared
    programs = et.export_methods(quantized.program, prepared)
    edge = et.lower(programs, XnnpackPartitioner)
    coverage = et.coverage(edge, WHERE)
    path = staging / f"{prepared.stem}.pte"
    if coverage.fallback:
        return LoweredArtifact(path, coverage, RUNTIME, et.not_lowered)
    et.write_program(edge, path)
    return _lowered(path, coverage, quantized, et.manifest_methods(programs, prepared))


def lower_functions(quantized: dict[str, QuantizedModel], staging: Path) -> dict[str, LoweredArtifact]:
    """A routed artifact: every function's methods in one ``.pte``, each run from it for parity."""
    path, placement, methods = et.lower_together(quantized, lambda q: q.program, XnnpackPartitioner, WHERE, staging)
    if any(c.fallback for c in placement.values()):
        return {name: LoweredArtifact(path, placement[name], RUNTIME, et.not_lowered) for name in quantized}
    return {name: _lowered(path, placement[name], q, methods) for name, q in quantized.items()}


def _lowered(path: Path, coverage: Coverage, quantized: QuantizedModel, methods: dict) -> LoweredArtifact:
    prepared = quantized.prepared
    return LoweredArtifact(
        path=path,
        coverage=coverage,
        runtime=RUNTIME,
        predict=et.method_runner(path, prepared.function or "forward"),
        manifest_extra={
            "runtime": "executorch",
            "backend": "XnnpackBackend",
            "input_order": list(prepared.input_names),
            "methods": methods,
            "calibration_strengths": list(quantized.calibration_strengths),
        },
    )


def open_function(path: Path, manifest: dict[str, Any], function: str, names: tuple[str, ...]) -> FunctionRunner:
    """One function of the ``.pte``: its methods in ExecuTorch's Python runtime, XNNPACK on this host's CPU."""
    return et.method_runner(path, function)
