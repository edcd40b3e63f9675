"""QDQ quantization with ONNX Runtime's quantizer, configured for the Qualcomm QNN HTP.

Also holds the float-graph rewrite that makes reparameterized convs 8-bit friendly (``split_identity``).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize
from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config

from metasr.exporter.calibration import Batch, feeds
from metasr.quiet import quiet

Feed = dict[str, np.ndarray]

ACTIVATION_TYPES: dict[str, QuantType] = {"uint16": QuantType.QUInt16, "uint8": QuantType.QUInt8}


class FeedReader(CalibrationDataReader):
    """Hands ONNX Runtime's calibrator one input feed per calibration image."""

    def __init__(self, feeds: list[Feed]) -> None:
        self._feeds = iter(feeds)

    def get_next(self) -> Feed | None:
        return next(self._feeds, None)


def calibration_feeds(batches: list[Batch], input_names: tuple[str, ...]) -> list[Feed]:
    """One feed (input name -> array) per calibration batch."""
    return [feeds(input_names, batch) for batch in batches]


def split_identity(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Rewrite ``Conv(x, W)`` as ``Conv(x, W - I) + x`` wherever that shrinks the weight range.

    A reparameterized RepBlock carries its identity branch as a 1.0 centre tap that dominates every
    output channel's range, so 8-bit weights lose the small taps; the residual weights quantize ~6x
    finer and the Add runs on the accelerator at activation precision. Exact in float.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    initializers = {t.name: t for t in model.graph.initializer}
    uses = Counter(name for node in model.graph.node for name in node.input)
    nodes = [onnx.NodeProto.FromString(node.SerializeToString()) for node in model.graph.node]
    rewritten = []
    for node in nodes:
        rewritten.append(node)
        weight = initializers.get(node.input[1]) if node.op_type == "Conv" else None
        if weight is None or uses[weight.name] != 1 or not _same_size_conv(node, weight):
            continue
        w = numpy_helper.to_array(weight)
        residual = w.copy()
        channels, _, kh, kw = w.shape
        residual[np.arange(channels), np.arange(channels), kh // 2, kw // 2] -= 1.0
        if np.abs(residual).max() >= np.abs(w).max():
            continue
        weight.CopyFrom(numpy_helper.from_array(residual, weight.name))
        output = node.output[0]
        node.output[0] = f"{output}_residual"
        identity = helper.make_node("Add", [node.output[0], node.input[0]], [output], name=f"{node.name}_identity")
        rewritten.append(identity)
    del model.graph.node[:]
    model.graph.node.extend(rewritten)
    return model, len(rewritten) - len(nodes)


def _same_size_conv(node: onnx.NodeProto, weight: onnx.TensorProto) -> bool:
    """A stride-1, ungrouped, C->C conv with odd kernel and 'same' padding (output aligns with input)."""
    dims = list(weight.dims)
    if len(dims) != 4 or dims[0] != dims[1] or dims[2] % 2 == 0 or dims[3] % 2 == 0:
        return False
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    pads = [dims[2] // 2, dims[3] // 2] * 2
    return (
        attrs.get("group", 1) == 1
        and list(attrs.get("strides", [1, 1])) == [1, 1]
        and list(attrs.get("dilations", [1, 1])) == [1, 1]
        and list(attrs.get("pads", [0, 0, 0, 0])) == pads
        and attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
    )


def quantize_qdq(model: onnx.ModelProto, feeds: list[Feed], activations: Literal["uint16", "uint8"]) -> onnx.ModelProto:
    """Static QDQ model for QNN: MinMax-calibrated activations, int8 symmetric per-channel weights."""
    config = get_qnn_qdq_config(
        model,
        FeedReader(feeds),
        activation_type=ACTIVATION_TYPES[activations],
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    with tempfile.TemporaryDirectory() as tmp, quiet(root=True):
        path = Path(tmp) / "qdq.onnx"
        quantize(model, path, config)
        return onnx.load(path)


def float_edge_ops(model: onnx.ModelProto) -> list[str]:
    """Compute ops with an unquantized activation input or output; a QNN backend runs those in float."""
    initializers = {t.name for t in model.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    consumers: dict[str, list[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)

    def quantized_in(name: str) -> bool:
        return not name or name in initializers or producers.get(name) == "DequantizeLinear"

    def quantized_out(name: str) -> bool:
        return name not in outputs and all(op == "QuantizeLinear" for op in consumers.get(name, []))

    return [
        n.op_type
        for n in model.graph.node
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear")
        and not (all(map(quantized_in, n.input)) and all(map(quantized_out, n.output)))
    ]
