"""ExecuTorch Vulkan target: an fp16 ``.pte`` for phone GPUs, one method per recipe input size.

ExecuTorch's pip runtime ships without the Vulkan backend, so parity is an fp16 simulation in PyTorch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from executorch.backends.vulkan.partitioner.vulkan_partitioner import VulkanPartitioner
from executorch.runtime import Runtime
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map_only

from metasr.errors import MetaSRError
from metasr.exporter import executorch_common as et
from metasr.exporter.host import FunctionRunner
from metasr.exporter.stages import Coverage, DeviceCost, LoweredArtifact, PreparedModel, QuantizedModel, SRGraph

NAME = "executorch-vulkan"
WHERE = "Vulkan delegate"
COST = DeviceCost("gpu", 2, 2, "fp16_tops")
APP_RUNTIME = "executorch-vulkan"
SUFFIXES = (".pte",)
HOST_RUNTIME = "executorch"


@dataclass(frozen=True)
class Options:
    """Vulkan target settings: ``fp16`` stores weights and runs every op in half precision on the GPU."""

    precision: Literal["fp16", "fp32"] = "fp16"


def quantize(prepared: PreparedModel, calibration: list[torch.Tensor]) -> QuantizedModel:
    """No calibration: the Vulkan delegate casts weights and activations itself (``force_fp16``)."""
    precision = prepared.recipe.options.precision
    return QuantizedModel(prepared, prepared.model, scheme=f"{precision} weights and activations, float32 I/O")


def lower(quantized: QuantizedModel, staging: Path) -> LoweredArtifact:
    """Export each input size, delegate to Vulkan, write one multi-method ``.pte``; predict by simulation."""
    prepared = quantized.prepared
    programs = et.export_methods(prepared.model, prepared)
    edge = et.lower(programs, _partitioner(prepared))
    coverage = et.coverage(edge, WHERE)
    path = staging / f"{prepared.stem}.pte"
    if coverage.fallback:
        return LoweredArtifact(path, coverage, _runtime(prepared), et.not_lowered)
    et.write_program(edge, path)
    return _lowered(path, coverage, prepared, et.manifest_methods(programs, prepared))


def lower_functions(quantized: dict[str, QuantizedModel], staging: Path) -> dict[str, LoweredArtifact]:
    """A routed artifact: every function's methods in one ``.pte``; each predicts by simulation."""
    first = next(iter(quantized.values())).prepared
    path, placement, methods = et.lower_together(quantized, _float_model, _partitioner(first), WHERE, staging)
    if any(c.fallback for c in placement.values()):
        return {name: LoweredArtifact(path, placement[name], _runtime(first), et.not_lowered) for name in quantized}
    return {name: _lowered(path, placement[name], q.prepared, methods) for name, q in quantized.items()}


def _float_model(quantized: QuantizedModel) -> torch.nn.Module:
    return quantized.prepared.model


def _partitioner(prepared: PreparedModel) -> Callable[[], VulkanPartitioner]:
    options = {"force_fp16": prepared.recipe.options.precision == "fp16"}
    return lambda: VulkanPartitioner(options)


def _runtime(prepared: PreparedModel) -> str:
    precision = prepared.recipe.options.precision
    return f"simulation: PyTorch CPU, {precision} rounding after every op (pip ExecuTorch has no Vulkan backend)"


def _lowered(path: Path, coverage: Coverage, prepared: PreparedModel, methods: dict) -> LoweredArtifact:
    precision = prepared.recipe.options.precision
    dtype = torch.float16 if precision == "fp16" else torch.float32
    names = Runtime.get().load_program(path.read_bytes()).method_names
    return LoweredArtifact(
        path=path,
        coverage=coverage,
        runtime=_runtime(prepared),
        predict=_simulate(prepared.model, dtype),
        manifest_extra={
            "runtime": "executorch",
            "backend": "VulkanBackend",
            "input_order": list(prepared.input_names),
            "methods": methods,
        },
        notes=[
            f"parity is simulated: the .pte ({', '.join(sorted(names))}) loads in ExecuTorch's Python runtime, "
            "but the pip build has no VulkanBackend to run it; instead the float model runs on the CPU with "
            f"weights, inputs and every op's result rounded to {precision}, each op accumulating in fp32; "
            "GPU shaders that accumulate in fp16 can land a few dB lower, so verify on a device"
        ],
    )


def _simulate(model: SRGraph, dtype: torch.dtype) -> Callable[..., torch.Tensor]:
    """``predict`` that runs the float model with its weights, inputs and every op's result rounded to ``dtype``.

    That is what a GPU holding ``dtype`` tensors between ops computes when each op accumulates in fp32.
    """
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in rounded.parameters():
            parameter.copy_(_round(parameter, dtype))

    def predict(*inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), _RoundResults(dtype):
            return rounded(*inputs)

    return predict


class _RoundResults(TorchFunctionMode):
    """Round every floating-point tensor a torch function takes or returns to ``dtype`` (kept in float32)."""

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype

    def __torch_function__(self, func, types, args=(), kwargs=None):
        args, kwargs = tree_map_only(torch.Tensor, lambda t: _round(t, self.dtype), (args, kwargs or {}))
        return tree_map_only(torch.Tensor, lambda t: _round(t, self.dtype), func(*args, **kwargs))


def _round(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return tensor.to(dtype).to(tensor.dtype) if tensor.is_floating_point() else tensor


def open_function(path: Path, manifest: dict[str, Any], function: str, names: tuple[str, ...]) -> FunctionRunner:
    """One function of the ``.pte`` in ExecuTorch's Python runtime, where it has a Vulkan backend."""
    et.check_program(path)
    if not Runtime.get().backend_registry.is_available("VulkanBackend"):
        raise MetaSRError(
            f"{path.name} is a Vulkan artifact and needs a Vulkan-capable ExecuTorch runtime (an Android phone), "
            "which this host's ExecuTorch lacks; profile it with --device adb, or use the executorch-xnnpack or onnx "
            "artifact here"
        )
    return et.method_runner(path, function)
