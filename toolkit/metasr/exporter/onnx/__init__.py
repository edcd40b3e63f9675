"""ONNX target: fp32 (or fp16) model for ONNX Runtime, checked with the ONNX checker."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import onnx
import onnxruntime as ort
import torch

from metasr.exporter.onnx.runtime import open_function as open_function  # the host runtime
from metasr.exporter.onnx.runtime import open_session, session_runner
from metasr.exporter.onnx_graph import check_opset, export_onnx, onnx_ops
from metasr.exporter.stages import (
    MAX_SIDE,
    MIN_CELLS,
    Coverage,
    DeviceCost,
    LoweredArtifact,
    PreparedModel,
    QuantizedModel,
)
from metasr.metadata import CELL

NAME = "onnx"
COST = DeviceCost("cpu", 4, 4, "fp32_tops")
APP_RUNTIME = "onnxruntime-cpu"
SUFFIXES = (".onnx",)
HOST_RUNTIME = "onnxruntime"


@dataclass(frozen=True)
class Options:
    """ONNX target settings."""

    precision: Literal["fp32", "fp16"] = "fp32"
    dynamic_size: bool = True
    opset: int = 20

    def __post_init__(self) -> None:
        check_opset(self.opset)


def quantize(prepared: PreparedModel, calibration: list[torch.Tensor]) -> QuantizedModel:
    """ONNX CPU keeps float weights: fp32, or fp16 weights and activations when asked."""
    return QuantizedModel(prepared, prepared.model, scheme=prepared.recipe.options.precision)


def lower(quantized: QuantizedModel, staging: Path) -> LoweredArtifact:
    """Export through torch.export, optionally convert to fp16, check, and open in ONNX Runtime CPU."""
    prepared = quantized.prepared
    options: Options = prepared.recipe.options
    model = export_onnx(prepared, options.opset, dynamic=options.dynamic_size, fp16=options.precision == "fp16")
    onnx.checker.check_model(model, full_check=True)
    path = staging / f"{prepared.stem}.onnx"
    onnx.save(model, path)
    session = open_session(path)
    ops = onnx_ops(model)
    return LoweredArtifact(
        path=path,
        coverage=Coverage(accelerated=len(ops), total=len(ops), where="ONNX Runtime CPU"),
        runtime=f"ONNX Runtime {ort.__version__} CPUExecutionProvider",
        predict=session_runner(session, prepared.input_names),
        manifest_extra=_manifest_extra(options),
    )


def _manifest_extra(options: Options) -> dict[str, Any]:
    """ORT CPU; with a dynamic size, height and width are free multiples of the metadata cell."""
    extra: dict[str, Any] = {"runtime": "onnxruntime", "execution_provider": "CPUExecutionProvider"}
    if options.dynamic_size:
        extra["dynamic_size"] = {"multiple_of": CELL, "min": MIN_CELLS * CELL, "max": MAX_SIDE}
    return extra
