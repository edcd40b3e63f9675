"""A8W8 QDQ quantization with NNCF's ONNX backend, made loadable by the QNN HTP."""

from __future__ import annotations

import nncf
import numpy as np
import onnx
from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
from nncf.quantization.range_estimator import RangeEstimatorParametersSet
from onnx import numpy_helper

from metasr.exporter.onnx_qnn.quantize import Feed
from metasr.quiet import quiet


def quantize_nncf(model: onnx.ModelProto, feeds: list[Feed]) -> onnx.ModelProto:
    """NNCF post-training int8: global min/max activation ranges, asymmetric activations, fast bias correction.

    NNCF's full ``BiasCorrection`` (``fast_bias_correction=False``) fails on this two-input graph in
    NNCF 3.4.0, so the fast variant is used.
    """
    advanced = AdvancedQuantizationParameters(activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)
    with quiet(stderr=True):
        quantized = nncf.quantize(
            model,
            nncf.Dataset(feeds),
            preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(feeds),
            fast_bias_correction=True,
            advanced_parameters=advanced,
        )
    return unsigned_activations(quantized)


def unsigned_activations(model: onnx.ModelProto) -> onnx.ModelProto:
    """Re-express int8 activation Q/DQ pairs as uint8 (zero point + 128): numerically identical.

    NNCF gives signed tensors int8 and ReLU outputs uint8; ONNX Runtime only groups a Conv into a
    QDQ node unit when its input and output share a type, so mixed pairs leave standalone per-channel
    weight DequantizeLinear nodes that the QNN EP rejects.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    initializers = {t.name: t for t in model.graph.initializer}
    quantizers = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    signed = {n.input[2] for n in quantizers if initializers[n.input[2]].data_type == onnx.TensorProto.INT8}
    for name in sorted(signed):
        shifted = numpy_helper.to_array(initializers[name]).astype(np.int16) + 128
        initializers[name].CopyFrom(numpy_helper.from_array(shifted.astype(np.uint8), name))
    changed = signed | {n.output[0] for n in quantizers if n.input[2] in signed}
    for info in [*model.graph.value_info, *model.graph.input]:
        if info.name in changed:
            info.type.tensor_type.elem_type = onnx.TensorProto.UINT8
    return model
