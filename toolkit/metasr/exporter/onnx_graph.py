"""torch -> ONNX conversion shared by the ONNX targets (CPU and QNN)."""

from __future__ import annotations

import copy

import onnx
import torch

from metasr.errors import MetaSRError
from metasr.exporter.describe import Description, describe
from metasr.exporter.stages import PreparedModel
from metasr.quiet import first_line, quiet
from metasr.recipes import RecipeValueError

MIN_OPSET = 17  # the oldest opset the graph's ops (DepthToSpace, Resize, Clip) export to as used here


def check_opset(opset: int) -> None:
    """Refuse an opset the installed onnx package (and so the exporter) cannot write."""
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise RecipeValueError(
            f"opset {opset} is outside the {MIN_OPSET}-{newest} that onnx {onnx.__version__} writes; use e.g. 20"
        )


class _Float16Compute(torch.nn.Module):
    """Runs the model in float16 behind float32 inputs and outputs."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).half()

    def forward(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        inputs = (image,) if strength is None else (image, strength)  # a bare student takes the image alone
        return self.model(*(t.half() for t in inputs)).float()


def export_onnx(prepared: PreparedModel, opset: int, dynamic: bool, fp16: bool = False) -> onnx.ModelProto:
    """Export the graph's inputs -> output with torch's dynamo exporter; H and W dynamic if asked.

    With ``fp16`` the graph computes in float16 while its inputs and outputs stay float32.
    """
    module = _Float16Compute(prepared.model) if fp16 else prepared.model
    shapes = prepared.dynamic_shapes() if dynamic else None
    try:
        with quiet():
            program = torch.onnx.export(
                module,
                prepared.example_inputs(),
                None,
                dynamo=True,
                input_names=list(prepared.input_names),
                output_names=["output"],
                dynamic_shapes=shapes,
                opset_version=opset,
                optimize=True,
                verbose=False,
            )
    except Exception as exc:  # the exporter raises many types; report the first line
        raise MetaSRError(f"ONNX export failed ({first_line(exc)}); use only ops ONNX Runtime and QNN run") from exc
    model = program.model_proto
    written = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if written != opset:
        raise MetaSRError(f"the ONNX exporter wrote opset {written}, not the recipe's {opset}; use opset {written}")
    model.producer_name, model.producer_version = "metasr-edge", ""
    strip_export_metadata(model)
    embed_description(model, describe(prepared))
    return model


def embed_description(model: onnx.ModelProto, description: Description) -> None:
    """``description`` as the model's doc string and ``metadata_props`` (author, version, summary), and as the doc
    strings of its inputs and output, in place."""
    model.doc_string = description.summary
    props = {"author": description.author, "version": description.version, "summary": description.summary}
    onnx.helper.set_model_props(model, props)
    for value in model.graph.input:
        value.doc_string = description.inputs.get(value.name, "")
    for value in model.graph.output:
        value.doc_string = description.output


def strip_export_metadata(model: onnx.ModelProto) -> None:
    """Drop the exporter's debug annotations (``metadata_props`` everywhere), in place.

    They hold source file paths and line numbers (stack traces), FX node dumps and the exported program's
    range constraints, whose symbol order follows the process's hash seed, so the artifact's bytes would
    depend on where and how it was built. No runtime reads them.
    """
    del model.metadata_props[:]
    graph = model.graph
    del graph.metadata_props[:]
    for entry in (*graph.node, *graph.input, *graph.output, *graph.value_info, *graph.initializer):
        del entry.metadata_props[:]


def onnx_ops(model: onnx.ModelProto) -> list[str]:
    """Op types of the graph's nodes, in order."""
    return [node.op_type for node in model.graph.node]
