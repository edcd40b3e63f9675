"""ONNX QNN target: a static-shape QDQ model for ONNX Runtime's QNN execution provider on the Qualcomm HTP.

Parity and placement are measured with the QNN HTP backend's x86-64 emulator (numerics, not timing). The session
is created with CPU fallback disabled, so a successful export proves every node runs on the HTP.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import onnx
import onnxruntime as ort
import torch

from metasr.errors import MetaSRError
from metasr.exporter.calibration import CALIBRATION_STRENGTHS, calibration_batches, strengths_used
from metasr.exporter.onnx.runtime import session_runner
from metasr.exporter.onnx_graph import check_opset, export_onnx
from metasr.exporter.onnx_qnn import runtime as qnn_runtime
from metasr.exporter.onnx_qnn.quantize import calibration_feeds, float_edge_ops, quantize_qdq, split_identity
from metasr.exporter.onnx_qnn.runtime import QDQ_OPS, WHERE, cpu_assigned_ops, open_session, qnn_plugin
from metasr.exporter.onnx_qnn.runtime import host_placement as host_placement  # host profile: placement only
from metasr.exporter.onnx_qnn.runtime import open_function as open_function  # the host runtime
from metasr.exporter.stages import Coverage, DeviceCost, LoweredArtifact, PreparedModel, QuantizedModel
from metasr.models.metasr import MetaSR

NAME = "onnx-qnn"
COST = DeviceCost("npu", 2, 1, "int8_tops")
APP_RUNTIME = "onnxruntime-qnn"
SUFFIXES = (".onnx",)
HOST_RUNTIME = "onnxruntime"
ACTIVATIONS = {"a16w8": "uint16", "a8w8": "uint8"}


@dataclass(frozen=True)
class Options:
    """ONNX QNN target settings; ``calibration_strengths``: every photo is calibrated at each strength."""

    scheme: Literal["a16w8", "a8w8"] = "a16w8"
    method: Literal["ort", "nncf"] = "ort"
    split_identity: bool = True
    opset: int = 21
    context_soc_model: str | None = None
    calibration_strengths: tuple[float, ...] = CALIBRATION_STRENGTHS

    def __post_init__(self) -> None:
        check_opset(self.opset)


def quantize(prepared: PreparedModel, calibration: list[torch.Tensor]) -> QuantizedModel:
    """Export a static float graph and quantize it to QDQ, calibrated on ``calibration`` (real photos)."""
    options: Options = prepared.recipe.options
    _check(options, prepared)
    model = export_onnx(prepared, options.opset, dynamic=False)
    notes = []
    if options.split_identity:
        model, count = split_identity(model)
        notes.append(f"{count} convs rewritten as residual conv + identity Add so 8-bit weights keep their small taps")
    batches = calibration_batches(calibration, options.calibration_strengths, prepared.input_names)
    feeds = calibration_feeds(batches, prepared.input_names)
    if options.method == "nncf":
        from metasr.exporter.onnx_qnn.nncf_quantize import quantize_nncf

        qdq = quantize_nncf(model, feeds)
    else:
        qdq = quantize_qdq(model, feeds, ACTIVATIONS[options.scheme])
    if unquantized := float_edge_ops(qdq):
        ops = ", ".join(sorted(set(unquantized)))
        notes.append(f"{len(unquantized)} ops keep a float input or output and run unquantized on the HTP ({ops})")
    scheme = f"QDQ {options.scheme.upper()} ({_describe(options)}, {options.method})"
    return QuantizedModel(
        prepared,
        qdq,
        scheme=scheme,
        calibration_images=len(calibration),
        calibration_strengths=strengths_used(options.calibration_strengths, prepared.input_names),
        notes=notes,
    )


def lower(quantized: QuantizedModel, staging: Path) -> LoweredArtifact:
    """Write the QDQ model (and optional EPContext model) and open it on the HTP with CPU fallback disabled."""
    prepared = quantized.prepared
    options: Options = prepared.recipe.options
    model: onnx.ModelProto = quantized.program
    onnx.checker.check_model(model, full_check=True)
    path = staging / f"{prepared.stem}_qdq.onnx"
    onnx.save(model, path)
    compute = [n.op_type for n in model.graph.node if n.op_type not in QDQ_OPS]
    extra = _manifest_extra(prepared, options)
    notes: list[str] = []
    try:
        session = open_session(path, options.context_soc_model)
        fallback: list[str] = []
    except Exception as exc:  # ORT raises its own Fail/RuntimeException types
        session, fallback = _placement_probe(path, options.context_soc_model, exc)
    refused = [op for op in fallback if op not in QDQ_OPS]
    if options.context_soc_model and not fallback:
        extra["context_model"] = _context_model(path, options.context_soc_model, session, prepared)
        notes.append(f"EPContext model {extra['context_model']['file']} pre-compiled for {options.context_soc_model}")
    return LoweredArtifact(
        path=path,
        coverage=Coverage(len(compute) - len(refused), len(compute), fallback, WHERE),
        runtime=f"ONNX Runtime {ort.__version__} QNNExecutionProvider {qnn_plugin().__version__} (HTP x86-64 emulator)",
        predict=session_runner(session, prepared.input_names),
        manifest_extra=extra,
        notes=notes,
    )


def _placement_probe(path: Path, soc_model: str | None, error: Exception) -> tuple[ort.InferenceSession, list[str]]:
    """Reopen with CPU fallback allowed to learn which ops the HTP refused; re-raise if none did."""
    session = open_session(path, soc_model, allow_fallback=True)
    fallback = cpu_assigned_ops(session)
    if not fallback:
        first = str(error).strip().splitlines()[0]
        raise MetaSRError(f"the QNN HTP backend rejected the model ({first}); export with --target onnx") from error
    return session, fallback


def _context_model(path: Path, soc_model: str, session: ort.InferenceSession, prepared: PreparedModel) -> dict:
    """Compile an EPContext model beside ``path``; it must load with fallback disabled and match the QDQ model.

    The QNN backend numbers graph tensors per process, so the context binary is compiled in a fresh process
    to stay byte-identical across exports.
    """
    context = path.with_name(f"{path.stem.removesuffix('_qdq')}_{soc_model}_ctx.onnx")
    args = [sys.executable, "-m", qnn_runtime.__name__, str(path), soc_model, str(context)]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if "Unrecognized soc_model" in done.stderr:  # QNN only warns, then compiles for its default SoC
        raise MetaSRError(f"QNN does not know soc_model '{soc_model}'; use a chip name like SM8650 or its numeric id")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise MetaSRError(f"QNN could not compile an EPContext model for {soc_model} ({last}); check context_soc_model")
    inputs, names = prepared.example_inputs(), prepared.input_names
    compiled = session_runner(open_session(context, soc_model), names)(*inputs)
    if not torch.equal(compiled, session_runner(session, names)(*inputs)):
        raise MetaSRError(f"EPContext model for {soc_model} disagrees with the QDQ model; drop context_soc_model")
    return {"file": context.name, "soc_model": soc_model, "embed_mode": 1}


def _check(options: Options, prepared: PreparedModel) -> None:
    """Reject option combinations the HTP path cannot honour, and a missing onnxruntime-qnn, before any work."""
    if options.opset < 21:
        raise MetaSRError(f"onnx-qnn needs opset >= 21 for 16-bit QuantizeLinear, got {options.opset}; set opset: 21")
    if options.method == "nncf" and options.scheme != "a8w8":
        raise MetaSRError("NNCF's ONNX backend quantizes to 8 bits only; use scheme: a8w8 or method: ort")
    if options.method == "nncf" and isinstance(prepared.model, MetaSR):
        # NNCF leaves the metadata and orchestrator ops with float edges: standalone per-channel weight
        # DequantizeLinear nodes the QNN EP refuses, and a float Concat the HTP cannot finalize.
        raise MetaSRError(
            "NNCF's QDQ model of a MetaSR graph does not run on the QNN HTP (float orchestrator ops); "
            "use method: ort (--recipe onnx-qnn-a8w8), or export a plain student"
        )
    if len(prepared.input_sizes) != 1:
        raise MetaSRError("onnx-qnn compiles one static input shape for the HTP; give exactly one input size")
    qnn_plugin()


def _describe(options: Options) -> str:
    return f"{ACTIVATIONS[options.scheme]} activations, int8 symmetric per-channel weights"


def _manifest_extra(prepared: PreparedModel, options: Options) -> dict[str, Any]:
    h, w = prepared.input_size
    return {
        "runtime": "onnxruntime",
        "execution_provider": "QNNExecutionProvider",
        "backend": "htp",
        "opset": options.opset,
        "static_input_shape": [1, 3, h, w],
        "input_names": list(prepared.input_names),
        "quantization": {
            "format": "QDQ",
            "scheme": options.scheme,
            "activations": ACTIVATIONS[options.scheme],
            "weights": "int8 symmetric per-channel",
            "method": options.method,
            "identity_split": options.split_identity,
            "calibration_strengths": list(strengths_used(options.calibration_strengths, prepared.input_names)),
        },
    }
