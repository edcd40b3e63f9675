"""Core ML target: an fp16 ML program (.mlpackage) for the Apple Neural Engine, with image input and output.

The app hands over a pixel buffer ("image", RGB, 0-255; the 1/255 scale is baked in) and gets one back
("output"); ``strength`` is an optional (1, 1, 1, 1) tensor whose stored default, -1, keeps the estimated
degradation degree. Input sizes are the recipe's ``input_sizes`` as enumerated shapes: flexible ranges would
push the model off the Neural Engine.

There is no Core ML runtime on Linux, so parity runs a PyTorch simulation of the saved artifact: its MIL
program is read back from the .mlpackage and executed op by op, every op rounded to its declared dtype
(fp16), compressed weights decompressed exactly as stored, int8 activations through the program's own
quantize/dequantize ops, and the image converted to and from 8-bit pixels.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import coremltools as ct
import numpy as np
import sympy
import torch
import torch.nn.functional as F
from coremltools.converters.mil.frontend.milproto.load import load as load_mil
from coremltools.converters.mil.mil import Function, Operation, Var, types
from coremltools.models.utils import MultiFunctionDescriptor, save_multifunction

from metasr.errors import MetaSRError
from metasr.exporter.calibration import CALIBRATION_STRENGTHS, calibration_batches, strengths_used
from metasr.exporter.coreml.quantize import WeightCompression, compress_weights, quantize_w8a8
from metasr.exporter.describe import Description, describe
from metasr.exporter.graph_passes import drop_aliases
from metasr.exporter.routed import ROUTER
from metasr.exporter.stages import Coverage, DeviceCost, LoweredArtifact, PreparedModel, QuantizedModel
from metasr.quiet import first_line, quiet

NAME = "coreml"
RGB = ct.colorlayout.RGB
COST = DeviceCost("npu", 2, 2, "fp16_tops")
APP_RUNTIME = "coreml"
SUFFIXES = (".mlpackage", ".mlmodel", ".mlmodelc")
HOST_RUNTIME = None
NO_HOST = "Core ML needs macOS: profile it with --device macos on a Mac or --device estimate:NAME"
DEPLOYMENT_TARGET = "iOS17"
ROUTED_DEPLOYMENT_TARGET = "iOS18"  # multifunction ML programs
NEURAL_ENGINE = "Apple Neural Engine (static op list; placement needs macOS)"
NOTES = [
    "re-exports are byte-identical: Manifest.json item identifiers are UUID v5s of the item paths, the conversion "
    "date is dropped, the model spec is serialized with sorted map keys, and k-means is seeded and single-threaded",
    "the image scaling (mul by 1/255) and the casts at the inputs and output are the I/O boundary Core ML performs "
    "around the graph; the simulation assumes output pixels are rounded to nearest and clamped to 0-255",
]


@dataclass(frozen=True)
class Options:
    """Core ML target settings."""

    compute_units: Literal["CPU_AND_NE", "ALL", "CPU_AND_GPU", "CPU_ONLY"] = "CPU_AND_NE"  # MLComputeUnits
    precision: Literal["fp16", "fp32"] = "fp16"  # compute precision of float ops
    weights: WeightCompression = "none"  # int8 linear per channel, or a 6/4-bit k-means palette
    activations: Literal["fp16", "int8"] = "fp16"  # fp16: float (at ``precision``); int8: W8A8, needs int8 weights
    calibration_strengths: tuple[float, ...] = CALIBRATION_STRENGTHS  # W8A8: every photo at each strength


class PixelOutput(torch.nn.Module):
    """The model with its [0, 1] output scaled to 0-255, so Core ML can return it as an image."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        inputs = (image,) if strength is None else (image, strength)  # a bare student takes the image alone
        return self.model(*inputs) * 255.0


def quantize(prepared: PreparedModel, calibration: list[torch.Tensor]) -> QuantizedModel:
    """fp16 (or fp32) float model, or W8A8 calibrated with PT2E; weight compression happens on the ML program."""
    options: Options = prepared.recipe.options
    _check(options)
    module = prepared.model if _scores(prepared) else PixelOutput(prepared.model).eval()
    if options.activations == "fp16":
        return QuantizedModel(prepared, module, scheme=_scheme(options))
    batches = calibration_batches(calibration, options.calibration_strengths, prepared.input_names)
    with _converting("W8A8 calibration"):
        graph = quantize_w8a8(_export(module, prepared).module(), batches)
    return QuantizedModel(
        prepared,
        graph,
        _scheme(options),
        calibration_images=len(calibration),
        calibration_strengths=strengths_used(options.calibration_strengths, prepared.input_names),
    )


def lower(quantized: QuantizedModel, staging: Path) -> LoweredArtifact:
    """Convert the torch.export program to an ML program, compress weights, save and read it back."""
    path = staging / f"{quantized.prepared.stem}.mlpackage"
    _save(_ml_program(quantized, DEPLOYMENT_TARGET), path, describe(quantized.prepared))
    return _lowered(path, main_function(path), quantized, DEPLOYMENT_TARGET)


def lower_functions(quantized: dict[str, QuantizedModel], staging: Path) -> dict[str, LoweredArtifact]:
    """A routed artifact: one multifunction .mlpackage (iOS 18) holding the router and every expert as functions
    of those names, shared weights stored once; each function read back and simulated on its own."""
    parts = staging / "functions"
    parts.mkdir()
    descriptor = MultiFunctionDescriptor()
    for name, q in quantized.items():
        _save(_ml_program(q, ROUTED_DEPLOYMENT_TARGET), parts / f"{name}.mlpackage", describe(q.prepared))
        descriptor.add_function(str(parts / f"{name}.mlpackage"), "main", name)
    descriptor.default_function_name = ROUTER
    path = staging / f"metasr_x{next(iter(quantized.values())).prepared.scale}_routed.mlpackage"
    with _converting("Core ML multifunction save"):
        save_multifunction(descriptor, str(path))
    shutil.rmtree(parts)
    spec = ct.utils.load_spec(str(path))
    router = describe(quantized[ROUTER].prepared)
    _describe_package(
        spec,
        router,
        f"MetaSR x{quantized[ROUTER].prepared.scale} routed model: call the router, then the expert it names",
    )
    for function in spec.description.functions:
        _describe_io(function, describe(quantized[function.name].prepared))
    (path / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(spec.SerializeToString(deterministic=True))
    _stable_item_ids(path / "Manifest.json")
    functions = _program(path).functions
    return {name: _lowered(path, functions[name], q, ROUTED_DEPLOYMENT_TARGET) for name, q in quantized.items()}


def main_function(package: Path) -> Function:
    """The ``main`` function of the MIL program stored in an .mlpackage (weights read from its blob file)."""
    return _program(package).functions["main"]


def _program(package: Path) -> Any:
    """The MIL program stored in an .mlpackage, weights read from its blob file."""
    spec = ct.utils.load_spec(str(package))
    weights = package / "Data" / "com.apple.CoreML" / "weights"
    return load_mil(spec, spec.specificationVersion, str(weights))


def _ml_program(quantized: QuantizedModel, deployment: str) -> ct.models.MLModel:
    options: Options = quantized.prepared.recipe.options
    with _converting("Core ML conversion"):
        mlmodel = _convert(quantized.program, quantized.prepared, options, deployment)
        if options.activations == "fp16":
            mlmodel = compress_weights(mlmodel, options.weights)
    return mlmodel


def _lowered(path: Path, function: Function, quantized: QuantizedModel, deployment: str) -> LoweredArtifact:
    prepared = quantized.prepared
    options: Options = prepared.recipe.options
    pixels = "8-bit pixels in and out" if not _scores(prepared) else "8-bit pixels in, scores out"
    return LoweredArtifact(
        path=path,
        coverage=_coverage(function, options),
        runtime=f"simulation in PyTorch (no Core ML runtime on Linux) of the saved .mlpackage's MIL program: "
        f"{options.precision} rounding at every op, weights decompressed from the artifact, {pixels}",
        predict=_simulator(function, pixels_out=not _scores(prepared)),
        manifest_extra=_manifest_extra(prepared, options, deployment),
        notes=NOTES,
    )


def _scores(prepared: PreparedModel) -> bool:
    """Whether the function returns a routed artifact's tile scores (a tensor) rather than an image."""
    return prepared.function == ROUTER


def _check(options: Options) -> None:
    if options.activations == "int8" and options.weights != "int8":
        raise MetaSRError(f"activations: int8 quantizes weights to int8 too; set weights: int8, not {options.weights}")
    if options.precision == "fp32" and options.compute_units == "CPU_AND_NE":
        raise MetaSRError(
            "the Neural Engine computes in fp16 only, so precision fp32 with CPU_AND_NE runs on the CPU; "
            "set precision: fp16, or compute_units: CPU_AND_GPU"
        )


def _scheme(options: Options) -> str:
    if options.activations == "int8":
        return "W8A8: int8 per-channel weights, int8 per-tensor conv inputs (PT2E MinMax), fp16 elsewhere"
    weights = {
        "none": f"{options.precision} weights",
        "int8": "int8 per-channel weights",
        "palettize6": "6-bit k-means palettized weights (one LUT per tensor)",
        "palettize4": "4-bit k-means palettized weights (one LUT per tensor)",
    }[options.weights]
    return f"{weights}, {options.precision} compute"


def _export(module: torch.nn.Module, prepared: PreparedModel) -> torch.export.ExportedProgram:
    """torch.export with symbolic height and width; Core ML then pins them to the enumerated sizes."""
    program = torch.export.export(module, prepared.example_inputs(), dynamic_shapes=prepared.dynamic_shapes())
    drop_aliases(program.graph_module)
    return _fixed_scale_upsampling(program)


def _fixed_scale_upsampling(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """Give each bilinear upsampling whose output size is a fixed integer multiple of its input that scale, in place.

    Core ML maps only scale factors to its ``upsample_bilinear`` op, not sizes read from the input's shape. The
    exported sides are whole metadata cells, so the per-cell modulation grows by exactly ``CELL``: with
    ``align_corners=False`` both forms sample the same points, the op is unchanged.
    """
    graph = program.graph_module.graph
    for node in graph.find_nodes(op="call_function", target=torch.ops.aten.upsample_bilinear2d.vec):
        source, _, align_corners, scales = node.args
        sides = zip(node.meta["val"].shape[2:], source.meta["val"].shape[2:], strict=True)
        ratios = [_expr(out) / _expr(inp) for out, inp in sides]
        if scales is None and all(r.is_Integer for r in ratios):
            node.args = (source, None, align_corners, [float(r) for r in ratios])
    graph.eliminate_dead_code()
    program.graph_module.recompile()
    return program


def _expr(side: int | torch.SymInt) -> sympy.Expr:
    return side.node.expr if isinstance(side, torch.SymInt) else sympy.Integer(side)


def _convert(module: torch.nn.Module, prepared: PreparedModel, options: Options, deployment: str) -> ct.models.MLModel:
    sizes = [(1, 3, h, w) for h, w in prepared.input_sizes]
    shape = ct.EnumeratedShapes(shapes=sizes, default=sizes[0]) if len(sizes) > 1 else sizes[0]
    inputs = [ct.ImageType(name="image", shape=shape, scale=1 / 255, color_layout=RGB)]
    if "strength" in prepared.input_names:
        strength = prepared.model.default_strength().numpy().astype(_numpy_dtype(options))
        inputs.append(
            ct.TensorType(name="strength", shape=strength.shape, dtype=strength.dtype, default_value=strength)
        )
    return ct.convert(
        _export(module, prepared).run_decompositions({}),
        inputs=inputs,
        outputs=[ct.TensorType(name="output") if _scores(prepared) else ct.ImageType(name="output", color_layout=RGB)],
        convert_to="mlprogram",
        minimum_deployment_target=getattr(ct.target, deployment),
        compute_units=getattr(ct.ComputeUnit, options.compute_units),
        compute_precision=ct.precision.FLOAT16 if options.precision == "fp16" else ct.precision.FLOAT32,
    )


def _numpy_dtype(options: Options) -> type:
    return np.float16 if options.precision == "fp16" else np.float32


def _dtype_name(options: Options) -> str:
    return np.dtype(_numpy_dtype(options)).name


@contextlib.contextmanager
def _converting(what: str) -> Iterator[None]:
    """Silence converter progress bars and warnings; turn their failures into one-line errors."""
    try:
        with quiet(stderr=True):
            yield
    except MetaSRError:
        raise
    except Exception as exc:  # torch.export and coremltools raise many types; report the first line
        raise MetaSRError(
            f"{what} failed ({first_line(exc)}); use only ops listed in metasr.exporter.coreml.ANE_OPS"
        ) from exc


def _save(mlmodel: ct.models.MLModel, path: Path, description: Description) -> None:
    """Save with ``description`` and without the run-dependent bits: conversion date, protobuf map order, item
    UUIDs, ExecuTorch debug map."""
    mlmodel.user_defined_metadata.pop("com.github.apple.coremltools.conversion_date", None)
    mlmodel.save(str(path))
    (path / "executorch_debug_handle_mapping.json").unlink(missing_ok=True)
    spec = mlmodel.get_spec()
    _describe_package(spec, description, description.summary)
    _describe_io(spec.description, description)
    (path / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(spec.SerializeToString(deterministic=True))
    _stable_item_ids(path / "Manifest.json")


def _describe_package(spec: Any, description: Description, summary: str) -> None:
    """Author, version and summary, as Xcode's model view shows them."""
    metadata = spec.description.metadata
    metadata.author, metadata.versionString, metadata.shortDescription = (
        description.author,
        description.version,
        summary,
    )


def _describe_io(function: Any, description: Description) -> None:
    """Each input's and the output's description, on a model's (or one function's) description proto."""
    for feature in function.input:
        feature.shortDescription = description.inputs.get(feature.name, "")
    for feature in function.output:
        feature.shortDescription = description.output


def _stable_item_ids(manifest_path: Path) -> None:
    """Replace the package manifest's random item UUIDs with UUID v5s of the item paths."""
    manifest = json.loads(manifest_path.read_text())
    entries = manifest["itemInfoEntries"]
    ids = {old: str(uuid.uuid5(uuid.NAMESPACE_URL, f"metasr:{entry['path']}")) for old, entry in entries.items()}
    manifest["itemInfoEntries"] = {ids[old]: entry for old, entry in entries.items()}
    manifest["rootModelIdentifier"] = ids[manifest["rootModelIdentifier"]]
    manifest_path.write_text(json.dumps(manifest, indent=4, sort_keys=True) + "\n")


def _coverage(function: Function, options: Options) -> Coverage:
    """Every live compute op must be on the Neural Engine list; casts only at the graph's inputs and output.

    Dead ops (no consumer, not an output; e.g. the identity coremltools keeps on an unused input) are
    not counted: the Core ML compiler removes them before placement.
    """
    ops = _live_ops(function)
    fallback = [op.op_type for op in ops if op.op_type not in ANE_OPS]
    fallback += [f"cast inside the graph ({op.name})" for op in ops if op.op_type == "cast" and _inner_cast(op)]
    on_ne = options.precision == "fp16" and options.compute_units in ("CPU_AND_NE", "ALL")
    where = NEURAL_ENGINE if on_ne else f"Core ML {options.compute_units}, {options.precision} (static op list)"
    return Coverage(accelerated=len(ops) - len(fallback), total=len(ops), fallback=fallback, where=where)


def _is_constant(op: Operation) -> bool:
    return op.op_type == "const" or op.op_type.startswith("constexpr_")


def _live_ops(function: Function) -> list[Operation]:
    """The compute ops the program runs: neither constants nor dead (no consumer, not an output)."""
    return [op for op in function.operations if not _is_constant(op) and not _is_dead(op)]


def _is_dead(op: Operation) -> bool:
    return not any(v.child_ops or v in op.enclosing_block.outputs for v in op.outputs)


def _inner_cast(op: Operation) -> bool:
    """A cast that is not fp32 I/O conversion: not of an input (or its image scaling), not of the output."""
    source = op.inputs["x"].op
    from_input = source is None or all(v.op is None or v.val is not None for v in source.inputs.values())
    return not from_input and not any(v in op.enclosing_block.outputs for v in op.outputs)


def _manifest_extra(prepared: PreparedModel, options: Options, deployment: str) -> dict[str, Any]:
    """Core ML I/O: images in and out (8-bit RGB pixel buffers; a router's scores out as an MLMultiArray),
    strength (if any) as an optional MLMultiArray."""
    shapes = [[1, 3, h, w] for h, w in prepared.input_sizes]
    image = {
        "layout": "image",
        "pixel_buffer": "CVPixelBuffer, 8 bits per channel",
        "color": "RGB",
        "dtype": "uint8",
        "value_range": [0, 255],
    }
    inputs: list[dict[str, Any]] = [{"name": "image", **image, "scale": "1/255, baked into the model"}]
    if "strength" in prepared.input_names:
        # the model stores the default; an app may leave the input out
        inputs.append(
            {"name": "strength", "layout": "NC11 MLMultiArray", "dtype": _dtype_name(options), "optional": True}
        )
    return {
        "runtime": "coreml",
        "format": "mlpackage (ML program)",
        "minimum_deployment_target": deployment,
        "compute_units": options.compute_units,
        "precision": options.precision,
        "weights": options.weights,
        "activations": options.activations,
        "enumerated_shapes": shapes,
        "inputs": inputs,
        "outputs": [{"name": "output", **(_SCORES if _scores(prepared) else image)}],
    }


_SCORES = {"layout": "NKHW MLMultiArray", "dtype": "float32"}


# --- Simulation of the saved ML program ------------------------------------------------------------------

_DTYPES = {"fp16": torch.float16, "fp32": torch.float32, "int8": torch.int8, "uint8": torch.uint8}


def _conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    strides: torch.Tensor,
    pad_type: str,
    pad: torch.Tensor,
    dilations: torch.Tensor,
    groups: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    if pad_type not in ("custom", "valid"):
        raise MetaSRError(f"no simulation for conv pad_type '{pad_type}'; use explicit padding in the model")
    top, bottom, left, right = pad.tolist()
    x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, weight, bias, strides.tolist(), 0, dilations.tolist(), int(groups))


def _per_axis(param: torch.Tensor, x: torch.Tensor, axis: torch.Tensor | None) -> torch.Tensor:
    if axis is None or param.ndim == 0:
        return param
    shape = [1] * x.ndim
    shape[int(axis)] = -1
    return param.reshape(shape)


def _quantize(
    input: torch.Tensor,
    scale: torch.Tensor,
    output_dtype: str,
    zero_point: torch.Tensor | None = None,
    axis: torch.Tensor | None = None,
) -> torch.Tensor:
    zero = 0.0 if zero_point is None else _per_axis(zero_point.float(), input, axis)
    info = torch.iinfo(_DTYPES[output_dtype])
    return (torch.round(input / _per_axis(scale, input, axis)) + zero).clamp(info.min, info.max)


def _dequantize(
    input: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | None = None, axis: torch.Tensor | None = None
) -> torch.Tensor:
    zero = 0.0 if zero_point is None else _per_axis(zero_point.float(), input, axis)
    return (input.float() - zero) * _per_axis(scale, input, axis)


def _avg_pool(
    x: torch.Tensor,
    kernel_sizes: torch.Tensor,
    strides: torch.Tensor,
    pad_type: str,
    pad: torch.Tensor,
    exclude_padding_from_average: torch.Tensor,
    ceil_mode: torch.Tensor,
) -> torch.Tensor:
    if pad_type not in ("custom", "valid") or pad.any() or bool(ceil_mode):
        raise MetaSRError("no simulation for a padded or ceil-mode avg_pool; pool whole windows in the model")
    return F.avg_pool2d(x, kernel_sizes.tolist(), strides.tolist())


def _slice_by_index(
    x: torch.Tensor,
    begin: torch.Tensor,
    end: torch.Tensor,
    stride: torch.Tensor | None = None,
    begin_mask: torch.Tensor | None = None,
    end_mask: torch.Tensor | None = None,
    squeeze_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    index = tuple(
        slice(
            None if begin_mask is not None and begin_mask[axis] else int(begin[axis]),
            None if end_mask is not None and end_mask[axis] else int(end[axis]),
            1 if stride is None else int(stride[axis]),
        )
        for axis in range(x.ndim)
    )
    out = x[index]
    if squeeze_mask is not None and squeeze_mask.any():
        out = out.squeeze(tuple(int(axis) for axis in torch.nonzero(squeeze_mask)))
    return out


def _upsample_bilinear(
    x: torch.Tensor, scale_factor_height: torch.Tensor, scale_factor_width: torch.Tensor, align_corners: torch.Tensor
) -> torch.Tensor:
    """MIL samples at ``(i + 0.5) * in / out - 0.5`` with align_corners False, as PyTorch does for a given size."""
    size = (int(x.shape[-2] * float(scale_factor_height)), int(x.shape[-1] * float(scale_factor_width)))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=bool(align_corners))


def _concat(values: list[torch.Tensor], axis: torch.Tensor, interleave: torch.Tensor | None = None) -> torch.Tensor:
    if interleave is not None and bool(interleave):
        raise MetaSRError("no simulation for an interleaved concat")
    return torch.cat(values, int(axis))


# The static allow-list: MIL ops the Neural Engine runs that this toolkit's models use, each with its PyTorch
# semantics for the simulation. Any other op is reported as a fallback rather than assumed to run or simulated.
# Beyond the student's convs, MetaSR's metadata extractors and orchestrator add the pooling, the activations
# (sigmoid, tanh, abs), elementwise sub/div, channel slicing and concatenation, the bilinear upsampling, and the
# content classifier's transpose and softmax; a per-call conv router, the spatial mean (reduce_mean: the ANE's
# own LayerNorm recipe, Apple's ml-ane-transformers, runs it there).
ANE_OPS: dict[str, Callable[..., Any]] = {
    "conv": _conv,
    "relu": lambda x: F.relu(x),
    "sigmoid": lambda x: torch.sigmoid(x),
    "tanh": lambda x: torch.tanh(x),
    "abs": lambda x: torch.abs(x),
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "real_div": lambda x, y: x / y,
    "clip": lambda x, alpha, beta: x.clamp(float(alpha), float(beta)),
    "avg_pool": _avg_pool,
    "reduce_mean": lambda x, axes, keep_dims: x.mean([int(a) for a in axes], keepdim=bool(keep_dims)),
    "upsample_bilinear": _upsample_bilinear,
    "pixel_shuffle": lambda x, upscale_factor: F.pixel_shuffle(x, int(upscale_factor)),
    "split": lambda x, axis, split_sizes: torch.split(x, split_sizes.tolist(), int(axis)),
    "slice_by_index": _slice_by_index,
    "concat": _concat,
    "quantize": _quantize,
    "dequantize": _dequantize,
    "cast": lambda x, dtype: x,  # the result is rounded to the declared output dtype like every op's
    "transpose": lambda x, perm: x.permute(*(int(p) for p in perm)),
    "softmax": lambda x, axis: torch.softmax(x, int(axis)),
}


def _simulator(function: Function, pixels_out: bool = True) -> Callable[..., torch.Tensor]:
    """predict(image[, strength]) for the program: 8-bit pixels in, every op in fp32 then rounded to its dtype,
    8-bit pixels out (or the output tensor as it is)."""
    constants = {v.name: _constant(op) for op in function.operations if _is_constant(op) for v in op.outputs}
    ops = _live_ops(function)
    output = function.outputs[0]

    def predict(image: torch.Tensor, *others: torch.Tensor) -> torch.Tensor:
        pixels = torch.round(image.clamp(0.0, 1.0) * 255.0)
        feeds = dict(zip(function.inputs, (pixels, *others), strict=True))
        values = {**constants, **{k: v.to(_dtype(function.inputs[k])) for k, v in feeds.items()}}
        for op in ops:
            _run(op, values)
        result = values[output.name].float()
        return torch.round(result.clamp(0.0, 255.0)) / 255.0 if pixels_out else result

    return predict


def _run(op: Operation, values: dict[str, Any]) -> None:
    if op.op_type not in ANE_OPS:
        raise MetaSRError(f"no simulation for MIL op '{op.op_type}'")
    args = {name: _input_value(var, values) for name, var in op.inputs.items()}
    results = ANE_OPS[op.op_type](**args)
    for var, result in zip(op.outputs, results if isinstance(results, tuple) else (results,), strict=True):
        values[var.name] = result.to(_dtype(var))


def _input_value(var: Var | tuple[Var, ...], values: dict[str, Any]) -> Any:
    """An op input's value; a variadic input (concat's ``values``) becomes a list."""
    if isinstance(var, list | tuple):
        return [_compute_value(values[v.name]) for v in var]
    return _compute_value(values[var.name])


def _compute_value(value: Any) -> Any:
    """Float tensors are computed in fp32 (exact for fp16 operands) and rounded to the op's dtype afterwards."""
    return value.float() if isinstance(value, torch.Tensor) and value.is_floating_point() else value


def _constant(op: Operation) -> Any:
    """A const's value, or a compressed weight decompressed by coremltools exactly as Core ML does."""
    value = op.materialized_val_inference() if op.op_type.startswith("constexpr_") else op.outputs[0].val
    return value if isinstance(value, str) else torch.from_numpy(np.array(value))


def _dtype(var: Var) -> torch.dtype:
    return _DTYPES[types.builtin_to_string(var.dtype)]
